/*
 * map.h: the attribute-map engine. The language is documented for users in
 * dirmig-map(5) (doc/dirmig-map.5), whose examples the tests run.
 *
 * A map is JSON, compiled once by map_compile() and applied per entry by map_apply()
 * without re-parsing. It has one section per object kind ("users", "groups"); each says
 * how to build the target entry's attributes from the source entry:
 *
 *   {
 *     "key": { "source": "entryUUID" },
 *     "users": {
 *       "auto": "by-name",                         copy every source attribute by name
 *       "exclude": ["entryUUID", "pwdHistory"],    ...except these
 *       "objectclasses": { "posixAccount": null, "oldClass": "newClass" },
 *       "attributes": {
 *         "mail":        { "from": "mail", "transforms": ["trim", "lower"] },
 *         "displayName": { "template": "{givenName} {sn}" },
 *         "o":           { "value": "Example Corp" },
 *         "mobile":      { "from": "telephoneNumber" },          rename
 *         "description": { "from": "description", "default": "n/a" },
 *         "street":      null                                     drop
 *       }
 *     },
 *     "groups": { "auto": "by-name" }
 *   }
 *
 * A missing section means {"auto": "by-name"}. Explicit attribute rules override the
 * same-named target attribute of auto-mapping. objectClass values are mapped through
 * "objectclasses" (null drops the class; unlisted classes pass through). Values are binary
 * safe and copied byte-exact unless a transform is named; userPassword is always copied
 * byte-exact (never transformed). Duplicate values produced by a rule are removed.
 * Templates substitute the first value of each {attr}; a rule whose template names an
 * attribute the entry lacks, or whose "from" attribute is absent, produces no value
 * unless "default" is set.
 *
 * Errors at compile time name the map file position (file:line:col) via jsonpos and the
 * key path; errors at apply time name the entry DN and target attribute.
 *
 * ---- the full language ----
 *
 * Top-level keys besides "key", "users", "groups":
 *   "source_attributes": ["uid", "cn", ...]   names the source may have; when given (or
 *                        "source_profile"), every "from" name and template placeholder must
 *                        be one of them (case-insensitive, options ignored) or the map is
 *                        refused at load
 *   "source_profile":    "../profiles/inetorgperson.json"  the same list from a profile file
 *   "target_profile":    "../profiles/okta-user.json"  per-attribute constraints for the
 *                        "users" section (validate.h); a section may name its own
 *                        "target_profile" too
 * Profile paths: absolute, or relative to the directory of the map file (origin), then to
 * its parent directory (so "profiles/x.json" works from schema/maps/), then to the cwd,
 * then to dirmig's data directory (agent/util/datadir.h).
 *
 * Rule keys ("attributes" members):
 *   "from":       "attr", or ["a", "b"]: the first attribute present in the entry wins
 *   "template":   "{givenName} {sn}" (first value of each placeholder)
 *   "value":      a constant
 *   "transforms": a chain of steps, see schema/transform.h (trim, lower, upper, first, all,
 *                 email, guid, sid, filetime, generalized, regex, split, join, lookup,
 *                 default, date, flag); values from "from"/"template"/"value" run through
 *                 every step in order
 *   "default":    literal used (untransformed) when the rule produced no value
 *   constraint keys (validate.h): "type", "max_length", "min_length", "required", "unique",
 *                 "pattern", "pii", "max_utf8_bytes_per_char"; they override the target
 *                 profile's constraints for that attribute field by field
 *
 * Load-time checks (each "file:line:col: key.path: problem"): unknown key or transform, bad
 * regex (PCRE2's message and offset), a replace group beyond the expression's groups, a "from" or
 * placeholder not among the declared source attributes, the output type of the last typed
 * transform differing from the attribute's "type" (a "string" type accepts any output), a
 * "default" or untransformed "value" literal that is not of that type, max_length < 1,
 * min_length > max_length, an unreadable or bad profile.
 *
 * Apply semantics: a "from" rule without transforms copies the values byte-exact; with
 * transforms, each value runs through the chain (value-list steps see the whole list); an
 * empty result is dropped; "default" fills an attribute left without values. Sensitive
 * attributes (entry_is_sensitive_attr()) are never transformed. Constraints are not
 * enforced by map_apply(): map_check() reports them.
 */
#ifndef DM_MAP_H
#define DM_MAP_H

#include <jansson.h>
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "agent/util/jsonpos.h"
#include "schema/entry.h"
#include "schema/validate.h"

enum map_kind { MAP_USERS = 0, MAP_GROUPS = 1 };

struct map;

/* Compiles root (borrowed). origin names the file for messages ("dirmig.json" or the map
 * file path) and its directory is the base of relative profile paths; pos (may be NULL)
 * gives positions, and prefix is the key path of root inside that document ("map" for an
 * inline map in dirmig.json, "" for a map file). Returns a new map; caller frees with
 * map_free(). */
int map_compile(struct map **out, const json_t *root, const char *origin, const struct jsonpos *pos,
                const char *prefix, struct dm_err *err) DM_MUST_USE;

/* Reads and compiles a map file. */
int map_load_file(struct map **out, const char *path, struct dm_err *err) DM_MUST_USE;

/* map_compile() and map_load_file() that go on after a problem: every problem (the first
 * 20, then "... and N more") is appended to errors, one "file:line:col: path: problem" a
 * line, and err holds the first. The compile goes on with the next key, section and rule;
 * a problem in what the rules are checked against (source_attributes, source_profile,
 * target_profile at the top level) stops it. */
int map_compile_all(struct map **out, const json_t *root, const char *origin,
                    const struct jsonpos *pos, const char *prefix, struct buf *errors,
                    struct dm_err *err) DM_MUST_USE;
int map_load_file_all(struct map **out, const char *path, struct buf *errors,
                      struct dm_err *err) DM_MUST_USE;

/* The default map: both kinds {"auto": "by-name"}, key entryUUID. */
int map_default(struct map **out, struct dm_err *err) DM_MUST_USE;

void map_free(struct map *m); /* NULL-safe */

/* Source correlation attribute ("entryUUID" unless the map says otherwise). Borrowed. */
const char *map_key_attr(const struct map *m);

/* Target correlation attribute ("key": {"target": ...}), or NULL when the map does not say
 * (then the source attribute name is used on both sides). Borrowed. */
const char *map_key_target(const struct map *m);

/* Fallback correlation rules ("key": {"fallback": [{"source": A, "target": B}, ...]}),
 * tried in order by `dirmig mapping` when the key finds no candidate. Sets two borrowed
 * parallel arrays; returns their length (at most MAP_MAX_FALLBACK). */
#define MAP_MAX_FALLBACK 7
size_t map_key_fallbacks(const struct map *m, const char *const **sources,
                         const char *const **targets);

/* ---- attribute ownership ----
 *
 * Who owns each target attribute once an object exists at the target (DESIGN "Ownership"):
 *   authoritative  the source wins: the target's values are made equal to the mapped ones
 *                  (an attribute the map names but the entry lacks is deleted), and a value
 *                  changed at the target is drift that the next run repairs. The default.
 *   create_only    written when the object is created, never again: the default for
 *                  userPassword and the other sensitive attributes (entry_is_sensitive_attr),
 *                  so a password changed at the target is never reverted.
 *   merge          multi-valued: the mapped values are added, the target's own values kept.
 *                  The default for objectClass (auxiliary classes added at the target stay).
 * Set per rule ("ownership": "merge") or per section for any attribute, ruled or auto-mapped
 * ("ownership": {"mail": "create_only"}); the section's table wins. Target attributes the
 * map does not name are never modified or deleted (the planner decides what is named).
 */
enum map_ownership { MAP_OWN_AUTHORITATIVE = 0, MAP_OWN_CREATE_ONLY, MAP_OWN_MERGE };

/* The ownership of target attribute attr in kind's section (case-insensitive name). */
enum map_ownership map_attr_ownership(const struct map *m, enum map_kind kind, const char *attr);

/* "authoritative", "create_only" or "merge". Static. */
const char *map_ownership_name(enum map_ownership o);

/* The target attributes the kind's explicit rules name (dropped ones excluded): borrowed
 * array of *out names, valid as long as the map. With "auto": "none" these are all the
 * attributes the map can produce. */
size_t map_named_attrs(const struct map *m, enum map_kind kind, const char *const **out);

/* 1 when the kind's section copies source attributes by name ("auto": "by-name"). */
int map_auto_by_name(const struct map *m, enum map_kind kind);

/* Builds the target entry for src: attributes per the kind's rules, objectClass mapped,
 * dn and key copied from src (the caller rebases the DN). Returns a new entry; caller
 * frees with entry_free(). A compiled map is read-only and may be shared by threads (each
 * thread matches regexes with match data of its own). Memory: the new entry is one arena
 * (entry.h); the rules' intermediate values live in a scratch arena on the stack, so an
 * entry costs one malloc() unless it outgrows the first 4 KiB. */
int map_apply(struct entry **out, const struct map *m, enum map_kind kind, const struct entry *src,
              struct dm_err *err) DM_MUST_USE;

/* ---- constraints, profiles, explain ---- */

/* The constraint table of a kind's section: one entry per constrained target attribute
 * (rule keys merged over the target profile). Borrowed; *n set to the count. */
const struct validate_constraint *map_constraints(const struct map *m, enum map_kind kind,
                                                  size_t *n);

/* Appends to out a human explanation of how src maps: per target attribute its rule (auto /
 * from / template / value / dropped), the source values, each transform step and its
 * result, the default if used, the final values and the constraint problems. Values of
 * pii and sensitive attributes (userPassword, ...) show as ***; binary bytes as \xNN. */
int map_explain(struct buf *out, const struct map *m, enum map_kind kind, const struct entry *src,
                struct dm_err *err) DM_MUST_USE;

/* ---- constraints and masking (map_check.c) ---- */

/* Checks a mapped entry (the output of map_apply()) against every constraint of the kind's
 * section (rule keys merged over the target profile), except uniqueness. *out is a new
 * array (NULL when *n is 0); caller frees with free(). */
int map_check(struct map_problem **out, size_t *n, const struct map *m, enum map_kind kind,
              const struct entry *mapped, struct dm_err *err) DM_MUST_USE;

/* Target attributes with "unique": true. *out is a borrowed array of borrowed names, valid
 * while m lives; returns the count. */
size_t map_unique_attrs(const struct map *m, enum map_kind kind, const char ***out);

/* 1 when attr's values must be masked: "pii": true, or a sensitive attribute
 * (entry_is_sensitive_attr(): userPassword, unicodePwd, ...). */
int map_attr_is_pii(const struct map *m, enum map_kind kind, const char *attr);

/* value unchanged, or "***" when map_attr_is_pii(). Borrowed / static. */
const char *map_mask(const struct map *m, enum map_kind kind, const char *attr, const char *value);

/* Appends entry_dump() of e with the values of every pii attribute of the kind replaced by
 * "***" (sensitive attributes are masked by entry_dump() itself). For logs, reports and
 * exports of mapped entries. */
int map_dump_masked(struct buf *out, const struct map *m, enum map_kind kind,
                    const struct entry *e) DM_MUST_USE;

#endif
