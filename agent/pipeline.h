/*
 * pipeline.h: the one code path behind plan and run (DESIGN "Data flow").
 *
 *   source read (paged, streaming) -> map -> DN rebase + member resolution -> digest vs
 *   journal -> batch -> [plan: compare with the target]  [run: apply to the target, journal]
 *
 * Users first, then groups. Group members resolve through the journal (source DN -> the
 * target DN of a migrated object); a member that was not migrated is reported and left
 * out, never silently dropped. Groups that name groups not yet created are revisited in a
 * second pass once every group exists (nested groups). One journal transaction per batch.
 *
 * A run is idempotent: an object whose mapped digest equals the journal's is unchanged
 * without touching the target; anything else goes to the target connector, whose
 * add-or-compare makes replays after a crash safe. Memory is bounded by the batch size
 * (plus the largest group): nothing holds the whole directory.
 */
#ifndef DM_PIPELINE_H
#define DM_PIPELINE_H

#include "agent/config.h"
#include "connectors/connector.h"
#include "agent/util/err.h"

enum pipeline_mode { PIPE_PLAN = 0, PIPE_RUN = 1, PIPE_VALIDATE = 2 };

struct pipeline_opts {
    enum pipeline_mode mode;
    long long limit;        /* stop after this many source entries (0 = all) */
    int samples;            /* plan: how many sample changes to keep */
    int progress;           /* 1 = draw a progress line on stderr */
    const char *wave;       /* only this wave's users (and groups if the wave says so) */
    const char *retry_from; /* only the entries listed as problems in this export file */
    const char *out_prefix; /* validate: export to PREFIX.csv and PREFIX.jsonl */
    const char *run_kind;   /* journal kind of the run; NULL = "plan"/"run"/"validate" */
    int embedded;           /* 1 = the caller owns SIGINT/SIGTERM and stops the run with
                             * pipeline_request_stop(); the stop flag is not cleared and no
                             * signal handler is installed (dirmig agent) */
};

/* Per kind: plan fills create/update/unchanged; run fills created/updated/unchanged/failed
 * (create == created etc. share the fields). */
struct kind_counts {
    long long seen, created, updated, unchanged, failed;
    long long skipped; /* inactive, outside the wave, or not in the retry list */
};

#define PIPE_MAX_CATS 32
#define PIPE_MAX_SAMPLES 100

struct pipe_count {
    const char *name; /* static string */
    long long n;
};

/* Users per (password scheme, outcome) for a target that takes credentials (Okta):
 * outcome "import" (hash imported), "hook" (password-import hook) or "error" (malformed). */
struct pipe_cred {
    const char *scheme;  /* static cred_scheme() name, "NONE" */
    const char *outcome; /* static */
    long long n;
};

struct pipe_sample {
    char action[8]; /* create / update */
    char *dn;
    char *attrs; /* comma-separated attribute names (never values) */
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
    int interrupted; /* stopped by a signal or --limit */
    struct kind_counts users, groups;
    long long unresolved_members;
    long long source_deleted; /* delta run: objects deleted in the source (reported only) */
    size_t nschemes, ncats;
    struct pipe_count schemes[PIPE_MAX_CATS]; /* userPassword schemes seen */
    struct pipe_count cats[PIPE_MAX_CATS];    /* error categories */
    /* targets addressed by id (CONN_KEYED, e.g. okta) */
    int keyed;
    size_t ncreds;
    struct pipe_cred creds[PIPE_MAX_CATS];
    long long created_with_hook; /* run: users created with the password-import hook */
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
};

/* Runs the pipeline. Connection or journal failures return their rc with err filled
 * (before any write when the failure is at open/bind). Per-entry failures are counted in
 * stats, recorded in the journal and logged, and do not fail the call. Free the stats'
 * samples with pipeline_stats_free(). */
int pipeline_execute(struct pipeline_stats *stats, const struct dm_config *cfg,
                     const struct pipeline_opts *o, struct dm_err *err) DM_MUST_USE;
void pipeline_stats_free(struct pipeline_stats *stats);

/* Asks a running pipeline to stop after the current batch (async-signal-safe). */
void pipeline_request_stop(void);

#endif
