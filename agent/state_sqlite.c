#include <config.h>
#include "agent/state_sqlite.h"
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/*
 * The state journal on SQLite (the only file that knows SQLite, so that another backend
 * can be added behind state.h).
 *
 * WAL mode with synchronous=NORMAL: a commit is durable against a process crash (the WAL
 * is written before COMMIT returns) and only the last transactions can be lost on power
 * failure, which the idempotent replay of a batch covers. Every statement is prepared once
 * in state_open() and reused with reset + clear_bindings, so the per-object cost of a run
 * is one step of an already compiled statement.
 */

/* The newest schema version this program writes (see `migrations` below). */
#define STATE_SCHEMA_VERSION 3
#define STATE_BUSY_TIMEOUT_MS 10000
/* SQLite's page cache for the journal, per connection (PRAGMA cache_size, in KiB when
 * negative): a bound, so memory stays flat however many objects the journal holds; the
 * pages past it are read again from the OS's file cache. Stated in dirmig.json(5) (state). */
#define STATE_CACHE_KIB 8192
#define STATE_PRAGMAS_(kib)                                                                        \
    "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-" #kib ";"
#define STATE_PRAGMAS(kib) STATE_PRAGMAS_(kib)

#define OBJ_COLS                                                                                   \
    "kind, key, source_dn, target_ref, digest, status, last_run, attrs, origin, disabled_at"

enum st_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_RUN_INTERRUPT,
    ST_RUN_INSERT,
    ST_RUN_END,
    ST_OBJ_GET,
    ST_OBJ_BY_DN,
    ST_OBJ_BY_TARGET,
    ST_OBJ_PUT,
    ST_ERR_ADD,
    ST_TOTALS,
    ST_SIGNIN_COUNTS,
    ST_RUNS,
    ST_RUN_ERR_COUNTS,
    ST_PW_ADD,
    ST_PW_COUNTS,
    ST_PW_DAILY,
    ST_META_GET,
    ST_META_ADD,
    ST_META_SET,
    ST_RUN_WAVE,
    ST_RUN_REASON,
    ST_USER_CREATED,
    ST_SIGNIN_DAILY,
    ST_RUN_SUMMARY,
    ST_RUNS_UNFINISHED,
    ST_WAVES,
    ST_ERR_CATEGORIES,
    ST_ERR_EXAMPLES,
    ST_OBJ_KEYS,
    ST_SEEN_ADD,
    ST_UNSEEN,
    ST_DISABLED_DUE,
    ST_POPULATION,
    ST_GONE_ADD,
    ST_GONE,
    ST__LAST
};

/* An objects row whose object the target holds, as far as the journal knows. */
#define AT_TARGET "status IN ('ok', 'left', 'failed') AND coalesce(target_ref, '') != ''"

/* The columns read_run() expects, in this order. */
#define RUN_COLUMNS                                                                                \
    "id, kind, status, started, finished, created, updated, unchanged, failed, deleted, "          \
    "skipped, wave, reason, held"

static const char *const stmt_sql[ST__LAST] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_RUN_INTERRUPT] = "UPDATE runs SET status = 'interrupted', finished = ?1 "
                         "WHERE status = 'running'",
    [ST_RUN_INSERT] = "INSERT INTO runs (kind, config_digest, started, finished, status) "
                      "VALUES (?1, ?2, ?3, 0, 'running')",
    [ST_RUN_END] = "UPDATE runs SET status = ?2, finished = ?3, created = ?4, updated = ?5, "
                   "unchanged = ?6, failed = ?7, deleted = ?8, skipped = ?9, held = ?10 "
                   "WHERE id = ?1",
    [ST_OBJ_GET] = "SELECT " OBJ_COLS " FROM objects WHERE kind = ?1 AND key = ?2",
    [ST_OBJ_BY_DN] = "SELECT " OBJ_COLS " FROM objects WHERE source_dn = ?1 LIMIT 1",
    [ST_OBJ_BY_TARGET] = "SELECT " OBJ_COLS " FROM objects WHERE kind = ?1 AND target_ref = ?2 "
                         "COLLATE NOCASE ORDER BY status = 'ok' DESC, last_run DESC LIMIT 1",
    [ST_OBJ_KEYS] = "SELECT key, source_dn FROM objects WHERE kind = ?1 ORDER BY key",
    [ST_OBJ_PUT] = "INSERT OR REPLACE INTO objects (" OBJ_COLS ") "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_SEEN_ADD] = "INSERT OR IGNORE INTO temp.seen (kind, key) VALUES (?1, ?2)",
    /* written by dirmig, at the target still, and not in this run's source read */
    [ST_UNSEEN] = "SELECT " OBJ_COLS " FROM objects o WHERE o.kind = ?1 "
                  "AND o.status IN ('ok', 'failed', 'left') AND o.target_ref != '' AND NOT EXISTS "
                  "(SELECT 1 FROM temp.seen s WHERE s.kind = o.kind AND s.key = o.key) "
                  "ORDER BY o.key",
    /* disabled by dirmig on or before ?2 and still in the source: read in this run (?3 = 0, a
     * full read) or not reported deleted (?3 = 1, a delta read) */
    [ST_DISABLED_DUE] = "SELECT " OBJ_COLS " FROM objects o WHERE o.kind = ?1 "
                        "AND o.status = 'ok' AND o.target_ref != '' AND o.disabled_at > 0 "
                        "AND o.disabled_at <= ?2 AND ((?3 = 0 AND EXISTS (SELECT 1 FROM "
                        "temp.seen s WHERE s.kind = o.kind AND s.key = o.key)) OR (?3 = 1 AND "
                        "NOT EXISTS (SELECT 1 FROM temp.gone g WHERE g.kind = o.kind AND "
                        "g.key = o.key))) ORDER BY o.key",
    [ST_GONE_ADD] = "INSERT OR IGNORE INTO temp.gone (kind, key) VALUES (?1, ?2)",
    /* written by dirmig, at the target still, and deleted in the source (delta reads) */
    [ST_GONE] = "SELECT " OBJ_COLS " FROM objects o WHERE o.kind = ?1 "
                "AND o.status IN ('ok', 'failed', 'left') AND o.target_ref != '' AND EXISTS "
                "(SELECT 1 FROM temp.gone g WHERE g.kind = o.kind AND g.key = o.key) "
                "ORDER BY o.key",
    [ST_POPULATION] = "SELECT count(*) FROM objects WHERE kind = ?1 "
                      "AND status IN ('ok', 'failed', 'left') "
                      "AND target_ref != ''",
    [ST_ERR_ADD] = "INSERT INTO errors (run, key, dn, category, message, at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* per kind: at the target (written or linked by dirmig and not deleted by it: a row
     * ok, left, or failed after an earlier write, with a target reference), of which
     * disabled by dirmig, of which linked; deleted by dirmig; open problems; creates whose
     * answer never came */
    [ST_TOTALS] = "SELECT kind, total(" AT_TARGET "), "
                  "total((" AT_TARGET ") AND (status = 'left' OR disabled_at > 0)), "
                  "total((" AT_TARGET ") AND origin = 'linked'), total(status = 'deleted'), "
                  "total(status = 'failed'), total(status = 'pending') FROM objects GROUP BY kind",
    /* the users at the target by the sign-in path of their newest creation (NULL: created
     * before the journal recorded creations); linked users were not created by dirmig */
    [ST_SIGNIN_COUNTS] = "SELECT (SELECT c.signin FROM user_creations c WHERE c.key = o.key "
                         "ORDER BY c.id DESC LIMIT 1), count(*) FROM objects o "
                         "WHERE o.kind = 'user' AND (" AT_TARGET ") "
                         "AND coalesce(o.origin, '') != 'linked' GROUP BY 1",
    [ST_RUNS] = "SELECT " RUN_COLUMNS " FROM runs ORDER BY id DESC LIMIT ?1",
    [ST_RUN_ERR_COUNTS] = "SELECT category, count(*) FROM errors WHERE run = ?1 "
                          "GROUP BY category ORDER BY category",
    [ST_PW_ADD] = "INSERT INTO password_migrations (login, dn, outcome, reason, at) "
                  "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_PW_COUNTS] = "SELECT count(DISTINCT lower(coalesce(dn, login))), count(*) "
                     "FROM password_migrations WHERE outcome = 'verified'",
    [ST_PW_DAILY] = "SELECT date(first, 'unixepoch'), count(*) FROM "
                    "(SELECT lower(coalesce(dn, login)), min(at) AS first FROM password_migrations "
                    "WHERE outcome = 'verified' GROUP BY lower(coalesce(dn, login))) "
                    "GROUP BY 1 ORDER BY 1",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_ADD] = "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO "
                    "UPDATE SET value = CAST(value AS INTEGER) + ?2",
    [ST_META_SET] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
    [ST_RUN_WAVE] = "UPDATE runs SET wave = ?2 WHERE id = ?1",
    [ST_RUN_REASON] = "UPDATE runs SET reason = ?2 WHERE id = ?1",
    [ST_USER_CREATED] = "INSERT INTO user_creations (run, key, signin, at) VALUES (?1, ?2, ?3, ?4)",
    /* Each user once per column, on the day of its first event of that kind. */
    [ST_SIGNIN_DAILY] =
        "SELECT day, sum(imp), sum(hk), sum(ver) FROM ("
        "  SELECT date(min(at), 'unixepoch') AS day, signin = 'import' AS imp,"
        "         signin = 'hook' AS hk, 0 AS ver"
        "  FROM user_creations WHERE signin IN ('import', 'hook') GROUP BY key, signin"
        "  UNION ALL"
        "  SELECT date(min(at), 'unixepoch'), 0, 0, 1 FROM password_migrations"
        "  WHERE outcome = 'verified' GROUP BY lower(coalesce(dn, login)))"
        " GROUP BY day ORDER BY day",
    [ST_RUN_SUMMARY] =
        "SELECT count(*) - total(kind = 'plan'), total(kind = 'plan'), total(status = 'blocked'),"
        "  total(status = 'failed'), total(status = 'interrupted'), coalesce(min(started), 0),"
        "  coalesce(max(started), 0),"
        "  total(CASE WHEN kind != 'plan' THEN created END),"
        "  total(CASE WHEN kind != 'plan' THEN updated END),"
        "  total(CASE WHEN kind != 'plan' THEN unchanged END),"
        "  total(CASE WHEN kind != 'plan' THEN failed END),"
        "  total(CASE WHEN kind != 'plan' THEN deleted END),"
        "  total(CASE WHEN kind != 'plan' THEN skipped END) FROM runs",
    [ST_RUNS_UNFINISHED] = "SELECT " RUN_COLUMNS " FROM runs WHERE status != 'done' "
                           "ORDER BY id DESC LIMIT ?1",
    [ST_WAVES] =
        "WITH g AS (SELECT wave, total(kind != 'plan') AS runs, total(kind = 'plan') AS plans,"
        "  total(CASE WHEN kind != 'plan' THEN created END) AS c,"
        "  total(CASE WHEN kind != 'plan' THEN updated END) AS u,"
        "  total(CASE WHEN kind != 'plan' THEN unchanged END) AS n,"
        "  total(CASE WHEN kind != 'plan' THEN failed END) AS f,"
        "  total(CASE WHEN kind != 'plan' THEN deleted END) AS d,"
        "  total(CASE WHEN kind != 'plan' THEN skipped END) AS s,"
        "  max(id) AS last, max(started) AS last_started, min(id) AS first"
        "  FROM runs WHERE wave IS NOT NULL GROUP BY wave)"
        " SELECT g.wave, g.runs, g.plans, g.c, g.u, g.n, g.f, g.d, g.s, g.last,"
        "  g.last_started, r.status FROM g JOIN runs r ON r.id = g.last ORDER BY g.first",
    /* Open: the object's newest run is the one that recorded the error, and it failed.
     * kind IN (...) lets the lookup use the objects primary key (kind, key). */
    [ST_ERR_CATEGORIES] =
        "SELECT e.category, count(*), total(EXISTS (SELECT 1 FROM objects o"
        "  WHERE o.kind IN ('user', 'group') AND o.key = e.key AND o.last_run = e.run"
        "  AND o.status = 'failed')), max(e.run)"
        " FROM errors e GROUP BY e.category ORDER BY 2 DESC, 1",
    [ST_ERR_EXAMPLES] =
        "SELECT category, run, key, dn, message, at FROM (SELECT category, run,"
        "  key, dn, message, at, row_number() OVER (PARTITION BY category"
        "  ORDER BY id DESC) AS rn FROM errors) WHERE rn <= ?1 ORDER BY category, rn",
};

/* Idempotent schema for version 1; `migrations` bring it to STATE_SCHEMA_VERSION. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS runs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind TEXT NOT NULL,"
    "  config_digest TEXT,"
    "  started INTEGER NOT NULL,"
    "  finished INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL,"
    "  created INTEGER NOT NULL DEFAULT 0,"
    "  updated INTEGER NOT NULL DEFAULT 0,"
    "  unchanged INTEGER NOT NULL DEFAULT 0,"
    "  failed INTEGER NOT NULL DEFAULT 0,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  skipped INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS objects ("
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  source_dn TEXT,"
    "  target_dn TEXT,"
    "  digest TEXT,"
    "  status TEXT NOT NULL,"
    "  last_run INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (kind, key));"
    "CREATE INDEX IF NOT EXISTS objects_source_dn ON objects (source_dn);"
    "CREATE TABLE IF NOT EXISTS errors ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  run INTEGER NOT NULL,"
    "  key TEXT,"
    "  dn TEXT,"
    "  category TEXT NOT NULL,"
    "  message TEXT,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS errors_run ON errors (run, category);"
    /* Added after version 1 shipped; CREATE IF NOT EXISTS upgrades old journals in place.
     * Never holds a password: login, DN, outcome, reason and time only. */
    "CREATE TABLE IF NOT EXISTS password_migrations ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  login TEXT NOT NULL,"
    "  dn TEXT,"
    "  outcome TEXT NOT NULL,"
    "  reason TEXT,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS password_migrations_outcome "
    "  ON password_migrations (outcome, login);"
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');";

/*
 * Schema migrations, oldest first: migrations[i] brings a journal from version
 * migrations[i].version - 1 to migrations[i].version. Append only; never edit one that
 * has shipped (journals in the field have already run it).
 */
static const struct {
    int version;
    const char *sql;
} migrations[] = {
    /* 2: the report's waves, blocked runs and password-migration curve. */
    {2, "ALTER TABLE runs ADD COLUMN wave TEXT;"
        "ALTER TABLE runs ADD COLUMN reason TEXT;"
        "CREATE INDEX runs_wave ON runs (wave) WHERE wave IS NOT NULL;"
        /* How each user created at the target signs in there; never the credential. */
        "CREATE TABLE user_creations ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  run INTEGER NOT NULL,"
        "  key TEXT NOT NULL,"
        "  signin TEXT NOT NULL,"
        "  at INTEGER NOT NULL);"
        "CREATE INDEX user_creations_key ON user_creations (key, signin);"
        /* the planner: what dirmig wrote to each object (attribute names, never values),
         * whether it created, linked or suffixed it, objects held back per run, and
         * lookups by target reference (collisions, pending creates) */
        "ALTER TABLE objects ADD COLUMN attrs TEXT;"
        "ALTER TABLE objects ADD COLUMN origin TEXT;"
        /* when dirmig disabled the object at the target (a leaver, or disabled in the
         * source), 0 when it did not: leavers are deleted delete_after_days later */
        "ALTER TABLE objects ADD COLUMN disabled_at INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE runs ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX objects_target ON objects (kind, target_dn COLLATE NOCASE);"},
    /* 3: the target reference is what the target calls the object (a DN, or an id the
     * target assigned): a neutral name for every connector. SQLite renames the column in
     * the index too. */
    {3, "ALTER TABLE objects RENAME COLUMN target_dn TO target_ref;"},
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STATE_SCHEMA_VERSION - 1,
               "one migration per schema version after 1");

struct sq {
    struct state base; /* first: state.c dispatches through base.ops */
    sqlite3 *db;
    sqlite3_stmt *st[ST__LAST];
    int in_batch;
    int in_read; /* a read transaction of state_read_begin() is open */
    char *path;
    int run_fd;            /* the runner lock's file PATH.run while held, else -1 */
    struct state_ext *ext; /* agent/state_sqlite_undo.c: its statements, the undo store */
};

static void sq_close(struct state *st_);

static int db_fail(struct sq *s, struct dm_err *err, const char *what)
{
    return dm_err_set(err, DM_EINTERNAL, "state journal %s: %s: %s", s->path, what,
                      sqlite3_errmsg(s->db));
}

/* Resets a statement after use so its read lock and bindings are released. */
static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v == NULL) {
        sqlite3_bind_null(st, i);
    } else {
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    }
}

/* Runs one statement to completion (no rows expected). */
static int exec_stmt(struct sq *s, enum st_stmt which, const char *what, struct dm_err *err)
{
    sqlite3_stmt *st = s->st[which];
    int rc = sqlite3_step(st);

    if (rc != SQLITE_DONE) {
        rc = db_fail(s, err, what);
        stmt_done(st);
        return rc;
    }
    stmt_done(st);
    return DM_OK;
}

/* Reads the schema version inside the open transaction and applies the migrations the
 * journal lacks. A journal written by a newer dirmig is refused, never downgraded. */
static int migrate(struct sq *s, struct dm_err *err)
{
    sqlite3_stmt *st = NULL;
    char *errmsg = NULL, *end = NULL, setv[96];
    const char *v;
    long version;
    int rc;

    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(s, err, "reading schema version");
        goto done;
    }
    v = (const char *)sqlite3_column_text(st, 0);
    version = v != NULL ? strtol(v, &end, 10) : 0;
    if (v == NULL || end == v || *end != '\0' || version < 1) {
        rc = dm_err_set(err, DM_EINVAL, "%s: journal schema version \"%s\" is not a version",
                        s->path, v != NULL ? v : "");
        goto done;
    }
    if (version > STATE_SCHEMA_VERSION) {
        rc = dm_err_set(err, DM_EINVAL,
                        "%s: journal schema version %ld is newer than this dirmig supports (%d); "
                        "use a newer dirmig",
                        s->path, version, STATE_SCHEMA_VERSION);
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
        if (migrations[i].version <= version) {
            continue;
        }
        snprintf(setv, sizeof(setv), "UPDATE meta SET value = '%d' WHERE key = 'schema_version'",
                 migrations[i].version);
        if (sqlite3_exec(s->db, migrations[i].sql, NULL, NULL, &errmsg) != SQLITE_OK ||
            sqlite3_exec(s->db, setv, NULL, NULL, &errmsg) != SQLITE_OK) {
            rc = dm_err_set(err, DM_EINVAL, "%s: migrating the journal to schema version %d: %s",
                            s->path, migrations[i].version, errmsg ? errmsg : "?");
            goto done;
        }
    }
    rc = DM_OK;
done:
    sqlite3_free(errmsg);
    sqlite3_finalize(st);
    return rc;
}

int state_sqlite_open(struct state **out, const char *path, struct dm_err *err)
{
    struct sq *s = calloc(1, sizeof(*s));
    sqlite3_stmt *st = NULL;
    char *errmsg = NULL;
    int rc;

    if (s == NULL) {
        return dm_err_set(err, DM_ENOMEM, "state_open");
    }
    s->base.ops = &state_sqlite_ops;
    s->run_fd = -1;
    s->path = strdup(path);
    if (s->path == NULL) {
        free(s);
        return dm_err_set(err, DM_ENOMEM, "state_open");
    }
    s->base.name = s->path;
    rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot open the state journal: %s", path,
                        s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto done;
    }
    sqlite3_busy_timeout(s->db, STATE_BUSY_TIMEOUT_MS);
    /* The first real access happens here: a file that is not a database, or a directory we
     * cannot create files in, fails now, so report it as a bad path. */
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot open the state journal: %s", path,
                        sqlite3_errmsg(s->db));
        goto done;
    }
    if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot switch the state journal to WAL mode", path);
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(s->db, STATE_PRAGMAS(STATE_CACHE_KIB), NULL, NULL, &errmsg) != SQLITE_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot configure the state journal: %s", path,
                        errmsg ? errmsg : "?");
        goto done;
    }
    /* Schema and migrations in one write transaction: two processes opening an old journal
     * at once (a run and the hook) migrate it once; a failed migration leaves it as it was. */
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE;", NULL, NULL, &errmsg) != SQLITE_OK ||
        sqlite3_exec(s->db, schema_sql, NULL, NULL, &errmsg) != SQLITE_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot create the state journal schema: %s", path,
                        errmsg ? errmsg : "?");
        sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
        goto done;
    }
    rc = migrate(s, err);
    if (rc != DM_OK) {
        sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
        goto done;
    }
    if (sqlite3_exec(s->db, "COMMIT;", NULL, NULL, &errmsg) != SQLITE_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot create the state journal schema: %s", path,
                        errmsg ? errmsg : "?");
        sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
        goto done;
    }
    /* this connection's set of objects read from the source in this run (leavers) */
    if (sqlite3_exec(s->db,
                     "CREATE TEMP TABLE seen (kind TEXT NOT NULL, key TEXT NOT NULL, "
                     "PRIMARY KEY (kind, key));"
                     "CREATE TEMP TABLE gone (kind TEXT NOT NULL, key TEXT NOT NULL, "
                     "PRIMARY KEY (kind, key));",
                     NULL, NULL, &errmsg) != SQLITE_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot create the run's work table: %s", path,
                        errmsg ? errmsg : "?");
        goto done;
    }
    for (int i = 0; i < ST__LAST; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            rc = db_fail(s, err, "preparing statements");
            goto done;
        }
    }
    *out = &s->base;
    s = NULL;
    rc = DM_OK;
done:
    sqlite3_free(errmsg);
    sqlite3_finalize(st);
    sq_close(s != NULL ? &s->base : NULL);
    return rc;
}

static void sq_close(struct state *st_)
{
    struct sq *s = (struct sq *)st_;
    if (s == NULL) {
        return;
    }
    if (s->in_batch || s->in_read) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    state_ext_free(s->ext);
    for (int i = 0; i < ST__LAST; i++) {
        sqlite3_finalize(s->st[i]);
    }
    sqlite3_close(s->db);
    if (s->run_fd >= 0) {
        close(s->run_fd); /* releases the runner lock */
    }
    free(s->path);
    free(s);
}

static int sq_run_begin(long long *out, struct state *st_, const char *kind,
                        const char *config_digest, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st;
    int rc;

    st = s->st[ST_RUN_INTERRUPT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
    rc = exec_stmt(s, ST_RUN_INTERRUPT, "marking interrupted runs", err);
    if (rc != DM_OK) {
        return rc;
    }
    st = s->st[ST_RUN_INSERT];
    bind_text(st, 1, kind);
    bind_text(st, 2, config_digest);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    rc = exec_stmt(s, ST_RUN_INSERT, "starting a run", err);
    if (rc != DM_OK) {
        return rc;
    }
    *out = (long long)sqlite3_last_insert_rowid(s->db);
    return DM_OK;
}

static int sq_run_end(struct state *st_, long long run, const char *status,
                      const struct run_counts *c, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    static const struct run_counts zero;
    sqlite3_stmt *st = s->st[ST_RUN_END];
    int rc;

    if (c == NULL) {
        c = &zero;
    }
    sqlite3_bind_int64(st, 1, run);
    bind_text(st, 2, status);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    sqlite3_bind_int64(st, 4, c->created);
    sqlite3_bind_int64(st, 5, c->updated);
    sqlite3_bind_int64(st, 6, c->unchanged);
    sqlite3_bind_int64(st, 7, c->failed);
    sqlite3_bind_int64(st, 8, c->deleted);
    sqlite3_bind_int64(st, 9, c->skipped);
    sqlite3_bind_int64(st, 10, c->held);
    rc = exec_stmt(s, ST_RUN_END, "ending a run", err);
    if (rc != DM_OK) {
        return rc;
    }
    if (sqlite3_changes(s->db) == 0) {
        return dm_err_set(err, DM_ENOTFOUND, "state journal: no run %lld", run);
    }
    return DM_OK;
}

static int sq_read_begin(struct state *st_, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    if (s->in_batch || s->in_read) {
        return DM_OK;
    }
    if (sqlite3_exec(s->db, "BEGIN DEFERRED", NULL, NULL, NULL) != SQLITE_OK) {
        return db_fail(s, err, "beginning a read");
    }
    s->in_read = 1;
    return DM_OK;
}

static void sq_read_end(struct state *st_)
{
    struct sq *s = (struct sq *)st_;
    if (s != NULL && s->in_read) {
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        s->in_read = 0;
    }
}

static int sq_batch_begin(struct state *st_, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    int rc;

    if (s->in_batch) {
        return dm_err_set(err, DM_EINTERNAL, "state journal: a batch is already open");
    }
    sq_read_end(st_);
    rc = exec_stmt(s, ST_BEGIN, "beginning a batch", err);
    if (rc != DM_OK) {
        return rc;
    }
    s->in_batch = 1;
    return DM_OK;
}

static int sq_batch_commit(struct state *st_, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    int rc;

    if (!s->in_batch) {
        return dm_err_set(err, DM_EINTERNAL, "state journal: no batch is open");
    }
    rc = exec_stmt(s, ST_COMMIT, "committing a batch", err);
    if (rc != DM_OK) {
        /* A failed COMMIT may leave the transaction open; drop it so the journal stays at
         * the last committed batch, which a replay continues from. */
        if (!sqlite3_get_autocommit(s->db)) {
            sqlite3_step(s->st[ST_ROLLBACK]);
            stmt_done(s->st[ST_ROLLBACK]);
        }
    }
    s->in_batch = 0;
    return rc;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);

    return v != NULL ? strdup((const char *)v) : NULL;
}

/* Steps a SELECT of OBJ_COLS and fills out from its row. The statement is reset unless
 * more rows are to come (more: the caller iterates and resets it). */
static int object_row(struct state_object *out, struct sq *s, sqlite3_stmt *st, const char *what,
                      struct dm_err *err, int more)
{
    struct state_object o = {0};
    const unsigned char *d;
    int rc = sqlite3_step(st);

    if (rc == SQLITE_DONE) {
        rc = DM_ENOTFOUND;
        dm_err_set(err, DM_ENOTFOUND, "state journal: no such object");
        goto done;
    }
    if (rc != SQLITE_ROW) {
        rc = db_fail(s, err, what);
        goto done;
    }
    o.kind = col_dup(st, 0);
    o.key = col_dup(st, 1);
    o.source_dn = col_dup(st, 2);
    o.target_ref = col_dup(st, 3);
    o.status = col_dup(st, 5);
    o.attrs = col_dup(st, 7);
    if ((o.kind == NULL) || (o.key == NULL) || (o.status == NULL) ||
        (o.source_dn == NULL && sqlite3_column_type(st, 2) != SQLITE_NULL) ||
        (o.target_ref == NULL && sqlite3_column_type(st, 3) != SQLITE_NULL) ||
        (o.attrs == NULL && sqlite3_column_type(st, 7) != SQLITE_NULL)) {
        rc = dm_err_set(err, DM_ENOMEM, "state object");
        goto done;
    }
    d = sqlite3_column_text(st, 4);
    snprintf(o.digest, sizeof(o.digest), "%s", d ? (const char *)d : "");
    o.last_run = (long long)sqlite3_column_int64(st, 6);
    d = sqlite3_column_text(st, 8);
    o.linked = d != NULL && strcmp((const char *)d, "linked") == 0;
    o.suffixed = d != NULL && strcmp((const char *)d, "suffixed") == 0;
    o.disabled_at = (long long)sqlite3_column_int64(st, 9);
    *out = o;
    memset(&o, 0, sizeof(o));
    rc = DM_OK;
    if (more) {
        return rc;
    }
done:
    state_object_clear(&o);
    stmt_done(st);
    return rc;
}

static int sq_object_get(struct state_object *out, struct state *st_, const char *kind,
                         const char *key, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_OBJ_GET];

    bind_text(st, 1, kind);
    bind_text(st, 2, key);
    return object_row(out, s, st, "reading an object", err, 0);
}

static int sq_object_by_source_dn(struct state_object *out, struct state *st_,
                                  const char *source_dn, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_OBJ_BY_DN];

    bind_text(st, 1, source_dn);
    return object_row(out, s, st, "reading an object by DN", err, 0);
}

static int sq_object_put(struct state *st_, const struct state_object *o, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_OBJ_PUT];

    bind_text(st, 1, o->kind);
    bind_text(st, 2, o->key);
    bind_text(st, 3, o->source_dn);
    bind_text(st, 4, o->target_ref);
    bind_text(st, 5, o->digest);
    bind_text(st, 6, o->status ? o->status : "ok");
    sqlite3_bind_int64(st, 7, o->last_run);
    bind_text(st, 8, o->attrs);
    bind_text(st, 9, o->linked ? "linked" : o->suffixed ? "suffixed" : "created");
    sqlite3_bind_int64(st, 10, o->disabled_at);
    return exec_stmt(s, ST_OBJ_PUT, "writing an object", err);
}

static int sq_object_by_target(struct state_object *out, struct state *st_, const char *kind,
                               const char *target_ref, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_OBJ_BY_TARGET];

    bind_text(st, 1, kind);
    bind_text(st, 2, target_ref);
    return object_row(out, s, st, "reading an object by target reference", err, 0);
}

static int sq_objects_each(struct state *st_, const char *kind, state_key_fn fn, void *payload,
                           struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_OBJ_KEYS];
    int rc, stop = 0;

    bind_text(st, 1, kind);
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            break;
        }
        const char *key = (const char *)sqlite3_column_text(st, 0);
        const char *dn = (const char *)sqlite3_column_text(st, 1);
        stop = key != NULL ? fn(key, dn, payload) : 0;
        if (stop != 0) {
            break;
        }
    }
    if (stop == 0 && rc != SQLITE_DONE) {
        stop = db_fail(s, err, "listing objects");
    }
    stmt_done(st);
    return stop;
}

static int sq_error_add(struct state *st_, long long run, const char *key, const char *dn,
                        const char *category, const char *message, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_ERR_ADD];

    sqlite3_bind_int64(st, 1, run);
    bind_text(st, 2, key);
    bind_text(st, 3, dn);
    bind_text(st, 4, category ? category : "internal");
    bind_text(st, 5, message);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
    return exec_stmt(s, ST_ERR_ADD, "recording an error", err);
}

static int sq_totals(struct state_totals *out, struct state *st_, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    struct state_totals t = {0};
    sqlite3_stmt *st = s->st[ST_TOTALS];
    int rc;

    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            break;
        }
        const char *kind = (const char *)sqlite3_column_text(st, 0);
        struct state_kind_totals *k = NULL;

        if (kind != NULL && strcmp(kind, "user") == 0) {
            k = &t.users;
        } else if (kind != NULL && strcmp(kind, "group") == 0) {
            k = &t.groups;
        } else {
            continue; /* containers */
        }
        k->at_target = (long long)sqlite3_column_double(st, 1);
        k->disabled = (long long)sqlite3_column_double(st, 2);
        k->linked = (long long)sqlite3_column_double(st, 3);
        k->deleted = (long long)sqlite3_column_double(st, 4);
        k->failed = (long long)sqlite3_column_double(st, 5);
        k->unconfirmed = (long long)sqlite3_column_double(st, 6);
    }
    if (rc != SQLITE_DONE) {
        rc = db_fail(s, err, "counting objects");
        stmt_done(st);
        return rc;
    }
    stmt_done(st);
    t.users_ok = t.users.at_target;
    t.users_failed = t.users.failed;
    t.groups_ok = t.groups.at_target;
    t.groups_failed = t.groups.failed;
    *out = t;
    return DM_OK;
}

static void copy_col(char *dst, size_t len, sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);

    snprintf(dst, len, "%s", v ? (const char *)v : "");
}

/* Steps a SELECT of RUN_COLUMNS (limit bound to ?1) and calls fn per row. */
static int list_runs(struct sq *s, enum st_stmt which, int limit, state_run_fn fn, void *payload,
                     struct dm_err *err)
{
    sqlite3_stmt *st = s->st[which];
    int rc;

    sqlite3_bind_int64(st, 1, limit);
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            break;
        }
        struct state_run r = {0};

        r.id = (long long)sqlite3_column_int64(st, 0);
        copy_col(r.kind, sizeof(r.kind), st, 1);
        copy_col(r.status, sizeof(r.status), st, 2);
        r.started = (long long)sqlite3_column_int64(st, 3);
        r.finished = (long long)sqlite3_column_int64(st, 4);
        r.counts.created = (long long)sqlite3_column_int64(st, 5);
        r.counts.updated = (long long)sqlite3_column_int64(st, 6);
        r.counts.unchanged = (long long)sqlite3_column_int64(st, 7);
        r.counts.failed = (long long)sqlite3_column_int64(st, 8);
        r.counts.deleted = (long long)sqlite3_column_int64(st, 9);
        r.counts.skipped = (long long)sqlite3_column_int64(st, 10);
        copy_col(r.wave, sizeof(r.wave), st, 11);
        copy_col(r.reason, sizeof(r.reason), st, 12);
        r.counts.held = (long long)sqlite3_column_int64(st, 13);
        if (fn(&r, payload) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = db_fail(s, err, "listing runs");
        stmt_done(st);
        return rc;
    }
    stmt_done(st);
    return DM_OK;
}

static int sq_runs(struct state *st_, int limit, state_run_fn fn, void *payload, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    return list_runs(s, ST_RUNS, limit, fn, payload, err);
}

static int sq_runs_unfinished(struct state *st_, int limit, state_run_fn fn, void *payload,
                              struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    return list_runs(s, ST_RUNS_UNFINISHED, limit, fn, payload, err);
}

static int sq_run_error_counts(struct state *st_, long long run, state_count_fn fn, void *payload,
                               struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_RUN_ERR_COUNTS];
    int rc;

    sqlite3_bind_int64(st, 1, run);
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            break;
        }
        const char *cat = (const char *)sqlite3_column_text(st, 0);

        if (fn(cat ? cat : "", (long long)sqlite3_column_int64(st, 1), payload) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = db_fail(s, err, "counting errors");
        stmt_done(st);
        return rc;
    }
    stmt_done(st);
    return DM_OK;
}

static int sq_password_record(struct state *st_, const char *login, const char *dn,
                              const char *outcome, const char *reason, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_PW_ADD];

    bind_text(st, 1, login);
    bind_text(st, 2, dn);
    bind_text(st, 3, outcome);
    bind_text(st, 4, reason);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
    return exec_stmt(s, ST_PW_ADD, "recording a password verification", err);
}

static int sq_password_counts(struct state_password_counts *out, struct state *st_,
                              struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    struct state_password_counts c = {0};
    sqlite3_stmt *st = s->st[ST_PW_COUNTS];
    int rc;

    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(s, err, "counting password verifications");
        stmt_done(st);
        return rc;
    }
    c.verified_users = sqlite3_column_int64(st, 0);
    c.verifications = sqlite3_column_int64(st, 1);
    stmt_done(st);
    st = s->st[ST_SIGNIN_COUNTS];
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            break;
        }
        const char *signin = (const char *)sqlite3_column_text(st, 0);
        long long n = (long long)sqlite3_column_int64(st, 1);

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
    if (rc != SQLITE_DONE) {
        rc = db_fail(s, err, "counting users by sign-in path");
        stmt_done(st);
        return rc;
    }
    stmt_done(st);
    *out = c;
    return DM_OK;
}

static int sq_meta_add(struct state *st_, const char *key, long long delta, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_META_ADD];
    int rc = DM_OK;

    bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, delta);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, err, "updating the journal's counters");
    }
    stmt_done(st);
    return rc;
}

static int sq_password_daily(struct state *st_, state_count_fn fn, void *payload,
                             struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_PW_DAILY];
    int rc;

    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            rc = DM_OK;
            break;
        }
        if (rc != SQLITE_ROW) {
            rc = db_fail(s, err, "counting verifications per day");
            break;
        }
        rc = fn((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), payload);
        if (rc != 0) {
            break;
        }
    }
    stmt_done(st);
    return rc;
}

int state_cache_kib(long long *out, struct state *st_, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = NULL;
    long long v = 0;
    int rc;

    if (st_->ops != &state_sqlite_ops) {
        return dm_err_set(err, DM_EINVAL, "%s: not an SQLite journal", st_->name);
    }
    if (sqlite3_prepare_v2(s->db, "PRAGMA cache_size", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = state_sqlite_fail(st_, err, "reading the cache size");
    } else {
        /* negative: KiB; positive: pages of the journal's page size */
        v = sqlite3_column_int64(st, 0);
        if (v > 0) {
            sqlite3_stmt *ps = NULL;
            long long page = 4096;
            if (sqlite3_prepare_v2(s->db, "PRAGMA page_size", -1, &ps, NULL) == SQLITE_OK &&
                sqlite3_step(ps) == SQLITE_ROW) {
                page = sqlite3_column_int64(ps, 0);
            }
            sqlite3_finalize(ps);
            v = v * page / 1024;
        } else {
            v = -v;
        }
        rc = DM_OK;
    }
    sqlite3_finalize(st);
    if (rc == DM_OK) {
        *out = v;
    }
    return rc;
}

static int sq_meta_get(char **out, struct state *st_, const char *key, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_META_GET];
    char *v = NULL;
    int rc;

    bind_text(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        v = strdup(t != NULL ? t : "");
        rc = v != NULL ? DM_OK : dm_err_set(err, DM_ENOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        rc = dm_err_set(err, DM_ENOTFOUND, "meta %s: not set", key);
    } else {
        rc = db_fail(s, err, "reading meta");
    }
    stmt_done(st);
    if (rc == DM_OK) {
        *out = v;
    }
    return rc;
}

static int sq_meta_set(struct state *st_, const char *key, const char *value, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_META_SET];

    bind_text(st, 1, key);
    bind_text(st, 2, value);
    return exec_stmt(s, ST_META_SET, "writing meta", err);
}

/* Runs an UPDATE of one run (?1 = run, ?2 = text); DM_ENOTFOUND when there is no such run. */
static int run_update(struct sq *s, enum st_stmt which, long long run, const char *text,
                      const char *what, struct dm_err *err)
{
    sqlite3_stmt *st = s->st[which];
    int rc;

    sqlite3_bind_int64(st, 1, run);
    bind_text(st, 2, text);
    rc = exec_stmt(s, which, what, err);
    if (rc == DM_OK && sqlite3_changes(s->db) == 0) {
        rc = dm_err_set(err, DM_ENOTFOUND, "state journal: no run %lld", run);
    }
    return rc;
}

static int sq_run_set_wave(struct state *st_, long long run, const char *wave, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    return run_update(s, ST_RUN_WAVE, run, wave, "recording a run's wave", err);
}

static int sq_run_set_reason(struct state *st_, long long run, const char *reason,
                             struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    char cut[sizeof(((struct state_run *)NULL)->reason)];

    snprintf(cut, sizeof(cut), "%s", reason != NULL ? reason : "");
    return run_update(s, ST_RUN_REASON, run, cut, "recording why a run stopped", err);
}

static int sq_user_created(struct state *st_, long long run, const char *key, const char *signin,
                           struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_USER_CREATED];

    sqlite3_bind_int64(st, 1, run);
    bind_text(st, 2, key);
    bind_text(st, 3, signin);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
    return exec_stmt(s, ST_USER_CREATED, "recording a created user", err);
}

static int sq_signin_daily(struct state *st_, state_signin_day_fn fn, void *payload,
                           struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_SIGNIN_DAILY];
    int rc;

    for (;;) {
        struct state_signin_day d = {0};

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            rc = DM_OK;
            break;
        }
        if (rc != SQLITE_ROW) {
            rc = db_fail(s, err, "counting sign-in paths per day");
            break;
        }
        copy_col(d.day, sizeof(d.day), st, 0);
        d.imported = (long long)sqlite3_column_int64(st, 1);
        d.hook_created = (long long)sqlite3_column_int64(st, 2);
        d.verified = (long long)sqlite3_column_int64(st, 3);
        if (fn(&d, payload) != 0) {
            rc = DM_OK;
            break;
        }
    }
    stmt_done(st);
    return rc;
}

static int sq_run_summary(struct state_run_summary *out, struct state *st_, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    struct state_run_summary r = {0};
    sqlite3_stmt *st = s->st[ST_RUN_SUMMARY];
    int rc;

    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(s, err, "summing runs");
        stmt_done(st);
        return rc;
    }
    r.runs = (long long)sqlite3_column_int64(st, 0);
    r.plans = (long long)sqlite3_column_int64(st, 1);
    r.blocked = (long long)sqlite3_column_int64(st, 2);
    r.failed = (long long)sqlite3_column_int64(st, 3);
    r.interrupted = (long long)sqlite3_column_int64(st, 4);
    r.first_started = (long long)sqlite3_column_int64(st, 5);
    r.last_started = (long long)sqlite3_column_int64(st, 6);
    r.sum.created = (long long)sqlite3_column_int64(st, 7);
    r.sum.updated = (long long)sqlite3_column_int64(st, 8);
    r.sum.unchanged = (long long)sqlite3_column_int64(st, 9);
    r.sum.failed = (long long)sqlite3_column_int64(st, 10);
    r.sum.deleted = (long long)sqlite3_column_int64(st, 11);
    r.sum.skipped = (long long)sqlite3_column_int64(st, 12);
    stmt_done(st);
    *out = r;
    return DM_OK;
}

static int sq_waves(struct state *st_, state_wave_fn fn, void *payload, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_WAVES];
    int rc;

    for (;;) {
        struct state_wave w = {0};
        const char *status;

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            rc = DM_OK;
            break;
        }
        if (rc != SQLITE_ROW) {
            rc = db_fail(s, err, "summing runs per wave");
            break;
        }
        w.name = (const char *)sqlite3_column_text(st, 0);
        w.runs = (long long)sqlite3_column_int64(st, 1);
        w.plans = (long long)sqlite3_column_int64(st, 2);
        w.sum.created = (long long)sqlite3_column_int64(st, 3);
        w.sum.updated = (long long)sqlite3_column_int64(st, 4);
        w.sum.unchanged = (long long)sqlite3_column_int64(st, 5);
        w.sum.failed = (long long)sqlite3_column_int64(st, 6);
        w.sum.deleted = (long long)sqlite3_column_int64(st, 7);
        w.sum.skipped = (long long)sqlite3_column_int64(st, 8);
        w.last_run = (long long)sqlite3_column_int64(st, 9);
        w.last_started = (long long)sqlite3_column_int64(st, 10);
        status = (const char *)sqlite3_column_text(st, 11);
        w.last_status = status != NULL ? status : "";
        if (w.name == NULL) {
            w.name = "";
        }
        if (fn(&w, payload) != 0) {
            rc = DM_OK;
            break;
        }
    }
    stmt_done(st);
    return rc;
}

static int sq_error_categories(struct state *st_, state_error_category_fn fn, void *payload,
                               struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_ERR_CATEGORIES];
    int rc;

    for (;;) {
        struct state_error_category c = {0};

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            rc = DM_OK;
            break;
        }
        if (rc != SQLITE_ROW) {
            rc = db_fail(s, err, "counting errors by category");
            break;
        }
        c.category = (const char *)sqlite3_column_text(st, 0);
        c.total = (long long)sqlite3_column_int64(st, 1);
        c.open = (long long)sqlite3_column_int64(st, 2);
        c.last_run = (long long)sqlite3_column_int64(st, 3);
        if (c.category == NULL) {
            c.category = "";
        }
        if (fn(&c, payload) != 0) {
            rc = DM_OK;
            break;
        }
    }
    stmt_done(st);
    return rc;
}

static int sq_error_examples(struct state *st_, int per_category, state_error_row_fn fn,
                             void *payload, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_ERR_EXAMPLES];
    int rc;

    sqlite3_bind_int64(st, 1, per_category);
    for (;;) {
        struct state_error_row r = {0};

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            rc = DM_OK;
            break;
        }
        if (rc != SQLITE_ROW) {
            rc = db_fail(s, err, "reading error examples");
            break;
        }
        r.category = (const char *)sqlite3_column_text(st, 0);
        r.run = (long long)sqlite3_column_int64(st, 1);
        r.key = (const char *)sqlite3_column_text(st, 2);
        r.dn = (const char *)sqlite3_column_text(st, 3);
        r.message = (const char *)sqlite3_column_text(st, 4);
        r.at = (long long)sqlite3_column_int64(st, 5);
        if (r.category == NULL) {
            r.category = "";
        }
        if (fn(&r, payload) != 0) {
            rc = DM_OK;
            break;
        }
    }
    stmt_done(st);
    return rc;
}

static int sq_seen_add(struct state *st_, const char *kind, const char *key, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_SEEN_ADD];

    bind_text(st, 1, kind);
    bind_text(st, 2, key);
    return exec_stmt(s, ST_SEEN_ADD, "noting an object read", err);
}

static int sq_gone_add(struct state *st_, const char *kind, const char *key, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_GONE_ADD];

    bind_text(st, 1, kind);
    bind_text(st, 2, key);
    return exec_stmt(s, ST_GONE_ADD, "noting an object deleted in the source", err);
}

static int objects_each(struct sq *s, sqlite3_stmt *st, state_object_fn fn, void *payload,
                        struct dm_err *err)
{
    int rc;

    for (;;) {
        struct state_object o = {0};
        rc = object_row(&o, s, st, "listing objects not read", err, 1);
        if (rc == DM_ENOTFOUND) {
            rc = DM_OK;
            break;
        }
        if (rc != DM_OK) {
            break;
        }
        rc = fn(&o, payload);
        state_object_clear(&o);
        if (rc != 0) {
            break;
        }
    }
    stmt_done(st);
    return rc;
}

static int sq_unseen(struct state *st_, const char *kind, int gone, state_object_fn fn,
                     void *payload, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[gone ? ST_GONE : ST_UNSEEN];

    bind_text(st, 1, kind);
    return objects_each(s, st, fn, payload, err);
}

static int sq_disabled_due(struct state *st_, const char *kind, long long before, int gone,
                           state_object_fn fn, void *payload, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_DISABLED_DUE];

    bind_text(st, 1, kind);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)before);
    sqlite3_bind_int(st, 3, gone != 0);
    return objects_each(s, st, fn, payload, err);
}

static int sq_population(long long *out, struct state *st_, const char *kind, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = s->st[ST_POPULATION];
    int rc;

    bind_text(st, 1, kind);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = db_fail(s, err, "counting objects");
        stmt_done(st);
        return rc;
    }
    *out = (long long)sqlite3_column_int64(st, 0);
    stmt_done(st);
    return DM_OK;
}

/* ---- the runner lock: flock(2) on PATH.run (one machine shares a SQLite journal) ---- */

/* Reads "host pid since" written by the holder (best effort: the lock, not the text,
 * decides who runs). */
static void read_holder(int fd, struct state_runner *h)
{
    char buf[400];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

    memset(h, 0, sizeof(*h));
    if (n <= 0) {
        return;
    }
    buf[n] = '\0';
    if (sscanf(buf, "%255s %lld %lld", h->host, &h->pid, &h->since) < 2) {
        memset(h, 0, sizeof(*h));
    }
}

static int sq_runner_lock(struct state *st_, const char *identity, int wait_s,
                          struct state_runner *holder, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    struct state_runner me;
    char *lp = NULL, line[400];
    time_t until = time(NULL) + (wait_s > 0 ? wait_s : 0);
    int fd = -1, rc;

    (void)identity; /* a SQLite journal belongs to one target already (meta target_identity) */
    if (s->run_fd >= 0) {
        return DM_OK;
    }
    if (asprintf(&lp, "%s.run", s->path) < 0) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot open the runner lock: %s", lp, strerror(errno));
        goto done;
    }
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            break;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            rc = dm_err_set(err, DM_EINTERNAL, "%s: runner lock: %s", lp, strerror(errno));
            goto done;
        }
        if (time(NULL) >= until) {
            read_holder(fd, holder);
            rc = dm_err_set(err, DM_EBUSY, "another run in progress on %s (pid %lld)",
                            holder->host[0] ? holder->host : "?", holder->pid);
            goto done;
        }
        sleep(1);
    }
    state_runner_me(&me);
    snprintf(line, sizeof(line), "%s %lld %lld\n", me.host, me.pid, me.since);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, strlen(line), 0) < 0) {
        rc = dm_err_set(err, DM_EINTERNAL, "%s: runner lock: %s", lp, strerror(errno));
        goto done;
    }
    s->run_fd = fd;
    fd = -1;
    rc = DM_OK;
done:
    if (fd >= 0) {
        close(fd);
    }
    free(lp);
    return rc;
}

static void sq_runner_unlock(struct state *st_)
{
    struct sq *s = (struct sq *)st_;

    if (s != NULL && s->run_fd >= 0) {
        close(s->run_fd);
        s->run_fd = -1;
    }
}

/* ---- copying (dirmig state migrate): every row as text ---- */

static int sq_dump(struct state *st_, state_row_fn fn, void *payload, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = NULL;
    int rc = DM_OK;

    for (const struct state_table *t = state_tables; t->name != NULL && rc == DM_OK; t++) {
        char sql[512];
        int n = 0;
        size_t len;

        snprintf(sql, sizeof(sql), "SELECT ");
        for (; t->cols[n] != NULL; n++) {
            len = strlen(sql);
            snprintf(sql + len, sizeof(sql) - len, "%s%s", n ? ", " : "", t->cols[n]);
        }
        len = strlen(sql);
        snprintf(sql + len, sizeof(sql) - len, " FROM %s ORDER BY rowid", t->name);
        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
            return db_fail(s, err, "reading the journal to copy it");
        }
        for (;;) {
            const char *vals[16];
            int step = sqlite3_step(st);

            if (step == SQLITE_DONE) {
                break;
            }
            if (step != SQLITE_ROW) {
                rc = db_fail(s, err, "reading the journal to copy it");
                break;
            }
            for (int i = 0; i < n; i++) {
                vals[i] = (const char *)sqlite3_column_text(st, i);
            }
            rc = fn(t->name, n, t->cols, vals, payload);
            if (rc != DM_OK) {
                break;
            }
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    return rc;
}

static int sq_load_row(struct state *st_, const char *table, int ncols, const char *const *cols,
                       const char *const *vals, struct dm_err *err)
{
    struct sq *s = (struct sq *)st_;
    sqlite3_stmt *st = NULL;
    char sql[1024];
    size_t len;
    int rc;

    snprintf(sql, sizeof(sql), "INSERT INTO %s (", table);
    for (int i = 0; i < ncols; i++) {
        len = strlen(sql);
        snprintf(sql + len, sizeof(sql) - len, "%s%s", i ? ", " : "", cols[i]);
    }
    len = strlen(sql);
    snprintf(sql + len, sizeof(sql) - len, ") VALUES (");
    for (int i = 0; i < ncols; i++) {
        len = strlen(sql);
        snprintf(sql + len, sizeof(sql) - len, "%s?", i ? ", " : "");
    }
    len = strlen(sql);
    snprintf(sql + len, sizeof(sql) - len, ")");
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return db_fail(s, err, "copying a row");
    }
    for (int i = 0; i < ncols; i++) {
        bind_text(st, i + 1, vals[i]);
    }
    rc = sqlite3_step(st) == SQLITE_DONE ? DM_OK : db_fail(s, err, "copying a row");
    sqlite3_finalize(st);
    return rc;
}

const struct state_ops state_sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .run_begin = sq_run_begin,
    .run_end = sq_run_end,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .run_set_wave = sq_run_set_wave,
    .run_set_reason = sq_run_set_reason,
    .batch_begin = sq_batch_begin,
    .batch_commit = sq_batch_commit,
    .object_get = sq_object_get,
    .object_by_source_dn = sq_object_by_source_dn,
    .object_by_target = sq_object_by_target,
    .object_put = sq_object_put,
    .objects_each = sq_objects_each,
    .error_add = sq_error_add,
    .seen_add = sq_seen_add,
    .gone_add = sq_gone_add,
    .unseen = sq_unseen,
    .population = sq_population,
    .disabled_due = sq_disabled_due,
    .totals = sq_totals,
    .runs = sq_runs,
    .runs_unfinished = sq_runs_unfinished,
    .run_error_counts = sq_run_error_counts,
    .password_record = sq_password_record,
    .meta_add = sq_meta_add,
    .password_counts = sq_password_counts,
    .password_daily = sq_password_daily,
    .user_created = sq_user_created,
    .signin_daily = sq_signin_daily,
    .run_summary = sq_run_summary,
    .waves = sq_waves,
    .error_categories = sq_error_categories,
    .error_examples = sq_error_examples,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .runner_lock = sq_runner_lock,
    .runner_unlock = sq_runner_unlock,
    .dump = sq_dump,
    .load_row = sq_load_row,
    .load_end = NULL,
    .ping = NULL,
    .run_get = state_sqlite_run_get,
    .run_last = state_sqlite_run_last,
    .object_del = state_sqlite_object_del,
    .plan_add = state_sqlite_plan_add,
    .plan_get = state_sqlite_plan_get,
    .plan_use = state_sqlite_plan_use,
    .plan_unused = state_sqlite_plan_unused,
    .undo_open = state_sqlite_undo_open,
    .undo_path = state_sqlite_undo_path,
    .undo_put = state_sqlite_undo_put,
    .undo_list = state_sqlite_undo_list,
    .undo_mark = state_sqlite_undo_mark,
    .undo_count = state_sqlite_undo_count,
};

/* ---- for the other SQLite file of this backend (agent/state_sqlite.h) ---- */

sqlite3 *state_sqlite_db(struct state *st_)
{
    return ((struct sq *)st_)->db;
}

const char *state_sqlite_path(const struct state *st_)
{
    return ((const struct sq *)st_)->path;
}

struct state_ext **state_sqlite_ext(struct state *st_)
{
    return &((struct sq *)st_)->ext;
}

int state_sqlite_fail(struct state *st_, struct dm_err *err, const char *what)
{
    return db_fail((struct sq *)st_, err, what);
}

int state_sqlite_in_tx(const struct state *st_)
{
    const struct sq *s = (const struct sq *)st_;

    return s->in_batch || s->in_read;
}
