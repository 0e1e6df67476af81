#include <config.h>
#include "agent/explain.h"
#include "schema/dn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

struct found {
    struct entry *e;
    long long n;
};

static int keep_first(const struct entry *e, void *payload)
{
    struct found *f = payload;

    if (f->n++ == 0) {
        f->e = entry_clone(e);
        if (f->e == NULL) {
            return DM_ENOMEM;
        }
    }
    return 0;
}

/* Searches base for (&filter(attr=key)); the key value is RFC 4515-escaped. */
static int find_by_key(struct found *f, const struct conn_ops *ops, struct conn *c,
                       const char *base, const char *filter, const char *attr, const char *key,
                       struct dm_err *err)
{
    struct scope sc = {0};
    char *esc = NULL, *flt;
    size_t n;
    int rc;

    rc = dn_filter_escape(&esc, key, strlen(key), err);
    if (rc != DM_OK) {
        return rc;
    }
    n = strlen(filter) + strlen(attr) + strlen(esc) + 8;
    flt = malloc(n);
    if (flt == NULL) {
        free(esc);
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    snprintf(flt, n, "(&%s(%s=%s))", filter, attr, esc);
    sc.base = base;
    sc.filter = flt;
    sc.key_attr = attr;
    rc = ops->read(c, &sc, keep_first, f, err);
    free(flt);
    free(esc);
    return rc;
}

int explain_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                struct dm_err *err)
{
    const struct config_endpoint *s = &cfg->source;
    const struct conn_ops *ops = conn_find(s->conn.type);
    struct conn *c = NULL;
    struct found f = {NULL, 0};
    struct dn *parsed = NULL;
    struct dm_err e = {0};
    enum map_kind kind = MAP_USERS;
    struct buf b;
    int rc;

    buf_init(&b, 16 << 20);
    if (o->explain == NULL) {
        *exit_hint = EX_USAGE;
        return dm_err_set(err, DM_EINVAL, "map: --explain KEY is required");
    }
    if (ops == NULL) {
        return dm_err_set(err, DM_EINVAL, "source: unknown connector type");
    }
    rc = ops->open(&c, &s->conn, err);
    if (rc != DM_OK) {
        goto done;
    }
    if (strchr(o->explain, '=') != NULL && dn_parse(&parsed, o->explain, &e) == DM_OK &&
        parsed->nrdns > 0) {
        /* A DN: read it directly, then decide users or groups by the scope bases. */
        rc = ops->lookup(&f.e, c, o->explain, err);
        if (rc == DM_OK) {
            f.n = 1;
            kind = dn_is_under(o->explain, s->groups_base) == 1 &&
                           dn_is_under(o->explain, s->users_base) != 1
                       ? MAP_GROUPS
                       : MAP_USERS;
        } else if (rc == DM_ENOTFOUND) {
            rc = DM_OK;
        }
    } else {
        rc = find_by_key(&f, ops, c, s->users_base, s->users_filter, map_key_attr(cfg->map),
                         o->explain, err);
        if (rc == DM_OK && f.n == 0) {
            kind = MAP_GROUPS;
            rc = find_by_key(&f, ops, c, s->groups_base, s->groups_filter, map_key_attr(cfg->map),
                             o->explain, err);
        }
    }
    if (rc != DM_OK) {
        goto done;
    }
    if (f.n == 0) {
        *exit_hint = EX_NOINPUT;
        rc = dm_err_set(err, DM_ENOTFOUND, "map --explain: no source entry with %s or DN \"%s\"",
                        map_key_attr(cfg->map), o->explain);
        goto done;
    }
    if (f.n > 1) {
        fprintf(stderr, "dirmig: warning: %lld entries have %s \"%s\"; explaining the first\n", f.n,
                map_key_attr(cfg->map), o->explain);
    }
    rc = map_explain(&b, cfg->map, kind, f.e, err);
    if (rc == DM_OK) {
        printf("%s entry %s\n%s", kind == MAP_USERS ? "user" : "group", f.e->dn,
               b.data ? b.data : "");
    }
done:
    dn_free(parsed);
    entry_free(f.e);
    buf_free(&b);
    if (c != NULL) {
        ops->close(c);
    }
    return rc;
}
