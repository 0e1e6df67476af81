#include <config.h>
#include "agent/config.h"
#include "agent/config_check.h"
#include "agent/util/jsonpos.h"
#include "agent/util/log.h"
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * One table describes every key (STYLE C1): it drives validation (config_load), the
 * effective-config dump (config_describe) and the key section of doc/dirmig.json.5
 * (config_print_keys). Keys flagged CFG_EP exist under both "source" and "target"; their
 * path is relative to the endpoint object. A key with an offset is copied into struct
 * dm_config (or struct config_endpoint) by one generic loop; the few that need more
 * (log.level, the secrets, the map) are handled after it.
 */

#define CONFIG_MAX_BYTES (16u << 20)
#define HOOK_MIN_SECRET 32 /* bytes of hook.secret_file / hook.secret_env */

enum cfg_type {
    CFG_OBJ,     /* object whose keys are in this table */
    CFG_OPAQUE,  /* reserved section: any object (or array), not checked yet */
    CFG_WAVES,   /* array of wave objects: checked by parse_waves() */
    CFG_MAP,     /* attribute map: checked by schema/map_compile.c */
    CFG_STR,     /* non-empty string */
    CFG_PATH,    /* non-empty string; relative to the config file's directory */
    CFG_ENV,     /* environment variable name */
    CFG_INT,     /* integer in min..max */
    CFG_BOOL,    /* true or false */
    CFG_STRLIST, /* array of non-empty strings */
};

enum cfg_flag {
    CFG_REQUIRED = 1 << 0,
    CFG_SENSITIVE = 1 << 1, /* describe prints *** */
    CFG_EP = 1 << 2,        /* under source and target */
};

enum cfg_check { CHK_NONE = 0, CHK_URI, CHK_DN, CHK_FILTER };

enum cfg_where { AT_NONE = 0, AT_CONFIG, AT_EP };

struct cfg_key {
    const char *path;
    enum cfg_type type;
    const char *def; /* default as text, NULL = none */
    unsigned flags;
    long long min, max; /* CFG_INT */
    const char *values; /* allowed values "a|b|c" (CFG_STR) */
    enum cfg_check check;
    enum cfg_where where;
    size_t off;
    const char *doc;
};

#define EPOFF(f) .where = AT_EP, .off = offsetof(struct config_endpoint, f)
#define CFOFF(f) .where = AT_CONFIG, .off = offsetof(struct dm_config, f)

#define DEFAULT_USERS_FILTER "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))"
#define AD_USERS_FILTER "(&(objectCategory=person)(objectClass=user))"
#define AD_GROUPS_FILTER "(objectClass=group)"
#define DEFAULT_GROUPS_FILTER                                                                      \
    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"

static const struct cfg_key keys[] = {
    {"source", CFG_OBJ, NULL, CFG_REQUIRED,
     .doc = "The directory to read from. Holds the endpoint keys below."},
    {"target", CFG_OBJ, NULL, CFG_REQUIRED,
     .doc = "The directory to write to. Holds the endpoint keys below."},
    {"type", CFG_STR, "ldap", CFG_EP, .values = "ldap|okta", EPOFF(conn.type),
     .doc = "Connector type: ldap, or okta (an Okta-style Users/Groups API; target only)."},
    {"uri", CFG_STR, NULL, CFG_EP | CFG_REQUIRED, .check = CHK_URI, EPOFF(conn.uri),
     .doc = "Server URI: ldap://, ldaps:// or ldapi://; for type okta the https:// base URL "
            "of the organisation (http:// only to a loopback address, for tests)."},
    {"base", CFG_STR, NULL, CFG_EP, .check = CHK_DN, EPOFF(conn.base),
     .doc = "Naming context read from (source) or written under (target). Required for "
            "type ldap."},
    {"token_file", CFG_PATH, NULL, CFG_EP | CFG_SENSITIVE,
     .doc = "Type okta: file holding the API token (sent as \"SSWS <token>\"). Must not be "
            "accessible by group or others."},
    {"token_env", CFG_ENV, NULL, CFG_EP | CFG_SENSITIVE,
     .doc = "Type okta: environment variable holding the API token."},
    {"concurrency", CFG_INT, "8", CFG_EP, 1, 256, EPOFF(conn.concurrency),
     .doc = "Type okta: requests in flight at once."},
    {"rate_limit_share", CFG_INT, "50", CFG_EP, 1, 100, EPOFF(conn.rate_share_pct),
     .doc = "Type okta: percent of each rate-limit bucket dirmig may use (Okta gives one "
            "token 50% by default); the rest stays free for other clients."},
    {"activate", CFG_BOOL, "true", CFG_EP, EPOFF(conn.activate),
     .doc = "Type okta: create users ACTIVE (true) or STAGED (false). Imported-hash and hook "
            "users sign in with their old password either way once active."},
    {"bind_dn", CFG_STR, NULL, CFG_EP, .check = CHK_DN, EPOFF(conn.bind_dn),
     .doc = "DN for a simple bind (with dialect \"ad\" also a UPN user@corp.example or "
            "DOMAIN\\user). Unset: anonymous, or the SASL identity. "
            "Needs exactly one of bind_pw_file and bind_pw_env unless sasl_mech is set."},
    {"bind_pw_file", CFG_PATH, NULL, CFG_EP | CFG_SENSITIVE,
     .doc = "File holding the bind password (one trailing newline is dropped). "
            "Must not be accessible by group or others."},
    {"bind_pw_env", CFG_ENV, NULL, CFG_EP | CFG_SENSITIVE,
     .doc = "Environment variable holding the bind password."},
    {"sasl_mech", CFG_STR, NULL, CFG_EP, .values = "EXTERNAL|GSSAPI", EPOFF(conn.sasl_mech),
     .doc = "SASL mechanism instead of a simple bind. EXTERNAL uses the ldapi:// peer "
            "credentials or a TLS client certificate. GSSAPI uses the Kerberos ticket in the "
            "cache named by KRB5CCNAME (kinit first); the service principal is ldap/<uri host> "
            "as written, without reverse DNS. No bind_dn with GSSAPI."},
    {"starttls", CFG_BOOL, "false", CFG_EP, EPOFF(conn.starttls),
     .doc = "Run StartTLS on an ldap:// connection; failure to start TLS is an error."},
    {"tls", CFG_OBJ, NULL, CFG_EP, .doc = "TLS settings."},
    {"tls.ca_file", CFG_PATH, NULL, CFG_EP, EPOFF(conn.ca_file),
     .doc = "PEM file of trusted CA certificates. Unset: the system CAs."},
    {"tls.verify", CFG_BOOL, "true", CFG_EP, EPOFF(conn.tls_verify),
     .doc = "Demand a valid server certificate. Turn off only for tests."},
    {"network_timeout_ms", CFG_INT, "10000", CFG_EP, 100, 600000, EPOFF(conn.network_timeout_ms),
     .doc = "Connect timeout in milliseconds."},
    {"timeout_ms", CFG_INT, "120000", CFG_EP, 100, 3600000, EPOFF(conn.op_timeout_ms),
     .doc = "Timeout of one LDAP operation in milliseconds."},
    {"page_size", CFG_INT, "500", CFG_EP, 1, 10000, EPOFF(conn.page_size),
     .doc = "Paged-results page size for reads."},
    {"max_retries", CFG_INT, "5", CFG_EP, 0, 100, EPOFF(conn.max_retries),
     .doc = "Reconnect attempts after a dropped connection."},
    {"write_window", CFG_INT, "64", CFG_EP, 1, 1024, EPOFF(conn.write_window),
     .doc = "Maximum write operations in flight."},
    {"member_chunk", CFG_INT, "1000", CFG_EP, 1, 100000, EPOFF(conn.member_chunk),
     .doc = "Values per modify when writing big multi-valued attributes."},
    {"dialect", CFG_STR, "ldap", CFG_EP, .values = "ldap|ad", EPOFF(conn.dialect),
     .doc = "Source dialect. \"ad\" reads Active Directory: pages of at most 1000, "
            "ranged attributes (member;range=) read to the end, objectGUID (canonical "
            "string) as the default key, primary-group members added to their group, "
            "synthetic user attributes dirmigAccountState (enabled, disabled, locked, "
            "expired) and dirmigEnabled (TRUE/FALSE), delta reads. Default filters become "
            "(&(objectCategory=person)(objectClass=user)) and (objectClass=group)."},
    {"range_size", CFG_INT, "0", CFG_EP, 0, 100000, EPOFF(conn.range_size),
     .doc = "AD dialect: values per ranged request of member. 0 = as the server sends "
            "(AD: 1500); a smaller value forces ranged retrieval."},
    {"delta", CFG_BOOL, "false", CFG_EP, EPOFF(delta),
     .doc = "AD dialect, source: read only what changed since the last successful run "
            "(uSNChanged above the highestCommittedUSN kept in the state journal) and report "
            "deleted objects (tombstones). The first run, and any run after the DC's "
            "invocationId changed, reads everything."},
    {"users", CFG_OBJ, NULL, CFG_EP, .doc = "Where the users are."},
    {"users.base", CFG_STR, NULL, CFG_EP, .check = CHK_DN, EPOFF(users_base),
     .doc = "Search base for users. Default: the endpoint base."},
    {"users.filter", CFG_STR, DEFAULT_USERS_FILTER, CFG_EP, .check = CHK_FILTER,
     EPOFF(users_filter), .doc = "LDAP filter selecting users."},
    {"users.activity", CFG_OBJ, NULL, CFG_EP,
     .doc = "Dated activity: users count only while start has passed and end has not."},
    {"users.activity.start_attribute", CFG_STR, NULL, CFG_EP, EPOFF(activity_start),
     .doc = "Attribute holding the start date (GeneralizedTime, ISO 8601 or FILETIME)."},
    {"users.activity.end_attribute", CFG_STR, NULL, CFG_EP, EPOFF(activity_end),
     .doc = "Attribute holding the end date; missing = no end."},
    {"users.activity.lookahead_days", CFG_INT, "0", CFG_EP, 0, 3650, EPOFF(lookahead_days),
     .doc = "Count users as active this many days before their start date."},
    {"groups", CFG_OBJ, NULL, CFG_EP, .doc = "Where the groups are."},
    {"groups.base", CFG_STR, NULL, CFG_EP, .check = CHK_DN, EPOFF(groups_base),
     .doc = "Search base for groups. Default: the endpoint base."},
    {"groups.filter", CFG_STR, DEFAULT_GROUPS_FILTER, CFG_EP, .check = CHK_FILTER,
     EPOFF(groups_filter), .doc = "LDAP filter selecting groups."},
    {"groups.nesting", CFG_STR, "preserve", CFG_EP, .values = "preserve|flatten|flatten_in_chain",
     EPOFF(conn.group_nesting),
     .doc = "AD dialect: \"preserve\" keeps groups as members of groups; \"flatten\" "
            "makes every transitive member a direct member and leaves the groups out, by a "
            "cycle-safe walk (one memberOf search per nested group); \"flatten_in_chain\" "
            "does the same with one in-chain search (rule 1.2.840.113556.1.4.1941), which "
            "real AD answers fast and Samba 4.17 slowly. Primary-group members of every "
            "group reached are included."},
    {"map", CFG_MAP, NULL, 0,
     .doc = "The attribute map: an inline map object, or {\"file\": \"maps/x.json\"}. "
            "Default: copy attributes by name, correlate on entryUUID. See the map "
            "documentation for its keys."},
    {"state", CFG_OBJ, NULL, 0, .doc = "The state journal."},
    {"state.path", CFG_PATH, "dirmig.db", 0, CFOFF(state_path),
     .doc = "SQLite journal file (WAL mode; -wal and -shm files appear beside it)."},
    {"run", CFG_OBJ, NULL, 0, .doc = "Migration run settings."},
    {"run.batch_size", CFG_INT, "500", 0, 1, 10000, CFOFF(batch_size),
     .doc = "Entries per journal transaction and write batch."},
    {"run.dn_attributes", CFG_STRLIST, "member uniqueMember owner manager seeAlso secretary", 0,
     CFOFF(dn_attrs),
     .doc = "DN-valued attributes whose values are moved from the source base to the "
            "target base."},
    {"run.member_attributes", CFG_STRLIST, "member uniqueMember", 0, CFOFF(member_attrs),
     .doc = "Membership attributes whose values are resolved through the journal."},
    {"log", CFG_OBJ, NULL, 0, .doc = "Logging."},
    {"log.level", CFG_STR, "info", 0, .values = "error|warn|info|debug",
     .doc = "Lowest level logged."},
    {"log.json", CFG_BOOL, "false", 0, CFOFF(log_json),
     .doc = "Write JSON Lines instead of human-readable lines."},
    {"log.file", CFG_PATH, NULL, 0, CFOFF(log_file), .doc = "Log file. Unset: standard error."},
    {"credentials", CFG_OPAQUE, NULL, 0, .doc = "Reserved for password-hash handling."},
    {"hook", CFG_OBJ, NULL, 0, .doc = "The password-import hook server (dirmig hook)."},
    {"hook.listen", CFG_STR, "127.0.0.1:8443", 0, CFOFF(hook.listen),
     .doc = "Address and port: 127.0.0.1:8443, [::1]:8443 or 0.0.0.0:8443."},
    {"hook.path", CFG_STR, "/okta/password-import", 0, CFOFF(hook.path),
     .doc = "URL path of the Okta password import inline hook."},
    {"hook.generic_path", CFG_STR, "/verify", 0, CFOFF(hook.generic_path),
     .doc = "URL path of the generic endpoint: {\"username\",\"password\"} -> "
            "{\"verified\": bool}."},
    {"hook.tls", CFG_OBJ, NULL, 0, .doc = "TLS of the hook server."},
    {"hook.tls.cert_file", CFG_PATH, NULL, 0, CFOFF(hook.tls_cert_file),
     .doc = "PEM certificate (chain) of the hook server. Required unless plain_http."},
    {"hook.tls.key_file", CFG_PATH, NULL, 0, CFOFF(hook.tls_key_file),
     .doc = "PEM private key of the hook server."},
    {"hook.plain_http", CFG_BOOL, "false", 0, CFOFF(hook.plain_http),
     .doc = "Serve plain HTTP. Only allowed when listen is a loopback address (a TLS "
            "terminating proxy in front)."},
    {"hook.auth_header", CFG_STR, "Authorization", 0, CFOFF(hook.auth_header),
     .doc = "Request header that carries the shared secret."},
    {"hook.secret_file", CFG_PATH, NULL, CFG_SENSITIVE,
     .doc = "File holding the shared secret (the whole header value, at least 32 bytes: "
            "shorter is a configuration error). The server needs this or secret_env."},
    {"hook.secret_env", CFG_ENV, NULL, CFG_SENSITIVE,
     .doc = "Environment variable holding the shared secret."},
    {"hook.deadline_ms", CFG_INT, "2000", 0, 100, 2900, CFOFF(hook.deadline_ms),
     .doc = "Internal deadline: every answer leaves within it, counted from the request's "
            "headers; a verification not done by then is UNVERIFIED (Okta gives up after "
            "3 s). The directory gets nine tenths of it (at least 50 ms are kept back to "
            "write the answer)."},
    {"hook.login_attributes", CFG_STRLIST, "uid", 0, CFOFF(hook.login_attrs),
     .doc = "Attributes searched for the username (one must match exactly one user)."},
    {"hook.dn_template", CFG_STR, NULL, 0, CFOFF(hook.dn_template),
     .doc = "Bind DN built from the username instead of a search, e.g. "
            "uid={login},ou=people,dc=example,dc=org (RFC 4514 escaped)."},
    {"hook.search_base", CFG_STR, NULL, 0, .check = CHK_DN, CFOFF(hook.search_base),
     .doc = "Where users are searched. Default: source users.base."},
    {"hook.max_failures", CFG_INT, "5", 0, 1, 1000, CFOFF(hook.max_failures),
     .doc = "Failed verifications per account and window before the hook answers "
            "UNVERIFIED without a bind. The account is the one the directory resolves the "
            "login to (objectGUID, entryUUID or DN), so other spellings, case, padding or "
            "mail instead of uid share the budget. Must be below the source's lockout "
            "threshold (read at start: ppolicy pwdMaxFailure, AD lockoutThreshold), else "
            "dirmig hook exits 78 naming both numbers."},
    {"hook.failure_window_s", CFG_INT, "900", 0, 1, 86400, CFOFF(hook.failure_window_s),
     .doc = "Length of the failure window in seconds."},
    {"hook.max_concurrency", CFG_INT, "64", 0, 1, 10000, CFOFF(hook.max_concurrency),
     .doc = "Verifications in flight at once; more are answered UNVERIFIED at once."},
    {"hook.max_body", CFG_INT, "16384", 0, 256, 1048576, CFOFF(hook.max_body),
     .doc = "Largest request body in bytes (413 beyond)."},
    {"hook.threads", CFG_INT, "0", 0, 0, 1024, CFOFF(hook.threads),
     .doc = "0: one thread per connection, which verifies inline (the least CPU per "
            "verification; a slow source or client holds only its own connection's thread). "
            "N > 0: an epoll pool of N HTTP threads that hand each verification to a worker "
            "thread (at most max_concurrency) and answer when it is done, so an HTTP thread "
            "never waits for the source (fewer threads with very many idle connections, "
            "about a fifth more CPU per verification)."},
    {"hook.pool_size", CFG_INT, "32", 0, 1, 1024, CFOFF(hook.pool_size),
     .doc = "Pooled source connections for searches, and as many for password binds."},
    {"hook.request_timeout_s", CFG_INT, "10", 0, 1, 600, CFOFF(hook.request_timeout_s),
     .doc = "Idle connection timeout: a connection on which nothing arrives for this long "
            "is closed."},
    {"hook.max_failures_per_client", CFG_INT, "50", 0, 1, 1000000,
     CFOFF(hook.max_failures_per_client),
     .doc = "Failed verifications (wrong passwords, unknown or ineligible logins) per client "
            "address and window, before that client gets UNVERIFIED without any directory "
            "traffic. The client is the end user's address the caller names "
            "(Okta: data.context.request.ipAddress; generic endpoint: \"client_ip\"), else "
            "the peer address; an IPv6 client is its /64."},
    {"hook.max_failures_total", CFG_INT, "2000", 0, 1, 100000000, CFOFF(hook.max_failures_total),
     .doc = "Failed verifications of all accounts together per window (a password spray "
            "across many accounts); past it every request is UNVERIFIED without a bind until "
            "the window ends."},
    {"hook.source_lockout_threshold", CFG_INT, "0", 0, 0, 1000000,
     CFOFF(hook.source_lockout_threshold),
     .doc = "The source's lockout threshold when it cannot be read (ppolicy only in "
            "cn=config, policies the service account may not read). 0 = read it at start."},
    {"hook.request_read_ms", CFG_INT, "5000", 0, 100, 600000, CFOFF(hook.request_read_ms),
     .doc = "A request must arrive whole (TLS handshake, headers and body) within this many "
            "milliseconds of its first byte, else the connection is closed: clients that "
            "send a byte at a time hold nothing for long."},
    {"hook.max_connections", CFG_INT, "512", 0, 16, 65536, CFOFF(hook.max_connections),
     .doc = "Open connections at most; more are refused at accept."},
    {"hook.max_connections_per_client", CFG_INT, "128", 0, 1, 65536,
     CFOFF(hook.max_connections_per_client),
     .doc = "Open connections per client address at most (Okta calls from a few addresses: "
            "keep this above its concurrency)."},
    {"hook.tls.min_version", CFG_STR, "1.2", 0, .values = "1.2|1.3", CFOFF(hook.tls_min_version),
     .doc = "Oldest TLS version accepted. Only forward-secret key exchanges (ECDHE, and "
            "TLS 1.3) with AEAD ciphers are offered."},
    {"hook.monitor_listen", CFG_STR, NULL, 0, CFOFF(hook.monitor_listen),
     .doc = "Address and port for /healthz and /metrics. Set: they are served only there "
            "(with the hook's certificate unless monitor_plain_http) and the hook listener "
            "answers 404 for them. Unset: they are on listen."},
    {"hook.monitor_plain_http", CFG_BOOL, "false", 0, CFOFF(hook.monitor_plain_http),
     .doc = "Serve monitor_listen over plain HTTP. Only allowed on a loopback address."},
    {"hook.old_password_window_s", CFG_INT, "0", 0, 0, 604800, CFOFF(hook.old_password_window_s),
     .doc = "Active Directory: answer UNVERIFIED without a bind for an account whose "
            "password was changed (pwdLastSet) less than this many seconds ago, because "
            "inside the DC's old-password window a bind also succeeds with the previous "
            "password. 0 = off (see ACTIVE DIRECTORY)."},
    {"hook.lazy_migration", CFG_BOOL, "false", 0, CFOFF(hook.lazy_migration),
     .doc = "LDAP target: after a verified sign-in, write the password to the user's target "
            "entry as a strong hash (hash_scheme) when the entry has none, and journal the "
            "user as migrated (see LAZY MIGRATION)."},
    {"hook.rehash", CFG_BOOL, "false", 0, CFOFF(hook.rehash),
     .doc = "LDAP target: after a verified sign-in, replace a weak target hash ({MD5}, "
            "{SMD5}, {SHA}, {SSHA}, cleartext, {CRYPT} DES or MD5) that matches the password "
            "with a strong one (hash_scheme)."},
    {"hook.hash_scheme", CFG_STR, "ARGON2", 0, .values = "ARGON2|PBKDF2-SHA512",
     CFOFF(hook.hash_scheme),
     .doc = "Strong hash written by lazy_migration and rehash: {ARGON2} (argon2id; slapd "
            "moduleload argon2) or {PBKDF2-SHA512} (slapd-contrib moduleload pw-pbkdf2)."},
    {"hook.argon2_memory_kib", CFG_INT, "19456", 0, 1024, 4194304, CFOFF(hook.argon2_memory_kib),
     .doc = "argon2id memory cost in KiB."},
    {"hook.argon2_iterations", CFG_INT, "2", 0, 1, 100, CFOFF(hook.argon2_iterations),
     .doc = "argon2id passes."},
    {"hook.pbkdf2_iterations", CFG_INT, "210000", 0, 10000, 100000000,
     CFOFF(hook.pbkdf2_iterations), .doc = "PBKDF2-HMAC-SHA512 iterations."},
    {"validate", CFG_OBJ, NULL, 0, .doc = "Data-quality validation (dirmig validate)."},
    {"validate.blocking", CFG_STRLIST,
     "missing_required duplicate wrong_type invalid_email too_long too_short pattern bad_chars "
     "map dn",
     0, CFOFF(validate_blocking),
     .doc = "Problem categories that make dirmig validate exit with status 65."},
    {"validate.examples", CFG_INT, "5", 0, 0, 1000, CFOFF(validate_examples),
     .doc = "Examples kept per problem category in the summary."},
    {"waves", CFG_WAVES, NULL, 0,
     .doc = "Migration waves: an array of {name, filter | group | ou, groups}; see WAVES."},
    {"reconcile", CFG_OBJ, NULL, 0,
     .doc = "Scheduled runs of the dirmig agent daemon (create and update only)."},
    {"reconcile.interval_s", CFG_INT, "0", 0, 0, 604800, CFOFF(reconcile.interval_s),
     .doc = "Seconds between the starts of scheduled runs; 0 = no scheduled runs."},
    {"reconcile.jitter_s", CFG_INT, "0", 0, 0, 86400, CFOFF(reconcile.jitter_s),
     .doc = "A random delay of up to this many seconds added to each scheduled time, so "
            "several agents do not hit the directories at once."},
    {"reconcile.run_at_start", CFG_BOOL, "false", 0, CFOFF(reconcile.run_at_start),
     .doc = "Run once as soon as the agent starts, instead of one interval later."},
    {"reconcile.max_failures_before_backoff", CFG_INT, "3", 0, 0, 1000,
     CFOFF(reconcile.max_failures_before_backoff),
     .doc = "Failed runs in a row retried at the normal interval; after that the delay "
            "doubles with each further failure."},
    {"reconcile.max_backoff_s", CFG_INT, "3600", 0, 1, 604800, CFOFF(reconcile.max_backoff_s),
     .doc = "Longest delay between runs while backing off (never shorter than "
            "interval_s)."},
};

#define NKEYS DM_ARRAY_LEN(keys)

static const char *const roles[2] = {"source", "target"};
static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* The public struct plus what config_free needs: every string and list it owns. */
struct config_priv {
    struct dm_config pub;
    void **pool;
    size_t npool, cappool;
    unsigned char present[NKEYS][2]; /* key given in the file (per endpoint) */
    char *map_origin;                /* "default", "inline", or the map file path */
};

struct cfg_ctx {
    struct config_priv *cp;
    const char *origin; /* the config path as given */
    char *dir;          /* its directory, NULL when it has none */
    json_t *root;
    struct jsonpos *jp;
    struct dm_err *err;
};

/* ---- small helpers ---- */

static int pool_add(struct config_priv *cp, void *p)
{
    if (p == NULL) {
        return DM_ENOMEM;
    }
    if (cp->npool == cp->cappool) {
        size_t n = cp->cappool ? cp->cappool * 2 : 32;
        void **v = realloc(cp->pool, n * sizeof(*v));
        if (v == NULL) {
            free(p);
            return DM_ENOMEM;
        }
        cp->pool = v;
        cp->cappool = n;
    }
    cp->pool[cp->npool++] = p;
    return DM_OK;
}

static char *pool_strdup(struct config_priv *cp, const char *s)
{
    char *p = strdup(s);

    if (pool_add(cp, p) != DM_OK) {
        return NULL;
    }
    return p;
}

static void full_path(char *buf, size_t len, const struct cfg_key *k, int role)
{
    if (k->flags & CFG_EP) {
        snprintf(buf, len, "%s.%s", roles[role], k->path);
    } else {
        snprintf(buf, len, "%s", k->path);
    }
}

/* Reports "origin:line:col: path: msg" at the position of path (or of its nearest
 * existing parent when path is absent). */
static int cfg_fail(struct cfg_ctx *x, const char *path, const char *fmt, ...) DM_PRINTF(3, 4);

static int cfg_fail(struct cfg_ctx *x, const char *path, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    int line, col;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    jsonpos_find(x->jp, path, &line, &col);
    return dm_err_set(x->err, DM_EINVAL, "%s:%d:%d: %s: %s", x->origin, line, col, path, msg);
}

/* The table entry for a full key path, or NULL. *role gets the endpoint index. */
static const struct cfg_key *key_find(const char *path, int *role)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        if (!(k->flags & CFG_EP)) {
            if (strcmp(k->path, path) == 0) {
                *role = 0;
                return k;
            }
            continue;
        }
        for (int r = 0; r < 2; r++) {
            size_t n = strlen(roles[r]);
            if (strncmp(path, roles[r], n) == 0 && path[n] == '.' &&
                strcmp(path + n + 1, k->path) == 0) {
                *role = r;
                return k;
            }
        }
    }
    return NULL;
}

/* The value at a dotted path, or NULL when absent or JSON null. */
static json_t *json_at(json_t *root, const char *path)
{
    char buf[256];
    char *p, *dot;
    json_t *v = root;

    snprintf(buf, sizeof(buf), "%s", path);
    p = buf;
    for (;;) {
        if (!json_is_object(v)) {
            return NULL;
        }
        dot = strchr(p, '.');
        if (dot != NULL) {
            *dot = '\0';
        }
        v = json_object_get(v, p);
        if (v == NULL || dot == NULL) {
            break;
        }
        p = dot + 1;
    }
    return json_is_null(v) ? NULL : v;
}

/* Keys that look like an inline secret. Known keys (bind_pw_file...) never get here. */
static int looks_secret(const char *name)
{
    static const char *const names[] = {"pw",     "password", "passwd",
                                        "secret", "token",    "credential"};
    static const char *const suffixes[] = {"_pw",     "_password", "_passwd",
                                           "_secret", "_token",    "_key"};
    size_t n = strlen(name);

    for (size_t i = 0; i < DM_ARRAY_LEN(names); i++) {
        if (strcasecmp(name, names[i]) == 0) {
            return 1;
        }
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(suffixes); i++) {
        size_t m = strlen(suffixes[i]);
        if (n > m && strcasecmp(name + n - m, suffixes[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int is_one_of(const char *values, const char *s)
{
    size_t n = strlen(s);
    const char *p = values;

    for (;;) {
        const char *bar = strchr(p, '|');
        size_t m = bar ? (size_t)(bar - p) : strlen(p);
        if (m == n && strncmp(p, s, n) == 0) {
            return 1;
        }
        if (bar == NULL) {
            return 0;
        }
        p = bar + 1;
    }
}

/* "ldap" -> "\"ldap\""; "a|b|c" -> "one of a, b, c" */
static void values_text(char *buf, size_t len, const char *values)
{
    size_t o = 0;

    if (strchr(values, '|') == NULL) {
        snprintf(buf, len, "\"%s\"", values);
        return;
    }
    o = (size_t)snprintf(buf, len, "one of ");
    for (const char *p = values; *p && o + 3 < len; p++) {
        if (*p == '|') {
            buf[o++] = ',';
            buf[o++] = ' ';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
}

/* ---- validation ---- */

static int validate_object(struct cfg_ctx *x, json_t *obj, const char *prefix);

/* With the AD dialect, bind_dn may also be a UPN (user@corp.example) or DOMAIN\user:
 * AD accepts both as the name of a simple bind (MS-ADTS 5.1.1.1.1). */
static int is_ad_bind_name(struct cfg_ctx *x, const struct cfg_key *k, const char *path,
                           const char *s)
{
    const char *dot = strchr(path, '.');
    json_t *d;
    char dp[32];

    if (strcmp(k->path, "bind_dn") != 0 || dot == NULL || (size_t)(dot - path) >= 16) {
        return 0;
    }
    snprintf(dp, sizeof(dp), "%.*s.dialect", (int)(dot - path), path);
    d = json_at(x->root, dp);
    if (d == NULL || !json_is_string(d) || strcmp(json_string_value(d), "ad") != 0) {
        return 0;
    }
    return strchr(s, '=') == NULL && strchr(s, ',') == NULL &&
           (strchr(s, '@') != NULL || strchr(s, '\\') != NULL);
}

static int validate_value(struct cfg_ctx *x, const struct cfg_key *k, const char *path, json_t *v)
{
    char why[128];
    const char *s;

    switch (k->type) {
    case CFG_OBJ:
        if (!json_is_object(v)) {
            return cfg_fail(x, path, "must be an object");
        }
        return validate_object(x, v, path);
    case CFG_OPAQUE:
        if (!json_is_object(v) && !json_is_array(v)) {
            return cfg_fail(x, path, "must be an object");
        }
        return DM_OK;
    case CFG_WAVES:
        return DM_OK; /* parse_waves() checks it with positions */
    case CFG_MAP:
        if (!json_is_object(v)) {
            return cfg_fail(x, path, "must be an object");
        }
        return DM_OK;
    case CFG_INT:
        if (!json_is_integer(v)) {
            return cfg_fail(x, path, "must be an integer");
        }
        if (json_integer_value(v) < k->min || json_integer_value(v) > k->max) {
            return cfg_fail(x, path, "must be %lld..%lld", k->min, k->max);
        }
        return DM_OK;
    case CFG_BOOL:
        if (!json_is_boolean(v)) {
            return cfg_fail(x, path, "must be true or false");
        }
        return DM_OK;
    case CFG_STRLIST:
        if (!json_is_array(v)) {
            return cfg_fail(x, path, "must be an array of strings");
        }
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *it = json_array_get(v, i);
            if (!json_is_string(it) || json_string_length(it) == 0) {
                char ip[340];
                snprintf(ip, sizeof(ip), "%s[%zu]", path, i);
                return cfg_fail(x, ip, "must be a non-empty string");
            }
        }
        return DM_OK;
    case CFG_STR:
    case CFG_PATH:
    case CFG_ENV:
        break;
    }
    if (!json_is_string(v)) {
        return cfg_fail(x, path, "must be a string");
    }
    s = json_string_value(v);
    if (s[0] == '\0' || strlen(s) != json_string_length(v)) {
        return cfg_fail(x, path, "must be a non-empty string");
    }
    if (k->type == CFG_ENV && !cfgcheck_env_name(s)) {
        return cfg_fail(x, path, "must be an environment variable name");
    }
    if (k->values != NULL && !is_one_of(k->values, s)) {
        values_text(why, sizeof(why), k->values);
        return cfg_fail(x, path, "must be %s", why);
    }
    switch (k->check) {
    case CHK_URI:
        if (!cfgcheck_uri(s)) {
            return cfg_fail(x, path, "scheme must be ldap://, ldaps://, ldapi:// or https://");
        }
        break;
    case CHK_DN:
        if (!cfgcheck_dn(s) && !is_ad_bind_name(x, k, path, s)) {
            return cfg_fail(x, path, "must be a DN such as dc=example,dc=org");
        }
        break;
    case CHK_FILTER:
        if (!cfgcheck_filter(s)) {
            return cfg_fail(x, path,
                            "must be an LDAP filter in parentheses, such as "
                            "(objectClass=person)");
        }
        break;
    case CHK_NONE:
        break;
    }
    return DM_OK;
}

/* Checks every member of obj (at prefix, "" for the root) against the table, then the
 * required keys whose parent is this object. Stops at the first error. */
static int validate_object(struct cfg_ctx *x, json_t *obj, const char *prefix)
{
    const char *name;
    json_t *v;
    char path[300];
    int rc, role;

    json_object_foreach (obj, name, v) {
        const struct cfg_key *k;

        if (prefix[0] != '\0') {
            snprintf(path, sizeof(path), "%s.%s", prefix, name);
        } else {
            snprintf(path, sizeof(path), "%s", name);
        }
        k = key_find(path, &role);
        if (k == NULL) {
            if (looks_secret(name)) {
                if (strcmp(prefix, "source") == 0 || strcmp(prefix, "target") == 0) {
                    return cfg_fail(x, path,
                                    "secrets are not accepted inline; use bind_pw_file "
                                    "or bind_pw_env");
                }
                return cfg_fail(x, path,
                                "secrets are not accepted inline; use a *_file or *_env key");
            }
            return cfg_fail(x, path, "unknown key");
        }
        if (json_is_null(v)) {
            if (k->flags & CFG_REQUIRED) {
                return cfg_fail(x, path, "required key is null");
            }
            continue;
        }
        x->cp->present[k - keys][role] = 1;
        rc = validate_value(x, k, path, v);
        if (rc != DM_OK) {
            return rc;
        }
    }
    for (size_t i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        int n = (k->flags & CFG_EP) ? 2 : 1;

        if (!(k->flags & CFG_REQUIRED)) {
            continue;
        }
        for (int r = 0; r < n; r++) {
            const char *last;
            size_t plen;

            full_path(path, sizeof(path), k, r);
            last = strrchr(path, '.');
            plen = last ? (size_t)(last - path) : 0;
            last = last ? last + 1 : path;
            if (strlen(prefix) != plen || strncmp(prefix, path, plen) != 0) {
                continue;
            }
            if (json_object_get(obj, last) == NULL) {
                return cfg_fail(x, path, "required key is missing");
            }
        }
    }
    return DM_OK;
}

/* Rules that involve several keys of one endpoint. */
static int validate_endpoint(struct cfg_ctx *x, int r)
{
    char p[64];
    json_t *bind_dn, *pw_file, *pw_env, *sasl, *uri, *starttls, *type, *tok_file, *tok_env;
    const char *u;
    int http;

#define AT(k) (snprintf(p, sizeof(p), "%s.%s", roles[r], k), json_at(x->root, p))
    bind_dn = AT("bind_dn");
    pw_file = AT("bind_pw_file");
    pw_env = AT("bind_pw_env");
    sasl = AT("sasl_mech");
    uri = AT("uri");
    starttls = AT("starttls");
    type = AT("type");
    tok_file = AT("token_file");
    tok_env = AT("token_env");
#undef AT
    u = json_string_value(uri);
    http = type != NULL && strcmp(json_string_value(type), "okta") == 0;
    if (http) {
        snprintf(p, sizeof(p), "%s.type", roles[r]);
        if (r == 0) {
            return cfg_fail(x, p, "okta is a target type; the source must be an LDAP directory");
        }
        snprintf(p, sizeof(p), "%s.uri", roles[r]);
        if (strncasecmp(u, "https://", 8) != 0 && !cfgcheck_loopback_http(u)) {
            return cfg_fail(x, p, "type okta needs an https:// URL (http:// only to loopback)");
        }
        if ((tok_file == NULL) == (tok_env == NULL)) {
            snprintf(p, sizeof(p), "%s.%s", roles[r], tok_file ? "token_env" : "token_file");
            return cfg_fail(x, p, "type okta needs exactly one of token_file and token_env");
        }
        if (bind_dn != NULL || pw_file != NULL || pw_env != NULL || sasl != NULL ||
            starttls != NULL) {
            snprintf(p, sizeof(p), "%s.%s", roles[r],
                     bind_dn   ? "bind_dn"
                     : pw_file ? "bind_pw_file"
                     : pw_env  ? "bind_pw_env"
                     : sasl    ? "sasl_mech"
                               : "starttls");
            return cfg_fail(x, p, "not used with type okta (it authenticates with a token)");
        }
        return DM_OK;
    }
    if (strncasecmp(u, "http", 4) == 0) {
        snprintf(p, sizeof(p), "%s.uri", roles[r]);
        return cfg_fail(x, p, "scheme must be ldap://, ldaps:// or ldapi:// for type ldap");
    }
    snprintf(p, sizeof(p), "%s.base", roles[r]);
    if (json_at(x->root, p) == NULL) {
        return cfg_fail(x, p, "required key is missing");
    }
    if (tok_file != NULL || tok_env != NULL) {
        snprintf(p, sizeof(p), "%s.%s", roles[r], tok_file ? "token_file" : "token_env");
        return cfg_fail(x, p, "only used with type okta");
    }
    if (pw_file != NULL && pw_env != NULL) {
        snprintf(p, sizeof(p), "%s.bind_pw_env", roles[r]);
        return cfg_fail(x, p, "use only one of bind_pw_file and bind_pw_env");
    }
    if (bind_dn != NULL && sasl != NULL && strcmp(json_string_value(sasl), "GSSAPI") == 0) {
        snprintf(p, sizeof(p), "%s.bind_dn", roles[r]);
        return cfg_fail(x, p, "not used with sasl_mech GSSAPI (the identity is the ticket's)");
    }
    if (bind_dn != NULL && sasl == NULL && pw_file == NULL && pw_env == NULL) {
        snprintf(p, sizeof(p), "%s.bind_dn", roles[r]);
        return cfg_fail(x, p, "needs bind_pw_file or bind_pw_env (or sasl_mech)");
    }
    if ((pw_file != NULL || pw_env != NULL) && (bind_dn == NULL || sasl != NULL)) {
        snprintf(p, sizeof(p), "%s.%s", roles[r], pw_file ? "bind_pw_file" : "bind_pw_env");
        return cfg_fail(x, p, "only used for a simple bind with bind_dn");
    }
    if (starttls != NULL && json_is_true(starttls) &&
        strncasecmp(json_string_value(uri), "ldap://", 7) != 0) {
        snprintf(p, sizeof(p), "%s.starttls", roles[r]);
        return cfg_fail(x, p, "only valid with an ldap:// uri");
    }
    return DM_OK;
}

/* Rules of the issue-12 hook keys: the monitor listener, lazy migration. */
static int validate_hook_more(struct cfg_ctx *x, const char *listen)
{
    json_t *mon = json_at(x->root, "hook.monitor_listen");
    json_t *mplain = json_at(x->root, "hook.monitor_plain_http");
    json_t *lazy = json_at(x->root, "hook.lazy_migration");
    json_t *rehash = json_at(x->root, "hook.rehash");
    json_t *ttype = json_at(x->root, "target.type");
    const char *m = mon != NULL ? json_string_value(mon) : NULL;
    const char *colon = m != NULL ? strrchr(m, ':') : NULL;

    if (m != NULL &&
        (colon == NULL || colon == m || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535 ||
         strspn(colon + 1, "0123456789") != strlen(colon + 1))) {
        return cfg_fail(x, "hook.monitor_listen", "must be address:port, e.g. 127.0.0.1:9443");
    }
    if (m != NULL && strcmp(m, listen) == 0) {
        return cfg_fail(x, "hook.monitor_listen", "must differ from hook.listen");
    }
    if (mplain != NULL && json_is_true(mplain) && (m == NULL || !cfgcheck_loopback_listen(m))) {
        return cfg_fail(x, "hook.monitor_plain_http",
                        "plain HTTP is only allowed with a loopback monitor_listen");
    }
    if (((lazy != NULL && json_is_true(lazy)) || (rehash != NULL && json_is_true(rehash))) &&
        ttype != NULL && strcmp(json_string_value(ttype), "ldap") != 0) {
        return cfg_fail(x,
                        lazy != NULL && json_is_true(lazy) ? "hook.lazy_migration" : "hook.rehash",
                        "needs an LDAP target (target.type ldap); an Okta target imports "
                        "passwords through its own hook");
    }
    return DM_OK;
}

/* Rules that involve several hook keys. */
static int validate_hook(struct cfg_ctx *x)
{
    json_t *listen = json_at(x->root, "hook.listen");
    json_t *plain = json_at(x->root, "hook.plain_http");
    json_t *cert = json_at(x->root, "hook.tls.cert_file");
    json_t *key = json_at(x->root, "hook.tls.key_file");
    json_t *tmpl = json_at(x->root, "hook.dn_template");
    const char *l = listen != NULL ? json_string_value(listen) : "127.0.0.1:8443";
    const char *colon = strrchr(l, ':');

    if (colon == NULL || colon == l || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        return cfg_fail(x, "hook.listen", "must be address:port, e.g. 127.0.0.1:8443");
    }
    if (plain != NULL && json_is_true(plain) && !cfgcheck_loopback_listen(l)) {
        return cfg_fail(x, "hook.plain_http",
                        "plain HTTP is only allowed on a loopback address (listen %s)", l);
    }
    if ((cert == NULL) != (key == NULL)) {
        return cfg_fail(x, cert == NULL ? "hook.tls.key_file" : "hook.tls.cert_file",
                        "tls.cert_file and tls.key_file go together");
    }
    if (json_at(x->root, "hook.secret_file") != NULL && json_at(x->root, "hook.secret_env")) {
        return cfg_fail(x, "hook.secret_env", "use only one of secret_file and secret_env");
    }
    if (tmpl != NULL && strstr(json_string_value(tmpl), "{login}") == NULL) {
        return cfg_fail(x, "hook.dn_template", "must contain {login}");
    }
    return validate_hook_more(x, l);
}

static char *resolve_path(struct cfg_ctx *x, const char *s);

static int load_hook_secret(struct cfg_ctx *x)
{
    json_t *f = json_at(x->root, "hook.secret_file");
    json_t *env = json_at(x->root, "hook.secret_env");
    struct dm_err e = {0};
    char *file = NULL;
    int rc;

    if (f == NULL && env == NULL) {
        return DM_OK;
    }
    if (f != NULL) {
        file = resolve_path(x, json_string_value(f));
        if (file == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config strings");
        }
    }
    rc = secret_load(&x->cp->pub.hook.secret, file, file ? NULL : json_string_value(env), &e);
    if (rc != DM_OK) {
        if (rc == DM_ENOMEM) {
            return dm_err_set(x->err, rc, "%s", e.msg);
        }
        return cfg_fail(x, f != NULL ? "hook.secret_file" : "hook.secret_env", "%s", e.msg);
    }
    /* A shared secret that can be guessed is no authentication. */
    if (secret_len(x->cp->pub.hook.secret) < HOOK_MIN_SECRET) {
        return cfg_fail(x, f != NULL ? "hook.secret_file" : "hook.secret_env",
                        "the shared secret is %zu bytes; at least %d are needed",
                        secret_len(x->cp->pub.hook.secret), HOOK_MIN_SECRET);
    }
    return DM_OK;
}

/* ---- building struct dm_config ---- */

/* A path from the config, resolved against the config file's directory. */
static char *resolve_path(struct cfg_ctx *x, const char *s)
{
    char *p;
    size_t n;

    if (s[0] == '/' || x->dir == NULL) {
        return pool_strdup(x->cp, s);
    }
    n = strlen(x->dir) + strlen(s) + 2;
    p = malloc(n);
    if (p == NULL) {
        return NULL;
    }
    snprintf(p, n, "%s/%s", x->dir, s);
    if (pool_add(x->cp, p) != DM_OK) {
        return NULL;
    }
    return p;
}

static char **make_list(struct cfg_ctx *x, json_t *arr, const char *def)
{
    char **v;
    size_t n = 0;

    if (arr != NULL) {
        n = json_array_size(arr);
    } else {
        for (const char *p = def; *p; p++) {
            n += (*p != ' ' && (p == def || p[-1] == ' '));
        }
    }
    v = calloc(n + 1, sizeof(*v));
    if (pool_add(x->cp, v) != DM_OK) {
        return NULL;
    }
    if (arr != NULL) {
        for (size_t i = 0; i < n; i++) {
            v[i] = pool_strdup(x->cp, json_string_value(json_array_get(arr, i)));
            if (v[i] == NULL) {
                return NULL;
            }
        }
        return v;
    }
    n = 0;
    for (const char *p = def; *p;) {
        size_t m = strcspn(p, " ");
        if (m > 0) {
            v[n] = pool_strdup(x->cp, p);
            if (v[n] == NULL) {
                return NULL;
            }
            v[n][m] = '\0';
            n++;
        }
        p += m;
        p += (*p == ' ');
    }
    return v;
}

static int fill_key(struct cfg_ctx *x, const struct cfg_key *k, int role)
{
    struct dm_config *c = &x->cp->pub;
    char path[128];
    char *base, *s = NULL;
    json_t *v;
    int iv;
    char **list;

    full_path(path, sizeof(path), k, role);
    v = json_at(x->root, path);
    base = k->where == AT_EP ? (char *)(role == 0 ? &c->source : &c->target) : (char *)c;
    switch (k->type) {
    case CFG_STR:
    case CFG_PATH:
        if (v != NULL) {
            s = k->type == CFG_PATH ? resolve_path(x, json_string_value(v))
                                    : pool_strdup(x->cp, json_string_value(v));
        } else if (k->def != NULL) {
            s = k->type == CFG_PATH ? resolve_path(x, k->def) : pool_strdup(x->cp, k->def);
        } else {
            return DM_OK;
        }
        if (s == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config strings");
        }
        /* memcpy: the field is char * or const char * (conn_cfg) */
        memcpy(base + k->off, &s, sizeof(s));
        return DM_OK;
    case CFG_INT:
        iv = v != NULL ? (int)json_integer_value(v) : atoi(k->def);
        memcpy(base + k->off, &iv, sizeof(iv));
        return DM_OK;
    case CFG_BOOL:
        iv = v != NULL ? json_is_true(v) : strcmp(k->def, "true") == 0;
        memcpy(base + k->off, &iv, sizeof(iv));
        return DM_OK;
    case CFG_STRLIST:
        list = make_list(x, v, k->def);
        if (list == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config lists");
        }
        memcpy(base + k->off, &list, sizeof(list));
        return DM_OK;
    case CFG_OBJ:
    case CFG_OPAQUE:
    case CFG_WAVES:
    case CFG_MAP:
    case CFG_ENV:
        break;
    }
    return DM_OK;
}

static int load_secret(struct cfg_ctx *x, int r, int tok)
{
    struct config_endpoint *ep = r == 0 ? &x->cp->pub.source : &x->cp->pub.target;
    struct dm_err e = {0};
    char p[64];
    json_t *f, *env;
    char *file = NULL;
    int rc;

    const char *fk = tok ? "token_file" : "bind_pw_file", *ek = tok ? "token_env" : "bind_pw_env";
    struct secret **dst = tok ? &ep->token : &ep->bind_pw;

    snprintf(p, sizeof(p), "%s.%s", roles[r], fk);
    f = json_at(x->root, p);
    snprintf(p, sizeof(p), "%s.%s", roles[r], ek);
    env = json_at(x->root, p);
    if (f == NULL && env == NULL) {
        return DM_OK;
    }
    if (f != NULL) {
        snprintf(p, sizeof(p), "%s.%s", roles[r], fk);
        file = resolve_path(x, json_string_value(f));
        if (file == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config strings");
        }
    }
    rc = secret_load(dst, file, file ? NULL : json_string_value(env), &e);
    if (rc != DM_OK) {
        if (rc == DM_ENOMEM) {
            return dm_err_set(x->err, rc, "%s", e.msg);
        }
        return cfg_fail(x, p, "%s", e.msg);
    }
    ep->conn.bind_pw = ep->bind_pw;
    ep->conn.token = ep->token;
    return DM_OK;
}

static int load_map(struct cfg_ctx *x)
{
    struct config_priv *cp = x->cp;
    json_t *m = json_at(x->root, "map");
    json_t *file = m != NULL ? json_object_get(m, "file") : NULL;
    const char *origin;
    char *path;
    int rc;

    if (m == NULL) {
        rc = map_default(&cp->pub.map, x->err);
        origin = "default (by-name)";
    } else if (file != NULL && json_object_size(m) == 1) {
        if (!json_is_string(file) || json_string_length(file) == 0) {
            return cfg_fail(x, "map.file", "must be a non-empty string");
        }
        path = resolve_path(x, json_string_value(file));
        if (path == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config strings");
        }
        rc = map_load_file(&cp->pub.map, path, x->err);
        origin = path;
    } else {
        rc = map_compile(&cp->pub.map, m, x->origin, x->jp, "map", x->err);
        origin = "inline";
    }
    if (rc != DM_OK) {
        return rc;
    }
    cp->map_origin = pool_strdup(cp, origin);
    if (cp->map_origin == NULL) {
        return dm_err_set(x->err, DM_ENOMEM, "config strings");
    }
    return DM_OK;
}

/* "waves": [{"name": "pilot", "filter": "(...)" | "group": "<dn>" | "ou": "<dn>",
 *             "groups": false}, ...]: exactly one of filter/group/ou per wave. */
static int parse_waves(struct cfg_ctx *x)
{
    struct dm_config *c = &x->cp->pub;
    json_t *arr = json_at(x->root, "waves"), *w;
    size_t i;

    if (arr == NULL) {
        return DM_OK;
    }
    if (!json_is_array(arr)) {
        return cfg_fail(x, "waves", "must be an array of wave objects");
    }
    c->waves = calloc(json_array_size(arr) + 1, sizeof(*c->waves));
    if (c->waves == NULL || pool_add(x->cp, c->waves) != DM_OK) {
        return dm_err_set(x->err, DM_ENOMEM, "config waves");
    }
    json_array_foreach (arr, i, w) {
        struct config_wave *cw = &c->waves[i];
        char path[64];
        const char *key;
        json_t *v;
        int nsel = 0;

        snprintf(path, sizeof(path), "waves[%zu]", i);
        if (!json_is_object(w)) {
            return cfg_fail(x, path, "must be an object");
        }
        json_object_foreach (w, key, v) {
            char kp[128];
            snprintf(kp, sizeof(kp), "%s.%s", path, key);
            if (strcmp(key, "groups") == 0) {
                if (!json_is_boolean(v)) {
                    return cfg_fail(x, kp, "must be true or false");
                }
                cw->groups = json_is_true(v);
                continue;
            }
            if (strcmp(key, "name") != 0 && strcmp(key, "filter") != 0 &&
                strcmp(key, "group") != 0 && strcmp(key, "ou") != 0) {
                return cfg_fail(x, kp, "unknown key (name, filter, group, ou, groups)");
            }
            if (!json_is_string(v) || json_string_length(v) == 0) {
                return cfg_fail(x, kp, "must be a non-empty string");
            }
            if (strcmp(key, "filter") == 0) {
                const char *f = json_string_value(v);
                int depth = 0;
                for (const char *p = f; *p && depth >= 0; p++) {
                    depth += (*p == '(') - (*p == ')');
                }
                if (f[0] != '(' || depth != 0) {
                    return cfg_fail(x, kp, "must be an LDAP filter in parentheses");
                }
            } else if (strcmp(key, "name") != 0 && strchr(json_string_value(v), '=') == NULL) {
                return cfg_fail(x, kp, "must be a DN");
            }
            {
                char *s = pool_strdup(x->cp, json_string_value(v));
                if (s == NULL) {
                    return dm_err_set(x->err, DM_ENOMEM, "config waves");
                }
                if (strcmp(key, "name") == 0) {
                    cw->name = s;
                } else if (strcmp(key, "filter") == 0) {
                    cw->filter = s, nsel++;
                } else if (strcmp(key, "group") == 0) {
                    cw->group = s, nsel++;
                } else {
                    cw->ou = s, nsel++;
                }
            }
        }
        if (cw->name == NULL) {
            return cfg_fail(x, path, "a wave needs a \"name\"");
        }
        if (nsel != 1) {
            return cfg_fail(x, path, "a wave needs exactly one of filter, group, ou");
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->waves[j].name, cw->name) == 0) {
                return cfg_fail(x, path, "duplicate wave name \"%s\"", cw->name);
            }
        }
        c->nwaves++;
    }
    return DM_OK;
}

static int build(struct cfg_ctx *x)
{
    struct dm_config *c = &x->cp->pub;
    json_t *lvl;
    int rc;

    for (size_t i = 0; i < NKEYS; i++) {
        int n = (keys[i].flags & CFG_EP) ? 2 : 1;
        if (keys[i].where == AT_NONE) {
            continue;
        }
        for (int r = 0; r < n; r++) {
            rc = fill_key(x, &keys[i], r);
            if (rc != DM_OK) {
                return rc;
            }
        }
    }
    lvl = json_at(x->root, "log.level");
    c->log_level = log_level_parse(lvl != NULL ? json_string_value(lvl) : "info");
    for (int r = 0; r < 2; r++) {
        struct config_endpoint *ep = r == 0 ? &c->source : &c->target;
        ep->conn.role = roles[r];
        if (ep->users_base == NULL) {
            ep->users_base = (char *)ep->conn.base;
        }
        if (ep->groups_base == NULL) {
            ep->groups_base = (char *)ep->conn.base;
        }
        if (ep->conn.dialect != NULL && strcmp(ep->conn.dialect, "ad") == 0) {
            /* AD has no inetOrgPerson/groupOfNames: its own defaults unless set */
            char path[32];
            snprintf(path, sizeof(path), "%s.users.filter", roles[r]);
            if (json_at(x->root, path) == NULL) {
                ep->users_filter = pool_strdup(x->cp, AD_USERS_FILTER);
            }
            snprintf(path, sizeof(path), "%s.groups.filter", roles[r]);
            if (json_at(x->root, path) == NULL) {
                ep->groups_filter = pool_strdup(x->cp, AD_GROUPS_FILTER);
            }
            if (ep->users_filter == NULL || ep->groups_filter == NULL) {
                return dm_err_set(x->err, DM_ENOMEM, "out of memory");
            }
        }
        rc = load_secret(x, r, 0);
        if (rc == DM_OK) {
            rc = load_secret(x, r, 1);
        }
        if (rc != DM_OK) {
            return rc;
        }
    }
    if (c->hook.search_base == NULL) {
        c->hook.search_base = c->source.users_base;
    }
    c->hook.enabled = json_at(x->root, "hook") != NULL;
    rc = load_hook_secret(x);
    if (rc != DM_OK) {
        return rc;
    }
    rc = parse_waves(x);
    if (rc != DM_OK) {
        return rc;
    }
    return load_map(x);
}

static int read_file(char **out, size_t *outlen, const char *path, struct dm_err *err)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0, cap = 0, n;
    int rc;

    if (f == NULL) {
        return dm_err_set(err, DM_EINVAL, "%s: cannot open: %s", path, strerror(errno));
    }
    for (;;) {
        if (cap - len < 4096) {
            char *p;
            cap = cap ? cap * 2 : 8192;
            p = realloc(data, cap + 1);
            if (p == NULL) {
                rc = dm_err_set(err, DM_ENOMEM, "%s: reading", path);
                goto done;
            }
            data = p;
        }
        n = fread(data + len, 1, cap - len, f);
        len += n;
        if (len > CONFIG_MAX_BYTES) {
            rc = dm_err_set(err, DM_EINVAL, "%s: file is larger than %u bytes", path,
                            CONFIG_MAX_BYTES);
            goto done;
        }
        if (n == 0) {
            break;
        }
    }
    if (ferror(f)) {
        rc = dm_err_set(err, DM_EINVAL, "%s: read error", path);
        goto done;
    }
    data[len] = '\0';
    *out = data;
    *outlen = len;
    data = NULL;
    rc = DM_OK;
done:
    free(data);
    fclose(f);
    return rc;
}

static void sha256_hex(char out[65], const char *data, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    out[0] = '\0';
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1) {
        return;
    }
    for (unsigned i = 0; i < mdlen && i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
}

int config_load(struct dm_config **out, const char *path, struct dm_err *err)
{
    struct config_priv *cp = calloc(1, sizeof(*cp));
    struct cfg_ctx x = {0};
    json_error_t jerr;
    char *data = NULL;
    const char *slash;
    size_t len = 0;
    int rc;

    if (cp == NULL) {
        return dm_err_set(err, DM_ENOMEM, "config");
    }
    x.cp = cp;
    x.origin = path;
    x.err = err;
    cp->pub.path = pool_strdup(cp, path);
    if (cp->pub.path == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "config");
        goto done;
    }
    slash = strrchr(path, '/');
    if (slash != NULL) {
        x.dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
        if (x.dir == NULL) {
            rc = dm_err_set(err, DM_ENOMEM, "config");
            goto done;
        }
    }
    rc = read_file(&data, &len, path, err);
    if (rc != DM_OK) {
        goto done;
    }
    sha256_hex(cp->pub.digest, data, len);
    x.root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (x.root == NULL) {
        rc = dm_err_set(err, DM_EINVAL, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        goto done;
    }
    rc = jsonpos_build(&x.jp, data, len, err);
    if (rc != DM_OK) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        rc = dm_err_set(err, rc, "%s:%s", path, msg);
        goto done;
    }
    if (!json_is_object(x.root)) {
        rc = dm_err_set(err, DM_EINVAL, "%s:1:1: the top level must be an object", path);
        goto done;
    }
    rc = validate_object(&x, x.root, "");
    for (int r = 0; r < 2 && rc == DM_OK; r++) {
        rc = validate_endpoint(&x, r);
    }
    if (rc == DM_OK) {
        rc = validate_hook(&x);
    }
    if (rc != DM_OK) {
        goto done;
    }
    rc = build(&x);
    if (rc != DM_OK) {
        goto done;
    }
    *out = &cp->pub;
    cp = NULL;
    rc = DM_OK;
done:
    if (cp != NULL) {
        config_free(&cp->pub);
    }
    jsonpos_free(x.jp);
    json_decref(x.root);
    free(x.dir);
    free(data);
    return rc;
}

void config_free(struct dm_config *c)
{
    struct config_priv *cp = (struct config_priv *)c;

    if (c == NULL) {
        return;
    }
    secret_free(c->source.bind_pw);
    secret_free(c->target.bind_pw);
    secret_free(c->source.token);
    secret_free(c->target.token);
    secret_free(c->hook.secret);
    map_free(c->map);
    for (size_t i = 0; i < cp->npool; i++) {
        free(cp->pool[i]);
    }
    free(cp->pool);
    free(cp);
}

/* ---- description ---- */

static int describe_key(const struct config_priv *cp, const struct cfg_key *k, int role,
                        struct buf *out)
{
    const struct dm_config *c = &cp->pub;
    const char *base;
    char path[128];
    const char *s;
    char **list;
    int iv, rc;

    full_path(path, sizeof(path), k, role);
    if (k->flags & CFG_SENSITIVE) {
        return buf_printf(out, "%s = %s\n", path, cp->present[k - keys][role] ? "***" : "(unset)");
    }
    if (strcmp(k->path, "log.level") == 0) {
        iv = c->log_level;
        s = iv >= 0 && (size_t)iv < DM_ARRAY_LEN(level_names) ? level_names[iv] : "?";
        return buf_printf(out, "%s = %s\n", path, s);
    }
    if (k->type == CFG_MAP) {
        return buf_printf(out, "%s = %s\n", path, cp->map_origin ? cp->map_origin : "?");
    }
    if (k->where == AT_NONE) {
        return DM_OK;
    }
    base =
        k->where == AT_EP ? (const char *)(role == 0 ? &c->source : &c->target) : (const char *)c;
    switch (k->type) {
    case CFG_STR:
    case CFG_PATH:
        memcpy(&s, base + k->off, sizeof(s));
        return buf_printf(out, "%s = %s\n", path, s ? s : "(unset)");
    case CFG_INT:
        memcpy(&iv, base + k->off, sizeof(iv));
        return buf_printf(out, "%s = %d\n", path, iv);
    case CFG_BOOL:
        memcpy(&iv, base + k->off, sizeof(iv));
        return buf_printf(out, "%s = %s\n", path, iv ? "true" : "false");
    case CFG_STRLIST:
        memcpy(&list, base + k->off, sizeof(list));
        rc = buf_printf(out, "%s =", path);
        for (size_t i = 0; rc == DM_OK && list != NULL && list[i] != NULL; i++) {
            rc = buf_printf(out, " %s", list[i]);
        }
        if (rc == DM_OK) {
            rc = buf_puts(out, "\n");
        }
        return rc;
    case CFG_OBJ:
    case CFG_OPAQUE:
    case CFG_WAVES:
    case CFG_MAP:
    case CFG_ENV:
        break;
    }
    return DM_OK;
}

int config_describe(const struct dm_config *c, struct buf *out)
{
    const struct config_priv *cp = (const struct config_priv *)c;
    int rc;

    rc = buf_printf(out, "config = %s\ndigest = %s\n", c->path, c->digest);
    for (int r = 0; r < 2 && rc == DM_OK; r++) {
        for (size_t i = 0; i < NKEYS && rc == DM_OK; i++) {
            if (keys[i].flags & CFG_EP) {
                rc = describe_key(cp, &keys[i], r, out);
            }
        }
    }
    for (size_t i = 0; i < NKEYS && rc == DM_OK; i++) {
        if (!(keys[i].flags & CFG_EP) && keys[i].type != CFG_OBJ && keys[i].type != CFG_OPAQUE) {
            rc = describe_key(cp, &keys[i], 0, out);
        }
    }
    return rc;
}

/* ---- documentation ---- */

static const char *type_name(enum cfg_type t)
{
    switch (t) {
    case CFG_OBJ:
        return "object";
    case CFG_OPAQUE:
        return "object, reserved";
    case CFG_WAVES:
        return "array of objects";
    case CFG_MAP:
        return "object";
    case CFG_STR:
        return "string";
    case CFG_PATH:
        return "path";
    case CFG_ENV:
        return "environment variable name";
    case CFG_INT:
        return "integer";
    case CFG_BOOL:
        return "boolean";
    case CFG_STRLIST:
        return "array of strings";
    }
    return "?";
}

/* Writes s with roff-special characters escaped. */
static void roff_puts(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\') {
            fputs("\\e", out);
        } else if (*s == '-') {
            fputs("\\-", out);
        } else {
            fputc(*s, out);
        }
    }
}

void config_print_keys(FILE *out)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];

        fputs(".TP\n", out);
        if (k->flags & CFG_EP) {
            fputs("\\fIendpoint\\fB.", out);
        } else {
            fputs("\\fB", out);
        }
        roff_puts(out, k->path);
        fputs("\\fR (", out);
        fputs(type_name(k->type), out);
        if (k->flags & CFG_REQUIRED) {
            fputs(", required", out);
        }
        if (k->flags & CFG_SENSITIVE) {
            fputs(", sensitive", out);
        }
        fputs(")\n", out);
        roff_puts(out, k->doc);
        if (k->type == CFG_INT) {
            fprintf(out, " Range %lld..%lld.", k->min, k->max);
        }
        if (k->values != NULL) {
            fputs(" One of: ", out);
            for (const char *p = k->values; *p; p++) {
                if (*p == '|') {
                    fputs(", ", out);
                } else {
                    fputc(*p, out);
                }
            }
            fputs(".", out);
        }
        if (k->def != NULL) {
            fputs(" Default: \\fB", out);
            roff_puts(out, k->def);
            fputs("\\fR.", out);
        }
        fputs("\n", out);
    }
}
