#include <config.h>
/*
 * connectors/ldap.c: the generic LDAPv3 connector (OpenLDAP, 389-DS, ...).
 *
 * read() streams a Simple Paged Results search and resumes after a dropped connection by
 * re-running the search and skipping what was already delivered. apply() pipelines plain
 * adds and deletes (up to write_window in flight on one connection) and handles the rare
 * cases synchronously: an add that finds the entry already there (compare and modify), a
 * modify (look up, diff, modify), an entry with a very large attribute (add, then
 * modify-add slices of member_chunk values).
 *
 * Pipelining and slapd: slapd runs the operations of one connection concurrently, so a
 * child add can overtake its parent's add (32 noSuchObject) and a parent delete can
 * overtake its children's (66 notAllowedOnNonLeaf). Such items are retried
 * synchronously once everything in flight has completed.
 */
#include "connectors/ldap_common.h"
#include "schema/dn.h"
#include "connectors/ad.h"
#include "connectors/ldap_delta.h"
#include "connectors/conncfg.h"
#include "connectors/ldap_nest.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/util/log.h"

#define LDAP_DEFAULT_PAGE 500
#define LDAP_DEFAULT_CHUNK 1000
#define LDAP_MAX_WINDOW 4096

enum item_state {
    ST_TODO = 0, /* not sent yet (or to be resent after a reconnect) */
    ST_INFLIGHT, /* sent on the pipeline, result pending */
    ST_EXISTS,   /* pipelined add got 68: compare and modify after the drain */
    ST_RETRY,    /* pipelined op overtook a dependency: redo synchronously */
    ST_DONE,     /* res[i] is final */
};

struct conn {
    struct ldap_common_sess s;
    struct ldap_delta *delta; /* delta reads: the watermarks of this run's reads */

    /* apply(): msgid -> batch index (open addressing, linear probing; 0 = empty) */
    int *tkey;
    size_t *tval;
    size_t tcap;
    size_t inflight;

    /* apply(): scratch for LDAPMod arrays, reused from one request to the next */
    LDAPMod **mptr;
    LDAPMod *mv;
    struct berval **bvp;
    struct berval *bv;
    size_t mcap;
    size_t bvpcap;
    size_t vcap;
    size_t nm;
    size_t nbv;
    size_t nbvp;
};

struct apply_ctx {
    struct conn *c;
    const struct change *v;
    size_t n;
    struct apply_result *res;
    unsigned char *state;
    unsigned char *replayed; /* 1: sent before the connection was lost, sent again */
    struct entry **want;     /* the change's entry with the account state applied, or NULL */
    size_t ndone;
    size_t window;
    size_t chunk;
};

/* ---- open / close ---- */

static void ldap_close(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    ldap_common_close(&c->s);
    ldap_delta_free(c->delta);
    free(c->tkey);
    free(c->tval);
    free(c->mptr);
    free(c->mv);
    free(c->bvp);
    free(c->bv);
    free(c);
}

static int ldap_open(struct conn **out, const struct conn_cfg *cfg, struct dm_err *err)
{
    struct conn *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL || (c->delta = ldap_delta_new()) == NULL) {
        free(c);
        return dm_err_set(err, DM_ENOMEM, "ldap_open");
    }
    rc = ldap_common_open(&c->s, cfg, err);
    if (rc != DM_OK) {
        goto done;
    }
    *out = c;
    c = NULL;
done:
    ldap_close(c);
    return rc;
}

/* Reconnects if a previous call left the session closed. */
static int ensure_open(struct conn *c, struct dm_err *err)
{
    if (c->s.ld != NULL) {
        return DM_OK;
    }
    return ldap_common_reconnect(&c->s, err);
}

static int is_lost(const struct dm_err *err)
{
    return err->rc == DM_EUNAVAIL;
}

/* ---- account state (target.disable) ---- */

/* 1 when dn is right under the container cont (normalized comparison), else 0. */
static int in_container(const char *cont, const char *dn)
{
    struct dn *d = NULL;
    const char *parent;
    char *a = NULL, *b = NULL;
    int in = 0;

    if (cont == NULL || dn == NULL || dn_parse(&d, dn, NULL) != DM_OK || d->nrdns < 2) {
        dn_free(d);
        return 0;
    }
    parent = dn + d->rdns[0].end;
    while (*parent == ',' || *parent == ';' || *parent == ' ') {
        parent++;
    }
    if (dn_normalize(&a, parent, NULL) == DM_OK && dn_normalize(&b, cont, NULL) == DM_OK) {
        in = strcmp(a, b) == 0;
    }
    free(a);
    free(b);
    dn_free(d);
    return in;
}

/* conn_ops.disabled_ref: target.disable.container keeps disabled users apart, each under
 * its own RDN. */
static int ldap_disabled_ref(char **out, const struct conn_cfg *cfg, const char *ref,
                             struct dm_err *err)
{
    struct dn *d = NULL;
    int rc;

    *out = NULL;
    if (cfg->disable_container == NULL) {
        return DM_OK;
    }
    rc = dn_parse(&d, ref, err);
    if (rc == DM_OK && d->nrdns == 0) {
        rc = dm_err_set(err, DM_EINVAL, "the root DN cannot be disabled");
    }
    if (rc == DM_OK && in_container(cfg->disable_container, ref)) {
        *out = strdup(ref);
        rc = *out != NULL ? DM_OK : dm_err_set(err, DM_ENOMEM, "out of memory");
    } else if (rc == DM_OK &&
               asprintf(out, "%.*s,%s", (int)d->rdns[0].end, ref, cfg->disable_container) < 0) {
        *out = NULL;
        rc = dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    dn_free(d);
    return rc;
}

/* The target's account state of e as the connector knows it: dirmigAccountState enabled or
 * disabled, from the configured disable attribute, else from where it is (under
 * target.disable.container or not); the planner compares it with the source's. Nothing is
 * added when target.disable is not set. */
static int annotate_state(const struct conn *c, struct entry *e)
{
    const struct dm_attr *a;
    int disabled = 0;

    if ((c->s.cfg.disable_attr == NULL && c->s.cfg.disable_container == NULL) ||
        c->s.cfg.role == NULL || strcmp(c->s.cfg.role, "target") != 0 ||
        entry_attr(e, "objectClass") == NULL || entry_has_class(e, "organizationalUnit") ||
        entry_has_class(e, "groupOfNames") || entry_has_class(e, "groupOfUniqueNames") ||
        entry_has_class(e, "posixGroup")) {
        return DM_OK;
    }
    if (c->s.cfg.disable_attr == NULL) {
        /* the container alone disables: where the entry is says it */
        return entry_add_str(e, "dirmigAccountState",
                             in_container(c->s.cfg.disable_container, e->dn) ? "disabled"
                                                                             : "enabled");
    }
    a = entry_attr(e, c->s.cfg.disable_attr);
    for (size_t i = 0; a != NULL && i < a->nvals && !disabled; i++) {
        disabled = strcasecmp((const char *)a->vals[i].data, c->s.cfg.disable_value) == 0;
    }
    return entry_add_str(e, "dirmigAccountState", disabled ? "disabled" : "enabled");
}

/* ---- read ---- */

struct read_ctx {
    const struct conn *c;
    const struct scope *scope;
    conn_entry_fn fn;
    void *payload;
    size_t delivered; /* entries handed to fn, over all attempts */
    size_t seen;      /* entries seen in the current attempt */
    char *last_dn;    /* DN of the last delivered entry */
    size_t last_cap;
    int fn_rc; /* non-zero: fn stopped the read */
    struct dm_err *err;
    struct ad_read *ad;     /* the AD dialect's per-read state, or NULL */
    struct ldap_nest *nest; /* plain LDAP with groups.nesting "flatten", or NULL */
    struct entry *cur;      /* the entry every result is read into (entry_reset()), or NULL */
};

static int remember_dn(struct read_ctx *rc, const char *dn)
{
    size_t n = strlen(dn) + 1;
    char *p;

    if (n > rc->last_cap) {
        p = realloc(rc->last_dn, n);
        if (p == NULL) {
            return DM_ENOMEM;
        }
        rc->last_dn = p;
        rc->last_cap = n;
    }
    memcpy(rc->last_dn, dn, n);
    return DM_OK;
}

static int read_cb(LDAP *ld, LDAPMessage *msg, void *payload)
{
    struct read_ctx *x = payload;
    struct entry *e;
    char *dn;
    int rc;

    x->seen++;
    if (x->seen <= x->delivered) {
        /* Resuming: skip what was delivered before the connection dropped. The order of a
         * search is not guaranteed, so check that we are where we think we are. */
        if (x->seen == x->delivered) {
            dn = ldap_get_dn(ld, msg);
            if (dn == NULL || x->last_dn == NULL || strcasecmp(dn, x->last_dn) != 0) {
                log_warn("resume: entry #%zu is \"%s\", expected \"%s\"; continuing (entries "
                         "may be delivered twice or missed until the next run)",
                         x->seen, dn != NULL ? dn : "?", x->last_dn != NULL ? x->last_dn : "?");
            }
            ldap_memfree(dn);
        }
        return DM_OK;
    }
    /* one entry for the whole read: fn borrows it until it returns, and its arena is
     * reset (password values wiped) for the next result */
    if (x->cur == NULL && (x->cur = entry_new(NULL)) == NULL) {
        return dm_err_set(x->err, DM_ENOMEM, "read: out of memory");
    }
    e = x->cur;
    rc = ldap_common_msg_fill(e, ld, msg, x->ad != NULL ? NULL : x->scope->key_attr, x->err);
    if (rc != DM_OK) {
        return rc;
    }
    if (x->ad != NULL) {
        rc = ad_read_fixup(x->ad, e, x->err);
        if (rc != DM_OK) {
            goto done;
        }
    } else {
        if (annotate_state(x->c, e) != DM_OK) {
            rc = dm_err_set(x->err, DM_ENOMEM, "read: out of memory");
            goto done;
        }
        if (x->nest != NULL) {
            rc = ldap_nest_flatten(x->nest, e, x->err);
            if (rc != DM_OK) {
                goto done;
            }
        }
    }
    rc = x->fn(e, x->payload);
    if (rc != 0) {
        x->fn_rc = rc;
        goto done;
    }
    x->delivered++;
    rc = remember_dn(x, e->dn);
    if (rc != DM_OK) {
        rc = dm_err_set(x->err, rc, "read: out of memory");
    }
done:
    entry_reset(e);
    return rc;
}

static int ldap_read(struct conn *c, const struct scope *s, conn_entry_fn fn, void *payload,
                     struct dm_err *err)
{
    struct read_ctx x = {c, s, fn, payload, 0, 0, NULL, 0, 0, err, NULL, NULL, NULL};
    unsigned long refs0 = c->s.refs_skipped;
    const char *base = s->base != NULL ? s->base : c->s.cfg.base;
    const char *filter = s->filter;
    const struct scope *rs = s; /* what to read: s, or s without an unusable since */
    struct ldap_delta_read *dr = NULL;
    char **extra = NULL;
    int page = c->s.cfg.page_size > 0 ? c->s.cfg.page_size : LDAP_DEFAULT_PAGE;
    int tries = c->s.cfg.max_retries > 0 ? c->s.cfg.max_retries : 1;
    char **attrs = NULL;
    size_t na = 0;
    size_t k = 0;
    size_t before;
    int stalls = 0;
    int rc;

    if (base == NULL) {
        return dm_err_set(err, DM_EINVAL, "%s: read: no base", c->s.cfg.uri);
    }
    if (s->since != NULL && !s->delta) {
        return dm_err_set(err, DM_EINVAL, "%s: read: a watermark outside a delta read",
                          c->s.cfg.uri);
    }
    if (s->delta) {
        /* delta reads: the watermark and what changed (connectors/ldap_delta.h) */
        rc = ensure_open(c, err);
        if (rc == DM_OK) {
            rc = ldap_delta_read_begin(&dr, c->delta, &c->s, s, err);
        }
        if (rc != DM_OK) {
            return rc;
        }
        rs = ldap_delta_read_scope(dr);
    }
    if (ad_is_dialect(&c->s.cfg)) {
        /* AD: its attribute list and delta filter, pages of at most MaxPageSize, and
         * per-entry completion (ranges, GUID key, state, primary groups): connectors/ad.h */
        rc = ad_read_new(&x.ad, &c->s, rs, err);
        if (rc != DM_OK) {
            ldap_delta_read_end(dr, 0);
            return rc;
        }
        extra = ad_read_attrs(x.ad);
        filter = ad_read_filter(x.ad);
        page = page < AD_MAX_PAGE ? page : AD_MAX_PAGE;
    } else if (ldap_nest_wanted(&c->s.cfg)) {
        /* groups.nesting "flatten": nested groups resolved per group read (ldap_nest.h) */
        rc = ldap_nest_new(&x.nest, &c->s, err);
        if (rc != DM_OK) {
            ldap_delta_read_end(dr, 0);
            return rc;
        }
    }
    /* Ask for the key attribute by name: "*" does not include operational attributes
     * such as entryUUID. */
    while (s->attrs != NULL && s->attrs[na] != NULL) {
        na++;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        na++;
    }
    attrs = calloc(na + 4, sizeof(*attrs));
    if (attrs == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "read: attrs");
        goto done;
    }
    if (s->attrs == NULL && extra == NULL) {
        attrs[k++] = "*";
        if (c->s.cfg.disable_attr != NULL) {
            attrs[k++] = (char *)c->s.cfg.disable_attr; /* may be operational */
        }
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        attrs[k++] = extra[i];
    }
    for (size_t i = 0; s->attrs != NULL && s->attrs[i] != NULL; i++) {
        attrs[k++] = (char *)s->attrs[i];
    }
    if (s->key_attr != NULL && x.ad == NULL) {
        attrs[k++] = (char *)s->key_attr;
    }
    attrs[k] = NULL;

    for (;;) {
        rc = ensure_open(c, err);
        if (rc != DM_OK) {
            goto done;
        }
        before = x.delivered;
        x.seen = 0;
        if (dr != NULL && x.ad == NULL) {
            /* RFC 4533 refreshOnly (a paged read without syncprov) */
            rc = ldap_delta_read_search(dr, &c->s, base, filter, attrs, page, read_cb, &x, err);
        } else {
            rc = ldap_common_search(&c->s, base, LDAP_SCOPE_SUBTREE, filter, attrs, page, read_cb,
                                    &x, err);
        }
        if (rc == DM_OK || x.fn_rc != 0 || !is_lost(err)) {
            break;
        }
        /* The connection dropped mid-read: reopen and restart the search, skipping the
         * entries already delivered (a paged-results cookie dies with its connection; a
         * sync search starts again from the same cookie). */
        stalls = x.delivered > before ? 0 : stalls + 1;
        if (stalls > tries) {
            break;
        }
        log_warn("%s: read interrupted after %zu entries: %s; resuming", c->s.cfg.uri, x.delivered,
                 err->msg);
        rc = ldap_common_reconnect(&c->s, err);
        if (rc != DM_OK) {
            goto done;
        }
    }
    if (x.fn_rc != 0) {
        rc = x.fn_rc;
    }
    if (rc == DM_OK && c->s.refs_skipped > refs0 && s->incomplete != NULL) {
        *s->incomplete = 1;
    }
    if (rc == DM_OK) {
        log_debug("read %zu entries from %s (base=\"%s\")", x.delivered, c->s.cfg.uri, base);
    }
done:
    ldap_delta_read_end(dr, rc == DM_OK);
    free(attrs);
    free(x.last_dn);
    entry_free(x.cur);
    ad_read_free(x.ad);
    ldap_nest_free(x.nest);
    return rc;
}

/* ---- delta (connectors/ldap_delta.h) ---- */

static int ldap_read_mark(struct read_mark *out, struct conn *c, const struct scope *s,
                          struct dm_err *err)
{
    return ldap_delta_mark(out, c->delta, &c->s, s, err);
}

static int ldap_read_deleted(struct conn *c, const struct scope *s, conn_entry_fn fn, void *payload,
                             struct dm_err *err)
{
    int rc = ensure_open(c, err);

    return rc != DM_OK ? rc : ldap_delta_deleted(c->delta, &c->s, s, fn, payload, err);
}

/* ---- lookup ---- */

static int ldap_lookup(struct entry **out, struct conn *c, const char *dn, struct dm_err *err)
{
    int rc;

    for (int attempt = 0;; attempt++) {
        rc = ensure_open(c, err);
        if (rc != DM_OK) {
            return rc;
        }
        log_debug("ldap_search(base=\"%s\", scope=base, attrs=*) uri=%s", dn, c->s.cfg.uri);
        if (ad_is_dialect(&c->s.cfg)) {
            rc = ad_lookup(out, &c->s, dn, err);
        } else {
            char *attrs[] = {"*", (char *)c->s.cfg.disable_attr, NULL};
            rc = ldap_common_lookup(out, &c->s, dn, c->s.cfg.disable_attr ? attrs : NULL, err);
            if (rc == DM_OK && annotate_state(c, *out) != DM_OK) {
                entry_free(*out);
                *out = NULL;
                rc = dm_err_set(err, DM_ENOMEM, "lookup: out of memory");
            }
        }
        if (rc != DM_EUNAVAIL || attempt > 0 || !ldap_common_is_conn_err(err->ldap_rc)) {
            return rc;
        }
        ldap_common_close(&c->s); /* ensure_open() reconnects with backoff */
    }
}

/* ---- apply: LDAPMod scratch ---- */

/* Grows the array whose pointer is at pp (any pointer type, copied with memcpy to stay
 * clear of aliasing rules) to hold at least need elements of size bytes. */
static int grow(void *pp, size_t *cap, size_t need, size_t size)
{
    void *p;
    void *q;

    if (need <= *cap) {
        return DM_OK;
    }
    memcpy(&p, pp, sizeof(p));
    q = realloc(p, (need + 64) * size);
    if (q == NULL) {
        return DM_ENOMEM;
    }
    memcpy(pp, &q, sizeof(q));
    *cap = need + 64;
    return DM_OK;
}

/* Makes room for nmods LDAPMods holding nvals values in all, and empties the scratch. */
static int mods_reserve(struct conn *c, size_t nmods, size_t nvals)
{
    size_t cap;

    cap = c->mcap;
    if (grow(&c->mptr, &cap, nmods + 1, sizeof(*c->mptr)) != DM_OK) {
        return DM_ENOMEM;
    }
    cap = c->mcap;
    if (grow(&c->mv, &cap, nmods + 1, sizeof(*c->mv)) != DM_OK) {
        return DM_ENOMEM;
    }
    c->mcap = cap;
    if (grow(&c->bvp, &c->bvpcap, nvals + nmods + 1, sizeof(*c->bvp)) != DM_OK ||
        grow(&c->bv, &c->vcap, nvals + 1, sizeof(*c->bv)) != DM_OK) {
        return DM_ENOMEM;
    }
    c->nm = 0;
    c->nbv = 0;
    c->nbvp = 0;
    c->mptr[0] = NULL;
    return DM_OK;
}

/* Appends one LDAPMod with values vals[from..to) (or pvals[from..to)); op 0 for adds. */
static void mods_push(struct conn *c, int op, const char *name, const struct dm_val *vals,
                      const struct dm_val *const *pvals, size_t from, size_t to)
{
    LDAPMod *m = &c->mv[c->nm];
    const struct dm_val *dv;

    m->mod_op = op | LDAP_MOD_BVALUES;
    m->mod_type = (char *)name;
    if (from == to) {
        m->mod_bvalues = NULL; /* DELETE of the whole attribute */
    } else {
        m->mod_bvalues = &c->bvp[c->nbvp];
        for (size_t i = from; i < to; i++) {
            dv = vals != NULL ? &vals[i] : pvals[i];
            c->bv[c->nbv].bv_len = dv->len;
            c->bv[c->nbv].bv_val = (char *)dv->data;
            c->bvp[c->nbvp++] = &c->bv[c->nbv++];
        }
        c->bvp[c->nbvp++] = NULL;
    }
    c->mptr[c->nm++] = m;
    c->mptr[c->nm] = NULL;
}

/* LDAPMods adding e with at most chunk values per attribute. */
static int mods_for_add(LDAPMod ***out, struct conn *c, const struct entry *e, size_t chunk)
{
    size_t nv = 0;
    int rc;

    for (size_t i = 0; i < e->nattrs; i++) {
        nv += e->attrs[i].nvals < chunk ? e->attrs[i].nvals : chunk;
    }
    rc = mods_reserve(c, e->nattrs, nv);
    if (rc != DM_OK) {
        return rc;
    }
    c->mptr[0] = NULL;
    for (size_t i = 0; i < e->nattrs; i++) {
        const struct dm_attr *a = &e->attrs[i];
        if (a->nvals > 0) {
            mods_push(c, LDAP_MOD_ADD, a->name, a->vals, NULL, 0,
                      a->nvals < chunk ? a->nvals : chunk);
        }
    }
    *out = c->mptr;
    return DM_OK;
}

static int needs_chunks(const struct entry *e, size_t chunk)
{
    for (size_t i = 0; i < e->nattrs; i++) {
        if (e->attrs[i].nvals > chunk) {
            return 1;
        }
    }
    return 0;
}

/* ---- apply: msgid table ---- */

static int tab_init(struct conn *c, size_t window)
{
    size_t cap = 16;

    while (cap < 2 * window) {
        cap *= 2;
    }
    if (cap != c->tcap) {
        free(c->tkey);
        free(c->tval);
        c->tkey = calloc(cap, sizeof(*c->tkey));
        c->tval = calloc(cap, sizeof(*c->tval));
        if (c->tkey == NULL || c->tval == NULL) {
            c->tcap = 0;
            return DM_ENOMEM;
        }
        c->tcap = cap;
    } else {
        memset(c->tkey, 0, cap * sizeof(*c->tkey));
    }
    c->inflight = 0;
    return DM_OK;
}

static void tab_put(struct conn *c, int msgid, size_t idx)
{
    size_t m = c->tcap - 1;
    size_t h = (size_t)msgid & m;

    while (c->tkey[h] != 0) {
        h = (h + 1) & m;
    }
    c->tkey[h] = msgid;
    c->tval[h] = idx;
    c->inflight++;
}

/* Removes msgid; 0 if unknown. Backward-shift deletion keeps probe chains intact. */
static int tab_take(struct conn *c, int msgid, size_t *idx)
{
    size_t m = c->tcap - 1;
    size_t h = (size_t)msgid & m;
    size_t j;
    size_t home;

    while (c->tkey[h] != msgid) {
        if (c->tkey[h] == 0) {
            return 0;
        }
        h = (h + 1) & m;
    }
    *idx = c->tval[h];
    c->inflight--;
    j = h;
    for (;;) {
        c->tkey[h] = 0;
        for (;;) {
            j = (j + 1) & m;
            if (c->tkey[j] == 0) {
                return 1;
            }
            home = (size_t)c->tkey[j] & m;
            /* leave it if its home lies cyclically in (h, j] */
            if (h <= j ? (h < home && home <= j) : (h < home || home <= j)) {
                continue;
            }
            break;
        }
        c->tkey[h] = c->tkey[j];
        c->tval[h] = c->tval[j];
        h = j;
    }
}

/* The entry change i asks for: its own, or the copy with the account state applied. */
static const struct entry *want_of(const struct apply_ctx *a, size_t i)
{
    return a->want != NULL && a->want[i] != NULL ? a->want[i] : a->v[i].entry;
}

/* Account state as the target does it (target.disable.attribute): a disabled account has
 * the attribute at its value, an enabled one does not have it. The copy is made once per
 * change that asks for a state (and for every DISABLE). Returns DM_OK or DM_ENOMEM / a
 * DM_EINVAL for DISABLE without a configured attribute (res[i] filled). */
static int prepare_state(struct apply_ctx *a, size_t i)
{
    const struct change *ch = &a->v[i];
    const char *attr = a->c->s.cfg.disable_attr;
    struct entry *w;

    if (ch->op != CHANGE_DISABLE && (ch->state == CHANGE_STATE_KEEP || ch->op == CHANGE_DELETE)) {
        return DM_OK;
    }
    if (attr == NULL) {
        if (ch->op != CHANGE_DISABLE && ch->state == CHANGE_STATE_ENABLE) {
            return DM_OK; /* no attribute disables accounts here: nothing to remove */
        }
        if (a->c->s.cfg.disable_container != NULL &&
            in_container(a->c->s.cfg.disable_container, ch->entry->dn)) {
            return DM_OK; /* being (or going) under the container is what disables it */
        }
        if (a->c->s.cfg.disable_container != NULL) {
            /* the caller asks for the move (conn_ops.disabled_ref); never a silent no-op */
            dm_err_set(&a->res[i].err, DM_EINVAL,
                       "cannot disable an account in place: target.disable.container %s "
                       "disables by moving it there",
                       a->c->s.cfg.disable_container);
            dm_err_dn(&a->res[i].err, ch->entry->dn);
            return DM_EINVAL;
        }
        dm_err_set(&a->res[i].err, DM_EINVAL,
                   "cannot disable an account: target.disable.attribute is not set");
        dm_err_dn(&a->res[i].err, ch->entry->dn);
        return DM_EINVAL;
    }
    w = ch->op == CHANGE_DISABLE ? entry_new(ch->entry->dn) : entry_clone(ch->entry);
    if (w == NULL) {
        return DM_ENOMEM;
    }
    entry_del_attr(w, attr);
    if ((ch->op == CHANGE_DISABLE || ch->state == CHANGE_STATE_DISABLE)
            ? entry_add_str(w, attr, a->c->s.cfg.disable_value) != DM_OK
            : entry_attr_add(w, attr) == NULL) {
        entry_free(w);
        return DM_ENOMEM;
    }
    a->want[i] = w;
    return DM_OK;
}

/* ---- apply: results ---- */

static void item_fail(struct apply_ctx *a, size_t i, int code, const char *matched,
                      const char *diag, const char *op)
{
    struct apply_result *r = &a->res[i];

    dm_err_clear(&r->err);
    ldap_to_rc(&r->err, NULL, code, matched, diag != NULL ? diag : "", op);
    if (r->err.rc == DM_OK) {
        dm_err_set(&r->err, DM_EINTERNAL, "%s: failed", op);
    }
    dm_err_dn(&r->err, a->v[i].entry->dn);
    ldap_common_guess_attr(&r->err, diag);
    r->status = APPLY_FAILED;
}

static void item_done(struct apply_ctx *a, size_t i, enum apply_status st)
{
    a->res[i].status = st;
    if (st != APPLY_FAILED) {
        dm_err_clear(&a->res[i].err);
    }
    a->state[i] = ST_DONE;
    a->ndone++;
}

/* ---- apply: undo images (connector.h, apply_result.before / .after) ---- */

/* An add that created the entry: its after image is the entry as sent. */
static void undo_created(struct apply_ctx *a, size_t i)
{
    if (a->v[i].undo && a->res[i].after == NULL) {
        a->res[i].after = entry_clone(want_of(a, i));
    }
}

/* The entry at dn with every user attribute and the disable attribute (which may be
 * operational), as undo images need it; DM_ENOTFOUND when absent. */
static int undo_read(struct entry **out, struct apply_ctx *a, const char *dn, struct dm_err *e)
{
    char *attrs[] = {"*", (char *)a->c->s.cfg.disable_attr, NULL};

    log_debug("ldap_search(base=\"%s\", scope=base, attrs=*) uri=%s (undo image)", dn,
              a->c->s.cfg.uri);
    return ldap_common_lookup(out, &a->c->s, dn, a->c->s.cfg.disable_attr != NULL ? attrs : NULL,
                              e);
}

/* Adds the groups the object left (leave_groups) to its before image, creating the images
 * when the change wrote nothing else. */
static void undo_groups(struct apply_ctx *a, size_t i, struct entry *left)
{
    struct apply_result *r = &a->res[i];
    const struct dm_attr *g = left != NULL ? entry_attr(left, CONN_UNDO_GROUPS) : NULL;

    if (!a->v[i].undo || g == NULL || g->nvals == 0) {
        return;
    }
    if (r->before == NULL && a->v[i].op != CHANGE_DELETE) {
        r->before = entry_new(a->v[i].entry->dn);
        r->after = entry_new(a->v[i].entry->dn);
    }
    for (size_t k = 0; r->before != NULL && k < g->nvals; k++) {
        if (entry_add_value(r->before, CONN_UNDO_GROUPS, g->vals[k].data, g->vals[k].len) !=
            DM_OK) {
            log_warn("%s: out of memory recording the groups %s left", a->c->s.cfg.uri,
                     a->v[i].entry->dn);
            break;
        }
    }
}

/* A rename: the images hold the attributes the modify wrote and the naming attributes of
 * both DNs, before from pre (the entry at its old DN) and after from the entry read again
 * at the new DN. */
static void undo_moved(struct apply_ctx *a, size_t i, const struct entry *pre)
{
    struct apply_result *r = &a->res[i];
    const char *dns[] = {a->v[i].old_ref, a->v[i].entry->dn};
    struct entry *post = NULL, *b = NULL, *af = NULL;
    struct dm_err e = {0};
    const char **names = NULL;
    size_t n = 0, cap;

    if (!a->v[i].undo || pre == NULL) {
        return;
    }
    cap = (r->before != NULL ? r->before->nattrs : 0) + 16;
    names = calloc(cap + 1, sizeof(*names));
    if (names == NULL || undo_read(&post, a, a->v[i].entry->dn, &e) != DM_OK) {
        goto done;
    }
    for (size_t k = 0; r->before != NULL && k < r->before->nattrs && n < cap; k++) {
        names[n++] = r->before->attrs[k].name;
    }
    for (size_t k = 0; k < 2; k++) {
        struct dn *d = NULL;
        if (dns[k] != NULL && dn_parse(&d, dns[k], NULL) == DM_OK && d->nrdns > 0) {
            for (size_t v = 0; v < d->rdns[0].navas && n < cap; v++) {
                const struct dm_attr *at = entry_attr(pre, d->rdns[0].avas[v].type);
                names[n++] = at != NULL ? at->name : NULL;
                n -= names[n - 1] == NULL;
            }
        }
        dn_free(d);
    }
    b = entry_new(dns[0]);
    af = entry_new(dns[1]);
    for (size_t k = 0; b != NULL && af != NULL && k < n; k++) {
        const struct dm_attr *x = entry_attr(pre, names[k]), *y = entry_attr(post, names[k]);
        if (entry_attr(b, names[k]) != NULL) {
            continue;
        }
        if (entry_attr_add(b, names[k]) == NULL || entry_attr_add(af, names[k]) == NULL) {
            goto done;
        }
        for (size_t v = 0; x != NULL && v < x->nvals; v++) {
            if (entry_add_value(b, names[k], x->vals[v].data, x->vals[v].len) != DM_OK) {
                goto done;
            }
        }
        for (size_t v = 0; y != NULL && v < y->nvals; v++) {
            if (entry_add_value(af, names[k], y->vals[v].data, y->vals[v].len) != DM_OK) {
                goto done;
            }
        }
    }
    if (b != NULL && af != NULL) {
        entry_free(r->before);
        entry_free(r->after);
        r->before = b;
        r->after = af;
        b = af = NULL;
    }
done:
    if (r->before == NULL || r->before->dn == NULL || strcmp(r->before->dn, dns[0]) != 0) {
        log_warn("%s: %s was renamed, but its undo images could not be made", a->c->s.cfg.uri,
                 a->v[i].entry->dn);
    }
    entry_free(b);
    entry_free(af);
    entry_free(post);
    free(names);
}

/* An add met an entry that is already there. Ours when the change says so (a create the
 * journal recorded as intended before a crash) or when this call sent it before a lost
 * connection (the first add may have been applied): then compare and modify. Otherwise
 * the entry belongs to someone else: APPLY_EXISTS, and the caller's collision policy
 * decides; it is never adopted silently. Returns 1 when the item is final. */
static int add_exists(struct apply_ctx *a, size_t i)
{
    if (a->v[i].adopt || a->replayed[i]) {
        return 0;
    }
    dm_err_clear(&a->res[i].err);
    dm_err_set(&a->res[i].err, DM_EEXISTS,
               "add: an entry with this DN already exists at the "
               "target and was not created by dirmig");
    dm_err_dn(&a->res[i].err, a->v[i].entry->dn);
    item_done(a, i, APPLY_EXISTS);
    return 1;
}

/* Waits for the result of msgid. Returns 0 with *code (and the server's matched DN and
 * diagnostic, to free with ldap_memfree) or a negative code: connection lost. */
static int wait_one(struct conn *c, int msgid, int *code, char **matched, char **diag)
{
    struct timeval tv;
    LDAPMessage *msg = NULL;
    int n;
    int lrc;

    *matched = NULL;
    *diag = NULL;
    n = ldap_result(c->s.ld, msgid, LDAP_MSG_ALL, ldap_common_op_timeout(&c->s, &tv), &msg);
    if (n == 0) {
        ldap_abandon_ext(c->s.ld, msgid, NULL, NULL);
        return LDAP_TIMEOUT;
    }
    if (n < 0) {
        lrc = LDAP_SERVER_DOWN;
        ldap_get_option(c->s.ld, LDAP_OPT_RESULT_CODE, &lrc);
        return lrc < 0 ? lrc : LDAP_SERVER_DOWN;
    }
    lrc = ldap_parse_result(c->s.ld, msg, code, matched, diag, NULL, NULL, 1);
    if (lrc != LDAP_SUCCESS) {
        *code = lrc; /* undecodable result: fail the item */
    }
    return 0;
}

enum req_type { REQ_ADD, REQ_MODIFY, REQ_DELETE };

/* Sends one request. Returns 0 with *msgid, a negative code (connection lost), or a
 * positive local error (encoding) in *code with *msgid = -1. */
static int send_req(struct conn *c, enum req_type t, const char *dn, LDAPMod **mods, int *msgid,
                    int *code)
{
    int lrc;

    *msgid = -1;
    switch (t) {
    case REQ_ADD:
        lrc = ldap_add_ext(c->s.ld, dn, mods, NULL, NULL, msgid);
        break;
    case REQ_MODIFY:
        lrc = ldap_modify_ext(c->s.ld, dn, mods, NULL, NULL, msgid);
        break;
    default:
        lrc = ldap_delete_ext(c->s.ld, dn, NULL, NULL, msgid);
        break;
    }
    if (lrc < 0 && ldap_common_is_conn_err(lrc)) {
        return lrc;
    }
    if (lrc != LDAP_SUCCESS) {
        *code = lrc;
        *msgid = -1;
    }
    return 0;
}

/* One synchronous request. Returns 0 with *code, or negative: connection lost. */
static int sync_req(struct conn *c, enum req_type t, const char *dn, LDAPMod **mods, int *code,
                    char **matched, char **diag)
{
    int msgid;
    int lost;

    *matched = NULL;
    *diag = NULL;
    *code = LDAP_SUCCESS;
    lost = send_req(c, t, dn, mods, &msgid, code);
    if (lost != 0 || msgid < 0) {
        return lost;
    }
    return wait_one(c, msgid, code, matched, diag);
}

/* Adds e; attributes with more than chunk values are completed by modify-add slices.
 * Returns 0 with *code (LDAP_SUCCESS, 68 ...) and *op naming the failed step, or
 * negative: connection lost. */
static int add_chunked(struct apply_ctx *a, const struct entry *e, int *code, char **matched,
                       char **diag, const char **op)
{
    struct conn *c = a->c;
    LDAPMod **mods;
    int lost;

    *op = "add";
    *matched = NULL;
    *diag = NULL;
    if (mods_for_add(&mods, c, e, a->chunk) != DM_OK) {
        *code = LDAP_NO_MEMORY;
        return 0;
    }
    log_debug("ldap_add(dn=\"%s\", %zu attrs) uri=%s", e->dn, e->nattrs, c->s.cfg.uri);
    lost = sync_req(c, REQ_ADD, e->dn, mods, code, matched, diag);
    if (lost != 0 || *code != LDAP_SUCCESS) {
        return lost;
    }
    for (size_t i = 0; i < e->nattrs; i++) {
        const struct dm_attr *at = &e->attrs[i];
        for (size_t off = a->chunk; off < at->nvals; off += a->chunk) {
            size_t end = off + a->chunk < at->nvals ? off + a->chunk : at->nvals;
            if (mods_reserve(c, 1, end - off) != DM_OK) {
                *code = LDAP_NO_MEMORY;
                return 0;
            }
            mods_push(c, LDAP_MOD_ADD, at->name, at->vals, NULL, off, end);
            log_debug("ldap_modify(dn=\"%s\", add %s values %zu-%zu) uri=%s", e->dn, at->name, off,
                      end - 1, c->s.cfg.uri);
            *op = "modify (add value slice)";
            lost = sync_req(c, REQ_MODIFY, e->dn, c->mptr, code, matched, diag);
            if (lost != 0 || *code != LDAP_SUCCESS) {
                return lost;
            }
        }
    }
    return 0;
}

static int mod_class(const struct entry_mod *m)
{
    if (m->op == ENTRY_MOD_REPLACE || (m->op == ENTRY_MOD_DELETE && m->nvals == 0)) {
        return 0;
    }
    return m->op == ENTRY_MOD_ADD ? 1 : 2;
}

static int ldap_mod_op(enum entry_mod_op op)
{
    switch (op) {
    case ENTRY_MOD_ADD:
        return LDAP_MOD_ADD;
    case ENTRY_MOD_DELETE:
        return LDAP_MOD_DELETE;
    default:
        return LDAP_MOD_REPLACE;
    }
}

/* Sends the diff as modify requests of at most chunk values each: whole-attribute
 * replacements and deletions first, then value additions, then value deletions (adding
 * before deleting keeps a MUST attribute such as member non-empty in between). */
static int send_diff(struct apply_ctx *a, const char *dn, const struct entry_diff *d, int *code,
                     char **matched, char **diag)
{
    struct conn *c = a->c;
    size_t *order = NULL;
    size_t no = 0;
    size_t i = 0;
    size_t j;
    size_t vals;
    int lost = 0;

    *code = LDAP_SUCCESS;
    *matched = NULL;
    *diag = NULL;
    order = malloc(d->nmods * sizeof(*order));
    if (order == NULL) {
        *code = LDAP_NO_MEMORY;
        return 0;
    }
    for (int cls = 0; cls < 3; cls++) {
        for (size_t k = 0; k < d->nmods; k++) {
            if (mod_class(&d->mods[k]) == cls) {
                order[no++] = k;
            }
        }
    }
    while (i < no) {
        vals = d->mods[order[i]].nvals;
        for (j = i + 1; j < no && vals + d->mods[order[j]].nvals <= a->chunk; j++) {
            vals += d->mods[order[j]].nvals;
        }
        if (mods_reserve(c, j - i, vals) != DM_OK) {
            *code = LDAP_NO_MEMORY;
            goto done;
        }
        for (size_t k = i; k < j; k++) {
            const struct entry_mod *m = &d->mods[order[k]];
            mods_push(c, ldap_mod_op(m->op), m->name, NULL, m->vals, 0, m->nvals);
        }
        log_debug("ldap_modify(dn=\"%s\", %zu mods, %zu values) uri=%s", dn, j - i, vals,
                  c->s.cfg.uri);
        lost = sync_req(c, REQ_MODIFY, dn, c->mptr, code, matched, diag);
        if (lost != 0 || *code != LDAP_SUCCESS) {
            goto done;
        }
        i = j;
    }
done:
    free(order);
    return lost;
}

/* The entry exists (or may): look it up, diff, modify; add it if it is absent. */
static int update_item(struct apply_ctx *a, size_t i)
{
    const struct change *ch = &a->v[i];
    const struct entry *want = want_of(a, i);
    char *attrs[] = {"*", (char *)a->c->s.cfg.disable_attr, NULL};
    struct entry *old = NULL;
    struct entry_diff d = {0, NULL};
    struct dm_err e;
    char *matched = NULL;
    char *diag = NULL;
    const char *op;
    int code;
    int lost = 0;
    int rc;

    dm_err_clear(&e);
    log_debug("ldap_search(base=\"%s\", scope=base, attrs=*) uri=%s", ch->entry->dn,
              a->c->s.cfg.uri);
    rc = ldap_common_lookup(&old, &a->c->s, ch->entry->dn,
                            a->c->s.cfg.disable_attr != NULL ? attrs : NULL, &e);
    if (rc == DM_ENOTFOUND && ch->op != CHANGE_ADD) {
        /* a modify carries only what differs: never add a partial entry. The object went
         * away since it was planned; the next run sees it missing and creates it whole. */
        dm_err_set(&a->res[i].err, DM_ENOTFOUND, "modify: the entry is no longer at the target");
        dm_err_dn(&a->res[i].err, ch->entry->dn);
        item_done(a, i, APPLY_FAILED);
        goto done;
    }
    if (rc == DM_ENOTFOUND) {
        lost = add_chunked(a, want, &code, &matched, &diag, &op);
        if (lost == 0 && code == LDAP_SUCCESS) {
            item_done(a, i, APPLY_CREATED);
            undo_created(a, i);
        } else if (lost == 0) {
            item_fail(a, i, code, matched, diag, op);
            item_done(a, i, APPLY_FAILED);
        }
        goto done;
    }
    if (rc != DM_OK) {
        if (rc == DM_EUNAVAIL && ldap_common_is_conn_err(e.ldap_rc)) {
            lost = e.ldap_rc;
            goto done;
        }
        a->res[i].err = e;
        dm_err_dn(&a->res[i].err, ch->entry->dn);
        a->res[i].status = APPLY_FAILED;
        item_done(a, i, APPLY_FAILED);
        goto done;
    }
    rc = entry_diff(&d, old, want, ch->merge, a->chunk, &a->res[i].err);
    if (rc != DM_OK) {
        dm_err_dn(&a->res[i].err, ch->entry->dn);
        item_done(a, i, APPLY_FAILED);
        goto done;
    }
    if (d.nmods == 0) {
        item_done(a, i, APPLY_UNCHANGED);
        goto done;
    }
    lost = send_diff(a, ch->entry->dn, &d, &code, &matched, &diag);
    if (lost == 0 && code == LDAP_SUCCESS) {
        item_done(a, i, APPLY_UPDATED);
        if (ch->undo && entry_diff_images(&a->res[i].before, &a->res[i].after, old, want, ch->merge,
                                          &d, NULL) != DM_OK) {
            log_warn("%s: out of memory making the undo images of %s", a->c->s.cfg.uri,
                     ch->entry->dn);
        }
    } else if (lost == 0) {
        item_fail(a, i, code, matched, diag, "modify");
        item_done(a, i, APPLY_FAILED);
    }
done:
    ldap_memfree(matched);
    ldap_memfree(diag);
    entry_diff_free(&d);
    entry_free(old);
    return lost;
}

/* Collects the DN of each entry found into the "dn" attribute of the entry at payload. */
static int collect_dn_cb(LDAP *ld, LDAPMessage *msg, void *payload)
{
    char *dn = ldap_get_dn(ld, msg);
    int rc = dn != NULL ? entry_add_str(payload, "dn", dn) : DM_OK;

    ldap_memfree(dn);
    return rc;
}

/* Takes dn out of every group under the target base that lists it (member, uniqueMember):
 * a leaver leaves its groups in the same run. A group that cannot lose it (its last member
 * under a schema that needs one) is reported and kept. Each membership removed is noted in
 * left (CONN_UNDO_GROUPS "ATTRIBUTE GROUPDN"; left may be NULL). Returns 0 or negative:
 * lost. */
static int leave_groups(struct apply_ctx *a, const char *dn, struct entry *left)
{
    static const char *const attrs[] = {"member", "uniqueMember"};
    struct conn *c = a->c;
    struct entry *hits = entry_new(dn);
    char *esc = NULL, *filter = NULL;
    struct dm_err e = {0};
    int lost = 0, rc;

    if (hits == NULL || dn_filter_escape(&esc, dn, strlen(dn), &e) != DM_OK ||
        asprintf(&filter, "(|(member=%s)(uniqueMember=%s))", esc, esc) < 0) {
        filter = NULL;
        goto done;
    }
    rc = ldap_common_search(&c->s, c->s.cfg.base, LDAP_SCOPE_SUBTREE, filter,
                            (char *[]){"1.1", NULL}, c->s.cfg.page_size, collect_dn_cb, hits, &e);
    if (rc != DM_OK) {
        if (rc == DM_EUNAVAIL && ldap_common_is_conn_err(e.ldap_rc)) {
            lost = e.ldap_rc;
        } else {
            log_warn("%s: cannot find the groups of %s: %s", c->s.cfg.uri, dn, e.msg);
        }
        goto done;
    }
    for (size_t g = 0; g < (hits->nattrs > 0 ? hits->attrs[0].nvals : 0) && lost == 0; g++) {
        const char *gdn = (const char *)hits->attrs[0].vals[g].data;
        for (size_t k = 0; k < DM_ARRAY_LEN(attrs) && lost == 0; k++) {
            struct dm_val v = {strlen(dn), (unsigned char *)dn};
            const struct dm_val *vp = &v;
            char *matched = NULL, *diag = NULL;
            int code;
            if (mods_reserve(c, 1, 1) != DM_OK) {
                goto done;
            }
            c->mptr[0] = NULL;
            mods_push(c, LDAP_MOD_DELETE, attrs[k], NULL, &vp, 0, 1);
            log_debug("ldap_modify(dn=\"%s\", delete %s) uri=%s", gdn, attrs[k], c->s.cfg.uri);
            lost = sync_req(c, REQ_MODIFY, gdn, c->mptr, &code, &matched, &diag);
            if (lost == 0 && code == LDAP_SUCCESS && left != NULL) {
                char *note = NULL;
                if (asprintf(&note, "%s %s", attrs[k], gdn) < 0 ||
                    entry_add_str(left, CONN_UNDO_GROUPS, note) != DM_OK) {
                    log_warn("%s: out of memory noting that %s left %s", c->s.cfg.uri, dn, gdn);
                }
                free(note);
            }
            if (lost == 0 && code != LDAP_SUCCESS && code != LDAP_NO_SUCH_ATTRIBUTE &&
                code != LDAP_UNDEFINED_TYPE) {
                log_warn("%s: %s stays in group %s: %s%s%s", c->s.cfg.uri, dn, gdn,
                         ldap_err2string(code), diag ? ": " : "", diag ? diag : "");
            }
            ldap_memfree(matched);
            ldap_memfree(diag);
        }
    }
done:
    free(esc);
    free(filter);
    entry_free(hits);
    return lost;
}

/* After a rename: member values that name old_dn in the groups under the target base name
 * new_dn instead, in one modify per group and attribute (delete the old value, add the
 * new), so no group is left naming an entry that is gone. The refint overlay does the same
 * on its own; where it did first, the search finds nothing or the modify fails harmlessly.
 * A group that cannot be updated is reported and kept. Returns 0 or negative: lost. */
static int follow_groups(struct apply_ctx *a, const char *old_dn, const char *new_dn)
{
    static const char *const attrs[] = {"member", "uniqueMember"};
    struct conn *c = a->c;
    struct entry *hits = entry_new(old_dn);
    char *esc = NULL, *filter = NULL;
    struct dm_err e = {0};
    int lost = 0, rc;

    if (hits == NULL || dn_filter_escape(&esc, old_dn, strlen(old_dn), &e) != DM_OK ||
        asprintf(&filter, "(|(member=%s)(uniqueMember=%s))", esc, esc) < 0) {
        filter = NULL;
        log_warn("%s: out of memory following the groups of %s", c->s.cfg.uri, new_dn);
        goto done;
    }
    rc = ldap_common_search(&c->s, c->s.cfg.base, LDAP_SCOPE_SUBTREE, filter,
                            (char *[]){"1.1", NULL}, c->s.cfg.page_size, collect_dn_cb, hits, &e);
    if (rc != DM_OK) {
        if (rc == DM_EUNAVAIL && ldap_common_is_conn_err(e.ldap_rc)) {
            lost = e.ldap_rc;
        } else {
            log_warn("%s: cannot find the groups of %s (moved from %s): %s", c->s.cfg.uri, new_dn,
                     old_dn, e.msg);
        }
        goto done;
    }
    for (size_t g = 0; g < (hits->nattrs > 0 ? hits->attrs[0].nvals : 0) && lost == 0; g++) {
        const char *gdn = (const char *)hits->attrs[0].vals[g].data;
        for (size_t k = 0; k < DM_ARRAY_LEN(attrs) && lost == 0; k++) {
            struct dm_val ov = {strlen(old_dn), (unsigned char *)old_dn};
            struct dm_val nv = {strlen(new_dn), (unsigned char *)new_dn};
            const struct dm_val *ovp = &ov, *nvp = &nv;
            char *matched = NULL, *diag = NULL;
            int code;
            if (mods_reserve(c, 2, 2) != DM_OK) {
                goto done;
            }
            mods_push(c, LDAP_MOD_DELETE, attrs[k], NULL, &ovp, 0, 1);
            mods_push(c, LDAP_MOD_ADD, attrs[k], NULL, &nvp, 0, 1);
            log_debug("ldap_modify(dn=\"%s\", %s: \"%s\" -> \"%s\") uri=%s", gdn, attrs[k], old_dn,
                      new_dn, c->s.cfg.uri);
            lost = sync_req(c, REQ_MODIFY, gdn, c->mptr, &code, &matched, &diag);
            if (lost == 0 && code != LDAP_SUCCESS && code != LDAP_NO_SUCH_ATTRIBUTE &&
                code != LDAP_UNDEFINED_TYPE && code != LDAP_TYPE_OR_VALUE_EXISTS) {
                log_warn("%s: group %s still names %s (moved to %s): %s%s%s", c->s.cfg.uri, gdn,
                         old_dn, new_dn, ldap_err2string(code), diag ? ": " : "", diag ? diag : "");
            }
            ldap_memfree(matched);
            ldap_memfree(diag);
        }
    }
done:
    free(esc);
    free(filter);
    entry_free(hits);
    return lost;
}

/* Renames old_dn to new_dn (new RDN and new superior; the old RDN value is deleted). Returns
 * 0 with *code, or negative: connection lost. */
static int sync_rename(struct conn *c, const char *old_dn, const char *new_dn, int *code,
                       char **matched, char **diag)
{
    struct dn *d = NULL;
    char *rdn = NULL;
    const char *sup;
    int msgid, lrc, lost;

    *matched = NULL;
    *diag = NULL;
    *code = LDAP_SUCCESS;
    if (dn_parse(&d, new_dn, NULL) != DM_OK || d->nrdns < 2) {
        dn_free(d);
        *code = LDAP_INVALID_DN_SYNTAX;
        return 0;
    }
    rdn = strndup(new_dn, d->rdns[0].end);
    sup = new_dn + d->rdns[0].end;
    while (*sup == ',' || *sup == ';' || *sup == ' ') {
        sup++;
    }
    dn_free(d);
    if (rdn == NULL) {
        *code = LDAP_NO_MEMORY;
        return 0;
    }
    log_debug("ldap_rename(dn=\"%s\", newrdn=\"%s\", newSuperior=\"%s\", deleteoldrdn=1) uri=%s",
              old_dn, rdn, sup, c->s.cfg.uri);
    lrc = ldap_rename(c->s.ld, old_dn, rdn, sup, 1, NULL, NULL, &msgid);
    free(rdn);
    if (lrc < 0 && ldap_common_is_conn_err(lrc)) {
        return lrc;
    }
    if (lrc != LDAP_SUCCESS) {
        *code = lrc;
        return 0;
    }
    lost = wait_one(c, msgid, code, matched, diag);
    return lost;
}

/* Handles item i synchronously (nothing else in flight). Returns 0 (res[i] final) or
 * negative: the connection was lost and item i must be redone. */
static int sync_item(struct apply_ctx *a, size_t i)
{
    const struct change *ch = &a->v[i];
    char *matched = NULL;
    char *diag = NULL;
    const char *op = "delete";
    struct entry *pre = NULL, *left = NULL;
    int code = LDAP_SUCCESS;
    int lost = 0;

    if (ch->undo && (ch->op == CHANGE_DELETE || ch->op == CHANGE_MOVE)) {
        /* the undo image of a delete or a rename: the entry as it is before */
        struct dm_err e = {0};
        int rc = undo_read(&pre, a, ch->op == CHANGE_MOVE ? ch->old_ref : ch->entry->dn, &e);
        if (rc == DM_EUNAVAIL && ldap_common_is_conn_err(e.ldap_rc)) {
            return e.ldap_rc;
        }
        if (rc != DM_OK && rc != DM_ENOTFOUND) {
            log_warn("%s: %s: no undo image: %s", a->c->s.cfg.uri, ch->entry->dn, e.msg);
        }
    }
    if ((ch->op == CHANGE_DELETE || ch->op == CHANGE_DISABLE ||
         (ch->op != CHANGE_ADD && ch->state == CHANGE_STATE_DISABLE)) &&
        ch->leave_groups && a->state[i] != ST_EXISTS) {
        /* a move leaves the groups at the DN they list it by: the one before the rename */
        const char *dn = ch->op == CHANGE_MOVE ? ch->old_ref : ch->entry->dn;
        left = ch->undo ? entry_new(ch->entry->dn) : NULL;
        lost = leave_groups(a, dn, left);
        if (lost != 0) {
            entry_free(pre);
            entry_free(left);
            return lost;
        }
    }
    switch (ch->op) {
    case CHANGE_DISABLE:
        lost = update_item(a, i);
        if (lost == 0 && a->res[i].status == APPLY_UPDATED) {
            a->res[i].status = APPLY_DISABLED;
        }
        break;
    case CHANGE_DELETE:
        log_debug("ldap_delete(dn=\"%s\") uri=%s", ch->entry->dn, a->c->s.cfg.uri);
        lost = sync_req(a->c, REQ_DELETE, ch->entry->dn, NULL, &code, &matched, &diag);
        if (lost == 0 && (code == LDAP_SUCCESS || code == LDAP_NO_SUCH_OBJECT)) {
            item_done(a, i, APPLY_DELETED);
            if (code == LDAP_SUCCESS && pre != NULL) {
                a->res[i].before = pre; /* the whole entry, to be created again */
                pre = NULL;
            }
        } else if (lost == 0) {
            item_fail(a, i, code, matched, diag, op);
            item_done(a, i, APPLY_FAILED);
        }
        break;
    case CHANGE_MOVE:
        lost = sync_rename(a->c, ch->old_ref, ch->entry->dn, &code, &matched, &diag);
        if (lost != 0) {
            break;
        }
        /* noSuchObject on a replay after a lost connection: the rename went through */
        if (code == LDAP_ALREADY_EXISTS) {
            /* never onto someone else's entry (two users with one RDN, one disabled) */
            dm_err_clear(&a->res[i].err);
            dm_err_set(&a->res[i].err, DM_EEXISTS,
                       "cannot move %s here: an entry with this DN already exists (it is "
                       "left as it is, and so is this one)",
                       ch->old_ref);
            a->res[i].err.ldap_rc = code;
            dm_err_dn(&a->res[i].err, ch->entry->dn);
            item_done(a, i, APPLY_FAILED);
            break;
        }
        if (code != LDAP_SUCCESS && !(code == LDAP_NO_SUCH_OBJECT && a->replayed[i])) {
            item_fail(a, i, code, matched, diag, "rename");
            item_done(a, i, APPLY_FAILED);
            break;
        }
        a->res[i].moved = 1;
        /* after leave_groups, only the groups that could not lose it (a last member) */
        lost = follow_groups(a, ch->old_ref, ch->entry->dn);
        if (lost != 0) {
            break;
        }
        lost = update_item(a, i);
        if (lost == 0 && a->res[i].status == APPLY_UNCHANGED) {
            a->res[i].status = APPLY_UPDATED; /* the rename was the change */
        }
        if (lost == 0 && a->res[i].status == APPLY_UPDATED) {
            undo_moved(a, i, pre);
        }
        break;
    case CHANGE_ADD:
        if (a->state[i] != ST_EXISTS) {
            lost = add_chunked(a, want_of(a, i), &code, &matched, &diag, &op);
            if (lost != 0) {
                break;
            }
            if (code == LDAP_SUCCESS) {
                item_done(a, i, APPLY_CREATED);
                undo_created(a, i);
                break;
            }
            if (code != LDAP_ALREADY_EXISTS) {
                item_fail(a, i, code, matched, diag, op);
                item_done(a, i, APPLY_FAILED);
                break;
            }
            if (add_exists(a, i)) {
                break;
            }
        }
        lost = update_item(a, i);
        break;
    default:
        lost = update_item(a, i);
        break;
    }
    if (lost == 0 && a->res[i].status != APPLY_FAILED) {
        undo_groups(a, i, left);
    }
    entry_free(pre);
    entry_free(left);
    ldap_memfree(matched);
    ldap_memfree(diag);
    return lost;
}

static int is_fast(const struct apply_ctx *a, const struct change *ch)
{
    if (ch->op == CHANGE_DELETE) {
        return !ch->leave_groups && !ch->undo; /* undo: the entry is read first */
    }
    return ch->op == CHANGE_ADD && !needs_chunks(ch->entry, a->chunk);
}

/* Sends item i on the pipeline. Returns 0 or negative: connection lost. */
static int send_fast(struct apply_ctx *a, size_t i)
{
    const struct change *ch = &a->v[i];
    LDAPMod **mods = NULL;
    int msgid;
    int code = LDAP_SUCCESS;
    int lost;

    if (ch->op == CHANGE_ADD) {
        if (mods_for_add(&mods, a->c, want_of(a, i), a->chunk) != DM_OK) {
            item_fail(a, i, LDAP_NO_MEMORY, NULL, NULL, "add");
            item_done(a, i, APPLY_FAILED);
            return 0;
        }
        lost = send_req(a->c, REQ_ADD, ch->entry->dn, mods, &msgid, &code);
    } else {
        lost = send_req(a->c, REQ_DELETE, ch->entry->dn, NULL, &msgid, &code);
    }
    if (lost != 0) {
        return lost;
    }
    if (msgid < 0) {
        item_fail(a, i, code, NULL, NULL, ch->op == CHANGE_ADD ? "add" : "delete");
        item_done(a, i, APPLY_FAILED);
        return 0;
    }
    tab_put(a->c, msgid, i);
    a->state[i] = ST_INFLIGHT;
    return 0;
}

/* Collects one pipelined result. Returns 0 or negative: connection lost. */
static int collect_one(struct apply_ctx *a)
{
    struct conn *c = a->c;
    struct timeval tv;
    LDAPMessage *msg = NULL;
    char *matched = NULL;
    char *diag = NULL;
    const struct change *ch;
    int code = LDAP_OTHER;
    int msgid;
    size_t i;
    int n;
    int lrc;

    n = ldap_result(c->s.ld, LDAP_RES_ANY, LDAP_MSG_ONE, ldap_common_op_timeout(&c->s, &tv), &msg);
    if (n == 0) {
        log_warn("%s: no result within %d ms with %zu operations in flight", c->s.cfg.uri,
                 c->s.cfg.op_timeout_ms, c->inflight);
        return LDAP_TIMEOUT;
    }
    if (n < 0) {
        lrc = LDAP_SERVER_DOWN;
        ldap_get_option(c->s.ld, LDAP_OPT_RESULT_CODE, &lrc);
        return lrc < 0 ? lrc : LDAP_SERVER_DOWN;
    }
    msgid = ldap_msgid(msg);
    if (msgid <= 0 || !tab_take(c, msgid, &i)) {
        /* msgid 0: unsolicited notification (Notice of Disconnection): the server is
         * about to close the connection. */
        ldap_msgfree(msg);
        return msgid == 0 ? LDAP_SERVER_DOWN : 0;
    }
    lrc = ldap_parse_result(c->s.ld, msg, &code, &matched, &diag, NULL, NULL, 1);
    if (lrc != LDAP_SUCCESS) {
        code = lrc;
    }
    ch = &a->v[i];
    if (ch->op == CHANGE_ADD) {
        if (code == LDAP_SUCCESS) {
            item_done(a, i, APPLY_CREATED);
            undo_created(a, i);
        } else if (code == LDAP_ALREADY_EXISTS) {
            if (!add_exists(a, i)) {
                a->state[i] = ST_EXISTS;
            }
        } else if (code == LDAP_NO_SUCH_OBJECT) {
            a->state[i] = ST_RETRY; /* the parent may still be in flight */
        } else {
            item_fail(a, i, code, matched, diag, "add");
            item_done(a, i, APPLY_FAILED);
        }
    } else {
        if (code == LDAP_SUCCESS || code == LDAP_NO_SUCH_OBJECT) {
            item_done(a, i, APPLY_DELETED);
        } else if (code == LDAP_NOT_ALLOWED_ON_NONLEAF) {
            a->state[i] = ST_RETRY; /* children may still be in flight */
        } else {
            item_fail(a, i, code, matched, diag, "delete");
            item_done(a, i, APPLY_FAILED);
        }
    }
    ldap_memfree(matched);
    ldap_memfree(diag);
    return 0;
}

static int drain(struct apply_ctx *a)
{
    int lost = 0;

    while (lost == 0 && a->c->inflight > 0) {
        lost = collect_one(a);
    }
    return lost;
}

/* One pass over the batch; returns 0 when every item is final, negative when the
 * connection was lost (unfinished items stay TODO / EXISTS / RETRY). */
static int apply_pass(struct apply_ctx *a)
{
    size_t next = 0;
    int lost = 0;

    while (lost == 0 && (next < a->n || a->c->inflight > 0)) {
        if (next < a->n && a->c->inflight < a->window) {
            size_t i = next++;
            if (a->state[i] != ST_TODO) {
                continue;
            }
            if (is_fast(a, &a->v[i])) {
                lost = send_fast(a, i);
                continue;
            }
            lost = drain(a);
            if (lost == 0) {
                lost = sync_item(a, i);
            }
            continue;
        }
        lost = collect_one(a);
    }
    for (size_t i = 0; lost == 0 && i < a->n; i++) {
        if (a->state[i] == ST_EXISTS || a->state[i] == ST_RETRY) {
            lost = sync_item(a, i);
        }
    }
    return lost;
}

static int ldap_apply(struct conn *c, const struct change *v, size_t n, struct apply_result *res)
{
    struct apply_ctx a;
    struct dm_err e;
    int tries = c->s.cfg.max_retries > 0 ? c->s.cfg.max_retries : 1;
    int stalls = 0;
    size_t before;
    int lost;
    int rc = DM_OK;

    memset(&a, 0, sizeof(a));
    dm_err_clear(&e);
    a.c = c;
    a.v = v;
    a.n = n;
    a.res = res;
    a.window = c->s.cfg.write_window > 0 ? (size_t)c->s.cfg.write_window : 1;
    if (a.window > LDAP_MAX_WINDOW) {
        a.window = LDAP_MAX_WINDOW;
    }
    a.chunk = c->s.cfg.member_chunk > 0 ? (size_t)c->s.cfg.member_chunk : LDAP_DEFAULT_CHUNK;
    for (size_t i = 0; i < n; i++) {
        assert(v[i].entry != NULL && v[i].entry->dn != NULL);
        res[i].status = APPLY_FAILED;
        dm_err_clear(&res[i].err);
    }
    if (n == 0) {
        return DM_OK;
    }
    a.state = calloc(n, 1);
    a.replayed = calloc(n, 1);
    a.want = calloc(n, sizeof(*a.want));
    if (a.state == NULL || a.replayed == NULL || a.want == NULL || tab_init(c, a.window) != DM_OK) {
        rc = dm_err_set(&e, DM_ENOMEM, "apply: out of memory");
        goto fail_rest;
    }
    for (size_t i = 0; i < n; i++) {
        rc = prepare_state(&a, i);
        if (rc == DM_ENOMEM) {
            dm_err_set(&e, DM_ENOMEM, "apply: out of memory");
            goto fail_rest;
        }
        if (rc != DM_OK) {
            item_done(&a, i, APPLY_FAILED); /* res[i].err says why */
        }
    }
    rc = ensure_open(c, &e);
    if (rc != DM_OK) {
        goto fail_rest;
    }
    for (;;) {
        before = a.ndone;
        lost = apply_pass(&a);
        if (lost == 0) {
            break;
        }
        /* Connection lost: everything unconfirmed is redone on a new connection. Adds are
         * safe to repeat (68 leads to compare-and-modify), deletes too (32 = deleted). */
        for (size_t i = 0; i < n; i++) {
            if (a.state[i] == ST_INFLIGHT) {
                a.state[i] = ST_TODO;
                a.replayed[i] = 1;
            }
        }
        tab_init(c, a.window);
        ldap_to_rc(&e, c->s.ld, lost, NULL, NULL, "apply: connection lost");
        stalls = a.ndone > before ? 0 : stalls + 1;
        if (stalls > tries) {
            rc = DM_EUNAVAIL;
            goto fail_rest;
        }
        log_warn("%s: %s; %zu of %zu changes done, retrying the rest", c->s.cfg.uri, e.msg, a.ndone,
                 n);
        rc = ldap_common_reconnect(&c->s, &e);
        if (rc != DM_OK) {
            goto fail_rest;
        }
    }
    rc = DM_OK;
    goto done;
fail_rest:
    /* Only a connection that cannot be re-established fails the whole call. */
    for (size_t i = 0; i < n; i++) {
        if (a.state == NULL || a.state[i] != ST_DONE) {
            res[i].status = APPLY_FAILED;
            res[i].err = e;
            dm_err_dn(&res[i].err, v[i].entry != NULL ? v[i].entry->dn : NULL);
        }
    }
    if (rc != DM_ENOMEM && rc != DM_EAUTH) {
        rc = DM_EUNAVAIL;
    }
done:
    if (c->inflight > 0) {
        ldap_common_close(&c->s); /* results we no longer track: start clean next time */
        c->inflight = 0;
    }
    for (size_t i = 0; a.want != NULL && i < n; i++) {
        entry_free(a.want[i]);
    }
    free(a.want);
    free(a.state);
    free(a.replayed);
    return rc;
}

/* ---- identity ---- */

static int ldap_identity(char **out, struct conn *c, struct dm_err *err)
{
    struct berval *authzid = NULL;
    int rc, lrc;

    rc = ensure_open(c, err);
    if (rc != DM_OK) {
        return rc;
    }
    log_debug("ldap_whoami() uri=%s", c->s.cfg.uri);
    lrc = ldap_whoami_s(c->s.ld, &authzid, NULL, NULL);
    if (lrc == LDAP_SUCCESS) {
        rc = asprintf(out, "%.*s", authzid != NULL ? (int)authzid->bv_len : 0,
                      authzid != NULL ? authzid->bv_val : "") < 0;
    } else {
        /* no who-am-I (Active Directory): the identity the configuration binds with */
        rc = asprintf(out, "dn:%s",
                      c->s.cfg.bind_dn != NULL     ? c->s.cfg.bind_dn
                      : c->s.cfg.sasl_mech != NULL ? c->s.cfg.sasl_mech
                                                   : "(anonymous)") < 0;
    }
    ber_bvfree(authzid);
    return rc ? dm_err_set(err, DM_ENOMEM, "out of memory") : DM_OK;
}

/* ---- check ---- */

static int ldap_check(struct conn *c, struct buf *out, struct dm_err *err)
{
    int rc = ensure_open(c, err);

    return rc != DM_OK ? rc : ldap_common_check(&c->s, out, err);
}

/* The base entry's entryUUID (objectGUID marks AD, whose base GUID is not read as text
 * here): a server rebuilt, or another server behind the same name, is another target. */
static int ldap_base_identity(char **out, struct conn *c, struct dm_err *err)
{
    struct entry *b = NULL;
    const char *uuid = "";
    int rc = ldap_lookup(&b, c, c->s.cfg.base, err);

    if (rc == DM_ENOTFOUND) {
        return dm_err_set(err, DM_ENOTFOUND, "the target base %s does not exist at %s",
                          c->s.cfg.base, c->s.cfg.uri);
    }
    if (rc != DM_OK) {
        return rc;
    }
    if (entry_first(b, "entryUUID") != NULL) {
        uuid = entry_first(b, "entryUUID");
    } else if (entry_first(b, "objectGUID") != NULL) {
        uuid = "objectGUID";
    }
    *out = strdup(uuid);
    entry_free(b);
    return *out != NULL ? DM_OK : dm_err_set(err, DM_ENOMEM, "out of memory");
}

const struct conn_ops conn_ldap_ops = {
    .name = "ldap",
    .what = "an LDAP directory",
    .caps = CONN_READ | CONN_WRITE | CONN_GROUPS | CONN_VERIFY | CONN_SOURCE | CONN_TREE |
            CONN_NESTED_GROUPS | CONN_LDAP | CONN_DELTA | CONN_UNDO | CONN_UNDO_DELETE,
    .open = ldap_open,
    .read = ldap_read,
    .lookup = ldap_lookup,
    .apply = ldap_apply,
    .check = ldap_check,
    .close = ldap_close,
    .identity = ldap_identity,
    .read_mark = ldap_read_mark,
    .read_deleted = ldap_read_deleted,
    .ident = CONN_IDENT_DN,
    .members = CONN_MEMBERS_DN,
    .target_identity = ldap_base_identity,
    .disabled_ref = ldap_disabled_ref,
    .config_check = conncfg_check_ldap,
};
