/*
 * hook_guard.h: abuse protection of the password-import hook (agent/hook.h).
 *
 * Bounded in-memory tables under one lock:
 *   - failure budgets: at most N failed verifications in a window of window_s seconds
 *     (counted from the first failure) per ACCOUNT (the identity the directory resolved the
 *     login to, agent/hook_core.c: every spelling of one login shares it), per CLIENT
 *     address, and in TOTAL. Past a budget the hook answers UNVERIFIED without a bind, so a
 *     brute force, a password spray or a typo storm cannot lock the account in the old
 *     directory. Attempts in flight count against the account's budget, so parallel
 *     requests cannot overrun it; the client and total budgets count failures only (one
 *     client may have many sign-ins in flight; a burst overruns them by at most the
 *     concurrency cap). A success clears the account's failures (not the client's).
 *   - Okta eventIds already answered (or being answered), keyed by an HMAC-SHA256 (a
 *     random per-process key held only in memory) of eventId, account and password: a
 *     retried event gets the first answer, and never a second bind; the same eventId with
 *     another password or for another account is a new question.
 * Every table holds at most HOOK_GUARD_MAX_ENTRIES live entries; expired ones are swept when
 * a table is full, and a full table of live entries refuses new keys (fail closed). Time is
 * passed in (monotonic milliseconds) so tests can move it.
 */
#ifndef DM_HOOK_GUARD_H
#define DM_HOOK_GUARD_H

#include <stddef.h>
#include "agent/util/err.h"

#define HOOK_GUARD_MAX_ENTRIES 500000
#define HOOK_GUARD_EVENT_TTL_MS (15 * 60 * 1000)
#define HOOK_GUARD_KEY_LEN 32 /* an event key: HMAC-SHA256 */

struct hook_guard;

struct hook_guard_limits {
    int account_max; /* failures per account and window (>= 1) */
    int client_max;  /* failures per client address and window (>= 1) */
    int global_max;  /* failures of all accounts and clients per window (>= 1) */
    int window_s;    /* the window, seconds */
};

/* Returns a new guard; free with hook_guard_free(). l is copied. */
int hook_guard_new(struct hook_guard **out, const struct hook_guard_limits *l,
                   struct dm_err *err) DM_MUST_USE;
void hook_guard_free(struct hook_guard *g); /* NULL-safe */

/* Lowers the per-account budget (never raises it): when the source's lockout threshold
 * becomes known after the start. */
void hook_guard_cap_account(struct hook_guard *g, int account_max);

/* Which budget refused an attempt. */
enum hook_guard_verdict {
    HOOK_GUARD_ALLOW = 0,
    HOOK_GUARD_DENY_ACCOUNT,
    HOOK_GUARD_DENY_CLIENT,
    HOOK_GUARD_DENY_GLOBAL,
    HOOK_GUARD_DENY_FULL /* a table is full of live entries */
};

/* Stable name of a verdict ("account", "client", "global", "full"; "" for ALLOW). */
const char *hook_guard_verdict_name(enum hook_guard_verdict v);

/* Before any directory traffic: is the client (and the total) still within budget? Reserves
 * nothing. */
enum hook_guard_verdict hook_guard_check_client(struct hook_guard *g, const char *client,
                                                size_t clen, long long now_ms);

/* Reserves one attempt for account and client (and the total). ALLOW: the attempt may go to
 * the source; end it with hook_guard_end(). Anything else: nothing is reserved. */
enum hook_guard_verdict hook_guard_begin(struct hook_guard *g, const char *account, size_t alen,
                                         const char *client, size_t clen, long long now_ms);

enum hook_guard_outcome { HOOK_GUARD_SUCCESS, HOOK_GUARD_FAILURE, HOOK_GUARD_NEUTRAL };
/* Ends an attempt begun with hook_guard_begin: a failure is counted against the account,
 * the client and the total; a success clears the account's failures; neutral (a source
 * error or a timeout: not the user's fault) only releases the reservation. */
void hook_guard_end(struct hook_guard *g, const char *account, size_t alen, const char *client,
                    size_t clen, enum hook_guard_outcome o, long long now_ms);

/* Counts a failure that is not an account's (a login that resolves to no account) against
 * the client only. */
void hook_guard_client_failure(struct hook_guard *g, const char *client, size_t clen,
                               long long now_ms);

/* Accounts currently over budget. */
long long hook_guard_throttled(struct hook_guard *g, long long now_ms);

/* The event key of (eventId, account, password): HMAC-SHA256 under the per-process key. */
void hook_guard_event_key(unsigned char out[HOOK_GUARD_KEY_LEN], const struct hook_guard *g,
                          const char *event, size_t elen, const char *account, size_t alen,
                          const char *pw, size_t plen);

/*
 * eventId de-duplication. Returns 1 when the key is new: the caller verifies and must call
 * hook_guard_event_end. Returns 0 when it was seen: *verified gets the first answer
 * (waiting for it until deadline_ms when it is still being computed; 0 if it does not
 * come in time).
 */
int hook_guard_event_begin(struct hook_guard *g, const unsigned char key[HOOK_GUARD_KEY_LEN],
                           long long now_ms, long long deadline_ms, int *verified);
void hook_guard_event_end(struct hook_guard *g, const unsigned char key[HOOK_GUARD_KEY_LEN],
                          int verified, long long now_ms);

#endif
