/*
 * err.h: the one error model of dirmig.
 *
 * Every fallible function returns an int holding an enum dm_rc (0 = DM_OK) and takes a
 * `struct dm_err *err` as its last argument, filled on failure with where it happened
 * (entry DN, attribute, or file:line:col in msg) and the server's raw LDAP code.
 * Callers propagate the callee's rc and never overwrite err. A specific code
 * exists only where callers branch: DM_EAUTH never retries, DM_EUNAVAIL may retry.
 * The enum is append-only; dm_strerror() has a string for every code below DM__LAST.
 * Messages never contain a password, hash, token or pii value.
 */
#ifndef DM_ERR_H
#define DM_ERR_H

#include <stddef.h>
#include "attrs.h"

enum dm_rc {
    DM_OK = 0,
    DM_ENOMEM,    /* allocation failed */
    DM_EINVAL,    /* bad input: config, map, data, argument */
    DM_ENOTFOUND, /* no such object */
    DM_EEXISTS,   /* object already exists */
    DM_EAUTH,     /* credentials refused: do not retry */
    DM_EUNAVAIL,  /* server unreachable, timeout, connection lost: retryable */
    DM_ESCHEMA,   /* the target's schema refused the data */
    DM_ELIMIT,    /* a size, time or safety limit was hit */
    DM_EINTERNAL, /* anything else; msg says what */
    DM_ECONFIG,   /* the configuration does not fit what it meets (a journal that belongs to
                   * another target, ...): fix the config or rebind, do not retry */
    DM_EBUSY,     /* another process holds what this one needs (the runner lock): try later */
    DM__LAST      /* append above only */
};

struct dm_err {
    enum dm_rc rc;
    int ldap_rc;          /* raw LDAP result code, 0 if none */
    char dn[512];         /* entry DN involved, "" if none */
    char attr[64];        /* attribute involved, "" if none */
    char matched_dn[256]; /* server's matchedDN, "" if none */
    char msg[256];        /* one line, no secrets */
};

/* Sets err->rc and err->msg (printf format) and returns rc. err may be NULL. Keeps
 * err->dn / attr / ldap_rc as they are so callers can set them before or after. */
int dm_err_set(struct dm_err *err, enum dm_rc rc, const char *fmt, ...) DM_PRINTF(3, 4);

/* Records the entry DN / attribute the error is about (truncated to fit). NULL-safe. */
void dm_err_dn(struct dm_err *err, const char *dn);
void dm_err_attr(struct dm_err *err, const char *attr);

/* Clears err to DM_OK with empty fields. */
void dm_err_clear(struct dm_err *err);

/* Static, human-readable name of a code ("out of memory", "server unavailable"...). */
const char *dm_strerror(int rc);

/* Short stable category name for reports ("schema", "auth", "unavailable", ...). */
const char *dm_rc_category(int rc);

/* Formats "msg (dn=..., attr=..., ldap rc N)" into buf; returns buf. */
const char *dm_err_format(const struct dm_err *err, char *buf, size_t len);

#endif
