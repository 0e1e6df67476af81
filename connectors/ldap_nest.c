/*
 * connectors/ldap_nest.c: groups.nesting "flatten" for plain LDAP sources (ldap_nest.h).
 */
#include <config.h>
#include "connectors/ldap_nest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/util/log.h"
#include "schema/dn.h"

#define NEST_GROUP_FILTER                                                                          \
    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=groupOfMembers))"
#define NEST_MAX_GROUPS ((size_t)1 << 22) /* group DNs kept per read */

/* A set of normalized DNs: open addressing, linear probing, power-of-two capacity. */
struct dnset {
    char **slot;
    size_t cap, n;
};

struct ldap_nest {
    struct ldap_common_sess *sess;
    struct dnset groups; /* every group DN under the base, normalized */
    int loaded;
    unsigned long expanded; /* nested groups read, for the log */
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

static int dnset_has(const struct dnset *s, const char *norm)
{
    if (s->cap == 0) {
        return 0;
    }
    for (size_t i = hash_str(norm) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == NULL) {
            return 0;
        }
        if (strcmp(s->slot[i], norm) == 0) {
            return 1;
        }
    }
}

/* Adds norm (taken over; freed when already there or on failure). Returns 1 when added,
 * 0 when it was there, -1 when out of memory. */
static int dnset_add(struct dnset *s, char *norm)
{
    if (dnset_has(s, norm)) {
        free(norm);
        return 0;
    }
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **slot = calloc(cap, sizeof(*slot));

        if (slot == NULL) {
            free(norm);
            return -1;
        }
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slot[i] != NULL) {
                size_t j = hash_str(s->slot[i]) & (cap - 1);
                while (slot[j] != NULL) {
                    j = (j + 1) & (cap - 1);
                }
                slot[j] = s->slot[i];
            }
        }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    for (size_t i = hash_str(norm) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == NULL) {
            s->slot[i] = norm;
            s->n++;
            return 1;
        }
    }
}

static void dnset_free(struct dnset *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        free(s->slot[i]);
    }
    free(s->slot);
    memset(s, 0, sizeof(*s));
}

/* The normalized DN a member value names: uniqueMember's optional "#'0101'B" uid suffix
 * (RFC 4517 NameAndOptionalUID) is not part of it. NULL when it is not a DN. */
static char *member_norm(const char *v)
{
    struct dm_err e = {0};
    char *out = NULL, *copy = NULL;
    const char *hash = strrchr(v, '#');

    if (hash != NULL && hash > v && hash[-1] != '\\' && hash[1] == '\'') {
        copy = strndup(v, (size_t)(hash - v));
        if (copy == NULL) {
            return NULL;
        }
        v = copy;
    }
    if (dn_normalize(&out, v, &e) != DM_OK) {
        out = NULL;
    }
    free(copy);
    return out;
}

int ldap_nest_wanted(const struct conn_cfg *cfg)
{
    return cfg->group_nesting != NULL && strcmp(cfg->group_nesting, "flatten") == 0 &&
           (cfg->dialect == NULL || strcmp(cfg->dialect, "ldap") == 0);
}

int ldap_nest_new(struct ldap_nest **out, struct ldap_common_sess *sess, struct dm_err *err)
{
    struct ldap_nest *n = calloc(1, sizeof(*n));

    if (n == NULL) {
        return dm_err_set(err, DM_ENOMEM, "flatten: out of memory");
    }
    n->sess = sess;
    *out = n;
    return DM_OK;
}

void ldap_nest_free(struct ldap_nest *n)
{
    if (n == NULL) {
        return;
    }
    if (n->loaded) {
        log_info("%s: groups flattened: %zu groups known, %lu nested group reads", n->sess->cfg.uri,
                 n->groups.n, n->expanded);
    }
    dnset_free(&n->groups);
    free(n);
}

struct load_ctx {
    struct ldap_nest *n;
    struct dm_err *err;
};

static int group_dn_cb(LDAP *ld, LDAPMessage *msg, void *payload)
{
    struct load_ctx *x = payload;
    char *dn = ldap_get_dn(ld, msg);
    char *norm;

    if (dn == NULL) {
        return dm_err_set(x->err, DM_EINTERNAL, "flatten: a group without a DN");
    }
    norm = member_norm(dn);
    ldap_memfree(dn);
    if (norm == NULL) {
        return DM_OK;
    }
    if (x->n->groups.n >= NEST_MAX_GROUPS) {
        free(norm);
        return dm_err_set(x->err, DM_ELIMIT, "flatten: more than %zu groups", NEST_MAX_GROUPS);
    }
    return dnset_add(&x->n->groups, norm) < 0 ? dm_err_set(x->err, DM_ENOMEM,
                                                           "flatten: out of "
                                                           "memory")
                                              : DM_OK;
}

/* Every group DN under the base, once per read. */
static int load_groups(struct ldap_nest *n, struct dm_err *err)
{
    static char *no_attrs[] = {LDAP_NO_ATTRS, NULL};
    struct load_ctx x = {n, err};
    int page = n->sess->cfg.page_size > 0 ? n->sess->cfg.page_size : 500;
    int rc;

    rc = ldap_common_search(n->sess, n->sess->cfg.base, LDAP_SCOPE_SUBTREE, NEST_GROUP_FILTER,
                            no_attrs, page, group_dn_cb, &x, err);
    if (rc == DM_OK) {
        n->loaded = 1;
        log_debug("flatten: %zu groups under %s", n->groups.n, n->sess->cfg.base);
    }
    return rc;
}

/* Walks the member values of one group: groups not seen yet are queued (as raw values in
 * queue), the others are leaves appended to out. */
static int walk_values(struct ldap_nest *n, const struct dm_attr *a, struct dnset *seen,
                       struct entry *queue, struct dm_attr *out)
{
    for (size_t i = 0; a != NULL && i < a->nvals; i++) {
        const char *v = (const char *)a->vals[i].data;
        char *norm = member_norm(v);
        int rc;

        if (norm != NULL && dnset_has(&n->groups, norm)) {
            rc = dnset_add(seen, norm); /* takes norm */
            if (rc < 0 || (rc == 1 && entry_add_str(queue, "dn", v) != DM_OK)) {
                return DM_ENOMEM;
            }
            continue; /* a nested group: its members, not itself */
        }
        free(norm);
        if (attr_add_value(out, a->vals[i].data, a->vals[i].len) != DM_OK) {
            return DM_ENOMEM;
        }
    }
    return DM_OK;
}

int ldap_nest_flatten(struct ldap_nest *n, struct entry *e, struct dm_err *err)
{
    static char *member_attrs[] = {"member", "uniqueMember", NULL};
    const char *attr = entry_attr(e, "member") != NULL ? "member" : "uniqueMember";
    struct entry *queue = NULL, *leaves = NULL;
    struct dnset seen = {0};
    struct dm_attr *out, *q;
    char *self;
    int rc;

    if (entry_attr(e, "member") == NULL && entry_attr(e, "uniqueMember") == NULL) {
        return DM_OK;
    }
    if (!n->loaded) {
        rc = load_groups(n, err);
        if (rc != DM_OK) {
            return rc;
        }
    }
    queue = entry_new(NULL);
    leaves = entry_new(NULL);
    self = member_norm(e->dn);
    out = leaves != NULL ? entry_attr_add(leaves, attr) : NULL;
    q = queue != NULL ? entry_attr_add(queue, "dn") : NULL; /* the only attribute: stays put */
    if (q == NULL || out == NULL || self == NULL || dnset_add(&seen, self) < 0) {
        rc = dm_err_set(err, DM_ENOMEM, "flatten: out of memory");
        goto done;
    }
    rc = walk_values(n, entry_attr(e, "member"), &seen, queue, out);
    if (rc == DM_OK) {
        rc = walk_values(n, entry_attr(e, "uniqueMember"), &seen, queue, out);
    }
    /* the queue grows while it is walked: each group reached is read once */
    for (size_t i = 0; rc == DM_OK && i < q->nvals; i++) {
        const char *g = (const char *)q->vals[i].data; /* each value is its own allocation */
        struct entry *ge = NULL;

        rc = ldap_common_lookup(&ge, n->sess, g, member_attrs, err);
        n->expanded++;
        if (rc == DM_ENOTFOUND) {
            /* listed but gone (a dangling member): nothing below it */
            log_warn("flatten: %s: nested group %s is not there", e->dn, g);
            dm_err_clear(err);
            rc = DM_OK;
            continue;
        }
        if (rc == DM_OK) {
            rc = walk_values(n, entry_attr(ge, "member"), &seen, queue, out);
        }
        if (rc == DM_OK) {
            rc = walk_values(n, entry_attr(ge, "uniqueMember"), &seen, queue, out);
        }
        if (rc == DM_ENOMEM) {
            dm_err_set(err, rc, "flatten: out of memory");
        }
        entry_free(ge);
    }
    if (rc != DM_OK) {
        dm_err_dn(err, e->dn);
        goto done;
    }
    attr_dedup(out);
    entry_del_attr(e, "member");
    entry_del_attr(e, "uniqueMember");
    if (out->nvals > 0) {
        struct dm_attr *dst = entry_attr_add(e, attr);
        for (size_t i = 0; dst != NULL && i < out->nvals && rc == DM_OK; i++) {
            rc = attr_add_value(dst, out->vals[i].data, out->vals[i].len);
        }
        if (dst == NULL || rc != DM_OK) {
            rc = dm_err_set(err, DM_ENOMEM, "flatten: out of memory");
        }
    }
done:
    dnset_free(&seen);
    entry_free(queue);
    entry_free(leaves);
    return rc;
}
