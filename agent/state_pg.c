#include <config.h>
#include "agent/state_pg_priv.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The state journal on PostgreSQL: the operations of state.h (the only files that know
 * libpq are this one and state_pg_conn.c, the session; agent/state_pg_priv.h joins them).
 *
 * The tables and their meaning are those of state_sqlite.c, with the same versioned
 * migrations (meta schema_version), written in PostgreSQL's dialect: SQLite's
 * `COLLATE NOCASE` is lower() on both sides, its total() is sum() FILTER, dates come from
 * to_timestamp() in UTC, and keys are ordered bytewise (COLLATE "C") as SQLite orders them.
 * Every write is one statement (INSERT ... ON CONFLICT for the upserts), so that several
 * processes writing at once neither lose nor double a row.
 */

#define OBJ_COLS                                                                                   \
    "kind, key, source_dn, target_ref, digest, status, last_run, attrs, origin, disabled_at"
/* An objects row whose object the target holds, as far as the journal knows. */
#define AT_TARGET "status IN ('ok', 'left', 'failed') AND coalesce(target_ref, '') <> ''"
#define RUN_COLUMNS                                                                                \
    "id, kind, status, started, finished, created, updated, unchanged, failed, deleted, "          \
    "skipped, wave, reason, held"

const char *const state_pg_sql[PS__LAST] = {
    /* a run is interrupted when the session that started it is gone; the holder of the
     * runner lock ($2 = 1) knows that every other run that writes is (a dead session's
     * backend may still show in pg_stat_activity for a moment after its lock is freed) */
    [PS_RUN_INTERRUPT] = "UPDATE runs SET status = 'interrupted', finished = $1 "
                         "WHERE status = 'running' AND (($2 = 1 AND kind <> 'plan') OR "
                         "backend IS NULL OR NOT EXISTS "
                         "(SELECT 1 FROM pg_stat_activity a WHERE a.pid = runs.backend))",
    [PS_RUN_INSERT] = "INSERT INTO runs (kind, config_digest, started, finished, status, backend) "
                      "VALUES ($1, $2, $3, 0, 'running', pg_backend_pid()) RETURNING id",
    [PS_RUN_END] = "UPDATE runs SET status = $2, finished = $3, created = $4, updated = $5, "
                   "unchanged = $6, failed = $7, deleted = $8, skipped = $9, held = $10 "
                   "WHERE id = $1",
    [PS_OBJ_GET] = "SELECT " OBJ_COLS " FROM objects WHERE kind = $1 AND key = $2",
    [PS_OBJ_BY_DN] = "SELECT " OBJ_COLS " FROM objects WHERE source_dn = $1 LIMIT 1",
    [PS_OBJ_BY_TARGET] = "SELECT " OBJ_COLS " FROM objects WHERE kind = $1 AND "
                         "lower(target_ref) = lower($2) "
                         "ORDER BY status = 'ok' DESC, last_run DESC LIMIT 1",
    [PS_OBJ_KEYS] = "SELECT key, source_dn FROM objects WHERE kind = $1 ORDER BY key COLLATE \"C\"",
    [PS_OBJ_PUT] = "INSERT INTO objects (" OBJ_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                   "$10) ON CONFLICT (kind, key) DO UPDATE SET source_dn = EXCLUDED.source_dn, "
                   "target_ref = EXCLUDED.target_ref, digest = EXCLUDED.digest, "
                   "status = EXCLUDED.status, last_run = EXCLUDED.last_run, "
                   "attrs = EXCLUDED.attrs, origin = EXCLUDED.origin, "
                   "disabled_at = EXCLUDED.disabled_at",
    [PS_SEEN_ADD] = "INSERT INTO pg_temp.seen (kind, key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    [PS_UNSEEN] = "SELECT " OBJ_COLS " FROM objects o WHERE o.kind = $1 "
                  "AND o.status IN ('ok', 'failed', 'left') AND o.target_ref <> '' AND NOT EXISTS "
                  "(SELECT 1 FROM pg_temp.seen s WHERE s.kind = o.kind AND s.key = o.key) "
                  "ORDER BY o.key COLLATE \"C\"",
    [PS_DISABLED_DUE] = "SELECT " OBJ_COLS " FROM objects o WHERE o.kind = $1 "
                        "AND o.status = 'ok' AND o.target_ref <> '' AND o.disabled_at > 0 "
                        "AND o.disabled_at <= $2 AND (($3 = 0 AND EXISTS (SELECT 1 FROM "
                        "pg_temp.seen s WHERE s.kind = o.kind AND s.key = o.key)) OR ($3 = 1 AND "
                        "NOT EXISTS (SELECT 1 FROM pg_temp.gone g WHERE g.kind = o.kind AND "
                        "g.key = o.key))) ORDER BY o.key COLLATE \"C\"",
    [PS_GONE_ADD] = "INSERT INTO pg_temp.gone (kind, key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    [PS_GONE] = "SELECT " OBJ_COLS " FROM objects o WHERE o.kind = $1 "
                "AND o.status IN ('ok', 'failed', 'left') AND o.target_ref <> '' AND EXISTS "
                "(SELECT 1 FROM pg_temp.gone g WHERE g.kind = o.kind AND g.key = o.key) "
                "ORDER BY o.key COLLATE \"C\"",
    [PS_POPULATION] = "SELECT count(*) FROM objects WHERE kind = $1 "
                      "AND status IN ('ok', 'failed', 'left') AND target_ref <> ''",
    [PS_ERR_ADD] = "INSERT INTO errors (run, key, dn, category, message, at) "
                   "VALUES ($1, $2, $3, $4, $5, $6)",
    /* the status counts of state.h, as state_sqlite.c's ST_TOTALS and ST_SIGNIN_COUNTS
     * count them (AT_TARGET: a row ok, left, or failed after an earlier write, with a
     * target reference) */
    [PS_TOTALS] =
        "SELECT kind, count(*) FILTER (WHERE " AT_TARGET "), "
        "count(*) FILTER (WHERE (" AT_TARGET ") AND (status = 'left' OR disabled_at > 0)), "
        "count(*) FILTER (WHERE (" AT_TARGET ") AND origin = 'linked'), "
        "count(*) FILTER (WHERE status = 'deleted'), "
        "count(*) FILTER (WHERE status = 'failed'), "
        "count(*) FILTER (WHERE status = 'pending') FROM objects GROUP BY kind",
    [PS_SIGNIN_COUNTS] = "SELECT (SELECT c.signin FROM user_creations c WHERE c.key = o.key "
                         "ORDER BY c.id DESC LIMIT 1), count(*) FROM objects o "
                         "WHERE o.kind = 'user' AND (" AT_TARGET ") "
                         "AND coalesce(o.origin, '') <> 'linked' GROUP BY 1",
    [PS_RUN_GET] = "SELECT " RUN_COLUMNS " FROM runs WHERE id = $1",
    [PS_RUN_LAST] = "SELECT " RUN_COLUMNS " FROM runs WHERE kind = $1 ORDER BY id DESC LIMIT 1",
    [PS_OBJ_DEL] = "DELETE FROM objects WHERE kind = $1 AND key = $2",
    [PS_RUNS] = "SELECT " RUN_COLUMNS " FROM runs ORDER BY id DESC LIMIT $1",
    [PS_RUN_ERR_COUNTS] = "SELECT category, count(*) FROM errors WHERE run = $1 "
                          "GROUP BY category ORDER BY category COLLATE \"C\"",
    [PS_PW_ADD] = "INSERT INTO password_migrations (login, dn, outcome, reason, at) "
                  "VALUES ($1, $2, $3, $4, $5)",
    [PS_PW_COUNTS] = "SELECT count(DISTINCT lower(coalesce(dn, login))), count(*) "
                     "FROM password_migrations WHERE outcome = 'verified'",
    [PS_PW_DAILY] = "SELECT to_char(to_timestamp(first) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, "
                    "count(*) FROM (SELECT min(at) AS first FROM password_migrations "
                    "WHERE outcome = 'verified' GROUP BY lower(coalesce(dn, login))) f "
                    "GROUP BY 1 ORDER BY 1",
    [PS_META_GET] = "SELECT value FROM meta WHERE key = $1",
    [PS_META_ADD] = "INSERT INTO meta (key, value) VALUES ($1, ($2::bigint)::text) "
                    "ON CONFLICT (key) DO UPDATE SET value = "
                    "(CAST(meta.value AS bigint) + $2::bigint)::text",
    [PS_META_SET] = "INSERT INTO meta (key, value) VALUES ($1, $2) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    [PS_RUN_WAVE] = "UPDATE runs SET wave = $2 WHERE id = $1",
    [PS_RUN_REASON] = "UPDATE runs SET reason = $2 WHERE id = $1",
    [PS_USER_CREATED] = "INSERT INTO user_creations (run, key, signin, at) VALUES ($1, $2, $3, $4)",
    [PS_SIGNIN_DAILY] =
        "SELECT day, sum(imp), sum(hk), sum(ver) FROM ("
        "  SELECT to_char(to_timestamp(min(at)) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,"
        "         (signin = 'import')::int AS imp, (signin = 'hook')::int AS hk, 0 AS ver"
        "  FROM user_creations WHERE signin IN ('import', 'hook') GROUP BY key, signin"
        "  UNION ALL"
        "  SELECT to_char(to_timestamp(min(at)) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 0, 0, 1"
        "  FROM password_migrations WHERE outcome = 'verified'"
        "  GROUP BY lower(coalesce(dn, login))) d"
        " GROUP BY day ORDER BY day",
    [PS_RUN_SUMMARY] = "SELECT count(*) FILTER (WHERE kind <> 'plan'),"
                       "  count(*) FILTER (WHERE kind = 'plan'),"
                       "  count(*) FILTER (WHERE status = 'blocked'),"
                       "  count(*) FILTER (WHERE status = 'failed'),"
                       "  count(*) FILTER (WHERE status = 'interrupted'),"
                       "  coalesce(min(started), 0), coalesce(max(started), 0),"
                       "  coalesce(sum(created) FILTER (WHERE kind <> 'plan'), 0),"
                       "  coalesce(sum(updated) FILTER (WHERE kind <> 'plan'), 0),"
                       "  coalesce(sum(unchanged) FILTER (WHERE kind <> 'plan'), 0),"
                       "  coalesce(sum(failed) FILTER (WHERE kind <> 'plan'), 0),"
                       "  coalesce(sum(deleted) FILTER (WHERE kind <> 'plan'), 0),"
                       "  coalesce(sum(skipped) FILTER (WHERE kind <> 'plan'), 0) FROM runs",
    [PS_RUNS_UNFINISHED] = "SELECT " RUN_COLUMNS " FROM runs WHERE status <> 'done' "
                           "ORDER BY id DESC LIMIT $1",
    [PS_WAVES] = "WITH g AS (SELECT wave, count(*) FILTER (WHERE kind <> 'plan') AS runs,"
                 "  count(*) FILTER (WHERE kind = 'plan') AS plans,"
                 "  coalesce(sum(created) FILTER (WHERE kind <> 'plan'), 0) AS c,"
                 "  coalesce(sum(updated) FILTER (WHERE kind <> 'plan'), 0) AS u,"
                 "  coalesce(sum(unchanged) FILTER (WHERE kind <> 'plan'), 0) AS n,"
                 "  coalesce(sum(failed) FILTER (WHERE kind <> 'plan'), 0) AS f,"
                 "  coalesce(sum(deleted) FILTER (WHERE kind <> 'plan'), 0) AS d,"
                 "  coalesce(sum(skipped) FILTER (WHERE kind <> 'plan'), 0) AS s,"
                 "  max(id) AS last, max(started) AS last_started, min(id) AS first"
                 "  FROM runs WHERE wave IS NOT NULL GROUP BY wave)"
                 " SELECT g.wave, g.runs, g.plans, g.c, g.u, g.n, g.f, g.d, g.s, g.last,"
                 "  g.last_started, r.status FROM g JOIN runs r ON r.id = g.last ORDER BY g.first",
    [PS_ERR_CATEGORIES] =
        "SELECT e.category, count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM objects o"
        "  WHERE o.kind IN ('user', 'group') AND o.key = e.key AND o.last_run = e.run"
        "  AND o.status = 'failed')), max(e.run)"
        " FROM errors e GROUP BY e.category ORDER BY 2 DESC, e.category COLLATE \"C\"",
    [PS_ERR_EXAMPLES] =
        "SELECT category, run, key, dn, message, at FROM (SELECT category, run,"
        "  key, dn, message, at, row_number() OVER (PARTITION BY category"
        "  ORDER BY id DESC) AS rn FROM errors) x WHERE rn <= $1 ORDER BY category COLLATE \"C\", "
        "rn",
    [PS_LOCK_TRY] = "SELECT pg_try_advisory_lock($1::bigint)",
    [PS_LOCK_RELEASE] = "SELECT pg_advisory_unlock($1::bigint)",
    [PS_RUNNER_SET] = "INSERT INTO runner (target, host, pid, since, backend) "
                      "VALUES ($1, $2, $3, $4, pg_backend_pid()) ON CONFLICT (target) DO UPDATE "
                      "SET host = EXCLUDED.host, pid = EXCLUDED.pid, since = EXCLUDED.since, "
                      "backend = EXCLUDED.backend",
    [PS_RUNNER_GET] = "SELECT host, pid, since FROM runner WHERE target = $1",
    [PS_RUNNER_DEL] = "DELETE FROM runner WHERE target = $1 AND backend = pg_backend_pid()",
    [PS_PING] = "SELECT 1",
};

static long long get_ll(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static const char *get_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static void copy_str(char *dst, size_t len, const PGresult *r, int row, int col)
{
    const char *v = get_str(r, row, col);

    snprintf(dst, len, "%s", v != NULL ? v : "");
}

#define LL(buf, v) (snprintf((buf), sizeof(buf), "%lld", (long long)(v)), (const char *)(buf))

/* ---- runs ---- */

static int pg_run_begin(long long *out, struct state *st_, const char *kind, const char *digest,
                        struct dm_err *err)
{
    struct pg *s = (struct pg *)st_;
    char now[24];
    const char *p[3];
    PGresult *r = NULL;
    int rc;

    p[0] = LL(now, time(NULL));
    p[1] = s->locked ? "1" : "0";
    rc = state_pg_do(s, PS_RUN_INTERRUPT, 2, p, "marking interrupted runs", err);
    if (rc != DM_OK) {
        return rc;
    }
    p[0] = kind;
    p[1] = digest;
    p[2] = now;
    rc = state_pg_exec(&r, s, PS_RUN_INSERT, 3, p, "starting a run", err);
    if (rc != DM_OK) {
        return rc;
    }
    *out = get_ll(r, 0, 0);
    PQclear(r);
    return DM_OK;
}

/* Runs an UPDATE expected to touch one run: DM_ENOTFOUND when it touched none. */
static int run_update(struct pg *s, enum pg_stmt which, int n, const char *const *p, long long run,
                      const char *what, struct dm_err *err)
{
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, s, which, n, p, what, err);

    if (rc == DM_OK && strcmp(PQcmdTuples(r), "0") == 0) {
        rc = dm_err_set(err, DM_ENOTFOUND, "state journal: no run %lld", run);
    }
    PQclear(r);
    return rc;
}

static int pg_run_end(struct state *st_, long long run, const char *status,
                      const struct run_counts *c, struct dm_err *err)
{
    static const struct run_counts zero;
    struct pg *s = (struct pg *)st_;
    char b[10][24];
    const char *p[10];

    if (c == NULL) {
        c = &zero;
    }
    p[0] = LL(b[0], run);
    p[1] = status;
    p[2] = LL(b[2], time(NULL));
    p[3] = LL(b[3], c->created);
    p[4] = LL(b[4], c->updated);
    p[5] = LL(b[5], c->unchanged);
    p[6] = LL(b[6], c->failed);
    p[7] = LL(b[7], c->deleted);
    p[8] = LL(b[8], c->skipped);
    p[9] = LL(b[9], c->held);
    return run_update(s, PS_RUN_END, 10, p, run, "ending a run", err);
}

static int pg_run_set_wave(struct state *st_, long long run, const char *wave, struct dm_err *err)
{
    char b[24];
    const char *p[2] = {LL(b, run), wave};

    return run_update((struct pg *)st_, PS_RUN_WAVE, 2, p, run, "recording a run's wave", err);
}

static int pg_run_set_reason(struct state *st_, long long run, const char *reason,
                             struct dm_err *err)
{
    char cut[sizeof(((struct state_run *)NULL)->reason)], b[24];
    const char *p[2];

    snprintf(cut, sizeof(cut), "%s", reason != NULL ? reason : "");
    p[0] = LL(b, run);
    p[1] = cut;
    return run_update((struct pg *)st_, PS_RUN_REASON, 2, p, run, "recording why a run stopped",
                      err);
}

/* ---- transactions ---- */

static int pg_read_begin(struct state *st_, struct dm_err *err)
{
    struct pg *s = (struct pg *)st_;
    int rc;

    if (s->in_batch || s->in_read) {
        return DM_OK;
    }
    /* one snapshot for the reads, as SQLite's read transaction */
    rc = state_pg_command(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "beginning a read",
                          err);
    if (rc == DM_OK) {
        s->in_read = 1;
    }
    return rc;
}

static void pg_read_end(struct state *st_)
{
    struct pg *s = (struct pg *)st_;
    struct dm_err ignored = {0};

    if (s != NULL && s->in_read) {
        s->in_read = 0;
        if (s->conn != NULL && state_pg_command(s, "COMMIT", "ending a read", &ignored) != DM_OK) {
            state_pg_drop(s);
        }
    }
}

static int pg_batch_begin(struct state *st_, struct dm_err *err)
{
    struct pg *s = (struct pg *)st_;
    int rc;

    if (s->in_batch) {
        return dm_err_set(err, DM_EINTERNAL, "state journal: a batch is already open");
    }
    pg_read_end(st_);
    rc = state_pg_command(s, "BEGIN", "beginning a batch", err);
    if (rc == DM_OK) {
        s->in_batch = 1;
    }
    return rc;
}

static int pg_batch_commit(struct state *st_, struct dm_err *err)
{
    struct pg *s = (struct pg *)st_;
    int rc;

    if (!s->in_batch) {
        return dm_err_set(err, DM_EINTERNAL, "state journal: no batch is open");
    }
    rc = s->conn != NULL
             ? state_pg_simple(s, "COMMIT", "committing a batch",
                               state_pg_now_ms() + s->op_timeout_ms, err)
             : dm_err_set(err, DM_EUNAVAIL, "state journal %s: the session was lost", s->name);
    if (rc != DM_OK && s->conn != NULL) {
        struct dm_err ignored = {0};

        /* a failed COMMIT ends the transaction; a lost session has ended it anyway */
        if (PQstatus(s->conn) != CONNECTION_OK ||
            state_pg_simple(s, "ROLLBACK", "rolling back", state_pg_now_ms() + s->op_timeout_ms,
                            &ignored) != DM_OK) {
            state_pg_drop(s);
        }
    }
    s->in_batch = 0;
    return rc;
}

/* ---- objects ---- */

static char *dup_or_null(const char *v, int *oom)
{
    char *d;

    if (v == NULL) {
        return NULL;
    }
    d = strdup(v);
    if (d == NULL) {
        *oom = 1;
    }
    return d;
}

/* Fills out from row i of a result of OBJ_COLS. */
static int object_from(struct state_object *out, const PGresult *r, int i, struct dm_err *err)
{
    struct state_object o = {0};
    const char *origin;
    int oom = 0;

    o.kind = dup_or_null(get_str(r, i, 0), &oom);
    o.key = dup_or_null(get_str(r, i, 1), &oom);
    o.source_dn = dup_or_null(get_str(r, i, 2), &oom);
    o.target_ref = dup_or_null(get_str(r, i, 3), &oom);
    copy_str(o.digest, sizeof(o.digest), r, i, 4);
    o.status = dup_or_null(get_str(r, i, 5), &oom);
    o.last_run = get_ll(r, i, 6);
    o.attrs = dup_or_null(get_str(r, i, 7), &oom);
    origin = get_str(r, i, 8);
    o.linked = origin != NULL && strcmp(origin, "linked") == 0;
    o.suffixed = origin != NULL && strcmp(origin, "suffixed") == 0;
    o.disabled_at = get_ll(r, i, 9);
    if (oom || o.kind == NULL || o.key == NULL || o.status == NULL) {
        state_object_clear(&o);
        return dm_err_set(err, DM_ENOMEM, "state object");
    }
    *out = o;
    return DM_OK;
}

static int object_one(struct state_object *out, struct pg *s, enum pg_stmt which, int n,
                      const char *const *p, const char *what, struct dm_err *err)
{
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, s, which, n, p, what, err);

    if (rc != DM_OK) {
        return rc;
    }
    if (PQntuples(r) == 0) {
        rc = dm_err_set(err, DM_ENOTFOUND, "state journal: no such object");
    } else {
        rc = object_from(out, r, 0, err);
    }
    PQclear(r);
    return rc;
}

static int pg_object_get(struct state_object *out, struct state *st_, const char *kind,
                         const char *key, struct dm_err *err)
{
    const char *p[2] = {kind, key};

    return object_one(out, (struct pg *)st_, PS_OBJ_GET, 2, p, "reading an object", err);
}

static int pg_object_by_source_dn(struct state_object *out, struct state *st_,
                                  const char *source_dn, struct dm_err *err)
{
    const char *p[1] = {source_dn};

    return object_one(out, (struct pg *)st_, PS_OBJ_BY_DN, 1, p, "reading an object by DN", err);
}

static int pg_object_by_target(struct state_object *out, struct state *st_, const char *kind,
                               const char *target_ref, struct dm_err *err)
{
    const char *p[2] = {kind, target_ref};

    return object_one(out, (struct pg *)st_, PS_OBJ_BY_TARGET, 2, p,
                      "reading an object by target reference", err);
}

static int pg_object_put(struct state *st_, const struct state_object *o, struct dm_err *err)
{
    char run[24], dis[24];
    const char *p[10];

    p[0] = o->kind;
    p[1] = o->key;
    p[2] = o->source_dn;
    p[3] = o->target_ref;
    p[4] = o->digest;
    p[5] = o->status ? o->status : "ok";
    p[6] = LL(run, o->last_run);
    p[7] = o->attrs;
    p[8] = o->linked ? "linked" : o->suffixed ? "suffixed" : "created";
    p[9] = LL(dis, o->disabled_at);
    return state_pg_do((struct pg *)st_, PS_OBJ_PUT, 10, p, "writing an object", err);
}

static int pg_objects_each(struct state *st_, const char *kind, state_key_fn fn, void *payload,
                           struct dm_err *err)
{
    const char *p[1] = {kind};
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, (struct pg *)st_, PS_OBJ_KEYS, 1, p, "listing objects", err);

    for (int i = 0; rc == DM_OK && i < PQntuples(r); i++) {
        rc = fn(get_str(r, i, 0), get_str(r, i, 1), payload);
    }
    PQclear(r);
    return rc;
}

static int objects_list(struct pg *s, enum pg_stmt which, int n, const char *const *p,
                        state_object_fn fn, void *payload, struct dm_err *err)
{
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, s, which, n, p, "listing objects not read", err);

    for (int i = 0; rc == DM_OK && i < PQntuples(r); i++) {
        struct state_object o = {0};

        rc = object_from(&o, r, i, err);
        if (rc == DM_OK) {
            rc = fn(&o, payload);
        }
        state_object_clear(&o);
    }
    PQclear(r);
    return rc;
}

static int pg_seen_add(struct state *st_, const char *kind, const char *key, struct dm_err *err)
{
    struct pg *s = (struct pg *)st_;
    const char *p[2] = {kind, key};

    s->used_work = 1;
    return state_pg_do(s, PS_SEEN_ADD, 2, p, "noting an object read", err);
}

static int pg_gone_add(struct state *st_, const char *kind, const char *key, struct dm_err *err)
{
    struct pg *s = (struct pg *)st_;
    const char *p[2] = {kind, key};

    s->used_work = 1;
    return state_pg_do(s, PS_GONE_ADD, 2, p, "noting an object deleted in the source", err);
}

static int pg_unseen(struct state *st_, const char *kind, int gone, state_object_fn fn,
                     void *payload, struct dm_err *err)
{
    const char *p[1] = {kind};

    return objects_list((struct pg *)st_, gone ? PS_GONE : PS_UNSEEN, 1, p, fn, payload, err);
}

static int pg_disabled_due(struct state *st_, const char *kind, long long before, int gone,
                           state_object_fn fn, void *payload, struct dm_err *err)
{
    char b[24];
    const char *p[3] = {kind, LL(b, before), gone ? "1" : "0"};

    return objects_list((struct pg *)st_, PS_DISABLED_DUE, 3, p, fn, payload, err);
}

static int pg_population(long long *out, struct state *st_, const char *kind, struct dm_err *err)
{
    const char *p[1] = {kind};
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, (struct pg *)st_, PS_POPULATION, 1, p, "counting objects", err);

    if (rc == DM_OK) {
        *out = get_ll(r, 0, 0);
    }
    PQclear(r);
    return rc;
}

static int pg_error_add(struct state *st_, long long run, const char *key, const char *dn,
                        const char *category, const char *message, struct dm_err *err)
{
    char b[24], at[24];
    const char *p[6] = {LL(b, run),        key, dn, category ? category : "internal", message,
                        LL(at, time(NULL))};

    return state_pg_do((struct pg *)st_, PS_ERR_ADD, 6, p, "recording an error", err);
}

static int pg_totals(struct state_totals *out, struct state *st_, struct dm_err *err)
{
    struct state_totals t = {0};
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, (struct pg *)st_, PS_TOTALS, 0, NULL, "counting objects", err);

    if (rc != DM_OK) {
        return rc;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *kind = get_str(r, i, 0);
        struct state_kind_totals *k = NULL;

        if (kind != NULL && strcmp(kind, "user") == 0) {
            k = &t.users;
        } else if (kind != NULL && strcmp(kind, "group") == 0) {
            k = &t.groups;
        } else {
            continue; /* containers */
        }
        k->at_target = get_ll(r, i, 1);
        k->disabled = get_ll(r, i, 2);
        k->linked = get_ll(r, i, 3);
        k->deleted = get_ll(r, i, 4);
        k->failed = get_ll(r, i, 5);
        k->unconfirmed = get_ll(r, i, 6);
    }
    PQclear(r);
    t.users_ok = t.users.at_target;
    t.users_failed = t.users.failed;
    t.groups_ok = t.groups.at_target;
    t.groups_failed = t.groups.failed;
    *out = t;
    return DM_OK;
}

/* Row i of a RUN_COLUMNS result. */
static void run_of(struct state_run *out, const PGresult *r, int i)
{
    memset(out, 0, sizeof(*out));
    out->id = get_ll(r, i, 0);
    copy_str(out->kind, sizeof(out->kind), r, i, 1);
    copy_str(out->status, sizeof(out->status), r, i, 2);
    out->started = get_ll(r, i, 3);
    out->finished = get_ll(r, i, 4);
    out->counts.created = get_ll(r, i, 5);
    out->counts.updated = get_ll(r, i, 6);
    out->counts.unchanged = get_ll(r, i, 7);
    out->counts.failed = get_ll(r, i, 8);
    out->counts.deleted = get_ll(r, i, 9);
    out->counts.skipped = get_ll(r, i, 10);
    copy_str(out->wave, sizeof(out->wave), r, i, 11);
    copy_str(out->reason, sizeof(out->reason), r, i, 12);
    out->counts.held = get_ll(r, i, 13);
}

static int list_runs(struct pg *s, enum pg_stmt which, int limit, state_run_fn fn, void *payload,
                     struct dm_err *err)
{
    char b[24];
    const char *p[1] = {LL(b, limit)};
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, s, which, 1, p, "listing runs", err);

    for (int i = 0; rc == DM_OK && i < PQntuples(r); i++) {
        struct state_run run;

        run_of(&run, r, i);
        if (fn(&run, payload) != 0) {
            break;
        }
    }
    PQclear(r);
    return rc;
}

static int pg_runs(struct state *st_, int limit, state_run_fn fn, void *payload, struct dm_err *err)
{
    return list_runs((struct pg *)st_, PS_RUNS, limit, fn, payload, err);
}

static int pg_runs_unfinished(struct state *st_, int limit, state_run_fn fn, void *payload,
                              struct dm_err *err)
{
    return list_runs((struct pg *)st_, PS_RUNS_UNFINISHED, limit, fn, payload, err);
}

/* One run by statement which (DM_ENOTFOUND when none). */
static int one_run(struct state_run *out, struct pg *s, enum pg_stmt which, const char *param,
                   struct dm_err *err)
{
    const char *p[1] = {param};
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, s, which, 1, p, "reading a run", err);

    if (rc == DM_OK && PQntuples(r) == 0) {
        rc = dm_err_set(err, DM_ENOTFOUND, "no such run in the state journal");
    } else if (rc == DM_OK) {
        run_of(out, r, 0);
    }
    PQclear(r);
    return rc;
}

static int pg_run_get(struct state_run *out, struct state *st_, long long id, struct dm_err *err)
{
    char b[24];

    return one_run(out, (struct pg *)st_, PS_RUN_GET, LL(b, id), err);
}

static int pg_run_last(struct state_run *out, struct state *st_, const char *kind,
                       struct dm_err *err)
{
    return one_run(out, (struct pg *)st_, PS_RUN_LAST, kind, err);
}

static int pg_object_del(struct state *st_, const char *kind, const char *key, struct dm_err *err)
{
    const char *p[2] = {kind, key};

    return state_pg_do((struct pg *)st_, PS_OBJ_DEL, 2, p, "removing an object", err);
}

/* Calls fn(text, count) per row of a two-column result; fn's non-zero stops (DM_OK). */
static int count_rows(struct pg *s, enum pg_stmt which, int n, const char *const *p,
                      state_count_fn fn, void *payload, const char *what, struct dm_err *err)
{
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, s, which, n, p, what, err);

    for (int i = 0; rc == DM_OK && i < PQntuples(r); i++) {
        const char *t = get_str(r, i, 0);

        if (fn(t != NULL ? t : "", get_ll(r, i, 1), payload) != 0) {
            break;
        }
    }
    PQclear(r);
    return rc;
}

static int pg_run_error_counts(struct state *st_, long long run, state_count_fn fn, void *payload,
                               struct dm_err *err)
{
    char b[24];
    const char *p[1] = {LL(b, run)};

    return count_rows((struct pg *)st_, PS_RUN_ERR_COUNTS, 1, p, fn, payload, "counting errors",
                      err);
}

static int pg_password_daily(struct state *st_, state_count_fn fn, void *payload,
                             struct dm_err *err)
{
    return count_rows((struct pg *)st_, PS_PW_DAILY, 0, NULL, fn, payload,
                      "counting verifications per day", err);
}

/* ---- password migrations and meta ---- */

static int pg_password_record(struct state *st_, const char *login, const char *dn,
                              const char *outcome, const char *reason, struct dm_err *err)
{
    char at[24];
    const char *p[5] = {login, dn, outcome, reason, LL(at, time(NULL))};

    return state_pg_do((struct pg *)st_, PS_PW_ADD, 5, p, "recording a password verification", err);
}

static int pg_meta_get(char **out, struct state *st_, const char *key, struct dm_err *err)
{
    const char *p[1] = {key};
    PGresult *r = NULL;
    char *v;
    int rc = state_pg_exec(&r, (struct pg *)st_, PS_META_GET, 1, p, "reading meta", err);

    if (rc != DM_OK) {
        return rc;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return dm_err_set(err, DM_ENOTFOUND, "meta %s: not set", key);
    }
    v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (v == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    *out = v;
    return DM_OK;
}

static int pg_password_counts(struct state_password_counts *out, struct state *st_,
                              struct dm_err *err)
{
    struct state_password_counts c = {0};
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, (struct pg *)st_, PS_PW_COUNTS, 0, NULL,
                           "counting password verifications", err);

    if (rc != DM_OK) {
        return rc;
    }
    c.verified_users = get_ll(r, 0, 0);
    c.verifications = get_ll(r, 0, 1);
    PQclear(r);
    rc = state_pg_exec(&r, (struct pg *)st_, PS_SIGNIN_COUNTS, 0, NULL,
                       "counting users by sign-in path", err);
    if (rc != DM_OK) {
        return rc;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *signin = get_str(r, i, 0);
        long long n = get_ll(r, i, 1);

        if (signin == NULL) {
            c.unknown += n;
        } else if (strcmp(signin, STATE_SIGNIN_HOOK) == 0) {
            c.hook_created += n;
        } else if (strcmp(signin, STATE_SIGNIN_IMPORT) == 0) {
            c.imported += n;
        } else if (strcmp(signin, STATE_SIGNIN_LOCKED) == 0) {
            c.locked += n;
        } else {
            c.no_password += n;
        }
    }
    PQclear(r);
    *out = c;
    return DM_OK;
}

static int pg_meta_add(struct state *st_, const char *key, long long delta, struct dm_err *err)
{
    char b[24];
    const char *p[2] = {key, LL(b, delta)};

    return state_pg_do((struct pg *)st_, PS_META_ADD, 2, p, "updating the journal's counters", err);
}

static int pg_meta_set(struct state *st_, const char *key, const char *value, struct dm_err *err)
{
    const char *p[2] = {key, value};

    return state_pg_do((struct pg *)st_, PS_META_SET, 2, p, "writing meta", err);
}

static int pg_user_created(struct state *st_, long long run, const char *key, const char *signin,
                           struct dm_err *err)
{
    char b[24], at[24];
    const char *p[4] = {LL(b, run), key, signin, LL(at, time(NULL))};

    return state_pg_do((struct pg *)st_, PS_USER_CREATED, 4, p, "recording a created user", err);
}

/* ---- reports ---- */

static int pg_signin_daily(struct state *st_, state_signin_day_fn fn, void *payload,
                           struct dm_err *err)
{
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, (struct pg *)st_, PS_SIGNIN_DAILY, 0, NULL,
                           "counting sign-in paths per day", err);

    for (int i = 0; rc == DM_OK && i < PQntuples(r); i++) {
        struct state_signin_day d = {0};

        copy_str(d.day, sizeof(d.day), r, i, 0);
        d.imported = get_ll(r, i, 1);
        d.hook_created = get_ll(r, i, 2);
        d.verified = get_ll(r, i, 3);
        if (fn(&d, payload) != 0) {
            break;
        }
    }
    PQclear(r);
    return rc;
}

static int pg_run_summary(struct state_run_summary *out, struct state *st_, struct dm_err *err)
{
    struct state_run_summary m = {0};
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, (struct pg *)st_, PS_RUN_SUMMARY, 0, NULL, "summing runs", err);

    if (rc != DM_OK) {
        return rc;
    }
    m.runs = get_ll(r, 0, 0);
    m.plans = get_ll(r, 0, 1);
    m.blocked = get_ll(r, 0, 2);
    m.failed = get_ll(r, 0, 3);
    m.interrupted = get_ll(r, 0, 4);
    m.first_started = get_ll(r, 0, 5);
    m.last_started = get_ll(r, 0, 6);
    m.sum.created = get_ll(r, 0, 7);
    m.sum.updated = get_ll(r, 0, 8);
    m.sum.unchanged = get_ll(r, 0, 9);
    m.sum.failed = get_ll(r, 0, 10);
    m.sum.deleted = get_ll(r, 0, 11);
    m.sum.skipped = get_ll(r, 0, 12);
    PQclear(r);
    *out = m;
    return DM_OK;
}

static int pg_waves(struct state *st_, state_wave_fn fn, void *payload, struct dm_err *err)
{
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, (struct pg *)st_, PS_WAVES, 0, NULL, "summing runs per wave", err);

    for (int i = 0; rc == DM_OK && i < PQntuples(r); i++) {
        struct state_wave w = {0};
        const char *status = get_str(r, i, 11);

        w.name = get_str(r, i, 0);
        w.runs = get_ll(r, i, 1);
        w.plans = get_ll(r, i, 2);
        w.sum.created = get_ll(r, i, 3);
        w.sum.updated = get_ll(r, i, 4);
        w.sum.unchanged = get_ll(r, i, 5);
        w.sum.failed = get_ll(r, i, 6);
        w.sum.deleted = get_ll(r, i, 7);
        w.sum.skipped = get_ll(r, i, 8);
        w.last_run = get_ll(r, i, 9);
        w.last_started = get_ll(r, i, 10);
        w.last_status = status != NULL ? status : "";
        if (w.name == NULL) {
            w.name = "";
        }
        if (fn(&w, payload) != 0) {
            break;
        }
    }
    PQclear(r);
    return rc;
}

static int pg_error_categories(struct state *st_, state_error_category_fn fn, void *payload,
                               struct dm_err *err)
{
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, (struct pg *)st_, PS_ERR_CATEGORIES, 0, NULL,
                           "counting errors by category", err);

    for (int i = 0; rc == DM_OK && i < PQntuples(r); i++) {
        struct state_error_category c = {0};

        c.category = get_str(r, i, 0);
        c.total = get_ll(r, i, 1);
        c.open = get_ll(r, i, 2);
        c.last_run = get_ll(r, i, 3);
        if (c.category == NULL) {
            c.category = "";
        }
        if (fn(&c, payload) != 0) {
            break;
        }
    }
    PQclear(r);
    return rc;
}

static int pg_error_examples(struct state *st_, int per_category, state_error_row_fn fn,
                             void *payload, struct dm_err *err)
{
    char b[24];
    const char *p[1] = {LL(b, per_category)};
    PGresult *r = NULL;
    int rc =
        state_pg_exec(&r, (struct pg *)st_, PS_ERR_EXAMPLES, 1, p, "reading error examples", err);

    for (int i = 0; rc == DM_OK && i < PQntuples(r); i++) {
        struct state_error_row e = {0};

        e.category = get_str(r, i, 0);
        e.run = get_ll(r, i, 1);
        e.key = get_str(r, i, 2);
        e.dn = get_str(r, i, 3);
        e.message = get_str(r, i, 4);
        e.at = get_ll(r, i, 5);
        if (e.category == NULL) {
            e.category = "";
        }
        if (fn(&e, payload) != 0) {
            break;
        }
    }
    PQclear(r);
    return rc;
}

/* ---- the runner lock ---- */

/* The advisory lock key of a target: the first 8 bytes of SHA-256("dirmig runner\0"
 * identity), so that every dirmig of every machine computes the same one. */
static int lock_key(char *out, size_t len, const char *identity, struct dm_err *err)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    long long k = 0;

    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, "dirmig runner", sizeof("dirmig runner")) != 1 ||
        EVP_DigestUpdate(ctx, identity, strlen(identity)) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
        EVP_MD_CTX_free(ctx);
        return dm_err_set(err, DM_EINTERNAL, "SHA-256 failed");
    }
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 8; i++) {
        k = (long long)(((unsigned long long)k << 8) | md[i]);
    }
    snprintf(out, len, "%lld", k);
    return DM_OK;
}

static int pg_runner_lock(struct state *st_, const char *identity, int wait_s,
                          struct state_runner *holder, struct dm_err *err)
{
    struct pg *s = (struct pg *)st_;
    struct state_runner me;
    time_t until = time(NULL) + (wait_s > 0 ? wait_s : 0);
    char key[24], pid[24], since[24];
    PGresult *r = NULL;
    int rc;

    if (s->locked) {
        return DM_OK;
    }
    rc = lock_key(key, sizeof(key), identity, err);
    while (rc == DM_OK) {
        const char *p[4] = {key};
        int got;

        rc = state_pg_exec(&r, s, PS_LOCK_TRY, 1, p, "taking the runner lock", err);
        if (rc != DM_OK) {
            break;
        }
        got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        r = NULL;
        if (got) {
            free(s->lock_target);
            s->lock_target = strdup(identity);
            if (s->lock_target == NULL) {
                rc = dm_err_set(err, DM_ENOMEM, "out of memory");
                break;
            }
            snprintf(s->lock_key, sizeof(s->lock_key), "%s", key);
            s->locked = 1;
            state_runner_me(&me);
            p[0] = identity;
            p[1] = me.host;
            p[2] = LL(pid, me.pid);
            p[3] = LL(since, me.since);
            rc = state_pg_do(s, PS_RUNNER_SET, 4, p, "recording the runner", err);
            break;
        }
        if (time(NULL) >= until) {
            memset(holder, 0, sizeof(*holder));
            p[0] = identity;
            rc = state_pg_exec(&r, s, PS_RUNNER_GET, 1, p, "reading the runner", err);
            if (rc == DM_OK && PQntuples(r) == 1) {
                copy_str(holder->host, sizeof(holder->host), r, 0, 0);
                holder->pid = get_ll(r, 0, 1);
                holder->since = get_ll(r, 0, 2);
            }
            PQclear(r);
            r = NULL;
            if (rc == DM_OK) {
                rc = dm_err_set(err, DM_EBUSY, "another run in progress on %s (pid %lld)",
                                holder->host[0] ? holder->host : "?", holder->pid);
            }
            break;
        }
        sleep(1);
    }
    return rc;
}

static void pg_runner_unlock(struct state *st_)
{
    struct pg *s = (struct pg *)st_;
    struct dm_err ignored = {0};

    if (s == NULL || !s->locked || s->conn == NULL) {
        return;
    }
    const char *p1[1] = {s->lock_target};
    const char *p2[1] = {s->lock_key};

    if (state_pg_do(s, PS_RUNNER_DEL, 1, p1, "clearing the runner", &ignored) != DM_OK ||
        state_pg_do(s, PS_LOCK_RELEASE, 1, p2, "releasing the runner lock", &ignored) != DM_OK) {
        state_pg_drop(s); /* the server releases a session lock with its session */
    }
    s->locked = 0;
}

/* ---- copying ---- */

static int pg_load_row(struct state *st_, const char *table, int ncols, const char *const *cols,
                       const char *const *vals, struct dm_err *err)
{
    struct pg *s = (struct pg *)st_;
    char sql[1024];
    size_t len;
    PGresult *r;
    int rc = DM_OK;

    if (s->conn == NULL) {
        return dm_err_set(err, DM_EUNAVAIL, "state journal %s: the session was lost", s->name);
    }
    snprintf(sql, sizeof(sql), "INSERT INTO %s (", table);
    for (int i = 0; i < ncols; i++) {
        len = strlen(sql);
        snprintf(sql + len, sizeof(sql) - len, "%s%s", i ? ", " : "", cols[i]);
    }
    len = strlen(sql);
    snprintf(sql + len, sizeof(sql) - len, ") VALUES (");
    for (int i = 0; i < ncols; i++) {
        len = strlen(sql);
        snprintf(sql + len, sizeof(sql) - len, "%s$%d", i ? ", " : "", i + 1);
    }
    len = strlen(sql);
    snprintf(sql + len, sizeof(sql) - len, ")%s",
             strcmp(table, "meta") == 0 ? " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                                        : "");
    r = PQexecParams(s->conn, sql, ncols, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = state_pg_fail(s, err, DM_EINVAL, "copying a row", PQresultErrorMessage(r));
    }
    PQclear(r);
    return rc;
}

/* New ids continue after the copied ones. */
static int pg_load_end(struct state *st_, struct dm_err *err)
{
    struct pg *s = (struct pg *)st_;

    return state_pg_simple(
        s,
        "SELECT setval(pg_get_serial_sequence('runs', 'id'), coalesce(max(id), 0) + 1, false) "
        "FROM runs;"
        "SELECT setval(pg_get_serial_sequence('errors', 'id'), coalesce(max(id), 0) + 1, false) "
        "FROM errors;"
        "SELECT setval(pg_get_serial_sequence('password_migrations', 'id'), "
        "coalesce(max(id), 0) + 1, false) FROM password_migrations;"
        "SELECT setval(pg_get_serial_sequence('user_creations', 'id'), "
        "coalesce(max(id), 0) + 1, false) FROM user_creations;",
        "continuing the copied ids", state_pg_now_ms() + s->op_timeout_ms, err);
}

static int pg_ping(struct state *st_, struct dm_err *err)
{
    return state_pg_do((struct pg *)st_, PS_PING, 0, NULL, "checking the connection", err);
}

const struct state_ops state_pg_ops = {
    .name = "postgresql",
    .close = state_pg_close,
    .run_begin = pg_run_begin,
    .run_end = pg_run_end,
    .read_begin = pg_read_begin,
    .read_end = pg_read_end,
    .run_set_wave = pg_run_set_wave,
    .run_set_reason = pg_run_set_reason,
    .batch_begin = pg_batch_begin,
    .batch_commit = pg_batch_commit,
    .object_get = pg_object_get,
    .object_by_source_dn = pg_object_by_source_dn,
    .object_by_target = pg_object_by_target,
    .object_put = pg_object_put,
    .objects_each = pg_objects_each,
    .error_add = pg_error_add,
    .seen_add = pg_seen_add,
    .gone_add = pg_gone_add,
    .unseen = pg_unseen,
    .population = pg_population,
    .disabled_due = pg_disabled_due,
    .totals = pg_totals,
    .run_get = pg_run_get,
    .run_last = pg_run_last,
    .object_del = pg_object_del,
    .runs = pg_runs,
    .runs_unfinished = pg_runs_unfinished,
    .run_error_counts = pg_run_error_counts,
    .password_record = pg_password_record,
    .meta_add = pg_meta_add,
    .password_counts = pg_password_counts,
    .password_daily = pg_password_daily,
    .user_created = pg_user_created,
    .signin_daily = pg_signin_daily,
    .run_summary = pg_run_summary,
    .waves = pg_waves,
    .error_categories = pg_error_categories,
    .error_examples = pg_error_examples,
    .meta_get = pg_meta_get,
    .meta_set = pg_meta_set,
    .runner_lock = pg_runner_lock,
    .runner_unlock = pg_runner_unlock,
    .dump = NULL,
    .load_row = pg_load_row,
    .load_end = pg_load_end,
    .ping = pg_ping,
    /* no saved plans and no undo store on PostgreSQL yet: state.c refuses them (DM_ECONFIG),
     * run records no undo, rollback and run --plan / plan --out stop before they start */
    .plan_add = NULL,
    .plan_get = NULL,
    .plan_use = NULL,
    .plan_unused = NULL,
    .undo_open = NULL,
    .undo_path = NULL,
    .undo_put = NULL,
    .undo_list = NULL,
    .undo_mark = NULL,
    .undo_count = NULL,
};
