/*
 * agent/config_conn.c: the keys and rules each connector registers for its endpoint
 * (conn_ops.keys and conn_ops.config_check, connectors/connector.h), checked, copied,
 * described and documented like the keys of the one key table. The config module
 * knows no connector: it asks the endpoint's connector, found by its "type".
 */
#include <config.h>
#include "agent/config_priv.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_MAX_KEYS 32

const struct conn_ops *config_ep_ops(struct cfg_ctx *x, int r)
{
    char p[32];
    json_t *t;

    snprintf(p, sizeof(p), "%s.type", config_roles[r]);
    t = config_json_at(x->root, p);
    return conn_find(t != NULL && json_is_string(t) ? json_string_value(t) : "ldap");
}

/* The conn_key as a table key of an endpoint (CFG_EP; a field of struct conn_cfg, which
 * struct config_endpoint starts with, or none). */
void config_conn_key(struct cfg_key *out, const struct conn_key *ck)
{
    static const enum cfg_type types[] = {
        [CONN_KEY_STR] = CFG_STR, [CONN_KEY_PATH] = CFG_PATH, [CONN_KEY_ENV] = CFG_ENV,
        [CONN_KEY_INT] = CFG_INT, [CONN_KEY_BOOL] = CFG_BOOL,
    };

    memset(out, 0, sizeof(*out));
    out->path = ck->path;
    out->type = types[ck->type];
    out->def = ck->def;
    out->flags = CFG_EP | ((ck->flags & CONN_KEY_REQUIRED) ? CFG_REQUIRED : 0) |
                 ((ck->flags & CONN_KEY_SENSITIVE) ? CFG_SENSITIVE : 0);
    out->min = ck->min;
    out->max = ck->max;
    out->values = ck->values;
    out->where = ck->off == CONN_KEY_OPT ? AT_NONE : AT_EP;
    out->off = ck->off == CONN_KEY_OPT ? 0 : offsetof(struct config_endpoint, conn) + ck->off;
    out->doc = ck->doc;
}

static const struct conn_key *find_key(const struct conn_ops *ops, const char *rel, size_t *idx)
{
    for (size_t i = 0; ops != NULL && ops->keys != NULL && ops->keys[i].path != NULL; i++) {
        if (strcmp(ops->keys[i].path, rel) == 0) {
            if (idx != NULL) {
                *idx = i;
            }
            return &ops->keys[i];
        }
    }
    return NULL;
}

int config_conn_validate_key(struct cfg_ctx *x, const char *path, json_t *v, int *handled)
{
    const struct conn_ops *ops, *const *all = conn_all();
    const struct conn_key *ck;
    struct cfg_key k;
    char types[160] = "";
    size_t idx = 0, n = 0;
    int r;

    *handled = 0;
    for (r = 0; r < 2; r++) {
        size_t len = strlen(config_roles[r]);
        if (strncmp(path, config_roles[r], len) == 0 && path[len] == '.') {
            break;
        }
    }
    if (r == 2) {
        return DM_OK;
    }
    ops = config_ep_ops(x, r);
    ck = find_key(ops, path + strlen(config_roles[r]) + 1, &idx);
    if (ck == NULL) {
        /* a key of another connector: say which types take it */
        for (size_t i = 0; all[i] != NULL; i++) {
            if (find_key(all[i], path + strlen(config_roles[r]) + 1, NULL) != NULL) {
                n += (size_t)snprintf(types + n, n < sizeof(types) ? sizeof(types) - n : 0, "%s%s",
                                      n ? ", " : "", all[i]->name);
            }
        }
        if (n == 0) {
            return DM_OK;
        }
        *handled = 1;
        return config_fail(x, path, "does nothing here: only with type %s", types);
    }
    *handled = 1;
    if (json_is_null(v)) {
        return DM_OK;
    }
    if (idx < CONN_MAX_KEYS) {
        x->cp->cpresent[r][idx] = 1;
    }
    config_conn_key(&k, ck);
    return config_validate_value(x, &k, path, v);
}

/* ---- the connector's own rules ---- */

struct view {
    struct cfg_ctx *x;
    int r;
    char num[32];
};

static const char *view_get(void *ctx, const char *rel)
{
    struct view *w = ctx;
    char p[160];
    json_t *v;

    snprintf(p, sizeof(p), "%s.%s", config_roles[w->r], rel);
    v = config_json_at(w->x->root, p);
    if (v == NULL) {
        return NULL;
    }
    if (json_is_string(v)) {
        return json_string_value(v);
    }
    if (json_is_boolean(v)) {
        return json_is_true(v) ? "true" : "false";
    }
    if (json_is_integer(v)) {
        snprintf(w->num, sizeof(w->num), "%lld", (long long)json_integer_value(v));
        return w->num;
    }
    return "";
}

static int view_fail(void *ctx, const char *rel, const char *msg)
{
    struct view *w = ctx;
    char p[160];

    snprintf(p, sizeof(p), "%s.%s", config_roles[w->r], rel);
    return config_fail(w->x, p, "%s", msg);
}

int config_conn_check(struct cfg_ctx *x, int r)
{
    const struct conn_ops *ops = config_ep_ops(x, r), *const *all = conn_all();
    struct view w = {x, r, ""};
    struct conn_cfgcheck c;
    char p[32], what[256] = "";
    size_t n = 0;

    snprintf(p, sizeof(p), "%s.type", config_roles[r]);
    if (ops == NULL) {
        return config_fail(x, p, "unknown connector type");
    }
    if (r == 0 && !(ops->caps & CONN_SOURCE)) {
        for (size_t i = 0; all[i] != NULL; i++) {
            if (all[i]->caps & CONN_SOURCE) {
                n += (size_t)snprintf(what + n, n < sizeof(what) ? sizeof(what) - n : 0, "%s%s",
                                      n ? " or " : "", all[i]->what);
            }
        }
        return config_fail(x, p, "%s is a target type; the source must be %s", ops->name, what);
    }
    if (r == 1 && !(ops->caps & CONN_WRITE)) {
        return config_fail(x, p, "%s cannot be written to; it is a source type", ops->name);
    }
    for (size_t i = 0; ops->keys != NULL && ops->keys[i].path != NULL; i++) {
        if ((ops->keys[i].flags & CONN_KEY_REQUIRED) && view_get(&w, ops->keys[i].path) == NULL) {
            return view_fail(&w, ops->keys[i].path, "required key is missing");
        }
    }
    if (ops->config_check == NULL) {
        return DM_OK;
    }
    c.role = config_roles[r];
    c.type = ops->name;
    c.ctx = &w;
    c.get = view_get;
    c.fail = view_fail;
    return ops->config_check(&c);
}

/* ---- copying the values ---- */

int config_conn_build(struct cfg_ctx *x, int r)
{
    const struct conn_ops *ops = config_ep_ops(x, r);
    struct config_endpoint *ep = r == 0 ? &x->cp->pub.source : &x->cp->pub.target;
    struct conn_opt *opts;
    size_t n = 0, nopt = 0;
    struct view w = {x, r, ""};
    int rc;

    for (; ops != NULL && ops->keys != NULL && ops->keys[n].path != NULL; n++) {
    }
    opts = calloc(n ? n : 1, sizeof(*opts));
    rc = config_pool_add(x->cp, opts);
    if (rc != DM_OK) {
        return dm_err_set(x->err, DM_ENOMEM, "config strings");
    }
    for (size_t i = 0; i < n; i++) {
        const struct conn_key *ck = &ops->keys[i];
        struct cfg_key k;
        const char *v;

        config_conn_key(&k, ck);
        if (k.where != AT_NONE) {
            rc = config_fill_key(x, &k, r);
            if (rc != DM_OK) {
                return rc;
            }
            continue;
        }
        v = view_get(&w, ck->path);
        if (v == NULL) {
            v = ck->def;
        }
        if (v == NULL) {
            continue;
        }
        if (ck->type == CONN_KEY_PATH) {
            opts[nopt].value = config_resolve_path(x, v);
        } else {
            opts[nopt].value = config_pool_strdup(x->cp, v);
        }
        if (opts[nopt].value == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config strings");
        }
        opts[nopt++].path = ck->path;
    }
    ep->conn.opts = opts;
    ep->conn.nopts = nopt;
    ep->conn.config_dir = x->dir != NULL ? x->dir : ".";
    return DM_OK;
}

/* ---- describing and documenting ---- */

int config_conn_describe(const struct config_priv *cp, int r, struct buf *out)
{
    const struct dm_config *c = &cp->pub;
    const struct config_endpoint *ep = r == 0 ? &c->source : &c->target;
    const struct conn_ops *ops = conn_find(ep->conn.type);
    int rc = DM_OK;

    for (size_t i = 0; rc == DM_OK && ops != NULL && ops->keys && ops->keys[i].path; i++) {
        const struct conn_key *ck = &ops->keys[i];
        const char *base = (const char *)&ep->conn, *s;
        int iv;

        if (ck->flags & CONN_KEY_SENSITIVE) {
            rc = buf_printf(out, "%s.%s = %s\n", config_roles[r], ck->path,
                            i < CONN_MAX_KEYS && cp->cpresent[r][i] ? "***" : "(unset)");
            continue;
        }
        if (ck->off == CONN_KEY_OPT) {
            s = conn_cfg_opt(&ep->conn, ck->path);
            rc = buf_printf(out, "%s.%s = %s\n", config_roles[r], ck->path, s ? s : "(unset)");
            continue;
        }
        switch (ck->type) {
        case CONN_KEY_STR:
        case CONN_KEY_PATH:
        case CONN_KEY_ENV:
            memcpy(&s, base + ck->off, sizeof(s));
            rc = buf_printf(out, "%s.%s = %s\n", config_roles[r], ck->path, s ? s : "(unset)");
            break;
        case CONN_KEY_INT:
            memcpy(&iv, base + ck->off, sizeof(iv));
            rc = buf_printf(out, "%s.%s = %d\n", config_roles[r], ck->path, iv);
            break;
        case CONN_KEY_BOOL:
            memcpy(&iv, base + ck->off, sizeof(iv));
            rc = buf_printf(out, "%s.%s = %s\n", config_roles[r], ck->path, iv ? "true" : "false");
            break;
        }
    }
    return rc;
}

void config_conn_print_keys(FILE *out)
{
    const struct conn_ops *const *all = conn_all();

    for (size_t i = 0; all[i] != NULL; i++) {
        for (size_t j = 0; all[i]->keys != NULL && all[i]->keys[j].path != NULL; j++) {
            const struct conn_key *ck = &all[i]->keys[j];
            char types[160];
            size_t n = 0;
            int first = 1;
            struct cfg_key k;

            /* a key several connectors share is documented once, with every type */
            for (size_t p = 0; p < i && first; p++) {
                first = find_key(all[p], ck->path, NULL) == NULL;
            }
            if (!first) {
                continue;
            }
            for (size_t p = i; all[p] != NULL; p++) {
                if (find_key(all[p], ck->path, NULL) != NULL) {
                    n += (size_t)snprintf(types + n, n < sizeof(types) ? sizeof(types) - n : 0,
                                          "%s%s", n ? ", " : "", all[p]->name);
                }
            }
            config_conn_key(&k, ck);
            config_print_key(out, &k, types);
        }
    }
}
