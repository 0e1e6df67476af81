/*
 * undo.c: undo records (agent/undo.h): the images a connector returns, serialised into the
 * undo store, and the digest that tells rollback whether an object changed since its run.
 */
#include <config.h>
#include "agent/undo.h"
#include "agent/util/buf.h"
#include "schema/dn.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UNDO_MAGIC "DMUNDO1\n"
/* An image larger than this is refused when read back (a million-member group's member
 * list is well below it). */
#define UNDO_MAX_IMAGE ((size_t)1 << 30)

void undo_images_free(struct apply_result *r)
{
    if (r == NULL) {
        return;
    }
    entry_free(r->before);
    entry_free(r->after);
    r->before = r->after = NULL;
}

static int is_pseudo(const char *name)
{
    return strcasecmp(name, CONN_UNDO_GROUPS) == 0;
}

/* ---- the image's serialised form ---- */

static int put_bytes(struct buf *b, char tag, const void *p, size_t n)
{
    int rc = buf_printf(b, "%c %zu\n", tag, n);

    if (rc == DM_OK) {
        rc = buf_append(b, p, n);
    }
    if (rc == DM_OK) {
        rc = buf_append(b, "\n", 1);
    }
    return rc;
}

int undo_image_encode(unsigned char **out, size_t *len, const struct entry *img)
{
    struct buf b;
    int rc;

    buf_init(&b, UNDO_MAX_IMAGE);
    rc = buf_puts(&b, UNDO_MAGIC);
    if (rc == DM_OK) {
        rc = put_bytes(&b, 'D', img->dn ? img->dn : "", img->dn ? strlen(img->dn) : 0);
    }
    for (size_t i = 0; rc == DM_OK && i < img->nattrs; i++) {
        const struct dm_attr *a = &img->attrs[i];
        rc = buf_printf(&b, "A %zu\n", a->nvals);
        if (rc == DM_OK) {
            rc = put_bytes(&b, 'N', a->name, strlen(a->name));
        }
        for (size_t k = 0; rc == DM_OK && k < a->nvals; k++) {
            rc = put_bytes(&b, 'V', a->vals[k].data, a->vals[k].len);
        }
    }
    if (rc != DM_OK) {
        if (b.data != NULL) {
            explicit_bzero(b.data, b.alloc);
        }
        buf_free(&b);
        return rc;
    }
    *len = b.len;
    *out = (unsigned char *)buf_steal(&b);
    return DM_OK;
}

struct rd {
    const unsigned char *p, *end;
};

/* Reads "T N\n" and, for byte fields, N bytes and "\n". */
static int get_num(struct rd *r, char tag, size_t *n)
{
    char *end;
    unsigned long long v;

    if (r->end - r->p < 3 || r->p[0] != (unsigned char)tag || r->p[1] != ' ') {
        return DM_EINVAL;
    }
    r->p += 2;
    v = strtoull((const char *)r->p, &end, 10);
    if ((const unsigned char *)end >= r->end || *end != '\n' ||
        (const unsigned char *)end == r->p || v > UNDO_MAX_IMAGE) {
        return DM_EINVAL;
    }
    r->p = (const unsigned char *)end + 1;
    *n = (size_t)v;
    return DM_OK;
}

static int get_bytes(struct rd *r, char tag, const unsigned char **data, size_t *n)
{
    if (get_num(r, tag, n) != DM_OK || (size_t)(r->end - r->p) < *n + 1 || r->p[*n] != '\n') {
        return DM_EINVAL;
    }
    *data = r->p;
    r->p += *n + 1;
    return DM_OK;
}

int undo_image_decode(struct entry **out, const unsigned char *data, size_t len, struct dm_err *err)
{
    struct rd r = {data, data + len};
    const unsigned char *v;
    struct entry *e = NULL;
    size_t n, nvals;
    char *s = NULL;
    int rc = DM_EINVAL;

    if (len < strlen(UNDO_MAGIC) || memcmp(data, UNDO_MAGIC, strlen(UNDO_MAGIC)) != 0) {
        goto done;
    }
    r.p += strlen(UNDO_MAGIC);
    if (get_bytes(&r, 'D', &v, &n) != DM_OK || (s = strndup((const char *)v, n)) == NULL) {
        goto done;
    }
    e = entry_new(s[0] ? s : NULL);
    if (e == NULL) {
        rc = DM_ENOMEM;
        goto done;
    }
    while (r.p < r.end) {
        struct dm_attr *a;
        free(s);
        s = NULL;
        if (get_num(&r, 'A', &nvals) != DM_OK || get_bytes(&r, 'N', &v, &n) != DM_OK || n == 0 ||
            (s = strndup((const char *)v, n)) == NULL || strlen(s) != n) {
            goto done;
        }
        a = entry_attr_append(e, s);
        if (a == NULL) {
            rc = DM_ENOMEM;
            goto done;
        }
        for (size_t k = 0; k < nvals; k++) {
            if (get_bytes(&r, 'V', &v, &n) != DM_OK) {
                goto done;
            }
            if (attr_add_value(a, v, n) != DM_OK) {
                rc = DM_ENOMEM;
                goto done;
            }
        }
    }
    *out = e;
    e = NULL;
    rc = DM_OK;
done:
    free(s);
    entry_free(e);
    if (rc == DM_EINVAL) {
        return dm_err_set(err, DM_EINVAL, "a damaged undo record (its image cannot be read)");
    }
    return rc == DM_ENOMEM ? dm_err_set(err, DM_ENOMEM, "out of memory") : DM_OK;
}

/* ---- the journal row ---- */

char *undo_row_encode(const struct state_object *o)
{
    json_t *j = json_pack("{s:s?,s:s?,s:s?,s:s?,s:s,s:s?,s:I,s:s?,s:b,s:b,s:I}", "kind", o->kind,
                          "key", o->key, "source_dn", o->source_dn, "target_ref", o->target_ref,
                          "digest", o->digest, "status", o->status, "last_run",
                          (json_int_t)o->last_run, "attrs", o->attrs, "linked", o->linked,
                          "suffixed", o->suffixed, "disabled_at", (json_int_t)o->disabled_at);
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    return s;
}

static char *dup_field(json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));

    return v != NULL ? strdup(v) : NULL;
}

int undo_row_decode(struct state_object *out, const char *json, struct dm_err *err)
{
    json_t *j = json_loads(json, 0, NULL);
    struct state_object o;

    memset(&o, 0, sizeof(o));
    if (!json_is_object(j) || !json_is_string(json_object_get(j, "kind")) ||
        !json_is_string(json_object_get(j, "key"))) {
        json_decref(j);
        return dm_err_set(err, DM_EINVAL, "a damaged undo record (its journal row)");
    }
    o.kind = dup_field(j, "kind");
    o.key = dup_field(j, "key");
    o.source_dn = dup_field(j, "source_dn");
    o.target_ref = dup_field(j, "target_ref");
    o.status = dup_field(j, "status");
    o.attrs = dup_field(j, "attrs");
    snprintf(o.digest, sizeof(o.digest), "%s",
             json_string_value(json_object_get(j, "digest"))
                 ? json_string_value(json_object_get(j, "digest"))
                 : "");
    o.last_run = (long long)json_integer_value(json_object_get(j, "last_run"));
    o.linked = json_is_true(json_object_get(j, "linked"));
    o.suffixed = json_is_true(json_object_get(j, "suffixed"));
    o.disabled_at = (long long)json_integer_value(json_object_get(j, "disabled_at"));
    json_decref(j);
    if (o.kind == NULL || o.key == NULL) {
        state_object_clear(&o);
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    *out = o;
    return DM_OK;
}

/* ---- digest ---- */

static int in_list(const char *const *list, const char *name)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcasecmp(list[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int in_names(const char *names, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = names; p != NULL && *p != '\0';) {
        size_t k = strcspn(p, ",");
        if (k == n && strncasecmp(p, name, n) == 0) {
            return 1;
        }
        p += k + (p[k] == ',');
    }
    return 0;
}

void undo_digest(char hex[65], const struct entry *e, const char *names,
                 const char *const *dn_attrs)
{
    struct entry *view = entry_new(NULL);
    int rc = view != NULL ? DM_OK : DM_ENOMEM;

    for (size_t i = 0; rc == DM_OK && e != NULL && i < e->nattrs; i++) {
        const struct dm_attr *a = &e->attrs[i];
        int dnv = in_list(dn_attrs, a->name), oc = strcasecmp(a->name, "objectClass") == 0;
        if (!in_names(names, a->name) || is_pseudo(a->name) || entry_is_sensitive_attr(a->name)) {
            continue;
        }
        for (size_t k = 0; k < a->nvals && rc == DM_OK; k++) {
            char *norm = NULL;
            if (dnv && strlen((const char *)a->vals[k].data) == a->vals[k].len &&
                dn_normalize(&norm, (const char *)a->vals[k].data, NULL) == DM_OK) {
                rc = entry_add_str(view, a->name, norm);
            } else if (oc) {
                norm = strndup((const char *)a->vals[k].data, a->vals[k].len);
                for (char *p = norm; p != NULL && *p; p++) {
                    *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
                }
                rc = norm != NULL ? entry_add_str(view, a->name, norm) : DM_ENOMEM;
            } else {
                rc = entry_add_value(view, a->name, a->vals[k].data, a->vals[k].len);
            }
            free(norm);
        }
    }
    if (rc != DM_OK) {
        snprintf(hex, 65, "%s", "");
    } else {
        entry_digest(view, hex);
    }
    entry_free(view);
}

char *undo_names(const struct entry *img)
{
    struct buf b;

    buf_init(&b, 1 << 20);
    for (size_t i = 0; img != NULL && i < img->nattrs; i++) {
        if (!is_pseudo(img->attrs[i].name) &&
            buf_printf(&b, "%s%s", b.len ? "," : "", img->attrs[i].name) != DM_OK) {
            buf_free(&b);
            return NULL;
        }
    }
    return b.data != NULL ? buf_steal(&b) : strdup("");
}

/* ---- records ---- */

/* The operation a result stands for, or NULL when nothing was written. */
static const char *op_of(const struct change *c, const struct apply_result *r)
{
    switch (r->status) {
    case APPLY_CREATED:
        return c->op == CHANGE_ADD && r->before == NULL ? UNDO_CREATED : UNDO_MODIFIED;
    case APPLY_UPDATED:
        return c->op == CHANGE_MOVE ? UNDO_MOVED : UNDO_MODIFIED;
    case APPLY_DISABLED:
        return UNDO_DISABLED;
    case APPLY_DELETED:
        return UNDO_DELETED;
    case APPLY_UNCHANGED:
        /* nothing of the object changed, but it may have left its groups */
        if (r->before == NULL) {
            return NULL;
        }
        return c->op == CHANGE_DISABLE ? UNDO_DISABLED : UNDO_MODIFIED;
    default:
        return NULL;
    }
}

int undo_record(struct state *s, const struct undo_change *u, struct dm_err *err)
{
    const struct change *c = u->change;
    const struct apply_result *r = u->result;
    const char *op = op_of(c, r),
               *id = c->target_id != NULL && c->target_id[0] ? c->target_id : NULL;
    const struct entry *named;
    struct state_undo rec;
    unsigned char *blob = NULL;
    size_t blen = 0;
    char digest[65] = "", *names = NULL, *row = NULL;
    int rc = DM_OK;

    if (op == NULL) {
        return DM_OK;
    }
    memset(&rec, 0, sizeof(rec));
    rec.run = u->run;
    rec.kind = u->kind;
    rec.key = u->key;
    rec.op = op;
    rec.source_dn = u->source_dn;
    rec.wave = u->wave;
    if (strcmp(op, UNDO_DELETED) == 0) {
        rec.ref = "";
        rec.ref_before = r->before != NULL ? r->before->dn : id != NULL ? id : c->entry->dn;
    } else if (strcmp(op, UNDO_CREATED) == 0) {
        rec.ref = r->target_id[0] ? r->target_id : r->after != NULL ? r->after->dn : c->entry->dn;
    } else {
        rec.ref = r->after != NULL && r->after->dn != NULL ? r->after->dn
                  : id != NULL                             ? id
                                                           : c->entry->dn;
        rec.ref_before = strcmp(op, UNDO_MOVED) == 0 && r->before != NULL ? r->before->dn : NULL;
    }
    named = r->after != NULL ? r->after : r->before;
    names = undo_names(named);
    if (names == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    if (r->after != NULL) {
        undo_digest(digest, r->after, names, u->dn_attrs);
    }
    rec.names = names;
    rec.after_digest = digest;
    if (r->before != NULL) {
        rc = undo_image_encode(&blob, &blen, r->before);
        if (rc != DM_OK) {
            rc = dm_err_set(err, rc, "the undo image of %s: out of memory", rec.ref);
        }
        rec.before = blob;
        rec.before_len = blen;
    }
    if (rc == DM_OK && u->row_json != NULL) {
        rec.row_before = u->row_json;
    } else if (rc == DM_OK && u->row_before != NULL) {
        row = undo_row_encode(u->row_before);
        if (row == NULL) {
            rc = dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        rec.row_before = row;
    }
    if (rc == DM_OK) {
        rc = state_undo_put(s, &rec, err);
    }
    if (blob != NULL) {
        explicit_bzero(blob, blen);
        free(blob);
    }
    free(row);
    free(names);
    return rc;
}
