#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/util/err.h"
#include "connectors/ratelimit.h"

/*
 * Bucket states: UNKNOWN until the first response (only one request in flight, a probe,
 * so a fresh client cannot burst N requests into an exhausted bucket); NONE when the
 * server sends no X-Rate-Limit-* headers (SCIM targets: never held); KNOWN otherwise.
 */
enum rl_state { RL_UNKNOWN = 0, RL_NONE, RL_KNOWN };

struct rl_bucket {
    struct rl_bucket *next;
    char key[64];
    enum rl_state state;
    long limit;
    long remaining;
    long long reset_ms;      /* end of the server's window, our clock */
    long long blocked_until; /* after a 429 */
    long long last_start;
    unsigned inflight;
};

struct ratelimit {
    double share;
    struct rl_bucket *buckets;
};

struct ratelimit *ratelimit_new(double share)
{
    struct ratelimit *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        return NULL;
    }
    r->share = (share > 0.0 && share <= 1.0) ? share : 0.5;
    return r;
}

void ratelimit_free(struct ratelimit *r)
{
    struct rl_bucket *b;
    struct rl_bucket *next;

    if (r == NULL) {
        return;
    }
    for (b = r->buckets; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(r);
}

/* Appends segment [s, s+len) to out with a '/' separator; keeps out NUL-terminated. */
static void key_add(char *out, size_t n, const char *s, size_t len)
{
    size_t used = strlen(out);

    if (used > 0 && used + 1 < n) {
        out[used++] = '/';
        out[used] = '\0';
    }
    if (used + len >= n) {
        len = n - used - 1;
    }
    memcpy(out + used, s, len);
    out[used + len] = '\0';
}

void ratelimit_key(char *out, size_t n, const char *path)
{
    const char *p = path;
    const char *scheme = strstr(path, "://");
    size_t nseg = 0;

    if (n == 0) {
        return;
    }
    out[0] = '\0';
    if (scheme != NULL && scheme < path + strcspn(path, "/?")) {
        p = scheme + 3;
        p += strcspn(p, "/?");
    }
    while (*p != '\0' && *p != '?' && *p != '#' && nseg < 2) {
        size_t len;

        while (*p == '/') {
            p++;
        }
        len = strcspn(p, "/?#");
        if (len == 0) {
            break;
        }
        /* Okta's buckets are below /api/v1: skip the version prefix */
        if (nseg == 0 && out[0] == '\0' && len == 3 && strncmp(p, "api", 3) == 0) {
            const char *v = p + 4;

            if (p[3] == '/' && v[0] == 'v' && v[1] >= '0' && v[1] <= '9') {
                p = v + strcspn(v, "/?#");
                continue;
            }
        }
        key_add(out, n, nseg == 0 ? p : "*", nseg == 0 ? len : 1);
        nseg++;
        p += len;
    }
}

static struct rl_bucket *bucket_find(struct ratelimit *r, const char *key)
{
    struct rl_bucket *b;

    for (b = r->buckets; b != NULL; b = b->next) {
        if (strcmp(b->key, key) == 0) {
            return b;
        }
    }
    return NULL;
}

/* This client's budget in the current window: limit*share minus what the server has
 * counted as used (limit - remaining; other tokens' use of a shared bucket included)
 * minus our requests still in flight, which the server may not have counted yet. */
static long bucket_budget(const struct ratelimit *r, const struct rl_bucket *b)
{
    long allowed = (long)((double)b->limit * r->share);

    return allowed - (b->limit - b->remaining) - (long)b->inflight;
}

long long ratelimit_delay(struct ratelimit *r, const char *key, long long now_ms)
{
    struct rl_bucket *b = bucket_find(r, key);
    long long open_at;
    long long interval;
    long budget;

    if (b == NULL) {
        return 0;
    }
    if (b->blocked_until > now_ms) {
        return b->blocked_until - now_ms;
    }
    switch (b->state) {
    case RL_NONE:
        return 0;
    case RL_UNKNOWN:
        /* probe: one request until the headers tell us the limit */
        return b->inflight == 0 ? 0 : 50;
    case RL_KNOWN:
        break;
    }
    open_at = b->reset_ms + RATELIMIT_MARGIN_MS;
    if (now_ms >= open_at) {
        /* the window rolled over and the numbers are stale: probe with one request
         * until a response brings the new window */
        return b->inflight == 0 ? 0 : 50;
    }
    budget = bucket_budget(r, b);
    if (budget <= 0) {
        return open_at - now_ms;
    }
    /* spread what is left evenly over the rest of the window */
    interval = (open_at - now_ms) / budget;
    if (b->last_start + interval > now_ms) {
        return b->last_start + interval - now_ms;
    }
    return 0;
}

int ratelimit_started(struct ratelimit *r, const char *key, long long now_ms)
{
    struct rl_bucket *b = bucket_find(r, key);

    if (b == NULL) {
        b = calloc(1, sizeof(*b));
        if (b == NULL) {
            return DM_ENOMEM;
        }
        snprintf(b->key, sizeof(b->key), "%s", key);
        b->next = r->buckets;
        r->buckets = b;
    }
    b->inflight++;
    b->last_start = now_ms;
    return DM_OK;
}

void ratelimit_done(struct ratelimit *r, const char *key, const struct ratelimit_obs *obs,
                    long long now_ms)
{
    struct rl_bucket *b = bucket_find(r, key);

    if (b == NULL) {
        return;
    }
    if (b->inflight > 0) {
        b->inflight--;
    }
    if (obs == NULL) {
        return;
    }
    if (obs->limit >= 0 && obs->reset_ms > 0) {
        /* responses can arrive out of order: within one window keep the lowest
         * Remaining; a later Reset means a new window */
        if (b->state != RL_KNOWN || obs->reset_ms > b->reset_ms + 999) {
            b->remaining = obs->remaining;
        } else if (obs->remaining < b->remaining) {
            b->remaining = obs->remaining;
        }
        if (b->state != RL_KNOWN || obs->reset_ms > b->reset_ms) {
            b->reset_ms = obs->reset_ms;
        }
        b->limit = obs->limit;
        b->state = RL_KNOWN;
    } else if (b->state == RL_UNKNOWN && !obs->too_many) {
        b->state = RL_NONE;
    }
    if (obs->too_many) {
        /* Okta: back off until X-Rate-Limit-Reset. On a concurrency 429 Reset is only an
         * estimate and may be missing; hold at least one second. */
        long long until = obs->reset_ms > 0 ? obs->reset_ms + RATELIMIT_MARGIN_MS : 0;

        if (until < now_ms + 1000) {
            until = now_ms + 1000;
        }
        if (until > b->blocked_until) {
            b->blocked_until = until;
        }
    }
}
