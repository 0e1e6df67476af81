#include <config.h>
#include "schema/transform_date.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* n decimal digits at s[*i] into *v; -1 when not all digits. */
static int digits(int *v, const char *s, size_t len, size_t *i, int n)
{
    int x = 0;

    if (*i + (size_t)n > len) {
        return -1;
    }
    for (int k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];

        if (c < '0' || c > '9') {
            return -1;
        }
        x = x * 10 + (c - '0');
    }
    *i += (size_t)n;
    *v = x;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

static int make_time(int64_t *out, int y, int mo, int d, int h, int mi, int sec, int off_min)
{
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60) {
        return DM_EINVAL;
    }
    if (sec == 60) {
        sec = 59; /* leap second: clamp, time_t has no room for it */
    }
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
           (int64_t)off_min * 60;
    return DM_OK;
}

/* Zone at s[*i]: Z, or +-HH[[:]MM] (colon allowed when iso). */
static int parse_zone(int *off_min, const char *s, size_t len, size_t *i, int iso)
{
    int sign, hh = 0, mm = 0;

    if (*i < len && (s[*i] == 'Z' || (iso && s[*i] == 'z'))) {
        (*i)++;
        *off_min = 0;
        return 0;
    }
    if (*i >= len || (s[*i] != '+' && s[*i] != '-')) {
        return -1;
    }
    sign = s[*i] == '-' ? -1 : 1;
    (*i)++;
    if (digits(&hh, s, len, i, 2) != 0 || hh > 23) {
        return -1;
    }
    if (iso && *i < len && s[*i] == ':') {
        (*i)++;
    }
    if (*i < len && digits(&mm, s, len, i, 2) != 0) {
        return -1;
    }
    if (mm > 59) {
        return -1;
    }
    *off_min = sign * (hh * 60 + mm);
    return 0;
}

static void skip_fraction(const char *s, size_t len, size_t *i)
{
    if (*i < len && (s[*i] == '.' || s[*i] == ',') && *i + 1 < len && s[*i + 1] >= '0' &&
        s[*i + 1] <= '9') {
        (*i)++;
        while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
            (*i)++;
        }
    }
}

int transform_parse_generalized(int64_t *unix_s, const char *s, size_t len)
{
    int y, mo, d, h, mi = 0, sec = 0, off = 0;
    size_t i = 0;

    if (digits(&y, s, len, &i, 4) || digits(&mo, s, len, &i, 2) || digits(&d, s, len, &i, 2) ||
        digits(&h, s, len, &i, 2)) {
        return DM_EINVAL;
    }
    /* RFC 4517 3.3.13: minutes and seconds optional; a fraction applies to the last
     * field given (we keep whole seconds only, so it is dropped) */
    if (i < len && s[i] >= '0' && s[i] <= '9') {
        if (digits(&mi, s, len, &i, 2)) {
            return DM_EINVAL;
        }
        if (i < len && s[i] >= '0' && s[i] <= '9' && digits(&sec, s, len, &i, 2)) {
            return DM_EINVAL;
        }
    }
    skip_fraction(s, len, &i);
    if (parse_zone(&off, s, len, &i, 0) != 0 || i != len) {
        return DM_EINVAL;
    }
    return make_time(unix_s, y, mo, d, h, mi, sec, off);
}

int transform_parse_iso8601(int64_t *unix_s, const char *s, size_t len)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;
    size_t i = 0;

    if (digits(&y, s, len, &i, 4) || i >= len || s[i++] != '-' || digits(&mo, s, len, &i, 2) ||
        i >= len || s[i++] != '-' || digits(&d, s, len, &i, 2)) {
        return DM_EINVAL;
    }
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') {
            return DM_EINVAL;
        }
        i++;
        if (digits(&h, s, len, &i, 2) || i >= len || s[i++] != ':' || digits(&mi, s, len, &i, 2)) {
            return DM_EINVAL;
        }
        if (i < len && s[i] == ':') {
            i++;
            if (digits(&sec, s, len, &i, 2)) {
                return DM_EINVAL;
            }
            skip_fraction(s, len, &i);
        }
        if (i < len && parse_zone(&off, s, len, &i, 1) != 0) {
            return DM_EINVAL;
        }
        if (i != len) {
            return DM_EINVAL;
        }
    }
    return make_time(unix_s, y, mo, d, h, mi, sec, off);
}

int transform_parse_int(int64_t *v, const char *s, size_t len)
{
    char tmp[32], *end = NULL;
    long long x;

    if (len == 0 || len >= sizeof(tmp)) {
        return DM_EINVAL;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (!((tmp[0] >= '0' && tmp[0] <= '9') ||
          ((tmp[0] == '-' || tmp[0] == '+') && tmp[1] >= '0' && tmp[1] <= '9'))) {
        return DM_EINVAL;
    }
    errno = 0;
    x = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0') {
        return DM_EINVAL;
    }
    *v = (int64_t)x;
    return DM_OK;
}

/* FILETIME: 100 ns ticks since 1601-01-01 UTC; 11644473600 s separate the epochs
 * (AD: pwdLastSet 134400868331196390 is 2026-11-25 13:27:13Z). */
#define FILETIME_EPOCH_DIFF INT64_C(11644473600)

int transform_parse_filetime(int64_t *unix_s, int *never, const char *s, size_t len)
{
    int64_t ft;

    if (transform_parse_int(&ft, s, len) != DM_OK) {
        return DM_EINVAL;
    }
    *never = 0;
    if (ft == 0 || ft == INT64_MAX) {
        /* accountExpires: 0 and 0x7FFFFFFFFFFFFFFF mean "never" */
        *never = 1;
        *unix_s = 0;
        return DM_OK;
    }
    if (ft < 0) {
        return DM_EINVAL;
    }
    *unix_s = ft / 10000000 - FILETIME_EPOCH_DIFF;
    return DM_OK;
}

void transform_format_time(char *out, size_t outlen, int64_t unix_s, enum transform_datefmt fmt)
{
    int64_t days = unix_s / 86400, rem = unix_s % 86400, y;
    unsigned m, d;

    if (rem < 0) {
        rem += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    switch (fmt) {
    case TRANSFORM_DATE_GENERALIZED:
        snprintf(out, outlen, "%04" PRId64 "%02u%02u%02d%02d%02dZ", y, m, d, (int)(rem / 3600),
                 (int)(rem / 60 % 60), (int)(rem % 60));
        break;
    case TRANSFORM_DATE_DAY:
        snprintf(out, outlen, "%04" PRId64 "-%02u-%02u", y, m, d);
        break;
    case TRANSFORM_DATE_UNIX:
        snprintf(out, outlen, "%" PRId64, unix_s);
        break;
    case TRANSFORM_DATE_FILETIME:
        snprintf(out, outlen, "%" PRId64, (unix_s + FILETIME_EPOCH_DIFF) * 10000000);
        break;
    case TRANSFORM_DATE_ISO8601:
    default:
        snprintf(out, outlen, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02dZ", y, m, d, (int)(rem / 3600),
                 (int)(rem / 60 % 60), (int)(rem % 60));
        break;
    }
}
