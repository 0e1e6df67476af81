#include <config.h>
#include "schema/transform.h"
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Transform steps of the map language (see transform.h). Each step is a plain struct after
 * transform_compile(): regexes are compiled with regcomp() once, lookup tables sorted for
 * bsearch(), date formats reduced to enums, so transform_run() is pure C per value.
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
    if (s->has_re) {
        regfree(&s->re);
    }
    free(s->repl);
    free(s->text);
    for (size_t i = 0; i < s->ntable; i++) {
        free(s->table[i].key);
        free(s->table[i].val);
    }
    free(s->table);
    free(s->set_val);
    free(s->clear_val);
    free(s->fast);
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

static void ascii_lower(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 'A' && p[i] <= 'Z') {
            p[i] = (unsigned char)(p[i] - 'A' + 'a');
        }
    }
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
            return why_set(why, whylen, "%s: unknown option \"%.40s\"", op, k);
        }
    }
    return DM_OK;
}

/* ---- a faster exact matcher for simple regexes ----
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

static int compile_regex(struct transform_step *s, const json_t *arg, char *why, size_t whylen)
{
    static const char *const keys[] = {"match", "replace", "global"};
    const json_t *m = json_object_get(arg, "match"), *r = json_object_get(arg, "replace");
    const json_t *g = json_object_get(arg, "global");
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
    rc = regcomp(&s->re, json_string_value(m), REG_EXTENDED);
    if (rc != 0) {
        char msg[128];

        regerror(rc, &s->re, msg, sizeof(msg));
        return why_set(why, whylen, "regex: bad regular expression \"%.60s\": %s",
                       json_string_value(m), msg);
    }
    s->has_re = 1;
    for (const char *p = json_string_value(r); *p != '\0'; p++) {
        if (*p == '\\' && p[1] >= '0' && p[1] <= '9' && (size_t)(p[1] - '0') > s->re.re_nsub) {
            return why_set(why, whylen,
                           "regex: replace refers to group \\%c but the "
                           "expression has %zu",
                           p[1], s->re.re_nsub);
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
    s->fast = fastre_compile(json_string_value(m), &s->re);
    if (s->fast != NULL && fastre_selfcheck(s->fast, &s->re, json_string_value(m)) != 0) {
        free(s->fast);
        s->fast = NULL;
    }
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
            rc = why_set(why, whylen,
                         "unknown transform \"%.64s\" (with an argument: regex, split, join, "
                         "lookup, default, date, flag)",
                         name);
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

void transform_vals_reset(struct transform_vals *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].data);
    }
    l->n = 0;
}

void transform_vals_free(struct transform_vals *l)
{
    transform_vals_reset(l);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Appends, taking ownership of data (malloc'd, len bytes + NUL). */
static int vals_take(struct transform_vals *l, unsigned char *data, size_t len)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        struct dm_val *nv = realloc(l->v, nc * sizeof(*nv));

        if (nv == NULL) {
            free(data);
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

int transform_vals_add(struct transform_vals *l, const void *data, size_t len)
{
    unsigned char *p;

    if (len > TRANSFORM_VALUE_LIMIT) {
        return DM_ELIMIT;
    }
    p = malloc(len + 1);
    if (p == NULL) {
        return DM_ENOMEM;
    }
    memcpy(p, data, len);
    p[len] = '\0';
    return vals_take(l, p, len);
}

/* Appends unless empty (empty results are dropped). */
static int add_nonempty(struct transform_vals *l, const void *data, size_t len)
{
    return len == 0 ? DM_OK : transform_vals_add(l, data, len);
}

static int add_buf(struct transform_vals *l, struct buf *b)
{
    size_t len = b->len;

    if (len == 0) {
        return DM_OK;
    }
    return vals_take(l, (unsigned char *)buf_steal(b), len);
}

/* ---- helpers ---- */

int transform_guid_to_string(char out[37], const unsigned char *b, size_t n)
{
    if (n != 16) {
        return DM_EINVAL;
    }
    /* MS-DTYP 2.3.4.2: Data1..Data3 little-endian, Data4 in byte order */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[3],
             b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return DM_OK;
}

int transform_sid_to_string(char *out, size_t outlen, const unsigned char *b, size_t n)
{
    uint64_t auth = 0;
    size_t cnt, pos;
    int w;

    /* MS-DTYP 2.4.2.2: revision, sub-authority count (<= 15), 48-bit big-endian
     * authority, then count little-endian uint32 */
    if (n < 8 || b[0] != 1 || b[1] > 15 || n != 8 + 4 * (size_t)b[1]) {
        return DM_EINVAL;
    }
    cnt = b[1];
    for (int i = 2; i < 8; i++) {
        auth = (auth << 8) | b[i];
    }
    if (auth < ((uint64_t)1 << 32)) {
        w = snprintf(out, outlen, "S-%u-%" PRIu64, b[0], auth);
    } else {
        w = snprintf(out, outlen, "S-%u-0x%012" PRIX64, b[0], auth);
    }
    if (w < 0 || (size_t)w >= outlen) {
        return DM_EINVAL;
    }
    pos = (size_t)w;
    for (size_t i = 0; i < cnt; i++) {
        const unsigned char *p = b + 8 + 4 * i;
        uint32_t sub =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;

        w = snprintf(out + pos, outlen - pos, "-%" PRIu32, sub);
        if (w < 0 || (size_t)w >= outlen - pos) {
            return DM_EINVAL;
        }
        pos += (size_t)w;
    }
    return DM_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* n decimal digits at s[*i] into *v; -1 when not all digits. */
static int digits(int *v, const char *s, size_t len, size_t *i, int n)
{
    int x = 0;

    if (*i + (size_t)n > len) {
        return -1;
    }
    for (int k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];

        if (c < '0' || c > '9') {
            return -1;
        }
        x = x * 10 + (c - '0');
    }
    *i += (size_t)n;
    *v = x;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

static int make_time(int64_t *out, int y, int mo, int d, int h, int mi, int sec, int off_min)
{
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60) {
        return DM_EINVAL;
    }
    if (sec == 60) {
        sec = 59; /* leap second: clamp, time_t has no room for it */
    }
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
           (int64_t)off_min * 60;
    return DM_OK;
}

/* Zone at s[*i]: Z, or +-HH[[:]MM] (colon allowed when iso). */
static int parse_zone(int *off_min, const char *s, size_t len, size_t *i, int iso)
{
    int sign, hh = 0, mm = 0;

    if (*i < len && (s[*i] == 'Z' || (iso && s[*i] == 'z'))) {
        (*i)++;
        *off_min = 0;
        return 0;
    }
    if (*i >= len || (s[*i] != '+' && s[*i] != '-')) {
        return -1;
    }
    sign = s[*i] == '-' ? -1 : 1;
    (*i)++;
    if (digits(&hh, s, len, i, 2) != 0 || hh > 23) {
        return -1;
    }
    if (iso && *i < len && s[*i] == ':') {
        (*i)++;
    }
    if (*i < len && digits(&mm, s, len, i, 2) != 0) {
        return -1;
    }
    if (mm > 59) {
        return -1;
    }
    *off_min = sign * (hh * 60 + mm);
    return 0;
}

static void skip_fraction(const char *s, size_t len, size_t *i)
{
    if (*i < len && (s[*i] == '.' || s[*i] == ',') && *i + 1 < len && s[*i + 1] >= '0' &&
        s[*i + 1] <= '9') {
        (*i)++;
        while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
            (*i)++;
        }
    }
}

int transform_parse_generalized(int64_t *unix_s, const char *s, size_t len)
{
    int y, mo, d, h, mi = 0, sec = 0, off = 0;
    size_t i = 0;

    if (digits(&y, s, len, &i, 4) || digits(&mo, s, len, &i, 2) || digits(&d, s, len, &i, 2) ||
        digits(&h, s, len, &i, 2)) {
        return DM_EINVAL;
    }
    /* RFC 4517 3.3.13: minutes and seconds optional; a fraction applies to the last
     * field given (we keep whole seconds only, so it is dropped) */
    if (i < len && s[i] >= '0' && s[i] <= '9') {
        if (digits(&mi, s, len, &i, 2)) {
            return DM_EINVAL;
        }
        if (i < len && s[i] >= '0' && s[i] <= '9' && digits(&sec, s, len, &i, 2)) {
            return DM_EINVAL;
        }
    }
    skip_fraction(s, len, &i);
    if (parse_zone(&off, s, len, &i, 0) != 0 || i != len) {
        return DM_EINVAL;
    }
    return make_time(unix_s, y, mo, d, h, mi, sec, off);
}

int transform_parse_iso8601(int64_t *unix_s, const char *s, size_t len)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;
    size_t i = 0;

    if (digits(&y, s, len, &i, 4) || i >= len || s[i++] != '-' || digits(&mo, s, len, &i, 2) ||
        i >= len || s[i++] != '-' || digits(&d, s, len, &i, 2)) {
        return DM_EINVAL;
    }
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') {
            return DM_EINVAL;
        }
        i++;
        if (digits(&h, s, len, &i, 2) || i >= len || s[i++] != ':' || digits(&mi, s, len, &i, 2)) {
            return DM_EINVAL;
        }
        if (i < len && s[i] == ':') {
            i++;
            if (digits(&sec, s, len, &i, 2)) {
                return DM_EINVAL;
            }
            skip_fraction(s, len, &i);
        }
        if (i < len && parse_zone(&off, s, len, &i, 1) != 0) {
            return DM_EINVAL;
        }
        if (i != len) {
            return DM_EINVAL;
        }
    }
    return make_time(unix_s, y, mo, d, h, mi, sec, off);
}

int transform_parse_int(int64_t *v, const char *s, size_t len)
{
    char tmp[32], *end = NULL;
    long long x;

    if (len == 0 || len >= sizeof(tmp)) {
        return DM_EINVAL;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (!((tmp[0] >= '0' && tmp[0] <= '9') ||
          ((tmp[0] == '-' || tmp[0] == '+') && tmp[1] >= '0' && tmp[1] <= '9'))) {
        return DM_EINVAL;
    }
    errno = 0;
    x = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0') {
        return DM_EINVAL;
    }
    *v = (int64_t)x;
    return DM_OK;
}

/* FILETIME: 100 ns ticks since 1601-01-01 UTC; 11644473600 s separate the epochs
 * (ldap-ad.md 2.7). */
#define FILETIME_EPOCH_DIFF INT64_C(11644473600)

int transform_parse_filetime(int64_t *unix_s, int *never, const char *s, size_t len)
{
    int64_t ft;

    if (transform_parse_int(&ft, s, len) != DM_OK) {
        return DM_EINVAL;
    }
    *never = 0;
    if (ft == 0 || ft == INT64_MAX) {
        /* accountExpires: 0 and 0x7FFFFFFFFFFFFFFF mean "never" */
        *never = 1;
        *unix_s = 0;
        return DM_OK;
    }
    if (ft < 0) {
        return DM_EINVAL;
    }
    *unix_s = ft / 10000000 - FILETIME_EPOCH_DIFF;
    return DM_OK;
}

void transform_format_time(char *out, size_t outlen, int64_t unix_s, enum transform_datefmt fmt)
{
    int64_t days = unix_s / 86400, rem = unix_s % 86400, y;
    unsigned m, d;

    if (rem < 0) {
        rem += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    switch (fmt) {
    case TRANSFORM_DATE_GENERALIZED:
        snprintf(out, outlen, "%04" PRId64 "%02u%02u%02d%02d%02dZ", y, m, d, (int)(rem / 3600),
                 (int)(rem / 60 % 60), (int)(rem % 60));
        break;
    case TRANSFORM_DATE_DAY:
        snprintf(out, outlen, "%04" PRId64 "-%02u-%02u", y, m, d);
        break;
    case TRANSFORM_DATE_UNIX:
        snprintf(out, outlen, "%" PRId64, unix_s);
        break;
    case TRANSFORM_DATE_FILETIME:
        snprintf(out, outlen, "%" PRId64, (unix_s + FILETIME_EPOCH_DIFF) * 10000000);
        break;
    case TRANSFORM_DATE_ISO8601:
    default:
        snprintf(out, outlen, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02dZ", y, m, d, (int)(rem / 3600),
                 (int)(rem / 60 % 60), (int)(rem % 60));
        break;
    }
}

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
    unsigned char *p = malloc(v->len + 1);

    if (p == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = v->data[i];

        if (upper && c >= 'a' && c <= 'z') {
            c = (unsigned char)(c - 'a' + 'A');
        } else if (!upper && c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c - 'A' + 'a');
        }
        p[i] = c;
    }
    p[v->len] = '\0';
    if (v->len == 0) {
        free(p);
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
    if (hi - lo >= 7 && strncasecmp((const char *)p + lo, "mailto:", 7) == 0) {
        lo += 7;
    }
    if (hi - lo >= 2 && p[lo] == '<' && p[hi - 1] == '>') {
        lo++;
        hi--;
    }
    while (lo < hi && is_space(p[lo])) {
        lo++;
    }
    while (hi > lo && is_space(p[hi - 1])) {
        hi--;
    }
    n = hi - lo;
    if (n == 0) {
        return DM_OK;
    }
    r = malloc(n + 1);
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

/* Appends the replacement for one match (groups \0..\9, "\\" a backslash). */
static int regex_repl(struct buf *b, const char *repl, const char *subj, const regmatch_t *pm,
                      size_t ngroups)
{
    int rc = DM_OK;

    for (const char *r = repl; *r != '\0' && rc == DM_OK; r++) {
        if (*r == '\\' && r[1] >= '0' && r[1] <= '9') {
            size_t g = (size_t)(r[1] - '0');

            if (g <= ngroups && pm[g].rm_so >= 0) {
                rc = buf_append(b, subj + pm[g].rm_so, (size_t)(pm[g].rm_eo - pm[g].rm_so));
            }
            r++;
        } else if (*r == '\\' && r[1] != '\0') {
            rc = buf_append(b, r + 1, 1);
            r++;
        } else {
            rc = buf_append(b, r, 1);
        }
    }
    return rc;
}

static int run_regex(struct transform_vals *out, const struct transform_step *s,
                     const struct dm_val *v)
{
    regmatch_t pm[10];
    const char *subj = (const char *)v->data;
    size_t off = 0, ng = s->re.re_nsub < 9 ? s->re.re_nsub : 9;
    struct buf b;
    int rc = DM_OK, matched = 0;

    /* values are NUL-terminated; a binary value with an embedded NUL is matched only up
     * to it and the rest is kept */
    buf_init(&b, TRANSFORM_VALUE_LIMIT);
    rc = buf_append(&b, "", 0);
    while (rc == DM_OK && off <= v->len) {
        int eflags = off > 0 ? REG_NOTBOL : 0;
        int hit = s->fast != NULL ? fastre_exec(s->fast, subj + off, ng, pm, off > 0) : -1;

        if (hit < 0) {
            hit = regexec(&s->re, subj + off, ng + 1, pm, eflags);
        }
        if (hit != 0) {
            break;
        }
        matched = 1;
        rc = buf_append(&b, subj + off, (size_t)pm[0].rm_so);
        if (rc == DM_OK) {
            /* offsets relative to subj + off */
            regmatch_t abs[10];

            for (size_t g = 0; g <= ng; g++) {
                abs[g] = pm[g];
            }
            rc = regex_repl(&b, s->repl, subj + off, abs, ng);
        }
        if (rc != DM_OK) {
            break;
        }
        if (pm[0].rm_eo == pm[0].rm_so) {
            /* empty match: copy one byte and move on, or we would loop forever */
            if (off + (size_t)pm[0].rm_eo < v->len) {
                rc = buf_append(&b, subj + off + pm[0].rm_eo, 1);
            }
            off += (size_t)pm[0].rm_eo + 1;
        } else {
            off += (size_t)pm[0].rm_eo;
        }
        if (!s->global) {
            break;
        }
    }
    if (rc == DM_OK && off < v->len) {
        rc = buf_append(&b, subj + off, v->len - off);
    }
    if (rc == DM_OK) {
        rc = matched ? add_buf(out, &b) : add_nonempty(out, v->data, v->len);
    }
    buf_free(&b);
    return rc;
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
    struct buf b;
    int rc = DM_OK;

    if (in->n == 0) {
        return DM_OK;
    }
    buf_init(&b, TRANSFORM_VALUE_LIMIT);
    for (size_t i = 0; i < in->n && rc == DM_OK; i++) {
        if (i > 0) {
            rc = buf_append(&b, s->text, s->text_len);
        }
        if (rc == DM_OK) {
            rc = buf_append(&b, in->v[i].data, in->v[i].len);
        }
    }
    if (rc == DM_OK) {
        rc = add_buf(out, &b);
    }
    buf_free(&b);
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
    free(l->v[i].data);
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
                for (size_t k = 0; k < v->len; k++) {
                    unsigned char c = v->data[k];

                    if (s->op == TRANSFORM_UPPER && c >= 'a' && c <= 'z') {
                        v->data[k] = (unsigned char)(c - 'a' + 'A');
                    } else if (s->op == TRANSFORM_LOWER && c >= 'A' && c <= 'Z') {
                        v->data[k] = (unsigned char)(c - 'A' + 'a');
                    }
                }
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
