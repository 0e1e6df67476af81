#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "agent/util/arena.h"
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "agent/util/html.h"
#include "agent/util/jsonpos.h"
#include "agent/util/secret.h"
#include "agent/util/suggest.h"
#include "agent/util/datadir.h"
#include "tests/unit/fixture.h"

/* ---- fixtures: a private temp dir per test ---- */

/* ---- err ---- */

static void test_util__every_code_has_a_string(void **state)
{
    (void)state;
    for (int rc = 0; rc < DM__LAST; rc++) {
        assert_string_not_equal(dm_strerror(rc), "unknown error");
        assert_string_not_equal(dm_rc_category(rc), "unknown");
    }
    assert_string_equal(dm_strerror(DM__LAST), "unknown error");
    assert_string_equal(dm_strerror(-1), "unknown error");
}

static void test_util__err_set_keeps_dn(void **state)
{
    struct dm_err e = {0};
    char buf[512];

    (void)state;
    dm_err_dn(&e, "uid=a,dc=example,dc=org");
    assert_int_equal(dm_err_set(&e, DM_ESCHEMA, "bad %s", "thing"), DM_ESCHEMA);
    assert_int_equal(e.rc, DM_ESCHEMA);
    assert_string_equal(e.msg, "bad thing");
    assert_string_equal(e.dn, "uid=a,dc=example,dc=org");
    dm_err_format(&e, buf, sizeof(buf));
    assert_non_null(strstr(buf, "uid=a,dc=example,dc=org"));
    assert_int_equal(dm_err_set(NULL, DM_EINVAL, "x"), DM_EINVAL);
}

/* ---- buf ---- */

static void test_util__buf_cap_gives_elimit(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "0123456789"), DM_OK);
    assert_int_equal(b.len, 10);
    assert_int_equal(buf_puts(&b, "x"), DM_ELIMIT);
    assert_int_equal(buf_printf(&b, "%d", 1), DM_ELIMIT);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    buf_free(&b);
}

static void test_util__buf_printf_appends(void **state)
{
    struct buf b;
    char *s;

    (void)state;
    buf_init(&b, 0);
    assert_int_equal(buf_printf(&b, "%s=%d", "a", 1), DM_OK);
    assert_int_equal(buf_puts(&b, ";"), DM_OK);
    assert_string_equal(b.data, "a=1;");
    s = buf_steal(&b);
    assert_string_equal(s, "a=1;");
    assert_null(b.data);
    free(s);
}

/* ---- secret ---- */

static void test_util__secret_file_0644_refused(void **state)
{
    struct secret *s = NULL;
    struct dm_err e = {0};
    char path[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/pw", fixture_tmpdir());
    fixture_write(path, "hunter2\n", 0644);
    assert_int_equal(secret_load(&s, path, NULL, &e), DM_EINVAL);
    assert_null(s);
    assert_non_null(strstr(e.msg, "group or others"));
    assert_null(strstr(e.msg, "hunter2"));
}

static void test_util__secret_file_0600_accepted(void **state)
{
    struct secret *s = NULL;
    struct dm_err e = {0};
    char path[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/pw", fixture_tmpdir());
    fixture_write(path, "hunter2\n", 0600);
    assert_int_equal(secret_load(&s, path, NULL, &e), DM_OK);
    assert_string_equal(secret_reveal(s), "hunter2"); /* trailing newline dropped */
    assert_int_equal(secret_len(s), 7);
    secret_free(s);
}

static void test_util__secret_keeps_inner_newline(void **state)
{
    struct secret *s = NULL;
    struct dm_err e = {0};
    char path[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/pw", fixture_tmpdir());
    fixture_write(path, "a\nb", 0400);
    assert_int_equal(secret_load(&s, path, NULL, &e), DM_OK);
    assert_int_equal(secret_len(s), 3);
    secret_free(s);
}

static void test_util__secret_from_env(void **state)
{
    struct secret *s = NULL;
    struct dm_err e = {0};

    (void)state;
    assert_int_equal(setenv("DM_TEST_UTIL_PW", "s3cret", 1), 0);
    assert_int_equal(secret_load(&s, NULL, "DM_TEST_UTIL_PW", &e), DM_OK);
    assert_string_equal(secret_reveal(s), "s3cret");
    secret_free(s);
    unsetenv("DM_TEST_UTIL_PW");
    assert_int_equal(secret_load(&s, NULL, "DM_TEST_UTIL_PW", &e), DM_EINVAL);
}

static void test_util__secret_empty_refused(void **state)
{
    struct secret *s = NULL;
    struct dm_err e = {0};
    char path[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/pw", fixture_tmpdir());
    fixture_write(path, "\n", 0600);
    assert_int_equal(secret_load(&s, path, NULL, &e), DM_EINVAL);
    assert_int_equal(setenv("DM_TEST_UTIL_PW", "", 1), 0);
    assert_int_equal(secret_load(&s, NULL, "DM_TEST_UTIL_PW", &e), DM_EINVAL);
    unsetenv("DM_TEST_UTIL_PW");
    assert_int_equal(secret_from_mem(&s, "", 0, &e), DM_EINVAL);
    assert_null(s);
}

static void test_util__secret_equal(void **state)
{
    struct secret *s = NULL;
    struct dm_err e = {0};

    (void)state;
    assert_int_equal(secret_from_mem(&s, "abc", 3, &e), DM_OK);
    assert_int_equal(secret_equal(s, "abc", 3), 1);
    assert_int_equal(secret_equal(s, "abd", 3), 0);
    assert_int_equal(secret_equal(s, "ab", 2), 0);
    assert_int_equal(secret_equal(s, "abcd", 4), 0);
    assert_int_equal(secret_equal(s, "abc\0", 4), 0);
    secret_free(s);
    secret_free(NULL);
}

/* ---- jsonpos ---- */

static void assert_pos(const struct jsonpos *jp, const char *path, int want_line, int want_col)
{
    int line = 0, col = 0;

    if (jsonpos_find(jp, path, &line, &col) != 0) {
        fail_msg("path %s not found", path);
    }
    if (line != want_line || col != want_col) {
        fail_msg("path %s at %d:%d, want %d:%d", path, line, col, want_line, want_col);
    }
}

static void test_util__jsonpos_nested(void **state)
{
    const char *text = "{\n"
                       "    \"source\": {\n"
                       "        \"uri\": \"ldap://x\",\n"
                       "        \"tls\": { \"verify\": true }\n"
                       "    },\n"
                       "    \"waves\": [\n"
                       "        { \"filter\": \"(a=1)\" },\n"
                       "        { \"filter\": \"(b=\\\"2\\\\)\", \"n\": -1.5e3 },\n"
                       "        [1, null, false]\n"
                       "    ]\n"
                       "}\n";
    struct jsonpos *jp = NULL;
    struct dm_err e = {0};
    int line, col;

    (void)state;
    assert_int_equal(jsonpos_build(&jp, text, strlen(text), &e), DM_OK);
    assert_pos(jp, "", 1, 1);
    assert_pos(jp, "source", 2, 5);
    assert_pos(jp, "source.uri", 3, 9);
    assert_pos(jp, "source.tls", 4, 9);
    assert_pos(jp, "source.tls.verify", 4, 18);
    assert_pos(jp, "waves", 6, 5);
    assert_pos(jp, "waves[0]", 7, 9);
    assert_pos(jp, "waves[0].filter", 7, 11);
    assert_pos(jp, "waves[1].filter", 8, 11);
    assert_pos(jp, "waves[1].n", 8, 34);
    assert_pos(jp, "waves[2]", 9, 9);
    assert_pos(jp, "waves[2][1]", 9, 13);
    assert_pos(jp, "waves[2][2]", 9, 19);
    /* missing: nearest parent */
    assert_int_equal(jsonpos_find(jp, "source.page_size", &line, &col), -1);
    assert_int_equal(line, 2);
    assert_int_equal(col, 5);
    assert_int_equal(jsonpos_find(jp, "waves[1].x.y", &line, &col), -1);
    assert_int_equal(line, 8);
    assert_int_equal(col, 9);
    assert_int_equal(jsonpos_find(jp, "nothing", &line, &col), -1);
    assert_int_equal(line, 1);
    assert_int_equal(col, 1);
    jsonpos_free(jp);
}

static void test_util__jsonpos_crlf(void **state)
{
    const char *text = "{\r\n  \"a\": 1,\r\n  \"b\": {\r\n    \"c\": \"x\"\r\n  }\r\n}\r\n";
    struct jsonpos *jp = NULL;
    struct dm_err e = {0};

    (void)state;
    assert_int_equal(jsonpos_build(&jp, text, strlen(text), &e), DM_OK);
    assert_pos(jp, "a", 2, 3);
    assert_pos(jp, "b", 3, 3);
    assert_pos(jp, "b.c", 4, 5);
    jsonpos_free(jp);
}

static void test_util__jsonpos_escaped_keys(void **state)
{
    const char *text =
        "{\"a\\\"b\": 1, \"\\u00e9t\\u00e9\": {\"x\\\\y\": 2}, \"q\": \"\\ud83d\\ude00\"}";
    struct jsonpos *jp = NULL;
    struct dm_err e = {0};

    (void)state;
    assert_int_equal(jsonpos_build(&jp, text, strlen(text), &e), DM_OK);
    assert_pos(jp, "a\"b", 1, 2);
    assert_pos(jp, "\xc3\xa9t\xc3\xa9", 1, 13);
    assert_pos(jp, "\xc3\xa9t\xc3\xa9.x\\y", 1, 31);
    assert_pos(jp, "q", 1, 43);
    jsonpos_free(jp);
}

static void test_util__jsonpos_syntax_error(void **state)
{
    const char *text = "{\n  \"a\": [1, 2\n}";
    struct jsonpos *jp = NULL;
    struct dm_err e = {0};

    (void)state;
    assert_int_equal(jsonpos_build(&jp, text, strlen(text), &e), DM_EINVAL);
    assert_null(jp);
    assert_non_null(strstr(e.msg, "3:1"));
    jsonpos_free(NULL);
}

/* html_escape(s) as a new string. */
static char *escaped(const char *s)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    assert_non_null(f);
    html_escape(f, s);
    fclose(f);
    return out;
}

static void expect_escape(const char *in, const char *want)
{
    char *got = escaped(in);

    assert_string_equal(got, want);
    free(got);
}

static void test_util__html_escape(void **state)
{
    (void)state;
    expect_escape("plain", "plain");
    expect_escape("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;");
    expect_escape("a&b \"q\" 'x'", "a&amp;b &quot;q&quot; &#39;x&#39;");
    expect_escape("\xc3\xa9mile \xe2\x82\xac \xf0\x9f\x98\x80", "\xc3\xa9mile \xe2\x82\xac "
                                                                "\xf0\x9f\x98\x80");
    /* invalid UTF-8: a lone continuation byte, an overlong '<', a surrogate, a cut sequence */
    expect_escape("a\x80z", "a\xef\xbf\xbdz");
    expect_escape("\xc0\xbc", "\xef\xbf\xbd\xef\xbf\xbd");
    expect_escape("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    expect_escape("x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd");
    /* control characters and a right-to-left override */
    expect_escape("a\x01\x1b[31mb\x7f", "a\xef\xbf\xbd\xef\xbf\xbd[31mb\xef\xbf\xbd");
    expect_escape("tab\tnl\n", "tab\tnl\n");
    expect_escape("evil\xe2\x80\xaetxt.exe", "evil\xef\xbf\xbdtxt.exe");
    expect_escape(NULL, "");
}

/* "did you mean": typos, swaps and prefixes find the key; far-off words find nothing. */
static void test_util__suggest_closest(void **state)
{
    static const char *const keys[] = {"uri",      "base",         "page_size",
                                       "bind_dn",  "bind_pw_file", "tls",
                                       "starttls", NULL,           "verify-target"};
    const size_t n = sizeof(keys) / sizeof(keys[0]);

    (void)state;
    assert_int_equal(suggest_distance("pgae_size", "page_size"), 1);
    assert_int_equal(suggest_distance("URL", "uri"), 1);
    assert_int_equal(suggest_distance("", "abc"), 3);
    assert_string_equal(suggest_closest("pgae_size", keys, n), "page_size");
    assert_string_equal(suggest_closest("url", keys, n), "uri");
    assert_null(suggest_closest("BASE", keys, n)); /* the same word: nothing to suggest */
    assert_string_equal(suggest_closest("bind_pw", keys, n), "bind_pw_file");
    assert_string_equal(suggest_closest("verify", keys, n), "verify-target");
    assert_string_equal(suggest_closest("start_tls", keys, n), "starttls");
    assert_null(suggest_closest("colour", keys, n));
    assert_null(suggest_closest("", keys, n));
    assert_null(suggest_closest("x", keys, 0));
}

/* The data directory: $DIRMIG_DATADIR first; datadir_find() only returns files that exist. */
static void test_util__datadir(void **state)
{
    char buf[512], want[512];
    char *p;

    (void)state;
    snprintf(want, sizeof(want), "%s/schema", fixture_srcdir());
    assert_int_equal(setenv("DIRMIG_DATADIR", want, 1), 0);
    assert_string_equal(datadir_get(buf, sizeof(buf)), want);
    p = datadir_find("maps/ad-to-okta.json");
    assert_non_null(p);
    assert_int_equal(access(p, R_OK), 0);
    free(p);
    assert_null(datadir_find("maps/no-such-map.json"));
    assert_null(datadir_find("/etc/passwd"));
    assert_int_equal(setenv("DIRMIG_DATADIR", "/nonexistent/", 1), 0);
    assert_string_equal(datadir_get(buf, sizeof(buf)), "/nonexistent");
    unsetenv("DIRMIG_DATADIR");
    /* a test program has no .dirmig-uninstalled beside it: the installed directory */
    assert_string_equal(datadir_get(buf, sizeof(buf)), PKGDATADIR);
}

/* The arena: aligned pieces, in-place growth of the newest piece and of a big piece, a
 * first region used before malloc(), reset keeps it. */
static void test_util__arena(void **state)
{
    unsigned char first[512];
    struct arena a;
    unsigned char *p, *q, *big;

    (void)state;
    arena_init(&a, first, sizeof(first));
    p = arena_alloc(&a, 10);
    assert_non_null(p);
    assert_true(p >= first && p < first + sizeof(first));
    assert_int_equal((uintptr_t)p % ARENA_ALIGN, 0);
    memcpy(p, "0123456789", 10);
    q = arena_grow(&a, p, 10, 100); /* newest piece: grows in place */
    assert_ptr_equal(q, p);
    q = arena_alloc(&a, 1);
    assert_non_null(q);
    assert_int_equal((uintptr_t)q % ARENA_ALIGN, 0);
    p = arena_grow(&a, p, 100, 1000); /* not the newest any more: moved, content kept */
    assert_non_null(p);
    assert_memory_equal(p, "0123456789", 10);
    assert_true(arena_heap_bytes(&a) > 0);
    big = arena_alloc(&a, 100000);
    assert_non_null(big);
    memset(big, 7, 100000);
    big = arena_grow(&a, big, 100000, 1000000);
    assert_non_null(big);
    assert_int_equal(big[99999], 7);
    for (int i = 0; i < 1000; i++) {
        assert_non_null(arena_memdup(&a, "abc", 3));
    }
    assert_string_equal(arena_memdup(&a, "abc", 3), "abc");
    arena_reset(&a);
    assert_int_equal(arena_heap_bytes(&a), 0);
    p = arena_alloc(&a, 8);
    assert_true(p >= first && p < first + sizeof(first));
    assert_non_null(arena_alloc(&a, 0));
    arena_clear(&a);
    arena_init(&a, NULL, 0); /* no first region */
    assert_non_null(arena_alloc(&a, 0));
    assert_null(arena_alloc(&a, ARENA_MAX_PIECE + 1));
    arena_clear(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_util__every_code_has_a_string),
        cmocka_unit_test(test_util__suggest_closest),
        cmocka_unit_test(test_util__datadir),
        cmocka_unit_test(test_util__err_set_keeps_dn),
        cmocka_unit_test(test_util__buf_cap_gives_elimit),
        cmocka_unit_test(test_util__arena),
        cmocka_unit_test(test_util__buf_printf_appends),
        cmocka_unit_test(test_util__secret_file_0644_refused),
        cmocka_unit_test(test_util__secret_file_0600_accepted),
        cmocka_unit_test(test_util__secret_keeps_inner_newline),
        cmocka_unit_test(test_util__secret_from_env),
        cmocka_unit_test(test_util__secret_empty_refused),
        cmocka_unit_test(test_util__secret_equal),
        cmocka_unit_test(test_util__jsonpos_nested),
        cmocka_unit_test(test_util__jsonpos_crlf),
        cmocka_unit_test(test_util__jsonpos_escaped_keys),
        cmocka_unit_test(test_util__jsonpos_syntax_error),
        cmocka_unit_test(test_util__html_escape),
    };

    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
