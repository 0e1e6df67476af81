/*
 * state_sqlite.h: shared by the two files of the SQLite backend of the state journal
 * (agent/state_sqlite.c: the journal and the backend's ops table; agent/state_sqlite_undo.c:
 * the undo store, the saved plan's work table and what rollback reads). Nothing else
 * includes it: SQLite stays behind agent/state.h, and state.c dispatches to these through
 * state_sqlite_ops (agent/state_priv.h).
 */
#ifndef DM_STATE_SQLITE_H
#define DM_STATE_SQLITE_H

#include "agent/state_priv.h"
#include <sqlite3.h>

/* Owned by state_sqlite_undo.c, hung on the backend's handle, freed by its close. */
struct state_ext;
void state_ext_free(struct state_ext *x); /* NULL-safe; finalizes its statements */

sqlite3 *state_sqlite_db(struct state *s);
const char *state_sqlite_path(const struct state *s);
struct state_ext **state_sqlite_ext(struct state *s);
/* dm_err_set(DM_EINTERNAL) with the journal's path and SQLite's message. */
int state_sqlite_fail(struct state *s, struct dm_err *err, const char *what);
/* 1 while a batch or a read transaction is open (ATTACH is refused then). */
int state_sqlite_in_tx(const struct state *s);

/* The ops of state_sqlite_undo.c (state_sqlite_ops); each has the contract of the state.h
 * function of the same name without "sqlite_". */
int state_sqlite_run_get(struct state_run *out, struct state *s, long long id,
                         struct dm_err *err) DM_MUST_USE;
int state_sqlite_run_last(struct state_run *out, struct state *s, const char *kind,
                          struct dm_err *err) DM_MUST_USE;
int state_sqlite_object_del(struct state *s, const char *kind, const char *key,
                            struct dm_err *err) DM_MUST_USE;
int state_sqlite_plan_add(struct state *s, const struct state_planned *p,
                          struct dm_err *err) DM_MUST_USE;
int state_sqlite_plan_get(struct state_planned *out, struct state *s, const char *kind,
                          const char *key, struct dm_err *err) DM_MUST_USE;
int state_sqlite_plan_use(struct state *s, const char *kind, const char *key,
                          struct dm_err *err) DM_MUST_USE;
int state_sqlite_plan_unused(struct state *s, state_planned_fn fn, void *payload,
                             struct dm_err *err) DM_MUST_USE;
int state_sqlite_undo_open(struct state *s, struct dm_err *err) DM_MUST_USE;
const char *state_sqlite_undo_path(const struct state *s);
int state_sqlite_undo_put(struct state *s, const struct state_undo *u,
                          struct dm_err *err) DM_MUST_USE;
int state_sqlite_undo_list(struct state *s, long long run, long long below_id, int limit,
                           state_undo_fn fn, void *payload, struct dm_err *err) DM_MUST_USE;
int state_sqlite_undo_mark(struct state *s, long long id, long long by_run,
                           struct dm_err *err) DM_MUST_USE;
int state_sqlite_undo_count(long long *total, long long *undone, struct state *s, long long run,
                            struct dm_err *err) DM_MUST_USE;

#endif
