/*
 * agent/config_priv.h: what the files of config_load() share, and nothing else includes
 * (agent/config.h is the public contract).
 *
 *   agent/config.c           config_load(), config_free(): read, check, build, the pool of
 *                            owned strings, file:line:col errors
 *   agent/config_keys.c      the key table (agent/config_keys.h)
 *   agent/config_check.c     checks of single values that need no context (config_check.h)
 *   agent/config_validate.c  the parsed JSON against the table and the rules that involve
 *                            several keys (endpoint, hook)
 *   agent/config_secret.c    the secrets the config references (*_file, *_env)
 *   agent/config_waves.c     the "waves" array
 *   agent/config_describe.c  config_describe() and config_print_keys()
 *   agent/config_conn.c      the keys and rules each endpoint's connector registers
 *
 * Call order inside config_load(): read the file, parse it (jansson, positions by
 * jsonpos), config_validate(), then build: the table's keys copied by one loop, the
 * endpoint secrets, the hook secret, config_parse_waves(), the map. Every string the
 * config keeps is in the pool (config_pool_add()) and freed by config_free().
 */
#ifndef DM_CONFIG_PRIV_H
#define DM_CONFIG_PRIV_H

#include <jansson.h>
#include "agent/config.h"
#include "agent/config_keys.h"
#include "agent/util/attrs.h"
#include "agent/util/jsonpos.h"

/* The public struct plus what config_free needs: every string and list it owns. */
struct config_priv {
    struct dm_config pub;
    void **pool;
    size_t npool, cappool;
    unsigned char (*present)[2];   /* config_nkeys rows: key given in the file (per endpoint) */
    char *map_origin;              /* "default", "inline", or the map file path */
    unsigned char cpresent[2][32]; /* the endpoint connector's keys given in the file */
};

struct cfg_ctx {
    struct config_priv *cp;
    const char *origin; /* the config path as given */
    char *dir;          /* its directory, NULL when it has none */
    json_t *root;
    struct jsonpos *jp;
    struct dm_err *err; /* the first problem */
    size_t nerr;        /* problems found so far */
    struct buf *errors; /* every problem, one a line (may be NULL) */
    int offline;        /* struct config_load_opts */
    struct buf *notes;  /* offline notes (may be NULL) */
};

/* ---- config.c ---- */

/* Takes p (NULL: DM_ENOMEM) into the pool freed by config_free(); on failure p is freed. */
int config_pool_add(struct config_priv *cp, void *p) DM_MUST_USE;
/* strdup() into the pool; NULL when out of memory. */
char *config_pool_strdup(struct config_priv *cp, const char *s);
/* A path from the config, resolved against the config file's directory (in the pool);
 * NULL when out of memory. */
char *config_resolve_path(struct cfg_ctx *x, const char *s);
/* Records the problem "origin:line:col: path: msg" at the position of path (or of its
 * nearest existing parent when path is absent) and returns DM_EINVAL. The callers go on
 * checking what does not depend on the bad value, so that one load reports every problem. */
int config_fail(struct cfg_ctx *x, const char *path, const char *fmt, ...) DM_PRINTF(3, 4);
/* Records a problem already formatted (e.g. by the map engine, with its own file's
 * position) and returns rc. */
int config_problem(struct cfg_ctx *x, int rc, const char *text);
/* Appends one offline note ("path: what is missing"). Returns DM_OK or DM_ENOMEM. */
int config_note(struct cfg_ctx *x, const char *path, const char *fmt, ...) DM_PRINTF(3, 4);
/* A string value at path, or NULL when absent, null or not a string (already reported). */
const char *config_str_at(json_t *root, const char *path);
/* The value at a dotted path ("source.tls.ca_file"), or NULL when absent or JSON null.
 * Borrowed from root. */
json_t *config_json_at(json_t *root, const char *path);

/* ---- config_validate.c ---- */

/* Checks x->root against the key table (unknown keys with a "did you mean", inline
 * secrets, types, ranges, allowed values, shapes, required keys), then the endpoint rules
 * (keys that do nothing for the endpoint's role, type or dialect are refused) and the hook
 * rules; marks the keys present in x->cp->present. Reports every problem (config_fail())
 * and returns DM_EINVAL when there was one. */
int config_validate(struct cfg_ctx *x) DM_MUST_USE;

/* Checks one value against its table key (type, range, allowed values, shape). */
int config_validate_value(struct cfg_ctx *x, const struct cfg_key *k, const char *path,
                          json_t *v) DM_MUST_USE;

/* ---- config.c ---- */

/* Copies the value of k for endpoint role (or its default) into struct dm_config. */
int config_fill_key(struct cfg_ctx *x, const struct cfg_key *k, int role) DM_MUST_USE;

/* ---- config_describe.c ---- */

/* Writes one key of dirmig.json(5); types: "only for type ..." text or NULL. */
void config_print_key(FILE *out, const struct cfg_key *k, const char *types);

/* ---- config_conn.c ---- */

/* The connector of endpoint r (0 source, 1 target) by its "type"; NULL if unknown. */
const struct conn_ops *config_ep_ops(struct cfg_ctx *x, int r);
/* A connector key as a table key (CFG_EP). */
void config_conn_key(struct cfg_key *out, const struct conn_key *ck);
/* A key the table does not know: when it is a key of the endpoint's connector, checks it
 * (*handled = 1); when another connector takes it, fails naming those types (*handled = 1);
 * else *handled = 0 (an unknown key). */
int config_conn_validate_key(struct cfg_ctx *x, const char *path, json_t *v,
                             int *handled) DM_MUST_USE;
/* The endpoint's role (may this type be a source / a target), the connector's required keys
 * and its config_check(). */
int config_conn_check(struct cfg_ctx *x, int r) DM_MUST_USE;
/* Copies the connector's keys of endpoint r into conn_cfg (fields, or conn_cfg.opts). */
int config_conn_build(struct cfg_ctx *x, int r) DM_MUST_USE;
/* config_describe() lines and dirmig.json(5) entries of the connectors' keys. */
int config_conn_describe(const struct config_priv *cp, int r, struct buf *out) DM_MUST_USE;
void config_conn_print_keys(FILE *out);

/* ---- config_secret.c ---- */

/* Loads the bind password (tok 0) or the API token (tok 1) of endpoint r (0 source,
 * 1 target) from its *_file or *_env key, when one is given; sets conn.bind_pw and
 * conn.token. Offline (x->offline) nothing is read: a file that is there must have a safe
 * mode, a missing file or unset variable is a note. */
int config_load_endpoint_secret(struct cfg_ctx *x, int r, int tok) DM_MUST_USE;
/* Loads hook.secret_file or hook.secret_env, when one is given. */
int config_load_hook_secret(struct cfg_ctx *x) DM_MUST_USE;
/* Loads state.conninfo_file or state.conninfo_env, when one is given. */
int config_load_state_secret(struct cfg_ctx *x) DM_MUST_USE;

/* ---- config_waves.c ---- */

/* Parses "waves" into x->cp->pub.waves / nwaves (nothing when absent); reports every
 * bad wave. */
int config_parse_waves(struct cfg_ctx *x) DM_MUST_USE;

#endif
