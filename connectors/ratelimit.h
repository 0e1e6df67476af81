/*
 * ratelimit.h: the rate governor behind connectors/http.c (Okta-style X-Rate-Limit-*).
 *
 * Pure bookkeeping, no I/O and no clock of its own: every call takes `now_ms` from one
 * monotonic clock, so tests can drive it with a fake clock. Requests are grouped into
 * buckets by ratelimit_key() (Okta limits are per endpoint family). For each bucket the
 * governor remembers the latest X-Rate-Limit-Limit / -Remaining / -Reset and answers
 * "how long must the next request wait" so that this client uses at most `share` of the
 * limit (Okta gives one token 50% by default) and spreads its budget evenly over what is
 * left of the window instead of bursting into a 429. A 429 blocks the bucket until Reset.
 *
 * Call order per request: ratelimit_delay() == 0 → ratelimit_started() → (transfer) →
 * ratelimit_done() with whatever headers came back (or none on a transport error).
 * Not thread-safe: one http_client (one thread) owns one governor.
 */
#ifndef DM_RATELIMIT_H
#define DM_RATELIMIT_H

#include <stddef.h>
#include "agent/util/attrs.h"

struct ratelimit;

/* Margin added after a bucket's Reset before new requests start: Reset has one-second
 * granularity and the server's clock is not ours. */
#define RATELIMIT_MARGIN_MS 300

/* What one response said. limit < 0 when the headers were absent. reset_ms is the
 * Reset converted to the caller's monotonic clock (0 if absent). */
struct ratelimit_obs {
    long limit;
    long remaining;
    long long reset_ms;
    int too_many; /* the response was a 429 */
};

/* share: fraction of each bucket's limit this client may use, (0, 1]; out of range → 0.5.
 * Returns NULL on allocation failure; caller frees with ratelimit_free(). */
struct ratelimit *ratelimit_new(double share);
void ratelimit_free(struct ratelimit *r); /* NULL-safe */

/* Writes the bucket key of a request path or absolute URL into out (truncated to n):
 * the query and any scheme://host are dropped, a leading "api/vN" is skipped, then the
 * first segment is kept and a second one, if any, becomes "*":
 * "/api/v1/users?limit=2" → "users", "/api/v1/users/00u1/lifecycle/activate" → "users/ *"
 * (without the space). */
void ratelimit_key(char *out, size_t n, const char *path);

/* Milliseconds the next request to `key` must wait (0 = may start now). */
long long ratelimit_delay(struct ratelimit *r, const char *key, long long now_ms);

/* A request to `key` was started at now_ms. Returns DM_ENOMEM if a new bucket could not
 * be allocated (the request may still go; it is just not governed). */
int ratelimit_started(struct ratelimit *r, const char *key, long long now_ms) DM_MUST_USE;

/* The request to `key` finished; obs is NULL for a transport error (no response). */
void ratelimit_done(struct ratelimit *r, const char *key, const struct ratelimit_obs *obs,
                    long long now_ms);

#endif
