#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#ifdef STATE_TEST_PG
#include <libpq-fe.h>
#else
#include <sqlite3.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "agent/state.h"
#include "agent/util/secret.h"
#include "tests/unit/fixture.h"

/*
 * The journal's contract (agent/state.h), tested on SQLite (test_state) and, built with
 * STATE_TEST_PG, the same tests on PostgreSQL (test_state_pg, run by
 * tests/intg/test_state_pg.sh against a throwaway cluster whose connection string is in
 * DIRMIG_TEST_PG_CONNINFO). A PostgreSQL "path" names nothing: each test starts on an
 * empty database (schema public dropped), and reopening connects again.
 */

/* Each test gets a fresh journal path in one temp dir made by the group setup. */
static int g_seq;

#ifdef STATE_TEST_PG
#define BULK_N 20000 /* a round trip per put and per get */

/* Runs sql on the test database (as the test's superuser). */
static void pg_sql(const char *sql)
{
    PGconn *c = PQconnectdb(getenv("DIRMIG_TEST_PG_CONNINFO"));
    PGresult *r;

    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("connect: %s", PQerrorMessage(c));
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
}

static void new_path(char *buf, size_t len)
{
    snprintf(buf, len, "pg%d", ++g_seq);
    pg_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
}

static int journal_open(struct state **out, const char *path, struct dm_err *e)
{
    const char *ci = getenv("DIRMIG_TEST_PG_CONNINFO");
    struct state_where w = {0};
    struct secret *sec = NULL;
    int rc;

    (void)path;
    assert_int_equal(secret_from_mem(&sec, ci, strlen(ci), e), DM_OK);
    w.type = "postgresql";
    w.conninfo = sec;
    rc = state_open_cfg(out, &w, e);
    secret_free(sec);
    return rc;
}

#define sql_exec(path, sql) pg_sql(sql)
#else
#define BULK_N 100000

static void new_path(char *buf, size_t len)
{
    snprintf(buf, len, "%s/j%d.db", fixture_tmpdir(), ++g_seq);
}

#define journal_open state_open
#endif

static struct state *open_new(char *path, size_t len)
{
    struct state *s = NULL;
    struct dm_err e = {0};

    new_path(path, len);
    if (journal_open(&s, path, &e) != DM_OK) {
        fail_msg("state_open: %s", e.msg);
    }
    return s;
}

static void put(struct state *s, const char *kind, const char *key, const char *sdn,
                const char *tdn, const char *status, long long run)
{
    struct state_object o = {0};
    struct dm_err e = {0};

    o.kind = (char *)kind;
    o.key = (char *)key;
    o.source_dn = (char *)sdn;
    o.target_ref = (char *)tdn;
    o.status = (char *)status;
    o.last_run = run;
    snprintf(o.digest, sizeof(o.digest), "%064d", (int)run);
    assert_int_equal(state_object_put(s, &o, &e), DM_OK);
}

/* What rollback reads: a run by id and the newest run of a kind; an object's row removed. */
static void test_state__run_get_last_object_del(void **state)
{
    struct state_object o = {0};
    struct state_run r = {0};
    struct dm_err e = {0};
    char path[512];
    struct state *s;
    long long r1 = 0, r2 = 0, r3 = 0;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_run_begin(&r1, s, "run", "d", &e), DM_OK);
    assert_int_equal(state_run_set_wave(s, r1, "pilot", &e), DM_OK);
    assert_int_equal(state_batch_begin(s, &e), DM_OK);
    put(s, "user", "u1", "uid=u1,dc=s", "uid=u1,dc=t", "ok", r1);
    put(s, "user", "u2", "uid=u2,dc=s", "uid=u2,dc=t", "ok", r1);
    assert_int_equal(state_batch_commit(s, &e), DM_OK);
    assert_int_equal(state_run_end(s, r1, "done", NULL, &e), DM_OK);
    assert_int_equal(state_run_begin(&r2, s, "plan", "d", &e), DM_OK);
    assert_int_equal(state_run_end(s, r2, "done", NULL, &e), DM_OK);
    assert_int_equal(state_run_begin(&r3, s, "run", "d", &e), DM_OK);
    assert_int_equal(state_run_end(s, r3, "failed", NULL, &e), DM_OK);

    assert_int_equal(state_run_get(&r, s, r1, &e), DM_OK);
    assert_int_equal(r.id, r1);
    assert_string_equal(r.kind, "run");
    assert_string_equal(r.status, "done");
    assert_string_equal(r.wave, "pilot");
    assert_int_equal(state_run_get(&r, s, r3 + 100, &e), DM_ENOTFOUND);
    assert_int_equal(state_run_last(&r, s, "run", &e), DM_OK);
    assert_int_equal(r.id, r3);
    assert_string_equal(r.status, "failed");
    assert_int_equal(state_run_last(&r, s, "plan", &e), DM_OK);
    assert_int_equal(r.id, r2);
    assert_int_equal(state_run_last(&r, s, "rollback", &e), DM_ENOTFOUND);

    assert_int_equal(state_object_del(s, "user", "u1", &e), DM_OK);
    assert_int_equal(state_object_get(&o, s, "user", "u1", &e), DM_ENOTFOUND);
    assert_int_equal(state_object_del(s, "user", "u1", &e), DM_OK); /* absent: no-op */
    assert_int_equal(state_object_get(&o, s, "user", "u2", &e), DM_OK);
    state_object_clear(&o);
    state_close(s);
}

#ifdef STATE_TEST_PG
static int planned_none(const struct state_planned *p, void *payload)
{
    (void)p;
    (void)payload;
    return 0;
}

/* A PostgreSQL journal keeps no undo store and no saved plan work table: each use is
 * refused with DM_ECONFIG (exit 78) and a message saying why, nothing half-done. */
static void test_state__pg_refuses_undo_and_plans(void **state)
{
    struct state_planned p = {"user", "u1", "create", "uid=u1", "s", "t", 1};
    struct state_undo u = {0};
    struct dm_err e = {0};
    long long total = 0, undone = 0;
    char path[64];
    struct state *s;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_undo_supported(s), 0);
    assert_int_equal(state_plans_supported(s), 0);
    assert_null(state_undo_path(s));
    assert_int_equal(state_undo_open(s, &e), DM_ECONFIG);
    assert_non_null(strstr(e.msg, "keeps no undo store"));
    assert_non_null(strstr(e.msg, "postgresql"));
    memset(&e, 0, sizeof(e));
    assert_int_equal(state_undo_put(s, &u, &e), DM_ECONFIG);
    assert_int_equal(state_undo_count(&total, &undone, s, 1, &e), DM_ECONFIG);
    assert_int_equal(state_undo_mark(s, 1, 2, &e), DM_ECONFIG);
    memset(&e, 0, sizeof(e));
    assert_int_equal(state_plan_add(s, &p, &e), DM_ECONFIG);
    assert_non_null(strstr(e.msg, "saved plans"));
    assert_int_equal(state_plan_unused(s, planned_none, NULL, &e), DM_ECONFIG);
    state_close(s);
}
#else
/* A SQLite journal has both. */
static void test_state__sqlite_has_undo_and_plans(void **state)
{
    char path[512];
    struct state *s;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_undo_supported(s), 1);
    assert_int_equal(state_plans_supported(s), 1);
    state_close(s);
}
#endif

#ifndef STATE_TEST_PG
static void test_state__creates_journal_in_wal_mode(void **state)
{
    char path[512], wal[600];
    struct state *s;
    struct stat st;
    FILE *f;
    char hdr[20];

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    /* A WAL-mode database has file format numbers 2/2 at header offsets 18 and 19. */
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    fclose(f);
    assert_memory_equal(hdr, "SQLite format 3", 15);
    assert_int_equal(hdr[18], 2);
    assert_int_equal(hdr[19], 2);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    assert_int_equal(stat(wal, &st), 0);
    state_close(s);
    state_close(NULL);
}

static void test_state__open_bad_path_is_einval(void **state)
{
    struct state *s = NULL;
    struct dm_err e = {0};
    char path[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/no/such/dir/j.db", fixture_tmpdir());
    assert_int_equal(journal_open(&s, path, &e), DM_EINVAL);
    assert_null(s);
    assert_non_null(strstr(e.msg, path));
}

static void test_state__open_non_database_is_einval(void **state)
{
    struct state *s = NULL;
    struct dm_err e = {0};
    char path[512];
    FILE *f;

    (void)state;
    new_path(path, sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 100; i++) {
        fputs("this is not a database file at all\n", f);
    }
    fclose(f);
    assert_int_equal(journal_open(&s, path, &e), DM_EINVAL);
    assert_null(s);
    assert_non_null(strstr(e.msg, path));
}

#endif

static int collect_runs(const struct state_run *r, void *payload)
{
    struct state_run *v = payload;
    int i = 0;

    while (v[i].id != 0) {
        i++;
    }
    v[i] = *r;
    return 0;
}

static void test_state__run_begin_end(void **state)
{
    struct run_counts c = {1, 2, 3, 4, 5, 6, 7};
    struct state_run runs[8];
    struct dm_err e = {0};
    char path[512];
    struct state *s;
    long long r1 = 0, r2 = 0;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_run_begin(&r1, s, "run", "abc", &e), DM_OK);
    assert_true(r1 > 0);
    assert_int_equal(state_run_end(s, r1, "done", &c, &e), DM_OK);
    assert_int_equal(state_run_begin(&r2, s, "plan", "abc", &e), DM_OK);
    assert_true(r2 > r1);
    memset(runs, 0, sizeof(runs));
    assert_int_equal(state_runs(s, 10, collect_runs, runs, &e), DM_OK);
    /* newest first */
    assert_int_equal(runs[0].id, r2);
    assert_string_equal(runs[0].kind, "plan");
    assert_string_equal(runs[0].status, "running");
    assert_int_equal(runs[0].finished, 0);
    assert_int_equal(runs[1].id, r1);
    assert_string_equal(runs[1].status, "done");
    assert_true(runs[1].finished >= runs[1].started);
    assert_int_equal(runs[1].counts.created, 1);
    assert_int_equal(runs[1].counts.updated, 2);
    assert_int_equal(runs[1].counts.unchanged, 3);
    assert_int_equal(runs[1].counts.failed, 4);
    assert_int_equal(runs[1].counts.deleted, 5);
    assert_int_equal(runs[1].counts.skipped, 6);
    assert_int_equal(runs[1].counts.held, 7);
    assert_int_equal(runs[2].id, 0);
    memset(runs, 0, sizeof(runs));
    assert_int_equal(state_runs(s, 1, collect_runs, runs, &e), DM_OK);
    assert_int_equal(runs[0].id, r2);
    assert_int_equal(runs[1].id, 0);
    assert_int_equal(state_run_end(s, 9999, "done", &c, &e), DM_ENOTFOUND);
    state_close(s);
}

static void test_state__leftover_running_run_is_interrupted(void **state)
{
    struct state_run runs[4];
    struct dm_err e = {0};
    char path[512];
    struct state *s;
    long long r1 = 0, r2 = 0;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_run_begin(&r1, s, "run", "d", &e), DM_OK);
    state_close(s); /* "crash": never ended */
    s = NULL;
    assert_int_equal(journal_open(&s, path, &e), DM_OK);
    assert_int_equal(state_run_begin(&r2, s, "run", "d", &e), DM_OK);
    memset(runs, 0, sizeof(runs));
    assert_int_equal(state_runs(s, 10, collect_runs, runs, &e), DM_OK);
    assert_int_equal(runs[0].id, r2);
    assert_string_equal(runs[0].status, "running");
    assert_int_equal(runs[1].id, r1);
    assert_string_equal(runs[1].status, "interrupted");
    assert_true(runs[1].finished > 0);
    state_close(s);
}

static void test_state__object_put_get(void **state)
{
    struct state_object o = {0};
    struct dm_err e = {0};
    char path[512];
    struct state *s;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_batch_begin(s, &e), DM_OK);
    put(s, "user", "k1", "uid=a,dc=src", "uid=a,dc=dst", "ok", 1);
    put(s, "group", "k1", "cn=g,dc=src", "cn=g,dc=dst", "failed", 1);
    assert_int_equal(state_batch_commit(s, &e), DM_OK);

    assert_int_equal(state_object_get(&o, s, "user", "k1", &e), DM_OK);
    assert_string_equal(o.kind, "user");
    assert_string_equal(o.key, "k1");
    assert_string_equal(o.source_dn, "uid=a,dc=src");
    assert_string_equal(o.target_ref, "uid=a,dc=dst");
    assert_string_equal(o.status, "ok");
    assert_int_equal(strlen(o.digest), 64);
    assert_int_equal(o.last_run, 1);
    state_object_clear(&o);
    assert_null(o.kind);

    /* replace */
    put(s, "user", "k1", "uid=a,dc=src", "uid=a2,dc=dst", "ok", 2);
    assert_int_equal(state_object_get(&o, s, "user", "k1", &e), DM_OK);
    assert_string_equal(o.target_ref, "uid=a2,dc=dst");
    assert_int_equal(o.last_run, 2);
    state_object_clear(&o);

    assert_int_equal(state_object_get(&o, s, "user", "nope", &e), DM_ENOTFOUND);
    assert_int_equal(state_object_get(&o, s, "group", "k1", &e), DM_OK);
    assert_string_equal(o.status, "failed");
    state_object_clear(&o);
    state_close(s);
}

static void test_state__object_by_source_dn(void **state)
{
    struct state_object o = {0};
    struct dm_err e = {0};
    char path[512];
    struct state *s;

    (void)state;
    s = open_new(path, sizeof(path));
    put(s, "user", "k1", "uid=a,dc=src", "uid=a,dc=dst", "ok", 1);
    put(s, "group", "k2", "cn=g,dc=src", "cn=g,dc=dst", "ok", 1);
    assert_int_equal(state_object_by_source_dn(&o, s, "cn=g,dc=src", &e), DM_OK);
    assert_string_equal(o.kind, "group");
    assert_string_equal(o.key, "k2");
    state_object_clear(&o);
    assert_int_equal(state_object_by_source_dn(&o, s, "cn=x,dc=src", &e), DM_ENOTFOUND);
    state_close(s);
}

static int collect_keys(const char *key, const char *dn, void *payload)
{
    char *out = payload;
    size_t n = strlen(out);

    snprintf(out + n, 256 - n, "%s@%s;", key, dn != NULL ? dn : "-");
    return strcmp(key, "stop") == 0 ? 42 : 0;
}

/* Every object of one kind, whatever its status, in key order; the callback may stop the
 * listing and may write to the journal while it runs (agent/delta.c does both). */
static void test_state__objects_each(void **state)
{
    struct dm_err e = {0};
    char path[512], got[256] = "";
    struct state *s;

    (void)state;
    s = open_new(path, sizeof(path));
    put(s, "user", "k2", "uid=b,dc=src", "uid=b,dc=dst", "ok", 1);
    put(s, "user", "k1", "uid=a,dc=src", "uid=a,dc=dst", "failed", 1);
    put(s, "group", "k3", "cn=g,dc=src", "cn=g,dc=dst", "ok", 1);
    put(s, "user", "k4", NULL, NULL, "pending", 1);
    assert_int_equal(state_objects_each(s, "user", collect_keys, got, &e), DM_OK);
    assert_string_equal(got, "k1@uid=a,dc=src;k2@uid=b,dc=src;k4@-;");
    got[0] = '\0';
    assert_int_equal(state_objects_each(s, "group", collect_keys, got, &e), DM_OK);
    assert_string_equal(got, "k3@cn=g,dc=src;");
    got[0] = '\0';
    assert_int_equal(state_objects_each(s, "container", collect_keys, got, &e), DM_OK);
    assert_string_equal(got, "");
    put(s, "user", "stop", "uid=s,dc=src", "uid=s,dc=dst", "ok", 1);
    put(s, "user", "zz", "uid=z,dc=src", "uid=z,dc=dst", "ok", 1);
    assert_int_equal(state_objects_each(s, "user", collect_keys, got, &e), 42);
    assert_string_equal(got, "k1@uid=a,dc=src;k2@uid=b,dc=src;k4@-;stop@uid=s,dc=src;");
    /* the statement is reset: the next listing starts over */
    got[0] = '\0';
    assert_int_equal(state_objects_each(s, "group", collect_keys, got, &e), DM_OK);
    assert_string_equal(got, "k3@cn=g,dc=src;");
    state_close(s);
}

static int collect_counts(const char *category, long long count, void *payload)
{
    char *out = payload;
    size_t n = strlen(out);

    snprintf(out + n, 256 - n, "%s=%lld;", category, count);
    return 0;
}

static void test_state__errors_and_totals(void **state)
{
    struct state_totals t;
    struct dm_err e = {0};
    char path[512], counts[256] = "";
    struct state *s;
    long long r = 0, r2 = 0;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_run_begin(&r, s, "run", "d", &e), DM_OK);
    assert_int_equal(state_batch_begin(s, &e), DM_OK);
    put(s, "user", "u1", "uid=1", "uid=1", "ok", r);
    put(s, "user", "u2", "uid=2", "uid=2", "ok", r);
    put(s, "user", "u3", "uid=3", "", "failed", r); /* a create that failed: not there */
    put(s, "group", "g1", "cn=1", "cn=1", "ok", r);
    put(s, "group", "g2", "cn=2", "", "failed", r);
    put(s, "group", "g3", "cn=3", "", "failed", r);
    assert_int_equal(state_error_add(s, r, "u3", "uid=3", "schema", "objectClass violation", &e),
                     DM_OK);
    assert_int_equal(state_error_add(s, r, "g2", "cn=2", "schema", "x", &e), DM_OK);
    assert_int_equal(state_error_add(s, r, NULL, NULL, "unavailable", "server down", &e), DM_OK);
    assert_int_equal(state_batch_commit(s, &e), DM_OK);
    assert_int_equal(state_run_begin(&r2, s, "run", "d", &e), DM_OK);
    assert_int_equal(state_error_add(s, r2, "u9", NULL, "auth", "no", &e), DM_OK);

    assert_int_equal(state_totals(&t, s, &e), DM_OK);
    assert_int_equal(t.users_ok, 2);
    assert_int_equal(t.users_failed, 1);
    assert_int_equal(t.groups_ok, 1);
    assert_int_equal(t.groups_failed, 2);
    assert_int_equal(state_run_error_counts(s, r, collect_counts, counts, &e), DM_OK);
    assert_string_equal(counts, "schema=2;unavailable=1;");
    counts[0] = '\0';
    assert_int_equal(state_run_error_counts(s, r2, collect_counts, counts, &e), DM_OK);
    assert_string_equal(counts, "auth=1;");
    state_close(s);
}

/* put() with the disabled time and origin of the row */
static void put_full(struct state *s, const char *key, const char *tdn, const char *status,
                     long long run, long long disabled_at, int linked)
{
    struct state_object o = {0};
    struct dm_err e = {0};

    o.kind = (char *)"user";
    o.key = (char *)key;
    o.source_dn = (char *)key;
    o.target_ref = (char *)tdn;
    o.status = (char *)status;
    o.last_run = run;
    o.disabled_at = disabled_at;
    o.linked = linked;
    assert_int_equal(state_object_put(s, &o, &e), DM_OK);
}

/* What status counts: the objects at the target by state, deleted, failing, unconfirmed,
 * and the users at the target by the sign-in path of their newest creation. */
static void test_state__totals_count_the_target(void **state)
{
    struct state_totals t;
    struct state_password_counts pc;
    struct dm_err e = {0};
    char path[512];
    struct state *s;
    long long r = 0;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_run_begin(&r, s, "run", "d", &e), DM_OK);
    assert_int_equal(state_batch_begin(s, &e), DM_OK);
    put_full(s, "a", "00u1", "ok", r, 0, 0);         /* active */
    put_full(s, "b", "00u2", "ok", r, 1000, 0);      /* disabled in the source */
    put_full(s, "c", "00u3", "left", r, 1000, 0);    /* a leaver, disabled */
    put_full(s, "d", "00u4", "failed", r, 0, 0);     /* a later update failed: still there */
    put_full(s, "e", "", "failed", r, 0, 0);         /* its create failed: not there */
    put_full(s, "f", "f@x", "pending", r, 0, 0);     /* sent, answer lost */
    put_full(s, "g", "00u7", "deleted", r, 1000, 0); /* a leaver, deleted */
    put_full(s, "h", "00u8", "ok", r, 0, 1);         /* linked: was there before */
    /* sign-in paths: the newest creation of each key counts, deleted users do not */
    assert_int_equal(state_user_created(s, r, "a", STATE_SIGNIN_HOOK, &e), DM_OK);
    assert_int_equal(state_user_created(s, r, "a", STATE_SIGNIN_IMPORT, &e), DM_OK);
    assert_int_equal(state_user_created(s, r, "b", STATE_SIGNIN_HOOK, &e), DM_OK);
    assert_int_equal(state_user_created(s, r, "c", STATE_SIGNIN_NONE, &e), DM_OK);
    assert_int_equal(state_user_created(s, r, "g", STATE_SIGNIN_HOOK, &e), DM_OK);
    assert_int_equal(state_user_created(s, r, "h", STATE_SIGNIN_HOOK, &e), DM_OK);
    assert_int_equal(state_batch_commit(s, &e), DM_OK);

    assert_int_equal(state_totals(&t, s, &e), DM_OK);
    assert_int_equal(t.users.at_target, 5); /* a b c d h */
    assert_int_equal(t.users.disabled, 2);  /* b c */
    assert_int_equal(t.users.linked, 1);
    assert_int_equal(t.users.deleted, 1);
    assert_int_equal(t.users.failed, 2);
    assert_int_equal(t.users.unconfirmed, 1);
    assert_int_equal(t.users_ok, 5);
    assert_int_equal(t.groups.at_target, 0);
    assert_int_equal(state_password_counts(&pc, s, &e), DM_OK);
    assert_int_equal(pc.imported, 1);     /* a */
    assert_int_equal(pc.hook_created, 1); /* b */
    assert_int_equal(pc.no_password, 1);  /* c */
    assert_int_equal(pc.unknown, 1);      /* d: no creation recorded */
    state_close(s);
}

static void test_state__close_rolls_back_open_batch(void **state)
{
    struct state_object o = {0};
    struct dm_err e = {0};
    char path[512];
    struct state *s;

    (void)state;
    s = open_new(path, sizeof(path));
    put(s, "user", "committed", "uid=c", "uid=c", "ok", 1);
    assert_int_equal(state_batch_begin(s, &e), DM_OK);
    assert_int_equal(state_batch_begin(s, &e), DM_EINTERNAL);
    put(s, "user", "lost", "uid=l", "uid=l", "ok", 1);
    state_close(s);
    s = NULL;
    assert_int_equal(journal_open(&s, path, &e), DM_OK);
    assert_int_equal(state_object_get(&o, s, "user", "committed", &e), DM_OK);
    state_object_clear(&o);
    assert_int_equal(state_object_get(&o, s, "user", "lost", &e), DM_ENOTFOUND);
    state_close(s);
}

static void test_state__reopen_persists(void **state)
{
    struct state_object o = {0};
    struct state_run runs[4];
    struct dm_err e = {0};
    char path[512];
    struct state *s;
    long long r = 0;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_run_begin(&r, s, "run", "dig", &e), DM_OK);
    assert_int_equal(state_batch_begin(s, &e), DM_OK);
    put(s, "user", "k", "uid=k", "uid=k", "ok", r);
    assert_int_equal(state_batch_commit(s, &e), DM_OK);
    assert_int_equal(state_run_end(s, r, "done", NULL, &e), DM_OK);
    state_close(s);
    s = NULL;
    assert_int_equal(journal_open(&s, path, &e), DM_OK);
    assert_int_equal(state_object_get(&o, s, "user", "k", &e), DM_OK);
    assert_int_equal(o.last_run, r);
    state_object_clear(&o);
    memset(runs, 0, sizeof(runs));
    assert_int_equal(state_runs(s, 5, collect_runs, runs, &e), DM_OK);
    assert_int_equal(runs[0].id, r);
    assert_string_equal(runs[0].status, "done");
    state_close(s);
}

static void test_state__meta_set_get(void **state)
{
    struct dm_err e = {0};
    char path[512], *v = NULL;
    struct state *s;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_meta_get(&v, s, STATE_META_AGENT, &e), DM_ENOTFOUND);
    assert_null(v);
    assert_int_equal(state_meta_set(s, STATE_META_AGENT, "{\"state\":\"running\"}", &e), DM_OK);
    assert_int_equal(state_meta_set(s, STATE_META_AGENT, "{\"state\":\"stopped\"}", &e), DM_OK);
    state_close(s);
    s = NULL;
    assert_int_equal(journal_open(&s, path, &e), DM_OK);
    assert_int_equal(state_meta_get(&v, s, STATE_META_AGENT, &e), DM_OK);
    assert_string_equal(v, "{\"state\":\"stopped\"}");
    free(v);
    state_close(s);
}

/* A journal as dirmig 0.1 (schema version 1) wrote it: the same tables, no migration. */
#ifdef STATE_TEST_PG
static const char v1_schema[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE runs (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL,"
    "  config_digest TEXT, started BIGINT NOT NULL, finished BIGINT NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL, created BIGINT NOT NULL DEFAULT 0,"
    "  updated BIGINT NOT NULL DEFAULT 0, unchanged BIGINT NOT NULL DEFAULT 0,"
    "  failed BIGINT NOT NULL DEFAULT 0, deleted BIGINT NOT NULL DEFAULT 0,"
    "  skipped BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE objects (kind TEXT NOT NULL, key TEXT NOT NULL, source_dn TEXT,"
    "  target_dn TEXT, digest TEXT, status TEXT NOT NULL, last_run BIGINT NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (kind, key));"
    "CREATE TABLE errors (id BIGSERIAL PRIMARY KEY, run BIGINT NOT NULL, key TEXT,"
    "  dn TEXT, category TEXT NOT NULL, message TEXT, at BIGINT NOT NULL);"
    "CREATE TABLE password_migrations (id BIGSERIAL PRIMARY KEY,"
    "  login TEXT NOT NULL, dn TEXT, outcome TEXT NOT NULL, reason TEXT, at BIGINT NOT NULL);"
    "INSERT INTO meta VALUES ('schema_version', '1');"
    "INSERT INTO objects VALUES ('user', 'k1', 'uid=a,dc=s', 'uid=a,dc=t', 'd', 'ok', 3);"
    "INSERT INTO runs (kind, started, finished, status, created) VALUES ('run', 1, 2, 'done', 7);"
    "INSERT INTO password_migrations (login, dn, outcome, at) "
    "  VALUES ('ann', 'uid=ann,dc=x', 'verified', 86400);";
#else
static const char v1_schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
    "  config_digest TEXT, started INTEGER NOT NULL, finished INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL, created INTEGER NOT NULL DEFAULT 0,"
    "  updated INTEGER NOT NULL DEFAULT 0, unchanged INTEGER NOT NULL DEFAULT 0,"
    "  failed INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0,"
    "  skipped INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE objects (kind TEXT NOT NULL, key TEXT NOT NULL, source_dn TEXT,"
    "  target_dn TEXT, digest TEXT, status TEXT NOT NULL, last_run INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (kind, key));"
    "CREATE TABLE errors (id INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER NOT NULL, key TEXT,"
    "  dn TEXT, category TEXT NOT NULL, message TEXT, at INTEGER NOT NULL);"
    "CREATE TABLE password_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  login TEXT NOT NULL, dn TEXT, outcome TEXT NOT NULL, reason TEXT, at INTEGER NOT NULL);"
    "INSERT INTO meta VALUES ('schema_version', '1');"
    "INSERT INTO objects VALUES ('user', 'k1', 'uid=a,dc=s', 'uid=a,dc=t', 'd', 'ok', 3);"
    "INSERT INTO runs (kind, started, finished, status, created) VALUES ('run', 1, 2, 'done', 7);"
    "INSERT INTO password_migrations (login, dn, outcome, at) "
    "  VALUES ('ann', 'uid=ann,dc=x', 'verified', 86400);";

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail_msg("%s: %s", sql, msg);
    }
    sqlite3_close(db);
}
#endif

static int collect_days(const struct state_signin_day *d, void *payload)
{
    char *out = payload;

    snprintf(out + strlen(out), 512 - strlen(out), "%s:%lld/%lld/%lld;", d->day, d->imported,
             d->hook_created, d->verified);
    return 0;
}

/* A version-1 journal is migrated in place on open, its data kept; a journal from a newer
 * dirmig is refused, not touched. */
static void test_state__migrates_v1_and_refuses_newer(void **state)
{
    struct state_run runs[4];
    struct dm_err e = {0};
    char path[512], *v = NULL, days[512] = "";
    struct state *s = NULL;

    (void)state;
    new_path(path, sizeof(path));
    sql_exec(path, v1_schema);
    assert_int_equal(journal_open(&s, path, &e), DM_OK);
    assert_int_equal(state_meta_get(&v, s, "schema_version", &e), DM_OK);
    assert_string_equal(v, "3");
    free(v);
    memset(runs, 0, sizeof(runs));
    assert_int_equal(state_runs(s, 5, collect_runs, runs, &e), DM_OK);
    assert_int_equal(runs[0].counts.created, 7);
    assert_string_equal(runs[0].wave, "");
    assert_string_equal(runs[0].reason, "");
    assert_int_equal(state_run_set_wave(s, runs[0].id, "pilot", &e), DM_OK);
    {
        /* objects keep their target reference and gain what the planner records */
        struct state_object o = {0};
        assert_int_equal(state_object_by_target(&o, s, "user", "UID=A,DC=T", &e), DM_OK);
        assert_string_equal(o.key, "k1");
        assert_null(o.attrs);
        assert_int_equal(o.linked, 0);
        state_object_clear(&o);
    }
    assert_int_equal(state_signin_daily(s, collect_days, days, &e), DM_OK);
    assert_string_equal(days, "1970-01-02:0/0/1;");
    state_close(s);
    s = NULL;
    /* Opening again changes nothing. */
    assert_int_equal(journal_open(&s, path, &e), DM_OK);
    memset(runs, 0, sizeof(runs));
    assert_int_equal(state_runs(s, 5, collect_runs, runs, &e), DM_OK);
    assert_string_equal(runs[0].wave, "pilot");
    state_close(s);
    s = NULL;
    sql_exec(path, "UPDATE meta SET value = '4' WHERE key = 'schema_version'");
    assert_int_equal(journal_open(&s, path, &e), DM_EINVAL);
    assert_null(s);
    assert_non_null(strstr(e.msg, "newer"));
    sql_exec(path, "UPDATE meta SET value = 'x' WHERE key = 'schema_version'");
    assert_int_equal(journal_open(&s, path, &e), DM_EINVAL);
    assert_null(s);
}

struct wave_seen {
    char text[512];
};

static int collect_waves(const struct state_wave *w, void *payload)
{
    struct wave_seen *ws = payload;

    snprintf(ws->text + strlen(ws->text), sizeof(ws->text) - strlen(ws->text),
             "%s:%lld/%lld/%lld/%lld/%s;", w->name, w->runs, w->plans, w->sum.created, w->last_run,
             w->last_status);
    return 0;
}

static int collect_cats(const struct state_error_category *c, void *payload)
{
    char *out = payload;

    snprintf(out + strlen(out), 512 - strlen(out), "%s:%lld/%lld/%lld;", c->category, c->total,
             c->open, c->last_run);
    return 0;
}

static int collect_examples(const struct state_error_row *r, void *payload)
{
    char *out = payload;

    snprintf(out + strlen(out), 512 - strlen(out), "%s:%lld:%s;", r->category, r->run,
             r->key ? r->key : "-");
    return 0;
}

/* What the HTML report reads: waves, unfinished runs with their reason, sums without
 * plans, error categories with open counts, examples per category, the sign-in curve. */
static void test_state__report_queries(void **state)
{
    struct run_counts c1 = {5, 0, 0, 2, 0, 0, 0}, c2 = {1, 1, 4, 1, 0, 0, 0},
                      cp = {100, 0, 0, 0, 0, 0, 0};
    struct state_run_summary sum;
    struct state_run runs[8];
    struct wave_seen ws = {{0}};
    struct dm_err e = {0};
    char path[512], days[512] = "", cats[512] = "", ex[512] = "";
    struct state *s;
    long long r1 = 0, r2 = 0, r3 = 0, r4 = 0, p1 = 0;

    (void)state;
    s = open_new(path, sizeof(path));
    assert_int_equal(state_run_begin(&p1, s, "plan", "d", &e), DM_OK);
    assert_int_equal(state_run_set_wave(s, p1, "pilot", &e), DM_OK);
    assert_int_equal(state_run_end(s, p1, "done", &cp, &e), DM_OK);
    assert_int_equal(state_run_begin(&r1, s, "run", "d", &e), DM_OK);
    assert_int_equal(state_run_set_wave(s, r1, "pilot", &e), DM_OK);
    assert_int_equal(state_batch_begin(s, &e), DM_OK);
    put(s, "user", "u1", "uid=1", "uid=1", "ok", r1);
    put(s, "user", "u2", "uid=2", "uid=2", "failed", r1);
    put(s, "user", "u3", "uid=3", "uid=3", "failed", r1);
    assert_int_equal(state_user_created(s, r1, "u1", STATE_SIGNIN_IMPORT, &e), DM_OK);
    assert_int_equal(state_user_created(s, r1, "u4", STATE_SIGNIN_HOOK, &e), DM_OK);
    assert_int_equal(state_user_created(s, r1, "u5", STATE_SIGNIN_HOOK, &e), DM_OK);
    assert_int_equal(state_user_created(s, r1, "u6", STATE_SIGNIN_NONE, &e), DM_OK);
    /* A user created again (deleted at the target meanwhile) counts once. */
    assert_int_equal(state_user_created(s, r1, "u4", STATE_SIGNIN_HOOK, &e), DM_OK);
    assert_int_equal(state_error_add(s, r1, "u2", "uid=2", "schema", "m1", &e), DM_OK);
    assert_int_equal(state_error_add(s, r1, "u3", "uid=3", "constraint", "m2", &e), DM_OK);
    assert_int_equal(state_batch_commit(s, &e), DM_OK);
    assert_int_equal(state_run_end(s, r1, "done", &c1, &e), DM_OK);
    /* u2 is fixed by the next run: its schema error is no longer open. */
    assert_int_equal(state_run_begin(&r2, s, "run", "d", &e), DM_OK);
    assert_int_equal(state_run_set_wave(s, r2, "wave2", &e), DM_OK);
    assert_int_equal(state_batch_begin(s, &e), DM_OK);
    put(s, "user", "u2", "uid=2", "uid=2", "ok", r2);
    assert_int_equal(state_error_add(s, r2, "u7", "uid=7", "schema", "m3", &e), DM_OK);
    put(s, "user", "u7", "uid=7", "uid=7", "failed", r2);
    assert_int_equal(state_error_add(s, r2, NULL, NULL, "unavailable", "m4", &e), DM_OK);
    assert_int_equal(state_batch_commit(s, &e), DM_OK);
    assert_int_equal(state_run_end(s, r2, "failed", &c2, &e), DM_OK);
    assert_int_equal(state_run_set_reason(s, r2, "target connection lost", &e), DM_OK);
    assert_int_equal(state_run_begin(&r3, s, "reconcile", "d", &e), DM_OK);
    assert_int_equal(state_run_end(s, r3, "blocked", NULL, &e), DM_OK);
    assert_int_equal(state_run_set_reason(s, r3, "the source shrank by 40%", &e), DM_OK);
    assert_int_equal(state_run_begin(&r4, s, "run", "d", &e), DM_OK);
    assert_int_equal(state_run_end(s, r4, "done", NULL, &e), DM_OK);
    assert_int_equal(state_run_set_reason(s, 9999, "x", &e), DM_ENOTFOUND);
    assert_int_equal(state_password_record(s, "u4", "uid=4", "verified", NULL, &e), DM_OK);
    assert_int_equal(state_password_record(s, "U4", "UID=4", "verified", NULL, &e), DM_OK);
    assert_int_equal(state_password_record(s, "u5", "uid=5", "wrong_password", NULL, &e), DM_OK);

    assert_int_equal(state_run_summary(&sum, s, &e), DM_OK);
    assert_int_equal(sum.runs, 4);
    assert_int_equal(sum.plans, 1);
    assert_int_equal(sum.blocked, 1);
    assert_int_equal(sum.failed, 1);
    assert_int_equal(sum.sum.created, 6); /* the plan's 100 are not counted */
    assert_int_equal(sum.sum.failed, 3);
    assert_int_equal(sum.sum.unchanged, 4);

    memset(runs, 0, sizeof(runs));
    assert_int_equal(state_runs_unfinished(s, 10, collect_runs, runs, &e), DM_OK);
    assert_int_equal(runs[0].id, r3);
    assert_string_equal(runs[0].status, "blocked");
    assert_string_equal(runs[0].reason, "the source shrank by 40%");
    assert_int_equal(runs[1].id, r2);
    assert_string_equal(runs[1].wave, "wave2");
    assert_string_equal(runs[1].reason, "target connection lost");
    assert_int_equal(runs[2].id, 0);

    assert_int_equal(state_waves(s, collect_waves, &ws, &e), DM_OK);
    snprintf(path, sizeof(path), "pilot:1/1/5/%lld/done;wave2:1/0/1/%lld/failed;", r1, r2);
    assert_string_equal(ws.text, path);

    assert_int_equal(state_error_categories(s, collect_cats, cats, &e), DM_OK);
    snprintf(path, sizeof(path), "schema:2/1/%lld;constraint:1/1/%lld;unavailable:1/0/%lld;", r2,
             r1, r2);
    assert_string_equal(cats, path);
    assert_int_equal(state_error_examples(s, 1, collect_examples, ex, &e), DM_OK);
    snprintf(path, sizeof(path), "constraint:%lld:u3;schema:%lld:u7;unavailable:%lld:-;", r1, r2,
             r2);
    assert_string_equal(ex, path);

    assert_int_equal(state_signin_daily(s, collect_days, days, &e), DM_OK);
    {
        char today[16], want[64];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(today, sizeof(today), "%Y-%m-%d", &tm);
        /* Made just before midnight UTC the rows may straddle two days. */
        snprintf(want, sizeof(want), "%s:1/2/1;", today);
        if (strcmp(days, want) != 0 && strchr(days, ';') == strrchr(days, ';')) {
            fail_msg("sign-in days: %s, want %s", days, want);
        }
    }
    state_close(s);
}

/* 100k puts and gets must be cheap with prepared statements and batching. */
/* A journal of schema version 1 (as dirmig wrote it before target references, attribute
 * ownership and intents) is migrated in place on open; its rows stay readable. */
/* What dirmig wrote (attribute names), whether it linked the object, and lookups by the
 * target reference survive a round trip. */
static void test_state__object_attrs_linked_by_target(void **state)
{
    struct state_object o = {0}, g = {0};
    struct dm_err e = {0};
    char path[512];
    struct state *s = open_new(path, sizeof(path));

    (void)state;
    o.kind = (char *)"user";
    o.key = (char *)"k2";
    o.source_dn = (char *)"uid=b,dc=s";
    o.target_ref = (char *)"00u42";
    o.status = (char *)"pending";
    o.attrs = (char *)"login,email";
    o.linked = 1;
    assert_int_equal(state_object_put(s, &o, &e), DM_OK);
    assert_int_equal(state_object_get(&g, s, "user", "k2", &e), DM_OK);
    assert_string_equal(g.status, "pending");
    assert_string_equal(g.attrs, "login,email");
    assert_int_equal(g.linked, 1);
    state_object_clear(&g);
    assert_int_equal(state_object_by_target(&g, s, "user", "00u42", &e), DM_OK);
    assert_string_equal(g.key, "k2");
    state_object_clear(&g);
    assert_int_equal(state_object_by_target(&g, s, "group", "00u42", &e), DM_ENOTFOUND);
    state_close(s);
}

static void test_state__bulk_is_fast(void **state)
{
    struct state_object o = {0};
    struct dm_err e = {0};
    char path[512], key[32], dn[64];
    struct state *s;
    struct timespec t0, t1;
    double secs;

    (void)state;
    s = open_new(path, sizeof(path));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < BULK_N; i++) {
        if (i % 500 == 0) {
            assert_int_equal(state_batch_begin(s, &e), DM_OK);
        }
        snprintf(key, sizeof(key), "key%d", i);
        snprintf(dn, sizeof(dn), "uid=u%d,dc=src", i);
        put(s, "user", key, dn, dn, "ok", 1);
        if (i % 500 == 499) {
            assert_int_equal(state_batch_commit(s, &e), DM_OK);
        }
    }
    for (int i = 0; i < BULK_N; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        assert_int_equal(state_object_get(&o, s, "user", key, &e), DM_OK);
        state_object_clear(&o);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* Generous bound (sanitizers, valgrind); a normal build takes well under a second. */
    if (getenv("VALGRIND") == NULL && secs > 30.0) {
        fail_msg("%d put+get took %.1f s", BULK_N, secs);
    }
    state_close(s);
}

#ifdef STATE_TEST_PG
static struct state *pg_open_with(const char *conninfo, int *rc, struct dm_err *e)
{
    struct state_where w = {0};
    struct secret *sec = NULL;
    struct state *s = NULL;

    assert_int_equal(secret_from_mem(&sec, conninfo, strlen(conninfo), e), DM_OK);
    w.type = "postgresql";
    w.conninfo = sec;
    w.connect_timeout_s = 2;
    *rc = state_open_cfg(&s, &w, e);
    secret_free(sec);
    return s;
}

/* A bad string, a server not listening and a remote server without verified TLS fail
 * with their own codes, and no message carries the password. */
static void test_state__pg_open_failures(void **state)
{
    struct dm_err e = {0};
    struct state *s;
    int rc;

    (void)state;
    s = pg_open_with("no equals sign here", &rc, &e);
    assert_null(s);
    assert_int_equal(rc, DM_ECONFIG);
    memset(&e, 0, sizeof(e));
    s = pg_open_with("host=127.0.0.1 port=1 dbname=x user=u password=Canary-Pw-7", &rc, &e);
    assert_null(s);
    assert_int_equal(rc, DM_EUNAVAIL);
    assert_null(strstr(e.msg, "Canary-Pw-7"));
    assert_non_null(strstr(e.msg, "postgresql://127.0.0.1:1/x"));
    memset(&e, 0, sizeof(e));
    s = pg_open_with("host=db.example.org dbname=x sslmode=require password=Canary-Pw-7", &rc, &e);
    assert_null(s);
    assert_int_equal(rc, DM_ECONFIG);
    assert_non_null(strstr(e.msg, "verify-full"));
    assert_null(strstr(e.msg, "Canary-Pw-7"));
}

/* One runner per target: a second session gets DM_EBUSY naming the holder's host and pid,
 * another target is free, and the lock goes with the holder's session. */
static void test_state__pg_runner_lock(void **state)
{
    struct state_runner h = {{0}, 0, 0};
    struct dm_err e = {0};
    char path[64], want[300], host[256] = "";
    struct state *a, *b;

    (void)state;
    a = open_new(path, sizeof(path));
    assert_int_equal(journal_open(&b, path, &e), DM_OK);
    assert_int_equal(state_runner_lock(a, "ldap ldap://t dc=t", 0, NULL, &e), DM_OK);
    assert_int_equal(state_runner_lock(a, "ldap ldap://t dc=t", 0, NULL, &e), DM_OK);
    assert_int_equal(state_runner_lock(b, "ldap ldap://t dc=t", 0, &h, &e), DM_EBUSY);
    gethostname(host, sizeof(host) - 1);
    assert_string_equal(h.host, host);
    assert_int_equal(h.pid, (long long)getpid());
    snprintf(want, sizeof(want), "another run in progress on %s (pid %lld)", host,
             (long long)getpid());
    assert_string_equal(e.msg, want);
    /* waiting: still held after 1 s */
    assert_int_equal(state_runner_lock(b, "ldap ldap://t dc=t", 1, &h, &e), DM_EBUSY);
    state_close(a); /* the session ends: the server releases its lock */
    assert_int_equal(state_runner_lock(b, "ldap ldap://t dc=t", 5, &h, &e), DM_OK);
    state_runner_unlock(b);
    assert_int_equal(journal_open(&a, path, &e), DM_OK);
    assert_int_equal(state_runner_lock(a, "ldap ldap://t dc=t", 0, &h, &e), DM_OK);
    state_close(a);
    state_close(b);
}

/* state_copy: a SQLite journal into an empty PostgreSQL one, ids kept and continued; a
 * journal that holds runs is not overwritten. */
static void test_state__pg_copy_from_sqlite(void **state)
{
    struct state_totals t = {0}, ts = {0};
    struct state_password_counts pa = {0}, pb = {0};
    struct state_run runs[4];
    struct dm_err e = {0};
    char path[64], sq_path[512], *v = NULL;
    struct state *sq = NULL, *pg;
    long long r1 = 0, r2 = 0, rows = 0;

    (void)state;
    snprintf(sq_path, sizeof(sq_path), "%s/copy.db", fixture_tmpdir());
    assert_int_equal(state_open(&sq, sq_path, &e), DM_OK);
    assert_int_equal(state_run_begin(&r1, sq, "run", "dig", &e), DM_OK);
    assert_int_equal(state_batch_begin(sq, &e), DM_OK);
    put(sq, "user", "u1", "uid=u1,dc=s", "uid=u1,dc=t", "ok", r1);
    put(sq, "user", "u2", "uid=u2,dc=s", "uid=u2,dc=t", "failed", r1);
    put(sq, "group", "g1", "cn=g1,dc=s", "cn=g1,dc=t", "ok", r1);
    assert_int_equal(state_error_add(sq, r1, "u2", "uid=u2,dc=s", "schema", "no", &e), DM_OK);
    assert_int_equal(state_user_created(sq, r1, "u1", STATE_SIGNIN_HOOK, &e), DM_OK);
    assert_int_equal(state_meta_add(sq, "test_counter", 1, &e), DM_OK);
    assert_int_equal(state_batch_commit(sq, &e), DM_OK);
    assert_int_equal(state_password_record(sq, "u1", "uid=u1,dc=s", "verified", "", &e), DM_OK);
    assert_int_equal(state_run_end(sq, r1, "done", NULL, &e), DM_OK);
    pg = open_new(path, sizeof(path));
    assert_int_equal(state_copy(&rows, pg, sq, &e), DM_OK);
    assert_int_equal(rows, 1 + 3 + 1 + 1 + 1 + 1); /* run, objects, error, pw, creation, meta */
    assert_int_equal(state_totals(&t, pg, &e), DM_OK);
    assert_int_equal(t.users_ok, 2); /* at the target: u2's later write failed, it is there */
    assert_int_equal(t.users_failed, 1);
    assert_int_equal(t.groups_ok, 1);
    assert_int_equal(state_meta_get(&v, pg, "test_counter", &e), DM_OK);
    assert_string_equal(v, "1");
    free(v);
    /* the status counts read the same from both */
    assert_int_equal(state_totals(&ts, sq, &e), DM_OK);
    assert_memory_equal(&t, &ts, sizeof(t));
    assert_int_equal(state_password_counts(&pa, sq, &e), DM_OK);
    assert_int_equal(state_password_counts(&pb, pg, &e), DM_OK);
    assert_memory_equal(&pa, &pb, sizeof(pa));
    assert_int_equal(pb.hook_created, 1);
    assert_int_equal(pb.verified_users, 1);
    assert_int_equal(state_meta_get(&v, pg, "schema_version", &e), DM_OK);
    assert_string_equal(v, "3");
    free(v);
    /* new ids continue after the copied ones */
    assert_int_equal(state_run_begin(&r2, pg, "run", "dig", &e), DM_OK);
    assert_true(r2 > r1);
    memset(runs, 0, sizeof(runs));
    assert_int_equal(state_runs(pg, 5, collect_runs, runs, &e), DM_OK);
    assert_int_equal(runs[1].id, r1);
    assert_string_equal(runs[1].status, "done");
    /* not into a journal that holds something */
    assert_int_equal(state_copy(&rows, pg, sq, &e), DM_EEXISTS);
    state_close(pg);
    state_close(sq);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
#ifndef STATE_TEST_PG
        cmocka_unit_test(test_state__creates_journal_in_wal_mode),
        cmocka_unit_test(test_state__open_bad_path_is_einval),
        cmocka_unit_test(test_state__open_non_database_is_einval),
#endif
        cmocka_unit_test(test_state__run_begin_end),
        cmocka_unit_test(test_state__leftover_running_run_is_interrupted),
        cmocka_unit_test(test_state__object_put_get),
        cmocka_unit_test(test_state__object_by_source_dn),
        cmocka_unit_test(test_state__errors_and_totals),
        cmocka_unit_test(test_state__totals_count_the_target),
        cmocka_unit_test(test_state__close_rolls_back_open_batch),
        cmocka_unit_test(test_state__reopen_persists),
        cmocka_unit_test(test_state__meta_set_get),
        cmocka_unit_test(test_state__migrates_v1_and_refuses_newer),
        cmocka_unit_test(test_state__object_attrs_linked_by_target),
        cmocka_unit_test(test_state__report_queries),
        cmocka_unit_test(test_state__objects_each),
        cmocka_unit_test(test_state__bulk_is_fast),
        cmocka_unit_test(test_state__run_get_last_object_del),
#ifdef STATE_TEST_PG
        cmocka_unit_test(test_state__pg_refuses_undo_and_plans),
        cmocka_unit_test(test_state__pg_open_failures),
        cmocka_unit_test(test_state__pg_runner_lock),
        cmocka_unit_test(test_state__pg_copy_from_sqlite),
#else
        cmocka_unit_test(test_state__sqlite_has_undo_and_plans),
#endif
    };

#ifdef STATE_TEST_PG
    if (getenv("DIRMIG_TEST_PG_CONNINFO") == NULL) {
        fprintf(stderr, "test_state_pg: DIRMIG_TEST_PG_CONNINFO is not set "
                        "(tests/intg/test_state_pg.sh runs this program)\n");
        return 77;
    }
#endif
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
