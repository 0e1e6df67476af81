/*
 * transform.h: the value transforms of the map language, and the conversion helpers they
 * are built from (dates, AD FILETIME, objectGUID, objectSid, UTF-8 lengths).
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
 *   {"regex": {"match": ERE, "replace": "x\\1y", "global": false}}
 *                   POSIX extended regex; replaces the first (or every) match; \0..\9 in
 *                   replace are the groups, "\\\\" a backslash. A value that does not match
 *                   passes unchanged. Compiled once at load.
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
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "schema/entry.h"

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

/* Date formats of the "date" step. */
enum transform_datefmt {
    TRANSFORM_DATE_GENERALIZED = 0,
    TRANSFORM_DATE_ISO8601,
    TRANSFORM_DATE_FILETIME,
    TRANSFORM_DATE_UNIX,
    TRANSFORM_DATE_DAY, /* "date": YYYY-MM-DD (output only) */
};

struct transform_pair {
    char *key;
    size_t key_len;
    char *val;
    size_t val_len;
};

struct transform_fastre;

/* One compiled step. Filled by transform_compile(); freed by transform_clear(). */
struct transform_step {
    enum transform_op op;
    /* regex */
    regex_t re;
    int has_re;
    char *repl;
    int global;
    struct transform_fastre *fast; /* a faster exact matcher for simple patterns, or NULL */
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

/* A list of owned values (each data has len bytes plus a NUL). */
struct transform_vals {
    size_t n;
    size_t cap;
    struct dm_val *v;
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
void transform_vals_init(struct transform_vals *l);
void transform_vals_reset(struct transform_vals *l); /* frees values, keeps the array */
void transform_vals_free(struct transform_vals *l);
/* Appends a copy of len bytes (empty values are accepted; callers drop them). */
int transform_vals_add(struct transform_vals *l, const void *data, size_t len) DM_MUST_USE;

/* ---- helpers, usable on their own ---- */

/* objectGUID bytes (16) -> 36-char lowercase canonical string + NUL (MS-DTYP 2.3.4.2: the
 * first three fields little-endian). DM_EINVAL when n != 16. */
int transform_guid_to_string(char out[37], const unsigned char *b, size_t n) DM_MUST_USE;

/* objectSid bytes -> "S-1-5-21-..." (MS-DTYP 2.4.2.1; authority >= 2^32 as 0x + 12 hex).
 * DM_EINVAL on a malformed SID or when out (outlen bytes) is too small (192 always fits). */
int transform_sid_to_string(char *out, size_t outlen, const unsigned char *b, size_t n) DM_MUST_USE;

/* Parsers: set *unix_s (seconds since 1970-01-01 UTC, may be negative); DM_EINVAL when s
 * (len bytes) is not in the format. */
/* RFC 4517 3.3.13: YYYYMMDDHH[MM[SS]][(.|,)fraction](Z|+-HH[MM]); fraction dropped. */
int transform_parse_generalized(int64_t *unix_s, const char *s, size_t len) DM_MUST_USE;
/* ISO 8601: YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS[.fff]](Z|+-HH[:MM]) ('t' or ' ' also
 * accepted for 'T'); a date-time without a zone is taken as UTC. */
int transform_parse_iso8601(int64_t *unix_s, const char *s, size_t len) DM_MUST_USE;
/* AD FILETIME decimal. *never set (and *unix_s 0) for 0 and 9223372036854775807. */
int transform_parse_filetime(int64_t *unix_s, int *never, const char *s, size_t len) DM_MUST_USE;
/* Decimal integer (optional sign), no trailing garbage. */
int transform_parse_int(int64_t *v, const char *s, size_t len) DM_MUST_USE;

/* Formats unix_s as fmt (not TRANSFORM_DATE_FILETIME: gives ticks) into out (>= 32 bytes). */
void transform_format_time(char *out, size_t outlen, int64_t unix_s, enum transform_datefmt fmt);

/* Counts UTF-8 code points of s (len bytes). Returns 0 and sets *nchars and *maxbytes (the
 * longest sequence seen, 0 for an empty string); -1 when s is not valid UTF-8 (overlong,
 * surrogate, truncated or > U+10FFFF sequences are invalid). */
int transform_utf8_len(size_t *nchars, int *maxbytes, const char *s, size_t len);

#endif
