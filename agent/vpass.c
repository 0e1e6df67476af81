/*
 * vpass.c: dirmig validate's pass over the source (agent/pipe_priv.h): the same read, scope
 * and map as a run, then every constraint of the map and its profile, uniqueness over the
 * whole population (phase 1 counts, phase 2 checks), dated activity, and one export row per
 * entry. Problems never carry values, so pii cannot leak through them.
 */
#include <config.h>
#include "agent/pipe_priv.h"
#include "schema/cred.h"
#include "schema/dn.h"
#include "schema/validate.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void attrcat_add(struct pipeline_stats *st, const char *cat, const char *attr)
{
    for (size_t i = 0; i < st->nattrcats; i++) {
        if (st->attrcats[i].cat == cat && strcasecmp(st->attrcats[i].attr, attr) == 0) {
            st->attrcats[i].n++;
            return;
        }
    }
    if (st->nattrcats < PIPE_MAX_ATTRCATS) {
        struct pipe_attr_count *c = &st->attrcats[st->nattrcats++];
        c->cat = cat;
        snprintf(c->attr, sizeof(c->attr), "%s", attr);
        c->n = 1;
    }
}

static void example_add(struct pipe *p, const char *cat, const char *key, const char *dn,
                        const char *msg)
{
    struct pipeline_stats *st = p->st;
    int have = 0;

    for (size_t i = 0; i < st->nexamples; i++) {
        have += st->examples[i].cat == cat;
    }
    if (have >= p->cfg->validate_examples || st->nexamples >= PIPE_MAX_EXAMPLES) {
        return;
    }
    st->examples[st->nexamples].cat = cat;
    st->examples[st->nexamples].key = strdup(key ? key : "");
    st->examples[st->nexamples].dn = strdup(dn ? dn : "");
    snprintf(st->examples[st->nexamples].msg, sizeof(st->examples[0].msg), "%s", msg);
    st->nexamples++;
}

static int is_blocking(const struct pipe *p, const char *cat)
{
    for (size_t i = 0; p->cfg->validate_blocking && p->cfg->validate_blocking[i]; i++) {
        if (strcmp(p->cfg->validate_blocking[i], cat) == 0) {
            return 1;
        }
    }
    return 0;
}

static int add_problem(struct map_problem **probs, size_t *n, const char *cat, const char *attr,
                       const char *msg)
{
    struct map_problem *np = realloc(*probs, (*n + 1) * sizeof(*np));

    if (np == NULL) {
        return DM_ENOMEM;
    }
    *probs = np;
    np[*n].category = cat;
    snprintf(np[*n].attr, sizeof(np[*n].attr), "%s", attr ? attr : "");
    snprintf(np[*n].msg, sizeof(np[*n].msg), "%s", msg);
    (*n)++;
    return DM_OK;
}

int pipe_validate_entry(struct pipe *p, const struct entry *src, struct pobj *q)
{
    struct map_problem *probs = NULL;
    size_t nprobs = 0, nuniq;
    const char **uattrs = NULL;
    struct entry *m = NULL;
    struct dm_err e = {0};
    const char *attr = NULL, *why = NULL, *status;
    char *reb = NULL;
    int rc = DM_OK, blocking = 0;

    nuniq = map_unique_attrs(p->cfg->map, p->kind, &uattrs);
    if (!q->failed && map_apply(&m, p->cfg->map, p->kind, src, &e) != DM_OK) {
        q->failed = 1;
        q->category = "map";
        q->err = e;
    }
    if (p->vphase == 1) {
        for (size_t i = 0; m != NULL && i < nuniq && rc == DM_OK; i++) {
            const struct dm_attr *a = entry_attr(m, uattrs[i]);
            for (size_t j = 0; a != NULL && j < a->nvals && rc == DM_OK; j++) {
                rc = uniq_add(p->uniq, a->name, a->vals[j].data, a->vals[j].len);
            }
        }
        entry_free(m);
        return rc == DM_OK ? DM_OK : dm_err_set(&p->fatal_err, rc, "out of memory");
    }
    if (q->failed) {
        rc = add_problem(&probs, &nprobs, q->category, "", q->err.msg);
    } else if (p->tops->ident == CONN_IDENT_DN && p->cfg->target.conn.base != NULL &&
               dn_rebase(&reb, src->dn, p->cfg->source.conn.base, p->cfg->target.conn.base, &e) !=
                   DM_OK) {
        rc = add_problem(&probs, &nprobs, "dn", "", "entry is outside the source base");
    } else {
        rc = map_check(&probs, &nprobs, p->cfg->map, p->kind, m, &p->fatal_err);
    }
    for (size_t i = 0; rc == DM_OK && m != NULL && i < nuniq; i++) {
        const struct dm_attr *a = entry_attr(m, uattrs[i]);
        for (size_t j = 0; a != NULL && j < a->nvals && rc == DM_OK; j++) {
            unsigned c =
                p->uniq ? uniq_count(p->uniq, a->name, a->vals[j].data, a->vals[j].len) : 1;
            if (c > 1) {
                char msg[128];
                snprintf(msg, sizeof(msg), "value is shared by %u entries (must be unique)", c);
                rc = add_problem(&probs, &nprobs, "duplicate", a->name, msg);
            }
        }
    }
    if (rc == DM_OK && p->kind == MAP_USERS) {
        const struct dm_attr *pw = entry_attr(src, "userPassword");
        for (size_t i = 0; pw != NULL && i < pw->nvals && rc == DM_OK; i++) {
            if (cred_is_locked(pw->vals[i].data, pw->vals[i].len)) {
                rc = add_problem(&probs, &nprobs, "locked_password", "userPassword",
                                 "a lock marker or placeholder (no usable password)");
                break;
            }
        }
    }
    if (rc == DM_OK && p->kind == MAP_USERS) {
        why = activity_check(&p->act, src, p->now, &attr);
    }
    if (why != NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%s (%s)",
                 strcmp(why, "expired") == 0          ? "end date has passed"
                 : strcmp(why, "not_yet_active") == 0 ? "start date is still ahead"
                                                      : "date cannot be read in its format",
                 attr);
        rc = add_problem(&probs, &nprobs,
                         strcmp(why, "expired") == 0          ? "expired"
                         : strcmp(why, "not_yet_active") == 0 ? "not_yet_active"
                                                              : "bad_date",
                         attr, msg);
    }
    if (rc != DM_OK) {
        goto done;
    }
    for (size_t i = 0; i < nprobs; i++) {
        pipe_count_add(p->st->cats, &p->st->ncats, probs[i].category, 1);
        attrcat_add(p->st, probs[i].category, probs[i].attr);
        example_add(p, probs[i].category, q->key, src->dn, probs[i].msg);
        blocking |= is_blocking(p, probs[i].category);
    }
    status = nprobs == 0 ? "ok" : why != NULL && nprobs == 1 ? "inactive" : "problem";
    p->st->rows++;
    if (nprobs > 0) {
        p->st->rows_with_problems++;
        p->kc->failed++;
    } else {
        p->kc->unchanged++; /* "valid" */
    }
    if (blocking) {
        p->st->blocking++;
    }
    rc = export_row(p->exp, q->key, src->dn, p->kind_name, status, probs, nprobs, p->cfg->map,
                    p->kind, m, &p->fatal_err);
done:
    free(probs);
    free(reb);
    entry_free(m);
    return rc;
}
