/*
 * pipeline.h: the one code path behind plan, run and validate (DESIGN "Data flow").
 *
 *   source read (paged, streaming) -> scope -> map -> constraints -> target identity ->
 *   source collisions -> members -> containers -> digest, journal row -> batch ->
 *   the target as it is -> planner -> [plan: count and sample]  [run: intents, apply, journal]
 *
 * Users first, then groups; a group is written after the groups it contains (it waits for a
 * later pass until they exist; a cycle is written in a last pass). Group members resolve
 * through the journal (source DN -> the target reference of a migrated object); a member
 * that was not migrated is reported and left out, never silently dropped.
 *
 * Every decision comes from the planner (agent/planner.h) over three inputs: the mapped
 * source, the journal and the target as it is (agent/tview.h). The journal is a cache: an
 * object whose mapped content equals the journal's is not looked at in a run without target
 * verification (run.verify_target); with it, the target is read beside the source and drift
 * is repaired. Creates are recorded as intents before they are sent, so a run resumed after
 * a crash looks them up instead of creating twice. Source objects that share a target
 * identity (or a unique attribute) are held back, both of them; an object already at the
 * target that dirmig did not create is handled by run.collision. Memory is bounded by the
 * batch size (plus the largest group, the census of identities and the target read-ahead).
 */
#ifndef DM_PIPELINE_H
#define DM_PIPELINE_H

#include "agent/config.h"
#include "connectors/connector.h"
#include "agent/util/err.h"

enum pipeline_mode { PIPE_PLAN = 0, PIPE_RUN = 1, PIPE_VALIDATE = 2 };

struct pipeline_opts {
    enum pipeline_mode mode;
    long long limit;         /* stop after this many source entries (0 = all) */
    int samples;             /* plan: how many sample changes to keep */
    int progress;            /* 1 = draw a progress line on stderr (a terminal) */
    int progress_json;       /* 1 = progress as JSON lines on stderr (agent/progress.h); the
                              * log lines of run.progress_interval_s come either way */
    const char *wave;        /* only this wave's users (and groups if the wave says so) */
    const char *retry_from;  /* only the entries listed as problems in this export file */
    const char *out_prefix;  /* validate: export to PREFIX.csv and PREFIX.jsonl */
    const char *run_kind;    /* journal kind of the run; NULL = "plan"/"run"/"validate" */
    int embedded;            /* 1 = the caller owns SIGINT/SIGTERM and stops the run with
                              * pipeline_request_stop(); the stop flag is not cleared and no
                              * signal handler is installed (dirmig agent) */
    int verify_target;       /* 1 = read the target this run whatever run.verify_target says */
    long long allow_deletes; /* --allow-deletes N: approve up to N disables and deletes (and a
                              * failed soft gate) in this run; -1 = none */
    int rebind_state;        /* 1 = the journal may belong to another target: rebind it */
    const char *plan_out;    /* plan: write every change to this saved-plan file */
    const char *plan_in;     /* run: apply exactly the changes of this saved plan */
    long long max_age;       /* run --plan: refuse a plan older than this (seconds; 0 = any) */
};

/* Per kind: plan fills create/update/unchanged; run fills created/updated/unchanged/failed
 * (create == created etc. share the fields). */
struct kind_counts {
    long long seen, created, updated, unchanged, failed;
    long long skipped;  /* outside the wave, or not in the retry list */
    long long inactive; /* left out by dated activity (expired, not yet active, bad date) */
    long long held;     /* not written: a collision, or every member left out */
};

#define PIPE_MAX_CATS 32
#define PIPE_MAX_SAMPLES 100

struct pipe_count {
    const char *name; /* static string */
    long long n;
};

/* Users per (password scheme, outcome) for a target that takes credentials from dirmig
 * (CONN_HASH_IMPORT, with its own table of outcomes):
 * outcome "import" (hash imported), "hook" (password-import hook) or "error" (malformed). */
struct pipe_cred {
    const char *scheme;  /* static cred_scheme() name, "NONE" */
    const char *outcome; /* static */
    long long n;
};

struct pipe_sample {
    char action[8];     /* create / update / move / hold */
    const char *reason; /* static PLAN_R_* name */
    char *dn;
    char *attrs; /* comma-separated attribute names (never values) */
};

/* run --plan: a planned change that was not made (the first PIPE_MAX_SAMPLES are kept). */
struct pipe_refusal {
    char op[8];
    const char *kind; /* static */
    char *dn;
    char why[200];
};

/* validate: problems per (category, attribute) and the first examples of each category. */
#define PIPE_MAX_ATTRCATS 128
#define PIPE_MAX_EXAMPLES 256
struct pipe_attr_count {
    const char *cat;
    char attr[64];
    long long n;
};
struct pipe_example {
    const char *cat;
    char *key;
    char *dn;
    char msg[256];
};

struct pipeline_stats {
    long long run_id;
    const char *status; /* "done", "failed", "interrupted", "blocked" or "refused" (a saved
                         * plan that does not fit: too old, another target or
                         * configuration) (static) */
    int interrupted;    /* stopped by a signal or --limit */
    struct kind_counts users, groups, containers;
    size_t nreasons;
    struct pipe_count reasons[PIPE_MAX_CATS]; /* changes by PLAN_R_* reason */
    int verified;                             /* the target was read (or looked up) */
    long long target_read, target_lookups;    /* objects read from / looked up at the target */
    int group_passes;
    /* leavers and accounts only the target has (agent/leavers.c) */
    char blocked[512]; /* why no disable or delete was made ("" = not blocked) */
    long long leavers_disabled, leavers_deleted, leavers_reported, leavers_failed;
    long long unmatched_found, unmatched_changed;
    long long would_change; /* disables and deletes the run counted (made or not) */
    long long unresolved_members;
    long long state_not_carried; /* users disabled in the source, written enabled: the target
                                  * cannot disable accounts (target.disable not set) */
    long long source_deleted;    /* delta run: objects deleted in the source (reported only) */
    const char *source_read[2];  /* source.delta: how the users and the groups were read,
                                  * "delta" (changes only) or "full"; NULL otherwise */
    size_t nschemes, ncats;
    struct pipe_count schemes[PIPE_MAX_CATS]; /* userPassword schemes seen */
    struct pipe_count cats[PIPE_MAX_CATS];    /* error categories */
    /* targets that take credentials from dirmig (CONN_HASH_IMPORT) */
    int cred_outcomes;
    size_t ncreds;
    struct pipe_cred creds[PIPE_MAX_CATS];
    long long created_with_hook; /* run: users created with the password-import hook */
    long long lazy_users;        /* users left to the target's lazy migration (CONN_LAZY_CREATE) */
    int have_target_stats;
    struct conn_stats target_stats; /* requests, retries, 429s... of the target */
    size_t nsamples;
    struct pipe_sample samples[PIPE_MAX_SAMPLES];
    /* validate */
    long long rows, rows_with_problems, blocking;
    size_t nattrcats, nexamples;
    struct pipe_attr_count attrcats[PIPE_MAX_ATTRCATS];
    struct pipe_example examples[PIPE_MAX_EXAMPLES];
    char *export_csv, *export_jsonl;
    /* saved plans (agent/planfile.h) */
    const char *plan_file;                /* the saved plan written or applied */
    char plan_id[33];                     /* its id */
    long long plan_changes;               /* plan --out: changes written */
    long long plan_applied, plan_refused; /* run --plan: changes made, refused */
    long long plan_outside;               /* run --plan: objects not in the plan */
    char refused_why[512];                /* run --plan: why the whole plan was
                                           * refused (status "refused") */
    size_t nrefusals;
    struct pipe_refusal refusals[PIPE_MAX_SAMPLES];
    long long irreversible; /* deletes the target cannot give back (rollback) */
    int cantcreat;          /* plan --out: the file could not be created (exit 73) */
};

/* Runs the pipeline. Connection or journal failures return their rc with err filled
 * (before any write when the failure is at open/bind). Per-entry failures are counted in
 * stats, recorded in the journal and logged, and do not fail the call. Free the stats'
 * samples with pipeline_stats_free(). */
int pipeline_execute(struct pipeline_stats *stats, const struct dm_config *cfg,
                     const struct pipeline_opts *o, struct dm_err *err) DM_MUST_USE;
void pipeline_stats_free(struct pipeline_stats *stats);

/* The target's identity as the journal keeps it and a saved plan names it: connector type
 * and URI, and for a DN target the base and the base entry's entryUUID (a server rebuilt or
 * another server behind the same name is another target). c is an open connection of ops
 * to cfg's target. *out is a new string. DM_ENOTFOUND when the base does not exist. */
int pipeline_target_identity(char **out, const struct dm_config *cfg, const struct conn_ops *ops,
                             struct conn *c, struct dm_err *err) DM_MUST_USE;

/* Asks a running pipeline to stop after the current batch (async-signal-safe). */
void pipeline_request_stop(void);

#endif
