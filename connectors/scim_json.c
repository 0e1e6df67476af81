/*
 * connectors/scim_json.c: SCIM resources and mapped entries, both ways (scim_json.h).
 */
#include <config.h>
#include "connectors/scim_json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the schema: what an attribute name of the map is in SCIM ---- */

const struct scim_attr *scim_attr_of(const struct scim_schema *c, const char *name)
{
    for (size_t i = 0; i < c->nattrs; i++) {
        if (strcasecmp(c->attrs[i].name, name) == 0) {
            return &c->attrs[i];
        }
    }
    return NULL;
}

/* One value as JSON of the attribute's type. NULL on ENOMEM or a value that is not UTF-8
 * (a SCIM string cannot hold it). */
static json_t *typed(const char *type, const struct dm_val *v)
{
    if (type != NULL && strcmp(type, "boolean") == 0) {
        if (v->len == 4 && strncasecmp((const char *)v->data, "true", 4) == 0) {
            return json_true();
        }
        if (v->len == 5 && strncasecmp((const char *)v->data, "false", 5) == 0) {
            return json_false();
        }
    } else if (type != NULL && strcmp(type, "integer") == 0) {
        char *end;
        long long n = strtoll((const char *)v->data, &end, 10);
        if (v->len > 0 && end == (const char *)v->data + v->len) {
            return json_integer(n);
        }
    }
    return memchr(v->data, 0, v->len) == NULL ? json_stringn((const char *)v->data, v->len) : NULL;
}

void scim_where_of(const struct scim_schema *c, const char *name, struct scim_where *w)
{
    const char *colon = strrchr(name, ':');

    w->urn = "";
    w->a = NULL;
    if (strncasecmp(name, "urn:", 4) == 0 && colon != NULL) {
        for (size_t i = 0; i < c->next; i++) {
            size_t n = strlen(c->ext[i]);
            if (strncasecmp(name, c->ext[i], n) == 0 && name[n] == ':') {
                w->urn = c->ext[i];
            }
        }
        snprintf(w->path, sizeof(w->path), "%s", colon + 1);
    } else {
        snprintf(w->path, sizeof(w->path), "%s", name);
    }
    {
        char top[64];
        const char *dot = strchr(w->path, '.');
        snprintf(top, sizeof(top), "%.*s", (int)(dot ? (size_t)(dot - w->path) : strlen(w->path)),
                 w->path);
        w->a = scim_attr_of(c, top);
    }
    if (w->urn[0] == '\0' && w->a != NULL && w->a->ext > 0) {
        w->urn = c->ext[w->a->ext - 1]; /* "employeeNumber": the extension that has it */
    }
}

/* The JSON value of attribute a for values vals (NULL when it has none): an array for a
 * multi-valued attribute (objects {"value": v} for a complex one, the first "primary"). */
json_t *scim_value_of(const struct scim_where *w, const struct dm_attr *a)
{
    const struct scim_attr *s = w->a;
    const char *sub = strchr(w->path, '.');
    json_t *out;

    if (a->nvals == 0) {
        return NULL;
    }
    if (sub != NULL || s == NULL || !s->multi) {
        return typed(sub == NULL && s != NULL ? s->type : NULL, &a->vals[0]);
    }
    out = json_array();
    for (size_t i = 0; out != NULL && i < a->nvals; i++) {
        json_t *v = typed(s->has_value ? NULL : s->type, &a->vals[i]);
        if (v != NULL && s->has_value) {
            json_t *o = json_pack("{s:o}", "value", v);
            if (o != NULL && s->has_primary && i == 0) {
                json_object_set_new(o, "primary", json_true());
            }
            v = o;
        }
        if (v == NULL || json_array_append_new(out, v) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Sets attribute w (path "a" or "a.b") of res to v (stolen; NULL removes it). */
int scim_set_path(json_t *res, const struct scim_where *w, json_t *v)
{
    json_t *obj = res;
    const char *dot = strchr(w->path, '.');
    char top[128];

    if (w->urn[0] != '\0') {
        obj = json_object_get(res, w->urn);
        if (obj == NULL && v != NULL) {
            obj = json_object();
            if (obj == NULL || json_object_set_new(res, w->urn, obj) != 0) {
                json_decref(v);
                return -1;
            }
        }
    }
    if (obj == NULL) {
        return 0;
    }
    if (dot != NULL) {
        snprintf(top, sizeof(top), "%.*s", (int)(dot - w->path), w->path);
        json_t *inner = json_object_get(obj, top);
        if (inner == NULL && v != NULL) {
            inner = json_object();
            if (inner == NULL || json_object_set_new(obj, top, inner) != 0) {
                json_decref(v);
                return -1;
            }
        }
        if (inner == NULL) {
            return 0;
        }
        return v != NULL ? json_object_set_new(inner, dot + 1, v)
                         : (json_object_del(inner, dot + 1), 0);
    }
    return v != NULL ? json_object_set_new(obj, w->path, v) : (json_object_del(obj, w->path), 0);
}

/* The member objects of ids [from, to) of a. */
json_t *scim_members_of(const struct dm_attr *a, size_t from, size_t to)
{
    json_t *arr = json_array();

    for (size_t i = from; arr != NULL && i < to; i++) {
        json_t *m = json_pack("{s:s%}", "value", (const char *)a->vals[i].data, a->vals[i].len);
        if (m == NULL || json_array_append_new(arr, m) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* A new resource from a mapped entry (a group's members: the first `chunk`). NULL with err
 * when a value cannot be sent. */
json_t *scim_resource_of(const struct scim_schema *c, const struct change *ch, struct dm_err *err)
{
    const struct entry *e = ch->entry;
    int user = ch->kind == OBJ_USER;
    json_t *res = json_pack("{s:[s]}", "schemas", user ? SCIM_USER_SCHEMA : SCIM_GROUP_SCHEMA);

    for (size_t i = 0; res != NULL && i < e->nattrs; i++) {
        const struct dm_attr *a = &e->attrs[i];
        struct scim_where w;
        json_t *v;

        if (a->nvals == 0) {
            continue;
        }
        if (!user && strcasecmp(a->name, "member") == 0) {
            v = scim_members_of(a, 0, a->nvals < c->chunk ? a->nvals : c->chunk);
            if (v == NULL || json_object_set_new(res, "members", v) != 0) {
                goto nomem;
            }
            continue;
        }
        scim_where_of(c, a->name, &w);
        v = scim_value_of(&w, a);
        if (v == NULL) {
            dm_err_set(err, DM_ESCHEMA, "%s: a value is not valid UTF-8 text", a->name);
            dm_err_attr(err, a->name);
            json_decref(res);
            return NULL;
        }
        if (scim_set_path(res, &w, v) != 0) {
            goto nomem;
        }
        if (w.urn[0] != '\0') {
            json_t *sc = json_object_get(res, "schemas");
            size_t k;
            json_t *x;
            int have = 0;
            json_array_foreach (sc, k, x) {
                have |= strcmp(json_string_value(x), w.urn) == 0;
            }
            if (!have && json_array_append_new(sc, json_string(w.urn)) != 0) {
                goto nomem;
            }
        }
    }
    if (res != NULL && user && ch->state != CHANGE_STATE_KEEP &&
        json_object_set_new(res, "active", json_boolean(ch->state == CHANGE_STATE_ENABLE)) != 0) {
        goto nomem;
    }
    if (res != NULL) {
        return res;
    }
nomem:
    json_decref(res);
    dm_err_set(err, DM_ENOMEM, "out of memory");
    return NULL;
}

/* ---- reading: a resource as an entry ---- */

static int add_scalar(struct entry *e, const char *name, json_t *v)
{
    char num[64];

    if (json_is_string(v)) {
        return entry_add_value(e, name, json_string_value(v), json_string_length(v));
    }
    if (json_is_boolean(v)) {
        return entry_add_str(e, name, json_is_true(v) ? "true" : "false");
    }
    if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        return entry_add_str(e, name, num);
    }
    if (json_is_real(v)) {
        snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        return entry_add_str(e, name, num);
    }
    return DM_OK;
}

/* The attributes of one schema's object into e: scalars by name, complex ones as
 * "name.sub", multi-valued ones as their values (of "value" for complex ones). prefix is
 * the extension URN + ':' (also given the short name) or "". */
static int flatten(struct entry *e, json_t *obj, const char *prefix, const struct scim_schema *c)
{
    const char *k;
    json_t *v;
    char name[256];
    int rc = DM_OK;

    json_object_foreach (obj, k, v) {
        for (int pass = 0; pass < (prefix[0] ? 2 : 1) && rc == DM_OK; pass++) {
            if (pass == 1 && scim_attr_of(c, k) != NULL && scim_attr_of(c, k)->ext == 0) {
                break; /* the short name is a core attribute's */
            }
            snprintf(name, sizeof(name), "%s%s", pass == 0 ? prefix : "", k);
            if (json_is_array(v)) {
                size_t i;
                json_t *x;
                json_array_foreach (v, i, x) {
                    if (rc == DM_OK) {
                        rc = add_scalar(e, name,
                                        json_is_object(x) ? json_object_get(x, "value") : x);
                    }
                }
            } else if (json_is_object(v)) {
                const char *sk;
                json_t *sv;
                char sub[300];
                json_object_foreach (v, sk, sv) {
                    snprintf(sub, sizeof(sub), "%s.%s", name, sk);
                    if (rc == DM_OK) {
                        rc = add_scalar(e, sub, sv);
                    }
                }
                if (rc == DM_OK && json_object_get(v, "value") != NULL) {
                    rc = add_scalar(e, name, json_object_get(v, "value")); /* manager */
                }
            } else {
                rc = add_scalar(e, name, v);
            }
        }
    }
    return rc;
}

struct entry *scim_entry_of(const struct scim_schema *c, json_t *res, enum obj_kind kind)
{
    const char *id = json_string_value(json_object_get(res, "id"));
    const char *nk =
        json_string_value(json_object_get(res, kind == OBJ_USER ? "userName" : "displayName"));
    struct entry *e;
    json_t *core = json_object(), *v;
    const char *k;
    int rc;

    if (id == NULL || core == NULL) {
        json_decref(core);
        return NULL;
    }
    e = entry_new(nk != NULL ? nk : id);
    rc = e != NULL ? entry_set_key(e, id) : DM_ENOMEM;
    json_object_foreach (res, k, v) {
        if (strcmp(k, "schemas") == 0 || strcmp(k, "meta") == 0 || strcmp(k, "groups") == 0 ||
            strncasecmp(k, "urn:", 4) == 0) {
            continue;
        }
        if (kind == OBJ_GROUP && strcmp(k, "members") == 0) {
            size_t i;
            json_t *m;
            json_array_foreach (v, i, m) {
                const char *mv = json_string_value(json_object_get(m, "value"));
                if (rc == DM_OK && mv != NULL && mv[0]) {
                    rc = entry_add_str(e, "member", mv);
                }
            }
            continue;
        }
        json_object_set(core, k, v);
    }
    if (rc == DM_OK) {
        rc = flatten(e, core, "", c);
    }
    if (rc == DM_OK && kind == OBJ_USER) {
        /* the account state the planner compares: active false is a disabled account; no
         * "active" at all is the provider's default, an account that can sign in */
        rc = entry_add_str(e, "dirmigAccountState",
                           json_is_false(json_object_get(res, "active")) ? "disabled" : "enabled");
    }
    json_object_foreach (res, k, v) {
        if (rc == DM_OK && strncasecmp(k, "urn:", 4) == 0 && json_is_object(v)) {
            char prefix[160];
            snprintf(prefix, sizeof(prefix), "%s:", k);
            rc = flatten(e, v, prefix, c);
        }
    }
    json_decref(core);
    if (rc != DM_OK) {
        entry_free(e);
        return NULL;
    }
    return e;
}
