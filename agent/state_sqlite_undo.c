/*
 * state_sqlite_undo.c: the parts of the SQLite state backend that rollback and saved plans
 * use (agent/state.h): the undo store, attached as a second database file beside the
 * journal (PATH.undo, created 0600 before SQLite opens it, so its -wal and -shm files get
 * the same mode), the saved plan's work table, and the run and object look-ups rollback
 * needs. Statements are prepared on first use and kept until state_close().
 */
#include <config.h>
#include "agent/state_sqlite.h"
#include "agent/util/log.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum ux_stmt {
    UX_RUN_GET,
    UX_RUN_LAST,
    UX_OBJ_DEL,
    UX_PLAN_ADD,
    UX_PLAN_GET,
    UX_PLAN_USE,
    UX_PLAN_UNUSED,
    UX_UNDO_PUT,
    UX_UNDO_LIST,
    UX_UNDO_MARK,
    UX_UNDO_COUNT,
    UX__LAST
};

#define UX_RUN_COLS                                                                                \
    "id, kind, status, started, finished, created, updated, unchanged, failed, deleted, "          \
    "skipped, wave, reason, held"
#define UX_PLAN_COLS "kind, key, op, target, sdig, tdig, line"
#define UX_UNDO_COLS                                                                               \
    "id, run, kind, key, op, ref, ref_before, source_dn, wave, names, before, after_digest, "      \
    "row_before, undone_by"

static const char *const ux_sql[UX__LAST] = {
    [UX_RUN_GET] = "SELECT " UX_RUN_COLS " FROM runs WHERE id = ?1",
    [UX_RUN_LAST] = "SELECT " UX_RUN_COLS " FROM runs WHERE kind = ?1 ORDER BY id DESC LIMIT 1",
    [UX_OBJ_DEL] = "DELETE FROM objects WHERE kind = ?1 AND key = ?2",
    [UX_PLAN_ADD] =
        "INSERT INTO temp.planned (" UX_PLAN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [UX_PLAN_GET] = "SELECT " UX_PLAN_COLS " FROM temp.planned WHERE kind = ?1 AND key = ?2",
    [UX_PLAN_USE] = "UPDATE temp.planned SET used = 1 WHERE kind = ?1 AND key = ?2",
    [UX_PLAN_UNUSED] = "SELECT " UX_PLAN_COLS " FROM temp.planned WHERE used = 0 ORDER BY line",
    [UX_UNDO_PUT] = "INSERT INTO undo.changes (run, kind, key, op, ref, ref_before, source_dn, "
                    "wave, names, before, after_digest, row_before, at) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [UX_UNDO_LIST] = "SELECT " UX_UNDO_COLS " FROM undo.changes WHERE run = ?1 AND undone_by = 0 "
                     "AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3",
    [UX_UNDO_MARK] = "UPDATE undo.changes SET undone_by = ?2 WHERE id = ?1",
    [UX_UNDO_COUNT] = "SELECT count(*), total(undone_by != 0) FROM undo.changes WHERE run = ?1",
};

/* The undo store's schema; "undo." is the attached database. Version in undo.meta. */
static const char undo_schema[] =
    "CREATE TABLE IF NOT EXISTS undo.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO undo.meta (key, value) VALUES ('schema_version', '1');"
    "CREATE TABLE IF NOT EXISTS undo.changes ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  run INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  op TEXT NOT NULL,"
    "  ref TEXT,"
    "  ref_before TEXT,"
    "  source_dn TEXT,"
    "  wave TEXT,"
    "  names TEXT,"
    "  before BLOB,"
    "  after_digest TEXT,"
    "  row_before TEXT,"
    "  undone_by INTEGER NOT NULL DEFAULT 0,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS undo.changes_run ON changes (run, id);";

struct state_ext {
    sqlite3_stmt *st[UX__LAST];
    int attached;   /* the undo store is attached */
    int plan_table; /* temp.planned exists */
    char *undo_path;
};

void state_ext_free(struct state_ext *x)
{
    if (x == NULL) {
        return;
    }
    for (int i = 0; i < UX__LAST; i++) {
        sqlite3_finalize(x->st[i]);
    }
    free(x->undo_path);
    free(x);
}

static struct state_ext *ext_of(struct state *s)
{
    struct state_ext **x = state_sqlite_ext(s);

    if (*x == NULL) {
        *x = calloc(1, sizeof(**x));
        if (*x != NULL && asprintf(&(*x)->undo_path, "%s.undo", state_sqlite_path(s)) < 0) {
            free(*x);
            *x = NULL;
        }
    }
    return *x;
}

/* The statement which, prepared on first use; NULL with err set. */
static sqlite3_stmt *stmt(struct state *s, enum ux_stmt which, struct dm_err *err)
{
    struct state_ext *x = ext_of(s);

    if (x == NULL) {
        dm_err_set(err, DM_ENOMEM, "out of memory");
        return NULL;
    }
    if (x->st[which] == NULL &&
        sqlite3_prepare_v3(state_sqlite_db(s), ux_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                           &x->st[which], NULL) != SQLITE_OK) {
        state_sqlite_fail(s, err, "preparing a statement");
        return NULL;
    }
    return x->st[which];
}

static void done_stmt(sqlite3_stmt *st)
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

/* Steps st to its end (no row expected). */
static int run_stmt(struct state *s, sqlite3_stmt *st, const char *what, struct dm_err *err)
{
    int rc = sqlite3_step(st);

    if (rc != SQLITE_DONE) {
        rc = rc == SQLITE_CONSTRAINT ? dm_err_set(err, DM_EEXISTS, "%s: already there", what)
                                     : state_sqlite_fail(s, err, what);
        done_stmt(st);
        return rc;
    }
    done_stmt(st);
    return DM_OK;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);

    return v != NULL ? strdup((const char *)v) : NULL;
}

static void col_copy(char *dst, size_t len, sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);

    snprintf(dst, len, "%s", v ? (const char *)v : "");
}

/* ---- runs and objects ---- */

static int run_row(struct state_run *out, struct state *s, sqlite3_stmt *st, struct dm_err *err)
{
    struct state_run r;
    int rc = sqlite3_step(st);

    if (rc == SQLITE_DONE) {
        done_stmt(st);
        return dm_err_set(err, DM_ENOTFOUND, "no such run in the state journal");
    }
    if (rc != SQLITE_ROW) {
        rc = state_sqlite_fail(s, err, "reading a run");
        done_stmt(st);
        return rc;
    }
    memset(&r, 0, sizeof(r));
    r.id = (long long)sqlite3_column_int64(st, 0);
    col_copy(r.kind, sizeof(r.kind), st, 1);
    col_copy(r.status, sizeof(r.status), st, 2);
    r.started = (long long)sqlite3_column_int64(st, 3);
    r.finished = (long long)sqlite3_column_int64(st, 4);
    r.counts.created = (long long)sqlite3_column_int64(st, 5);
    r.counts.updated = (long long)sqlite3_column_int64(st, 6);
    r.counts.unchanged = (long long)sqlite3_column_int64(st, 7);
    r.counts.failed = (long long)sqlite3_column_int64(st, 8);
    r.counts.deleted = (long long)sqlite3_column_int64(st, 9);
    r.counts.skipped = (long long)sqlite3_column_int64(st, 10);
    col_copy(r.wave, sizeof(r.wave), st, 11);
    col_copy(r.reason, sizeof(r.reason), st, 12);
    r.counts.held = (long long)sqlite3_column_int64(st, 13);
    done_stmt(st);
    *out = r;
    return DM_OK;
}

int state_sqlite_run_get(struct state_run *out, struct state *s, long long id, struct dm_err *err)
{
    sqlite3_stmt *st = stmt(s, UX_RUN_GET, err);

    if (st == NULL) {
        return err->rc;
    }
    sqlite3_bind_int64(st, 1, id);
    return run_row(out, s, st, err);
}

int state_sqlite_run_last(struct state_run *out, struct state *s, const char *kind,
                          struct dm_err *err)
{
    sqlite3_stmt *st = stmt(s, UX_RUN_LAST, err);

    if (st == NULL) {
        return err->rc;
    }
    bind_text(st, 1, kind);
    return run_row(out, s, st, err);
}

int state_sqlite_object_del(struct state *s, const char *kind, const char *key, struct dm_err *err)
{
    sqlite3_stmt *st = stmt(s, UX_OBJ_DEL, err);

    if (st == NULL) {
        return err->rc;
    }
    bind_text(st, 1, kind);
    bind_text(st, 2, key);
    return run_stmt(s, st, "removing an object", err);
}

/* ---- the saved plan's work table ---- */

static int plan_table(struct state *s, struct dm_err *err)
{
    struct state_ext *x = ext_of(s);
    char *msg = NULL;

    if (x == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    if (x->plan_table) {
        return DM_OK;
    }
    if (sqlite3_exec(state_sqlite_db(s),
                     "CREATE TEMP TABLE IF NOT EXISTS planned (kind TEXT NOT NULL, "
                     "key TEXT NOT NULL, op TEXT NOT NULL, target TEXT, sdig TEXT, tdig TEXT, "
                     "line INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0, "
                     "PRIMARY KEY (kind, key))",
                     NULL, NULL, &msg) != SQLITE_OK) {
        int rc = dm_err_set(err, DM_EINTERNAL, "the saved plan's work table: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return rc;
    }
    x->plan_table = 1;
    return DM_OK;
}

int state_sqlite_plan_add(struct state *s, const struct state_planned *p, struct dm_err *err)
{
    sqlite3_stmt *st;
    int rc = plan_table(s, err);

    if (rc != DM_OK || (st = stmt(s, UX_PLAN_ADD, err)) == NULL) {
        return rc != DM_OK ? rc : (int)err->rc;
    }
    bind_text(st, 1, p->kind);
    bind_text(st, 2, p->key);
    bind_text(st, 3, p->op);
    bind_text(st, 4, p->target);
    bind_text(st, 5, p->source_digest);
    bind_text(st, 6, p->target_digest);
    sqlite3_bind_int64(st, 7, p->line);
    return run_stmt(s, st, "a change of the saved plan", err);
}

static int planned_row(struct state_planned *out, sqlite3_stmt *st)
{
    memset(out, 0, sizeof(*out));
    out->kind = col_dup(st, 0);
    out->key = col_dup(st, 1);
    out->op = col_dup(st, 2);
    out->target = col_dup(st, 3);
    out->source_digest = col_dup(st, 4);
    out->target_digest = col_dup(st, 5);
    out->line = (long)sqlite3_column_int64(st, 6);
    if (out->kind == NULL || out->key == NULL || out->op == NULL || out->target == NULL ||
        out->source_digest == NULL || out->target_digest == NULL) {
        state_planned_clear(out);
        return DM_ENOMEM;
    }
    return DM_OK;
}

int state_sqlite_plan_get(struct state_planned *out, struct state *s, const char *kind,
                          const char *key, struct dm_err *err)
{
    sqlite3_stmt *st;
    int rc = plan_table(s, err);

    if (rc != DM_OK || (st = stmt(s, UX_PLAN_GET, err)) == NULL) {
        return rc != DM_OK ? rc : (int)err->rc;
    }
    bind_text(st, 1, kind);
    bind_text(st, 2, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = planned_row(out, st) == DM_OK ? DM_OK : dm_err_set(err, DM_ENOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        rc = DM_ENOTFOUND;
    } else {
        rc = state_sqlite_fail(s, err, "reading the saved plan");
    }
    done_stmt(st);
    return rc;
}

int state_sqlite_plan_use(struct state *s, const char *kind, const char *key, struct dm_err *err)
{
    sqlite3_stmt *st;
    int rc = plan_table(s, err);

    if (rc != DM_OK || (st = stmt(s, UX_PLAN_USE, err)) == NULL) {
        return rc != DM_OK ? rc : (int)err->rc;
    }
    bind_text(st, 1, kind);
    bind_text(st, 2, key);
    return run_stmt(s, st, "marking a change of the saved plan", err);
}

int state_sqlite_plan_unused(struct state *s, state_planned_fn fn, void *payload,
                             struct dm_err *err)
{
    sqlite3_stmt *st;
    int rc = plan_table(s, err);

    if (rc != DM_OK || (st = stmt(s, UX_PLAN_UNUSED, err)) == NULL) {
        return rc != DM_OK ? rc : (int)err->rc;
    }
    for (;;) {
        struct state_planned p;
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            rc = DM_OK;
            break;
        }
        if (rc != SQLITE_ROW) {
            rc = state_sqlite_fail(s, err, "listing the saved plan");
            break;
        }
        if (planned_row(&p, st) != DM_OK) {
            rc = dm_err_set(err, DM_ENOMEM, "out of memory");
            break;
        }
        rc = fn(&p, payload);
        state_planned_clear(&p);
        if (rc != 0) {
            break;
        }
    }
    done_stmt(st);
    return rc;
}

/* ---- the undo store ---- */

const char *state_sqlite_undo_path(const struct state *s)
{
    struct state_ext *const *x = state_sqlite_ext((struct state *)s);

    return *x != NULL ? (*x)->undo_path : NULL;
}

/* Creates the file 0600 when missing; a file others can read is made 0600 (it holds
 * credentials). */
static int undo_file(const char *path, struct dm_err *err)
{
    struct stat sb;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        return dm_err_set(err, DM_EINVAL, "%s: cannot open the undo store: %s", path,
                          strerror(errno));
    }
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0) {
        log_warn("%s: the undo store holds credentials; its mode %04o is now 0600", path,
                 (unsigned)(sb.st_mode & 07777));
        if (fchmod(fd, 0600) != 0) {
            close(fd);
            return dm_err_set(err, DM_EINVAL, "%s: cannot make the undo store 0600: %s", path,
                              strerror(errno));
        }
    }
    close(fd);
    return DM_OK;
}

int state_sqlite_undo_open(struct state *s, struct dm_err *err)
{
    struct state_ext *x = ext_of(s);
    sqlite3 *db = state_sqlite_db(s);
    sqlite3_stmt *st = NULL;
    char *msg = NULL;
    int rc;

    if (x == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    if (x->attached) {
        return DM_OK;
    }
    if (state_sqlite_in_tx(s)) {
        return dm_err_set(err, DM_EINTERNAL, "the undo store cannot be opened inside a batch");
    }
    rc = undo_file(x->undo_path, err);
    if (rc != DM_OK) {
        return rc;
    }
    if (sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS undo", -1, &st, NULL) != SQLITE_OK) {
        return state_sqlite_fail(s, err, "attaching the undo store");
    }
    sqlite3_bind_text(st, 1, x->undo_path, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return dm_err_set(err, DM_EINVAL, "%s: cannot open the undo store: %s", x->undo_path,
                          sqlite3_errmsg(db));
    }
    x->attached = 1;
    if (sqlite3_exec(db, "PRAGMA undo.journal_mode=WAL", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot open the undo store: %s", x->undo_path,
                        msg ? msg : "?");
        sqlite3_free(msg);
        return rc;
    }
    if (sqlite3_exec(db, undo_schema, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot create the undo store: %s", x->undo_path,
                        msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return DM_OK;
}

static int need_undo(struct state *s, struct dm_err *err)
{
    struct state_ext *x = ext_of(s);

    if (x == NULL || !x->attached) {
        return dm_err_set(err, DM_EINTERNAL, "the undo store is not open");
    }
    return DM_OK;
}

int state_sqlite_undo_put(struct state *s, const struct state_undo *u, struct dm_err *err)
{
    sqlite3_stmt *st;
    int rc = need_undo(s, err);

    if (rc != DM_OK || (st = stmt(s, UX_UNDO_PUT, err)) == NULL) {
        return rc != DM_OK ? rc : (int)err->rc;
    }
    sqlite3_bind_int64(st, 1, u->run);
    bind_text(st, 2, u->kind);
    bind_text(st, 3, u->key);
    bind_text(st, 4, u->op);
    bind_text(st, 5, u->ref);
    bind_text(st, 6, u->ref_before);
    bind_text(st, 7, u->source_dn);
    bind_text(st, 8, u->wave);
    bind_text(st, 9, u->names);
    if (u->before != NULL) {
        sqlite3_bind_blob(st, 10, u->before, (int)u->before_len, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, 10);
    }
    bind_text(st, 11, u->after_digest);
    bind_text(st, 12, u->row_before);
    sqlite3_bind_int64(st, 13, (sqlite3_int64)time(NULL));
    return run_stmt(s, st, "writing an undo record", err);
}

int state_sqlite_undo_list(struct state *s, long long run, long long below_id, int limit,
                           state_undo_fn fn, void *payload, struct dm_err *err)
{
    sqlite3_stmt *st;
    int rc = need_undo(s, err);

    if (rc != DM_OK || (st = stmt(s, UX_UNDO_LIST, err)) == NULL) {
        return rc != DM_OK ? rc : (int)err->rc;
    }
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, below_id);
    sqlite3_bind_int64(st, 3, limit);
    for (;;) {
        struct state_undo u;
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            rc = DM_OK;
            break;
        }
        if (rc != SQLITE_ROW) {
            rc = state_sqlite_fail(s, err, "reading the undo store");
            break;
        }
        memset(&u, 0, sizeof(u));
        u.id = (long long)sqlite3_column_int64(st, 0);
        u.run = (long long)sqlite3_column_int64(st, 1);
        u.kind = (const char *)sqlite3_column_text(st, 2);
        u.key = (const char *)sqlite3_column_text(st, 3);
        u.op = (const char *)sqlite3_column_text(st, 4);
        u.ref = (const char *)sqlite3_column_text(st, 5);
        u.ref_before = (const char *)sqlite3_column_text(st, 6);
        u.source_dn = (const char *)sqlite3_column_text(st, 7);
        u.wave = (const char *)sqlite3_column_text(st, 8);
        u.names = (const char *)sqlite3_column_text(st, 9);
        u.before = (const unsigned char *)sqlite3_column_blob(st, 10);
        u.before_len = (size_t)sqlite3_column_bytes(st, 10);
        u.after_digest = (const char *)sqlite3_column_text(st, 11);
        u.row_before = (const char *)sqlite3_column_text(st, 12);
        u.undone_by = (long long)sqlite3_column_int64(st, 13);
        if (u.kind == NULL || u.key == NULL || u.op == NULL) {
            rc = state_sqlite_fail(s, err, "an undo record without kind, key or operation");
            break;
        }
        rc = fn(&u, payload);
        if (rc != 0) {
            break;
        }
    }
    done_stmt(st);
    return rc;
}

int state_sqlite_undo_mark(struct state *s, long long id, long long by_run, struct dm_err *err)
{
    sqlite3_stmt *st;
    int rc = need_undo(s, err);

    if (rc != DM_OK || (st = stmt(s, UX_UNDO_MARK, err)) == NULL) {
        return rc != DM_OK ? rc : (int)err->rc;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, by_run);
    return run_stmt(s, st, "marking an undo record", err);
}

int state_sqlite_undo_count(long long *total, long long *undone, struct state *s, long long run,
                            struct dm_err *err)
{
    sqlite3_stmt *st;
    int rc = need_undo(s, err);

    if (rc != DM_OK || (st = stmt(s, UX_UNDO_COUNT, err)) == NULL) {
        return rc != DM_OK ? rc : (int)err->rc;
    }
    sqlite3_bind_int64(st, 1, run);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *total = (long long)sqlite3_column_int64(st, 0);
        *undone = (long long)sqlite3_column_double(st, 1);
        rc = DM_OK;
    } else {
        rc = state_sqlite_fail(s, err, "counting undo records");
    }
    done_stmt(st);
    return rc;
}
