/*
 * state.h: the state journal: what was migrated, where, and what failed.
 *
 * One SQLite file in WAL mode (state_sqlite.c is the only place that knows SQLite; a
 * PostgreSQL backend is planned behind this same interface). It holds:
 *   runs     id, kind (plan/run), config digest, start/end, status, counts
 *   objects  one row per migrated object: kind, source key, normalized source DN, target
 *            DN, digest of the mapped content, status (ok/failed), last run
 *   errors   run, source key, DN, category, message (never a secret or pii value)
 *   meta     key/value (schema version, ...)
 * Writes happen inside a batch (state_batch_begin/commit): one transaction per batch, so a
 * crash loses at most the open batch, and the connector's add-or-compare makes its
 * replay safe. Nothing here ever stores a password or hash.
 *
 * Call order: state_open -> state_run_begin -> (batch_begin, object_put..., error_add...,
 * batch_commit)* -> state_run_end -> state_close.
 */
#ifndef DM_STATE_H
#define DM_STATE_H

#include "agent/util/err.h"

struct state;

struct run_counts {
    long long created, updated, unchanged, failed, deleted, skipped;
};

struct state_object {
    char *kind;      /* "user" or "group" */
    char *key;       /* source correlation key */
    char *source_dn; /* normalized source DN (dn_normalize) */
    char *target_dn; /* as written to the target */
    char digest[65]; /* entry_digest of the mapped entry */
    char *status;    /* "ok" or "failed" */
    long long last_run;
};

/* Frees the strings of o (not o itself) and zeroes it. */
void state_object_clear(struct state_object *o);

struct state_run {
    long long id;
    char kind[16];
    char status[16];             /* running, done, failed, interrupted */
    long long started, finished; /* unix seconds; finished 0 while running */
    struct run_counts counts;
};

/* Opens (creating if needed) the journal at path; WAL mode, schema migrated. */
int state_open(struct state **out, const char *path, struct dm_err *err) DM_MUST_USE;
void state_close(struct state *s); /* NULL-safe; rolls back an open batch */

/* Starts a run; marks runs left 'running' by a crashed process as 'interrupted'. */
int state_run_begin(long long *out, struct state *s, const char *kind, const char *config_digest,
                    struct dm_err *err) DM_MUST_USE;
/* Ends run with status ("done"/"failed") and final counts. */
int state_run_end(struct state *s, long long run, const char *status, const struct run_counts *c,
                  struct dm_err *err) DM_MUST_USE;

int state_batch_begin(struct state *s, struct dm_err *err) DM_MUST_USE;
int state_batch_commit(struct state *s, struct dm_err *err) DM_MUST_USE;

/* Looks up an object by (kind, key); DM_ENOTFOUND if absent. *out filled with new strings
 * (clear with state_object_clear). */
int state_object_get(struct state_object *out, struct state *s, const char *kind, const char *key,
                     struct dm_err *err) DM_MUST_USE;
/* Looks up by normalized source DN (any kind); DM_ENOTFOUND if absent. */
int state_object_by_source_dn(struct state_object *out, struct state *s, const char *source_dn,
                              struct dm_err *err) DM_MUST_USE;
/* Inserts or replaces the object (kind, key). */
int state_object_put(struct state *s, const struct state_object *o, struct dm_err *err) DM_MUST_USE;

/* Records an error of run for one object (key/dn may be NULL). */
int state_error_add(struct state *s, long long run, const char *key, const char *dn,
                    const char *category, const char *message, struct dm_err *err) DM_MUST_USE;

/* Counts of objects by kind and status: fills ok/failed for "user" and "group". */
struct state_totals {
    long long users_ok, users_failed, groups_ok, groups_failed;
};
int state_totals(struct state_totals *out, struct state *s, struct dm_err *err) DM_MUST_USE;

/* Calls fn for the newest `limit` runs, newest first. fn returning non-zero stops. */
typedef int (*state_run_fn)(const struct state_run *r, void *payload);
int state_runs(struct state *s, int limit, state_run_fn fn, void *payload,
               struct dm_err *err) DM_MUST_USE;

/* Error counts of one run by category: fn(category, count). */
typedef int (*state_count_fn)(const char *category, long long count, void *payload);
int state_run_error_counts(struct state *s, long long run, state_count_fn fn, void *payload,
                           struct dm_err *err) DM_MUST_USE;

/*
 * Password migrations (the password-import hook, agent/hook.h). One row per verification
 * that reached the source directory: login as typed, the user's source DN (NULL when not
 * known), outcome ("verified", "wrong_password", "ambiguous_user", "source_error"), a short
 * reason, time. Never the password. Users are counted by DN (the same person may sign in
 * as "alice" and as "alice@example.org").
 */
int state_password_record(struct state *s, const char *login, const char *dn, const char *outcome,
                          const char *reason, struct dm_err *err) DM_MUST_USE;

/* Users created in the target with a password-import hook are counted by the importer in
 * meta under this key (absent = 0). */
#define STATE_META_HOOK_CREATED "hook_users_created"

/* Adds delta to the integer meta value key (absent = 0). Inside a batch when called during
 * a run, so the counter commits with the objects it counts. */
int state_meta_add(struct state *s, const char *key, long long delta,
                   struct dm_err *err) DM_MUST_USE;

struct state_password_counts {
    long long hook_created;   /* meta STATE_META_HOOK_CREATED, 0 if absent */
    long long verified_users; /* distinct users (DN, else login) verified at least once */
    long long verifications;  /* verified rows (a user may verify again) */
};
int state_password_counts(struct state_password_counts *out, struct state *s,
                          struct dm_err *err) DM_MUST_USE;

/* Users verified for the first time per UTC day, oldest first: fn("YYYY-MM-DD", n). */
int state_password_daily(struct state *s, state_count_fn fn, void *payload,
                         struct dm_err *err) DM_MUST_USE;

/* meta key/value (small values only). state_meta_get: *out is a new string (free());
 * DM_ENOTFOUND when the key is absent. state_meta_set inserts or replaces (inside or outside a
 * batch). */
int state_meta_get(char **out, struct state *s, const char *key, struct dm_err *err) DM_MUST_USE;
int state_meta_set(struct state *s, const char *key, const char *value,
                   struct dm_err *err) DM_MUST_USE;

/* The agent daemon's schedule (agent/daemon.h), a JSON object written after every
 * scheduled run and at start/stop; `dirmig status` shows it. */
#define STATE_META_AGENT "agent"

#endif
