#include <config.h>
#include "agent/pipeline.h"
#include "agent/reader.h"
#include "agent/delta.h"
#include "agent/export.h"
#include "agent/state.h"
#include "agent/util/log.h"
#include "schema/cred.h"
#include "schema/dn.h"
#include "schema/transform.h"
#include "schema/validate.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Returned by the read callback to stop the read early (not an enum dm_rc). */
#define PIPE_STOP 1000

static volatile sig_atomic_t g_stop;

void pipeline_request_stop(void)
{
    g_stop = 1;
}

/* One object waiting in the current batch. */
struct pending {
    struct entry *entry; /* mapped target entry, owned */
    char *key;           /* correlation key, owned */
    char *source_dn;     /* normalized source DN, owned */
    char digest[65];
    int has_record;    /* the journal knows this object */
    char *target_id;   /* keyed targets: the id the journal holds, or NULL */
    unsigned char *pw; /* keyed targets, users to create: userPassword (secret), or NULL */
    size_t pwlen;
    int failed;           /* failed before reaching the target */
    struct dm_err err;    /* why, when failed */
    const char *category; /* static */
};

struct pipe {
    const struct dm_config *cfg;
    const struct pipeline_opts *o;
    struct pipeline_stats *st;
    struct state *state;
    const struct conn_ops *sops, *tops;
    struct conn *src, *dst;
    int keyed; /* the target addresses objects by id (CONN_KEYED): no DNs to rebase */
    enum map_kind kind;
    const char *kind_name; /* "user" / "group" */
    struct kind_counts *kc;
    int pass;       /* 1, or 2 for the nested-group pass */
    int final_pass; /* report unresolved members in this pass */
    long long pass_unresolved;
    long long pass_nested; /* keyed targets: group members that are groups, this pass */
    long long processed;   /* entries read, all kinds */
    struct pending *batch;
    size_t nbatch, cap;
    struct change *changes;
    struct apply_result *results;
    int fatal_rc;
    struct dm_err fatal_err;
    double t_start, t_last_progress;
    /* scope */
    const char *users_base; /* source users base (a wave's OU replaces it) */
    char *users_filter;     /* source users filter (ANDed with a wave's filter) */
    char **wave_members;    /* sorted normalized member DNs of a group wave, or NULL */
    size_t nwave_members;
    int wave_groups;         /* a wave run also migrates groups */
    struct retry_set *retry; /* --retry-from */
    int64_t now;             /* for dated activity */
    /* validate */
    int vphase; /* 1: count unique values, 2: check and export */
    struct uniq *uniq;
    struct export *exp;
    /* delta reads (agent/delta.h); NULL = full reads */
    struct delta *delta;
};

static double now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_add(struct pipe_count *arr, size_t *n, const char *name, long long k)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(arr[i].name, name) == 0) {
            arr[i].n += k;
            return;
        }
    }
    if (*n < PIPE_MAX_CATS) {
        arr[*n].name = name;
        arr[*n].n = k;
        (*n)++;
    }
}

static void progress(struct pipe *p, int final)
{
    double t = now_sec();
    struct kind_counts *k = p->kc;

    if (!p->o->progress || (!final && t - p->t_last_progress < 0.25)) {
        return;
    }
    p->t_last_progress = t;
    fprintf(stderr,
            "\r\033[K%s%s: %lld read, %lld created, %lld updated, %lld unchanged, "
            "%lld failed (%.0f/s)",
            p->kind_name, p->pass == 2 ? "s (nested pass)" : "s", k->seen, k->created, k->updated,
            k->unchanged, k->failed,
            (double)p->processed / (t - p->t_start > 0.001 ? t - p->t_start : 0.001));
    if (final) {
        fputc('\n', stderr);
    }
    fflush(stderr);
}

static void pending_clear(struct pending *q)
{
    entry_free(q->entry);
    free(q->key);
    free(q->source_dn);
    free(q->target_id);
    if (q->pw != NULL) {
        explicit_bzero(q->pw, q->pwlen);
        free(q->pw);
    }
    memset(q, 0, sizeof(*q));
}

/* Records a per-object failure in the stats, the log and (run mode) the journal.
 * Called inside the batch transaction. */
static int note_failure(struct pipe *p, const char *key, const char *dn, const char *category,
                        const struct dm_err *e, struct dm_err *err)
{
    char msg[1024];

    if (dn == NULL && e->dn[0]) {
        dn = e->dn;
    }
    dm_err_format(e, msg, sizeof(msg));
    count_add(p->st->cats, &p->st->ncats, category, 1);
    p->kc->failed++;
    log_warn("%s %s failed [%s]: %s", p->kind_name, dn ? dn : "?", category, msg);
    if (p->o->mode != PIPE_RUN) {
        return DM_OK;
    }
    return state_error_add(p->state, p->st->run_id, key, dn, category, msg, err);
}

/* Category of an apply/map failure for the report. */
static const char *category_of(const struct dm_err *e)
{
    return dm_rc_category(e->rc);
}

static void add_sample(struct pipe *p, const char *action, const struct entry *e,
                       const struct entry_diff *d)
{
    struct pipe_sample *s;
    struct buf b;

    if (p->st->nsamples >= (size_t)p->o->samples || p->st->nsamples >= PIPE_MAX_SAMPLES) {
        return;
    }
    buf_init(&b, 4096);
    if (d != NULL) {
        for (size_t i = 0; i < d->nmods; i++) {
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++) {
                seen = strcasecmp(d->mods[j].name, d->mods[i].name) == 0;
            }
            if (!seen && buf_printf(&b, "%s%s", b.len ? "," : "", d->mods[i].name) != DM_OK) {
                break;
            }
        }
    } else {
        for (size_t i = 0; i < e->nattrs; i++) {
            if (buf_printf(&b, "%s%s", b.len ? "," : "", e->attrs[i].name) != DM_OK) {
                break;
            }
        }
    }
    s = &p->st->samples[p->st->nsamples++];
    snprintf(s->action, sizeof(s->action), "%s", action);
    s->dn = strdup(e->dn ? e->dn : "");
    s->attrs = buf_steal(&b);
}

/* Keyed targets hold more properties than the map writes (Okta's profile has defaults):
 * only what the map produces is compared. */
static void keyed_restrict(struct entry *cur, const struct entry *want)
{
    for (size_t i = cur->nattrs; i-- > 0;) {
        if (entry_attr(want, cur->attrs[i].name) == NULL) {
            entry_del_attr(cur, cur->attrs[i].name);
        }
    }
}

/* Plan: classify each pending object against the current target entry. */
static int flush_plan(struct pipe *p, struct dm_err *err)
{
    int rc = DM_OK;
    struct entry **found = NULL;
    int *frc = NULL;
    struct dm_err *ferr = NULL;

    if (p->keyed && p->tops->find_many != NULL && p->nbatch > 0) {
        /* One round of lookups for the whole batch, all in flight together. */
        const char **names = calloc(p->nbatch, sizeof(*names));
        found = calloc(p->nbatch, sizeof(*found));
        frc = calloc(p->nbatch, sizeof(*frc));
        ferr = calloc(p->nbatch, sizeof(*ferr));
        if (names == NULL || found == NULL || frc == NULL || ferr == NULL) {
            free(names);
            free(found);
            free(frc);
            free(ferr);
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < p->nbatch; i++) {
            names[i] = p->batch[i].failed ? "" : p->batch[i].entry->dn;
        }
        p->tops->find_many(p->dst, p->kind == MAP_USERS ? OBJ_USER : OBJ_GROUP, names, p->nbatch,
                           found, frc, ferr);
        free(names);
    }
    for (size_t i = 0; i < p->nbatch && rc == DM_OK; i++) {
        struct pending *q = &p->batch[i];
        struct entry *cur = NULL;
        struct entry_diff d = {0, NULL};
        struct dm_err e = {0};

        if (q->failed) {
            rc = note_failure(p, q->key, q->entry ? q->entry->dn : NULL, q->category, &q->err, err);
            continue;
        }
        if (found != NULL) {
            cur = found[i];
            found[i] = NULL;
            rc = frc[i];
            e = ferr[i];
        } else if (p->keyed) {
            rc = p->tops->find(&cur, p->dst, p->kind == MAP_USERS ? OBJ_USER : OBJ_GROUP,
                               q->entry->dn, &e);
        } else {
            rc = p->tops->lookup(&cur, p->dst, q->entry->dn, &e);
        }
        if (rc == DM_OK && p->keyed) {
            keyed_restrict(cur, q->entry);
        }
        if (rc == DM_ENOTFOUND) {
            p->kc->created++;
            add_sample(p, "create", q->entry, NULL);
            rc = DM_OK;
            continue;
        }
        if (rc != DM_OK) {
            if (rc == DM_EUNAVAIL || rc == DM_EAUTH) {
                *err = e;
                break;
            }
            rc = note_failure(p, q->key, q->entry->dn, category_of(&e), &e, err);
            continue;
        }
        rc = entry_diff(&d, cur, q->entry, NULL, (size_t)p->cfg->target.conn.member_chunk, err);
        if (rc == DM_OK) {
            if (d.nmods == 0) {
                p->kc->unchanged++;
            } else {
                p->kc->updated++;
                add_sample(p, "update", q->entry, &d);
            }
        }
        entry_diff_free(&d);
        entry_free(cur);
    }
    for (size_t i = 0; found != NULL && i < p->nbatch; i++) {
        entry_free(found[i]); /* left over when the loop stopped early */
    }
    free(found);
    free(frc);
    free(ferr);
    return rc;
}

/* Run: apply the batch to the target, then journal the outcome in one transaction. */
static int flush_run(struct pipe *p, struct dm_err *err)
{
    size_t n = 0;
    int rc;

    for (size_t i = 0; i < p->nbatch; i++) {
        struct pending *q = &p->batch[i];
        if (q->failed) {
            continue;
        }
        memset(&p->changes[n], 0, sizeof(p->changes[n]));
        p->changes[n].op = q->has_record ? CHANGE_MODIFY : CHANGE_ADD;
        p->changes[n].kind = p->kind == MAP_USERS ? OBJ_USER : OBJ_GROUP;
        p->changes[n].entry = q->entry;
        p->changes[n].keep = NULL;
        p->changes[n].target_id = q->target_id;
        p->changes[n].password = q->pw;
        p->changes[n].password_len = q->pwlen;
        memset(&p->results[n], 0, sizeof(p->results[n]));
        n++;
    }
    if (n > 0) {
        rc = p->tops->apply(p->dst, p->changes, n, p->results);
        if (rc != DM_OK) {
            return dm_err_set(err, rc,
                              "target connection lost during a batch and could not "
                              "be re-established");
        }
    }
    rc = state_batch_begin(p->state, err);
    n = 0;
    for (size_t i = 0; i < p->nbatch && rc == DM_OK; i++) {
        struct pending *q = &p->batch[i];
        struct state_object o = {0};
        const struct apply_result *r = q->failed ? NULL : &p->results[n++];
        int ok = r != NULL && r->status != APPLY_FAILED;

        if (q->failed) {
            rc = note_failure(p, q->key, q->entry ? q->entry->dn : NULL, q->category, &q->err, err);
        } else if (!ok) {
            rc = note_failure(p, q->key, q->entry->dn, category_of(&r->err), &r->err, err);
        } else if (r->status == APPLY_CREATED) {
            p->kc->created++;
            if (r->created_with_hook) {
                p->st->created_with_hook++;
                rc = state_meta_add(p->state, STATE_META_HOOK_CREATED, 1, err);
            }
        } else if (r->status == APPLY_UPDATED) {
            p->kc->updated++;
        } else {
            p->kc->unchanged++;
        }
        if (rc != DM_OK || q->key == NULL) {
            continue;
        }
        o.kind = (char *)p->kind_name;
        o.key = q->key;
        o.source_dn = q->source_dn ? q->source_dn : (char *)"";
        o.target_dn = q->entry && q->entry->dn ? q->entry->dn : (char *)"";
        if (p->keyed) {
            /* The journal keeps the target's id: members and later updates resolve to it. */
            o.target_dn = r != NULL && r->target_id[0] ? (char *)r->target_id
                          : q->target_id != NULL       ? q->target_id
                                                       : (char *)"";
        }
        /* A failed object keeps no digest, so the next run retries it. */
        snprintf(o.digest, sizeof(o.digest), "%s", ok ? q->digest : "");
        o.status = ok ? (char *)"ok" : (char *)"failed";
        o.last_run = p->st->run_id;
        rc = state_object_put(p->state, &o, err);
    }
    if (rc == DM_OK) {
        rc = state_batch_commit(p->state, err);
    }
    return rc;
}

static int flush(struct pipe *p, struct dm_err *err)
{
    int rc;

    if (p->nbatch == 0) {
        return DM_OK;
    }
    rc = p->o->mode == PIPE_RUN ? flush_run(p, err) : flush_plan(p, err);
    for (size_t i = 0; i < p->nbatch; i++) {
        pending_clear(&p->batch[i]);
    }
    p->nbatch = 0;
    progress(p, 0);
    return rc;
}

/* Splits an optional RFC 4517 uniqueMember UID suffix ("#'0101'B") off a DN value.
 * Returns the length of the DN part. */
static size_t name_uid_split(const char *v, size_t len)
{
    if (len >= 4 && v[len - 1] == 'B' && v[len - 2] == '\'') {
        for (size_t i = len - 2; i > 1; i--) {
            if (v[i - 1] == '\'' && v[i - 2] == '#') {
                return i - 2;
            }
        }
    }
    return len;
}

/* Resolves one DN-valued attribute value of the mapped entry into out.
 * *resolved = 0 when a membership value names an object that was not migrated, -1 when it
 * names a group and the (keyed) target has no nested groups. */
static int resolve_value(struct pipe *p, const struct dm_val *v, int is_member, struct buf *out,
                         int *resolved, struct dm_err *err)
{
    size_t dnlen = name_uid_split((const char *)v->data, v->len);
    char *dn = strndup((const char *)v->data, dnlen), *norm = NULL, *reb = NULL;
    struct state_object o = {0};
    struct dm_err e = {0};
    int rc = DM_OK;

    *resolved = 1;
    buf_reset(out);
    if (dn == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    if (is_member && dn_normalize(&norm, dn, &e) == DM_OK) {
        rc = state_object_by_source_dn(&o, p->state, norm, &e);
        if (rc == DM_OK && strcmp(o.status, "ok") == 0 && p->keyed &&
            strcmp(o.kind, "group") == 0) {
            *resolved = -1;
            goto done;
        }
        if (rc == DM_OK && strcmp(o.status, "ok") == 0) {
            rc = buf_puts(out, o.target_dn);
            goto suffix;
        }
        if (rc != DM_OK && rc != DM_ENOTFOUND) {
            *err = e;
            goto done;
        }
        rc = DM_OK;
        /* A plan predicts: members inside the migrated scopes will resolve. */
        if (p->o->mode == PIPE_PLAN && (dn_is_under(dn, p->cfg->source.users_base) == 1 ||
                                        dn_is_under(dn, p->cfg->source.groups_base) == 1)) {
            if (p->keyed) {
                rc = buf_puts(out, dn); /* a placeholder: the id exists only after the run */
                goto done;
            }
            goto rebase;
        }
        *resolved = 0;
        goto done;
    } else if (is_member) {
        *resolved = 0; /* not even a DN */
        goto done;
    }
rebase:
    if (dn_rebase(&reb, dn, p->cfg->source.conn.base, p->cfg->target.conn.base, &e) == DM_OK) {
        rc = buf_puts(out, reb);
    } else {
        rc = buf_puts(out, dn); /* outside the source base: kept as is */
    }
suffix:
    if (rc == DM_OK && dnlen < v->len) {
        rc = buf_append(out, v->data + dnlen, v->len - dnlen);
    }
done:
    state_object_clear(&o);
    free(dn);
    free(norm);
    free(reb);
    return rc;
}

static int in_list(char *const *list, const char *name)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcasecmp(list[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Rewrites every DN-valued attribute of the mapped entry; members that were not migrated
 * are left out and reported. */
static int rewrite_dn_attrs(struct pipe *p, struct entry *m, struct dm_err *err)
{
    struct buf b;
    int rc = DM_OK;

    buf_init(&b, 1 << 20);
    for (size_t i = 0; i < m->nattrs && rc == DM_OK; i++) {
        struct dm_attr *a = &m->attrs[i];
        int is_member = in_list(p->cfg->member_attrs, a->name);
        size_t out = 0;
        if (!is_member && (p->keyed || !in_list(p->cfg->dn_attrs, a->name))) {
            continue; /* a keyed target has no DNs to move other values to */
        }
        for (size_t j = 0; j < a->nvals && rc == DM_OK; j++) {
            int resolved;
            rc = resolve_value(p, &a->vals[j], is_member, &b, &resolved, err);
            if (rc != DM_OK) {
                break;
            }
            if (resolved < 0) {
                p->pass_nested++;
                if (p->pass == 1) {
                    log_warn("%s %s: %s \"%.*s\" is a group; the target has no nested groups, "
                             "so it is left out (flatten nesting in the source map)",
                             p->kind_name, m->dn, a->name, (int)a->vals[j].len,
                             (const char *)a->vals[j].data);
                }
                free(a->vals[j].data);
                continue;
            }
            if (!resolved) {
                p->pass_unresolved++;
                if (p->final_pass) {
                    p->st->unresolved_members++;
                    count_add(p->st->cats, &p->st->ncats, "member_unresolved", 1);
                    log_warn("%s %s: %s \"%.*s\" was not migrated; left out of the target",
                             p->kind_name, m->dn, a->name, (int)a->vals[j].len,
                             (const char *)a->vals[j].data);
                    if (p->o->mode == PIPE_RUN) {
                        char msg[1024];
                        snprintf(msg, sizeof(msg), "%s \"%.*s\" was not migrated; left out",
                                 a->name, (int)(a->vals[j].len > 900 ? 900 : a->vals[j].len),
                                 (const char *)a->vals[j].data);
                        rc = state_batch_begin(p->state, err);
                        if (rc == DM_OK) {
                            rc = state_error_add(p->state, p->st->run_id, m->key, m->dn,
                                                 "member_unresolved", msg, err);
                        }
                        if (rc == DM_OK) {
                            rc = state_batch_commit(p->state, err);
                        }
                    }
                }
                free(a->vals[j].data);
                continue;
            }
            free(a->vals[j].data);
            a->vals[out].len = b.len;
            a->vals[out].data = (unsigned char *)buf_steal(&b);
            out++;
        }
        if (rc == DM_OK) {
            a->nvals = out;
        }
    }
    buf_free(&b);
    return rc;
}

static int grow_batch(struct pipe *p)
{
    size_t n = (size_t)p->cfg->batch_size;

    if (p->cap >= n) {
        return DM_OK;
    }
    p->batch = calloc(n, sizeof(*p->batch));
    p->changes = calloc(n, sizeof(*p->changes));
    p->results = calloc(n, sizeof(*p->results));
    if (p->batch == NULL || p->changes == NULL || p->results == NULL) {
        return DM_ENOMEM;
    }
    p->cap = n;
    return DM_OK;
}

/* Parses a date in any of the forms directories use: GeneralizedTime, ISO 8601, or AD
 * FILETIME. *never is set for FILETIME's "never" values. Returns 0 on success. */
static int parse_when(int64_t *t, int *never, const struct dm_val *v)
{
    const char *s = (const char *)v->data;

    *never = 0;
    if (transform_parse_generalized(t, s, v->len) == DM_OK ||
        transform_parse_iso8601(t, s, v->len) == DM_OK) {
        return 0;
    }
    return transform_parse_filetime(t, never, s, v->len) == DM_OK ? 0 : -1;
}

/* Dated activity (users): NULL when active, else the reason; *attr names the attribute. */
static const char *activity(const struct pipe *p, const struct entry *src, const char **attr)
{
    const struct config_endpoint *s = &p->cfg->source;
    const struct dm_attr *a;
    int64_t t;
    int never;

    if (p->kind != MAP_USERS) {
        return NULL;
    }
    if (s->activity_start != NULL && (a = entry_attr(src, s->activity_start)) != NULL &&
        a->nvals > 0) {
        *attr = s->activity_start;
        if (parse_when(&t, &never, &a->vals[0]) != 0) {
            return "bad_date";
        }
        if (!never && t > p->now + (int64_t)s->lookahead_days * 86400) {
            return "not_yet_active";
        }
    }
    if (s->activity_end != NULL && (a = entry_attr(src, s->activity_end)) != NULL && a->nvals > 0) {
        *attr = s->activity_end;
        if (parse_when(&t, &never, &a->vals[0]) != 0) {
            return "bad_date";
        }
        if (!never && t <= p->now) {
            return "expired";
        }
    }
    return NULL;
}

static int strp_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Wave membership and --retry-from. (Dated activity is checked by the caller.) */
static int in_scope(struct pipe *p, const struct entry *src, const struct pending *q)
{
    const char *attr = NULL, *why;

    if (p->retry != NULL && !retry_has(p->retry, q->key)) {
        return 0;
    }
    if (p->kind == MAP_USERS && p->wave_members != NULL &&
        bsearch(&q->source_dn, p->wave_members, p->nwave_members, sizeof(char *), strp_cmp) ==
            NULL) {
        return 0;
    }
    if (p->o->mode == PIPE_VALIDATE) {
        return 1; /* validate reports inactive entries as rows */
    }
    why = activity(p, src, &attr);
    if (why != NULL) {
        log_debug("%s %s skipped: %s (%s)", p->kind_name, src->dn, why, attr);
        return 0;
    }
    return 1;
}

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

/* validate: phase 1 counts unique values; phase 2 checks every constraint and writes the
 * export row. Problems never carry values, so pii cannot leak through them. */
static int validate_entry(struct pipe *p, const struct entry *src, struct pending *q)
{
    struct map_problem *probs = NULL;
    size_t nprobs = 0, nuniq;
    const char **uattrs = NULL;
    struct entry *m = NULL;
    struct dm_err e = {0};
    const char *attr = NULL, *why, *status;
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
    } else if (!p->keyed && dn_rebase(&reb, src->dn, p->cfg->source.conn.base,
                                      p->cfg->target.conn.base, &e) != DM_OK) {
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
    why = rc == DM_OK ? activity(p, src, &attr) : NULL;
    if (why != NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%s (%s)",
                 strcmp(why, "expired") == 0          ? "end date has passed"
                 : strcmp(why, "not_yet_active") == 0 ? "start date is still ahead"
                                                      : "date cannot be parsed",
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
        count_add(p->st->cats, &p->st->ncats, nprobs ? probs[i].category : "", 1);
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

/* plan/run: the map's per-entry constraints (uniqueness needs the whole population and is
 * left to validate). A blocking problem fails the entry with DM_EINVAL naming it. */
static int check_constraints(struct pipe *p, const struct entry *m, struct dm_err *err)
{
    struct map_problem *probs = NULL;
    size_t n = 0;
    int rc = map_check(&probs, &n, p->cfg->map, p->kind, m, err);

    for (size_t i = 0; rc == DM_OK && i < n; i++) {
        if (is_blocking(p, probs[i].category)) {
            rc = dm_err_set(err, DM_EINVAL, "%s: %s", probs[i].category, probs[i].msg);
            dm_err_attr(err, probs[i].attr);
        }
    }
    free(probs);
    return rc;
}

static void cred_count(struct pipeline_stats *st, const char *scheme, const char *outcome)
{
    for (size_t i = 0; i < st->ncreds; i++) {
        if (strcmp(st->creds[i].scheme, scheme) == 0 &&
            strcmp(st->creds[i].outcome, outcome) == 0) {
            st->creds[i].n++;
            return;
        }
    }
    if (st->ncreds < PIPE_MAX_CATS) {
        st->creds[st->ncreds].scheme = scheme;
        st->creds[st->ncreds].outcome = outcome;
        st->creds[st->ncreds].n = 1;
        st->ncreds++;
    }
}

/* A credential-taking (keyed) target's view of the user's first userPassword value, parsed
 * once: *outcome is "import", "hook", "locked" (a lock marker or placeholder such as "*",
 * "!!" or an empty value: the user gets no password, schema/cred.h) or "error" (malformed;
 * the error, naming the scheme and never the value, goes to *e). No userPassword at all
 * (AD, or not readable) is the hook. Returns DM_OK or DM_ENOMEM. */
static int password_outcome(const struct dm_attr *pw, const char **outcome, struct dm_err *e)
{
    struct cred *c = NULL;
    enum cred_outcome oc;

    *outcome = "hook";
    if (pw == NULL || pw->nvals == 0) {
        return DM_OK; /* no password: the hook */
    }
    if (cred_parse(&c, pw->vals[0].data, pw->vals[0].len, e) != DM_OK) {
        if (e->rc == DM_ENOMEM) {
            return DM_ENOMEM;
        }
        *outcome = "error";
        return DM_OK;
    }
    oc = cred_okta_outcome(c, NULL);
    *outcome = oc == CRED_IMPORT ? "import" : oc == CRED_LOCKED ? "locked" : "hook";
    cred_free(c);
    return DM_OK;
}

/* Copies the user's first userPassword value into q (secret: wiped by pending_clear) for the
 * connector, which translates it. An empty value is passed too (non-NULL, length 0): it is
 * "no password" (locked), not "no value" (the hook). Returns DM_OK or DM_ENOMEM. */
static int take_password(struct pending *q, const struct entry *src)
{
    const struct dm_attr *pw = entry_attr(src, "userPassword");

    if (pw == NULL || pw->nvals == 0) {
        return DM_OK; /* no password: the hook */
    }
    q->pw = malloc(pw->vals[0].len + 1);
    if (q->pw == NULL) {
        return DM_ENOMEM;
    }
    memcpy(q->pw, pw->vals[0].data, pw->vals[0].len);
    q->pwlen = pw->vals[0].len;
    return DM_OK;
}

/* The read callback: one source entry through map, rebase, digest, journal check. */
static int on_entry(const struct entry *src, void *payload)
{
    struct pipe *p = payload;
    struct pending *q;
    struct entry *m = NULL;
    struct state_object o = {0};
    struct dm_err pw_err = {0}; /* keyed targets: why the userPassword value is malformed */
    char *reb = NULL;
    int rc = DM_OK;

    if (g_stop || (p->o->limit > 0 && p->processed >= p->o->limit)) {
        p->st->interrupted = 1;
        return PIPE_STOP;
    }
    if (p->vphase != 1) {
        p->processed++;
    }
    if (p->pass == 1 && p->vphase != 1) {
        p->kc->seen++;
    }
    log_set_context(p->st->run_id, src->dn);
    q = &p->batch[p->nbatch];
    memset(q, 0, sizeof(*q));
    q->key = strdup(src->key ? src->key : "");
    if (q->key == NULL || dn_normalize(&q->source_dn, src->dn, &q->err) != DM_OK) {
        q->failed = 1;
        q->category = "dn";
        dm_err_dn(&q->err, src->dn);
        if (p->o->mode == PIPE_VALIDATE) {
            rc = validate_entry(p, src, q);
            pending_clear(q);
            goto out_rc;
        }
        goto queued;
    }
    if (src->key == NULL || src->key[0] == '\0') {
        /* No key attribute on the entry: the normalized DN is the key. */
        free(q->key);
        q->key = strdup(q->source_dn);
    }
    if (!in_scope(p, src, q)) {
        if (p->vphase != 1) {
            p->kc->skipped++;
        }
        pending_clear(q);
        goto out;
    }
    if (p->o->mode == PIPE_VALIDATE) {
        rc = validate_entry(p, src, q);
        pending_clear(q);
        goto out_rc;
    }
    if (p->kind == MAP_USERS && p->pass == 1) {
        struct dm_attr *pw = entry_attr(src, "userPassword");
        const char *scheme =
            pw && pw->nvals ? cred_scheme(pw->vals[0].data, pw->vals[0].len) : "NONE";
        count_add(p->st->schemes, &p->st->nschemes, scheme, 1);
        if (p->keyed) {
            const char *outcome;
            if (password_outcome(pw, &outcome, &pw_err) != DM_OK) {
                p->fatal_rc = dm_err_set(&p->fatal_err, DM_ENOMEM, "out of memory");
                pending_clear(q);
                goto out;
            }
            cred_count(p->st, scheme, outcome);
        }
    }
    rc = map_apply(&m, p->cfg->map, p->kind, src, &q->err);
    if (rc != DM_OK) {
        q->failed = 1;
        q->category = "map";
        dm_err_dn(&q->err, src->dn);
        goto queued;
    }
    rc = check_constraints(p, m, &q->err);
    if (rc != DM_OK) {
        /* Blocking data-quality problems are reported, never sent to the target. */
        q->failed = 1;
        q->category = "constraint";
        dm_err_dn(&q->err, src->dn);
        entry_free(m);
        m = NULL;
        goto queued;
    }
    if (p->keyed) {
        /* The target names objects by a mapped attribute (login, group name). */
        const char *nk = p->tops->natural_key[p->kind == MAP_USERS ? 0 : 1];
        const char *v = nk != NULL ? entry_first(m, nk) : NULL;
        if (v == NULL || v[0] == '\0' || entry_set_dn(m, v) != DM_OK) {
            q->failed = 1;
            q->category = "constraint";
            dm_err_set(&q->err, DM_EINVAL, "the map gives no %s, which the target names %ss by",
                       nk ? nk : "name", p->kind_name);
            dm_err_attr(&q->err, nk);
            dm_err_dn(&q->err, src->dn);
            q->entry = m;
            m = NULL;
            goto queued;
        }
    } else if ((rc = dn_rebase(&reb, src->dn, p->cfg->source.conn.base, p->cfg->target.conn.base,
                               &q->err)) != DM_OK ||
               entry_set_dn(m, reb) != DM_OK) {
        q->failed = 1;
        q->category = "dn";
        if (rc == DM_ENOTFOUND) {
            dm_err_set(&q->err, DM_EINVAL, "entry is outside the source base %s",
                       p->cfg->source.conn.base);
        }
        dm_err_dn(&q->err, src->dn);
        q->entry = m;
        m = NULL;
        goto queued;
    }
    rc = rewrite_dn_attrs(p, m, &p->fatal_err);
    if (rc != DM_OK) {
        p->fatal_rc = rc;
        goto out;
    }
    entry_digest(m, q->digest);
    q->entry = m;
    m = NULL;
    rc = state_object_get(&o, p->state, p->kind_name, q->key, &p->fatal_err);
    if (rc == DM_OK) {
        q->has_record = 1;
        if (strcmp(o.status, "ok") == 0 && strcmp(o.digest, q->digest) == 0) {
            /* Same mapped content as the last successful write: nothing to do. */
            if (p->pass == 1) {
                p->kc->unchanged++;
            }
            state_object_clear(&o);
            pending_clear(q);
            goto out;
        }
    } else if (rc != DM_ENOTFOUND) {
        p->fatal_rc = rc;
        goto out;
    }
    if (p->keyed && q->has_record && o.target_dn != NULL && o.target_dn[0]) {
        q->target_id = strdup(o.target_dn);
        if (q->target_id == NULL) {
            p->fatal_rc = dm_err_set(&p->fatal_err, DM_ENOMEM, "out of memory");
            state_object_clear(&o);
            pending_clear(q);
            goto out;
        }
    }
    state_object_clear(&o);
    if (p->keyed && p->kind == MAP_USERS && q->target_id == NULL) {
        /* A user to create: a malformed hash fails this user only; otherwise the password
         * goes along (run only) and the connector translates it. */
        if (pw_err.rc != DM_OK) {
            q->failed = 1;
            q->category = "credential";
            q->err = pw_err;
            dm_err_dn(&q->err, src->dn);
        } else if (p->o->mode == PIPE_RUN && take_password(q, src) != DM_OK) {
            p->fatal_rc = dm_err_set(&p->fatal_err, DM_ENOMEM, "out of memory");
            pending_clear(q);
            goto out;
        }
    }
queued:
    p->nbatch++;
    if (p->nbatch >= p->cap) {
        rc = flush(p, &p->fatal_err);
        if (rc != DM_OK) {
            p->fatal_rc = rc;
        }
    }
out:
    entry_free(m);
    free(reb);
    log_set_context(p->st->run_id, NULL);
    return p->fatal_rc != DM_OK ? PIPE_STOP : 0;
out_rc:
    if (rc != DM_OK && p->fatal_rc == DM_OK) {
        p->fatal_rc = rc;
    }
    goto out;
}

/* The reader's callback: on_entry, whose non-zero "stop" becomes READER_STOP. */
static int on_entry_cb(const struct entry *e, void *payload)
{
    return on_entry(e, payload) != 0 ? READER_STOP : 0;
}

/* Reads one kind through the pipeline. */
static int run_kind(struct pipe *p, enum map_kind kind, int pass, struct dm_err *err)
{
    const struct config_endpoint *s = &p->cfg->source;
    struct scope sc = {0};
    struct kind_counts pass2 = {0};
    int rc;

    p->kind = kind;
    p->kind_name = kind == MAP_USERS ? "user" : "group";
    p->pass = pass;
    p->kc = kind == MAP_USERS ? &p->st->users : &p->st->groups;
    if (pass == 2) {
        /* Second group pass: only its creates/updates/failures add to the totals. */
        pass2 = *p->kc;
    }
    p->pass_unresolved = 0;
    p->pass_nested = 0;
    sc.base = kind == MAP_USERS ? p->users_base : s->groups_base;
    sc.filter = kind == MAP_USERS ? p->users_filter : s->groups_filter;
    sc.attrs = NULL;
    sc.key_attr = map_key_attr(p->cfg->map);
    sc.since = delta_since(p->delta);
    log_info("reading %ss from %s (base \"%s\", filter %s)%s", p->kind_name, s->conn.uri, sc.base,
             sc.filter, pass == 2 ? ", second pass for nested groups" : "");
    rc = reader_run(p->sops, p->src, &sc, (size_t)p->cfg->batch_size * 2, on_entry_cb, p, err);
    if (rc == READER_STOP) {
        rc = PIPE_STOP;
    }
    if (p->fatal_rc != DM_OK) {
        *err = p->fatal_err;
        return p->fatal_rc;
    }
    if (rc != DM_OK && rc != PIPE_STOP) {
        return rc;
    }
    rc = flush(p, err);
    if (pass == 2) {
        p->kc->seen = pass2.seen;
        p->kc->unchanged = pass2.unchanged;
    }
    progress(p, 1);
    return rc;
}

static int open_endpoint(const struct conn_ops **ops, struct conn **c,
                         const struct config_endpoint *ep, struct dm_err *err)
{
    int rc;

    *ops = conn_find(ep->conn.type);
    if (*ops == NULL) {
        return dm_err_set(err, DM_EINVAL, "%s: unknown connector type \"%s\"", ep->conn.role,
                          ep->conn.type);
    }
    rc = (*ops)->open(c, &ep->conn, err);
    if (rc != DM_OK) {
        /* Prefix the message with the endpoint so the user knows which end failed. */
        char tmp[sizeof(err->msg)];
        int n;
        memcpy(tmp, err->msg, sizeof(tmp));
        n = snprintf(err->msg, sizeof(err->msg), "%s %s: ", ep->conn.role, ep->conn.uri);
        if (n > 0 && (size_t)n < sizeof(err->msg)) {
            size_t room = sizeof(err->msg) - (size_t)n - 1, len = strnlen(tmp, sizeof(tmp));
            memcpy(err->msg + n, tmp, len < room ? len : room);
            err->msg[(size_t)n + (len < room ? len : room)] = '\0';
        }
    }
    return rc;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Applies --wave: narrows the users scope by filter or OU, or collects the member DNs of
 * the wave's group (a wave is small by design; its member list is held in memory). */
static int setup_wave(struct pipe *p, struct dm_err *err)
{
    const struct config_wave *w = NULL;
    struct entry *g = NULL;
    int rc = DM_OK;

    for (size_t i = 0; i < p->cfg->nwaves; i++) {
        if (strcmp(p->cfg->waves[i].name, p->o->wave) == 0) {
            w = &p->cfg->waves[i];
        }
    }
    if (w == NULL) {
        return dm_err_set(err, DM_EINVAL, "--wave %s: no such wave in the config", p->o->wave);
    }
    p->wave_groups = w->groups;
    if (w->ou != NULL) {
        p->users_base = w->ou;
    } else if (w->filter != NULL) {
        size_t n = strlen(p->users_filter) + strlen(w->filter) + 4;
        char *f = malloc(n);
        if (f == NULL) {
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        snprintf(f, n, "(&%s%s)", p->users_filter, w->filter);
        free(p->users_filter);
        p->users_filter = f;
    } else {
        rc = p->sops->lookup(&g, p->src, w->group, err);
        if (rc != DM_OK) {
            if (rc == DM_ENOTFOUND) {
                dm_err_set(err, DM_EINVAL, "wave %s: group %s not found in the source", w->name,
                           w->group);
                rc = DM_EINVAL;
            }
            return rc;
        }
        for (size_t i = 0; i < g->nattrs && rc == DM_OK; i++) {
            const struct dm_attr *a = &g->attrs[i];
            if (strcasecmp(a->name, "member") != 0 && strcasecmp(a->name, "uniqueMember") != 0) {
                continue;
            }
            for (size_t j = 0; j < a->nvals && rc == DM_OK; j++) {
                size_t dl = name_uid_split((const char *)a->vals[j].data, a->vals[j].len);
                char *dn = strndup((const char *)a->vals[j].data, dl), *norm = NULL;
                char **grown = realloc(p->wave_members, (p->nwave_members + 1) * sizeof(char *));
                struct dm_err e = {0};
                if (dn == NULL || grown == NULL) {
                    free(dn);
                    rc = dm_err_set(err, DM_ENOMEM, "out of memory");
                    break;
                }
                p->wave_members = grown;
                if (dn_normalize(&norm, dn, &e) == DM_OK) {
                    p->wave_members[p->nwave_members++] = norm;
                }
                free(dn);
            }
        }
        entry_free(g);
        if (p->wave_members == NULL) {
            p->wave_members = calloc(1, sizeof(char *)); /* empty wave: nobody */
        }
        qsort(p->wave_members, p->nwave_members, sizeof(char *), strp_cmp);
    }
    log_info("wave %s: %s", w->name,
             w->ou       ? "users under the wave's OU"
             : w->filter ? "users matching the wave's filter"
                         : "members of the wave's group");
    return rc;
}

int pipeline_execute(struct pipeline_stats *stats, const struct dm_config *cfg,
                     const struct pipeline_opts *o, struct dm_err *err)
{
    struct pipe p;
    struct sigaction sa;
    const char *status = "done";
    const char *kinds[] = {"plan", "run", "validate"};
    int rc;

    memset(&p, 0, sizeof(p));
    memset(stats, 0, sizeof(*stats));
    p.cfg = cfg;
    p.o = o;
    p.st = stats;
    p.t_start = now_sec();
    p.now = (int64_t)time(NULL);
    p.users_base = cfg->source.users_base;
    p.users_filter = strdup(cfg->source.users_filter);
    {
        const struct conn_ops *t = conn_find(cfg->target.conn.type);
        p.keyed = t != NULL && (t->caps & CONN_KEYED) != 0;
        stats->keyed = p.keyed;
    }
    if (!o->embedded) {
        g_stop = 0;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }

    rc = grow_batch(&p);
    if (rc != DM_OK || p.users_filter == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "out of memory");
        goto done;
    }
    if (o->retry_from != NULL) {
        rc = retry_load(&p.retry, o->retry_from, err);
        if (rc != DM_OK) {
            goto done;
        }
        log_info("retrying %zu entries listed in %s", retry_count(p.retry), o->retry_from);
    }
    if (o->mode != PIPE_VALIDATE) {
        rc = state_open(&p.state, cfg->state_path, err);
        if (rc != DM_OK) {
            goto done;
        }
    }
    /* Connect and bind both ends before anything is written anywhere. */
    rc = open_endpoint(&p.sops, &p.src, &cfg->source, err);
    if (rc != DM_OK) {
        goto done;
    }
    if (o->mode != PIPE_VALIDATE) {
        rc = open_endpoint(&p.tops, &p.dst, &cfg->target, err);
        if (rc != DM_OK) {
            goto done;
        }
    }
    if (o->wave != NULL) {
        rc = setup_wave(&p, err);
        if (rc != DM_OK) {
            goto done;
        }
    }
    if (o->mode == PIPE_VALIDATE) {
        rc = export_open(&p.exp, o->out_prefix ? o->out_prefix : "validation", err);
        if (rc != DM_OK) {
            goto done;
        }
        stats->export_csv = strdup(export_csv_path(p.exp));
        stats->export_jsonl = strdup(export_jsonl_path(p.exp));
    } else {
        rc = state_run_begin(&stats->run_id, p.state, o->run_kind ? o->run_kind : kinds[o->mode],
                             cfg->digest, err);
        if (rc != DM_OK) {
            goto done;
        }
    }
    log_set_context(stats->run_id, NULL);
    log_info("%s started: %s -> %s", kinds[o->mode], cfg->source.conn.uri, cfg->target.conn.uri);

    if (o->mode != PIPE_VALIDATE) {
        rc = delta_begin(&p.delta, cfg, p.sops, p.src, p.state, err);
        if (rc != DM_OK) {
            goto done;
        }
    }

    if (o->mode == PIPE_VALIDATE) {
        for (int k = 0; k < 2 && rc == DM_OK && !stats->interrupted; k++) {
            const char **ua;
            enum map_kind mk = k == 0 ? MAP_USERS : MAP_GROUPS;
            if (mk == MAP_GROUPS && o->wave != NULL && !p.wave_groups) {
                break;
            }
            uniq_free(p.uniq);
            p.uniq = NULL;
            if (map_unique_attrs(cfg->map, mk, &ua) > 0) {
                /* Uniqueness needs the whole population: count first, then check. */
                rc = uniq_new(&p.uniq, err);
                p.vphase = 1;
                if (rc == DM_OK) {
                    rc = run_kind(&p, mk, 1, err);
                }
            }
            p.vphase = 2;
            if (rc == DM_OK) {
                rc = run_kind(&p, mk, 1, err);
            }
        }
        if (rc == DM_OK) {
            rc = export_close(p.exp, err);
        } else {
            export_close(p.exp, NULL);
        }
        p.exp = NULL;
        goto done;
    }

    rc = run_kind(&p, MAP_USERS, 1, err);
    if (rc == DM_OK && !stats->interrupted && (o->wave == NULL || p.wave_groups)) {
        p.final_pass = o->mode == PIPE_PLAN;
        rc = run_kind(&p, MAP_GROUPS, 1, err);
        if (rc == DM_OK && !stats->interrupted && p.pass_unresolved > 0 && !p.final_pass) {
            /* Some members did not resolve: groups created in pass 1 may be among them. */
            p.final_pass = 1;
            rc = run_kind(&p, MAP_GROUPS, 2, err);
        }
    }
    if (p.pass_nested > 0) {
        count_add(stats->cats, &stats->ncats, "member_nested", p.pass_nested);
    }
    if (rc == DM_OK && !stats->interrupted && o->mode == PIPE_RUN) {
        rc = delta_finish(p.delta, stats->run_id, stats->users.failed + stats->groups.failed == 0,
                          &stats->source_deleted, err);
    }
    if (rc != DM_OK) {
        status = "failed";
    } else if (stats->interrupted) {
        status = g_stop ? "interrupted" : "done";
    }
    {
        struct run_counts c = {0};
        struct dm_err e2 = {0};
        c.created = stats->users.created + stats->groups.created;
        c.updated = stats->users.updated + stats->groups.updated;
        c.unchanged = stats->users.unchanged + stats->groups.unchanged;
        c.failed = stats->users.failed + stats->groups.failed;
        c.skipped = stats->users.skipped + stats->groups.skipped;
        if (state_run_end(p.state, stats->run_id, status, &c, &e2) != DM_OK && rc == DM_OK) {
            *err = e2;
            rc = e2.rc;
        }
    }
done:
    if (p.dst != NULL && p.tops->stats != NULL) {
        p.tops->stats(p.dst, &stats->target_stats);
        stats->have_target_stats = 1;
        if (stats->target_stats.requests > 0) {
            log_info("target traffic: %lu requests, %lu retries, %lu rate-limited (429), %lu "
                     "server errors, %lu timeouts or connection errors",
                     stats->target_stats.requests, stats->target_stats.retries,
                     stats->target_stats.rate_limited, stats->target_stats.server_errors,
                     stats->target_stats.transport_errors);
        }
    }
    for (size_t i = 0; i < p.nbatch; i++) {
        pending_clear(&p.batch[i]);
    }
    free(p.batch);
    free(p.changes);
    free(p.results);
    if (p.dst) {
        p.tops->close(p.dst);
    }
    if (p.src) {
        p.sops->close(p.src);
    }
    state_close(p.state);
    export_close(p.exp, NULL);
    uniq_free(p.uniq);
    retry_free(p.retry);
    for (size_t i = 0; i < p.nwave_members; i++) {
        free(p.wave_members[i]);
    }
    free(p.wave_members);
    free(p.users_filter);
    delta_free(p.delta);
    log_set_context(0, NULL);
    return rc;
}

void pipeline_stats_free(struct pipeline_stats *stats)
{
    for (size_t i = 0; i < stats->nexamples; i++) {
        free(stats->examples[i].key);
        free(stats->examples[i].dn);
    }
    stats->nexamples = 0;
    free(stats->export_csv);
    free(stats->export_jsonl);
    stats->export_csv = stats->export_jsonl = NULL;
    for (size_t i = 0; i < stats->nsamples; i++) {
        free(stats->samples[i].dn);
        free(stats->samples[i].attrs);
    }
    stats->nsamples = 0;
}
