/*
 * state_sqlite.h: shared by the two files of the SQLite backend of the state journal
 * (agent/state_sqlite.c: the journal; agent/state_sqlite_undo.c: the undo store, the saved
 * plan's work table and what rollback reads). Nothing else includes it: SQLite stays
 * behind agent/state.h.
 */
#ifndef DM_STATE_SQLITE_H
#define DM_STATE_SQLITE_H

#include "agent/state.h"
#include <sqlite3.h>

/* Owned by state_sqlite_undo.c, hung on struct state, freed by state_close(). */
struct state_ext;
void state_ext_free(struct state_ext *x); /* NULL-safe; finalizes its statements */

sqlite3 *state_sqlite_db(struct state *s);
const char *state_sqlite_path(const struct state *s);
struct state_ext **state_sqlite_ext(struct state *s);
/* dm_err_set(DM_EINTERNAL) with the journal's path and SQLite's message. */
int state_sqlite_fail(struct state *s, struct dm_err *err, const char *what);
/* 1 while a batch or a read transaction is open (ATTACH is refused then). */
int state_sqlite_in_tx(const struct state *s);

#endif
