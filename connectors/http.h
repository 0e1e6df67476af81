/*
 * http.h: the HTTP client shared by every HTTP target (Okta, Auth0, SCIM).
 *
 * One client = one libcurl multi handle owned by one thread: up to `concurrency`
 * transfers at once over kept-alive connections, TLS verified by default, the token sent
 * as "Authorization: <scheme><token>" and never logged (libcurl verbose stays off). Every
 * request goes through the rate governor (connectors/ratelimit.h), which reads
 * X-Rate-Limit-Limit/Remaining/Reset and paces requests to stay within `rate_share` of
 * each bucket (ratelimit_key() of the URL; GETs of one object, "users/ *", apart from the
 * writes to it, as Okta counts them); a 429 holds the bucket until Reset and is retried. 5xx,
 * timeouts and connection errors are retried with exponential backoff and full jitter, at most
 * max_retries times; other 4xx are final and handed to the caller.
 *
 * Call order: http_opts_init() → set fields → http_client_new() → http_submit() any number
 * of times → http_run() (drives all transfers until no foreground request is left;
 * callbacks fire from inside it) → http_client_free(). A caller that keeps a window of
 * background requests in flight drives them with http_step() instead. http_perform_one() is the
 * synchronous shortcut.
 */
#ifndef DM_HTTP_H
#define DM_HTTP_H

#include <stddef.h>
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "agent/util/secret.h"

struct http_client;

struct http_opts {
    const char *base_url;       /* "https://org.okta.com" (no trailing '/' needed); copied */
    const struct secret *token; /* borrowed: must outlive the client; NULL = no auth */
    const char *auth_scheme;    /* "SSWS " (default) or "Bearer "; read once */
    unsigned concurrency;       /* parallel transfers, default 4 */
    long connect_timeout_ms;    /* default 10000 */
    long request_timeout_ms;    /* whole transfer, default 60000 */
    unsigned max_retries;       /* retries after the first attempt, default 5 */
    long backoff_base_ms;       /* first backoff ceiling, default 500 */
    long backoff_max_ms;        /* backoff ceiling cap, default 30000 */
    const char *ca_file;        /* CA bundle (PEM) used instead of the system store; copied */
    int verify;                 /* verify peer and host name, default 1 */
    double rate_share;          /* share of each rate-limit bucket, (0,1], default 0.5 */
    size_t max_body;            /* response body cap in bytes, default 16 MiB */
};

/* Fills o with the defaults above (base_url and token NULL). */
void http_opts_init(struct http_opts *o);

/* What the caller gets for one request. Borrowed by the callback: valid until it returns. */
struct http_response {
    long status;         /* HTTP status, 0 if no response was received */
    struct buf body;     /* response body, capped at max_body */
    char *next_url;      /* target of the Link rel="next" header, NULL if none; opaque */
    char request_id[64]; /* X-Okta-Request-Id, "" if none (log it) */
    unsigned attempts;   /* 1 + retries */
};

/* Called once per submitted request from inside http_run(). rc is DM_OK when a final
 * HTTP response arrived (any status below 500 other than 429: check resp->status);
 * DM_EUNAVAIL when retries ran out on 5xx/429/timeouts/connection errors; DM_ELIMIT when
 * the body passed max_body; DM_EINTERNAL for TLS verification and other final transport
 * failures. err describes the failure (no secrets). */
typedef void (*http_done_fn)(const struct http_response *resp, int rc, const struct dm_err *err,
                             void *payload);

struct http_stats {
    unsigned long requests; /* attempts sent (retries included) */
    unsigned long retries;
    unsigned long rate_limited;     /* 429 responses received */
    unsigned long server_errors;    /* 5xx responses received */
    unsigned long transport_errors; /* timeouts, refused/dropped connections */
    unsigned long long bytes_in;    /* response body bytes */
    unsigned long long bytes_out;   /* request body bytes */
};

/* Returns a new client; caller frees with http_client_free(). DM_EINVAL on a missing or
 * non-http(s) base_url. */
int http_client_new(struct http_client **out, const struct http_opts *o,
                    struct dm_err *err) DM_MUST_USE;

/* Aborts any transfers still queued (their callbacks are not called), wipes the copy of
 * the Authorization header, frees. NULL-safe. */
void http_client_free(struct http_client *c);

/* Queues a request. method: "GET", "POST", "PUT", "PATCH", "DELETE". path: "/api/v1/users?
 * limit=200" relative to base_url, or an absolute URL on the same origin (a Link next
 * URL); other origins are refused (DM_EINVAL) so the token never leaves the target.
 * body/len are copied; POST/PUT/PATCH with len 0 send "Content-Length: 0" (Okta 411).
 * fn is called exactly once from http_run(); it may call http_submit() (next page, retry
 * of its own) but not http_run(). */
int http_submit(struct http_client *c, const char *method, const char *path, const char *body,
                size_t len, http_done_fn fn, void *payload, struct dm_err *err) DM_MUST_USE;

/* Like http_submit() with extra request headers: "Name: value" strings, NULL-terminated,
 * copied. One named like a default (Accept, Content-Type) replaces it, e.g. "Content-Type:
 * application/json; okta-response=omitCredentials" or "Prefer: respond-async". Never put
 * a secret here: use http_opts.token. */
int http_submit_hdr(struct http_client *c, const char *method, const char *path,
                    const char *const *headers, const char *body, size_t len, http_done_fn fn,
                    void *payload, struct dm_err *err) DM_MUST_USE;

/* Drives all queued and retried transfers until no foreground request is left (background
 * requests move on meanwhile and their callbacks may fire; they are not waited for). Returns
 * DM_OK, or an error from libcurl's multi interface itself (per-request failures go to the
 * callbacks). */
int http_run(struct http_client *c, struct dm_err *err) DM_MUST_USE;

/* Background requests (a sliding window of writes, connector.h apply_start): while on,
 * http_submit() queues background requests, which http_run() does not wait for and which
 * start after every foreground request waiting (a look-up someone is blocked on goes
 * first). Returns the previous setting, to be restored. */
int http_background(struct http_client *c, int on);

/* One turn of the transfers: starts what may start, moves every transfer on, calls the
 * callbacks of the finished ones; when none finished, waits for activity at most
 * timeout_ms (0: not at all) and moves them on once more. Returns at once when nothing is
 * queued or in flight. Errors as http_run(). */
int http_step(struct http_client *c, long timeout_ms, struct dm_err *err) DM_MUST_USE;

/* Requests queued or in flight (background ones included) whose callback has not fired. */
unsigned long http_pending(const struct http_client *c);

/* Synchronous request: submits, runs (other queued requests run too) and fills *out.
 * Returns the request's rc as described for http_done_fn; *out is filled whenever a
 * response arrived, even on error. Caller frees with http_response_clear(). */
int http_perform_one(struct http_response *out, struct http_client *c, const char *method,
                     const char *path, const char *body, size_t len,
                     struct dm_err *err) DM_MUST_USE;

/* Frees body and next_url of a response filled by http_perform_one(). NULL-safe. */
void http_response_clear(struct http_response *r);

/* Copies the client's counters. */
void http_get_stats(struct http_stats *out, const struct http_client *c);

/* Parses one Link header value (RFC 8288, may hold several comma-separated links) and, if
 * one has rel="next", sets *out to a new copy of its URL (caller frees with free()).
 * Returns DM_OK (with *out untouched when no next link), DM_ENOMEM. */
int http_link_next(char **out, const char *value) DM_MUST_USE;

#endif
