/*
 * hook_core.h: what the password-import hook answers, without the HTTP server around it
 * (agent/hook.c serves it with libmicrohttpd; tests/fuzz/ drives it directly).
 *
 * A request is handled in two halves, so that the HTTP threads never wait for the
 * directory: hook_core_begin() takes an already authenticated request body and either
 * answers at once or admits it; hook_core_run() verifies an admitted request (it may wait
 * for the source, never past the deadline). hook_core_handle() is both halves in one call.
 *
 * begin: parses the body (Okta password import, only eventType
 * com.okta.user.credential.password.import, or the generic {"username","password"
 * [,"client_ip"]} form), refuses bad input without asking the source (empty or over-long
 * values, NUL bytes, invalid UTF-8, a typed placeholder such as "*"), and admits at most
 * max_concurrency requests at once (the rest: UNVERIFIED at once, "overload").
 *
 * run: a source that timed out several times in a row is not asked for a second (a fast
 * UNVERIFIED, "source_error"; one probe at a time goes through); the client's and the total
 * failure budgets are checked before any directory traffic; the login is resolved to ONE
 * account (connectors/ldap_verify.h: the directory's own matching, so every spelling, case,
 * padding, uid or mail, lands on the same account) and an account that cannot verify
 * (disabled, expired, locked, a lock-marker password, out of scope, too close to the
 * source's own lockout threshold) is answered without a bind; a retried Okta eventId with
 * the same account and password gets the first answer without a bind; the account's budget
 * is reserved; then the bind. Outcomes are recorded (callback), counted for /metrics and
 * logged without the password. A wrong or unverifiable password is always 200 with
 * UNVERIFIED (or {"verified":false}), never an error status; 400 is for a body that is not
 * the expected JSON or an unsupported eventType, 413 for one over max_body. Thread-safe.
 *
 * Call order: hook_core_new -> hook_core_set_policy (when the source's lockout policy is
 * known) -> hook_core_begin / hook_core_run / hook_core_handle / hook_core_metrics from any
 * thread -> hook_core_free.
 */
#ifndef DM_HOOK_CORE_H
#define DM_HOOK_CORE_H

#include <stddef.h>
#include "agent/config.h"
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "connectors/ldap_verify.h"

#define HOOK_MAX_LOGIN 256     /* bytes; longer usernames never verify */
#define HOOK_MAX_PASSWORD 1024 /* bytes */
#define HOOK_DEADLINE_MARGIN_MS                                                                    \
    50                     /* kept back from the deadline to write the answer: a                   \
                            * tenth of the deadline, at least this much (when the                  \
                            * source hangs, every waiting thread wakes at once and the             \
                            * answers still have to be written on a busy machine) */
#define HOOK_CLIENT_LEN 48 /* a client key: IPv4 address, or IPv6 /64 prefix */
#define HOOK_EVENT_TYPE "com.okta.user.credential.password.import"

enum hook_endpoint { HOOK_EP_OKTA = 0, HOOK_EP_GENERIC };

/* The source directory (connectors/ldap_verify.h: same contracts; tests pass fakes). */
struct hook_verifier {
    enum ldap_verify_result (*resolve)(struct ldap_verify_account *out, void *ctx,
                                       const char *login, size_t login_len, long long deadline_ms,
                                       struct dm_err *err);
    enum ldap_verify_result (*bind)(void *ctx, const struct ldap_verify_account *a, const char *pw,
                                    size_t pw_len, long long deadline_ms, struct dm_err *err);
    void *ctx;
};

/* Records an outcome that reached the source; dn is the user's DN ("" when unknown).
 * Never receives the password. */
typedef void (*hook_record_fn)(void *ctx, const char *login, const char *dn, const char *outcome,
                               const char *reason);

/* Called after a VERIFIED answer was decided (lazy migration into an LDAP target). The
 * password is borrowed for the call only (copy it to keep it; wipe the copy). Must not
 * block. */
typedef void (*hook_verified_fn)(void *ctx, const struct ldap_verify_account *a, const char *login,
                                 const char *pw, size_t pw_len);

/* Outcomes counted in dirmig_hook_requests_total{outcome=...}. Append only. */
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
    HOOK_OUT_INELIGIBLE,     /* the account exists but cannot verify (never bound) */
    HOOK_OUT_BAD_EVENT_TYPE, /* an Okta event other than the password import: 400 */
    HOOK_OUT__LAST
};

/* Why a request was throttled (dirmig_hook_throttled_total{budget=...}). */
enum hook_throttle {
    HOOK_THR_ACCOUNT = 0, /* the account's failure budget */
    HOOK_THR_CLIENT,      /* the client address's */
    HOOK_THR_GLOBAL,      /* all failures together */
    HOOK_THR_SOURCE,      /* the source's own failure count is one short of its lockout */
    HOOK_THR_FULL,        /* a budget table is full (fail closed) */
    HOOK_THR__LAST
};

struct hook_core;
struct hook_req; /* an admitted request: holds the password until run or dropped */

struct hook_reply {
    int status;     /* HTTP status */
    char body[160]; /* JSON, NUL-terminated */
    size_t len;
    enum hook_outcome outcome;
};

/* Returns a new core; cfg, the verifier's ctx and record_ctx are borrowed (cfg: deadline_ms,
 * max_failures*, failure_window_s, max_concurrency, max_body, old_password_window_s).
 * record may be NULL. */
int hook_core_new(struct hook_core **out, const struct config_hook *cfg,
                  const struct hook_verifier *verifier, hook_record_fn record, void *record_ctx,
                  struct dm_err *err) DM_MUST_USE;
void hook_core_free(struct hook_core *c); /* NULL-safe */

/* Sets the callback for verified sign-ins (may be NULL). Call before serving. */
void hook_core_on_verified(struct hook_core *c, hook_verified_fn fn, void *ctx);

/* The source's lockout threshold (0 = none): no bind is tried for an account whose source
 * failure count is one short of it, and the per-account budget is capped below it. */
void hook_core_set_policy(struct hook_core *c, int threshold);

/* Canonical client key of an address in text form (IPv4 as is, IPv6 its /64 prefix, an
 * IPv4-mapped IPv6 address as IPv4) into out; -1 when text is not an address. */
int hook_core_client_key(char out[HOOK_CLIENT_LEN], const char *text);

/*
 * The first half: answers one authenticated request whose headers arrived at start_ms
 * (monotonic ms, ldap_verify_now_ms()) at once (returns 0, *out filled), or admits it
 * (returns 1, *req set: pass it to hook_core_run or hook_core_drop). client is the peer's
 * client key (hook_core_client_key); the Okta body's data.context.request.ipAddress (the
 * end user's address) or the generic body's "client_ip" take its place when they are
 * addresses. The body may hold anything; it is not kept (the request keeps copies of the
 * username and password, wiped when it is freed).
 */
int hook_core_begin(struct hook_reply *out, struct hook_req **req, struct hook_core *c,
                    enum hook_endpoint ep, const char *body, size_t len, const char *client,
                    long long start_ms);

/* The second half: verifies req (may wait for the source, never past the deadline), fills
 * *out, frees req. */
void hook_core_run(struct hook_reply *out, struct hook_core *c, struct hook_req *req);

/* Frees an admitted request that will not run (its connection went away). NULL-safe. */
void hook_core_drop(struct hook_core *c, struct hook_req *req);

/* Both halves in one call (blocking). */
void hook_core_handle(struct hook_reply *out, struct hook_core *c, enum hook_endpoint ep,
                      const char *body, size_t len, const char *client, long long start_ms);

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
