/*
 * state_priv.h: the backends of the state journal (for state.c and the state_*.c backends
 * only; everything else uses state.h).
 *
 * A backend is a `const struct state_ops`: one slot per operation of state.h, each with
 * the contract written there. Its handle embeds `struct state` as its first member, so
 * that state.c dispatches through s->ops and the backend converts the pointer back to its
 * own struct. state.c's state_open_cfg() picks the backend by state.type:
 *   state_sqlite_ops  one SQLite file (state_sqlite.c): the embedded default
 *   state_pg_ops      a PostgreSQL database shared by several hooks and agents (state_pg.c)
 * Both hold the same tables with the same meaning and the same versioned migrations.
 */
#ifndef DM_STATE_PRIV_H
#define DM_STATE_PRIV_H

#include "agent/state.h"

struct state_ops;

struct state {
    const struct state_ops *ops;
    const char *name; /* for messages (state_name()); owned by the backend */
};

/* One row of a table, every value as text (NULL for SQL NULL); for state_copy(). */
typedef int (*state_row_fn)(const char *table, int ncols, const char *const *cols,
                            const char *const *vals, void *payload);

struct state_ops {
    const char *name; /* "sqlite", "postgresql" */
    void (*close)(struct state *s);
    int (*run_begin)(long long *out, struct state *s, const char *kind, const char *digest,
                     struct dm_err *err);
    int (*run_end)(struct state *s, long long run, const char *status, const struct run_counts *c,
                   struct dm_err *err);
    int (*read_begin)(struct state *s, struct dm_err *err);
    void (*read_end)(struct state *s);
    int (*run_set_wave)(struct state *s, long long run, const char *wave, struct dm_err *err);
    int (*run_set_reason)(struct state *s, long long run, const char *reason, struct dm_err *err);
    int (*batch_begin)(struct state *s, struct dm_err *err);
    int (*batch_commit)(struct state *s, struct dm_err *err);
    int (*object_get)(struct state_object *out, struct state *s, const char *kind, const char *key,
                      struct dm_err *err);
    int (*object_by_source_dn)(struct state_object *out, struct state *s, const char *source_dn,
                               struct dm_err *err);
    int (*object_by_target)(struct state_object *out, struct state *s, const char *kind,
                            const char *target_ref, struct dm_err *err);
    int (*object_put)(struct state *s, const struct state_object *o, struct dm_err *err);
    int (*objects_each)(struct state *s, const char *kind, state_key_fn fn, void *payload,
                        struct dm_err *err);
    int (*error_add)(struct state *s, long long run, const char *key, const char *dn,
                     const char *category, const char *message, struct dm_err *err);
    int (*seen_add)(struct state *s, const char *kind, const char *key, struct dm_err *err);
    int (*gone_add)(struct state *s, const char *kind, const char *key, struct dm_err *err);
    int (*unseen)(struct state *s, const char *kind, int gone, state_object_fn fn, void *payload,
                  struct dm_err *err);
    int (*population)(long long *out, struct state *s, const char *kind, struct dm_err *err);
    int (*disabled_due)(struct state *s, const char *kind, long long before, int gone,
                        state_object_fn fn, void *payload, struct dm_err *err);
    int (*totals)(struct state_totals *out, struct state *s, struct dm_err *err);
    int (*runs)(struct state *s, int limit, state_run_fn fn, void *payload, struct dm_err *err);
    int (*runs_unfinished)(struct state *s, int limit, state_run_fn fn, void *payload,
                           struct dm_err *err);
    int (*run_error_counts)(struct state *s, long long run, state_count_fn fn, void *payload,
                            struct dm_err *err);
    int (*password_record)(struct state *s, const char *login, const char *dn, const char *outcome,
                           const char *reason, struct dm_err *err);
    int (*meta_add)(struct state *s, const char *key, long long delta, struct dm_err *err);
    int (*password_counts)(struct state_password_counts *out, struct state *s, struct dm_err *err);
    int (*password_daily)(struct state *s, state_count_fn fn, void *payload, struct dm_err *err);
    int (*user_created)(struct state *s, long long run, const char *key, const char *signin,
                        struct dm_err *err);
    int (*signin_daily)(struct state *s, state_signin_day_fn fn, void *payload, struct dm_err *err);
    int (*run_summary)(struct state_run_summary *out, struct state *s, struct dm_err *err);
    int (*waves)(struct state *s, state_wave_fn fn, void *payload, struct dm_err *err);
    int (*error_categories)(struct state *s, state_error_category_fn fn, void *payload,
                            struct dm_err *err);
    int (*error_examples)(struct state *s, int per_category, state_error_row_fn fn, void *payload,
                          struct dm_err *err);
    int (*meta_get)(char **out, struct state *s, const char *key, struct dm_err *err);
    int (*meta_set)(struct state *s, const char *key, const char *value, struct dm_err *err);
    /* The runner lock (state_runner_lock()); NULL when the backend has none. */
    int (*runner_lock)(struct state *s, const char *identity, int wait_s,
                       struct state_runner *holder, struct dm_err *err);
    void (*runner_unlock)(struct state *s);
    /* Copying a journal (state_copy()): dump calls fn for every row of the journal's
     * tables, parents first; load_row inserts one such row as it is (ids kept) and
     * load_end makes the copied ids the base of new ones. NULL when unsupported. */
    int (*dump)(struct state *s, state_row_fn fn, void *payload, struct dm_err *err);
    int (*load_row)(struct state *s, const char *table, int ncols, const char *const *cols,
                    const char *const *vals, struct dm_err *err);
    int (*load_end)(struct state *s, struct dm_err *err);
    int (*ping)(struct state *s, struct dm_err *err); /* NULL: always DM_OK */
    /* What rollback reads and writes in the journal. */
    int (*run_get)(struct state_run *out, struct state *s, long long id, struct dm_err *err);
    int (*run_last)(struct state_run *out, struct state *s, const char *kind, struct dm_err *err);
    int (*object_del)(struct state *s, const char *kind, const char *key, struct dm_err *err);
    /* The saved plan's work table (run --plan); NULL when the backend has none: run --plan
     * and plan --out are then refused (state_plans_supported()). */
    int (*plan_add)(struct state *s, const struct state_planned *p, struct dm_err *err);
    int (*plan_get)(struct state_planned *out, struct state *s, const char *kind, const char *key,
                    struct dm_err *err);
    int (*plan_use)(struct state *s, const char *kind, const char *key, struct dm_err *err);
    int (*plan_unused)(struct state *s, state_planned_fn fn, void *payload, struct dm_err *err);
    /* The undo store; NULL when the backend keeps none: runs are then not recorded for
     * rollback and rollback is refused (state_undo_supported()). */
    int (*undo_open)(struct state *s, struct dm_err *err);
    const char *(*undo_path)(const struct state *s);
    int (*undo_put)(struct state *s, const struct state_undo *u, struct dm_err *err);
    int (*undo_list)(struct state *s, long long run, long long below_id, int limit,
                     state_undo_fn fn, void *payload, struct dm_err *err);
    int (*undo_mark)(struct state *s, long long id, long long by_run, struct dm_err *err);
    int (*undo_count)(long long *total, long long *undone, struct state *s, long long run,
                      struct dm_err *err);
};

extern const struct state_ops state_sqlite_ops;
extern const struct state_ops state_pg_ops;

/* The backends' open functions (state_open_cfg() dispatches to them). */
int state_sqlite_open(struct state **out, const char *path, struct dm_err *err) DM_MUST_USE;
int state_pg_open(struct state **out, const struct state_where *w, struct dm_err *err) DM_MUST_USE;

/* The tables state_copy() copies, parents first, and their columns (as of schema version
 * 3; a later version appends here what it adds). NULL-terminated by name. */
struct state_table {
    const char *name;
    const char *cols[16]; /* NULL-terminated */
};
extern const struct state_table state_tables[];

/* The runner: this process (host name and pid) now. */
void state_runner_me(struct state_runner *out);

#endif
