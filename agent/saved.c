/*
 * saved.c: saved plans in the pipeline (agent/pipe_priv.h, file format in agent/planfile.h).
 *
 * `dirmig plan --out FILE` writes every change the plan decides (creates, updates, moves,
 * containers, leavers and accounts only the target has) with the digests of the source
 * entry and of the target object the decision was computed from.
 *
 * `dirmig run --plan FILE` applies exactly those changes. The plan must have been made for
 * this target and this configuration and map (and be younger than --max-age); its changes
 * go into a work table of the journal (agent/state.h), so a plan of any size costs no
 * memory. The run reads the source as usual and leaves out every object the plan does not
 * name (not even looked at); each planned object is planned again from the source and the
 * target as they are now, and its change is made only when the source digest, the target
 * digest and the operation are the ones of the plan. Any other change is refused: held
 * back with the reason "plan_stale", counted, journaled and listed. A leaver is disabled
 * or deleted only when it still is one, the gates pass, and the plan has that change. At
 * the end every planned change the run never met (the object left the source, the run was
 * blocked) is listed as refused too.
 */
#include <config.h>
#include "agent/pipe_priv.h"
#include "agent/util/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *kind_of(const struct pipe *p, const struct pobj *q)
{
    return q->container ? "container" : p->kind_name;
}

static const char *op_name(enum plan_op op)
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

static const char *plan_state_name(int st)
{
    return st == CHANGE_STATE_DISABLE ? "disable" : st == CHANGE_STATE_ENABLE ? "enable" : "keep";
}

static struct kind_counts *counts_for(struct pipe *p, const char *kind)
{
    if (strcmp(kind, "group") == 0) {
        return &p->st->groups;
    }
    return strcmp(kind, "container") == 0 ? &p->st->containers : &p->st->users;
}

/* Lists one planned change that is not made: counted, kept for the report (the first
 * PIPE_MAX_SAMPLES) and logged. */
static void refusal(struct pipe *p, const char *op, const char *kind, const char *dn,
                    const char *why)
{
    struct pipe_refusal *r;

    p->st->plan_refused++;
    log_set_context(p->st->run_id, dn);
    log_warn("saved plan: %s of %s %s refused: %s", op, kind, dn, why);
    log_set_context(p->st->run_id, NULL);
    if (p->st->nrefusals >= PIPE_MAX_SAMPLES) {
        return;
    }
    r = &p->st->refusals[p->st->nrefusals];
    r->dn = strdup(dn);
    if (r->dn == NULL) {
        return;
    }
    snprintf(r->op, sizeof(r->op), "%s", op);
    r->kind = strcmp(kind, "group") == 0       ? "group"
              : strcmp(kind, "container") == 0 ? "container"
              : strcmp(kind, "unmatched") == 0 ? "unmatched"
                                               : "user";
    snprintf(r->why, sizeof(r->why), "%s", why);
    p->st->nrefusals++;
}

/* ---- run --plan: loading and checking the plan ---- */

struct load_ctx {
    struct pipe *p;
    const char *path;
    struct dm_err *err;
};

static int load_change(const struct planfile_change *c, void *payload)
{
    struct load_ctx *x = payload;
    struct state_planned pl = {0};
    int rc;

    pl.kind = (char *)c->kind;
    pl.key = (char *)c->key;
    pl.op = (char *)c->op;
    pl.target = (char *)c->target;
    pl.source_digest = (char *)c->source_digest;
    pl.target_digest = (char *)c->target_digest;
    pl.line = c->line;
    rc = state_plan_add(x->p->state, &pl, x->err);
    if (rc == DM_EEXISTS) {
        struct state_planned first = {0};
        long at =
            state_plan_get(&first, x->p->state, c->kind, c->key, NULL) == DM_OK ? first.line : 0;
        state_planned_clear(&first);
        return dm_err_set(x->err, DM_EINVAL,
                          "%s:%ld: a second change for %s %s (the first is at line %ld)", x->path,
                          c->line, c->kind, c->target, at);
    }
    return rc;
}

/* The map file the configuration names, or NULL for an inline or default map. */
static const char *map_file(const struct dm_config *cfg)
{
    const char *m = config_map_origin(cfg);

    return m != NULL && m[0] == '/' ? m : NULL;
}

static void age_text(char *buf, size_t len, long long s)
{
    if (s >= 2 * 86400) {
        snprintf(buf, len, "%lld days", s / 86400);
    } else if (s >= 2 * 3600) {
        snprintf(buf, len, "%lld hours", s / 3600);
    } else if (s >= 120) {
        snprintf(buf, len, "%lld minutes", s / 60);
    } else {
        snprintf(buf, len, "%lld seconds", s);
    }
}

/* Whether the plan fits this run; sets st->refused_why when it does not. */
static void check_header(struct pipe *p, const struct planfile_header *h)
{
    char digest[65], age[48], limit[48];
    long long now = (long long)time(NULL);

    planfile_config_digest(digest, p->cfg->digest, map_file(p->cfg));
    if (p->target_ident != NULL && strcmp(h->target, p->target_ident) != 0) {
        snprintf(p->st->refused_why, sizeof(p->st->refused_why),
                 "the plan was made for another target (%.150s), not this configuration's "
                 "(%.150s)",
                 h->target, p->target_ident);
    } else if (strcmp(h->config_digest, digest) != 0) {
        snprintf(p->st->refused_why, sizeof(p->st->refused_why),
                 "the plan was made with another configuration or map (the configuration "
                 "or its map changed since the plan): make a new plan");
    } else if (p->o->max_age > 0 && now - h->created > p->o->max_age) {
        age_text(age, sizeof(age), now - h->created);
        age_text(limit, sizeof(limit), p->o->max_age);
        snprintf(p->st->refused_why, sizeof(p->st->refused_why),
                 "the plan is %s old, more than --max-age allows (%s): make a new plan", age,
                 limit);
    }
}

int pipe_saved_begin(struct pipe *p, struct dm_err *err)
{
    struct load_ctx x = {p, p->o->plan_in, err};
    int rc;

    if (p->o->plan_in == NULL) {
        return DM_OK;
    }
    rc = state_batch_begin(p->state, err);
    if (rc == DM_OK) {
        rc = planfile_read(&p->saved_hdr, p->o->plan_in, load_change, &x, err);
        if (rc == DM_OK) {
            rc = state_batch_commit(p->state, err);
        } else {
            struct dm_err e2 = {0};
            if (state_batch_commit(p->state, &e2) != DM_OK) { /* the work table only */
                log_debug("%s", e2.msg);
            }
        }
    }
    if (rc != DM_OK) {
        return rc;
    }
    p->saved = 1;
    snprintf(p->st->plan_id, sizeof(p->st->plan_id), "%s", p->saved_hdr.plan_id);
    check_header(p, &p->saved_hdr);
    if (p->st->refused_why[0] != '\0') {
        log_err("saved plan %s refused: %s", p->o->plan_in, p->st->refused_why);
        return DM_OK;
    }
    p->wave = p->saved_hdr.wave;
    p->full_scope = p->full_scope && p->saved_hdr.full_scope;
    p->digests = 1;
    log_info("applying saved plan %s (plan %s of run %lld, %lld changes)", p->o->plan_in,
             p->saved_hdr.plan_id, p->saved_hdr.run, p->saved_hdr.changes);
    return DM_OK;
}

/* ---- plan --out ---- */

static int open_out(struct pipe *p, struct dm_err *err)
{
    struct planfile_header h;
    int rc;

    memset(&h, 0, sizeof(h));
    h.run = p->st->run_id;
    h.created = (long long)time(NULL);
    planfile_config_digest(h.config_digest, p->cfg->digest, map_file(p->cfg));
    h.target = p->target_ident;
    h.source = (char *)p->cfg->source.conn.uri;
    h.wave = (char *)p->wave;
    h.full_scope = p->full_scope;
    rc = planfile_create(&p->plan_out, p->o->plan_out, &h, err);
    if (rc == DM_OK) {
        snprintf(p->st->plan_id, sizeof(p->st->plan_id), "%s", h.plan_id);
    }
    return rc;
}

/* The names of the attributes of e, comma-separated (a create's change). */
static char *names_of(const struct entry *e)
{
    struct buf b;

    buf_init(&b, 1 << 16);
    for (size_t i = 0; i < e->nattrs; i++) {
        if (e->attrs[i].nvals > 0 &&
            buf_printf(&b, "%s%s", b.len ? "," : "", e->attrs[i].name) != DM_OK) {
            break;
        }
    }
    return b.data != NULL ? buf_steal(&b) : strdup("");
}

/* The source digest of q: of the entry as read, or, for a container (made from its source
 * OU), of what it is created as. */
static void source_digest(const struct pobj *q, char out[65])
{
    if (q->container) {
        entry_digest(q->want, out);
    } else {
        snprintf(out, 65, "%s", q->src_digest[0] ? q->src_digest : PLANFILE_ABSENT);
    }
}

static const char *target_digest(const struct pobj *q)
{
    return q->have != NULL && q->have->digest[0] ? q->have->digest : PLANFILE_ABSENT;
}

int pipe_saved_write(struct pipe *p, struct dm_err *err)
{
    int rc = DM_OK;

    if (p->plan_out == NULL) {
        return DM_OK;
    }
    for (size_t i = 0; i < p->nbatch && rc == DM_OK; i++) {
        struct pobj *q = &p->batch[i];
        struct planfile_change c = {0};
        char sdig[65], *names = NULL;

        if (q->failed || q->held != NULL || q->plan.op == PLAN_NONE || q->plan.op == PLAN_HOLD) {
            continue;
        }
        if (q->plan.op == PLAN_CREATE) {
            names = names_of(q->want);
            if (names == NULL) {
                return dm_err_set(err, DM_ENOMEM, "out of memory");
            }
        }
        source_digest(q, sdig);
        c.op = op_name(q->plan.op);
        c.kind = kind_of(p, q);
        c.key = q->key;
        c.source_dn = q->source_dn;
        c.target = q->want->dn;
        c.ref = q->has_rec ? q->rec.target_ref : NULL;
        c.reason = q->plan.reason;
        c.attrs = names != NULL ? names : q->plan.attrs;
        c.state = plan_state_name(q->plan.state);
        c.source_digest = sdig;
        c.target_digest = target_digest(q);
        rc = planfile_add(p->plan_out, &c, err);
        free(names);
    }
    return rc;
}

/* ---- run --plan ---- */

int pipe_saved_stage(struct pipe *p, struct pobj *q)
{
    struct state_planned pl = {0};
    int rc = state_plan_get(&pl, p->state, p->kind_name, q->key, &p->fatal_err);

    if (rc == DM_ENOTFOUND) {
        p->st->plan_outside++;
        log_debug("%s %s: not in the saved plan; left as it is", p->kind_name, q->want->dn);
        if (p->kind == MAP_GROUPS && pipe_handled_add(p, q->source_dn) != DM_OK) {
            p->fatal_rc = dm_err_set(&p->fatal_err, DM_ENOMEM, "out of memory");
            return -1;
        }
        return 0;
    }
    if (rc != DM_OK) {
        p->fatal_rc = rc;
        return -1;
    }
    q->planned = 1;
    snprintf(q->plan_op, sizeof(q->plan_op), "%s", pl.op);
    snprintf(q->plan_sdig, sizeof(q->plan_sdig), "%s", pl.source_digest);
    snprintf(q->plan_tdig, sizeof(q->plan_tdig), "%s", pl.target_digest);
    q->plan_line = pl.line;
    state_planned_clear(&pl);
    return 1;
}

/* Holds q back as not matching the plan. */
static void stale(struct pipe *p, struct pobj *q, const char *op, const char *why)
{
    q->held = PLAN_R_PLAN_STALE;
    q->category = "plan_stale";
    dm_err_set(&q->err, DM_EINVAL, "saved plan line %ld: %s", q->plan_line, why);
    refusal(p, op, kind_of(p, q), q->want->dn, why);
}

int pipe_saved_check(struct pipe *p, struct dm_err *err)
{
    int rc = DM_OK;

    if (!p->saved) {
        return DM_OK;
    }
    for (size_t i = 0; i < p->nbatch && rc == DM_OK; i++) {
        struct pobj *q = &p->batch[i];
        const char *now = op_name(q->plan.op);
        char sdig[65];

        if (q->container && !q->failed && q->held == NULL) {
            struct state_planned pl = {0};
            rc = state_plan_get(&pl, p->state, "container", q->key, err);
            if (rc == DM_OK) {
                q->planned = 1;
                snprintf(q->plan_op, sizeof(q->plan_op), "%s", pl.op);
                snprintf(q->plan_sdig, sizeof(q->plan_sdig), "%s", pl.source_digest);
                snprintf(q->plan_tdig, sizeof(q->plan_tdig), "%s", pl.target_digest);
                q->plan_line = pl.line;
            }
            state_planned_clear(&pl);
            if (rc != DM_OK && rc != DM_ENOTFOUND) {
                break;
            }
            rc = DM_OK;
        }
        if (!q->planned) {
            if (!q->failed && q->held == NULL && q->plan.op != PLAN_NONE &&
                q->plan.op != PLAN_HOLD) {
                q->held = PLAN_R_PLAN_STALE;
                q->category = "plan_stale";
                dm_err_set(&q->err, DM_EINVAL,
                           "this %s is not in the saved plan (the target changed since)", now);
                refusal(p, now, kind_of(p, q), q->want->dn,
                        "not in the saved plan (the target changed since the plan)");
            }
            continue;
        }
        if (strcmp(q->plan_op, "disable") == 0 || strcmp(q->plan_op, "delete") == 0) {
            /* the plan's change is the leaver phase's (a user disabled in the source is read
             * and deleted there); any other change of this object is not the plan's */
            if (!q->failed && q->held == NULL && q->plan.op != PLAN_NONE &&
                q->plan.op != PLAN_HOLD) {
                char why[120];
                rc = state_plan_use(p->state, kind_of(p, q), q->key, err);
                snprintf(why, sizeof(why),
                         "the plan has a %s for this object; this run would %s it", q->plan_op,
                         now);
                stale(p, q, now, why);
            }
            continue;
        }
        rc = state_plan_use(p->state, kind_of(p, q), q->key, err);
        if (q->failed || q->held != NULL || q->plan.op == PLAN_HOLD) {
            continue; /* reported as it is: failed or held back */
        }
        source_digest(q, sdig);
        if (strcmp(sdig, q->plan_sdig) != 0) {
            stale(p, q, q->plan_op, "the source object changed since the plan");
        } else if (strcmp(target_digest(q), q->plan_tdig) != 0) {
            stale(p, q, q->plan_op, "the target object changed since the plan");
        } else if (strcmp(now, q->plan_op) != 0) {
            char why[100];
            snprintf(why, sizeof(why), "the change is now \"%s\", the plan's is \"%s\"", now,
                     q->plan_op);
            stale(p, q, q->plan_op, why);
        } else if (q->plan.op != PLAN_NONE) {
            p->st->plan_applied++;
        }
    }
    return rc;
}

/* ---- leavers and accounts only the target has ---- */

/* The digest of the object with reference ref at the target now ("absent" when not there). */
static int target_now(char out[65], struct pipe *p, const char *kind, const char *ref,
                      struct dm_err *err)
{
    struct tview_req r = {ref, 1};
    struct proj *have = NULL;
    int rc;

    tview_get(p->tv, strcmp(kind, "group") == 0 ? OBJ_GROUP : OBJ_USER, &r, 1, &have, &rc, err);
    if (rc == DM_ENOTFOUND) {
        snprintf(out, 65, "%s", PLANFILE_ABSENT);
        rc = DM_OK;
    } else if (rc == DM_OK) {
        snprintf(out, 65, "%s", have->digest[0] ? have->digest : PLANFILE_ABSENT);
    }
    proj_free(have);
    return rc;
}

/* One leaver or unmatched change: written (record) or checked against the plan. */
static int one_change(struct pipe *p, const char *kind, const char *key, const char *source_dn,
                      const char *target, const char *ref, const char *reason, enum change_op op,
                      const char *tdig, int record, struct dm_err *err)
{
    const char *opn = op == CHANGE_DELETE ? "delete" : "disable";
    struct state_planned pl = {0};
    char why[200];
    int rc;

    if (record) {
        struct planfile_change c = {0};
        c.op = opn;
        c.kind = kind;
        c.key = key;
        c.source_dn = source_dn != NULL && source_dn[0] ? source_dn : NULL;
        c.target = target;
        c.ref = ref;
        c.reason = reason;
        c.state = "keep";
        c.source_digest = PLANFILE_ABSENT;
        c.target_digest = tdig;
        rc = planfile_add(p->plan_out, &c, err);
        return rc == DM_OK ? 1 : -1;
    }
    rc = state_plan_get(&pl, p->state, kind, key, err);
    if (rc == DM_ENOTFOUND) {
        p->st->plan_outside++;
        log_info("%s %s: %s is not in the saved plan; left as it is", kind, target, opn);
        return 0;
    }
    if (rc != DM_OK) {
        return -1;
    }
    why[0] = '\0';
    if (strcmp(pl.op, opn) != 0) {
        snprintf(why, sizeof(why), "the change is now \"%s\", the plan's is \"%s\"", opn, pl.op);
    } else if (strcmp(pl.target_digest, tdig) != 0) {
        snprintf(why, sizeof(why), "the target object changed since the plan");
    }
    rc = state_plan_use(p->state, kind, key, err);
    state_planned_clear(&pl);
    if (rc != DM_OK) {
        return -1;
    }
    if (why[0] != '\0') {
        counts_for(p, kind)->held++;
        pipe_count_add(p->st->cats, &p->st->ncats, "plan_stale", 1);
        refusal(p, opn, kind, target, why);
        rc = state_error_add(p->state, p->st->run_id, key, target, "plan_stale", why, err);
        return rc == DM_OK ? 0 : -1;
    }
    p->st->plan_applied++;
    return 1;
}

int pipe_saved_leaver(struct pipe *p, const struct state_object *o, enum change_op op, int record,
                      struct dm_err *err)
{
    char tdig[65];

    if (target_now(tdig, p, o->kind, o->target_ref, err) != DM_OK) {
        return -1;
    }
    return one_change(p, o->kind, o->key, o->source_dn, o->target_ref, o->target_ref, PLAN_R_LEAVER,
                      op, tdig, record, err);
}

int pipe_saved_unmatched(struct pipe *p, const struct entry *e, enum change_op op, int record,
                         struct dm_err *err)
{
    const char *ref = e->key != NULL && e->key[0] ? e->key : e->dn;
    char tdig[65];

    entry_digest(e, tdig);
    return one_change(p, "unmatched", ref, NULL, e->dn, ref, PLAN_R_UNMATCHED, op, tdig, record,
                      err);
}

/* ---- the end ---- */

static int on_unused(const struct state_planned *pl, void *payload)
{
    struct pipe *p = payload;
    const char *why;
    char msg[300];
    struct dm_err e = {0};

    if (p->st->blocked[0] != '\0' &&
        (strcmp(pl->op, "disable") == 0 || strcmp(pl->op, "delete") == 0)) {
        why = "the run was blocked: no disable or delete was made";
    } else if (strcmp(pl->op, "disable") == 0 || strcmp(pl->op, "delete") == 0) {
        why = "no longer a leaver (or only the target's) in this run";
    } else if (p->st->interrupted) {
        why = "the run stopped before it reached this object";
    } else {
        why = "the object was not in this run's source read (gone or out of scope since the "
              "plan)";
    }
    counts_for(p, pl->kind)->held++;
    pipe_count_add(p->st->cats, &p->st->ncats, "plan_stale", 1);
    refusal(p, pl->op, pl->kind, pl->target, why);
    snprintf(msg, sizeof(msg), "saved plan line %ld: %s", pl->line, why);
    if (state_error_add(p->state, p->st->run_id, pl->key, pl->target, "plan_stale", msg, &e) !=
        DM_OK) {
        log_warn("cannot journal a refused change: %s", e.msg);
    }
    return 0;
}

int pipe_saved_end(struct pipe *p, int ok, struct dm_err *err)
{
    int rc = DM_OK;

    if (p->plan_out != NULL) {
        struct planfile *f = p->plan_out;
        p->plan_out = NULL;
        if (!ok) {
            planfile_abort(f);
            return DM_OK;
        }
        p->st->plan_changes = planfile_count(f);
        rc = planfile_commit(f, err);
        p->st->cantcreat = rc != DM_OK && rc != DM_ENOMEM;
        if (rc == DM_OK) {
            log_info("saved plan %s: %lld changes (plan %s)", p->o->plan_out, p->st->plan_changes,
                     p->st->plan_id);
        }
        return rc;
    }
    if (p->saved && p->st->refused_why[0] == '\0') {
        rc = state_plan_unused(p->state, on_unused, p, err);
    }
    return rc;
}

void pipe_saved_free(struct pipe *p)
{
    planfile_abort(p->plan_out);
    p->plan_out = NULL;
    planfile_header_clear(&p->saved_hdr);
    free(p->target_ident);
    p->target_ident = NULL;
}

int pipe_saved_create(struct pipe *p, struct dm_err *err)
{
    int rc;

    if (p->o->plan_out == NULL) {
        return DM_OK;
    }
    p->digests = 1;
    rc = open_out(p, err);
    p->st->cantcreat = rc != DM_OK && rc != DM_ENOMEM;
    return rc;
}
