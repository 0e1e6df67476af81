#include <config.h>
#include "agent/hook_guard.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Chained hash tables with a random seed (the keys come from the internet; a fixed hash
 * would let a caller pile every username into one bucket). */

#define NBUCKETS 65536u

enum { EV_PENDING = 0, EV_DONE = 1 };

struct gent {
    struct gent *next;
    long long t0; /* budget: start of the failure window; event: time answered */
    int fails;    /* budget: failures in the window */
    int inflight; /* budget: attempts reserved and not ended */
    int state;    /* event: EV_PENDING / EV_DONE */
    int verified; /* event: the answer */
    size_t len;
    char key[];
};

/* A budget without a table: the total. */
struct gcount {
    long long t0;
    int fails, inflight;
};

struct gtable {
    struct gent *b[NBUCKETS];
    size_t n;
};

struct hook_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* an event was answered */
    uint64_t seed;
    unsigned char hmac_key[32]; /* per process, never stored or logged */
    EVP_MAC *mac;               /* HMAC, fetched once */
    EVP_MAC_CTX *hmac_ctx;      /* HMAC-SHA256 under hmac_key, initialised once; each key is
                                 * computed on a copy (EVP_MAC_CTX_dup takes it const) */
    struct hook_guard_limits lim;
    long long window_ms;
    struct gtable accounts, clients, events;
    struct gcount total;
};

static uint64_t hash_key(uint64_t seed, const char *k, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ seed;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static struct gent **find(struct gtable *t, uint64_t seed, const char *k, size_t len)
{
    struct gent **pp = &t->b[hash_key(seed, k, len) % NBUCKETS];

    for (; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->len == len && memcmp((*pp)->key, k, len) == 0) {
            return pp;
        }
    }
    return pp;
}

static int budget_expired(const struct hook_guard *g, const struct gent *e, long long now)
{
    return e->inflight == 0 && (e->fails == 0 || now - e->t0 >= g->window_ms);
}

static int event_expired(const struct gent *e, long long now)
{
    return e->state == EV_DONE && now - e->t0 >= HOOK_GUARD_EVENT_TTL_MS;
}

static void sweep(struct hook_guard *g, struct gtable *t, int budgets, long long now)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct gent **pp = &t->b[i];
        while (*pp != NULL) {
            struct gent *e = *pp;
            if (budgets ? budget_expired(g, e, now) : event_expired(e, now)) {
                *pp = e->next;
                free(e);
                t->n--;
            } else {
                pp = &e->next;
            }
        }
    }
}

/* Inserts a zeroed entry at *pp (the end of its chain); NULL when full or out of memory. */
static struct gent *insert(struct hook_guard *g, struct gtable *t, int budgets, struct gent **pp,
                           const char *k, size_t len, long long now)
{
    struct gent *e;

    if (t->n >= HOOK_GUARD_MAX_ENTRIES) {
        sweep(g, t, budgets, now);
        if (t->n >= HOOK_GUARD_MAX_ENTRIES) {
            return NULL;
        }
        pp = find(t, g->seed, k, len); /* the sweep may have changed the chain */
    }
    e = calloc(1, sizeof(*e) + len);
    if (e == NULL) {
        return NULL;
    }
    memcpy(e->key, k, len);
    e->len = len;
    *pp = e;
    t->n++;
    return e;
}

int hook_guard_new(struct hook_guard **out, const struct hook_guard_limits *l, struct dm_err *err)
{
    struct hook_guard *g = calloc(1, sizeof(*g));
    pthread_condattr_t ca;

    if (g == NULL) {
        return dm_err_set(err, DM_ENOMEM, "hook_guard_new");
    }
    if (getrandom(&g->seed, sizeof(g->seed), 0) != (ssize_t)sizeof(g->seed) ||
        RAND_bytes(g->hmac_key, sizeof(g->hmac_key)) != 1) {
        free(g);
        return dm_err_set(err, DM_EINTERNAL, "hook: no random bytes for the guard's keys");
    }
    g->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    g->hmac_ctx = g->mac != NULL ? EVP_MAC_CTX_new(g->mac) : NULL;
    {
        OSSL_PARAM params[2];
        params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
        params[1] = OSSL_PARAM_construct_end();
        if (g->hmac_ctx == NULL ||
            EVP_MAC_init(g->hmac_ctx, g->hmac_key, sizeof(g->hmac_key), params) != 1) {
            EVP_MAC_CTX_free(g->hmac_ctx);
            EVP_MAC_free(g->mac);
            explicit_bzero(g->hmac_key, sizeof(g->hmac_key));
            free(g);
            return dm_err_set(err, DM_EINTERNAL, "hook: OpenSSL has no HMAC-SHA256");
        }
    }
    g->lim = *l;
    g->lim.account_max = l->account_max > 0 ? l->account_max : 1;
    g->lim.client_max = l->client_max > 0 ? l->client_max : 1;
    g->lim.global_max = l->global_max > 0 ? l->global_max : 1;
    g->window_ms = (long long)l->window_s * 1000;
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = g;
    return DM_OK;
}

static void table_clear(struct gtable *t)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct gent *e = t->b[i];
        while (e != NULL) {
            struct gent *next = e->next;
            explicit_bzero(e->key, e->len);
            free(e);
            e = next;
        }
        t->b[i] = NULL;
    }
    t->n = 0;
}

void hook_guard_free(struct hook_guard *g)
{
    if (g == NULL) {
        return;
    }
    table_clear(&g->accounts);
    table_clear(&g->clients);
    table_clear(&g->events);
    explicit_bzero(g->hmac_key, sizeof(g->hmac_key));
    EVP_MAC_CTX_free(g->hmac_ctx);
    EVP_MAC_free(g->mac);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}

void hook_guard_cap_account(struct hook_guard *g, int account_max)
{
    pthread_mutex_lock(&g->mu);
    if (account_max >= 1 && account_max < g->lim.account_max) {
        g->lim.account_max = account_max;
    }
    pthread_mutex_unlock(&g->mu);
}

const char *hook_guard_verdict_name(enum hook_guard_verdict v)
{
    switch (v) {
    case HOOK_GUARD_ALLOW:
        return "";
    case HOOK_GUARD_DENY_ACCOUNT:
        return "account";
    case HOOK_GUARD_DENY_CLIENT:
        return "client";
    case HOOK_GUARD_DENY_GLOBAL:
        return "global";
    case HOOK_GUARD_DENY_FULL:
        break;
    }
    return "full";
}

#define MAX_KEY 1024

/* The budget entry of key in t (created when create is set); NULL when absent or the table
 * is full. The window restarts when it is over. */
static struct gent *budget(struct hook_guard *g, struct gtable *t, const char *k, size_t len,
                           int create, long long now)
{
    struct gent **pp, *e;

    if (len > MAX_KEY) {
        len = MAX_KEY;
    }
    pp = find(t, g->seed, k, len);
    e = *pp;
    if (e == NULL && create) {
        e = insert(g, t, 1, pp, k, len, now);
    }
    if (e != NULL && e->fails > 0 && now - e->t0 >= g->window_ms) {
        e->fails = 0; /* the window is over */
    }
    return e;
}

static void total_roll(struct hook_guard *g, long long now)
{
    if (g->total.fails > 0 && now - g->total.t0 >= g->window_ms) {
        g->total.fails = 0;
    }
}

/* Under the lock: the verdict for one more attempt of client (and the total). Only
 * failures count here, not attempts in flight: one client (Okta's egress address, an
 * application server) legitimately has many sign-ins in flight, and the overrun a burst can
 * cause is bounded by hook.max_concurrency. The account budget, which is what keeps an
 * account from being locked at the source, does count attempts in flight. */
static enum hook_guard_verdict client_verdict(struct hook_guard *g, struct gent *c)
{
    if (g->total.fails >= g->lim.global_max) {
        return HOOK_GUARD_DENY_GLOBAL;
    }
    if (c != NULL && c->fails >= g->lim.client_max) {
        return HOOK_GUARD_DENY_CLIENT;
    }
    return HOOK_GUARD_ALLOW;
}

enum hook_guard_verdict hook_guard_check_client(struct hook_guard *g, const char *client,
                                                size_t clen, long long now_ms)
{
    enum hook_guard_verdict v;

    pthread_mutex_lock(&g->mu);
    total_roll(g, now_ms);
    v = client_verdict(g, budget(g, &g->clients, client, clen, 0, now_ms));
    pthread_mutex_unlock(&g->mu);
    return v;
}

enum hook_guard_verdict hook_guard_begin(struct hook_guard *g, const char *account, size_t alen,
                                         const char *client, size_t clen, long long now_ms)
{
    struct gent *a, *c;
    enum hook_guard_verdict v;

    pthread_mutex_lock(&g->mu);
    total_roll(g, now_ms);
    a = budget(g, &g->accounts, account, alen, 1, now_ms);
    c = budget(g, &g->clients, client, clen, 1, now_ms);
    if (a == NULL || c == NULL) {
        v = HOOK_GUARD_DENY_FULL; /* full of live entries: fail closed */
    } else if (a->fails + a->inflight >= g->lim.account_max) {
        v = HOOK_GUARD_DENY_ACCOUNT;
    } else {
        v = client_verdict(g, c);
    }
    if (v == HOOK_GUARD_ALLOW) {
        a->inflight++;
        c->inflight++;
        g->total.inflight++;
    }
    pthread_mutex_unlock(&g->mu);
    return v;
}

/* Counts one failure on e (a budget entry or the total's fields). */
static void count_failure(long long *t0, int *fails, long long now, long long window)
{
    if (*fails == 0 || now - *t0 >= window) {
        *fails = 0;
        *t0 = now;
    }
    (*fails)++;
}

void hook_guard_end(struct hook_guard *g, const char *account, size_t alen, const char *client,
                    size_t clen, enum hook_guard_outcome o, long long now_ms)
{
    struct gent *a, *c;

    pthread_mutex_lock(&g->mu);
    a = budget(g, &g->accounts, account, alen, 0, now_ms);
    c = budget(g, &g->clients, client, clen, 0, now_ms);
    if (a != NULL && a->inflight > 0) {
        a->inflight--;
    }
    if (c != NULL && c->inflight > 0) {
        c->inflight--;
    }
    if (g->total.inflight > 0) {
        g->total.inflight--;
    }
    if (o == HOOK_GUARD_FAILURE) {
        if (a != NULL) {
            count_failure(&a->t0, &a->fails, now_ms, g->window_ms);
        }
        if (c != NULL) {
            count_failure(&c->t0, &c->fails, now_ms, g->window_ms);
        }
        count_failure(&g->total.t0, &g->total.fails, now_ms, g->window_ms);
    } else if (o == HOOK_GUARD_SUCCESS && a != NULL) {
        a->fails = 0;
    }
    pthread_mutex_unlock(&g->mu);
}

void hook_guard_client_failure(struct hook_guard *g, const char *client, size_t clen,
                               long long now_ms)
{
    struct gent *c;

    pthread_mutex_lock(&g->mu);
    c = budget(g, &g->clients, client, clen, 1, now_ms);
    if (c != NULL) {
        count_failure(&c->t0, &c->fails, now_ms, g->window_ms);
    }
    pthread_mutex_unlock(&g->mu);
}

long long hook_guard_throttled(struct hook_guard *g, long long now_ms)
{
    long long n = 0;

    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < NBUCKETS && g->accounts.n > 0; i++) {
        for (struct gent *e = g->accounts.b[i]; e != NULL; e = e->next) {
            n += e->fails >= g->lim.account_max && now_ms - e->t0 < g->window_ms;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return n;
}

void hook_guard_event_key(unsigned char out[HOOK_GUARD_KEY_LEN], const struct hook_guard *g,
                          const char *event, size_t elen, const char *account, size_t alen,
                          const char *pw, size_t plen)
{
    /* Length-prefixed fields, so that no two different triples hash alike. */
    uint64_t lens[3] = {elen, alen, plen};
    unsigned int olen = HOOK_GUARD_KEY_LEN;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(g->hmac_ctx);
    size_t got = 0;

    if (ctx == NULL || EVP_MAC_update(ctx, (const unsigned char *)lens, sizeof(lens)) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)event, elen) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)account, alen) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)pw, plen) != 1 ||
        EVP_MAC_final(ctx, out, &got, olen) != 1 || got != olen) {
        /* No key: a random one, so that nothing is ever answered from the cache. */
        RAND_bytes(out, HOOK_GUARD_KEY_LEN);
    }
    EVP_MAC_CTX_free(ctx);
}

int hook_guard_event_begin(struct hook_guard *g, const unsigned char key[HOOK_GUARD_KEY_LEN],
                           long long now_ms, long long deadline_ms, int *verified)
{
    const char *id = (const char *)key;
    size_t len = HOOK_GUARD_KEY_LEN;
    struct gent **pp, *e;
    struct timespec ts;
    int fresh = 0;

    ts.tv_sec = (time_t)(deadline_ms / 1000);
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    pthread_mutex_lock(&g->mu);
    pp = find(&g->events, g->seed, id, len);
    e = *pp;
    if (e != NULL && event_expired(e, now_ms)) {
        e->state = EV_PENDING; /* reuse the expired entry as a new event */
        e->verified = 0;
        fresh = 1;
    } else if (e == NULL) {
        /* A full table only loses de-duplication, not safety: verify anyway. */
        insert(g, &g->events, 0, pp, id, len, now_ms);
        fresh = 1;
    } else {
        while (e->state == EV_PENDING) {
            if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT) {
                break;
            }
            e = *find(&g->events, g->seed, id, len);
            if (e == NULL) {
                break;
            }
        }
        *verified = e != NULL && e->state == EV_DONE && e->verified;
    }
    pthread_mutex_unlock(&g->mu);
    return fresh;
}

void hook_guard_event_end(struct hook_guard *g, const unsigned char key[HOOK_GUARD_KEY_LEN],
                          int verified, long long now_ms)
{
    struct gent *e;

    pthread_mutex_lock(&g->mu);
    e = *find(&g->events, g->seed, (const char *)key, HOOK_GUARD_KEY_LEN);
    if (e != NULL) {
        e->state = EV_DONE;
        e->verified = verified;
        e->t0 = now_ms;
    }
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}
