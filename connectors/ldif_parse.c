/*
 * connectors/ldif_parse.c: the streaming LDIF record reader (ldif_parse.h).
 */
#include <config.h>
#include "connectors/ldif_parse.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ldif_reader {
    FILE *f;
    char *path;
    char *line; /* getline buffer: the physical line read ahead */
    size_t linecap;
    ssize_t linelen; /* -1 at end of file, -2 when no line is read ahead */
    long lineno;     /* number of the line in `line` */
    long rec_line;   /* first line of the last record */
    char *lg;        /* the logical line being assembled */
    size_t lglen, lgcap;
    long lg_line;
};

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int ldif_b64_decode(unsigned char **out, size_t *outlen, const char *s, size_t len)
{
    unsigned char *o;
    size_t n = 0, pad = 0;
    unsigned acc = 0;
    int bits = 0;

    while (len > 0 && s[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if ((len + pad) % 4 == 1 || (pad > 0 && (len + pad) % 4 != 0)) {
        return -1;
    }
    o = malloc(len * 3 / 4 + 2);
    if (o == NULL) {
        return -2;
    }
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(o);
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (unsigned char)(acc >> bits);
        }
    }
    o[n] = '\0';
    *out = o;
    *outlen = n;
    return 0;
}

int ldif_reader_open(struct ldif_reader **out, const char *path, struct dm_err *err)
{
    struct ldif_reader *r = calloc(1, sizeof(*r));

    if (r == NULL || (r->path = strdup(path)) == NULL) {
        free(r);
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    r->f = fopen(path, "rb");
    if (r->f == NULL) {
        int e = errno;
        ldif_reader_free(r);
        return dm_err_set(err, e == ENOENT ? DM_ENOTFOUND : DM_EINVAL, "%s: cannot open: %s", path,
                          strerror(e));
    }
    r->linelen = -2;
    *out = r;
    return DM_OK;
}

void ldif_reader_free(struct ldif_reader *r)
{
    if (r == NULL) {
        return;
    }
    if (r->f != NULL) {
        fclose(r->f);
    }
    free(r->line);
    free(r->lg);
    free(r->path);
    free(r);
}

int ldif_reader_rewind(struct ldif_reader *r, struct dm_err *err)
{
    if (fseek(r->f, 0, SEEK_SET) != 0) {
        return dm_err_set(err, DM_EINVAL, "%s: cannot read it again: %s", r->path, strerror(errno));
    }
    clearerr(r->f);
    r->linelen = -2;
    r->lineno = 0;
    return DM_OK;
}

long ldif_reader_line(const struct ldif_reader *r)
{
    return r->rec_line;
}

static int fail(struct ldif_reader *r, long line, struct dm_err *err, const char *what)
{
    return dm_err_set(err, DM_EINVAL, "%s:%ld: %s", r->path, line, what);
}

/* Reads the next physical line into r->line (without its line end); linelen -1 at EOF. */
static int read_physical(struct ldif_reader *r, struct dm_err *err)
{
    errno = 0;
    r->linelen = getline(&r->line, &r->linecap, r->f);
    if (r->linelen < 0) {
        if (ferror(r->f)) {
            return dm_err_set(err, DM_EINVAL, "%s:%ld: read error: %s", r->path, r->lineno + 1,
                              strerror(errno ? errno : EIO));
        }
        r->linelen = -1;
        return DM_OK;
    }
    r->lineno++;
    while (r->linelen > 0 && (r->line[r->linelen - 1] == '\n' || r->line[r->linelen - 1] == '\r')) {
        r->line[--r->linelen] = '\0';
    }
    return DM_OK;
}

static int lg_append(struct ldif_reader *r, const char *s, size_t n, struct dm_err *err)
{
    if (r->lglen + n + 1 > r->lgcap) {
        size_t nc = r->lgcap ? r->lgcap : 256;
        char *g;
        while (nc < r->lglen + n + 1) {
            nc *= 2;
        }
        if (nc > LDIF_MAX_RECORD) {
            return fail(r, r->lg_line, err, "a line longer than the 256 MiB limit");
        }
        g = realloc(r->lg, nc);
        if (g == NULL) {
            return dm_err_set(err, DM_ENOMEM, "out of memory reading %s", r->path);
        }
        r->lg = g;
        r->lgcap = nc;
    }
    memcpy(r->lg + r->lglen, s, n);
    r->lglen += n;
    r->lg[r->lglen] = '\0';
    return DM_OK;
}

/* The next logical line (folds joined, comments skipped) into r->lg: *got 1 with a line,
 * 0 at a record end (empty line) or at the end of the file (*eof 1). */
static int next_logical(struct ldif_reader *r, int *got, int *eof, struct dm_err *err)
{
    int rc;

    *got = 0;
    *eof = 0;
    r->lglen = 0;
    for (;;) {
        if (r->linelen == -2 && (rc = read_physical(r, err)) != DM_OK) {
            return rc;
        }
        if (r->linelen == -1) {
            *eof = 1;
            return DM_OK;
        }
        if (r->line[0] == '#') {
            /* a comment, and the lines that continue it */
            do {
                if ((rc = read_physical(r, err)) != DM_OK) {
                    return rc;
                }
            } while (r->linelen > 0 && r->line[0] == ' ');
            continue;
        }
        if (r->linelen == 0) {
            r->linelen = -2;
            return DM_OK; /* record end */
        }
        if (r->line[0] == ' ') {
            return fail(r, r->lineno, err,
                        "a continuation line (starting with a space) with "
                        "no line before it to continue");
        }
        break;
    }
    r->lg_line = r->lineno;
    if ((rc = lg_append(r, r->line, (size_t)r->linelen, err)) != DM_OK) {
        return rc;
    }
    for (;;) {
        if ((rc = read_physical(r, err)) != DM_OK) {
            return rc;
        }
        if (r->linelen > 0 && r->line[0] == ' ') {
            if ((rc = lg_append(r, r->line + 1, (size_t)r->linelen - 1, err)) != DM_OK) {
                return rc;
            }
            continue;
        }
        break; /* read ahead: the next call starts with it */
    }
    *got = 1;
    return DM_OK;
}

/* Splits "name[;opts]: value" / "name:: b64" / "name:< url"; the value is decoded into
 * *val (new, *vlen bytes). */
static int split_line(struct ldif_reader *r, char **name, unsigned char **val, size_t *vlen,
                      struct dm_err *err)
{
    char *colon = strchr(r->lg, ':'), *v;
    int b64 = 0, rc;

    if (colon == NULL || colon == r->lg) {
        return fail(r, r->lg_line, err, "not an LDIF line (\"name: value\" expected)");
    }
    *colon = '\0';
    for (char *p = r->lg; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == ';' || *p == '.')) {
            return fail(r, r->lg_line, err, "not an attribute name before the colon");
        }
    }
    v = colon + 1;
    if (*v == ':') {
        b64 = 1;
        v++;
    } else if (*v == '<') {
        return fail(r, r->lg_line, err,
                    "URL values (\"name:< file://...\") are not read; put the value inline");
    }
    while (*v == ' ') {
        v++;
    }
    *name = r->lg;
    if (b64) {
        rc = ldif_b64_decode(val, vlen, v, strlen(v));
        if (rc == -2) {
            return dm_err_set(err, DM_ENOMEM, "out of memory reading %s", r->path);
        }
        if (rc != 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "%.64s: the value is not valid base64", r->lg);
            return fail(r, r->lg_line, err, msg);
        }
        return DM_OK;
    }
    *vlen = strlen(v);
    *val = (unsigned char *)strdup(v);
    return *val != NULL ? DM_OK : dm_err_set(err, DM_ENOMEM, "out of memory reading %s", r->path);
}

int ldif_reader_next(struct entry **out, struct ldif_reader *r, struct dm_err *err)
{
    struct entry *e = NULL;
    struct dm_attr *last = NULL;
    size_t bytes = 0;
    int got, eof, rc = DM_OK;

    *out = NULL;
    for (;;) {
        char *name = NULL;
        unsigned char *val = NULL;
        size_t vlen = 0;

        rc = next_logical(r, &got, &eof, err);
        if (rc != DM_OK) {
            goto done;
        }
        if (!got) {
            if (e != NULL || eof) {
                break; /* the record's end, or the file's */
            }
            continue; /* empty lines between records */
        }
        if (e == NULL) {
            r->rec_line = r->lg_line;
        }
        rc = split_line(r, &name, &val, &vlen, err);
        if (rc != DM_OK) {
            goto done;
        }
        bytes += vlen + strlen(name);
        if (bytes > LDIF_MAX_RECORD) {
            free(val);
            rc = fail(r, r->rec_line, err, "a record larger than the 256 MiB limit");
            goto done;
        }
        if (e == NULL) {
            if (strcasecmp(name, "version") == 0) {
                free(val);
                continue;
            }
            if (strcasecmp(name, "dn") != 0) {
                free(val);
                rc = fail(r, r->lg_line, err, "a record must start with \"dn:\"");
                goto done;
            }
            if (memchr(val, '\0', vlen) != NULL) {
                free(val);
                rc = fail(r, r->lg_line, err, "a DN with a NUL byte");
                goto done;
            }
            e = entry_new((const char *)val);
            free(val);
            if (e == NULL) {
                rc = dm_err_set(err, DM_ENOMEM, "out of memory reading %s", r->path);
                goto done;
            }
            last = NULL;
            continue;
        }
        if (strcasecmp(name, "changetype") == 0) {
            int add = strcmp((const char *)val, "add") == 0;
            free(val);
            if (!add) {
                rc = fail(r, r->lg_line, err,
                          "only entries can be read (no changetype, or changetype: add), not "
                          "changes");
                dm_err_dn(err, e->dn);
                goto done;
            }
            continue;
        }
        if (strcasecmp(name, "control") == 0) {
            free(val);
            rc = fail(r, r->lg_line, err, "controls are not read: only entries");
            dm_err_dn(err, e->dn);
            goto done;
        }
        if (strcmp(name, "-") == 0) {
            free(val);
            rc = fail(r, r->lg_line, err, "a \"-\" line belongs to a change record");
            goto done;
        }
        /* consecutive values of one attribute go to it without a look-up */
        if (last == NULL || strcasecmp(last->name, name) != 0) {
            last = entry_attr_add(e, name);
        }
        if (last == NULL || attr_add_value(last, val, vlen) != DM_OK) {
            if (val != NULL) {
                explicit_bzero(val, vlen);
            }
            free(val);
            rc = dm_err_set(err, DM_ENOMEM, "out of memory reading %s", r->path);
            goto done;
        }
        explicit_bzero(val, vlen); /* it may be a password */
        free(val);
    }
    *out = e;
    e = NULL;
done:
    if (r->lg != NULL) {
        explicit_bzero(r->lg, r->lglen);
    }
    entry_free(e);
    return rc;
}
