/*
 * map_priv.h: the compiled form of a map, shared by the files of the map engine and by
 * nothing else (schema/map.h is the public contract).
 *
 *   schema/map.c          the map object: map_free() and the accessors
 *   schema/map_nset.c     the case-insensitive attribute-name sets the sections index with
 *   schema/map_compile.c  JSON -> struct map: map_compile(), map_load_file(), map_default(),
 *                         profiles, load-time checks with file:line:col
 *   schema/map_apply.c    map_apply(): one entry through a section's rules
 *   schema/map_explain.c  map_explain(): map_apply() again, with a recorder per rule
 *   schema/map_check.c    map_check() against the constraints, map_mask() and friends
 *
 * Call order: map_compile() (or map_load_file() / map_default()) -> map_apply() and
 * map_explain() per entry, from any thread (the map is read-only) -> map_free().
 *
 * map_compile() turns the JSON (see map.h) into plain arrays so that map_apply(), called
 * once per entry, never touches jansson:
 *
 *   struct map -> two sections (users, groups) -> rules[], exclude[], ocs[]
 *   struct map_rule = target name + one source (FROM attr / TEMPLATE pieces / VALUE bytes)
 *                     + transforms[] + optional default
 *
 * Apply order per entry: auto by-name copy (minus excluded, operational and explicitly
 * ruled names), then the explicit rules in file order, then objectClass mapping, with
 * attr_dedup() on everything produced. Transforms apply to values from "from", "template"
 * and "value", never to "default" (a literal the admin wrote) and never to sensitive
 * attributes such as userPassword, which are always copied byte-exact.
 */
#ifndef DM_MAP_PRIV_H
#define DM_MAP_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include "agent/util/buf.h"
#include "schema/entry.h"
#include "schema/map.h"
#include "schema/transform.h"
#include "schema/validate.h"

#define MAP_VALUE_LIMIT ((size_t)16 << 20) /* one produced value */

enum map_src { MAP_SRC_FROM = 0, MAP_SRC_TEMPLATE, MAP_SRC_VALUE };

/* One template piece: literal text, or (is_attr) the name of the attribute whose first
 * value is substituted. */
struct map_piece {
    int is_attr;
    char *text;
    size_t len;
    size_t slot; /* is_attr: index in the section's "need" set */
};

/* A case-insensitive set of attribute names (open addressing), so that per-entry look-ups
 * cost one hash instead of a strcasecmp() per candidate. Names are borrowed. */
struct map_nset {
    const char **names;
    unsigned char *base_ok; /* 1: also matches "name;options" (exclude, operational) */
    size_t *lens;           /* strlen of each name */
    size_t n;
    uint32_t *tab; /* index + 1; 0 = empty */
    size_t mask;   /* table size - 1; 0 = not built */
};

struct map_rule {
    char *target;
    struct entry_name tname; /* target, looked up once (entry_attr_append_name()) */
    char *path;              /* key path of the rule, for load-time messages */
    int drop;                /* "name": null */
    enum map_src src;
    char **froms; /* MAP_SRC_FROM: first present wins */
    size_t nfroms;
    size_t *from_slot;        /* index of each froms[] in the section's "need" set */
    unsigned char *from_raw;  /* each froms[] is a sensitive attribute */
    int raw;                  /* the target is a sensitive attribute */
    int unique_target;        /* no other rule has the same target (case-insensitive) */
    struct map_piece *pieces; /* MAP_SRC_TEMPLATE */
    size_t npieces;
    char *value; /* MAP_SRC_VALUE */
    size_t value_len;
    struct transform_step *xf;
    size_t nxf;
    char *def; /* NULL when no default */
    size_t def_len;
    struct validate_constraint cons; /* the rule's own constraint keys */
    int own;                         /* "ownership": enum map_ownership, -1 = not set */
};

struct map_oc {
    char *from;
    char *to; /* NULL: drop the class */
};

/* One "ownership" member of a section: an attribute (ruled or auto-mapped) and its mode. */
struct map_own {
    char *name;
    enum map_ownership own;
};

struct map_section {
    int auto_by_name;
    struct map_own *owns; /* section "ownership": {"attr": "merge", ...} */
    size_t nowns;
    const char **named; /* borrowed rule targets (not dropped): the attributes the map names */
    size_t nnamed;
    char **exclude;
    size_t nexclude;
    struct map_oc *ocs;
    size_t nocs;
    struct map_rule *rules;
    size_t nrules;
    struct validate_profile *profile; /* target profile, NULL if none */
    char *profile_path;               /* key path of "target_profile", for messages */
    struct validate_constraint *cons; /* merged constraints (map_compile.c) */
    size_t ncons;
    const char **unique; /* borrowed names from cons[] with unique */
    size_t nunique;
    struct map_nset need; /* source attributes the rules read */
    struct map_nset skip; /* names auto-mapping skips: exclude, operational, rule targets */
};

struct map {
    char *key_source;
    char *key_target; /* NULL when the map does not say */
    size_t nfallback; /* key.fallback rules for `dirmig mapping` */
    char *fb_source[MAP_MAX_FALLBACK];
    char *fb_target[MAP_MAX_FALLBACK];
    struct map_section sec[2];
    char **src_attrs; /* declared source attributes (NULL: not declared) */
    size_t nsrc_attrs;
    int has_src_attrs;
};

/* Section names as map keys and in map_explain() output, indexed by enum map_kind. */
extern const char *const map_section_names[2];

/* ---- map_nset.c ---- */

/* Makes room for max names (call once before map_nset_add). Returns DM_ENOMEM on failure;
 * the arrays are freed with the map (section_clear() in map.c). */
int map_nset_init(struct map_nset *ns, size_t max);

/* Adds name (borrowed: must outlive the set; the set may keep the interned copy instead)
 * unless present; returns its index. base_ok 1 also matches "name;options". */
size_t map_nset_add(struct map_nset *ns, const char *name, int base_ok);

/* Index of name (len bytes) in ns, or -1. hash is the FNV-1a of the ASCII-lowercased name,
 * as entry_name_hash() computes it (map_input_index() takes it from dm_attr.hash). */
long map_nset_find_h(const struct map_nset *ns, const char *name, size_t len, uint32_t hash);

/* Index of name (len bytes) in ns, or -1. */
long map_nset_find(const struct map_nset *ns, const char *name, size_t len);

/* Index of attribute a's name in ns, or -1: its hash and, for interned names, a pointer
 * comparison; no hashing and mostly no string comparison. */
long map_nset_find_attr(const struct map_nset *ns, const struct dm_attr *a);

/* ---- map_apply.c, also used by map_explain.c ---- */

/* The source entry with the attributes the section's rules read, found once per entry:
 * slots[i] is the attribute named need.names[i], NULL when absent. */
struct map_input {
    const struct entry *e;
    const struct dm_attr **slots;
};

#define MAP_STACK_SLOTS 64

/* map_explain()'s recorder; NULL in map_apply(). */
struct map_trace {
    struct buf *out;
    int mask; /* print values as *** */
};

/* 1 when auto-mapping skips name: excluded by the section's list or as operational (full
 * name or the name without options), or the target of an explicit rule (full name only). */
int map_auto_skipped(const struct map_section *s, const char *name);

/* Fills ms for src; slots points to stack (MAP_STACK_SLOTS long) or to a new array that
 * the caller frees when it is not stack. */
int map_input_index(struct map_input *ms, const struct map_section *s, const struct entry *src,
                    const struct dm_attr **stack);

/* The values rule r produces for src (source values, transforms, default), into *res
 * (initialised and empty; the caller frees it); t (may be NULL) records every step. */
int map_rule_values(struct transform_vals *res, const struct map_rule *r,
                    const struct map_input *src, struct map_trace *t);

/* ---- map_explain.c, also used by map_apply.c's recorder ---- */

/* Appends "  label: [v1, v2]" and a newline to b: the first values (TRACE_SHOW_VALUES), each
 * quoted and cut, bytes outside printable ASCII / valid UTF-8 as \xNN, or *** when mask. */
int map_trace_list(struct buf *b, const char *label, const struct dm_val *v, size_t n, int mask);

#endif
