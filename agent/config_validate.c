/*
 * agent/config_validate.c: the parsed dirmig.json against the key table (STYLE C1) and the
 * rules that involve several keys of an endpoint or of the hook section. Every error is
 * "origin:line:col: key.path: problem" (config_fail()).
 */
#include <config.h>
#include "agent/config_priv.h"
#include "agent/config_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Keys that look like an inline secret. Known keys (bind_pw_file...) never get here. */
static int looks_secret(const char *name)
{
    static const char *const names[] = {"pw",     "password", "passwd",
                                        "secret", "token",    "credential"};
    static const char *const suffixes[] = {"_pw",     "_password", "_passwd",
                                           "_secret", "_token",    "_key"};
    size_t n = strlen(name);

    for (size_t i = 0; i < DM_ARRAY_LEN(names); i++) {
        if (strcasecmp(name, names[i]) == 0) {
            return 1;
        }
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(suffixes); i++) {
        size_t m = strlen(suffixes[i]);
        if (n > m && strcasecmp(name + n - m, suffixes[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int is_one_of(const char *values, const char *s)
{
    size_t n = strlen(s);
    const char *p = values;

    for (;;) {
        const char *bar = strchr(p, '|');
        size_t m = bar ? (size_t)(bar - p) : strlen(p);
        if (m == n && strncmp(p, s, n) == 0) {
            return 1;
        }
        if (bar == NULL) {
            return 0;
        }
        p = bar + 1;
    }
}

/* "ldap" -> "\"ldap\""; "a|b|c" -> "one of a, b, c" */
static void values_text(char *buf, size_t len, const char *values)
{
    size_t o = 0;

    if (strchr(values, '|') == NULL) {
        snprintf(buf, len, "\"%s\"", values);
        return;
    }
    o = (size_t)snprintf(buf, len, "one of ");
    for (const char *p = values; *p && o + 3 < len; p++) {
        if (*p == '|') {
            buf[o++] = ',';
            buf[o++] = ' ';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
}

static int validate_object(struct cfg_ctx *x, json_t *obj, const char *prefix);

/* With the AD dialect, bind_dn may also be a UPN (user@corp.example) or DOMAIN\user:
 * AD accepts both as the name of a simple bind (MS-ADTS 5.1.1.1.1). */
static int is_ad_bind_name(struct cfg_ctx *x, const struct cfg_key *k, const char *path,
                           const char *s)
{
    const char *dot = strchr(path, '.');
    json_t *d;
    char dp[32];

    if (strcmp(k->path, "bind_dn") != 0 || dot == NULL || (size_t)(dot - path) >= 16) {
        return 0;
    }
    snprintf(dp, sizeof(dp), "%.*s.dialect", (int)(dot - path), path);
    d = config_json_at(x->root, dp);
    if (d == NULL || !json_is_string(d) || strcmp(json_string_value(d), "ad") != 0) {
        return 0;
    }
    return strchr(s, '=') == NULL && strchr(s, ',') == NULL &&
           (strchr(s, '@') != NULL || strchr(s, '\\') != NULL);
}

int config_validate_value(struct cfg_ctx *x, const struct cfg_key *k, const char *path, json_t *v)
{
    char why[128];
    const char *s;

    switch (k->type) {
    case CFG_OBJ:
        if (!json_is_object(v)) {
            return config_fail(x, path, "must be an object");
        }
        return validate_object(x, v, path);
    case CFG_OPAQUE:
        if (!json_is_object(v) && !json_is_array(v)) {
            return config_fail(x, path, "must be an object");
        }
        return DM_OK;
    case CFG_WAVES:
        return DM_OK; /* config_parse_waves() checks it with positions */
    case CFG_MAP:
        if (!json_is_object(v)) {
            return config_fail(x, path, "must be an object");
        }
        return DM_OK;
    case CFG_INT:
        if (!json_is_integer(v)) {
            return config_fail(x, path, "must be an integer");
        }
        if (json_integer_value(v) < k->min || json_integer_value(v) > k->max) {
            return config_fail(x, path, "must be %lld..%lld", k->min, k->max);
        }
        return DM_OK;
    case CFG_BOOL:
        if (!json_is_boolean(v)) {
            return config_fail(x, path, "must be true or false");
        }
        return DM_OK;
    case CFG_STRLIST:
        if (!json_is_array(v)) {
            return config_fail(x, path, "must be an array of strings");
        }
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *it = json_array_get(v, i);
            if (!json_is_string(it) || json_string_length(it) == 0) {
                char ip[340];
                snprintf(ip, sizeof(ip), "%s[%zu]", path, i);
                return config_fail(x, ip, "must be a non-empty string");
            }
        }
        return DM_OK;
    case CFG_STR:
    case CFG_PATH:
    case CFG_ENV:
        break;
    }
    if (!json_is_string(v)) {
        return config_fail(x, path, "must be a string");
    }
    s = json_string_value(v);
    if (s[0] == '\0' || strlen(s) != json_string_length(v)) {
        return config_fail(x, path, "must be a non-empty string");
    }
    if (k->type == CFG_ENV && !cfgcheck_env_name(s)) {
        return config_fail(x, path, "must be an environment variable name");
    }
    if (k->values != NULL && !is_one_of(k->values, s)) {
        values_text(why, sizeof(why), k->values);
        return config_fail(x, path, "must be %s", why);
    }
    switch (k->check) {
    case CHK_URI:
        if (!cfgcheck_uri(s)) {
            return config_fail(x, path,
                               "scheme must be ldap://, ldaps://, ldapi://, https:// or file:");
        }
        break;
    case CHK_DN:
        if (!cfgcheck_dn(s) && !is_ad_bind_name(x, k, path, s)) {
            return config_fail(x, path, "must be a DN such as dc=example,dc=org");
        }
        break;
    case CHK_FILTER:
        if (!cfgcheck_filter(s)) {
            return config_fail(x, path,
                               "must be an LDAP filter in parentheses, such as "
                               "(objectClass=person)");
        }
        break;
    case CHK_NONE:
        break;
    }
    return DM_OK;
}

/* Checks every member of obj (at prefix, "" for the root) against the table, then the
 * required keys whose parent is this object. Stops at the first error. */
static int validate_object(struct cfg_ctx *x, json_t *obj, const char *prefix)
{
    const char *name;
    json_t *v;
    char path[300];
    int rc, role;

    json_object_foreach (obj, name, v) {
        const struct cfg_key *k;

        if (prefix[0] != '\0') {
            snprintf(path, sizeof(path), "%s.%s", prefix, name);
        } else {
            snprintf(path, sizeof(path), "%s", name);
        }
        k = config_keys_find(path, &role);
        if (k == NULL) {
            int handled = 0;
            rc = config_conn_validate_key(x, path, v, &handled);
            if (handled || rc != DM_OK) {
                if (rc != DM_OK) {
                    return rc;
                }
                continue;
            }
            if (looks_secret(name)) {
                if (strcmp(prefix, "source") == 0 || strcmp(prefix, "target") == 0) {
                    return config_fail(x, path,
                                       "secrets are not accepted inline; use bind_pw_file "
                                       "or bind_pw_env");
                }
                return config_fail(x, path,
                                   "secrets are not accepted inline; use a *_file or *_env key");
            }
            return config_fail(x, path, "unknown key");
        }
        if (json_is_null(v)) {
            if (k->flags & CFG_REQUIRED) {
                return config_fail(x, path, "required key is null");
            }
            continue;
        }
        x->cp->present[k - config_keys][role] = 1;
        rc = config_validate_value(x, k, path, v);
        if (rc != DM_OK) {
            return rc;
        }
    }
    for (size_t i = 0; i < config_nkeys; i++) {
        const struct cfg_key *k = &config_keys[i];
        int n = (k->flags & CFG_EP) ? 2 : 1;

        if (!(k->flags & CFG_REQUIRED)) {
            continue;
        }
        for (int r = 0; r < n; r++) {
            const char *last;
            size_t plen;

            config_keys_path(path, sizeof(path), k, r);
            last = strrchr(path, '.');
            plen = last ? (size_t)(last - path) : 0;
            last = last ? last + 1 : path;
            if (strlen(prefix) != plen || strncmp(prefix, path, plen) != 0) {
                continue;
            }
            if (json_object_get(obj, last) == NULL) {
                return config_fail(x, path, "required key is missing");
            }
        }
    }
    return DM_OK;
}

/* Rules that involve several hook keys. */
static int validate_hook(struct cfg_ctx *x)
{
    json_t *listen = config_json_at(x->root, "hook.listen");
    json_t *plain = config_json_at(x->root, "hook.plain_http");
    json_t *cert = config_json_at(x->root, "hook.tls.cert_file");
    json_t *key = config_json_at(x->root, "hook.tls.key_file");
    json_t *tmpl = config_json_at(x->root, "hook.dn_template");
    const char *l = listen != NULL ? json_string_value(listen) : "127.0.0.1:8443";
    const char *colon = strrchr(l, ':');

    if (colon == NULL || colon == l || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        return config_fail(x, "hook.listen", "must be address:port, e.g. 127.0.0.1:8443");
    }
    if (plain != NULL && json_is_true(plain) && !cfgcheck_loopback_listen(l)) {
        return config_fail(x, "hook.plain_http",
                           "plain HTTP is only allowed on a loopback address (listen %s)", l);
    }
    if ((cert == NULL) != (key == NULL)) {
        return config_fail(x, cert == NULL ? "hook.tls.key_file" : "hook.tls.cert_file",
                           "tls.cert_file and tls.key_file go together");
    }
    if (config_json_at(x->root, "hook.secret_file") != NULL &&
        config_json_at(x->root, "hook.secret_env")) {
        return config_fail(x, "hook.secret_env", "use only one of secret_file and secret_env");
    }
    if (tmpl != NULL && strstr(json_string_value(tmpl), "{login}") == NULL) {
        return config_fail(x, "hook.dn_template", "must contain {login}");
    }
    return DM_OK;
}

int config_validate(struct cfg_ctx *x)
{
    int rc = validate_object(x, x->root, "");

    for (int r = 0; r < 2 && rc == DM_OK; r++) {
        rc = config_conn_check(x, r);
    }
    if (rc == DM_OK) {
        rc = validate_hook(x);
    }
    return rc;
}
