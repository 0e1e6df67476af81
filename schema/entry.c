#include <config.h>
#include "schema/entry.h"
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
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

/* ---- interned attribute names ----
 *
 * A source has a few dozen attribute names and sends them with every entry: each name is
 * kept once for the process, with its hash and its sensitivity, and every dm_attr points
 * at it. The table is filled under a mutex and read without one: a slot goes from NULL to
 * a finished record once (release store, acquire load) and never changes again. It is
 * bounded (INTERN_MAX names of at most INTERN_MAX_LEN bytes: AD's "member;range=..." names
 * are many); a name that does not fit is copied into the entry's arena instead. The records
 * live until the process exits, reachable from intern_chunks. */
#define INTERN_SLOTS 4096 /* a power of two, twice INTERN_MAX */
#define INTERN_MAX 2048
#define INTERN_MAX_LEN 96
#define INTERN_CHUNK 16384

struct iname {
    uint32_t hash;
    unsigned char secret;
    size_t len;
    char name[]; /* len bytes + NUL */
};

struct intern_chunk {
    struct intern_chunk *next;
    size_t used;
    unsigned char data[INTERN_CHUNK];
};

static struct iname *_Atomic intern_tab[INTERN_SLOTS];
static pthread_mutex_t intern_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t intern_n;
static struct intern_chunk *intern_chunks;

uint32_t entry_name_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c - 'A' + 'a');
        }
        h = (h ^ c) * 16777619u;
    }
    return h;
}

/* The record of name in the table (probing from h), or NULL. */
static struct iname *intern_find(const char *name, size_t len, uint32_t h)
{
    for (size_t i = h & (INTERN_SLOTS - 1);; i = (i + 1) & (INTERN_SLOTS - 1)) {
        struct iname *r = atomic_load_explicit(&intern_tab[i], memory_order_acquire);

        if (r == NULL) {
            return NULL;
        }
        if (r->hash == h && r->len == len && memcmp(r->name, name, len) == 0) {
            return r;
        }
    }
}

/* The interned record of name, added when there is room; NULL when there is none. */
static struct iname *intern(const char *name, size_t len, uint32_t h)
{
    struct iname *r;
    size_t need = (sizeof(struct iname) + len + 1 + 7) & ~(size_t)7, i;

    if (len > INTERN_MAX_LEN) {
        return NULL;
    }
    r = intern_find(name, len, h);
    if (r != NULL) {
        return r;
    }
    pthread_mutex_lock(&intern_mu);
    r = intern_find(name, len, h); /* another thread may have added it */
    if (r != NULL || intern_n >= INTERN_MAX) {
        goto done;
    }
    if (intern_chunks == NULL || INTERN_CHUNK - intern_chunks->used < need) {
        struct intern_chunk *c = malloc(sizeof(*c));

        if (c == NULL) {
            goto done;
        }
        c->next = intern_chunks;
        c->used = 0;
        intern_chunks = c;
    }
    r = (struct iname *)(void *)(intern_chunks->data + intern_chunks->used);
    intern_chunks->used += need;
    r->hash = h;
    r->len = len;
    memcpy(r->name, name, len);
    r->name[len] = '\0';
    r->secret = (unsigned char)entry_is_sensitive_attr(r->name);
    for (i = h & (INTERN_SLOTS - 1); atomic_load_explicit(&intern_tab[i], memory_order_relaxed);
         i = (i + 1) & (INTERN_SLOTS - 1)) {
    }
    atomic_store_explicit(&intern_tab[i], r, memory_order_release);
    intern_n++;
done:
    pthread_mutex_unlock(&intern_mu);
    return r;
}

/* ---- the entry and its arena ---- */

/* The malloc() of entry_new(): the struct entry, then the first region of its arena. Most
 * source and mapped entries (20-30 attributes) fit. */
#define ENTRY_BLOCK 4096

static struct entry *entry_alloc(size_t block)
{
    struct entry *e;

    if (block < sizeof(*e) + 256) {
        block = sizeof(*e) + 256;
    }
    e = malloc(block);
    if (e == NULL) {
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    arena_init(&e->arena, (unsigned char *)e + sizeof(*e), block - sizeof(*e));
    return e;
}

struct entry *entry_new(const char *dn)
{
    struct entry *e = entry_alloc(ENTRY_BLOCK);

    if (e == NULL) {
        return NULL;
    }
    if (dn != NULL && entry_set_dn(e, dn) != DM_OK) {
        entry_free(e);
        return NULL;
    }
    return e;
}

/* Wipes the values of a sensitive attribute: memory an arena lets go of is reused by the
 * next allocation and may end up in a core dump. */
static void attr_wipe(struct dm_attr *a)
{
    if (!a->secret) {
        return;
    }
    for (size_t i = 0; i < a->nvals; i++) {
        if (a->vals[i].data != NULL) {
            explicit_bzero(a->vals[i].data, a->vals[i].len + 1);
        }
    }
}

static void entry_wipe(struct entry *e)
{
    for (size_t i = 0; i < e->nattrs; i++) {
        attr_wipe(&e->attrs[i]);
    }
}

void entry_free(struct entry *e)
{
    if (e == NULL) {
        return;
    }
    entry_wipe(e);
    arena_clear(&e->arena);
    free(e);
}

void entry_reset(struct entry *e)
{
    entry_wipe(e);
    arena_reset(&e->arena);
    e->dn = NULL;
    e->key = NULL;
    e->nattrs = 0;
    e->cap = 0;
    e->attrs = NULL;
}

/* A copy of s (len bytes) in e's arena into *slot; NULL s clears it. */
static int set_str(struct entry *e, char **slot, const char *s, size_t len)
{
    char *p = NULL;

    if (s != NULL) {
        p = arena_memdup(&e->arena, s, len);
        if (p == NULL) {
            return DM_ENOMEM;
        }
    }
    *slot = p;
    return DM_OK;
}

int entry_set_dn(struct entry *e, const char *dn)
{
    return set_str(e, &e->dn, dn, dn != NULL ? strlen(dn) : 0);
}

int entry_set_dn_n(struct entry *e, const char *dn, size_t len)
{
    return set_str(e, &e->dn, dn, len);
}

int entry_set_key(struct entry *e, const char *key)
{
    return set_str(e, &e->key, key, key != NULL ? strlen(key) : 0);
}

/* find() is below */
static struct dm_attr *find(const struct entry *e, const char *name, size_t len, uint32_t h);

struct dm_attr *entry_attr(const struct entry *e, const char *name)
{
    size_t len = strlen(name);

    return find(e, name, len, entry_name_hash(name, len));
}

/* Appends attribute name (len bytes, hash h) without looking for it; r is its interned
 * record, or NULL to look it up (and intern it when there is room). */
static struct dm_attr *attr_append(struct entry *e, const char *name, size_t len, uint32_t h,
                                   const struct iname *r)
{
    struct dm_attr *a;

    if (e->nattrs == e->cap) {
        size_t n = e->cap ? e->cap * 2 : 16;
        struct dm_attr *p = arena_grow(&e->arena, e->attrs, e->cap * sizeof(*p), n * sizeof(*p));

        if (p == NULL) {
            return NULL;
        }
        e->attrs = p;
        e->cap = n;
    }
    a = &e->attrs[e->nattrs];
    memset(a, 0, sizeof(*a));
    if (r == NULL) {
        r = intern(name, len, h);
    }
    if (r != NULL) {
        a->name = (char *)r->name;
        a->secret = r->secret;
        a->interned = 1;
    } else {
        a->name = arena_memdup(&e->arena, name, len);
        if (a->name == NULL) {
            return NULL;
        }
        a->secret = (unsigned char)entry_is_sensitive_attr(a->name);
    }
    a->hash = h;
    a->arena = &e->arena;
    e->nattrs++;
    return a;
}

/* The attribute named name (len bytes, hash h) in e, or NULL. */
static struct dm_attr *find(const struct entry *e, const char *name, size_t len, uint32_t h)
{
    for (size_t i = 0; i < e->nattrs; i++) {
        struct dm_attr *a = &e->attrs[i];

        if (a->hash == h &&
            (a->name == name || (strncasecmp(a->name, name, len) == 0 && a->name[len] == '\0'))) {
            return a;
        }
    }
    return NULL;
}

struct dm_attr *entry_attr_append(struct entry *e, const char *name)
{
    size_t len = strlen(name);

    return attr_append(e, name, len, entry_name_hash(name, len), NULL);
}

struct dm_attr *entry_attr_add(struct entry *e, const char *name)
{
    size_t len = strlen(name);
    uint32_t h = entry_name_hash(name, len);
    struct dm_attr *a = find(e, name, len, h);

    return a != NULL ? a : attr_append(e, name, len, h, NULL);
}

void entry_name_init(struct entry_name *out, const char *name)
{
    size_t len = strlen(name);
    uint32_t h = entry_name_hash(name, len);
    const struct iname *r = intern(name, len, h);

    out->name = r != NULL ? r->name : name;
    out->len = len;
    out->hash = h;
    out->secret = (unsigned char)entry_is_sensitive_attr(name);
    out->interned = r != NULL;
}

void entry_attr_name(struct entry_name *out, const struct dm_attr *a)
{
    out->name = a->name;
    out->len = strlen(a->name);
    out->hash = a->hash;
    out->secret = a->secret;
    out->interned = a->interned;
}

/* The interned record behind n, or NULL. */
static const struct iname *name_rec(const struct entry_name *n)
{
    return n->interned
               ? (const struct iname *)(const void *)(n->name - offsetof(struct iname, name))
               : NULL;
}

struct dm_attr *entry_attr_append_name(struct entry *e, const struct entry_name *n)
{
    return attr_append(e, n->name, n->len, n->hash, name_rec(n));
}

struct dm_attr *entry_attr_add_name(struct entry *e, const struct entry_name *n)
{
    struct dm_attr *a = find(e, n->name, n->len, n->hash);

    return a != NULL ? a : attr_append(e, n->name, n->len, n->hash, name_rec(n));
}

int attr_add_value(struct dm_attr *a, const void *data, size_t len)
{
    unsigned char *p;

    if (a->nvals == a->cap) {
        /* most attributes have one value: 1, then 4, 8, ... */
        size_t n = a->cap ? (a->cap < 4 ? 4 : a->cap * 2) : 1;
        struct dm_val *v = a->vals == NULL
                               ? arena_alloc(a->arena, n * sizeof(*v))
                               : arena_grow(a->arena, a->vals, a->cap * sizeof(*v), n * sizeof(*v));

        if (v == NULL) {
            return DM_ENOMEM;
        }
        a->vals = v;
        a->cap = n;
    }
    p = (unsigned char *)arena_memdup(a->arena, data, len);
    if (p == NULL) {
        return DM_ENOMEM;
    }
    a->vals[a->nvals].data = p;
    a->vals[a->nvals].len = len;
    a->nvals++;
    return DM_OK;
}

int attr_set_value(struct dm_attr *a, size_t i, const void *data, size_t len)
{
    unsigned char *p = (unsigned char *)arena_memdup(a->arena, data, len);

    if (p == NULL) {
        return DM_ENOMEM;
    }
    if (a->secret) {
        explicit_bzero(a->vals[i].data, a->vals[i].len + 1);
    }
    a->vals[i].data = p;
    a->vals[i].len = len;
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
    struct dm_attr *a = entry_attr(e, name);

    if (a != NULL) {
        size_t i = (size_t)(a - e->attrs);

        attr_wipe(a);
        memmove(&e->attrs[i], &e->attrs[i + 1], (e->nattrs - i - 1) * sizeof(e->attrs[0]));
        e->nattrs--;
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

/* A value attr_dedup() drops: it stays in the arena until the reset, wiped if secret. */
static void val_drop(const struct dm_attr *a, struct dm_val *v)
{
    if (a->secret) {
        explicit_bzero(v->data, v->len + 1);
    }
}

void attr_dedup(struct dm_attr *a)
{
    size_t out = 0;

    /* Quadratic for small attributes keeps order; sort-based for big ones. */
    if (a->nvals <= 32) {
        for (size_t i = 0; i < a->nvals; i++) {
            int dup = 0;
            for (size_t j = 0; j < out && !dup; j++) {
                dup = val_cmp(&a->vals[j], &a->vals[i]) == 0;
            }
            if (dup) {
                val_drop(a, &a->vals[i]);
            } else {
                a->vals[out++] = a->vals[i];
            }
        }
    } else {
        qsort(a->vals, a->nvals, sizeof(a->vals[0]), val_cmp_q);
        for (size_t i = 0; i < a->nvals; i++) {
            if (out > 0 && val_cmp(&a->vals[out - 1], &a->vals[i]) == 0) {
                val_drop(a, &a->vals[i]);
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

/* Arena bytes a copy of e takes, pieces rounded as arena_alloc() rounds them. */
static size_t clone_size(const struct entry *e)
{
#define R(n) (((n) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))
    size_t n = sizeof(*e) + ARENA_ALIGN + R(e->nattrs * sizeof(*e->attrs));

    n += e->dn != NULL ? R(strlen(e->dn) + 1) : 0;
    n += e->key != NULL ? R(strlen(e->key) + 1) : 0;
    for (size_t i = 0; i < e->nattrs; i++) {
        const struct dm_attr *a = &e->attrs[i];

        n += R(strlen(a->name) + 1) + R(a->nvals * sizeof(*a->vals));
        for (size_t j = 0; j < a->nvals; j++) {
            n += R(a->vals[j].len + 1);
        }
    }
    return n;
#undef R
}

struct entry *entry_clone(const struct entry *e)
{
    /* one malloc() of the size the copy needs: a cloned entry is usually kept as it is */
    struct entry *c = entry_alloc(clone_size(e));

    if (c == NULL) {
        return NULL;
    }
    if (entry_set_dn(c, e->dn) != DM_OK || entry_set_key(c, e->key) != DM_OK) {
        goto fail;
    }
    if (e->nattrs > 0) {
        c->attrs = arena_alloc(&c->arena, e->nattrs * sizeof(*c->attrs));
        if (c->attrs == NULL) {
            goto fail;
        }
        c->cap = e->nattrs;
    }
    for (size_t i = 0; i < e->nattrs; i++) {
        const struct dm_attr *sa = &e->attrs[i];
        struct dm_attr *a = &c->attrs[i];

        *a = *sa;
        a->arena = &c->arena;
        a->nvals = 0;
        a->cap = 0;
        a->vals = NULL;
        c->nattrs++;
        /* an interned name is shared; any other is copied */
        if (!sa->interned) {
            a->name = arena_memdup(&c->arena, sa->name, strlen(sa->name));
            if (a->name == NULL) {
                goto fail;
            }
        }
        if (sa->nvals > 0) {
            a->vals = arena_alloc(&c->arena, sa->nvals * sizeof(*a->vals));
            if (a->vals == NULL) {
                goto fail;
            }
            a->cap = sa->nvals;
        }
        for (size_t j = 0; j < sa->nvals; j++) {
            if (attr_add_value(a, sa->vals[j].data, sa->vals[j].len) != DM_OK) {
                goto fail;
            }
        }
    }
    return c;
fail:
    entry_free(c);
    return NULL;
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

/* ---- undo images ---- */

static int in_names(const char *const *names, const char *name)
{
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
        if (strcasecmp(names[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int has_value(const struct dm_attr *a, const struct dm_val *v)
{
    for (size_t i = 0; a != NULL && i < a->nvals; i++) {
        if (a->vals[i].len == v->len && memcmp(a->vals[i].data, v->data, v->len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Adds the images of attribute name (once). */
static int image_attr(struct entry *b, struct entry *a, const struct entry *old,
                      const struct entry *want, const char *const *merge, const char *name,
                      int touched)
{
    const struct dm_attr *o = entry_attr(old, name), *w = entry_attr(want, name);
    struct dm_attr *ba, *aa;
    int rc = DM_OK;

    if (entry_attr(b, name) != NULL) {
        return DM_OK;
    }
    ba = entry_attr_add(b, o != NULL ? o->name : name);
    aa = entry_attr_add(a, w != NULL ? w->name : o != NULL ? o->name : name);
    if (ba == NULL || aa == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; o != NULL && i < o->nvals && rc == DM_OK; i++) {
        rc = attr_add_value(ba, o->vals[i].data, o->vals[i].len);
    }
    if (!touched || (in_names(merge, name) && w != NULL && w->nvals > 0)) {
        /* not written by the diff (extra), or merged: the target's values stay */
        for (size_t i = 0; o != NULL && i < o->nvals && rc == DM_OK; i++) {
            rc = attr_add_value(aa, o->vals[i].data, o->vals[i].len);
        }
        if (!touched) {
            return rc;
        }
        for (size_t i = 0; i < w->nvals && rc == DM_OK; i++) {
            if (!has_value(o, &w->vals[i])) {
                rc = attr_add_value(aa, w->vals[i].data, w->vals[i].len);
            }
        }
        return rc;
    }
    for (size_t i = 0; w != NULL && i < w->nvals && rc == DM_OK; i++) {
        rc = attr_add_value(aa, w->vals[i].data, w->vals[i].len);
    }
    return rc;
}

int entry_diff_images(struct entry **before, struct entry **after, const struct entry *old,
                      const struct entry *want, const char *const *merge,
                      const struct entry_diff *d, const char *const *extra)
{
    struct entry *b = entry_new(old->dn), *a = entry_new(want->dn);
    int rc = b != NULL && a != NULL ? DM_OK : DM_ENOMEM;

    for (size_t i = 0; d != NULL && i < d->nmods && rc == DM_OK; i++) {
        rc = image_attr(b, a, old, want, merge, d->mods[i].name, 1);
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL && rc == DM_OK; i++) {
        rc = image_attr(b, a, old, want, merge, extra[i], 0);
    }
    if (rc != DM_OK) {
        entry_free(b);
        entry_free(a);
        return DM_ENOMEM;
    }
    *before = b;
    *after = a;
    return DM_OK;
}
