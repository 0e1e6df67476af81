/*
 * agent/config_secret.c: the secrets dirmig.json references: bind passwords and API tokens
 * of the endpoints, the hook's shared secret. Never inline (config_validate.c refuses
 * that): a *_file (resolved against the config's directory, refused when group or others
 * can read it) or a *_env variable, loaded by secret_load() into a struct secret that
 * config_free() wipes. Offline (`check --offline`) nothing is read: the file's mode is
 * checked when it is there, and a missing file or unset variable becomes a note.
 */
#include <config.h>
#include "agent/config_priv.h"
#include <stdio.h>
#include <stdlib.h>

/* Loads the secret named by the key fkey (a file) or ekey (a variable) into *dst. */
static int load_one(struct cfg_ctx *x, const char *fkey, const char *ekey, struct secret **dst)
{
    const char *f = config_str_at(x->root, fkey), *env = config_str_at(x->root, ekey);
    struct dm_err e = {0};
    char *file = NULL;
    int rc;

    if (f == NULL && env == NULL) {
        return DM_OK;
    }
    if (f != NULL) {
        file = config_resolve_path(x, f);
        if (file == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config strings");
        }
    }
    if (x->offline) {
        if (file == NULL) {
            const char *v = getenv(env);
            return v == NULL || v[0] == '\0'
                       ? config_note(x, ekey, "environment variable %s is not set here", env)
                       : DM_OK;
        }
        rc = secret_check_file(file, &e);
        if (rc == DM_ENOTFOUND) {
            return config_note(x, fkey, "%s: not on this machine", file);
        }
        return rc == DM_OK ? DM_OK : config_fail(x, fkey, "%s", e.msg);
    }
    rc = secret_load(dst, file, file ? NULL : env, &e);
    if (rc == DM_ENOMEM) {
        return dm_err_set(x->err, rc, "%s", e.msg);
    }
    if (rc != DM_OK) {
        return config_fail(x, file != NULL ? fkey : ekey, "%s", e.msg);
    }
    return DM_OK;
}

int config_load_endpoint_secret(struct cfg_ctx *x, int r, int tok)
{
    struct config_endpoint *ep = r == 0 ? &x->cp->pub.source : &x->cp->pub.target;
    char fk[64], ek[64];
    int rc;

    snprintf(fk, sizeof(fk), "%s.%s", config_roles[r], tok ? "token_file" : "bind_pw_file");
    snprintf(ek, sizeof(ek), "%s.%s", config_roles[r], tok ? "token_env" : "bind_pw_env");
    rc = load_one(x, fk, ek, tok ? &ep->token : &ep->bind_pw);
    ep->conn.bind_pw = ep->bind_pw;
    ep->conn.token = ep->token;
    return rc;
}

int config_load_state_secret(struct cfg_ctx *x)
{
    return load_one(x, "state.conninfo_file", "state.conninfo_env", &x->cp->pub.state_conninfo);
}

#define HOOK_MIN_SECRET 32 /* bytes of hook.secret_file / hook.secret_env */

int config_load_hook_secret(struct cfg_ctx *x)
{
    const struct secret *s;
    int rc = load_one(x, "hook.secret_file", "hook.secret_env", &x->cp->pub.hook.secret);

    s = x->cp->pub.hook.secret;
    if (rc != DM_OK || s == NULL) {
        return rc; /* offline, none given, or refused already */
    }
    /* A shared secret that can be guessed is no authentication. */
    if (secret_len(s) < HOOK_MIN_SECRET) {
        return config_fail(x,
                           config_str_at(x->root, "hook.secret_file") != NULL ? "hook.secret_file"
                                                                              : "hook.secret_env",
                           "the shared secret is %zu bytes; at least %d are needed", secret_len(s),
                           HOOK_MIN_SECRET);
    }
    return DM_OK;
}
