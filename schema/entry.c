#include <config.h>
#include "schema/entry.h"
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Attributes whose values are password material: masked in every dump (never printed) and
 * wiped before their memory is freed. The length is compared first: entry_free() asks
 * for every attribute of every entry. */
static const struct {
    const char *name;
    size_t len;
} sensitive_attrs[] = {
    {"userPassword", sizeof("userPassword") - 1},
    {"unicodePwd", sizeof("unicodePwd") - 1},
    {"authPassword", sizeof("authPassword") - 1},
    {"sambaNTPassword", sizeof("sambaNTPassword") - 1},
    {"sambaLMPassword", sizeof("sambaLMPassword") - 1},
    {"ntPwdHistory", sizeof("ntPwdHistory") - 1},
    {"lmPwdHistory", sizeof("lmPwdHistory") - 1},
    {"supplementalCredentials", sizeof("supplementalCredentials") - 1},
    {"dBCSPwd", sizeof("dBCSPwd") - 1},
    {"pwdHistory", sizeof("pwdHistory") - 1},
    {"krbPrincipalKey", sizeof("krbPrincipalKey") - 1},
    {"clearTextPassword", sizeof("clearTextPassword") - 1},
};

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

struct entry *entry_new(const char *dn)
{
    struct entry *e = calloc(1, sizeof(*e));

    if (e == NULL) {
        return NULL;
    }
    if (dn != NULL && (e->dn = strdup(dn)) == NULL) {
        free(e);
        return NULL;
    }
    return e;
}

/* Frees one value, wiped first when it is password material: freed memory is reused by
 * the next allocation and may end up in a core dump. */
static void val_release(struct dm_val *v, int wipe)
{
    if (wipe && v->data != NULL) {
        explicit_bzero(v->data, v->len + 1);
    }
    free(v->data);
}

static void attr_clear(struct dm_attr *a)
{
    int wipe = entry_is_sensitive_attr(a->name);

    for (size_t i = 0; i < a->nvals; i++) {
        val_release(&a->vals[i], wipe);
    }
    free(a->vals);
    free(a->name);
}

void entry_free(struct entry *e)
{
    if (e == NULL) {
        return;
    }
    for (size_t i = 0; i < e->nattrs; i++) {
        attr_clear(&e->attrs[i]);
    }
    free(e->attrs);
    free(e->dn);
    free(e->key);
    free(e);
}

int entry_set_dn(struct entry *e, const char *dn)
{
    char *p = xstrdup(dn);

    if (dn != NULL && p == NULL) {
        return DM_ENOMEM;
    }
    free(e->dn);
    e->dn = p;
    return DM_OK;
}

int entry_set_key(struct entry *e, const char *key)
{
    char *p = xstrdup(key);

    if (key != NULL && p == NULL) {
        return DM_ENOMEM;
    }
    free(e->key);
    e->key = p;
    return DM_OK;
}

struct dm_attr *entry_attr(const struct entry *e, const char *name)
{
    for (size_t i = 0; i < e->nattrs; i++) {
        if (strcasecmp(e->attrs[i].name, name) == 0) {
            return &e->attrs[i];
        }
    }
    return NULL;
}

struct dm_attr *entry_attr_append(struct entry *e, const char *name)
{
    struct dm_attr *a;

    if (e->nattrs == e->cap) {
        size_t n = e->cap ? e->cap * 2 : 16;
        struct dm_attr *p = realloc(e->attrs, n * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        e->attrs = p;
        e->cap = n;
    }
    a = &e->attrs[e->nattrs];
    memset(a, 0, sizeof(*a));
    a->name = strdup(name);
    if (a->name == NULL) {
        return NULL;
    }
    e->nattrs++;
    return a;
}

struct dm_attr *entry_attr_add(struct entry *e, const char *name)
{
    struct dm_attr *a = entry_attr(e, name);

    return a != NULL ? a : entry_attr_append(e, name);
}

int attr_add_value(struct dm_attr *a, const void *data, size_t len)
{
    unsigned char *p;

    if (a->nvals == a->cap) {
        size_t n = a->cap ? a->cap * 2 : 4;
        struct dm_val *v = realloc(a->vals, n * sizeof(*v));
        if (v == NULL) {
            return DM_ENOMEM;
        }
        a->vals = v;
        a->cap = n;
    }
    p = malloc(len + 1);
    if (p == NULL) {
        return DM_ENOMEM;
    }
    if (len > 0) {
        memcpy(p, data, len);
    }
    p[len] = '\0';
    a->vals[a->nvals].data = p;
    a->vals[a->nvals].len = len;
    a->nvals++;
    return DM_OK;
}

int entry_add_value(struct entry *e, const char *name, const void *data, size_t len)
{
    struct dm_attr *a = entry_attr_add(e, name);

    if (a == NULL) {
        return DM_ENOMEM;
    }
    return attr_add_value(a, data, len);
}

int entry_add_str(struct entry *e, const char *name, const char *s)
{
    return entry_add_value(e, name, s, strlen(s));
}

void entry_del_attr(struct entry *e, const char *name)
{
    for (size_t i = 0; i < e->nattrs; i++) {
        if (strcasecmp(e->attrs[i].name, name) == 0) {
            attr_clear(&e->attrs[i]);
            memmove(&e->attrs[i], &e->attrs[i + 1], (e->nattrs - i - 1) * sizeof(e->attrs[0]));
            e->nattrs--;
            return;
        }
    }
}

static int val_cmp(const struct dm_val *a, const struct dm_val *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->data, b->data, n) : 0;

    if (c != 0) {
        return c;
    }
    return (a->len > b->len) - (a->len < b->len);
}

static int val_cmp_q(const void *a, const void *b)
{
    return val_cmp(a, b);
}

static int valp_cmp_q(const void *a, const void *b)
{
    return val_cmp(*(const struct dm_val *const *)a, *(const struct dm_val *const *)b);
}

void attr_dedup(struct dm_attr *a)
{
    size_t out = 0;
    int wipe = entry_is_sensitive_attr(a->name);

    /* Quadratic for small attributes keeps order; sort-based for big ones. */
    if (a->nvals <= 32) {
        for (size_t i = 0; i < a->nvals; i++) {
            int dup = 0;
            for (size_t j = 0; j < out && !dup; j++) {
                dup = val_cmp(&a->vals[j], &a->vals[i]) == 0;
            }
            if (dup) {
                val_release(&a->vals[i], wipe);
            } else {
                a->vals[out++] = a->vals[i];
            }
        }
    } else {
        qsort(a->vals, a->nvals, sizeof(a->vals[0]), val_cmp_q);
        for (size_t i = 0; i < a->nvals; i++) {
            if (out > 0 && val_cmp(&a->vals[out - 1], &a->vals[i]) == 0) {
                val_release(&a->vals[i], wipe);
            } else {
                a->vals[out++] = a->vals[i];
            }
        }
    }
    a->nvals = out;
}

const char *entry_first(const struct entry *e, const char *name)
{
    struct dm_attr *a = entry_attr(e, name);

    if (a == NULL || a->nvals == 0) {
        return NULL;
    }
    return (const char *)a->vals[0].data;
}

int entry_has_class(const struct entry *e, const char *oc)
{
    struct dm_attr *a = entry_attr(e, "objectClass");

    if (a == NULL) {
        return 0;
    }
    for (size_t i = 0; i < a->nvals; i++) {
        if (strcasecmp((const char *)a->vals[i].data, oc) == 0) {
            return 1;
        }
    }
    return 0;
}

int entry_is_sensitive_attr(const char *name)
{
    size_t n = strcspn(name, ";");

    for (size_t i = 0; i < DM_ARRAY_LEN(sensitive_attrs); i++) {
        if (sensitive_attrs[i].len == n && strncasecmp(sensitive_attrs[i].name, name, n) == 0) {
            return 1;
        }
    }
    return 0;
}

struct entry *entry_clone(const struct entry *e)
{
    struct entry *c = entry_new(e->dn);

    if (c == NULL || entry_set_key(c, e->key) != DM_OK) {
        entry_free(c);
        return NULL;
    }
    for (size_t i = 0; i < e->nattrs; i++) {
        struct dm_attr *a = entry_attr_add(c, e->attrs[i].name);
        if (a == NULL) {
            entry_free(c);
            return NULL;
        }
        for (size_t j = 0; j < e->attrs[i].nvals; j++) {
            if (attr_add_value(a, e->attrs[i].vals[j].data, e->attrs[i].vals[j].len) != DM_OK) {
                entry_free(c);
                return NULL;
            }
        }
    }
    return c;
}

/* ---- digest ---- */

static int attrp_cmp_q(const void *a, const void *b)
{
    return strcasecmp((*(const struct dm_attr *const *)a)->name,
                      (*(const struct dm_attr *const *)b)->name);
}

static void digest_bytes(EVP_MD_CTX *md, const void *p, size_t n)
{
    /* Length-prefix every field so ("ab","c") and ("a","bc") differ. */
    unsigned char len[8];

    for (int i = 0; i < 8; i++) {
        len[i] = (unsigned char)(n >> (8 * i));
    }
    EVP_DigestUpdate(md, len, sizeof(len));
    EVP_DigestUpdate(md, p, n);
}

void entry_digest(const struct entry *e, char hex[65])
{
    static const char xd[] = "0123456789abcdef";
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const struct dm_attr **as = NULL;
    const struct dm_val **vs = NULL;
    size_t vcap = 0;

    hex[0] = '\0';
    if (md == NULL) {
        return;
    }
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    digest_bytes(md, e->dn ? e->dn : "", e->dn ? strlen(e->dn) : 0);
    as = malloc((e->nattrs ? e->nattrs : 1) * sizeof(*as));
    if (as == NULL) {
        goto done;
    }
    for (size_t i = 0; i < e->nattrs; i++) {
        as[i] = &e->attrs[i];
    }
    qsort(as, e->nattrs, sizeof(*as), attrp_cmp_q);
    for (size_t i = 0; i < e->nattrs; i++) {
        const struct dm_attr *a = as[i];
        char lname[256];
        size_t n = strlen(a->name);
        if (a->nvals == 0) {
            continue;
        }
        if (n >= sizeof(lname)) {
            n = sizeof(lname) - 1;
        }
        for (size_t k = 0; k < n; k++) {
            char c = a->name[k];
            lname[k] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
        digest_bytes(md, lname, n);
        if (a->nvals > vcap) {
            const struct dm_val **p = realloc(vs, a->nvals * sizeof(*vs));
            if (p == NULL) {
                goto done;
            }
            vs = p;
            vcap = a->nvals;
        }
        for (size_t j = 0; j < a->nvals; j++) {
            vs[j] = &a->vals[j];
        }
        qsort(vs, a->nvals, sizeof(*vs), valp_cmp_q);
        digest_bytes(md, "#", 1);
        for (size_t j = 0; j < a->nvals; j++) {
            digest_bytes(md, vs[j]->data, vs[j]->len);
        }
    }
    EVP_DigestFinal_ex(md, out, &outlen);
    for (unsigned int i = 0; i < outlen && i < 32; i++) {
        hex[2 * i] = xd[out[i] >> 4];
        hex[2 * i + 1] = xd[out[i] & 15];
    }
    hex[64] = '\0';
done:
    free(as);
    free(vs);
    EVP_MD_CTX_free(md);
}

/* ---- dump ---- */

static int is_printable(const struct dm_val *v)
{
    if (v->len == 0) {
        return 1;
    }
    if (v->data[0] == ' ' || v->data[0] == ':' || v->data[0] == '<' || v->data[v->len - 1] == ' ') {
        return 0;
    }
    for (size_t i = 0; i < v->len; i++) {
        if (v->data[i] < 0x20 || v->data[i] >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

int entry_dump(const struct entry *e, struct buf *b)
{
    int rc = buf_printf(b, "dn: %s\n", e->dn ? e->dn : "");

    for (size_t i = 0; rc == DM_OK && i < e->nattrs; i++) {
        const struct dm_attr *a = &e->attrs[i];
        for (size_t j = 0; rc == DM_OK && j < a->nvals; j++) {
            if (entry_is_sensitive_attr(a->name)) {
                rc = buf_printf(b, "%s: ***\n", a->name);
            } else if (is_printable(&a->vals[j])) {
                rc = buf_printf(b, "%s: %s\n", a->name, (const char *)a->vals[j].data);
            } else {
                size_t n = 4 * ((a->vals[j].len + 2) / 3) + 1;
                unsigned char *enc = malloc(n);
                if (enc == NULL) {
                    return DM_ENOMEM;
                }
                EVP_EncodeBlock(enc, a->vals[j].data, (int)a->vals[j].len);
                rc = buf_printf(b, "%s:: %s\n", a->name, (const char *)enc);
                free(enc);
            }
        }
    }
    return rc;
}

/* ---- diff ---- */

static int in_list(const char *const *list, const char *name)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcasecmp(list[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int push_mod(struct entry_diff *d, size_t *cap, enum entry_mod_op op, const char *name,
                    const struct dm_val **vals, size_t n)
{
    struct entry_mod *m;

    if (d->nmods == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct entry_mod *p = realloc(d->mods, nc * sizeof(*p));
        if (p == NULL) {
            return DM_ENOMEM;
        }
        d->mods = p;
        *cap = nc;
    }
    m = &d->mods[d->nmods];
    m->op = op;
    m->name = name;
    m->nvals = n;
    m->vals = NULL;
    if (n > 0) {
        m->vals = malloc(n * sizeof(*m->vals));
        if (m->vals == NULL) {
            return DM_ENOMEM;
        }
        memcpy(m->vals, vals, n * sizeof(*vals));
    }
    d->nmods++;
    return DM_OK;
}

/* Sorted pointer array of an attribute's values. */
static const struct dm_val **sorted_vals(const struct dm_attr *a)
{
    const struct dm_val **v = malloc((a->nvals ? a->nvals : 1) * sizeof(*v));

    if (v == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < a->nvals; i++) {
        v[i] = &a->vals[i];
    }
    qsort(v, a->nvals, sizeof(*v), valp_cmp_q);
    return v;
}

/* Emits chunked mods of `op` for the n values in v. */
static int push_chunked(struct entry_diff *d, size_t *cap, enum entry_mod_op op, const char *name,
                        const struct dm_val **v, size_t n, size_t chunk)
{
    int rc = DM_OK;

    for (size_t off = 0; off < n && rc == DM_OK; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        rc = push_mod(d, cap, op, name, v + off, k);
    }
    return rc;
}

static int diff_attr(struct entry_diff *d, size_t *cap, const struct dm_attr *o,
                     const struct dm_attr *n, size_t chunk)
{
    const struct dm_val **ov = sorted_vals(o), **nv = sorted_vals(n);
    const struct dm_val **add = NULL, **del = NULL;
    size_t nadd = 0, ndel = 0, i = 0, j = 0;
    int rc = DM_ENOMEM;

    if (ov == NULL || nv == NULL) {
        goto done;
    }
    add = malloc((n->nvals ? n->nvals : 1) * sizeof(*add));
    del = malloc((o->nvals ? o->nvals : 1) * sizeof(*del));
    if (add == NULL || del == NULL) {
        goto done;
    }
    while (i < o->nvals || j < n->nvals) {
        int c;
        if (i == o->nvals) {
            c = 1;
        } else if (j == n->nvals) {
            c = -1;
        } else {
            c = val_cmp(ov[i], nv[j]);
        }
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            del[ndel++] = ov[i++];
        } else {
            add[nadd++] = nv[j++];
        }
    }
    rc = DM_OK;
    if (nadd == 0 && ndel == 0) {
        goto done;
    }
    if (o->nvals < chunk && n->nvals < chunk) {
        /* Small attribute: replace whole, in the source's value order. */
        const struct dm_val **all = malloc(n->nvals * sizeof(*all));
        if (all == NULL) {
            rc = DM_ENOMEM;
            goto done;
        }
        for (size_t k = 0; k < n->nvals; k++) {
            all[k] = &n->vals[k];
        }
        rc = push_mod(d, cap, ENTRY_MOD_REPLACE, n->name, all, n->nvals);
        free(all);
        goto done;
    }
    /* Big attribute: by value, deletes first so a cap on values is never exceeded. */
    rc = push_chunked(d, cap, ENTRY_MOD_DELETE, n->name, del, ndel, chunk);
    if (rc == DM_OK) {
        rc = push_chunked(d, cap, ENTRY_MOD_ADD, n->name, add, nadd, chunk);
    }
done:
    free(ov);
    free(nv);
    free(add);
    free(del);
    return rc;
}

/* The values of n that old lacks, as a sorted pointer array of *k entries (NULL on ENOMEM). */
static const struct dm_val **missing_vals(const struct dm_attr *o, const struct dm_attr *n,
                                          size_t *k)
{
    const struct dm_val **ov = o != NULL ? sorted_vals(o) : NULL, **nv = sorted_vals(n);
    const struct dm_val **add = malloc((n->nvals ? n->nvals : 1) * sizeof(*add));
    size_t i = 0, j = 0, no = o != NULL ? o->nvals : 0;

    *k = 0;
    if ((o != NULL && ov == NULL) || nv == NULL || add == NULL) {
        free(ov);
        free(nv);
        free(add);
        return NULL;
    }
    while (j < n->nvals) {
        int c = i == no ? 1 : val_cmp(ov[i], nv[j]);
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            add[(*k)++] = nv[j++];
        }
    }
    free(ov);
    free(nv);
    return add;
}

int entry_diff(struct entry_diff *out, const struct entry *old, const struct entry *want,
               const char *const *merge, size_t chunk, struct dm_err *err)
{
    struct entry_diff d = {0, NULL};
    size_t cap = 0;
    int rc = DM_OK;

    if (chunk == 0) {
        chunk = 1000;
    }
    for (size_t i = 0; rc == DM_OK && i < want->nattrs; i++) {
        const struct dm_attr *n = &want->attrs[i], *o = entry_attr(old, n->name);
        int has_old = o != NULL && o->nvals > 0;

        if (n->nvals == 0) {
            /* named but without values: the attribute must not exist */
            if (has_old) {
                rc = push_mod(&d, &cap, ENTRY_MOD_DELETE, o->name, NULL, 0);
            }
        } else if (in_list(merge, n->name) || !has_old) {
            /* merge (or nothing there yet): add what is missing, keep the rest */
            size_t k;
            const struct dm_val **v = missing_vals(has_old ? o : NULL, n, &k);
            if (v == NULL) {
                rc = DM_ENOMEM;
                break;
            }
            rc = push_chunked(&d, &cap, ENTRY_MOD_ADD, n->name, v, k, chunk);
            free(v);
        } else {
            rc = diff_attr(&d, &cap, o, n, chunk);
        }
    }
    if (rc != DM_OK) {
        entry_diff_free(&d);
        return dm_err_set(err, rc, "entry_diff: out of memory");
    }
    *out = d;
    return DM_OK;
}

void entry_diff_free(struct entry_diff *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->nmods; i++) {
        free((void *)d->mods[i].vals);
    }
    free(d->mods);
    d->mods = NULL;
    d->nmods = 0;
}
