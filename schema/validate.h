/*
 * validate.h: constraints on mapped attributes, target/source attribute profiles, and the
 * check of one attribute's values against a constraint. It knows nothing of maps: the map
 * engine (map.h) holds constraints in its rules and applies them to a whole mapped entry
 * with map_check().
 *
 * Constraint keys, allowed in a map rule (schema/map.h) and in a profile's attribute:
 *
 *   "type":        "string" | "integer" | "boolean" | "date" | "email" | "dn"
 *                  integer: optional sign and digits; boolean: true/false (any case);
 *                  date: ISO 8601 (YYYY-MM-DD or date-time) or GeneralizedTime;
 *                  email: local@domain (one '@', no spaces, domain with a dot, <= 254 bytes);
 *                  dn: a DN that dn_parse() accepts
 *   "max_length":  characters (UTF-8 code points, not bytes), >= 1
 *   "min_length":  characters, >= 0
 *   "required":    true: the attribute must have at least one value
 *   "unique":      true: no two entries may share a value (checked by the agent over the
 *                  whole population)
 *   "pattern":     PCRE2 regex the WHOLE value must match (anchored at both ends for you)
 *   "pii":         true: the value is masked ("***") in every log, report, explain, export
 *   "max_utf8_bytes_per_char": 1..4; 3 for Okta (no 4-byte, non-BMP characters)
 *
 * A profile file describes the attributes of one side:
 *
 *   { "name": "okta-user", "max_utf8_bytes_per_char": 3,
 *     "attributes": { "login": {"type": "email", "required": true, "min_length": 5,
 *                               "max_length": 100, "unique": true}, ... } }
 *
 * The profile-level "max_utf8_bytes_per_char" (and "pii") apply to every attribute of the
 * profile unless the attribute says otherwise. A target profile's constraints apply to the
 * mapped entry; a map rule's own keys override them field by field. A source profile only
 * lists attribute names (used to check "from" and template placeholders at load).
 *
 * A value checked for type, length, pattern or UTF-8 bytes must be valid UTF-8 (else
 * "bad_chars"). Attributes with only "required", "unique" or "pii" are not looked at value
 * by value, so binary data (jpegPhoto, objectGUID) can carry those.
 */
#ifndef DM_VALIDATE_H
#define DM_VALIDATE_H

#include <jansson.h>
#include <stddef.h>
#include "agent/util/err.h"
#include "schema/entry.h"
#include "schema/transform.h"

/* Which fields of a constraint were given (merge: a rule overrides a profile per field). */
#define VALIDATE_HAS_TYPE 0x01u
#define VALIDATE_HAS_MAX 0x02u
#define VALIDATE_HAS_MIN 0x04u
#define VALIDATE_HAS_REQUIRED 0x08u
#define VALIDATE_HAS_UNIQUE 0x10u
#define VALIDATE_HAS_PATTERN 0x20u
#define VALIDATE_HAS_PII 0x40u
#define VALIDATE_HAS_UTF8 0x80u

/* The constraints on one target attribute. */
struct validate_constraint {
    char *attr;               /* target attribute name */
    unsigned has;             /* VALIDATE_HAS_* */
    enum transform_type type; /* TRANSFORM_T_ANY when not given */
    size_t max_length;        /* characters; 0 = no limit */
    size_t min_length;        /* characters */
    int required, unique, pii;
    int max_utf8;                   /* 0 = any valid UTF-8 */
    struct transform_regex pattern; /* whole-value match; set when has & VALIDATE_HAS_PATTERN */
    char *pattern_src;              /* as written, for messages */
};

/* A loaded profile: one constraint per attribute. */
struct validate_profile {
    char *name;
    size_t nattrs;
    struct validate_constraint *attrs;
};

/* One problem found in a mapped entry. */
struct map_problem {
    const char *category; /* static: "missing_required", "too_long", "too_short", "wrong_type",
                             "invalid_email", "pattern", "bad_chars" ("duplicate" is for the
                             agent's uniqueness check) */
    char attr[64];
    char msg[256]; /* never contains a value (pii or not): lengths and rules only */
};

/* Applies one constraint key to c. Returns DM_OK when key was a constraint key and its
 * value is valid, DM_ENOTFOUND when key is not a constraint key (c unchanged), DM_EINVAL
 * with a one-line reason in why (no position) when the value is bad. */
int validate_constraint_set(struct validate_constraint *c, const char *key, const json_t *v,
                            char *why, size_t whylen) DM_MUST_USE;

/* Copies into dst every field src has that dst lacks (dst's own fields win). */
int validate_constraint_merge(struct validate_constraint *dst,
                              const struct validate_constraint *src) DM_MUST_USE;

/* Frees what c holds (not c itself). */
void validate_constraint_clear(struct validate_constraint *c);

/* 1 when s (len bytes) is a valid value of type t (TRANSFORM_T_ANY and _STRING: always). */
int validate_value_ok(enum transform_type t, const char *s, size_t len);

/* Parses a type name; DM_EINVAL when unknown. */
int validate_type_parse(enum transform_type *out, const char *name) DM_MUST_USE;

/* Loads a profile file; errors are "path:line:col: key.path: problem". Caller frees with
 * validate_profile_free(). */
int validate_profile_load(struct validate_profile **out, const char *path,
                          struct dm_err *err) DM_MUST_USE;
void validate_profile_free(struct validate_profile *p); /* NULL-safe */

/* Constraint of attr (case-insensitive) in p, or NULL. Borrowed. */
const struct validate_constraint *validate_profile_find(const struct validate_profile *p,
                                                        const char *attr);

/* Checks the values of one attribute (a may be NULL: missing) against c; appends problems
 * to *list / *n (grown with realloc). */
int validate_check_attr(struct map_problem **list, size_t *n, const struct validate_constraint *c,
                        const struct dm_attr *a) DM_MUST_USE;

#endif
