/*
 * config.h: dirmig.json, read with jansson and checked against one key table
 * (agent/config_keys.c), which also writes dirmig.json(5).
 *
 * config_load() parses the file, checks every key against the documented schema (unknown
 * keys, wrong types, missing required keys, out-of-range values, keys that do nothing for
 * the endpoint they are on), loads the secrets the config references (`*_file` / `*_env`,
 * never inline), checks that the files it names exist (CA file, hook certificate and
 * key), compiles the attribute map, and returns a ready config. Every error names the
 * place:
 *     dirmig.json:12:5: source.page_size: must be 1..10000
 *     dirmig.json:3:9: source.pgae_size: unknown key (did you mean "page_size"?)
 *     dirmig.json:14:18: map.file: maps/x.json: No such file or directory
 *     maps/x.json:7:13: users.attributes.mail.transforms[0]: unknown transform "lowr" ...
 * (an error inside a referenced file has that file's position; an error about the
 * reference itself has the position of the key in dirmig.json) and is DM_EINVAL (the CLI
 * exits EX_CONFIG). Loading does not stop at the first error: config_load_all() returns
 * every one (up to CONFIG_MAX_ERRORS), config_load() the first.
 *
 * A relative path inside the config (state path, secret files, CA file) is resolved
 * against the config file's directory. A relative map.file that is not there is looked
 * up in dirmig's data directory (agent/util/datadir.h), so "maps/ad-to-okta.json" names
 * the starter map both installed and in the build tree.
 *
 * Sections (doc/dirmig.json.5 has every key):
 *   source, target   endpoint settings -> struct conn_cfg, plus users/groups scopes
 *   map              inline map object, or {"file": "maps/x.json"}; default by-name
 *   state            {"path": "dirmig.db"}
 *   run              {"batch_size": 500, "dn_attributes": [...]}
 *   log              {"level": "info", "json": false, "file": null}
 *   hook             the password-import hook server -> struct config_hook
 *   reconcile        the agent daemon's schedule -> struct config_reconcile
 *   credentials      reserved for a later issue (accepted as an object)
 */
#ifndef DM_CONFIG_H
#define DM_CONFIG_H

#include <stdio.h>
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "agent/util/secret.h"
#include "connectors/connector.h"
#include "schema/map.h"

struct config_endpoint {
    struct conn_cfg conn;   /* strings point into this config */
    struct secret *bind_pw; /* owned; conn.bind_pw points here */
    struct secret *token;   /* owned (type okta); conn.token points here */
    char *users_base;       /* default: conn.base */
    char *users_filter;     /* default "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))" */
    char *activity_start;   /* dated activity (users): start attribute, or NULL */
    char *activity_end;     /* end attribute, or NULL */
    char *activity_start_format; /* agent/activity.h format names; set with the attribute */
    char *activity_end_format;
    int create_containers;  /* target: create missing containers (OUs), default 1 */
    char *disabled_attr;    /* source: the attribute that marks a disabled user, or NULL */
    char **disabled_values; /* NULL-terminated values meaning disabled; NULL = presence */
    int lookahead_days;     /* active this many days before the start */
    char *groups_base;      /* default: conn.base */
    char *groups_filter;    /* default: groupOfNames, groupOfUniqueNames or posixGroup */
    int delta;              /* source: delta reads (agent/delta.h) */
};

/* The password-import hook server (`dirmig hook`, agent/hook.h). Strings point into the
 * config. The secret is required by the server, not by config_load(): a config without a
 * hook section (or with an empty one) is valid for every other command. */
struct config_hook {
    int enabled;         /* the config has a hook section (dirmig agent serves it) */
    char *listen;        /* "127.0.0.1:8443", "[::1]:8443", "0.0.0.0:8443" */
    char *path;          /* Okta password import, default "/okta/password-import" */
    char *generic_path;  /* {"username","password"} -> {"verified":bool}, "/verify" */
    char *tls_cert_file; /* PEM; required unless plain_http */
    char *tls_key_file;
    int plain_http;        /* only with a loopback listen address */
    char *auth_header;     /* default "Authorization" */
    struct secret *secret; /* owned; NULL when neither secret_file nor secret_env */
    int deadline_ms;       /* answer UNVERIFIED after this, default 2000 */
    char **login_attrs;    /* NULL-terminated, default uid */
    char *dn_template;     /* "uid={login},ou=people,..." instead of a search */
    char *search_base;     /* default: source users base */
    int max_failures;      /* per account and window, default 5 */
    int failure_window_s;  /* default 900 */
    int max_concurrency;   /* verifications in flight, default 64 */
    int max_body;          /* bytes, default 16384 */
    int threads;           /* 0 (default) = one thread per connection, verifying
                            * inline; N = an epoll pool of N threads plus workers */
    int pool_size;         /* LDAP connections per pool (search, bind), default 32 */
    int request_timeout_s; /* idle connection cut-off, default 10 */
    /* an attacker at the hook: budgets, connections, TLS, monitoring, AD, lazy migration */
    int max_failures_per_client;    /* per client address and window, default 50 */
    int max_failures_total;         /* all failures per window, default 2000 */
    int source_lockout_threshold;   /* 0 = read it from the source */
    int request_read_ms;            /* a whole request must arrive within this, default 5000 */
    int max_connections;            /* open connections, default 512 */
    int max_connections_per_client; /* per client address, default 128 */
    char *tls_min_version;          /* "1.2" (default) or "1.3" */
    char *monitor_listen;           /* /healthz and /metrics here only; NULL = on listen */
    int monitor_plain_http;         /* plain HTTP on monitor_listen (loopback only) */
    int old_password_window_s;      /* AD: refuse a password changed this recently; 0 = off */
    int lazy_migration;             /* write verified passwords to the LDAP target */
    int rehash;                     /* replace a weak target hash after a verified sign-in */
    char *hash_scheme;              /* "ARGON2" (default) or "PBKDF2-SHA512" */
    int argon2_memory_kib;          /* default 19456 */
    int argon2_iterations;          /* default 2 */
    int pbkdf2_iterations;          /* default 210000 */
};

/* The schedule of `dirmig agent` (agent/daemon.h): create/update runs every interval_s
 * (0 = none), each delayed by up to jitter_s, the first one at start-up if run_at_start.
 * After max_failures_before_backoff failed runs in a row the delay doubles per further
 * failure, up to max_backoff_s (but never below interval_s). */
struct config_reconcile {
    int interval_s;
    int jitter_s;
    int run_at_start;
    int max_failures_before_backoff;
    int max_backoff_s;
};

/* One migration wave (waves[] in dirmig.json): users selected by exactly one of an LDAP
 * filter (ANDed with the users filter), membership in a group (DN), or an OU (DN, used as
 * the search base). groups = 1 also migrates the groups in that run. */
struct config_wave {
    char *name;
    char *filter;
    char *group;
    char *ou;
    int groups;
};

/* Leavers and the safety limits of disables and deletes (agent/leavers.h). */
struct config_leavers {
    char *action; /* "disable", "delete" or "report" */
    int delete_after_days;
    int remove_from_groups;
    int max_deletes, max_delete_percent, max_shrink_percent;
};

/* Accounts only the target has. */
struct config_unmatched {
    char *action; /* "report", "disable" or "delete" */
    char *filter; /* evaluated by the target; NULL = report only */
};

struct dm_config {
    char *path; /* as given */
    struct config_endpoint source;
    struct config_endpoint target;
    struct map *map;               /* compiled; never NULL after load */
    char *state_path;              /* default "dirmig.db" beside the config */
    char *state_type;              /* "sqlite" or "postgresql" */
    struct secret *state_conninfo; /* owned; postgresql */
    char *state_ca_file;
    int state_connect_timeout_s;
    int state_lock_wait_s;
    int batch_size;         /* 1..10000, default 500 */
    char **dn_attrs;        /* NULL-terminated; DN-valued attrs rebased to the target
                             * base; default member uniqueMember owner manager
                             * seeAlso secretary */
    char *verify_target;    /* run.verify_target as written */
    int verify_every;       /* 1 = every run, 0 = never, N = every N runs */
    char *collision;        /* run.collision: "skip", "link" or "suffix" */
    char *collision_suffix; /* run.collision_suffix, default "_new" */
    char **member_attrs;    /* NULL-terminated; DN-valued membership attrs resolved
                             * through the journal; default member uniqueMember */
    int log_level;          /* enum log_level */
    int log_json;
    char *log_file;            /* NULL = stderr */
    char **validate_blocking;  /* NULL-terminated problem categories that block */
    int validate_examples;     /* examples per category in the validate summary */
    struct config_wave *waves; /* nwaves entries */
    size_t nwaves;
    char digest[65];         /* SHA-256 of the file bytes */
    int progress_interval_s; /* run.progress_interval_s: a progress log line this often */
    struct config_hook hook;
    struct config_reconcile reconcile;
    struct config_leavers leavers;
    struct config_unmatched unmatched;
};

/* Loads and checks path. Returns a new config; caller frees with config_free(). On
 * failure err holds the first problem. */
int config_load(struct dm_config **out, const char *path, struct dm_err *err) DM_MUST_USE;

/* At most this many problems are listed by config_load_all(). */
#define CONFIG_MAX_ERRORS 20

/* What config_load_all() does besides config_load(). */
struct config_load_opts {
    int offline;        /* `check --offline`: no secret is read; a secret file is checked for
                         * its mode when present, and a secret, CA or certificate file that is
                         * not on this machine (or an unset *_env variable) is a note, not an
                         * error. The config's secrets stay NULL: it cannot be used to bind. */
    struct buf *errors; /* every problem, one line each: at most CONFIG_MAX_ERRORS, then a
                         * line "... and N more"; may be NULL */
    struct buf *notes;  /* offline: what this machine lacks, one line each; may be NULL */
};

/* config_load() that reports every problem it finds into o->errors (err still gets the
 * first). o may be NULL. */
int config_load_all(struct dm_config **out, const char *path, const struct config_load_opts *o,
                    struct dm_err *err) DM_MUST_USE;

/* The map file as found (absolute or relative to the cwd), "inline" or "default
 * (by-name)". Borrowed. */
const char *config_map_origin(const struct dm_config *c);
void config_free(struct dm_config *c); /* NULL-safe; wipes secrets */

struct state_where;
/* Where the journal is, for state_open_cfg() (strings borrowed from c). */
void config_state_where(struct state_where *out, const struct dm_config *c);
/* 0 when the journal is a SQLite file that does not exist yet (nothing has run), else 1. */
int config_state_exists(const struct dm_config *c);
/* The journal for messages: the SQLite file, or "postgresql (state.conninfo)". */
const char *config_state_name(const struct dm_config *c);

/* Appends a human description of the effective config to out; SENSITIVE keys as ***. */
int config_describe(const struct dm_config *c, struct buf *out) DM_MUST_USE;

/* Writes the key table as a man-page section (for doc/dirmig.json.5). */
void config_print_keys(FILE *out);

#endif
