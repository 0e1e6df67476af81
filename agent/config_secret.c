/*
 * agent/config_secret.c: the secrets dirmig.json references: bind passwords and API tokens
 * of the endpoints, the hook's shared secret. Never inline (config_validate.c refuses
 * that): a *_file (resolved against the config's directory, refused when group or others
 * can read it) or a *_env variable, loaded by secret_load() into a struct secret that
 * config_free() wipes.
 */
#include <config.h>
#include "agent/config_priv.h"
#include <stdio.h>

int config_load_endpoint_secret(struct cfg_ctx *x, int r, int tok)
{
    struct config_endpoint *ep = r == 0 ? &x->cp->pub.source : &x->cp->pub.target;
    struct dm_err e = {0};
    char p[64];
    json_t *f, *env;
    char *file = NULL;
    int rc;

    const char *fk = tok ? "token_file" : "bind_pw_file", *ek = tok ? "token_env" : "bind_pw_env";
    struct secret **dst = tok ? &ep->token : &ep->bind_pw;

    snprintf(p, sizeof(p), "%s.%s", config_roles[r], fk);
    f = config_json_at(x->root, p);
    snprintf(p, sizeof(p), "%s.%s", config_roles[r], ek);
    env = config_json_at(x->root, p);
    if (f == NULL && env == NULL) {
        return DM_OK;
    }
    if (f != NULL) {
        snprintf(p, sizeof(p), "%s.%s", config_roles[r], fk);
        file = config_resolve_path(x, json_string_value(f));
        if (file == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config strings");
        }
    }
    rc = secret_load(dst, file, file ? NULL : json_string_value(env), &e);
    if (rc != DM_OK) {
        if (rc == DM_ENOMEM) {
            return dm_err_set(x->err, rc, "%s", e.msg);
        }
        return config_fail(x, p, "%s", e.msg);
    }
    ep->conn.bind_pw = ep->bind_pw;
    ep->conn.token = ep->token;
    return DM_OK;
}

int config_load_hook_secret(struct cfg_ctx *x)
{
    json_t *f = config_json_at(x->root, "hook.secret_file");
    json_t *env = config_json_at(x->root, "hook.secret_env");
    struct dm_err e = {0};
    char *file = NULL;
    int rc;

    if (f == NULL && env == NULL) {
        return DM_OK;
    }
    if (f != NULL) {
        file = config_resolve_path(x, json_string_value(f));
        if (file == NULL) {
            return dm_err_set(x->err, DM_ENOMEM, "config strings");
        }
    }
    rc = secret_load(&x->cp->pub.hook.secret, file, file ? NULL : json_string_value(env), &e);
    if (rc != DM_OK) {
        if (rc == DM_ENOMEM) {
            return dm_err_set(x->err, rc, "%s", e.msg);
        }
        return config_fail(x, f != NULL ? "hook.secret_file" : "hook.secret_env", "%s", e.msg);
    }
    return DM_OK;
}
