#include <config.h>
#include "agent/state_pg_priv.h"
#include "agent/util/log.h"
#include "agent/util/secret.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The state journal on PostgreSQL, its session (agent/state_pg_priv.h): for several hook
 * servers and agents that share one journal.
 *
 * The tables and their meaning are those of state_sqlite.c, with the same versioned
 * migrations (meta schema_version), written in PostgreSQL's dialect: SQLite's
 * `COLLATE NOCASE` is lower() on both sides, its total() is sum() FILTER, dates come from
 * to_timestamp() in UTC, and keys are ordered bytewise (COLLATE "C") as SQLite orders them.
 * Beside them, outside the versioned content, two tables that only a shared server needs:
 *   runner   who holds the runner lock of a target (host, pid, since, backend pid);
 *   runs.backend  the server process of the session that started a run, so that a run is
 *            marked interrupted only when its session is gone (another agent's live run
 *            is never taken for a crashed one).
 *
 * Every statement is prepared once per session (lazily, by name) and run with the
 * asynchronous API under a client-side deadline (state_where.op_timeout_ms): a server that
 * hangs costs the caller that long, never more. A session that fails is dropped; the next
 * operation connects again (at most one attempt per RECONNECT_GAP_MS, so an outage costs
 * each caller a fast DM_EUNAVAIL, not a connect timeout), unless the session held
 * something that would be lost with it: an open transaction, the runner lock, or the run's
 * work tables (objects read, objects deleted). Then the operation fails, and the run with
 * it, rather than going on without what it relied on.
 *
 * The connection string is a secret (it may hold a password): it is never logged, and
 * messages name the journal as postgresql://HOST:PORT/DB. TLS is verified (sslmode
 * verify-full, the system CAs unless state.tls.ca_file) for every server that is not on a
 * Unix socket or a loopback address; a weaker sslmode for such a server is refused.
 */

#define RECONNECT_GAP_MS 500
/* pg_advisory_xact_lock key of the schema migration: two processes opening an empty
 * database at once create it once */
#define SCHEMA_LOCK_KEY "7239412871203394"

/* Version 1 of the journal, as state_sqlite.c's schema_sql (idempotent). */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS runs ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  config_digest TEXT,"
    "  started BIGINT NOT NULL,"
    "  finished BIGINT NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL,"
    "  created BIGINT NOT NULL DEFAULT 0,"
    "  updated BIGINT NOT NULL DEFAULT 0,"
    "  unchanged BIGINT NOT NULL DEFAULT 0,"
    "  failed BIGINT NOT NULL DEFAULT 0,"
    "  deleted BIGINT NOT NULL DEFAULT 0,"
    "  skipped BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS objects ("
    "  kind TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  source_dn TEXT,"
    "  target_dn TEXT,"
    "  digest TEXT,"
    "  status TEXT NOT NULL,"
    "  last_run BIGINT NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (kind, key));"
    "CREATE INDEX IF NOT EXISTS objects_source_dn ON objects (source_dn);"
    "CREATE TABLE IF NOT EXISTS errors ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  run BIGINT NOT NULL,"
    "  key TEXT,"
    "  dn TEXT,"
    "  category TEXT NOT NULL,"
    "  message TEXT,"
    "  at BIGINT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS errors_run ON errors (run, category);"
    "CREATE TABLE IF NOT EXISTS password_migrations ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  login TEXT NOT NULL,"
    "  dn TEXT,"
    "  outcome TEXT NOT NULL,"
    "  reason TEXT,"
    "  at BIGINT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS password_migrations_outcome "
    "  ON password_migrations (outcome, login);"
    "INSERT INTO meta (key, value) VALUES ('schema_version', '1') ON CONFLICT DO NOTHING;";

/* The migrations of state_sqlite.c, version for version (append only). */
static const struct {
    int version;
    const char *sql;
} migrations[] = {
    {2, "ALTER TABLE runs ADD COLUMN wave TEXT;"
        "ALTER TABLE runs ADD COLUMN reason TEXT;"
        "CREATE INDEX runs_wave ON runs (wave) WHERE wave IS NOT NULL;"
        "CREATE TABLE user_creations ("
        "  id BIGSERIAL PRIMARY KEY,"
        "  run BIGINT NOT NULL,"
        "  key TEXT NOT NULL,"
        "  signin TEXT NOT NULL,"
        "  at BIGINT NOT NULL);"
        "CREATE INDEX user_creations_key ON user_creations (key, signin);"
        "ALTER TABLE objects ADD COLUMN attrs TEXT;"
        "ALTER TABLE objects ADD COLUMN origin TEXT;"
        "ALTER TABLE objects ADD COLUMN disabled_at BIGINT NOT NULL DEFAULT 0;"
        "ALTER TABLE runs ADD COLUMN held BIGINT NOT NULL DEFAULT 0;"
        "CREATE INDEX objects_target ON objects (kind, lower(target_dn));"},
    /* the index on lower(target_dn) follows the rename */
    {3, "ALTER TABLE objects RENAME COLUMN target_dn TO target_ref;"},
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == PG_SCHEMA_VERSION - 1,
               "one migration per schema version after 1");

/* What only a shared server needs (see the header comment); idempotent, after the
 * migrations. */
static const char shared_sql[] = "ALTER TABLE runs ADD COLUMN IF NOT EXISTS backend INTEGER;"
                                 "CREATE TABLE IF NOT EXISTS runner ("
                                 "  target TEXT PRIMARY KEY,"
                                 "  host TEXT NOT NULL,"
                                 "  pid BIGINT NOT NULL,"
                                 "  since BIGINT NOT NULL,"
                                 "  backend INTEGER NOT NULL);";

/* This session's objects read and deleted in the source (leavers), as SQLite's TEMP. */
static const char work_sql[] = "CREATE TEMP TABLE IF NOT EXISTS seen (kind TEXT NOT NULL, "
                               "key TEXT NOT NULL, PRIMARY KEY (kind, key));"
                               "CREATE TEMP TABLE IF NOT EXISTS gone (kind TEXT NOT NULL, "
                               "key TEXT NOT NULL, PRIMARY KEY (kind, key));";

long long state_pg_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq's messages end with a newline and may span lines: one line for dm_err. */
static const char *one_line(const char *m, char *buf, size_t len)
{
    size_t n = 0;

    if (m == NULL) {
        m = "";
    }
    for (; *m != '\0' && n + 1 < len; m++) {
        buf[n++] = (*m == '\n' || *m == '\r' || *m == '\t') ? ' ' : *m;
    }
    while (n > 0 && buf[n - 1] == ' ') {
        n--;
    }
    buf[n] = '\0';
    return buf;
}

int state_pg_fail(struct pg *s, struct dm_err *err, enum dm_rc rc, const char *what,
                  const char *msg)
{
    char line[200];

    return dm_err_set(err, rc, "state journal %s: %s: %s", s->name, what,
                      one_line(msg != NULL       ? msg
                               : s->conn != NULL ? PQerrorMessage(s->conn)
                                                 : "not connected",
                               line, sizeof(line)));
}

/* The server's notices ("relation ... already exists, skipping") are for the debug log,
 * not for dirmig's standard error. */
static void on_notice(void *arg, const char *message)
{
    char line[200];

    (void)arg;
    log_debug("postgresql: %s", one_line(message, line, sizeof(line)));
}

/* Waits until the session's socket is ready for ev or the deadline passes. */
static int wait_socket(PGconn *c, short ev, long long deadline)
{
    struct pollfd p = {PQsocket(c), ev, 0};
    long long left = deadline - state_pg_now_ms();
    int n;

    if (p.fd < 0) {
        return -1;
    }
    if (left <= 0) {
        return 0;
    }
    n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
    return n < 0 && errno == EINTR ? 1 : n;
}

void state_pg_drop(struct pg *s)
{
    if (s->conn != NULL) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    memset(s->prepared, 0, sizeof(s->prepared));
}

/* Runs sql (several statements allowed) on a fresh session, waiting at most until
 * deadline; DM_OK or the failure in err. */
int state_pg_simple(struct pg *s, const char *sql, const char *what, long long deadline,
                    struct dm_err *err)
{
    PGresult *r, *bad = NULL;
    int rc = DM_OK;

    if (!PQsendQuery(s->conn, sql)) {
        return state_pg_fail(s, err, DM_EUNAVAIL, what, NULL);
    }
    while (PQisBusy(s->conn)) {
        if (wait_socket(s->conn, POLLIN, deadline) <= 0 || !PQconsumeInput(s->conn)) {
            return state_pg_fail(s, err, DM_EUNAVAIL, what, "no answer in time");
        }
    }
    while ((r = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (bad == NULL && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            bad = r;
            continue;
        }
        PQclear(r);
    }
    if (bad != NULL) {
        rc = state_pg_fail(s, err, DM_EINVAL, what, PQresultErrorMessage(bad));
        PQclear(bad);
    }
    return rc;
}

/* Reads the schema version inside the open transaction and applies what the journal
 * lacks; a journal written by a newer dirmig is refused, never downgraded. */
static int migrate(struct pg *s, long long deadline, struct dm_err *err)
{
    PGresult *r = PQexec(s->conn, "SELECT value FROM meta WHERE key = 'schema_version'");
    char *end = NULL, setv[96];
    const char *v;
    long version;
    int rc;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        rc = state_pg_fail(s, err, DM_EINVAL, "reading schema version", PQresultErrorMessage(r));
        PQclear(r);
        return rc;
    }
    v = PQgetvalue(r, 0, 0);
    version = strtol(v, &end, 10);
    if (end == v || *end != '\0' || version < 1) {
        rc = dm_err_set(err, DM_EINVAL, "%s: journal schema version \"%.20s\" is not a version",
                        s->name, v);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    if (version > PG_SCHEMA_VERSION) {
        return dm_err_set(err, DM_EINVAL,
                          "%s: journal schema version %ld is newer than this dirmig supports "
                          "(%d); use a newer dirmig",
                          s->name, version, PG_SCHEMA_VERSION);
    }
    for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
        if (migrations[i].version <= version) {
            continue;
        }
        snprintf(setv, sizeof(setv), "UPDATE meta SET value = '%d' WHERE key = 'schema_version'",
                 migrations[i].version);
        rc = state_pg_simple(s, migrations[i].sql, "migrating the journal", deadline, err);
        if (rc == DM_OK) {
            rc = state_pg_simple(s, setv, "migrating the journal", deadline, err);
        }
        if (rc != DM_OK) {
            return rc;
        }
    }
    return DM_OK;
}

/* Connects within the deadline (non-blocking, so that an unreachable server costs the
 * caller its deadline and no more) and sets up the session: schema (first session only),
 * work tables. */
static int connect_session(struct pg *s, int schema, long long deadline, struct dm_err *err)
{
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    PGconn *c;
    int rc;

    s->last_try_ms = state_pg_now_ms();
    c = PQconnectStartParams(s->kw, s->val, 0);
    if (c == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    s->conn = c;
    PQsetNoticeProcessor(c, on_notice, NULL);
    if (PQstatus(c) == CONNECTION_BAD) {
        rc = state_pg_fail(s, err, DM_EUNAVAIL, "cannot connect", NULL);
        state_pg_drop(s);
        return rc;
    }
    while (ps != PGRES_POLLING_OK) {
        if (ps == PGRES_POLLING_FAILED) {
            rc = state_pg_fail(s, err, DM_EUNAVAIL, "cannot connect", NULL);
            state_pg_drop(s);
            return rc;
        }
        if (wait_socket(c, ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline) <= 0) {
            state_pg_drop(s);
            return state_pg_fail(s, err, DM_EUNAVAIL, "cannot connect", "no answer in time");
        }
        ps = PQconnectPoll(c);
    }
    if (schema) {
        /* schema and migrations in one transaction, one process at a time */
        rc = state_pg_simple(s, "BEGIN; SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ");",
                             "creating the journal schema", deadline, err);
        if (rc == DM_OK) {
            rc = state_pg_simple(s, schema_sql, "creating the journal schema", deadline, err);
        }
        if (rc == DM_OK) {
            rc = migrate(s, deadline, err);
        }
        if (rc == DM_OK) {
            rc = state_pg_simple(s, shared_sql, "creating the journal schema", deadline, err);
        }
        if (rc == DM_OK) {
            rc = state_pg_simple(s, "COMMIT", "creating the journal schema", deadline, err);
        }
        if (rc != DM_OK) {
            state_pg_drop(s);
            return rc;
        }
    }
    rc = state_pg_simple(s, work_sql, "creating the run's work tables", deadline, err);
    if (rc != DM_OK) {
        state_pg_drop(s);
    }
    return rc;
}

/* A session to run the next statement on: the current one, or a new one when it was lost
 * and nothing of the old one matters (see the header comment). */
static int ensure_session(struct pg *s, long long deadline, struct dm_err *err)
{
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK) {
        return DM_OK;
    }
    if (s->in_batch || s->in_read || s->locked || s->used_work) {
        state_pg_drop(s);
        return dm_err_set(err, DM_EUNAVAIL,
                          "state journal %s: the session was lost with %s: cannot go on", s->name,
                          s->locked ? "the runner lock" : "work in progress");
    }
    state_pg_drop(s);
    if (state_pg_now_ms() - s->last_try_ms < RECONNECT_GAP_MS) {
        return dm_err_set(err, DM_EUNAVAIL, "state journal %s: not connected (reconnecting)",
                          s->name);
    }
    return connect_session(s, 0, deadline, err);
}

/* Runs prepared statement `which` with text parameters (NULL = SQL NULL) and returns its
 * result in *out (caller PQclear()s) when it is a success; else err, and a session that
 * failed is dropped. */
int state_pg_exec(PGresult **out, struct pg *s, enum pg_stmt which, int n,
                  const char *const *params, const char *what, struct dm_err *err)
{
    long long deadline = state_pg_now_ms() + s->op_timeout_ms;
    PGresult *r, *last = NULL;
    char name[16];
    int rc;

    rc = ensure_session(s, deadline, err);
    if (rc != DM_OK) {
        return rc;
    }
    snprintf(name, sizeof(name), "dm%d", (int)which);
    if (!s->prepared[which]) {
        r = PQprepare(s->conn, name, state_pg_sql[which], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = state_pg_fail(s, err,
                               PQstatus(s->conn) == CONNECTION_OK ? DM_EINTERNAL : DM_EUNAVAIL,
                               what, PQresultErrorMessage(r));
            PQclear(r);
            if (PQstatus(s->conn) != CONNECTION_OK) {
                state_pg_drop(s);
            }
            return rc;
        }
        PQclear(r);
        s->prepared[which] = 1;
    }
    if (!PQsendQueryPrepared(s->conn, name, n, params, NULL, NULL, 0)) {
        rc = state_pg_fail(s, err, DM_EUNAVAIL, what, NULL);
        state_pg_drop(s);
        return rc;
    }
    while (PQisBusy(s->conn)) {
        if (wait_socket(s->conn, POLLIN, deadline) <= 0 || !PQconsumeInput(s->conn)) {
            /* a server that does not answer in time: this session is given up (its
             * statement may still run; the next one starts afresh) */
            rc = state_pg_fail(s, err, DM_EUNAVAIL, what, "no answer in time");
            state_pg_drop(s);
            return rc;
        }
    }
    while ((r = PQgetResult(s->conn)) != NULL) {
        PQclear(last);
        last = r;
    }
    if (last == NULL ||
        (PQresultStatus(last) != PGRES_COMMAND_OK && PQresultStatus(last) != PGRES_TUPLES_OK)) {
        int lost = PQstatus(s->conn) != CONNECTION_OK;

        rc = state_pg_fail(s, err, lost ? DM_EUNAVAIL : DM_EINTERNAL, what,
                           last != NULL ? PQresultErrorMessage(last) : NULL);
        PQclear(last);
        if (lost) {
            state_pg_drop(s);
        }
        return rc;
    }
    *out = last;
    return DM_OK;
}

/* state_pg_exec() without a result. */
int state_pg_do(struct pg *s, enum pg_stmt which, int n, const char *const *params,
                const char *what, struct dm_err *err)
{
    PGresult *r = NULL;
    int rc = state_pg_exec(&r, s, which, n, params, what, err);

    PQclear(r);
    return rc;
}

/* A plain command on the current session (BEGIN, COMMIT, ROLLBACK). */
int state_pg_command(struct pg *s, const char *sql, const char *what, struct dm_err *err)
{
    long long deadline = state_pg_now_ms() + s->op_timeout_ms;
    int rc = ensure_session(s, deadline, err);

    if (rc == DM_OK) {
        rc = state_pg_simple(s, sql, what, deadline, err);
        if (rc != DM_OK && PQstatus(s->conn) != CONNECTION_OK) {
            state_pg_drop(s);
            rc = DM_EUNAVAIL;
        }
    }
    return rc;
}

/* ---- the TLS policy and the connection parameters ---- */

static int is_local_host(const char *h)
{
    if (h == NULL || *h == '\0' || *h == '/' || *h == '@') {
        return 1; /* the default socket, a socket directory, an abstract socket */
    }
    return strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0;
}

/* Whether every host of a comma-separated list is local. */
static int all_local(const char *list)
{
    char buf[512];
    char *save = NULL, *h;

    if (list == NULL || *list == '\0') {
        return 1;
    }
    snprintf(buf, sizeof(buf), "%s", list);
    for (h = strtok_r(buf, ",", &save); h != NULL; h = strtok_r(NULL, ",", &save)) {
        if (!is_local_host(h)) {
            return 0;
        }
    }
    return 1;
}

static const char *opt_val(const PQconninfoOption *o, const char *kw)
{
    for (; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, kw) == 0) {
            return o->val != NULL && *o->val != '\0' ? o->val : NULL;
        }
    }
    return NULL;
}

/* Builds the connection parameters from the connection string and the policy. */
static int build_params(struct pg *s, const struct state_where *w, struct dm_err *err)
{
    char *perr = NULL;
    const char *host, *hostaddr, *sslmode, *port, *db;
    int remote;
    size_t n = 0, k = 0;

    s->opts = PQconninfoParse(secret_reveal(w->conninfo), &perr);
    if (s->opts == NULL) {
        /* libpq's message names the syntax problem, not the string's content */
        char line[200];
        int rc =
            dm_err_set(err, DM_ECONFIG, "state.conninfo: not a PostgreSQL connection string: %s",
                       one_line(perr != NULL ? perr : "out of memory", line, sizeof(line)));
        PQfreemem(perr);
        return rc;
    }
    host = opt_val(s->opts, "host");
    hostaddr = opt_val(s->opts, "hostaddr");
    sslmode = opt_val(s->opts, "sslmode");
    port = opt_val(s->opts, "port");
    db = opt_val(s->opts, "dbname");
    remote = !all_local(host) || (hostaddr != NULL && !all_local(hostaddr));
    if (remote && sslmode != NULL && strcmp(sslmode, "verify-full") != 0) {
        return dm_err_set(err, DM_ECONFIG,
                          "state.conninfo: sslmode=%s for a server that is not on this machine: "
                          "its certificate must be verified (sslmode=verify-full, the default)",
                          sslmode);
    }
    snprintf(s->name, sizeof(s->name), "postgresql://%s:%s/%s", host != NULL ? host : "(socket)",
             port != NULL ? port : "5432", db != NULL ? db : "(default)");
    s->base.name = s->name;
    for (PQconninfoOption *o = s->opts; o->keyword != NULL; o++) {
        n++;
    }
    s->kw = calloc(n + 6, sizeof(*s->kw));
    s->val = calloc(n + 6, sizeof(*s->val));
    if (s->kw == NULL || s->val == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    for (PQconninfoOption *o = s->opts; o->keyword != NULL; o++) {
        if (o->val == NULL || *o->val == '\0') {
            continue;
        }
        s->kw[k] = o->keyword;
        s->val[k++] = o->val;
    }
    if (remote && sslmode == NULL) {
        s->kw[k] = "sslmode";
        s->val[k++] = "verify-full";
        sslmode = "verify-full";
    }
    if (w->ca_file != NULL) {
        s->kw[k] = "sslrootcert";
        s->val[k++] = w->ca_file;
    } else if (sslmode != NULL && strncmp(sslmode, "verify", 6) == 0 &&
               opt_val(s->opts, "sslrootcert") == NULL) {
        /* libpq's default is ~/.postgresql/root.crt: the system CAs, as everywhere else */
        s->kw[k] = "sslrootcert";
        s->val[k++] = "/etc/ssl/certs/ca-certificates.crt";
    }
    if (opt_val(s->opts, "connect_timeout") == NULL) {
        snprintf(s->timeout, sizeof(s->timeout), "%d",
                 w->connect_timeout_s > 0 ? w->connect_timeout_s : PG_CONNECT_TIMEOUT_S);
        s->kw[k] = "connect_timeout";
        s->val[k++] = s->timeout;
    }
    if (opt_val(s->opts, "application_name") == NULL) {
        s->kw[k] = "application_name";
        s->val[k++] = "dirmig";
    }
    s->nkw = k;
    return DM_OK;
}

void state_pg_close(struct state *st_)
{
    struct pg *s = (struct pg *)st_;

    if (s == NULL) {
        return;
    }
    /* ending the session rolls back an open transaction and releases the runner lock */
    state_pg_drop(s);
    if (s->opts != NULL) {
        for (PQconninfoOption *o = s->opts; o->keyword != NULL; o++) {
            if (o->val != NULL) {
                explicit_bzero(o->val, strlen(o->val));
            }
        }
        PQconninfoFree(s->opts);
    }
    free(s->kw);
    free(s->val);
    free(s->lock_target);
    free(s);
}

int state_pg_open(struct state **out, const struct state_where *w, struct dm_err *err)
{
    struct pg *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    s->base.ops = &state_pg_ops;
    s->op_timeout_ms = w->op_timeout_ms > 0 ? w->op_timeout_ms : PG_OP_TIMEOUT_MS;
    snprintf(s->name, sizeof(s->name), "postgresql");
    s->base.name = s->name;
    if (w->conninfo == NULL) {
        rc = dm_err_set(err, DM_ECONFIG,
                        "state.type postgresql needs state.conninfo_file or "
                        "state.conninfo_env");
        goto done;
    }
    rc = build_params(s, w, err);
    if (rc == DM_OK) {
        int t = w->connect_timeout_s > 0 ? w->connect_timeout_s : PG_CONNECT_TIMEOUT_S;
        rc = connect_session(s, 1, state_pg_now_ms() + (long long)t * 1000 + s->op_timeout_ms, err);
    }
    if (rc != DM_OK) {
        goto done;
    }
    *out = &s->base;
    s = NULL;
done:
    state_pg_close(s != NULL ? &s->base : NULL);
    return rc;
}
