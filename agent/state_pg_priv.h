/*
 * state_pg_priv.h: what state_pg.c (the operations) and state_pg_conn.c (the session:
 * connecting, the TLS policy, the schema, running statements under a deadline) share.
 * Include only from those two files.
 */
#ifndef DM_STATE_PG_PRIV_H
#define DM_STATE_PG_PRIV_H

#include <libpq-fe.h>
#include "agent/state_priv.h"

#define PG_SCHEMA_VERSION 3 /* = STATE_SCHEMA_VERSION of state_sqlite.c */
#define PG_OP_TIMEOUT_MS 30000
#define PG_CONNECT_TIMEOUT_S 10

enum pg_stmt {
    PS_RUN_INTERRUPT,
    PS_RUN_INSERT,
    PS_RUN_END,
    PS_OBJ_GET,
    PS_OBJ_BY_DN,
    PS_OBJ_BY_TARGET,
    PS_OBJ_KEYS,
    PS_OBJ_PUT,
    PS_SEEN_ADD,
    PS_UNSEEN,
    PS_DISABLED_DUE,
    PS_GONE_ADD,
    PS_GONE,
    PS_POPULATION,
    PS_ERR_ADD,
    PS_TOTALS,
    PS_SIGNIN_COUNTS,
    PS_RUN_GET,
    PS_RUN_LAST,
    PS_OBJ_DEL,
    PS_RUNS,
    PS_RUN_ERR_COUNTS,
    PS_PW_ADD,
    PS_PW_COUNTS,
    PS_PW_DAILY,
    PS_META_GET,
    PS_META_ADD,
    PS_META_SET,
    PS_RUN_WAVE,
    PS_RUN_REASON,
    PS_USER_CREATED,
    PS_SIGNIN_DAILY,
    PS_RUN_SUMMARY,
    PS_RUNS_UNFINISHED,
    PS_WAVES,
    PS_ERR_CATEGORIES,
    PS_ERR_EXAMPLES,
    PS_LOCK_TRY,
    PS_LOCK_RELEASE,
    PS_RUNNER_SET,
    PS_RUNNER_GET,
    PS_RUNNER_DEL,
    PS_PING,
    PS__LAST
};

/* The SQL of each statement (state_pg.c). */
extern const char *const state_pg_sql[PS__LAST];

struct pg {
    struct state base;      /* first: state.c dispatches through base.ops */
    PGconn *conn;           /* NULL while disconnected */
    const char **kw, **val; /* connection parameters (val may hold the password) */
    size_t nkw;
    PQconninfoOption *opts; /* what kw/val point into */
    char name[320];         /* postgresql://HOST:PORT/DB */
    int op_timeout_ms;
    unsigned char prepared[PS__LAST]; /* prepared in this session */
    int in_batch, in_read;
    int used_work;         /* seen/gone rows exist: this session cannot be replaced */
    int locked;            /* holds the runner lock */
    char lock_key[24];     /* its advisory key, decimal */
    char *lock_target;     /* its identity */
    long long last_try_ms; /* last connection attempt (monotonic) */
    char timeout[16];      /* connect_timeout, when the string has none */
};

/* Milliseconds of CLOCK_MONOTONIC. */
long long state_pg_now_ms(void);
/* Fills err: "state journal NAME: what: msg" (msg NULL: the session's last error). */
int state_pg_fail(struct pg *s, struct dm_err *err, enum dm_rc rc, const char *what,
                  const char *msg);
/* Ends the session (an open transaction is rolled back, the runner lock freed). */
void state_pg_drop(struct pg *s);
/* Runs sql (several statements allowed) on the current session before deadline. */
int state_pg_simple(struct pg *s, const char *sql, const char *what, long long deadline,
                    struct dm_err *err) DM_MUST_USE;
/* Runs prepared statement `which` with n text parameters (NULL = SQL NULL) within the
 * statement deadline, connecting again first when the session was lost and nothing of it
 * mattered; *out is its result (caller PQclear()s) on success. A failed session is dropped. */
int state_pg_exec(PGresult **out, struct pg *s, enum pg_stmt which, int n,
                  const char *const *params, const char *what, struct dm_err *err) DM_MUST_USE;
/* state_pg_exec() without a result. */
int state_pg_do(struct pg *s, enum pg_stmt which, int n, const char *const *params,
                const char *what, struct dm_err *err) DM_MUST_USE;
/* A plain command (BEGIN, COMMIT) on the session, connecting again as state_pg_exec(). */
int state_pg_command(struct pg *s, const char *sql, const char *what,
                     struct dm_err *err) DM_MUST_USE;
/* The ops' close (NULL-safe): the session ends, the connection string is wiped. */
void state_pg_close(struct state *st_);

#endif
