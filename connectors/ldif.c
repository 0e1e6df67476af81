/*
 * connectors/ldif.c: the LDIF source and target (ldif.h).
 */
#include <config.h>
#include "connectors/ldif.h"
#include "connectors/conncfg.h"
#include "connectors/fileout.h"
#include "connectors/ldif_filter.h"
#include "connectors/ldif_parse.h"
#include "agent/util/log.h"
#include "schema/dn.h"
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define LDIF_FOLD 76

struct conn {
    struct conn_cfg cfg;
    char *path;
    struct ldif_reader *rd; /* source */
    struct fileout *out;    /* target */
    long long written;
};

/* Operational attributes in slapcat output that a search for "*" does not return. */
static const char *const operational[] = {
    "structuralObjectClass",
    "entryUUID",
    "creatorsName",
    "createTimestamp",
    "entryCSN",
    "modifiersName",
    "modifyTimestamp",
    "contextCSN",
    "entryDN",
    "subschemaSubentry",
    "hasSubordinates",
    "pwdChangedTime",
    "pwdAccountLockedTime",
    "pwdFailureTime",
    "pwdHistory",
    "pwdGraceUseTime",
    "pwdReset",
    "pwdPolicySubentry",
    "memberOf",
    "entryTtl",
};

static int is_operational(const char *name)
{
    for (size_t i = 0; i < sizeof(operational) / sizeof(operational[0]); i++) {
        if (strcasecmp(operational[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int in_attrs(const char *const *attrs, const char *name)
{
    for (size_t i = 0; attrs != NULL && attrs[i] != NULL; i++) {
        if (strcasecmp(attrs[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ---- open / close ---- */

static void ldif_close(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    ldif_reader_free(c->rd);
    fileout_free(c->out); /* removes an uncommitted output */
    free(c->path);
    free(c);
}

static int ldif_open(struct conn **out, const struct conn_cfg *cfg, struct dm_err *err)
{
    struct conn *c = calloc(1, sizeof(*c));
    int rc;

    *out = NULL;
    if (c == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    c->cfg = *cfg;
    c->path = conncfg_file_path(cfg, err);
    if (c->path == NULL) {
        free(c);
        return (int)err->rc;
    }
    if (strcmp(cfg->role, "source") == 0) {
        /* The whole file is read once before anything else: malformed input stops the run
         * here, naming the line, before the first write to the target. */
        struct entry *e = NULL;
        long long n = 0;
        rc = ldif_reader_open(&c->rd, c->path, err);
        while (rc == DM_OK && (rc = ldif_reader_next(&e, c->rd, err)) == DM_OK && e != NULL) {
            entry_free(e);
            n++;
        }
        if (rc == DM_OK) {
            log_debug("%s: %lld records, well-formed", c->path, n);
        }
    } else {
        rc = fileout_open(&c->out, c->path, err);
    }
    if (rc != DM_OK) {
        ldif_close(c);
        return rc;
    }
    *out = c;
    return DM_OK;
}

static int ldif_check(struct conn *c, struct buf *out, struct dm_err *err)
{
    struct stat st;

    (void)err;
    if (c->rd != NULL) {
        return buf_printf(out, "  LDIF file %s: readable, %lld bytes\n", c->path,
                          stat(c->path, &st) == 0 ? (long long)st.st_size : -1LL);
    }
    return buf_printf(out,
                      "  LDIF file %s: written whole by each run (a temporary file beside it "
                      "replaces it when the run succeeds)\n",
                      c->path);
}

/* ---- source ---- */

/* e reduced to what a search for s->attrs (NULL: all user attributes) returns, keyed by
 * s->key_attr. */
static int shape(struct entry *e, const struct scope *s, struct dm_err *err)
{
    for (size_t i = e->nattrs; i-- > 0;) {
        const char *n = e->attrs[i].name;
        int keep = s->key_attr != NULL && strcasecmp(n, s->key_attr) == 0;
        if (!keep) {
            keep = s->attrs != NULL ? in_attrs(s->attrs, n) : !is_operational(n);
        }
        if (!keep) {
            entry_del_attr(e, n);
        }
    }
    if (s->key_attr != NULL && entry_first(e, s->key_attr) != NULL &&
        entry_set_key(e, entry_first(e, s->key_attr)) != DM_OK) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    return DM_OK;
}

static int ldif_read(struct conn *c, const struct scope *s, conn_entry_fn fn, void *payload,
                     struct dm_err *err)
{
    struct ldif_filter *f = NULL;
    struct entry *e = NULL;
    int rc;

    if (c->rd == NULL) {
        return dm_err_set(err, DM_EINVAL, "%s: an LDIF target is not read", c->path);
    }
    rc = ldif_filter_compile(&f, s->filter, err);
    if (rc == DM_OK) {
        rc = ldif_reader_rewind(c->rd, err);
    }
    while (rc == DM_OK) {
        rc = ldif_reader_next(&e, c->rd, err);
        if (rc != DM_OK || e == NULL) {
            break;
        }
        if ((s->base == NULL || dn_is_under(e->dn, s->base) == 1) && ldif_filter_match(f, e)) {
            rc = shape(e, s, err);
            if (rc == DM_OK) {
                rc = fn(e, payload);
            }
        }
        entry_free(e);
        e = NULL;
    }
    ldif_filter_free(f);
    return rc;
}

/* One DN: a pass over the file (a source's lookups are few: the containers it copies). */
static int ldif_lookup(struct entry **out, struct conn *c, const char *dn, struct dm_err *err)
{
    struct ldif_reader *rd = NULL;
    struct entry *e = NULL;
    char *want = NULL;
    int rc;

    *out = NULL;
    if (c->rd == NULL) {
        return dm_err_set(err, DM_ENOTFOUND, "not in the file being written");
    }
    rc = dn_normalize(&want, dn, err);
    if (rc == DM_OK) {
        rc = ldif_reader_open(&rd, c->path, err);
    }
    while (rc == DM_OK) {
        char *norm = NULL;
        rc = ldif_reader_next(&e, rd, err);
        if (rc != DM_OK || e == NULL) {
            break;
        }
        if (dn_normalize(&norm, e->dn, NULL) == DM_OK && strcmp(norm, want) == 0) {
            struct scope sc = {0};
            free(norm);
            rc = shape(e, &sc, err);
            if (rc == DM_OK) {
                *out = e;
                e = NULL;
            }
            break;
        }
        free(norm);
        entry_free(e);
        e = NULL;
    }
    entry_free(e);
    ldif_reader_free(rd);
    free(want);
    if (rc == DM_OK && *out == NULL) {
        rc = dm_err_set(err, DM_ENOTFOUND, "%s: not in %s", dn, c->path);
    }
    return rc;
}

/* ---- target ---- */

/* RFC 2849 SAFE-STRING: ASCII without NUL, LF, CR; not starting with a space, ':' or '<';
 * and (for slapadd's sake) not ending with a space. */
static int is_safe(const unsigned char *v, size_t n)
{
    if (n == 0) {
        return 1;
    }
    if (v[0] == ' ' || v[0] == ':' || v[0] == '<' || v[n - 1] == ' ') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] == 0 || v[i] == '\n' || v[i] == '\r' || v[i] > 127) {
            return 0;
        }
    }
    return 1;
}

/* Writes "name: value" or "name:: base64", folded at LDIF_FOLD columns. */
static int put_line(FILE *f, const char *name, const unsigned char *v, size_t n)
{
    int safe = is_safe(v, n), rc = 0;
    char *b64 = NULL;
    const char *text = (const char *)v;
    size_t tlen = n, col;

    if (!safe) {
        b64 = malloc(4 * ((n + 2) / 3) + 1);
        if (b64 == NULL) {
            return -1;
        }
        tlen = (size_t)EVP_EncodeBlock((unsigned char *)b64, v, (int)n);
        text = b64;
    }
    col = (size_t)fprintf(f, "%s:%s ", name, safe ? "" : ":");
    for (size_t i = 0; i < tlen && rc >= 0; i++) {
        if (col >= LDIF_FOLD) {
            rc = fputs("\n ", f);
            col = 1;
        }
        if (rc >= 0) {
            rc = fputc(text[i], f);
            col++;
        }
    }
    if (rc >= 0) {
        rc = fputc('\n', f);
    }
    if (b64 != NULL) {
        explicit_bzero(b64, tlen);
        free(b64);
    }
    return rc < 0 ? -1 : 0;
}

int ldif_write_entry(FILE *f, const struct entry *e, struct dm_err *err)
{
    int bad = put_line(f, "dn", (const unsigned char *)e->dn, strlen(e->dn)) != 0;

    for (size_t i = 0; !bad && i < e->nattrs; i++) {
        const struct dm_attr *a = &e->attrs[i];
        for (size_t k = 0; !bad && k < a->nvals; k++) {
            bad = put_line(f, a->name, a->vals[k].data, a->vals[k].len) != 0;
        }
    }
    if (!bad) {
        bad = fputc('\n', f) == EOF;
    }
    return bad ? dm_err_set(err, DM_EINTERNAL, "writing %s: %s", e->dn, "write error") : DM_OK;
}

static int ldif_apply(struct conn *c, const struct change *v, size_t n, struct apply_result *res)
{
    for (size_t i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof(res[i]));
        if (c->out == NULL) {
            res[i].status = APPLY_FAILED;
            dm_err_set(&res[i].err, DM_EINVAL, "%s is the source, not a target", c->path);
            continue;
        }
        if (v[i].op != CHANGE_ADD) {
            /* a snapshot starts empty: the planner only ever creates */
            res[i].status = APPLY_FAILED;
            dm_err_set(&res[i].err, DM_EINVAL, "an LDIF file is written whole; only adds");
            dm_err_dn(&res[i].err, v[i].entry->dn);
            continue;
        }
        if (ldif_write_entry(fileout_file(c->out), v[i].entry, &res[i].err) != DM_OK) {
            /* the file cannot be written: nothing of it will be published */
            res[i].status = APPLY_FAILED;
            return DM_EUNAVAIL;
        }
        c->written++;
        res[i].status = APPLY_CREATED;
    }
    return DM_OK;
}

static int ldif_finish(struct conn *c, int ok, struct dm_err *err)
{
    int rc;

    if (c->out == NULL || !ok) {
        return DM_OK;
    }
    rc = fileout_commit(c->out, err);
    if (rc == DM_OK) {
        log_info("wrote %lld entries to %s", c->written, c->path);
    }
    return rc;
}

static int ldif_config_check(const struct conn_cfgcheck *x)
{
    int rc = conncfg_check_file(x);

    if (rc == DM_OK && x->get(x->ctx, "base") == NULL) {
        rc = x->fail(x->ctx, "base", "required key is missing");
    }
    return rc;
}

const struct conn_ops conn_ldif_ops = {
    .name = "ldif",
    .what = "an LDIF file",
    .caps = CONN_READ | CONN_SOURCE | CONN_WRITE | CONN_GROUPS | CONN_TREE | CONN_NESTED_GROUPS |
            CONN_SNAPSHOT,
    .open = ldif_open,
    .read = ldif_read,
    .lookup = ldif_lookup,
    .apply = ldif_apply,
    .check = ldif_check,
    .close = ldif_close,
    .ident = CONN_IDENT_DN,
    .members = CONN_MEMBERS_DN,
    .finish = ldif_finish,
    .config_check = ldif_config_check,
};
