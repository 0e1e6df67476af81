#include <config.h>
#include "agent/tview.h"
#include "agent/util/hash64.h"
#include "agent/util/log.h"
#include "schema/dn.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Returned by the read callback once the view is closing (not an enum dm_rc). */
#define TVIEW_STOP 1001

struct node {
    uint64_t h;
    char *norm; /* normalised DN */
    struct proj *p;
    struct node *next;
};

struct tview {
    struct tview_cfg cfg;
    pthread_mutex_t mu;
    pthread_cond_t changed;
    /* index: normalised DN -> projection */
    struct node **tab;
    size_t nbuckets, count;
    /* DNs looked up directly (hash set, open addressing, 0 = empty) */
    uint64_t *done;
    size_t ndone_cap, ndone;
    /* the background read */
    int reading;  /* a thread was started */
    int finished; /* the read returned */
    int stop;     /* tview_close: the read must end */
    int draining; /* tview_drain: no bound */
    int read_rc;
    struct dm_err read_err;
    pthread_t th;
    struct conn *rconn;
    struct tview_stats st;
};

static int norm_hash(char **norm, uint64_t *h, const char *dn)
{
    if (dn_normalize(norm, dn, NULL) != DM_OK) {
        *norm = strdup(dn); /* not a DN we can parse: compared as written */
        if (*norm == NULL) {
            return DM_ENOMEM;
        }
    }
    *h = hash64(*norm, strlen(*norm));
    return DM_OK;
}

/* ---- the index (callers hold mu) ---- */

static int index_grow(struct tview *v)
{
    size_t nb = v->nbuckets ? v->nbuckets * 2 : 1024;
    struct node **t = calloc(nb, sizeof(*t));

    if (t == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; i < v->nbuckets; i++) {
        struct node *n = v->tab[i], *next;
        for (; n != NULL; n = next) {
            next = n->next;
            n->next = t[n->h & (nb - 1)];
            t[n->h & (nb - 1)] = n;
        }
    }
    free(v->tab);
    v->tab = t;
    v->nbuckets = nb;
    return DM_OK;
}

/* Unlinks and returns the node for (h, norm), or NULL. */
static struct node *index_take(struct tview *v, uint64_t h, const char *norm)
{
    struct node **pp;

    if (v->nbuckets == 0) {
        return NULL;
    }
    for (pp = &v->tab[h & (v->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->h == h && strcmp((*pp)->norm, norm) == 0) {
            struct node *n = *pp;
            *pp = n->next;
            v->count--;
            return n;
        }
    }
    return NULL;
}

/* Any node (for draining), unlinked; NULL when empty. */
static struct node *index_pop(struct tview *v)
{
    for (size_t i = 0; v->count > 0 && i < v->nbuckets; i++) {
        if (v->tab[i] != NULL) {
            struct node *n = v->tab[i];
            v->tab[i] = n->next;
            v->count--;
            return n;
        }
    }
    return NULL;
}

static void node_free(struct node *n)
{
    if (n != NULL) {
        proj_free(n->p);
        free(n->norm);
        free(n);
    }
}

/* The set of hashes of DNs looked up directly. */
static int done_add(struct tview *v, uint64_t h)
{
    h |= 1; /* 0 marks an empty slot */
    if ((v->ndone + 1) * 2 > v->ndone_cap) {
        size_t nc = v->ndone_cap ? v->ndone_cap * 2 : 4096;
        uint64_t *t = calloc(nc, sizeof(*t));
        if (t == NULL) {
            return DM_ENOMEM;
        }
        for (size_t i = 0; i < v->ndone_cap; i++) {
            if (v->done[i] != 0) {
                size_t j = v->done[i] & (nc - 1);
                while (t[j] != 0) {
                    j = (j + 1) & (nc - 1);
                }
                t[j] = v->done[i];
            }
        }
        free(v->done);
        v->done = t;
        v->ndone_cap = nc;
    }
    for (size_t j = h & (v->ndone_cap - 1);; j = (j + 1) & (v->ndone_cap - 1)) {
        if (v->done[j] == h) {
            return DM_OK;
        }
        if (v->done[j] == 0) {
            v->done[j] = h;
            v->ndone++;
            return DM_OK;
        }
    }
}

static int done_has(const struct tview *v, uint64_t h)
{
    h |= 1;
    for (size_t j = v->ndone_cap ? h & (v->ndone_cap - 1) : 0; v->ndone_cap > 0;
         j = (j + 1) & (v->ndone_cap - 1)) {
        if (v->done[j] == h) {
            return 1;
        }
        if (v->done[j] == 0) {
            return 0;
        }
    }
    return 0;
}

/* ---- the background read ---- */

static int on_read(const struct entry *e, void *payload)
{
    struct tview *v = payload;
    struct node *n = calloc(1, sizeof(*n));
    struct dm_err err = {0};
    int rc = DM_ENOMEM;

    if (n == NULL || norm_hash(&n->norm, &n->h, e->dn ? e->dn : "") != DM_OK) {
        goto fail;
    }
    rc = proj_build(&n->p, e, v->cfg.rules, &err);
    if (rc != DM_OK) {
        goto fail;
    }
    pthread_mutex_lock(&v->mu);
    v->st.read++;
    if (done_has(v, n->h)) {
        pthread_mutex_unlock(&v->mu);
        node_free(n); /* the planner already looked it up */
        return 0;
    }
    while (v->count >= v->cfg.max_ahead && !v->draining && !v->stop) {
        pthread_cond_wait(&v->changed, &v->mu);
    }
    if (v->stop) {
        pthread_mutex_unlock(&v->mu);
        node_free(n);
        return TVIEW_STOP;
    }
    if ((v->count + 1) * 2 > v->nbuckets * 3 && index_grow(v) != DM_OK) {
        pthread_mutex_unlock(&v->mu);
        rc = DM_ENOMEM;
        goto fail;
    }
    n->next = v->tab[n->h & (v->nbuckets - 1)];
    v->tab[n->h & (v->nbuckets - 1)] = n;
    v->count++;
    if ((long long)v->count > v->st.max_held) {
        v->st.max_held = (long long)v->count;
    }
    pthread_cond_broadcast(&v->changed);
    pthread_mutex_unlock(&v->mu);
    return 0;
fail:
    node_free(n);
    return rc;
}

static void *read_main(void *arg)
{
    struct tview *v = arg;
    struct scope sc = {0};
    struct dm_err e = {0};
    int rc;

    sc.base = v->cfg.conn->base;
    sc.filter = "(objectClass=*)";
    rc = v->cfg.ops->read(v->rconn, &sc, on_read, v, &e);
    if (rc == DM_ENOMEM && e.rc == DM_OK) {
        dm_err_set(&e, DM_ENOMEM, "out of memory indexing the target");
    }
    pthread_mutex_lock(&v->mu);
    v->finished = 1;
    v->read_rc = rc;
    v->read_err = e;
    pthread_cond_broadcast(&v->changed);
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

int tview_open(struct tview **out, const struct tview_cfg *cfg, struct dm_err *err)
{
    struct tview *v = calloc(1, sizeof(*v));
    int rc;

    if (v == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    v->cfg = *cfg;
    if (v->cfg.max_ahead == 0) {
        v->cfg.max_ahead = 1;
    }
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->changed, NULL);
    if (cfg->full_read && cfg->ops->ident == CONN_IDENT_DN && !(cfg->ops->caps & CONN_SNAPSHOT)) {
        rc = cfg->ops->open(&v->rconn, cfg->conn, err);
        if (rc != DM_OK) {
            tview_close(v);
            return rc;
        }
        if (index_grow(v) != DM_OK) {
            tview_close(v);
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        if (pthread_create(&v->th, NULL, read_main, v) != 0) {
            tview_close(v);
            return dm_err_set(err, DM_EINTERNAL, "cannot start the target read thread");
        }
        v->reading = 1;
        log_debug("reading the target under \"%s\" in the background", cfg->conn->base);
    }
    *out = v;
    return DM_OK;
}

/* A DN-addressed object: from the index when the read has it, absent when the read is
 * complete without it, else looked up directly. */
static int get_dn(struct tview *v, const char *dn, struct proj **out, struct dm_err *err)
{
    struct node *n = NULL;
    struct entry *e = NULL;
    char *norm = NULL;
    uint64_t h;
    int rc, complete = 0;

    *out = NULL;
    if (norm_hash(&norm, &h, dn) != DM_OK) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    if (v->reading) {
        pthread_mutex_lock(&v->mu);
        n = index_take(v, h, norm);
        complete = v->finished && v->read_rc == DM_OK;
        if (n == NULL && !complete && done_add(v, h) != DM_OK) {
            pthread_mutex_unlock(&v->mu);
            free(norm);
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        if (n != NULL) {
            v->st.taken++;
        }
        pthread_cond_broadcast(&v->changed);
        pthread_mutex_unlock(&v->mu);
    }
    free(norm);
    if (n != NULL) {
        *out = n->p;
        n->p = NULL;
        node_free(n);
        return DM_OK;
    }
    if (complete) {
        return dm_err_set(err, DM_ENOTFOUND, "not at the target");
    }
    v->st.looked_up++;
    rc = v->cfg.ops->lookup(&e, v->cfg.lookup, dn, err);
    if (rc == DM_OK) {
        rc = proj_build(out, e, v->cfg.rules, err);
    }
    entry_free(e);
    return rc;
}

/* m look-ups of one kind in flight together: by reference (get_many) or by natural key
 * (find_many); results into out/rcs/errs at idx[k]. */
static void lookup_many(struct tview *v, enum obj_kind kind, int by_ref, const char **names,
                        const size_t *idx, size_t m, struct entry **found, struct proj **out,
                        int *rcs, struct dm_err *errs)
{
    const struct conn_ops *ops = v->cfg.ops;
    int *frc = calloc(m, sizeof(*frc));
    struct dm_err *ferr = calloc(m, sizeof(*ferr));

    if (frc == NULL || ferr == NULL) {
        for (size_t k = 0; k < m; k++) {
            rcs[idx[k]] = dm_err_set(&errs[idx[k]], DM_ENOMEM, "out of memory");
        }
        free(frc);
        free(ferr);
        return;
    }
    v->st.looked_up += (long long)m;
    if (by_ref) {
        ops->get_many(v->cfg.lookup, kind, names, m, found, frc, ferr);
    } else {
        ops->find_many(v->cfg.lookup, kind, names, m, found, frc, ferr);
    }
    for (size_t k = 0; k < m; k++) {
        size_t i = idx[k];
        rcs[i] = frc[k];
        errs[i] = ferr[k];
        if (frc[k] == DM_OK) {
            rcs[i] = proj_build(&out[i], found[k], v->cfg.rules, &errs[i]);
        }
        entry_free(found[k]);
        found[k] = NULL;
    }
    free(frc);
    free(ferr);
}

void tview_get(struct tview *v, enum obj_kind kind, const struct tview_req *reqs, size_t n,
               struct proj **out, int *rcs, struct dm_err *errs)
{
    const struct conn_ops *ops = v->cfg.ops;
    const char **names = NULL;
    struct entry **found = NULL;
    size_t *idx = NULL, m = 0;

    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        memset(&errs[i], 0, sizeof(errs[i]));
        rcs[i] = DM_ENOTFOUND;
    }
    if (ops->caps & CONN_SNAPSHOT) {
        return; /* written anew by this run: nothing is there yet */
    }
    if (ops->ident == CONN_IDENT_DN) {
        for (size_t i = 0; i < n; i++) {
            if (reqs[i].key != NULL && reqs[i].key[0]) {
                rcs[i] = get_dn(v, reqs[i].key, &out[i], &errs[i]);
            }
        }
        return;
    }
    /* by key: by target id (get_many, else get one by one) and by natural key
     * (find_many), each all in flight at once */
    names = calloc(n ? n : 1, sizeof(*names));
    found = calloc(n ? n : 1, sizeof(*found));
    idx = calloc(n ? n : 1, sizeof(*idx));
    if (names == NULL || found == NULL || idx == NULL) {
        for (size_t i = 0; i < n; i++) {
            rcs[i] = dm_err_set(&errs[i], DM_ENOMEM, "out of memory");
        }
        goto done;
    }
    for (int by_ref = 1; by_ref >= 0; by_ref--) {
        m = 0;
        for (size_t i = 0; i < n; i++) {
            if (reqs[i].key == NULL || reqs[i].key[0] == '\0' || !reqs[i].by_ref != !by_ref) {
                continue;
            }
            if (by_ref && ops->get_many == NULL) {
                struct entry *e = NULL;
                v->st.looked_up++;
                rcs[i] = ops->get(&e, v->cfg.lookup, kind, reqs[i].key, &errs[i]);
                if (rcs[i] == DM_OK) {
                    rcs[i] = proj_build(&out[i], e, v->cfg.rules, &errs[i]);
                }
                entry_free(e);
                continue;
            }
            names[m] = reqs[i].key;
            idx[m++] = i;
        }
        if (m > 0) {
            lookup_many(v, kind, by_ref, names, idx, m, found, out, rcs, errs);
        }
    }
done:
    free(names);
    free(found);
    free(idx);
}

int tview_read_complete(const struct tview *v)
{
    int c;

    if (!v->reading) {
        return 0;
    }
    pthread_mutex_lock((pthread_mutex_t *)&v->mu);
    c = v->finished && v->read_rc == DM_OK;
    pthread_mutex_unlock((pthread_mutex_t *)&v->mu);
    return c;
}

int tview_drain(struct tview *v, tview_proj_fn fn, void *payload, struct dm_err *err)
{
    int rc = DM_OK;

    if (!v->reading) {
        return dm_err_set(err, DM_EINVAL, "the target was not read");
    }
    pthread_mutex_lock(&v->mu);
    v->draining = 1;
    pthread_cond_broadcast(&v->changed);
    for (;;) {
        struct node *n = index_pop(v);
        if (n != NULL) {
            pthread_mutex_unlock(&v->mu);
            rc = fn(n->p, payload);
            node_free(n);
            pthread_mutex_lock(&v->mu);
            if (rc != 0) {
                break;
            }
            continue;
        }
        if (v->finished) {
            rc = v->read_rc;
            if (rc != DM_OK) {
                *err = v->read_err;
            }
            break;
        }
        pthread_cond_wait(&v->changed, &v->mu);
    }
    pthread_mutex_unlock(&v->mu);
    return rc;
}

void tview_get_stats(const struct tview *v, struct tview_stats *out)
{
    pthread_mutex_lock((pthread_mutex_t *)&v->mu);
    *out = v->st;
    pthread_mutex_unlock((pthread_mutex_t *)&v->mu);
}

void tview_close(struct tview *v)
{
    struct node *n;

    if (v == NULL) {
        return;
    }
    if (v->reading) {
        pthread_mutex_lock(&v->mu);
        v->stop = 1;
        pthread_cond_broadcast(&v->changed);
        pthread_mutex_unlock(&v->mu);
        pthread_join(v->th, NULL);
    }
    if (v->rconn != NULL) {
        v->cfg.ops->close(v->rconn);
    }
    while ((n = index_pop(v)) != NULL) {
        node_free(n);
    }
    free(v->tab);
    free(v->done);
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->changed);
    free(v);
}
