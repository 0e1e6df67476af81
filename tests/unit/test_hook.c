/* tests/unit/test_hook.c: the hook's failure budgets (per account, per client, in total),
 * eventId de-duplication keyed by account and password, request handling with a fake
 * directory (resolve + bind), the source's lockout margin, the breaker, client keys, and
 * the RFC 4514 escaping and RFC 4518 space squeezing of DN-template logins. */
#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "agent/hook_core.h"
#include "agent/hook_guard.h"
#include "agent/util/log.h"
#include "connectors/ldap_verify.h"

static int resolve_calls, bind_calls, fake_failures;
static enum ldap_verify_reason fake_state;

/* The fake directory: "alice" in any case and padding, and "alice@example.org", are one
 * account (as slapd's caseIgnoreMatch with insignificant spaces would have it). */
static enum ldap_verify_result fake_resolve(struct ldap_verify_account *out, void *ctx,
                                            const char *login, size_t len, long long deadline_ms,
                                            struct dm_err *err)
{
    char sq[64];
    int n;

    (void)ctx;
    (void)deadline_ms;
    resolve_calls++;
    memset(out, 0, sizeof(*out));
    out->failures = fake_failures;
    n = ldap_verify_squeeze_spaces(sq, sizeof(sq), login, len);
    for (int i = 0; i < n; i++) {
        sq[i] = (char)(sq[i] >= 'A' && sq[i] <= 'Z' ? sq[i] + 32 : sq[i]);
    }
    if (n > 0 && (strcmp(sq, "alice") == 0 || strcmp(sq, "alice@example.org") == 0)) {
        snprintf(out->dn, sizeof(out->dn), "uid=alice,ou=people,dc=x");
        snprintf(out->id, sizeof(out->id), "uuid:a11ce");
        out->state = fake_state;
        return fake_state != LDAP_VERIFY_R_NONE ? LDAP_VERIFY_INELIGIBLE : LDAP_VERIFY_OK;
    }
    if (n >= 4 && memcmp(sq, "slow", 4) == 0) {
        snprintf(out->dn, sizeof(out->dn), "uid=%s,dc=x", sq);
        snprintf(out->id, sizeof(out->id), "dn:uid=%s,dc=x", sq);
        return LDAP_VERIFY_OK;
    }
    if (n == 4 && memcmp(sq, "down", 4) == 0) {
        dm_err_set(err, DM_EUNAVAIL, "fake: source down");
        return LDAP_VERIFY_SOURCE_ERROR;
    }
    return LDAP_VERIFY_UNKNOWN;
}

static enum ldap_verify_result fake_bind(void *ctx, const struct ldap_verify_account *a,
                                         const char *pw, size_t len, long long deadline_ms,
                                         struct dm_err *err)
{
    (void)ctx;
    (void)deadline_ms;
    (void)err;
    bind_calls++;
    if (strncmp(a->dn, "uid=slow", 8) == 0) {
        struct timespec ts = {0, 300 * 1000000L};
        nanosleep(&ts, NULL);
        return LDAP_VERIFY_OK;
    }
    return len == 2 && memcmp(pw, "ok", 2) == 0 ? LDAP_VERIFY_OK : LDAP_VERIFY_WRONG;
}

static const struct hook_verifier fake = {fake_resolve, fake_bind, NULL};

static void reset_fake(void)
{
    resolve_calls = bind_calls = 0;
    fake_failures = -1;
    fake_state = LDAP_VERIFY_R_NONE;
}

static struct hook_guard *guard(int account, int client, int global)
{
    struct hook_guard_limits l = {account, client, global, 10};
    struct hook_guard *g = NULL;

    assert_int_equal(hook_guard_new(&g, &l, NULL), DM_OK);
    return g;
}

static void test_hook__account_budget(void **state)
{
    struct hook_guard *g = guard(3, 100, 1000);
    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hook_guard_begin(g, "acct", 4, "c1", 2, 1000), HOOK_GUARD_ALLOW);
        hook_guard_end(g, "acct", 4, "c1", 2, HOOK_GUARD_FAILURE, 1000 + i);
    }
    /* from another client too: the budget is the account's */
    assert_int_equal(hook_guard_begin(g, "acct", 4, "c2", 2, 2000), HOOK_GUARD_DENY_ACCOUNT);
    assert_int_equal(hook_guard_throttled(g, 2000), 1);
    assert_int_equal(hook_guard_begin(g, "other", 5, "c1", 2, 2000), HOOK_GUARD_ALLOW);
    hook_guard_end(g, "other", 5, "c1", 2, HOOK_GUARD_NEUTRAL, 2000);
    /* The window (10 s from the first failure) ends: allowed again. */
    assert_int_equal(hook_guard_begin(g, "acct", 4, "c1", 2, 1000 + 10000), HOOK_GUARD_ALLOW);
    assert_int_equal(hook_guard_throttled(g, 1000 + 10000), 0);
    hook_guard_free(g);
}

static void test_hook__inflight_counts_against_budget(void **state)
{
    struct hook_guard *g = guard(2, 100, 1000);
    (void)state;
    assert_int_equal(hook_guard_begin(g, "x", 1, "c", 1, 0), HOOK_GUARD_ALLOW);
    assert_int_equal(hook_guard_begin(g, "x", 1, "c", 1, 0), HOOK_GUARD_ALLOW);
    assert_int_equal(hook_guard_begin(g, "x", 1, "c", 1, 0), HOOK_GUARD_DENY_ACCOUNT);
    hook_guard_end(g, "x", 1, "c", 1, HOOK_GUARD_NEUTRAL, 1);
    hook_guard_end(g, "x", 1, "c", 1, HOOK_GUARD_SUCCESS, 1);
    assert_int_equal(hook_guard_begin(g, "x", 1, "c", 1, 2), HOOK_GUARD_ALLOW);
    hook_guard_end(g, "x", 1, "c", 1, HOOK_GUARD_SUCCESS, 2);
    /* success clears the account's failures */
    assert_int_equal(hook_guard_begin(g, "x", 1, "c", 1, 3), HOOK_GUARD_ALLOW);
    hook_guard_end(g, "x", 1, "c", 1, HOOK_GUARD_FAILURE, 3);
    assert_int_equal(hook_guard_begin(g, "x", 1, "c", 1, 3), HOOK_GUARD_ALLOW);
    hook_guard_end(g, "x", 1, "c", 1, HOOK_GUARD_SUCCESS, 3);
    assert_int_equal(hook_guard_begin(g, "x", 1, "c", 1, 3), HOOK_GUARD_ALLOW);
    hook_guard_end(g, "x", 1, "c", 1, HOOK_GUARD_NEUTRAL, 3);
    hook_guard_cap_account(g, 1);
    assert_int_equal(hook_guard_begin(g, "x", 1, "c", 1, 4), HOOK_GUARD_ALLOW);
    assert_int_equal(hook_guard_begin(g, "x", 1, "c", 1, 4), HOOK_GUARD_DENY_ACCOUNT);
    hook_guard_free(g);
}

static void test_hook__client_and_global_budgets(void **state)
{
    struct hook_guard *g = guard(5, 3, 5);
    char acct[8];
    (void)state;
    /* a spray: one wrong password for each of many accounts, from one client */
    for (int i = 0; i < 3; i++) {
        snprintf(acct, sizeof(acct), "a%d", i);
        assert_int_equal(hook_guard_check_client(g, "1.2.3.4", 7, 0), HOOK_GUARD_ALLOW);
        assert_int_equal(hook_guard_begin(g, acct, strlen(acct), "1.2.3.4", 7, 0),
                         HOOK_GUARD_ALLOW);
        hook_guard_end(g, acct, strlen(acct), "1.2.3.4", 7, HOOK_GUARD_FAILURE, 0);
    }
    assert_int_equal(hook_guard_check_client(g, "1.2.3.4", 7, 1), HOOK_GUARD_DENY_CLIENT);
    assert_int_equal(hook_guard_begin(g, "a9", 2, "1.2.3.4", 7, 1), HOOK_GUARD_DENY_CLIENT);
    /* unknown logins count against the client only */
    hook_guard_client_failure(g, "5.6.7.8", 7, 1);
    hook_guard_client_failure(g, "5.6.7.8", 7, 1);
    assert_int_equal(hook_guard_check_client(g, "5.6.7.8", 7, 1), HOOK_GUARD_ALLOW);
    /* the total: two more failures from other clients reach 5 */
    assert_int_equal(hook_guard_begin(g, "b1", 2, "9.9.9.1", 7, 2), HOOK_GUARD_ALLOW);
    hook_guard_end(g, "b1", 2, "9.9.9.1", 7, HOOK_GUARD_FAILURE, 2);
    assert_int_equal(hook_guard_begin(g, "b2", 2, "9.9.9.2", 7, 2), HOOK_GUARD_ALLOW);
    hook_guard_end(g, "b2", 2, "9.9.9.2", 7, HOOK_GUARD_FAILURE, 2);
    assert_int_equal(hook_guard_check_client(g, "9.9.9.3", 7, 3), HOOK_GUARD_DENY_GLOBAL);
    assert_int_equal(hook_guard_begin(g, "b3", 2, "9.9.9.3", 7, 3), HOOK_GUARD_DENY_GLOBAL);
    assert_int_equal(hook_guard_check_client(g, "9.9.9.3", 7, 10001), HOOK_GUARD_ALLOW);
    assert_string_equal(hook_guard_verdict_name(HOOK_GUARD_DENY_GLOBAL), "global");
    hook_guard_free(g);
}

static void test_hook__event_dedup(void **state)
{
    struct hook_guard *g = guard(5, 5, 5);
    unsigned char k1[HOOK_GUARD_KEY_LEN], k2[HOOK_GUARD_KEY_LEN], k3[HOOK_GUARD_KEY_LEN];
    int v = -1;
    (void)state;
    hook_guard_event_key(k1, g, "e1", 2, "uuid:a", 6, "right", 5);
    hook_guard_event_key(k2, g, "e1", 2, "uuid:a", 6, "wrong", 5);
    hook_guard_event_key(k3, g, "e1", 2, "uuid:b", 6, "right", 5);
    assert_memory_not_equal(k1, k2, sizeof(k1));
    assert_memory_not_equal(k1, k3, sizeof(k1));
    assert_int_equal(hook_guard_event_begin(g, k1, 0, 100, &v), 1);
    hook_guard_event_end(g, k1, 1, 5);
    assert_int_equal(hook_guard_event_begin(g, k1, 10, 100, &v), 0);
    assert_int_equal(v, 1);
    /* the same eventId with another password or account: a new question */
    assert_int_equal(hook_guard_event_begin(g, k2, 10, 100, &v), 1);
    hook_guard_event_end(g, k2, 0, 11);
    assert_int_equal(hook_guard_event_begin(g, k3, 10, 100, &v), 1);
    hook_guard_event_end(g, k3, 0, 11);
    /* Expired after the TTL: a new event. */
    assert_int_equal(hook_guard_event_begin(g, k1, 5 + HOOK_GUARD_EVENT_TTL_MS, 0, &v), 1);
    hook_guard_event_end(g, k1, 0, 6 + HOOK_GUARD_EVENT_TTL_MS);
    hook_guard_free(g);
}

static struct config_hook hcfg = {
    .deadline_ms = 2000,
    .max_failures = 2,
    .max_failures_per_client = 1000,
    .max_failures_total = 10000,
    .failure_window_s = 900,
    .max_concurrency = 8,
    .max_body = 4096,
};

#define OKTA_PRE                                                                                   \
    "{\"eventType\":\"com.okta.user.credential.password.import\",\"data\":{\"context\":{"
#define VERIFIED_BODY                                                                              \
    "{\"commands\":[{\"type\":\"com.okta.action.update\",\"value\":{\"credential\":"               \
    "\"VERIFIED\"}}]}"
#define UNVERIFIED_BODY                                                                            \
    "{\"commands\":[{\"type\":\"com.okta.action.update\",\"value\":{\"credential\":"               \
    "\"UNVERIFIED\"}}]}"

static void handle(struct hook_reply *r, struct hook_core *c, enum hook_endpoint ep,
                   const char *body)
{
    hook_core_handle(r, c, ep, body, strlen(body), "127.0.0.1", ldap_verify_now_ms());
}

static void okta(struct hook_reply *r, struct hook_core *c, const char *event, const char *login,
                 const char *pw)
{
    char body[512];

    snprintf(body, sizeof(body),
             OKTA_PRE "\"request\":{\"ipAddress\":\"66.124.153.138\"},\"credential\":{"
                      "\"username\":\"%s\",\"password\":\"%s\"}}},\"eventId\":\"%s\"}",
             login, pw, event);
    handle(r, c, HOOK_EP_OKTA, body);
}

static struct hook_core *core(void)
{
    struct hook_core *c = NULL;

    reset_fake();
    assert_int_equal(hook_core_new(&c, &hcfg, &fake, NULL, NULL, NULL), DM_OK);
    return c;
}

static void test_hook__core_answers(void **state)
{
    struct hook_core *c = core();
    struct hook_reply r;
    struct buf b;
    (void)state;

    handle(&r, c, HOOK_EP_OKTA,
           OKTA_PRE "\"credential\":{\"username\":\"alice\",\"password\":\"ok\"}}}}");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, VERIFIED_BODY);
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\",\"password\":\"no\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"verified\":false}");
    assert_int_equal(r.outcome, HOOK_OUT_WRONG_PASSWORD);
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"down\",\"password\":\"x1\"}");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.outcome, HOOK_OUT_SOURCE_ERROR);
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\"");
    assert_int_equal(r.status, 400);
    handle(&r, c, HOOK_EP_OKTA,
           "{\"eventType\":\"com.okta.user.credential.password.import\",\"data\":{"
           "\"credential\":{\"username\":\"a\",\"password\":\"b\"}}}");
    assert_int_equal(r.status, 400); /* data.credential is the old, wrong place */
    buf_init(&b, 1 << 16);
    assert_int_equal(hook_core_metrics(c, &b), DM_OK);
    assert_non_null(strstr(b.data, "dirmig_hook_requests_total{outcome=\"verified\"} 1\n"));
    assert_non_null(strstr(b.data, "dirmig_hook_source_errors_total 1\n"));
    buf_free(&b);
    hook_core_free(c);
}

static void test_hook__only_the_import_event_type(void **state)
{
    static const char *const bodies[] = {
        "{\"data\":{\"context\":{\"credential\":{\"username\":\"alice\",\"password\":\"ok\"}}}}",
        "{\"eventType\":\"com.okta.user.pre-registration\",\"data\":{\"context\":{"
        "\"credential\":{\"username\":\"alice\",\"password\":\"ok\"}}}}",
        "{\"eventType\":42,\"data\":{\"context\":{\"credential\":{\"username\":\"alice\","
        "\"password\":\"ok\"}}}}",
        "{\"eventType\":\"com.okta.user.credential.password.import \",\"data\":{\"context\":{"
        "\"credential\":{\"username\":\"alice\",\"password\":\"ok\"}}}}",
    };
    struct hook_core *c = core();
    struct hook_reply r;
    (void)state;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        handle(&r, c, HOOK_EP_OKTA, bodies[i]);
        assert_int_equal(r.status, 400);
        assert_int_equal(r.outcome, HOOK_OUT_BAD_EVENT_TYPE);
        assert_non_null(strstr(r.body, "eventType"));
    }
    assert_int_equal(resolve_calls + bind_calls, 0);
    hook_core_free(c);
}

static void test_hook__invalid_input_never_verifies(void **state)
{
    static const char *const bodies[] = {
        "{\"username\":\"alice\",\"password\":\"\"}",
        "{\"username\":\"\",\"password\":\"ok\"}",
        "{\"username\":\"al\\u0000ice\",\"password\":\"ok\"}",
        "{\"username\":\"alice\",\"password\":\"o\\u0000k\"}",
        "{\"username\":\"alice\",\"password\":\"ok\xff\"}",
        "{\"username\":\"alice\",\"password\":\"*\"}",
        "{\"username\":\"alice\",\"password\":\"!!\"}",
        "{\"username\":\"alice\",\"password\":\"x\"}",
    };
    struct hook_core *c = core();
    struct hook_reply r;
    (void)state;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        handle(&r, c, HOOK_EP_GENERIC, bodies[i]);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"verified\":false}");
        assert_int_equal(r.outcome, HOOK_OUT_INVALID_INPUT);
    }
    assert_int_equal(resolve_calls + bind_calls, 0);
    hook_core_free(c);
}

/* Every spelling of one account shares its budget; past it, even the right password is
 * UNVERIFIED without a bind. */
static void test_hook__budget_per_account_not_spelling(void **state)
{
    static const char *const spellings[] = {"alice",
                                            "ALICE",
                                            " alice",
                                            "alice  ",
                                            "  Alice ",
                                            "alice@example.org",
                                            "ALICE@EXAMPLE.ORG"};
    struct hook_core *c = core();
    struct hook_reply r;
    char body[128];
    (void)state;

    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"no\"}", spellings[i]);
        handle(&r, c, HOOK_EP_GENERIC, body);
        assert_string_equal(r.body, "{\"verified\":false}");
    }
    assert_int_equal(bind_calls, 2); /* max_failures 2 for the account, whatever the spelling */
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\",\"password\":\"ok\"}");
    assert_int_equal(r.outcome, HOOK_OUT_THROTTLED);
    assert_int_equal(bind_calls, 2);
    hook_core_free(c);
}

/* A replayed eventId is answered from the cache only for the same account and password. */
static void test_hook__replay_needs_same_password(void **state)
{
    struct hook_core *c = core();
    struct hook_reply r;
    (void)state;

    okta(&r, c, "ev1", "alice", "ok");
    assert_string_equal(r.body, VERIFIED_BODY);
    assert_int_equal(bind_calls, 1);
    okta(&r, c, "ev1", "alice", "ok"); /* Okta's retry */
    assert_string_equal(r.body, VERIFIED_BODY);
    assert_int_equal(r.outcome, HOOK_OUT_DUPLICATE);
    assert_int_equal(bind_calls, 1);
    okta(&r, c, "ev1", "alice", "wrong"); /* the replay attack */
    assert_string_equal(r.body, UNVERIFIED_BODY);
    assert_int_equal(r.outcome, HOOK_OUT_WRONG_PASSWORD);
    assert_int_equal(bind_calls, 2);
    okta(&r, c, "ev1", "ALICE ", "ok"); /* same account, same password: the cached answer */
    assert_int_equal(r.outcome, HOOK_OUT_DUPLICATE);
    assert_string_equal(r.body, VERIFIED_BODY);
    hook_core_free(c);
}

static void test_hook__ineligible_and_source_margin(void **state)
{
    struct hook_core *c = core();
    struct hook_reply r;
    (void)state;

    fake_state = LDAP_VERIFY_R_NO_PASSWORD; /* userPassword: * at the source */
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\",\"password\":\"ok\"}");
    assert_int_equal(r.outcome, HOOK_OUT_INELIGIBLE);
    assert_string_equal(r.body, "{\"verified\":false}");
    assert_int_equal(bind_calls, 0);
    fake_state = LDAP_VERIFY_R_NONE;
    /* the source has counted 2 failures of 3: one more could lock the account there */
    hook_core_set_policy(c, 3);
    fake_failures = 2;
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\",\"password\":\"ok\"}");
    assert_int_equal(r.outcome, HOOK_OUT_THROTTLED);
    assert_int_equal(bind_calls, 0);
    fake_failures = 1;
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\",\"password\":\"ok\"}");
    assert_int_equal(r.outcome, HOOK_OUT_VERIFIED);
    assert_int_equal(bind_calls, 1);
    hook_core_free(c);
}

static void test_hook__breaker(void **state)
{
    struct hook_core *c = core();
    struct hook_reply r;
    (void)state;

    for (int i = 0; i < 3; i++) {
        handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"down\",\"password\":\"x1\"}");
        assert_int_equal(r.outcome, HOOK_OUT_SOURCE_ERROR);
    }
    assert_int_equal(resolve_calls, 3);
    /* open: answered at once, the source is not asked */
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\",\"password\":\"ok\"}");
    assert_int_equal(r.outcome, HOOK_OUT_SOURCE_ERROR);
    assert_int_equal(resolve_calls, 3);
    hook_core_free(c);
}

/* The generic endpoint's "client_ip" (the end user's address as the calling application saw
 * it) is the client whose budget a failure uses; the peer address when there is none. */
static void test_hook__client_budget_by_client_ip(void **state)
{
    struct config_hook cfg = hcfg;
    struct hook_core *c = NULL;
    struct hook_reply r;
    (void)state;

    cfg.max_failures_per_client = 2;
    reset_fake();
    assert_int_equal(hook_core_new(&c, &cfg, &fake, NULL, NULL, NULL), DM_OK);
    for (int i = 0; i < 2; i++) {
        handle(&r, c, HOOK_EP_GENERIC,
               "{\"username\":\"nobody\",\"password\":\"x1\",\"client_ip\":\"192.0.2.1\"}");
        assert_int_equal(r.outcome, HOOK_OUT_UNKNOWN_USER);
    }
    resolve_calls = 0;
    handle(&r, c, HOOK_EP_GENERIC,
           "{\"username\":\"alice\",\"password\":\"ok\",\"client_ip\":\"192.0.2.1\"}");
    assert_int_equal(r.outcome, HOOK_OUT_THROTTLED);
    assert_int_equal(resolve_calls, 0); /* no directory traffic at all */
    handle(&r, c, HOOK_EP_GENERIC,
           "{\"username\":\"alice\",\"password\":\"ok\",\"client_ip\":\"192.0.2.2\"}");
    assert_int_equal(r.outcome, HOOK_OUT_VERIFIED);
    /* not an address: the peer ("127.0.0.1" in handle()) is the client */
    handle(&r, c, HOOK_EP_GENERIC,
           "{\"username\":\"alice\",\"password\":\"ok\",\"client_ip\":\"nonsense\"}");
    assert_int_equal(r.outcome, HOOK_OUT_VERIFIED);
    hook_core_free(c);
}

static void test_hook__client_keys(void **state)
{
    char k[HOOK_CLIENT_LEN];
    (void)state;
    assert_int_equal(hook_core_client_key(k, "66.124.153.138"), 0);
    assert_string_equal(k, "66.124.153.138");
    assert_int_equal(hook_core_client_key(k, "::ffff:10.1.2.3"), 0);
    assert_string_equal(k, "10.1.2.3");
    assert_int_equal(hook_core_client_key(k, "2001:db8:1:2:aaaa:bbbb:cccc:dddd"), 0);
    assert_string_equal(k, "2001:db8:1:2::/64");
    assert_int_equal(hook_core_client_key(k, "2001:db8:1:2::9"), 0);
    assert_string_equal(k, "2001:db8:1:2::/64");
    assert_int_equal(hook_core_client_key(k, "not-an-ip"), -1);
    assert_int_equal(hook_core_client_key(k, "1.2.3.4 "), -1);
}

struct slow_arg {
    struct hook_core *core;
    int i;
    enum hook_outcome got;
};

static void *slow_request(void *p)
{
    struct slow_arg *a = p;
    struct hook_reply r;
    char body[64];

    /* distinct users: one user's attempts in flight count against their failure budget */
    snprintf(body, sizeof(body), "{\"username\":\"slow%d\",\"password\":\"x1\"}", a->i);
    handle(&r, a->core, HOOK_EP_GENERIC, body);
    a->got = r.outcome;
    return NULL;
}

static void test_hook__concurrency_cap(void **state)
{
    struct hook_core *c = core();
    struct slow_arg args[12];
    pthread_t th[12];
    int verified = 0, overload = 0;
    (void)state;

    for (int i = 0; i < 12; i++) {
        args[i].core = c;
        args[i].i = i;
        pthread_create(&th[i], NULL, slow_request, &args[i]);
    }
    for (int i = 0; i < 12; i++) {
        pthread_join(th[i], NULL);
        verified += args[i].got == HOOK_OUT_VERIFIED;
        overload += args[i].got == HOOK_OUT_OVERLOAD;
    }
    /* max_concurrency 8: the requests beyond it are answered at once, never verified */
    assert_true(verified <= 8);
    assert_true(overload >= 4);
    assert_int_equal(verified + overload, 12);
    hook_core_free(c);
}

static void test_hook__escape_and_squeeze(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(ldap_verify_escape_dn_value(out, sizeof(out), "Smith, John", 11), 13);
    assert_string_equal(out, "Smith\\2C John");
    ldap_verify_escape_dn_value(out, sizeof(out), "#a=b+c ", 7);
    assert_string_equal(out, "\\23a\\3Db\\2Bc\\20");
    ldap_verify_escape_dn_value(out, sizeof(out), " x\"<>;\\", 7);
    assert_string_equal(out, "\\20x\\22\\3C\\3E\\3B\\5C");
    assert_int_equal(ldap_verify_escape_dn_value(out, 4, "abcdef", 6), -1);
    assert_int_equal(ldap_verify_squeeze_spaces(out, sizeof(out), "  a  b c  ", 10), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(ldap_verify_squeeze_spaces(out, sizeof(out), "   ", 3), 0);
    assert_int_equal(ldap_verify_squeeze_spaces(out, 3, "abcd", 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hook__account_budget),
        cmocka_unit_test(test_hook__inflight_counts_against_budget),
        cmocka_unit_test(test_hook__client_and_global_budgets),
        cmocka_unit_test(test_hook__event_dedup),
        cmocka_unit_test(test_hook__core_answers),
        cmocka_unit_test(test_hook__only_the_import_event_type),
        cmocka_unit_test(test_hook__invalid_input_never_verifies),
        cmocka_unit_test(test_hook__budget_per_account_not_spelling),
        cmocka_unit_test(test_hook__replay_needs_same_password),
        cmocka_unit_test(test_hook__ineligible_and_source_margin),
        cmocka_unit_test(test_hook__breaker),
        cmocka_unit_test(test_hook__client_budget_by_client_ip),
        cmocka_unit_test(test_hook__client_keys),
        cmocka_unit_test(test_hook__concurrency_cap),
        cmocka_unit_test(test_hook__escape_and_squeeze),
    };
    log_init(LOG_LVL_ERR, NULL, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
