#include <config.h>
#include "connectors/connector.h"
#include <string.h>

extern const struct conn_ops conn_ldap_ops;
extern const struct conn_ops conn_okta_ops;

/* NULL-terminated registry of every connector: adding a target is adding a file here. */
static const struct conn_ops *const registry[] = {
    &conn_ldap_ops,
    &conn_okta_ops,
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
