#include <config.h>
#include "agent/delta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/util/log.h"

struct delta {
    const struct dm_config *cfg;
    const struct conn_ops *ops;
    struct conn *c;
    struct state *st;
    char key[1024]; /* meta key */
    char *stored;   /* watermark of the last successful run, or NULL */
    char *now;      /* watermark taken before this run's reads */
    const char *since;
    long long run_id, deleted;
};

/* "<invocationId>:..." -> length of the database identity part (before the last ':'). */
static size_t db_part(const char *w)
{
    const char *colon = strrchr(w, ':');

    return colon != NULL ? (size_t)(colon - w) : strlen(w);
}

int delta_begin(struct delta **out, const struct dm_config *cfg, const struct conn_ops *ops,
                struct conn *c, struct state *st, struct dm_err *err)
{
    struct delta *d;
    int rc;

    *out = NULL;
    if (!cfg->source.delta) {
        return DM_OK;
    }
    if (ops->watermark == NULL || ops->read_deleted == NULL) {
        return dm_err_set(err, DM_EINVAL, "source.delta: the %s connector has no delta reads",
                          ops->name);
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    d->cfg = cfg;
    d->ops = ops;
    d->c = c;
    d->st = st;
    snprintf(d->key, sizeof(d->key), "delta.watermark %s %s", cfg->source.conn.uri,
             cfg->source.conn.base);
    rc = state_meta_get(&d->stored, st, d->key, err);
    if (rc != DM_OK && rc != DM_ENOTFOUND) {
        goto fail;
    }
    rc = ops->watermark(&d->now, c, err);
    if (rc != DM_OK) {
        goto fail;
    }
    if (d->stored == NULL) {
        log_info("delta: no watermark from an earlier run: reading everything (now %s)", d->now);
    } else if (db_part(d->stored) != db_part(d->now) ||
               strncmp(d->stored, d->now, db_part(d->now)) != 0) {
        log_warn("delta: the source database changed (watermark %s, now %s; a restored or "
                 "different DC): reading everything",
                 d->stored, d->now);
    } else {
        d->since = d->stored;
        log_info("delta: reading changes after %s (now %s)", d->stored, d->now);
    }
    *out = d;
    return DM_OK;
fail:
    delta_free(d);
    return rc;
}

const char *delta_since(const struct delta *d)
{
    return d != NULL ? d->since : NULL;
}

static int on_deleted(const struct entry *e, void *payload)
{
    struct delta *d = payload;
    struct state_object o = {0};
    struct dm_err e2 = {0};
    const char *kind = entry_has_class(e, "group") ? "group" : "user";
    const char *name = entry_first(e, "sAMAccountName");
    char msg[256];
    int rc, known;

    rc = state_object_get(&o, d->st, kind, e->key, &e2);
    if (rc != DM_OK && rc != DM_ENOTFOUND) {
        return rc;
    }
    known = rc == DM_OK;
    if (known && state_gone_add(d->st, kind, e->key, &e2) != DM_OK) {
        state_object_clear(&o);
        return e2.rc;
    }
    snprintf(msg, sizeof(msg), "deleted in the source (%s %s%s)", kind, name ? name : "?",
             known ? "; a leaver (leavers.action)" : "; never migrated");
    log_warn("delta: %s %s (key %s) was deleted in the source%s", kind, known ? o.source_dn : e->dn,
             e->key, known ? "; a leaver" : "");
    d->deleted++;
    rc = state_error_add(d->st, d->run_id, e->key, known ? o.source_dn : e->dn, "source_deleted",
                         msg, &e2);
    state_object_clear(&o);
    return rc;
}

int delta_finish(struct delta *d, long long run_id, int advance, long long *deleted,
                 struct dm_err *err)
{
    struct scope sc = {0};
    int rc;

    *deleted = 0;
    if (d == NULL) {
        return DM_OK;
    }
    d->run_id = run_id;
    rc = state_batch_begin(d->st, err);
    if (rc != DM_OK) {
        return rc;
    }
    if (d->since != NULL) {
        sc.base = d->cfg->source.conn.base;
        sc.since = d->since;
        rc = d->ops->read_deleted(d->c, &sc, on_deleted, d, err);
    }
    if (rc == DM_OK && advance) {
        rc = state_meta_set(d->st, d->key, d->now, err);
    } else if (rc == DM_OK) {
        log_warn("delta: some objects failed: the watermark stays at %s so that the next run "
                 "reads them again",
                 d->stored != NULL ? d->stored : "(none: a full read)");
    }
    if (rc != DM_OK) {
        /* Keep the deletions reported so far; the watermark stays where it was, so the
         * next run reads the same changes again. */
        struct dm_err e2 = {0};
        if (state_batch_commit(d->st, &e2) != DM_OK) {
            log_warn("delta: %s", e2.msg);
        }
        return rc;
    }
    rc = state_batch_commit(d->st, err);
    if (rc == DM_OK) {
        *deleted = d->deleted;
        log_info("delta: %lld object(s) deleted in the source; next run reads after %s", d->deleted,
                 advance ? d->now : (d->stored != NULL ? d->stored : "(nothing)"));
    }
    return rc;
}

void delta_free(struct delta *d)
{
    if (d == NULL) {
        return;
    }
    free(d->stored);
    free(d->now);
    free(d);
}
