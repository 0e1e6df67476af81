#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <stdlib.h>
#include <crypt.h>
#include <openssl/evp.h>
#include <jansson.h>
#include "connectors/auth0_cred.h"
#include "connectors/okta_cred.h"
#include "connectors/scim.h"
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
    assert_string_equal(scheme("{CRYPT}"), "LOCKED"); /* nothing after the tag */
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
    assert_string_equal(scheme(""), "LOCKED"); /* an empty value is no password */
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

/* ---- parsing and Okta translation ---- */

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s != NULL ? s : "";
}

/* Standard base64 of n bytes into a static buffer. */
static const char *b64(const unsigned char *p, size_t n)
{
    static char out[512];

    assert_true(4 * ((n + 2) / 3) < sizeof(out));
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

/* Decodes standard padded base64; returns the byte count. */
static size_t unb64(unsigned char *out, const char *s)
{
    size_t n = strlen(s), pad = 0;
    int k;

    if (n > 0 && s[n - 1] == '=') {
        pad++;
    }
    if (n > 1 && s[n - 2] == '=') {
        pad++;
    }
    k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    assert_true(k >= 0);
    return (size_t)k - pad;
}

/* passlib ab64 of n bytes (what pw-pbkdf2 stores). */
static void ab64(char *out, const unsigned char *p, size_t n)
{
    size_t i;

    strcpy(out, b64(p, n));
    for (i = 0; out[i] != '\0'; i++) {
        if (out[i] == '+') {
            out[i] = '.';
        }
    }
    while (i > 0 && out[i - 1] == '=') {
        out[--i] = '\0';
    }
}

/* The Okta side of a sign-in: does pw match the hash object Okta would store? */
static int okta_check(const json_t *h, const char *pw)
{
    const char *alg = jstr(h, "algorithm");
    unsigned char salt[256], md[EVP_MAX_MD_SIZE], dk[128];
    size_t salt_len = 0;
    unsigned int md_len = 0;

    if (json_object_get(h, "salt") != NULL && strcmp(alg, "BCRYPT") != 0) {
        salt_len = unb64(salt, jstr(h, "salt"));
    }
    if (strcmp(alg, "BCRYPT") == 0) {
        char setting[128];
        struct crypt_data cd;
        const char *r;

        memset(&cd, 0, sizeof(cd));
        snprintf(setting, sizeof(setting), "$2a$%02d$%s%s",
                 (int)json_integer_value(json_object_get(h, "workFactor")), jstr(h, "salt"),
                 jstr(h, "value"));
        r = crypt_r(pw, setting, &cd);
        return r != NULL && strcmp(r, setting) == 0;
    }
    if (strcmp(alg, "PBKDF2") == 0) {
        const EVP_MD *m =
            strcmp(jstr(h, "digestAlgorithm"), "SHA256_HMAC") == 0 ? EVP_sha256() : EVP_sha512();
        int ks = (int)json_integer_value(json_object_get(h, "keySize"));

        assert_true(ks > 0 && ks <= (int)sizeof(dk));
        assert_int_equal(
            PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)salt_len,
                              (int)json_integer_value(json_object_get(h, "iterationCount")), m, ks,
                              dk),
            1);
        return strcmp(b64(dk, (size_t)ks), jstr(h, "value")) == 0;
    }
    {
        const EVP_MD *m = strcmp(alg, "SHA-1") == 0     ? EVP_sha1()
                          : strcmp(alg, "SHA-256") == 0 ? EVP_sha256()
                          : strcmp(alg, "SHA-512") == 0 ? EVP_sha512()
                          : strcmp(alg, "MD5") == 0     ? EVP_md5()
                                                        : NULL;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int prefix = strcmp(jstr(h, "saltOrder"), "PREFIX") == 0;

        assert_non_null(m);
        EVP_DigestInit_ex(ctx, m, NULL);
        if (prefix) {
            EVP_DigestUpdate(ctx, salt, salt_len);
        }
        EVP_DigestUpdate(ctx, pw, strlen(pw));
        if (!prefix) {
            EVP_DigestUpdate(ctx, salt, salt_len);
        }
        EVP_DigestFinal_ex(ctx, md, &md_len);
        EVP_MD_CTX_free(ctx);
        return strcmp(b64(md, md_len), jstr(h, "value")) == 0;
    }
}

/* Parses v, expects CRED_IMPORT with the given algorithm, returns the hash object. */
static json_t *import(const char *v, const char *alg)
{
    struct cred *c = NULL;
    struct dm_err err;
    json_t *h = NULL;
    enum cred_outcome oc;
    const char *why = "unset";

    dm_err_clear(&err);
    assert_int_equal(cred_parse(&c, (const unsigned char *)v, strlen(v), &err), DM_OK);
    assert_int_equal(okta_cred_hash(&h, &oc, &why, c, &err), DM_OK);
    assert_int_equal(oc, CRED_IMPORT);
    assert_null(why);
    assert_non_null(h);
    assert_string_equal(jstr(h, "algorithm"), alg);
    cred_free(c);
    return h;
}

static void expect_verified(const char *v, const char *alg, const char *pw)
{
    json_t *h = import(v, alg);

    assert_true(okta_check(h, pw));
    assert_false(okta_check(h, "not-the-password"));
    json_decref(h);
}

static void expect_hook(const char *v)
{
    struct cred *c = NULL;
    struct dm_err err;
    json_t *h = (json_t *)1;
    enum cred_outcome oc = CRED_IMPORT;
    const char *why = NULL;

    dm_err_clear(&err);
    assert_int_equal(cred_parse(&c, (const unsigned char *)v, strlen(v), &err), DM_OK);
    assert_int_equal(okta_cred_hash(&h, &oc, &why, c, &err), DM_OK);
    assert_int_equal(oc, CRED_HOOK);
    assert_null(h);
    assert_non_null(why);
    cred_free(c);
}

static void expect_malformed(const char *v)
{
    struct cred *c = (struct cred *)1;
    struct dm_err err;
    const char *tail = strchr(v, '}');

    dm_err_clear(&err);
    assert_int_equal(cred_parse(&c, (const unsigned char *)v, strlen(v), &err), DM_EINVAL);
    assert_null(c);
    assert_string_equal(err.attr, "userPassword");
    /* the message names the scheme, never the value */
    assert_null(strstr(err.msg, v));
    if (tail != NULL && strlen(tail + 1) >= 4) {
        assert_null(strstr(err.msg, tail + 1));
    }
}

static void test_cred__contract_examples_verify(void **state)
{
    json_t *h;

    (void)state;
    /* as slappasswd writes them, all for "secret" */
    expect_verified("{SSHA}3bsYusEQw420JTi/gBXD3K1JWdCoNKdk", "SHA-1", "secret");
    expect_verified("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "SHA-1", "secret");
    expect_verified("{SMD5}67GUFmWNpG9bCq/5dc/aIdIoitU=", "MD5", "secret");
    expect_verified("{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==", "MD5", "secret");
    expect_verified("{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=", "SHA-256", "secret");
    expect_verified("{ssha}3bsYusEQw420JTi/gBXD3K1JWdCoNKdk", "SHA-1", "secret");

    h = import("{SSHA}3bsYusEQw420JTi/gBXD3K1JWdCoNKdk", "SHA-1");
    assert_string_equal(jstr(h, "saltOrder"), "POSTFIX");
    assert_int_equal(strlen(jstr(h, "value")), 28); /* b64 of 20 bytes */
    assert_int_equal(strlen(jstr(h, "salt")), 8);   /* b64 of 4 bytes */
    json_decref(h);
    h = import("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "SHA-1");
    assert_null(json_object_get(h, "salt"));
    assert_null(json_object_get(h, "saltOrder"));
    assert_string_equal(jstr(h, "value"), "5en6G6MezRroT3XKqkdPOmY/BfQ=");
    json_decref(h);

    /* Okta's BCRYPT import: the MCF string split into workFactor, salt and value */
    h = import("{CRYPT}$2a$10$rwh3vH166HCH/NT9XV5FYuqaMqvAPULkbiQzkTCWo5XDcvzpk8Tna", "BCRYPT");
    assert_int_equal(json_integer_value(json_object_get(h, "workFactor")), 10);
    assert_string_equal(jstr(h, "salt"), "rwh3vH166HCH/NT9XV5FYu");
    assert_string_equal(jstr(h, "value"), "qaMqvAPULkbiQzkTCWo5XDcvzpk8Tna");
    assert_null(json_object_get(h, "saltOrder"));
    json_decref(h);
}

/* {SSHAnnn}/{SHAnnn} generated here with OpenSSL. */
static void sha2_value(char *out, size_t cap, const char *tag, const EVP_MD *m, const char *pw,
                       const unsigned char *salt, size_t salt_len)
{
    unsigned char buf[EVP_MAX_MD_SIZE + 64];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    EVP_DigestInit_ex(ctx, m, NULL);
    EVP_DigestUpdate(ctx, pw, strlen(pw));
    EVP_DigestUpdate(ctx, salt, salt_len);
    EVP_DigestFinal_ex(ctx, buf, &n);
    EVP_MD_CTX_free(ctx);
    if (salt_len > 0) {
        memcpy(buf + n, salt, salt_len);
    }
    assert_true(strlen(tag) + 2 + 4 * ((n + salt_len + 2) / 3) < cap);
    strcpy(out, "{");
    strcat(out, tag);
    strcat(out, "}");
    strcat(out, b64(buf, n + salt_len));
}

static void test_cred__sha2_and_md5_verify(void **state)
{
    static const unsigned char salt8[8] = {1, 2, 3, 4, 5, 6, 7, 0xff};
    char v[512];

    (void)state;
    sha2_value(v, sizeof(v), "SSHA256", EVP_sha256(), "pässwörd", salt8, 8);
    expect_verified(v, "SHA-256", "pässwörd");
    sha2_value(v, sizeof(v), "SSHA512", EVP_sha512(), "pässwörd", salt8, 8);
    expect_verified(v, "SHA-512", "pässwörd");
    sha2_value(v, sizeof(v), "SHA512", EVP_sha512(), "x", NULL, 0);
    expect_verified(v, "SHA-512", "x");
    sha2_value(v, sizeof(v), "SSHA", EVP_sha1(), "long salt", salt8, 8);
    expect_verified(v, "SHA-1", "long salt");
    sha2_value(v, sizeof(v), "SMD5", EVP_md5(), "m", salt8, 1);
    expect_verified(v, "MD5", "m");
}

static void pbkdf2_value(char *out, size_t cap, const char *tag, const EVP_MD *m, int iter,
                         const char *pw, size_t dk_len)
{
    static const unsigned char salt[16] = {0xfb, 0xef, 0xff, 1, 2,  3,  4,  5,
                                           6,    7,    8,    9, 10, 11, 12, 0xfe};
    unsigned char dk[64];
    char s[64], d[128];

    assert_int_equal(
        PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, sizeof(salt), iter, m, (int)dk_len, dk), 1);
    ab64(s, salt, sizeof(salt));
    ab64(d, dk, dk_len);
    snprintf(out, cap, "{%s}%d$%s$%s", tag, iter, s, d);
}

static void test_cred__pbkdf2_verify(void **state)
{
    char v[512];
    json_t *h;

    (void)state;
    pbkdf2_value(v, sizeof(v), "PBKDF2-SHA256", EVP_sha256(), 4096, "secret", 32);
    assert_non_null(strchr(v, '.')); /* the salt has ab64's '.' for '+' */
    expect_verified(v, "PBKDF2", "secret");
    h = import(v, "PBKDF2");
    assert_int_equal(json_integer_value(json_object_get(h, "iterationCount")), 4096);
    assert_int_equal(json_integer_value(json_object_get(h, "keySize")), 32);
    assert_string_equal(jstr(h, "digestAlgorithm"), "SHA256_HMAC");
    assert_string_equal(jstr(h, "salt"), "++//AQIDBAUGBwgJCgsM/g==");
    json_decref(h);
    pbkdf2_value(v, sizeof(v), "PBKDF2-SHA512", EVP_sha512(), 5000, "secret", 64);
    expect_verified(v, "PBKDF2", "secret");
    h = import(v, "PBKDF2");
    assert_int_equal(json_integer_value(json_object_get(h, "keySize")), 64);
    assert_string_equal(jstr(h, "digestAlgorithm"), "SHA512_HMAC");
    json_decref(h);

    /* below 4096 iterations, or HMAC-SHA1: hook */
    pbkdf2_value(v, sizeof(v), "PBKDF2-SHA256", EVP_sha256(), 1000, "secret", 32);
    expect_hook(v);
    pbkdf2_value(v, sizeof(v), "PBKDF2-SHA1", EVP_sha1(), 10000, "secret", 20);
    expect_hook(v);
    pbkdf2_value(v, sizeof(v), "PBKDF2", EVP_sha1(), 10000, "secret", 20);
    expect_hook(v);
    /* the contract's example shape */
    expect_hook("{PBKDF2-SHA256}1000$PvGiSaxi7xgv1XD3wrgWog$5xSUvGc1gUxgP.wLRbS2U7RBm1YD3l7U"
                "kvuvNpZBb.4");
}

static void test_cred__bcrypt_verify(void **state)
{
    static const char *variants[] = {"$2a$", "$2b$", "$2y$"};
    struct crypt_data cd;
    char v[128], setting[64];
    const char *r;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        memset(&cd, 0, sizeof(cd));
        snprintf(setting, sizeof(setting), "%s05$abcdefghijklmnopqrstuu", variants[i]);
        r = crypt_r("bcrypt-pässwörd", setting, &cd);
        assert_non_null(r);
        assert_int_equal(strlen(r), 60);
        snprintf(v, sizeof(v), "{CRYPT}%s", r);
        expect_verified(v, "BCRYPT", "bcrypt-pässwörd");
    }
    /* Okta allows workFactor 1..20 */
    expect_hook("{CRYPT}$2b$21$rwh3vH166HCH/NT9XV5FYuqaMqvAPULkbiQzkTCWo5XDcvzpk8Tna");
}

static void test_cred__cleartext_is_hashed(void **state)
{
    json_t *h1 = import("clear-Pw 1", "SHA-512");
    json_t *h2 = import("clear-Pw 1", "SHA-512");
    unsigned char salt[64];

    (void)state;
    assert_true(okta_check(h1, "clear-Pw 1"));
    assert_false(okta_check(h1, "clear-Pw 2"));
    assert_string_equal(jstr(h1, "saltOrder"), "POSTFIX");
    assert_int_equal(unb64(salt, jstr(h1, "salt")), 16);
    /* a fresh salt every time, and the cleartext is nowhere in the object */
    assert_string_not_equal(jstr(h1, "salt"), jstr(h2, "salt"));
    {
        char *dump = json_dumps(h1, 0);

        assert_null(strstr(dump, "clear-Pw"));
        free(dump);
    }
    json_decref(h1);
    json_decref(h2);
}

static void test_cred__hook_schemes(void **state)
{
    struct cred *c = NULL;
    struct dm_err err;

    (void)state;
    expect_hook("{CRYPT}$1$saltsalt$0bUl8NUrnp5QZU6Ld0zkk/");
    expect_hook("{CRYPT}$5$saltsalt$hash");
    expect_hook("{CRYPT}$6$rounds=1000$salt$hash");
    expect_hook("{CRYPT}$y$j9T$salt$hash");
    expect_hook("{CRYPT}abJnggxhB/yWI");
    expect_hook("{ARGON2}$argon2i$v=19$m=4096,t=3,p=1$3Zp3$HYV3");
    expect_hook("{SHA384}OEvmSPYlSFI7EB1Yl/jNUN/AYSYxvSvrrrLKHhyXJlRWPIl1fMXxKhy0pBc0I6Rk");
    expect_hook("{APR1}TM/aW+pG5rsVNHfabx0KaWwzNnNTWC5j");
    expect_hook("{CLEARTEXT}secret");
    dm_err_clear(&err);
    assert_int_equal(cred_parse(&c, NULL, 0, &err), DM_OK);
    assert_int_equal(c->kind, CRED_KIND_NONE);
    cred_free(c);
    cred_free(NULL);
}

/* NIS / pam_ldap / shadow lock markers and placeholders: never a password. */
static void test_cred__locked_values(void **state)
{
    static const char *const locked[] = {"*",
                                         "!",
                                         "!!",
                                         "!!$6$salt$hash",
                                         "!$1$saltsalt$0bUl8NUrnp5QZU6Ld0zkk/",
                                         "x",
                                         "*LK*",
                                         "*LK*$6$salt$hash",
                                         "NP",
                                         "*NP*",
                                         "{CRYPT}*",
                                         "{crypt}*",
                                         "{CRYPT}!",
                                         "{CRYPT}!$6$L4jX$n4/LE4.",
                                         "{CRYPT}!!",
                                         "{CRYPT}x",
                                         "{CRYPT}*LK*",
                                         "{CRYPT}NP",
                                         "{CRYPT}",
                                         ""};
    static const char *const not_locked[] = {
        "xx", "NPx", "np", "X", "secret!", "a*", "{CRYPT}abJnggxhB/yWI", "{SSHA}*", "{CRYPT}xx"};
    struct dm_err err;
    struct cred *c = NULL;
    json_t *h = (json_t *)1;
    enum cred_outcome oc = CRED_IMPORT;
    const char *why = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(locked) / sizeof(locked[0]); i++) {
        const char *v = locked[i];
        assert_true(cred_is_locked((const unsigned char *)v, strlen(v)));
        assert_string_equal(scheme(v), "LOCKED");
        dm_err_clear(&err);
        assert_int_equal(cred_parse(&c, (const unsigned char *)v, strlen(v), &err), DM_OK);
        assert_int_equal(c->kind, CRED_KIND_LOCKED);
        assert_int_equal(okta_cred_outcome(c, &why), CRED_LOCKED);
        assert_int_equal(okta_cred_hash(&h, &oc, &why, c, &err), DM_OK);
        assert_int_equal(oc, CRED_LOCKED);
        assert_null(h);
        assert_non_null(why);
        /* every target that takes credentials from dirmig: no password, never the hook */
        why = NULL;
        assert_int_equal(auth0_cred_outcome(c, &why), CRED_LOCKED);
        assert_non_null(why);
        assert_int_equal(auth0_cred_hash(&h, c, (const unsigned char *)v, strlen(v), &err),
                         DM_EINVAL);
        h = NULL;
        why = NULL;
        assert_int_equal(conn_scim_ops.cred_outcome(c, &why), CRED_LOCKED);
        assert_non_null(why);
        /* never verifies, not even against itself */
        assert_int_equal(cred_verify(c, v[0] ? v : "x", v[0] ? strlen(v) : 1), 0);
        assert_int_equal(cred_verify(c, "*", 1), 0);
        cred_free(c);
        h = (json_t *)1;
    }
    for (size_t i = 0; i < sizeof(not_locked) / sizeof(not_locked[0]); i++) {
        const char *v = not_locked[i];
        assert_false(cred_is_locked((const unsigned char *)v, strlen(v)));
        assert_string_not_equal(scheme(v), "LOCKED");
    }
    assert_true(cred_is_locked(NULL, 0));
    /* typed passwords: only the exact tokens */
    assert_true(cred_is_placeholder_token("*", 1));
    assert_true(cred_is_placeholder_token("!!", 2));
    assert_true(cred_is_placeholder_token("*LK*", 4));
    assert_true(cred_is_placeholder_token("NP", 2));
    assert_true(cred_is_placeholder_token("x", 1));
    assert_false(cred_is_placeholder_token("!Summer2024", 11));
    assert_false(cred_is_placeholder_token("**", 2));
    assert_false(cred_is_placeholder_token("xy", 2));
}

/* cred_verify() against values made by slappasswd-compatible code and libxcrypt. */
static void test_cred__verify_schemes(void **state)
{
    /* {SSHA} of "secret" with salt "salt" and {MD5}/{SHA} of "secret" */
    static const char *const right[] = {
        "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",
        "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
        "secret",
        "{CRYPT}$1$saltsalt$0bUl8NUrnp5QZU6Ld0zkk/",
    };
    struct dm_err err;
    struct cred *c = NULL;
    char ssha[128], des[64], *h = NULL;
    struct crypt_data cd;
    unsigned char buf[64];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(right) / sizeof(right[0]); i++) {
        const char *v = right[i];
        dm_err_clear(&err);
        assert_int_equal(cred_parse(&c, (const unsigned char *)v, strlen(v), &err), DM_OK);
        if (strncmp(v, "{CRYPT}$1$", 10) == 0) {
            /* computed here, so the test does not trust a copied constant */
            memset(&cd, 0, sizeof(cd));
            cred_free(c);
            snprintf(ssha, sizeof(ssha), "{CRYPT}%s", crypt_r("secret", "$1$saltsalt", &cd));
            assert_int_equal(cred_parse(&c, (const unsigned char *)ssha, strlen(ssha), &err),
                             DM_OK);
        }
        assert_int_equal(cred_verify(c, "secret", 6), 1);
        assert_int_equal(cred_verify(c, "Secret", 6), 0);
        assert_true(cred_is_weak(c->scheme));
        cred_free(c);
    }
    /* {SSHA}: SHA-1(pw || salt) || salt */
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, "secret", 6);
    EVP_DigestUpdate(ctx, "salt", 4);
    EVP_DigestFinal_ex(ctx, buf, &n);
    EVP_MD_CTX_free(ctx);
    memcpy(buf + n, "salt", 4);
    strcpy(ssha, "{SSHA}");
    EVP_EncodeBlock((unsigned char *)ssha + 6, buf, (int)n + 4);
    assert_int_equal(cred_parse(&c, (const unsigned char *)ssha, strlen(ssha), &err), DM_OK);
    assert_int_equal(cred_verify(c, "secret", 6), 1);
    assert_int_equal(cred_verify(c, "secreT", 6), 0);
    cred_free(c);
    /* DES crypt */
    memset(&cd, 0, sizeof(cd));
    snprintf(des, sizeof(des), "{CRYPT}%s", crypt_r("secret", "ab", &cd));
    assert_int_equal(cred_parse(&c, (const unsigned char *)des, strlen(des), &err), DM_OK);
    assert_string_equal(c->scheme, "CRYPT-DES");
    assert_true(cred_is_weak(c->scheme));
    assert_int_equal(cred_verify(c, "secret", 6), 1);
    assert_int_equal(cred_verify(c, "secrex", 6), 0);
    cred_free(c);
    /* strong hashes made here verify, and are not weak */
    for (int alg = 0; alg < 2; alg++) {
        struct cred_hash_params p = {alg == 0 ? CRED_HASH_ARGON2 : CRED_HASH_PBKDF2_SHA512, 2, 1024,
                                     1, 5000};
        assert_int_equal(cred_hash(&h, &p, "Pässwörd 1", strlen("Pässwörd 1"), &err), DM_OK);
        assert_string_equal(scheme(h), alg == 0 ? "ARGON2" : "PBKDF2-SHA512");
        assert_non_null(strstr(h, alg == 0 ? "{ARGON2}$argon2id$v=19$m=1024,t=2,p=1$"
                                           : "{PBKDF2-SHA512}5000$"));
        assert_int_equal(cred_parse(&c, (const unsigned char *)h, strlen(h), &err), DM_OK);
        assert_false(cred_is_weak(c->scheme));
        assert_int_equal(cred_verify(c, "Pässwörd 1", strlen("Pässwörd 1")), 1);
        assert_int_equal(cred_verify(c, "Pässwörd 2", strlen("Pässwörd 2")), 0);
        cred_free(c);
        cred_hash_free(h);
        h = NULL;
    }
    {
        struct cred_hash_params bad = {CRED_HASH_PBKDF2_SHA512, 0, 0, 0, 10};
        assert_int_equal(cred_hash(&h, &bad, "x", 1, &err), DM_EINVAL);
        assert_null(h);
    }
    assert_false(cred_is_weak("SSHA512"));
    assert_false(cred_is_weak("CRYPT-SHA512"));
    assert_false(cred_is_weak("LOCKED"));
}

static void test_cred__malformed(void **state)
{
    (void)state;
    expect_malformed("{SSHA}3bsYusEQw420JTi/gBXD3K1JWdCoNKd!"); /* bad char */
    expect_malformed("{SSHA}3bsYusEQw420JTi/gBXD3K1JWdCoNKd");  /* bad length */
    expect_malformed("{SSHA}5en6G6MezRroT3XKqkdPOmY/BfQ=");     /* no salt */
    expect_malformed("{SHA}3bsYusEQw420JTi/gBXD3K1JWdCoNKdk");  /* digest + extra */
    expect_malformed("{MD5}5en6G6MezRroT3XKqkdPOmY/BfQ=");      /* 20 bytes, not 16 */
    expect_malformed("{SHA}");
    expect_malformed("{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unol=="); /* non-canonical */
    expect_malformed("{CRYPT}$2b$04$abcdefghijklmnopqrstuuTooShortHash");
    expect_malformed("{CRYPT}$2b$04$abcdefghijklmnopqrstuu0123456789012345678901234567890x");
    expect_malformed("{CRYPT}$2b$x4$abcdefghijklmnopqrstuu012345678901234567890123456789");
    expect_malformed("{CRYPT}$2b$04$abcdefghijklmnopqrstuu01234567890123456789012345678!");
    expect_malformed("{CRYPT}$2b$99$abcdefghijklmnopqrstuu012345678901234567890123456789");
    expect_malformed("{PBKDF2-SHA256}10x00$PvGiSaxi7xgv1XD3wrgWog$5xSUvGc1");
    expect_malformed("{PBKDF2-SHA256}$PvGiSaxi7xgv1XD3wrgWog$5xSUvGc1");
    expect_malformed("{PBKDF2-SHA256}10000$PvGiSaxi7xgv1XD3wrgWog");
    expect_malformed("{PBKDF2-SHA256}10000$PvGi*axi7xgv1XD3wrgWog$5xSUvGc1");
    expect_malformed("{PBKDF2-SHA256}10000$PvGiSaxi7xgv1XD3wrgWog$5xSUvGc1"); /* DK size */
    expect_malformed("{PBKDF2-SHA512}99999999999999999999$PvGiSaxi7xgv1XD3wrgWog$5xSU");
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
        cmocka_unit_test(test_cred__contract_examples_verify),
        cmocka_unit_test(test_cred__sha2_and_md5_verify),
        cmocka_unit_test(test_cred__pbkdf2_verify),
        cmocka_unit_test(test_cred__bcrypt_verify),
        cmocka_unit_test(test_cred__cleartext_is_hashed),
        cmocka_unit_test(test_cred__hook_schemes),
        cmocka_unit_test(test_cred__malformed),
        cmocka_unit_test(test_cred__locked_values),
        cmocka_unit_test(test_cred__verify_schemes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
