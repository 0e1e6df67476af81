/*
 * planner.h: the heart of plan and run (DESIGN "The planner is the heart").
 *
 * For each object of the mapped source the planner decides one change from three inputs:
 * what the map produces (the wanted entry), what the journal remembers writing (its row),
 * and what the target holds now (a projection from agent/tview.h, or "absent"). The
 * decision carries an operation, a reason, the names of the attributes that differ (never
 * their values) and, for an update, the entry that says exactly what to write:
 *
 *   absent at the target          create   "new in the source", or "missing at the target"
 *                                          when the journal had written it
 *   ours (journal) and different  update   "drifted at the target" when the source did not
 *                                          change since the journal's write, else "changed in
 *                                          the source" (groups: "member added/removed")
 *   ours, at another DN           move     "moved in the source" (DN-addressed targets)
 *   there, not ours               collision policy: skip (held), link (only when a
 *                                          correlation rule of the map matches), suffix
 *   ours and equal                none     (unchanged)
 *
 * What is compared follows the map's attribute ownership (schema/map.h): authoritative
 * attributes are made equal (including deletion of an attribute the map names or dirmig
 * wrote before, when the source no longer has it), merge attributes only get their missing
 * values, create-only attributes are never compared or rewritten, and target attributes the
 * map does not name are never touched.
 *
 * Call order: planner_decide() per object (any order), plan_obj_clear() after use. The
 * planner never talks to a server or the journal: the pipeline gathers its inputs.
 */
#ifndef DM_PLANNER_H
#define DM_PLANNER_H

#include "agent/projection.h"
#include "agent/state.h"
#include "agent/util/err.h"
#include "schema/map.h"

enum plan_op {
    PLAN_NONE = 0, /* unchanged */
    PLAN_CREATE,
    PLAN_UPDATE,
    PLAN_MOVE, /* DN-addressed targets: rename to want's DN, then update */
    PLAN_HOLD, /* not written; category and msg say why */
};

/* What to do with an object that is already at the target and that dirmig did not create. */
enum plan_collision { PLAN_COLLIDE_SKIP = 0, PLAN_COLLIDE_LINK, PLAN_COLLIDE_SUFFIX };

/* Reasons, as stable names (JSON, journal) with a human text (planner_reason_text()). */
#define PLAN_R_NEW "new"
#define PLAN_R_CHANGED "changed"
#define PLAN_R_DRIFT "drift"
#define PLAN_R_MISSING "missing"
#define PLAN_R_MEMBER_ADDED "member_added"
#define PLAN_R_MEMBER_REMOVED "member_removed"
#define PLAN_R_MOVED "moved"
#define PLAN_R_LINKED "linked"
#define PLAN_R_SUFFIXED "suffixed"
#define PLAN_R_COLLISION_SOURCE "collision_source"
#define PLAN_R_COLLISION_TARGET "collision_target"
#define PLAN_R_MEMBERS_LEFT_OUT "members_left_out"
#define PLAN_R_CONTAINER "container"
#define PLAN_R_UNCHANGED "unchanged"
#define PLAN_R_DISABLED "disabled"     /* disabled in the source */
#define PLAN_R_ENABLED "enabled"       /* enabled in the source again */
#define PLAN_R_LEAVER "leaver"         /* no longer in a complete source read */
#define PLAN_R_UNMATCHED "unmatched"   /* only the target has it */
#define PLAN_R_PLAN_STALE "plan_stale" /* run --plan: not as the saved plan found it */

/* "drifted at the target" for PLAN_R_DRIFT, ...; the name itself when unknown. Static. */
const char *planner_reason_text(const char *reason);

/* Settings of a run (borrowed; outlive the calls). */
struct planner_ctx {
    const struct map *map;
    const struct proj_rules *rules;
    enum plan_collision collision;
    const char *suffix; /* PLAN_COLLIDE_SUFFIX: appended to the name (before an '@') */
    int dn_targets;     /* 1: the target addresses objects by DN */
    size_t ncorr;       /* correlation rules: source attribute -> target attribute */
    const char *const *corr_src;
    const char *const *corr_tgt;
};

struct plan_obj {
    /* inputs (borrowed) */
    enum map_kind kind;
    const struct entry *want;       /* mapped; dn = the natural identity (DN or login/name) */
    const struct entry *corr;       /* the source values of the correlation attributes */
    const struct state_object *rec; /* the journal's row, or NULL */
    const char *digest;             /* digest of what want asks the target to hold */
    const struct proj *have;        /* the target now, or NULL when absent */
    int by_ref;                     /* have was looked up by the journal's reference */
    int want_disabled;              /* the account state the source asks for: 1 disabled,
                                     * 0 enabled, -1 the source does not say (left alone) */
    /* outputs (planner_decide) */
    enum plan_op op;
    const char *reason;       /* static PLAN_R_* */
    struct entry *mod;        /* UPDATE/MOVE/NONE of an existing object: what to make equal
                               * (entry_diff's `want`): want's attributes without the create-only
                               * ones, plus an empty attribute for each one to delete */
    char *attrs;              /* names that differ, comma-separated; NULL when none */
    long long added, removed; /* values of member-like attributes added / removed */
    int adopt;                /* CREATE: an existing object is ours (a pending create) */
    int linked;               /* the object becomes ours by the collision policy "link" */
    int suffix;               /* CREATE under the suffixed name (PLAN_COLLIDE_SUFFIX) */
    int state;                /* CHANGE_STATE_KEEP / _ENABLE / _DISABLE (connector.h) */
    char msg[256];            /* HOLD: why (no values) */
};

/* Decides o's change. DM_OK or DM_ENOMEM. */
int planner_decide(struct plan_obj *o, const struct planner_ctx *c, struct dm_err *err) DM_MUST_USE;

/* Frees the outputs (mod, attrs); the inputs are the caller's. */
void plan_obj_clear(struct plan_obj *o);

/* The suffixed form of name: before the first '@' when there is one (logins), else at the
 * end; for a DN, the value of the first RDN. Returns a new string or NULL (ENOMEM, bad DN). */
char *planner_suffixed(const char *name, const char *suffix, int is_dn);

/* The attribute names dirmig owns after writing want (authoritative and merge attributes
 * with values), lowercase and comma-separated, for the journal. New string, or NULL. */
char *planner_written(const struct entry *want, const struct map *m, enum map_kind kind);

#endif
