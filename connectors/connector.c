#include <config.h>
#include "connectors/connector.h"
#include <stdlib.h>
#include <string.h>

extern const struct conn_ops conn_ldap_ops;
extern const struct conn_ops conn_okta_ops;
extern const struct conn_ops conn_scim_ops;
extern const struct conn_ops conn_auth0_ops;
extern const struct conn_ops conn_ldif_ops;
extern const struct conn_ops conn_csv_ops;
extern const struct conn_ops conn_jsonl_ops;

/* NULL-terminated registry of every connector: adding a target is adding a file here. */
static const struct conn_ops *const registry[] = {
    /* one a line (clang-format keeps it so with the trailing comment) */
    &conn_ldap_ops,  /* ldap */
    &conn_okta_ops,  /* okta */
    &conn_scim_ops,  /* scim */
    &conn_auth0_ops, /* auth0 */
    &conn_ldif_ops,  /* ldif */
    &conn_csv_ops,   /* csv */
    &conn_jsonl_ops, /* jsonl */
    NULL,
};

const struct conn_ops *conn_find(const char *name)
{
    for (size_t i = 0; registry[i] != NULL; i++) {
        if (strcmp(registry[i]->name, name) == 0) {
            return registry[i];
        }
    }
    return NULL;
}

const struct conn_ops *const *conn_all(void)
{
    return registry;
}

const char *conn_cfg_opt(const struct conn_cfg *cfg, const char *path)
{
    for (size_t i = 0; i < cfg->nopts; i++) {
        if (strcmp(cfg->opts[i].path, path) == 0) {
            return cfg->opts[i].value;
        }
    }
    return NULL;
}

long long conn_cfg_opt_int(const struct conn_cfg *cfg, const char *path, long long def)
{
    const char *v = conn_cfg_opt(cfg, path);
    char *end = NULL;
    long long n;

    if (v == NULL) {
        return def;
    }
    n = strtoll(v, &end, 10);
    return end != v && *end == '\0' ? n : def;
}

int conn_cfg_opt_bool(const struct conn_cfg *cfg, const char *path, int def)
{
    const char *v = conn_cfg_opt(cfg, path);

    if (v == NULL) {
        return def;
    }
    return strcmp(v, "true") == 0 ? 1 : strcmp(v, "false") == 0 ? 0 : def;
}
