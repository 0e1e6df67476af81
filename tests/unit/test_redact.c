#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent/redact.h"

static void expect_mask(const char *in, const char *want)
{
    struct buf b;

    buf_init(&b, 0);
    assert_int_equal(redact_identity(&b, in), DM_OK);
    assert_string_equal(b.data != NULL ? b.data : "", want);
    buf_free(&b);
}

static void test_redact__identities(void **state)
{
    (void)state;
    expect_mask("uid=alice,ou=people,dc=example,dc=org", "uid=a***,ou=people,dc=example,dc=org");
    expect_mask("cn=Ada Lovelace+uid=ada,ou=x", "cn=A***+uid=a***,ou=x");
    expect_mask("cn=Smith\\, John,ou=staff,dc=x", "cn=S***,ou=staff,dc=x");
    expect_mask("CN=\xc3\x89mile Zola,OU=Staff", "CN=\xc3\x89***,OU=Staff");
    expect_mask("cn=\\23hash,dc=x", "cn=***,dc=x");
    expect_mask("cn=\"Doe, Jane\",dc=x", "cn=***,dc=x");
    expect_mask("alice@example.org", "a***");
    expect_mask("3f2a9c1e-0b7d-4c55-9a3e-1d2f3a4b5c6d", "3***");
    expect_mask("uid=x", "uid=x***");
    expect_mask("\"><img src=x onerror=alert(2)>", "***");
    expect_mask("a b=c,dc=x", "a***");
    expect_mask("2.5.4.3=Ann,dc=x", "2.5.4.3=A***,dc=x");
    expect_mask("", "");
}

static void expect_text(const char *msg, const char *key, const char *dn, const char *want)
{
    struct buf b;

    buf_init(&b, 0);
    assert_int_equal(redact_text(&b, msg, key, dn), DM_OK);
    assert_string_equal(b.data != NULL ? b.data : "", want);
    buf_free(&b);
}

static void test_redact__identities_in_messages(void **state)
{
    (void)state;
    expect_text("objectClass violation (dn=\"uid=alice,ou=people,dc=x\", attr=mail)", "alice",
                "uid=alice,ou=people,dc=x",
                "objectClass violation (dn=\"uid=a***,ou=people,dc=x\", attr=mail)");
    expect_text("uid=alice,ou=people,dc=x: already exists", NULL, "uid=alice,ou=people,dc=x",
                "uid=a***,ou=people,dc=x: already exists");
    expect_text("login alice@example.org is taken", "alice@example.org", NULL,
                "login a*** is taken");
    expect_text("user alice is locked", NULL, "uid=alice,dc=x", "user a*** is locked");
    /* a DN named in the message that is not the row's */
    expect_text("member (dn=\"cn=Bob \\\"B\\\" Smith,ou=p\") is missing", NULL, NULL,
                "member (dn=\"cn=B***,ou=p\") is missing");
    expect_text("member \"uid=ext00000,ou=contractors,dc=x\" was not migrated", NULL, "cn=g",
                "member \"uid=e***,ou=contractors,dc=x\" was not migrated");
    expect_text("entries under cn=Ann+sn=Lee,ou=p,dc=x and uid=bob", NULL, NULL,
                "entries under cn=A***+sn=L***,ou=p,dc=x and uid=bob");
    expect_text("count=3 and id=7,8 stay", NULL, NULL, "count=3 and id=7,8 stay");
    expect_text("server down", NULL, NULL, "server down");
    expect_text(NULL, "k", "uid=k", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact__identities),
        cmocka_unit_test(test_redact__identities_in_messages),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
