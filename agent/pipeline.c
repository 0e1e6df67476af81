/*
 * pipeline.c: pipeline_execute() (agent/pipeline.h), the order of a run: connect both ends
 * and the journal, refuse a journal that belongs to another target, count the identities
 * of the source (collisions), start the view of the target, read users, then groups in as
 * many passes as nesting needs, and end the run with the status it really had. The stages
 * of one entry are in agent/stage.c, the batch in agent/flush.c.
 */
#include <config.h>
#include "agent/pipe_priv.h"
#include "agent/reader.h"
#include "agent/util/log.h"
#include "schema/dn.h"
#include "schema/validate.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The target read may run this many objects ahead of the source (agent/tview.h). */
#define PIPE_TARGET_AHEAD 50000
/* Room in a batch for the containers queued before its last object. */
#define PIPE_CONTAINER_ROOM 64

volatile sig_atomic_t pipe_stop_flag;

void pipeline_request_stop(void)
{
    pipe_stop_flag = 1;
}

static void on_signal(int sig)
{
    (void)sig;
    pipe_stop_flag = 1;
}

static double now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The reader's callback: pipe_on_entry, whose non-zero "stop" becomes READER_STOP. */
static int on_entry_cb(const struct entry *e, void *payload)
{
    return pipe_on_entry(e, payload) != 0 ? READER_STOP : 0;
}

static void scope_of(const struct pipe *p, enum map_kind kind, struct scope *sc)
{
    const struct config_endpoint *s = &p->cfg->source;

    memset(sc, 0, sizeof(*sc));
    sc->base = kind == MAP_USERS ? p->users_base : s->groups_base;
    sc->filter = kind == MAP_USERS ? p->users_filter : s->groups_filter;
    sc->key_attr = map_key_attr(p->cfg->map);
    sc->since = delta_since(p->delta, kind);
    sc->delta = p->delta != NULL;
}

static void set_kind(struct pipe *p, enum map_kind kind)
{
    p->kind = kind;
    p->kind_name = kind == MAP_USERS ? "user" : "group";
    p->kc = kind == MAP_USERS ? &p->st->users : &p->st->groups;
}

/* ---- progress (agent/progress.h) ---- */

void pipe_progress(struct pipe *p)
{
    const struct pipeline_stats *st = p->st;
    long long done;

    if (p->prog == NULL) {
        return;
    }
    switch (p->phase) {
    case PIPE_PH_SCAN:
        done = p->prog_base + p->prog_read;
        break;
    case PIPE_PH_ENTRY:
        /* read, and not waiting in the batch nor deferred to a later pass of groups */
        done = p->prog_base + p->prog_read - p->pass_deferred - p->queued;
        break;
    case PIPE_PH_LEAVERS:
        done =
            st->leavers_disabled + st->leavers_deleted + st->leavers_failed + st->unmatched_changed;
        break;
    default:
        return;
    }
    progress_done(p->prog, done);
}

void pipe_progress_detail(struct pipe *p)
{
    const struct kind_counts *k = p->kc;
    char text[160];

    if (p->prog == NULL || p->phase != PIPE_PH_ENTRY || k == NULL) {
        return;
    }
    if (p->o->mode == PIPE_VALIDATE) {
        snprintf(text, sizeof(text), "%lld with problems", p->st->rows_with_problems);
    } else {
        int plan = p->o->mode == PIPE_PLAN;
        snprintf(text, sizeof(text), "%s %lld, %s %lld, unchanged %lld, %s %lld",
                 plan ? "to create" : "created", k->created, plan ? "to update" : "updated",
                 k->updated, k->unchanged, plan ? "failing" : "failed", k->failed);
        if (k->held > 0) {
            size_t n = strlen(text);
            snprintf(text + n, sizeof(text) - n, ", held %lld", k->held);
        }
    }
    progress_detail(p->prog, text);
}

void pipe_phase(struct pipe *p, enum pipe_phase ph, const char *name, long long total)
{
    p->phase = ph;
    p->prog_read = 0;
    p->prog_base = 0;
    p->pass_deferred = 0;
    p->queued = 0;
    progress_phase(p->prog, name, total);
}

void pipe_phase_end(struct pipe *p)
{
    pipe_progress(p);
    progress_phase_end(p->prog);
    p->phase = PIPE_PH_NONE;
}

static int count_cb(const struct entry *e, void *payload)
{
    (void)e;
    (*(long long *)payload)++;
    return 0;
}

/* How many entries a read of kind's scope returns, for the progress total: a paged search
 * asking for no attribute ("1.1", RFC 4511 4.5.1.8), so the server sends DNs only (about a
 * third of a full read of the users, measured by bench/bench_progress.sh). -1 when not
 * counted: nobody watches (no terminal line, no JSON lines: the periodic log lines do
 * without a total rather than make every scheduled run pay for it), a source whose read
 * always fetches its full attribute list (Active Directory: counting would cost a whole
 * read), or a failed count (the run goes on; its own read reports the problem). */
static long long count_scope(struct pipe *p, enum map_kind kind)
{
    static const char *const attrs[] = {"1.1", NULL};
    const char *dialect = p->cfg->source.conn.dialect;
    struct dm_err e = {0};
    struct scope sc;
    long long n = 0;
    double t0 = now_sec();

    if (p->prog == NULL || !(p->o->progress || p->o->progress_json) ||
        (dialect != NULL && strcmp(dialect, "ldap") != 0)) {
        return -1;
    }
    scope_of(p, kind, &sc);
    sc.attrs = attrs;
    sc.key_attr = NULL;
    if (p->sops->read(p->src, &sc, count_cb, &n, &e) != DM_OK) {
        log_debug("counting the %ss in scope failed (no total for the progress): %s",
                  kind == MAP_USERS ? "user" : "group", e.msg);
        return -1;
    }
    log_debug("%lld %ss in scope, counted in %.3f s", n, kind == MAP_USERS ? "user" : "group",
              now_sec() - t0);
    return n;
}

/* The progress total of the users phase: what the census read when it read the same scope,
 * else a count; at most --limit. */
static long long users_total(struct pipe *p)
{
    const struct config_endpoint *s = &p->cfg->source;
    long long n = p->census_read[MAP_USERS];

    if (n < 0 || p->users_base != s->users_base || strcmp(p->users_filter, s->users_filter) != 0) {
        n = count_scope(p, MAP_USERS);
    }
    if (n >= 0 && p->o->limit > 0 && n > p->o->limit) {
        n = p->o->limit;
    }
    return n;
}

/* Groups: every group in scope (gset), at most what --limit leaves. */
static long long groups_total(const struct pipe *p)
{
    long long n = (long long)p->ngset;

    if (p->o->limit > 0 && n > p->o->limit - p->processed) {
        n = p->o->limit - p->processed > 0 ? p->o->limit - p->processed : 0;
    }
    return n;
}

static int progress_setup(struct pipe *p, struct dm_err *err)
{
    struct progress_cfg pc = {0};

    pc.out = stderr;
    pc.tty = p->o->progress;
    pc.json = p->o->progress_json;
    /* the periodic log lines: off a terminal (journald), or when the log has its own file;
     * on a terminal whose stderr carries the log they would break the line drawn there */
    if (p->cfg->progress_interval_s > 0 && (!p->o->progress || p->cfg->log_file != NULL)) {
        pc.log_interval_s = p->cfg->progress_interval_s;
    }
    pc.run_id = p->st->run_id;
    return progress_new(&p->prog, &pc, err);
}

/* Reads one kind through the pipeline (pass 1, or a later pass of groups). */
/* A source read that failed (rc, err) in a plan or run: what was read goes on to the target,
 * nothing is concluded from what was not (no leaver change: the run ends blocked), and no
 * further pass starts. Returns DM_OK, or the flush's error. */
static int source_failed(struct pipe *p, enum map_kind kind, struct dm_err *err)
{
    char msg[1200];

    dm_err_format(err, msg, sizeof(msg));
    snprintf(p->read_why[kind], sizeof(p->read_why[kind]), "%.299s", msg);
    p->read_ok[kind] = 0;
    p->source_failed = 1;
    log_err("the source read of %ss failed: %s", kind == MAP_USERS ? "user" : "group", msg);
    dm_err_clear(err);
    return pipe_flush(p, err);
}

static int run_kind(struct pipe *p, enum map_kind kind, int pass, struct dm_err *err)
{
    struct scope sc;
    int incomplete = 0, rc;

    set_kind(p, kind);
    p->pass = pass;
    p->prog_base -= p->pass_deferred; /* read again in this pass */
    p->pass_deferred = 0;
    p->pass_written = 0;
    scope_of(p, kind, &sc);
    sc.incomplete = &incomplete;
    log_info("reading %ss from %s (base \"%s\", filter %s)%s", p->kind_name,
             p->cfg->source.conn.uri, sc.base, sc.filter,
             pass > 1 ? ", a later pass for groups that contain groups" : "");
    rc = reader_run(p->sops, p->src, &sc, (size_t)p->cfg->batch_size * 2, on_entry_cb, p, err);
    if (rc == READER_STOP) {
        rc = PIPE_STOP;
    }
    if (p->fatal_rc != DM_OK) {
        *err = p->fatal_err;
        return p->fatal_rc;
    }
    if (rc != DM_OK && rc != PIPE_STOP) {
        if (p->o->mode == PIPE_VALIDATE) {
            return rc;
        }
        rc = source_failed(p, kind, err);
        state_read_end(p->state);
        return rc;
    }
    if (pass == 1) {
        p->read_ok[kind] = rc == DM_OK && !incomplete;
        if (incomplete) {
            snprintf(p->read_why[kind], sizeof(p->read_why[kind]),
                     "the server returned references to other servers, which are not followed");
        }
    }
    rc = pipe_flush(p, err);
    state_read_end(p->state);
    /* the pass is over: what it read counts on, less what it deferred (until the next pass
     * starts and reads those again) */
    p->prog_base += p->prog_read;
    p->prog_read = 0;
    pipe_progress(p);
    return rc;
}

/* ---- the census: identities several source objects would share ---- */

static void census_attrs(struct pipe *p, enum map_kind kind)
{
    const char **u = NULL;
    size_t nu = map_unique_attrs(p->cfg->map, kind, &u);

    p->ncensus = 0;
    if (p->tops->ident == CONN_IDENT_KEY && p->tops->natural_key[kind == MAP_USERS ? 0 : 1]) {
        p->census_attrs[p->ncensus++] = p->tops->natural_key[kind == MAP_USERS ? 0 : 1];
    }
    for (size_t i = 0; i < nu && p->ncensus < DM_ARRAY_LEN(p->census_attrs); i++) {
        int dup = 0;
        for (size_t k = 0; k < p->ncensus; k++) {
            dup |= strcasecmp(p->census_attrs[k], u[i]) == 0;
        }
        if (!dup) {
            p->census_attrs[p->ncensus++] = u[i];
        }
    }
}

/* Counts the identity values of every in-scope object of kind (one read of the scope),
 * so that the main pass holds back every object whose value another object shares. A DN
 * target's identity (the rebased DN) cannot collide; uniqueness constraints of the map can.
 * Holds one digest per distinct value (export.h's uniqueness index). */
static int census_run(struct pipe *p, enum map_kind kind, struct dm_err *err)
{
    struct scope sc;
    int rc;

    uniq_free(p->census);
    p->census = NULL;
    census_attrs(p, kind);
    if (p->ncensus == 0) {
        return DM_OK;
    }
    rc = uniq_new(&p->census, err);
    if (rc != DM_OK) {
        return rc;
    }
    set_kind(p, kind);
    p->pass = 1;
    scope_of(p, kind, &sc);
    if (kind == MAP_USERS) {
        sc.base = p->cfg->source.users_base; /* the configured scope, not the wave's */
        sc.filter = p->cfg->source.users_filter;
    }
    p->census_phase = 1;
    pipe_phase(p, PIPE_PH_SCAN, kind == MAP_USERS ? "users-census" : "groups-census",
               kind == MAP_USERS ? -1 : (long long)p->ngset);
    rc = reader_run(p->sops, p->src, &sc, (size_t)p->cfg->batch_size * 2, on_entry_cb, p, err);
    p->census_phase = 0;
    if (rc == READER_STOP) {
        rc = PIPE_STOP;
    }
    if (rc == DM_OK && p->fatal_rc == DM_OK) {
        p->census_read[kind] = p->prog_read; /* the whole scope: the next phase's total */
    }
    pipe_phase_end(p);
    if (p->fatal_rc != DM_OK) {
        *err = p->fatal_err;
        return p->fatal_rc;
    }
    if (rc != DM_OK && rc != PIPE_STOP) {
        return source_failed(p, kind, err);
    }
    return DM_OK;
}

/* ---- groups: the set of groups in scope, and passes ---- */

struct gset_ctx {
    struct pipe *p;
    size_t cap;
};

static int gset_add(const struct entry *e, void *payload)
{
    struct gset_ctx *g = payload;
    struct pipe *p = g->p;
    char *norm = NULL;

    if (dn_normalize(&norm, e->dn, NULL) != DM_OK) {
        return 0;
    }
    if (p->ngset == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 256;
        char **n = realloc(p->gset, nc * sizeof(char *));
        if (n == NULL) {
            free(norm);
            return DM_ENOMEM;
        }
        p->gset = n;
        g->cap = nc;
    }
    p->gset[p->ngset++] = norm;
    return 0;
}

/* The normalized DNs of every group in scope (one read of the groups scope, DNs only), so
 * a group that contains a group not yet at the target knows to wait for it. */
static int gset_read(struct pipe *p, struct dm_err *err)
{
    static const char *const attrs[] = {"objectClass", NULL};
    struct gset_ctx g = {p, 0};
    struct scope sc;
    int rc;

    scope_of(p, MAP_GROUPS, &sc);
    sc.attrs = attrs;
    sc.key_attr = NULL;
    rc = p->sops->read(p->src, &sc, gset_add, &g, err);
    if (rc == DM_ENOMEM) {
        dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    if (rc == DM_OK && p->ngset > 0) {
        qsort(p->gset, p->ngset, sizeof(char *), pipe_strp_cmp);
    }
    return rc;
}

/* Groups in passes: a group that names a group of the scope not yet at the target waits
 * for a later pass; when a pass writes nothing while groups still wait (a cycle), the last
 * pass writes them all, each naming the others by their known DNs. */
static int run_groups(struct pipe *p, struct dm_err *err)
{
    int rc;

    if (!(p->tops->caps & CONN_GROUPS)) {
        log_info("groups are not migrated: the target (%s) holds no groups", p->tops->what);
        p->read_ok[MAP_GROUPS] = 1; /* not read on purpose: no group leaves either */
        return DM_OK;
    }
    rc = gset_read(p, err);
    if (rc != DM_OK) {
        return source_failed(p, MAP_GROUPS, err);
    }
    rc = census_run(p, MAP_GROUPS, err);
    if (rc != DM_OK || p->source_failed) {
        return rc;
    }
    pipe_phase(p, PIPE_PH_ENTRY, "groups", groups_total(p));
    for (int pass = 1; rc == DM_OK && !p->st->interrupted; pass++) {
        p->st->group_passes = pass;
        rc = run_kind(p, MAP_GROUPS, pass, err);
        if (rc != DM_OK || p->pass_deferred == 0 || p->st->interrupted || p->source_failed) {
            break;
        }
        if (p->pass_written == 0) {
            if (p->cycle_break) {
                break; /* cannot happen: the last pass defers nothing */
            }
            log_info("%lld groups contain each other in a cycle; writing them now and adding "
                     "the members that close the cycle with them",
                     p->pass_deferred);
            p->cycle_break = 1;
        } else {
            log_info("%lld groups contain groups written in this pass; another pass",
                     p->pass_deferred);
        }
    }
    pipe_phase_end(p);
    if (p->pass_nested > 0) {
        pipe_count_add(p->st->cats, &p->st->ncats, "member_nested", p->pass_nested);
    }
    return rc;
}

/* ---- setup ---- */

static int open_endpoint(const struct conn_ops **ops, struct conn **c,
                         const struct config_endpoint *ep, struct dm_err *err)
{
    int rc;

    *ops = conn_find(ep->conn.type);
    if (*ops == NULL) {
        return dm_err_set(err, DM_EINVAL, "%s: unknown connector type \"%s\"", ep->conn.role,
                          ep->conn.type);
    }
    rc = (*ops)->open(c, &ep->conn, err);
    if (rc != DM_OK) {
        /* Prefix the message with the endpoint so the user knows which end failed. */
        char tmp[sizeof(err->msg)];
        int n;
        memcpy(tmp, err->msg, sizeof(tmp));
        n = snprintf(err->msg, sizeof(err->msg), "%s %s: ", ep->conn.role, ep->conn.uri);
        if (n > 0 && (size_t)n < sizeof(err->msg)) {
            size_t room = sizeof(err->msg) - (size_t)n - 1, len = strnlen(tmp, sizeof(tmp));
            memcpy(err->msg + n, tmp, len < room ? len : room);
            err->msg[(size_t)n + (len < room ? len : room)] = '\0';
        }
    }
    return rc;
}

/* Applies --wave: narrows the users scope by filter or OU, or collects the member DNs of
 * the wave's group (a wave is small by design; its member list is held in memory). */
static int setup_wave(struct pipe *p, struct dm_err *err)
{
    const struct config_wave *w = NULL;
    struct entry *g = NULL;
    int rc = DM_OK;

    for (size_t i = 0; i < p->cfg->nwaves; i++) {
        if (strcmp(p->cfg->waves[i].name, p->wave) == 0) {
            w = &p->cfg->waves[i];
        }
    }
    if (w == NULL) {
        return dm_err_set(err, DM_EINVAL, "--wave %s: no such wave in the config", p->wave);
    }
    p->wave_groups = w->groups;
    if (w->ou != NULL) {
        p->users_base = w->ou;
    } else if (w->filter != NULL) {
        size_t n = strlen(p->users_filter) + strlen(w->filter) + 4;
        char *f = malloc(n);
        if (f == NULL) {
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        snprintf(f, n, "(&%s%s)", p->users_filter, w->filter);
        free(p->users_filter);
        p->users_filter = f;
    } else {
        rc = p->sops->lookup(&g, p->src, w->group, err);
        if (rc != DM_OK) {
            if (rc == DM_ENOTFOUND) {
                dm_err_set(err, DM_EINVAL, "wave %s: group %s not found in the source", w->name,
                           w->group);
                rc = DM_EINVAL;
            }
            return rc;
        }
        for (size_t i = 0; i < g->nattrs && rc == DM_OK; i++) {
            const struct dm_attr *a = &g->attrs[i];
            if (strcasecmp(a->name, "member") != 0 && strcasecmp(a->name, "uniqueMember") != 0) {
                continue;
            }
            for (size_t j = 0; j < a->nvals && rc == DM_OK; j++) {
                size_t dl = pipe_name_uid_split((const char *)a->vals[j].data, a->vals[j].len);
                char *dn = strndup((const char *)a->vals[j].data, dl), *norm = NULL;
                char **grown = realloc(p->wave_members, (p->nwave_members + 1) * sizeof(char *));
                struct dm_err e = {0};
                if (dn == NULL || grown == NULL) {
                    free(dn);
                    rc = dm_err_set(err, DM_ENOMEM, "out of memory");
                    break;
                }
                p->wave_members = grown;
                if (dn_normalize(&norm, dn, &e) == DM_OK) {
                    p->wave_members[p->nwave_members++] = norm;
                }
                free(dn);
            }
        }
        entry_free(g);
        if (p->wave_members == NULL) {
            p->wave_members = calloc(1, sizeof(char *)); /* empty wave: nobody */
        }
        qsort(p->wave_members, p->nwave_members, sizeof(char *), pipe_strp_cmp);
    }
    log_info("wave %s: %s", w->name,
             w->ou       ? "users under the wave's OU"
             : w->filter ? "users matching the wave's filter"
                         : "members of the wave's group");
    return rc;
}

int pipeline_target_identity(char **out, const struct dm_config *cfg, const struct conn_ops *ops,
                             struct conn *c, struct dm_err *err)
{
    const struct conn_cfg *t = &cfg->target.conn;
    char *id = NULL;
    int rc = DM_OK;

    *out = NULL;
    if (ops->target_identity != NULL && (rc = ops->target_identity(&id, c, err)) != DM_OK) {
        return rc;
    }
    if (asprintf(out, "%s %s %s %s", t->type, t->uri, t->base ? t->base : "-", id ? id : "") < 0) {
        *out = NULL;
        rc = dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    free(id);
    return rc;
}

/* The target's identity as the journal keeps it (pipeline_target_identity()). New string,
 * or NULL with err. */
static char *target_identity(struct pipe *p, struct dm_err *err)
{
    char *out = NULL;

    return pipeline_target_identity(&out, p->cfg, p->tops, p->dst, err) == DM_OK ? out : NULL;
}

#define META_TARGET "target_identity"
#define META_UNVERIFIED "runs_since_verify"

/* Refuses a journal written for another target (DM_ECONFIG) unless --rebind-state; records
 * the identity on the first run. */
static int bind_journal(struct pipe *p, struct dm_err *err)
{
    char *want = target_identity(p, err), *have = NULL;
    int rc;

    if (want == NULL) {
        return err->rc != DM_OK ? err->rc : DM_ENOMEM;
    }
    if (p->o->mode == PIPE_RUN) {
        /* exactly one runner per target, whichever machine it is on (state.h); plans only
         * read the target and run beside it */
        rc = state_runner_lock(p->state, want, p->cfg->state_lock_wait_s, NULL, err);
        if (rc != DM_OK) {
            free(want);
            return rc;
        }
    }
    rc = state_meta_get(&have, p->state, META_TARGET, err);
    if (rc == DM_ENOTFOUND || (rc == DM_OK && p->o->rebind_state && strcmp(have, want) != 0)) {
        if (rc == DM_OK) {
            log_warn("journal %s rebound from target \"%s\" to \"%s\" (--rebind-state)",
                     state_name(p->state), have, want);
        }
        rc = state_meta_set(p->state, META_TARGET, want, err);
    } else if (rc == DM_OK && strcmp(have, want) != 0) {
        rc = dm_err_set(err, DM_ECONFIG,
                        "the state journal %s belongs to another target (%.100s), not this one "
                        "(%.100s): use a journal per target, or --rebind-state if this is the "
                        "same directory under a new name",
                        state_name(p->state), have, want);
    }
    free(have);
    p->target_ident = want; /* a saved plan names its target so */
    return rc;
}

/* Whether this run reads the target: --verify-target, else run.verify_target ("every N
 * runs" counts the runs that did not since the last one that did). */
static int decide_verify(struct pipe *p, struct dm_err *err)
{
    char *v = NULL;
    long since = 0;
    int rc;

    if (p->o->verify_target || p->cfg->verify_every == 1 || (p->tops->caps & CONN_SNAPSHOT)) {
        p->verify = 1; /* a snapshot is written whole: every object is looked at */
        return DM_OK;
    }
    if (p->cfg->verify_every == 0) {
        p->verify = 0;
        return DM_OK;
    }
    rc = state_meta_get(&v, p->state, META_UNVERIFIED, err);
    if (rc == DM_OK) {
        since = strtol(v, NULL, 10);
    } else if (rc != DM_ENOTFOUND) {
        return rc;
    }
    free(v);
    p->verify = since + 1 >= p->cfg->verify_every;
    return DM_OK;
}

static int note_verify(struct pipe *p, struct dm_err *err)
{
    char buf[32];
    char *v = NULL;
    long since = 0;

    if (p->o->mode != PIPE_RUN || p->cfg->verify_every <= 1) {
        return DM_OK;
    }
    if (!p->verify && state_meta_get(&v, p->state, META_UNVERIFIED, NULL) == DM_OK) {
        since = strtol(v, NULL, 10);
    }
    free(v);
    snprintf(buf, sizeof(buf), "%ld", p->verify ? 0 : since + 1);
    return state_meta_set(p->state, META_UNVERIFIED, buf, err);
}

/* The correlation rules (key and fallbacks) the collision policy "link" checks, and the
 * settings of the planner and of projections. */
static void setup_planner(struct pipe *p)
{
    const struct dm_config *c = p->cfg;
    const char *const *fs, *const *ft;
    size_t nf = map_key_fallbacks(c->map, &fs, &ft), n = 0;

    p->corr_src[n] = map_key_attr(c->map);
    p->corr_tgt[n] = map_key_target(c->map) ? map_key_target(c->map) : map_key_attr(c->map);
    n++;
    for (size_t i = 0; i < nf && n < DM_ARRAY_LEN(p->corr_src); i++, n++) {
        p->corr_src[n] = fs[i];
        p->corr_tgt[n] = ft[i];
    }
    p->corr_tgt[n] = NULL;
    p->rules.dn_attrs = (const char *const *)c->dn_attrs;
    p->rules.key_attrs = p->corr_tgt;
    p->pctx.map = c->map;
    p->pctx.rules = &p->rules;
    p->pctx.collision = strcmp(c->collision, "link") == 0     ? PLAN_COLLIDE_LINK
                        : strcmp(c->collision, "suffix") == 0 ? PLAN_COLLIDE_SUFFIX
                                                              : PLAN_COLLIDE_SKIP;
    p->pctx.suffix = c->collision_suffix;
    p->pctx.dn_targets = p->tops->ident == CONN_IDENT_DN;
    p->pctx.ncorr = n;
    p->pctx.corr_src = p->corr_src;
    p->pctx.corr_tgt = p->corr_tgt;
    p->act.start_attr = c->source.activity_start;
    p->act.end_attr = c->source.activity_end;
    p->act.start_fmt = activity_format_of(c->source.activity_start_format);
    p->act.end_fmt = activity_format_of(c->source.activity_end_format);
    p->act.lookahead_days = c->source.lookahead_days;
}

static int grow_batch(struct pipe *p)
{
    size_t n = (size_t)p->cfg->batch_size + PIPE_CONTAINER_ROOM;

    p->batch = calloc(n, sizeof(*p->batch));
    p->changes = calloc(n, sizeof(*p->changes));
    p->results = calloc(n, sizeof(*p->results));
    if (p->batch == NULL || p->changes == NULL || p->results == NULL) {
        return DM_ENOMEM;
    }
    p->cap = n;
    return DM_OK;
}

static int validate_all(struct pipe *p, struct dm_err *err)
{
    int rc = DM_OK;

    for (int k = 0; k < 2 && rc == DM_OK && !p->st->interrupted; k++) {
        const char **ua;
        enum map_kind mk = k == 0 ? MAP_USERS : MAP_GROUPS;
        long long total = -1;
        if (mk == MAP_GROUPS && p->wave != NULL && !p->wave_groups) {
            break;
        }
        uniq_free(p->uniq);
        p->uniq = NULL;
        if (map_unique_attrs(p->cfg->map, mk, &ua) > 0) {
            /* Uniqueness needs the whole population: count first, then check. */
            rc = uniq_new(&p->uniq, err);
            p->vphase = 1;
            pipe_phase(p, PIPE_PH_SCAN, mk == MAP_USERS ? "users-unique" : "groups-unique", -1);
            if (rc == DM_OK) {
                rc = run_kind(p, mk, 1, err);
                total = rc == DM_OK && !p->st->interrupted ? p->prog_base : -1;
            }
            pipe_phase_end(p);
        }
        p->vphase = 2;
        if (rc == DM_OK) {
            pipe_phase(p, PIPE_PH_ENTRY, mk == MAP_USERS ? "users" : "groups",
                       total >= 0 ? total : count_scope(p, mk));
            rc = run_kind(p, mk, 1, err);
            pipe_phase_end(p);
        }
    }
    if (rc == DM_OK) {
        rc = export_close(p->exp, err);
    } else {
        export_close(p->exp, NULL);
    }
    p->exp = NULL;
    return rc;
}

static void teardown(struct pipe *p)
{
    struct pipeline_stats *stats = p->st;

    progress_free(p->prog); /* its last lines before the summary */
    p->prog = NULL;
    if (p->tv != NULL) {
        struct tview_stats ts;
        tview_get_stats(p->tv, &ts);
        stats->target_read = ts.read;
        stats->target_lookups = ts.looked_up;
        tview_close(p->tv);
    }
    if (p->dst != NULL && p->tops->stats != NULL) {
        p->tops->stats(p->dst, &stats->target_stats);
        stats->have_target_stats = 1;
        if (stats->target_stats.requests > 0) {
            log_info("target traffic: %lu requests, %lu retries, %lu rate-limited (429), %lu "
                     "server errors, %lu timeouts or connection errors",
                     stats->target_stats.requests, stats->target_stats.retries,
                     stats->target_stats.rate_limited, stats->target_stats.server_errors,
                     stats->target_stats.transport_errors);
        }
    }
    for (size_t i = 0; i < p->nbatch; i++) {
        pipe_pobj_clear(&p->batch[i]);
    }
    free(p->batch);
    free(p->changes);
    free(p->results);
    if (p->dst) {
        p->tops->close(p->dst);
    }
    if (p->src) {
        p->sops->close(p->src);
    }
    if (p->src2) {
        p->sops->close(p->src2);
    }
    state_close(p->state);
    export_close(p->exp, NULL);
    uniq_free(p->uniq);
    uniq_free(p->census);
    retry_free(p->retry);
    for (size_t i = 0; i < p->nwave_members; i++) {
        free(p->wave_members[i]);
    }
    free(p->wave_members);
    for (size_t i = 0; i < p->ngset; i++) {
        free(p->gset[i]);
    }
    free(p->gset);
    for (size_t i = 0; i < p->nhandled; i++) {
        free(p->handled[i]);
    }
    free(p->handled);
    for (size_t i = 0; i < p->ncont_ok; i++) {
        free(p->cont_ok[i]);
    }
    free(p->cont_ok);
    for (size_t i = 0; i < p->ncont_missing; i++) {
        free(p->cont_missing[i]);
    }
    free(p->cont_missing);
    free(p->users_filter);
    delta_free(p->delta);
    pipe_saved_free(p);
    log_set_context(0, NULL);
}

/* Ends the run in the journal with its real status and counts. */
static int end_run(struct pipe *p, int rc, struct dm_err *err)
{
    struct pipeline_stats *st = p->st;
    struct run_counts c = {0};
    struct dm_err e2 = {0};

    if (rc != DM_OK) {
        st->status = "failed";
    } else if (st->interrupted && pipe_stop_flag) {
        st->status = "interrupted";
    } else if (st->blocked[0] != '\0') {
        st->status = "blocked";
    } else if (st->refused_why[0] != '\0') {
        st->status = "refused";
    } else {
        st->status = "done";
    }
    if (p->state == NULL || st->run_id == 0) {
        return rc;
    }
    c.created = st->users.created + st->groups.created + st->containers.created;
    c.updated = st->users.updated + st->groups.updated + st->containers.updated;
    c.unchanged = st->users.unchanged + st->groups.unchanged + st->containers.unchanged;
    c.failed = st->users.failed + st->groups.failed + st->containers.failed;
    c.skipped = st->users.skipped + st->groups.skipped + st->users.inactive;
    c.held = st->users.held + st->groups.held + st->containers.held;
    if (state_run_end(p->state, st->run_id, st->status, &c, &e2) != DM_OK && rc == DM_OK) {
        *err = e2;
        rc = e2.rc;
        st->status = "failed";
    }
    if (rc == DM_OK && (st->blocked[0] != '\0' || st->refused_why[0] != '\0') &&
        state_run_set_reason(p->state, st->run_id,
                             st->blocked[0] != '\0' ? st->blocked : st->refused_why,
                             &e2) != DM_OK) {
        log_debug("the reason of run %lld is not journaled: %s", st->run_id, e2.msg);
    }
    if (rc != DM_OK) {
        char why[sizeof(err->msg) + sizeof(err->dn) + 64];
        /* why the run failed, for status and the report (best effort: the journal may be
         * what failed) */
        if (state_run_set_reason(p->state, st->run_id, dm_err_format(err, why, sizeof(why)), &e2) !=
            DM_OK) {
            log_debug("the reason of run %lld is not journaled: %s", st->run_id, e2.msg);
        }
    }
    return rc;
}

int pipeline_execute(struct pipeline_stats *stats, const struct dm_config *cfg,
                     const struct pipeline_opts *o, struct dm_err *err)
{
    struct pipe p;
    struct sigaction sa;
    const char *kinds[] = {"plan", "run", "validate"};
    int rc;

    memset(&p, 0, sizeof(p));
    memset(stats, 0, sizeof(*stats));
    stats->status = "failed";
    p.cfg = cfg;
    p.o = o;
    p.st = stats;
    p.census_read[0] = p.census_read[1] = -1;
    p.now = (int64_t)time(NULL);
    p.users_base = cfg->source.users_base;
    p.users_filter = strdup(cfg->source.users_filter);
    p.wave = o->wave;
    p.allow_deletes = o->allow_deletes;
    p.full_scope =
        o->mode != PIPE_VALIDATE && o->wave == NULL && o->retry_from == NULL && o->limit == 0;
    p.tops = conn_find(cfg->target.conn.type);
    if (p.tops == NULL) {
        rc = dm_err_set(err, DM_EINVAL, "target: unknown connector type \"%s\"",
                        cfg->target.conn.type);
        goto done;
    }
    stats->cred_outcomes = (p.tops->caps & CONN_HASH_IMPORT) && p.tops->cred_outcome != NULL;
    if (!o->embedded) {
        pipe_stop_flag = 0;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    setup_planner(&p);
    rc = grow_batch(&p);
    if (rc != DM_OK || p.users_filter == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "out of memory");
        goto done;
    }
    if (o->retry_from != NULL) {
        rc = retry_load(&p.retry, o->retry_from, err);
        if (rc != DM_OK) {
            goto done;
        }
        log_info("retrying %zu entries listed in %s", retry_count(p.retry), o->retry_from);
    }
    if (o->mode != PIPE_VALIDATE) {
        struct state_where w;

        config_state_where(&w, cfg);
        rc = state_open_cfg(&p.state, &w, err);
        if (rc != DM_OK) {
            goto done;
        }
        if ((o->plan_in != NULL || o->plan_out != NULL) && !state_plans_supported(p.state)) {
            /* before anything is read or written: never half a saved plan */
            rc = dm_err_set(err, DM_ECONFIG,
                            "%s: saved plans need a SQLite journal (state.type sqlite); this "
                            "journal is %s",
                            o->plan_in != NULL ? "run --plan" : "plan --out",
                            state_backend(p.state));
            goto done;
        }
    }
    /* Connect and bind both ends before anything is written anywhere. */
    rc = open_endpoint(&p.sops, &p.src, &cfg->source, err);
    if (rc == DM_OK && o->mode != PIPE_VALIDATE) {
        rc = open_endpoint(&p.tops, &p.dst, &cfg->target, err);
    }
    if (rc == DM_OK && o->mode != PIPE_VALIDATE && !(p.tops->caps & CONN_WRITE)) {
        rc = dm_err_set(err, DM_ECONFIG, "target: %s cannot be written to", p.tops->what);
    }
    if (rc == DM_OK && !(p.sops->caps & CONN_SOURCE)) {
        rc = dm_err_set(err, DM_ECONFIG, "source: %s cannot be a migration source", p.sops->what);
    }
    if (rc == DM_OK && o->mode != PIPE_VALIDATE) {
        rc = bind_journal(&p, err);
    }
    if (rc == DM_OK && o->mode == PIPE_RUN && (p.tops->caps & CONN_UNDO) &&
        state_undo_supported(p.state)) {
        /* every change of a run is recorded with what undoes it (dirmig rollback) */
        rc = state_undo_open(p.state, err);
        p.undo = rc == DM_OK;
    } else if (rc == DM_OK && o->mode == PIPE_RUN && (p.tops->caps & CONN_UNDO)) {
        log_warn("state.type %s keeps no undo store: this run cannot be rolled back",
                 state_backend(p.state));
    }
    if (rc == DM_OK && o->mode == PIPE_RUN) {
        rc = pipe_saved_begin(&p, err); /* run --plan: the plan's wave and scope */
    }
    if (rc == DM_OK && p.wave != NULL && stats->refused_why[0] == '\0') {
        rc = setup_wave(&p, err);
    }
    if (rc != DM_OK) {
        goto done;
    }
    if (o->mode == PIPE_VALIDATE) {
        rc = export_open(&p.exp, o->out_prefix ? o->out_prefix : "validation", err);
        if (rc != DM_OK) {
            goto done;
        }
        stats->export_csv = strdup(export_csv_path(p.exp));
        stats->export_jsonl = strdup(export_jsonl_path(p.exp));
        log_info("validate started: %s", cfg->source.conn.uri);
        rc = progress_setup(&p, err);
        if (rc == DM_OK) {
            rc = validate_all(&p, err);
        }
        stats->status = rc == DM_OK ? "done" : "failed";
        goto done;
    }
    rc = state_run_begin(&stats->run_id, p.state, o->run_kind ? o->run_kind : kinds[o->mode],
                         cfg->digest, err);
    if (rc == DM_OK && p.wave != NULL) {
        rc = state_run_set_wave(p.state, stats->run_id, p.wave, err);
    }
    if (rc == DM_OK) {
        rc = decide_verify(&p, err);
    }
    if (rc == DM_OK && o->mode == PIPE_PLAN) {
        rc = pipe_saved_create(&p, err); /* plan --out */
    }
    if (rc == DM_OK) {
        rc = progress_setup(&p, err);
    }
    if (rc != DM_OK) {
        goto done;
    }
    if (stats->refused_why[0] != '\0') {
        rc = end_run(&p, DM_OK, err); /* the saved plan does not fit: nothing is read */
        goto done;
    }
    log_set_context(stats->run_id, NULL);
    log_info("%s started: %s -> %s (%s)", kinds[o->mode], cfg->source.conn.uri,
             cfg->target.conn.uri,
             p.verify ? "the target is read and compared"
                      : "objects unchanged since the journal's write are not looked at");
    /* A run over part of the scope (--wave, --retry-from, --limit) reads it in full and
     * keeps no watermark: advancing one would hide the changes of everything it skipped. */
    rc = delta_begin(&p.delta, cfg, p.full_scope, p.sops, p.src, p.state, err);
    if (rc == DM_OK) {
        struct tview_cfg tc = {0};
        tc.ops = p.tops;
        tc.conn = &cfg->target.conn;
        tc.lookup = p.dst;
        tc.full_read = p.verify && p.delta == NULL;
        tc.max_ahead = PIPE_TARGET_AHEAD;
        tc.rules = &p.rules;
        p.rules.digest = p.digests;
        rc = tview_open(&p.tv, &tc, err);
        stats->verified = p.verify;
    }
    if (rc == DM_OK) {
        rc = census_run(&p, MAP_USERS, err);
    }
    if (rc == DM_OK && !p.source_failed) {
        pipe_phase(&p, PIPE_PH_ENTRY, "users", users_total(&p));
        rc = run_kind(&p, MAP_USERS, 1, err);
        pipe_phase_end(&p);
    }
    if (rc == DM_OK && !stats->interrupted && !p.source_failed &&
        (p.wave == NULL || p.wave_groups)) {
        rc = run_groups(&p, err);
    }
    if (rc == DM_OK && p.delta != NULL) {
        /* How each kind was read is known only now: a watermark the source could not use
         * gave a full read, whose absences count as in any full run (the objects read were
         * noted as seen). A delta read returns what changed: absence proves nothing. */
        for (int k = 0; k < 2; k++) {
            p.delta_gone[k] = !delta_full(p.delta, k == 0 ? MAP_USERS : MAP_GROUPS);
            stats->source_read[k] = p.delta_gone[k] ? "delta" : "full";
            p.full_scope = p.full_scope && !p.delta_gone[k];
        }
    }
    if (rc == DM_OK && !stats->interrupted && o->mode == PIPE_RUN && p.delta != NULL) {
        /* the deletions a delta read reports are this run's leavers */
        rc = delta_finish(p.delta, stats->run_id,
                          stats->users.failed + stats->groups.failed == 0 && !p.source_failed, NULL,
                          NULL, &stats->source_deleted, err);
    } else {
        p.delta_gone[0] = p.delta_gone[1] = 0; /* plan: no deletion is noted */
    }
    if (rc == DM_OK && !stats->interrupted) {
        rc = pipe_leavers(&p, err);
    }
    if (rc == DM_OK && !stats->interrupted) {
        rc = note_verify(&p, err);
    }
    if (rc == DM_OK && !stats->interrupted) {
        rc = pipe_leavers_done(&p, err);
    }
    if (rc == DM_OK && o->mode == PIPE_RUN && p.tops->finish != NULL && !pipe_stop_flag) {
        /* a snapshot target publishes its output only now, and only what a complete read
         * of the source gave (close() without it drops it): never a partial file */
        if (p.read_ok[MAP_USERS] && p.read_ok[MAP_GROUPS]) {
            rc = p.tops->finish(p.dst, 1, err);
        } else {
            rc = dm_err_set(err, DM_EUNAVAIL,
                            "the source read did not complete: %s is left as it was",
                            cfg->target.conn.uri);
        }
    }
    if (rc == DM_OK) {
        rc = pipe_saved_end(&p, !stats->interrupted, err); /* the plan file, or the refusals */
    }
    rc = end_run(&p, rc, err);
done:
    if (rc != DM_OK) {
        stats->status = "failed";
    }
    teardown(&p);
    return rc;
}

void pipeline_stats_free(struct pipeline_stats *stats)
{
    for (size_t i = 0; i < stats->nexamples; i++) {
        free(stats->examples[i].key);
        free(stats->examples[i].dn);
    }
    stats->nexamples = 0;
    free(stats->export_csv);
    free(stats->export_jsonl);
    stats->export_csv = stats->export_jsonl = NULL;
    for (size_t i = 0; i < stats->nsamples; i++) {
        free(stats->samples[i].dn);
        free(stats->samples[i].attrs);
    }
    stats->nsamples = 0;
    for (size_t i = 0; i < stats->nrefusals; i++) {
        free(stats->refusals[i].dn);
    }
    stats->nrefusals = 0;
}
