#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent/report_html.h"
#include "tests/unit/fixture.h"

/* ---- the page ---- */

static char *render(struct state *s, const struct report_html_opts *o, const char *name)
{
    char path[512];
    struct dm_err e = {0};
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fixture_tmpdir(), name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(report_html_write(f, s, o, &e), DM_OK);
    fclose(f);
    return fixture_slurp(path);
}

static void expect_sections(const char *html)
{
    static const char *const ids[] = {"summary", "runs",    "outcomes", "problems",
                                      "waves",   "blocked", "passwords"};
    char want[64];

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        snprintf(want, sizeof(want), "<section id=\"%s\">", ids[i]);
        if (strstr(html, want) == NULL) {
            fail_msg("section %s missing", ids[i]);
        }
    }
    assert_non_null(strstr(html, "Content-Security-Policy\" content=\"default-src 'none'"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_non_null(strstr(html, "</html>\n"));
}

static void test_report_html__page_without_journal(void **state)
{
    struct report_html_opts o = {0};
    char *html;

    (void)state;
    o.now = 86400;
    html = render(NULL, &o, "empty.html");
    expect_sections(html);
    assert_non_null(strstr(html, "No state journal yet"));
    assert_non_null(strstr(html, "generated 1970-01-02 00:00 UTC"));
    free(html);
}

static void put_obj(struct state *s, const char *key, const char *dn, const char *status,
                    long long run)
{
    struct state_object ob = {0};
    struct dm_err e = {0};

    ob.kind = (char *)"user";
    ob.key = (char *)key;
    ob.source_dn = (char *)dn;
    ob.target_ref = (char *)dn;
    ob.status = (char *)status;
    ob.last_run = run;
    assert_int_equal(state_object_put(s, &ob, &e), DM_OK);
}

/* Every section filled from a journal whose strings try to break out of the markup. */
static void test_report_html__page_from_journal(void **state)
{
    static const char evil_dn[] = "uid=<script>alert(1)</script>,ou=people,dc=x";
    static const char evil_key[] = "\"><img src=x onerror=alert(2)>";
    static const struct config_wave waves[] = {
        {(char *)"pilot", NULL, NULL, NULL, 0},
        {(char *)"<b>later</b>", NULL, NULL, NULL, 0},
    };
    struct run_counts c = {12, 3, 40, 2, 0, 1, 0};
    struct report_html_opts o = {0};
    struct dm_err e = {0};
    struct state *s = NULL;
    char path[512], *html;
    long long r1 = 0, r2 = 0, r3 = 0;

    (void)state;
    snprintf(path, sizeof(path), "%s/j.db", fixture_tmpdir());
    assert_int_equal(state_open(&s, path, &e), DM_OK);
    assert_int_equal(state_run_begin(&r1, s, "run", "d", &e), DM_OK);
    assert_int_equal(state_run_set_wave(s, r1, "pilot", &e), DM_OK);
    assert_int_equal(state_batch_begin(s, &e), DM_OK);
    put_obj(s, "alice", "uid=alice,ou=people,dc=x", "ok", r1);
    put_obj(s, evil_key, evil_dn, "failed", r1);
    assert_int_equal(state_user_created(s, r1, "alice", STATE_SIGNIN_IMPORT, &e), DM_OK);
    assert_int_equal(state_user_created(s, r1, "bob", STATE_SIGNIN_HOOK, &e), DM_OK);
    assert_int_equal(state_error_add(s, r1, evil_key, evil_dn, "constraint",
                                     "mail: required (dn=\"uid=<script>alert(1)</script>,"
                                     "ou=people,dc=x\")",
                                     &e),
                     DM_OK);
    assert_int_equal(state_error_add(s, r1, "carol", "uid=carol,ou=people,dc=x", "schema",
                                     "objectClass violation (dn=\"uid=carol,ou=people,dc=x\")", &e),
                     DM_OK);
    assert_int_equal(state_batch_commit(s, &e), DM_OK);
    assert_int_equal(state_run_end(s, r1, "done", &c, &e), DM_OK);
    assert_int_equal(state_run_begin(&r2, s, "reconcile", "d", &e), DM_OK);
    assert_int_equal(state_run_end(s, r2, "blocked", NULL, &e), DM_OK);
    assert_int_equal(state_run_set_reason(s, r2,
                                          "source health: 41% fewer users than the last "
                                          "complete read <max_shrink_percent 10>",
                                          &e),
                     DM_OK);
    assert_int_equal(state_run_begin(&r3, s, "plan", "d", &e), DM_OK);
    assert_int_equal(state_run_end(s, r3, "done", &c, &e), DM_OK);
    assert_int_equal(
        state_password_record(s, "bob", "uid=bob,ou=people,dc=x", "verified", NULL, &e), DM_OK);

    o.source = "ldaps://ldap.example.org";
    o.target = "https://<example>.okta.com";
    o.journal = path;
    o.waves = waves;
    o.nwaves = 2;
    o.now = 1767225600; /* 2026-01-01 */
    html = render(s, &o, "full.html");
    state_close(s);

    assert_non_null(strstr(html, "<section id=\"summary\">"));
    /* expect_sections forbids http(s):// and the header names the endpoints: check apart */
    assert_non_null(strstr(html, "ldaps://ldap.example.org &#8594; https://&lt;example&gt;"));
    assert_non_null(strstr(html, "<svg id=\"runs-chart\""));
    assert_non_null(strstr(html, "<svg id=\"outcomes-chart\""));
    assert_non_null(strstr(html, "<svg id=\"passwords-chart\""));
    assert_non_null(strstr(html, "<polyline class=\"l-ver\""));
    /* nothing of the hostile strings survives as markup, and the identities are masked */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<img"));
    assert_null(strstr(html, "onerror=alert"));
    assert_null(strstr(html, "alert(1)"));
    assert_null(strstr(html, "carol"));
    assert_non_null(strstr(html, "uid=c***,ou=people,dc=x"));
    assert_non_null(strstr(html, "uid=&lt;***,ou=people,dc=x"));
    assert_non_null(strstr(html, "<td>***</td><td>uid=&lt;***,ou=people,dc=x</td>"));
    /* blocked run with its reason, the waves (one configured, not run), the curve */
    assert_non_null(strstr(html, "<td class=\"st-blocked\">blocked</td>"));
    assert_non_null(strstr(html, "41% fewer users than the last complete read "
                                 "&lt;max_shrink_percent 10&gt;"));
    assert_non_null(strstr(html, "Configured, not run yet: &lt;b&gt;later&lt;/b&gt;."));
    assert_non_null(strstr(html, "<td>pilot</td>"));
    assert_non_null(strstr(html, "users created with an imported hash"));
    assert_non_null(strstr(html, "100.0%"));
    {
        /* the page as a whole, apart from the endpoints in the header */
        char *hdr = strstr(html, "ldaps://");
        memset(hdr, 'x', strlen("ldaps://ldap.example.org &#8594; https://"));
        expect_sections(html);
    }
    free(html);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_html__page_without_journal),
        cmocka_unit_test(test_report_html__page_from_journal),
    };

    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
