/* tests/unit/test_hook.c: the hook's failure budget, eventId de-duplication, request
 * handling with a fake verifier, and the RFC 4514 escaping of DN-template logins. */
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

static int verify_calls;

static enum ldap_verify_result fake_verify(char *dn_out, size_t dn_len, void *ctx,
                                           const char *login, size_t login_len, const char *pw,
                                           size_t pw_len, long long deadline_ms, struct dm_err *err)
{
    (void)ctx;
    (void)deadline_ms;
    verify_calls++;
    if (login_len == 5 && memcmp(login, "alice", 5) == 0) {
        return pw_len == 2 && memcmp(pw, "ok", 2) == 0 ? LDAP_VERIFY_OK : LDAP_VERIFY_WRONG;
    }
    if (login_len >= 4 && memcmp(login, "slow", 4) == 0) {
        struct timespec ts = {0, 300 * 1000000L};
        nanosleep(&ts, NULL);
        return LDAP_VERIFY_OK;
    }
    if (login_len == 4 && memcmp(login, "down", 4) == 0) {
        dm_err_set(err, DM_EUNAVAIL, "fake: source down");
        return LDAP_VERIFY_SOURCE_ERROR;
    }
    return LDAP_VERIFY_UNKNOWN;
}

static void test_hook__budget_throttles_after_max(void **state)
{
    struct hook_guard *g = NULL;
    (void)state;
    assert_int_equal(hook_guard_new(&g, 3, 10, NULL), DM_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hook_guard_begin(g, "Bob", 3, 1000), 1);
        hook_guard_end(g, "Bob", 3, HOOK_GUARD_FAILURE, 1000 + i);
    }
    assert_int_equal(hook_guard_begin(g, "bob", 3, 2000), 0); /* case folded */
    assert_int_equal(hook_guard_throttled(g, 2000), 1);
    assert_int_equal(hook_guard_begin(g, "carol", 5, 2000), 1); /* others unaffected */
    /* The window (10 s from the first failure) ends: allowed again. */
    assert_int_equal(hook_guard_begin(g, "bob", 3, 1000 + 10000), 1);
    assert_int_equal(hook_guard_throttled(g, 1000 + 10000), 0);
    hook_guard_free(g);
}

static void test_hook__inflight_counts_against_budget(void **state)
{
    struct hook_guard *g = NULL;
    (void)state;
    assert_int_equal(hook_guard_new(&g, 2, 10, NULL), DM_OK);
    assert_int_equal(hook_guard_begin(g, "x", 1, 0), 1);
    assert_int_equal(hook_guard_begin(g, "x", 1, 0), 1);
    assert_int_equal(hook_guard_begin(g, "x", 1, 0), 0); /* two in flight */
    hook_guard_end(g, "x", 1, HOOK_GUARD_NEUTRAL, 1);
    hook_guard_end(g, "x", 1, HOOK_GUARD_SUCCESS, 1);
    assert_int_equal(hook_guard_begin(g, "x", 1, 2), 1);
    hook_guard_free(g);
}

static void test_hook__success_clears_failures(void **state)
{
    struct hook_guard *g = NULL;
    (void)state;
    assert_int_equal(hook_guard_new(&g, 2, 10, NULL), DM_OK);
    assert_int_equal(hook_guard_begin(g, "x", 1, 0), 1);
    hook_guard_end(g, "x", 1, HOOK_GUARD_FAILURE, 0);
    assert_int_equal(hook_guard_begin(g, "x", 1, 0), 1);
    hook_guard_end(g, "x", 1, HOOK_GUARD_SUCCESS, 0);
    assert_int_equal(hook_guard_begin(g, "x", 1, 0), 1);
    hook_guard_end(g, "x", 1, HOOK_GUARD_FAILURE, 0);
    assert_int_equal(hook_guard_begin(g, "x", 1, 0), 1);
    hook_guard_free(g);
}

static void test_hook__event_dedup(void **state)
{
    struct hook_guard *g = NULL;
    int v = -1;
    (void)state;
    assert_int_equal(hook_guard_new(&g, 5, 10, NULL), DM_OK);
    assert_int_equal(hook_guard_event_begin(g, "e1", 2, 0, 100, &v), 1);
    hook_guard_event_end(g, "e1", 2, 1, 5);
    assert_int_equal(hook_guard_event_begin(g, "e1", 2, 10, 100, &v), 0);
    assert_int_equal(v, 1);
    /* Expired after the TTL: a new event. */
    assert_int_equal(hook_guard_event_begin(g, "e1", 2, 5 + HOOK_GUARD_EVENT_TTL_MS, 0, &v), 1);
    hook_guard_event_end(g, "e1", 2, 0, 6 + HOOK_GUARD_EVENT_TTL_MS);
    hook_guard_free(g);
}

static struct config_hook hcfg = {
    .deadline_ms = 2000,
    .max_failures = 2,
    .failure_window_s = 900,
    .max_concurrency = 8,
    .max_body = 1024,
};

static void handle(struct hook_reply *r, struct hook_core *c, enum hook_endpoint ep,
                   const char *body)
{
    hook_core_handle(r, c, ep, body, strlen(body), ldap_verify_now_ms());
}

static void test_hook__core_answers(void **state)
{
    struct hook_core *c = NULL;
    struct hook_reply r;
    struct buf b;
    (void)state;

    assert_int_equal(hook_core_new(&c, &hcfg, fake_verify, NULL, NULL, NULL, NULL), DM_OK);
    handle(
        &r, c, HOOK_EP_OKTA,
        "{\"data\":{\"context\":{\"credential\":{\"username\":\"alice\",\"password\":\"ok\"}}}}");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"commands\":[{\"type\":\"com.okta.action.update\","
                                "\"value\":{\"credential\":\"VERIFIED\"}}]}");
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\",\"password\":\"no\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"verified\":false}");
    assert_int_equal(r.outcome, HOOK_OUT_WRONG_PASSWORD);
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"down\",\"password\":\"x\"}");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.outcome, HOOK_OUT_SOURCE_ERROR);
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\"");
    assert_int_equal(r.status, 400);
    handle(&r, c, HOOK_EP_OKTA,
           "{\"data\":{\"credential\":{\"username\":\"a\",\"password\":\"b\"}}}");
    assert_int_equal(r.status, 400); /* data.credential is the old, wrong place */
    buf_init(&b, 1 << 16);
    assert_int_equal(hook_core_metrics(c, &b), DM_OK);
    assert_non_null(strstr(b.data, "dirmig_hook_requests_total{outcome=\"verified\"} 1\n"));
    assert_non_null(strstr(b.data, "dirmig_hook_source_errors_total 1\n"));
    buf_free(&b);
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
    };
    struct hook_core *c = NULL;
    struct hook_reply r;
    (void)state;

    assert_int_equal(hook_core_new(&c, &hcfg, fake_verify, NULL, NULL, NULL, NULL), DM_OK);
    verify_calls = 0;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        handle(&r, c, HOOK_EP_GENERIC, bodies[i]);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"verified\":false}");
        assert_int_equal(r.outcome, HOOK_OUT_INVALID_INPUT);
    }
    assert_int_equal(verify_calls, 0);
    hook_core_free(c);
}

static void test_hook__budget_applies_to_right_password(void **state)
{
    struct hook_core *c = NULL;
    struct hook_reply r;
    (void)state;

    assert_int_equal(hook_core_new(&c, &hcfg, fake_verify, NULL, NULL, NULL, NULL), DM_OK);
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\",\"password\":\"no\"}");
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\",\"password\":\"no\"}");
    verify_calls = 0;
    handle(&r, c, HOOK_EP_GENERIC, "{\"username\":\"alice\",\"password\":\"ok\"}");
    assert_string_equal(r.body, "{\"verified\":false}");
    assert_int_equal(r.outcome, HOOK_OUT_THROTTLED);
    assert_int_equal(verify_calls, 0);
    hook_core_free(c);
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
    snprintf(body, sizeof(body), "{\"username\":\"slow%d\",\"password\":\"x\"}", a->i);
    handle(&r, a->core, HOOK_EP_GENERIC, body);
    a->got = r.outcome;
    return NULL;
}

static void test_hook__concurrency_cap(void **state)
{
    struct hook_core *c = NULL;
    struct slow_arg args[12];
    pthread_t th[12];
    int verified = 0, overload = 0;
    (void)state;

    assert_int_equal(hook_core_new(&c, &hcfg, fake_verify, NULL, NULL, NULL, NULL), DM_OK);
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

static void test_hook__escape_dn_value(void **state)
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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hook__budget_throttles_after_max),
        cmocka_unit_test(test_hook__inflight_counts_against_budget),
        cmocka_unit_test(test_hook__success_clears_failures),
        cmocka_unit_test(test_hook__event_dedup),
        cmocka_unit_test(test_hook__core_answers),
        cmocka_unit_test(test_hook__invalid_input_never_verifies),
        cmocka_unit_test(test_hook__budget_applies_to_right_password),
        cmocka_unit_test(test_hook__concurrency_cap),
        cmocka_unit_test(test_hook__escape_dn_value),
    };
    log_init(LOG_LVL_ERR, NULL, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
