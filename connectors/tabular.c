/*
 * connectors/tabular.c: the csv and jsonl targets (tabular.h).
 */
#include <config.h>
#include "connectors/tabular.h"
#include "agent/util/log.h"
#include "connectors/conncfg.h"
#include "connectors/fileout.h"
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct conn {
    struct conn_cfg cfg;
    int csv;
    char *path;
    struct fileout *out;
    char **cols; /* csv */
    size_t ncols;
    char *colbuf;
    const char *sep;
    long long written;
};

static void tab_close(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    fileout_free(c->out);
    free(c->cols);
    free(c->colbuf);
    free(c->path);
    free(c);
}

static int utf8_ok(const unsigned char *s, size_t n)
{
    json_t *j = json_stringn((const char *)s, n); /* jansson refuses invalid UTF-8 */
    int ok = j != NULL;

    json_decref(j);
    return ok && memchr(s, 0, n) == NULL;
}

static char *b64(const unsigned char *v, size_t n)
{
    char *o = malloc(4 * ((n + 2) / 3) + 1);

    if (o != NULL) {
        EVP_EncodeBlock((unsigned char *)o, v, (int)n);
    }
    return o;
}

/* RFC 4180 field. */
static int csv_field(FILE *f, const char *s, size_t n)
{
    int quote = n > 0 && (strpbrk(s, ",\"\r\n") != NULL || s[0] == ' ' || s[n - 1] == ' ');
    int rc = 0;

    if (quote) {
        rc = fputc('"', f);
    }
    for (size_t i = 0; i < n && rc != EOF; i++) {
        if (s[i] == '"') {
            rc = fputc('"', f);
        }
        if (rc != EOF) {
            rc = fputc(s[i], f);
        }
    }
    if (quote && rc != EOF) {
        rc = fputc('"', f);
    }
    return rc == EOF ? -1 : 0;
}

static int tab_open(struct conn **out, const struct conn_cfg *cfg, int csv, struct dm_err *err)
{
    struct conn *c = calloc(1, sizeof(*c));
    int rc;

    *out = NULL;
    if (c == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    c->cfg = *cfg;
    c->csv = csv;
    c->path = conncfg_file_path(cfg, err);
    rc = c->path != NULL ? fileout_open(&c->out, c->path, err) : (int)err->rc;
    if (rc == DM_OK && csv) {
        const char *cols = conn_cfg_opt(cfg, "columns");
        c->sep = conn_cfg_opt(cfg, "value_separator");
        c->colbuf = strdup(cols != NULL ? cols : "dn");
        c->cols = calloc(strlen(c->colbuf) + 2, sizeof(char *));
        if (c->colbuf == NULL || c->cols == NULL) {
            rc = dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        for (char *save = NULL, *t = rc == DM_OK ? strtok_r(c->colbuf, ",", &save) : NULL;
             t != NULL; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ') {
                t++;
            }
            c->cols[c->ncols++] = t;
        }
        for (size_t i = 0; rc == DM_OK && i < c->ncols; i++) {
            if (csv_field(fileout_file(c->out), c->cols[i], strlen(c->cols[i])) != 0 ||
                fputs(i + 1 < c->ncols ? "," : "\r\n", fileout_file(c->out)) == EOF) {
                rc = dm_err_set(err, DM_EINTERNAL, "%s: write error", c->path);
            }
        }
    }
    if (rc != DM_OK) {
        tab_close(c);
        return rc;
    }
    *out = c;
    return DM_OK;
}

static int csv_open(struct conn **out, const struct conn_cfg *cfg, struct dm_err *err)
{
    return tab_open(out, cfg, 1, err);
}

static int jsonl_open(struct conn **out, const struct conn_cfg *cfg, struct dm_err *err)
{
    return tab_open(out, cfg, 0, err);
}

static int csv_row(struct conn *c, const struct entry *e)
{
    FILE *f = fileout_file(c->out);

    for (size_t i = 0; i < c->ncols; i++) {
        const struct dm_attr *a =
            strcasecmp(c->cols[i], "dn") == 0 ? NULL : entry_attr(e, c->cols[i]);
        if (strcasecmp(c->cols[i], "dn") == 0 && csv_field(f, e->dn, strlen(e->dn)) != 0) {
            return -1;
        }
        for (size_t k = 0; a != NULL && k < a->nvals; k++) {
            const struct dm_val *v = &a->vals[k];
            if (k > 0 && fputs(c->sep, f) == EOF) {
                return -1;
            }
            if (utf8_ok(v->data, v->len)) {
                if (csv_field(f, (const char *)v->data, v->len) != 0) {
                    return -1;
                }
            } else {
                char *s = b64(v->data, v->len);
                int bad = s == NULL || fputs("base64:", f) == EOF || fputs(s, f) == EOF;
                free(s);
                if (bad) {
                    return -1;
                }
            }
        }
        if (fputs(i + 1 < c->ncols ? "," : "\r\n", f) == EOF) {
            return -1;
        }
    }
    return 0;
}

static json_t *json_value(const struct dm_val *v)
{
    json_t *s;
    char *t;

    if (memchr(v->data, 0, v->len) == NULL &&
        (s = json_stringn((const char *)v->data, v->len)) != NULL) {
        return s;
    }
    t = b64(v->data, v->len);
    s = t != NULL ? json_pack("{s:s}", "base64", t) : NULL;
    free(t);
    return s;
}

static int jsonl_row(struct conn *c, const struct entry *e)
{
    json_t *o = json_pack("{s:s}", "dn", e->dn);
    char *line = NULL;
    int bad = o == NULL;

    for (size_t i = 0; !bad && i < e->nattrs; i++) {
        const struct dm_attr *a = &e->attrs[i];
        json_t *v;
        if (a->nvals == 0) {
            continue;
        }
        if (a->nvals == 1) {
            v = json_value(&a->vals[0]);
        } else {
            v = json_array();
            for (size_t k = 0; v != NULL && k < a->nvals; k++) {
                if (json_array_append_new(v, json_value(&a->vals[k])) != 0) {
                    json_decref(v);
                    v = NULL;
                }
            }
        }
        bad = v == NULL || json_object_set_new(o, a->name, v) != 0;
    }
    if (!bad) {
        line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        bad = line == NULL || fputs(line, fileout_file(c->out)) == EOF ||
              fputc('\n', fileout_file(c->out)) == EOF;
    }
    if (line != NULL) {
        explicit_bzero(line, strlen(line)); /* a mapped password hash may be in it */
        free(line);
    }
    json_decref(o);
    return bad ? -1 : 0;
}

static int tab_apply(struct conn *c, const struct change *v, size_t n, struct apply_result *res)
{
    for (size_t i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof(res[i]));
        if (v[i].op != CHANGE_ADD || v[i].kind != OBJ_USER) {
            res[i].status = APPLY_FAILED;
            dm_err_set(&res[i].err, DM_EINVAL, "a %s file holds users, written whole",
                       c->csv ? "CSV" : "JSON Lines");
            dm_err_dn(&res[i].err, v[i].entry->dn);
            continue;
        }
        if ((c->csv ? csv_row(c, v[i].entry) : jsonl_row(c, v[i].entry)) != 0) {
            res[i].status = APPLY_FAILED;
            dm_err_set(&res[i].err, DM_EINTERNAL, "%s: write error", c->path);
            return DM_EUNAVAIL;
        }
        c->written++;
        res[i].status = APPLY_CREATED;
    }
    return DM_OK;
}

static int tab_finish(struct conn *c, int ok, struct dm_err *err)
{
    int rc = ok ? fileout_commit(c->out, err) : DM_OK;

    if (ok && rc == DM_OK) {
        log_info("wrote %lld users to %s", c->written, c->path);
    }
    return rc;
}

static int tab_check(struct conn *c, struct buf *out, struct dm_err *err)
{
    (void)err;
    return buf_printf(out,
                      "  %s file %s: written whole by each run (a temporary file beside it "
                      "replaces it when the run succeeds)\n",
                      c->csv ? "CSV" : "JSON Lines", c->path);
}

static const struct conn_key csv_keys[] = {
    {"columns", CONN_KEY_STR, "dn", 0, .off = CONN_KEY_OPT,
     .doc = "Comma-separated columns of the CSV file, in order: \"dn\" or a mapped attribute "
            "name, e.g. \"dn,uid,mail,cn\"."},
    {"value_separator", CONN_KEY_STR, "|", 0, .off = CONN_KEY_OPT,
     .doc = "What joins the values of a multi-valued attribute in one CSV field."},
    {NULL, 0, NULL, 0, .off = 0, .doc = NULL},
};

const struct conn_ops conn_csv_ops = {
    .name = "csv",
    .what = "a CSV file",
    .caps = CONN_WRITE | CONN_SNAPSHOT,
    .open = csv_open,
    .apply = tab_apply,
    .check = tab_check,
    .close = tab_close,
    .ident = CONN_IDENT_DN,
    .finish = tab_finish,
    .keys = csv_keys,
    .config_check = conncfg_check_file,
};

const struct conn_ops conn_jsonl_ops = {
    .name = "jsonl",
    .what = "a JSON Lines file",
    .caps = CONN_WRITE | CONN_SNAPSHOT,
    .open = jsonl_open,
    .apply = tab_apply,
    .check = tab_check,
    .close = tab_close,
    .ident = CONN_IDENT_DN,
    .finish = tab_finish,
    .config_check = conncfg_check_file,
};
