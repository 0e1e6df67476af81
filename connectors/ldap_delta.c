#include <config.h>
/*
 * connectors/ldap_delta.c: delta reads of the LDAP connector, both dialects
 * (connectors/ldap_delta.h).
 */
#include "connectors/ldap_delta.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/util/log.h"
#include "connectors/ad.h"
#include "connectors/syncrepl.h"

/* The first complete read of one scope on this connection. */
struct mark {
    char *base, *filter;          /* the scope */
    char *since;                  /* the watermark that read started from, NULL = none */
    char *watermark;              /* where the next read starts, NULL = no tracking */
    int delta;                    /* it read only changes after since */
    struct syncrepl_result *sync; /* LDAP, delta: what the server said besides entries */
};

struct ldap_delta {
    struct mark *marks;
    size_t nmarks;
    int nosync;    /* the server has no syncprov: plain paged reads */
    char *dbid;    /* entryUUID of the source base entry ("-" if it has none), once read */
    char **warned; /* watermarks already logged as unusable */
    size_t nwarned;
};

struct ldap_delta_read {
    struct ldap_delta *d;
    struct scope sc;  /* the scope to read: since cleared when it cannot be used */
    const char *base; /* the scope's name */
    const char *filter;
    int ad;
    char *now;            /* AD: the watermark noted when the read began */
    struct berval cookie; /* LDAP: the cookie to send, bv_val NULL = none */
    int plain;            /* LDAP: no syncprov: a paged read */
    int attempts;         /* LDAP: searches started (more than one: resumed after a reconnect) */
    struct syncrepl_result res;
};

struct ldap_delta *ldap_delta_new(void)
{
    return calloc(1, sizeof(struct ldap_delta));
}

static void mark_clear(struct mark *m)
{
    free(m->base);
    free(m->filter);
    free(m->since);
    free(m->watermark);
    if (m->sync != NULL) {
        syncrepl_result_clear(m->sync);
        free(m->sync);
    }
}

void ldap_delta_free(struct ldap_delta *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->nmarks; i++) {
        mark_clear(&d->marks[i]);
    }
    free(d->marks);
    for (size_t i = 0; i < d->nwarned; i++) {
        free(d->warned[i]);
    }
    free(d->warned);
    free(d->dbid);
    free(d);
}

static const char *scope_base(const struct ldap_common_sess *sess, const struct scope *s)
{
    return s->base != NULL ? s->base : sess->cfg.base;
}

static const char *scope_filter(const struct scope *s)
{
    return s->filter != NULL ? s->filter : "(objectClass=*)";
}

static struct mark *find(const struct ldap_delta *d, const char *base, const char *filter)
{
    for (size_t i = 0; i < d->nmarks; i++) {
        struct mark *m = &d->marks[i];
        if (strcasecmp(m->base, base != NULL ? base : "") == 0 && strcmp(m->filter, filter) == 0) {
            return m;
        }
    }
    return NULL;
}

/* 1 the first time since is seen here (log it then), 0 after. */
static int first_warning(struct ldap_delta *d, const char *since)
{
    char **grown;

    for (size_t i = 0; i < d->nwarned; i++) {
        if (strcmp(d->warned[i], since) == 0) {
            return 0;
        }
    }
    grown = realloc(d->warned, (d->nwarned + 1) * sizeof(*grown));
    if (grown != NULL) {
        d->warned = grown;
        d->warned[d->nwarned] = strdup(since);
        d->nwarned += d->warned[d->nwarned] != NULL;
    }
    return 1;
}

/* The source database's identity: the entryUUID of the base entry (read once). */
static int read_dbid(struct ldap_delta *d, struct ldap_common_sess *sess, const char *base,
                     struct dm_err *err)
{
    char *attrs[] = {"entryUUID", NULL};
    struct entry *e = NULL;
    const char *uuid;
    int rc;

    if (d->dbid != NULL) {
        return DM_OK;
    }
    rc = ldap_common_lookup(&e, sess, base, attrs, err);
    if (rc == DM_ENOTFOUND) {
        return dm_err_set(err, DM_ENOTFOUND, "%s: the source base %s does not exist", sess->cfg.uri,
                          base);
    }
    if (rc != DM_OK) {
        return rc;
    }
    uuid = entry_first(e, "entryUUID");
    if (uuid == NULL) {
        log_debug("%s: %s has no entryUUID: sync cookies are not tied to a database", sess->cfg.uri,
                  base);
    }
    d->dbid = strdup(uuid != NULL ? uuid : "-");
    entry_free(e);
    return d->dbid != NULL ? DM_OK : dm_err_set(err, DM_ENOMEM, "out of memory");
}

/* AD: note the watermark now; keep since only when it is of the same DC database. */
static int begin_ad(struct ldap_delta_read *r, struct ldap_common_sess *sess, struct dm_err *err)
{
    char inv_since[64], inv_now[64];
    unsigned long long usn;
    int rc;

    rc = ad_watermark(&r->now, sess, err);
    if (rc != DM_OK || r->sc.since == NULL) {
        return rc;
    }
    if (ad_parse_watermark(inv_since, &usn, r->sc.since) != 0) {
        if (first_warning(r->d, r->sc.since)) {
            log_warn("delta: the watermark \"%s\" is not one of an AD source: reading everything",
                     r->sc.since);
        }
        r->sc.since = NULL;
    } else if (ad_parse_watermark(inv_now, &usn, r->now) != 0 || strcmp(inv_since, inv_now) != 0) {
        /* uSNs of a restored DC (new invocationId) or of another DC do not compare */
        if (first_warning(r->d, r->sc.since)) {
            log_warn("delta: the source database changed (watermark %s, now %s; a restored or "
                     "different DC): reading everything",
                     r->sc.since, r->now);
        }
        r->sc.since = NULL;
    }
    return DM_OK;
}

/* LDAP: the cookie of since, when since belongs to this database. */
static int begin_ldap(struct ldap_delta_read *r, struct ldap_common_sess *sess, struct dm_err *err)
{
    const char *key = r->sc.key_attr;
    char *dbid = NULL;
    int rc;

    if (key != NULL && strcasecmp(key, "entryUUID") != 0) {
        return dm_err_set(err, DM_EINVAL,
                          "source.delta: an LDAP source names deleted entries by entryUUID only: "
                          "the map's key.source must be entryUUID, not %s",
                          key);
    }
    if (r->d->nosync) {
        r->plain = 1;
        r->sc.since = NULL;
        return DM_OK;
    }
    rc = read_dbid(r->d, sess, sess->cfg.base != NULL ? sess->cfg.base : r->base, err);
    if (rc != DM_OK || r->sc.since == NULL) {
        return rc;
    }
    if (syncrepl_mark_parse(&dbid, &r->cookie, r->sc.since) != 0) {
        if (first_warning(r->d, r->sc.since)) {
            log_warn("delta: the watermark \"%s\" is not a sync cookie of an LDAP source: "
                     "reading everything",
                     r->sc.since);
        }
        r->sc.since = NULL;
    } else if (strcmp(dbid, r->d->dbid) != 0) {
        if (first_warning(r->d, r->sc.since)) {
            log_warn("delta: the sync cookie of the last run belongs to another database "
                     "(base entryUUID %s, now %s: the server was rebuilt or replaced): reading "
                     "everything",
                     dbid, r->d->dbid);
        }
        free(r->cookie.bv_val);
        memset(&r->cookie, 0, sizeof(r->cookie));
        r->sc.since = NULL;
    }
    free(dbid);
    return DM_OK;
}

int ldap_delta_read_begin(struct ldap_delta_read **out, struct ldap_delta *d,
                          struct ldap_common_sess *sess, const struct scope *s, struct dm_err *err)
{
    struct ldap_delta_read *r;
    int rc;

    *out = NULL;
    if (!s->delta) {
        return DM_OK;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    r->d = d;
    r->sc = *s;
    r->base = scope_base(sess, s);
    r->filter = scope_filter(s);
    r->ad = ad_is_dialect(&sess->cfg);
    rc = r->ad ? begin_ad(r, sess, err) : begin_ldap(r, sess, err);
    if (rc != DM_OK) {
        ldap_delta_read_end(r, 0);
        return rc;
    }
    *out = r;
    return DM_OK;
}

const struct scope *ldap_delta_read_scope(const struct ldap_delta_read *r)
{
    return &r->sc;
}

int ldap_delta_read_search(struct ldap_delta_read *r, struct ldap_common_sess *sess,
                           const char *base, const char *filter, char **attrs, int page_size,
                           ldap_common_msg_fn fn, void *payload, struct dm_err *err)
{
    enum syncrepl_outcome oc;
    int rc;

    r->attempts++;
    for (;;) {
        if (r->plain) {
            return ldap_common_search(sess, base, LDAP_SCOPE_SUBTREE, filter, attrs, page_size, fn,
                                      payload, err);
        }
        rc = syncrepl_search(&oc, &r->res, sess, base, filter, attrs,
                             r->cookie.bv_val != NULL ? &r->cookie : NULL, fn, payload, err);
        if (rc != DM_OK || oc == SYNCREPL_DONE) {
            return rc;
        }
        if (oc == SYNCREPL_UNSUPPORTED) {
            if (!r->d->nosync) {
                log_warn("%s: no content synchronisation (RFC 4533; slapd: the syncprov overlay) "
                         "for %s: source.delta reads everything, and what the source no longer "
                         "has is found by comparing with the journal",
                         sess->cfg.uri, base);
            }
            r->d->nosync = 1;
            r->plain = 1;
        } else if (r->cookie.bv_val == NULL) {
            return dm_err_set(err, DM_EINTERNAL,
                              "%s: the server asks for a full refresh of a read without a cookie",
                              sess->cfg.uri);
        } else if (first_warning(r->d, r->sc.since)) {
            log_warn("%s: the server refused the sync cookie of the last run (older than it "
                     "keeps, or newer than its database: a restore): reading everything",
                     sess->cfg.uri);
        }
        free(r->cookie.bv_val);
        memset(&r->cookie, 0, sizeof(r->cookie));
        r->sc.since = NULL;
    }
}

/* The watermark of r's LDAP read (NULL: none), see remember(). */
static char *ldap_watermark(struct ldap_delta_read *r, int *nomem)
{
    const struct berval *ck;
    char *w = NULL;

    if (r->attempts > 1) {
        /* Resumed after a reconnect: the entries delivered before it were skipped the
         * second time, so a change made to one of them in between is in neither attempt.
         * The cookie of the second search would hide it: keep the one the read started
         * from (none: the next run reads everything again). */
        log_info("delta: the read of %s was resumed after a reconnect: its watermark stays",
                 r->base);
        w = r->sc.since != NULL ? strdup(r->sc.since) : NULL;
        *nomem = r->sc.since != NULL && w == NULL;
        return w;
    }
    /* no cookie at the end: the server's state did not move (slapd answers "nothing
     * changed" without one), the next read starts from the same cookie */
    ck = r->res.cookie.bv_val != NULL ? &r->res.cookie : &r->cookie;
    if (ck->bv_val != NULL) {
        w = syncrepl_mark_format(r->d->dbid, ck);
        *nomem = w == NULL;
    }
    return w;
}

/* Remembers r as the read of its scope. */
static int remember(struct ldap_delta_read *r)
{
    struct ldap_delta *d = r->d;
    struct mark *grown, *m;
    int nomem = 0;

    grown = realloc(d->marks, (d->nmarks + 1) * sizeof(*grown));
    if (grown == NULL) {
        return DM_ENOMEM;
    }
    d->marks = grown;
    m = &d->marks[d->nmarks];
    memset(m, 0, sizeof(*m));
    m->base = strdup(r->base != NULL ? r->base : "");
    m->filter = strdup(r->filter);
    m->since = r->sc.since != NULL ? strdup(r->sc.since) : NULL;
    m->delta = r->sc.since != NULL;
    if (r->ad) {
        m->watermark = r->now;
        r->now = NULL;
    } else if (!r->plain) {
        m->watermark = ldap_watermark(r, &nomem);
        if (m->delta) {
            m->sync = malloc(sizeof(*m->sync));
            if (m->sync != NULL) {
                *m->sync = r->res;
                memset(&r->res, 0, sizeof(r->res));
            }
        }
    }
    if (nomem || m->base == NULL || m->filter == NULL ||
        (r->sc.since != NULL && m->since == NULL) || (m->delta && !r->ad && m->sync == NULL)) {
        mark_clear(m);
        return DM_ENOMEM;
    }
    d->nmarks++;
    if (m->sync != NULL) {
        log_info("delta: %s: %zu entries changed, %zu named deleted%s", r->base, m->sync->entries,
                 m->sync->gone.n, m->sync->present_phase ? ": a present phase" : "");
    }
    return DM_OK;
}

void ldap_delta_read_end(struct ldap_delta_read *r, int complete)
{
    if (r == NULL) {
        return;
    }
    if (complete && find(r->d, r->base, r->filter) == NULL && remember(r) != DM_OK) {
        /* Not remembered: read_mark() finds nothing and the caller keeps the old watermark
         * (the next run reads these changes again). */
        log_warn("delta: out of memory noting the watermark of %s", r->base);
    }
    free(r->now);
    free(r->cookie.bv_val);
    syncrepl_result_clear(&r->res);
    free(r);
}

int ldap_delta_mark(struct read_mark *out, const struct ldap_delta *d,
                    const struct ldap_common_sess *sess, const struct scope *s, struct dm_err *err)
{
    const struct mark *m = find(d, scope_base(sess, s), scope_filter(s));

    memset(out, 0, sizeof(*out));
    if (m == NULL) {
        return DM_ENOTFOUND;
    }
    if (m->watermark != NULL) {
        out->watermark = strdup(m->watermark);
        if (out->watermark == NULL) {
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
    }
    out->delta = m->delta;
    return DM_OK;
}

/* ---- deletions of the LDAP dialect ---- */

struct gone_ctx {
    const struct syncrepl_result *res;
    conn_entry_fn fn;
    void *payload;
    int fn_rc;
    struct dm_err *err;
};

static int emit(struct gone_ctx *x, const char *dn, const char *key)
{
    struct entry *e = entry_new(dn != NULL ? dn : "");
    int rc;

    if (e == NULL || entry_set_key(e, key) != DM_OK) {
        entry_free(e);
        return dm_err_set(x->err, DM_ENOMEM, "out of memory");
    }
    rc = x->fn(e, x->payload);
    entry_free(e);
    if (rc != 0) {
        x->fn_rc = rc;
    }
    return rc;
}

/* scope.known's callback: an object the caller holds is gone when the server named it
 * deleted, or after a present phase when the server neither sent it nor named it present. */
static int each_known(const char *key, const char *dn, void *payload)
{
    struct gone_ctx *x = payload;
    unsigned char u[SYNCREPL_UUID_LEN];
    const char *sdn;

    if (syncrepl_uuid_parse(u, key) != 0) {
        log_debug("delta: journal key \"%s\" is not an entryUUID: not compared", key);
        return 0;
    }
    if (syncrepl_uuids_has(&x->res->gone, u)) {
        sdn = syncrepl_result_gone_dn(x->res, u);
        return emit(x, sdn != NULL ? sdn : dn, key);
    }
    if (x->res->present_phase && !syncrepl_uuids_has(&x->res->present, u)) {
        return emit(x, dn, key);
    }
    return 0;
}

int ldap_delta_deleted(struct ldap_delta *d, struct ldap_common_sess *sess, const struct scope *s,
                       conn_entry_fn fn, void *payload, struct dm_err *err)
{
    const struct mark *m = find(d, scope_base(sess, s), scope_filter(s));
    struct gone_ctx x = {NULL, fn, payload, 0, err};
    struct scope sc;
    char key[37];
    int rc = DM_OK;

    if (m == NULL || !m->delta) {
        return DM_OK;
    }
    if (ad_is_dialect(&sess->cfg)) {
        sc = *s;
        sc.base = scope_base(sess, s);
        sc.since = m->since;
        return ad_read_deleted(sess, &sc, fn, payload, err);
    }
    x.res = m->sync;
    if (x.res->gone.n == 0 && !x.res->present_phase) {
        return DM_OK;
    }
    if (s->known != NULL) {
        /* syncprov names every entry deleted anywhere in the database (and every modified
         * entry the filter no longer matches) as "delete it if you have it": what the
         * caller never held is not an object of this scope. */
        rc = s->known(each_known, &x, s->known_payload, err);
        return x.fn_rc != 0 ? x.fn_rc : rc;
    }
    if (x.res->present_phase) {
        log_warn("delta: %s answered with a present phase and nothing lists what the last "
                 "run read: entries deleted since are not reported",
                 sess->cfg.uri);
    }
    for (size_t i = 0; rc == DM_OK && i < x.res->gone.n; i++) {
        const unsigned char *u = x.res->gone.v + i * SYNCREPL_UUID_LEN;
        syncrepl_uuid_str(key, u);
        rc = emit(&x, syncrepl_result_gone_dn(x.res, u), key);
    }
    return x.fn_rc != 0 ? x.fn_rc : rc;
}
