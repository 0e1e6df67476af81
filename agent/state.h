/*
 * state.h: the state journal: what was migrated, where, and what failed.
 *
 * Two backends behind this one interface (agent/state_priv.h), chosen by state.type:
 * one SQLite file in WAL mode (state_sqlite.c, the embedded default for one machine), or
 * a PostgreSQL database (state_pg.c) that several hook servers and agents share. It holds:
 *   runs     id, kind (plan/run), config digest, start/end, status, counts
 *   objects  one row per migrated object: kind, source key, normalized source DN, target
 *            reference (target_ref: what the target calls it, a DN or an id it assigned),
 *            digest of the mapped content, status (ok/failed), last run
 *   errors   run, source key, DN, category, message (never a secret or pii value)
 *   password_migrations  hook verifications (login, DN, outcome, time; never the password)
 *   user_creations  one row per user created at the target and how that user signs in
 *            there: an imported hash or the password-import hook (never the credential)
 *   meta     key/value (schema version, ...)
 * The schema is versioned (meta schema_version): state_open() applies the migrations a
 * journal lacks, in one transaction, and refuses a journal newer than this program.
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
    long long held; /* not written: collisions, groups whose members were all left out */
};

struct state_object {
    char *kind;       /* "user", "group" or "container" */
    char *key;        /* source correlation key */
    char *source_dn;  /* normalized source DN (dn_normalize) */
    char *target_ref; /* what the target calls the object: the DN as written (targets that
                       * name objects by DN) or the id the target assigned */
    char digest[65];  /* entry_digest of what the target was asked to hold */
    char *status;     /* "ok", "failed", or "pending": a create recorded before it is sent, so
                       * that a run resumed after a crash looks the object up instead of
                       * creating it again */
    long long last_run;
    char *attrs;  /* names of the attributes dirmig wrote (lowercase, comma-separated; never
                   * values), so that an attribute the source dropped is removed; may be NULL */
    int linked;   /* 1: an object that was at the target before and was linked by the
                   * collision policy, not created by dirmig */
    int suffixed; /* 1: created under the collision suffix beside an object that was there */
    long long disabled_at; /* unix time dirmig disabled it at the target (leaver, or disabled
                            * in the source); 0 when it did not */
};

/* Frees the strings of o (not o itself) and zeroes it. */
void state_object_clear(struct state_object *o);

struct state_run {
    long long id;
    char kind[16];
    char status[16];             /* running, done, failed, interrupted, blocked */
    long long started, finished; /* unix seconds; finished 0 while running */
    struct run_counts counts;
    char wave[64];    /* the run's --wave, "" for the whole scope */
    char reason[256]; /* why a run failed or was blocked, "" if none */
};

/* Opens (creating if needed) the SQLite journal at path; WAL mode, schema migrated. */
int state_open(struct state **out, const char *path, struct dm_err *err) DM_MUST_USE;

struct secret;

/* Where the journal is (the config's state section). Borrowed by state_open_cfg(). */
struct state_where {
    const char *type; /* "sqlite" (NULL too) or "postgresql" */
    const char *path; /* sqlite: the journal file */
    /* postgresql: a libpq connection string or URI (it may hold a password, so it is a
     * secret: never logged or shown); TLS is verified (sslmode verify-full) unless the
     * server is on a Unix socket or a loopback address */
    const struct secret *conninfo;
    const char *ca_file;   /* postgresql: PEM CAs (sslrootcert); NULL: the system CAs */
    int connect_timeout_s; /* postgresql: connect timeout, 0 = 10 s */
    int op_timeout_ms;     /* postgresql: longest wait for one statement's answer, 0 = 30 s
                            * (the hook uses less than its deadline) */
};

/* Opens the journal w names, schema created or migrated (both backends keep the same
 * versioned migrations). DM_EUNAVAIL when the database server cannot be reached (or its
 * certificate is not trusted), DM_EINVAL for a bad path or journal, DM_ECONFIG for a bad
 * connection string or one that would not verify a remote server. */
int state_open_cfg(struct state **out, const struct state_where *w, struct dm_err *err) DM_MUST_USE;
void state_close(struct state *s); /* NULL-safe; rolls back an open batch */

/* "sqlite" or "postgresql". */
const char *state_backend(const struct state *s);
/* A short name of the journal for messages: the file, or "postgresql://HOST:PORT/DB"
 * (never the connection string's password). Borrowed. */
const char *state_name(const struct state *s);

/*
 * Exactly one runner. state_runner_lock() takes the journal's runner lock for identity
 * (the target: one runner per target, whatever machine it is on) before a run writes:
 * PostgreSQL's session advisory lock, which the server releases when the holder's session
 * ends (the process exits or dies), so a second agent takes over by itself; SQLite's is a
 * lock on the file PATH.run beside the journal (one machine). The holder's host, pid and
 * start time are recorded beside the lock. wait_s = 0: DM_EBUSY at once when another
 * runner holds it, with *holder filled (host and pid); wait_s > 0: waits up to that long.
 */
struct state_runner {
    char host[256];
    long long pid;
    long long since; /* unix seconds */
};
int state_runner_lock(struct state *s, const char *identity, int wait_s,
                      struct state_runner *holder, struct dm_err *err) DM_MUST_USE;
/* Releases the runner lock (NULL-safe; nothing when not held). state_close() does too. */
void state_runner_unlock(struct state *s);

/* Copies every run, object, error, password migration, user creation and meta value of
 * src into dst, which must be empty (no run and no object yet: DM_EEXISTS), keeping ids
 * and times; in one transaction of dst. *copied is the number of rows. On failure close
 * dst without using it further: that rolls the copy back. For `dirmig state migrate`. */
int state_copy(long long *copied, struct state *dst, struct state *src,
               struct dm_err *err) DM_MUST_USE;

/* Checks that the journal answers (a PostgreSQL round trip; reconnects a lost session
 * first). DM_EUNAVAIL when it does not. */
int state_ping(struct state *s, struct dm_err *err) DM_MUST_USE;

/* Starts a run; marks runs left 'running' by a crashed process as 'interrupted'. */
int state_run_begin(long long *out, struct state *s, const char *kind, const char *config_digest,
                    struct dm_err *err) DM_MUST_USE;
/* Ends run with status ("done"/"failed") and final counts. */
int state_run_end(struct state *s, long long run, const char *status, const struct run_counts *c,
                  struct dm_err *err) DM_MUST_USE;

/* Reads go faster inside one read transaction (no lock per statement): state_read_begin()
 * opens one unless a transaction is open already; state_read_end() (or the next
 * state_batch_begin()) ends it. Keep it short: it holds the journal's snapshot. */
int state_read_begin(struct state *s, struct dm_err *err) DM_MUST_USE;
void state_read_end(struct state *s); /* NULL-safe */
/* Records the wave a run is limited to (--wave). */
int state_run_set_wave(struct state *s, long long run, const char *wave,
                       struct dm_err *err) DM_MUST_USE;
/* Records why a run failed or was blocked: one line, never a secret or pii value (an
 * error message formatted by dm_err_format() qualifies); cut to fit struct state_run. */
int state_run_set_reason(struct state *s, long long run, const char *reason,
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
/* Looks up the object of kind whose target reference is target_ref (case-insensitive; a
 * row with status ok first); DM_ENOTFOUND if none. */
int state_object_by_target(struct state_object *out, struct state *s, const char *kind,
                           const char *target_ref, struct dm_err *err) DM_MUST_USE;
/* Inserts or replaces the object (kind, key). */
int state_object_put(struct state *s, const struct state_object *o, struct dm_err *err) DM_MUST_USE;

/* Calls fn(key, source_dn, payload) for every object of kind ("user", "group") in the
 * journal, whatever its status, in key order; source_dn may be NULL. fn returning non-zero
 * stops the listing and that value is returned. fn may write to the journal (rows it
 * changes may or may not show up later in the same listing). */
typedef int (*state_key_fn)(const char *key, const char *source_dn, void *payload);
int state_objects_each(struct state *s, const char *kind, state_key_fn fn, void *payload,
                       struct dm_err *err) DM_MUST_USE;

/* Records an error of run for one object (key/dn may be NULL). */
int state_error_add(struct state *s, long long run, const char *key, const char *dn,
                    const char *category, const char *message, struct dm_err *err) DM_MUST_USE;

/*
 * Leavers (agent/leavers.h). During a run every object read from the source (in scope and
 * active) is noted in a per-connection work table, never stored: state_seen_add(). After a
 * complete read, state_unseen() calls fn for each object of kind that dirmig wrote to the
 * target (status ok or failed, with a target reference) and that was not read: the
 * candidates for the leaver action. state_population() counts those written objects.
 */
typedef int (*state_object_fn)(const struct state_object *o, void *payload);
int state_seen_add(struct state *s, const char *kind, const char *key,
                   struct dm_err *err) DM_MUST_USE;
int state_unseen(struct state *s, const char *kind, int gone, state_object_fn fn, void *payload,
                 struct dm_err *err) DM_MUST_USE;
/* A delta read proves deletions one by one instead: state_gone_add() notes an object the
 * source reported deleted; state_unseen() with gone = 1 lists the written objects noted so. */
int state_gone_add(struct state *s, const char *kind, const char *key,
                   struct dm_err *err) DM_MUST_USE;
int state_population(long long *out, struct state *s, const char *kind,
                     struct dm_err *err) DM_MUST_USE;
/* Objects of kind that dirmig disabled (disabled_at) on or before `before` and that are
 * still in the source: read in this run (gone = 0, after a full read) or not reported
 * deleted (gone = 1, a delta read). The candidates of leavers.delete_after_days among the
 * users disabled in the source. fn as for state_unseen(). */
int state_disabled_due(struct state *s, const char *kind, long long before, int gone,
                       state_object_fn fn, void *payload, struct dm_err *err) DM_MUST_USE;

/*
 * What the journal says the target holds, per kind, as of the last write of each object
 * (`dirmig status`; nothing is contacted):
 *   at_target    objects dirmig manages that the target holds: created or linked by dirmig
 *                and not deleted by it (rows ok, left, or failed after an earlier write, with
 *                a target reference); a failed later write leaves the object there
 *   disabled     of those, disabled by dirmig (leavers, users disabled in the source); the
 *                rest are active
 *   linked       of those, objects that were at the target before and were linked by
 *                run.collision "link" (not created by dirmig)
 *   deleted      deleted at the target by dirmig (leavers); not in at_target
 *   failed       objects whose last write failed or was held back (open problems), at the
 *                target or not
 *   unconfirmed  creates that were sent but whose answer never came (the run was killed):
 *                the next run looks each up and adopts it or creates it
 */
struct state_kind_totals {
    long long at_target, disabled, linked, deleted, failed, unconfirmed;
};
struct state_totals {
    struct state_kind_totals users, groups;
    /* the same numbers under their older names: users_ok = users.at_target,
     * users_failed = users.failed (and so for groups) */
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

/* Adds delta to the integer meta value key (absent = 0). Inside a batch when called during
 * a run, so the counter commits with the objects it counts. */
int state_meta_add(struct state *s, const char *key, long long delta,
                   struct dm_err *err) DM_MUST_USE;

/* The users at the target (state_totals' at_target, linked users excepted) by the sign-in
 * path of their newest creation (user_creations below), and the hook's verifications. */
struct state_password_counts {
    long long imported;       /* created with their password hash imported (or carried) */
    long long hook_created;   /* created for the password-import hook */
    long long no_password;    /* created without a password */
    long long locked;         /* created with a lock marker: no password, never the hook */
    long long unknown;        /* created before the journal recorded how (schema 1) */
    long long verified_users; /* distinct users (DN, else login) verified at least once */
    long long verifications;  /* verified rows (a user may verify again) */
};
int state_password_counts(struct state_password_counts *out, struct state *s,
                          struct dm_err *err) DM_MUST_USE;

/* Users verified for the first time per UTC day, oldest first: fn("YYYY-MM-DD", n). */
int state_password_daily(struct state *s, state_count_fn fn, void *payload,
                         struct dm_err *err) DM_MUST_USE;

/*
 * How each user created at the target signs in there (the password-migration curve of
 * `dirmig report --html`). Recorded by the run in the batch that journals the object:
 *   STATE_SIGNIN_IMPORT  the user's password hash was imported (or carried byte-exact)
 *   STATE_SIGNIN_HOOK    created for the password-import hook (verified at first sign-in)
 *   STATE_SIGNIN_NONE    created without any password (no sign-in path yet)
 *   STATE_SIGNIN_LOCKED  its password was a lock marker or placeholder (schema/cred.h): created
 *                        without a usable one, and never for the hook
 */
#define STATE_SIGNIN_IMPORT "import"
#define STATE_SIGNIN_HOOK "hook"
#define STATE_SIGNIN_NONE "none"
#define STATE_SIGNIN_LOCKED "locked"
int state_user_created(struct state *s, long long run, const char *key, const char *signin,
                       struct dm_err *err) DM_MUST_USE;

/* One UTC day of the password-migration curve: users created with an imported hash, users
 * created for the hook, users verified through the hook for the first time. Each user
 * counts once per column, on the day of its first such event. */
struct state_signin_day {
    char day[11]; /* YYYY-MM-DD */
    long long imported, hook_created, verified;
};
typedef int (*state_signin_day_fn)(const struct state_signin_day *d, void *payload);
/* Calls fn for every day with an event, oldest first; fn returning non-zero stops. */
int state_signin_daily(struct state *s, state_signin_day_fn fn, void *payload,
                       struct dm_err *err) DM_MUST_USE;

/* ---- reading the journal for reports (agent/report_html.h) ---- */

/* Every run of the journal in one pass: how many of each kind and status, and the sum
 * of the counts of the runs that wrote (every kind but "plan"). */
struct state_run_summary {
    long long runs, plans;                  /* rows of kind != "plan", of kind "plan" */
    long long blocked, failed, interrupted; /* by status, all kinds */
    long long first_started, last_started;  /* unix seconds, 0 when no run */
    struct run_counts sum;                  /* runs that wrote (not plans) */
};
int state_run_summary(struct state_run_summary *out, struct state *s,
                      struct dm_err *err) DM_MUST_USE;

/* Runs whose status is not "done" (blocked, failed, interrupted, running), newest first,
 * at most limit; fn as for state_runs(). */
int state_runs_unfinished(struct state *s, int limit, state_run_fn fn, void *payload,
                          struct dm_err *err) DM_MUST_USE;

/* Runs per wave (runs with a wave only), by wave name. */
struct state_wave {
    const char *name; /* borrowed: valid during the callback */
    long long runs;   /* runs that wrote (not plans) */
    long long plans;
    struct run_counts sum; /* of the runs that wrote */
    long long last_run, last_started;
    const char *last_status; /* borrowed; status of the wave's newest run (any kind) */
};
typedef int (*state_wave_fn)(const struct state_wave *w, void *payload);
int state_waves(struct state *s, state_wave_fn fn, void *payload, struct dm_err *err) DM_MUST_USE;

/* Recorded errors by category, largest first: how many were recorded over all runs, how
 * many are still open (the object's newest run failed with it), the newest run. */
struct state_error_category {
    const char *category; /* borrowed: valid during the callback */
    long long total, open, last_run;
};
typedef int (*state_error_category_fn)(const struct state_error_category *c, void *payload);
int state_error_categories(struct state *s, state_error_category_fn fn, void *payload,
                           struct dm_err *err) DM_MUST_USE;

/* The newest `per_category` errors of each category, by category then newest first. The
 * strings are borrowed (valid during the callback); key, dn and message may be NULL.
 * They are as journaled: a report that shows them masks the identities itself. */
struct state_error_row {
    const char *category, *key, *dn, *message;
    long long run, at;
};
typedef int (*state_error_row_fn)(const struct state_error_row *r, void *payload);
int state_error_examples(struct state *s, int per_category, state_error_row_fn fn, void *payload,
                         struct dm_err *err) DM_MUST_USE;

/* An SQLite journal: the bound of its page cache in KiB, as the open journal holds it
 * (dirmig.json(5): 8 MiB per open journal, so memory stays flat however many objects it
 * holds). DM_EINVAL for another backend. */
int state_cache_kib(long long *out, struct state *s, struct dm_err *err) DM_MUST_USE;

/* meta key/value (small values only). state_meta_get: *out is a new string (free());
 * DM_ENOTFOUND when the key is absent. state_meta_set inserts or replaces (inside or outside a
 * batch). */
int state_meta_get(char **out, struct state *s, const char *key, struct dm_err *err) DM_MUST_USE;
int state_meta_set(struct state *s, const char *key, const char *value,
                   struct dm_err *err) DM_MUST_USE;

/* The agent daemon's schedule (agent/daemon.h), a JSON object written after every
 * scheduled run and at start/stop; `dirmig status` shows it. */
#define STATE_META_AGENT "agent"

/* ---- runs, objects: what rollback needs (agent/state_sqlite_undo.c) ---- */

/* The run id (DM_ENOTFOUND if none). */
int state_run_get(struct state_run *out, struct state *s, long long id,
                  struct dm_err *err) DM_MUST_USE;
/* The newest run of kind (DM_ENOTFOUND if none). */
int state_run_last(struct state_run *out, struct state *s, const char *kind,
                   struct dm_err *err) DM_MUST_USE;
/* Removes the journal row (kind, key): the object is no longer dirmig's (a create rolled
 * back). No-op when absent. */
int state_object_del(struct state *s, const char *kind, const char *key,
                     struct dm_err *err) DM_MUST_USE;

/*
 * A saved plan being applied (dirmig run --plan, agent/planfile.h): its changes sit in a
 * work table of this connection, never stored, so a plan of any size is looked up without
 * being held in memory. state_plan_add() answers DM_EEXISTS for a second change of the same
 * (kind, key); state_plan_use() marks a change as met by this run; state_plan_unused()
 * lists the changes the run never met, in the plan's order.
 */
/* 1 when this journal has the work table (state.type sqlite); on a PostgreSQL journal saved
 * plans are refused: every state_plan_* function fails with DM_ECONFIG saying so. */
int state_plans_supported(const struct state *s);
struct state_planned {
    char *kind, *key, *op, *target, *source_digest, *target_digest;
    long line;
};
void state_planned_clear(struct state_planned *p); /* frees the strings, not p */
int state_plan_add(struct state *s, const struct state_planned *p, struct dm_err *err) DM_MUST_USE;
int state_plan_get(struct state_planned *out, struct state *s, const char *kind, const char *key,
                   struct dm_err *err) DM_MUST_USE;
int state_plan_use(struct state *s, const char *kind, const char *key,
                   struct dm_err *err) DM_MUST_USE;
typedef int (*state_planned_fn)(const struct state_planned *p, void *payload);
int state_plan_unused(struct state *s, state_planned_fn fn, void *payload,
                      struct dm_err *err) DM_MUST_USE;

/*
 * The undo store (dirmig rollback, agent/undo.h): what undoes each change a run applied,
 * in a second SQLite file beside the journal, PATH.undo (mode 0600, its -wal and -shm too).
 * It holds the prior values of the attributes a change wrote and, before a delete, the
 * whole entry with its credentials: that is why it is not the journal, and why nothing in
 * it is ever shown by status, report or a log. Opened on demand by state_undo_open() (run
 * and rollback only); written inside the batch that journals the changes it undoes.
 */
struct state_undo {
    long long id;                /* order of application (set by the store) */
    long long run;               /* the run that applied the change */
    const char *kind;            /* user, group, container */
    const char *key;             /* the journal's key */
    const char *op;              /* created, modified, moved, disabled, deleted */
    const char *ref;             /* the object's reference at the target after the change ("" when
                                  * deleted) */
    const char *ref_before;      /* its reference before the change (a move, a delete), or NULL */
    const char *source_dn;       /* normalized source DN, or NULL */
    const char *wave;            /* the run's --wave, or NULL */
    const char *names;           /* the attribute names the change touched, comma-separated */
    const unsigned char *before; /* the before image (agent/undo.h), secret; NULL = none */
    size_t before_len;
    const char *after_digest; /* digest of the touched attributes after the change */
    const char *row_before;   /* the journal row before the change (JSON), NULL = none */
    long long undone_by;      /* the rollback run that reversed it, 0 = not reversed */
};
/* 1 when this journal keeps an undo store (state.type sqlite); a PostgreSQL journal keeps
 * none: its runs are not recorded for rollback, and every state_undo_* function but
 * state_undo_path() fails with DM_ECONFIG saying so. */
int state_undo_supported(const struct state *s);
/* Attaches the undo store (created 0600 when missing). Outside a batch. */
int state_undo_open(struct state *s, struct dm_err *err) DM_MUST_USE;
/* Path of the undo store of this journal (borrowed; NULL when it keeps none). */
const char *state_undo_path(const struct state *s);
int state_undo_put(struct state *s, const struct state_undo *u, struct dm_err *err) DM_MUST_USE;
/* Calls fn for up to limit records of run not reversed yet whose id is below below_id (0:
 * no bound), newest first; the record's strings are borrowed during fn. */
typedef int (*state_undo_fn)(const struct state_undo *u, void *payload);
int state_undo_list(struct state *s, long long run, long long below_id, int limit, state_undo_fn fn,
                    void *payload, struct dm_err *err) DM_MUST_USE;
/* Records that rollback run by_run reversed record id. */
int state_undo_mark(struct state *s, long long id, long long by_run,
                    struct dm_err *err) DM_MUST_USE;
/* Counts the records of run: all of them, and those reversed already. */
int state_undo_count(long long *total, long long *undone, struct state *s, long long run,
                     struct dm_err *err) DM_MUST_USE;

#endif
