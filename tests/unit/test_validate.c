#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "schema/validate.h"
#include "tests/unit/fixture.h"

/* A constraint from a JSON object of constraint keys. */
static void make_constraint(struct validate_constraint *c, const char *attr, const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    const char *k;
    json_t *v;
    char why[200];

    assert_non_null(o);
    memset(c, 0, sizeof(*c));
    c->attr = strdup(attr);
    json_object_foreach (o, k, v) {
        if (validate_constraint_set(c, k, v, why, sizeof(why)) != DM_OK) {
            fail_msg("%s: %s", k, why);
        }
    }
    json_decref(o);
}

/* Checks the NULL-terminated values (none: attribute missing) against json constraints;
 * returns the problem categories joined by ',' and checks no message quotes a value. */
static const char *check(const char *json, ...)
{
    static char cats[512];
    struct validate_constraint c;
    struct map_problem *pr = NULL;
    struct entry *e = entry_new("uid=x");
    size_t n = 0;
    const char *v;
    const char *vals[16];
    size_t nv = 0;
    va_list ap;

    assert_non_null(e);
    make_constraint(&c, "attr", json);
    va_start(ap, json);
    while ((v = va_arg(ap, const char *)) != NULL) {
        assert_int_equal(entry_add_str(e, "attr", v), DM_OK);
        vals[nv++] = v;
    }
    va_end(ap);
    assert_int_equal(validate_check_attr(&pr, &n, &c, entry_attr(e, "attr")), DM_OK);
    cats[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(cats, i ? "," : "", sizeof(cats) - strlen(cats) - 1);
        strncat(cats, pr[i].category, sizeof(cats) - strlen(cats) - 1);
        assert_string_equal(pr[i].attr, "attr");
        for (size_t j = 0; j < nv; j++) {
            if (strlen(vals[j]) >= 3 && strstr(pr[i].msg, vals[j]) != NULL) {
                fail_msg("problem message \"%s\" quotes the value", pr[i].msg);
            }
        }
    }
    free(pr);
    validate_constraint_clear(&c);
    entry_free(e);
    return cats;
}

static void test_validate__length_counts_characters_not_bytes(void **state)
{
    (void)state;
    assert_string_equal(check("{\"max_length\": 3}", "Zoë", NULL), "");
    assert_string_equal(check("{\"max_length\": 3}", "ëëë", NULL), "");
    assert_string_equal(check("{\"max_length\": 3}", "Zoëy", NULL), "too_long");
    assert_string_equal(check("{\"min_length\": 3}", "Zoë", NULL), "");
    assert_string_equal(check("{\"min_length\": 4}", "Zoë", NULL), "too_short");
    assert_string_equal(check("{\"max_length\": 2}", "日本", NULL), "");
    assert_string_equal(check("{\"min_length\": 1}", "", NULL), "too_short");
}

static void test_validate__utf8_byte_limit(void **state)
{
    (void)state;
    /* Okta: UTF-8 characters of up to 3 bytes only */
    assert_string_equal(check("{\"max_utf8_bytes_per_char\": 3}", "日本 Zoë", NULL), "");
    assert_string_equal(check("{\"max_utf8_bytes_per_char\": 3}", "smile \xf0\x9f\x98\x80", NULL),
                        "bad_chars");
    assert_string_equal(check("{\"max_length\": 10}", "smile \xf0\x9f\x98\x80", NULL), "");
    assert_string_equal(check("{\"max_length\": 10}", "bad \xc3", NULL), "bad_chars");
    assert_string_equal(check("{\"max_utf8_bytes_per_char\": 1}", "Zoë", NULL), "bad_chars");
}

static void test_validate__required_empty_and_missing(void **state)
{
    (void)state;
    assert_string_equal(check("{\"required\": true}", NULL), "missing_required");
    assert_string_equal(check("{\"required\": false}", NULL), "");
    assert_string_equal(check("{\"max_length\": 5}", NULL), "");
    assert_string_equal(check("{\"required\": true}", "x", NULL), "");
    /* binary values are fine when no constraint looks at them */
    assert_string_equal(check("{\"required\": true, \"unique\": true}", "\xff\xfe", NULL), "");
    assert_string_equal(check("{}", "\xff\xfe", NULL), "");
}

static void test_validate__multivalued_each_checked(void **state)
{
    struct validate_constraint c;
    struct map_problem *pr = NULL;
    struct entry *e = entry_new("uid=x");
    size_t n = 0;

    (void)state;
    assert_string_equal(check("{\"max_length\": 3}", "abc", "abcd", "x", "wxyz", NULL),
                        "too_long,too_long");
    make_constraint(&c, "attr", "{\"type\": \"integer\"}");
    assert_int_equal(entry_add_str(e, "attr", "1"), DM_OK);
    assert_int_equal(entry_add_str(e, "attr", "two"), DM_OK);
    assert_int_equal(validate_check_attr(&pr, &n, &c, entry_attr(e, "attr")), DM_OK);
    assert_int_equal(n, 1);
    assert_string_equal(pr[0].category, "wrong_type");
    assert_string_equal(pr[0].msg, "value 2: not a valid integer");
    free(pr);
    validate_constraint_clear(&c);
    entry_free(e);
}

static void test_validate__types(void **state)
{
    (void)state;
    assert_string_equal(check("{\"type\": \"integer\"}", "42", "-7", "+3", NULL), "");
    assert_string_equal(check("{\"type\": \"integer\"}", "4.2", NULL), "wrong_type");
    assert_string_equal(check("{\"type\": \"integer\"}", "12a", NULL), "wrong_type");
    assert_string_equal(check("{\"type\": \"boolean\"}", "true", "FALSE", NULL), "");
    assert_string_equal(check("{\"type\": \"boolean\"}", "yes", NULL), "wrong_type");
    assert_string_equal(check("{\"type\": \"date\"}", "2026-11-25", "2026-11-25T13:27:13Z",
                              "20261125132713.0Z", NULL),
                        "");
    assert_string_equal(check("{\"type\": \"date\"}", "2026-02-30", NULL), "wrong_type");
    assert_string_equal(check("{\"type\": \"email\"}", "ada@example.org", "a.b+c@x.co", NULL), "");
    assert_string_equal(check("{\"type\": \"email\"}", "ada", NULL), "invalid_email");
    assert_string_equal(check("{\"type\": \"email\"}", "a@@x.org", NULL), "invalid_email");
    assert_string_equal(check("{\"type\": \"email\"}", "a b@x.org", NULL), "invalid_email");
    assert_string_equal(check("{\"type\": \"email\"}", "ab@localhost", NULL), "invalid_email");
    assert_string_equal(check("{\"type\": \"email\"}", "a..b@x.org", NULL), "invalid_email");
    assert_string_equal(check("{\"type\": \"dn\"}", "uid=a,ou=people,dc=x", NULL), "");
    assert_string_equal(check("{\"type\": \"dn\"}", "not a dn", NULL), "wrong_type");
    assert_string_equal(check("{\"type\": \"string\"}", "anything", NULL), "");
}

static void test_validate__pattern_matches_whole_value(void **state)
{
    (void)state;
    assert_string_equal(check("{\"pattern\": \"[A-Z]{2}\"}", "DE", NULL), "");
    assert_string_equal(check("{\"pattern\": \"[A-Z]{2}\"}", "DEU", NULL), "pattern");
    assert_string_equal(check("{\"pattern\": \"a|b\"}", "b", NULL), "");
    assert_string_equal(check("{\"pattern\": \"a|b\"}", "ab", NULL), "pattern");
    assert_string_equal(check("{\"pattern\": \"[^/]+\", \"max_length\": 3}", "a/bcd", NULL),
                        "too_long,pattern");
}

static void test_validate__constraint_keys_rejected(void **state)
{
    struct validate_constraint c = {0};
    char why[200];
    json_t *v;

    (void)state;
    v = json_integer(0);
    assert_int_equal(validate_constraint_set(&c, "max_length", v, why, sizeof(why)), DM_EINVAL);
    assert_string_equal(why, "must be an integer >= 1 (characters)");
    json_decref(v);
    v = json_string("text");
    assert_int_equal(validate_constraint_set(&c, "type", v, why, sizeof(why)), DM_EINVAL);
    assert_string_equal(why, "must be one of string, integer, boolean, date, email, dn");
    assert_int_equal(validate_constraint_set(&c, "required", v, why, sizeof(why)), DM_EINVAL);
    assert_int_equal(validate_constraint_set(&c, "frob", v, why, sizeof(why)), DM_ENOTFOUND);
    json_decref(v);
    v = json_string("a(");
    assert_int_equal(validate_constraint_set(&c, "pattern", v, why, sizeof(why)), DM_EINVAL);
    assert_non_null(strstr(why, "bad regular expression \"a(\""));
    json_decref(v);
    v = json_integer(5);
    assert_int_equal(validate_constraint_set(&c, "max_utf8_bytes_per_char", v, why, sizeof(why)),
                     DM_EINVAL);
    json_decref(v);
    validate_constraint_clear(&c);
}

static void test_validate__profile_load(void **state)
{
    const char *top = fixture_srcdir();
    struct validate_profile *p = NULL;
    const struct validate_constraint *c;
    struct dm_err err = {0};
    char path[1024];
    const char *bad;

    (void)state;
    snprintf(path, sizeof(path), "%s/schema/profiles/okta-user.json", top);
    if (validate_profile_load(&p, path, &err) != DM_OK) {
        fail_msg("%s", err.msg);
    }
    c = validate_profile_find(p, "LOGIN");
    assert_non_null(c);
    assert_int_equal(c->type, TRANSFORM_T_EMAIL);
    assert_true(c->required && c->unique);
    assert_int_equal(c->min_length, 5);
    assert_int_equal(c->max_length, 100);
    assert_int_equal(c->max_utf8, 3); /* inherited from the profile */
    c = validate_profile_find(p, "firstName");
    assert_non_null(c);
    assert_int_equal(c->max_length, 50);
    assert_null(validate_profile_find(p, "nosuch"));
    validate_profile_free(p);
    p = NULL;
    snprintf(path, sizeof(path), "%s/schema/profiles/inetorgperson.json", top);
    assert_int_equal(validate_profile_load(&p, path, &err), DM_OK);
    validate_profile_free(p);
    p = NULL;
    snprintf(path, sizeof(path), "%s/schema/profiles/ad-user.json", top);
    assert_int_equal(validate_profile_load(&p, path, &err), DM_OK);
    validate_profile_free(p);
    p = NULL;

    bad = fixture_write_tmp("bad.json", "{\"attributes\": {\n  \"a\": {\"max_length\": 0}\n}}");
    assert_int_equal(validate_profile_load(&p, bad, &err), DM_EINVAL);
    snprintf(path, sizeof(path),
             "%s:2:9: attributes.a.max_length: must be an integer >= 1 "
             "(characters)",
             bad);
    assert_string_equal(err.msg, path);
    bad = fixture_write_tmp("bad.json", "{\"attributes\": {\"a\": {\"lenght\": 1}}}");
    assert_int_equal(validate_profile_load(&p, bad, &err), DM_EINVAL);
    assert_non_null(strstr(err.msg, ":1:23: attributes.a.lenght: unknown key"));
    bad = fixture_write_tmp("bad.json",
                            "{\"attributes\": {\"a\": {\"min_length\": 3, \"max_length\": 2}}}");
    assert_int_equal(validate_profile_load(&p, bad, &err), DM_EINVAL);
    assert_non_null(strstr(err.msg, "attributes.a: min_length is greater than max_length"));
    bad = fixture_write_tmp("bad.json", "{\"name\": \"x\"}");
    assert_int_equal(validate_profile_load(&p, bad, &err), DM_EINVAL);
    assert_non_null(strstr(err.msg, "needs \"attributes\""));
    assert_int_equal(validate_profile_load(&p, "/nonexistent/p.json", &err), DM_ENOTFOUND);
    assert_null(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate__length_counts_characters_not_bytes),
        cmocka_unit_test(test_validate__utf8_byte_limit),
        cmocka_unit_test(test_validate__required_empty_and_missing),
        cmocka_unit_test(test_validate__multivalued_each_checked),
        cmocka_unit_test(test_validate__types),
        cmocka_unit_test(test_validate__pattern_matches_whole_value),
        cmocka_unit_test(test_validate__constraint_keys_rejected),
        cmocka_unit_test(test_validate__profile_load),
    };

    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
