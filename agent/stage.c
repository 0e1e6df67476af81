/*
 * stage.c: one source entry through the pipeline's stages (agent/pipe_priv.h), each a
 * function of its own: scope -> credentials -> map -> constraints -> identity -> source
 * collisions -> DN-valued attributes and members -> digest and journal row -> containers
 * -> the batch.
 */
#include <config.h>
#include "agent/pipe_priv.h"
#include "agent/util/hash64.h"
#include "agent/util/log.h"
#include "schema/cred.h"
#include "schema/dn.h"
#include "schema/validate.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* What a stage tells the caller. */
enum stage_rc {
    STAGE_GO = 0, /* next stage */
    STAGE_QUEUE,  /* queue q as it is (failed or held: reported at the flush) */
    STAGE_DROP,   /* nothing to do for this entry (out of scope, deferred, unchanged) */
    STAGE_FATAL,  /* p->fatal_rc is set */
};

void pipe_count_add(struct pipe_count *arr, size_t *n, const char *name, long long k)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(arr[i].name, name) == 0) {
            arr[i].n += k;
            return;
        }
    }
    if (*n < PIPE_MAX_CATS) {
        arr[*n].name = name;
        arr[*n].n = k;
        (*n)++;
    }
}

int pipe_strp_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void pipe_pobj_clear(struct pobj *q)
{
    entry_free(q->want);
    entry_free(q->corr);
    free(q->key);
    free(q->source_dn);
    state_object_clear(&q->rec);
    if (q->pw != NULL) {
        explicit_bzero(q->pw, q->pwlen);
        free(q->pw);
    }
    proj_free(q->have);
    plan_obj_clear(&q->plan);
    free(q->merge);
    memset(q, 0, sizeof(*q));
}

/* ---- groups handled in this run (later passes skip them) ---- */

static size_t handled_pos(const struct pipe *p, const char *key, int *found)
{
    size_t lo = 0, hi = p->nhandled;

    *found = 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(p->handled[mid], key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

int pipe_handled_has(const struct pipe *p, const char *key)
{
    int found;

    (void)handled_pos(p, key, &found);
    return found;
}

int pipe_handled_add(struct pipe *p, const char *key)
{
    int found;
    size_t pos = handled_pos(p, key, &found);
    char *k;

    if (found) {
        return DM_OK;
    }
    if (p->nhandled == p->caphandled) {
        size_t nc = p->caphandled ? p->caphandled * 2 : 256;
        char **g = realloc(p->handled, nc * sizeof(*g));
        if (g == NULL) {
            return DM_ENOMEM;
        }
        p->handled = g;
        p->caphandled = nc;
    }
    k = strdup(key);
    if (k == NULL) {
        return DM_ENOMEM;
    }
    memmove(&p->handled[pos + 1], &p->handled[pos], (p->nhandled - pos) * sizeof(char *));
    p->handled[pos] = k;
    p->nhandled++;
    return DM_OK;
}

static int in_gset(const struct pipe *p, const char *norm)
{
    return p->gset != NULL &&
           bsearch(&norm, p->gset, p->ngset, sizeof(char *), pipe_strp_cmp) != NULL;
}

/* 1 when the group with normalized source DN norm waits in the current batch. */
static int in_batch(const struct pipe *p, const char *norm)
{
    for (size_t i = 0; i < p->nbatch; i++) {
        if (p->batch[i].source_dn != NULL && strcmp(p->batch[i].source_dn, norm) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ---- scope ---- */

/* Wave membership, --retry-from and dated activity. */
static enum stage_rc stage_scope(struct pipe *p, const struct entry *src, struct pobj *q)
{
    const char *attr = NULL, *why;

    if (p->retry != NULL && !retry_has(p->retry, q->key)) {
        goto skipped;
    }
    if (p->kind == MAP_USERS && p->wave_members != NULL &&
        bsearch(&q->source_dn, p->wave_members, p->nwave_members, sizeof(char *), pipe_strp_cmp) ==
            NULL) {
        goto skipped;
    }
    if (p->o->mode == PIPE_VALIDATE || p->kind != MAP_USERS) {
        return STAGE_GO; /* validate reports inactive entries as rows */
    }
    why = activity_check(&p->act, src, p->now, &attr);
    if (why != NULL) {
        if (p->pass == 1 && !p->census_phase) {
            p->kc->inactive++;
            pipe_count_add(p->st->cats, &p->st->ncats, why, 1);
            log_info("user %s left out: %s (%s)", src->dn,
                     strcmp(why, "expired") == 0          ? "its end date has passed"
                     : strcmp(why, "not_yet_active") == 0 ? "its start date is still ahead"
                                                          : "its date cannot be read in the "
                                                            "configured format",
                     attr);
        }
        return STAGE_DROP;
    }
    return STAGE_GO;
skipped:
    if (p->pass == 1 && !p->census_phase) {
        p->kc->skipped++;
    }
    return STAGE_DROP;
}

/* ---- credentials (users, pass 1) ---- */

static void cred_count(struct pipeline_stats *st, const char *scheme, const char *outcome)
{
    for (size_t i = 0; i < st->ncreds; i++) {
        if (strcmp(st->creds[i].scheme, scheme) == 0 &&
            strcmp(st->creds[i].outcome, outcome) == 0) {
            st->creds[i].n++;
            return;
        }
    }
    if (st->ncreds < PIPE_MAX_CATS) {
        st->creds[st->ncreds].scheme = scheme;
        st->creds[st->ncreds].outcome = outcome;
        st->creds[st->ncreds].n = 1;
        st->ncreds++;
    }
}

/* What the target connector does with the user's first userPassword value (its own table,
 * conn_ops.cred_outcome), parsed once: *outcome is "import", "hook", "locked" (a lock marker
 * or placeholder such as "*", "!!" or an empty value: the user gets no password,
 * schema/cred.h) or "error" (malformed; the error, naming the scheme and never the value,
 * goes to *e). No userPassword at all (AD, or not readable) is the hook. Returns DM_OK or
 * DM_ENOMEM. */
static int password_outcome(const struct conn_ops *ops, const struct dm_attr *pw,
                            const char **outcome, struct dm_err *e)
{
    struct cred *c = NULL;
    enum cred_outcome oc;

    *outcome = "hook";
    if (pw == NULL || pw->nvals == 0) {
        return DM_OK; /* no password: the hook */
    }
    if (cred_parse(&c, pw->vals[0].data, pw->vals[0].len, e) != DM_OK) {
        if (e->rc == DM_ENOMEM) {
            return DM_ENOMEM;
        }
        *outcome = "error";
        return DM_OK;
    }
    oc = ops->cred_outcome(c, NULL);
    *outcome = oc == CRED_IMPORT ? "import" : oc == CRED_LOCKED ? "locked" : "hook";
    cred_free(c);
    return DM_OK;
}

/* Counts the password scheme; for a target that takes credentials from dirmig
 * (CONN_HASH_IMPORT) classifies it with the connector's table (a malformed hash fails this
 * user only) and, in a run, copies the value for the connector (secret: wiped by
 * pipe_pobj_clear). A user the target could neither import nor send to the hook would
 * have no way to sign in: it fails. */
static enum stage_rc stage_creds(struct pipe *p, const struct entry *src, struct pobj *q)
{
    const struct dm_attr *pw = entry_attr(src, "userPassword");
    struct dm_err pw_err = {0};
    const char *outcome, *scheme;

    if (p->kind != MAP_USERS) {
        return STAGE_GO;
    }
    scheme = pw && pw->nvals ? cred_scheme(pw->vals[0].data, pw->vals[0].len) : "NONE";
    if (p->pass == 1) {
        pipe_count_add(p->st->schemes, &p->st->nschemes, scheme, 1);
    }
    if (!(p->tops->caps & CONN_HASH_IMPORT) || p->tops->cred_outcome == NULL) {
        return STAGE_GO; /* the password travels as a mapped attribute, byte-exact */
    }
    if (password_outcome(p->tops, pw, &outcome, &pw_err) != DM_OK) {
        p->fatal_rc = dm_err_set(&p->fatal_err, DM_ENOMEM, "out of memory");
        return STAGE_FATAL;
    }
    if (p->pass == 1) {
        cred_count(p->st, scheme, outcome);
    }
    q->hook_planned = strcmp(outcome, "hook") == 0;
    if (pw_err.rc != DM_OK) {
        q->failed = 1;
        q->category = "credential";
        q->err = pw_err;
        dm_err_dn(&q->err, src->dn);
        return STAGE_QUEUE;
    }
    if (strcmp(outcome, "hook") == 0 && !(p->tops->caps & CONN_PASSWORD_HOOK)) {
        q->failed = 1;
        q->category = "credential";
        dm_err_set(&q->err, DM_EINVAL,
                   "the target can neither import this %s password nor use the "
                   "password-import hook: the user would have no way to sign in",
                   scheme);
        dm_err_attr(&q->err, "userPassword");
        dm_err_dn(&q->err, src->dn);
        return STAGE_QUEUE;
    }
    if (strcmp(outcome, "hook") == 0 && (p->tops->caps & CONN_LAZY_CREATE)) {
        /* the target creates this user itself at its first sign-in, through the hook */
        if (p->pass == 1) {
            p->st->lazy_users++;
            log_info("user %s: left to the target's lazy migration (created at its first "
                     "sign-in through the password-import hook; %s password)",
                     src->dn, scheme);
        }
        return STAGE_DROP;
    }
    /* An empty value is passed too (non-NULL, length 0): it is "no password" (locked), not
     * "no value" (the hook). */
    if (p->o->mode == PIPE_RUN && pw != NULL && pw->nvals > 0) {
        q->pw = malloc(pw->vals[0].len + 1);
        if (q->pw == NULL) {
            p->fatal_rc = dm_err_set(&p->fatal_err, DM_ENOMEM, "out of memory");
            return STAGE_FATAL;
        }
        memcpy(q->pw, pw->vals[0].data, pw->vals[0].len);
        q->pwlen = pw->vals[0].len;
    }
    return STAGE_GO;
}

/* ---- map and constraints ---- */

static int is_blocking(const struct pipe *p, const char *cat)
{
    for (size_t i = 0; p->cfg->validate_blocking && p->cfg->validate_blocking[i]; i++) {
        if (strcmp(p->cfg->validate_blocking[i], cat) == 0) {
            return 1;
        }
    }
    return 0;
}

static enum stage_rc stage_map(struct pipe *p, const struct entry *src, struct pobj *q)
{
    struct map_problem *probs = NULL;
    size_t n = 0;
    int rc;

    if (map_apply(&q->want, p->cfg->map, p->kind, src, &q->err) != DM_OK) {
        q->failed = 1;
        q->category = "map";
        dm_err_dn(&q->err, src->dn);
        return STAGE_QUEUE;
    }
    /* the map's per-entry constraints (uniqueness is the census's): blocking problems are
     * reported, never sent to the target */
    rc = map_check(&probs, &n, p->cfg->map, p->kind, q->want, &q->err);
    for (size_t i = 0; rc == DM_OK && i < n; i++) {
        if (is_blocking(p, probs[i].category)) {
            rc = dm_err_set(&q->err, DM_EINVAL, "%s: %s", probs[i].category, probs[i].msg);
            dm_err_attr(&q->err, probs[i].attr);
        }
    }
    free(probs);
    if (rc != DM_OK) {
        q->failed = 1;
        q->category = "constraint";
        dm_err_dn(&q->err, src->dn);
        return STAGE_QUEUE;
    }
    return STAGE_GO;
}

/* The source values of the correlation attributes, for the collision policy "link". */
static int keep_corr(struct pipe *p, const struct entry *src, struct pobj *q)
{
    q->corr = entry_new(src->dn);
    if (q->corr == NULL) {
        return DM_ENOMEM;
    }
    for (size_t r = 0; r < p->pctx.ncorr; r++) {
        const struct dm_attr *a = entry_attr(src, p->corr_src[r]);
        for (size_t i = 0; a != NULL && i < a->nvals; i++) {
            if (entry_add_value(q->corr, a->name, a->vals[i].data, a->vals[i].len) != DM_OK) {
                return DM_ENOMEM;
            }
        }
    }
    return DM_OK;
}

/* The account state the source asks for (users): what the map produced as
 * dirmigAccountState (set by a rule), else the source entry's own (the AD dialect derives it
 * from userAccountControl and accountExpires, whatever the map names), else the source's
 * users.disabled rule; -1 when the source says nothing (the target's state is left alone).
 * A locked account is enabled: a lockout is the source's own business and passes. */
static void stage_state(struct pipe *p, const struct entry *src, struct pobj *q)
{
    const struct config_endpoint *s = &p->cfg->source;
    const char *st = entry_first(q->want, "dirmigAccountState");

    if (st == NULL) {
        st = entry_first(src, "dirmigAccountState");
    }

    q->want_disabled = -1;
    if (p->kind != MAP_USERS) {
        return;
    }
    if (st != NULL) {
        q->want_disabled = strcasecmp(st, "disabled") == 0 || strcasecmp(st, "expired") == 0;
    } else if (s->disabled_attr != NULL) {
        const struct dm_attr *a = entry_attr(src, s->disabled_attr);
        q->want_disabled = 0;
        for (size_t i = 0; a != NULL && i < a->nvals && !q->want_disabled; i++) {
            if (s->disabled_values == NULL) {
                q->want_disabled = 1;
            }
            for (size_t k = 0; s->disabled_values != NULL && s->disabled_values[k] != NULL; k++) {
                if (strcasecmp((const char *)a->vals[i].data, s->disabled_values[k]) == 0) {
                    q->want_disabled = 1;
                }
            }
        }
    }
    if (q->want_disabled == 1 && !pipe_can_disable(p)) {
        /* nothing at the target disables an account: the state is not carried (the map may
         * still write it as an attribute); said once per run, counted in the summary */
        if (p->st->state_not_carried++ == 0) {
            log_warn("users disabled or expired in the source are written enabled: the target "
                     "cannot disable an account (set target.disable, see dirmig.json(5) "
                     "LEAVERS)");
        }
        q->want_disabled = -1;
    }
    entry_del_attr(q->want, "dirmigAccountState"); /* a state, not an attribute to write */
}

/* The target identity (conn_ops.ident): a mapped natural key (login, group name), or the
 * DN rebased from the source base to the target base (kept as it is when the target has no
 * base). */
static enum stage_rc stage_identity(struct pipe *p, const struct entry *src, struct pobj *q)
{
    char *reb = NULL;
    int rc;

    if (p->tops->ident == CONN_IDENT_KEY) {
        const char *nk = p->tops->natural_key[p->kind == MAP_USERS ? 0 : 1];
        const char *v = nk != NULL ? entry_first(q->want, nk) : NULL;
        if (v == NULL || v[0] == '\0' || entry_set_dn(q->want, v) != DM_OK) {
            q->failed = 1;
            q->category = "constraint";
            dm_err_set(&q->err, DM_EINVAL, "the map gives no %s, which the target names %ss by",
                       nk ? nk : "name", p->kind_name);
            dm_err_attr(&q->err, nk);
            dm_err_dn(&q->err, src->dn);
            return STAGE_QUEUE;
        }
    } else {
        rc = p->cfg->target.conn.base == NULL
                 ? ((reb = strdup(src->dn)) != NULL ? DM_OK : DM_ENOMEM)
                 : dn_rebase(&reb, src->dn, p->cfg->source.conn.base, p->cfg->target.conn.base,
                             &q->err);
        if (rc != DM_OK || entry_set_dn(q->want, reb) != DM_OK) {
            q->failed = 1;
            q->category = "dn";
            if (rc == DM_ENOTFOUND) {
                dm_err_set(&q->err, DM_EINVAL, "entry is outside the source base %s",
                           p->cfg->source.conn.base);
            }
            dm_err_dn(&q->err, src->dn);
            free(reb);
            return STAGE_QUEUE;
        }
        free(reb);
    }
    if (keep_corr(p, src, q) != DM_OK) {
        p->fatal_rc = dm_err_set(&p->fatal_err, DM_ENOMEM, "out of memory");
        return STAGE_FATAL;
    }
    return STAGE_GO;
}

/* ---- source collisions: the census ---- */

/* Census (before the kind's first pass): counts every identity value of every in-scope
 * entry, so that two objects that would land on one target object are both held back. */
int pipe_census_entry(struct pipe *p, const struct entry *src)
{
    struct pobj q;
    const char *why_attr = NULL;
    int rc = DM_OK;

    memset(&q, 0, sizeof(q));
    q.key = strdup(src->key != NULL && src->key[0] ? src->key : "");
    if (q.key == NULL || dn_normalize(&q.source_dn, src->dn, NULL) != DM_OK) {
        pipe_pobj_clear(&q);
        return DM_OK; /* reported by the main pass */
    }
    if (src->key == NULL || src->key[0] == '\0') {
        free(q.key);
        q.key = strdup(q.source_dn);
    }
    /* the whole scope counts, whatever the wave or retry list of this run: an object of
     * another wave would collide just as well; only users out of their activity window
     * never reach the target */
    if (q.key != NULL &&
        (p->kind != MAP_USERS || activity_check(&p->act, src, p->now, &why_attr) == NULL) &&
        map_apply(&q.want, p->cfg->map, p->kind, src, &q.err) == DM_OK) {
        for (size_t i = 0; i < p->ncensus && rc == DM_OK; i++) {
            const struct dm_attr *a = entry_attr(q.want, p->census_attrs[i]);
            for (size_t j = 0; a != NULL && j < a->nvals && rc == DM_OK; j++) {
                rc = uniq_add(p->census, a->name, a->vals[j].data, a->vals[j].len);
            }
        }
    }
    pipe_pobj_clear(&q);
    return rc;
}

/* Holds q back when one of its identity values is shared with another in-scope object. */
static enum stage_rc stage_collisions(struct pipe *p, struct pobj *q)
{
    for (size_t i = 0; p->census != NULL && i < p->ncensus; i++) {
        const struct dm_attr *a = entry_attr(q->want, p->census_attrs[i]);
        for (size_t j = 0; a != NULL && j < a->nvals; j++) {
            unsigned c = uniq_count(p->census, a->name, a->vals[j].data, a->vals[j].len);
            if (c > 1) {
                q->held = PLAN_R_COLLISION_SOURCE;
                q->category = "collision_source";
                dm_err_set(&q->err, DM_EEXISTS,
                           "%s \"%s\" is shared by %u source objects: none of them is written "
                           "until the source is fixed",
                           a->name,
                           map_mask(p->cfg->map, p->kind, a->name, (const char *)a->vals[j].data),
                           c);
                dm_err_attr(&q->err, a->name);
                return STAGE_QUEUE;
            }
        }
    }
    return STAGE_GO;
}

/* ---- DN-valued attributes and members ---- */

/* Splits an optional RFC 4517 uniqueMember UID suffix ("#'0101'B") off a DN value.
 * Returns the length of the DN part. */
size_t pipe_name_uid_split(const char *v, size_t len)
{
    if (len >= 4 && v[len - 1] == 'B' && v[len - 2] == '\'') {
        for (size_t i = len - 2; i > 1; i--) {
            if (v[i - 1] == '\'' && v[i - 2] == '#') {
                return i - 2;
            }
        }
    }
    return len;
}

/* How one member value resolved. */
enum resolved {
    RES_OK = 1,      /* out holds the target reference */
    RES_LEFT = 0,    /* not migrated: left out and reported */
    RES_NESTED = -1, /* a group, and the target has no nested groups */
    RES_LATER = 2,   /* a group of the scope not yet at the target: write this group later */
    RES_LEAVER = 3,  /* a leaver (no longer in the source): left out quietly */
};

static int rebase_into(struct pipe *p, const char *dn, struct buf *out)
{
    char *reb = NULL;
    int rc;

    if (p->cfg->target.conn.base != NULL &&
        dn_rebase(&reb, dn, p->cfg->source.conn.base, p->cfg->target.conn.base, NULL) == DM_OK) {
        rc = buf_puts(out, reb);
    } else {
        rc = buf_puts(out, dn); /* outside the source base: kept as is */
    }
    free(reb);
    return rc;
}

/* Resolves one DN-valued attribute value of the mapped entry into out. */
static int resolve_value(struct pipe *p, const struct dm_val *v, int is_member, struct buf *out,
                         enum resolved *how, struct dm_err *err)
{
    size_t dnlen = pipe_name_uid_split((const char *)v->data, v->len);
    char *dn = strndup((const char *)v->data, dnlen), *norm = NULL;
    struct state_object o = {0};
    struct dm_err e = {0};
    int rc = DM_OK;

    *how = RES_OK;
    buf_reset(out);
    if (dn == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    if (!is_member) {
        rc = rebase_into(p, dn, out);
        goto suffix;
    }
    if (dn_normalize(&norm, dn, &e) != DM_OK) {
        *how = RES_LEFT; /* not even a DN */
        goto done;
    }
    rc = state_object_by_source_dn(&o, p->state, norm, &e);
    if (rc != DM_OK && rc != DM_ENOTFOUND) {
        *err = e;
        goto done;
    }
    if (rc == DM_OK && (strcmp(o.status, "left") == 0 || strcmp(o.status, "deleted") == 0)) {
        *how = RES_LEAVER; /* left the source: it leaves its groups too */
        goto done;
    }
    if (rc == DM_OK && strcmp(o.status, "ok") == 0 && strcmp(o.kind, "user") == 0 &&
        o.disabled_at != 0 && p->cfg->leavers.remove_from_groups) {
        *how = RES_LEAVER; /* disabled (in the source, or as a leaver): out of its groups */
        goto done;
    }
    /* at the target: written (in this run, for a snapshot written anew) */
    if (rc == DM_OK && strcmp(o.status, "ok") == 0 &&
        (!(p->tops->caps & CONN_SNAPSHOT) || o.last_run == p->st->run_id)) {
        rc = DM_OK;
        if (!(p->tops->caps & CONN_NESTED_GROUPS) && strcmp(o.kind, "group") == 0) {
            *how = RES_NESTED;
            goto done;
        }
        rc = buf_puts(out, o.target_ref);
        goto suffix;
    }
    rc = DM_OK;
    if (in_gset(p, norm)) {
        /* a group of the scope that is not at the target yet */
        int by_ref = p->tops->members == CONN_MEMBERS_REF;
        if (!(p->tops->caps & CONN_NESTED_GROUPS)) {
            *how = RES_NESTED;
        } else if (p->o->mode == PIPE_PLAN && by_ref) {
            rc = buf_puts(out, dn); /* a placeholder: the id exists only after the run */
        } else if (p->o->mode == PIPE_PLAN || (!by_ref && p->cycle_break &&
                                               (!pipe_handled_has(p, norm) || in_batch(p, norm)))) {
            rc = rebase_into(p, dn, out); /* its DN is known: written in this pass */
            goto suffix;
        } else if ((pipe_handled_has(p, norm) && !in_batch(p, norm)) ||
                   (by_ref && p->cycle_break)) {
            /* handled in this run and not written (failed or held); or, in a cycle, a group
             * whose id the target has not assigned yet */
            *how = RES_LEFT;
        } else {
            *how = RES_LATER;
        }
        goto done;
    }
    /* A plan predicts: members inside the migrated scopes will resolve. */
    if (p->o->mode == PIPE_PLAN && (dn_is_under(dn, p->cfg->source.users_base) == 1 ||
                                    dn_is_under(dn, p->cfg->source.groups_base) == 1)) {
        if (p->tops->members == CONN_MEMBERS_REF) {
            rc = buf_puts(out, dn); /* a placeholder: the id exists only after the run */
            goto done;
        }
        rc = rebase_into(p, dn, out);
        goto suffix;
    }
    *how = RES_LEFT;
    goto done;
suffix:
    if (rc == DM_OK && dnlen < v->len) {
        rc = buf_append(out, v->data + dnlen, v->len - dnlen);
    }
done:
    state_object_clear(&o);
    free(dn);
    free(norm);
    return rc;
}

static int in_list(char *const *list, const char *name)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcasecmp(list[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Records that a member of the group being written was left out (journal errors). */
static int note_left_out(struct pipe *p, const struct pobj *q, const struct dm_attr *a,
                         const struct dm_val *v, struct dm_err *err)
{
    char msg[1024];
    int rc;

    p->st->unresolved_members++;
    pipe_count_add(p->st->cats, &p->st->ncats, "member_unresolved", 1);
    log_warn("%s %s: %s \"%.*s\" was not migrated; left out of the target", p->kind_name,
             q->want->dn, a->name, (int)v->len, (const char *)v->data);
    if (p->o->mode != PIPE_RUN) {
        return DM_OK;
    }
    snprintf(msg, sizeof(msg), "%s \"%.*s\" was not migrated; left out", a->name,
             (int)(v->len > 900 ? 900 : v->len), (const char *)v->data);
    rc = state_batch_begin(p->state, err);
    if (rc == DM_OK) {
        rc = state_error_add(p->state, p->st->run_id, q->key, q->want->dn, "member_unresolved", msg,
                             err);
    }
    if (rc == DM_OK) {
        rc = state_batch_commit(p->state, err);
    }
    return rc;
}

/* Rewrites every DN-valued attribute of the mapped entry: values rebased to the target,
 * members resolved through the journal. A group that names a group of the scope not yet at
 * the target waits for a later pass (STAGE_DROP, counted as deferred). */
static enum stage_rc stage_members(struct pipe *p, struct pobj *q)
{
    struct entry *m = q->want;
    struct buf b;
    long long before = 0, after = 0;
    int rc = DM_OK, later = 0;

    buf_init(&b, 1 << 20);
    /* first pass over the values: only look whether this group must wait */
    for (size_t i = 0; i < m->nattrs && rc == DM_OK && !later && p->kind == MAP_GROUPS; i++) {
        const struct dm_attr *a = &m->attrs[i];
        if (!in_list(p->cfg->member_attrs, a->name)) {
            continue;
        }
        for (size_t j = 0; j < a->nvals && rc == DM_OK && !later; j++) {
            enum resolved how;
            rc = resolve_value(p, &a->vals[j], 1, &b, &how, &p->fatal_err);
            later = how == RES_LATER;
        }
    }
    if (rc == DM_OK && later) {
        buf_free(&b);
        p->pass_deferred++;
        return STAGE_DROP;
    }
    for (size_t i = 0; i < m->nattrs && rc == DM_OK; i++) {
        struct dm_attr *a = &m->attrs[i];
        int is_member = in_list(p->cfg->member_attrs, a->name);
        size_t out = 0;
        if (!is_member &&
            (p->tops->ident != CONN_IDENT_DN || !in_list(p->cfg->dn_attrs, a->name))) {
            continue; /* a target that names objects by key has no DNs to move values to */
        }
        if (is_member) {
            before += (long long)a->nvals;
        }
        for (size_t j = 0; j < a->nvals && rc == DM_OK; j++) {
            enum resolved how;
            rc = resolve_value(p, &a->vals[j], is_member, &b, &how, &p->fatal_err);
            if (rc != DM_OK) {
                break;
            }
            if (how == RES_NESTED) {
                p->pass_nested++;
                log_warn("%s %s: %s \"%.*s\" is a group; the target has no nested groups, "
                         "so it is left out (flatten nesting in the source map)",
                         p->kind_name, m->dn, a->name, (int)a->vals[j].len,
                         (const char *)a->vals[j].data);
                continue; /* dropped: the value stays in the entry's arena until it is freed */
            }
            if (how == RES_LEAVER) {
                log_debug("%s %s: %s \"%.*s\" left the source; left out", p->kind_name, m->dn,
                          a->name, (int)a->vals[j].len, (const char *)a->vals[j].data);
                continue;
            }
            if (how != RES_OK) {
                rc = note_left_out(p, q, a, &a->vals[j], &p->fatal_err);
                continue;
            }
            a->vals[out] = a->vals[j];
            rc = attr_set_value(a, out, b.len > 0 ? b.data : "", b.len);
            buf_reset(&b);
            if (rc != DM_OK) {
                break;
            }
            out++;
        }
        if (rc == DM_OK) {
            a->nvals = out;
            if (is_member) {
                after += (long long)out;
            }
        }
    }
    buf_free(&b);
    if (rc != DM_OK) {
        p->fatal_rc = rc;
        return STAGE_FATAL;
    }
    for (size_t i = m->nattrs; i-- > 0;) {
        if (m->attrs[i].nvals == 0) {
            entry_del_attr(m, m->attrs[i].name); /* every value left out */
        }
    }
    if (before > 0 && after == 0) {
        q->members_left_out = 1;
        /* groupOfNames and groupOfUniqueNames must have a member (RFC 4519): never a schema
         * error, the group is held back with its reason instead */
        if (entry_has_class(m, "groupOfNames") || entry_has_class(m, "groupOfUniqueNames")) {
            q->held = PLAN_R_MEMBERS_LEFT_OUT;
            q->category = "members_left_out";
            dm_err_set(&q->err, DM_ESCHEMA,
                       "every member of this group was left out and its object class requires "
                       "one: it is held back");
            dm_err_dn(&q->err, m->dn);
            return STAGE_QUEUE;
        }
        log_warn("%s %s: every member was left out; it is written without members", p->kind_name,
                 m->dn);
    }
    return STAGE_GO;
}

/* ---- containers (DN targets) ---- */

static int set_has(char *const *set, size_t n, const char *norm)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(set[i], norm) == 0) {
            return 1;
        }
    }
    return 0;
}

static int set_add(char ***set, size_t *n, const char *norm)
{
    char **g = realloc(*set, (*n + 1) * sizeof(char *));

    if (g == NULL) {
        return DM_ENOMEM;
    }
    *set = g;
    g[*n] = strdup(norm);
    if (g[*n] == NULL) {
        return DM_ENOMEM;
    }
    (*n)++;
    return DM_OK;
}

/* The parent DN of dn (a new string), or NULL for a single RDN / ENOMEM. */
static char *parent_of(const char *dn)
{
    struct dn *d = NULL;
    char *out = NULL;

    if (dn_parse(&d, dn, NULL) == DM_OK && d->nrdns > 1) {
        const char *s = dn + d->rdns[0].end;
        while (*s == ',' || *s == ';' || *s == ' ') {
            s++;
        }
        out = strdup(s);
    }
    dn_free(d);
    return out;
}

/* A container for the target DN tdn, copied from its source counterpart: object classes,
 * the naming attribute and description. */
static int container_entry(struct pipe *p, const char *tdn, struct pobj *c, struct dm_err *err)
{
    int is_base;
    char *sdn = NULL;
    struct entry *s = NULL;
    struct dn *d = NULL;
    int rc;

    rc = dn_rebase(&sdn, tdn, p->cfg->target.conn.base, p->cfg->source.conn.base, err);
    if (rc != DM_OK) {
        return rc;
    }
    if (p->src2 == NULL) {
        rc = p->sops->open(&p->src2, &p->cfg->source.conn, err);
        if (rc != DM_OK) {
            goto done;
        }
    }
    rc = p->sops->lookup(&s, p->src2, sdn, err);
    if (rc == DM_ENOTFOUND && p->cfg->target.conn.disable_container != NULL &&
        dn_is_under(p->cfg->target.conn.disable_container, tdn) == 1) {
        /* target.disable.container (or a level above it): the source has no such entry */
        rc = pipe_container_synth(&s, tdn, err);
        if (rc != DM_OK) {
            goto done;
        }
    } else if (rc == DM_ENOTFOUND) {
        rc = dm_err_set(err, DM_ENOTFOUND,
                        "container %s is missing at the target and has no source entry (%s) to "
                        "copy",
                        tdn, sdn);
        goto done;
    }
    if (rc != DM_OK) {
        goto done;
    }
    c->want = entry_new(tdn);
    c->key = NULL;
    rc = c->want != NULL ? dn_normalize(&c->key, sdn, err) : DM_ENOMEM;
    if (rc == DM_OK) {
        c->source_dn = strdup(c->key);
        rc = c->source_dn != NULL ? DM_OK : DM_ENOMEM;
    }
    is_base = dn_is_under(p->cfg->target.conn.base, tdn) == 1;
    for (size_t i = 0; rc == DM_OK && i < s->nattrs; i++) {
        const struct dm_attr *a = &s->attrs[i];
        /* the base entry (a snapshot's first) is copied whole: its classes may need more
         * than a name (organization: o) */
        if (!is_base && strcasecmp(a->name, "objectClass") != 0 &&
            strcasecmp(a->name, "description") != 0) {
            continue;
        }
        for (size_t k = 0; k < a->nvals && rc == DM_OK; k++) {
            rc = entry_add_value(c->want, a->name, a->vals[k].data, a->vals[k].len);
        }
    }
    /* the naming attribute(s), from the RDN */
    if (rc == DM_OK && (rc = dn_parse(&d, tdn, err)) == DM_OK) {
        for (size_t k = 0; k < d->rdns[0].navas && rc == DM_OK; k++) {
            const struct dn_ava *av = &d->rdns[0].avas[k];
            /* the base's own name (dc=dst, not the source's dc=src) */
            const struct dm_attr *have = is_base ? NULL : entry_attr(s, av->type);
            if (is_base) {
                entry_del_attr(c->want, av->type);
            }
            for (size_t j = 0; have != NULL && j < have->nvals && rc == DM_OK; j++) {
                rc = entry_add_value(c->want, av->type, have->vals[j].data, have->vals[j].len);
            }
            if (rc == DM_OK && have == NULL) {
                rc = entry_add_value(c->want, av->type, av->value, av->value_len);
            }
        }
    }
    if (rc == DM_ENOMEM) {
        dm_err_set(err, DM_ENOMEM, "out of memory");
    }
done:
    dn_free(d);
    entry_free(s);
    free(sdn);
    return rc;
}

int pipe_container_synth(struct entry **out, const char *tdn, struct dm_err *err)
{
    struct dn *d = NULL;
    struct entry *e = NULL;
    int rc = dn_parse(&d, tdn, err);

    if (rc != DM_OK) {
        return rc;
    }
    if (d->nrdns == 0 || d->rdns[0].navas != 1 || strcasecmp(d->rdns[0].avas[0].type, "ou") != 0) {
        rc = dm_err_set(err, DM_ENOTFOUND,
                        "container %s is missing at the target, and only an ou= container can "
                        "be created for it (target.disable.container): create it first",
                        tdn);
        dm_err_dn(err, tdn);
        goto done;
    }
    e = entry_new(tdn);
    if (e == NULL || entry_add_str(e, "objectClass", "top") != DM_OK ||
        entry_add_str(e, "objectClass", "organizationalUnit") != DM_OK ||
        entry_add_value(e, "ou", d->rdns[0].avas[0].value, d->rdns[0].avas[0].value_len) != DM_OK) {
        rc = dm_err_set(err, DM_ENOMEM, "out of memory");
        goto done;
    }
    *out = e;
    e = NULL;
done:
    entry_free(e);
    dn_free(d);
    return rc;
}

/* Makes sure the containers above q's target DN exist (or will, earlier in this batch):
 * missing ones become container objects queued before q, parents first. With
 * target.create_containers false, q is held back naming the missing container. */
static enum stage_rc stage_containers(struct pipe *p, struct pobj *q)
{
    char *chain[64];
    size_t n = 0;
    char *dn, *norm = NULL;
    enum stage_rc out = STAGE_GO;

    if (!(p->tops->caps & CONN_TREE)) {
        return STAGE_GO;
    }
    dn = parent_of(q->want->dn);
    /* walk up to the first container known to exist (the base exists: check says so) */
    while (dn != NULL && n < DM_ARRAY_LEN(chain)) {
        int at_base;
        free(norm);
        norm = NULL;
        if (dn_normalize(&norm, dn, NULL) != DM_OK) {
            break;
        }
        /* the base exists (check says so), except in a snapshot written anew: there it is
         * the first entry written */
        at_base = dn_is_under(p->cfg->target.conn.base, dn) == 1;
        if ((at_base && (!(p->tops->caps & CONN_SNAPSHOT) ||
                         dn_is_under(dn, p->cfg->target.conn.base) != 1)) ||
            set_has(p->cont_ok, p->ncont_ok, norm)) {
            break;
        }
        if (set_has(p->cont_missing, p->ncont_missing, norm)) {
            chain[n++] = dn;
            dn = NULL;
            break;
        }
        chain[n++] = dn;
        dn = parent_of(dn);
    }
    free(dn);
    free(norm);
    norm = NULL;
    /* top-down: look each up, create what is missing */
    while (n > 0 && out == STAGE_GO) {
        char *c = chain[--n];
        struct tview_req r = {c, 1};
        struct proj *have = NULL;
        int rc;
        struct dm_err e = {0};

        if (dn_normalize(&norm, c, NULL) != DM_OK) {
            norm = strdup(c);
        }
        if (set_has(p->cont_missing, p->ncont_missing, norm)) {
            rc = DM_ENOTFOUND;
        } else {
            tview_get(p->tv, OBJ_USER, &r, 1, &have, &rc, &e);
        }
        proj_free(have);
        if (rc == DM_OK) {
            if (set_add(&p->cont_ok, &p->ncont_ok, norm) != DM_OK) {
                goto nomem;
            }
        } else if (rc != DM_ENOTFOUND) {
            q->failed = 1;
            q->category = dm_rc_category(rc);
            q->err = e;
            out = STAGE_QUEUE;
        } else if (!p->cfg->target.create_containers) {
            if (!set_has(p->cont_missing, p->ncont_missing, norm) &&
                set_add(&p->cont_missing, &p->ncont_missing, norm) != DM_OK) {
                goto nomem;
            }
            q->held = PLAN_R_CONTAINER;
            q->category = "container_missing";
            dm_err_set(&q->err, DM_ENOTFOUND,
                       "container %s is missing at the target (target.create_containers is "
                       "false)",
                       c);
            out = STAGE_QUEUE;
        } else {
            struct pobj *k = &p->batch[p->nbatch];
            memset(k, 0, sizeof(*k));
            k->container = 1;
            k->kind = p->kind;
            k->look = 0;
            rc = container_entry(p, c, k, &e);
            if (rc == DM_OK) {
                struct dm_err je = {0};
                entry_digest(k->want, k->digest);
                rc = state_object_get(&k->rec, p->state, "container", k->key, &je);
                k->has_rec = rc == DM_OK;
                rc = rc == DM_ENOTFOUND ? DM_OK : rc;
                if (rc != DM_OK) {
                    e = je;
                }
            }
            if (rc == DM_ENOMEM) {
                pipe_pobj_clear(k);
                goto nomem;
            }
            if (rc != DM_OK) {
                pipe_pobj_clear(k);
                q->failed = 1;
                q->category = "container_missing";
                q->err = e;
                out = STAGE_QUEUE;
            } else {
                k->plan.op = PLAN_CREATE;
                k->plan.reason = PLAN_R_CONTAINER;
                p->nbatch++;
                if (set_add(&p->cont_ok, &p->ncont_ok, norm) != DM_OK) {
                    goto nomem;
                }
            }
        }
        free(norm);
        norm = NULL;
        free(c);
    }
    while (n > 0) {
        free(chain[--n]);
    }
    free(norm);
    return out;
nomem:
    free(norm);
    while (n > 0) {
        free(chain[--n]);
    }
    p->fatal_rc = dm_err_set(&p->fatal_err, DM_ENOMEM, "out of memory");
    return STAGE_FATAL;
}

/* Renames q's wanted object with the collision suffix: the natural key (CONN_IDENT_KEY) or
 * the first RDN (DN targets), and the attribute that holds it. */
int pipe_apply_suffix(struct pipe *p, struct pobj *q, struct dm_err *err)
{
    const char *sfx = p->cfg->collision_suffix;
    int by_dn = p->tops->ident == CONN_IDENT_DN;
    char *name = planner_suffixed(q->want->dn, sfx, by_dn);
    const char *attr;
    struct dn *d = NULL;
    int rc;

    if (name == NULL) {
        return dm_err_set(err, DM_EINVAL, "cannot add the collision suffix to this name");
    }
    if (!by_dn) {
        attr = p->tops->natural_key[q->kind == MAP_USERS ? 0 : 1];
    } else {
        rc = dn_parse(&d, q->want->dn, err);
        if (rc != DM_OK) {
            free(name);
            return rc;
        }
        attr = d->rdns[0].avas[0].type;
    }
    {
        const struct dm_attr *a = entry_attr(q->want, attr);
        char *v = a != NULL && a->nvals > 0
                      ? planner_suffixed((const char *)a->vals[0].data, sfx, 0)
                      : NULL;
        rc = entry_set_dn(q->want, name);
        if (rc == DM_OK && v != NULL) {
            char *keep = strdup(attr);
            entry_del_attr(q->want, attr);
            rc = keep != NULL ? entry_add_str(q->want, keep, v) : DM_ENOMEM;
            free(keep);
        }
        free(v);
    }
    dn_free(d);
    free(name);
    return rc == DM_OK ? DM_OK : dm_err_set(err, rc, "out of memory");
}

/* ---- digest and journal ---- */

/* The digest of what want asks the target to hold: create-only attributes (passwords)
 * left out, so a password changed in the source is not a change for the target. */
static void want_digest(const struct pipe *p, const struct entry *want, char hex[65])
{
    struct entry view = *want;
    struct dm_attr stack[64],
        *attrs = want->nattrs <= 64 ? stack : malloc(want->nattrs * sizeof(*attrs));

    if (attrs == NULL) {
        entry_digest(want, hex);
        return;
    }
    view.nattrs = 0;
    view.attrs = attrs;
    for (size_t i = 0; i < want->nattrs; i++) {
        if (map_attr_ownership(p->cfg->map, p->kind, want->attrs[i].name) != MAP_OWN_CREATE_ONLY) {
            attrs[view.nattrs++] = want->attrs[i];
        }
    }
    entry_digest(&view, hex);
    if (attrs != stack) {
        free(attrs);
    }
}

/* Journal row and whether the target must be looked at: always when the run verifies the
 * target; otherwise only when the journal does not say "written, unchanged since". */
static enum stage_rc stage_journal(struct pipe *p, struct pobj *q)
{
    int rc;

    if (p->saved) {
        /* run --plan: only the objects the plan names are looked at, each of them always */
        rc = pipe_saved_stage(p, q);
        if (rc <= 0) {
            return rc < 0 ? STAGE_FATAL : STAGE_DROP;
        }
    }
    rc = state_object_get(&q->rec, p->state, p->kind_name, q->key, &p->fatal_err);
    if (rc != DM_OK && rc != DM_ENOTFOUND) {
        p->fatal_rc = rc;
        return STAGE_FATAL;
    }
    q->has_rec = rc == DM_OK;
    if (q->has_rec && q->rec.suffixed && pipe_apply_suffix(p, q, &q->err) != DM_OK) {
        /* created under the suffix earlier: it keeps that name */
        q->failed = 1;
        q->category = "collision_target";
        return STAGE_QUEUE;
    }
    want_digest(p, q->want, q->digest);
    q->by_ref = q->has_rec && q->rec.target_ref != NULL && q->rec.target_ref[0] &&
                (strcmp(q->rec.status, "ok") == 0 || strcmp(q->rec.status, "failed") == 0 ||
                 strcmp(q->rec.status, "left") == 0);
    if (q->has_rec && strcmp(q->rec.status, "left") == 0 && q->want_disabled < 0) {
        q->want_disabled = 0; /* back in the source: dirmig disabled it, dirmig enables it */
    }
    if (q->has_rec && strcmp(q->rec.status, "deleted") == 0 && q->want_disabled == 1) {
        /* deleted by dirmig (a leaver, or disabled past leavers.delete_after_days) and still
         * disabled in the source: it stays deleted; enabled again, it is created again */
        p->kc->unchanged++;
        return STAGE_DROP;
    }
    if (!p->verify && !q->planned && q->has_rec && strcmp(q->rec.status, "ok") == 0 &&
        strcmp(q->rec.digest, q->digest) == 0 &&
        (q->want_disabled < 0 || q->want_disabled == (q->rec.disabled_at != 0))) {
        p->kc->unchanged++;
        if (p->kind == MAP_GROUPS && pipe_handled_add(p, q->source_dn) != DM_OK) {
            p->fatal_rc = dm_err_set(&p->fatal_err, DM_ENOMEM, "out of memory");
            return STAGE_FATAL;
        }
        return STAGE_DROP;
    }
    q->look = 1;
    if (!p->verify) {
        log_debug("%s %s: looked up at the target (%s)", p->kind_name, q->want->dn,
                  !q->has_rec                        ? "not in the journal"
                  : strcmp(q->rec.status, "ok") != 0 ? "the journal's last write did not complete"
                                                     : "changed since the journal's write");
    }
    return STAGE_GO;
}

/* ---- where a disabled user lives ---- */

/* A target that keeps disabled accounts apart (conn_ops.disabled_ref: LDAP
 * target.disable.container) gets a disabled user at that reference: created there when it
 * arrives disabled, moved there (the planner's move) when it is disabled, moved back where
 * the map puts it when it is enabled again. When the source says nothing of the state, the
 * user stays where the journal has it. After stage_journal(): the account state is final,
 * and the digest is of the entry where the map puts it (unchanged by a move). */
static enum stage_rc stage_relocate(struct pipe *p, struct pobj *q)
{
    const struct conn_cfg *tc = &p->cfg->target.conn;
    int disabled = q->want_disabled;
    char *dref = NULL;
    int rc = DM_OK;

    if (p->kind != MAP_USERS || q->container || p->tops->disabled_ref == NULL) {
        return STAGE_GO;
    }
    if (disabled < 0 && q->has_rec && q->rec.target_ref != NULL && q->rec.target_ref[0] &&
        p->tops->disabled_ref(&dref, tc, q->rec.target_ref, NULL) == DM_OK && dref != NULL) {
        disabled = strcmp(dref, q->rec.target_ref) == 0; /* it is there: it stays there */
    }
    free(dref);
    dref = NULL;
    if (disabled != 1) {
        return STAGE_GO;
    }
    rc = p->tops->disabled_ref(&dref, tc, q->want->dn, &q->err);
    if (rc == DM_OK && dref != NULL && entry_set_dn(q->want, dref) != DM_OK) {
        rc = dm_err_set(&q->err, DM_ENOMEM, "out of memory");
    }
    free(dref);
    if (rc == DM_ENOMEM) {
        p->fatal_rc = rc;
        p->fatal_err = q->err;
        return STAGE_FATAL;
    }
    if (rc != DM_OK) {
        q->failed = 1;
        q->category = "dn";
        dm_err_dn(&q->err, q->want->dn);
        return STAGE_QUEUE;
    }
    return STAGE_GO;
}

/* ---- the read callback ---- */

/* Queues q (containers may already sit before it) and flushes a full batch. */
static void enqueue(struct pipe *p, struct pobj *q)
{
    int rc;

    if (q != &p->batch[p->nbatch]) {
        p->batch[p->nbatch] = *q;
        memset(q, 0, sizeof(*q));
    }
    p->nbatch++;
    p->queued++; /* done once its batch is written */
    if (p->kind == MAP_GROUPS && p->batch[p->nbatch - 1].key != NULL) {
        const struct pobj *g = &p->batch[p->nbatch - 1];
        if (pipe_handled_add(p, g->source_dn ? g->source_dn : g->key) != DM_OK) {
            p->fatal_rc = dm_err_set(&p->fatal_err, DM_ENOMEM, "out of memory");
            return;
        }
        p->pass_written++;
    }
    if (p->nbatch >= (size_t)p->cfg->batch_size) {
        rc = pipe_flush(p, &p->fatal_err);
        if (rc != DM_OK && p->fatal_rc == DM_OK) {
            p->fatal_rc = rc;
        }
    }
}

extern volatile sig_atomic_t pipe_stop_flag;

int pipe_on_entry(const struct entry *src, void *payload)
{
    struct pipe *p = payload;
    struct pobj q;
    enum stage_rc s = STAGE_GO;

    if (pipe_stop_flag || (p->o->limit > 0 && p->processed >= p->o->limit)) {
        p->st->interrupted = 1;
        return PIPE_STOP;
    }
    p->prog_read++;
    if (p->census_phase) {
        int rc = pipe_census_entry(p, src);
        if (rc != DM_OK) {
            p->fatal_rc = dm_err_set(&p->fatal_err, rc, "out of memory counting identities");
            return PIPE_STOP;
        }
        pipe_progress(p);
        return 0;
    }
    if (p->vphase != 1) {
        p->processed++;
    }
    if (p->pass == 1 && p->vphase != 1) {
        p->kc->seen++;
    }
    log_set_context(p->st->run_id, src->dn);
    if (p->state != NULL && state_read_begin(p->state, &p->fatal_err) != DM_OK) {
        p->fatal_rc = p->fatal_err.rc;
        return PIPE_STOP;
    }
    memset(&q, 0, sizeof(q));
    q.kind = p->kind;
    q.want_disabled = -1;
    q.key = strdup(src->key != NULL && src->key[0] ? src->key : "");
    if (q.key == NULL || dn_normalize(&q.source_dn, src->dn, &q.err) != DM_OK) {
        q.failed = 1;
        q.category = "dn";
        dm_err_dn(&q.err, src->dn);
        if (p->o->mode == PIPE_VALIDATE) {
            int rc = pipe_validate_entry(p, src, &q);
            pipe_pobj_clear(&q);
            if (rc != DM_OK && p->fatal_rc == DM_OK) {
                p->fatal_rc = rc;
            }
            goto out;
        }
        s = STAGE_QUEUE;
        goto queue;
    }
    if (src->key == NULL || src->key[0] == '\0') {
        /* No key attribute on the entry: the normalized DN is the key. */
        free(q.key);
        q.key = strdup(q.source_dn);
    }
    if (p->digests) {
        entry_digest(src, q.src_digest); /* a saved plan binds to the entry as read */
    }
    if (p->kind == MAP_GROUPS && p->pass > 1 && pipe_handled_has(p, q.source_dn)) {
        pipe_pobj_clear(&q); /* written (or reported) in an earlier pass of this run */
        p->prog_read--;      /* and counted as done there */
        goto out;
    }
    s = stage_scope(p, src, &q);
    if (s == STAGE_GO && pipe_seen(p, &q) != DM_OK) {
        p->fatal_rc = p->fatal_err.rc;
        pipe_pobj_clear(&q);
        goto out;
    }
    if (s == STAGE_GO && p->o->mode == PIPE_VALIDATE) {
        int rc = pipe_validate_entry(p, src, &q);
        pipe_pobj_clear(&q);
        if (rc != DM_OK && p->fatal_rc == DM_OK) {
            p->fatal_rc = rc;
        }
        goto out;
    }
    if (s == STAGE_GO) {
        s = stage_creds(p, src, &q);
    }
    if (s == STAGE_GO) {
        s = stage_map(p, src, &q);
    }
    if (s == STAGE_GO) {
        stage_state(p, src, &q);
        s = stage_identity(p, src, &q);
    }
    if (s == STAGE_GO) {
        s = stage_collisions(p, &q);
    }
    if (s == STAGE_GO) {
        s = stage_members(p, &q);
    }
    if (s == STAGE_GO) {
        s = stage_journal(p, &q);
    }
    if (s == STAGE_GO) {
        s = stage_relocate(p, &q);
    }
    if (s == STAGE_GO) {
        s = stage_containers(p, &q);
    }
queue:
    if (s == STAGE_GO || s == STAGE_QUEUE) {
        enqueue(p, &q);
    }
    pipe_pobj_clear(&q);
out:
    log_set_context(p->st->run_id, NULL);
    pipe_progress(p);
    return p->fatal_rc != DM_OK ? PIPE_STOP : 0;
}
