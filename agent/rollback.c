/*
 * rollback.c: dirmig rollback (agent/rollback.h). Reads a run's undo records newest first,
 * a page at a time; checks each object at the target; builds the reverse changes into a
 * batch applied through the target connector; journals what became of each.
 *
 * A batch is applied before a record whose object (or a group it gives a member back to) is
 * already written by the batch is checked: every check sees the target as the reverse
 * changes before it left it, and a record's changes are sent in order.
 */
#include <config.h>
#include "agent/rollback.h"
#include "agent/exitcode.h"
#include "agent/pipeline.h"
#include "agent/state.h"
#include "agent/undo.h"
#include "agent/util/log.h"
#include "connectors/connector.h"
#include "schema/dn.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>

#define RB_MAX_LIST 100
#define RB_META_TARGET "target_identity" /* as the pipeline binds the journal */

/* One undo record, copied out of the store. */
struct rb_rec {
    long long id;
    char *kind, *key, *op, *ref, *ref_before, *source_dn, *names, *after_digest, *row_before;
    struct entry *before; /* the decoded before image, or NULL */
};

/* A line of the report: a refused change, or (--plan) what would be done. */
struct rb_line {
    char op[16];
    char kind[16];
    char *dn;
    char text[240];
};

struct rb {
    const struct dm_config *cfg;
    const struct cli_opts *o;
    struct state *state;
    const struct conn_ops *tops, *sops;
    struct conn *dst, *src;
    int by_key, dry;
    int *exit_hint;
    const char *note; /* nothing to do: why (static) */
    long long run;    /* the run rolled back */
    long long rb_run; /* this rollback's own run (0 with --plan) */
    struct state_run target_run;
    /* --wave */
    const struct config_wave *wave;
    int wave_all; /* the run was made with this wave: all of it */
    char **wave_dns;
    size_t nwave, capwave;
    /* the batch */
    struct change *ch;
    struct apply_result *res;
    struct entry **ents; /* the changes' entries (owned) */
    size_t *owner;       /* record of each change (index into recs) */
    size_t n, cap;
    struct rb_rec *recs;
    size_t nrecs, caprecs;
    char **dirty; /* normalised references the batch writes */
    size_t ndirty, capdirty;
    /* what was done */
    long long records, removed, restored, recreated, refused, failed, skipped, already;
    struct rb_line refusals[RB_MAX_LIST];
    size_t nrefusals;
    struct rb_line actions[RB_MAX_LIST];
    size_t nactions;
};

static const char *const merge_member[] = {"member", NULL};
static const char *const merge_unique[] = {"uniqueMember", NULL};

static void rec_clear(struct rb_rec *r)
{
    free(r->kind);
    free(r->key);
    free(r->op);
    free(r->ref);
    free(r->ref_before);
    free(r->source_dn);
    free(r->names);
    free(r->after_digest);
    free(r->row_before);
    entry_free(r->before);
    memset(r, 0, sizeof(*r));
}

static void line_add(struct rb_line *list, size_t *n, const char *op, const char *kind,
                     const char *dn, const char *text)
{
    struct rb_line *l;

    if (*n >= RB_MAX_LIST) {
        return;
    }
    l = &list[*n];
    l->dn = strdup(dn != NULL ? dn : "");
    if (l->dn == NULL) {
        return;
    }
    snprintf(l->op, sizeof(l->op), "%s", op);
    snprintf(l->kind, sizeof(l->kind), "%s", kind);
    snprintf(l->text, sizeof(l->text), "%s", text);
    (*n)++;
}

static enum obj_kind obj_of(const char *kind)
{
    return strcmp(kind, "group") == 0 ? OBJ_GROUP : OBJ_USER;
}

/* The comparison form of a reference: a normalised DN, or the id as it is. New string. */
static char *norm_ref(const struct rb *b, const char *ref)
{
    char *out = NULL;

    if (!b->by_key && dn_normalize(&out, ref, NULL) == DM_OK) {
        return out;
    }
    return strdup(ref);
}

static int is_dirty(const struct rb *b, const char *ref)
{
    char *n;
    int hit = 0;

    if (ref == NULL || ref[0] == '\0' || b->ndirty == 0) {
        return 0;
    }
    n = norm_ref(b, ref);
    for (size_t i = 0; n != NULL && i < b->ndirty && !hit; i++) {
        hit = strcmp(b->dirty[i], n) == 0;
    }
    free(n);
    return hit;
}

static int add_dirty(struct rb *b, const char *ref)
{
    if (ref == NULL || ref[0] == '\0') {
        return DM_OK;
    }
    if (b->ndirty == b->capdirty) {
        size_t nc = b->capdirty ? b->capdirty * 2 : 64;
        char **d = realloc(b->dirty, nc * sizeof(*d));
        if (d == NULL) {
            return DM_ENOMEM;
        }
        b->dirty = d;
        b->capdirty = nc;
    }
    b->dirty[b->ndirty] = norm_ref(b, ref);
    return b->dirty[b->ndirty++] != NULL ? DM_OK : DM_ENOMEM;
}

/* The group memberships a record gives back: "ATTRIBUTE REF" values of its before image. */
static const struct dm_attr *groups_of(const struct rb_rec *r)
{
    return r->before != NULL ? entry_attr(r->before, CONN_UNDO_GROUPS) : NULL;
}

/* ---- reading the object at the target ---- */

/* The object at ref now: *out a new entry, or DM_ENOTFOUND. */
static int read_now(struct entry **out, struct rb *b, const char *kind, const char *ref,
                    struct dm_err *err)
{
    if (b->by_key) {
        if (b->tops->get == NULL) {
            return dm_err_set(err, DM_EINVAL, "this target cannot read an object by its id");
        }
        return b->tops->get(out, b->dst, obj_of(kind), ref, err);
    }
    return b->tops->lookup(out, b->dst, ref, err);
}

/* Why rec cannot be rolled back now (written into why), 0 when it can, 2 when there is
 * nothing to do (a created object already gone). Negative: the target cannot be read
 * (err). */
static int check(struct rb *b, const struct rb_rec *r, char *why, size_t len, struct dm_err *err)
{
    struct entry *now = NULL;
    char digest[65];
    int rc;

    if (strcmp(r->op, UNDO_DELETED) == 0) {
        if (r->before == NULL) {
            snprintf(why, len,
                     "deleted for good at the target: this target cannot create it again");
            return 1;
        }
        rc = read_now(&now, b, r->kind, r->ref_before, err);
        entry_free(now);
        if (rc == DM_OK) {
            snprintf(why, len, "an object is at %s again since run %lld", r->ref_before, b->run);
            return 1;
        }
        return rc == DM_ENOTFOUND ? 0 : -1;
    }
    if (strcmp(r->op, UNDO_CREATED) != 0 && r->before == NULL) {
        snprintf(why, len, "the run recorded no undo image for this change");
        return 1;
    }
    rc = read_now(&now, b, r->kind, r->ref, err);
    if (rc == DM_ENOTFOUND) {
        if (strcmp(r->op, UNDO_CREATED) == 0) {
            return 2;
        }
        snprintf(why, len, "no longer at the target (deleted since run %lld)", b->run);
        return 1;
    }
    if (rc != DM_OK) {
        return -1;
    }
    undo_digest(digest, now, r->names, (const char *const *)b->cfg->dn_attrs);
    entry_free(now);
    if (r->after_digest == NULL || strcmp(digest, r->after_digest) != 0) {
        snprintf(why, len, "changed at the target since run %lld: left as it is", b->run);
        return 1;
    }
    return 0;
}

/* ---- the reverse changes ---- */

static int grow(struct rb *b)
{
    size_t nc = b->cap ? b->cap * 2 : 64;
    struct change *c = realloc(b->ch, nc * sizeof(*c));
    struct apply_result *r;
    struct entry **e;
    size_t *o;

    if (c == NULL) {
        return DM_ENOMEM;
    }
    b->ch = c;
    r = realloc(b->res, nc * sizeof(*r));
    if (r == NULL) {
        return DM_ENOMEM;
    }
    b->res = r;
    e = realloc(b->ents, nc * sizeof(*e));
    if (e == NULL) {
        return DM_ENOMEM;
    }
    b->ents = e;
    o = realloc(b->owner, nc * sizeof(*o));
    if (o == NULL) {
        return DM_ENOMEM;
    }
    b->owner = o;
    b->cap = nc;
    return DM_OK;
}

/* A new change slot for record ri, its entry e (taken). */
static struct change *slot(struct rb *b, size_t ri, struct entry *e)
{
    struct change *c;

    if (e == NULL || (b->n == b->cap && grow(b) != DM_OK)) {
        entry_free(e);
        return NULL;
    }
    c = &b->ch[b->n];
    memset(c, 0, sizeof(*c));
    memset(&b->res[b->n], 0, sizeof(b->res[b->n]));
    b->ents[b->n] = e;
    b->owner[b->n] = ri;
    c->entry = e;
    b->n++;
    return c;
}

/* The before image without its pseudo attributes (what the object gets back). */
static struct entry *image_of(const struct rb_rec *r, const char *dn, int *state)
{
    struct entry *e = entry_clone(r->before);

    *state = CHANGE_STATE_KEEP;
    if (e == NULL) {
        return NULL;
    }
    if (entry_set_dn(e, dn) != DM_OK) {
        entry_free(e);
        return NULL;
    }
    if (entry_first(e, CONN_UNDO_STATE) != NULL) {
        *state = strcmp(entry_first(e, CONN_UNDO_STATE), "disabled") == 0 ? CHANGE_STATE_DISABLE
                                                                          : CHANGE_STATE_ENABLE;
    }
    entry_del_attr(e, CONN_UNDO_STATE);
    entry_del_attr(e, CONN_UNDO_GROUPS);
    return e;
}

/* The changes that reverse record ri (already checked). */
static int build(struct rb *b, size_t ri)
{
    const struct rb_rec *r = &b->recs[ri];
    const struct dm_attr *g = groups_of(r);
    /* the DN the object has again once reversed: before a delete or a move, its own */
    const char *member =
        strcmp(r->op, UNDO_DELETED) == 0 || strcmp(r->op, UNDO_MOVED) == 0 ? r->ref_before : r->ref;
    struct change *c = NULL;
    int state = CHANGE_STATE_KEEP;

    if (strcmp(r->op, UNDO_CREATED) == 0) {
        c = slot(b, ri, entry_new(r->ref));
        if (c != NULL) {
            c->op = CHANGE_DELETE;
        }
    } else if (strcmp(r->op, UNDO_DELETED) == 0) {
        c = slot(b, ri, image_of(r, r->ref_before, &state));
        if (c != NULL) {
            c->op = CHANGE_ADD;
        }
    } else if (strcmp(r->op, UNDO_MOVED) == 0) {
        c = slot(b, ri, image_of(r, r->ref_before, &state));
        if (c != NULL) {
            c->op = CHANGE_MOVE;
            c->old_ref = r->ref;
        }
    } else {
        c = slot(b, ri, image_of(r, r->ref, &state));
        if (c != NULL) {
            c->op = CHANGE_MODIFY;
        }
    }
    if (c == NULL) {
        return DM_ENOMEM;
    }
    c->kind = obj_of(r->kind);
    c->state = state;
    c->target_id = strcmp(r->op, UNDO_DELETED) == 0 ? r->ref_before : r->ref;
    if (add_dirty(b, r->ref) != DM_OK || add_dirty(b, r->ref_before) != DM_OK) {
        return DM_ENOMEM;
    }
    /* the memberships it lost: added back, the group's other members kept */
    for (size_t k = 0; g != NULL && k < g->nvals; k++) {
        const char *v = (const char *)g->vals[k].data, *sp = strchr(v, ' ');
        char *attr = sp != NULL ? strndup(v, (size_t)(sp - v)) : NULL;
        struct entry *e = sp != NULL ? entry_new(sp + 1) : NULL;
        int rc = attr != NULL && e != NULL ? entry_add_str(e, attr, member) : DM_ENOMEM;

        if (rc == DM_OK && (c = slot(b, ri, e)) == NULL) {
            rc = DM_ENOMEM;
        } else if (rc != DM_OK) {
            entry_free(e);
        }
        if (rc == DM_OK) {
            c->op = CHANGE_MODIFY;
            c->kind = OBJ_GROUP;
            c->target_id = c->entry->dn;
            c->merge = strcasecmp(attr, "uniqueMember") == 0 ? merge_unique : merge_member;
            rc = add_dirty(b, c->entry->dn);
        }
        free(attr);
        if (rc != DM_OK) {
            return rc;
        }
    }
    return DM_OK;
}

/* ---- the journal ---- */

/* The journal row of a reversed object: its row before the run, none for a create; a row
 * a later run wrote is kept, with its digest cleared so the next run looks again. */
static int restore_row(struct rb *b, const struct rb_rec *r, struct dm_err *err)
{
    struct state_object cur = {0}, old = {0};
    int rc;

    if (strcmp(r->kind, "unmatched") == 0) {
        return DM_OK; /* not in the journal */
    }
    rc = state_object_get(&cur, b->state, r->kind, r->key, err);
    if (rc == DM_OK && cur.last_run > b->run) {
        cur.digest[0] = '\0';
        rc = state_object_put(b->state, &cur, err);
        state_object_clear(&cur);
        return rc;
    }
    state_object_clear(&cur);
    if (rc != DM_OK && rc != DM_ENOTFOUND) {
        return rc;
    }
    if (r->row_before == NULL) {
        return state_object_del(b->state, r->kind, r->key, err);
    }
    rc = undo_row_decode(&old, r->row_before, err);
    if (rc == DM_OK) {
        rc = state_object_put(b->state, &old, err);
    }
    state_object_clear(&old);
    return rc;
}

static const char *dn_of(const struct rb_rec *r)
{
    return strcmp(r->op, UNDO_DELETED) == 0 || strcmp(r->op, UNDO_MOVED) == 0 ? r->ref_before
                                                                              : r->ref;
}

/* How the report names the object: its DN, or for a target that names objects by key its id
 * and the source DN it came from (an id alone tells a person nothing). Returns buf. */
static const char *name_of(const struct rb *b, const struct rb_rec *r, char *buf, size_t len)
{
    if (b->by_key && r->source_dn != NULL && r->source_dn[0] != '\0') {
        snprintf(buf, len, "%s (source %s)", dn_of(r), r->source_dn);
    } else {
        snprintf(buf, len, "%s", dn_of(r));
    }
    return buf;
}

/* A record that was not reversed: listed, journaled (not with --plan). */
static int refuse(struct rb *b, const struct rb_rec *r, const char *why, int failed,
                  struct dm_err *err)
{
    if (failed) {
        b->failed++;
    } else {
        b->refused++;
    }
    char name[700];

    name_of(b, r, name, sizeof(name));
    line_add(b->refusals, &b->nrefusals, r->op, r->kind, name, why);
    log_set_context(b->rb_run, dn_of(r));
    log_warn("rollback of run %lld: %s %s %s %s: %s", b->run, r->op, r->kind, name,
             failed ? "failed" : "refused", why);
    log_set_context(b->rb_run, NULL);
    if (b->dry) {
        return DM_OK;
    }
    return state_error_add(b->state, b->rb_run, r->key, dn_of(r), "rollback", why, err);
}

static void count_done(struct rb *b, const struct rb_rec *r)
{
    if (strcmp(r->op, UNDO_CREATED) == 0) {
        b->removed++;
    } else if (strcmp(r->op, UNDO_DELETED) == 0) {
        b->recreated++;
    } else {
        b->restored++;
    }
}

static int ok_status(const struct rb_rec *r, const struct change *c, enum apply_status st)
{
    if (c->op == CHANGE_DELETE) {
        return st == APPLY_DELETED;
    }
    if (c->op == CHANGE_ADD) {
        return st == APPLY_CREATED;
    }
    (void)r;
    return st == APPLY_UPDATED || st == APPLY_UNCHANGED || st == APPLY_DISABLED;
}

/* Sends the batch in two steps: the objects' own changes, then the memberships given back
 * (a group gets a member that exists again, whatever order a connector applies a batch
 * in). Results land at their changes' places. */
static int apply_phases(struct rb *b, struct dm_err *err)
{
    struct change *c = calloc(b->n, sizeof(*c));
    struct apply_result *r = calloc(b->n, sizeof(*r));
    size_t *at = calloc(b->n, sizeof(*at)), k = 0, mains;
    int rc = DM_OK;

    if (c == NULL || r == NULL || at == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "out of memory");
        goto done;
    }
    for (int phase = 0; phase < 2; phase++) {
        for (size_t i = 0; i < b->n; i++) {
            int main_change = i == 0 || b->owner[i] != b->owner[i - 1];
            if (main_change == (phase == 0)) {
                c[k] = b->ch[i];
                at[k++] = i;
            }
        }
    }
    for (mains = 0;
         mains < b->n && (at[mains] == 0 || b->owner[at[mains]] != b->owner[at[mains] - 1]);
         mains++) {
    }
    if (mains > 0) {
        rc = b->tops->apply(b->dst, c, mains, r);
    }
    if (rc == DM_OK && mains < b->n) {
        rc = b->tops->apply(b->dst, c + mains, b->n - mains, r + mains);
    }
    if (rc != DM_OK) {
        rc = dm_err_set(err, rc, "the target connection was lost during the rollback");
    }
    for (size_t i = 0; i < k; i++) {
        b->res[at[i]] = r[i];
        memset(&r[i], 0, sizeof(r[i]));
    }
done:
    for (size_t i = 0; r != NULL && i < b->n; i++) {
        undo_images_free(&r[i]);
    }
    free(c);
    free(r);
    free(at);
    return rc;
}

/* Applies the batch and journals what became of each record. */
static int flush(struct rb *b, struct dm_err *err)
{
    int rc = DM_OK;

    if (b->nrecs == 0) {
        return DM_OK;
    }
    if (b->n > 0) {
        rc = apply_phases(b, err);
    }
    if (rc == DM_OK) {
        rc = state_batch_begin(b->state, err);
    }
    for (size_t ri = 0; ri < b->nrecs && rc == DM_OK; ri++) {
        const struct rb_rec *r = &b->recs[ri];
        const struct dm_err *first = NULL;
        int main_ok = 0, groups_failed = 0, seen = 0;

        for (size_t i = 0; i < b->n; i++) {
            if (b->owner[i] != ri) {
                continue;
            }
            if (!seen++) {
                main_ok = ok_status(r, &b->ch[i], b->res[i].status);
                first = main_ok ? NULL : &b->res[i].err;
            } else if (b->res[i].status == APPLY_FAILED) {
                groups_failed++;
                log_warn("rollback: %s was not given back its membership in %s: %s", dn_of(r),
                         b->ch[i].entry->dn, b->res[i].err.msg);
            }
        }
        if (!main_ok) {
            char msg[600];
            dm_err_format(first, msg, sizeof(msg));
            rc = refuse(b, r, msg, 1, err);
            continue;
        }
        count_done(b, r);
        char name[700];
        log_set_context(b->rb_run, dn_of(r));
        log_info("rollback of run %lld: %s %s %s reversed%s", b->run, r->op, r->kind,
                 name_of(b, r, name, sizeof(name)),
                 groups_failed ? " (some group memberships were not given back)" : "");
        log_set_context(b->rb_run, NULL);
        if (groups_failed) {
            b->failed++;
            rc = state_error_add(b->state, b->rb_run, r->key, dn_of(r), "rollback",
                                 "some group memberships were not given back", err);
        }
        if (rc == DM_OK) {
            rc = state_undo_mark(b->state, r->id, b->rb_run, err);
        }
        if (rc == DM_OK) {
            rc = restore_row(b, r, err);
        }
    }
    if (rc == DM_OK) {
        rc = state_batch_commit(b->state, err);
    }
    for (size_t i = 0; i < b->n; i++) {
        undo_images_free(&b->res[i]);
        entry_free(b->ents[i]);
    }
    b->n = 0;
    for (size_t ri = 0; ri < b->nrecs; ri++) {
        rec_clear(&b->recs[ri]);
    }
    b->nrecs = 0;
    for (size_t i = 0; i < b->ndirty; i++) {
        free(b->dirty[i]);
    }
    b->ndirty = 0;
    return rc;
}

/* ---- one record ---- */

static int in_wave(const struct rb *b, const struct rb_rec *r)
{
    if (b->wave == NULL || b->wave_all) {
        return 1;
    }
    if (strcmp(r->kind, "user") != 0 || r->source_dn == NULL) {
        return 0;
    }
    if (b->wave->ou != NULL) {
        return dn_is_under(r->source_dn, b->wave->ou) == 1;
    }
    for (size_t i = 0; i < b->nwave; i++) {
        if (strcmp(b->wave_dns[i], r->source_dn) == 0) {
            return 1;
        }
    }
    return 0;
}

static void describe(char *buf, size_t len, const struct rb *b, const struct rb_rec *r)
{
    const struct dm_attr *g = groups_of(r);
    size_t ng = g != NULL ? g->nvals : 0;
    char *names = r->before != NULL ? undo_names(r->before) : NULL;

    if (strcmp(r->op, UNDO_CREATED) == 0) {
        snprintf(buf, len, "delete (created by run %lld)", b->run);
    } else if (strcmp(r->op, UNDO_DELETED) == 0) {
        snprintf(buf, len, "create again (deleted by run %lld)%s%zu group membership(s)", b->run,
                 ng ? ", and give back " : ", ", ng);
    } else if (strcmp(r->op, UNDO_MOVED) == 0) {
        snprintf(buf, len, "move back from %s [%s]", r->ref, names ? names : "");
    } else {
        snprintf(buf, len, "give back [%s]%s%s", names ? names : "",
                 entry_first(r->before, CONN_UNDO_STATE) != NULL ? " and the account state" : "",
                 ng ? " and its group memberships" : "");
    }
    free(names);
}

/* --plan: lists what reversing r would do, and notes what it writes. Clears r. */
static int dry_line(struct rb *b, struct rb_rec *r, const char *note)
{
    const struct dm_attr *g = groups_of(r);
    char what[300], line[360], name[700];
    int rc;

    describe(what, sizeof(what), b, r);
    snprintf(line, sizeof(line), "%s%s", what, note);
    line_add(b->actions, &b->nactions, r->op, r->kind, name_of(b, r, name, sizeof(name)), line);
    count_done(b, r);
    rc = add_dirty(b, r->ref);
    if (rc == DM_OK) {
        rc = add_dirty(b, r->ref_before);
    }
    for (size_t k = 0; rc == DM_OK && g != NULL && k < g->nvals; k++) {
        const char *sp = strchr((const char *)g->vals[k].data, ' ');
        rc = sp != NULL ? add_dirty(b, sp + 1) : DM_OK;
    }
    rec_clear(r);
    return rc == DM_OK ? DM_OK : DM_ENOMEM;
}

/* Takes record r (moved into the batch, or cleared). */
static int process(struct rb *b, struct rb_rec *r, struct dm_err *err)
{
    char why[300];
    int v, rc;

    b->records++;
    if (!in_wave(b, r)) {
        b->skipped++;
        rec_clear(r);
        return DM_OK;
    }
    if (is_dirty(b, r->ref) || is_dirty(b, r->ref_before)) {
        if (b->dry) {
            /* a change listed above writes it first: the check would read the target as it
             * is now, not as the rollback would have left it */
            return dry_line(b, r, " (after the changes above)");
        }
        rc = flush(b, err);
        if (rc != DM_OK) {
            rec_clear(r);
            return rc;
        }
    }
    v = check(b, r, why, sizeof(why), err);
    if (v < 0) {
        rec_clear(r);
        return err->rc != DM_OK ? err->rc : DM_EINTERNAL;
    }
    if (v == 1) {
        rc = refuse(b, r, why, 0, err);
        rec_clear(r);
        return rc;
    }
    if (v == 2) {
        /* a created object that is gone already: nothing to send */
        b->already++;
        rc = DM_OK;
        if (!b->dry) {
            rc = state_batch_begin(b->state, err);
            if (rc == DM_OK) {
                rc = state_undo_mark(b->state, r->id, b->rb_run, err);
            }
            if (rc == DM_OK) {
                rc = restore_row(b, r, err);
            }
            if (rc == DM_OK) {
                rc = state_batch_commit(b->state, err);
            }
        }
        rec_clear(r);
        return rc;
    }
    if (b->dry) {
        return dry_line(b, r, "");
    }
    if (b->nrecs == b->caprecs) {
        size_t nc = b->caprecs ? b->caprecs * 2 : 64;
        struct rb_rec *g = realloc(b->recs, nc * sizeof(*g));
        if (g == NULL) {
            rec_clear(r);
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        b->recs = g;
        b->caprecs = nc;
    }
    b->recs[b->nrecs] = *r;
    memset(r, 0, sizeof(*r));
    rc = build(b, b->nrecs++);
    if (rc != DM_OK) {
        return dm_err_set(err, rc, "out of memory");
    }
    if (b->n >= (size_t)b->cfg->batch_size) {
        return flush(b, err);
    }
    return DM_OK;
}

/* ---- the records of the run, a page at a time ---- */

struct page {
    struct rb_rec *v;
    size_t n, cap;
    struct dm_err *err;
    int rc;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static int on_record(const struct state_undo *u, void *payload)
{
    struct page *pg = payload;
    struct rb_rec *r;

    if (pg->n == pg->cap) {
        return 1;
    }
    r = &pg->v[pg->n];
    memset(r, 0, sizeof(*r));
    r->id = u->id;
    r->kind = strdup(u->kind);
    r->key = strdup(u->key);
    r->op = strdup(u->op);
    r->ref = strdup(u->ref != NULL ? u->ref : "");
    r->ref_before = dup_or_null(u->ref_before);
    r->source_dn = dup_or_null(u->source_dn);
    r->names = strdup(u->names != NULL ? u->names : "");
    r->after_digest = dup_or_null(u->after_digest);
    r->row_before = dup_or_null(u->row_before);
    pg->n++;
    if (r->kind == NULL || r->key == NULL || r->op == NULL || r->ref == NULL || r->names == NULL) {
        pg->rc = dm_err_set(pg->err, DM_ENOMEM, "out of memory");
        return 1;
    }
    if (u->before != NULL &&
        (pg->rc = undo_image_decode(&r->before, u->before, u->before_len, pg->err)) != DM_OK) {
        return 1;
    }
    return 0;
}

static int walk(struct rb *b, struct dm_err *err)
{
    struct page pg = {NULL, 0, (size_t)b->cfg->batch_size, err, DM_OK};
    long long below = 0;
    int rc = DM_OK;

    pg.v = calloc(pg.cap, sizeof(*pg.v));
    if (pg.v == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    for (;;) {
        pg.n = 0;
        rc = state_undo_list(b->state, b->run, below, (int)pg.cap, on_record, &pg, err);
        if (rc == 1 || pg.rc != DM_OK) {
            rc = pg.rc != DM_OK ? pg.rc : DM_OK;
        }
        if (rc != DM_OK || pg.n == 0) {
            break;
        }
        below = pg.v[pg.n - 1].id;
        for (size_t i = 0; i < pg.n; i++) {
            if (rc == DM_OK) {
                rc = process(b, &pg.v[i], err);
            } else {
                rec_clear(&pg.v[i]);
            }
        }
        if (rc != DM_OK) {
            break;
        }
    }
    for (size_t i = 0; i < pg.n; i++) {
        rec_clear(&pg.v[i]);
    }
    free(pg.v);
    if (rc == DM_OK && !b->dry) {
        rc = flush(b, err);
    }
    return rc;
}

/* ---- set-up ---- */

static int choose_run(struct rb *b, struct dm_err *err)
{
    const char *arg = b->o->args[0];
    char *end = NULL;
    int rc;

    if (strcmp(arg, "last") == 0) {
        struct state_run a, c;
        int ra = state_run_last(&a, b->state, "run", err);
        int rcn = state_run_last(&c, b->state, "reconcile", err);
        if (ra != DM_OK && rcn != DM_OK) {
            return dm_err_set(err, DM_ENOTFOUND, "no run in the state journal %s to roll back",
                              b->cfg->state_path);
        }
        b->target_run = ra == DM_OK && (rcn != DM_OK || a.id > c.id) ? a : c;
        b->run = b->target_run.id;
        return DM_OK;
    }
    b->run = strtoll(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || b->run <= 0) {
        *b->exit_hint = EX_USAGE;
        return dm_err_set(err, DM_EINVAL,
                          "RUN must be a run id (dirmig status lists them) or "
                          "\"last\", not \"%s\"",
                          arg);
    }
    rc = state_run_get(&b->target_run, b->state, b->run, err);
    if (rc == DM_ENOTFOUND) {
        return dm_err_set(err, DM_ENOTFOUND, "no run %lld in the state journal %s", b->run,
                          b->cfg->state_path);
    }
    if (rc != DM_OK) {
        return rc;
    }
    if (strcmp(b->target_run.kind, "run") != 0 && strcmp(b->target_run.kind, "reconcile") != 0) {
        return dm_err_set(err, DM_EINVAL,
                          "run %lld is a %s: only what a run wrote can be rolled back", b->run,
                          b->target_run.kind);
    }
    return DM_OK;
}

/* The journal must belong to this target, as a run checks it. */
static int same_target(struct rb *b, struct dm_err *err)
{
    char *want = NULL, *have = NULL;
    int rc = pipeline_target_identity(&want, b->cfg, b->tops, b->dst, err);

    if (rc == DM_OK) {
        rc = state_meta_get(&have, b->state, RB_META_TARGET, err);
        if (rc == DM_OK && strcmp(have, want) != 0) {
            rc = dm_err_set(err, DM_ECONFIG,
                            "the state journal %s belongs to another target (%.100s), not this "
                            "one (%.100s)",
                            b->cfg->state_path, have, want);
        } else if (rc == DM_ENOTFOUND) {
            rc = dm_err_set(err, DM_ENOTFOUND, "the state journal %s has no run against a target",
                            b->cfg->state_path);
        }
    }
    free(want);
    free(have);
    return rc;
}

static int add_wave_dn(struct rb *b, const char *dn)
{
    char *norm = NULL;

    if (dn_normalize(&norm, dn, NULL) != DM_OK) {
        return DM_OK;
    }
    if (b->nwave == b->capwave) {
        size_t nc = b->capwave ? b->capwave * 2 : 256;
        char **g = realloc(b->wave_dns, nc * sizeof(*g));
        if (g == NULL) {
            free(norm);
            return DM_ENOMEM;
        }
        b->wave_dns = g;
        b->capwave = nc;
    }
    b->wave_dns[b->nwave++] = norm;
    return DM_OK;
}

static int on_wave_entry(const struct entry *e, void *payload)
{
    return add_wave_dn(payload, e->dn);
}

/* --wave: which records belong to the wave (agent/rollback.h). */
static int wave_setup(struct rb *b, struct dm_err *err)
{
    const struct config_endpoint *s = &b->cfg->source;
    struct entry *g = NULL;
    char *filter = NULL;
    int rc;

    for (size_t i = 0; i < b->cfg->nwaves; i++) {
        if (strcmp(b->cfg->waves[i].name, b->o->wave) == 0) {
            b->wave = &b->cfg->waves[i];
        }
    }
    if (b->wave == NULL) {
        return dm_err_set(err, DM_EINVAL, "--wave %s: no such wave in the config", b->o->wave);
    }
    if (b->target_run.wave[0] != '\0') {
        if (strcmp(b->target_run.wave, b->o->wave) != 0) {
            return dm_err_set(err, DM_EINVAL, "run %lld was limited to wave %s, not %s", b->run,
                              b->target_run.wave, b->o->wave);
        }
        b->wave_all = 1;
        return DM_OK;
    }
    if (b->wave->ou != NULL) {
        return DM_OK; /* by the source DN each record keeps */
    }
    b->sops = conn_find(s->conn.type);
    if (b->sops == NULL) {
        return dm_err_set(err, DM_EINVAL, "source: unknown connector type \"%s\"", s->conn.type);
    }
    rc = b->sops->open(&b->src, &s->conn, err);
    if (rc != DM_OK) {
        return rc;
    }
    if (b->wave->group != NULL) {
        rc = b->sops->lookup(&g, b->src, b->wave->group, err);
        for (size_t i = 0; rc == DM_OK && i < g->nattrs; i++) {
            const struct dm_attr *a = &g->attrs[i];
            if (strcasecmp(a->name, "member") != 0 && strcasecmp(a->name, "uniqueMember") != 0) {
                continue;
            }
            for (size_t k = 0; rc == DM_OK && k < a->nvals; k++) {
                rc = add_wave_dn(b, (const char *)a->vals[k].data);
            }
        }
        entry_free(g);
        return rc;
    }
    if (asprintf(&filter, "(&%s%s)", s->users_filter, b->wave->filter) < 0) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    {
        static const char *const attrs[] = {"1.1", NULL};
        struct scope sc = {0};
        sc.base = s->users_base;
        sc.filter = filter;
        sc.attrs = attrs;
        rc = b->sops->read(b->src, &sc, on_wave_entry, b, err);
    }
    free(filter);
    return rc;
}

/* ---- output ---- */

static void print_text(FILE *f, const struct rb *b)
{
    fprintf(f, "rollback%s of run %lld%s%s: %s\n", b->dry ? " plan" : "", b->run,
            b->o->wave ? ", wave " : "", b->o->wave ? b->o->wave : "",
            b->refused + b->failed > 0 ? "done, with refusals" : "done");
    if (b->note != NULL) {
        fprintf(f, "  nothing to do: %s\n", b->note);
        return;
    }
    fprintf(f,
            "  %s %lld removed (created by the run), %lld given back (modified, moved or "
            "disabled), %lld created again (deleted by the run)\n",
            b->dry ? "would be:" : "changes:", b->removed, b->restored, b->recreated);
    fprintf(f, "  %lld refused, %lld failed, %lld gone already, %lld outside the wave\n",
            b->refused, b->failed, b->already, b->skipped);
    if (b->nrefusals > 0) {
        fprintf(f, "  not rolled back:\n");
        for (size_t i = 0; i < b->nrefusals; i++) {
            fprintf(f, "    %-8s %-9s %s: %s\n", b->refusals[i].op, b->refusals[i].kind,
                    b->refusals[i].dn, b->refusals[i].text);
        }
    }
    if (b->nactions > 0) {
        fprintf(f, "  what the rollback would do (newest change first):\n");
        for (size_t i = 0; i < b->nactions; i++) {
            fprintf(f, "    %-9s %s: %s\n", b->actions[i].kind, b->actions[i].dn,
                    b->actions[i].text);
        }
        if ((long long)b->nactions < b->removed + b->restored + b->recreated) {
            fprintf(f, "    ... and %lld more\n",
                    b->removed + b->restored + b->recreated - (long long)b->nactions);
        }
    }
}

static json_t *lines_json(const struct rb_line *l, size_t n, const char *textkey)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < n; i++) {
        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s}", "op", l[i].op, "kind", l[i].kind,
                                           "dn", l[i].dn, textkey, l[i].text));
    }
    return a;
}

static void print_json(FILE *f, const struct rb *b, const char *status, int code,
                       const struct dm_err *err)
{
    json_t *o = json_pack("{s:s,s:I,s:I,s:b,s:s?,s:s,s:i}", "command", "rollback", "rollback_of",
                          (json_int_t)b->run, "run", (json_int_t)b->rb_run, "dry_run", b->dry,
                          "wave", b->o->wave, "status", status, "exit_code", code);

    if (o == NULL) {
        return;
    }
    json_object_set_new(o, "removed", json_integer(b->removed));
    json_object_set_new(o, "restored", json_integer(b->restored));
    json_object_set_new(o, "recreated", json_integer(b->recreated));
    json_object_set_new(o, "refused", json_integer(b->refused));
    json_object_set_new(o, "failed", json_integer(b->failed));
    json_object_set_new(o, "already_gone", json_integer(b->already));
    json_object_set_new(o, "outside_wave", json_integer(b->skipped));
    json_object_set_new(o, "not_rolled_back", lines_json(b->refusals, b->nrefusals, "why"));
    json_object_set_new(o, "actions", lines_json(b->actions, b->nactions, "action"));
    if (err != NULL && err->rc != DM_OK) {
        char msg[1200];
        json_object_set_new(o, "error", json_string(dm_err_format(err, msg, sizeof(msg))));
    }
    json_dumpf(o, f, JSON_COMPACT);
    fputc('\n', f);
    json_decref(o);
}

static void teardown(struct rb *b)
{
    for (size_t i = 0; i < b->n; i++) {
        undo_images_free(&b->res[i]);
        entry_free(b->ents[i]);
    }
    for (size_t i = 0; i < b->nrecs; i++) {
        rec_clear(&b->recs[i]);
    }
    for (size_t i = 0; i < b->ndirty; i++) {
        free(b->dirty[i]);
    }
    for (size_t i = 0; i < b->nwave; i++) {
        free(b->wave_dns[i]);
    }
    for (size_t i = 0; i < b->nrefusals; i++) {
        free(b->refusals[i].dn);
    }
    for (size_t i = 0; i < b->nactions; i++) {
        free(b->actions[i].dn);
    }
    free(b->wave_dns);
    free(b->dirty);
    free(b->recs);
    free(b->ch);
    free(b->res);
    free(b->ents);
    free(b->owner);
    if (b->dst != NULL) {
        b->tops->close(b->dst);
    }
    if (b->src != NULL) {
        b->sops->close(b->src);
    }
    state_close(b->state);
}

/* Nothing to roll back (DM_OK with a message), or an error when the run wrote without
 * recording how to undo it. */
static int has_records(struct rb *b, int *none, struct dm_err *err)
{
    long long total = 0, undone = 0;
    const struct run_counts *c = &b->target_run.counts;
    int rc = state_undo_count(&total, &undone, b->state, b->run, err);

    *none = 0;
    if (rc != DM_OK) {
        return rc;
    }
    if (total == 0 && c->created + c->updated + c->deleted > 0) {
        return dm_err_set(err, DM_EINVAL,
                          "run %lld has no undo records: it was made by a dirmig without the "
                          "undo store, or at a target that does not record them; it cannot be "
                          "rolled back",
                          b->run);
    }
    if (total == 0 || total == undone) {
        b->note = total == 0 ? "it changed nothing at the target" : "rolled back already";
        log_info("run %lld: %s", b->run, b->note);
        *none = 1;
    }
    return DM_OK;
}

int rollback_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                 struct dm_err *err)
{
    struct rb *b = calloc(1, sizeof(*b));
    struct state_where w;
    const char *status = "failed";
    char reason[128];
    int rc, none = 0, code;

    if (b == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    b->cfg = cfg;
    b->o = o;
    b->exit_hint = exit_hint;
    b->dry = o->dry_run;
    config_state_where(&w, cfg);
    rc = state_open_cfg(&b->state, &w, err);
    if (rc == DM_OK) {
        /* refused (DM_ECONFIG, exit 78) by a journal that keeps no undo store */
        rc = state_undo_open(b->state, err);
    }
    if (rc == DM_OK) {
        rc = choose_run(b, err);
    }
    if (rc == DM_OK) {
        b->tops = conn_find(cfg->target.conn.type);
        rc = b->tops != NULL ? b->tops->open(&b->dst, &cfg->target.conn, err)
                             : dm_err_set(err, DM_EINVAL, "target: unknown connector type");
        b->by_key = b->tops != NULL && b->tops->ident == CONN_IDENT_KEY;
    }
    if (rc == DM_OK) {
        rc = same_target(b, err);
    }
    if (rc == DM_OK && o->wave != NULL) {
        rc = wave_setup(b, err);
    }
    if (rc == DM_OK) {
        rc = has_records(b, &none, err);
    }
    if (rc == DM_OK && !none && !b->dry) {
        rc = state_run_begin(&b->rb_run, b->state, "rollback", cfg->digest, err);
        snprintf(reason, sizeof(reason), "rollback of run %lld", b->run);
        if (rc == DM_OK && o->wave != NULL) {
            rc = state_run_set_wave(b->state, b->rb_run, o->wave, err);
        }
        if (rc == DM_OK) {
            rc = state_run_set_reason(b->state, b->rb_run, reason, err);
        }
    }
    if (rc == DM_OK && !none) {
        log_set_context(b->rb_run, NULL);
        log_info("%s run %lld (%s, %s)%s", b->dry ? "plan of the rollback of" : "rolling back",
                 b->run, b->target_run.kind, b->target_run.status,
                 o->wave ? ": one wave only" : "");
        rc = walk(b, err);
    }
    status = rc == DM_OK ? "done" : "failed";
    if (b->rb_run != 0) {
        struct run_counts c = {0};
        struct dm_err e2 = {0};
        c.created = b->recreated;
        c.updated = b->restored;
        c.deleted = b->removed;
        c.failed = b->failed;
        c.held = b->refused;
        c.skipped = b->skipped;
        if (state_run_end(b->state, b->rb_run, status, &c, &e2) != DM_OK && rc == DM_OK) {
            *err = e2;
            rc = e2.rc;
            status = "failed";
        }
    }
    if (rc != DM_OK) {
        code = *exit_hint != 0 ? *exit_hint : exitcode_of(rc);
    } else {
        code = b->refused + b->failed > 0 ? EX_DATAERR : EX_OK;
        print_text(o->json ? stderr : stdout, b);
    }
    if (o->json) {
        print_json(stdout, b, status, code, err);
    }
    if (rc == DM_OK && code != 0) {
        *exit_hint = code;
    }
    log_set_context(0, NULL);
    teardown(b);
    free(b);
    return rc;
}
