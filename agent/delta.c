#include <config.h>
#include "agent/delta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/util/log.h"

/* One scope: users or groups. */
struct dscope {
    enum map_kind kind;
    const char *name; /* "users" / "groups" */
    const char *obj;  /* the journal's kind: "user" / "group" */
    const char *base, *filter;
    char *key;    /* meta key */
    char *stored; /* watermark of the last successful run, or NULL */
    struct read_mark mark;
    int have_mark; /* mark holds this run's first complete read of the scope */
};

struct delta {
    const struct conn_ops *ops;
    struct conn *c;
    struct state *st;
    struct dscope sc[2];
    long long run_id;
    /* delta_finish */
    struct dscope *cur;
    delta_deleted_fn fn;
    void *payload;
    long long handed;
    struct dm_err *err;
};

static int scope_init(struct dscope *s, enum map_kind kind, const struct dm_config *cfg,
                      struct state *st, struct dm_err *err)
{
    const struct config_endpoint *ep = &cfg->source;
    int rc;

    s->kind = kind;
    s->name = kind == MAP_USERS ? "users" : "groups";
    s->obj = kind == MAP_USERS ? "user" : "group";
    s->base = kind == MAP_USERS ? ep->users_base : ep->groups_base;
    s->filter = kind == MAP_USERS ? ep->users_filter : ep->groups_filter;
    if (asprintf(&s->key, "delta %s %s %s %s", s->name, ep->conn.uri,
                 s->base != NULL ? s->base : "-", s->filter != NULL ? s->filter : "-") < 0) {
        s->key = NULL;
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    rc = state_meta_get(&s->stored, st, s->key, err);
    if (rc == DM_ENOTFOUND) {
        return DM_OK;
    }
    if (rc == DM_OK && s->stored[0] == '\0') {
        /* the last run's source could not track changes */
        free(s->stored);
        s->stored = NULL;
    }
    return rc;
}

int delta_begin(struct delta **out, const struct dm_config *cfg, int whole,
                const struct conn_ops *ops, struct conn *c, struct state *st, struct dm_err *err)
{
    struct delta *d;
    int rc = DM_OK;

    *out = NULL;
    if (!cfg->source.delta) {
        return DM_OK;
    }
    if (ops->read_mark == NULL || ops->read_deleted == NULL || !(ops->caps & CONN_DELTA)) {
        return dm_err_set(err, DM_EINVAL, "source.delta: the %s connector has no delta reads",
                          ops->name);
    }
    if (!whole) {
        log_info("delta: a run over part of the scope (--wave, --retry-from, --limit) reads it "
                 "in full and keeps no watermark");
        return DM_OK;
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    d->ops = ops;
    d->c = c;
    d->st = st;
    for (int k = 0; k < 2 && rc == DM_OK; k++) {
        struct dscope *s = &d->sc[k];
        rc = scope_init(s, k == 0 ? MAP_USERS : MAP_GROUPS, cfg, st, err);
        if (rc != DM_OK) {
            break;
        }
        if (s->stored == NULL) {
            log_info("delta: no watermark from an earlier run for the %s: reading everything",
                     s->name);
        } else {
            log_info("delta: reading changes after %s (%s)", s->stored, s->name);
        }
    }
    if (rc != DM_OK) {
        delta_free(d);
        return rc;
    }
    *out = d;
    return DM_OK;
}

static struct dscope *scope_of(const struct delta *d, enum map_kind kind)
{
    return (struct dscope *)&d->sc[kind == MAP_USERS ? 0 : 1];
}

const char *delta_since(const struct delta *d, enum map_kind kind)
{
    return d != NULL ? scope_of(d, kind)->stored : NULL;
}

/* The scope as the pipeline read it, with since = the stored watermark. */
static void scope_fill(struct scope *out, const struct dscope *s)
{
    memset(out, 0, sizeof(*out));
    out->base = s->base;
    out->filter = s->filter;
    out->since = s->stored;
    out->delta = 1;
}

/* Asks the connector how this run's read of s went (once it has an answer). */
static int fetch_mark(struct delta *d, struct dscope *s, struct dm_err *err)
{
    struct scope sc;
    int rc;

    if (s->have_mark) {
        return DM_OK;
    }
    scope_fill(&sc, s);
    rc = d->ops->read_mark(&s->mark, d->c, &sc, err);
    if (rc == DM_OK) {
        s->have_mark = 1;
    }
    return rc;
}

int delta_full(struct delta *d, enum map_kind kind)
{
    struct dscope *s;
    struct dm_err e = {0};

    if (d == NULL) {
        return 1;
    }
    s = scope_of(d, kind);
    if (fetch_mark(d, s, &e) != DM_OK) {
        return 1;
    }
    return !s->mark.delta;
}

int delta_report_deleted(const struct delta_deleted *g, void *payload, struct dm_err *err)
{
    struct delta *d = payload;
    const char *kind = g->kind == MAP_USERS ? "user" : "group";
    const char *dn = g->dn[0] != '\0' ? g->dn : "(DN unknown)";
    char msg[256];
    int rc;

    /* a migrated object the source deleted is a leaver: noted for the leaver phase
     * (agent/leavers.c, state_unseen() with gone) */
    if (g->rec != NULL) {
        rc = state_gone_add(d->st, kind, g->key, err);
        if (rc != DM_OK) {
            return rc;
        }
    }
    snprintf(msg, sizeof(msg), "%s (%s %s%s)",
             g->out_of_scope ? "left the scope in the source" : "deleted in the source", kind,
             g->name != NULL ? g->name : "?",
             g->rec != NULL ? "; a leaver (leavers.action)" : "; never migrated");
    log_warn("delta: %s %s (key %s) %s%s", kind, dn, g->key,
             g->out_of_scope ? "left the scope (no longer matches the filter, or moved out of "
                               "the base)"
                             : "was deleted in the source",
             g->rec != NULL ? "; a leaver" : "");
    return state_error_add(d->st, d->run_id, g->key, g->dn[0] != '\0' ? g->dn : NULL,
                           g->out_of_scope ? "source_out_of_scope" : "source_deleted", msg, err);
}

/* read_deleted's callback: one object the source says is gone. */
static int on_gone(const struct entry *e, void *payload)
{
    struct delta *d = payload;
    struct dscope *s = d->cur;
    struct state_object o = {0};
    struct delta_deleted g = {0};
    int rc, is_group = entry_has_class(e, "group") || entry_has_class(e, "groupOfNames") ||
                       entry_has_class(e, "groupOfUniqueNames");

    /* AD tombstones under one base may be users or groups: each scope takes its own kind.
     * Entries without objectClass (LDAP deletes are UUIDs) belong to the scope. */
    if (entry_attr(e, "objectClass") != NULL && is_group != (s->kind == MAP_GROUPS)) {
        return 0;
    }
    rc = state_object_get(&o, d->st, s->obj, e->key, d->err);
    if (rc != DM_OK && rc != DM_ENOTFOUND) {
        return rc;
    }
    g.out_of_scope = entry_first(e, "dirmigOutOfScope") != NULL;
    if (g.out_of_scope && rc != DM_OK) {
        return 0; /* changed outside the scope and never migrated: none of ours */
    }
    g.kind = s->kind;
    g.key = e->key;
    g.rec = rc == DM_OK ? &o : NULL;
    g.dn = g.rec != NULL && o.source_dn != NULL ? o.source_dn : e->dn != NULL ? e->dn : "";
    g.name = entry_first(e, "sAMAccountName");
    rc = d->fn(&g, d->payload, d->err);
    if (rc == DM_OK) {
        d->handed++;
    }
    state_object_clear(&o);
    return rc;
}

/* scope.known: the journal's objects of the scope being finished. */
static int known_objects(conn_key_fn each, void *each_payload, void *payload, struct dm_err *err)
{
    struct delta *d = payload;

    return state_objects_each(d->st, d->cur->obj, each, each_payload, err);
}

/* Deletions of s, then (advance) its new watermark. */
static int finish_scope(struct delta *d, struct dscope *s, int advance, struct dm_err *err)
{
    struct scope sc;
    long long before = d->handed;
    int rc;

    rc = fetch_mark(d, s, err);
    if (rc == DM_ENOTFOUND) {
        log_info("delta: the %s were not read to the end: their watermark stays", s->name);
        return DM_OK;
    }
    if (rc != DM_OK) {
        return rc;
    }
    if (s->mark.delta) {
        scope_fill(&sc, s);
        sc.known = known_objects;
        sc.known_payload = d;
        d->cur = s;
        rc = d->ops->read_deleted(d->c, &sc, on_gone, d, err);
        if (rc != DM_OK) {
            if (err->rc == DM_OK) {
                dm_err_set(err, rc, "delta: deleted %s", s->name);
            }
            return rc;
        }
        log_info("delta: %lld %s deleted in the source", d->handed - before, s->name);
    }
    if (!advance) {
        return DM_OK;
    }
    if (s->mark.watermark == NULL) {
        log_info("delta: the source keeps no watermark for the %s: the next run reads them all",
                 s->name);
    } else {
        log_info("delta: the next run reads the %s changed after %s", s->name, s->mark.watermark);
    }
    return state_meta_set(d->st, s->key, s->mark.watermark != NULL ? s->mark.watermark : "", err);
}

int delta_finish(struct delta *d, long long run_id, int advance, delta_deleted_fn fn, void *payload,
                 long long *deleted, struct dm_err *err)
{
    struct dm_err e2 = {0};
    int rc;

    *deleted = 0;
    if (d == NULL) {
        return DM_OK;
    }
    d->run_id = run_id;
    d->fn = fn != NULL ? fn : delta_report_deleted;
    d->payload = fn != NULL ? payload : d;
    d->err = err;
    d->handed = 0;
    rc = state_batch_begin(d->st, err);
    if (rc != DM_OK) {
        return rc;
    }
    for (int k = 0; k < 2 && rc == DM_OK; k++) {
        rc = finish_scope(d, &d->sc[k], advance, err);
    }
    if (rc == DM_OK && !advance) {
        log_warn("delta: some objects failed: the watermarks stay where they were, so that the "
                 "next run reads them again");
    }
    if (rc != DM_OK) {
        /* Keep what was reported so far: a scope finished before the failure keeps its new
         * watermark, the others their old one. */
        if (state_batch_commit(d->st, &e2) != DM_OK) {
            log_warn("delta: %s", e2.msg);
        }
        return rc;
    }
    rc = state_batch_commit(d->st, err);
    if (rc == DM_OK) {
        *deleted = d->handed;
    }
    return rc;
}

void delta_free(struct delta *d)
{
    if (d == NULL) {
        return;
    }
    for (int k = 0; k < 2; k++) {
        free(d->sc[k].key);
        free(d->sc[k].stored);
        free(d->sc[k].mark.watermark);
    }
    free(d);
}
