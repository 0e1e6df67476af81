/*
 * leavers.c: leavers, accounts only the target has, and the gates in front of every
 * disable and delete (agent/pipe_priv.h; DESIGN "Leavers and deletes go through gates").
 *
 * A leaver is an object dirmig wrote to the target that a complete read of the source no
 * longer returns: deleted there, moved out of scope, out of its activity window. Absence is
 * only ever concluded from a read that is proven complete, and then only after the gates:
 *
 *   hard (nothing overrides them): every source read of the run completed (no error, not
 *     stopped, nothing skipped); the read is not empty while the journal holds objects;
 *   soft (--allow-deletes N approves one run): the source is read with the identity of the
 *     last good run; the population did not shrink by more than leavers.max_shrink_percent
 *     against the last complete read; the run's disables and deletes stay within
 *     leavers.max_deletes and leavers.max_delete_percent of the migrated population.
 *
 * A run that fails a gate makes no leaver change at all (never a partial cut), ends with
 * status "blocked" and says why. The first pass over the candidates only counts them, so
 * memory does not grow with their number; the second applies them in batches.
 */
#include <config.h>
#include "agent/pipe_priv.h"
#include "agent/util/log.h"
#include "schema/dn.h"
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define META_IDENTITY "source_identity"
#define META_POPULATION "population "

/* What the run would do with the leavers and the accounts only the target has. */
struct lv_count {
    long long disable, del, report;
};

struct lv_ctx {
    struct pipe *p;
    const char *kind;
    int apply;          /* 0: count only, 1: apply, 2: write to the saved plan */
    struct lv_count *n; /* counts (first pass) */
    struct dm_err *err;
    /* the batch being built (second pass) */
    struct entry **ents;
    struct state_object *rows;
    size_t nb;
    int rc;
    char **undo_rows; /* the rows before the change, for the undo store (agent/undo.h) */
    char **olds;      /* a disable that moves the account (conn_ops.disabled_ref): where it
                       * was (the change's old_ref), else NULL */
};

void pipe_blocked(struct pipe *p, const char *fmt, ...)
{
    va_list ap;

    if (p->st->blocked[0] != '\0') {
        return; /* the first reason is the one that counts */
    }
    va_start(ap, fmt);
    vsnprintf(p->st->blocked, sizeof(p->st->blocked), fmt, ap);
    va_end(ap);
    log_warn("no disable or delete in this run: %s", p->st->blocked);
}

int pipe_seen(struct pipe *p, const struct pobj *q)
{
    if (p->pass == 1 && !p->census_phase) {
        p->read_count[p->kind]++;
    }
    if (!p->full_scope || p->pass != 1 || p->census_phase || p->state == NULL || q->key == NULL) {
        return DM_OK;
    }
    return state_seen_add(p->state, p->kind_name, q->key, &p->fatal_err);
}

int pipe_can_disable(const struct pipe *p)
{
    return (p->tops->caps & CONN_DISABLE) != 0 || p->cfg->target.conn.disable_attr != NULL ||
           (p->tops->disabled_ref != NULL && p->cfg->target.conn.disable_container != NULL);
}

/* The action for one journaled object the source no longer has. */
static enum change_op action_of(const struct pipe *p, const struct state_object *o, int *report)
{
    const struct config_leavers *lv = &p->cfg->leavers;
    int user = strcmp(o->kind, "user") == 0;

    *report = 0;
    if (strcmp(lv->action, "report") == 0) {
        *report = 1;
        return CHANGE_DISABLE;
    }
    if (strcmp(lv->action, "delete") == 0) {
        return CHANGE_DELETE;
    }
    /* disable: groups cannot be disabled; a user disabled earlier is deleted when its time
     * is up, else left as it is */
    if (!user || !pipe_can_disable(p)) {
        *report = 1;
        return CHANGE_DISABLE;
    }
    if (strcmp(o->status, "left") == 0) {
        if (lv->delete_after_days > 0 && o->disabled_at > 0 &&
            (long long)time(NULL) - o->disabled_at >= (long long)lv->delete_after_days * 86400) {
            return CHANGE_DELETE;
        }
        *report = -1; /* nothing to do */
    }
    return CHANGE_DISABLE;
}

static int flush_batch(struct lv_ctx *x);
static int add_candidate(struct lv_ctx *x, const struct state_object *o, enum change_op op);

static int on_unseen(const struct state_object *o, void *payload)
{
    struct lv_ctx *x = payload;
    struct pipe *p = x->p;
    int report;
    enum change_op op = action_of(p, o, &report);

    if (report < 0) {
        return 0;
    }
    if (report) {
        if (!x->apply) {
            x->n->report++;
            log_info("leaver %s %s (target %s): reported (leavers.action %s%s)", o->kind,
                     o->source_dn, o->target_ref, p->cfg->leavers.action,
                     strcmp(p->cfg->leavers.action, "disable") == 0
                         ? (strcmp(o->kind, "user") == 0 ? ", but target.disable is not set"
                                                         : ", and a group cannot be disabled")
                         : "");
        }
        return 0;
    }
    return add_candidate(x, o, op);
}

/* A user disabled in the source whose leavers.delete_after_days are up: deleted. */
static int on_due(const struct state_object *o, void *payload)
{
    return add_candidate(payload, o, CHANGE_DELETE);
}

/* Counts (first pass) or queues (second pass, flushed per batch) a leaver change. */
static int add_candidate(struct lv_ctx *x, const struct state_object *o, enum change_op op)
{
    struct pipe *p = x->p;

    if (!x->apply) {
        if (op == CHANGE_DELETE) {
            x->n->del++;
        } else {
            x->n->disable++;
        }
        return 0;
    }
    if (x->apply == 2 || p->saved) {
        /* plan --out writes the change; run --plan makes it only as planned */
        int go = pipe_saved_leaver(p, o, op, x->apply == 2, x->err);
        if (go < 0) {
            x->rc = x->err->rc != DM_OK ? x->err->rc : DM_EINTERNAL;
            return 1;
        }
        if (x->apply == 2 || go == 0) {
            return 0;
        }
    }
    x->olds[x->nb] = NULL;
    x->ents[x->nb] = NULL;
    if (op == CHANGE_DISABLE && p->tops->disabled_ref != NULL) {
        /* a target that keeps disabled accounts apart: the disable is a move there */
        char *dref = NULL;
        int rc = p->tops->disabled_ref(&dref, &p->cfg->target.conn, o->target_ref, x->err);
        if (rc != DM_OK) {
            x->rc = rc;
            return 1;
        }
        if (dref != NULL && strcmp(dref, o->target_ref) != 0) {
            x->olds[x->nb] = strdup(o->target_ref);
            x->ents[x->nb] = entry_new(dref);
        }
        free(dref);
    }
    if (x->ents[x->nb] == NULL) {
        x->ents[x->nb] = entry_new(o->target_ref);
    }
    if (x->ents[x->nb] == NULL) {
        x->rc = dm_err_set(x->err, DM_ENOMEM, "out of memory");
        return 1;
    }
    memset(&x->rows[x->nb], 0, sizeof(x->rows[x->nb]));
    x->rows[x->nb].kind = strdup(o->kind);
    x->rows[x->nb].key = strdup(o->key);
    x->rows[x->nb].source_dn = strdup(o->source_dn ? o->source_dn : "");
    x->rows[x->nb].target_ref = strdup(x->ents[x->nb]->dn); /* where it is after the change */
    x->rows[x->nb].status = strdup(op == CHANGE_DELETE ? "deleted" : "left");
    x->rows[x->nb].attrs = o->attrs != NULL ? strdup(o->attrs) : NULL;
    x->rows[x->nb].linked = o->linked;
    x->rows[x->nb].suffixed = o->suffixed;
    x->rows[x->nb].disabled_at = o->disabled_at;
    x->undo_rows[x->nb] = p->undo ? undo_row_encode(o) : NULL;
    memset(&p->changes[x->nb], 0, sizeof(p->changes[x->nb]));
    p->changes[x->nb].undo = p->undo;
    p->changes[x->nb].op = op;
    p->changes[x->nb].kind = strcmp(o->kind, "group") == 0 ? OBJ_GROUP : OBJ_USER;
    p->changes[x->nb].entry = x->ents[x->nb];
    p->changes[x->nb].target_id = x->rows[x->nb].target_ref;
    p->changes[x->nb].leave_groups = p->cfg->leavers.remove_from_groups;
    if (x->olds[x->nb] != NULL) {
        p->changes[x->nb].op = CHANGE_MOVE;
        p->changes[x->nb].old_ref = x->olds[x->nb];
        p->changes[x->nb].target_id = x->olds[x->nb];
        p->changes[x->nb].state = CHANGE_STATE_DISABLE;
    }
    x->nb++;
    if (x->nb >= (size_t)p->cfg->batch_size) {
        return flush_batch(x) != DM_OK;
    }
    return 0;
}

/* Applies the batch of leaver changes and journals what became of each. */
static int flush_batch(struct lv_ctx *x)
{
    struct pipe *p = x->p;
    int rc = DM_OK;

    if (x->nb == 0) {
        return DM_OK;
    }
    for (size_t i = 0; i < x->nb; i++) {
        memset(&p->results[i], 0, sizeof(p->results[i]));
    }
    rc = p->tops->apply(p->dst, p->changes, x->nb, p->results);
    if (rc != DM_OK) {
        rc = dm_err_set(x->err, rc, "target connection lost while applying leavers");
    }
    if (rc == DM_OK) {
        rc = state_batch_begin(p->state, x->err);
    }
    for (size_t i = 0; i < x->nb && rc == DM_OK; i++) {
        const struct apply_result *r = &p->results[i];
        struct state_object *o = &x->rows[i];
        int deleted = p->changes[i].op == CHANGE_DELETE;

        const char *was = x->olds[i] != NULL ? x->olds[i] : o->target_ref;

        log_set_context(p->st->run_id, was);
        if (r->status == APPLY_FAILED) {
            char msg[1024];
            dm_err_format(&r->err, msg, sizeof(msg));
            p->st->leavers_failed++;
            log_warn("leaver %s %s: %s failed: %s", o->kind, was, deleted ? "delete" : "disable",
                     msg);
            rc = state_error_add(p->state, p->st->run_id, o->key, was, "leaver", msg, x->err);
            if (rc == DM_OK && r->moved) {
                /* moved, then the rest failed: the journal follows the entry, and the next
                 * run disables it where it is now */
                free(o->status);
                o->status = strdup("failed");
                rc = o->status != NULL ? state_object_put(p->state, o, x->err)
                                       : dm_err_set(x->err, DM_ENOMEM, "out of memory");
            }
            continue;
        }
        if (deleted) {
            p->st->leavers_deleted++;
        } else {
            p->st->leavers_disabled++;
            if (o->disabled_at == 0) {
                o->disabled_at = (long long)time(NULL); /* the clock of delete_after_days */
            }
        }
        pipe_count_add(p->st->reasons, &p->st->nreasons, PLAN_R_LEAVER, 1);
        if (x->olds[i] != NULL) {
            log_info("leaver %s %s (source %s): disabled at the target, moved to %s", o->kind,
                     x->olds[i], o->source_dn, o->target_ref);
        } else {
            log_info("leaver %s %s (source %s): %s at the target", o->kind, o->target_ref,
                     o->source_dn, deleted ? "deleted" : "disabled");
        }
        o->last_run = p->st->run_id;
        rc = state_object_put(p->state, o, x->err);
        if (rc == DM_OK && p->undo) {
            struct undo_change u = {0};
            u.run = p->st->run_id;
            u.wave = p->wave;
            u.kind = o->kind;
            u.key = o->key;
            u.source_dn = o->source_dn;
            u.change = &p->changes[i];
            u.result = r;
            u.row_json = x->undo_rows[i];
            u.dn_attrs = (const char *const *)p->cfg->dn_attrs;
            rc = undo_record(p->state, &u, x->err);
        }
    }
    if (rc == DM_OK) {
        rc = state_batch_commit(p->state, x->err);
    }
    log_set_context(p->st->run_id, NULL);
    for (size_t i = 0; i < x->nb; i++) {
        entry_free(x->ents[i]);
        state_object_clear(&x->rows[i]);
        free(x->undo_rows[i]);
        x->undo_rows[i] = NULL;
        free(x->olds[i]);
        x->olds[i] = NULL;
        undo_images_free(&p->results[i]);
    }
    x->nb = 0;
    x->rc = rc;
    pipe_progress(p);
    return rc;
}

/* The hard and soft gates on the source read. Returns 1 when leaver changes may be made. */
static int source_gate(struct pipe *p, long long pop_users, struct dm_err *err)
{
    const struct config_leavers *lv = &p->cfg->leavers;
    char key[64], *v = NULL, *ident = NULL;
    int ok = 1;

    for (int k = 0; k < 2; k++) {
        if (!p->read_ok[k]) {
            p->hard_blocked = 1;
            pipe_blocked(p, "the source read of %s did not complete: %s",
                         k == MAP_USERS ? "users" : "groups",
                         p->read_why[k][0] ? p->read_why[k] : "stopped before its end");
            return 0;
        }
    }
    if (p->delta_gone[MAP_USERS]) {
        /* a delta read proves each deletion by itself: no population to compare */
    } else if (p->read_count[MAP_USERS] == 0 && pop_users > 0) {
        p->hard_blocked = 1;
        pipe_blocked(p,
                     "the source returned no user at all where %lld were migrated (a wrong "
                     "base, a filter or an ACL that hides them?)",
                     pop_users);
        return 0;
    }
    /* soft: the identity the source is read with */
    if (p->sops->identity != NULL && p->sops->identity(&ident, p->src, err) == DM_OK) {
        if (state_meta_get(&v, p->state, META_IDENTITY, NULL) == DM_OK && strcmp(v, ident) != 0) {
            pipe_blocked(p,
                         "the source is read as %s, the last good run read it as %s (another "
                         "identity may see less)",
                         ident, v);
            ok = 0;
        }
        free(v);
        v = NULL;
    }
    /* soft: the population did not shrink too much */
    for (int k = 0; k < 2 && ok; k++) {
        long long last;
        if (p->delta_gone[k]) {
            continue;
        }
        snprintf(key, sizeof(key), META_POPULATION "%s", k == MAP_USERS ? "user" : "group");
        if (state_meta_get(&v, p->state, key, NULL) != DM_OK) {
            continue;
        }
        last = strtoll(v, NULL, 10);
        free(v);
        v = NULL;
        if (last > 0 && p->read_count[k] * 100 < last * (100 - lv->max_shrink_percent)) {
            pipe_blocked(p,
                         "the source returned %lld %s where the last complete read had %lld "
                         "(a shrink of %lld%%, more than leavers.max_shrink_percent %d)",
                         p->read_count[k], k == MAP_USERS ? "users" : "groups", last,
                         (last - p->read_count[k]) * 100 / last, lv->max_shrink_percent);
            ok = 0;
        }
    }
    free(ident);
    return ok;
}

/* Remembers the identity and the population of a run whose source read was good. */
static int remember_source(struct pipe *p, struct dm_err *err)
{
    char key[64], val[32], *ident = NULL;
    int rc = DM_OK;

    if (p->o->mode != PIPE_RUN) {
        return DM_OK;
    }
    if (p->sops->identity != NULL && p->sops->identity(&ident, p->src, NULL) == DM_OK) {
        rc = state_meta_set(p->state, META_IDENTITY, ident, err);
    }
    free(ident);
    for (int k = 0; k < 2 && rc == DM_OK; k++) {
        snprintf(key, sizeof(key), META_POPULATION "%s", k == MAP_USERS ? "user" : "group");
        snprintf(val, sizeof(val), "%lld", p->read_count[k]);
        rc = state_meta_set(p->state, key, val, err);
    }
    return rc;
}

/* ---- accounts only the target has ---- */

struct um_ctx {
    struct pipe *p;
    long long found, acted;
    int apply; /* 0: count, 1: disable or delete, 2: write to the saved plan */
    struct entry **ents;
    char **olds; /* a disable that moves the account (conn_ops.disabled_ref): where it was */
    size_t nb;
    int rc;
    struct dm_err *err;
};

static int um_flush(struct um_ctx *u)
{
    struct pipe *p = u->p;
    int del = strcmp(p->cfg->unmatched.action, "delete") == 0, rc;

    if (u->nb == 0) {
        return DM_OK;
    }
    for (size_t i = 0; i < u->nb; i++) {
        memset(&p->changes[i], 0, sizeof(p->changes[i]));
        memset(&p->results[i], 0, sizeof(p->results[i]));
        p->changes[i].op = del ? CHANGE_DELETE : CHANGE_DISABLE;
        p->changes[i].kind = OBJ_USER;
        p->changes[i].entry = u->ents[i];
        p->changes[i].target_id = u->ents[i]->key != NULL ? u->ents[i]->key : u->ents[i]->dn;
        p->changes[i].leave_groups = p->cfg->leavers.remove_from_groups;
        p->changes[i].undo = p->undo;
        if (!del && u->olds[i] != NULL) {
            p->changes[i].op = CHANGE_MOVE;
            p->changes[i].old_ref = u->olds[i];
            p->changes[i].target_id = u->olds[i];
            p->changes[i].state = CHANGE_STATE_DISABLE;
        }
    }
    rc = p->tops->apply(p->dst, p->changes, u->nb, p->results);
    if (rc == DM_OK && p->undo) {
        /* what undoes each: kind "unmatched", keyed by the target reference */
        int urc = state_batch_begin(p->state, u->err);
        for (size_t i = 0; i < u->nb && urc == DM_OK; i++) {
            struct undo_change uc = {0};
            uc.run = p->st->run_id;
            uc.wave = p->wave;
            uc.kind = "unmatched";
            uc.key = p->changes[i].target_id;
            uc.change = &p->changes[i];
            uc.result = &p->results[i];
            uc.dn_attrs = (const char *const *)p->cfg->dn_attrs;
            urc = undo_record(p->state, &uc, u->err);
        }
        if (urc == DM_OK) {
            urc = state_batch_commit(p->state, u->err);
        }
        if (urc != DM_OK) {
            rc = urc;
        }
    }
    for (size_t i = 0; i < u->nb; i++) {
        if (rc == DM_OK && p->results[i].status != APPLY_FAILED) {
            u->acted++;
            log_info("account only the target has %s: %s (unmatched_target.filter)", u->ents[i]->dn,
                     del ? "deleted" : "disabled");
        } else {
            log_warn("account only the target has %s: %s failed: %s", u->ents[i]->dn,
                     del ? "delete" : "disable", p->results[i].err.msg);
        }
        undo_images_free(&p->results[i]);
        entry_free(u->ents[i]);
        free(u->olds[i]);
        u->olds[i] = NULL;
    }
    u->nb = 0;
    if (rc != DM_OK && (int)u->err->rc == rc) {
        return rc; /* the undo store's error */
    }
    return rc == DM_OK ? DM_OK : dm_err_set(u->err, rc, "target connection lost");
}

static int on_target_account(const struct entry *e, void *payload)
{
    struct um_ctx *u = payload;
    struct pipe *p = u->p;
    struct state_object o = {0};
    const char *ref = e->key != NULL && e->key[0] ? e->key : e->dn;
    int rc = state_object_by_target(&o, p->state, "user", ref, NULL);

    if (rc == DM_OK) {
        int ours = strcmp(o.status, "deleted") != 0;
        state_object_clear(&o);
        if (ours) {
            return 0;
        }
    }
    u->found++;
    if (!u->apply) {
        if (u->found <= 20) {
            log_info("account only the target has: %s", e->dn);
        }
        return 0;
    }
    if (u->apply == 2 || p->saved) {
        /* plan --out writes the change; run --plan makes it only as planned */
        int del = strcmp(p->cfg->unmatched.action, "delete") == 0;
        int go =
            pipe_saved_unmatched(p, e, del ? CHANGE_DELETE : CHANGE_DISABLE, u->apply == 2, u->err);
        if (go < 0) {
            u->rc = u->err->rc != DM_OK ? u->err->rc : DM_EINTERNAL;
            return 1;
        }
        if (u->apply == 2 || go == 0) {
            return 0;
        }
    }
    u->ents[u->nb] = entry_clone(e);
    u->olds[u->nb] = NULL;
    if (u->ents[u->nb] == NULL) {
        u->rc = dm_err_set(u->err, DM_ENOMEM, "out of memory");
        return 1;
    }
    if (strcmp(p->cfg->unmatched.action, "disable") == 0 && p->tops->disabled_ref != NULL) {
        /* a target that keeps disabled accounts apart: the disable is a move there */
        char *dref = NULL;
        if (p->tops->disabled_ref(&dref, &p->cfg->target.conn, e->dn, u->err) != DM_OK) {
            entry_free(u->ents[u->nb]);
            u->rc = u->err->rc;
            return 1;
        }
        if (dref != NULL && strcmp(dref, e->dn) != 0 &&
            ((u->olds[u->nb] = strdup(e->dn)) == NULL ||
             entry_set_dn(u->ents[u->nb], dref) != DM_OK)) {
            free(dref);
            entry_free(u->ents[u->nb]);
            free(u->olds[u->nb]);
            u->olds[u->nb] = NULL;
            u->rc = dm_err_set(u->err, DM_ENOMEM, "out of memory");
            return 1;
        }
        free(dref);
    }
    u->nb++;
    if (u->nb >= (size_t)p->cfg->batch_size && um_flush(u) != DM_OK) {
        return 1;
    }
    return 0;
}

/* Reads the target's accounts (the unmatched_target filter, else every account) and counts
 * (or, apply, disables or deletes) those that no journal row claims. */
static int unmatched(struct pipe *p, int apply, long long *found, struct dm_err *err)
{
    struct um_ctx u = {p, 0, 0, apply, NULL, NULL, 0, DM_OK, err};
    struct scope sc = {0};
    int rc;

    sc.base = p->cfg->target.conn.base;
    sc.filter = p->cfg->unmatched.filter;
    if (sc.filter == NULL && p->tops->ident == CONN_IDENT_DN) {
        sc.filter = "(|(objectClass=person)(objectClass=posixAccount))";
    }
    if (apply) {
        u.ents = calloc((size_t)p->cfg->batch_size, sizeof(*u.ents));
        u.olds = calloc((size_t)p->cfg->batch_size, sizeof(*u.olds));
        if (u.ents == NULL || u.olds == NULL) {
            free(u.ents);
            free(u.olds);
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
    }
    rc = p->tops->read(p->dst, &sc, on_target_account, &u, err);
    if (u.rc != DM_OK) {
        rc = u.rc;
    }
    if (rc == DM_OK && apply) {
        rc = um_flush(&u);
    }
    for (size_t i = 0; i < u.nb; i++) {
        entry_free(u.ents[i]);
        free(u.olds[i]);
    }
    free(u.ents);
    free(u.olds);
    *found = u.found;
    if (apply == 1) {
        p->st->unmatched_changed = u.acted;
    }
    return rc;
}

/* ---- the leaver phase ---- */

/* Users disabled in the source are deleted after leavers.delete_after_days too. */
static int lv_deletes_disabled(const struct pipe *p)
{
    return strcmp(p->cfg->leavers.action, "disable") == 0 &&
           p->cfg->leavers.delete_after_days > 0 && pipe_can_disable(p);
}

/* target.disable.container before leavers are moved there: each missing level created (an
 * organizationalUnit; its undo recorded) when target.create_containers allows. When it
 * cannot be, each move fails by itself naming the container (said here once). */
static int disabled_container(struct pipe *p, struct dm_err *err)
{
    const char *cont = p->cfg->target.conn.disable_container;
    struct dn *d = NULL, *tb = NULL;
    int rc = DM_OK;

    if (cont == NULL || p->tops->disabled_ref == NULL || p->tops->lookup == NULL) {
        return DM_OK;
    }
    if (dn_parse(&d, cont, err) != DM_OK || dn_parse(&tb, p->cfg->target.conn.base, err) != DM_OK ||
        d->nrdns <= tb->nrdns) {
        rc = DM_OK; /* refused by the configuration check */
        goto done;
    }
    /* from the level right under the base down to the container */
    for (size_t i = d->nrdns - tb->nrdns; i-- > 0 && rc == DM_OK;) {
        const char *level = cont + d->rdns[i].start;
        struct entry *have = NULL, *want = NULL;
        struct dm_err e = {0};
        char *key = NULL;

        rc = p->tops->lookup(&have, p->dst, level, &e);
        entry_free(have);
        if (rc == DM_OK) {
            continue;
        }
        if (rc != DM_ENOTFOUND) {
            *err = e;
            break;
        }
        rc = DM_OK;
        if (!p->cfg->target.create_containers) {
            log_warn("target.disable.container: %s is missing and target.create_containers is "
                     "false: leavers cannot be moved there",
                     level);
            break;
        }
        if (pipe_container_synth(&want, level, &e) != DM_OK) {
            log_warn("target.disable.container: %s", e.msg);
            break;
        }
        memset(&p->changes[0], 0, sizeof(p->changes[0]));
        memset(&p->results[0], 0, sizeof(p->results[0]));
        p->changes[0].op = CHANGE_ADD;
        p->changes[0].kind = OBJ_GROUP;
        p->changes[0].entry = want;
        p->changes[0].undo = p->undo;
        rc = p->tops->apply(p->dst, p->changes, 1, p->results);
        if (rc != DM_OK) {
            rc = dm_err_set(err, rc, "target connection lost creating %s", level);
        } else if (p->results[0].status != APPLY_CREATED) {
            log_warn("target.disable.container: cannot create %s: %s", level,
                     p->results[0].err.msg);
        } else {
            log_info("target.disable.container: created %s", level);
            if (p->undo && dn_normalize(&key, level, err) == DM_OK) {
                struct undo_change u = {0};
                u.run = p->st->run_id;
                u.wave = p->wave;
                u.kind = "container";
                u.key = key;
                u.change = &p->changes[0];
                u.result = &p->results[0];
                u.dn_attrs = (const char *const *)p->cfg->dn_attrs;
                rc = state_batch_begin(p->state, err);
                rc = rc == DM_OK ? undo_record(p->state, &u, err) : rc;
                rc = rc == DM_OK ? state_batch_commit(p->state, err) : rc;
            }
        }
        free(key);
        undo_images_free(&p->results[0]);
        entry_free(want);
        if (rc == DM_OK && p->results[0].status != APPLY_CREATED) {
            break;
        }
    }
done:
    dn_free(d);
    dn_free(tb);
    return rc;
}

static int count_or_apply(struct pipe *p, int apply, struct lv_count *n, struct dm_err *err)
{
    const struct config_leavers *lv = &p->cfg->leavers;
    static const char *const kinds[] = {"user", "group"};
    struct lv_ctx x = {p, NULL, apply, n, err, NULL, NULL, 0, DM_OK, NULL, NULL};
    int rc = DM_OK;

    if (apply) {
        x.ents = calloc((size_t)p->cfg->batch_size, sizeof(*x.ents));
        x.rows = calloc((size_t)p->cfg->batch_size, sizeof(*x.rows));
        x.undo_rows = calloc((size_t)p->cfg->batch_size, sizeof(*x.undo_rows));
        x.olds = calloc((size_t)p->cfg->batch_size, sizeof(*x.olds));
        if (x.ents == NULL || x.rows == NULL || x.undo_rows == NULL || x.olds == NULL) {
            free(x.ents);
            free(x.rows);
            free(x.undo_rows);
            free(x.olds);
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
    }
    if (apply == 1 && n->disable > 0) {
        rc = disabled_container(p, err);
        if (rc != DM_OK) {
            goto done;
        }
    }
    for (size_t k = 0; k < DM_ARRAY_LEN(kinds) && rc == DM_OK; k++) {
        x.kind = kinds[k];
        rc = state_unseen(p->state, kinds[k], p->delta_gone[k], on_unseen, &x, err);
        if (rc == DM_OK && k == 0 && lv_deletes_disabled(p)) {
            long long before = (long long)time(NULL) - (long long)lv->delete_after_days * 86400;
            rc = state_disabled_due(p->state, kinds[k], before, p->delta_gone[k], on_due, &x, err);
        }
        if (rc != DM_OK && x.rc != DM_OK) {
            rc = x.rc;
        } else if (rc == 1) {
            rc = x.rc != DM_OK ? x.rc : DM_EINTERNAL;
        }
        if (rc == DM_OK && apply) {
            rc = flush_batch(&x);
        }
    }
done:
    for (size_t i = 0; apply && i < x.nb; i++) {
        entry_free(x.ents[i]);
        state_object_clear(&x.rows[i]);
        free(x.undo_rows[i]);
        free(x.olds[i]);
    }
    free(x.ents);
    free(x.rows);
    free(x.undo_rows);
    free(x.olds);
    return rc;
}

int pipe_leavers(struct pipe *p, struct dm_err *err)
{
    const struct config_leavers *lv = &p->cfg->leavers;
    struct lv_count n = {0, 0, 0};
    long long pop_u = 0, pop_g = 0, total, limit, found = 0, um = 0;
    int um_act = strcmp(p->cfg->unmatched.action, "report") != 0, soft_ok, rc;

    if (p->tops->caps & CONN_SNAPSHOT) {
        /* written anew each run: an object that left the source is simply not written */
        return DM_OK;
    }
    if (!p->full_scope && !p->delta_gone[0] && !p->delta_gone[1]) {
        log_info("leavers are looked for only in a run over the whole scope (no --wave, "
                 "--retry-from or --limit)");
        return DM_OK;
    }
    rc = state_population(&pop_u, p->state, "user", err);
    if (rc == DM_OK) {
        rc = state_population(&pop_g, p->state, "group", err);
    }
    if (rc != DM_OK) {
        return rc;
    }
    soft_ok = source_gate(p, pop_u, err);
    if (!soft_ok && p->hard_blocked) {
        return DM_OK; /* nothing overrides an incomplete or empty read */
    }
    rc = count_or_apply(p, 0, &n, err);
    if (rc == DM_OK && p->verify && p->full_scope &&
        (!(p->tops->caps & CONN_READ) || (p->tops->caps & CONN_SNAPSHOT))) {
        /* a target written anew holds nothing dirmig did not write; one that cannot be
         * listed cannot say what it holds */
        log_debug("accounts only the target has: not looked for (%s)",
                  (p->tops->caps & CONN_SNAPSHOT) ? "the target is written anew"
                                                  : "the target cannot be listed");
    } else if (rc == DM_OK && p->verify && p->full_scope) {
        rc = unmatched(p, 0, &found, err);
        p->st->unmatched_found = found;
        if (found > 0) {
            log_info("%lld account(s) only the target has (not created or linked by dirmig): "
                     "%s",
                     found, um_act ? "they match unmatched_target.filter" : "reported only");
        }
        um = um_act ? found : 0;
    }
    if (rc != DM_OK) {
        return rc;
    }
    p->st->leavers_reported = n.report;
    total = n.disable + n.del + um;
    p->st->would_change = total;
    if (!(p->tops->caps & CONN_UNDO_DELETE)) {
        /* said before the run that would make them: rollback cannot give these back */
        p->st->irreversible = n.del + (strcmp(p->cfg->unmatched.action, "delete") == 0 ? um : 0);
        if (p->st->irreversible > 0) {
            log_warn("%lld delete(s) at this target cannot be undone: dirmig rollback cannot "
                     "re-create what this target deletes",
                     p->st->irreversible);
        }
    }
    limit = (pop_u + pop_g) * lv->max_delete_percent / 100;
    if (lv->max_deletes < limit) {
        limit = lv->max_deletes;
    }
    if (soft_ok && total > limit) {
        pipe_blocked(p,
                     "the run would disable or delete %lld objects (%lld leavers to disable, "
                     "%lld to delete, %lld accounts only the target has): more than "
                     "leavers.max_deletes %d and leavers.max_delete_percent %d%% of the %lld "
                     "migrated allow (%lld); --allow-deletes %lld approves this run",
                     total, n.disable, n.del, um, lv->max_deletes, lv->max_delete_percent,
                     pop_u + pop_g, limit, total);
    }
    if (p->st->blocked[0] != '\0') {
        if (p->allow_deletes < total) {
            if (total > 0) {
                log_warn("%lld disable(s) and delete(s) not made (%lld leavers to disable, %lld "
                         "to delete, %lld accounts only the target has)",
                         total, n.disable, n.del, um);
            }
            return DM_OK;
        }
        log_info("--allow-deletes %lld approves %lld disable(s) and delete(s) despite: %s",
                 p->allow_deletes, total, p->st->blocked);
        p->st->blocked[0] = '\0';
    }
    if (total == 0) {
        return DM_OK;
    }
    if (p->o->mode != PIPE_RUN) {
        p->st->leavers_disabled = n.disable;
        p->st->leavers_deleted = n.del;
        p->st->unmatched_changed = um;
        if (n.disable + n.del > 0) {
            pipe_count_add(p->st->reasons, &p->st->nreasons, PLAN_R_LEAVER, n.disable + n.del);
        }
        if (um > 0) {
            pipe_count_add(p->st->reasons, &p->st->nreasons, PLAN_R_UNMATCHED, um);
        }
        if (p->plan_out != NULL) {
            /* plan --out: the disables and deletes go into the saved plan */
            rc = count_or_apply(p, 2, &n, err);
            if (rc == DM_OK && um > 0) {
                rc = unmatched(p, 2, &found, err);
            }
        }
        return rc;
    }
    pipe_phase(p, PIPE_PH_LEAVERS, "leavers", total);
    rc = count_or_apply(p, 1, &n, err);
    if (rc == DM_OK && um > 0) {
        rc = unmatched(p, 1, &found, err);
        if (p->st->unmatched_changed > 0) {
            pipe_count_add(p->st->reasons, &p->st->nreasons, PLAN_R_UNMATCHED,
                           p->st->unmatched_changed);
        }
    }
    pipe_phase_end(p);
    return rc;
}

int pipe_leavers_done(struct pipe *p, struct dm_err *err)
{
    if (!p->full_scope || p->st->blocked[0] != '\0' || !p->read_ok[0] || !p->read_ok[1] ||
        p->st->interrupted) {
        return DM_OK;
    }
    return remember_source(p, err);
}
