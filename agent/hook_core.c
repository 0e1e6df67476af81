#include <config.h>
#include "agent/hook_core.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/hook_guard.h"
#include "agent/util/log.h"

/* Upper bounds of the latency histogram, seconds (Prometheus "le" labels). */
static const double lat_bounds[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                    0.1,   0.25,  0.5,   1.0,  2.0,  3.0};
#define NBOUNDS (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

static const char *const outcome_names[HOOK_OUT__LAST] = {
    [HOOK_OUT_VERIFIED] = "verified",           [HOOK_OUT_WRONG_PASSWORD] = "wrong_password",
    [HOOK_OUT_UNKNOWN_USER] = "unknown_user",   [HOOK_OUT_AMBIGUOUS_USER] = "ambiguous_user",
    [HOOK_OUT_INVALID_INPUT] = "invalid_input", [HOOK_OUT_SOURCE_ERROR] = "source_error",
    [HOOK_OUT_THROTTLED] = "throttled",         [HOOK_OUT_OVERLOAD] = "overload",
    [HOOK_OUT_DUPLICATE] = "duplicate",         [HOOK_OUT_BAD_REQUEST] = "bad_request",
    [HOOK_OUT_TOO_LARGE] = "too_large",         [HOOK_OUT_UNAUTHORIZED] = "unauthorized",
    [HOOK_OUT_NOT_FOUND] = "not_found",
};

struct hook_core {
    const struct config_hook *cfg;
    hook_verify_fn verify;
    void *verify_ctx;
    hook_record_fn record;
    void *record_ctx;
    struct hook_guard *guard;
    /* Counters, updated with relaxed atomics. */
    long long inflight;
    long long requests[HOOK_OUT__LAST];
    long long refusals[LDAP_VERIFY_R__LAST]; /* bind refusals by the directory's reason */
    long long lat_buckets[NBOUNDS + 1];      /* last = +Inf */
    long long lat_sum_us, lat_count;
    long long source_up; /* last health check, -1 = none yet */
};

#define ADD(p, n) __atomic_add_fetch(&(p), (n), __ATOMIC_RELAXED)
#define GET(p) __atomic_load_n(&(p), __ATOMIC_RELAXED)

const char *hook_outcome_name(enum hook_outcome o)
{
    return o < HOOK_OUT__LAST ? outcome_names[o] : "?";
}

int hook_core_new(struct hook_core **out, const struct config_hook *cfg, hook_verify_fn verify,
                  void *verify_ctx, hook_record_fn record, void *record_ctx, struct dm_err *err)
{
    struct hook_core *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL) {
        return dm_err_set(err, DM_ENOMEM, "hook_core_new");
    }
    c->cfg = cfg;
    c->verify = verify;
    c->verify_ctx = verify_ctx;
    c->record = record;
    c->record_ctx = record_ctx;
    c->source_up = -1;
    rc = hook_guard_new(&c->guard, cfg->max_failures, cfg->failure_window_s, err);
    if (rc != DM_OK) {
        free(c);
        return rc;
    }
    *out = c;
    return DM_OK;
}

void hook_core_free(struct hook_core *c)
{
    if (c == NULL) {
        return;
    }
    hook_guard_free(c->guard);
    free(c);
}

void hook_core_set_source_up(struct hook_core *c, int up)
{
    __atomic_store_n(&c->source_up, (long long)up, __ATOMIC_RELAXED);
}

static void observe(struct hook_core *c, enum hook_outcome o, long long start_ms)
{
    long long us = (ldap_verify_now_ms() - start_ms) * 1000;
    size_t i;

    if (us < 0) {
        us = 0;
    }
    ADD(c->requests[o], 1);
    for (i = 0; i < NBOUNDS && (double)us / 1e6 > lat_bounds[i]; i++) {
    }
    ADD(c->lat_buckets[i], 1);
    ADD(c->lat_sum_us, us);
    ADD(c->lat_count, 1);
}

static void set_body(struct hook_reply *r, int status, const char *body)
{
    r->status = status;
    snprintf(r->body, sizeof(r->body), "%s", body);
    r->len = strlen(r->body);
}

static void answer(struct hook_reply *r, enum hook_endpoint ep, int verified)
{
    if (ep == HOOK_EP_GENERIC) {
        set_body(r, 200, verified ? "{\"verified\":true}" : "{\"verified\":false}");
    } else {
        set_body(r, 200,
                 verified ? "{\"commands\":[{\"type\":\"com.okta.action.update\","
                            "\"value\":{\"credential\":\"VERIFIED\"}}]}"
                          : "{\"commands\":[{\"type\":\"com.okta.action.update\","
                            "\"value\":{\"credential\":\"UNVERIFIED\"}}]}");
    }
}

void hook_core_refuse(struct hook_reply *out, struct hook_core *c, enum hook_outcome o,
                      long long start_ms)
{
    switch (o) {
    case HOOK_OUT_UNAUTHORIZED:
        set_body(out, 401, "{\"error\":\"unauthorized\"}");
        break;
    case HOOK_OUT_TOO_LARGE:
        set_body(out, 413, "{\"error\":\"request body too large\"}");
        break;
    case HOOK_OUT_BAD_REQUEST:
        set_body(out, 400, "{\"error\":\"malformed request\"}");
        break;
    default:
        o = HOOK_OUT_NOT_FOUND;
        set_body(out, 404, "{\"error\":\"not found\"}");
        break;
    }
    out->outcome = o;
    observe(c, o, start_ms);
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). jansson already checks its
 * input, this guards values that reach the directory whatever the parser does. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        unsigned long cp;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
            return 0;
        }
        i += k + 1;
    }
    return 1;
}

/* The string at obj.key, or NULL when absent or not a string. */
static const char *str_at(json_t *obj, const char *key, size_t *len)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_string(v)) {
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

static int input_ok(const char *login, size_t llen, const char *pw, size_t plen)
{
    return llen > 0 && llen <= HOOK_MAX_LOGIN && plen > 0 && plen <= HOOK_MAX_PASSWORD &&
           memchr(login, '\0', llen) == NULL && memchr(pw, '\0', plen) == NULL &&
           utf8_valid((const unsigned char *)login, llen) &&
           utf8_valid((const unsigned char *)pw, plen);
}

static enum hook_outcome outcome_of(enum ldap_verify_result r)
{
    switch (r) {
    case LDAP_VERIFY_OK:
        return HOOK_OUT_VERIFIED;
    case LDAP_VERIFY_WRONG:
        return HOOK_OUT_WRONG_PASSWORD;
    case LDAP_VERIFY_UNKNOWN:
        return HOOK_OUT_UNKNOWN_USER;
    case LDAP_VERIFY_AMBIGUOUS:
        return HOOK_OUT_AMBIGUOUS_USER;
    case LDAP_VERIFY_INVALID:
        return HOOK_OUT_INVALID_INPUT;
    case LDAP_VERIFY_SOURCE_ERROR:
        break;
    }
    return HOOK_OUT_SOURCE_ERROR;
}

/* A copy of the login safe for a log line: control characters, quotes and backslashes
 * become '?' (a username is attacker-chosen; it must not forge log lines). */
static void log_safe(char *out, size_t outlen, const char *login, size_t llen)
{
    size_t i;

    for (i = 0; i < llen && i + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)login[i];
        out[i] = ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\' ? '?' : (char)ch;
    }
    out[i] = '\0';
}

/* Runs the verification proper: budget, verifier, journal. Returns the outcome. */
static enum hook_outcome verify_user(struct hook_core *c, const char *login, size_t llen,
                                     const char *pw, size_t plen, long long start_ms)
{
    long long deadline = start_ms + c->cfg->deadline_ms - HOOK_DEADLINE_MARGIN_MS;
    struct dm_err err = {0};
    enum hook_outcome o;
    enum ldap_verify_result r;
    enum hook_guard_outcome g;
    enum ldap_verify_reason why = LDAP_VERIFY_R_NONE;
    char shown[HOOK_MAX_LOGIN + 1];
    char dn[1024];

    log_safe(shown, sizeof(shown), login, llen);
    if (!hook_guard_begin(c->guard, login, llen, ldap_verify_now_ms())) {
        log_info("hook: login=\"%s\": over the failure budget; UNVERIFIED without a bind", shown);
        return HOOK_OUT_THROTTLED;
    }
    r = c->verify(dn, sizeof(dn), c->verify_ctx, login, llen, pw, plen, deadline, &err);
    o = outcome_of(r);
    g = o == HOOK_OUT_VERIFIED                                        ? HOOK_GUARD_SUCCESS
        : (o == HOOK_OUT_SOURCE_ERROR || o == HOOK_OUT_INVALID_INPUT) ? HOOK_GUARD_NEUTRAL
                                                                      : HOOK_GUARD_FAILURE;
    hook_guard_end(c->guard, login, llen, g, ldap_verify_now_ms());
    switch (o) {
    case HOOK_OUT_SOURCE_ERROR:
        /* A source error, not a wrong password: logged and counted as such. */
        log_warn("hook: login=\"%s\": source error: %s", shown, err.msg);
        break;
    case HOOK_OUT_UNKNOWN_USER:
        /* People type passwords into the username field: an unknown login is neither
         * logged nor journaled. */
        log_info("hook: unknown user (login not logged)");
        break;
    case HOOK_OUT_WRONG_PASSWORD:
        /* The directory may say why it refused (AD: disabled, expired, locked...). */
        why = err.rc == DM_EAUTH ? ldap_verify_reason_from_name(err.msg) : LDAP_VERIFY_R_NONE;
        ADD(c->refusals[why], 1);
        log_info("hook: login=\"%s\": %s%s%s", shown, outcome_names[o],
                 why != LDAP_VERIFY_R_NONE ? ": " : "", ldap_verify_reason_name(why));
        break;
    default:
        log_info("hook: login=\"%s\": %s", shown, outcome_names[o]);
        break;
    }
    if (c->record != NULL && o != HOOK_OUT_UNKNOWN_USER && o != HOOK_OUT_INVALID_INPUT) {
        c->record(c->record_ctx, login, dn, outcome_names[o],
                  o == HOOK_OUT_SOURCE_ERROR  ? dm_rc_category(err.rc)
                  : why != LDAP_VERIFY_R_NONE ? ldap_verify_reason_name(why)
                                              : NULL);
    }
    return o;
}

void hook_core_handle(struct hook_reply *out, struct hook_core *c, enum hook_endpoint ep,
                      const char *body, size_t len, long long start_ms)
{
    json_t *root = NULL, *cred;
    json_error_t jerr;
    const char *login = NULL, *pw = NULL, *event = NULL;
    size_t llen = 0, plen = 0, elen = 0;
    char evkey[256 + 1 + HOOK_MAX_LOGIN];
    enum hook_outcome o;
    int verified = 0, dedup = 0;

    memset(out, 0, sizeof(*out));
    if (len > (size_t)c->cfg->max_body) {
        hook_core_refuse(out, c, HOOK_OUT_TOO_LARGE, start_ms);
        return;
    }
    /* JSON_ALLOW_NUL: "\u0000" parses, and is then refused as invalid input below. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_invalid_utf8) {
            o = HOOK_OUT_INVALID_INPUT; /* an answer, not a protocol error */
            goto answer;
        }
        hook_core_refuse(out, c, HOOK_OUT_BAD_REQUEST, start_ms);
        return;
    }
    if (ep == HOOK_EP_OKTA) {
        /* Okta's request: {"eventId", "data": {"context": {"credential":
         * {"username", "password"}}}} */
        cred = json_object_get(json_object_get(json_object_get(root, "data"), "context"),
                               "credential");
        event = str_at(root, "eventId", &elen);
    } else {
        cred = root;
    }
    if (json_is_object(cred)) {
        login = str_at(cred, "username", &llen);
        pw = str_at(cred, "password", &plen);
    }
    if (login == NULL || pw == NULL) {
        json_decref(root);
        hook_core_refuse(out, c, HOOK_OUT_BAD_REQUEST, start_ms);
        return;
    }
    if (!input_ok(login, llen, pw, plen)) {
        o = HOOK_OUT_INVALID_INPUT;
        goto answer;
    }
    if (ADD(c->inflight, 1) > c->cfg->max_concurrency) {
        ADD(c->inflight, -1);
        log_warn("hook: more than %d verifications in flight; UNVERIFIED", c->cfg->max_concurrency);
        o = HOOK_OUT_OVERLOAD;
        goto answer;
    }
    if (event != NULL && elen > 0 && elen <= 256) {
        /* The key is eventId + NUL + username: a retry repeats both; the same eventId
         * with another username is another question (and gets its own bind). */
        memcpy(evkey, event, elen);
        evkey[elen] = '\0';
        memcpy(evkey + elen + 1, login, llen);
        elen += 1 + llen;
        event = evkey;
        if (!hook_guard_event_begin(c->guard, event, elen, ldap_verify_now_ms(),
                                    start_ms + c->cfg->deadline_ms - HOOK_DEADLINE_MARGIN_MS,
                                    &verified)) {
            ADD(c->inflight, -1);
            log_info("hook: eventId seen before; same answer, no bind");
            o = HOOK_OUT_DUPLICATE;
            goto answer;
        }
        dedup = 1;
    }
    o = verify_user(c, login, llen, pw, plen, start_ms);
    verified = o == HOOK_OUT_VERIFIED;
    if (dedup) {
        hook_guard_event_end(c->guard, event, elen, verified, ldap_verify_now_ms());
    }
    ADD(c->inflight, -1);
answer:
    answer(out, ep, verified);
    out->outcome = o;
    observe(c, o, start_ms);
    json_decref(root); /* jansson does not wipe; the parsed password goes with it */
}

int hook_core_metrics(struct hook_core *c, struct buf *out)
{
    long long cum = 0, up = GET(c->source_up);
    int rc;

    rc = buf_puts(out, "# HELP dirmig_hook_requests_total Hook requests by outcome.\n"
                       "# TYPE dirmig_hook_requests_total counter\n");
    for (int i = 0; i < HOOK_OUT__LAST && rc == DM_OK; i++) {
        rc = buf_printf(out, "dirmig_hook_requests_total{outcome=\"%s\"} %lld\n", outcome_names[i],
                        GET(c->requests[i]));
    }
    if (rc == DM_OK) {
        rc = buf_puts(out, "# HELP dirmig_hook_request_duration_seconds Time to answer.\n"
                           "# TYPE dirmig_hook_request_duration_seconds histogram\n");
    }
    for (size_t i = 0; i <= NBOUNDS && rc == DM_OK; i++) {
        cum += GET(c->lat_buckets[i]);
        if (i < NBOUNDS) {
            rc = buf_printf(out, "dirmig_hook_request_duration_seconds_bucket{le=\"%g\"} %lld\n",
                            lat_bounds[i], cum);
        } else {
            rc = buf_printf(out, "dirmig_hook_request_duration_seconds_bucket{le=\"+Inf\"} %lld\n",
                            cum);
        }
    }
    if (rc == DM_OK) {
        rc = buf_printf(out,
                        "dirmig_hook_request_duration_seconds_sum %.6f\n"
                        "dirmig_hook_request_duration_seconds_count %lld\n"
                        "# HELP dirmig_hook_source_errors_total Verifications that failed "
                        "because of the source directory.\n"
                        "# TYPE dirmig_hook_source_errors_total counter\n"
                        "dirmig_hook_source_errors_total %lld\n"
                        "# HELP dirmig_hook_throttled_users Usernames over the failure budget.\n"
                        "# TYPE dirmig_hook_throttled_users gauge\n"
                        "dirmig_hook_throttled_users %lld\n"
                        "# HELP dirmig_hook_inflight Verifications in flight.\n"
                        "# TYPE dirmig_hook_inflight gauge\n"
                        "dirmig_hook_inflight %lld\n",
                        (double)GET(c->lat_sum_us) / 1e6, GET(c->lat_count),
                        GET(c->requests[HOOK_OUT_SOURCE_ERROR]),
                        hook_guard_throttled(c->guard, ldap_verify_now_ms()), GET(c->inflight));
    }
    if (rc == DM_OK) {
        rc = buf_puts(out, "# HELP dirmig_hook_bind_refusals_total Wrong-password answers by the "
                           "reason the directory gave (AD bind sub-codes; none = no reason).\n"
                           "# TYPE dirmig_hook_bind_refusals_total counter\n");
    }
    for (int i = 0; i < LDAP_VERIFY_R__LAST && rc == DM_OK; i++) {
        rc = buf_printf(out, "dirmig_hook_bind_refusals_total{reason=\"%s\"} %lld\n",
                        i == LDAP_VERIFY_R_NONE ? "none" : ldap_verify_reason_name(i),
                        GET(c->refusals[i]));
    }
    if (rc == DM_OK && up >= 0) {
        rc = buf_printf(out,
                        "# HELP dirmig_hook_source_up Last health check of the source (1 up).\n"
                        "# TYPE dirmig_hook_source_up gauge\n"
                        "dirmig_hook_source_up %lld\n",
                        up);
    }
    return rc;
}
