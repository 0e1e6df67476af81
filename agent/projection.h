/*
 * projection.h: a value-free picture of an entry, for comparing the target as it is with
 * what the map produces (agent/planner.h) without keeping the target's values in memory.
 *
 * Each attribute becomes the keyed 64-bit hash of its lowercased name and the sorted
 * hashes of its values (agent/util/hash64.h). Values are normalised before hashing the way
 * the directory compares them where that matters for a false "changed": DN-valued
 * attributes (the configured run.dn_attributes) through dn_normalize(), objectClass
 * ASCII-lowercased; every other value is hashed byte-exact. Sensitive attributes
 * (userPassword, ...) are never hashed: they are create-only and not compared. The values of
 * a few named attributes (the correlation attributes a collision "link" checks) are kept
 * verbatim in `keys`.
 *
 * Call order: proj_build() for a target entry (or proj_want() for a mapped entry) ->
 * proj_attr() / proj_diff_attr() -> proj_free(). A projection is owned by one thread.
 */
#ifndef DM_PROJECTION_H
#define DM_PROJECTION_H

#include <stddef.h>
#include <stdint.h>
#include "agent/util/err.h"
#include "schema/entry.h"

struct proj_attr {
    uint64_t name; /* hash64_lower of the name */
    size_t nvals;
    uint64_t *vals; /* sorted value hashes */
};

struct proj {
    char *ref;   /* the object's reference at the target: its DN, or the id the target assigned */
    char *ident; /* the natural identity as the target holds it: DN, login or group name */
    size_t nattrs;
    struct proj_attr *attrs;
    uint64_t *vals;     /* every attribute's value hashes, one allocation */
    struct entry *keys; /* verbatim values of the correlation attributes; never NULL */
    char *status;       /* targets with ids: lifecycle status ("ACTIVE", ...) or NULL */
    int disabled;       /* the account state the connector reported (dirmigAccountState):
                         * 1 disabled, 0 enabled, -1 not known */
    char digest[65];    /* proj_rules.digest: entry_digest() of the entry as read (a saved
                         * plan compares it), else "" */
};

/* How values are normalised and what is kept verbatim. Borrowed, NULL-terminated lists. */
struct proj_rules {
    const char *const *dn_attrs;  /* DN-valued attributes (normalised before hashing) */
    const char *const *key_attrs; /* attributes whose values go to proj->keys */
    int digest;                   /* 1: fill proj->digest */
};

/* Builds the projection of e: ref = e->key when set (an id the target assigned), else e->dn;
 * ident = e->dn. Returns a new projection; caller frees with proj_free(). */
int proj_build(struct proj **out, const struct entry *e, const struct proj_rules *r,
               struct dm_err *err) DM_MUST_USE;
void proj_free(struct proj *p); /* NULL-safe */

/* The attribute named name (case-insensitive), or NULL. Borrowed. */
const struct proj_attr *proj_attr(const struct proj *p, const char *name);

/* Compares the values want would set for one attribute (want may be NULL or have no values:
 * the attribute must then be absent) with have (NULL = absent at the target). *added counts
 * the wanted values the target lacks, *removed the target's values want does not have (with
 * merge, removed is always 0: the target keeps its own values). Returns DM_OK or DM_ENOMEM. */
int proj_diff_attr(size_t *added, size_t *removed, const struct proj_attr *have,
                   const struct dm_attr *want, int merge, const struct proj_rules *r);

#endif
