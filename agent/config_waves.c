/*
 * agent/config_waves.c: the "waves" array of dirmig.json (struct config_wave): each wave
 * has a name and selects users by exactly one of an LDAP filter, a group DN or an OU DN.
 */
#include <config.h>
#include "agent/config_priv.h"
#include "agent/util/suggest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "waves": [{"name": "pilot", "filter": "(...)" | "group": "<dn>" | "ou": "<dn>",
 *             "groups": false}, ...]: exactly one of filter/group/ou per wave. */
int config_parse_waves(struct cfg_ctx *x)
{
    static const char *const wave_keys[] = {"name", "filter", "group", "ou", "groups"};
    struct dm_config *c = &x->cp->pub;
    json_t *arr = config_json_at(x->root, "waves"), *w;
    size_t i;
    int rc = DM_OK;

    if (arr == NULL) {
        return DM_OK;
    }
    if (!json_is_array(arr)) {
        return config_fail(x, "waves", "must be an array of wave objects");
    }
    c->waves = calloc(json_array_size(arr) + 1, sizeof(*c->waves));
    if (c->waves == NULL || config_pool_add(x->cp, c->waves) != DM_OK) {
        return dm_err_set(x->err, DM_ENOMEM, "config waves");
    }
    json_array_foreach (arr, i, w) {
        struct config_wave *cw = &c->waves[i];
        char path[64];
        const char *key;
        json_t *v;
        int nsel = 0, bad = 0;

        snprintf(path, sizeof(path), "waves[%zu]", i);
        if (!json_is_object(w)) {
            rc = config_fail(x, path, "must be an object");
            continue;
        }
        json_object_foreach (w, key, v) {
            char kp[128];
            snprintf(kp, sizeof(kp), "%s.%s", path, key);
            if (strcmp(key, "groups") == 0) {
                if (!json_is_boolean(v)) {
                    bad = config_fail(x, kp, "must be true or false");
                }
                cw->groups = json_is_true(v);
                continue;
            }
            if (strcmp(key, "name") != 0 && strcmp(key, "filter") != 0 &&
                strcmp(key, "group") != 0 && strcmp(key, "ou") != 0) {
                const char *best = suggest_closest(key, wave_keys, DM_ARRAY_LEN(wave_keys));
                if (best != NULL) {
                    bad = config_fail(x, kp, "unknown key (did you mean \"%s\"?)", best);
                } else {
                    bad = config_fail(x, kp, "unknown key (name, filter, group, ou, groups)");
                }
                continue;
            }
            if (!json_is_string(v) || json_string_length(v) == 0) {
                bad = config_fail(x, kp, "must be a non-empty string");
                continue;
            }
            if (strcmp(key, "filter") == 0) {
                const char *f = json_string_value(v);
                int depth = 0;
                for (const char *p = f; *p && depth >= 0; p++) {
                    depth += (*p == '(') - (*p == ')');
                }
                if (f[0] != '(' || depth != 0) {
                    bad = config_fail(x, kp, "must be an LDAP filter in parentheses");
                    continue;
                }
            } else if (strcmp(key, "name") != 0 && strchr(json_string_value(v), '=') == NULL) {
                bad = config_fail(x, kp, "must be a DN");
                continue;
            }
            {
                char *s = config_pool_strdup(x->cp, json_string_value(v));
                if (s == NULL) {
                    return dm_err_set(x->err, DM_ENOMEM, "config waves");
                }
                if (strcmp(key, "name") == 0) {
                    cw->name = s;
                } else if (strcmp(key, "filter") == 0) {
                    cw->filter = s, nsel++;
                } else if (strcmp(key, "group") == 0) {
                    cw->group = s, nsel++;
                } else {
                    cw->ou = s, nsel++;
                }
            }
        }
        if (bad) {
            rc = DM_EINVAL;
            continue;
        }
        if (cw->name == NULL) {
            rc = config_fail(x, path, "a wave needs a \"name\"");
            continue;
        }
        if (nsel != 1) {
            rc = config_fail(x, path, "a wave needs exactly one of filter, group, ou");
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (c->waves[j].name != NULL && strcmp(c->waves[j].name, cw->name) == 0) {
                rc = config_fail(x, path, "duplicate wave name \"%s\"", cw->name);
                break;
            }
        }
        c->nwaves++;
    }
    return rc;
}
