#include <config.h>
#include "agent/mapping.h"
#include "agent/export.h"
#include "agent/util/log.h"
#include "schema/map.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_RULES 8

/* One target user: its DN and how often a source user claimed it. */
struct tuser {
    char *dn;
    int matched;
};

/* (normalized value, target index) pairs of one rule, sorted by value. */
struct tindex {
    size_t n, cap;
    struct tpair {
        char *v;
        size_t idx;
    } * p;
};

struct corr {
    const struct dm_config *cfg;
    size_t nrules;
    const char *src_attr[MAX_RULES], *tgt_attr[MAX_RULES];
    struct tuser *tu;
    size_t ntu, captu;
    struct tindex ix[MAX_RULES];
    FILE *csv, *jsonl;
    long long matched, ambiguous, source_only, target_only;
    int rc;
    struct dm_err err;
};

/* Lowercased, trimmed copy of a value; NULL when empty. */
static char *norm_value(const struct dm_val *v)
{
    size_t a = 0, b = v->len;
    char *s;

    while (a < b && (v->data[a] == ' ' || v->data[a] == '\t')) {
        a++;
    }
    while (b > a && (v->data[b - 1] == ' ' || v->data[b - 1] == '\t')) {
        b--;
    }
    if (a == b || memchr(v->data + a, 0, b - a) != NULL) {
        return NULL;
    }
    s = strndup((const char *)v->data + a, b - a);
    for (char *c = s; c && *c; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char)(*c + 32);
        }
    }
    return s;
}

static int pair_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tpair *)a)->v, ((const struct tpair *)b)->v);
}

static int on_target(const struct entry *e, void *payload)
{
    struct corr *c = payload;
    size_t idx;

    if (c->ntu == c->captu) {
        size_t n = c->captu ? c->captu * 2 : 1024;
        struct tuser *p = realloc(c->tu, n * sizeof(*p));
        if (p == NULL) {
            return DM_ENOMEM;
        }
        c->tu = p;
        c->captu = n;
    }
    idx = c->ntu++;
    memset(&c->tu[idx], 0, sizeof(c->tu[idx]));
    c->tu[idx].dn = strdup(e->dn);
    for (size_t r = 0; r < c->nrules; r++) {
        const struct dm_attr *a = entry_attr(e, c->tgt_attr[r]);
        for (size_t j = 0; a != NULL && j < a->nvals; j++) {
            struct tindex *x = &c->ix[r];
            char *v = norm_value(&a->vals[j]);
            if (v == NULL) {
                continue;
            }
            if (x->n == x->cap) {
                size_t n = x->cap ? x->cap * 2 : 1024;
                struct tpair *p = realloc(x->p, n * sizeof(*p));
                if (p == NULL) {
                    free(v);
                    return DM_ENOMEM;
                }
                x->p = p;
                x->cap = n;
            }
            x->p[x->n].v = v;
            x->p[x->n].idx = idx;
            x->n++;
        }
    }
    return c->tu[idx].dn ? 0 : DM_ENOMEM;
}

static void write_row(struct corr *c, const char *status, const char *sdn, const char *skey,
                      const char *tdns, const char *rule)
{
    json_t *o;

    export_csv_field(c->csv, status, 0);
    export_csv_field(c->csv, sdn ? sdn : "", 0);
    export_csv_field(c->csv, skey ? skey : "", 0);
    export_csv_field(c->csv, tdns ? tdns : "", 0);
    export_csv_field(c->csv, rule ? rule : "", 1);
    o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "status", status, "source_dn", sdn ? sdn : "",
                  "source_key", skey ? skey : "", "target_dn", tdns ? tdns : "", "rule",
                  rule ? rule : "");
    if (o != NULL) {
        json_dumpf(o, c->jsonl, JSON_COMPACT);
        fputc('\n', c->jsonl);
        json_decref(o);
    }
}

/* Distinct target indexes whose rule-r value equals v (at most cap). */
static size_t candidates(const struct corr *c, size_t r, const char *v, size_t *out, size_t cap)
{
    const struct tindex *x = &c->ix[r];
    size_t lo = 0, hi = x->n, n = 0;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(x->p[mid].v, v) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (size_t i = lo; i < x->n && strcmp(x->p[i].v, v) == 0; i++) {
        int dup = 0;
        for (size_t k = 0; k < n && !dup; k++) {
            dup = out[k] == x->p[i].idx;
        }
        if (!dup && n < cap) {
            out[n++] = x->p[i].idx;
        }
    }
    return n;
}

static int on_source(const struct entry *e, void *payload)
{
    struct corr *c = payload;
    size_t cand[16], nc = 0;
    char rule[160];

    for (size_t r = 0; r < c->nrules && nc == 0; r++) {
        const struct dm_attr *a = entry_attr(e, c->src_attr[r]);
        for (size_t j = 0; a != NULL && j < a->nvals; j++) {
            char *v = norm_value(&a->vals[j]);
            size_t got[16], ng;
            if (v == NULL) {
                continue;
            }
            ng = candidates(c, r, v, got, 16);
            free(v);
            for (size_t k = 0; k < ng; k++) {
                int dup = 0;
                for (size_t m = 0; m < nc && !dup; m++) {
                    dup = cand[m] == got[k];
                }
                if (!dup && nc < 16) {
                    cand[nc++] = got[k];
                }
            }
        }
        snprintf(rule, sizeof(rule), "%s=%s", c->src_attr[r], c->tgt_attr[r]);
    }
    if (nc == 0) {
        c->source_only++;
        write_row(c, "source-only", e->dn, e->key, NULL, NULL);
    } else if (nc == 1 && !c->tu[cand[0]].matched) {
        c->matched++;
        c->tu[cand[0]].matched = 1;
        write_row(c, "matched", e->dn, e->key, c->tu[cand[0]].dn, rule);
    } else {
        struct buf b;
        buf_init(&b, 1 << 16);
        for (size_t k = 0; k < nc; k++) {
            if (buf_printf(&b, "%s%s", k ? ";" : "", c->tu[cand[k]].dn) != DM_OK) {
                break;
            }
            c->tu[cand[k]].matched = 1;
        }
        c->ambiguous++;
        log_warn("mapping: %s is ambiguous: %zu target candidates%s", e->dn, nc,
                 nc == 1 ? " (already matched by another source user)" : "");
        write_row(c, "ambiguous", e->dn, e->key, b.data, rule);
        buf_free(&b);
    }
    return 0;
}

static int read_side(const struct config_endpoint *ep, const char *key_attr, conn_entry_fn fn,
                     void *payload, struct dm_err *err)
{
    const struct conn_ops *ops = conn_find(ep->conn.type);
    struct conn *conn = NULL;
    struct scope sc = {0};
    int rc;

    if (ops == NULL || (ops->caps & CONN_READ) == 0) {
        return dm_err_set(err, DM_EINVAL, "%s: connector \"%s\" cannot be read", ep->conn.role,
                          ep->conn.type);
    }
    rc = ops->open(&conn, &ep->conn, err);
    if (rc != DM_OK) {
        return rc;
    }
    sc.base = ep->users_base;
    sc.filter = ep->users_filter;
    sc.key_attr = key_attr;
    rc = ops->read(conn, &sc, fn, payload, err);
    ops->close(conn);
    return rc;
}

int mapping_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                struct dm_err *err)
{
    struct corr c;
    const char *prefix = o->out_prefix ? o->out_prefix : "mapping";
    const char *const *fs = NULL, *const *ft = NULL;
    char *path = NULL;
    size_t nf;
    int rc;

    memset(&c, 0, sizeof(c));
    c.cfg = cfg;
    c.src_attr[0] = map_key_attr(cfg->map);
    c.tgt_attr[0] = map_key_target(cfg->map) ? map_key_target(cfg->map) : c.src_attr[0];
    c.nrules = 1;
    nf = map_key_fallbacks(cfg->map, &fs, &ft);
    for (size_t i = 0; i < nf && c.nrules < MAX_RULES; i++, c.nrules++) {
        c.src_attr[c.nrules] = fs[i];
        c.tgt_attr[c.nrules] = ft[i];
    }
    path = malloc(strlen(prefix) + 8);
    if (path == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    sprintf(path, "%s.csv", prefix);
    c.csv = fopen(path, "w");
    sprintf(path, "%s.jsonl", prefix);
    c.jsonl = fopen(path, "w");
    if (c.csv == NULL || c.jsonl == NULL) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot create the mapping report", prefix);
        goto done;
    }
    fputs("status,source_dn,source_key,target_dn,rule\n", c.csv);
    log_info("mapping: reading target users from %s (their key values are held in memory)",
             cfg->target.conn.uri);
    rc = read_side(&cfg->target, NULL, on_target, &c, err);
    if (rc != DM_OK) {
        goto done;
    }
    for (size_t r = 0; r < c.nrules; r++) {
        if (c.ix[r].n > 0) { /* an empty target has no array: qsort(NULL, 0) is undefined */
            qsort(c.ix[r].p, c.ix[r].n, sizeof(*c.ix[r].p), pair_cmp);
        }
    }
    rc = read_side(&cfg->source, c.src_attr[0], on_source, &c, err);
    if (rc != DM_OK) {
        goto done;
    }
    for (size_t i = 0; i < c.ntu; i++) {
        if (!c.tu[i].matched) {
            c.target_only++;
            write_row(&c, "target-only", NULL, NULL, c.tu[i].dn, NULL);
        }
    }
    fprintf(stderr, "mapping (%s", c.src_attr[0]);
    if (strcmp(c.src_attr[0], c.tgt_attr[0]) != 0) {
        fprintf(stderr, " = %s", c.tgt_attr[0]);
    }
    for (size_t r = 1; r < c.nrules; r++) {
        fprintf(stderr, ", then %s = %s", c.src_attr[r], c.tgt_attr[r]);
    }
    fprintf(stderr,
            "):\n  matched      %8lld\n  ambiguous    %8lld\n  source-only  %8lld\n"
            "  target-only  %8lld\n  report: %s.csv, %s.jsonl\n",
            c.matched, c.ambiguous, c.source_only, c.target_only, prefix, prefix);
    if (o->json) {
        printf("{\"matched\":%lld,\"ambiguous\":%lld,\"source_only\":%lld,\"target_only\":%lld,"
               "\"csv\":\"%s.csv\",\"jsonl\":\"%s.jsonl\"}\n",
               c.matched, c.ambiguous, c.source_only, c.target_only, prefix, prefix);
    }
done:
    if (c.csv != NULL && fclose(c.csv) != 0 && rc == DM_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s.csv: write error", prefix);
    }
    if (c.jsonl != NULL && fclose(c.jsonl) != 0 && rc == DM_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s.jsonl: write error", prefix);
    }
    for (size_t r = 0; r < MAX_RULES; r++) {
        for (size_t i = 0; i < c.ix[r].n; i++) {
            free(c.ix[r].p[i].v);
        }
        free(c.ix[r].p);
    }
    for (size_t i = 0; i < c.ntu; i++) {
        free(c.tu[i].dn);
    }
    free(c.tu);
    free(path);
    (void)exit_hint;
    return rc;
}
