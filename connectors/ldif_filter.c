/*
 * connectors/ldif_filter.c: RFC 4515 filters on entries (ldif_filter.h).
 */
#include <config.h>
#include "connectors/ldif_filter.h"
#include "schema/dn.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum fop { F_AND, F_OR, F_NOT, F_EQ, F_GE, F_LE, F_PRESENT, F_SUB, F_TRUE };

struct ldif_filter {
    enum fop op;
    char *attr;
    char *value; /* F_EQ/GE/LE: unescaped; F_SUB: the pieces joined, see below */
    size_t vlen;
    char **parts; /* F_SUB: initial (may be ""), any..., final (may be ""), NULL-terminated */
    size_t nparts;
    struct ldif_filter **kids;
    size_t nkids;
};

void ldif_filter_free(struct ldif_filter *f)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->nkids; i++) {
        ldif_filter_free(f->kids[i]);
    }
    for (size_t i = 0; i < f->nparts; i++) {
        free(f->parts[i]);
    }
    free(f->parts);
    free(f->kids);
    free(f->attr);
    free(f->value);
    free(f);
}

struct parser {
    const char *s;
    size_t pos;
    struct dm_err *err;
};

static int perr(struct parser *p, const char *what)
{
    return dm_err_set(p->err, DM_EINVAL, "filter %s: %s at offset %zu", p->s, what, p->pos);
}

static int hexv(int c)
{
    return isdigit(c)               ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                    : -1;
}

/* Unescapes [a, b) of the filter (\XX pairs) into a new string. */
static char *unescape(struct parser *p, size_t a, size_t b, size_t *len)
{
    char *o = malloc(b - a + 1);
    size_t n = 0;

    if (o == NULL) {
        dm_err_set(p->err, DM_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = a; i < b; i++) {
        if (p->s[i] == '\\') {
            int h = i + 1 < b ? hexv((unsigned char)p->s[i + 1]) : -1;
            int l = i + 2 < b ? hexv((unsigned char)p->s[i + 2]) : -1;
            if (h < 0 || l < 0) {
                p->pos = i;
                free(o);
                perr(p, "a backslash not followed by two hex digits");
                return NULL;
            }
            o[n++] = (char)(h * 16 + l);
            i += 2;
        } else {
            o[n++] = p->s[i];
        }
    }
    o[n] = '\0';
    *len = n;
    return o;
}

static int parse(struct ldif_filter **out, struct parser *p);

static int parse_list(struct ldif_filter *f, struct parser *p)
{
    int rc;

    while (p->s[p->pos] == '(') {
        struct ldif_filter *k = NULL, **g;
        rc = parse(&k, p);
        if (rc != DM_OK) {
            return rc;
        }
        g = realloc(f->kids, (f->nkids + 1) * sizeof(*g));
        if (g == NULL) {
            ldif_filter_free(k);
            return dm_err_set(p->err, DM_ENOMEM, "out of memory");
        }
        f->kids = g;
        f->kids[f->nkids++] = k;
    }
    return f->nkids > 0 ? DM_OK : perr(p, "an empty list of filters");
}

static int parse_item(struct ldif_filter *f, struct parser *p)
{
    size_t a = p->pos, eq, end;
    const char *s = p->s;

    while (s[p->pos] && s[p->pos] != '=' && s[p->pos] != '(' && s[p->pos] != ')') {
        p->pos++;
    }
    if (s[p->pos] != '=' || p->pos == a) {
        return perr(p, "an attribute and '=' expected");
    }
    eq = p->pos;
    end = eq;
    f->op = F_EQ;
    if (s[eq - 1] == '>' || s[eq - 1] == '<' || s[eq - 1] == '~') {
        f->op = s[eq - 1] == '>' ? F_GE : s[eq - 1] == '<' ? F_LE : F_EQ;
        end--;
    } else if (s[eq - 1] == ':' || memchr(s + a, ':', eq - a) != NULL) {
        return perr(p, "extensible matches (:=) are not supported here");
    }
    if (end == a) {
        return perr(p, "an attribute name expected");
    }
    f->attr = strndup(s + a, end - a);
    if (f->attr == NULL) {
        return dm_err_set(p->err, DM_ENOMEM, "out of memory");
    }
    p->pos = eq + 1;
    a = p->pos;
    while (s[p->pos] && s[p->pos] != ')') {
        if (s[p->pos] == '(') {
            return perr(p, "an unescaped '(' in a value");
        }
        p->pos++;
    }
    if (f->op == F_EQ && p->pos - a == 1 && s[a] == '*') {
        f->op = F_PRESENT;
        return DM_OK;
    }
    if (f->op == F_EQ && memchr(s + a, '*', p->pos - a) != NULL) {
        size_t start = a;
        f->op = F_SUB;
        f->parts = calloc(p->pos - a + 2, sizeof(char *));
        if (f->parts == NULL) {
            return dm_err_set(p->err, DM_ENOMEM, "out of memory");
        }
        for (size_t i = a; i <= p->pos; i++) {
            if (i == p->pos || s[i] == '*') {
                size_t n;
                f->parts[f->nparts] = unescape(p, start, i, &n);
                if (f->parts[f->nparts] == NULL) {
                    return p->err->rc;
                }
                f->nparts++;
                start = i + 1;
            }
        }
        return DM_OK;
    }
    f->value = unescape(p, a, p->pos, &f->vlen);
    return f->value != NULL ? DM_OK : p->err->rc;
}

static int parse(struct ldif_filter **out, struct parser *p)
{
    struct ldif_filter *f;
    int rc;

    if (p->s[p->pos] != '(') {
        return perr(p, "'(' expected");
    }
    p->pos++;
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return dm_err_set(p->err, DM_ENOMEM, "out of memory");
    }
    switch (p->s[p->pos]) {
    case '&':
    case '|':
        f->op = p->s[p->pos] == '&' ? F_AND : F_OR;
        p->pos++;
        rc = parse_list(f, p);
        break;
    case '!':
        f->op = F_NOT;
        p->pos++;
        rc = parse_list(f, p);
        if (rc == DM_OK && f->nkids != 1) {
            rc = perr(p, "'!' takes one filter");
        }
        break;
    default:
        rc = parse_item(f, p);
    }
    if (rc == DM_OK && p->s[p->pos] != ')') {
        rc = perr(p, "')' expected");
    }
    if (rc != DM_OK) {
        ldif_filter_free(f);
        return rc;
    }
    p->pos++;
    *out = f;
    return DM_OK;
}

int ldif_filter_compile(struct ldif_filter **out, const char *s, struct dm_err *err)
{
    struct parser p = {s, 0, err};
    struct ldif_filter *f = NULL;
    int rc;

    if (s == NULL || s[0] == '\0') {
        f = calloc(1, sizeof(*f));
        if (f == NULL) {
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        f->op = F_TRUE;
        *out = f;
        return DM_OK;
    }
    rc = parse(&f, &p);
    if (rc == DM_OK && s[p.pos] != '\0') {
        rc = perr(&p, "text after the filter");
        ldif_filter_free(f);
    }
    if (rc == DM_OK) {
        *out = f;
    }
    return rc;
}

/* ---- matching ---- */

static int num_of(const char *s, size_t n, long long *v)
{
    char *end;

    if (n == 0 || n > 20) {
        return 0;
    }
    *v = strtoll(s, &end, 10);
    return end == s + n;
}

static int cmp_value(const struct dm_val *v, const char *a, size_t alen)
{
    long long x, y;

    if (num_of((const char *)v->data, v->len, &x) && num_of(a, alen, &y)) {
        return x < y ? -1 : x > y;
    }
    {
        size_t n = v->len < alen ? v->len : alen;
        int c = strncasecmp((const char *)v->data, a, n);
        return c != 0 ? c : v->len < alen ? -1 : v->len > alen;
    }
}

static int eq_value(const struct dm_val *v, const char *a, size_t alen)
{
    if (v->len == alen && strncasecmp((const char *)v->data, a, alen) == 0) {
        return 1;
    }
    if (memchr(a, '=', alen) != NULL && memchr(v->data, '=', v->len) != NULL) {
        char *na = NULL, *nb = NULL;
        int same = dn_normalize(&na, a, NULL) == DM_OK &&
                   dn_normalize(&nb, (const char *)v->data, NULL) == DM_OK && strcmp(na, nb) == 0;
        free(na);
        free(nb);
        return same;
    }
    return 0;
}

/* Case-insensitive substring search from *at; advances *at past the match. */
static int find_ci(const char *hay, size_t hlen, size_t *at, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = *at; i + n <= hlen; i++) {
        if (strncasecmp(hay + i, needle, n) == 0) {
            *at = i + n;
            return 1;
        }
    }
    return 0;
}

static int sub_value(const struct ldif_filter *f, const struct dm_val *v)
{
    const char *s = (const char *)v->data;
    size_t at = 0, first = strlen(f->parts[0]), last = strlen(f->parts[f->nparts - 1]);

    if (v->len < first + last || strncasecmp(s, f->parts[0], first) != 0 ||
        strncasecmp(s + v->len - last, f->parts[f->nparts - 1], last) != 0) {
        return 0;
    }
    at = first;
    for (size_t i = 1; i + 1 < f->nparts; i++) {
        if (!find_ci(s, v->len - last, &at, f->parts[i])) {
            return 0;
        }
    }
    return 1;
}

int ldif_filter_match(const struct ldif_filter *f, const struct entry *e)
{
    const struct dm_attr *a;

    switch (f->op) {
    case F_TRUE:
        return 1;
    case F_AND:
        for (size_t i = 0; i < f->nkids; i++) {
            if (!ldif_filter_match(f->kids[i], e)) {
                return 0;
            }
        }
        return 1;
    case F_OR:
        for (size_t i = 0; i < f->nkids; i++) {
            if (ldif_filter_match(f->kids[i], e)) {
                return 1;
            }
        }
        return 0;
    case F_NOT:
        return !ldif_filter_match(f->kids[0], e);
    default:
        break;
    }
    a = entry_attr(e, f->attr);
    if (a == NULL) {
        /* objectClass=* holds for every entry, as at a server */
        return f->op == F_PRESENT && strcasecmp(f->attr, "objectClass") == 0;
    }
    if (f->op == F_PRESENT) {
        return a->nvals > 0;
    }
    for (size_t i = 0; i < a->nvals; i++) {
        const struct dm_val *v = &a->vals[i];
        if ((f->op == F_EQ && eq_value(v, f->value, f->vlen)) ||
            (f->op == F_GE && cmp_value(v, f->value, f->vlen) >= 0) ||
            (f->op == F_LE && cmp_value(v, f->value, f->vlen) <= 0) ||
            (f->op == F_SUB && sub_value(f, v))) {
            return 1;
        }
    }
    return 0;
}
