#include <config.h>
#include "agent/util/suggest.h"
#include "schema/transform.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "schema/transform_ad.h"

/*
 * Transform steps of the map language (see transform.h). Each step is a plain struct after
 * transform_compile(): regexes are compiled once (transform_regex.c), lookup tables sorted
 * for bsearch(), date formats reduced to enums, so transform_run() is pure C per value.
 * The conversions the steps call live in their own modules: dates and integers in
 * transform_date.c, objectGUID and objectSid in transform_ad.c.
 */

static const char *const op_names[] = {
    [TRANSFORM_TRIM] = "trim",         [TRANSFORM_LOWER] = "lower",
    [TRANSFORM_UPPER] = "upper",       [TRANSFORM_FIRST] = "first",
    [TRANSFORM_ALL] = "all",           [TRANSFORM_EMAIL] = "email",
    [TRANSFORM_GUID] = "guid",         [TRANSFORM_SID] = "sid",
    [TRANSFORM_FILETIME] = "filetime", [TRANSFORM_GENERALIZED] = "generalized",
    [TRANSFORM_REGEX] = "regex",       [TRANSFORM_SPLIT] = "split",
    [TRANSFORM_JOIN] = "join",         [TRANSFORM_LOOKUP] = "lookup",
    [TRANSFORM_DEFAULT] = "default",   [TRANSFORM_DATE] = "date",
    [TRANSFORM_FLAG] = "flag",
};

/* Names accepted as plain strings (argument-less steps). */
static const enum transform_op simple_ops[] = {
    TRANSFORM_TRIM,  TRANSFORM_LOWER, TRANSFORM_UPPER, TRANSFORM_FIRST,    TRANSFORM_ALL,
    TRANSFORM_EMAIL, TRANSFORM_GUID,  TRANSFORM_SID,   TRANSFORM_FILETIME, TRANSFORM_GENERALIZED,
};

static const char *const date_names[] = {
    [TRANSFORM_DATE_GENERALIZED] = "generalized",
    [TRANSFORM_DATE_ISO8601] = "iso8601",
    [TRANSFORM_DATE_FILETIME] = "filetime",
    [TRANSFORM_DATE_UNIX] = "unix",
    [TRANSFORM_DATE_DAY] = "date",
};

static const char *const type_names[] = {
    [TRANSFORM_T_ANY] = "any",         [TRANSFORM_T_STRING] = "string",
    [TRANSFORM_T_INTEGER] = "integer", [TRANSFORM_T_BOOLEAN] = "boolean",
    [TRANSFORM_T_DATE] = "date",       [TRANSFORM_T_EMAIL] = "email",
    [TRANSFORM_T_DN] = "dn",
};

#define DM_NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *transform_name(const struct transform_step *s)
{
    return op_names[s->op];
}

const char *transform_type_name(enum transform_type t)
{
    return (unsigned)t < DM_NELEM(type_names) ? type_names[t] : "?";
}

enum transform_type transform_output_type(const struct transform_step *s)
{
    switch (s->op) {
    case TRANSFORM_GUID:
    case TRANSFORM_SID:
        return TRANSFORM_T_STRING;
    case TRANSFORM_FILETIME:
    case TRANSFORM_GENERALIZED:
        return TRANSFORM_T_DATE;
    case TRANSFORM_EMAIL:
        return TRANSFORM_T_EMAIL;
    case TRANSFORM_DATE:
        return s->date_to == TRANSFORM_DATE_UNIX ? TRANSFORM_T_INTEGER : TRANSFORM_T_DATE;
    case TRANSFORM_FLAG: {
        int64_t x;
        int b1 = strcmp(s->set_val, "true") == 0 || strcmp(s->set_val, "false") == 0;
        int b2 = strcmp(s->clear_val, "true") == 0 || strcmp(s->clear_val, "false") == 0;

        if (b1 && b2) {
            return TRANSFORM_T_BOOLEAN;
        }
        if (transform_parse_int(&x, s->set_val, strlen(s->set_val)) == DM_OK &&
            transform_parse_int(&x, s->clear_val, strlen(s->clear_val)) == DM_OK) {
            return TRANSFORM_T_INTEGER;
        }
        return TRANSFORM_T_STRING;
    }
    default:
        return TRANSFORM_T_ANY;
    }
}

void transform_clear(struct transform_step *s)
{
    if (s == NULL) {
        return;
    }
    transform_regex_clear(&s->rx);
    free(s->repl);
    free(s->text);
    for (size_t i = 0; i < s->ntable; i++) {
        free(s->table[i].key);
        free(s->table[i].val);
    }
    free(s->table);
    free(s->set_val);
    free(s->clear_val);
    memset(s, 0, sizeof(*s));
}

/* ---- compile ---- */

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n + 1);

    if (d != NULL) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

/* Copies n bytes from src to dst (which may be src) with ASCII letters in one case: the
 * case bit (0x20) flipped for bytes in the other case's range, without a branch per byte
 * (bytes >= 0x80, UTF-8, are never in the range). */
static void ascii_case(unsigned char *dst, const unsigned char *src, size_t n, int upper)
{
    unsigned char from = upper ? 'a' : 'A';

    for (size_t i = 0; i < n; i++) {
        unsigned char c = src[i];

        dst[i] = (unsigned char)(c ^ ((unsigned char)(c - from) < 26 ? 0x20 : 0));
    }
}

static void ascii_lower(unsigned char *p, size_t n)
{
    ascii_case(p, p, n, 0);
}

static int pair_cmp(const void *a, const void *b)
{
    const struct transform_pair *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);

    if (c != 0) {
        return c;
    }
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

static int DM_PRINTF(3, 4) why_set(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return DM_EINVAL;
}

/* Checks that obj has only the listed keys. */
static int only_keys(const json_t *obj, const char *const *keys, size_t n, const char *op,
                     char *why, size_t whylen)
{
    const char *k;
    json_t *v;

    json_object_foreach ((json_t *)obj, k, v) {
        size_t i;

        for (i = 0; i < n && strcmp(keys[i], k) != 0; i++) {
        }
        if (i == n) {
            const char *best = suggest_closest(k, keys, n);
            if (best != NULL) {
                return why_set(why, whylen, "%s: unknown option \"%.40s\" (did you mean \"%s\"?)",
                               op, k, best);
            }
            return why_set(why, whylen, "%s: unknown option \"%.40s\"", op, k);
        }
    }
    return DM_OK;
}

static int compile_regex(struct transform_step *s, const json_t *arg, char *why, size_t whylen)
{
    static const char *const keys[] = {"match", "replace", "global"};
    const json_t *m = json_object_get(arg, "match"), *r = json_object_get(arg, "replace");
    const json_t *g = json_object_get(arg, "global");
    char msg[256];
    int rc;

    if (!json_is_object(arg)) {
        return why_set(why, whylen, "regex: must be an object with \"match\" and \"replace\"");
    }
    rc = only_keys(arg, keys, DM_NELEM(keys), "regex", why, whylen);
    if (rc != DM_OK) {
        return rc;
    }
    if (!json_is_string(m) || !json_is_string(r)) {
        return why_set(why, whylen, "regex: \"match\" and \"replace\" must be strings");
    }
    if (g != NULL && !json_is_boolean(g)) {
        return why_set(why, whylen, "regex: \"global\" must be true or false");
    }
    rc = transform_regex_compile(&s->rx, json_string_value(m), 0, msg, sizeof(msg));
    if (rc == DM_ENOMEM) {
        return rc;
    }
    if (rc != DM_OK) {
        return why_set(why, whylen, "regex: %s", msg);
    }
    for (const char *p = json_string_value(r); *p != '\0'; p++) {
        if (*p == '\\' && p[1] >= '0' && p[1] <= '9' &&
            (size_t)(p[1] - '0') > transform_regex_ngroups(&s->rx)) {
            return why_set(why, whylen,
                           "regex: replace refers to group \\%c but the "
                           "expression has %zu",
                           p[1], transform_regex_ngroups(&s->rx));
        }
        if (*p == '\\' && p[1] != '\0') {
            p++;
        }
    }
    s->repl = strdup(json_string_value(r));
    if (s->repl == NULL) {
        return DM_ENOMEM;
    }
    s->global = g != NULL && json_is_true(g);
    return DM_OK;
}

static int compile_lookup(struct transform_step *s, const json_t *arg, char *why, size_t whylen)
{
    static const char *const keys[] = {"table", "default", "keep", "ignore_case"};
    const json_t *t = json_object_get(arg, "table"), *d = json_object_get(arg, "default");
    const json_t *kp = json_object_get(arg, "keep"), *ic = json_object_get(arg, "ignore_case");
    const char *k;
    json_t *v;
    int rc;

    if (!json_is_object(arg)) {
        return why_set(why, whylen, "lookup: must be an object with \"table\"");
    }
    rc = only_keys(arg, keys, DM_NELEM(keys), "lookup", why, whylen);
    if (rc != DM_OK) {
        return rc;
    }
    if (!json_is_object(t)) {
        return why_set(why, whylen, "lookup: \"table\" must be an object of strings");
    }
    if (d != NULL && !json_is_string(d)) {
        return why_set(why, whylen, "lookup: \"default\" must be a string");
    }
    if ((kp != NULL && !json_is_boolean(kp)) || (ic != NULL && !json_is_boolean(ic))) {
        return why_set(why, whylen, "lookup: \"keep\" and \"ignore_case\" must be true or false");
    }
    s->icase = ic != NULL && json_is_true(ic);
    s->table = calloc(json_object_size(t) + 1, sizeof(*s->table));
    if (s->table == NULL) {
        return DM_ENOMEM;
    }
    json_object_foreach ((json_t *)t, k, v) {
        struct transform_pair *p = &s->table[s->ntable];

        if (!json_is_string(v)) {
            return why_set(why, whylen, "lookup: table value for \"%.40s\" must be a string", k);
        }
        p->key_len = strlen(k);
        p->key = dup_bytes(k, p->key_len);
        p->val_len = json_string_length(v);
        p->val = dup_bytes(json_string_value(v), p->val_len);
        s->ntable++;
        if (p->key == NULL || p->val == NULL) {
            return DM_ENOMEM;
        }
        if (s->icase) {
            ascii_lower((unsigned char *)p->key, p->key_len);
        }
    }
    qsort(s->table, s->ntable, sizeof(*s->table), pair_cmp);
    for (size_t i = 1; i < s->ntable; i++) {
        if (pair_cmp(&s->table[i - 1], &s->table[i]) == 0) {
            return why_set(why, whylen, "lookup: keys \"%.40s\" collide when case is ignored",
                           s->table[i].key);
        }
    }
    if (d != NULL) {
        s->has_text = 1;
        s->text_len = json_string_length(d);
        s->text = dup_bytes(json_string_value(d), s->text_len);
        if (s->text == NULL) {
            return DM_ENOMEM;
        }
    }
    s->keep = kp != NULL && json_is_true(kp);
    return DM_OK;
}

static int date_fmt(enum transform_datefmt *out, const json_t *v, int output)
{
    if (!json_is_string(v)) {
        return DM_EINVAL;
    }
    for (size_t i = 0; i < DM_NELEM(date_names); i++) {
        if (strcmp(json_string_value(v), date_names[i]) == 0) {
            if ((output && i == TRANSFORM_DATE_FILETIME) || (!output && i == TRANSFORM_DATE_DAY)) {
                return DM_EINVAL;
            }
            *out = (enum transform_datefmt)i;
            return DM_OK;
        }
    }
    return DM_EINVAL;
}

static int compile_date(struct transform_step *s, const json_t *arg, char *why, size_t whylen)
{
    static const char *const keys[] = {"from", "to"};
    int rc;

    if (!json_is_object(arg)) {
        return why_set(why, whylen, "date: must be an object with \"from\" and \"to\"");
    }
    rc = only_keys(arg, keys, DM_NELEM(keys), "date", why, whylen);
    if (rc != DM_OK) {
        return rc;
    }
    if (date_fmt(&s->date_from, json_object_get(arg, "from"), 0) != DM_OK) {
        return why_set(why, whylen,
                       "date: \"from\" must be one of generalized, iso8601, filetime, unix");
    }
    if (date_fmt(&s->date_to, json_object_get(arg, "to"), 1) != DM_OK) {
        return why_set(why, whylen, "date: \"to\" must be one of iso8601, generalized, date, unix");
    }
    return DM_OK;
}

static int compile_flag(struct transform_step *s, const json_t *arg, char *why, size_t whylen)
{
    static const char *const keys[] = {"bit", "mask", "set", "clear"};
    const json_t *b = json_object_get(arg, "bit"), *st, *cl;
    int rc;

    if (!json_is_object(arg)) {
        return why_set(why, whylen, "flag: must be an object with \"bit\"");
    }
    rc = only_keys(arg, keys, DM_NELEM(keys), "flag", why, whylen);
    if (rc != DM_OK) {
        return rc;
    }
    if (b == NULL) {
        b = json_object_get(arg, "mask");
    }
    if (!json_is_integer(b) || json_integer_value(b) <= 0) {
        return why_set(why, whylen,
                       "flag: \"bit\" must be a positive integer (the flag value, "
                       "e.g. 2 for ACCOUNTDISABLE)");
    }
    s->mask = (uint64_t)json_integer_value(b);
    st = json_object_get(arg, "set");
    cl = json_object_get(arg, "clear");
    if ((st != NULL && !json_is_string(st)) || (cl != NULL && !json_is_string(cl))) {
        return why_set(why, whylen, "flag: \"set\" and \"clear\" must be strings");
    }
    s->set_val = strdup(st != NULL ? json_string_value(st) : "true");
    s->clear_val = strdup(cl != NULL ? json_string_value(cl) : "false");
    if (s->set_val == NULL || s->clear_val == NULL) {
        return DM_ENOMEM;
    }
    return DM_OK;
}

int transform_compile(struct transform_step *out, const json_t *v, char *why, size_t whylen)
{
    const char *name;
    json_t *arg;
    int rc = DM_EINVAL;

    memset(out, 0, sizeof(*out));
    if (json_is_string(v)) {
        for (size_t i = 0; i < DM_NELEM(simple_ops); i++) {
            if (strcmp(json_string_value(v), op_names[simple_ops[i]]) == 0) {
                out->op = simple_ops[i];
                return DM_OK;
            }
        }
        for (size_t i = 0; i < DM_NELEM(op_names); i++) {
            if (strcmp(json_string_value(v), op_names[i]) == 0) {
                return why_set(why, whylen,
                               "transform \"%s\" needs an argument: "
                               "{\"%s\": ...}",
                               op_names[i], op_names[i]);
            }
        }
        {
            const char *best = suggest_closest(json_string_value(v), op_names, DM_NELEM(op_names));
            if (best != NULL) {
                return why_set(why, whylen, "unknown transform \"%.64s\" (did you mean \"%s\"?)",
                               json_string_value(v), best);
            }
        }
        return why_set(why, whylen,
                       "unknown transform \"%.64s\" (known: trim, lower, upper, first, all, email, "
                       "guid, sid, filetime, generalized, regex, split, join, lookup, default, "
                       "date, flag)",
                       json_string_value(v));
    }
    if (!json_is_object(v) || json_object_size(v) != 1) {
        return why_set(why, whylen, "must be a transform name or an object with one key");
    }
    json_object_foreach ((json_t *)v, name, arg) {
        if (strcmp(name, "regex") == 0) {
            out->op = TRANSFORM_REGEX;
            rc = compile_regex(out, arg, why, whylen);
        } else if (strcmp(name, "split") == 0 || strcmp(name, "join") == 0 ||
                   strcmp(name, "default") == 0) {
            out->op = name[0] == 's'   ? TRANSFORM_SPLIT
                      : name[0] == 'j' ? TRANSFORM_JOIN
                                       : TRANSFORM_DEFAULT;
            if (!json_is_string(arg) ||
                (out->op == TRANSFORM_SPLIT && json_string_length(arg) == 0)) {
                rc = why_set(why, whylen, "%s: must be a%s string", name,
                             out->op == TRANSFORM_SPLIT ? " non-empty" : "");
            } else {
                out->has_text = 1;
                out->text_len = json_string_length(arg);
                out->text = dup_bytes(json_string_value(arg), out->text_len);
                rc = out->text == NULL ? DM_ENOMEM : DM_OK;
            }
        } else if (strcmp(name, "lookup") == 0) {
            out->op = TRANSFORM_LOOKUP;
            rc = compile_lookup(out, arg, why, whylen);
        } else if (strcmp(name, "date") == 0) {
            out->op = TRANSFORM_DATE;
            rc = compile_date(out, arg, why, whylen);
        } else if (strcmp(name, "flag") == 0) {
            out->op = TRANSFORM_FLAG;
            rc = compile_flag(out, arg, why, whylen);
        } else {
            static const char *const with_arg[] = {"regex",   "split", "join", "lookup",
                                                   "default", "date",  "flag"};
            const char *best = suggest_closest(name, with_arg, DM_NELEM(with_arg));

            if (best != NULL) {
                rc = why_set(why, whylen, "unknown transform \"%.64s\" (did you mean \"%s\"?)",
                             name, best);
            } else {
                rc = why_set(why, whylen,
                             "unknown transform \"%.64s\" (with an argument: regex, split, "
                             "join, lookup, default, date, flag)",
                             name);
            }
        }
    }
    if (rc == DM_ENOMEM) {
        why_set(why, whylen, "out of memory");
    }
    if (rc != DM_OK) {
        transform_clear(out);
    }
    return rc;
}

/* ---- value lists ---- */

void transform_vals_init(struct transform_vals *l)
{
    memset(l, 0, sizeof(*l));
}

void transform_vals_init_arena(struct transform_vals *l, struct arena *ar)
{
    memset(l, 0, sizeof(*l));
    l->ar = ar;
}

/* Memory for a value of n bytes plus its NUL, from the list's arena or malloc(). */
static unsigned char *val_alloc(const struct transform_vals *l, size_t n)
{
    return l->ar != NULL ? arena_alloc(l->ar, n + 1) : malloc(n + 1);
}

/* Lets go of a value's memory (an arena's piece stays until the arena is reset). */
static void val_free(const struct transform_vals *l, unsigned char *p)
{
    if (l->ar == NULL) {
        free(p);
    }
}

void transform_vals_reset(struct transform_vals *l)
{
    for (size_t i = 0; i < l->n; i++) {
        val_free(l, l->v[i].data);
    }
    l->n = 0;
}

void transform_vals_free(struct transform_vals *l)
{
    transform_vals_reset(l);
    if (l->ar == NULL) {
        free(l->v);
    }
    memset(l, 0, sizeof(*l));
}

/* Appends, taking ownership of data (from val_alloc(), len bytes + NUL). */
static int vals_take(struct transform_vals *l, unsigned char *data, size_t len)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        struct dm_val *nv = l->ar != NULL
                                ? arena_grow(l->ar, l->v, l->cap * sizeof(*nv), nc * sizeof(*nv))
                                : realloc(l->v, nc * sizeof(*nv));

        if (nv == NULL) {
            val_free(l, data);
            return DM_ENOMEM;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n].data = data;
    l->v[l->n].len = len;
    l->n++;
    return DM_OK;
}

int transform_vals_push(unsigned char **out, struct transform_vals *l, size_t len)
{
    unsigned char *p;
    int rc;

    if (len > TRANSFORM_VALUE_LIMIT) {
        return DM_ELIMIT;
    }
    p = val_alloc(l, len);
    if (p == NULL) {
        return DM_ENOMEM;
    }
    p[len] = '\0';
    rc = vals_take(l, p, len);
    if (rc == DM_OK) {
        *out = p;
    }
    return rc;
}

int transform_vals_add(struct transform_vals *l, const void *data, size_t len)
{
    unsigned char *p = NULL;
    int rc = transform_vals_push(&p, l, len);

    if (rc == DM_OK && len > 0) {
        memcpy(p, data, len);
    }
    return rc;
}

/* Appends unless empty (empty results are dropped). */
static int add_nonempty(struct transform_vals *l, const void *data, size_t len)
{
    return len == 0 ? DM_OK : transform_vals_add(l, data, len);
}

/* An output value being built: on the stack while it is short, then in a struct buf (with
 * its cap). Saves a malloc() per regex or join result. */
struct sbuf {
    size_t len;
    int on_heap;
    struct buf heap;
    char small[256];
};

static void sbuf_init(struct sbuf *s)
{
    s->len = 0;
    s->on_heap = 0;
    buf_init(&s->heap, TRANSFORM_VALUE_LIMIT);
}

static int sbuf_append(struct sbuf *s, const void *p, size_t n)
{
    int rc;

    if (!s->on_heap && n <= sizeof(s->small) - s->len) {
        if (n > 0) {
            memcpy(s->small + s->len, p, n);
        }
        s->len += n;
        return DM_OK;
    }
    if (!s->on_heap) {
        rc = buf_append(&s->heap, s->small, s->len);
        if (rc != DM_OK) {
            return rc;
        }
        s->on_heap = 1;
    }
    rc = buf_append(&s->heap, p, n);
    s->len = s->heap.len;
    return rc;
}

static const char *sbuf_data(const struct sbuf *s)
{
    return s->on_heap ? s->heap.data : s->small;
}

/* Appends what s holds as a value unless it is empty, and frees s. */
static int add_sbuf(struct transform_vals *l, struct sbuf *s)
{
    int rc = add_nonempty(l, sbuf_data(s), s->len);

    buf_free(&s->heap);
    return rc;
}

/* ---- UTF-8 ---- */

int transform_utf8_len(size_t *nchars, int *maxbytes, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;
    int mx = 0;

    while (i < len) {
        unsigned c = p[i];
        int k;
        uint32_t cp;

        if (c < 0x80) {
            /* a run of ASCII in one go */
            size_t j = i + 1;

            while (j < len && p[j] < 0x80) {
                j++;
            }
            n += j - i;
            i = j;
            mx = mx > 1 ? mx : 1;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 4;
            cp = c & 0x07;
        } else {
            return -1;
        }
        if (i + (size_t)k > len) {
            return -1;
        }
        for (int j = 1; j < k; j++) {
            if ((p[i + (size_t)j] & 0xc0) != 0x80) {
                return -1;
            }
            cp = (cp << 6) | (p[i + (size_t)j] & 0x3f);
        }
        if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
            return -1;
        }
        if (k > mx) {
            mx = k;
        }
        i += (size_t)k;
        n++;
    }
    *nchars = n;
    *maxbytes = mx;
    return 0;
}

/* ---- run ---- */

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void trim_range(const unsigned char *p, size_t len, size_t *lo, size_t *hi)
{
    *lo = 0;
    *hi = len;
    while (*lo < *hi && is_space(p[*lo])) {
        (*lo)++;
    }
    while (*hi > *lo && is_space(p[*hi - 1])) {
        (*hi)--;
    }
}

static int run_case(struct transform_vals *out, const struct dm_val *v, int upper)
{
    unsigned char *p = val_alloc(out, v->len);

    if (p == NULL) {
        return DM_ENOMEM;
    }
    ascii_case(p, v->data, v->len, upper);
    p[v->len] = '\0';
    if (v->len == 0) {
        val_free(out, p);
        return DM_OK;
    }
    return vals_take(out, p, v->len);
}

static int run_email(struct transform_vals *out, const struct dm_val *v)
{
    size_t lo, hi;
    const unsigned char *p = v->data;
    unsigned char *r;
    size_t n, at;

    trim_range(p, v->len, &lo, &hi);
    /* "<mailto:a@b>" and "mailto:<a@b>" both: brackets, then the scheme, then brackets */
    for (int pass = 0; pass < 2; pass++) {
        if (hi - lo >= 2 && p[lo] == '<' && p[hi - 1] == '>') {
            lo++;
            hi--;
        }
        if (pass == 0 && hi - lo >= 7 && strncasecmp((const char *)p + lo, "mailto:", 7) == 0) {
            lo += 7;
        }
        while (lo < hi && is_space(p[lo])) {
            lo++;
        }
        while (hi > lo && is_space(p[hi - 1])) {
            hi--;
        }
    }
    n = hi - lo;
    if (n == 0) {
        return DM_OK;
    }
    r = val_alloc(out, n);
    if (r == NULL) {
        return DM_ENOMEM;
    }
    memcpy(r, p + lo, n);
    r[n] = '\0';
    /* the domain (after the last '@') is case-insensitive (RFC 5321 2.4) */
    for (at = n; at > 0 && r[at - 1] != '@'; at--) {
    }
    for (size_t i = at; at > 0 && i < n; i++) {
        if (r[i] >= 'A' && r[i] <= 'Z') {
            r[i] = (unsigned char)(r[i] - 'A' + 'a');
        }
    }
    return vals_take(out, r, n);
}

/* Appends the replacement for one match (groups \0..\9, "\\" a backslash); offsets in pm
 * are from subj. */
static int regex_repl(struct sbuf *b, const char *repl, const char *subj,
                      const struct transform_regex_match *pm, size_t ngroups)
{
    int rc = DM_OK;

    for (const char *r = repl; *r != '\0' && rc == DM_OK; r++) {
        if (*r == '\\' && r[1] >= '0' && r[1] <= '9') {
            size_t g = (size_t)(r[1] - '0');

            if (g <= ngroups && pm[g].so >= 0) {
                rc = sbuf_append(b, subj + pm[g].so, (size_t)(pm[g].eo - pm[g].so));
            }
            r++;
        } else if (*r == '\\' && r[1] != '\0') {
            rc = sbuf_append(b, r + 1, 1);
            r++;
        } else {
            rc = sbuf_append(b, r, 1);
        }
    }
    return rc;
}

/* Length of the UTF-8 sequence that starts at p (1 for a byte that starts none): an empty
 * match moves on by one character, as the patterns see characters. */
static size_t char_len(const unsigned char *p, size_t left)
{
    size_t n = 1;

    while (n < left && n < 4 && (p[n] & 0xc0) == 0x80) {
        n++;
    }
    return n;
}

static int run_regex(struct transform_vals *out, const struct transform_step *s,
                     const struct dm_val *v)
{
    struct transform_regex_match pm[TRANSFORM_REGEX_GROUPS + 1];
    const char *subj = (const char *)v->data;
    size_t off = 0, ng = transform_regex_ngroups(&s->rx);
    struct sbuf b;
    int rc = DM_OK, matched = 0;

    if (ng > TRANSFORM_REGEX_GROUPS) {
        ng = TRANSFORM_REGEX_GROUPS; /* \0..\9 in replace */
    }
    /* the whole value is the subject, embedded NULs included; global matching resumes at
     * an offset of the same subject, so "^" and look-behind see what came before */
    sbuf_init(&b);
    while (rc == DM_OK && off <= v->len) {
        int hit = transform_regex_exec(&s->rx, subj, v->len, off, ng, pm);
        size_t so, eo;

        if (hit < 0) {
            rc = DM_ENOMEM;
            break;
        }
        if (hit != 0) {
            break;
        }
        /* \K can put the start after the end: treat it as an empty match at the end */
        so = (size_t)pm[0].so < (size_t)pm[0].eo ? (size_t)pm[0].so : (size_t)pm[0].eo;
        eo = (size_t)pm[0].eo;
        matched = 1;
        rc = sbuf_append(&b, subj + off, so - off);
        if (rc == DM_OK) {
            rc = regex_repl(&b, s->repl, subj, pm, ng);
        }
        if (rc != DM_OK) {
            break;
        }
        if (eo == so) {
            /* empty match: copy one character and move on, or we would loop forever */
            size_t n = eo < v->len ? char_len(v->data + eo, v->len - eo) : 1;

            if (eo < v->len) {
                rc = sbuf_append(&b, subj + eo, n);
            }
            off = eo + n;
        } else {
            off = eo;
        }
        if (!s->global) {
            break;
        }
    }
    if (rc == DM_OK && off < v->len) {
        rc = sbuf_append(&b, subj + off, v->len - off);
    }
    if (rc == DM_OK && matched) {
        return add_sbuf(out, &b);
    }
    buf_free(&b.heap);
    return rc == DM_OK ? add_nonempty(out, v->data, v->len) : rc;
}

static int run_split(struct transform_vals *out, const struct transform_step *s,
                     const struct dm_val *v)
{
    const unsigned char *p = v->data, *end = v->data + v->len;
    int rc = DM_OK;

    while (rc == DM_OK) {
        const unsigned char *q = p;

        while (q + s->text_len <= end && memcmp(q, s->text, s->text_len) != 0) {
            q++;
        }
        if (q + s->text_len > end) {
            rc = add_nonempty(out, p, (size_t)(end - p));
            break;
        }
        rc = add_nonempty(out, p, (size_t)(q - p));
        p = q + s->text_len;
    }
    return rc;
}

static int run_join(struct transform_vals *out, const struct transform_step *s,
                    const struct transform_vals *in)
{
    struct sbuf b;
    int rc = DM_OK;

    if (in->n == 0) {
        return DM_OK;
    }
    sbuf_init(&b);
    for (size_t i = 0; i < in->n && rc == DM_OK; i++) {
        if (i > 0) {
            rc = sbuf_append(&b, s->text, s->text_len);
        }
        if (rc == DM_OK) {
            rc = sbuf_append(&b, in->v[i].data, in->v[i].len);
        }
    }
    if (rc == DM_OK) {
        return add_sbuf(out, &b);
    }
    buf_free(&b.heap);
    return rc;
}

static int run_lookup(struct transform_vals *out, const struct transform_step *s,
                      const struct dm_val *v)
{
    struct transform_pair key = {(char *)v->data, v->len, NULL, 0};
    const struct transform_pair *hit = NULL;
    unsigned char small[256], *low = NULL;

    if (s->icase) {
        /* keys were lowercased at compile time */
        low = v->len < sizeof(small) ? small : malloc(v->len + 1);
        if (low == NULL) {
            return DM_ENOMEM;
        }
        memcpy(low, v->data, v->len);
        ascii_lower(low, v->len);
        key.key = (char *)low;
    }
    if (s->ntable > 0) {
        hit = bsearch(&key, s->table, s->ntable, sizeof(*s->table), pair_cmp);
    }
    if (low != small) {
        free(low);
    }

    if (hit != NULL) {
        return add_nonempty(out, hit->val, hit->val_len);
    }
    if (s->has_text) {
        return add_nonempty(out, s->text, s->text_len);
    }
    if (s->keep) {
        return add_nonempty(out, v->data, v->len);
    }
    return DM_OK;
}

/* Date conversions: parse per date_from (filetime for "filetime", generalized for
 * "generalized"), format per date_to. Unparsable values pass through unchanged. */
static int run_date(struct transform_vals *out, enum transform_datefmt from,
                    enum transform_datefmt to, const struct dm_val *v)
{
    const char *s = (const char *)v->data;
    int64_t t = 0;
    int never = 0, rc = DM_EINVAL;
    char tmp[48];

    switch (from) {
    case TRANSFORM_DATE_GENERALIZED:
        rc = transform_parse_generalized(&t, s, v->len);
        break;
    case TRANSFORM_DATE_ISO8601:
        rc = transform_parse_iso8601(&t, s, v->len);
        break;
    case TRANSFORM_DATE_FILETIME:
        rc = transform_parse_filetime(&t, &never, s, v->len);
        break;
    case TRANSFORM_DATE_UNIX:
        rc = transform_parse_int(&t, s, v->len);
        break;
    case TRANSFORM_DATE_DAY:
        break;
    }
    if (rc != DM_OK) {
        return add_nonempty(out, v->data, v->len);
    }
    if (never) {
        return DM_OK;
    }
    transform_format_time(tmp, sizeof(tmp), t, to);
    return add_nonempty(out, tmp, strlen(tmp));
}

static int run_one(struct transform_vals *out, const struct transform_step *s,
                   const struct dm_val *v)
{
    switch (s->op) {
    case TRANSFORM_TRIM: {
        size_t lo, hi;

        trim_range(v->data, v->len, &lo, &hi);
        return add_nonempty(out, v->data + lo, hi - lo);
    }
    case TRANSFORM_LOWER:
    case TRANSFORM_UPPER:
        return run_case(out, v, s->op == TRANSFORM_UPPER);
    case TRANSFORM_EMAIL:
        return run_email(out, v);
    case TRANSFORM_GUID: {
        char g[37];

        if (transform_guid_to_string(g, v->data, v->len) != DM_OK) {
            return add_nonempty(out, v->data, v->len);
        }
        return transform_vals_add(out, g, 36);
    }
    case TRANSFORM_SID: {
        char sid[192];

        if (transform_sid_to_string(sid, sizeof(sid), v->data, v->len) != DM_OK) {
            return add_nonempty(out, v->data, v->len);
        }
        return transform_vals_add(out, sid, strlen(sid));
    }
    case TRANSFORM_FILETIME:
        return run_date(out, TRANSFORM_DATE_FILETIME, TRANSFORM_DATE_ISO8601, v);
    case TRANSFORM_GENERALIZED:
        return run_date(out, TRANSFORM_DATE_GENERALIZED, TRANSFORM_DATE_ISO8601, v);
    case TRANSFORM_DATE:
        return run_date(out, s->date_from, s->date_to, v);
    case TRANSFORM_REGEX:
        return run_regex(out, s, v);
    case TRANSFORM_SPLIT:
        return run_split(out, s, v);
    case TRANSFORM_LOOKUP:
        return run_lookup(out, s, v);
    case TRANSFORM_FLAG: {
        int64_t x;
        const char *r;

        if (transform_parse_int(&x, (const char *)v->data, v->len) != DM_OK) {
            return add_nonempty(out, v->data, v->len);
        }
        r = ((uint64_t)x & s->mask) != 0 ? s->set_val : s->clear_val;
        return add_nonempty(out, r, strlen(r));
    }
    default:
        return add_nonempty(out, v->data, v->len);
    }
}

int transform_run(struct transform_vals *out, const struct transform_step *s,
                  const struct transform_vals *in)
{
    int rc = DM_OK;

    transform_vals_reset(out);
    switch (s->op) {
    case TRANSFORM_FIRST:
        return in->n > 0 ? add_nonempty(out, in->v[0].data, in->v[0].len) : DM_OK;
    case TRANSFORM_JOIN:
        return run_join(out, s, in);
    case TRANSFORM_DEFAULT:
        if (in->n == 0) {
            return add_nonempty(out, s->text, s->text_len);
        }
        break;
    default:
        for (size_t i = 0; i < in->n && rc == DM_OK; i++) {
            rc = run_one(out, s, &in->v[i]);
        }
        return rc;
    }
    for (size_t i = 0; i < in->n && rc == DM_OK; i++) {
        rc = add_nonempty(out, in->v[i].data, in->v[i].len);
    }
    return rc;
}

/* Removes value i (freed), keeping the order. */
static void vals_drop(struct transform_vals *l, size_t i)
{
    val_free(l, l->v[i].data);
    memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
    l->n--;
}

int transform_run_inplace(struct transform_vals *l, const struct transform_step *s)
{
    switch (s->op) {
    case TRANSFORM_ALL:
        break;
    case TRANSFORM_FIRST:
        while (l->n > 1) {
            vals_drop(l, l->n - 1);
        }
        break;
    case TRANSFORM_DEFAULT:
        if (l->n == 0) {
            return add_nonempty(l, s->text, s->text_len);
        }
        break;
    case TRANSFORM_TRIM:
    case TRANSFORM_LOWER:
    case TRANSFORM_UPPER:
        for (size_t i = l->n; i-- > 0;) {
            struct dm_val *v = &l->v[i];

            if (s->op == TRANSFORM_TRIM) {
                size_t lo, hi;

                trim_range(v->data, v->len, &lo, &hi);
                memmove(v->data, v->data + lo, hi - lo);
                v->len = hi - lo;
                v->data[v->len] = '\0';
            } else {
                ascii_case(v->data, v->data, v->len, s->op == TRANSFORM_UPPER);
            }
        }
        break;
    default:
        return DM_ENOTFOUND;
    }
    /* as transform_run(): no empty values survive a step */
    for (size_t i = l->n; i-- > 0;) {
        if (l->v[i].len == 0) {
            vals_drop(l, i);
        }
    }
    return DM_OK;
}
