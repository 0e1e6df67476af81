/*
 * connectors/conncfg.c: shared configuration rules of the connectors (conncfg.h). The
 * messages are the ones dirmig has always given for these mistakes.
 */
#include <config.h>
#include "connectors/conncfg.h"
#include "schema/dn.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int conncfg_loopback_http(const char *s)
{
    static const char *const ok[] = {"http://127.", "http://localhost:", "http://localhost/",
                                     "http://[::1]"};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (strncasecmp(s, ok[i], strlen(ok[i])) == 0) {
            return 1;
        }
    }
    return strcasecmp(s, "http://localhost") == 0;
}

static int failf(const struct conn_cfgcheck *x, const char *path, const char *fmt, ...)
    DM_PRINTF(3, 4);
static int failf(const struct conn_cfgcheck *x, const char *path, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return x->fail(x->ctx, path, msg);
}

/* The first of the LDAP bind keys present, or NULL. */
static const char *bind_key(const struct conn_cfgcheck *x)
{
    static const char *const keys[] = {"bind_dn", "bind_pw_file", "bind_pw_env", "sasl_mech",
                                       "starttls"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (x->get(x->ctx, keys[i]) != NULL) {
            return keys[i];
        }
    }
    return NULL;
}

int conncfg_check_http(const struct conn_cfgcheck *x)
{
    const char *u = x->get(x->ctx, "uri"), *tf = x->get(x->ctx, "token_file");
    const char *te = x->get(x->ctx, "token_env"), *b;

    if (u != NULL && strncasecmp(u, "https://", 8) != 0 && !conncfg_loopback_http(u)) {
        return failf(x, "uri", "type %s needs an https:// URL (http:// only to loopback)", x->type);
    }
    if ((tf == NULL) == (te == NULL)) {
        return failf(x, tf ? "token_env" : "token_file",
                     "type %s needs exactly one of token_file and token_env", x->type);
    }
    b = bind_key(x);
    if (b != NULL) {
        return failf(x, b, "not used with type %s (it authenticates with a token)", x->type);
    }
    return DM_OK;
}

/* target.disable.container: a container strictly under the target base (disabled users are
 * renamed there, so it must be in the same naming context). */
static int check_disable_container(const struct conn_cfgcheck *x)
{
    const char *dc = x->get(x->ctx, "disable.container"), *base = x->get(x->ctx, "base");

    if (dc == NULL) {
        return DM_OK;
    }
    if (strcmp(x->role, "target") != 0) {
        return x->fail(x->ctx, "disable.container",
                       "only for the target (where users are disabled)");
    }
    if (base != NULL && (dn_is_under(dc, base) != 1 || dn_is_under(base, dc) == 1)) {
        return failf(x, "disable.container", "must be a container under target.base %s", base);
    }
    return DM_OK;
}

int conncfg_check_ldap(const struct conn_cfgcheck *x)
{
    const char *u = x->get(x->ctx, "uri"), *dn = x->get(x->ctx, "bind_dn");
    const char *pf = x->get(x->ctx, "bind_pw_file"), *pe = x->get(x->ctx, "bind_pw_env");
    const char *sasl = x->get(x->ctx, "sasl_mech"), *stls = x->get(x->ctx, "starttls");

    if (u != NULL && strncasecmp(u, "ldap://", 7) != 0 && strncasecmp(u, "ldaps://", 8) != 0 &&
        strncasecmp(u, "ldapi://", 8) != 0) {
        return failf(x, "uri", "scheme must be ldap://, ldaps:// or ldapi:// for type %s", x->type);
    }
    if (x->get(x->ctx, "base") == NULL) {
        return x->fail(x->ctx, "base", "required key is missing");
    }
    if (pf != NULL && pe != NULL) {
        return x->fail(x->ctx, "bind_pw_env", "use only one of bind_pw_file and bind_pw_env");
    }
    if (dn != NULL && sasl != NULL && strcmp(sasl, "GSSAPI") == 0) {
        return x->fail(x->ctx, "bind_dn",
                       "not used with sasl_mech GSSAPI (the identity is the ticket's)");
    }
    if (dn != NULL && sasl == NULL && pf == NULL && pe == NULL) {
        return x->fail(x->ctx, "bind_dn", "needs bind_pw_file or bind_pw_env (or sasl_mech)");
    }
    if ((pf != NULL || pe != NULL) && (dn == NULL || sasl != NULL)) {
        return x->fail(x->ctx, pf ? "bind_pw_file" : "bind_pw_env",
                       "only used for a simple bind with bind_dn");
    }
    if (stls != NULL && strcmp(stls, "true") == 0 && u != NULL &&
        strncasecmp(u, "ldap://", 7) != 0) {
        return x->fail(x->ctx, "starttls", "only valid with an ldap:// uri");
    }
    return check_disable_container(x);
}

int conncfg_check_file(const struct conn_cfgcheck *x)
{
    const char *u = x->get(x->ctx, "uri"), *b = bind_key(x);

    if (u != NULL && (strncmp(u, "file:", 5) != 0 || u[5] == '\0')) {
        return failf(x, "uri",
                     "type %s needs a file: URI (file:/abs/path.ldif or file:relative/path.ldif, "
                     "relative to this config file)",
                     x->type);
    }
    if (b != NULL) {
        return failf(x, b, "not used with type %s (it reads or writes a file)", x->type);
    }
    return DM_OK;
}

char *conncfg_file_path(const struct conn_cfg *cfg, struct dm_err *err)
{
    const char *u = cfg->uri, *p;
    char *out = NULL;

    if (u == NULL || strncmp(u, "file:", 5) != 0 || u[5] == '\0') {
        dm_err_set(err, DM_EINVAL, "%s: not a file: URI", u ? u : "(none)");
        return NULL;
    }
    p = u + 5;
    if (strncmp(p, "//", 2) == 0) {
        p += 2; /* file://host/path: only the empty host (file:///path) is this machine */
        if (*p != '/') {
            dm_err_set(err, DM_EINVAL, "%s: only file:///path names a local file", u);
            return NULL;
        }
    }
    if (*p == '/' || cfg->config_dir == NULL || cfg->config_dir[0] == '\0') {
        out = strdup(p);
    } else if (asprintf(&out, "%s/%s", cfg->config_dir, p) < 0) {
        out = NULL;
    }
    if (out == NULL) {
        dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    return out;
}
