#include <config.h>
#include "agent/projection.h"
#include "agent/util/hash64.h"
#include "schema/dn.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int in_list(const char *const *list, const char *name)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcasecmp(list[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The hash of one value of attribute name under the rules. */
static uint64_t value_hash(const char *name, const struct dm_val *v, const struct proj_rules *r)
{
    if (strcasecmp(name, "objectClass") == 0) {
        return hash64_lower(v->data, v->len);
    }
    if (in_list(r->dn_attrs, name) && memchr(v->data, '=', v->len) != NULL &&
        strlen((const char *)v->data) == v->len) {
        char *norm = NULL;
        if (dn_normalize(&norm, (const char *)v->data, NULL) == DM_OK) {
            uint64_t h = hash64(norm, strlen(norm));
            free(norm);
            return h;
        }
    }
    return hash64(v->data, v->len);
}

/* Sorted value hashes of a (a->nvals of them; NULL with 0 values). */
static int hash_values(uint64_t **out, const struct dm_attr *a, const struct proj_rules *r)
{
    uint64_t *h;

    *out = NULL;
    if (a == NULL || a->nvals == 0) {
        return DM_OK;
    }
    h = malloc(a->nvals * sizeof(*h));
    if (h == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; i < a->nvals; i++) {
        h[i] = value_hash(a->name, &a->vals[i], r);
    }
    qsort(h, a->nvals, sizeof(*h), u64_cmp);
    *out = h;
    return DM_OK;
}

void proj_free(struct proj *p)
{
    if (p == NULL) {
        return;
    }
    free(p->vals);
    free(p->attrs);
    free(p->ref);
    free(p->ident);
    free(p->status);
    entry_free(p->keys);
    free(p);
}

int proj_build(struct proj **out, const struct entry *e, const struct proj_rules *r,
               struct dm_err *err)
{
    struct proj *p = calloc(1, sizeof(*p));
    size_t total = 0, used = 0;
    int rc = DM_ENOMEM;

    if (p == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    p->disabled = -1;
    for (size_t i = 0; i < e->nattrs; i++) {
        total += e->attrs[i].nvals;
    }
    /* one array for every value hash: a projection is a handful of allocations */
    p->attrs = calloc(e->nattrs ? e->nattrs : 1, sizeof(*p->attrs));
    p->vals = malloc((total ? total : 1) * sizeof(*p->vals));
    p->ref = strdup(e->key != NULL && e->key[0] ? e->key : e->dn ? e->dn : "");
    p->ident = strdup(e->dn ? e->dn : "");
    if (p->attrs == NULL || p->vals == NULL || p->ref == NULL || p->ident == NULL) {
        goto done;
    }
    for (size_t i = 0; i < e->nattrs; i++) {
        const struct dm_attr *a = &e->attrs[i];
        struct proj_attr *pa = &p->attrs[p->nattrs];

        if (a->nvals == 0 || entry_is_sensitive_attr(a->name)) {
            continue;
        }
        if (strcasecmp(a->name, "dirmigAccountState") == 0) {
            p->disabled = strcasecmp((const char *)a->vals[0].data, "enabled") != 0;
            continue; /* the account state, not an attribute of the object */
        }
        if (e->key != NULL && p->status == NULL && strcasecmp(a->name, "status") == 0) {
            p->status = strndup((const char *)a->vals[0].data, a->vals[0].len);
            if (p->status == NULL) {
                goto done;
            }
        }
        pa->name = hash64_lower(a->name, strlen(a->name));
        pa->nvals = a->nvals;
        pa->vals = p->vals + used;
        for (size_t k = 0; k < a->nvals; k++) {
            pa->vals[k] = value_hash(a->name, &a->vals[k], r);
        }
        qsort(pa->vals, a->nvals, sizeof(*pa->vals), u64_cmp);
        used += a->nvals;
        p->nattrs++;
        if (in_list(r->key_attrs, a->name)) {
            if (p->keys == NULL && (p->keys = entry_new(e->dn)) == NULL) {
                goto done;
            }
            for (size_t k = 0; k < a->nvals; k++) {
                if (entry_add_value(p->keys, a->name, a->vals[k].data, a->vals[k].len) != DM_OK) {
                    goto done;
                }
            }
        }
    }
    if (p->keys == NULL && (p->keys = entry_new(e->dn)) == NULL) {
        goto done;
    }
    if (r->digest) {
        entry_digest(e, p->digest);
    }
    *out = p;
    p = NULL;
    rc = DM_OK;
done:
    proj_free(p);
    return rc == DM_OK ? DM_OK : dm_err_set(err, rc, "out of memory");
}

const struct proj_attr *proj_attr(const struct proj *p, const char *name)
{
    uint64_t h = hash64_lower(name, strlen(name));

    for (size_t i = 0; i < p->nattrs; i++) {
        if (p->attrs[i].name == h) {
            return &p->attrs[i];
        }
    }
    return NULL;
}

int proj_diff_attr(size_t *added, size_t *removed, const struct proj_attr *have,
                   const struct dm_attr *want, int merge, const struct proj_rules *r)
{
    uint64_t *w = NULL;
    size_t nw = want != NULL ? want->nvals : 0, nh = have != NULL ? have->nvals : 0, i = 0, j = 0;

    *added = *removed = 0;
    if (hash_values(&w, want, r) != DM_OK) {
        return DM_ENOMEM;
    }
    while (i < nw || j < nh) {
        if (j == nh || (i < nw && w[i] < have->vals[j])) {
            (*added)++;
            i++;
        } else if (i == nw || have->vals[j] < w[i]) {
            (*removed)++;
            j++;
        } else {
            i++;
            j++;
        }
    }
    if (merge) {
        *removed = 0;
    }
    free(w);
    return DM_OK;
}
