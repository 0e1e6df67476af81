#include <config.h>
#include "agent/state_priv.h"
#include "agent/util/secret.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * agent/state.c: the state journal's front (state.h): opens the backend state.type names
 * and dispatches every operation to it (agent/state_priv.h), plus what does not depend on
 * the backend: copying a journal and the runner's identity.
 */

const struct state_table state_tables[] = {
    {"runs",
     {"id", "kind", "config_digest", "started", "finished", "status", "created", "updated",
      "unchanged", "failed", "deleted", "skipped", "wave", "reason", "held", NULL}},
    {"objects",
     {"kind", "key", "source_dn", "target_ref", "digest", "status", "last_run", "attrs", "origin",
      "disabled_at", NULL}},
    {"errors", {"id", "run", "key", "dn", "category", "message", "at", NULL}},
    {"password_migrations", {"id", "login", "dn", "outcome", "reason", "at", NULL}},
    {"user_creations", {"id", "run", "key", "signin", "at", NULL}},
    {"meta", {"key", "value", NULL}},
    {NULL, {NULL}},
};

int state_open(struct state **out, const char *path, struct dm_err *err)
{
    return state_sqlite_open(out, path, err);
}

int state_open_cfg(struct state **out, const struct state_where *w, struct dm_err *err)
{
    if (w->type == NULL || strcmp(w->type, "sqlite") == 0) {
        return state_sqlite_open(out, w->path, err);
    }
    if (strcmp(w->type, "postgresql") == 0) {
        return state_pg_open(out, w, err);
    }
    return dm_err_set(err, DM_EINVAL, "state.type: unknown journal type \"%s\"", w->type);
}

void state_close(struct state *s)
{
    if (s != NULL) {
        s->ops->close(s);
    }
}

const char *state_backend(const struct state *s)
{
    return s->ops->name;
}

const char *state_name(const struct state *s)
{
    return s->name != NULL ? s->name : s->ops->name;
}

void state_object_clear(struct state_object *o)
{
    if (o == NULL) {
        return;
    }
    free(o->kind);
    free(o->key);
    free(o->source_dn);
    free(o->target_ref);
    free(o->status);
    free(o->attrs);
    memset(o, 0, sizeof(*o));
}

void state_runner_me(struct state_runner *out)
{
    memset(out, 0, sizeof(*out));
    if (gethostname(out->host, sizeof(out->host) - 1) != 0 || out->host[0] == '\0') {
        snprintf(out->host, sizeof(out->host), "localhost");
    }
    out->host[strcspn(out->host, " \t\n")] = '\0';
    out->pid = (long long)getpid();
    out->since = (long long)time(NULL);
}

int state_runner_lock(struct state *s, const char *identity, int wait_s,
                      struct state_runner *holder, struct dm_err *err)
{
    struct state_runner h;

    if (s->ops->runner_lock == NULL) {
        return DM_OK;
    }
    return s->ops->runner_lock(s, identity, wait_s, holder != NULL ? holder : &h, err);
}

void state_runner_unlock(struct state *s)
{
    if (s != NULL && s->ops->runner_unlock != NULL) {
        s->ops->runner_unlock(s);
    }
}

int state_ping(struct state *s, struct dm_err *err)
{
    return s->ops->ping != NULL ? s->ops->ping(s, err) : DM_OK;
}

struct copy {
    struct state *dst;
    long long rows;
    struct dm_err *err;
};

static int copy_row(const char *table, int ncols, const char *const *cols, const char *const *vals,
                    void *payload)
{
    struct copy *c = payload;
    int rc;

    /* the destination has its own schema version: it was created or migrated on open */
    if (strcmp(table, "meta") == 0 && vals[0] != NULL && strcmp(vals[0], "schema_version") == 0) {
        return DM_OK;
    }
    rc = c->dst->ops->load_row(c->dst, table, ncols, cols, vals, c->err);
    if (rc == DM_OK) {
        c->rows++;
    }
    return rc;
}

static int copy_any_run(const struct state_run *r, void *payload)
{
    (void)r;
    *(int *)payload = 1;
    return 1;
}

int state_copy(long long *copied, struct state *dst, struct state *src, struct dm_err *err)
{
    struct state_totals t;
    struct copy c = {dst, 0, err};
    int rc, have_run = 0;

    if (src->ops->dump == NULL || dst->ops->load_row == NULL) {
        return dm_err_set(err, DM_EINVAL, "copying a %s journal into %s is not supported",
                          src->ops->name, dst->ops->name);
    }
    rc = state_totals(&t, dst, err);
    if (rc == DM_OK) {
        rc = state_runs(dst, 1, copy_any_run, &have_run, err);
    }
    if (rc != DM_OK) {
        return rc;
    }
    if (have_run || t.users_ok + t.users_failed + t.groups_ok + t.groups_failed > 0) {
        return dm_err_set(err, DM_EEXISTS,
                          "%s already holds a journal (runs or objects): copy only into an empty "
                          "one",
                          state_name(dst));
    }
    rc = state_batch_begin(dst, err);
    if (rc != DM_OK) {
        return rc;
    }
    rc = src->ops->dump(src, copy_row, &c, err);
    if (rc == DM_OK && dst->ops->load_end != NULL) {
        rc = dst->ops->load_end(dst, err);
    }
    /* on failure the batch stays open: the caller's state_close() rolls it back, so
     * nothing of a failed copy stays */
    if (rc == DM_OK) {
        rc = state_batch_commit(dst, err);
    }
    if (rc == DM_OK) {
        *copied = c.rows;
    }
    return rc;
}

/* ---- dispatch: each operation's contract is in state.h ---- */

int state_run_begin(long long *out, struct state *s, const char *kind, const char *digest,
                    struct dm_err *err)
{
    return s->ops->run_begin(out, s, kind, digest, err);
}

int state_run_end(struct state *s, long long run, const char *status, const struct run_counts *c,
                  struct dm_err *err)
{
    return s->ops->run_end(s, run, status, c, err);
}

int state_read_begin(struct state *s, struct dm_err *err)
{
    return s->ops->read_begin(s, err);
}

void state_read_end(struct state *s)
{
    if (s != NULL) {
        s->ops->read_end(s);
    }
}

int state_run_set_wave(struct state *s, long long run, const char *wave, struct dm_err *err)
{
    return s->ops->run_set_wave(s, run, wave, err);
}

int state_run_set_reason(struct state *s, long long run, const char *reason, struct dm_err *err)
{
    return s->ops->run_set_reason(s, run, reason, err);
}

int state_batch_begin(struct state *s, struct dm_err *err)
{
    return s->ops->batch_begin(s, err);
}

int state_batch_commit(struct state *s, struct dm_err *err)
{
    return s->ops->batch_commit(s, err);
}

int state_object_get(struct state_object *out, struct state *s, const char *kind, const char *key,
                     struct dm_err *err)
{
    return s->ops->object_get(out, s, kind, key, err);
}

int state_object_by_source_dn(struct state_object *out, struct state *s, const char *source_dn,
                              struct dm_err *err)
{
    return s->ops->object_by_source_dn(out, s, source_dn, err);
}

int state_object_by_target(struct state_object *out, struct state *s, const char *kind,
                           const char *target_ref, struct dm_err *err)
{
    return s->ops->object_by_target(out, s, kind, target_ref, err);
}

int state_object_put(struct state *s, const struct state_object *o, struct dm_err *err)
{
    return s->ops->object_put(s, o, err);
}

int state_objects_each(struct state *s, const char *kind, state_key_fn fn, void *payload,
                       struct dm_err *err)
{
    return s->ops->objects_each(s, kind, fn, payload, err);
}

int state_error_add(struct state *s, long long run, const char *key, const char *dn,
                    const char *category, const char *message, struct dm_err *err)
{
    return s->ops->error_add(s, run, key, dn, category, message, err);
}

int state_seen_add(struct state *s, const char *kind, const char *key, struct dm_err *err)
{
    return s->ops->seen_add(s, kind, key, err);
}

int state_gone_add(struct state *s, const char *kind, const char *key, struct dm_err *err)
{
    return s->ops->gone_add(s, kind, key, err);
}

int state_unseen(struct state *s, const char *kind, int gone, state_object_fn fn, void *payload,
                 struct dm_err *err)
{
    return s->ops->unseen(s, kind, gone, fn, payload, err);
}

int state_population(long long *out, struct state *s, const char *kind, struct dm_err *err)
{
    return s->ops->population(out, s, kind, err);
}

int state_disabled_due(struct state *s, const char *kind, long long before, int gone,
                       state_object_fn fn, void *payload, struct dm_err *err)
{
    return s->ops->disabled_due(s, kind, before, gone, fn, payload, err);
}

int state_totals(struct state_totals *out, struct state *s, struct dm_err *err)
{
    return s->ops->totals(out, s, err);
}

int state_runs(struct state *s, int limit, state_run_fn fn, void *payload, struct dm_err *err)
{
    return s->ops->runs(s, limit, fn, payload, err);
}

int state_runs_unfinished(struct state *s, int limit, state_run_fn fn, void *payload,
                          struct dm_err *err)
{
    return s->ops->runs_unfinished(s, limit, fn, payload, err);
}

int state_run_error_counts(struct state *s, long long run, state_count_fn fn, void *payload,
                           struct dm_err *err)
{
    return s->ops->run_error_counts(s, run, fn, payload, err);
}

int state_password_record(struct state *s, const char *login, const char *dn, const char *outcome,
                          const char *reason, struct dm_err *err)
{
    return s->ops->password_record(s, login, dn, outcome, reason, err);
}

int state_meta_add(struct state *s, const char *key, long long delta, struct dm_err *err)
{
    return s->ops->meta_add(s, key, delta, err);
}

int state_password_counts(struct state_password_counts *out, struct state *s, struct dm_err *err)
{
    return s->ops->password_counts(out, s, err);
}

int state_password_daily(struct state *s, state_count_fn fn, void *payload, struct dm_err *err)
{
    return s->ops->password_daily(s, fn, payload, err);
}

int state_user_created(struct state *s, long long run, const char *key, const char *signin,
                       struct dm_err *err)
{
    return s->ops->user_created(s, run, key, signin, err);
}

int state_signin_daily(struct state *s, state_signin_day_fn fn, void *payload, struct dm_err *err)
{
    return s->ops->signin_daily(s, fn, payload, err);
}

int state_run_summary(struct state_run_summary *out, struct state *s, struct dm_err *err)
{
    return s->ops->run_summary(out, s, err);
}

int state_waves(struct state *s, state_wave_fn fn, void *payload, struct dm_err *err)
{
    return s->ops->waves(s, fn, payload, err);
}

int state_error_categories(struct state *s, state_error_category_fn fn, void *payload,
                           struct dm_err *err)
{
    return s->ops->error_categories(s, fn, payload, err);
}

int state_error_examples(struct state *s, int per_category, state_error_row_fn fn, void *payload,
                         struct dm_err *err)
{
    return s->ops->error_examples(s, per_category, fn, payload, err);
}

int state_meta_get(char **out, struct state *s, const char *key, struct dm_err *err)
{
    return s->ops->meta_get(out, s, key, err);
}

int state_meta_set(struct state *s, const char *key, const char *value, struct dm_err *err)
{
    return s->ops->meta_set(s, key, value, err);
}

/* ---- rollback, saved plans, the undo store: not every backend has them ---- */

int state_run_get(struct state_run *out, struct state *s, long long id, struct dm_err *err)
{
    return s->ops->run_get(out, s, id, err);
}

int state_run_last(struct state_run *out, struct state *s, const char *kind, struct dm_err *err)
{
    return s->ops->run_last(out, s, kind, err);
}

int state_object_del(struct state *s, const char *kind, const char *key, struct dm_err *err)
{
    return s->ops->object_del(s, kind, key, err);
}

void state_planned_clear(struct state_planned *p)
{
    if (p == NULL) {
        return;
    }
    free(p->kind);
    free(p->key);
    free(p->op);
    free(p->target);
    free(p->source_digest);
    free(p->target_digest);
    memset(p, 0, sizeof(*p));
}

int state_plans_supported(const struct state *s)
{
    return s->ops->plan_add != NULL;
}

static int no_plans(const struct state *s, struct dm_err *err)
{
    return dm_err_set(err, DM_ECONFIG,
                      "state.type %s: saved plans (plan --out, run --plan) need a SQLite "
                      "journal (state.type sqlite)",
                      s->ops->name);
}

int state_plan_add(struct state *s, const struct state_planned *p, struct dm_err *err)
{
    return s->ops->plan_add != NULL ? s->ops->plan_add(s, p, err) : no_plans(s, err);
}

int state_plan_get(struct state_planned *out, struct state *s, const char *kind, const char *key,
                   struct dm_err *err)
{
    return s->ops->plan_get != NULL ? s->ops->plan_get(out, s, kind, key, err) : no_plans(s, err);
}

int state_plan_use(struct state *s, const char *kind, const char *key, struct dm_err *err)
{
    return s->ops->plan_use != NULL ? s->ops->plan_use(s, kind, key, err) : no_plans(s, err);
}

int state_plan_unused(struct state *s, state_planned_fn fn, void *payload, struct dm_err *err)
{
    return s->ops->plan_unused != NULL ? s->ops->plan_unused(s, fn, payload, err)
                                       : no_plans(s, err);
}

int state_undo_supported(const struct state *s)
{
    return s->ops->undo_open != NULL;
}

static int no_undo(const struct state *s, struct dm_err *err)
{
    return dm_err_set(err, DM_ECONFIG,
                      "state.type %s: this journal keeps no undo store, so its runs cannot be "
                      "rolled back (the undo store is kept beside a SQLite journal, state.type "
                      "sqlite)",
                      s->ops->name);
}

int state_undo_open(struct state *s, struct dm_err *err)
{
    return s->ops->undo_open != NULL ? s->ops->undo_open(s, err) : no_undo(s, err);
}

const char *state_undo_path(const struct state *s)
{
    return s->ops->undo_path != NULL ? s->ops->undo_path(s) : NULL;
}

int state_undo_put(struct state *s, const struct state_undo *u, struct dm_err *err)
{
    return s->ops->undo_put != NULL ? s->ops->undo_put(s, u, err) : no_undo(s, err);
}

int state_undo_list(struct state *s, long long run, long long below_id, int limit, state_undo_fn fn,
                    void *payload, struct dm_err *err)
{
    return s->ops->undo_list != NULL ? s->ops->undo_list(s, run, below_id, limit, fn, payload, err)
                                     : no_undo(s, err);
}

int state_undo_mark(struct state *s, long long id, long long by_run, struct dm_err *err)
{
    return s->ops->undo_mark != NULL ? s->ops->undo_mark(s, id, by_run, err) : no_undo(s, err);
}

int state_undo_count(long long *total, long long *undone, struct state *s, long long run,
                     struct dm_err *err)
{
    return s->ops->undo_count != NULL ? s->ops->undo_count(total, undone, s, run, err)
                                      : no_undo(s, err);
}
