/*
 * hook_core.h: what the password-import hook answers, without the HTTP server around it
 * (agent/hook.c serves it with libmicrohttpd; tests/fuzz/ drives it directly).
 *
 * hook_core_handle() takes an already authenticated request body and returns the HTTP
 * status and JSON answer: it parses the body (Okta password import or the generic
 * {"username","password"} form), refuses bad input without asking the source (empty or
 * over-long values, NUL bytes, invalid UTF-8), applies the concurrency cap, the eventId
 * de-duplication and the per-username failure budget (agent/hook_guard.h), calls the
 * verifier with the time left before the deadline, records the outcome (callback), and
 * counts everything for /metrics. A wrong or unverifiable password is always 200 with
 * UNVERIFIED (or {"verified":false}), never an error status; 400 is for a body that is not
 * the expected JSON, 413 for one over max_body. Thread-safe.
 *
 * Call order: hook_core_new -> hook_core_handle / hook_core_count / hook_core_metrics from
 * any thread -> hook_core_free.
 */
#ifndef DM_HOOK_CORE_H
#define DM_HOOK_CORE_H

#include <stddef.h>
#include "agent/config.h"
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "connectors/ldap_verify.h"

#define HOOK_MAX_LOGIN 256         /* bytes; longer usernames never verify */
#define HOOK_MAX_PASSWORD 1024     /* bytes */
#define HOOK_DEADLINE_MARGIN_MS 50 /* kept back from the deadline to write the answer */

enum hook_endpoint { HOOK_EP_OKTA = 0, HOOK_EP_GENERIC };

/* Checks a password; same contract as ldap_verify_password (tests pass a fake). */
typedef enum ldap_verify_result (*hook_verify_fn)(char *dn_out, size_t dn_len, void *ctx,
                                                  const char *login, size_t login_len,
                                                  const char *pw, size_t pw_len,
                                                  long long deadline_ms, struct dm_err *err);

/* Records an outcome that reached the source; dn is the user's DN ("" when unknown).
 * Never receives the password. */
typedef void (*hook_record_fn)(void *ctx, const char *login, const char *dn, const char *outcome,
                               const char *reason);

/* Outcomes counted in dirmig_hook_requests_total{outcome=...}. */
enum hook_outcome {
    HOOK_OUT_VERIFIED = 0,
    HOOK_OUT_WRONG_PASSWORD,
    HOOK_OUT_UNKNOWN_USER,
    HOOK_OUT_AMBIGUOUS_USER,
    HOOK_OUT_INVALID_INPUT,
    HOOK_OUT_SOURCE_ERROR,
    HOOK_OUT_THROTTLED,
    HOOK_OUT_OVERLOAD,
    HOOK_OUT_DUPLICATE,
    HOOK_OUT_BAD_REQUEST,
    HOOK_OUT_TOO_LARGE,
    HOOK_OUT_UNAUTHORIZED,
    HOOK_OUT_NOT_FOUND,
    HOOK_OUT__LAST
};

struct hook_core;

struct hook_reply {
    int status;     /* HTTP status */
    char body[160]; /* JSON, NUL-terminated */
    size_t len;
    enum hook_outcome outcome;
};

/* Returns a new core; cfg, verify_ctx and record_ctx are borrowed. record may be NULL. */
int hook_core_new(struct hook_core **out, const struct config_hook *cfg, hook_verify_fn verify,
                  void *verify_ctx, hook_record_fn record, void *record_ctx,
                  struct dm_err *err) DM_MUST_USE;
void hook_core_free(struct hook_core *c); /* NULL-safe */

/* Answers one authenticated request whose headers arrived at start_ms (monotonic ms,
 * ldap_verify_now_ms()). The body may hold anything; it is not kept. */
void hook_core_handle(struct hook_reply *out, struct hook_core *c, enum hook_endpoint ep,
                      const char *body, size_t len, long long start_ms);

/* Fills out with the fixed answer of a request refused by the HTTP layer (401, 404, 413)
 * and counts it. */
void hook_core_refuse(struct hook_reply *out, struct hook_core *c, enum hook_outcome o,
                      long long start_ms);

/* Notes the result of a health check (/healthz): 1 up, 0 down. */
void hook_core_set_source_up(struct hook_core *c, int up);

/* Appends the Prometheus text exposition of the counters to out. */
int hook_core_metrics(struct hook_core *c, struct buf *out) DM_MUST_USE;

/* Stable name of an outcome ("verified", "throttled", ...). */
const char *hook_outcome_name(enum hook_outcome o);

#endif
