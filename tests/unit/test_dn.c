#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "schema/dn.h"

/* Asserts that s normalizes to want. */
static void check_norm(const char *s, const char *want)
{
    struct dm_err err = {0};
    char *out = NULL;

    assert_int_equal(dn_normalize(&out, s, &err), DM_OK);
    assert_string_equal(out, want);
    free(out);
}

/* Asserts that s is malformed and the message names offset off. */
static void check_bad(const char *s, size_t off, const char *what)
{
    struct dm_err err = {0};
    struct dn *d = NULL;
    char want[64];

    assert_int_equal(dn_parse(&d, s, &err), DM_EINVAL);
    assert_null(d);
    snprintf(want, sizeof(want), "at offset %zu", off);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, what));
}

static void check_rebase(const char *dn, const char *from, const char *to, const char *want)
{
    struct dm_err err = {0};
    char *out = NULL;

    assert_int_equal(dn_rebase(&out, dn, from, to, &err), DM_OK);
    assert_string_equal(out, want);
    free(out);
}

static void test_dn__parse_simple(void **state)
{
    struct dm_err err = {0};
    struct dn *d = NULL;

    (void)state;
    assert_int_equal(dn_parse(&d, "uid=ada,ou=People,dc=example,dc=org", &err), DM_OK);
    assert_int_equal(d->nrdns, 4);
    assert_string_equal(d->rdns[0].avas[0].type, "uid");
    assert_string_equal(d->rdns[0].avas[0].value, "ada");
    assert_string_equal(d->rdns[1].avas[0].type, "ou");
    assert_string_equal(d->rdns[1].avas[0].value, "People");
    assert_int_equal(d->rdns[1].start, 8);
    assert_int_equal(d->rdns[1].end, 17);
    dn_free(d);
}

static void test_dn__parse_root(void **state)
{
    struct dm_err err = {0};
    struct dn *d = NULL;

    (void)state;
    assert_int_equal(dn_parse(&d, "", &err), DM_OK);
    assert_int_equal(d->nrdns, 0);
    dn_free(d);
    dn_free(NULL);
}

static void test_dn__parse_escaped_comma_and_multivalued(void **state)
{
    struct dm_err err = {0};
    struct dn *d = NULL;

    (void)state;
    assert_int_equal(dn_parse(&d, "cn=Doe\\, Jane+uid=jd,ou=People,dc=src", &err), DM_OK);
    assert_int_equal(d->nrdns, 3);
    assert_int_equal(d->rdns[0].navas, 2);
    assert_string_equal(d->rdns[0].avas[0].type, "cn");
    assert_string_equal(d->rdns[0].avas[0].value, "Doe, Jane");
    assert_string_equal(d->rdns[0].avas[1].type, "uid");
    assert_string_equal(d->rdns[0].avas[1].value, "jd");
    assert_int_equal(d->rdns[0].start, 0);
    assert_int_equal(d->rdns[0].end, 20);
    dn_free(d);
}

static void test_dn__parse_all_escapes(void **state)
{
    struct dm_err err = {0};
    struct dn *d = NULL;

    (void)state;
    assert_int_equal(dn_parse(&d, "cn=a\\,b\\+c\\\\d\\\"e\\;f\\<g\\>h\\=i\\#j\\ k,dc=x", &err),
                     DM_OK);
    assert_string_equal(d->rdns[0].avas[0].value, "a,b+c\\d\"e;f<g>h=i#j k");
    dn_free(d);
}

static void test_dn__parse_hex_escapes(void **state)
{
    struct dm_err err = {0};
    struct dn *d = NULL;

    (void)state;
    /* \C3\A9 is UTF-8 e-acute; \00 an embedded NUL; \2c a comma */
    assert_int_equal(dn_parse(&d, "cn=Ren\\C3\\a9\\2c x\\00y,dc=x", &err), DM_OK);
    assert_int_equal(d->rdns[0].avas[0].value_len, 10);
    assert_memory_equal(d->rdns[0].avas[0].value, "Ren\xc3\xa9, x\0y", 10);
    dn_free(d);
}

static void test_dn__parse_utf8_kept(void **state)
{
    struct dm_err err = {0};
    struct dn *d = NULL;

    (void)state;
    assert_int_equal(
        dn_parse(&d, "cn=J\xc3\xbcrgen M\xc3\xbcller,o=\xe6\x97\xa5\xe6\x9c\xac", &err), DM_OK);
    assert_string_equal(d->rdns[0].avas[0].value, "J\xc3\xbcrgen M\xc3\xbcller");
    assert_string_equal(d->rdns[1].avas[0].value, "\xe6\x97\xa5\xe6\x9c\xac");
    dn_free(d);
    check_norm("CN=J\xc3\x9cRGEN,O=X", "cn=j\xc3\x9crgen,o=x");
    check_rebase("cn=J\xc3\xbcrgen,dc=src", "dc=src", "dc=dst", "cn=J\xc3\xbcrgen,dc=dst");
}

static void test_dn__parse_ber_value(void **state)
{
    struct dm_err err = {0};
    struct dn *d = NULL;

    (void)state;
    assert_int_equal(dn_parse(&d, "1.3.6.1.4.1.1466.0=#04024869,dc=x", &err), DM_OK);
    assert_string_equal(d->rdns[0].avas[0].type, "1.3.6.1.4.1.1466.0");
    assert_string_equal(d->rdns[0].avas[0].value, "#04024869");
    dn_free(d);
    check_norm("1.3.6.1.4.1.1466.0=#04024A69,DC=X", "1.3.6.1.4.1.1466.0=#04024a69,dc=x");
    /* an escaped '#' is a literal value and stays escaped */
    check_norm("cn=\\#04,dc=x", "cn=\\#04,dc=x");
}

static void test_dn__parse_spaces_tolerated(void **state)
{
    struct dm_err err = {0};
    struct dn *d = NULL;

    (void)state;
    assert_int_equal(dn_parse(&d, " cn = Ada Lovelace , ou=People,  dc = x ", &err), DM_OK);
    assert_int_equal(d->nrdns, 3);
    assert_string_equal(d->rdns[0].avas[0].type, "cn");
    assert_string_equal(d->rdns[0].avas[0].value, "Ada Lovelace");
    assert_string_equal(d->rdns[2].avas[0].value, "x");
    dn_free(d);
    /* an escaped trailing space is significant */
    assert_int_equal(dn_parse(&d, "cn=a\\ ,dc=x", &err), DM_OK);
    assert_string_equal(d->rdns[0].avas[0].value, "a ");
    dn_free(d);
    /* empty value is allowed */
    assert_int_equal(dn_parse(&d, "cn=,dc=x", &err), DM_OK);
    assert_int_equal(d->rdns[0].avas[0].value_len, 0);
    dn_free(d);
}

static void test_dn__parse_errors_name_offset(void **state)
{
    (void)state;
    check_bad("cn=abc\\", 6, "unterminated escape");
    check_bad("cn=a\\zb", 4, "invalid escape");
    check_bad("cn=a\\4", 4, "bad hex escape");
    check_bad("cn=a\\4g", 4, "bad hex escape");
    check_bad("cn=a,dc", 7, "missing '='");
    check_bad("cn=a,=x", 5, "empty attribute type");
    check_bad("cn=a,dc=x,", 9, "trailing ','");
    check_bad("cn=a,,dc=x", 5, "empty attribute type");
    check_bad("cn=a+,dc=x", 5, "empty attribute type");
    check_bad("cn=#0g", 5, "bad hex string");
    check_bad("cn=#123", 7, "bad hex string");
    check_bad("c_n=x", 1, "missing '='");
    check_bad("(cn)=x", 0, "invalid character");
}

static void test_dn__normalize(void **state)
{
    (void)state;
    check_norm("UID=Ada,OU=People,DC=Example,DC=ORG", "uid=ada,ou=people,dc=example,dc=org");
    check_norm("cn=Doe\\, Jane+uid=JD,ou=People", "cn=doe\\, jane+uid=jd,ou=people");
    /* AVAs of a multi-valued RDN are sorted */
    check_norm("uid=JD+cn=Doe\\2C Jane,ou=People", "cn=doe\\, jane+uid=jd,ou=people");
    check_norm("cn = a ,  dc=x", "cn=a,dc=x");
    check_norm("cn=\\ a\\ ,dc=x", "cn=a,dc=x");
    check_norm("cn=a\\00b", "cn=a\\00b");
    check_norm("", "");
}

static void test_dn__normalize_equal_forms(void **state)
{
    struct dm_err err = {0};
    char *a = NULL, *b = NULL;

    (void)state;
    assert_int_equal(dn_normalize(&a, "cn=A\\2Bb,dc=X", &err), DM_OK);
    assert_int_equal(dn_normalize(&b, "CN = a\\+B , DC=x", &err), DM_OK);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

static void test_dn__is_under(void **state)
{
    (void)state;
    assert_int_equal(dn_is_under("uid=a,ou=People,dc=x", "DC=X"), 1);
    assert_int_equal(dn_is_under("uid=a,ou=People,dc=x", "ou=people, dc=x"), 1);
    assert_int_equal(dn_is_under("dc=x", "dc=x"), 1);
    assert_int_equal(dn_is_under("dc=x", "ou=People,dc=x"), 0);
    assert_int_equal(dn_is_under("uid=a,ou=Peoplex,dc=x", "ou=People,dc=x"), 0);
    assert_int_equal(dn_is_under("uid=a,dc=y", "dc=x"), 0);
    assert_int_equal(dn_is_under("uid=a,dc=x", ""), 1);
    assert_int_equal(dn_is_under("uid=a\\", "dc=x"), -1);
    assert_int_equal(dn_is_under("uid=a,dc=x", "dc="), 0);
    assert_int_equal(dn_is_under("uid=a,dc=x", "dc"), -1);
}

static void test_dn__rebase(void **state)
{
    struct dm_err err = {0};
    char *out = (char *)"untouched";

    (void)state;
    check_rebase("cn=Doe\\, Jane+uid=jd,ou=People,dc=src", "dc=SRC", "dc=dst,dc=example",
                 "cn=Doe\\, Jane+uid=jd,ou=People,dc=dst,dc=example");
    check_rebase("dc=src", "DC=Src", "dc=dst,dc=example", "dc=dst,dc=example");
    /* the kept part is byte-exact, separators and hex escapes included */
    check_rebase("CN=R\\C3\\A9my , OU=People, dc=src", "dc=src", "o=Dst",
                 "CN=R\\C3\\A9my , OU=People,o=Dst");
    check_rebase("cn=a\\ ,dc=src", "dc=src", "dc=dst", "cn=a\\ ,dc=dst");
    check_rebase("cn=a,dc=src", "", "dc=dst", "cn=a,dc=src,dc=dst");
    check_rebase("cn=a,dc=src", "dc=src", "", "cn=a");
    assert_int_equal(dn_rebase(&out, "cn=a,dc=other", "dc=src", "dc=dst", &err), DM_ENOTFOUND);
    assert_string_equal(out, "untouched");
    assert_int_equal(dn_rebase(&out, "cn=a,dc=src,", "dc=src", "dc=dst", &err), DM_EINVAL);
    assert_string_equal(out, "untouched");
}

static void check_escape(const char *v, size_t len, const char *want)
{
    struct dm_err err = {0};
    char *out = NULL;

    assert_int_equal(dn_escape_value(&out, v, len, &err), DM_OK);
    assert_string_equal(out, want);
    free(out);
}

static void test_dn__escape_value(void **state)
{
    (void)state;
    check_escape("Doe, Jane", 9, "Doe\\, Jane");
    check_escape("a+b\"c;d<e>f\\g=h", 15, "a\\+b\\\"c\\;d\\<e\\>f\\\\g\\=h");
    check_escape(" #lead", 6, "\\ #lead");
    check_escape("#lead", 5, "\\#lead");
    check_escape("mid#dle", 7, "mid#dle");
    check_escape("trail ", 6, "trail\\ ");
    check_escape(" ", 1, "\\ ");
    check_escape("a\0b\nc\x7f", 6, "a\\00b\\0Ac\\7F");
    check_escape("J\xc3\xbcrgen", 7, "J\xc3\xbcrgen");
    check_escape("", 0, "");
}

static void test_dn__escape_roundtrip(void **state)
{
    static const char v[] = " #a,b+c\\ \xc3\xa9\0z ";
    struct dm_err err = {0};
    struct dn *d = NULL;
    char *esc = NULL, *dn = NULL;

    (void)state;
    assert_int_equal(dn_escape_value(&esc, v, sizeof(v) - 1, &err), DM_OK);
    assert_true(asprintf(&dn, "cn=%s,dc=x", esc) > 0);
    assert_int_equal(dn_parse(&d, dn, &err), DM_OK);
    assert_int_equal(d->rdns[0].avas[0].value_len, sizeof(v) - 1);
    assert_memory_equal(d->rdns[0].avas[0].value, v, sizeof(v) - 1);
    dn_free(d);
    free(dn);
    free(esc);
}

static void test_dn__filter_escape(void **state)
{
    struct dm_err err = {0};
    char *out = NULL;

    (void)state;
    assert_int_equal(dn_filter_escape(&out, "a*(b)\\c\0d\x01\x7f\xc3\xa9", 13, &err), DM_OK);
    assert_string_equal(out, "a\\2a\\28b\\29\\5cc\\00d\\01\\7f\xc3\xa9");
    free(out);
    assert_int_equal(dn_filter_escape(&out, "*)(uid=*", 8, &err), DM_OK);
    assert_string_equal(out, "\\2a\\29\\28uid=\\2a");
    free(out);
    assert_int_equal(dn_filter_escape(&out, "", 0, &err), DM_OK);
    assert_string_equal(out, "");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dn__parse_simple),
        cmocka_unit_test(test_dn__parse_root),
        cmocka_unit_test(test_dn__parse_escaped_comma_and_multivalued),
        cmocka_unit_test(test_dn__parse_all_escapes),
        cmocka_unit_test(test_dn__parse_hex_escapes),
        cmocka_unit_test(test_dn__parse_utf8_kept),
        cmocka_unit_test(test_dn__parse_ber_value),
        cmocka_unit_test(test_dn__parse_spaces_tolerated),
        cmocka_unit_test(test_dn__parse_errors_name_offset),
        cmocka_unit_test(test_dn__normalize),
        cmocka_unit_test(test_dn__normalize_equal_forms),
        cmocka_unit_test(test_dn__is_under),
        cmocka_unit_test(test_dn__rebase),
        cmocka_unit_test(test_dn__escape_value),
        cmocka_unit_test(test_dn__escape_roundtrip),
        cmocka_unit_test(test_dn__filter_escape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
