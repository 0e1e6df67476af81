#include <config.h>
#include "jsonpos.h"
#include "buf.h"
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A recursive-descent scanner over the raw text. It does not build values; it only walks
 * the structure, keeping the current key path in a growable buffer, and records one
 * (path, line, col) pair per object member and array item, plus "" for the root value.
 * Lookups sort the pairs once and use bsearch.
 */

#define JP_MAX_DEPTH 256
#define JP_MAX_PATH (64 * 1024)

struct jp_item {
    char *path;
    int line;
    int col;
    size_t seq; /* document order, so the first of duplicate paths wins */
};

struct jsonpos {
    struct jp_item *items;
    size_t n;
    size_t cap;
};

struct jp_scan {
    const char *p;
    const char *end;
    int line;
    int col;
    char *path;
    size_t plen;
    size_t pcap;
    struct jsonpos *jp;
    struct dm_err *err;
};

static int scan_value(struct jp_scan *s, int depth);

static int scan_fail(struct jp_scan *s, const char *what)
{
    return dm_err_set(s->err, DM_EINVAL, "%d:%d: %s", s->line, s->col, what);
}

/* Advances one byte, keeping line:col. CRLF counts as one line break: the '\r' is an
 * ordinary byte and the '\n' starts the next line. */
static void advance(struct jp_scan *s)
{
    if (*s->p == '\n') {
        s->line++;
        s->col = 1;
    } else {
        s->col++;
    }
    s->p++;
}

static void skip_ws(struct jp_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        advance(s);
    }
}

static int path_reserve(struct jp_scan *s, size_t extra)
{
    size_t need = s->plen + extra + 1;
    char *p;
    size_t n;

    if (need > JP_MAX_PATH) {
        return scan_fail(s, "key path too long");
    }
    if (need <= s->pcap) {
        return DM_OK;
    }
    n = s->pcap ? s->pcap : 128;
    while (n < need) {
        n *= 2;
    }
    p = realloc(s->path, n);
    if (p == NULL) {
        return dm_err_set(s->err, DM_ENOMEM, "jsonpos path");
    }
    s->path = p;
    s->pcap = n;
    return DM_OK;
}

static int path_append(struct jp_scan *s, const char *data, size_t n)
{
    int rc = path_reserve(s, n);

    if (rc != DM_OK) {
        return rc;
    }
    memcpy(s->path + s->plen, data, n);
    s->plen += n;
    s->path[s->plen] = '\0';
    return DM_OK;
}

static int record(struct jp_scan *s, int line, int col)
{
    struct jsonpos *jp = s->jp;
    struct jp_item *it;

    if (jp->n == jp->cap) {
        size_t n = jp->cap ? jp->cap * 2 : 32;
        struct jp_item *v = realloc(jp->items, n * sizeof(*v));
        if (v == NULL) {
            return dm_err_set(s->err, DM_ENOMEM, "jsonpos items");
        }
        jp->items = v;
        jp->cap = n;
    }
    it = &jp->items[jp->n];
    it->path = strdup(s->plen ? s->path : "");
    if (it->path == NULL) {
        return dm_err_set(s->err, DM_ENOMEM, "jsonpos path");
    }
    it->line = line;
    it->col = col;
    it->seq = jp->n;
    jp->n++;
    return DM_OK;
}

static int hexval(char c)
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

static int read_hex4(struct jp_scan *s, unsigned *out)
{
    unsigned v = 0;

    if (s->end - s->p < 4) {
        return scan_fail(s, "truncated \\u escape");
    }
    for (int i = 0; i < 4; i++) {
        int h = hexval(*s->p);
        if (h < 0) {
            return scan_fail(s, "bad \\u escape");
        }
        v = v * 16 + (unsigned)h;
        advance(s);
    }
    *out = v;
    return DM_OK;
}

/* Encodes code point cp as UTF-8 into b; returns the length. */
static size_t utf8_put(char *b, unsigned cp)
{
    if (cp < 0x80) {
        b[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Scans a string at s->p (the opening quote). When keep is set, the decoded bytes are
 * appended to the path buffer (an object key). */
static int scan_string(struct jp_scan *s, int keep)
{
    int rc;

    advance(s); /* opening quote */
    for (;;) {
        char c;
        if (s->p >= s->end) {
            return scan_fail(s, "unterminated string");
        }
        c = *s->p;
        if (c == '"') {
            advance(s);
            return DM_OK;
        }
        if ((unsigned char)c < 0x20) {
            return scan_fail(s, "control character in string");
        }
        if (c != '\\') {
            if (keep) {
                rc = path_append(s, &c, 1);
                if (rc != DM_OK) {
                    return rc;
                }
            }
            advance(s);
            continue;
        }
        advance(s);
        if (s->p >= s->end) {
            return scan_fail(s, "unterminated string");
        }
        c = *s->p;
        if (c == 'u') {
            unsigned cp, lo;
            char b[4];
            size_t n;

            advance(s);
            rc = read_hex4(s, &cp);
            if (rc != DM_OK) {
                return rc;
            }
            /* A UTF-16 surrogate pair is two escapes: \uD83D\uDE00. */
            if (cp >= 0xD800 && cp <= 0xDBFF && s->end - s->p >= 6 && s->p[0] == '\\' &&
                s->p[1] == 'u') {
                advance(s);
                advance(s);
                rc = read_hex4(s, &lo);
                if (rc != DM_OK) {
                    return rc;
                }
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
            }
            if (keep) {
                n = utf8_put(b, cp);
                rc = path_append(s, b, n);
                if (rc != DM_OK) {
                    return rc;
                }
            }
            continue;
        }
        switch (c) {
        case '"':
        case '\\':
        case '/':
            break;
        case 'b':
            c = '\b';
            break;
        case 'f':
            c = '\f';
            break;
        case 'n':
            c = '\n';
            break;
        case 'r':
            c = '\r';
            break;
        case 't':
            c = '\t';
            break;
        default:
            return scan_fail(s, "bad escape in string");
        }
        if (keep) {
            rc = path_append(s, &c, 1);
            if (rc != DM_OK) {
                return rc;
            }
        }
        advance(s);
    }
}

static int scan_object(struct jp_scan *s, int depth)
{
    size_t base = s->plen;
    int rc, line, col;

    advance(s); /* '{' */
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        advance(s);
        return DM_OK;
    }
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"') {
            return scan_fail(s, "expected a key string");
        }
        line = s->line;
        col = s->col;
        if (base > 0) {
            rc = path_append(s, ".", 1);
            if (rc != DM_OK) {
                return rc;
            }
        }
        rc = scan_string(s, 1);
        if (rc != DM_OK) {
            return rc;
        }
        rc = record(s, line, col);
        if (rc != DM_OK) {
            return rc;
        }
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':') {
            return scan_fail(s, "expected ':'");
        }
        advance(s);
        rc = scan_value(s, depth + 1);
        if (rc != DM_OK) {
            return rc;
        }
        s->plen = base;
        s->path[base] = '\0';
        skip_ws(s);
        if (s->p >= s->end) {
            return scan_fail(s, "unterminated object");
        }
        if (*s->p == '}') {
            advance(s);
            return DM_OK;
        }
        if (*s->p != ',') {
            return scan_fail(s, "expected ',' or '}'");
        }
        advance(s);
    }
}

static int scan_array(struct jp_scan *s, int depth)
{
    size_t base = s->plen;
    char idx[32];
    int rc, n;

    advance(s); /* '[' */
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        advance(s);
        return DM_OK;
    }
    for (size_t i = 0;; i++) {
        skip_ws(s);
        n = snprintf(idx, sizeof(idx), "[%zu]", i);
        rc = path_append(s, idx, (size_t)n);
        if (rc != DM_OK) {
            return rc;
        }
        if (s->p >= s->end) {
            return scan_fail(s, "unterminated array");
        }
        rc = record(s, s->line, s->col);
        if (rc != DM_OK) {
            return rc;
        }
        rc = scan_value(s, depth + 1);
        if (rc != DM_OK) {
            return rc;
        }
        s->plen = base;
        s->path[base] = '\0';
        skip_ws(s);
        if (s->p >= s->end) {
            return scan_fail(s, "unterminated array");
        }
        if (*s->p == ']') {
            advance(s);
            return DM_OK;
        }
        if (*s->p != ',') {
            return scan_fail(s, "expected ',' or ']'");
        }
        advance(s);
    }
}

static int scan_literal(struct jp_scan *s, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
        return scan_fail(s, "invalid literal");
    }
    for (size_t i = 0; i < n; i++) {
        advance(s);
    }
    return DM_OK;
}

static int scan_number(struct jp_scan *s)
{
    const char *start = s->p;

    while (s->p < s->end && (strchr("+-.eE", *s->p) != NULL || (*s->p >= '0' && *s->p <= '9'))) {
        advance(s);
    }
    if (s->p == start) {
        return scan_fail(s, "unexpected character");
    }
    return DM_OK;
}

static int scan_value(struct jp_scan *s, int depth)
{
    if (depth > JP_MAX_DEPTH) {
        return scan_fail(s, "nesting too deep");
    }
    skip_ws(s);
    if (s->p >= s->end) {
        return scan_fail(s, "unexpected end of input");
    }
    switch (*s->p) {
    case '{':
        return scan_object(s, depth);
    case '[':
        return scan_array(s, depth);
    case '"':
        return scan_string(s, 0);
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case 'n':
        return scan_literal(s, "null");
    default:
        return scan_number(s);
    }
}

static int item_cmp(const void *a, const void *b)
{
    const struct jp_item *x = a, *y = b;
    int c = strcmp(x->path, y->path);

    if (c != 0) {
        return c;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int jsonpos_build(struct jsonpos **out, const char *text, size_t len, struct dm_err *err)
{
    struct jsonpos *jp = calloc(1, sizeof(*jp));
    struct jp_scan s = {0};
    int rc;

    if (jp == NULL) {
        return dm_err_set(err, DM_ENOMEM, "jsonpos");
    }
    s.p = text;
    s.end = text + len;
    s.line = 1;
    s.col = 1;
    s.jp = jp;
    s.err = err;
    /* A UTF-8 byte order mark is not JSON, but editors write it; skip it. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        s.p += 3;
    }
    rc = path_reserve(&s, 0);
    if (rc != DM_OK) {
        goto done;
    }
    s.path[0] = '\0';
    skip_ws(&s);
    rc = record(&s, s.line, s.col);
    if (rc != DM_OK) {
        goto done;
    }
    rc = scan_value(&s, 0);
    if (rc != DM_OK) {
        goto done;
    }
    skip_ws(&s);
    if (s.p < s.end) {
        rc = scan_fail(&s, "trailing data after the JSON value");
        goto done;
    }
    qsort(jp->items, jp->n, sizeof(*jp->items), item_cmp);
    *out = jp;
    jp = NULL;
    rc = DM_OK;
done:
    free(s.path);
    jsonpos_free(jp);
    return rc;
}

static const struct jp_item *lookup(const struct jsonpos *jp, const char *path)
{
    size_t lo = 0, hi = jp->n;

    /* Lower bound, so that among equal paths the first in document order is returned. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(jp->items[mid].path, path) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < jp->n && strcmp(jp->items[lo].path, path) == 0) {
        return &jp->items[lo];
    }
    return NULL;
}

/* Length of the parent of path[0..n): strips the last ".key" or "[i]". */
static size_t parent_len(const char *path, size_t n)
{
    size_t i = n;

    if (n > 0 && path[n - 1] == ']') {
        while (i > 0 && path[i - 1] != '[') {
            i--;
        }
        return i > 0 ? i - 1 : 0;
    }
    while (i > 0 && path[i - 1] != '.' && path[i - 1] != ']') {
        i--;
    }
    if (i > 0 && path[i - 1] == '.') {
        return i - 1;
    }
    return i;
}

int jsonpos_find(const struct jsonpos *jp, const char *path, int *line, int *col)
{
    const struct jp_item *it;
    char *tmp;
    size_t n;

    *line = 1;
    *col = 1;
    if (jp == NULL || path == NULL) {
        return -1;
    }
    it = lookup(jp, path);
    if (it != NULL) {
        *line = it->line;
        *col = it->col;
        return 0;
    }
    n = strlen(path);
    tmp = strdup(path);
    if (tmp == NULL) {
        return -1;
    }
    while (n > 0) {
        n = parent_len(tmp, n);
        tmp[n] = '\0';
        it = lookup(jp, tmp);
        if (it != NULL) {
            *line = it->line;
            *col = it->col;
            break;
        }
    }
    free(tmp);
    return -1;
}

void jsonpos_free(struct jsonpos *jp)
{
    if (jp == NULL) {
        return;
    }
    for (size_t i = 0; i < jp->n; i++) {
        free(jp->items[i].path);
    }
    free(jp->items);
    free(jp);
}

int jsonpos_load_file(struct json_t **root, struct jsonpos **pos, const char *path, size_t limit,
                      struct dm_err *err)
{
    FILE *f = fopen(path, "rb");
    json_error_t jerr;
    json_t *doc;
    struct buf b;
    char chunk[8192];
    size_t n;
    int rc;

    if (f == NULL) {
        return dm_err_set(err, errno == ENOENT ? DM_ENOTFOUND : DM_EINVAL, "%s: %s", path,
                          strerror(errno));
    }
    buf_init(&b, limit);
    rc = buf_append(&b, "", 0);
    while (rc == DM_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = buf_append(&b, chunk, n);
    }
    if (rc == DM_OK && ferror(f)) {
        rc = dm_err_set(err, DM_EINVAL, "%s: read error", path);
    } else if (rc == DM_ELIMIT) {
        rc = dm_err_set(err, DM_ELIMIT, "%s: file larger than %zu bytes", path, limit);
    } else if (rc != DM_OK) {
        rc = dm_err_set(err, rc, "%s: out of memory", path);
    }
    fclose(f);
    if (rc != DM_OK) {
        goto done;
    }
    doc = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        rc = dm_err_set(err, DM_EINVAL, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        goto done;
    }
    if (jsonpos_build(pos, b.data, b.len, NULL) != DM_OK) {
        *pos = NULL;
    }
    *root = doc;
done:
    buf_free(&b);
    return rc;
}
