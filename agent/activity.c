#include <config.h>
#include "agent/activity.h"
#include "schema/transform.h"
#include <string.h>

static const struct {
    const char *name;
    enum activity_format f;
} formats[] = {
    {"generalized", ACT_GENERALIZED},   {"filetime", ACT_FILETIME}, {"unix_days", ACT_UNIX_DAYS},
    {"unix_seconds", ACT_UNIX_SECONDS}, {"date", ACT_DATE},
};

enum activity_format activity_format_of(const char *name)
{
    for (size_t i = 0; name != NULL && i < DM_ARRAY_LEN(formats); i++) {
        if (strcmp(formats[i].name, name) == 0) {
            return formats[i].f;
        }
    }
    return ACT_NONE;
}

const char *activity_format_names(void)
{
    return "generalized|filetime|unix_days|unix_seconds|date";
}

int activity_parse(int64_t *t, int *never, enum activity_format f, const struct dm_val *v)
{
    const char *s = (const char *)v->data;
    int64_t n;

    *never = 0;
    *t = 0;
    switch (f) {
    case ACT_GENERALIZED:
        return transform_parse_generalized(t, s, v->len);
    case ACT_FILETIME:
        return transform_parse_filetime(t, never, s, v->len);
    case ACT_DATE:
        if (v->len == 8 && strspn(s, "0123456789") == 8) {
            /* ISO 8601 basic form YYYYMMDD: the same date as YYYY-MM-DD */
            char ext[11] = {s[0], s[1], s[2], s[3], '-', s[4], s[5], '-', s[6], s[7], '\0'};
            return transform_parse_iso8601(t, ext, 10);
        }
        return transform_parse_iso8601(t, s, v->len);
    case ACT_UNIX_DAYS:
    case ACT_UNIX_SECONDS:
        if (transform_parse_int(&n, s, v->len) != DM_OK) {
            return DM_EINVAL;
        }
        if (n == -1) {
            *never = 1;
            return DM_OK;
        }
        if (f == ACT_UNIX_DAYS) {
            if (n < -106751991167300LL / 86400 || n > 106751991167300LL / 86400) {
                return DM_EINVAL;
            }
            n *= 86400;
        }
        *t = n;
        return DM_OK;
    case ACT_NONE:
        break;
    }
    return DM_EINVAL;
}

const char *activity_check(const struct activity_rule *r, const struct entry *e, int64_t now,
                           const char **attr)
{
    const struct dm_attr *a;
    int64_t t;
    int never;

    if (r->start_attr != NULL && (a = entry_attr(e, r->start_attr)) != NULL && a->nvals > 0) {
        *attr = r->start_attr;
        if (activity_parse(&t, &never, r->start_fmt, &a->vals[0]) != DM_OK) {
            return "bad_date";
        }
        if (!never && t > now + (int64_t)r->lookahead_days * 86400) {
            return "not_yet_active";
        }
    }
    if (r->end_attr != NULL && (a = entry_attr(e, r->end_attr)) != NULL && a->nvals > 0) {
        *attr = r->end_attr;
        if (activity_parse(&t, &never, r->end_fmt, &a->vals[0]) != DM_OK) {
            return "bad_date";
        }
        if (!never && t <= now) {
            return "expired";
        }
    }
    return NULL;
}
