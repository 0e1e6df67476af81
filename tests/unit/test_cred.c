#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "schema/cred.h"

static const char *scheme(const char *v)
{
    return cred_scheme((const unsigned char *)v, strlen(v));
}

static void test_cred__salted_and_plain_digests(void **state)
{
    (void)state;
    assert_string_equal(scheme("{SSHA}3bsYusEQw420JTi/gBXD3K1JWdCoNKdk"), "SSHA");
    assert_string_equal(scheme("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="), "SHA");
    assert_string_equal(scheme("{SMD5}67GUFmWNpG9bCq/5dc/aIdIoitU="), "SMD5");
    assert_string_equal(scheme("{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ=="), "MD5");
    assert_string_equal(scheme("{SSHA256}/AR+9KQrWZESqsrszWw=="), "SSHA256");
    assert_string_equal(scheme("{SSHA384}abcd"), "SSHA384");
    assert_string_equal(scheme("{SSHA512}abcd"), "SSHA512");
    assert_string_equal(scheme("{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols="), "SHA256");
    assert_string_equal(scheme("{SHA384}abcd"), "SHA384");
    assert_string_equal(scheme("{SHA512}abcd"), "SHA512");
}

static void test_cred__pbkdf2_and_argon2(void **state)
{
    (void)state;
    assert_string_equal(scheme("{PBKDF2}10000$abc$def"), "PBKDF2");
    assert_string_equal(scheme("{PBKDF2-SHA1}10000$abc$def"), "PBKDF2-SHA1");
    assert_string_equal(scheme("{PBKDF2-SHA256}10000$PvGiSaxi7xgv1XD3wrgWog$5xSUvGc1"),
                        "PBKDF2-SHA256");
    assert_string_equal(scheme("{PBKDF2-SHA512}10000$abc$def"), "PBKDF2-SHA512");
    assert_string_equal(scheme("{ARGON2}$argon2i$v=19$m=4096,t=3,p=1$3Zp3$HYV3"), "ARGON2");
    assert_string_equal(scheme("{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$a$b"), "ARGON2");
}

static void test_cred__crypt_variants(void **state)
{
    (void)state;
    assert_string_equal(scheme("{CRYPT}abJnggxhB/yWI"), "CRYPT-DES");
    assert_string_equal(scheme("{CRYPT}$1$saltsalt$hash"), "CRYPT-MD5");
    assert_string_equal(scheme("{CRYPT}$5$saltsalt$hash"), "CRYPT-SHA256");
    assert_string_equal(scheme("{CRYPT}$6$L4jX$n4/LE4."), "CRYPT-SHA512");
    assert_string_equal(scheme("{CRYPT}$6$rounds=5000$salt$hash"), "CRYPT-SHA512");
    assert_string_equal(scheme("{CRYPT}$2a$12$abcdefghijklmnopqrstuv"), "CRYPT-BCRYPT");
    assert_string_equal(scheme("{CRYPT}$2b$12$abcdefghijklmnopqrstuv"), "CRYPT-BCRYPT");
    assert_string_equal(scheme("{CRYPT}$2y$12$abcdefghijklmnopqrstuv"), "CRYPT-BCRYPT");
    assert_string_equal(scheme("{CRYPT}$y$j9T$salt$hash"), "CRYPT-YESCRYPT");
    assert_string_equal(scheme("{CRYPT}$7$CU..../....salt$hash"), "CRYPT-SCRYPT");
    assert_string_equal(scheme("{CRYPT}$gy$j9T$salt$hash"), "CRYPT-OTHER");
    assert_string_equal(scheme("{CRYPT}_J9..salt1234567890a"), "CRYPT-OTHER");
    assert_string_equal(scheme("{CRYPT}abJnggxhB/yW!"), "CRYPT-OTHER");
    assert_string_equal(scheme("{CRYPT}"), "CRYPT-OTHER");
}

static void test_cred__tags_case_insensitive(void **state)
{
    (void)state;
    assert_string_equal(scheme("{ssha}3bsYusEQw420JTi/gBXD3K1JWdCoNKdk"), "SSHA");
    assert_string_equal(scheme("{Ssha512}abcd"), "SSHA512");
    assert_string_equal(scheme("{pbkdf2-sha256}1$a$b"), "PBKDF2-SHA256");
    assert_string_equal(scheme("{crypt}$6$salt$hash"), "CRYPT-SHA512");
    assert_string_equal(scheme("{Argon2}$argon2i$x"), "ARGON2");
}

static void test_cred__cleartext(void **state)
{
    (void)state;
    assert_string_equal(scheme("secret"), "CLEARTEXT");
    assert_string_equal(scheme(""), "CLEARTEXT");
    assert_string_equal(scheme("{notatag"), "CLEARTEXT");
    assert_string_equal(scheme("{}secret"), "CLEARTEXT");
    assert_string_equal(scheme("x{SSHA}abc"), "CLEARTEXT");
    assert_string_equal(cred_scheme(NULL, 0), "CLEARTEXT");
    /* the tag must lie within len bytes */
    assert_string_equal(cred_scheme((const unsigned char *)"{SSHA}abc", 5), "CLEARTEXT");
}

static void test_cred__unknown_tag(void **state)
{
    (void)state;
    assert_string_equal(scheme("{CLEARTEXT}secret"), "UNKNOWN");
    assert_string_equal(scheme("{APR1}TM/aW+pG5rsVNHfabx0KaWwzNnNTWC5j"), "UNKNOWN");
    assert_string_equal(scheme("{NS-MTA-MD5}abc"), "UNKNOWN");
    assert_string_equal(scheme("{SSHA1}abc"), "UNKNOWN");
    assert_string_equal(scheme("{SSH}abc"), "UNKNOWN");
    assert_string_equal(scheme("{X}"), "UNKNOWN");
}

static void test_cred__binary_value(void **state)
{
    static const unsigned char v[] = {'{', 'S', 'S', 'H', 'A', '}', 0x00, 0xff, 0x10};
    static const unsigned char w[] = {'s', 0x00, '{', 'S', 'H', 'A', '}'};

    (void)state;
    assert_string_equal(cred_scheme(v, sizeof(v)), "SSHA");
    assert_string_equal(cred_scheme(w, sizeof(w)), "CLEARTEXT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cred__salted_and_plain_digests),
        cmocka_unit_test(test_cred__pbkdf2_and_argon2),
        cmocka_unit_test(test_cred__crypt_variants),
        cmocka_unit_test(test_cred__tags_case_insensitive),
        cmocka_unit_test(test_cred__cleartext),
        cmocka_unit_test(test_cred__unknown_tag),
        cmocka_unit_test(test_cred__binary_value),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
