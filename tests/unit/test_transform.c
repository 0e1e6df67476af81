#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "schema/transform.h"
#include "schema/transform_ad.h"

/* Compiles a JSON array of steps, runs them over the NULL-terminated input strings and
 * returns the results joined by '|' (static buffer; "" for no values). */
static const char *run_chain(const char *steps_json, ...)
{
    static char res[2048];
    struct transform_vals a, b, c, *cur = &a, *nxt = &b, *tmp;
    json_error_t jerr;
    json_t *steps = json_loads(steps_json, 0, &jerr);
    size_t i;
    json_t *it;
    va_list ap;
    const char *s;

    if (steps == NULL) {
        fail_msg("bad test JSON %s: %s", steps_json, jerr.text);
    }
    transform_vals_init(&a);
    transform_vals_init(&b);
    va_start(ap, steps_json);
    while ((s = va_arg(ap, const char *)) != NULL) {
        assert_int_equal(transform_vals_add(cur, s, strlen(s)), DM_OK);
    }
    va_end(ap);
    /* the same input again in c, for the in-place path */
    transform_vals_init(&c);
    for (i = 0; i < cur->n; i++) {
        assert_int_equal(transform_vals_add(&c, cur->v[i].data, cur->v[i].len), DM_OK);
    }
    json_array_foreach (steps, i, it) {
        struct transform_step st;
        char why[256];
        int rc;

        if (transform_compile(&st, it, why, sizeof(why)) != DM_OK) {
            fail_msg("compile %s: %s", steps_json, why);
        }
        assert_int_equal(transform_run(nxt, &st, cur), DM_OK);
        /* in place when the step allows it, else through a scratch list */
        rc = transform_run_inplace(&c, &st);
        if (rc == DM_ENOTFOUND) {
            struct transform_vals d;

            transform_vals_init(&d);
            assert_int_equal(transform_run(&d, &st, &c), DM_OK);
            transform_vals_free(&c);
            c = d;
        } else {
            assert_int_equal(rc, DM_OK);
        }
        transform_clear(&st);
        tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
    res[0] = '\0';
    assert_int_equal(c.n, cur->n);
    for (i = 0; i < cur->n; i++) {
        assert_int_equal(strlen((const char *)cur->v[i].data), cur->v[i].len);
        assert_int_equal(c.v[i].len, cur->v[i].len);
        assert_memory_equal(c.v[i].data, cur->v[i].data, cur->v[i].len + 1);
        strncat(res, i ? "|" : "", sizeof(res) - strlen(res) - 1);
        strncat(res, (const char *)cur->v[i].data, sizeof(res) - strlen(res) - 1);
    }
    transform_vals_free(&a);
    transform_vals_free(&b);
    transform_vals_free(&c);
    json_decref(steps);
    return res;
}

/* Runs one step on one binary value; returns the single result (static). */
static const char *run_bin(const char *step, const unsigned char *in, size_t n)
{
    static char res[256];
    struct transform_vals a, b;
    struct transform_step st;
    json_t *j = json_string(step);
    char why[256];

    transform_vals_init(&a);
    transform_vals_init(&b);
    assert_int_equal(transform_compile(&st, j, why, sizeof(why)), DM_OK);
    assert_int_equal(transform_vals_add(&a, in, n), DM_OK);
    assert_int_equal(transform_run(&b, &st, &a), DM_OK);
    assert_int_equal(b.n, 1);
    snprintf(res, sizeof(res), "%s", (const char *)b.v[0].data);
    transform_clear(&st);
    transform_vals_free(&a);
    transform_vals_free(&b);
    json_decref(j);
    return res;
}

/* Expects compile of json to fail with a reason containing want. */
static void expect_compile_error(const char *json, const char *want)
{
    struct transform_step st;
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &jerr);
    char why[256] = "";

    assert_non_null(j);
    assert_int_equal(transform_compile(&st, j, why, sizeof(why)), DM_EINVAL);
    if (strstr(why, want) == NULL) {
        fail_msg("compile %s: \"%s\" lacks \"%s\"", json, why, want);
    }
    json_decref(j);
}

static void test_transform__trim_lower_upper(void **state)
{
    (void)state;
    assert_string_equal(run_chain("[\"trim\"]", "  a b \t\n", NULL), "a b");
    assert_string_equal(run_chain("[\"trim\"]", "   ", "x", NULL), "x"); /* empty dropped */
    assert_string_equal(run_chain("[\"lower\"]", "ÀDA@Example.ORG", NULL), "Àda@example.org");
    assert_string_equal(run_chain("[\"upper\"]", "zoë", NULL), "ZOë");
    assert_string_equal(run_chain("[\"trim\", \"upper\"]", " a ", " b", NULL), "A|B");
    assert_string_equal(run_chain("[\"lower\"]", NULL), "");
    /* empty input values never survive a step */
    assert_string_equal(run_chain("[\"upper\"]", "", "a", "", NULL), "A");
    assert_string_equal(run_chain("[\"all\"]", "", "a", NULL), "a");
    assert_string_equal(run_chain("[\"first\"]", "", "a", NULL), "");
    assert_string_equal(run_chain("[{\"default\": \"d\"}]", "", "a", NULL), "a");
}

static void test_transform__first_all(void **state)
{
    (void)state;
    assert_string_equal(run_chain("[\"first\"]", "a", "b", "c", NULL), "a");
    assert_string_equal(run_chain("[\"all\"]", "a", "b", NULL), "a|b");
    assert_string_equal(run_chain("[\"first\"]", NULL), "");
}

static void test_transform__email(void **state)
{
    (void)state;
    assert_string_equal(run_chain("[\"email\"]", "  Ada.Lovelace@Example.ORG ", NULL),
                        "Ada.Lovelace@example.org");
    assert_string_equal(run_chain("[\"email\"]", "mailto:<Bob@EXAMPLE.com>", NULL),
                        "Bob@example.com");
    assert_string_equal(run_chain("[\"email\"]", " <MAILTO: Eve@Example.COM> ", NULL),
                        "Eve@example.com");
    assert_string_equal(run_chain("[\"email\"]", "no-at-sign", NULL), "no-at-sign");
    assert_string_equal(run_chain("[\"email\", \"lower\"]", "A@B.C", NULL), "a@b.c");
    assert_string_equal(run_chain("[\"email\"]", "   ", NULL), "");
}

static void test_transform__guid_from_contract_bytes(void **state)
{
    static const unsigned char g[16] = {0x23, 0x8b, 0xee, 0x32, 0xaa, 0x34, 0x50, 0x40,
                                        0x9e, 0xed, 0xa9, 0xab, 0xe3, 0xf1, 0x17, 0x83};
    char out[37];

    (void)state;
    assert_int_equal(transform_guid_to_string(out, g, 16), DM_OK);
    assert_string_equal(out, "32ee8b23-34aa-4050-9eed-a9abe3f11783");
    assert_int_equal(transform_guid_to_string(out, g, 15), DM_EINVAL);
    assert_string_equal(run_bin("guid", g, 16), "32ee8b23-34aa-4050-9eed-a9abe3f11783");
    /* an already-converted value passes through */
    assert_string_equal(run_chain("[\"guid\"]", "32ee8b23-34aa-4050-9eed-a9abe3f11783", NULL),
                        "32ee8b23-34aa-4050-9eed-a9abe3f11783");
}

static void test_transform__sid_from_contract_bytes(void **state)
{
    static const unsigned char sid[] = {0x01, 0x05, 0,    0,    0,    0,    0,    0x05, 0x15, 0,
                                        0,    0,    0x4a, 0x13, 0x08, 0xa5, 0xd7, 0x8a, 0x21, 0x94,
                                        0x8d, 0xae, 0x41, 0xc5, 0x4f, 0x04, 0,    0};
    static const unsigned char big[] = {0x01, 0x01, 0x01, 0x02, 0x03, 0x04,
                                        0x05, 0x06, 0x20, 0,    0,    0};
    static const unsigned char world[] = {0x01, 0x01, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0};
    char out[192];

    (void)state;
    assert_int_equal(transform_sid_to_string(out, sizeof(out), sid, sizeof(sid)), DM_OK);
    assert_string_equal(out, "S-1-5-21-2768769866-2485226199-3309416077-1103");
    assert_string_equal(run_bin("sid", sid, sizeof(sid)),
                        "S-1-5-21-2768769866-2485226199-3309416077-1103");
    assert_int_equal(transform_sid_to_string(out, sizeof(out), big, sizeof(big)), DM_OK);
    assert_string_equal(out, "S-1-0x010203040506-32");
    assert_int_equal(transform_sid_to_string(out, sizeof(out), world, sizeof(world)), DM_OK);
    assert_string_equal(out, "S-1-1-0");
    /* wrong length for the count, bad revision, too small buffer */
    assert_int_equal(transform_sid_to_string(out, sizeof(out), sid, sizeof(sid) - 1), DM_EINVAL);
    assert_int_equal(transform_sid_to_string(out, sizeof(out), big + 1, 8), DM_EINVAL);
    assert_int_equal(transform_sid_to_string(out, 10, sid, sizeof(sid)), DM_EINVAL);
}

static void test_transform__filetime(void **state)
{
    int64_t t = 0;
    int never = 0;

    (void)state;
    /* AD: pwdLastSet 134400868331196390 -> 2026-11-25 13:27:13Z */
    assert_string_equal(run_chain("[\"filetime\"]", "134400868331196390", NULL),
                        "2026-11-25T13:27:13Z");
    assert_int_equal(transform_parse_filetime(&t, &never, "134400868331196390", 18), DM_OK);
    assert_int_equal(t, 1795613233);
    assert_int_equal(never, 0);
    /* 0 and 0x7FFFFFFFFFFFFFFF: never; no value, so a later default can name it */
    assert_int_equal(transform_parse_filetime(&t, &never, "0", 1), DM_OK);
    assert_int_equal(never, 1);
    assert_int_equal(transform_parse_filetime(&t, &never, "9223372036854775807", 19), DM_OK);
    assert_int_equal(never, 1);
    assert_string_equal(run_chain("[\"filetime\"]", "0", "9223372036854775807", NULL), "");
    assert_string_equal(run_chain("[\"filetime\", {\"default\": \"never\"}]", "0", NULL), "never");
    /* the 1601 epoch itself (1 tick) and the unix epoch */
    assert_string_equal(run_chain("[\"filetime\"]", "116444736000000000", NULL),
                        "1970-01-01T00:00:00Z");
    assert_string_equal(run_chain("[\"filetime\"]", "1", NULL), "1601-01-01T00:00:00Z");
    /* garbage passes through for the type check to report */
    assert_string_equal(run_chain("[\"filetime\"]", "12x", NULL), "12x");
    assert_int_equal(transform_parse_filetime(&t, &never, "-5", 2), DM_EINVAL);
    assert_int_equal(transform_parse_filetime(&t, &never, "99999999999999999999", 20), DM_EINVAL);
}

static void test_transform__generalized_time(void **state)
{
    int64_t t = 0;

    (void)state;
    assert_string_equal(run_chain("[\"generalized\"]", "20261125132713Z", NULL),
                        "2026-11-25T13:27:13Z");
    /* AD form with fraction */
    assert_string_equal(run_chain("[\"generalized\"]", "20261125132713.0Z", NULL),
                        "2026-11-25T13:27:13Z");
    assert_string_equal(run_chain("[\"generalized\"]", "20261125132713,123456Z", NULL),
                        "2026-11-25T13:27:13Z");
    /* offset: local 14:27 at +0100 is 13:27Z; minutes/seconds optional */
    assert_string_equal(run_chain("[\"generalized\"]", "20261125142713+0100", NULL),
                        "2026-11-25T13:27:13Z");
    assert_string_equal(run_chain("[\"generalized\"]", "20261125082713.5-0500", NULL),
                        "2026-11-25T13:27:13Z");
    assert_string_equal(run_chain("[\"generalized\"]", "2026112513Z", NULL),
                        "2026-11-25T13:00:00Z");
    assert_string_equal(run_chain("[\"generalized\"]", "202611251327-01", NULL),
                        "2026-11-25T14:27:00Z");
    /* offset crossing midnight and a leap day */
    assert_string_equal(run_chain("[\"generalized\"]", "20240229233000-0130", NULL),
                        "2024-03-01T01:00:00Z");
    assert_int_equal(transform_parse_generalized(&t, "20230229000000Z", 15), DM_EINVAL);
    assert_int_equal(transform_parse_generalized(&t, "20261125132713", 14), DM_EINVAL);
    assert_int_equal(transform_parse_generalized(&t, "20261325132713Z", 15), DM_EINVAL);
    assert_int_equal(transform_parse_generalized(&t, "20261125132713ZZ", 16), DM_EINVAL);
    assert_string_equal(run_chain("[\"generalized\"]", "yesterday", NULL), "yesterday");
}

static void test_transform__date_conversions(void **state)
{
    int64_t t = 0;

    (void)state;
    assert_string_equal(run_chain("[{\"date\": {\"from\": \"iso8601\", \"to\": \"generalized\"}}]",
                                  "2026-11-25T14:27:13+01:00", "2026-11-25",
                                  "2026-11-25t13:27:13.25z", NULL),
                        "20261125132713Z|20261125000000Z|20261125132713Z");
    assert_string_equal(run_chain("[{\"date\": {\"from\": \"generalized\", \"to\": \"date\"}}]",
                                  "20261125232713-0300", NULL),
                        "2026-11-26");
    assert_string_equal(run_chain("[{\"date\": {\"from\": \"unix\", \"to\": \"iso8601\"}}]",
                                  "1795613233", "0", "-86400", NULL),
                        "2026-11-25T13:27:13Z|1970-01-01T00:00:00Z|1969-12-31T00:00:00Z");
    assert_string_equal(run_chain("[{\"date\": {\"from\": \"filetime\", \"to\": \"unix\"}}]",
                                  "134400868331196390", "9223372036854775807", NULL),
                        "1795613233");
    assert_string_equal(run_chain("[{\"date\": {\"from\": \"iso8601\", \"to\": \"unix\"}}]",
                                  "2000-01-01T00:00:00Z", "not a date", NULL),
                        "946684800|not a date");
    assert_int_equal(transform_parse_iso8601(&t, "2026-11-25T13:27", 16), DM_OK);
    assert_int_equal(t, 1795613220);
    assert_int_equal(transform_parse_iso8601(&t, "2026-11-25T25:00:00Z", 20), DM_EINVAL);
    assert_int_equal(transform_parse_iso8601(&t, "2026-11-25X", 11), DM_EINVAL);
    assert_int_equal(transform_parse_iso8601(&t, "2026-11-25T13:27:13+0100", 24), DM_OK);
    assert_int_equal(t, 1795613233 - 3600);
    expect_compile_error("{\"date\": {\"from\": \"date\", \"to\": \"unix\"}}", "\"from\" must be");
    expect_compile_error("{\"date\": {\"from\": \"unix\", \"to\": \"filetime\"}}",
                         "\"to\" must be");
    expect_compile_error("{\"date\": {\"from\": \"unix\", \"to\": \"date\", \"tz\": 1}}",
                         "unknown option \"tz\"");
}

static void test_transform__regex_backrefs_and_global(void **state)
{
    (void)state;
    assert_string_equal(run_chain("[{\"regex\": {\"match\": \"^uid=([^,]+),ou=(\\\\w+).*$\", "
                                  "\"replace\": \"\\\\2/\\\\1\"}}]",
                                  "uid=ada,ou=people,dc=x", "cn=nomatch", NULL),
                        "people/ada|cn=nomatch");
    assert_string_equal(
        run_chain("[{\"regex\": {\"match\": \"[0-9]\", \"replace\": \"#\"}}]", "a1b22", NULL),
        "a#b22");
    assert_string_equal(run_chain("[{\"regex\": {\"match\": \"[0-9]\", \"replace\": \"#\", "
                                  "\"global\": true}}]",
                                  "a1b22", NULL),
                        "a#b##");
    /* \0 is the whole match; \\ is a backslash; an empty result drops the value */
    assert_string_equal(
        run_chain("[{\"regex\": {\"match\": \"b+\", \"replace\": \"<\\\\0\\\\\\\\>\"}}]", "abbc",
                  NULL),
        "a<bb\\>c");
    assert_string_equal(
        run_chain("[{\"regex\": {\"match\": \"^.*$\", \"replace\": \"\"}}]", "x", NULL), "");
    /* empty matches with global do not loop forever */
    assert_string_equal(run_chain("[{\"regex\": {\"match\": \"x*\", \"replace\": \"-\", "
                                  "\"global\": true}}]",
                                  "ab", NULL),
                        "-a-b-");
    /* UTF-8 passes through byte-exact */
    assert_string_equal(run_chain("[{\"regex\": {\"match\": \" +\", \"replace\": \".\", "
                                  "\"global\": true}}]",
                                  "Zoë  Ünal", NULL),
                        "Zoë.Ünal");
    expect_compile_error("{\"regex\": {\"match\": \"a(\", \"replace\": \"\"}}",
                         "bad regular expression \"a(\": ");
    expect_compile_error("{\"regex\": {\"match\": \"(a)\", \"replace\": \"\\\\2\"}}",
                         "refers to group \\2 but the expression has 1");
    expect_compile_error("{\"regex\": {\"match\": \"a\"}}", "must be strings");
    expect_compile_error("{\"regex\": \"a\"}", "must be an object");
}

/* The regex engine (PCRE2, JIT): match and group offsets, unset groups, a start offset
 * that "^" does not match at, characters in UTF-8, invalid UTF-8 subjects, whole-value
 * matching for constraints, errors with their offset. */
static void test_transform__regex_engine_pcre2(void **state)
{
    struct transform_regex rx;
    struct transform_regex_match pm[TRANSFORM_REGEX_GROUPS + 1];
    char why[256];
    const char *s;

    (void)state;
    assert_int_equal(transform_regex_compile(&rx, "^uid=([^,]+),(x)?.*$", 0, why, sizeof(why)),
                     DM_OK);
    assert_true(transform_regex_is_jit(&rx)); /* x86-64 and arm64 Debian builds have the JIT */
    assert_int_equal(transform_regex_ngroups(&rx), 2);
    s = "uid=ada,ou=x";
    assert_int_equal(transform_regex_exec(&rx, s, strlen(s), 0, 2, pm), 0);
    assert_int_equal(pm[0].so, 0);
    assert_int_equal(pm[0].eo, 12);
    assert_int_equal(pm[1].so, 4);
    assert_int_equal(pm[1].eo, 7);
    assert_int_equal(pm[2].so, -1); /* (x)? did not take part */
    assert_int_equal(transform_regex_exec(&rx, s, strlen(s), 1, 2, pm), 1); /* ^ at 1 */
    assert_int_equal(transform_regex_exec(&rx, "cn=x", 4, 0, 2, pm), 1);
    transform_regex_clear(&rx);

    /* leftmost-first alternation (POSIX would take the longest, "ab") */
    assert_int_equal(transform_regex_compile(&rx, "a|ab", 0, why, sizeof(why)), DM_OK);
    assert_int_equal(transform_regex_exec(&rx, "xab", 3, 0, 0, pm), 0);
    assert_int_equal(pm[0].so, 1);
    assert_int_equal(pm[0].eo, 2);
    transform_regex_clear(&rx);

    /* "." is one character of UTF-8; invalid bytes are matched around, not refused */
    assert_int_equal(transform_regex_compile(&rx, "^(.)", 0, why, sizeof(why)), DM_OK);
    assert_int_equal(transform_regex_exec(&rx, "\xc3\x89mile", 6, 0, 1, pm), 0);
    assert_int_equal(pm[1].eo, 2);
    transform_regex_clear(&rx);
    assert_int_equal(transform_regex_compile(&rx, "b+", 0, why, sizeof(why)), DM_OK);
    assert_int_equal(transform_regex_exec(&rx,
                                          "a\xff\x00"
                                          "bb",
                                          5, 0, 0, pm),
                     0);
    assert_int_equal(pm[0].so, 3);
    assert_int_equal(pm[0].eo, 5);
    transform_regex_clear(&rx);

    /* whole-value matching (the "pattern" constraint) */
    assert_int_equal(transform_regex_compile(&rx, "a|b", TRANSFORM_REGEX_WHOLE, why, sizeof(why)),
                     DM_OK);
    assert_int_equal(transform_regex_exec(&rx, "b", 1, 0, 0, pm), 0);
    assert_int_equal(transform_regex_exec(&rx, "ab", 2, 0, 0, pm), 1);
    assert_int_equal(transform_regex_exec(&rx, "a\n", 2, 0, 0, pm), 1); /* no $-before-\n */
    transform_regex_clear(&rx);

    /* more than 9 groups: the match and the first 9 are reported */
    assert_int_equal(
        transform_regex_compile(&rx, "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)", 0, why, sizeof(why)),
        DM_OK);
    assert_int_equal(transform_regex_ngroups(&rx), 11);
    assert_int_equal(transform_regex_exec(&rx, "abcdefghijk", 11, 0, 9, pm), 0);
    assert_int_equal(pm[9].so, 8);
    assert_int_equal(pm[0].eo, 11);
    transform_regex_clear(&rx);

    /* a bad pattern: a reason with the offset, nothing to free; clear is NULL-safe */
    assert_int_equal(transform_regex_compile(&rx, "a(", 0, why, sizeof(why)), DM_EINVAL);
    assert_non_null(strstr(why, "bad regular expression \"a(\": "));
    assert_non_null(strstr(why, "at offset 2"));
    transform_regex_clear(&rx);
    transform_regex_clear(NULL);
}

/* The regex transform with PCRE2 syntax: \d, characters not bytes, a global replace that
 * resumes inside one subject, a value that is not UTF-8. */
static void test_transform__regex_pcre2_syntax(void **state)
{
    (void)state;
    assert_string_equal(run_chain("[{\"regex\": {\"match\": \"\\\\D\", \"replace\": \"\", "
                                  "\"global\": true}}]",
                                  "+1 (555) 0100-42", NULL),
                        "1555010042");
    assert_string_equal(
        run_chain("[{\"regex\": {\"match\": \"^(.).*$\", \"replace\": \"\\\\1.\"}}]", "Émile",
                  NULL),
        "É.");
    /* "^" matches only at the start of the value, also in a global replace */
    assert_string_equal(run_chain("[{\"regex\": {\"match\": \"^a\", \"replace\": \"x\", "
                                  "\"global\": true}}]",
                                  "aaa", NULL),
                        "xaa");
    /* an empty match steps over a whole character */
    assert_string_equal(run_chain("[{\"regex\": {\"match\": \"x*\", \"replace\": \"-\", "
                                  "\"global\": true}}]",
                                  "ëa", NULL),
                        "-ë-a-");
    assert_string_equal(run_chain("[{\"regex\": {\"match\": \"(?i)^smtp:\", \"replace\": \"\"}}]",
                                  "SMTP:ada@example.org", "x\xff", NULL),
                        "ada@example.org|x\xff");
}

static void test_transform__split_join(void **state)
{
    (void)state;
    assert_string_equal(run_chain("[{\"split\": \",\"}]", "a,b,,c,", "d", NULL), "a|b|c|d");
    assert_string_equal(run_chain("[{\"split\": \", \"}]", "a, b,c", NULL), "a|b,c");
    assert_string_equal(run_chain("[{\"join\": \";\"}]", "a", "b", "c", NULL), "a;b;c");
    assert_string_equal(run_chain("[{\"join\": \";\"}]", NULL), "");
    assert_string_equal(
        run_chain("[{\"split\": \",\"}, \"trim\", {\"join\": \"+\"}]", " x , y", NULL), "x+y");
    expect_compile_error("{\"split\": \"\"}", "split: must be a non-empty string");
    expect_compile_error("{\"join\": 1}", "join: must be a string");
}

static void test_transform__lookup(void **state)
{
    (void)state;
    assert_string_equal(run_chain("[{\"lookup\": {\"table\": {\"a\": \"A\", \"b\": \"B\", "
                                  "\"c\": \"\"}}}]",
                                  "b", "zz", "a", "c", NULL),
                        "B|A");
    assert_string_equal(run_chain("[{\"lookup\": {\"table\": {\"a\": \"A\"}, \"default\": \"?\"}}]",
                                  "a", "zz", NULL),
                        "A|?");
    assert_string_equal(
        run_chain("[{\"lookup\": {\"table\": {\"a\": \"A\"}, \"keep\": true}}]", "a", "zz", NULL),
        "A|zz");
    assert_string_equal(run_chain("[{\"lookup\": {\"table\": {}}}]", "a", NULL), "");
    expect_compile_error("{\"lookup\": {\"table\": {\"a\": 1}}}", "must be a string");
    expect_compile_error("{\"lookup\": {\"tabel\": {}}}", "unknown option \"tabel\"");
    assert_string_equal(run_chain("[{\"lookup\": {\"table\": {\"Eng\": \"Engineering\"}, "
                                  "\"ignore_case\": true}}]",
                                  "ENG", "eng", "Ops", NULL),
                        "Engineering|Engineering");
    assert_string_equal(
        run_chain("[{\"lookup\": {\"table\": {\"Eng\": \"Engineering\"}}}]", "ENG", "Eng", NULL),
        "Engineering");
    expect_compile_error("{\"lookup\": {\"table\": {\"a\": \"1\", \"A\": \"2\"}, "
                         "\"ignore_case\": true}}",
                         "collide when case is ignored");
}

static void test_transform__default_step(void **state)
{
    (void)state;
    assert_string_equal(run_chain("[{\"default\": \"x\"}]", NULL), "x");
    assert_string_equal(run_chain("[{\"default\": \"x\"}]", "a", "b", NULL), "a|b");
    assert_string_equal(run_chain("[\"trim\", {\"default\": \"x\"}, \"upper\"]", "  ", NULL), "X");
}

static void test_transform__flag_bits(void **state)
{
    (void)state;
    /* userAccountControl: 512 enabled, 514 disabled (ACCOUNTDISABLE 0x2), 66048 enabled */
    assert_string_equal(
        run_chain("[{\"flag\": {\"bit\": 2, \"set\": \"false\", \"clear\": \"true\"}}]", "512",
                  "514", "66048", "66050", NULL),
        "true|false|true|false");
    assert_string_equal(run_chain("[{\"flag\": {\"mask\": 65536}}]", "66048", "512", NULL),
                        "true|false");
    assert_string_equal(run_chain("[{\"flag\": {\"bit\": 2}}]", "abc", NULL), "abc");
    expect_compile_error("{\"flag\": {\"bit\": 0}}", "positive integer");
    expect_compile_error("{\"flag\": {\"bit\": 2, \"set\": 1}}", "must be strings");
}

static void test_transform__output_types(void **state)
{
    static const struct {
        const char *json;
        enum transform_type t;
    } cases[] = {
        {"\"trim\"", TRANSFORM_T_ANY},
        {"\"filetime\"", TRANSFORM_T_DATE},
        {"\"generalized\"", TRANSFORM_T_DATE},
        {"\"guid\"", TRANSFORM_T_STRING},
        {"\"email\"", TRANSFORM_T_EMAIL},
        {"{\"flag\": {\"bit\": 2}}", TRANSFORM_T_BOOLEAN},
        {"{\"flag\": {\"bit\": 2, \"set\": \"1\", \"clear\": \"0\"}}", TRANSFORM_T_INTEGER},
        {"{\"flag\": {\"bit\": 2, \"set\": \"off\", \"clear\": \"on\"}}", TRANSFORM_T_STRING},
        {"{\"date\": {\"from\": \"filetime\", \"to\": \"unix\"}}", TRANSFORM_T_INTEGER},
        {"{\"date\": {\"from\": \"unix\", \"to\": \"date\"}}", TRANSFORM_T_DATE},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct transform_step st;
        json_t *j = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        char why[200];

        assert_non_null(j);
        assert_int_equal(transform_compile(&st, j, why, sizeof(why)), DM_OK);
        assert_int_equal(transform_output_type(&st), cases[i].t);
        transform_clear(&st);
        json_decref(j);
    }
    assert_string_equal(transform_type_name(TRANSFORM_T_BOOLEAN), "boolean");
}

static void test_transform__unknown_and_malformed_steps(void **state)
{
    (void)state;
    expect_compile_error("\"lowr\"", "unknown transform \"lowr\"");
    expect_compile_error("\"regex\"", "transform \"regex\" needs an argument");
    expect_compile_error("{\"frobnicate\": 1}", "unknown transform \"frobnicate\"");
    expect_compile_error("{\"split\": \",\", \"join\": \";\"}", "object with one key");
    expect_compile_error("7", "must be a transform name");
}

static void test_transform__utf8_lengths(void **state)
{
    size_t n = 0;
    int mb = 0;

    (void)state;
    assert_int_equal(transform_utf8_len(&n, &mb, "Zoë", strlen("Zoë")), 0);
    assert_int_equal(n, 3);
    assert_int_equal(mb, 2);
    assert_int_equal(transform_utf8_len(&n, &mb, "日本", strlen("日本")), 0);
    assert_int_equal(n, 2);
    assert_int_equal(mb, 3);
    assert_int_equal(transform_utf8_len(&n, &mb, "a\xf0\x9f\x98\x80", 5), 0); /* U+1F600 */
    assert_int_equal(n, 2);
    assert_int_equal(mb, 4);
    assert_int_equal(transform_utf8_len(&n, &mb, "", 0), 0);
    assert_int_equal(n, 0);
    assert_int_equal(mb, 0);
    assert_int_equal(transform_utf8_len(&n, &mb, "\xc3", 1), -1);         /* truncated */
    assert_int_equal(transform_utf8_len(&n, &mb, "\xc0\xaf", 2), -1);     /* overlong */
    assert_int_equal(transform_utf8_len(&n, &mb, "\xed\xa0\x80", 3), -1); /* surrogate */
    assert_int_equal(transform_utf8_len(&n, &mb, "\xf4\x90\x80\x80", 4), -1);
    assert_int_equal(transform_utf8_len(&n, &mb, "\xff", 1), -1);
}

static void test_transform__time_format(void **state)
{
    char out[48];

    (void)state;
    transform_format_time(out, sizeof(out), 1795613233, TRANSFORM_DATE_GENERALIZED);
    assert_string_equal(out, "20261125132713Z");
    transform_format_time(out, sizeof(out), 946684800, TRANSFORM_DATE_FILETIME);
    assert_string_equal(out, "125911584000000000");
    transform_format_time(out, sizeof(out), -1, TRANSFORM_DATE_ISO8601);
    assert_string_equal(out, "1969-12-31T23:59:59Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transform__trim_lower_upper),
        cmocka_unit_test(test_transform__first_all),
        cmocka_unit_test(test_transform__email),
        cmocka_unit_test(test_transform__guid_from_contract_bytes),
        cmocka_unit_test(test_transform__sid_from_contract_bytes),
        cmocka_unit_test(test_transform__filetime),
        cmocka_unit_test(test_transform__generalized_time),
        cmocka_unit_test(test_transform__date_conversions),
        cmocka_unit_test(test_transform__regex_backrefs_and_global),
        cmocka_unit_test(test_transform__regex_engine_pcre2),
        cmocka_unit_test(test_transform__regex_pcre2_syntax),
        cmocka_unit_test(test_transform__split_join),
        cmocka_unit_test(test_transform__lookup),
        cmocka_unit_test(test_transform__default_step),
        cmocka_unit_test(test_transform__flag_bits),
        cmocka_unit_test(test_transform__output_types),
        cmocka_unit_test(test_transform__unknown_and_malformed_steps),
        cmocka_unit_test(test_transform__utf8_lengths),
        cmocka_unit_test(test_transform__time_format),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
