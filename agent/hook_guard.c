#include <config.h>
#include "agent/hook_guard.h"

#include <errno.h>
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
    long long t0; /* user: start of the failure window; event: time answered */
    int fails;    /* user: failures in the window */
    int inflight; /* user: attempts reserved and not ended */
    int state;    /* event: EV_PENDING / EV_DONE */
    int verified; /* event: the answer */
    size_t len;
    char key[];
};

struct gtable {
    struct gent *b[NBUCKETS];
    size_t n;
};

struct hook_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* an event was answered */
    uint64_t seed;
    int max_failures;
    long long window_ms;
    struct gtable users, events;
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

static int fold(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The user key is the folded login; fold into buf (callers cap len). */
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

static int user_expired(const struct hook_guard *g, const struct gent *e, long long now)
{
    return e->inflight == 0 && (e->fails == 0 || now - e->t0 >= g->window_ms);
}

static int event_expired(const struct gent *e, long long now)
{
    return e->state == EV_DONE && now - e->t0 >= HOOK_GUARD_EVENT_TTL_MS;
}

static void sweep(struct hook_guard *g, struct gtable *t, int users, long long now)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct gent **pp = &t->b[i];
        while (*pp != NULL) {
            struct gent *e = *pp;
            if (users ? user_expired(g, e, now) : event_expired(e, now)) {
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
static struct gent *insert(struct hook_guard *g, struct gtable *t, int users, struct gent **pp,
                           const char *k, size_t len, long long now)
{
    struct gent *e;

    if (t->n >= HOOK_GUARD_MAX_ENTRIES) {
        sweep(g, t, users, now);
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

int hook_guard_new(struct hook_guard **out, int max_failures, int window_s, struct dm_err *err)
{
    struct hook_guard *g = calloc(1, sizeof(*g));
    pthread_condattr_t ca;

    if (g == NULL) {
        return dm_err_set(err, DM_ENOMEM, "hook_guard_new");
    }
    if (getrandom(&g->seed, sizeof(g->seed), 0) != (ssize_t)sizeof(g->seed)) {
        g->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)g;
    }
    g->max_failures = max_failures;
    g->window_ms = (long long)window_s * 1000;
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
    table_clear(&g->users);
    table_clear(&g->events);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}

#define MAX_KEY 1024

static size_t fold_key(char *buf, const char *login, size_t len)
{
    if (len > MAX_KEY) {
        len = MAX_KEY;
    }
    for (size_t i = 0; i < len; i++) {
        buf[i] = (char)fold((unsigned char)login[i]);
    }
    return len;
}

int hook_guard_begin(struct hook_guard *g, const char *login, size_t len, long long now_ms)
{
    char key[MAX_KEY];
    struct gent **pp, *e;
    int ok = 0;

    len = fold_key(key, login, len);
    pthread_mutex_lock(&g->mu);
    pp = find(&g->users, g->seed, key, len);
    e = *pp;
    if (e == NULL) {
        e = insert(g, &g->users, 1, pp, key, len, now_ms);
        if (e == NULL) {
            goto done; /* full of live entries: fail closed */
        }
    }
    if (e->fails > 0 && now_ms - e->t0 >= g->window_ms) {
        e->fails = 0; /* the window is over */
    }
    if (e->fails + e->inflight < g->max_failures) {
        e->inflight++;
        ok = 1;
    }
done:
    pthread_mutex_unlock(&g->mu);
    return ok;
}

void hook_guard_end(struct hook_guard *g, const char *login, size_t len, enum hook_guard_outcome o,
                    long long now_ms)
{
    char key[MAX_KEY];
    struct gent *e;

    len = fold_key(key, login, len);
    pthread_mutex_lock(&g->mu);
    e = *find(&g->users, g->seed, key, len);
    if (e != NULL) {
        if (e->inflight > 0) {
            e->inflight--;
        }
        if (o == HOOK_GUARD_FAILURE) {
            if (e->fails == 0 || now_ms - e->t0 >= g->window_ms) {
                e->fails = 0;
                e->t0 = now_ms;
            }
            e->fails++;
        } else if (o == HOOK_GUARD_SUCCESS) {
            e->fails = 0;
        }
    }
    pthread_mutex_unlock(&g->mu);
}

long long hook_guard_throttled(struct hook_guard *g, long long now_ms)
{
    long long n = 0;

    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < NBUCKETS && g->users.n > 0; i++) {
        for (struct gent *e = g->users.b[i]; e != NULL; e = e->next) {
            n += e->fails >= g->max_failures && now_ms - e->t0 < g->window_ms;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return n;
}

int hook_guard_event_begin(struct hook_guard *g, const char *id, size_t len, long long now_ms,
                           long long deadline_ms, int *verified)
{
    struct gent **pp, *e;
    struct timespec ts;
    int fresh = 0;

    if (len > MAX_KEY) {
        len = MAX_KEY;
    }
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

void hook_guard_event_end(struct hook_guard *g, const char *id, size_t len, int verified,
                          long long now_ms)
{
    struct gent *e;

    if (len > MAX_KEY) {
        len = MAX_KEY;
    }
    pthread_mutex_lock(&g->mu);
    e = *find(&g->events, g->seed, id, len);
    if (e != NULL) {
        e->state = EV_DONE;
        e->verified = verified;
        e->t0 = now_ms;
    }
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}
