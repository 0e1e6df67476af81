#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/util/log.h"
#include "connectors/http.h"
#include "tests/unit/pyserver.h"
#include "tests/unit/fixture.h"

/*
 * Runs connectors/http.c against tests/http/http_server.py on a random loopback port.
 * Every log line of the whole program goes to a file that the last test searches for the
 * token.
 */

#define TOKEN "00tok-3xAmPLE-sEcReT-9f8e7d6c5b4a"

static char logpath[600];
static char tokpath[600];
static FILE *logf_;
static struct secret *token;

struct server {
    struct pyserver py;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts the test server with extra args (NULL-terminated) and waits for READY. */
static void server_start(struct server *s, ...)
{
    const char *fixed[] = {"--token-file", tokpath, NULL};
    va_list ap;

    va_start(ap, s);
    pyserver_vstart(&s->py, "tests/http/http_server.py", fixed, ap);
    va_end(ap);
}

static void server_stop(struct server *s)
{
    pyserver_stop(&s->py);
}

static struct http_client *client_new(const struct server *s, const char *scheme,
                                      struct http_opts *o)
{
    struct http_client *c = NULL;
    struct dm_err err = {0};
    char url[64];

    snprintf(url, sizeof(url), "%s://127.0.0.1:%d", scheme, s->py.port);
    o->base_url = url;
    o->token = token;
    if (http_client_new(&c, o, &err) != DM_OK) {
        fail_msg("http_client_new: %s", err.msg);
    }
    return c;
}

/* Server counter from GET /stats. */
static long server_stat(struct http_client *c, const char *name)
{
    struct http_response r;
    struct dm_err err = {0};
    json_t *j;
    long v;

    assert_int_equal(http_perform_one(&r, c, "GET", "/stats", NULL, 0, &err), DM_OK);
    assert_int_equal(r.status, 200);
    j = json_loads(r.body.data, 0, NULL);
    assert_non_null(j);
    v = (long)json_integer_value(json_object_get(j, name));
    json_decref(j);
    http_response_clear(&r);
    return v;
}

struct tally {
    int ok;
    int fail;
    int last_rc;
    char msg[320];
};

/* Keeps the body of a 200 in t->msg. */
static void body_done(const struct http_response *resp, int rc, const struct dm_err *err,
                      void *payload)
{
    struct tally *t = payload;

    if (rc == DM_OK && resp->status == 200) {
        t->ok++;
        snprintf(t->msg, sizeof(t->msg), "%s", resp->body.data);
    } else {
        t->fail++;
    }
}

static void test_link(void **state)
{
    char *next = NULL;

    assert_int_equal(http_link_next(&next, "<https://o/api/v1/users?limit=2>; rel=\"self\""),
                     DM_OK);
    assert_null(next);
    assert_int_equal(http_link_next(&next, "<https://o/a?x=1,2>; rel=\"self\", "
                                           "<https://o/a?after=00u%2Fz&limit=2>; rel=\"next\""),
                     DM_OK);
    assert_string_equal(next, "https://o/a?after=00u%2Fz&limit=2");
    free(next);
    next = NULL;
    assert_int_equal(http_link_next(&next, "<https://o/b>; title=\"a, b\"; REL=\"prev next\""),
                     DM_OK);
    assert_string_equal(next, "https://o/b");
    free(next);
    next = NULL;
    assert_int_equal(http_link_next(&next, "<https://o/c>;rel=next"), DM_OK);
    assert_string_equal(next, "https://o/c");
    free(next);
    next = NULL;
    assert_int_equal(http_link_next(&next, "<https://o/d>; rel=\"nextish\""), DM_OK);
    assert_null(next);
    assert_int_equal(http_link_next(&next, "garbage <"), DM_OK);
    assert_null(next);
}

static void test_basic(void **state)
{
    struct server s;
    struct http_opts o;
    struct http_client *c;
    struct http_response r;
    struct dm_err err = {0};
    int pages = 0;
    char *url;

    server_start(&s, "--pages", "4", NULL);
    http_opts_init(&o);
    c = client_new(&s, "http", &o);
    /* bodiless POST must carry Content-Length: 0 (Okta 411) */
    assert_int_equal(
        http_perform_one(&r, c, "POST", "/api/v1/users/u1/lifecycle/activate", NULL, 0, &err),
        DM_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "\"len\": 0"));
    assert_true(strncmp(r.request_id, "req-", 4) == 0);
    http_response_clear(&r);
    assert_int_equal(http_perform_one(&r, c, "PUT", "/api/v1/groups/g/users/u", "", 0, &err),
                     DM_OK);
    assert_int_equal(r.status, 200);
    http_response_clear(&r);
    assert_int_equal(http_perform_one(&r, c, "POST", "api/v1/groups", "{\"a\":1}", 7, &err), DM_OK);
    assert_non_null(strstr(r.body.data, "\"len\": 7"));
    http_response_clear(&r);
    assert_int_equal(http_perform_one(&r, c, "DELETE", "/api/v1/users/u1", NULL, 0, &err), DM_OK);
    assert_non_null(strstr(r.body.data, "\"DELETE\""));
    http_response_clear(&r);
    /* extra headers: a default one is replaced, not duplicated; Authorization refused */
    {
        static const char *const hdr[] = {
            "Content-Type: application/json; okta-response=omitCredentials",
            "Prefer: respond-async", NULL};
        static const char *const bad[] = {"authorization: SSWS x", NULL};
        struct tally t = {0};

        assert_int_equal(
            http_submit_hdr(c, "POST", "/api/v1/groups", hdr, "{}", 2, body_done, &t, &err), DM_OK);
        assert_int_equal(http_run(c, &err), DM_OK);
        assert_int_equal(t.ok, 1);
        assert_non_null(strstr(t.msg, "[\"application/json; okta-response=omitCredentials\"]"));
        assert_non_null(strstr(t.msg, "\"prefer\": \"respond-async\""));
        assert_int_equal(http_submit_hdr(c, "GET", "/x", bad, NULL, 0, body_done, &t, &err),
                         DM_EINVAL);
    }
    /* follow Link rel="next" to the end */
    url = strdup("/api/v1/users?limit=2");
    while (url != NULL) {
        assert_int_equal(http_perform_one(&r, c, "GET", url, NULL, 0, &err), DM_OK);
        assert_int_equal(r.status, 200);
        free(url);
        url = r.next_url;
        r.next_url = NULL;
        http_response_clear(&r);
        pages++;
    }
    assert_int_equal(pages, 4);
    assert_int_equal(server_stat(c, "r411"), 0);
    assert_int_equal(server_stat(c, "auth_fail"), 0);
    /* the token never goes to another origin */
    assert_int_equal(http_submit(c, "GET", "http://127.0.0.2:1/x", NULL, 0, NULL, NULL, &err),
                     DM_EINVAL);
    http_client_free(c);
    server_stop(&s);
}

static void count_done(const struct http_response *resp, int rc, const struct dm_err *err,
                       void *payload)
{
    struct tally *t = payload;

    if (rc == DM_OK && resp->status == 200) {
        t->ok++;
    } else {
        t->fail++;
        t->last_rc = rc;
        snprintf(t->msg, sizeof(t->msg), "rc %d status %ld: %s", rc, resp->status,
                 rc != DM_OK ? err->msg : "");
    }
}

static void submit_n(struct http_client *c, int n, const char *path, struct tally *t)
{
    struct dm_err err = {0};

    for (int i = 0; i < n; i++) {
        assert_int_equal(http_submit(c, "GET", path, NULL, 0, count_done, t, &err), DM_OK);
    }
}

static void test_keepalive(void **state)
{
    struct server s;
    struct http_opts o;
    struct http_client *c;
    struct tally t = {0};
    struct dm_err err = {0};
    long conns;
    long inflight;

    server_start(&s, "--stall", "1", "--stall-seconds", "0.05", NULL);
    http_opts_init(&o);
    o.concurrency = 4;
    c = client_new(&s, "http", &o);
    submit_n(c, 40, "/api/v1/apps", &t);
    assert_int_equal(http_run(c, &err), DM_OK);
    if (t.fail > 0) {
        fail_msg("%s", t.msg);
    }
    assert_int_equal(t.ok, 40);
    conns = server_stat(c, "connections");
    inflight = server_stat(c, "max_inflight");
    print_message("keep-alive: 40 requests, concurrency 4: %ld connections, max %ld in flight\n",
                  conns, inflight);
    assert_true(conns <= 4);
    assert_true(inflight >= 2 && inflight <= 4);
    http_client_free(c);
    server_stop(&s);
}

static void test_faults(void **state)
{
    struct server s;
    struct http_opts o;
    struct http_client *c;
    struct tally t = {0};
    struct dm_err err = {0};
    struct http_stats st;

    server_start(&s, "--fail-5xx", "0.2", "--drop", "0.1", "--stall", "0.1", "--stall-seconds", "2",
                 "--seed", "7", NULL);
    http_opts_init(&o);
    o.request_timeout_ms = 400;
    o.backoff_base_ms = 20;
    o.backoff_max_ms = 200;
    o.max_retries = 10;
    c = client_new(&s, "http", &o);
    submit_n(c, 40, "/api/v1/users/u1", &t);
    assert_int_equal(http_run(c, &err), DM_OK);
    http_get_stats(&st, c);
    print_message("faults: ok %d fail %d; requests %lu retries %lu 5xx %lu transport %lu\n", t.ok,
                  t.fail, st.requests, st.retries, st.server_errors, st.transport_errors);
    if (t.fail > 0) {
        fail_msg("%s", t.msg);
    }
    assert_int_equal(t.ok, 40);
    assert_true(st.server_errors > 0);
    assert_true(st.transport_errors > 0);
    assert_int_equal(st.retries, st.server_errors + st.transport_errors);
    http_client_free(c);

    /* retries are bounded: always 5xx */
    server_stop(&s);
    server_start(&s, "--fail-5xx", "1", NULL);
    memset(&t, 0, sizeof(t));
    o.max_retries = 2;
    c = client_new(&s, "http", &o);
    submit_n(c, 1, "/api/v1/users/u1", &t);
    assert_int_equal(http_run(c, &err), DM_OK);
    assert_int_equal(t.fail, 1);
    assert_int_equal(t.last_rc, DM_EUNAVAIL);
    http_get_stats(&st, c);
    assert_int_equal(st.requests, 3);
    http_client_free(c);
    server_stop(&s);

    /* nothing listening: connection refused, retried, then DM_EUNAVAIL */
    memset(&t, 0, sizeof(t));
    o.max_retries = 1;
    c = client_new(&s, "http", &o);
    submit_n(c, 1, "/x", &t);
    assert_int_equal(http_run(c, &err), DM_OK);
    assert_int_equal(t.last_rc, DM_EUNAVAIL);
    http_client_free(c);
}

static void test_pacing(void **state)
{
    struct server s;
    struct http_opts o;
    struct http_client *c;
    struct tally t = {0};
    struct dm_err err = {0};
    struct http_stats st;
    double t0;
    double el;
    const int n = 75;

    /* 120 per 10 s window, share 0.5: 60 per window for us, i.e. 6/s */
    server_start(&s, "--limit", "120", "--window", "10", NULL);
    http_opts_init(&o);
    o.concurrency = 4;
    o.rate_share = 0.5;
    c = client_new(&s, "http", &o);
    submit_n(c, n, "/api/v1/users", &t);
    t0 = now_s();
    assert_int_equal(http_run(c, &err), DM_OK);
    el = now_s() - t0;
    http_get_stats(&st, c);
    print_message("pacing: %d requests in %.2f s = %.2f/s (allowed 6.00/s per window, "
                  "server limit 12/s), 429s %lu\n",
                  n, el, n / el, st.rate_limited);
    assert_int_equal(t.ok, n);
    assert_true(st.rate_limited <= 1);
    /* 60 spread over the first window, 15 in the second */
    assert_true(el > 10.0 && el < 18.0);
    http_client_free(c);
    server_stop(&s);
}

/* The server's clock is 10 minutes ahead: Reset - Date still paces correctly. */
static void test_skew(void **state)
{
    struct server s;
    struct http_opts o;
    struct http_client *c;
    struct tally t = {0};
    struct dm_err err = {0};
    struct http_stats st;
    double t0;
    double el;

    server_start(&s, "--limit", "120", "--window", "10", "--skew", "600", NULL);
    http_opts_init(&o);
    c = client_new(&s, "http", &o);
    submit_n(c, 20, "/api/v1/groups", &t);
    t0 = now_s();
    assert_int_equal(http_run(c, &err), DM_OK);
    el = now_s() - t0;
    http_get_stats(&st, c);
    print_message("skew: 20 requests in %.2f s, 429s %lu\n", el, st.rate_limited);
    assert_int_equal(t.ok, 20);
    assert_int_equal(st.rate_limited, 0);
    assert_true(el < 6.0);
    http_client_free(c);
    server_stop(&s);
}

/* 4xx other than 429 is final; the body cap holds. */
static void test_final(void **state)
{
    struct server s;
    struct http_opts o;
    struct http_client *c;
    struct http_response r;
    struct dm_err err = {0};
    struct secret *wrong = NULL;

    server_start(&s, NULL);
    assert_int_equal(secret_from_mem(&wrong, "not-the-token", 13, &err), DM_OK);
    http_opts_init(&o);
    o.token = wrong;
    {
        char url[64];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.py.port);
        o.base_url = url;
        assert_int_equal(http_client_new(&c, &o, &err), DM_OK);
    }
    assert_int_equal(http_perform_one(&r, c, "GET", "/api/v1/groups", NULL, 0, &err), DM_OK);
    assert_int_equal(r.status, 401);
    assert_int_equal(r.attempts, 1);
    assert_non_null(strstr(r.body.data, "E0000011"));
    http_response_clear(&r);
    http_client_free(c);
    secret_free(wrong);

    http_opts_init(&o);
    o.max_body = 10;
    c = client_new(&s, "http", &o);
    assert_int_equal(http_perform_one(&r, c, "GET", "/api/v1/groups", NULL, 0, &err), DM_ELIMIT);
    assert_non_null(strstr(err.msg, "over 10 bytes"));
    http_response_clear(&r);
    http_client_free(c);
    server_stop(&s);
}

static void test_429_waits(void **state)
{
    struct server s;
    struct http_opts o;
    struct http_client *c;
    struct http_response r;
    struct dm_err err = {0};
    struct http_stats st;
    double t0;
    double el;

    /* the first request gets 429 with Reset = now + 2 s (whole seconds) */
    server_start(&s, "--force-429", "1", "--force-429-reset", "2", NULL);
    http_opts_init(&o);
    o.backoff_base_ms = 10;
    c = client_new(&s, "http", &o);
    t0 = now_s();
    assert_int_equal(http_perform_one(&r, c, "GET", "/api/v1/users", NULL, 0, &err), DM_OK);
    el = now_s() - t0;
    http_get_stats(&st, c);
    print_message("429: waited %.2f s for Reset, attempts %u\n", el, r.attempts);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(st.rate_limited, 1);
    assert_true(el >= 1.0 && el < 3.5);
    http_response_clear(&r);
    http_client_free(c);
    server_stop(&s);
}

static void test_tls(void **state)
{
    struct server s;
    struct http_opts o;
    struct http_client *c;
    struct http_response r;
    struct dm_err err = {0};
    char cmd[2048];
    char cert[700];
    char key[700];

    snprintf(cert, sizeof(cert), "%s/cert.pem", fixture_tmpdir());
    snprintf(key, sizeof(key), "%s/key.pem", fixture_tmpdir());
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null",
             key, cert);
    assert_int_equal(system(cmd), 0);
    server_start(&s, "--tls-cert", cert, "--tls-key", key, NULL);
    /* default: verified against the system store, which does not know this CA */
    http_opts_init(&o);
    o.max_retries = 0;
    c = client_new(&s, "https", &o);
    assert_int_equal(http_perform_one(&r, c, "GET", "/api/v1/users", NULL, 0, &err), DM_EINTERNAL);
    print_message("tls: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "TLS verification failed"));
    assert_int_equal(r.status, 0);
    http_response_clear(&r);
    http_client_free(c);
    /* with the CA given, it works */
    http_opts_init(&o);
    o.ca_file = cert;
    c = client_new(&s, "https", &o);
    assert_int_equal(http_perform_one(&r, c, "GET", "/api/v1/users", NULL, 0, &err), DM_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(r.next_url);
    assert_true(strncmp(r.next_url, "https://127.0.0.1:", 18) == 0);
    http_response_clear(&r);
    http_client_free(c);
    server_stop(&s);
}

/* Runs last: nothing logged so far contains the token. */
static void test_token_not_logged(void **state)
{
    char buf[1 << 16];
    FILE *f;
    size_t n;

    fflush(logf_);
    f = fopen(logpath, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_true(n > 0); /* retries were logged */
    assert_null(strstr(buf, TOKEN));
    assert_null(strstr(buf, "SSWS"));
}

static int setup(void **state)
{
    struct dm_err err = {0};
    FILE *f;

    if (fixture_setup(state) != 0) {
        return -1;
    }
    snprintf(logpath, sizeof(logpath), "%s/log", fixture_tmpdir());
    snprintf(tokpath, sizeof(tokpath), "%s/token", fixture_tmpdir());
    f = fopen(tokpath, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(TOKEN "\n", f);
    fclose(f);
    chmod(tokpath, 0600);
    if (secret_load(&token, tokpath, NULL, &err) != DM_OK) {
        return -1;
    }
    logf_ = fopen(logpath, "w");
    if (logf_ == NULL) {
        return -1;
    }
    log_init(LOG_LVL_DEBUG, logf_, 0);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int teardown(void **state)
{
    secret_free(token);
    log_init(LOG_LVL_WARN, NULL, 0);
    if (logf_ != NULL) {
        fclose(logf_);
    }
    return fixture_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link),   cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_basic),  cmocka_unit_test(test_faults),
        cmocka_unit_test(test_final),  cmocka_unit_test(test_429_waits),
        cmocka_unit_test(test_skew),   cmocka_unit_test(test_tls),
        cmocka_unit_test(test_pacing), cmocka_unit_test(test_token_not_logged),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
