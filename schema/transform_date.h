/*
 * transform_date.h: dates and integers as text, for the map language's date steps
 * ("generalized", "filetime", {"date": ...}), the constraint checks of types date and
 * integer, and dated activity: parse a value into seconds since 1970-01-01 UTC, format
 * seconds in one of the supported forms.
 *
 * Pure functions, no state, no locale and no time zone database: every form carries its
 * own offset or is UTC. Dates are proleptic Gregorian; a leap second (:60) is clamped to
 * :59 since time_t has no room for it.
 */
#ifndef DM_TRANSFORM_DATE_H
#define DM_TRANSFORM_DATE_H

#include <stddef.h>
#include <stdint.h>
#include "agent/util/err.h"

/* Date formats of the "date" step. */
enum transform_datefmt {
    TRANSFORM_DATE_GENERALIZED = 0,
    TRANSFORM_DATE_ISO8601,
    TRANSFORM_DATE_FILETIME,
    TRANSFORM_DATE_UNIX,
    TRANSFORM_DATE_DAY, /* "date": YYYY-MM-DD (output only) */
};

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

#endif
