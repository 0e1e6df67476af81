/*
 * transform.h: the value transforms of the map language, and UTF-8 lengths.
 *
 * The steps are built from three modules usable on their own: transform_date.h (dates,
 * AD FILETIME and integers as text; included here, the "date" step stores its formats),
 * transform_regex.h (the regex matcher; included here, the "regex" step holds one) and
 * transform_ad.h (objectGUID and objectSid as text).
 *
 * A transform step is compiled once from its JSON form by transform_compile() and run per
 * entry by transform_run() on a list of values, without touching JSON again. Steps chain:
 * the output list of one is the input of the next. Every step except the value-list
 * operations ("first", "all", "split", "join", "default") works on each value on its own.
 * Values are binary safe (pointer + length); an empty result value is dropped, since LDAP
 * has no empty values.
 *
 * JSON forms (an item of a rule's "transforms" array):
 *
 *   "trim"          strip ASCII white space at both ends
 *   "lower"/"upper" ASCII case mapping (UTF-8 bytes >= 0x80 are left alone)
 *   "first"         keep the first value only; "all" keeps every value (explicit no-op)
 *   "email"         trim, strip "mailto:" and surrounding <>, lowercase the domain part
 *                   (the local part is case-sensitive per RFC 5321 and is kept)
 *   "guid"          16 raw bytes (AD objectGUID) -> "32ee8b23-34aa-4050-9eed-a9abe3f11783"
 *   "sid"           raw objectSid -> "S-1-5-21-...-1103"
 *   "filetime"      AD FILETIME (100 ns ticks since 1601) -> ISO 8601 UTC
 *                   "2026-11-25T13:27:13Z"; 0 and 9223372036854775807 mean "never" and
 *                   produce no value (use a later {"default": ...} to name it)
 *   "generalized"   GeneralizedTime -> ISO 8601 UTC
 *   {"regex": {"match": RE, "replace": "x\\1y", "global": false}}
 *                   PCRE2 regex (transform_regex.h); replaces the first (or every) match;
 *                   \0..\9 in replace are the groups, "\\\\" a backslash. The whole value
 *                   is the subject (a global replace resumes inside it, so "^" matches only
 *                   at its start). A value that does not match passes unchanged. Compiled
 *                   (and JIT-compiled) once at load.
 *   {"split": ","}  each value split on the separator (list grows; empty parts dropped)
 *   {"join": ";"}   all values joined into one
 *   {"lookup": {"table": {"a": "b"}, "default": "x", "keep": false, "ignore_case": false}}
 *                   exact (bytewise; with "ignore_case", ASCII case-insensitive) table
 *                   look-up; an unmatched value becomes "default" when given, else is kept
 *                   when "keep" is true, else dropped
 *   {"default": "x"} the list becomes ["x"] when it is empty at this point
 *   {"date": {"from": "generalized|iso8601|filetime|unix", "to": "iso8601|generalized|date|unix"}}
 *                   "date" output is "YYYY-MM-DD"; "unix" is seconds since 1970 UTC
 *   {"flag": {"bit": 2, "set": "false", "clear": "true"}}
 *                   the value is an integer (userAccountControl); "bit" is the flag VALUE
 *                   (mask, e.g. 2 = ACCOUNTDISABLE 0x2, 512 = NORMAL_ACCOUNT), not a bit
 *                   index ("mask" is accepted as a synonym). Output is "set" when
 *                   (value & bit) != 0, else "clear"; defaults "true"/"false".
 *
 * Conversions ("guid", "sid", "filetime", "generalized", "date", "flag") pass a value they
 * cannot parse through unchanged, so that the type constraint reports it (wrong_type)
 * instead of the value silently disappearing.
 */
#ifndef DM_TRANSFORM_H
#define DM_TRANSFORM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "agent/util/arena.h"
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "schema/entry.h"
#include "schema/transform_date.h"
#include "schema/transform_regex.h"

#define TRANSFORM_VALUE_LIMIT ((size_t)16 << 20) /* one produced value */

/* The type a step's output is known to have (for the load-time check against the rule's
 * "type" constraint). TRANSFORM_T_ANY: the step keeps whatever came in. */
enum transform_type {
    TRANSFORM_T_ANY = 0,
    TRANSFORM_T_STRING,
    TRANSFORM_T_INTEGER,
    TRANSFORM_T_BOOLEAN,
    TRANSFORM_T_DATE,
    TRANSFORM_T_EMAIL,
    TRANSFORM_T_DN,
};

enum transform_op {
    TRANSFORM_TRIM = 0,
    TRANSFORM_LOWER,
    TRANSFORM_UPPER,
    TRANSFORM_FIRST,
    TRANSFORM_ALL,
    TRANSFORM_EMAIL,
    TRANSFORM_GUID,
    TRANSFORM_SID,
    TRANSFORM_FILETIME,
    TRANSFORM_GENERALIZED,
    TRANSFORM_REGEX,
    TRANSFORM_SPLIT,
    TRANSFORM_JOIN,
    TRANSFORM_LOOKUP,
    TRANSFORM_DEFAULT,
    TRANSFORM_DATE,
    TRANSFORM_FLAG,
};

struct transform_pair {
    char *key;
    size_t key_len;
    char *val;
    size_t val_len;
};

/* One compiled step. Filled by transform_compile(); freed by transform_clear(). */
struct transform_step {
    enum transform_op op;
    /* regex */
    struct transform_regex rx;
    char *repl;
    int global;
    /* split / join separator; default / lookup default value */
    char *text;
    size_t text_len;
    int has_text;
    /* lookup: sorted by key (bytewise) */
    struct transform_pair *table;
    size_t ntable;
    int keep;
    int icase; /* keys lowercased; values lowercased before the look-up */
    /* date */
    enum transform_datefmt date_from, date_to;
    /* flag */
    uint64_t mask;
    char *set_val, *clear_val;
};

/* A list of owned values (each data has len bytes plus a NUL). With ar NULL the array and
 * every value come from malloc() and are freed by the list; with an arena (map_apply()'s
 * per-rule scratch) they are pieces of it: nothing is freed one by one, and the list is
 * gone when the arena is reset. */
struct transform_vals {
    size_t n;
    size_t cap;
    struct dm_val *v;
    struct arena *ar;
};

/* Compiles one "transforms" item. On a bad item returns DM_EINVAL and writes a one-line
 * reason (no position: the caller adds file:line:col and the key path) to why. *out is
 * cleared first; on failure it holds nothing that needs freeing. */
int transform_compile(struct transform_step *out, const json_t *v, char *why,
                      size_t whylen) DM_MUST_USE;
void transform_clear(struct transform_step *s); /* frees what the step holds; NULL-safe */

/* Static name of a step ("trim", "regex", ...). */
const char *transform_name(const struct transform_step *s);

/* Output type of a step (TRANSFORM_T_ANY when it keeps the input type). */
enum transform_type transform_output_type(const struct transform_step *s);

/* Static name of a type ("string", "integer", ...; "any"). */
const char *transform_type_name(enum transform_type t);

/* Runs one step: reads in, replaces out's contents (out is reset first; in and out must
 * differ). DM_ENOMEM or DM_ELIMIT (value larger than TRANSFORM_VALUE_LIMIT) on failure. */
int transform_run(struct transform_vals *out, const struct transform_step *s,
                  const struct transform_vals *in) DM_MUST_USE;

/* Runs s on l in place when the step allows it (trim, lower, upper, first, all, default):
 * no copies. Returns DM_OK when done, DM_ENOTFOUND (l untouched) when the step needs
 * transform_run(), or DM_ENOMEM. Same result as transform_run(). */
int transform_run_inplace(struct transform_vals *l, const struct transform_step *s) DM_MUST_USE;

/* ---- value lists ---- */
void transform_vals_init(struct transform_vals *l); /* an empty list on malloc() */
/* An empty list whose array and values are pieces of ar (borrowed: must outlive the use of
 * the list; resetting ar empties the list's memory, so init the list again after it). */
void transform_vals_init_arena(struct transform_vals *l, struct arena *ar);
void transform_vals_reset(struct transform_vals *l); /* frees values, keeps the array */
void transform_vals_free(struct transform_vals *l);
/* Appends a copy of len bytes (empty values are accepted; callers drop them). */
int transform_vals_add(struct transform_vals *l, const void *data, size_t len) DM_MUST_USE;
/* Appends a value of len bytes for the caller to fill (its NUL is set); *out points at its
 * first byte. DM_ELIMIT beyond TRANSFORM_VALUE_LIMIT, DM_ENOMEM. */
int transform_vals_push(unsigned char **out, struct transform_vals *l, size_t len) DM_MUST_USE;

/* ---- UTF-8 ---- */

/* Counts UTF-8 code points of s (len bytes). Returns 0 and sets *nchars and *maxbytes (the
 * longest sequence seen, 0 for an empty string); -1 when s is not valid UTF-8 (overlong,
 * surrogate, truncated or > U+10FFFF sequences are invalid). */
int transform_utf8_len(size_t *nchars, int *maxbytes, const char *s, size_t len);

#endif
