/*
 * entry.h: the entry model every module shares.
 *
 * An entry is an identity (its DN), a correlation key, and attributes. An attribute is a
 * case-insensitive name (options such as ";binary" kept as part of the name) with a list
 * of binary-safe values (pointer + length; each value is also NUL-terminated for
 * convenience, but embedded NULs are kept). Attribute order and value order are kept as
 * read; comparisons and digests treat values as sets (sorted bytewise).
 *
 * Credentials are not printed: entry_is_sensitive_attr() names the attributes that carry
 * password material (userPassword, unicodePwd, ...); every dump masks them, and their
 * values are wiped (explicit_bzero) before entry_free(), entry_del_attr() or attr_dedup()
 * frees them.
 *
 * Ownership: entry_new() returns a new entry, freed with entry_free(). Everything an entry
 * points to belongs to it. Accessors return borrowed pointers valid until the entry is
 * modified or freed.
 */
#ifndef DM_ENTRY_H
#define DM_ENTRY_H

#include <stddef.h>
#include "agent/util/buf.h"
#include "agent/util/err.h"

struct dm_val {
    size_t len;
    unsigned char *data; /* len bytes + a NUL after them */
};

struct dm_attr {
    char *name;
    size_t nvals;
    size_t cap;
    struct dm_val *vals;
};

struct entry {
    char *dn;  /* may be NULL while being built */
    char *key; /* correlation key (e.g. entryUUID), NULL if none */
    size_t nattrs;
    size_t cap;
    struct dm_attr *attrs;
};

/* New empty entry with a copy of dn (dn may be NULL). NULL on allocation failure. */
struct entry *entry_new(const char *dn);
void entry_free(struct entry *e); /* NULL-safe */

/* Deep copy; NULL on allocation failure. */
struct entry *entry_clone(const struct entry *e);

/* Replace the DN / key with a copy of s. */
int entry_set_dn(struct entry *e, const char *dn) DM_MUST_USE;
int entry_set_key(struct entry *e, const char *key) DM_MUST_USE;

/* Attribute by name, case-insensitive exact match (options included). NULL if absent. */
struct dm_attr *entry_attr(const struct entry *e, const char *name);

/* Attribute by name, created empty if absent. NULL on allocation failure. */
struct dm_attr *entry_attr_add(struct entry *e, const char *name);

/* Appends a new empty attribute without looking for an existing one: only for callers
 * that know the name is not there yet. NULL on allocation failure. */
struct dm_attr *entry_attr_append(struct entry *e, const char *name);

/* Appends a copy of len bytes to attribute `name` (created if needed). Duplicate values
 * are kept as given (LDAP servers reject them; the map engine removes them). */
int entry_add_value(struct entry *e, const char *name, const void *data, size_t len) DM_MUST_USE;
int entry_add_str(struct entry *e, const char *name, const char *s) DM_MUST_USE;
int attr_add_value(struct dm_attr *a, const void *data, size_t len) DM_MUST_USE;

/* Removes attribute `name` (no-op when absent). */
void entry_del_attr(struct entry *e, const char *name);

/* Removes values that are bytewise equal to an earlier value of the same attribute. */
void attr_dedup(struct dm_attr *a);

/* First value of `name` as a C string, or NULL when absent/empty. Borrowed. */
const char *entry_first(const struct entry *e, const char *name);

/* 1 when the entry has objectClass `oc` (case-insensitive). */
int entry_has_class(const struct entry *e, const char *oc);

/* 1 for attributes that carry password material and are never printed. */
int entry_is_sensitive_attr(const char *name);

/* SHA-256 over a canonical form: DN, then attributes sorted by lowercased name, each with
 * its values sorted bytewise. Independent of attribute and value order. hex is 65 bytes. */
void entry_digest(const struct entry *e, char hex[65]);

/* Appends an LDIF-like dump to b: one "name: value" per value; binary or non-printable
 * values base64 ("name:: ..."); sensitive attributes print as "name: ***". */
int entry_dump(const struct entry *e, struct buf *b) DM_MUST_USE;

/* ---- differences between two versions of an entry (for LDAP modify) ---- */

enum entry_mod_op { ENTRY_MOD_ADD = 0, ENTRY_MOD_DELETE, ENTRY_MOD_REPLACE };

struct entry_mod {
    enum entry_mod_op op;
    const char *name;           /* borrowed from old or new entry */
    size_t nvals;               /* 0 with DELETE = remove the whole attribute */
    const struct dm_val **vals; /* borrowed values; array owned by the diff */
};

struct entry_diff {
    size_t nmods;
    struct entry_mod *mods;
};

/* Computes the modifications that make `old` what `want` asks for (DN ignored), attribute
 * by attribute, so that ownership decides what is touched:
 *   - an attribute of want with values is made equal (values compared bytewise as a set),
 *     or, when its name is in `merge` (NULL-terminated, may be NULL), only its missing
 *     values are added and the target's other values are kept;
 *   - an attribute of want with no values is deleted from old when present;
 *   - an attribute of old that want does not name is never touched.
 * An attribute with fewer than `chunk` values on both sides that differs is replaced whole.
 * Larger attributes are changed by value: one DELETE mod per `chunk` removed values, then one
 * ADD per `chunk` added values, so a million-member group is never rewritten in one request.
 * Name comparison is case-insensitive. An empty diff means "unchanged". Caller frees with
 * entry_diff_free(); the diff borrows from old and want. */
int entry_diff(struct entry_diff *out, const struct entry *old, const struct entry *want,
               const char *const *merge, size_t chunk, struct dm_err *err) DM_MUST_USE;
void entry_diff_free(struct entry_diff *d);

#endif
