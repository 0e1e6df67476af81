/*
 * activity.h: dated activity of users (source.users.activity): a user counts only while
 * its start date has passed (less a look-ahead) and its end date has not.
 *
 * Each date attribute names its format; nothing is guessed (an integer can be a FILETIME,
 * a day count or a GeneralizedTime without its zone, and a wrong guess moves a date by
 * centuries):
 *   generalized   RFC 4517 GeneralizedTime, "20250101000000Z"
 *   filetime      Active Directory FILETIME (100 ns since 1601); 0 and 2^63-1 mean never
 *   unix_days     days since 1970-01-01, as shadowExpire; -1 means never
 *   unix_seconds  seconds since 1970-01-01; -1 means never
 *   date          ISO 8601 date or date-time, "2025-01-01", "20250101" or
 *                 "2025-01-01T08:00:00Z"
 */
#ifndef DM_ACTIVITY_H
#define DM_ACTIVITY_H

#include <stdint.h>
#include "agent/util/err.h"
#include "schema/entry.h"

enum activity_format {
    ACT_NONE = 0, /* not configured */
    ACT_GENERALIZED,
    ACT_FILETIME,
    ACT_UNIX_DAYS,
    ACT_UNIX_SECONDS,
    ACT_DATE,
};

/* "generalized" -> ACT_GENERALIZED ...; ACT_NONE for an unknown name. */
enum activity_format activity_format_of(const char *name);

/* The accepted names, "generalized|filetime|unix_days|unix_seconds|date". Static. */
const char *activity_format_names(void);

/* Parses one value: *t seconds since 1970 (UTC), *never 1 for "no date" values.
 * DM_EINVAL when the value is not in the format. */
int activity_parse(int64_t *t, int *never, enum activity_format f,
                   const struct dm_val *v) DM_MUST_USE;

struct activity_rule {
    const char *start_attr, *end_attr; /* NULL = not used */
    enum activity_format start_fmt, end_fmt;
    int lookahead_days;
};

/* Why the user is out of its activity window, or NULL when it is active: "not_yet_active",
 * "expired" or "bad_date"; *attr names the attribute that decided. now: unix seconds. */
const char *activity_check(const struct activity_rule *r, const struct entry *e, int64_t now,
                           const char **attr);

#endif
