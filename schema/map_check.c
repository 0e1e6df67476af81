/*
 * map_check.c: a mapped entry against the constraints of its section (map_check()), and
 * the masking of pii and sensitive values (map_attr_is_pii(), map_mask(),
 * map_dump_masked()). The constraint language itself (types, lengths, patterns,
 * profiles) is validate.c's; this file applies it to a map's sections.
 */
#include <config.h>
#include "schema/map_priv.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static unsigned char ascii_fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* entry_attr() with a first-byte test before each strcasecmp(). */
static const struct dm_attr *find_attr(const struct entry *e, const char *name)
{
    unsigned char c0 = ascii_fold((unsigned char)name[0]);

    for (size_t i = 0; i < e->nattrs; i++) {
        const char *an = e->attrs[i].name;

        if (ascii_fold((unsigned char)an[0]) == c0 && strcasecmp(an, name) == 0) {
            return &e->attrs[i];
        }
    }
    return NULL;
}

int map_check(struct map_problem **out, size_t *n, const struct map *m, enum map_kind kind,
              const struct entry *mapped, struct dm_err *err)
{
    struct map_problem *list = NULL;
    size_t count = 0, nc = 0;
    const struct validate_constraint *cs = map_constraints(m, kind, &nc);
    int rc = DM_OK;

    for (size_t i = 0; i < nc && rc == DM_OK; i++) {
        rc = validate_check_attr(&list, &count, &cs[i], find_attr(mapped, cs[i].attr));
    }
    if (rc != DM_OK) {
        free(list);
        dm_err_dn(err, mapped->dn);
        return dm_err_set(err, rc, "map_check: out of memory");
    }
    *out = list;
    *n = count;
    return DM_OK;
}

int map_attr_is_pii(const struct map *m, enum map_kind kind, const char *attr)
{
    size_t nc = 0;
    const struct validate_constraint *cs = map_constraints(m, kind, &nc);

    if (entry_is_sensitive_attr(attr)) {
        return 1;
    }
    for (size_t i = 0; i < nc; i++) {
        if (strcasecmp(cs[i].attr, attr) == 0) {
            return cs[i].pii;
        }
    }
    return 0;
}

const char *map_mask(const struct map *m, enum map_kind kind, const char *attr, const char *value)
{
    return map_attr_is_pii(m, kind, attr) ? "***" : value;
}

int map_dump_masked(struct buf *out, const struct map *m, enum map_kind kind, const struct entry *e)
{
    struct entry *c = entry_clone(e);
    int rc = DM_OK;

    if (c == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; i < c->nattrs && rc == DM_OK; i++) {
        struct dm_attr *a = &c->attrs[i];

        if (a->nvals == 0 || !map_attr_is_pii(m, kind, a->name)) {
            continue;
        }
        /* one "***" per value keeps the value count visible */
        for (size_t j = 0; j < a->nvals && rc == DM_OK; j++) {
            rc = attr_set_value(a, j, "***", 3);
        }
    }
    if (rc == DM_OK) {
        rc = entry_dump(c, out);
    }
    entry_free(c);
    return rc;
}
