/*
 * test_ldif: the streaming LDIF reader (folds, base64, comments, errors naming the line),
 * the LDAP filter evaluated on entries, and the LDIF writer read back by the reader.
 */
#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "connectors/ldif.h"
#include "connectors/ldif_filter.h"
#include "connectors/ldif_parse.h"
#include "tests/unit/fixture.h"

static struct ldif_reader *reader_of(const char *name, const char *text)
{
    struct ldif_reader *r = NULL;
    struct dm_err e = {0};

    assert_int_equal(ldif_reader_open(&r, fixture_write_tmp(name, text), &e), DM_OK);
    return r;
}

static void test_ldif__folds_base64_comments(void **state)
{
    struct ldif_reader *r = reader_of("a.ldif", "# a comment\n"
                                                "#  that is folded\n"
                                                " onto this line\n"
                                                "version: 1\n"
                                                "\n"
                                                "dn: uid=a,ou=people,\n"
                                                " dc=example\n"
                                                "objectClass: inetOrgPerson\n"
                                                "cn:: w6lsw6hvbm9yZQ==\n"
                                                "description: a long va\n"
                                                " lue\n"
                                                "# a comment inside\n"
                                                "mail: a@example.org\n"
                                                "mail: b@example.org\n"
                                                "\n"
                                                "\n"
                                                "dn:: dWlkPWIsb3U9cGVvcGxlLGRjPWV4YW1wbGU=\n"
                                                "changetype: add\n"
                                                "jpegPhoto:: AAEC\n");
    struct entry *e = NULL;
    struct dm_err err = {0};
    const struct dm_attr *a;

    (void)state;
    assert_int_equal(ldif_reader_next(&e, r, &err), DM_OK);
    assert_non_null(e);
    assert_string_equal(e->dn, "uid=a,ou=people,dc=example");
    assert_int_equal(ldif_reader_line(r), 6);
    assert_string_equal(entry_first(e, "cn"), "\xc3\xa9l\xc3\xa8onore");
    assert_string_equal(entry_first(e, "description"), "a long value");
    a = entry_attr(e, "mail");
    assert_int_equal(a->nvals, 2);
    entry_free(e);
    assert_int_equal(ldif_reader_next(&e, r, &err), DM_OK);
    assert_string_equal(e->dn, "uid=b,ou=people,dc=example");
    a = entry_attr(e, "jpegPhoto");
    assert_int_equal(a->vals[0].len, 3);
    assert_memory_equal(a->vals[0].data, "\0\1\2", 3);
    entry_free(e);
    assert_int_equal(ldif_reader_next(&e, r, &err), DM_OK);
    assert_null(e);
    /* again from the start */
    assert_int_equal(ldif_reader_rewind(r, &err), DM_OK);
    assert_int_equal(ldif_reader_next(&e, r, &err), DM_OK);
    assert_string_equal(e->dn, "uid=a,ou=people,dc=example");
    entry_free(e);
    ldif_reader_free(r);
}

static void expect_bad(const char *text, const char *want)
{
    struct ldif_reader *r = reader_of("bad.ldif", text);
    struct entry *e = NULL;
    struct dm_err err = {0};
    int rc;

    while ((rc = ldif_reader_next(&e, r, &err)) == DM_OK && e != NULL) {
        entry_free(e);
    }
    assert_int_equal(rc, DM_EINVAL);
    if (strstr(err.msg, want) == NULL) {
        fail_msg("\"%s\" lacks \"%s\"", err.msg, want);
    }
    ldif_reader_free(r);
}

static void test_ldif__bad_input_names_the_line(void **state)
{
    (void)state;
    expect_bad("dn: uid=a,dc=x\ncn: a\n\ndn: uid=b,dc=x\ncn:: ***\n",
               "bad.ldif:5: cn: the value is not valid base64");
    expect_bad("dn: uid=a,dc=x\nchangetype: modify\nreplace: cn\n", "bad.ldif:2: only entries");
    expect_bad("cn: a\n", "bad.ldif:1: a record must start with \"dn:\"");
    expect_bad("dn: uid=a,dc=x\njpegPhoto:< file:///etc/passwd\n", "bad.ldif:2: URL values");
    expect_bad("dn: uid=a,dc=x\nno colon here\n", "bad.ldif:2: not an LDIF line");
    expect_bad(" continued\n", "bad.ldif:1: a continuation line");
}

static int match(const char *filter, const struct entry *e)
{
    struct ldif_filter *f = NULL;
    struct dm_err err = {0};
    int m;

    assert_int_equal(ldif_filter_compile(&f, filter, &err), DM_OK);
    m = ldif_filter_match(f, e);
    ldif_filter_free(f);
    return m;
}

static void test_ldif__filters(void **state)
{
    struct entry *e = fixture_entry("uid=ann,ou=people,dc=x", NULL, "objectClass", "inetOrgPerson",
                                    "uid", "ann", "cn", "Ann Smith", "uidNumber", "1500", "manager",
                                    "UID=Bob, OU=People,DC=x", NULL);
    struct ldif_filter *f = NULL;
    struct dm_err err = {0};

    (void)state;
    assert_true(match("(objectClass=inetorgperson)", e));
    assert_true(match("(|(objectClass=posixAccount)(objectClass=inetOrgPerson))", e));
    assert_false(match("(&(objectClass=inetOrgPerson)(!(uid=ann)))", e));
    assert_true(match("(cn=ann*)", e));
    assert_true(match("(cn=*smi*)", e));
    assert_false(match("(cn=*bob*)", e));
    assert_true(match("(uidNumber>=1000)", e));
    assert_false(match("(uidNumber<=999)", e));
    assert_true(match("(manager=uid=bob,ou=people,dc=x)", e));
    assert_true(match("(mail=*)", e) == 0);
    assert_true(match("(cn=Ann\\20Smith)", e));
    assert_true(match(NULL, e));
    assert_int_equal(ldif_filter_compile(&f, "(cn:caseExactMatch:=x)", &err), DM_EINVAL);
    assert_int_equal(ldif_filter_compile(&f, "(cn=a", &err), DM_EINVAL);
    assert_int_equal(ldif_filter_compile(&f, "(cn=\\zz)", &err), DM_EINVAL);
    entry_free(e);
}

static void test_ldif__writer_round_trip(void **state)
{
    struct entry *e =
        fixture_entry("cn=Doe\\, Jane+uid=jd,ou=people,dc=x", NULL, "cn", " lead", "description",
                      "caf\xc3\xa9", "sn", "trail ", "ou", ":colon", "title", "plain", NULL);
    char path[600], long_v[300];
    struct ldif_reader *r = NULL;
    struct entry *back = NULL;
    struct dm_err err = {0};
    FILE *f;

    (void)state;
    memset(long_v, 'x', sizeof(long_v) - 1);
    long_v[sizeof(long_v) - 1] = '\0';
    assert_int_equal(entry_add_str(e, "info", long_v), DM_OK);
    assert_int_equal(entry_add_value(e, "jpegPhoto", "\0\n\r", 3), DM_OK);
    snprintf(path, sizeof(path), "%s/w.ldif", fixture_tmpdir());
    f = fopen(path, "w");
    assert_int_equal(ldif_write_entry(f, e, &err), DM_OK);
    fclose(f);
    {
        char *text = fixture_slurp(path);
        assert_non_null(strstr(text, "cn:: "));          /* leading space */
        assert_non_null(strstr(text, "description:: ")); /* not ASCII */
        assert_non_null(strstr(text, "title: plain\n"));
        assert_non_null(strstr(text, "\n xxx")); /* folded */
        free(text);
    }
    assert_int_equal(ldif_reader_open(&r, path, &err), DM_OK);
    assert_int_equal(ldif_reader_next(&back, r, &err), DM_OK);
    assert_string_equal(back->dn, e->dn);
    for (size_t i = 0; i < e->nattrs; i++) {
        const struct dm_attr *a = entry_attr(back, e->attrs[i].name);
        assert_non_null(a);
        assert_int_equal(a->vals[0].len, e->attrs[i].vals[0].len);
        assert_memory_equal(a->vals[0].data, e->attrs[i].vals[0].data, a->vals[0].len);
    }
    entry_free(back);
    ldif_reader_free(r);
    entry_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ldif__folds_base64_comments),
        cmocka_unit_test(test_ldif__bad_input_names_the_line),
        cmocka_unit_test(test_ldif__filters),
        cmocka_unit_test(test_ldif__writer_round_trip),
    };

    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
