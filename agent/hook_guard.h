/*
 * hook_guard.h: abuse protection of the password-import hook (agent/hook.h).
 *
 * Two bounded in-memory tables under one lock:
 *   - a failure budget per username: at most max_failures failed verifications in a window
 *     of window_s seconds (counted from the first failure); past it the hook answers
 *     UNVERIFIED without asking the source, so a brute force or a typo storm cannot lock
 *     the account in the old directory. Attempts in flight count against the budget, so
 *     parallel requests cannot overrun it. A success clears the user's failures.
 *     Usernames are compared with ASCII case folded (directories match uid that way).
 *   - Okta eventIds already answered (or being answered): a retried event gets the first
 *     answer, and never a second bind.
 * Both tables hold at most HOOK_GUARD_MAX_ENTRIES live entries; expired ones are swept when
 * a table is full, and a full table of live entries refuses new usernames (fail closed).
 * Time is passed in (monotonic milliseconds) so tests can move it.
 */
#ifndef DM_HOOK_GUARD_H
#define DM_HOOK_GUARD_H

#include <stddef.h>
#include "agent/util/err.h"

#define HOOK_GUARD_MAX_ENTRIES 500000
#define HOOK_GUARD_EVENT_TTL_MS (15 * 60 * 1000)

struct hook_guard;

/* Returns a new guard; free with hook_guard_free(). */
int hook_guard_new(struct hook_guard **out, int max_failures, int window_s,
                   struct dm_err *err) DM_MUST_USE;
void hook_guard_free(struct hook_guard *g); /* NULL-safe */

/* Reserves one attempt for login. Returns 1 when the attempt may go to the source (end it
 * with hook_guard_end), 0 when the user is over budget (or the table is full). */
int hook_guard_begin(struct hook_guard *g, const char *login, size_t len, long long now_ms);

enum hook_guard_outcome { HOOK_GUARD_SUCCESS, HOOK_GUARD_FAILURE, HOOK_GUARD_NEUTRAL };
/* Ends an attempt begun with hook_guard_begin: a failure is counted, a success clears the
 * failures, neutral (source error: not the user's fault) only releases the reservation. */
void hook_guard_end(struct hook_guard *g, const char *login, size_t len, enum hook_guard_outcome o,
                    long long now_ms);

/* Usernames currently over budget. */
long long hook_guard_throttled(struct hook_guard *g, long long now_ms);

/*
 * eventId de-duplication. Returns 1 when the event is new: the caller verifies and must
 * call hook_guard_event_end. Returns 0 when the event was seen: *verified gets the first
 * answer (waiting for it until deadline_ms when it is still being computed; 0 if it does
 * not come in time).
 */
int hook_guard_event_begin(struct hook_guard *g, const char *id, size_t len, long long now_ms,
                           long long deadline_ms, int *verified);
void hook_guard_event_end(struct hook_guard *g, const char *id, size_t len, int verified,
                          long long now_ms);

#endif
