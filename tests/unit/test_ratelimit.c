#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "agent/util/err.h"
#include "connectors/ratelimit.h"

static void test_key(void **state)
{
    static const char *const cases[][2] = {
        {"/api/v1/users?limit=200", "users"},
        {"/api/v1/users", "users"},
        {"/api/v1/users/00u1", "users/*"},
        {"/api/v1/users/00u1/lifecycle/activate?sendEmail=false", "users/*"},
        {"https://org.okta.com/api/v1/groups/00g1/users/00u2", "groups/*"},
        {"https://org.okta.com/api/v1/groups?after=x/y", "groups"},
        {"/scim/v2/Users/42", "scim/*"},
        {"/", ""},
        {"https://h", ""},
    };
    char key[64];

    for (size_t i = 0; i < DM_ARRAY_LEN(cases); i++) {
        ratelimit_key(key, sizeof(key), cases[i][0]);
        assert_string_equal(key, cases[i][1]);
    }
    ratelimit_key(key, 4, "/api/v1/users/1");
    assert_string_equal(key, "use");
}

static void test_probe_and_no_headers(void **state)
{
    struct ratelimit *r = ratelimit_new(0.5);
    struct ratelimit_obs none = {.limit = -1};

    assert_non_null(r);
    assert_int_equal(ratelimit_delay(r, "users", 0), 0);
    assert_int_equal(ratelimit_started(r, "users", 0), DM_OK);
    /* unknown bucket: one probe at a time */
    assert_true(ratelimit_delay(r, "users", 1) > 0);
    /* other buckets are independent */
    assert_int_equal(ratelimit_delay(r, "groups", 1), 0);
    ratelimit_done(r, "users", &none, 5);
    /* no headers: never held */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(ratelimit_started(r, "users", 6), DM_OK);
        assert_int_equal(ratelimit_delay(r, "users", 6), 0);
    }
    ratelimit_free(r);
    ratelimit_free(NULL);
}

/* Simulates a client with instant responses against a server with limit/window: counts
 * how many requests the governor lets through before the window ends. */
static long simulate(double share, long limit, long long window, long long end, long *n429)
{
    struct ratelimit *r = ratelimit_new(share);
    long long win_end = -1;
    long count = 0;
    long sent = 0;

    *n429 = 0;
    for (long long now = 0; now < end; now++) {
        struct ratelimit_obs obs;

        if (ratelimit_delay(r, "users", now) > 0) {
            continue;
        }
        assert_int_equal(ratelimit_started(r, "users", now), DM_OK);
        if (win_end < 0 || now >= win_end) {
            win_end = now + window;
            count = 0;
        }
        count++;
        obs.limit = limit;
        obs.remaining = count > limit ? 0 : limit - count;
        /* Reset is whole seconds, rounded up */
        obs.reset_ms = (win_end + 999) / 1000 * 1000;
        obs.too_many = count > limit;
        *n429 += obs.too_many;
        ratelimit_done(r, "users", &obs, now);
        sent++;
    }
    ratelimit_free(r);
    return sent;
}

static void test_pacing(void **state)
{
    long n429;
    long sent;

    /* 120 per 10 s, half of it ours: ~60 in the first window, none over the limit */
    sent = simulate(0.5, 120, 10000, 10000, &n429);
    assert_true(sent >= 55 && sent <= 60);
    assert_int_equal(n429, 0);
    /* three windows: ~180 */
    sent = simulate(0.5, 120, 10000, 30000, &n429);
    assert_true(sent >= 165 && sent <= 181);
    assert_int_equal(n429, 0);
    /* full share */
    sent = simulate(1.0, 100, 10000, 10000, &n429);
    assert_true(sent >= 90 && sent <= 100);
    assert_int_equal(n429, 0);
}

static void test_spread(void **state)
{
    struct ratelimit *r = ratelimit_new(0.5);
    struct ratelimit_obs obs = {.limit = 120, .remaining = 119, .reset_ms = 10000};

    assert_int_equal(ratelimit_started(r, "users", 0), DM_OK);
    ratelimit_done(r, "users", &obs, 0);
    /* 59 left over ~10.3 s: about one every 175 ms, not a burst */
    assert_in_range(ratelimit_delay(r, "users", 0), 150, 200);
    assert_int_equal(ratelimit_delay(r, "users", 200), 0);
    /* budget spent (other tokens used the bucket): hold until Reset + margin */
    obs.remaining = 60;
    ratelimit_done(r, "users", &obs, 300);
    assert_int_equal(ratelimit_delay(r, "users", 300), 10000 + RATELIMIT_MARGIN_MS - 300);
    /* an older response with a higher Remaining does not reopen the bucket */
    obs.remaining = 100;
    ratelimit_done(r, "users", &obs, 400);
    assert_int_equal(ratelimit_delay(r, "users", 400), 10000 + RATELIMIT_MARGIN_MS - 400);
    /* after Reset: a probe goes */
    assert_int_equal(ratelimit_delay(r, "users", 10000 + RATELIMIT_MARGIN_MS), 0);
    ratelimit_free(r);
}

static void test_429(void **state)
{
    struct ratelimit *r = ratelimit_new(0.5);
    struct ratelimit_obs obs = {.limit = 0, .remaining = 0, .reset_ms = 5000, .too_many = 1};

    assert_int_equal(ratelimit_started(r, "users", 0), DM_OK);
    ratelimit_done(r, "users", &obs, 1000);
    assert_int_equal(ratelimit_delay(r, "users", 1000), 5000 + RATELIMIT_MARGIN_MS - 1000);
    assert_int_equal(ratelimit_delay(r, "users", 5000 + RATELIMIT_MARGIN_MS), 0);
    /* a 429 without Reset still holds one second */
    obs.reset_ms = 0;
    obs.limit = -1;
    assert_int_equal(ratelimit_started(r, "groups", 0), DM_OK);
    ratelimit_done(r, "groups", &obs, 100);
    assert_int_equal(ratelimit_delay(r, "groups", 100), 1000);
    ratelimit_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key),    cmocka_unit_test(test_probe_and_no_headers),
        cmocka_unit_test(test_pacing), cmocka_unit_test(test_spread),
        cmocka_unit_test(test_429),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
