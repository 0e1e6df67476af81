/*
 * flush.c: one batch of the pipeline (agent/pipe_priv.h): the target as it is, the planner's
 * decisions, then (run) intents in the journal, the apply, and the journal of the outcome;
 * (plan) counts and samples only.
 */
#include <config.h>
#include "agent/pipe_priv.h"
#include "agent/util/log.h"
#include "schema/cred.h"
#include "schema/dn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Records a per-object failure in the stats, the log and (run mode) the journal. */
int pipe_note_failure(struct pipe *p, const char *key, const char *dn, const char *category,
                      const struct dm_err *e, struct dm_err *err)
{
    char msg[1024];

    if (dn == NULL && e->dn[0]) {
        dn = e->dn;
    }
    dm_err_format(e, msg, sizeof(msg));
    pipe_count_add(p->st->cats, &p->st->ncats, category, 1);
    p->kc->failed++;
    log_set_context(p->st->run_id, dn);
    log_warn("%s %s failed [%s]: %s", p->kind_name, dn ? dn : "?", category, msg);
    if (p->o->mode != PIPE_RUN) {
        return DM_OK;
    }
    return state_error_add(p->state, p->st->run_id, key, dn, category, msg, err);
}

static struct kind_counts *counts_of(struct pipe *p, const struct pobj *q)
{
    return q->container ? &p->st->containers : p->kc;
}

static const char *kind_name_of(const struct pipe *p, const struct pobj *q)
{
    return q->container ? "container" : p->kind_name;
}

/* An object held back (not written): counted, logged with its own DN, journaled. */
static int note_held(struct pipe *p, struct pobj *q, const char *reason, const char *category,
                     const char *msg, struct dm_err *err)
{
    const char *dn = q->want != NULL && q->want->dn ? q->want->dn : q->source_dn;
    char line[1024];

    counts_of(p, q)->held++;
    pipe_count_add(p->st->cats, &p->st->ncats, category, 1);
    pipe_count_add(p->st->reasons, &p->st->nreasons, reason, 1);
    log_set_context(p->st->run_id, dn);
    log_warn("%s %s held back [%s]: %s (source %s)", kind_name_of(p, q), dn ? dn : "?", category,
             msg, q->source_dn ? q->source_dn : "?");
    if (p->o->mode != PIPE_RUN) {
        return DM_OK;
    }
    snprintf(line, sizeof(line), "%s (source %s)", msg, q->source_dn ? q->source_dn : "?");
    return state_error_add(p->state, p->st->run_id, q->key, dn, category, line, err);
}

static void add_sample(struct pipe *p, const char *action, const char *reason, const char *dn,
                       const char *attrs)
{
    struct pipe_sample *s;

    if (p->st->nsamples >= (size_t)p->o->samples || p->st->nsamples >= PIPE_MAX_SAMPLES) {
        return;
    }
    s = &p->st->samples[p->st->nsamples++];
    snprintf(s->action, sizeof(s->action), "%s", action);
    s->reason = reason;
    s->dn = strdup(dn ? dn : "");
    s->attrs = strdup(attrs ? attrs : "");
}

/* The attribute names of an entry, comma-separated (a create's sample). */
static char *names_of(const struct entry *e)
{
    struct buf b;

    buf_init(&b, 1 << 16);
    for (size_t i = 0; i < e->nattrs; i++) {
        if (buf_printf(&b, "%s%s", b.len ? "," : "", e->attrs[i].name) != DM_OK) {
            break;
        }
    }
    return b.data != NULL ? buf_steal(&b) : strdup("");
}

/* ---- the target as it is, and the planner ---- */

/* Looks up every object of the batch that must be looked at, all at once. */
static int look(struct pipe *p, struct dm_err *err)
{
    struct tview_req *reqs = calloc(p->nbatch, sizeof(*reqs));
    struct proj **out = calloc(p->nbatch, sizeof(*out));
    int *rcs = calloc(p->nbatch, sizeof(*rcs));
    struct dm_err *errs = calloc(p->nbatch, sizeof(*errs));
    int rc = DM_OK;

    if (reqs == NULL || out == NULL || rcs == NULL || errs == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < p->nbatch; i++) {
        struct pobj *q = &p->batch[i];
        if (!q->look || q->failed || q->held != NULL || q->container) {
            continue;
        }
        reqs[i].key = q->by_ref ? q->rec.target_ref : q->want->dn;
        reqs[i].by_ref = q->by_ref;
    }
    tview_get(p->tv, p->kind == MAP_USERS ? OBJ_USER : OBJ_GROUP, reqs, p->nbatch, out, rcs, errs);
    for (size_t i = 0; i < p->nbatch; i++) {
        struct pobj *q = &p->batch[i];
        if (reqs[i].key == NULL) {
            continue;
        }
        q->have = out[i];
        out[i] = NULL;
        q->have_rc = rcs[i];
        if (rcs[i] == DM_OK || rcs[i] == DM_ENOTFOUND) {
            continue;
        }
        if (rcs[i] == DM_EUNAVAIL || rcs[i] == DM_EAUTH) {
            /* the target cannot be read: nothing may be decided on a guess */
            *err = errs[i];
            rc = rcs[i];
            break;
        }
        q->failed = 1;
        q->category = dm_rc_category(rcs[i]);
        q->err = errs[i];
        dm_err_dn(&q->err, q->want->dn);
    }
done:
    for (size_t i = 0; out != NULL && i < p->nbatch; i++) {
        proj_free(out[i]);
    }
    free(reqs);
    free(out);
    free(rcs);
    free(errs);
    return rc;
}

/* The planner's decision for every object of the batch. */
static int decide(struct pipe *p, struct dm_err *err)
{
    int rc = DM_OK;

    for (size_t i = 0; i < p->nbatch && rc == DM_OK; i++) {
        struct pobj *q = &p->batch[i];
        struct plan_obj *o = &q->plan;

        if (q->failed || q->held != NULL || q->container) {
            continue;
        }
        o->kind = q->kind;
        o->want = q->want;
        o->corr = q->corr;
        o->rec = q->has_rec ? &q->rec : NULL;
        o->digest = q->digest;
        o->have = q->have;
        o->by_ref = q->by_ref;
        o->want_disabled = q->want_disabled;
        rc = planner_decide(o, &p->pctx, err);
        if (rc != DM_OK || o->op != PLAN_CREATE || !o->suffix) {
            continue;
        }
        /* suffix: the suffixed name must be free too */
        rc = pipe_apply_suffix(p, q, &q->err);
        if (rc != DM_OK) {
            q->failed = 1;
            q->category = "collision_target";
            rc = DM_OK;
            continue;
        }
        {
            struct tview_req r = {q->want->dn, 0};
            struct proj *have = NULL;
            int lrc;
            struct dm_err e = {0};
            tview_get(p->tv, q->kind == MAP_USERS ? OBJ_USER : OBJ_GROUP, &r, 1, &have, &lrc, &e);
            proj_free(have);
            if (lrc == DM_OK) {
                o->op = PLAN_HOLD;
                o->reason = PLAN_R_COLLISION_TARGET;
                snprintf(o->msg, sizeof(o->msg),
                         "already at the target and not created by dirmig, and so is its "
                         "suffixed name %s",
                         q->want->dn);
            } else if (lrc != DM_ENOTFOUND) {
                q->failed = 1;
                q->category = dm_rc_category(lrc);
                q->err = e;
            }
        }
    }
    return rc;
}

/* ---- plan ---- */

static const char *action_of(enum plan_op op)
{
    switch (op) {
    case PLAN_CREATE:
        return "create";
    case PLAN_UPDATE:
        return "update";
    case PLAN_MOVE:
        return "move";
    case PLAN_HOLD:
        return "hold";
    default:
        return "none";
    }
}

static int count_plan(struct pipe *p, struct dm_err *err)
{
    int rc = DM_OK;

    for (size_t i = 0; i < p->nbatch && rc == DM_OK; i++) {
        struct pobj *q = &p->batch[i];
        struct kind_counts *kc = counts_of(p, q);
        const char *dn = q->want != NULL ? q->want->dn : NULL;

        if (q->failed) {
            rc = pipe_note_failure(p, q->key, dn, q->category, &q->err, err);
            continue;
        }
        if (q->held != NULL) {
            rc = note_held(p, q, q->held, q->category, q->err.msg, err);
            continue;
        }
        switch (q->plan.op) {
        case PLAN_NONE:
            kc->unchanged++;
            continue;
        case PLAN_HOLD:
            rc = note_held(p, q, q->plan.reason, "collision_target", q->plan.msg, err);
            continue;
        case PLAN_CREATE: {
            char *names = names_of(q->want);
            kc->created++;
            add_sample(p, "create", q->plan.reason, dn, names);
            free(names);
            break;
        }
        default:
            kc->updated++;
            add_sample(p, action_of(q->plan.op), q->plan.reason, dn, q->plan.attrs);
            break;
        }
        pipe_count_add(p->st->reasons, &p->st->nreasons, q->plan.reason, 1);
    }
    return rc;
}

/* ---- run ---- */

/* The merge attributes of q's change (array owned by q). */
static int merge_list(struct pipe *p, struct pobj *q)
{
    const struct entry *e = q->plan.mod;
    size_t n = 0;

    q->merge = calloc((e != NULL ? e->nattrs : 0) + 1, sizeof(*q->merge));
    if (q->merge == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; e != NULL && i < e->nattrs; i++) {
        if (map_attr_ownership(p->cfg->map, q->kind, e->attrs[i].name) == MAP_OWN_MERGE) {
            q->merge[n++] = e->attrs[i].name;
        }
    }
    return DM_OK;
}

/* Intents: every create is journaled as pending before it is sent, so a run resumed after
 * a crash looks the object up instead of creating it a second time. */
static int write_intents(struct pipe *p, struct dm_err *err)
{
    int any = 0, rc = DM_OK;

    for (size_t i = 0; i < p->nbatch; i++) {
        const struct pobj *q = &p->batch[i];
        any |= !q->failed && q->held == NULL && q->plan.op == PLAN_CREATE;
    }
    if (!any) {
        return DM_OK;
    }
    rc = state_batch_begin(p->state, err);
    for (size_t i = 0; i < p->nbatch && rc == DM_OK; i++) {
        const struct pobj *q = &p->batch[i];
        struct state_object o = {0};
        if (q->failed || q->held != NULL || q->plan.op != PLAN_CREATE) {
            continue;
        }
        o.kind = (char *)(q->container ? "container" : p->kind_name);
        o.key = q->key;
        o.source_dn = q->source_dn ? q->source_dn : (char *)"";
        o.target_ref = q->want->dn;
        o.status = (char *)"pending";
        o.last_run = p->st->run_id;
        rc = state_object_put(p->state, &o, err);
    }
    if (rc == DM_OK) {
        rc = state_batch_commit(p->state, err);
    }
    return rc;
}

/* The changes to send; returns how many. */
static int build_changes(struct pipe *p, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < p->nbatch; i++) {
        struct pobj *q = &p->batch[i];
        struct change *c = &p->changes[*n];
        enum plan_op op = q->plan.op;

        if (q->failed || q->held != NULL || op == PLAN_NONE || op == PLAN_HOLD) {
            continue;
        }
        memset(c, 0, sizeof(*c));
        c->kind = q->kind == MAP_USERS ? OBJ_USER : OBJ_GROUP;
        c->state = q->plan.state;
        c->undo = p->undo;
        /* a user disabled in the source leaves its groups at the target (leavers) */
        c->leave_groups = q->plan.state == CHANGE_STATE_DISABLE && op != PLAN_CREATE &&
                          p->cfg->leavers.remove_from_groups;
        if (op == PLAN_CREATE) {
            c->op = CHANGE_ADD;
            c->entry = q->want;
            c->adopt = q->plan.adopt;
            c->password = q->pw;
            c->password_len = q->pwlen;
        } else {
            if (merge_list(p, q) != DM_OK) {
                return DM_ENOMEM;
            }
            c->op = op == PLAN_MOVE ? CHANGE_MOVE : CHANGE_MODIFY;
            c->entry = q->plan.mod;
            c->merge = q->merge;
            c->target_id = q->have != NULL ? q->have->ref : NULL;
            c->old_ref = q->have != NULL ? q->have->ref : NULL;
        }
        memset(&p->results[*n], 0, sizeof(p->results[*n]));
        (*n)++;
    }
    return DM_OK;
}

/* The reference of an existing object after its change: the new DN after a move, else
 * what the target calls it (its DN, or the id the target assigned). */
static const char *ref_after(const struct pobj *q)
{
    if (q->plan.op == PLAN_MOVE || (q->have == NULL && !q->has_rec)) {
        return q->want->dn;
    }
    return q->have != NULL ? q->have->ref : q->rec.target_ref;
}

/* The journal row of q after its change (r: the connector's result, NULL when none was
 * sent). */
static int journal_object(struct pipe *p, struct pobj *q, const struct apply_result *r,
                          struct dm_err *err)
{
    struct state_object o = {0};
    char *written = NULL;
    int ok = r == NULL || (r->status != APPLY_FAILED && r->status != APPLY_EXISTS);
    int rc;

    o.kind = (char *)(q->container ? "container" : p->kind_name);
    o.key = q->key;
    o.source_dn = q->source_dn ? q->source_dn : (char *)"";
    o.last_run = p->st->run_id;
    o.linked = (q->has_rec && q->rec.linked) || q->plan.linked;
    o.suffixed = (q->has_rec && q->rec.suffixed) || q->plan.suffix;
    if (q->plan.op == PLAN_CREATE) {
        if (r != NULL && r->status == APPLY_EXISTS) {
            /* not ours after all: no intent stays behind to adopt it later */
            o.status = (char *)"failed";
            o.target_ref = (char *)"";
        } else if (!ok) {
            o.status = (char *)"pending"; /* the outcome is not known for sure: look next time */
            o.target_ref = q->want->dn;
        } else {
            o.status = (char *)"ok";
            o.target_ref = r != NULL && r->target_id[0] ? (char *)r->target_id : q->want->dn;
        }
    } else {
        o.status = ok ? (char *)"ok" : (char *)"failed";
        o.target_ref = (char *)ref_after(q);
        if (!ok && q->plan.op == PLAN_MOVE && (r == NULL || !r->moved) && q->have != NULL) {
            /* the rename was not made: the object is where it was (never claim the DN of
             * an entry that may be someone else's) */
            o.target_ref = q->have->ref;
        }
    }
    o.disabled_at = q->has_rec ? q->rec.disabled_at : 0;
    if (ok && q->plan.state == CHANGE_STATE_DISABLE) {
        o.disabled_at = (long long)time(NULL);
    } else if (ok && q->plan.state == CHANGE_STATE_ENABLE) {
        o.disabled_at = 0;
    }
    if (ok) {
        snprintf(o.digest, sizeof(o.digest), "%s", q->digest);
        written = planner_written(q->want, p->cfg->map, q->kind);
        o.attrs = written;
    } else if (q->has_rec) {
        o.attrs = q->rec.attrs; /* a failed write changes nothing we own */
    }
    if (o.target_ref == NULL) {
        o.target_ref = (char *)"";
    }
    rc = state_object_put(p->state, &o, err);
    free(written);
    return rc;
}

/* The journal row of an object that was not written this run (failed before reaching the
 * target, or held back): status failed, so the problem stays open; what the journal knew
 * of it (its reference at the target, what dirmig owns) is kept. */
static int journal_unwritten(struct pipe *p, struct pobj *q, struct dm_err *err)
{
    struct state_object o = {0};

    if (q->key == NULL || q->key[0] == '\0') {
        return DM_OK;
    }
    o.kind = (char *)(q->container ? "container" : p->kind_name);
    o.key = q->key;
    o.source_dn = q->source_dn ? q->source_dn : (char *)"";
    o.last_run = p->st->run_id;
    o.status = (char *)"failed";
    o.target_ref = (char *)"";
    if (q->has_rec) {
        if (strcmp(q->rec.status, "pending") == 0) {
            o.status = (char *)"pending"; /* an intent stays an intent */
        }
        o.target_ref = q->rec.target_ref != NULL ? q->rec.target_ref : (char *)"";
        o.attrs = q->rec.attrs;
        o.linked = q->rec.linked;
        o.suffixed = q->rec.suffixed;
    }
    return state_object_put(p->state, &o, err);
}

/* 1 when an unchanged object's journal row must still be written (first sight, a pending
 * intent that turned out done, a link, a digest or reference that moved). */
static int row_stale(const struct pobj *q)
{
    if (!q->has_rec || strcmp(q->rec.status, "ok") != 0 || q->plan.linked ||
        strcmp(q->rec.digest, q->digest) != 0) {
        return 1;
    }
    return strcmp(q->rec.target_ref, ref_after(q)) != 0;
}

/* How a user the target just created signs in there (the journal's user_creations): with
 * the password-import hook, with a credential that went with it (a password attribute of
 * the entry, or the password the connector translated), not at all because that password
 * is a lock marker or placeholder (schema/cred.h; carried byte-exact to an LDAP target,
 * never a password elsewhere), or not at all yet. r is the connector's answer to the
 * create, or NULL for a create of an earlier run confirmed now: then what the pipeline
 * planned for the password says it. */
static const char *signin_of(const struct pobj *q, const struct apply_result *r)
{
    int locked = 0;

    if (r != NULL ? r->created_with_hook : q->hook_planned) {
        return STATE_SIGNIN_HOOK;
    }
    if (q->pw != NULL) {
        return cred_is_locked(q->pw, q->pwlen) ? STATE_SIGNIN_LOCKED : STATE_SIGNIN_IMPORT;
    }
    for (size_t i = 0; i < q->want->nattrs; i++) {
        const struct dm_attr *a = &q->want->attrs[i];
        if (a->nvals == 0 || !entry_is_sensitive_attr(a->name)) {
            continue;
        }
        for (size_t j = 0; j < a->nvals; j++) {
            if (!cred_is_locked(a->vals[j].data, a->vals[j].len)) {
                return STATE_SIGNIN_IMPORT;
            }
        }
        locked = 1;
    }
    return locked ? STATE_SIGNIN_LOCKED : STATE_SIGNIN_NONE;
}

/* A create of an earlier run whose answer never came (a pending intent) that this run
 * found at the target: it is ours, and the journal records it as created now (with the
 * sign-in path it was sent with), so that status counts it. r: this run's answer for the
 * object, NULL when nothing was sent. */
static int confirm_intent(struct pipe *p, const struct pobj *q, const struct apply_result *r,
                          struct dm_err *err)
{
    if (!q->has_rec || strcmp(q->rec.status, "pending") != 0 || q->container ||
        q->kind != MAP_USERS) {
        return DM_OK;
    }
    if (r == NULL ? q->have == NULL
                  : r->status == APPLY_CREATED || r->status == APPLY_EXISTS ||
                        (r->status == APPLY_FAILED && q->plan.op == PLAN_CREATE)) {
        return DM_OK; /* not there, created by this run, or not ours */
    }
    log_info("user %s: the create of run %lld is at the target (its answer was lost)", q->want->dn,
             q->rec.last_run);
    return state_user_created(p->state, p->st->run_id, q->key, signin_of(q, NULL), err);
}

/* The outcome of an object that was not sent (failed before the target, held back, or
 * unchanged): counted and journaled (inside the caller's journal batch). 1 in *sent when
 * the object has a change to send instead (nothing done). */
static int record_unsent(struct pipe *p, struct pobj *q, int *sent, struct dm_err *err)
{
    const char *dn = q->want != NULL ? q->want->dn : NULL;
    int rc = DM_OK;

    *sent = 0;
    log_set_context(p->st->run_id, dn);
    if (q->failed) {
        rc = pipe_note_failure(p, q->key, dn, q->category, &q->err, err);
    } else if (q->held != NULL) {
        rc = note_held(p, q, q->held, q->category, q->err.msg, err);
    } else if (q->plan.op == PLAN_HOLD) {
        rc = note_held(p, q, q->plan.reason, "collision_target", q->plan.msg, err);
    }
    if (q->failed || q->held != NULL || q->plan.op == PLAN_HOLD) {
        return rc == DM_OK ? journal_unwritten(p, q, err) : rc;
    }
    if (q->plan.op == PLAN_NONE) {
        counts_of(p, q)->unchanged++;
        rc = confirm_intent(p, q, NULL, err);
        if (rc == DM_OK && row_stale(q)) {
            rc = journal_object(p, q, NULL, err);
        }
        return rc;
    }
    *sent = 1;
    return DM_OK;
}

/* The outcome of q's change c as the target answered it (r): counted and journaled (inside
 * the caller's journal batch), with its undo record. */
static int record_sent(struct pipe *p, struct pobj *q, const struct change *c,
                       const struct apply_result *r, struct dm_err *err)
{
    struct kind_counts *kc = counts_of(p, q);
    const char *dn = q->want != NULL ? q->want->dn : NULL;
    int rc = DM_OK;

    log_set_context(p->st->run_id, dn);
    switch (r->status) {
    case APPLY_CREATED:
        kc->created++;
        if (r->created_with_hook) {
            p->st->created_with_hook++;
        }
        if (!q->container && q->kind == MAP_USERS) {
            rc = state_user_created(p->state, p->st->run_id, q->key, signin_of(q, r), err);
        }
        break;
    case APPLY_UPDATED:
        kc->updated++;
        break;
    case APPLY_UNCHANGED:
        kc->unchanged++;
        break;
    case APPLY_EXISTS:
        rc = note_held(p, q, PLAN_R_COLLISION_TARGET, "collision_target", r->err.msg, err);
        break;
    default:
        rc = pipe_note_failure(p, q->key, dn, dm_rc_category(r->err.rc), &r->err, err);
        break;
    }
    if (rc == DM_OK && (r->status == APPLY_CREATED || r->status == APPLY_UPDATED)) {
        pipe_count_add(p->st->reasons, &p->st->nreasons, q->plan.reason, 1);
    }
    if (rc == DM_OK) {
        rc = confirm_intent(p, q, r, err);
    }
    if (rc == DM_OK) {
        rc = journal_object(p, q, r, err);
    }
    if (rc == DM_OK && p->undo) {
        struct undo_change u = {0};
        u.run = p->st->run_id;
        u.wave = p->wave;
        u.kind = kind_name_of(p, q);
        u.key = q->key;
        u.source_dn = q->source_dn;
        u.change = c;
        u.result = r;
        u.row_before = q->has_rec ? &q->rec : NULL;
        u.dn_attrs = (const char *const *)p->cfg->dn_attrs;
        rc = undo_record(p->state, &u, err);
    }
    return rc;
}

/* Counts and journals the outcome of the batch. */
static int record(struct pipe *p, size_t nsent, struct dm_err *err)
{
    size_t k = 0;
    int rc = state_batch_begin(p->state, err);

    for (size_t i = 0; i < p->nbatch && rc == DM_OK; i++) {
        struct pobj *q = &p->batch[i];
        int sent = 0;

        rc = record_unsent(p, q, &sent, err);
        if (rc != DM_OK || !sent || k >= nsent) {
            continue;
        }
        rc = record_sent(p, q, &p->changes[k], &p->results[k], err);
        k++;
    }
    log_set_context(p->st->run_id, NULL);
    if (rc == DM_OK) {
        rc = state_batch_commit(p->state, err);
    }
    return rc;
}

static int apply_run(struct pipe *p, struct dm_err *err)
{
    size_t n = 0;
    int rc = write_intents(p, err);

    if (rc != DM_OK) {
        return rc;
    }
    if (build_changes(p, &n) != DM_OK) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    if (n > 0) {
        rc = p->tops->apply(p->dst, p->changes, n, p->results);
        if (rc != DM_OK) {
            for (size_t i = 0; i < n; i++) {
                undo_images_free(&p->results[i]);
            }
            return dm_err_set(err, rc,
                              "target connection lost during a batch and could not "
                              "be re-established");
        }
    }
    rc = record(p, n, err);
    for (size_t i = 0; i < n; i++) {
        undo_images_free(&p->results[i]);
    }
    return rc;
}

/* ---- the sliding window (a target with conn_ops.apply_start) ---- */

/* A batch whose changes are in flight: the objects, changes and results it owns (moved out
 * of struct pipe), which change belongs to which object, and the answers in arrival order. */
struct pipe_flight {
    struct pipe_flight *next;
    struct pipe *p;
    struct pobj *batch;
    size_t nbatch;
    struct change *changes;
    struct apply_result *results;
    size_t *obj;   /* obj[i]: the batch index of change i */
    size_t *doneq; /* change indexes in the order they were answered */
    size_t nsent, ndone, nrecorded;
};

/* Journal an answer batch at least this often, and once this many answers wait. */
#define WINDOW_REAP_S 0.2
#define WINDOW_REAP_N 64

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* conn_done_fn: notes the answer; it is journaled later (the connector may be inside a
 * look-up of the next batch: nothing here touches the journal or the connection). */
static void window_done_cb(const struct change *v, struct apply_result *res, void *payload)
{
    struct pipe_flight *f = payload;

    (void)res;
    f->doneq[f->ndone++] = (size_t)(v - f->changes);
    f->p->window_done++;
}

static void flight_free(struct pipe_flight *f)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->nbatch; i++) {
        pipe_pobj_clear(&f->batch[i]);
    }
    for (size_t i = 0; i < f->nsent; i++) {
        undo_images_free(&f->results[i]);
    }
    free(f->batch);
    free(f->changes);
    free(f->results);
    free(f->obj);
    free(f->doneq);
    free(f);
}

/* Journals every answer that came (one journal commit) and frees the batches all of whose
 * changes are journaled. */
static int window_reap(struct pipe *p, struct dm_err *err)
{
    struct pipe_flight **pp = &p->flights;
    int rc = DM_OK;

    if (p->window_done == 0) {
        return DM_OK;
    }
    rc = state_batch_begin(p->state, err);
    for (struct pipe_flight *f = p->flights; f != NULL && rc == DM_OK; f = f->next) {
        while (f->nrecorded < f->ndone && rc == DM_OK) {
            size_t i = f->doneq[f->nrecorded++];
            rc = record_sent(p, &f->batch[f->obj[i]], &f->changes[i], &f->results[i], err);
            undo_images_free(&f->results[i]);
            p->window_done--;
            p->window_sent--;
        }
    }
    log_set_context(p->st->run_id, NULL);
    if (rc == DM_OK) {
        rc = state_batch_commit(p->state, err);
    }
    while (*pp != NULL) {
        struct pipe_flight *f = *pp;
        if (f->nrecorded == f->nsent) {
            *pp = f->next;
            flight_free(f);
        } else {
            pp = &f->next;
        }
    }
    p->window_reaped = mono_s();
    pipe_progress_detail(p);
    return rc;
}

/* Moves the window on (waiting at most timeout_ms when nothing is answered at once). */
static int window_step(struct pipe *p, long timeout_ms, struct dm_err *err)
{
    size_t inflight = 0;
    int rc = p->tops->apply_wait(p->dst, timeout_ms, &inflight, err);

    if (rc != DM_OK) {
        /* every change in flight was answered as failed: journal that, then stop */
        struct dm_err e = *err;
        (void)window_reap(p, err);
        *err = e;
        return dm_err_set(err, rc,
                          "target connection lost with changes in flight and could not be "
                          "re-established: %s",
                          e.msg);
    }
    return DM_OK;
}

int pipe_window_poll(struct pipe *p, struct dm_err *err)
{
    int rc;

    if (p->window_sent == 0) {
        return DM_OK;
    }
    rc = window_step(p, 0, err);
    if (rc == DM_OK && (p->window_done >= WINDOW_REAP_N ||
                        (p->window_done > 0 && mono_s() - p->window_reaped >= WINDOW_REAP_S))) {
        rc = window_reap(p, err);
    }
    return rc;
}

/* Waits until at most max changes are unanswered or unjournaled. */
static int window_wait(struct pipe *p, size_t max, struct dm_err *err)
{
    int rc = DM_OK;

    while (rc == DM_OK && p->window_sent > max) {
        if (p->window_sent - p->window_done > max) {
            rc = window_step(p, 1000, err);
        }
        if (rc == DM_OK &&
            (p->window_sent - p->window_done <= max || p->window_done >= WINDOW_REAP_N ||
             mono_s() - p->window_reaped >= WINDOW_REAP_S)) {
            rc = window_reap(p, err);
        }
    }
    return rc;
}

int pipe_window_drain(struct pipe *p, struct dm_err *err)
{
    return window_wait(p, 0, err);
}

void pipe_window_free(struct pipe *p)
{
    while (p->flights != NULL) {
        struct pipe_flight *f = p->flights;
        p->flights = f->next;
        flight_free(f);
    }
    p->window_sent = p->window_done = 0;
}

/* run, a target with apply_start: intents, the outcome of every object not sent, then the
 * batch moves into a flight whose changes start in the target's window; fresh arrays take
 * its place. */
static int apply_stream(struct pipe *p, struct dm_err *err)
{
    struct pipe_flight *f = NULL;
    size_t n = 0, k = 0;
    int rc = write_intents(p, err);

    if (rc != DM_OK) {
        return rc;
    }
    if (build_changes(p, &n) != DM_OK) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    if (n > 0) {
        f = calloc(1, sizeof(*f));
        if (f != NULL) {
            f->obj = calloc(n, sizeof(*f->obj));
            f->doneq = calloc(n, sizeof(*f->doneq));
            f->batch = calloc(p->cap, sizeof(*f->batch));
            f->changes = calloc(p->cap, sizeof(*f->changes));
            f->results = calloc(p->cap, sizeof(*f->results));
        }
        if (f == NULL || f->obj == NULL || f->doneq == NULL || f->batch == NULL ||
            f->changes == NULL || f->results == NULL) {
            flight_free(f);
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
    }
    rc = state_batch_begin(p->state, err);
    for (size_t i = 0; i < p->nbatch && rc == DM_OK; i++) {
        int sent = 0;
        rc = record_unsent(p, &p->batch[i], &sent, err);
        if (rc == DM_OK && sent && k < n) {
            f->obj[k++] = i;
        }
    }
    log_set_context(p->st->run_id, NULL);
    if (rc == DM_OK) {
        rc = state_batch_commit(p->state, err);
    }
    if (rc != DM_OK || n == 0) {
        flight_free(f);
        return rc;
    }
    /* the flight takes the batch; the pipe goes on with the flight's fresh arrays */
    {
        struct pobj *b = f->batch;
        struct change *c = f->changes;
        struct apply_result *r = f->results;
        f->batch = p->batch;
        f->changes = p->changes;
        f->results = p->results;
        p->batch = b;
        p->changes = c;
        p->results = r;
    }
    f->p = p;
    f->nbatch = p->nbatch;
    f->nsent = n;
    p->nbatch = 0;
    {
        struct pipe_flight **pp = &p->flights;
        while (*pp != NULL) {
            pp = &(*pp)->next;
        }
        *pp = f;
    }
    p->window_sent += n;
    for (size_t i = 0; i < n; i++) {
        if (p->tops->apply_start(p->dst, &f->changes[i], &f->results[i], window_done_cb, f) !=
            DM_OK) {
            f->results[i].status = APPLY_FAILED;
            dm_err_set(&f->results[i].err, DM_ENOMEM, "out of memory");
            dm_err_dn(&f->results[i].err, f->changes[i].entry->dn);
            window_done_cb(&f->changes[i], &f->results[i], f);
        }
    }
    /* one batch in flight while the next is read: wait only beyond that */
    return window_wait(p, p->window_max, err);
}

int pipe_flush(struct pipe *p, struct dm_err *err)
{
    int rc;

    state_read_end(p->state); /* the batch's journal reads are done */
    if (p->nbatch == 0) {
        return DM_OK;
    }
    rc = look(p, err);
    if (rc == DM_OK) {
        rc = decide(p, err);
    }
    if (rc == DM_OK && p->o->mode == PIPE_RUN) {
        rc = pipe_saved_check(p, err); /* run --plan: only the plan's changes */
    }
    if (rc == DM_OK) {
        rc = p->o->mode != PIPE_RUN ? count_plan(p, err)
             : p->window_max > 0    ? apply_stream(p, err)
                                    : apply_run(p, err);
    }
    if (rc == DM_OK && p->o->mode == PIPE_PLAN) {
        rc = pipe_saved_write(p, err); /* plan --out */
    }
    for (size_t i = 0; i < p->nbatch; i++) {
        pipe_pobj_clear(&p->batch[i]);
    }
    p->nbatch = 0;
    p->queued = 0;
    pipe_progress(p);
    pipe_progress_detail(p);
    return rc;
}
