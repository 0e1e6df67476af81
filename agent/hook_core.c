#include <config.h>
#include "agent/hook_core.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/hook_guard.h"
#include "agent/util/log.h"
#include "schema/cred.h"

/* Upper bounds of the latency histogram, seconds (Prometheus "le" labels). */
static const double lat_bounds[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                    0.1,   0.25,  0.5,   1.0,  2.0,  3.0};
#define NBOUNDS (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

/* A source that failed this many verifications in a row with a timeout or a refused
 * connection is not asked again for HOOK_BREAKER_OPEN_MS, except by one probe at a time:
 * the answers stay fast (and the pools free) while the directory hangs. */
#define HOOK_BREAKER_ERRORS 3
#define HOOK_BREAKER_OPEN_MS 1000

static const char *const outcome_names[HOOK_OUT__LAST] = {
    [HOOK_OUT_VERIFIED] = "verified",
    [HOOK_OUT_WRONG_PASSWORD] = "wrong_password",
    [HOOK_OUT_UNKNOWN_USER] = "unknown_user",
    [HOOK_OUT_AMBIGUOUS_USER] = "ambiguous_user",
    [HOOK_OUT_INVALID_INPUT] = "invalid_input",
    [HOOK_OUT_SOURCE_ERROR] = "source_error",
    [HOOK_OUT_THROTTLED] = "throttled",
    [HOOK_OUT_OVERLOAD] = "overload",
    [HOOK_OUT_DUPLICATE] = "duplicate",
    [HOOK_OUT_BAD_REQUEST] = "bad_request",
    [HOOK_OUT_TOO_LARGE] = "too_large",
    [HOOK_OUT_UNAUTHORIZED] = "unauthorized",
    [HOOK_OUT_NOT_FOUND] = "not_found",
    [HOOK_OUT_INELIGIBLE] = "ineligible",
    [HOOK_OUT_BAD_EVENT_TYPE] = "unsupported_event_type",
};

static const char *const throttle_names[HOOK_THR__LAST] = {
    [HOOK_THR_ACCOUNT] = "account", [HOOK_THR_CLIENT] = "client",
    [HOOK_THR_GLOBAL] = "global",   [HOOK_THR_SOURCE] = "source_lockout",
    [HOOK_THR_FULL] = "full",
};

struct hook_core {
    const struct config_hook *cfg;
    struct hook_verifier v;
    hook_record_fn record;
    void *record_ctx;
    hook_verified_fn on_verified;
    void *verified_ctx;
    struct hook_guard *guard;
    int threshold; /* the source's lockout threshold, 0 = none or unknown */
    /* the breaker (atomics) */
    long long src_errors_in_row, breaker_until, probing;
    /* Counters, updated with relaxed atomics. */
    long long inflight;
    long long requests[HOOK_OUT__LAST];
    long long refusals[LDAP_VERIFY_R__LAST];   /* bind refusals by the directory's reason */
    long long ineligible[LDAP_VERIFY_R__LAST]; /* accounts that cannot verify, by reason */
    long long throttled[HOOK_THR__LAST];
    long long lat_buckets[NBOUNDS + 1]; /* last = +Inf */
    long long lat_sum_us, lat_count;
    long long source_up; /* last health check, -1 = none yet */
};

/* An admitted request. login and pw are copies (pw wiped when freed). */
struct hook_req {
    enum hook_endpoint ep;
    long long start_ms;
    char client[HOOK_CLIENT_LEN];
    char event[257]; /* Okta eventId ("" = none) */
    size_t llen, plen, elen;
    char *login; /* llen bytes + NUL */
    char *pw;    /* plen bytes + NUL */
};

#define ADD(p, n) __atomic_add_fetch(&(p), (n), __ATOMIC_RELAXED)
#define GET(p) __atomic_load_n(&(p), __ATOMIC_RELAXED)
#define SET(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELAXED)

const char *hook_outcome_name(enum hook_outcome o)
{
    return o < HOOK_OUT__LAST ? outcome_names[o] : "?";
}

int hook_core_new(struct hook_core **out, const struct config_hook *cfg,
                  const struct hook_verifier *verifier, hook_record_fn record, void *record_ctx,
                  struct dm_err *err)
{
    struct hook_core *c = calloc(1, sizeof(*c));
    struct hook_guard_limits lim;
    int rc;

    if (c == NULL) {
        return dm_err_set(err, DM_ENOMEM, "hook_core_new");
    }
    c->cfg = cfg;
    c->v = *verifier;
    c->record = record;
    c->record_ctx = record_ctx;
    c->source_up = -1;
    lim.account_max = cfg->max_failures;
    lim.client_max = cfg->max_failures_per_client;
    lim.global_max = cfg->max_failures_total;
    lim.window_s = cfg->failure_window_s;
    rc = hook_guard_new(&c->guard, &lim, err);
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

void hook_core_on_verified(struct hook_core *c, hook_verified_fn fn, void *ctx)
{
    c->on_verified = fn;
    c->verified_ctx = ctx;
}

void hook_core_set_policy(struct hook_core *c, int threshold)
{
    SET(c->threshold, threshold > 0 ? threshold : 0);
    if (threshold > 1) {
        hook_guard_cap_account(c->guard, threshold - 1);
    } else if (threshold == 1) {
        hook_guard_cap_account(c->guard, 1); /* and the source check refuses every bind */
    }
}

void hook_core_set_source_up(struct hook_core *c, int up)
{
    SET(c->source_up, (long long)up);
}

int hook_core_client_key(char out[HOOK_CLIENT_LEN], const char *text)
{
    unsigned char a6[16];
    struct in_addr a4;

    if (text == NULL) {
        return -1;
    }
    if (inet_pton(AF_INET, text, &a4) == 1) {
        return inet_ntop(AF_INET, &a4, out, HOOK_CLIENT_LEN) != NULL ? 0 : -1;
    }
    if (inet_pton(AF_INET6, text, a6) != 1) {
        return -1;
    }
    if (memcmp(a6, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
        memcpy(&a4, a6 + 12, 4); /* ::ffff:1.2.3.4 is 1.2.3.4 */
        return inet_ntop(AF_INET, &a4, out, HOOK_CLIENT_LEN) != NULL ? 0 : -1;
    }
    /* One IPv6 client holds a whole /64 (RFC 7421): rotating within it is no new client. */
    memset(a6 + 8, 0, 8);
    if (inet_ntop(AF_INET6, a6, out, HOOK_CLIENT_LEN - 4) == NULL) {
        return -1;
    }
    strcat(out, "/64");
    return 0;
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
    case HOOK_OUT_BAD_EVENT_TYPE:
        set_body(out, 400,
                 "{\"error\":\"unsupported eventType: this endpoint answers only "
                 "com.okta.user.credential.password.import\"}");
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

static int input_ok(const char *login, size_t llen, const char *pw, size_t plen)
{
    return llen > 0 && llen <= HOOK_MAX_LOGIN && plen > 0 && plen <= HOOK_MAX_PASSWORD &&
           memchr(login, '\0', llen) == NULL && memchr(pw, '\0', plen) == NULL &&
           utf8_valid((const unsigned char *)login, llen) &&
           utf8_valid((const unsigned char *)pw, plen) &&
           /* "*", "!!", "x"...: lock markers, never a password (schema/cred.h); refused even
            * if the source, unable to show us userPassword, would accept them */
           !cred_is_placeholder_token(pw, plen);
}

static void req_free(struct hook_req *r)
{
    if (r == NULL) {
        return;
    }
    if (r->pw != NULL) {
        explicit_bzero(r->pw, r->plen);
        free(r->pw);
    }
    free(r->login);
    explicit_bzero(r, sizeof(*r));
    free(r);
}

static char *memdup0(const char *p, size_t n)
{
    char *d = malloc(n + 1);

    if (d != NULL) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

int hook_core_begin(struct hook_reply *out, struct hook_req **req, struct hook_core *c,
                    enum hook_endpoint ep, const char *body, size_t len, const char *client,
                    long long start_ms)
{
    json_t *root = NULL, *cred;
    json_error_t jerr;
    const char *login = NULL, *pw = NULL, *event = NULL, *type, *ip = NULL;
    size_t llen = 0, plen = 0, elen = 0, tlen = 0, iplen = 0;
    struct hook_req *r = NULL;
    enum hook_outcome o;

    memset(out, 0, sizeof(*out));
    *req = NULL;
    if (len > (size_t)c->cfg->max_body) {
        hook_core_refuse(out, c, HOOK_OUT_TOO_LARGE, start_ms);
        return 0;
    }
    /* JSON_ALLOW_NUL: "\u0000" parses, and is then refused as invalid input below. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_invalid_utf8) {
            o = HOOK_OUT_INVALID_INPUT; /* an answer, not a protocol error */
            goto answer;
        }
        hook_core_refuse(out, c, HOOK_OUT_BAD_REQUEST, start_ms);
        return 0;
    }
    if (ep == HOOK_EP_OKTA) {
        /* Only the password import is answered (Okta's eventType
         * com.okta.user.credential.password.import): any other event that happens to carry
         * a credential is not a sign-in to verify. */
        type = str_at(root, "eventType", &tlen);
        if (type == NULL || tlen != strlen(HOOK_EVENT_TYPE) || strcmp(type, HOOK_EVENT_TYPE) != 0) {
            json_decref(root);
            hook_core_refuse(out, c, HOOK_OUT_BAD_EVENT_TYPE, start_ms);
            return 0;
        }
        /* Okta's request: {"eventType", "eventId", "data": {"context": {"credential":
         * {"username", "password"}}}} */
        cred = json_object_get(json_object_get(json_object_get(root, "data"), "context"),
                               "credential");
        event = str_at(root, "eventId", &elen);
        ip = str_at(
            json_object_get(json_object_get(json_object_get(root, "data"), "context"), "request"),
            "ipAddress", &iplen);
    } else {
        cred = root;
        ip = json_is_object(root) ? str_at(root, "client_ip", &iplen) : NULL;
    }
    if (json_is_object(cred)) {
        login = str_at(cred, "username", &llen);
        pw = str_at(cred, "password", &plen);
    }
    if (login == NULL || pw == NULL) {
        json_decref(root);
        hook_core_refuse(out, c, HOOK_OUT_BAD_REQUEST, start_ms);
        return 0;
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
    r = calloc(1, sizeof(*r));
    if (r != NULL) {
        r->login = memdup0(login, llen);
        r->pw = memdup0(pw, plen);
    }
    if (r == NULL || r->login == NULL || r->pw == NULL) {
        ADD(c->inflight, -1);
        req_free(r);
        log_warn("hook: out of memory; UNVERIFIED");
        o = HOOK_OUT_OVERLOAD;
        goto answer;
    }
    r->ep = ep;
    r->start_ms = start_ms;
    r->llen = llen;
    r->plen = plen;
    if (event != NULL && elen > 0 && elen < sizeof(r->event) && memchr(event, 0, elen) == NULL) {
        memcpy(r->event, event, elen);
        r->elen = elen;
    }
    /* The end user's address as the caller saw it, else the peer's. */
    if (ip == NULL || iplen >= 64 || memchr(ip, 0, iplen) != NULL ||
        hook_core_client_key(r->client, ip) != 0) {
        snprintf(r->client, sizeof(r->client), "%s", client != NULL ? client : "");
    }
    json_decref(root); /* jansson does not wipe; the parsed password goes with it */
    *req = r;
    return 1;
answer:
    answer(out, ep, 0);
    out->outcome = o;
    observe(c, o, start_ms);
    json_decref(root);
    return 0;
}

void hook_core_drop(struct hook_core *c, struct hook_req *req)
{
    if (req != NULL) {
        ADD(c->inflight, -1);
        req_free(req);
    }
}

/* The breaker: 1 when the source may be asked now (a probe when it is open). */
static int breaker_admit(struct hook_core *c, int *probe)
{
    long long until = GET(c->breaker_until), zero = 0;

    *probe = 0;
    if (until == 0 || ldap_verify_now_ms() >= until) {
        if (until == 0) {
            return 1;
        }
        /* open and due: one probe at a time */
        if (__atomic_compare_exchange_n(&c->probing, &zero, 1, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            *probe = 1;
            return 1;
        }
        return 0;
    }
    return 0;
}

/* Notes whether the source answered: a timeout or refused connection counts towards
 * opening the breaker; any answer closes it. */
static void breaker_note(struct hook_core *c, int probe, int source_failed)
{
    long long n;

    if (source_failed) {
        n = ADD(c->src_errors_in_row, 1);
        if (n >= HOOK_BREAKER_ERRORS) {
            SET(c->breaker_until, ldap_verify_now_ms() + HOOK_BREAKER_OPEN_MS);
            if (n == HOOK_BREAKER_ERRORS) {
                log_warn("hook: the source did not answer %d verifications in a row; until it "
                         "does, one probe a second asks it and the rest are UNVERIFIED at once",
                         HOOK_BREAKER_ERRORS);
            }
        }
    } else if (GET(c->src_errors_in_row) != 0) {
        if (GET(c->src_errors_in_row) >= HOOK_BREAKER_ERRORS) {
            log_info("hook: the source answers again");
        }
        SET(c->src_errors_in_row, 0);
        SET(c->breaker_until, 0);
    }
    if (probe) {
        SET(c->probing, 0);
    }
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
    case LDAP_VERIFY_INELIGIBLE:
        return HOOK_OUT_INELIGIBLE;
    case LDAP_VERIFY_SOURCE_ERROR:
        break;
    }
    return HOOK_OUT_SOURCE_ERROR;
}

static enum hook_throttle throttle_of(enum hook_guard_verdict v)
{
    switch (v) {
    case HOOK_GUARD_DENY_ACCOUNT:
        return HOOK_THR_ACCOUNT;
    case HOOK_GUARD_DENY_CLIENT:
        return HOOK_THR_CLIENT;
    case HOOK_GUARD_DENY_GLOBAL:
        return HOOK_THR_GLOBAL;
    default:
        return HOOK_THR_FULL;
    }
}

/* The verification proper (see the header): returns the outcome; *why names a reason for
 * the journal and the log (static, may stay NULL). */
static enum hook_outcome verify(struct hook_core *c, struct hook_req *r, const char **why,
                                struct ldap_verify_account *acct, int *journal, int *dup_verified)
{
    long long margin = c->cfg->deadline_ms / 10 > HOOK_DEADLINE_MARGIN_MS ? c->cfg->deadline_ms / 10
                                                                          : HOOK_DEADLINE_MARGIN_MS;
    long long deadline = r->start_ms + c->cfg->deadline_ms - margin;
    struct dm_err err = {0};
    enum ldap_verify_result res;
    enum hook_guard_verdict gv;
    enum hook_outcome o;
    enum ldap_verify_reason reason;
    unsigned char key[HOOK_GUARD_KEY_LEN];
    char shown[HOOK_MAX_LOGIN + 1];
    int probe = 0, dedup = 0, verified = 0, threshold;
    long long now;

    log_safe(shown, sizeof(shown), r->login, r->llen);
    *journal = 0;
    if (!breaker_admit(c, &probe)) {
        *why = "source_unavailable";
        return HOOK_OUT_SOURCE_ERROR;
    }
    gv = hook_guard_check_client(c->guard, r->client, strlen(r->client), ldap_verify_now_ms());
    if (gv != HOOK_GUARD_ALLOW) {
        if (probe) {
            SET(c->probing, 0); /* the source was not asked: the breaker stays as it is */
        }
        ADD(c->throttled[throttle_of(gv)], 1);
        *why = throttle_names[throttle_of(gv)];
        log_info("hook: client %s over the %s failure budget; UNVERIFIED without asking the "
                 "source",
                 r->client, *why);
        return HOOK_OUT_THROTTLED;
    }
    /* 1. the account behind the login, the way the directory compares it */
    res = c->v.resolve(acct, c->v.ctx, r->login, r->llen, deadline, &err);
    breaker_note(c, probe, res == LDAP_VERIFY_SOURCE_ERROR && err.rc == DM_EUNAVAIL);
    o = outcome_of(res);
    *journal = 1;
    switch (res) {
    case LDAP_VERIFY_OK:
        break;
    case LDAP_VERIFY_SOURCE_ERROR:
        *why = dm_rc_category(err.rc);
        log_warn("hook: login=\"%s\": source error: %s", shown, err.msg);
        return o;
    case LDAP_VERIFY_INELIGIBLE:
        ADD(c->ineligible[acct->state < LDAP_VERIFY_R__LAST ? acct->state : 0], 1);
        hook_guard_client_failure(c->guard, r->client, strlen(r->client), ldap_verify_now_ms());
        *why = ldap_verify_reason_name(acct->state);
        log_info("hook: login=\"%s\": ineligible: %s (no bind)", shown, *why);
        return o;
    case LDAP_VERIFY_UNKNOWN:
        /* People type passwords into the username field: an unknown login is neither
         * logged nor journaled. */
        *journal = 0;
        hook_guard_client_failure(c->guard, r->client, strlen(r->client), ldap_verify_now_ms());
        log_info("hook: unknown user (login not logged)");
        return o;
    default:
        hook_guard_client_failure(c->guard, r->client, strlen(r->client), ldap_verify_now_ms());
        log_info("hook: login=\"%s\": %s", shown, outcome_names[o]);
        *journal = res != LDAP_VERIFY_INVALID;
        return o;
    }
    /* 2. what the source itself says about the account */
    now = (long long)time(NULL);
    if (c->cfg->old_password_window_s > 0 && acct->pwd_changed > 0 &&
        now - acct->pwd_changed < c->cfg->old_password_window_s) {
        /* Inside the DC's old-password window a bind cannot tell the old password from the
         * new one (doc/dirmig.json.5, ACTIVE DIRECTORY). */
        ADD(c->ineligible[LDAP_VERIFY_R_RECENT_CHANGE], 1);
        *why = ldap_verify_reason_name(LDAP_VERIFY_R_RECENT_CHANGE);
        log_info("hook: login=\"%s\": ineligible: %s (no bind)", shown, *why);
        return HOOK_OUT_INELIGIBLE;
    }
    threshold = (int)GET(c->threshold);
    if (threshold > 0 && acct->failures >= 0 && acct->failures + 1 >= threshold) {
        ADD(c->throttled[HOOK_THR_SOURCE], 1);
        *why = throttle_names[HOOK_THR_SOURCE];
        log_warn("hook: login=\"%s\": the source counts %d failed binds of %d; UNVERIFIED "
                 "without a bind",
                 shown, acct->failures, threshold);
        return HOOK_OUT_THROTTLED;
    }
    /* 3. a retried event: the same eventId, account and password get the first answer */
    if (r->elen > 0) {
        hook_guard_event_key(key, c->guard, r->event, r->elen, acct->id, strlen(acct->id), r->pw,
                             r->plen);
        if (!hook_guard_event_begin(c->guard, key, ldap_verify_now_ms(), deadline, &verified)) {
            explicit_bzero(key, sizeof(key));
            *journal = 0;
            log_info("hook: eventId seen before for this account and password; same answer, "
                     "no bind");
            *dup_verified = verified;
            return HOOK_OUT_DUPLICATE;
        }
        dedup = 1;
    }
    /* 4. the account's (and the client's, and the total) failure budget */
    gv = hook_guard_begin(c->guard, acct->id, strlen(acct->id), r->client, strlen(r->client),
                          ldap_verify_now_ms());
    if (gv != HOOK_GUARD_ALLOW) {
        ADD(c->throttled[throttle_of(gv)], 1);
        *why = throttle_names[throttle_of(gv)];
        *journal = 0;
        log_info("hook: login=\"%s\": over the %s failure budget; UNVERIFIED without a bind", shown,
                 *why);
        o = HOOK_OUT_THROTTLED;
        goto done;
    }
    /* 5. the bind */
    res = c->v.bind(c->v.ctx, acct, r->pw, r->plen, deadline, &err);
    o = outcome_of(res);
    hook_guard_end(c->guard, acct->id, strlen(acct->id), r->client, strlen(r->client),
                   o == HOOK_OUT_VERIFIED                                      ? HOOK_GUARD_SUCCESS
                   : o == HOOK_OUT_SOURCE_ERROR || o == HOOK_OUT_INVALID_INPUT ? HOOK_GUARD_NEUTRAL
                                                                               : HOOK_GUARD_FAILURE,
                   ldap_verify_now_ms());
    breaker_note(c, 0, res == LDAP_VERIFY_SOURCE_ERROR && err.rc == DM_EUNAVAIL);
    switch (o) {
    case HOOK_OUT_SOURCE_ERROR:
        /* A source error, not a wrong password: logged and counted as such. */
        *why = dm_rc_category(err.rc);
        log_warn("hook: login=\"%s\": source error: %s", shown, err.msg);
        break;
    case HOOK_OUT_WRONG_PASSWORD:
    case HOOK_OUT_UNKNOWN_USER:
        /* The directory may say why it refused (AD: disabled, expired, locked...). */
        reason = err.rc == DM_EAUTH ? ldap_verify_reason_from_name(err.msg) : LDAP_VERIFY_R_NONE;
        ADD(c->refusals[reason], 1);
        *why = reason != LDAP_VERIFY_R_NONE ? ldap_verify_reason_name(reason) : NULL;
        log_info("hook: login=\"%s\": %s%s%s", shown, outcome_names[o], *why ? ": " : "",
                 *why ? *why : "");
        break;
    default:
        log_info("hook: login=\"%s\": %s", shown, outcome_names[o]);
        break;
    }
done:
    if (dedup) {
        hook_guard_event_end(c->guard, key, o == HOOK_OUT_VERIFIED, ldap_verify_now_ms());
        explicit_bzero(key, sizeof(key));
    }
    return o;
}

void hook_core_run(struct hook_reply *out, struct hook_core *c, struct hook_req *r)
{
    struct ldap_verify_account acct;
    const char *why = NULL;
    enum hook_outcome o;
    int journal = 0, verified, dup_verified = 0;

    memset(out, 0, sizeof(*out));
    acct.dn[0] = '\0'; /* resolve fills the rest; what is read before it is set here */
    acct.id[0] = '\0';
    o = verify(c, r, &why, &acct, &journal, &dup_verified);
    /* a retried event gets the first answer to its (eventId, account, password) */
    verified = o == HOOK_OUT_VERIFIED || (o == HOOK_OUT_DUPLICATE && dup_verified);
    if (journal && c->record != NULL) {
        c->record(c->record_ctx, r->login, acct.dn, outcome_names[o], why);
    }
    if (o == HOOK_OUT_VERIFIED && c->on_verified != NULL) {
        c->on_verified(c->verified_ctx, &acct, r->login, r->pw, r->plen);
    }
    answer(out, r->ep, verified);
    out->outcome = o;
    observe(c, o, r->start_ms);
    ADD(c->inflight, -1);
    req_free(r);
}

void hook_core_handle(struct hook_reply *out, struct hook_core *c, enum hook_endpoint ep,
                      const char *body, size_t len, const char *client, long long start_ms)
{
    struct hook_req *r = NULL;

    if (hook_core_begin(out, &r, c, ep, body, len, client, start_ms)) {
        hook_core_run(out, c, r);
    }
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
                        "# HELP dirmig_hook_throttled_users Accounts over the failure budget.\n"
                        "# TYPE dirmig_hook_throttled_users gauge\n"
                        "dirmig_hook_throttled_users %lld\n"
                        "# HELP dirmig_hook_inflight Verifications in flight.\n"
                        "# TYPE dirmig_hook_inflight gauge\n"
                        "dirmig_hook_inflight %lld\n"
                        "# HELP dirmig_hook_source_lockout_threshold The source's lockout "
                        "threshold (0 = none or not known).\n"
                        "# TYPE dirmig_hook_source_lockout_threshold gauge\n"
                        "dirmig_hook_source_lockout_threshold %lld\n"
                        "# HELP dirmig_hook_source_breaker_open 1 while the source is not asked "
                        "(it timed out several times in a row).\n"
                        "# TYPE dirmig_hook_source_breaker_open gauge\n"
                        "dirmig_hook_source_breaker_open %d\n",
                        (double)GET(c->lat_sum_us) / 1e6, GET(c->lat_count),
                        GET(c->requests[HOOK_OUT_SOURCE_ERROR]),
                        hook_guard_throttled(c->guard, ldap_verify_now_ms()), GET(c->inflight),
                        (long long)GET(c->threshold),
                        GET(c->breaker_until) != 0 && GET(c->breaker_until) > ldap_verify_now_ms());
    }
    if (rc == DM_OK) {
        rc = buf_puts(out, "# HELP dirmig_hook_throttled_total Requests answered UNVERIFIED "
                           "without a bind, by the budget that refused them.\n"
                           "# TYPE dirmig_hook_throttled_total counter\n");
    }
    for (int i = 0; i < HOOK_THR__LAST && rc == DM_OK; i++) {
        rc = buf_printf(out, "dirmig_hook_throttled_total{budget=\"%s\"} %lld\n", throttle_names[i],
                        GET(c->throttled[i]));
    }
    if (rc == DM_OK) {
        rc = buf_puts(out, "# HELP dirmig_hook_bind_refusals_total Wrong-password answers by the "
                           "reason the directory gave (AD bind sub-codes; none = no reason).\n"
                           "# TYPE dirmig_hook_bind_refusals_total counter\n");
    }
    for (int i = 0; i <= LDAP_VERIFY_R_OTHER && rc == DM_OK; i++) {
        rc = buf_printf(out, "dirmig_hook_bind_refusals_total{reason=\"%s\"} %lld\n",
                        i == LDAP_VERIFY_R_NONE ? "none" : ldap_verify_reason_name(i),
                        GET(c->refusals[i]));
    }
    if (rc == DM_OK) {
        rc = buf_puts(out, "# HELP dirmig_hook_ineligible_total Accounts that exist but cannot "
                           "verify, answered without a bind, by reason.\n"
                           "# TYPE dirmig_hook_ineligible_total counter\n");
    }
    for (int i = LDAP_VERIFY_R_PASSWORD_EXPIRED; i < LDAP_VERIFY_R__LAST && rc == DM_OK; i++) {
        if (i == LDAP_VERIFY_R_OTHER) {
            continue;
        }
        rc = buf_printf(out, "dirmig_hook_ineligible_total{reason=\"%s\"} %lld\n",
                        ldap_verify_reason_name(i), GET(c->ineligible[i]));
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
