#include <config.h>
#include "schema/transform_regex.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent/util/err.h"

/* A faster exact matcher for simple regexes.
 *
 * glibc's regexec() costs microseconds per call (state sets, and a backward pass when
 * groups are asked for). Most map regexes are simple: "[^0-9+]", "^uid=([^,]+),.*$". Such a
 * pattern is compiled a second time into a list of atoms (a byte set with a quantifier
 * 1, ?, * or +), optional ^ and $, and at most 9 non-nested, unquantified groups of atoms.
 * It is used only when its match is unique at every start position: every quantified atom
 * is the last one or is followed by an unquantified atom whose set is disjoint from its own,
 * so a greedy scan finds the one match POSIX leftmost-longest would report, with the same
 * group offsets. The byte sets are taken from regcomp() itself (each 1-byte string probed),
 * so class and range semantics cannot differ. Anything else (alternation, nesting, {m,n},
 * back-references, GNU escapes, multibyte locales) keeps using regexec(). */

#define FASTRE_MAX_ATOMS 32
#define FASTRE_MAX_SCAN 4096 /* unanchored subjects longer than this use regexec() */

struct fastre_atom {
    unsigned char set[32]; /* bit b: byte b matches */
    char q;                /* '1', '?', '*', '+' */
};

struct transform_fastre {
    size_t natoms;
    int bol, eol;
    size_t ngroups;
    size_t gs[9], ge[9]; /* group k spans atoms [gs[k], ge[k]) */
    struct fastre_atom atoms[FASTRE_MAX_ATOMS];
};

static int fastre_in(const struct fastre_atom *a, unsigned char c)
{
    return (a->set[c >> 3] >> (c & 7)) & 1;
}

/* Fills a->set for a "." or "[...]" atom by probing every non-NUL byte. */
static int fastre_probe(struct fastre_atom *a, const char *atom, size_t len)
{
    char pat[256];
    regex_t re;

    if (len >= sizeof(pat)) {
        return -1;
    }
    memcpy(pat, atom, len);
    pat[len] = '\0';
    if (regcomp(&re, pat, REG_EXTENDED) != 0) {
        return -1;
    }
    for (int c = 1; c < 256; c++) {
        char subj[2] = {(char)c, '\0'};
        regmatch_t pm[1];

        if (regexec(&re, subj, 1, pm, 0) == 0 && pm[0].rm_so == 0 && pm[0].rm_eo == 1) {
            a->set[c >> 3] = (unsigned char)(a->set[c >> 3] | (1u << (c & 7)));
        }
    }
    regfree(&re);
    return 0;
}

/* Builds the fast matcher for pattern p (already accepted by regcomp() as re), or returns
 * NULL when the pattern is outside the simple class (or on allocation failure). */
static struct transform_fastre *fastre_compile(const char *p, const regex_t *re)
{
    struct transform_fastre *f;
    size_t i = 0;
    int ingroup = 0;

    if (MB_CUR_MAX != 1) {
        return NULL;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    if (p[0] == '^') {
        f->bol = 1;
        i++;
    }
    while (p[i] != '\0') {
        struct fastre_atom *a;
        unsigned char c = (unsigned char)p[i];

        if (c == '$') {
            if (p[i + 1] != '\0' || ingroup) {
                goto no;
            }
            f->eol = 1;
            break;
        }
        if (c == '(') {
            if (ingroup || f->ngroups >= 9) {
                goto no;
            }
            ingroup = 1;
            f->gs[f->ngroups] = f->natoms;
            i++;
            continue;
        }
        if (c == ')') {
            if (!ingroup || f->natoms == f->gs[f->ngroups]) {
                goto no;
            }
            if (p[i + 1] == '*' || p[i + 1] == '+' || p[i + 1] == '?' || p[i + 1] == '{') {
                goto no;
            }
            ingroup = 0;
            f->ge[f->ngroups++] = f->natoms;
            i++;
            continue;
        }
        if (f->natoms >= FASTRE_MAX_ATOMS) {
            goto no;
        }
        a = &f->atoms[f->natoms];
        if (c == '.') {
            if (fastre_probe(a, p + i, 1) != 0) {
                goto no;
            }
            i++;
        } else if (c == '[') {
            size_t j = i + 1;

            if (p[j] == '^') {
                j++;
            }
            if (p[j] == ']') {
                j++;
            }
            while (p[j] != '\0' && p[j] != ']') {
                if (p[j] == '[') {
                    goto no;
                }
                j++;
            }
            if (p[j] != ']' || fastre_probe(a, p + i, j + 1 - i) != 0) {
                goto no;
            }
            i = j + 1;
        } else if (c == '\\') {
            unsigned char e = (unsigned char)p[i + 1];

            if (e == '\0' || strchr(".[]()*+?{}|^$\\", e) == NULL) {
                goto no;
            }
            a->set[e >> 3] = (unsigned char)(1u << (e & 7));
            i += 2;
        } else if (strchr("|{}]*+?^", c) != NULL) {
            goto no;
        } else {
            a->set[c >> 3] = (unsigned char)(1u << (c & 7));
            i++;
        }
        a->q = '1';
        if (p[i] == '*' || p[i] == '+' || p[i] == '?') {
            a->q = p[i];
            i++;
        }
        if (p[i] == '*' || p[i] == '+' || p[i] == '?' || p[i] == '{') {
            goto no;
        }
        f->natoms++;
    }
    if (ingroup || f->natoms == 0 || f->ngroups != re->re_nsub) {
        goto no;
    }
    /* unique match per start: a quantified atom is last or followed by a disjoint
     * unquantified one */
    for (size_t k = 0; k + 1 < f->natoms; k++) {
        if (f->atoms[k].q == '1') {
            continue;
        }
        if (f->atoms[k + 1].q != '1') {
            goto no;
        }
        for (size_t b = 0; b < 32; b++) {
            if (f->atoms[k].set[b] & f->atoms[k + 1].set[b]) {
                goto no;
            }
        }
    }
    return f;
no:
    free(f);
    return NULL;
}

/* Match at start position p of s (len bytes, no NUL inside); pos[] gets atom offsets. */
static int fastre_at(const struct transform_fastre *f, const unsigned char *s, size_t len, size_t p,
                     size_t *pos)
{
    for (size_t k = 0; k < f->natoms; k++) {
        const struct fastre_atom *a = &f->atoms[k];

        pos[k] = p;
        if (a->q == '1' || a->q == '+') {
            if (p >= len || !fastre_in(a, s[p])) {
                return 0;
            }
            p++;
        }
        if (a->q == '?') {
            if (p < len && fastre_in(a, s[p])) {
                p++;
            }
        } else if (a->q != '1') {
            while (p < len && fastre_in(a, s[p])) {
                p++;
            }
        }
    }
    pos[f->natoms] = p;
    return !f->eol || p == len;
}

/* As regexec(re, s, ng + 1, pm, notbol ? REG_NOTBOL : 0) on the NUL-terminated s: 0 on a
 * match, REG_NOMATCH, or -1 when the subject is too long for the scan (use regexec). */
static int fastre_exec(const struct transform_fastre *f, const char *str, size_t ng, regmatch_t *pm,
                       int notbol)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str), pos[FASTRE_MAX_ATOMS + 1];

    if (f->bol) {
        if (notbol || !fastre_at(f, s, len, 0, pos)) {
            return REG_NOMATCH;
        }
    } else {
        const struct fastre_atom *a0 = &f->atoms[0];
        int need0 = a0->q == '1' || a0->q == '+'; /* a match starts with a byte of a0 */
        size_t p;

        if (len > FASTRE_MAX_SCAN) {
            return -1;
        }
        for (p = 0; p <= len; p++) {
            if (need0 && (p == len || !fastre_in(a0, s[p]))) {
                continue;
            }
            if (fastre_at(f, s, len, p, pos)) {
                break;
            }
        }
        if (p > len) {
            return REG_NOMATCH;
        }
    }
    pm[0].rm_so = (regoff_t)pos[0];
    pm[0].rm_eo = (regoff_t)pos[f->natoms];
    for (size_t g = 0; g < ng && g < f->ngroups; g++) {
        pm[g + 1].rm_so = (regoff_t)pos[f->gs[g]];
        pm[g + 1].rm_eo = (regoff_t)pos[f->ge[g]];
    }
    return 0;
}

static uint32_t xorshift(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Writes into subj (room for 64 bytes + NUL) a string the atoms of f match (a random member
 * of each set, random repeat counts), then maybe changes one byte to one of alpha. */
static void fastre_sample(char *subj, const struct transform_fastre *f, const char *alpha,
                          size_t na, uint32_t *x)
{
    size_t n = 0;

    for (size_t k = 0; k < f->natoms; k++) {
        const struct fastre_atom *a = &f->atoms[k];
        size_t reps = a->q == '1' ? 1 : a->q == '?' ? xorshift(x) % 2 : xorshift(x) % 3;

        reps += a->q == '+';
        for (size_t r = 0; r < reps && n < 64; r++) {
            unsigned start = xorshift(x) % 255;

            for (unsigned c = 0; c < 255; c++) {
                unsigned char b = (unsigned char)(1 + (start + c) % 255);

                if (fastre_in(a, b)) {
                    subj[n++] = (char)b;
                    break;
                }
            }
        }
    }
    subj[n] = '\0';
    if (n > 0 && xorshift(x) % 2) {
        subj[xorshift(x) % n] = alpha[xorshift(x) % na];
    }
}

/* Cross-checks f against regexec() on a few hundred short strings: random ones made of the
 * pattern's own bytes and some others, and ones shaped like the pattern (fixed
 * pseudo-random sequence). 0 when they all agree: a safety net so that a pattern the
 * parser misjudged keeps using regexec(). */
static int fastre_selfcheck(const struct transform_fastre *f, const regex_t *re, const char *p)
{
    char alpha[48];
    size_t na = 0, ng = re->re_nsub < 9 ? re->re_nsub : 9;
    uint32_t x = 2463534242u;

    for (const char *q = "a0,= \n.Z"; *q != '\0'; q++) {
        alpha[na++] = *q;
    }
    for (; *p != '\0' && na < sizeof(alpha); p++) {
        if (strchr("[]()*+?{}|^$\\", *p) == NULL) {
            alpha[na++] = *p;
        }
    }
    for (int t = 0; t < 600; t++) {
        char subj[72];
        size_t n;
        regmatch_t a[10], b[10];
        int ra, rb, notbol = (t & 7) == 7;

        if (t % 2 == 0) {
            fastre_sample(subj, f, alpha, na, &x);
        } else {
            n = xorshift(&x) % 13;
            for (size_t k = 0; k < n; k++) {
                subj[k] = alpha[xorshift(&x) % na];
            }
            subj[n] = '\0';
        }
        ra = regexec(re, subj, ng + 1, a, notbol ? REG_NOTBOL : 0);
        rb = fastre_exec(f, subj, ng, b, notbol);
        if ((ra == 0) != (rb == 0)) {
            return -1;
        }
        for (size_t g = 0; ra == 0 && g <= ng; g++) {
            if (a[g].rm_so != b[g].rm_so || a[g].rm_eo != b[g].rm_eo) {
                return -1;
            }
        }
    }
    return 0;
}

int transform_regex_compile(struct transform_regex *out, const char *pattern, char *why,
                            size_t whylen)
{
    int rc;

    memset(out, 0, sizeof(*out));
    rc = regcomp(&out->re, pattern, REG_EXTENDED);
    if (rc != 0) {
        char msg[128];

        regerror(rc, &out->re, msg, sizeof(msg));
        snprintf(why, whylen, "bad regular expression \"%.60s\": %s", pattern, msg);
        memset(out, 0, sizeof(*out));
        return DM_EINVAL;
    }
    out->compiled = 1;
    out->fast = fastre_compile(pattern, &out->re);
    if (out->fast != NULL && fastre_selfcheck(out->fast, &out->re, pattern) != 0) {
        free(out->fast);
        out->fast = NULL;
    }
    return DM_OK;
}

size_t transform_regex_ngroups(const struct transform_regex *r)
{
    return r->re.re_nsub;
}

int transform_regex_exec(const struct transform_regex *r, const char *subj, size_t ng,
                         regmatch_t *pm, int notbol)
{
    int hit = r->fast != NULL ? fastre_exec(r->fast, subj, ng, pm, notbol) : -1;

    if (hit < 0) {
        hit = regexec(&r->re, subj, ng + 1, pm, notbol ? REG_NOTBOL : 0);
    }
    return hit;
}

int transform_regex_is_fast(const struct transform_regex *r)
{
    return r->fast != NULL;
}

void transform_regex_clear(struct transform_regex *r)
{
    if (r == NULL) {
        return;
    }
    if (r->compiled) {
        regfree(&r->re);
    }
    free(r->fast);
    memset(r, 0, sizeof(*r));
}
