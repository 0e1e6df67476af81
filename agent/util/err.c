#include <config.h>
#include "err.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const rc_names[DM__LAST] = {
    [DM_OK] = "success",
    [DM_ENOMEM] = "out of memory",
    [DM_EINVAL] = "invalid input",
    [DM_ENOTFOUND] = "not found",
    [DM_EEXISTS] = "already exists",
    [DM_EAUTH] = "authentication failed",
    [DM_EUNAVAIL] = "server unavailable",
    [DM_ESCHEMA] = "schema violation",
    [DM_ELIMIT] = "limit exceeded",
    [DM_EINTERNAL] = "internal error",
    [DM_ECONFIG] = "configuration does not match",
    [DM_EBUSY] = "busy",
};

static const char *const rc_cats[DM__LAST] = {
    [DM_OK] = "ok",
    [DM_ENOMEM] = "memory",
    [DM_EINVAL] = "invalid",
    [DM_ENOTFOUND] = "not_found",
    [DM_EEXISTS] = "exists",
    [DM_EAUTH] = "auth",
    [DM_EUNAVAIL] = "unavailable",
    [DM_ESCHEMA] = "schema",
    [DM_ELIMIT] = "limit",
    [DM_EINTERNAL] = "internal",
    [DM_ECONFIG] = "config",
    [DM_EBUSY] = "busy",
};

int dm_err_set(struct dm_err *err, enum dm_rc rc, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return rc;
    }
    err->rc = rc;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return rc;
}

static void copy_field(char *dst, size_t cap, const char *src)
{
    size_t n;

    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void dm_err_dn(struct dm_err *err, const char *dn)
{
    if (err != NULL) {
        copy_field(err->dn, sizeof(err->dn), dn);
    }
}

void dm_err_attr(struct dm_err *err, const char *attr)
{
    if (err != NULL) {
        copy_field(err->attr, sizeof(err->attr), attr);
    }
}

void dm_err_clear(struct dm_err *err)
{
    if (err != NULL) {
        memset(err, 0, sizeof(*err));
    }
}

const char *dm_strerror(int rc)
{
    if (rc < 0 || rc >= DM__LAST || rc_names[rc] == NULL) {
        return "unknown error";
    }
    return rc_names[rc];
}

const char *dm_rc_category(int rc)
{
    if (rc < 0 || rc >= DM__LAST || rc_cats[rc] == NULL) {
        return "unknown";
    }
    return rc_cats[rc];
}

const char *dm_err_format(const struct dm_err *err, char *buf, size_t len)
{
    int n;

    n = snprintf(buf, len, "%s", err->msg[0] ? err->msg : dm_strerror(err->rc));
    if (n >= 0 && (size_t)n < len && err->dn[0]) {
        n += snprintf(buf + n, len - (size_t)n, " (dn=\"%s\"", err->dn);
        if (n >= 0 && (size_t)n < len && err->attr[0]) {
            n += snprintf(buf + n, len - (size_t)n, ", attr=%s", err->attr);
        }
        if (n >= 0 && (size_t)n < len) {
            n += snprintf(buf + n, len - (size_t)n, ")");
        }
    } else if (n >= 0 && (size_t)n < len && err->attr[0]) {
        n += snprintf(buf + n, len - (size_t)n, " (attr=%s)", err->attr);
    }
    if (n >= 0 && (size_t)n < len && err->ldap_rc != 0) {
        snprintf(buf + n, len - (size_t)n, " [ldap rc %d]", err->ldap_rc);
    }
    return buf;
}
