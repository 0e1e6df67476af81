/*
 * agent/config_validate.c: the parsed dirmig.json against the key table (config_keys.c) and
 * the rules that involve several keys of an endpoint or of the hook section. Every error is
 * "origin:line:col: key.path: problem" (config_fail()), and every one is reported: a check
 * goes on after a problem with whatever does not depend on the bad value.
 */
#include <config.h>
#include "agent/config_priv.h"
#include "agent/config_check.h"
#include "agent/util/suggest.h"
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
    int rc = DM_OK;

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
                rc = config_fail(x, ip, "must be a non-empty string");
            }
        }
        return rc;
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

/* The keys of the table that may appear in the object at prefix ("" for the root), as
 * their last path component: the candidates of a "did you mean". */
static size_t keys_under(const char **out, size_t cap, const char *prefix)
{
    const char *rel = prefix;
    int ep = 0;
    size_t n = 0, plen;

    if (strncmp(prefix, "source", 6) == 0 || strncmp(prefix, "target", 6) == 0) {
        if (prefix[6] == '\0' || prefix[6] == '.') {
            ep = 1;
            rel = prefix[6] == '.' ? prefix + 7 : "";
        }
    }
    plen = strlen(rel);
    for (size_t i = 0; i < config_nkeys && n < cap; i++) {
        const struct cfg_key *k = &config_keys[i];
        const char *p = k->path, *last;

        if (ep != ((k->flags & CFG_EP) != 0)) {
            continue;
        }
        last = strrchr(p, '.');
        if (last == NULL ? plen != 0 : (size_t)(last - p) != plen || strncmp(p, rel, plen) != 0) {
            continue;
        }
        out[n++] = last != NULL ? last + 1 : p;
    }
    return n;
}

/* "unknown key", with the closest known key of the same object when there is one. */
static int unknown_key(struct cfg_ctx *x, const char *path, const char *prefix, const char *name)
{
    const char *cands[128];
    size_t n = keys_under(cands, DM_ARRAY_LEN(cands), prefix);
    const char *best = suggest_closest(name, cands, n);

    if (best != NULL) {
        return config_fail(x, path, "unknown key (did you mean \"%s\"?)", best);
    }
    return config_fail(x, path, "unknown key");
}

/* Checks every member of obj (at prefix, "" for the root) against the table, then the
 * required keys whose parent is this object. Reports every problem. */
static int validate_object(struct cfg_ctx *x, json_t *obj, const char *prefix)
{
    const char *name;
    json_t *v;
    char path[300];
    int rc = DM_OK, role;

    json_object_foreach (obj, name, v) {
        const struct cfg_key *k;
        int vrc;

        if (prefix[0] != '\0') {
            snprintf(path, sizeof(path), "%s.%s", prefix, name);
        } else {
            snprintf(path, sizeof(path), "%s", name);
        }
        k = config_keys_find(path, &role);
        if (k == NULL) {
            int handled = 0;
            vrc = config_conn_validate_key(x, path, v, &handled);
            if (vrc == DM_ENOMEM) {
                return vrc;
            }
            if (handled) {
                rc = vrc != DM_OK ? vrc : rc;
                continue;
            }
            if (looks_secret(name)) {
                if (strcmp(prefix, "source") == 0 || strcmp(prefix, "target") == 0) {
                    rc = config_fail(x, path,
                                     "secrets are not accepted inline; use bind_pw_file "
                                     "or bind_pw_env");
                } else {
                    rc = config_fail(x, path,
                                     "secrets are not accepted inline; use a *_file or *_env key");
                }
            } else {
                rc = unknown_key(x, path, prefix, name);
            }
            continue;
        }
        if (json_is_null(v)) {
            if (k->flags & CFG_REQUIRED) {
                rc = config_fail(x, path, "required key is null");
            }
            continue;
        }
        x->cp->present[k - config_keys][role] = 1;
        vrc = config_validate_value(x, k, path, v);
        if (vrc == DM_ENOMEM) {
            return vrc;
        }
        rc = vrc != DM_OK ? vrc : rc;
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
                rc = config_fail(x, path, "required key is missing");
            }
        }
    }
    return rc;
}

/* Endpoint keys of the table that only do something for one role, for connectors that speak
 * LDAP (CONN_LDAP), hold a tree (CONN_TREE), or the AD dialect. A key set where it does
 * nothing is refused rather than ignored, so that a configuration never says more than
 * dirmig does. The keys a connector registers itself are checked by that connector
 * (conn_ops.keys and config_check, agent/config_conn.c). */
enum { ON_SOURCE = 1, ON_TARGET = 2, ON_LDAP = 4, ON_TREE = 8, ON_AD = 16 };

static const struct endpoint_rule {
    const char *key;
    unsigned on;
    const char *why;
} endpoint_rules[] = {
    {"delta", ON_SOURCE | ON_LDAP, "only for the source (type ldap, either dialect)"},
    {"range_size", ON_SOURCE | ON_TARGET | ON_LDAP | ON_AD, "only with dialect \"ad\""},
    {"groups.nesting", ON_SOURCE | ON_LDAP, "only for the source (where groups are read)"},
    {"users.activity", ON_SOURCE | ON_LDAP | ON_TREE, "only for the source (where users are read)"},
    {"create_containers", ON_TARGET | ON_TREE, NULL}, /* names the types that have a tree */
    {"write_window", ON_TARGET | ON_LDAP, "only for an LDAP target (it limits writes)"},
    {"write_connections", ON_TARGET | ON_LDAP, "only for an LDAP target (it spreads writes)"},
    {"disable.container", ON_TARGET | ON_LDAP, "only for an LDAP target (it moves entries)"},
    {"member_chunk", ON_TARGET, "only for the target (it slices writes)"},
    {"dialect", ON_SOURCE | ON_TARGET | ON_LDAP, "only with type ldap"},
};

/* "only for a target that holds a tree (type ldap, ldif)": the types, from the registry. */
static void tree_types(char *buf, size_t len)
{
    const struct conn_ops *const *all = conn_all();
    size_t n = (size_t)snprintf(buf, len, "only for a target that holds a tree of entries (type");

    for (size_t i = 0; all[i] != NULL && n < len; i++) {
        if ((all[i]->caps & CONN_TREE) && (all[i]->caps & CONN_WRITE)) {
            n += (size_t)snprintf(buf + n, len - n, "%s %s", n > 55 ? "," : "", all[i]->name);
        }
    }
    if (n < len) {
        snprintf(buf + n, len - n, ")");
    }
}

static int check_endpoint_rules(struct cfg_ctx *x, int r, unsigned on)
{
    char p[64], why[160];
    int rc = DM_OK;

    for (size_t i = 0; i < DM_ARRAY_LEN(endpoint_rules); i++) {
        const struct endpoint_rule *e = &endpoint_rules[i];
        unsigned need = e->on & (ON_SOURCE | ON_TARGET), kinds = e->on & (ON_LDAP | ON_TREE);

        snprintf(p, sizeof(p), "%s.%s", config_roles[r], e->key);
        if (config_json_at(x->root, p) == NULL) {
            continue;
        }
        if (!(need & on) || (kinds != 0 && !(kinds & on)) || ((e->on & ON_AD) && !(on & ON_AD))) {
            if (e->why == NULL) {
                tree_types(why, sizeof(why));
            }
            rc = config_fail(x, p, "does nothing here: %s", e->why != NULL ? e->why : why);
        }
    }
    /* the in-chain matching rule is Active Directory's own */
    snprintf(p, sizeof(p), "%s.groups.nesting", config_roles[r]);
    if (!(on & ON_AD) && config_str_at(x->root, p) != NULL &&
        strcmp(config_str_at(x->root, p), "flatten_in_chain") == 0) {
        rc = config_fail(x, p,
                         "flatten_in_chain needs dialect \"ad\" (the in-chain rule is AD's); "
                         "use \"flatten\"");
    }
    return rc;
}

/* Rules that involve several keys of one endpoint: its connector's (role, required keys,
 * config_check), then the table's. Values of the wrong type were reported by
 * validate_object() and count as absent here. */
static int validate_endpoint(struct cfg_ctx *x, int r)
{
    const struct conn_ops *ops = config_ep_ops(x, r);
    unsigned on = r == 0 ? ON_SOURCE : ON_TARGET;
    const char *dialect;
    char p[64];
    int rc, rc2;

    if (!json_is_object(config_json_at(x->root, config_roles[r])) || ops == NULL) {
        return DM_OK; /* missing, not an object, or an unknown type: reported already */
    }
    snprintf(p, sizeof(p), "%s.dialect", config_roles[r]);
    dialect = config_str_at(x->root, p);
    on |= (ops->caps & CONN_LDAP) ? ON_LDAP : 0;
    on |= (ops->caps & CONN_TREE) ? ON_TREE : 0;
    on |= dialect != NULL && strcmp(dialect, "ad") == 0 ? ON_AD : 0;
    rc = config_conn_check(x, r);
    rc2 = check_endpoint_rules(x, r, on);
    return rc != DM_OK ? rc : rc2;
}

/* Rules of the hook's monitor listener and of lazy migration (listen: hook.listen as it
 * will be used). */
static int validate_hook_more(struct cfg_ctx *x, const char *listen)
{
    const char *m = config_str_at(x->root, "hook.monitor_listen");
    const char *colon = m != NULL ? strrchr(m, ':') : NULL;
    json_t *mplain = config_json_at(x->root, "hook.monitor_plain_http");
    json_t *lazy = config_json_at(x->root, "hook.lazy_migration");
    json_t *rehash = config_json_at(x->root, "hook.rehash");
    const struct conn_ops *tops = config_ep_ops(x, 1);
    int rc = DM_OK;

    if (m != NULL &&
        (colon == NULL || colon == m || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535 ||
         strspn(colon + 1, "0123456789") != strlen(colon + 1))) {
        rc = config_fail(x, "hook.monitor_listen", "must be address:port, e.g. 127.0.0.1:9443");
    } else if (m != NULL && strcmp(m, listen) == 0) {
        rc = config_fail(x, "hook.monitor_listen", "must differ from hook.listen");
    }
    if (json_is_true(mplain) && (m == NULL || !cfgcheck_loopback_listen(m))) {
        rc = config_fail(x, "hook.monitor_plain_http",
                         "plain HTTP is only allowed with a loopback monitor_listen");
    }
    if ((json_is_true(lazy) || json_is_true(rehash)) && tops != NULL && !(tops->caps & CONN_LDAP)) {
        rc = config_fail(x, json_is_true(lazy) ? "hook.lazy_migration" : "hook.rehash",
                         "needs an LDAP target (target.type ldap); a %s target gets its "
                         "passwords through its own import or hook",
                         tops->name);
    }
    return rc;
}

/* Rules that involve several hook keys. */
static int validate_hook(struct cfg_ctx *x)
{
    const char *listen = config_str_at(x->root, "hook.listen");
    json_t *plain = config_json_at(x->root, "hook.plain_http");
    json_t *cert = config_json_at(x->root, "hook.tls.cert_file");
    json_t *key = config_json_at(x->root, "hook.tls.key_file");
    const char *tmpl = config_str_at(x->root, "hook.dn_template");
    const char *l = listen != NULL ? listen : "127.0.0.1:8443";
    const char *colon = strrchr(l, ':');
    int rc = DM_OK;

    if (colon == NULL || colon == l || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        rc = config_fail(x, "hook.listen", "must be address:port, e.g. 127.0.0.1:8443");
    } else if (json_is_true(plain) && !cfgcheck_loopback_listen(l)) {
        rc = config_fail(x, "hook.plain_http",
                         "plain HTTP is only allowed on a loopback address (listen %s)", l);
    }
    if ((cert == NULL) != (key == NULL)) {
        rc = config_fail(x, cert == NULL ? "hook.tls.key_file" : "hook.tls.cert_file",
                         "tls.cert_file and tls.key_file go together");
    }
    if (config_json_at(x->root, "hook.secret_file") != NULL &&
        config_json_at(x->root, "hook.secret_env")) {
        rc = config_fail(x, "hook.secret_env", "use only one of secret_file and secret_env");
    }
    if (tmpl != NULL && strstr(tmpl, "{login}") == NULL) {
        rc = config_fail(x, "hook.dn_template", "must contain {login}");
    }
    if (validate_hook_more(x, l) != DM_OK) {
        rc = DM_EINVAL;
    }
    return rc;
}

/* state.type decides which of the state keys mean something. */
static int validate_state(struct cfg_ctx *x)
{
    static const char *const pg_only[] = {"state.conninfo_file", "state.conninfo_env", "state.tls",
                                          "state.connect_timeout_s"};
    const char *type = config_str_at(x->root, "state.type");
    int pg = type != NULL && strcmp(type, "postgresql") == 0, rc = DM_OK;
    int f = config_json_at(x->root, "state.conninfo_file") != NULL;
    int e = config_json_at(x->root, "state.conninfo_env") != NULL;

    if (pg && config_json_at(x->root, "state.path") != NULL) {
        rc = config_fail(x, "state.path", "does nothing with state.type postgresql");
    }
    for (size_t i = 0; !pg && i < DM_ARRAY_LEN(pg_only); i++) {
        if (config_json_at(x->root, pg_only[i]) != NULL) {
            rc = config_fail(x, pg_only[i], "only with state.type postgresql");
        }
    }
    if (pg && f && e) {
        rc = config_fail(x, "state.conninfo_env", "use only one of conninfo_file and conninfo_env");
    } else if (pg && !f && !e) {
        rc = config_fail(x, "state.type",
                         "postgresql needs state.conninfo_file or state.conninfo_env");
    }
    return rc;
}

int config_validate(struct cfg_ctx *x)
{
    int rc = validate_object(x, x->root, "");

    if (rc == DM_ENOMEM) {
        return rc;
    }
    for (int r = 0; r < 2; r++) {
        if (validate_endpoint(x, r) != DM_OK) {
            rc = DM_EINVAL;
        }
    }
    if (validate_hook(x) != DM_OK) {
        rc = DM_EINVAL;
    }
    if (validate_state(x) != DM_OK) {
        rc = DM_EINVAL;
    }
    return rc;
}
