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
 * values are wiped (explicit_bzero) when entry_free(), entry_reset(), entry_del_attr(),
 * attr_dedup() or attr_set_value() lets go of them.
 *
 * Memory: one region per entry. entry_new() makes one malloc() that holds the struct entry
 * and the first 4 KiB of its arena (agent/util/arena.h); the DN, the key, the attribute
 * array, every value array and every value are pieces of that arena (a large entry takes
 * more blocks; a big group's value array gets a block of its own). entry_free() wipes the
 * password values and frees the blocks: a handful of free() calls, none per value.
 * entry_reset() empties an entry for the next one read and keeps its first block, so a
 * connector that streams entries through one struct entry allocates nothing per entry.
 * Attribute names are interned: the names seen first (up to 2048 names of at most 96 bytes,
 * spelled byte for byte as read) are kept once for the whole process, read-only, with their
 * hash; any other name is a copy in the entry's arena.
 *
 * Ownership: entry_new() returns a new entry, freed with entry_free(). Everything an entry
 * points to belongs to it (the interned names to the process): never free() or realloc()
 * e->dn, e->key, a->name, a->vals or a value, and never assign memory from elsewhere to
 * them. Use entry_set_dn(), entry_set_key(), attr_add_value(), attr_set_value(); to drop
 * values, move the ones kept down in a->vals and lower a->nvals (a value of a sensitive
 * attribute is wiped first, or use attr_dedup()). A value's bytes may be changed in place
 * as long as its length does not grow. Accessors return borrowed pointers valid until the
 * entry is modified, reset or freed. One thread at a time uses an entry.
 */
#ifndef DM_ENTRY_H
#define DM_ENTRY_H

#include <stddef.h>
#include <stdint.h>
#include "agent/util/arena.h"
#include "agent/util/buf.h"
#include "agent/util/err.h"

struct dm_val {
    size_t len;
    unsigned char *data; /* len bytes + a NUL after them */
};

struct dm_attr {
    char *name; /* interned or in the entry's arena: read-only */
    size_t nvals;
    size_t cap;
    struct dm_val *vals;
    /* set by entry.c, read-only for the others: */
    uint32_t hash;          /* entry_name_hash() of name */
    unsigned char secret;   /* entry_is_sensitive_attr(name) */
    unsigned char interned; /* name is the process's interned copy */
    struct arena *arena;    /* the owning entry's arena (values are allocated there) */
};

struct entry {
    char *dn;  /* may be NULL while being built */
    char *key; /* correlation key (e.g. entryUUID), NULL if none */
    size_t nattrs;
    size_t cap;
    struct dm_attr *attrs;
    struct arena arena; /* private to entry.c: where everything above lives */
};

/* New empty entry with a copy of dn (dn may be NULL). NULL on allocation failure. */
struct entry *entry_new(const char *dn);

/* Wipes the password values, then frees the entry and everything it holds. NULL-safe. */
void entry_free(struct entry *e);

/* Empties e for reuse (as entry_new(NULL) would return it): password values wiped, every
 * attribute, the DN and the key gone, the first block of the arena kept. Pointers into e
 * taken before are invalid. */
void entry_reset(struct entry *e);

/* Deep copy; NULL on allocation failure. */
struct entry *entry_clone(const struct entry *e);

/* Replace the DN / key with a copy of s (NULL clears it). The old one stays in the arena
 * until the entry is reset or freed. */
int entry_set_dn(struct entry *e, const char *dn) DM_MUST_USE;
int entry_set_key(struct entry *e, const char *key) DM_MUST_USE;
/* entry_set_dn() from len bytes that need not be NUL-terminated. */
int entry_set_dn_n(struct entry *e, const char *dn, size_t len) DM_MUST_USE;

/* FNV-1a (32 bit) of the ASCII-lowercased len bytes of name: the hash dm_attr.hash holds,
 * equal for names that differ only in ASCII case. */
uint32_t entry_name_hash(const char *name, size_t len);

/* Attribute by name, case-insensitive exact match (options included). NULL if absent. */
struct dm_attr *entry_attr(const struct entry *e, const char *name);

/* Attribute by name, created empty if absent. NULL on allocation failure. */
struct dm_attr *entry_attr_add(struct entry *e, const char *name);

/* Appends a new empty attribute without looking for an existing one: only for callers
 * that know the name is not there yet. NULL on allocation failure. */
struct dm_attr *entry_attr_append(struct entry *e, const char *name);

/* An attribute name looked up once, for callers that add the same names to every entry (the
 * map engine's rule targets): entry_attr_add_name() and entry_attr_append_name() then skip
 * the hashing and the intern table. name is the interned copy when there was room, else the
 * caller's string (borrowed: it must outlive the struct; entries copy it). entry_attr_name()
 * describes an attribute of an entry the same way (borrowed from it). */
struct entry_name {
    const char *name;
    size_t len;
    uint32_t hash;
    unsigned char secret;
    unsigned char interned;
};
void entry_name_init(struct entry_name *out, const char *name);
void entry_attr_name(struct entry_name *out, const struct dm_attr *a);
struct dm_attr *entry_attr_add_name(struct entry *e, const struct entry_name *n);
struct dm_attr *entry_attr_append_name(struct entry *e, const struct entry_name *n);

/* Appends a copy of len bytes to attribute `name` (created if needed). Duplicate values
 * are kept as given (LDAP servers reject them; the map engine removes them). */
int entry_add_value(struct entry *e, const char *name, const void *data, size_t len) DM_MUST_USE;
int entry_add_str(struct entry *e, const char *name, const char *s) DM_MUST_USE;
int attr_add_value(struct dm_attr *a, const void *data, size_t len) DM_MUST_USE;

/* Replaces value i (< a->nvals) of a by a copy of len bytes (data may point into the value
 * it replaces); the old value is wiped first when a is sensitive. */
int attr_set_value(struct dm_attr *a, size_t i, const void *data, size_t len) DM_MUST_USE;

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

/* The undo images of a modify (connectors filling apply_result.before/after): for every
 * attribute the diff touches, and every name of extra (NULL-terminated, may be NULL: e.g. the
 * naming attributes of a renamed entry), *before gets its values in old and *after its values
 * once the diff is applied (want's values, or with merge old's plus want's); an attribute
 * without values was, or will be, absent. dn of both: old's (before) and want's (after). New
 * entries, caller frees both with entry_free(); on DM_ENOMEM neither is set. */
int entry_diff_images(struct entry **before, struct entry **after, const struct entry *old,
                      const struct entry *want, const char *const *merge,
                      const struct entry_diff *d, const char *const *extra) DM_MUST_USE;

#endif
