#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "connectors/ad.h"
#include "connectors/ldap_verify.h"

/* AD bind diagnostics as Windows and Samba write them ("..., data 52e, v..."). */
static void test_ad__bind_reasons(void **state)
{
    static const struct {
        const char *diag;
        enum ldap_verify_reason want;
    } cases[] = {
        {"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 52e, "
         "v3839",
         LDAP_VERIFY_R_WRONG_PASSWORD},
        {"80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 525, v1db1",
         LDAP_VERIFY_R_NO_SUCH_USER},
        {"... AcceptSecurityContext error, data 530, v1db1", LDAP_VERIFY_R_LOGON_HOURS},
        {"... AcceptSecurityContext error, data 531, v1db1", LDAP_VERIFY_R_WORKSTATION},
        {"... AcceptSecurityContext error, data 532, v1db1", LDAP_VERIFY_R_PASSWORD_EXPIRED},
        {"... AcceptSecurityContext error, data 533, v1db1", LDAP_VERIFY_R_ACCOUNT_DISABLED},
        {"... AcceptSecurityContext error, data 701, v1db1", LDAP_VERIFY_R_ACCOUNT_EXPIRED},
        {"... AcceptSecurityContext error, data 773, v1db1", LDAP_VERIFY_R_MUST_CHANGE_PASSWORD},
        {"... AcceptSecurityContext error, data 775, v1db1", LDAP_VERIFY_R_ACCOUNT_LOCKED},
        {"... AcceptSecurityContext error, data 52E, v1db1", LDAP_VERIFY_R_WRONG_PASSWORD},
        {"... AcceptSecurityContext error, data 568, v1db1", LDAP_VERIFY_R_OTHER},
        {"invalid credentials", LDAP_VERIFY_R_NONE},
        {"metadata xyz, data", LDAP_VERIFY_R_NONE},
        {"", LDAP_VERIFY_R_NONE},
        {NULL, LDAP_VERIFY_R_NONE},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ldap_verify_ad_reason(cases[i].diag), cases[i].want);
    }
    assert_string_equal(ldap_verify_reason_name(LDAP_VERIFY_R_ACCOUNT_DISABLED),
                        "account_disabled");
    for (int r = LDAP_VERIFY_R_WRONG_PASSWORD; r < LDAP_VERIFY_R__LAST; r++) {
        assert_int_equal(ldap_verify_reason_from_name(ldap_verify_reason_name(r)), r);
    }
    assert_int_equal(ldap_verify_reason_from_name(""), LDAP_VERIFY_R_NONE);
    assert_int_equal(ldap_verify_reason_from_name("ldap_search: boom"), LDAP_VERIFY_R_NONE);
}

static void test_ad__watermark_parse(void **state)
{
    char inv[64];
    unsigned long long usn = 0;

    (void)state;
    assert_int_equal(ad_parse_watermark(inv, &usn, "4d572b04-ad42-4e7d-958c-9830f19a91e3:6069"), 0);
    assert_string_equal(inv, "4d572b04-ad42-4e7d-958c-9830f19a91e3");
    assert_true(usn == 6069);
    assert_int_equal(ad_parse_watermark(inv, &usn, "x:"), -1);
    assert_int_equal(ad_parse_watermark(inv, &usn, "x:12a"), -1);
    assert_int_equal(ad_parse_watermark(inv, &usn, "6069"), -1);
    assert_int_equal(ad_parse_watermark(inv, &usn, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ad__bind_reasons),
        cmocka_unit_test(test_ad__watermark_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
