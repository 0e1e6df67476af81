#include <config.h>
#include "agent/export.h"
#include "schema/transform.h"
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct export
{
    FILE *csv, *jsonl;
    char *csv_path, *jsonl_path;
};

static int open_one(FILE **f, char **path, const char *prefix, const char *ext, struct dm_err *err)
{
    size_t n = strlen(prefix) + strlen(ext) + 1;

    *path = malloc(n);
    if (*path == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    snprintf(*path, n, "%s%s", prefix, ext);
    *f = fopen(*path, "w");
    if (*f == NULL) {
        return dm_err_set(err, DM_EINVAL, "%s: cannot create: %s", *path, strerror(errno));
    }
    return DM_OK;
}

int export_open(struct export **out, const char *prefix, struct dm_err *err)
{
    struct export *x = calloc(1, sizeof(*x));
    int rc;

    if (x == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    rc = open_one(&x->csv, &x->csv_path, prefix, ".csv", err);
    if (rc == DM_OK) {
        rc = open_one(&x->jsonl, &x->jsonl_path, prefix, ".jsonl", err);
    }
    if (rc != DM_OK) {
        export_close(x, NULL);
        return rc;
    }
    fputs("key,dn,kind,status,problems,messages\n", x->csv);
    *out = x;
    return DM_OK;
}

/* RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
void export_csv_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n") != NULL) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') {
                fputc('"', f);
            }
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

static json_t *value_json(const struct map *m, enum map_kind mk, const char *attr,
                          const struct dm_val *v)
{
    size_t nchars;
    int maxb;
    char tmp[64];

    if (map_attr_is_pii(m, mk, attr)) {
        return json_string("***");
    }
    if (memchr(v->data, 0, v->len) != NULL ||
        transform_utf8_len(&nchars, &maxb, (const char *)v->data, v->len) != 0) {
        snprintf(tmp, sizeof(tmp), "(binary, %zu bytes)", v->len);
        return json_string(tmp);
    }
    return json_stringn((const char *)v->data, v->len);
}

int export_row(struct export *x, const char *key, const char *dn, const char *kind,
               const char *status, const struct map_problem *probs, size_t nprobs,
               const struct map *m, enum map_kind mk, const struct entry *mapped,
               struct dm_err *err)
{
    json_t *row, *pa = json_array(), *vals = json_object();
    struct buf cats, msgs;
    int rc = DM_OK;

    buf_init(&cats, 1 << 16);
    buf_init(&msgs, 1 << 16);
    for (size_t i = 0; i < nprobs; i++) {
        if (buf_printf(&cats, "%s%s:%s", i ? ";" : "", probs[i].category, probs[i].attr) != DM_OK ||
            buf_printf(&msgs, "%s%s", i ? "; " : "", probs[i].msg) != DM_OK) {
            break;
        }
        json_array_append_new(pa, json_pack("{s:s,s:s,s:s}", "category", probs[i].category,
                                            "attribute", probs[i].attr, "message", probs[i].msg));
    }
    for (size_t i = 0; mapped != NULL && i < mapped->nattrs; i++) {
        const struct dm_attr *a = &mapped->attrs[i];
        json_t *arr = json_array();
        for (size_t j = 0; j < a->nvals; j++) {
            json_array_append_new(arr, value_json(m, mk, a->name, &a->vals[j]));
        }
        json_object_set_new(vals, a->name, arr);
    }
    export_csv_field(x->csv, key ? key : "", 0);
    export_csv_field(x->csv, dn ? dn : "", 0);
    export_csv_field(x->csv, kind, 0);
    export_csv_field(x->csv, status, 0);
    export_csv_field(x->csv, cats.data ? cats.data : "", 0);
    export_csv_field(x->csv, msgs.data ? msgs.data : "", 1);
    row = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o}", "key", key ? key : "", "dn", dn ? dn : "", "kind",
                    kind, "status", status, "problems", pa, "values", vals);
    if (row == NULL || json_dumpf(row, x->jsonl, JSON_COMPACT) != 0) {
        rc = dm_err_set(err, DM_EINTERNAL, "%s: cannot write a row", x->jsonl_path);
    } else {
        fputc('\n', x->jsonl);
    }
    json_decref(row);
    buf_free(&cats);
    buf_free(&msgs);
    if (rc == DM_OK && (ferror(x->csv) || ferror(x->jsonl))) {
        rc = dm_err_set(err, DM_EINVAL, "%s: write error", x->csv_path);
    }
    return rc;
}

int export_close(struct export *x, struct dm_err *err)
{
    int rc = DM_OK;

    if (x == NULL) {
        return DM_OK;
    }
    if (x->csv != NULL && fclose(x->csv) != 0) {
        rc = dm_err_set(err, DM_EINVAL, "%s: write error", x->csv_path);
    }
    if (x->jsonl != NULL && fclose(x->jsonl) != 0 && rc == DM_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s: write error", x->jsonl_path);
    }
    free(x->csv_path);
    free(x->jsonl_path);
    free(x);
    return rc;
}

const char *export_csv_path(const struct export *x)
{
    return x->csv_path;
}

const char *export_jsonl_path(const struct export *x)
{
    return x->jsonl_path;
}

/* ---- retry set ---- */

struct retry_set {
    size_t n, cap;
    char **keys; /* sorted after load */
};

static int strp_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int retry_add(struct retry_set *r, const char *k, size_t len)
{
    if (r->n == r->cap) {
        size_t n = r->cap ? r->cap * 2 : 64;
        char **p = realloc(r->keys, n * sizeof(*p));
        if (p == NULL) {
            return DM_ENOMEM;
        }
        r->keys = p;
        r->cap = n;
    }
    r->keys[r->n] = strndup(k, len);
    if (r->keys[r->n] == NULL) {
        return DM_ENOMEM;
    }
    r->n++;
    return DM_OK;
}

/* Splits one CSV record (no embedded newlines) into up to nf fields, unquoting. */
static size_t csv_split(char *line, char **f, size_t nf)
{
    size_t n = 0;
    char *p = line, *w;

    while (n < nf) {
        f[n++] = w = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0') {
                    break;
                }
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
        } else {
            while (*p && *p != ',') {
                *w++ = *p++;
            }
        }
        if (*p != ',') {
            *w = '\0';
            break;
        }
        p++;
        *w = '\0';
    }
    return n;
}

int retry_load(struct retry_set **out, const char *path, struct dm_err *err)
{
    struct retry_set *r = calloc(1, sizeof(*r));
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = DM_OK, is_csv = -1;

    if (r == NULL || f == NULL) {
        rc = f == NULL ? dm_err_set(err, DM_EINVAL, "%s: cannot open: %s", path, strerror(errno))
                       : dm_err_set(err, DM_ENOMEM, "out of memory");
        goto done;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        if (is_csv < 0) {
            is_csv = line[0] != '{';
            if (is_csv) {
                if (strncmp(line, "key,dn,kind,status", 18) != 0) {
                    rc = dm_err_set(err, DM_EINVAL,
                                    "%s:1: not a dirmig validation export (CSV header "
                                    "\"key,dn,kind,status,...\" or JSON Lines expected)",
                                    path);
                    goto done;
                }
                continue;
            }
        }
        if (is_csv) {
            char *fl[6] = {0};
            if (csv_split(line, fl, 6) < 4) {
                rc = dm_err_set(err, DM_EINVAL, "%s:%ld: expected at least 4 CSV fields", path,
                                lineno);
                goto done;
            }
            if (strcmp(fl[3], "ok") != 0 && fl[0][0] != '\0') {
                rc = retry_add(r, fl[0], strlen(fl[0]));
            }
        } else {
            json_error_t je;
            json_t *o = json_loadb(line, (size_t)len, 0, &je), *k, *s;
            if (o == NULL || !json_is_object(o) || !json_is_string(k = json_object_get(o, "key")) ||
                !json_is_string(s = json_object_get(o, "status"))) {
                json_decref(o);
                rc =
                    dm_err_set(err, DM_EINVAL, "%s:%ld: not a validation export row", path, lineno);
                goto done;
            }
            if (strcmp(json_string_value(s), "ok") != 0 && json_string_length(k) > 0) {
                rc = retry_add(r, json_string_value(k), json_string_length(k));
            }
            json_decref(o);
        }
        if (rc != DM_OK) {
            rc = dm_err_set(err, DM_ENOMEM, "out of memory");
            goto done;
        }
    }
    qsort(r->keys, r->n, sizeof(*r->keys), strp_cmp);
    *out = r;
    r = NULL;
done:
    free(line);
    if (f != NULL) {
        fclose(f);
    }
    retry_free(r);
    return rc;
}

int retry_has(const struct retry_set *r, const char *key)
{
    return bsearch(&key, r->keys, r->n, sizeof(*r->keys), strp_cmp) != NULL;
}

size_t retry_count(const struct retry_set *r)
{
    return r->n;
}

void retry_free(struct retry_set *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        free(r->keys[i]);
    }
    free(r->keys);
    free(r);
}

/* ---- uniqueness index: open addressing on 128-bit digests ---- */

struct uslot {
    uint64_t a, b; /* a == 0 && b == 0: empty */
    unsigned count;
};

struct uniq {
    size_t n, cap; /* cap is a power of two */
    struct uslot *slots;
};

int uniq_new(struct uniq **out, struct dm_err *err)
{
    struct uniq *u = calloc(1, sizeof(*u));

    if (u == NULL || (u->slots = calloc(1024, sizeof(*u->slots))) == NULL) {
        free(u);
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    u->cap = 1024;
    *out = u;
    return DM_OK;
}

static void digest(uint64_t *a, uint64_t *b, const char *attr, const void *v, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE], sep = 0;
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    char lower[256];
    size_t al = strlen(attr);
    const unsigned char *p = v;

    if (al >= sizeof(lower)) {
        al = sizeof(lower) - 1;
    }
    for (size_t i = 0; i < al; i++) {
        lower[i] = (char)((attr[i] >= 'A' && attr[i] <= 'Z') ? attr[i] + 32 : attr[i]);
    }
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, lower, al);
    EVP_DigestUpdate(c, &sep, 1);
    /* Case-insensitive (ASCII) comparison of values: lowercase while hashing. */
    for (size_t i = 0; i < len; i += sizeof(lower)) {
        size_t k = len - i < sizeof(lower) ? len - i : sizeof(lower);
        for (size_t j = 0; j < k; j++) {
            unsigned char ch = p[i + j];
            lower[j] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
        }
        EVP_DigestUpdate(c, lower, k);
    }
    EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    memcpy(a, md, 8);
    memcpy(b, md + 8, 8);
    if (*a == 0 && *b == 0) {
        *b = 1;
    }
}

static struct uslot *find(const struct uniq *u, uint64_t a, uint64_t b)
{
    size_t i = (size_t)(a ^ (b >> 7)) & (u->cap - 1);

    while (u->slots[i].a != 0 || u->slots[i].b != 0) {
        if (u->slots[i].a == a && u->slots[i].b == b) {
            return &u->slots[i];
        }
        i = (i + 1) & (u->cap - 1);
    }
    return &u->slots[i];
}

int uniq_add(struct uniq *u, const char *attr, const void *v, size_t len)
{
    uint64_t a, b;
    struct uslot *s;

    if ((u->n + 1) * 4 > u->cap * 3) {
        struct uniq bigger = {0, u->cap * 2, calloc(u->cap * 2, sizeof(struct uslot))};
        if (bigger.slots == NULL) {
            return DM_ENOMEM;
        }
        for (size_t i = 0; i < u->cap; i++) {
            if (u->slots[i].a != 0 || u->slots[i].b != 0) {
                *find(&bigger, u->slots[i].a, u->slots[i].b) = u->slots[i];
            }
        }
        free(u->slots);
        u->slots = bigger.slots;
        u->cap = bigger.cap;
    }
    digest(&a, &b, attr, v, len);
    s = find(u, a, b);
    if (s->a == 0 && s->b == 0) {
        s->a = a;
        s->b = b;
        u->n++;
    }
    s->count++;
    return DM_OK;
}

unsigned uniq_count(const struct uniq *u, const char *attr, const void *v, size_t len)
{
    uint64_t a, b;

    digest(&a, &b, attr, v, len);
    return find(u, a, b)->count;
}

void uniq_free(struct uniq *u)
{
    if (u != NULL) {
        free(u->slots);
        free(u);
    }
}
