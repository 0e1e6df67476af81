#include <config.h>
#include "schema/dn.h"
#include "agent/util/buf.h"
#include <stdlib.h>
#include <string.h>

/*
 * RFC 4514 distinguished names, parsed by hand so that schema/ never sees libldap types.
 *
 * The parser is strict where a mistake would silently change which entry a DN names
 * (escapes, hex pairs, '=' and empty types, empty RDNs) and lenient where legacy LDAPv2
 * style input is harmless: spaces around ',' '+' and '=' and unescaped trailing spaces
 * (RFC 4514 §2.4 requires them escaped; RFC 1779 allowed them) are skipped.
 */

#define DN_BUF_LIMIT ((size_t)1 << 20)

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* The characters RFC 4514 §3 allows after a backslash besides a hex pair. */
static int is_escapable(unsigned char c)
{
    return c != '\0' && strchr(",+\"\\;<>=# ", c) != NULL;
}

static void free_rdns(struct dn_rdn *rdns, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < rdns[i].navas; j++) {
            free(rdns[i].avas[j].type);
            free(rdns[i].avas[j].value);
        }
        free(rdns[i].avas);
    }
    free(rdns);
}

void dn_free(struct dn *d)
{
    if (d == NULL) {
        return;
    }
    free_rdns(d->rdns, d->nrdns);
    free(d);
}

/* Parse state. ber[k] is 1 when the k-th AVA (counted over the whole DN) was written as a
 * "#hex" BER value: normalization must not escape its '#'. */
struct dn_parser {
    const char *s;
    size_t n, i;
    struct dn *d;
    unsigned char *ber;
    size_t nber, ber_cap;
    struct dm_err *err;
};

static void skip_spaces(struct dn_parser *p)
{
    while (p->i < p->n && p->s[p->i] == ' ') {
        p->i++;
    }
}

static int perr(struct dn_parser *p, size_t off, const char *what)
{
    dm_err_dn(p->err, p->s);
    return dm_err_set(p->err, DM_EINVAL, "malformed DN: %s at offset %zu", what, off);
}

static int push_ber(struct dn_parser *p, unsigned char flag)
{
    if (p->nber == p->ber_cap) {
        size_t cap = p->ber_cap ? p->ber_cap * 2 : 8;
        unsigned char *nb = realloc(p->ber, cap);

        if (nb == NULL) {
            return dm_err_set(p->err, DM_ENOMEM, "dn_parse");
        }
        p->ber = nb;
        p->ber_cap = cap;
    }
    p->ber[p->nber++] = flag;
    return DM_OK;
}

static int add_rdn(struct dn_parser *p, size_t start)
{
    struct dn_rdn *r = realloc(p->d->rdns, (p->d->nrdns + 1) * sizeof(*r));

    if (r == NULL) {
        return dm_err_set(p->err, DM_ENOMEM, "dn_parse");
    }
    p->d->rdns = r;
    r = &p->d->rdns[p->d->nrdns++];
    memset(r, 0, sizeof(*r));
    r->start = start;
    r->end = start;
    return DM_OK;
}

/* Takes ownership of type and value (freed on failure too). */
static int add_ava(struct dn_parser *p, char *type, char *value, size_t len, int ber)
{
    struct dn_rdn *r = &p->d->rdns[p->d->nrdns - 1];
    struct dn_ava *a = realloc(r->avas, (r->navas + 1) * sizeof(*a));
    int rc;

    if (a == NULL) {
        free(type);
        free(value);
        return dm_err_set(p->err, DM_ENOMEM, "dn_parse");
    }
    r->avas = a;
    a[r->navas].type = type;
    a[r->navas].value = value;
    a[r->navas].value_len = len;
    r->navas++;
    rc = push_ber(p, (unsigned char)ber);
    return rc;
}

/* Parses "type = value" at p->i; on success p->i is at ',' '+' or the end and *sig_end is
 * the offset just after the last significant byte (trailing unescaped spaces excluded). */
static int parse_ava(struct dn_parser *p, size_t *sig_end)
{
    struct buf v;
    size_t tstart, keep = 0;
    char *type = NULL;
    int rc, ber = 0;

    buf_init(&v, DN_BUF_LIMIT);
    skip_spaces(p);
    tstart = p->i;
    while (p->i < p->n &&
           (is_alnum((unsigned char)p->s[p->i]) || p->s[p->i] == '-' || p->s[p->i] == '.')) {
        p->i++;
    }
    if (p->i == tstart) {
        if (p->i < p->n && p->s[p->i] != '=' && p->s[p->i] != ',' && p->s[p->i] != '+') {
            rc = perr(p, p->i, "invalid character in attribute type");
        } else {
            rc = perr(p, p->i, "empty attribute type");
        }
        goto done;
    }
    type = strndup(p->s + tstart, p->i - tstart);
    if (type == NULL) {
        rc = dm_err_set(p->err, DM_ENOMEM, "dn_parse");
        goto done;
    }
    skip_spaces(p);
    if (p->i >= p->n || p->s[p->i] != '=') {
        rc = perr(p, p->i, "missing '='");
        goto done;
    }
    p->i++;
    skip_spaces(p);
    *sig_end = p->i;

    if (p->i < p->n && p->s[p->i] == '#') {
        /* RFC 4514 §2.4: '#' then the hex of the BER encoding; kept as written. */
        size_t vstart = p->i;

        p->i++;
        while (p->i < p->n && hexval((unsigned char)p->s[p->i]) >= 0) {
            p->i++;
        }
        if (p->i == vstart + 1 || (p->i - vstart - 1) % 2 != 0) {
            rc = perr(p, p->i, "bad hex string");
            goto done;
        }
        *sig_end = p->i;
        rc = buf_append(&v, p->s + vstart, p->i - vstart);
        if (rc != DM_OK) {
            rc = dm_err_set(p->err, rc, "dn_parse");
            goto done;
        }
        keep = v.len;
        skip_spaces(p);
        if (p->i < p->n && p->s[p->i] != ',' && p->s[p->i] != '+') {
            rc = perr(p, p->i, "unexpected character after hex string");
            goto done;
        }
        ber = 1;
    } else {
        while (p->i < p->n && p->s[p->i] != ',' && p->s[p->i] != '+') {
            unsigned char c = (unsigned char)p->s[p->i];

            if (c == '\\') {
                unsigned char e;

                if (p->i + 1 >= p->n) {
                    rc = perr(p, p->i, "unterminated escape");
                    goto done;
                }
                e = (unsigned char)p->s[p->i + 1];
                if (hexval(e) >= 0) {
                    if (p->i + 2 >= p->n || hexval((unsigned char)p->s[p->i + 2]) < 0) {
                        rc = perr(p, p->i, "bad hex escape");
                        goto done;
                    }
                    c = (unsigned char)(hexval(e) * 16 + hexval((unsigned char)p->s[p->i + 2]));
                    p->i += 3;
                } else if (is_escapable(e)) {
                    c = e;
                    p->i += 2;
                } else {
                    rc = perr(p, p->i, "invalid escape");
                    goto done;
                }
                rc = buf_append(&v, &c, 1);
                keep = v.len;
                *sig_end = p->i;
            } else {
                rc = buf_append(&v, &c, 1);
                p->i++;
                if (c != ' ') {
                    keep = v.len;
                    *sig_end = p->i;
                }
            }
            if (rc != DM_OK) {
                rc = dm_err_set(p->err, rc, "dn_parse");
                goto done;
            }
        }
    }
    if (v.data == NULL) {
        rc = buf_append(&v, "", 0);
        if (rc != DM_OK) {
            rc = dm_err_set(p->err, rc, "dn_parse");
            goto done;
        }
    }
    v.len = keep;
    v.data[keep] = '\0';
    rc = add_ava(p, type, v.data, keep, ber);
    type = NULL;
    v.data = NULL;
done:
    free(type);
    buf_free(&v);
    return rc;
}

static int parse_dn(struct dn **out, unsigned char **ber_out, const char *s, struct dm_err *err)
{
    struct dn_parser p = {0};
    int rc;

    p.s = s;
    p.n = strlen(s);
    p.err = err;
    p.d = calloc(1, sizeof(*p.d));
    if (p.d == NULL) {
        return dm_err_set(err, DM_ENOMEM, "dn_parse");
    }
    skip_spaces(&p);
    while (p.i < p.n) {
        size_t sig_end = p.i;

        skip_spaces(&p);
        rc = add_rdn(&p, p.i);
        if (rc != DM_OK) {
            goto done;
        }
        for (;;) {
            rc = parse_ava(&p, &sig_end);
            if (rc != DM_OK) {
                goto done;
            }
            if (p.i < p.n && p.s[p.i] == '+') {
                p.i++;
                continue;
            }
            break;
        }
        p.d->rdns[p.d->nrdns - 1].end = sig_end;
        if (p.i < p.n) {
            /* at ',' */
            size_t comma = p.i;

            p.i++;
            skip_spaces(&p);
            if (p.i >= p.n) {
                rc = perr(&p, comma, "trailing ','");
                goto done;
            }
        }
    }
    *out = p.d;
    p.d = NULL;
    if (ber_out != NULL) {
        *ber_out = p.ber;
        p.ber = NULL;
    }
    rc = DM_OK;
done:
    dn_free(p.d);
    free(p.ber);
    return rc;
}

int dn_parse(struct dn **out, const char *s, struct dm_err *err)
{
    return parse_dn(out, NULL, s, err);
}

/* RFC 4514 §2.4 escaping, appended to b. */
static int escape_into(struct buf *b, const unsigned char *v, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = DM_OK;

    for (size_t i = 0; i < len && rc == DM_OK; i++) {
        unsigned char c = v[i];

        if (c < 0x20 || c == 0x7f) {
            char e[3] = {'\\', hex[c >> 4], hex[c & 15]};

            rc = buf_append(b, e, 3);
        } else if (strchr("\"+,;<>\\=", c) != NULL || (i == 0 && (c == '#' || c == ' ')) ||
                   (i == len - 1 && c == ' ')) {
            char e[2] = {'\\', (char)c};

            rc = buf_append(b, e, 2);
        } else {
            rc = buf_append(b, &c, 1);
        }
    }
    return rc;
}

int dn_escape_value(char **out, const char *v, size_t len, struct dm_err *err)
{
    struct buf b;
    int rc;

    buf_init(&b, DN_BUF_LIMIT);
    rc = buf_append(&b, "", 0);
    if (rc == DM_OK) {
        rc = escape_into(&b, (const unsigned char *)v, len);
    }
    if (rc != DM_OK) {
        buf_free(&b);
        return dm_err_set(err, rc, "dn_escape_value: value too large");
    }
    *out = buf_steal(&b);
    return DM_OK;
}

int dn_filter_escape(char **out, const char *v, size_t len, struct dm_err *err)
{
    static const char hex[] = "0123456789abcdef";
    struct buf b;
    int rc;

    buf_init(&b, DN_BUF_LIMIT);
    rc = buf_append(&b, "", 0);
    for (size_t i = 0; i < len && rc == DM_OK; i++) {
        unsigned char c = (unsigned char)v[i];

        if (c < 0x20 || c == 0x7f || c == '*' || c == '(' || c == ')' || c == '\\') {
            char e[3] = {'\\', hex[c >> 4], hex[c & 15]};

            rc = buf_append(&b, e, 3);
        } else {
            rc = buf_append(&b, &c, 1);
        }
    }
    if (rc != DM_OK) {
        buf_free(&b);
        return dm_err_set(err, rc, "dn_filter_escape: value too large");
    }
    *out = buf_steal(&b);
    return DM_OK;
}

/* Normal form of one AVA: lowercased type '=' trimmed, ASCII-lowercased, re-escaped value. */
static int ava_norm(char **out, const struct dn_ava *a, int ber)
{
    const unsigned char *v = (const unsigned char *)a->value;
    size_t lo = 0, hi = a->value_len;
    struct buf b;
    int rc;

    buf_init(&b, DN_BUF_LIMIT);
    rc = buf_append(&b, "", 0);
    for (const char *t = a->type; *t != '\0' && rc == DM_OK; t++) {
        unsigned char c = ascii_lower((unsigned char)*t);

        rc = buf_append(&b, &c, 1);
    }
    if (rc == DM_OK) {
        rc = buf_append(&b, "=", 1);
    }
    if (ber) {
        for (size_t i = 0; i < hi && rc == DM_OK; i++) {
            unsigned char c = ascii_lower(v[i]);

            rc = buf_append(&b, &c, 1);
        }
    } else {
        char *low = NULL;

        while (lo < hi && v[lo] == ' ') {
            lo++;
        }
        while (hi > lo && v[hi - 1] == ' ') {
            hi--;
        }
        low = malloc(hi - lo + 1);
        if (low == NULL) {
            rc = DM_ENOMEM;
        } else {
            for (size_t i = lo; i < hi; i++) {
                low[i - lo] = (char)ascii_lower(v[i]);
            }
            if (rc == DM_OK) {
                rc = escape_into(&b, (const unsigned char *)low, hi - lo);
            }
            free(low);
        }
    }
    if (rc != DM_OK) {
        buf_free(&b);
        return rc;
    }
    *out = buf_steal(&b);
    return DM_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Normal form of one RDN (AVAs sorted, joined by '+'); ber points at the RDN's first flag. */
static int rdn_norm(char **out, const struct dn_rdn *r, const unsigned char *ber)
{
    char **parts = calloc(r->navas ? r->navas : 1, sizeof(*parts));
    struct buf b;
    int rc = DM_OK;

    buf_init(&b, DN_BUF_LIMIT);
    if (parts == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; i < r->navas && rc == DM_OK; i++) {
        rc = ava_norm(&parts[i], &r->avas[i], ber[i]);
    }
    if (rc == DM_OK) {
        qsort(parts, r->navas, sizeof(*parts), cmp_str);
        rc = buf_append(&b, "", 0);
    }
    for (size_t i = 0; i < r->navas && rc == DM_OK; i++) {
        if (i > 0) {
            rc = buf_append(&b, "+", 1);
        }
        if (rc == DM_OK) {
            rc = buf_puts(&b, parts[i]);
        }
    }
    for (size_t i = 0; i < r->navas; i++) {
        free(parts[i]);
    }
    free(parts);
    if (rc != DM_OK) {
        buf_free(&b);
        return rc;
    }
    *out = buf_steal(&b);
    return DM_OK;
}

/* Normal forms of every RDN of d: a new array of d->nrdns strings (free with free_strs). */
static void free_strs(char **v, size_t n)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static int rdns_norm(char ***out, const struct dn *d, const unsigned char *ber)
{
    char **v = calloc(d->nrdns ? d->nrdns : 1, sizeof(*v));
    size_t k = 0;
    int rc = DM_OK;

    if (v == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; i < d->nrdns && rc == DM_OK; i++) {
        rc = rdn_norm(&v[i], &d->rdns[i], ber + k);
        k += d->rdns[i].navas;
    }
    if (rc != DM_OK) {
        free_strs(v, d->nrdns);
        return rc;
    }
    *out = v;
    return DM_OK;
}

/* A parsed DN with the normal form of each RDN. */
struct dn_norm {
    struct dn *d;
    unsigned char *ber;
    char **rdn;
};

static void norm_free(struct dn_norm *n)
{
    if (n->d != NULL) {
        free_strs(n->rdn, n->d->nrdns);
    }
    dn_free(n->d);
    free(n->ber);
    memset(n, 0, sizeof(*n));
}

static int norm_parse(struct dn_norm *out, const char *s, struct dm_err *err)
{
    struct dn_norm n = {0};
    int rc;

    rc = parse_dn(&n.d, &n.ber, s, err);
    if (rc != DM_OK) {
        return rc;
    }
    rc = rdns_norm(&n.rdn, n.d, n.ber);
    if (rc != DM_OK) {
        norm_free(&n);
        return dm_err_set(err, rc, "dn_normalize");
    }
    *out = n;
    return DM_OK;
}

int dn_normalize(char **out, const char *s, struct dm_err *err)
{
    struct dn_norm n = {0};
    struct buf b;
    int rc;

    buf_init(&b, DN_BUF_LIMIT);
    rc = norm_parse(&n, s, err);
    if (rc != DM_OK) {
        return rc;
    }
    rc = buf_append(&b, "", 0);
    for (size_t i = 0; i < n.d->nrdns && rc == DM_OK; i++) {
        if (i > 0) {
            rc = buf_append(&b, ",", 1);
        }
        if (rc == DM_OK) {
            rc = buf_puts(&b, n.rdn[i]);
        }
    }
    norm_free(&n);
    if (rc != DM_OK) {
        buf_free(&b);
        return dm_err_set(err, rc, "dn_normalize");
    }
    *out = buf_steal(&b);
    return DM_OK;
}

/* 1 when the last base->d->nrdns RDNs of dn equal base's. */
static int suffix_matches(const struct dn_norm *dn, const struct dn_norm *base)
{
    size_t nd = dn->d->nrdns, nb = base->d->nrdns;

    if (nb > nd) {
        return 0;
    }
    for (size_t j = 0; j < nb; j++) {
        if (strcmp(dn->rdn[nd - nb + j], base->rdn[j]) != 0) {
            return 0;
        }
    }
    return 1;
}

int dn_is_under(const char *dn, const char *base)
{
    struct dn_norm a = {0}, b = {0};
    int r;

    if (norm_parse(&a, dn, NULL) != DM_OK) {
        return -1;
    }
    if (norm_parse(&b, base, NULL) != DM_OK) {
        norm_free(&a);
        return -1;
    }
    r = suffix_matches(&a, &b);
    norm_free(&a);
    norm_free(&b);
    return r;
}

int dn_rebase(char **out, const char *dn, const char *from_base, const char *to_base,
              struct dm_err *err)
{
    struct dn_norm a = {0}, b = {0};
    struct buf res;
    size_t keep;
    int rc;

    buf_init(&res, DN_BUF_LIMIT);
    rc = norm_parse(&a, dn, err);
    if (rc != DM_OK) {
        goto done;
    }
    rc = norm_parse(&b, from_base, err);
    if (rc != DM_OK) {
        goto done;
    }
    if (!suffix_matches(&a, &b)) {
        dm_err_dn(err, dn);
        rc = dm_err_set(err, DM_ENOTFOUND, "DN is not under base \"%s\"", from_base);
        goto done;
    }
    keep = a.d->nrdns - b.d->nrdns;
    rc = buf_append(&res, "", 0);
    if (rc == DM_OK && keep > 0) {
        /* The kept RDNs are copied as written, separators and escapes included. */
        size_t start = a.d->rdns[0].start, end = a.d->rdns[keep - 1].end;

        rc = buf_append(&res, dn + start, end - start);
        if (rc == DM_OK && to_base[0] != '\0') {
            rc = buf_append(&res, ",", 1);
        }
    }
    if (rc == DM_OK) {
        rc = buf_puts(&res, to_base);
    }
    if (rc != DM_OK) {
        rc = dm_err_set(err, rc, "dn_rebase");
        goto done;
    }
    *out = buf_steal(&res);
    rc = DM_OK;
done:
    buf_free(&res);
    norm_free(&a);
    norm_free(&b);
    return rc;
}
