#include <config.h>
#include "agent/config.h"
#include "agent/config_priv.h"
#include "agent/state.h"
#include "agent/util/datadir.h"
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
#include <unistd.h>

/*
 * config_load() and config_free(): read the file, parse it, check it (config_validate.c
 * against the table of agent/config_keys.c), build struct dm_config. agent/config_priv.h
 * lists the other files of the module.
 */

#define CONFIG_MAX_BYTES (16u << 20)

#define AD_USERS_FILTER "(&(objectCategory=person)(objectClass=user))"
#define AD_GROUPS_FILTER "(objectClass=group)"

/* ---- small helpers ---- */

int config_pool_add(struct config_priv *cp, void *p)
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

char *config_pool_strdup(struct config_priv *cp, const char *s)
{
    char *p = strdup(s);

    if (config_pool_add(cp, p) != DM_OK) {
        return NULL;
    }
    return p;
}

int config_problem(struct cfg_ctx *x, int rc, const char *text)
{
    x->nerr++;
    if (x->nerr == 1) {
        dm_err_set(x->err, rc, "%s", text);
    }
    if (x->errors != NULL && x->nerr <= CONFIG_MAX_ERRORS) {
        /* a list cut short by the buffer's cap still has the first problem in x->err */
        int brc = buf_printf(x->errors, "%s\n", text);
        (void)brc;
    }
    return rc;
}

/* Reports "origin:line:col: path: msg" at the position of path (or of its nearest
 * existing parent when path is absent). */
int config_fail(struct cfg_ctx *x, const char *path, const char *fmt, ...)
{
    char msg[256], text[700];
    va_list ap;
    int line, col;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    jsonpos_find(x->jp, path, &line, &col);
    snprintf(text, sizeof(text), "%s:%d:%d: %s: %s", x->origin, line, col, path, msg);
    return config_problem(x, DM_EINVAL, text);
}

int config_note(struct cfg_ctx *x, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (x->notes == NULL) {
        return DM_OK;
    }
    return buf_printf(x->notes, "%s: %s\n", path, msg) == DM_ENOMEM ? DM_ENOMEM : DM_OK;
}

const char *config_str_at(json_t *root, const char *path)
{
    json_t *v = config_json_at(root, path);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The value at a dotted path, or NULL when absent or JSON null. */
json_t *config_json_at(json_t *root, const char *path)
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

/* ---- building struct dm_config ---- */

/* A path from the config, resolved against the config file's directory. */
char *config_resolve_path(struct cfg_ctx *x, const char *s)
{
    char *p;
    size_t n;

    if (s[0] == '/' || x->dir == NULL) {
        return config_pool_strdup(x->cp, s);
    }
    n = strlen(x->dir) + strlen(s) + 2;
    p = malloc(n);
    if (p == NULL) {
        return NULL;
    }
    snprintf(p, n, "%s/%s", x->dir, s);
    if (config_pool_add(x->cp, p) != DM_OK) {
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
    if (config_pool_add(x->cp, v) != DM_OK) {
        return NULL;
    }
    if (arr != NULL) {
        for (size_t i = 0; i < n; i++) {
            v[i] = config_pool_strdup(x->cp, json_string_value(json_array_get(arr, i)));
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
            v[n] = config_pool_strdup(x->cp, p);
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

int config_fill_key(struct cfg_ctx *x, const struct cfg_key *k, int role)
{
    struct dm_config *c = &x->cp->pub;
    char path[128];
    char *base, *s = NULL;
    json_t *v;
    int iv;
    char **list;

    config_keys_path(path, sizeof(path), k, role);
    v = config_json_at(x->root, path);
    base = k->where == AT_EP ? (char *)(role == 0 ? &c->source : &c->target) : (char *)c;
    switch (k->type) {
    case CFG_STR:
    case CFG_PATH:
        if (v != NULL) {
            s = k->type == CFG_PATH ? config_resolve_path(x, json_string_value(v))
                                    : config_pool_strdup(x->cp, json_string_value(v));
        } else if (k->def != NULL) {
            s = k->type == CFG_PATH ? config_resolve_path(x, k->def)
                                    : config_pool_strdup(x->cp, k->def);
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
        if (v == NULL && k->def == NULL) {
            list = NULL; /* unset, and no default: NULL */
            memcpy(base + k->off, &list, sizeof(list));
            return DM_OK;
        }
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

/* The map file named at "map.file": beside the config, else (relative) in the data
 * directory. NULL when out of memory; the first candidate when neither exists. */
static char *find_map_file(struct cfg_ctx *x, const char *given)
{
    char *path = config_resolve_path(x, given);
    char *data;

    if (path == NULL || given[0] == '/' || access(path, F_OK) == 0) {
        return path;
    }
    data = datadir_find(given);
    if (data != NULL && config_pool_add(x->cp, data) == DM_OK) {
        return data;
    }
    return path;
}

static int load_map(struct cfg_ctx *x)
{
    struct config_priv *cp = x->cp;
    json_t *m = config_json_at(x->root, "map");
    json_t *file = m != NULL ? json_object_get(m, "file") : NULL;
    struct dm_err e = {0};
    const char *origin;
    struct buf lines;
    char *path;
    int rc;

    buf_init(&lines, 1 << 20);
    if (m == NULL) {
        rc = map_default(&cp->pub.map, &e);
        origin = "default (by-name)";
    } else if (!json_is_object(m)) {
        return DM_EINVAL; /* reported by config_validate() */
    } else if (file != NULL && json_object_size(m) == 1) {
        if (!json_is_string(file) || json_string_length(file) == 0) {
            return config_fail(x, "map.file", "must be a non-empty string");
        }
        path = find_map_file(x, json_string_value(file));
        if (path == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config strings");
        }
        /* a map that cannot be read is an error at the place that names it */
        if (access(path, R_OK) != 0) {
            return config_fail(x, "map.file", "%s: %s", path, strerror(errno));
        }
        rc = map_load_file_all(&cp->pub.map, path, &lines, &e);
        origin = path;
    } else {
        rc = map_compile_all(&cp->pub.map, m, x->origin, x->jp, "map", &lines, &e);
        origin = "inline";
    }
    if (rc == DM_ENOMEM) {
        buf_free(&lines);
        return dm_err_set(x->err, rc, "%s", e.msg);
    }
    if (rc != DM_OK) {
        /* every problem of the map, each with its own place */
        for (char *p = lines.data; p != NULL && *p != '\0';) {
            size_t n = strcspn(p, "\n");
            char c = p[n];

            p[n] = '\0';
            config_problem(x, DM_EINVAL, p);
            p += n + (c == '\n');
        }
        if (lines.len == 0) {
            config_problem(x, DM_EINVAL, e.msg);
        }
        buf_free(&lines);
        return DM_EINVAL;
    }
    buf_free(&lines);
    cp->map_origin = config_pool_strdup(cp, origin);
    if (cp->map_origin == NULL) {
        return dm_err_set(x->err, DM_ENOMEM, "config strings");
    }
    return DM_OK;
}

/* run.verify_target ("always", "never", "every N runs") and the activity formats. */
static int build_run(struct cfg_ctx *x)
{
    struct dm_config *c = &x->cp->pub;
    const char *v = c->verify_target;
    const struct config_endpoint *s = &c->source;
    long n;
    char *end;

    if (strcmp(v, "always") == 0) {
        c->verify_every = 1;
    } else if (strcmp(v, "never") == 0) {
        c->verify_every = 0;
    } else if (strncmp(v, "every ", 6) == 0 && (n = strtol(v + 6, &end, 10)) >= 1 && n <= 100000 &&
               (strcmp(end, " runs") == 0 || strcmp(end, " run") == 0)) {
        c->verify_every = (int)n;
    } else {
        return config_fail(x, "run.verify_target",
                           "must be \"always\", \"never\" or \"every N runs\" (N 1..100000)");
    }
    if ((s->activity_start != NULL) != (s->activity_start_format != NULL)) {
        return config_fail(x,
                           s->activity_start ? "source.users.activity.start_attribute"
                                             : "source.users.activity.start_format",
                           "start_attribute and start_format go together (dates are never "
                           "guessed: name the format)");
    }
    if (c->unmatched.filter == NULL && strcmp(c->unmatched.action, "report") != 0) {
        return config_fail(x, "unmatched_target.action",
                           "%s needs unmatched_target.filter: no account only the target has is "
                           "touched unless a filter names it",
                           c->unmatched.action);
    }
    if (s->disabled_values != NULL && s->disabled_attr == NULL) {
        return config_fail(x, "source.users.disabled.values", "needs users.disabled.attribute");
    }
    if (c->target.conn.disable_value != NULL && c->target.conn.disable_attr == NULL) {
        return config_fail(x, "target.disable.value", "needs target.disable.attribute");
    }
    if (c->target.conn.disable_attr != NULL && c->target.conn.disable_value == NULL) {
        c->target.conn.disable_value = "TRUE";
    }
    if ((s->activity_end != NULL) != (s->activity_end_format != NULL)) {
        return config_fail(x,
                           s->activity_end ? "source.users.activity.end_attribute"
                                           : "source.users.activity.end_format",
                           "end_attribute and end_format go together (dates are never "
                           "guessed: name the format)");
    }
    return DM_OK;
}

const char *config_map_origin(const struct dm_config *c)
{
    const struct config_priv *cp = (const struct config_priv *)c;

    return cp->map_origin != NULL ? cp->map_origin : "?";
}

/* Files the config names that dirmig reads as they are (not secrets): they must be there
 * and readable, or (offline) be noted as missing on this machine. */
static int check_files(struct cfg_ctx *x)
{
    static const char *const keys[] = {"source.tls.ca_file", "target.tls.ca_file",
                                       "hook.tls.cert_file", "hook.tls.key_file",
                                       "state.tls.ca_file"};
    int rc = DM_OK;

    for (size_t i = 0; i < DM_ARRAY_LEN(keys) && rc != DM_ENOMEM; i++) {
        const char *given = config_str_at(x->root, keys[i]);
        char *path;

        if (given == NULL) {
            continue;
        }
        path = config_resolve_path(x, given);
        if (path == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config strings");
        }
        if (access(path, R_OK) == 0) {
            continue;
        }
        if (x->offline && errno == ENOENT) {
            rc = config_note(x, keys[i], "%s: not on this machine", path);
        } else {
            rc = config_fail(x, keys[i], "%s: %s", path, strerror(errno));
        }
    }
    return rc;
}

/* Copies the table's keys into struct dm_config, applies the dialect defaults, loads the
 * secrets. Runs only on a config without problems so far (every value has its type). */
static int build(struct cfg_ctx *x)
{
    struct dm_config *c = &x->cp->pub;
    json_t *lvl;
    int rc;

    for (size_t i = 0; i < config_nkeys; i++) {
        int n = (config_keys[i].flags & CFG_EP) ? 2 : 1;
        if (config_keys[i].where == AT_NONE) {
            continue;
        }
        for (int r = 0; r < n; r++) {
            rc = config_fill_key(x, &config_keys[i], r);
            if (rc != DM_OK) {
                return rc;
            }
        }
    }
    lvl = config_json_at(x->root, "log.level");
    c->log_level = log_level_parse(lvl != NULL ? json_string_value(lvl) : "info");
    for (int r = 0; r < 2; r++) {
        struct config_endpoint *ep = r == 0 ? &c->source : &c->target;
        ep->conn.role = config_roles[r];
        if (ep->users_base == NULL) {
            ep->users_base = (char *)ep->conn.base;
        }
        if (ep->groups_base == NULL) {
            ep->groups_base = (char *)ep->conn.base;
        }
        if (ep->conn.dialect != NULL && strcmp(ep->conn.dialect, "ad") == 0) {
            /* AD has no inetOrgPerson/groupOfNames: its own defaults unless set */
            char path[32];
            snprintf(path, sizeof(path), "%s.users.filter", config_roles[r]);
            if (config_json_at(x->root, path) == NULL) {
                ep->users_filter = config_pool_strdup(x->cp, AD_USERS_FILTER);
            }
            snprintf(path, sizeof(path), "%s.groups.filter", config_roles[r]);
            if (config_json_at(x->root, path) == NULL) {
                ep->groups_filter = config_pool_strdup(x->cp, AD_GROUPS_FILTER);
            }
            if (ep->users_filter == NULL || ep->groups_filter == NULL) {
                return dm_err_set(x->err, DM_ENOMEM, "out of memory");
            }
        }
        rc = config_conn_build(x, r);
        if (rc != DM_OK) {
            return rc;
        }
        /* each secret on its own, so that every bad one is reported */
        for (int tok = 0; tok < 2; tok++) {
            rc = config_load_endpoint_secret(x, r, tok);
            if (rc == DM_ENOMEM) {
                return rc;
            }
        }
    }
    rc = build_run(x);
    if (rc != DM_OK) {
        return rc;
    }
    if (c->hook.search_base == NULL) {
        c->hook.search_base = c->source.users_base;
    }
    c->hook.enabled = config_json_at(x->root, "hook") != NULL;
    rc = config_load_hook_secret(x);
    if (rc == DM_ENOMEM) {
        return rc;
    }
    rc = config_load_state_secret(x);
    return rc == DM_ENOMEM ? rc : DM_OK;
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
    return config_load_all(out, path, NULL, err);
}

int config_load_all(struct dm_config **out, const char *path, const struct config_load_opts *o,
                    struct dm_err *err)
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
    cp->present = calloc(config_nkeys, sizeof(*cp->present));
    if (cp->present == NULL) {
        free(cp);
        return dm_err_set(err, DM_ENOMEM, "config");
    }
    x.cp = cp;
    x.origin = path;
    x.err = err;
    if (o != NULL) {
        x.offline = o->offline;
        x.errors = o->errors;
        x.notes = o->notes;
    }
    cp->pub.path = config_pool_strdup(cp, path);
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
    /* Every stage that can run on what is known so far runs, so that one load lists
     * every problem: the table, the waves, the files, the map; then (when all of that is
     * right) the values are copied and the secrets loaded. */
    rc = config_validate(&x);
    if (rc != DM_ENOMEM) {
        rc = config_parse_waves(&x);
    }
    if (rc != DM_ENOMEM) {
        rc = check_files(&x);
    }
    if (rc != DM_ENOMEM) {
        rc = load_map(&x);
    }
    if (rc != DM_ENOMEM && x.nerr == 0) {
        rc = build(&x);
    }
    if (rc == DM_ENOMEM) {
        goto done;
    }
    if (x.nerr > 0) {
        if (x.errors != NULL && x.nerr > CONFIG_MAX_ERRORS) {
            rc = buf_printf(x.errors, "... and %zu more\n", x.nerr - CONFIG_MAX_ERRORS);
            (void)rc;
        }
        rc = DM_EINVAL;
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
    secret_free(c->state_conninfo);
    map_free(c->map);
    for (size_t i = 0; i < cp->npool; i++) {
        free(cp->pool[i]);
    }
    free(cp->pool);
    free(cp->present);
    free(cp);
}

void config_state_where(struct state_where *out, const struct dm_config *c)
{
    memset(out, 0, sizeof(*out));
    out->type = c->state_type;
    out->path = c->state_path;
    out->conninfo = c->state_conninfo;
    out->ca_file = c->state_ca_file;
    out->connect_timeout_s = c->state_connect_timeout_s;
}

static int state_is_pg(const struct dm_config *c)
{
    return c->state_type != NULL && strcmp(c->state_type, "postgresql") == 0;
}

int config_state_exists(const struct dm_config *c)
{
    return state_is_pg(c) || access(c->state_path, F_OK) == 0;
}

const char *config_state_name(const struct dm_config *c)
{
    return state_is_pg(c) ? "postgresql (state.conninfo)" : c->state_path;
}
