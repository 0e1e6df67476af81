/*
 * pipe_priv.h: the pipeline's own state, shared by the files that make up the pipeline and
 * by nothing else (agent/pipeline.h is the public contract).
 *
 *   agent/pipeline.c  pipeline_execute(): opens both ends and the journal, checks that the
 *                     journal belongs to this target, runs the census, the user pass and
 *                     the group passes, ends the run with its real status
 *   agent/stage.c     one source entry through the stages: scope (wave, retry list, dated
 *                     activity), map, constraints, target identity, source collisions,
 *                     DN-valued attributes and members, containers, digest, journal row
 *   agent/flush.c     one batch: the target as it is (agent/tview.h), the planner's
 *                     decisions (agent/planner.h), intents, apply, journal, counts
 *   agent/vpass.c     dirmig validate: the same read and map, checks and the export
 *
 * Threads: the source is read on a reader thread (agent/reader.h) and the target on the
 * target view's thread; everything in struct pipe belongs to the calling thread.
 */
#ifndef DM_PIPE_PRIV_H
#define DM_PIPE_PRIV_H

#include "agent/activity.h"
#include "agent/delta.h"
#include "agent/export.h"
#include "agent/pipeline.h"
#include "agent/planfile.h"
#include "agent/planner.h"
#include "agent/progress.h"
#include "agent/projection.h"
#include "agent/state.h"
#include "agent/tview.h"
#include "agent/undo.h"
#include "schema/map.h"

/* Returned by the read callback to stop the read early (not an enum dm_rc). */
#define PIPE_STOP 1000

/* What the progress reporter counts (pipe_progress()). */
enum pipe_phase {
    PIPE_PH_NONE = 0,
    PIPE_PH_SCAN,   /* a read that only looks (census, validate's uniqueness count) */
    PIPE_PH_ENTRY,  /* users or groups: entries read and written, or decided */
    PIPE_PH_LEAVERS /* leaver changes made (or failed) */
};

/* One object waiting in the current batch. */
struct pobj {
    enum map_kind kind;
    int container;      /* a container (OU) created for the entries below it */
    struct entry *want; /* mapped target entry, dn = natural identity; owned */
    struct entry *corr; /* the source's correlation values (collision "link"); owned */
    char *key;          /* correlation key, owned */
    char *source_dn;    /* normalized source DN, owned */
    char digest[65];    /* what want asks the target to hold (create-only excluded) */
    struct state_object rec;
    int has_rec;
    int look;          /* the target must be looked at (else unchanged per the journal) */
    int by_ref;        /* look it up by the journal's reference */
    unsigned char *pw; /* CONN_HASH_IMPORT targets, users to create: userPassword (secret) */
    size_t pwlen;
    int hook_planned;     /* keyed targets, users: the password goes to the hook (stage_creds) */
    int failed;           /* failed before reaching the target */
    struct dm_err err;    /* why, when failed */
    const char *category; /* static */
    const char *held;     /* held back before planning: a PLAN_R_* reason, msg in err */
    int members_left_out; /* groups: every member value was left out */
    int want_disabled;    /* users: the account state the source asks for (planner.h) */
    struct proj *have;    /* the target as it is (flush) */
    int have_rc;
    struct plan_obj plan;
    const char **merge; /* NULL-terminated merge attributes of plan.mod; owned array */
    /* saved plans (agent/saved.c) */
    char src_digest[65]; /* digest of the source entry as read ("" when not computed) */
    int planned;         /* run --plan: the plan has a change for this object */
    char plan_op[8];     /* ... its operation and digests */
    char plan_sdig[65], plan_tdig[65];
    long plan_line;
};

struct pipe {
    const struct dm_config *cfg;
    const struct pipeline_opts *o;
    struct pipeline_stats *st;
    struct state *state;
    const struct conn_ops *sops, *tops;
    struct conn *src, *dst;
    struct conn *src2; /* second source connection for look-ups during a read (lazy) */
    int verify;        /* this run reads the target to compare (run.verify_target) */
    struct tview *tv;
    struct proj_rules rules;
    struct planner_ctx pctx;
    const char *corr_src[1 + MAP_MAX_FALLBACK], *corr_tgt[2 + MAP_MAX_FALLBACK];
    enum map_kind kind;
    const char *kind_name; /* "user" / "group" */
    struct kind_counts *kc;
    int pass;        /* 1, then 2.. for groups whose member groups came later */
    int cycle_break; /* groups: write what is left even if member groups are missing */
    long long pass_deferred, pass_written, pass_nested;
    long long processed; /* entries read, all kinds */
    struct pobj *batch;
    size_t nbatch, cap;
    struct change *changes;
    struct apply_result *results;
    int fatal_rc;
    struct dm_err fatal_err;
    /* progress (agent/progress.h): the phase, and what its done count is made of */
    struct progress *prog;    /* NULL when no progress output is wanted */
    enum pipe_phase phase;    /* what pipe_progress() counts */
    long long prog_read;      /* entries of this pass read (groups: not handled before) */
    long long prog_base;      /* entries of the phase done in earlier passes */
    long long queued;         /* source entries waiting in the batch */
    long long census_read[2]; /* entries the census read per kind (-1: no census) */
    /* scope */
    const char *users_base;
    char *users_filter;
    char **wave_members; /* sorted normalized member DNs of a group wave, or NULL */
    size_t nwave_members;
    int wave_groups;
    struct retry_set *retry;
    int64_t now;
    struct activity_rule act;
    /* validate */
    int vphase; /* 1: count unique values, 2: check and export */
    struct uniq *uniq;
    struct export *exp;
    /* identities shared by several source objects (agent/stage.c) */
    struct uniq *census;
    int census_phase;
    const char *census_attrs[16];
    size_t ncensus;
    /* groups (DN targets): normalized DNs of every group in scope, sorted */
    char **gset;
    size_t ngset;
    char **handled; /* keys of groups handled in this run (pass > 1), sorted insert */
    size_t nhandled, caphandled;
    /* containers (DN targets): normalized DNs known to exist, or known missing */
    char **cont_ok, **cont_missing;
    size_t ncont_ok, ncont_missing;
    struct delta *delta;
    /* leavers (agent/leavers.c) */
    int full_scope;          /* no wave, retry list or limit: a complete read proves absence */
    int read_ok[2];          /* the kind's source read completed (no error, nothing skipped) */
    char read_why[2][300];   /* why not */
    long long read_count[2]; /* objects read in scope and active, per kind */
    int hard_blocked;        /* a gate that nothing overrides failed */
    int source_failed;       /* a source read failed: no further pass, no leaver change */
    int delta_gone[2];       /* users, groups read as a delta (source.delta): their leavers
                              * are the deletions the source reported (agent/delta.h) */
    long long allow_deletes; /* --allow-deletes N, -1 when not given */
    /* saved plans (agent/saved.c) */
    const char *wave;          /* --wave, or the saved plan's wave */
    char *target_ident;        /* the target's identity (bind_journal) */
    int digests;               /* compute source and target digests (plan --out, run --plan) */
    struct planfile *plan_out; /* plan --out: the file being written */
    int saved;                 /* run --plan: a saved plan is loaded */
    struct planfile_header saved_hdr;
    int undo; /* run: record what undoes each change (agent/undo.h; the target has CONN_UNDO) */
};

/* stage.c */
int pipe_on_entry(const struct entry *src, void *payload);
void pipe_pobj_clear(struct pobj *q);
int pipe_strp_cmp(const void *a, const void *b);
void pipe_count_add(struct pipe_count *arr, size_t *n, const char *name, long long k);
size_t pipe_name_uid_split(const char *v, size_t len);
int pipe_census_entry(struct pipe *p, const struct entry *src);
int pipe_handled_has(const struct pipe *p, const char *key);
int pipe_handled_add(struct pipe *p, const char *key);
/* Renames q's wanted object with run.collision_suffix: its natural key (CONN_IDENT_KEY) or
 * first RDN (DN targets), and the attribute that holds that value. */
int pipe_apply_suffix(struct pipe *p, struct pobj *q, struct dm_err *err);

/* An organizationalUnit entry for the container tdn that the source does not have
 * (target.disable.container); DM_ENOTFOUND (err says why) when its RDN is not ou=. New
 * entry, caller frees. */
int pipe_container_synth(struct entry **out, const char *tdn, struct dm_err *err);

/* pipeline.c: progress. pipe_phase() ends the open phase and starts `name` (a static token)
 * with total items (-1 = unknown); pipe_progress() publishes the phase's done count (cheap:
 * per entry); pipe_progress_detail() the kind's counts (per batch). */
void pipe_phase(struct pipe *p, enum pipe_phase ph, const char *name, long long total);
void pipe_phase_end(struct pipe *p);
void pipe_progress(struct pipe *p);
void pipe_progress_detail(struct pipe *p);

/* flush.c */
int pipe_flush(struct pipe *p, struct dm_err *err);
int pipe_note_failure(struct pipe *p, const char *key, const char *dn, const char *category,
                      const struct dm_err *e, struct dm_err *err);

/* leavers.c */
/* 1 when the target can disable an account (an Okta-style target's lifecycle, or an LDAP
 * target with target.disable.attribute). */
int pipe_can_disable(const struct pipe *p);
int pipe_seen(struct pipe *p, const struct pobj *q);
int pipe_leavers(struct pipe *p, struct dm_err *err);
int pipe_leavers_done(struct pipe *p, struct dm_err *err);
void pipe_blocked(struct pipe *p, const char *fmt, ...) DM_PRINTF(2, 3);

/* saved.c: saved plans (plan --out, run --plan) */
/* run --plan, before the run: reads the plan (its header checked against this configuration
 * and target, and --max-age) and loads its changes; the plan's wave and scope become the
 * run's. A plan that does not fit sets st->refused_why and returns DM_OK. */
int pipe_saved_begin(struct pipe *p, struct dm_err *err);
/* plan --out: opens the file (once the run is journaled: the file names the plan's run). */
int pipe_saved_create(struct pipe *p, struct dm_err *err);
/* stage: run --plan: 1 when the plan has a change for q (q->planned filled), 0 when not
 * (q is left out of the run); -1 on a journal error (p->fatal_rc). */
int pipe_saved_stage(struct pipe *p, struct pobj *q);
/* flush, plan --out: the batch's changes into the file. */
int pipe_saved_write(struct pipe *p, struct dm_err *err);
/* flush, run --plan: every change that differs from the plan is held back (plan_stale). */
int pipe_saved_check(struct pipe *p, struct dm_err *err);
/* leavers (o the journal row, op the change): plan --out writes it (record = 1); run --plan
 * answers 1 when the plan has that very change and the object is as planned, else 0
 * (refused or not in the plan). Negative on an error (err). */
int pipe_saved_leaver(struct pipe *p, const struct state_object *o, enum change_op op, int record,
                      struct dm_err *err);
/* accounts only the target has (e as read): as pipe_saved_leaver(). */
int pipe_saved_unmatched(struct pipe *p, const struct entry *e, enum change_op op, int record,
                         struct dm_err *err);
/* After the run: plan --out commits the file (ok) or removes it; run --plan lists the
 * planned changes the run never met as refused. */
int pipe_saved_end(struct pipe *p, int ok, struct dm_err *err);
void pipe_saved_free(struct pipe *p);

/* vpass.c */
int pipe_validate_entry(struct pipe *p, const struct entry *src, struct pobj *q);

#endif
