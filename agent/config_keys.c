#include <config.h>
#include "agent/config_keys.h"
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "agent/config.h"

#define EPOFF(f) .where = AT_EP, .off = offsetof(struct config_endpoint, f)
#define CFOFF(f) .where = AT_CONFIG, .off = offsetof(struct dm_config, f)

#define DEFAULT_USERS_FILTER "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))"
#define DEFAULT_GROUPS_FILTER                                                                      \
    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"

const struct cfg_key config_keys[] = {
    {"source", CFG_OBJ, NULL, CFG_REQUIRED,
     .doc = "The directory to read from. Holds the endpoint keys below."},
    {"target", CFG_OBJ, NULL, CFG_REQUIRED,
     .doc = "The directory to write to. Holds the endpoint keys below."},
    /* the configuration's connector list: one name per connector of connectors/connector.c */
    {"type", CFG_STR, "ldap", CFG_EP, .values = "ldap|okta|scim|auth0|ldif|csv|jsonl",
     EPOFF(conn.type),
     .doc = "Connector type: ldap (an LDAP directory, source or target); okta (an Okta-style "
            "Users/Groups API, target only); scim (a SCIM 2.0 service provider, target "
            "only); auth0 (an Auth0 database connection through bulk import, target only); ldif "
            "(an LDIF file: a slapcat or ldapsearch dump as the source, or "
            "slapadd-ready LDIF written whole as the target); csv and jsonl (the mapped users "
            "as a CSV or JSON Lines file, target only). The keys marked \"type ...\" below "
            "belong to those types only."},
    {"uri", CFG_STR, NULL, CFG_EP | CFG_REQUIRED, .check = CHK_URI, EPOFF(conn.uri),
     .doc = "Where the endpoint is: ldap://, ldaps:// or ldapi:// for a directory; the "
            "https:// base URL of an HTTP API (http:// only to a loopback address, for tests); "
            "file:PATH for a file (relative to this config file's directory)."},
    {"base", CFG_STR, NULL, CFG_EP, .check = CHK_DN, EPOFF(conn.base),
     .doc = "Naming context read from (source) or written under (target). Required by the "
            "types that address objects by DN (type ldap)."},
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
    {"write_connections", CFG_INT, "1", CFG_EP, 1, 16, EPOFF(conn.write_connections),
     .doc = "LDAP target: connections that write each batch in parallel, each with write_window "
            "operations in flight; objects are spread over them by DN (one object's changes "
            "stay on one connection, groups are written after their members). 1 by "
            "measurement: more were slower against slapd on 2 cores (doc/benchmarks.md); try "
            "more against a server with more cores."},
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
    {"create_containers", CFG_BOOL, "true", CFG_EP, EPOFF(create_containers),
     .doc = "Target (LDAP): create the containers (OUs) between the base and each entry, "
            "copied from the source's, parents first. false: a missing container is named "
            "by check and plan, and its entries are held back."},
    {"delta", CFG_BOOL, "false", CFG_EP, EPOFF(delta),
     .doc = "Source: read only what changed since the last successful run, each scope (users, "
            "groups) from its own watermark in the state journal, and report the objects "
            "deleted since. AD: uSNChanged above the highestCommittedUSN noted when the last "
            "run's read began, deletions from the tombstones; another DC database "
            "(invocationId) reads everything. LDAP: RFC 4533 content synchronisation in "
            "refreshOnly mode with the cookie the server sent at the end of the last run's "
            "read (slapd: the syncprov overlay; key.source must be entryUUID); without "
            "syncprov, with a cookie of another database or one the server refuses, the run "
            "reads everything. The first run reads everything."},
    {"users", CFG_OBJ, NULL, CFG_EP, .doc = "Where the users are."},
    {"users.base", CFG_STR, NULL, CFG_EP, .check = CHK_DN, EPOFF(users_base),
     .doc = "Search base for users. Default: the endpoint base."},
    {"users.filter", CFG_STR, DEFAULT_USERS_FILTER, CFG_EP, .check = CHK_FILTER,
     EPOFF(users_filter), .doc = "LDAP filter selecting users."},
    {"users.activity", CFG_OBJ, NULL, CFG_EP,
     .doc = "Dated activity: users count only while start has passed and end has not."},
    {"users.activity.start_attribute", CFG_STR, NULL, CFG_EP, EPOFF(activity_start),
     .doc = "Attribute holding the start date; needs start_format."},
    {"users.activity.start_format", CFG_STR, NULL, CFG_EP,
     .values = "generalized|filetime|unix_days|unix_seconds|date", EPOFF(activity_start_format),
     .doc = "Format of the start date: generalized (GeneralizedTime), filetime (AD), unix_days "
            "(as shadowExpire), unix_seconds, date (ISO 8601). Required with start_attribute: "
            "dates are never guessed."},
    {"users.activity.end_attribute", CFG_STR, NULL, CFG_EP, EPOFF(activity_end),
     .doc = "Attribute holding the end date; missing = no end. Needs end_format."},
    {"users.activity.end_format", CFG_STR, NULL, CFG_EP,
     .values = "generalized|filetime|unix_days|unix_seconds|date", EPOFF(activity_end_format),
     .doc = "Format of the end date (as start_format). Required with end_attribute."},
    {"users.activity.lookahead_days", CFG_INT, "0", CFG_EP, 0, 3650, EPOFF(lookahead_days),
     .doc = "Count users as active this many days before their start date."},
    {"users.disabled", CFG_OBJ, NULL, CFG_EP,
     .doc = "Source (LDAP dialect): which users are disabled there, so that they arrive "
            "disabled and a user disabled later is disabled at the target too. (Active "
            "Directory says it itself: userAccountControl, accountExpires.)"},
    {"users.disabled.attribute", CFG_STR, NULL, CFG_EP, EPOFF(disabled_attr),
     .doc = "Attribute that marks a disabled user, e.g. pwdAccountLockedTime or "
            "nsAccountLock."},
    {"users.disabled.values", CFG_STRLIST, NULL, CFG_EP, EPOFF(disabled_values),
     .doc = "Values of the attribute that mean disabled (case-insensitive). Unset: the "
            "attribute's presence means disabled."},
    {"disable", CFG_OBJ, NULL, CFG_EP,
     .doc = "Target: how a user is disabled there (leavers, users disabled in the source). "
            "LDAP: attribute and value set on the entry (and removed to enable it again), e.g. "
            "pwdAccountLockedTime 000001010000Z with the ppolicy overlay, and/or a container "
            "the entry is moved under; okta: lifecycle."},
    {"disable.attribute", CFG_STR, NULL, CFG_EP, EPOFF(conn.disable_attr),
     .doc = "LDAP target: the attribute that disables an entry."},
    {"disable.value", CFG_STR, NULL, CFG_EP, EPOFF(conn.disable_value),
     .doc = "LDAP target: its value (default TRUE). With the ppolicy overlay, attribute "
            "pwdAccountLockedTime and value 000001010000Z lock the account for good: the "
            "target refuses its binds until dirmig enables it again (removes the lock)."},
    {"disable.container", CFG_STR, NULL, CFG_EP, .check = CHK_DN, EPOFF(conn.disable_container),
     .doc = "LDAP target: a container under target.base (e.g. ou=disabled,dc=example,dc=org) "
            "that disabled users are moved to, keeping their RDN (a rename with newSuperior); "
            "enabled again, a user moves back where the map puts it. Users that arrive "
            "disabled are created there. The journal, group members (the groups dirmig writes, "
            "and member values in other groups, as the refint overlay would), "
            "leavers.delete_after_days, saved plans and rollback follow the move. An entry "
            "with the same RDN already there is an error for that user, never overwritten. "
            "Created (as an organizationalUnit) when missing and target.create_containers "
            "allows; dirmig check reports it. May be combined with disable.attribute: both "
            "are applied."},
    {"groups", CFG_OBJ, NULL, CFG_EP, .doc = "Where the groups are."},
    {"groups.base", CFG_STR, NULL, CFG_EP, .check = CHK_DN, EPOFF(groups_base),
     .doc = "Search base for groups. Default: the endpoint base."},
    {"groups.filter", CFG_STR, DEFAULT_GROUPS_FILTER, CFG_EP, .check = CHK_FILTER,
     EPOFF(groups_filter), .doc = "LDAP filter selecting groups."},
    {"groups.nesting", CFG_STR, "preserve", CFG_EP, .values = "preserve|flatten|flatten_in_chain",
     EPOFF(conn.group_nesting),
     .doc = "Source: \"preserve\" keeps groups as members of groups; \"flatten\" "
            "makes every transitive member a direct member and leaves the groups out, by a "
            "cycle-safe walk (AD: one memberOf search per nested group, with the primary-group "
            "members of every group reached; LDAP: one search for the group DNs, then one read "
            "of each nested group reached); \"flatten_in_chain\" (AD dialect only) does the "
            "same with one in-chain search (rule 1.2.840.113556.1.4.1941), which real AD "
            "answers fast and Samba 4.17 slowly."},
    {"map", CFG_MAP, NULL, 0,
     .doc = "The attribute map: an inline map object, or {\"file\": \"maps/x.json\"}. "
            "Default: copy attributes by name, correlate on entryUUID. See the map "
            "documentation for its keys."},
    {"state", CFG_OBJ, NULL, 0, .doc = "The state journal."},
    {"state.type", CFG_STR, "sqlite", 0, .values = "sqlite|postgresql", CFOFF(state_type),
     .doc = "Where the journal is: \"sqlite\", one file on this machine (state.path); or "
            "\"postgresql\", a PostgreSQL database that several hook servers and agents "
            "share (state.conninfo_file or state.conninfo_env). See POSTGRESQL STATE."},
    {"state.path", CFG_PATH, "dirmig.db", 0, CFOFF(state_path),
     .doc = "type sqlite: the journal file (WAL mode; -wal and -shm files appear beside it, "
            "and PATH.run, the runner lock). Runs keep what undoes their changes beside it in "
            "PATH.undo (mode 0600): it holds credentials (see ROLLBACK in dirmig(1))."},
    {"state.conninfo_file", CFG_PATH, NULL, CFG_SENSITIVE,
     .doc = "type postgresql: file holding the libpq connection string or URI "
            "(host=db.example.org dbname=dirmig user=dirmig password=... or "
            "postgresql://...); it may hold the password, so it must not be accessible by "
            "group or others, and it is never logged."},
    {"state.conninfo_env", CFG_ENV, NULL, CFG_SENSITIVE,
     .doc = "type postgresql: environment variable holding the connection string."},
    {"state.tls", CFG_OBJ, NULL, 0, .doc = "type postgresql: TLS to the database server."},
    {"state.tls.ca_file", CFG_PATH, NULL, 0, CFOFF(state_ca_file),
     .doc = "PEM file of the CAs that sign the database server's certificate (libpq's "
            "sslrootcert). Unset: the system CAs. A server that is not on a Unix socket or a "
            "loopback address is always verified (sslmode verify-full unless the connection "
            "string says verify-full itself; a weaker sslmode is refused)."},
    {"state.connect_timeout_s", CFG_INT, "10", 0, 1, 300, CFOFF(state_connect_timeout_s),
     .doc = "type postgresql: seconds to wait for a connection to the database server."},
    {"state.lock_wait_s", CFG_INT, "0", 0, 0, 86400, CFOFF(state_lock_wait_s),
     .doc = "How long a run waits for another run of the same target to finish (the runner "
            "lock). 0: it stops at once with \"another run in progress on HOST (pid N)\" and "
            "exit status 75; a scheduled run of dirmig agent is then skipped until its next "
            "turn."},
    {"run", CFG_OBJ, NULL, 0, .doc = "Migration run settings."},
    {"run.batch_size", CFG_INT, "500", 0, 1, 10000, CFOFF(batch_size),
     .doc = "Entries per journal transaction and write batch."},
    {"run.progress_interval_s", CFG_INT, "30", 0, 0, 86400, CFOFF(progress_interval_s),
     .doc = "During plan, run and validate (and the agent's scheduled runs), one log line "
            "this often with the phase (users, groups, leavers), done and total, the rate "
            "and the ETA, so that a long run shows it is moving in journald or the log "
            "file; 0 = none. On a terminal the progress line is drawn instead, unless "
            "log.file is set."},
    {"run.dn_attributes", CFG_STRLIST, "member uniqueMember owner manager seeAlso secretary", 0,
     CFOFF(dn_attrs),
     .doc = "DN-valued attributes whose values are moved from the source base to the "
            "target base."},
    {"run.verify_target", CFG_STR, "always", 0, CFOFF(verify_target),
     .doc = "When a run reads the target to compare it with the source (drift, objects "
            "missing at the target): \"always\", \"never\" (trust the journal for objects "
            "whose source did not change), or \"every N runs\". The read of an LDAP target is "
            "one paged search running beside the source read; a target that names objects by "
            "a key (an HTTP API) is asked one request per object. --verify-target forces it for "
            "one run."},
    {"run.collision", CFG_STR, "skip", 0, .values = "skip|link|suffix", CFOFF(collision),
     .doc = "An object already at the target that dirmig did not create: \"skip\" reports it "
            "and writes nothing; \"link\" adopts it only when the map's correlation key or a "
            "fallback rule matches; \"suffix\" creates the new object under a suffixed name."},
    {"run.collision_suffix", CFG_STR, "_new", 0, CFOFF(collision_suffix),
     .doc = "The suffix of run.collision \"suffix\": appended to the user's login before "
            "its '@', to a group name, or to the value of an LDAP entry's first RDN."},
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
    {"hook.tls.min_version", CFG_STR, "1.2", 0, .values = "1.2|1.3", CFOFF(hook.tls_min_version),
     .doc = "Oldest TLS version accepted. Only forward-secret key exchanges (ECDHE, and "
            "TLS 1.3) with AEAD ciphers are offered."},
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
    {"leavers", CFG_OBJ, NULL, 0,
     .doc = "Objects migrated earlier that a complete source read no longer has (deleted, out "
            "of scope, out of their activity window), and the safety limits of every disable "
            "and delete."},
    {"leavers.action", CFG_STR, "disable", 0, .values = "disable|delete|report",
     CFOFF(leavers.action),
     .doc = "What happens to a leaver at the target: disable it (target.disable), delete it, "
            "or only report it."},
    {"leavers.delete_after_days", CFG_INT, "0", 0, 0, 36500, CFOFF(leavers.delete_after_days),
     .doc = "With action disable: delete a leaver this many days after dirmig disabled it "
            "(0 = never)."},
    {"leavers.remove_from_groups", CFG_BOOL, "true", 0, CFOFF(leavers.remove_from_groups),
     .doc = "A leaver leaves every group at the target in the same run."},
    {"leavers.max_deletes", CFG_INT, "500", 0, 0, 100000000, CFOFF(leavers.max_deletes),
     .doc = "At most this many disables and deletes in one run; over it, none is made and the "
            "run is blocked (--allow-deletes N approves one run)."},
    {"leavers.max_delete_percent", CFG_INT, "5", 0, 0, 100, CFOFF(leavers.max_delete_percent),
     .doc = "At most this percentage of the migrated population disabled or deleted in one run "
            "(with max_deletes)."},
    {"leavers.max_shrink_percent", CFG_INT, "10", 0, 0, 100, CFOFF(leavers.max_shrink_percent),
     .doc = "The source health gate: when the population read shrank by more than this against "
            "the last complete read, no disable or delete is made and the run is blocked."},
    {"unmatched_target", CFG_OBJ, NULL, 0,
     .doc = "Accounts only the target has (not created or linked by dirmig): reported; disabled "
            "or deleted only when a filter names them."},
    {"unmatched_target.action", CFG_STR, "report", 0, .values = "report|disable|delete",
     CFOFF(unmatched.action), .doc = "report, disable or delete (the last two need a filter)."},
    {"unmatched_target.filter", CFG_STR, NULL, 0, CFOFF(unmatched.filter),
     .doc = "Which target accounts the action may touch: an LDAP filter (LDAP targets) or a "
            "search expression (okta), evaluated by the target; no account outside it is "
            "ever touched. Unset: report only."},
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

const size_t config_nkeys = DM_ARRAY_LEN(config_keys);

const char *const config_roles[2] = {"source", "target"};

void config_keys_path(char *buf, size_t len, const struct cfg_key *k, int role)
{
    if (k->flags & CFG_EP) {
        snprintf(buf, len, "%s.%s", config_roles[role], k->path);
    } else {
        snprintf(buf, len, "%s", k->path);
    }
}

/* The table entry for a full key path, or NULL. *role gets the endpoint index. */
const struct cfg_key *config_keys_find(const char *path, int *role)
{
    for (size_t i = 0; i < config_nkeys; i++) {
        const struct cfg_key *k = &config_keys[i];
        if (!(k->flags & CFG_EP)) {
            if (strcmp(k->path, path) == 0) {
                *role = 0;
                return k;
            }
            continue;
        }
        for (int r = 0; r < 2; r++) {
            size_t n = strlen(config_roles[r]);
            if (strncmp(path, config_roles[r], n) == 0 && path[n] == '.' &&
                strcmp(path + n + 1, k->path) == 0) {
                *role = r;
                return k;
            }
        }
    }
    return NULL;
}
