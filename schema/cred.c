#include <config.h>
#include "schema/cred.h"
#include <argon2.h>
#include <crypt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

/*
 * userPassword scheme classification. The value is only looked at, never copied, logged or
 * returned: the result is always one of the static names below.
 *
 * Tag detection follows OpenLDAP's lutil_passwd(): a value is "tagged" when it starts
 * with '{' and has a '}' at least two bytes later; anything else (including "{}" and a
 * '{' without '}') is compared as cleartext by slapd, so it is CLEARTEXT here. Tags are
 * matched case-insensitively (lutil uses strncasecmp). A stored "{CLEARTEXT}x" is an
 * unknown scheme for slapd (it stores cleartext untagged), hence UNKNOWN.
 */

static const struct {
    const char *tag;  /* between the braces */
    const char *name; /* returned name */
} tags[] = {
    {"SSHA", "SSHA"},
    {"SHA", "SHA"},
    {"SSHA256", "SSHA256"},
    {"SSHA384", "SSHA384"},
    {"SSHA512", "SSHA512"},
    {"SHA256", "SHA256"},
    {"SHA384", "SHA384"},
    {"SHA512", "SHA512"},
    {"MD5", "MD5"},
    {"SMD5", "SMD5"},
    {"PBKDF2", "PBKDF2"},
    {"PBKDF2-SHA1", "PBKDF2-SHA1"},
    {"PBKDF2-SHA256", "PBKDF2-SHA256"},
    {"PBKDF2-SHA512", "PBKDF2-SHA512"},
    {"ARGON2", "ARGON2"},
};

/* True when p (n bytes) starts with prefix. */
static int has_prefix(const unsigned char *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);

    return n >= k && memcmp(p, prefix, k) == 0;
}

/* Characters of the crypt(3) "./0-9A-Za-z" alphabet. */
static int is_crypt64(unsigned char c)
{
    return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

/* {CRYPT} payload: libxcrypt prefixes (crypt(5)). */
static const char *crypt_scheme(const unsigned char *p, size_t n)
{
    size_t i;

    if (has_prefix(p, n, "$1$")) {
        return "CRYPT-MD5";
    }
    if (has_prefix(p, n, "$5$")) {
        return "CRYPT-SHA256";
    }
    if (has_prefix(p, n, "$6$")) {
        return "CRYPT-SHA512";
    }
    if (has_prefix(p, n, "$2a$") || has_prefix(p, n, "$2b$") || has_prefix(p, n, "$2y$")) {
        return "CRYPT-BCRYPT";
    }
    if (has_prefix(p, n, "$y$")) {
        return "CRYPT-YESCRYPT";
    }
    if (has_prefix(p, n, "$7$")) {
        return "CRYPT-SCRYPT";
    }
    /* Traditional DES: 2 salt characters plus 11 hash characters. */
    if (n == 13) {
        for (i = 0; i < n && is_crypt64(p[i]); i++) {
        }
        if (i == n) {
            return "CRYPT-DES";
        }
    }
    return "CRYPT-OTHER";
}

/* An untagged lock marker or placeholder (also the payload after {CRYPT}). */
static int placeholder(const unsigned char *p, size_t n)
{
    if (n == 0 || p[0] == '*' || p[0] == '!') {
        return 1; /* "", "*", "*LK*", "!", "!!", "!<hash>" */
    }
    return (n == 1 && p[0] == 'x') || (n == 2 && p[0] == 'N' && p[1] == 'P');
}

int cred_is_locked(const unsigned char *v, size_t len)
{
    if (v == NULL || len == 0) {
        return 1;
    }
    if (len >= 7 && strncasecmp((const char *)v, "{CRYPT}", 7) == 0) {
        return placeholder(v + 7, len - 7);
    }
    return placeholder(v, len);
}

int cred_is_placeholder_token(const char *pw, size_t len)
{
    static const char *const tokens[] = {"*", "!", "!!", "x", "NP", "*LK*"};

    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        if (len == strlen(tokens[i]) && memcmp(pw, tokens[i], len) == 0) {
            return 1;
        }
    }
    return 0;
}

const char *cred_scheme(const unsigned char *v, size_t len)
{
    const unsigned char *close;
    size_t taglen;

    if (v != NULL && cred_is_locked(v, len)) {
        return "LOCKED";
    }
    if (v == NULL || len < 3 || v[0] != '{') {
        return "CLEARTEXT";
    }
    close = memchr(v + 1, '}', len - 1);
    if (close == NULL || close < v + 2) {
        return "CLEARTEXT";
    }
    taglen = (size_t)(close - v - 1);
    if (taglen == 5 && strncasecmp((const char *)v + 1, "CRYPT", 5) == 0) {
        return crypt_scheme(close + 1, len - taglen - 2);
    }
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        if (strlen(tags[i].tag) == taglen &&
            strncasecmp((const char *)v + 1, tags[i].tag, taglen) == 0) {
            return tags[i].name;
        }
    }
    return "UNKNOWN";
}

/* ---- parsing: the formats slapd writes and checks (slappasswd, lutil_passwd) ---- */

#define CRED_MAX_ITERATIONS 100000000UL

static int b64_val(unsigned char c, int ab64)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || (ab64 && c == '.')) {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

/*
 * Decodes base64 (n bytes at p) into a new buffer. Strict standard base64 (length a multiple
 * of 4, '=' only as final padding) unless ab64: passlib's "adapted base64" that pw-pbkdf2
 * reads, '.' for '+', padding optional (both '+' and '=' are tolerated). Returns 0 or -1
 * (malformed, or out of memory when *out stays NULL and *oom is set).
 */
static int b64_decode(unsigned char **out, size_t *out_len, const unsigned char *p, size_t n,
                      int ab64, int *oom)
{
    unsigned char *buf;
    size_t pad = 0, i, o = 0, data;
    unsigned int acc = 0;
    int bits = 0;

    *out = NULL;
    *out_len = 0;
    while (pad < 2 && pad < n && p[n - 1 - pad] == '=') {
        pad++;
    }
    data = n - pad;
    if (!ab64 && (n % 4 != 0 || n == 0)) {
        return -1;
    }
    if (ab64 && (data % 4 == 1 || (pad > 0 && n % 4 != 0) || data == 0)) {
        return -1;
    }
    buf = malloc(data * 3 / 4 + 1);
    if (buf == NULL) {
        *oom = 1;
        return -1;
    }
    for (i = 0; i < data; i++) {
        int v = b64_val(p[i], ab64);

        if (v < 0) {
            explicit_bzero(buf, data * 3 / 4 + 1);
            free(buf);
            return -1;
        }
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero (canonical encoding) and a lone 6-bit group is invalid. */
    if (acc != 0) {
        explicit_bzero(buf, data * 3 / 4 + 1);
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = o;
    return 0;
}

static size_t md_size(enum cred_md md)
{
    switch (md) {
    case CRED_MD_MD5:
        return 16;
    case CRED_MD_SHA1:
        return 20;
    case CRED_MD_SHA256:
        return 32;
    case CRED_MD_SHA384:
        return 48;
    case CRED_MD_SHA512:
        return 64;
    default:
        return 0;
    }
}

static const struct {
    const char *scheme; /* cred_scheme() name */
    enum cred_md md;
    int salted;
} digest_schemes[] = {
    {"SHA", CRED_MD_SHA1, 0},       {"SSHA", CRED_MD_SHA1, 1},      {"SHA256", CRED_MD_SHA256, 0},
    {"SSHA256", CRED_MD_SHA256, 1}, {"SHA384", CRED_MD_SHA384, 0},  {"SSHA384", CRED_MD_SHA384, 1},
    {"SHA512", CRED_MD_SHA512, 0},  {"SSHA512", CRED_MD_SHA512, 1}, {"MD5", CRED_MD_MD5, 0},
    {"SMD5", CRED_MD_MD5, 1},
};

static const struct {
    const char *scheme;
    enum cred_md md;
} pbkdf2_schemes[] = {
    {"PBKDF2", CRED_MD_SHA1},
    {"PBKDF2-SHA1", CRED_MD_SHA1},
    {"PBKDF2-SHA256", CRED_MD_SHA256},
    {"PBKDF2-SHA512", CRED_MD_SHA512},
};

static int bad(struct dm_err *err, const char *scheme, const char *what)
{
    dm_err_attr(err, "userPassword");
    return dm_err_set(err, DM_EINVAL, "userPassword %s value is malformed: %s", scheme, what);
}

static int oom(struct dm_err *err)
{
    return dm_err_set(err, DM_ENOMEM, "out of memory parsing userPassword");
}

/* {SHA} {SSHA} ...: b64( digest ‖ salt ). */
static int parse_digest(struct cred *c, const unsigned char *p, size_t n, int salted,
                        struct dm_err *err)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0, dlen = md_size(c->md);
    int nomem = 0;

    if (b64_decode(&raw, &raw_len, p, n, 0, &nomem) != 0) {
        return nomem ? oom(err) : bad(err, c->scheme, "payload is not valid base64");
    }
    if ((!salted && raw_len != dlen) || (salted && raw_len <= dlen)) {
        explicit_bzero(raw, raw_len);
        free(raw);
        return bad(err, c->scheme,
                   salted ? "decoded length leaves no salt after the digest"
                          : "decoded length is not the digest size");
    }
    c->digest = raw;
    c->digest_len = dlen;
    if (salted) {
        c->salt = malloc(raw_len - dlen);
        if (c->salt == NULL) {
            return oom(err);
        }
        memcpy(c->salt, raw + dlen, raw_len - dlen);
        c->salt_len = raw_len - dlen;
        explicit_bzero(raw + dlen, raw_len - dlen);
    }
    return DM_OK;
}

/* {PBKDF2-*}: <iterations>$<ab64 salt>$<ab64 DK>. */
static int parse_pbkdf2(struct cred *c, const unsigned char *p, size_t n, struct dm_err *err)
{
    const unsigned char *d1, *d2, *end = p + n;
    unsigned long it = 0;
    int nomem = 0;

    d1 = memchr(p, '$', n);
    if (d1 == NULL || d1 == p) {
        return bad(err, c->scheme, "expected <iterations>$<salt>$<key>");
    }
    d2 = memchr(d1 + 1, '$', (size_t)(end - d1 - 1));
    if (d2 == NULL) {
        return bad(err, c->scheme, "expected <iterations>$<salt>$<key>");
    }
    for (const unsigned char *q = p; q < d1; q++) {
        if (*q < '0' || *q > '9') {
            return bad(err, c->scheme, "iteration count is not a number");
        }
        it = it * 10 + (unsigned long)(*q - '0');
        if (it > CRED_MAX_ITERATIONS) {
            return bad(err, c->scheme, "iteration count out of range");
        }
    }
    if (it == 0) {
        return bad(err, c->scheme, "iteration count is zero");
    }
    c->iterations = it;
    if (b64_decode(&c->salt, &c->salt_len, d1 + 1, (size_t)(d2 - d1 - 1), 1, &nomem) != 0) {
        return nomem ? oom(err) : bad(err, c->scheme, "salt is not valid base64");
    }
    if (b64_decode(&c->digest, &c->digest_len, d2 + 1, (size_t)(end - d2 - 1), 1, &nomem) != 0) {
        return nomem ? oom(err) : bad(err, c->scheme, "derived key is not valid base64");
    }
    /* pw-pbkdf2 only verifies a DK of exactly the hash size. */
    if (c->digest_len != md_size(c->md)) {
        return bad(err, c->scheme, "derived key length is not the hash size");
    }
    return DM_OK;
}

/* $2a$NN$ + 22 salt + 31 hash characters (bcrypt alphabet). */
static int parse_bcrypt(struct cred *c, const unsigned char *p, size_t n, struct dm_err *err)
{
    static const char alpha[] = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t i;

    if (n != 60) {
        return bad(err, c->scheme, "bcrypt string is not 60 characters");
    }
    if (p[4] < '0' || p[4] > '9' || p[5] < '0' || p[5] > '9' || p[6] != '$') {
        return bad(err, c->scheme, "bcrypt cost is not two digits");
    }
    c->bcrypt_variant = (char)p[2];
    c->bcrypt_cost = (p[4] - '0') * 10 + (p[5] - '0');
    if (c->bcrypt_cost < 4 || c->bcrypt_cost > 31) {
        return bad(err, c->scheme, "bcrypt cost out of range 04..31");
    }
    for (i = 7; i < 60; i++) {
        if (p[i] == '\0' || strchr(alpha, p[i]) == NULL) {
            return bad(err, c->scheme, "bcrypt string has a character outside its alphabet");
        }
    }
    memcpy(c->bcrypt_salt, p + 7, 22);
    c->bcrypt_salt[22] = '\0';
    memcpy(c->bcrypt_hash, p + 29, 31);
    c->bcrypt_hash[31] = '\0';
    return DM_OK;
}

int cred_parse(struct cred **out, const unsigned char *v, size_t len, struct dm_err *err)
{
    struct cred *c;
    const unsigned char *payload = NULL;
    size_t plen = 0;
    int rc = DM_OK;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return oom(err);
    }
    c->scheme = cred_scheme(v, len);
    if (v == NULL) {
        c->kind = CRED_KIND_NONE;
        goto done;
    }
    if (strcmp(c->scheme, "LOCKED") == 0) {
        c->kind = CRED_KIND_LOCKED; /* never parsed, never copied */
        goto done;
    }
    if (strcmp(c->scheme, "CLEARTEXT") == 0) {
        c->kind = CRED_KIND_CLEARTEXT;
        c->digest = malloc(len);
        if (c->digest == NULL) {
            rc = oom(err);
            goto done;
        }
        memcpy(c->digest, v, len);
        c->digest_len = len;
        goto done;
    }
    if (strcmp(c->scheme, "UNKNOWN") != 0) {
        /* Tagged: the payload follows the first '}' (cred_scheme() found it). */
        const unsigned char *close = memchr(v, '}', len);

        payload = close + 1;
        plen = len - (size_t)(payload - v);
    }
    c->kind = CRED_KIND_OTHER;
    for (size_t i = 0; i < DM_ARRAY_LEN(digest_schemes); i++) {
        if (strcmp(c->scheme, digest_schemes[i].scheme) == 0) {
            c->kind = CRED_KIND_DIGEST;
            c->md = digest_schemes[i].md;
            rc = parse_digest(c, payload, plen, digest_schemes[i].salted, err);
            goto done;
        }
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(pbkdf2_schemes); i++) {
        if (strcmp(c->scheme, pbkdf2_schemes[i].scheme) == 0) {
            c->kind = CRED_KIND_PBKDF2;
            c->md = pbkdf2_schemes[i].md;
            rc = parse_pbkdf2(c, payload, plen, err);
            goto done;
        }
    }
    if (strcmp(c->scheme, "CRYPT-BCRYPT") == 0) {
        c->kind = CRED_KIND_BCRYPT;
        rc = parse_bcrypt(c, payload, plen, err);
        goto done;
    }
    if (payload != NULL &&
        (strncmp(c->scheme, "CRYPT-", 6) == 0 || strcmp(c->scheme, "ARGON2") == 0)) {
        /* Kept for cred_verify(): crypt(3) and argon2 read the whole string. */
        c->digest = malloc(plen + 1);
        if (c->digest == NULL) {
            rc = oom(err);
            goto done;
        }
        memcpy(c->digest, payload, plen);
        c->digest[plen] = '\0';
        c->digest_len = plen;
    }

done:
    if (rc != DM_OK) {
        cred_free(c);
        return rc;
    }
    *out = c;
    return DM_OK;
}

void cred_free(struct cred *c)
{
    if (c == NULL) {
        return;
    }
    if (c->salt != NULL) {
        explicit_bzero(c->salt, c->salt_len);
        free(c->salt);
    }
    if (c->digest != NULL) {
        explicit_bzero(c->digest, c->digest_len);
        free(c->digest);
    }
    explicit_bzero(c, sizeof(*c));
    free(c);
}

/* ---- verification and strong hashes (hook: lazy migration into LDAP targets) ---- */

static const EVP_MD *evp_of(enum cred_md md)
{
    switch (md) {
    case CRED_MD_MD5:
        return EVP_md5();
    case CRED_MD_SHA1:
        return EVP_sha1();
    case CRED_MD_SHA256:
        return EVP_sha256();
    case CRED_MD_SHA384:
        return EVP_sha384();
    case CRED_MD_SHA512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

/* crypt(3) of the password with setting (a whole crypt string); 1 match, 0 not. */
static int verify_crypt(const char *setting, const char *pw, size_t len)
{
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    char *phrase = malloc(len + 1);
    const char *h;
    int ok = 0;

    if (cd == NULL || phrase == NULL) {
        free(cd);
        free(phrase);
        return 0;
    }
    memcpy(phrase, pw, len);
    phrase[len] = '\0';
    h = crypt_rn(phrase, setting, cd, (int)sizeof(*cd));
    /* libxcrypt returns NULL (or a string starting with '*') for an invalid setting */
    ok = h != NULL && h[0] != '*' && strlen(h) == strlen(setting) &&
         CRYPTO_memcmp(h, setting, strlen(h)) == 0;
    explicit_bzero(phrase, len + 1);
    explicit_bzero(cd, sizeof(*cd));
    free(phrase);
    free(cd);
    return ok;
}

int cred_verify(const struct cred *c, const char *pw, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx;
    char setting[64];
    int ok = 0;

    switch (c->kind) {
    case CRED_KIND_NONE:
    case CRED_KIND_LOCKED:
        return 0;
    case CRED_KIND_CLEARTEXT:
        return c->digest_len == len && CRYPTO_memcmp(c->digest, pw, len) == 0;
    case CRED_KIND_DIGEST:
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL) {
            return 0;
        }
        ok = EVP_DigestInit_ex(ctx, evp_of(c->md), NULL) == 1 &&
             EVP_DigestUpdate(ctx, pw, len) == 1 &&
             (c->salt_len == 0 || EVP_DigestUpdate(ctx, c->salt, c->salt_len) == 1) &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == c->digest_len &&
             CRYPTO_memcmp(md, c->digest, mdlen) == 0;
        EVP_MD_CTX_free(ctx);
        explicit_bzero(md, sizeof(md));
        return ok;
    case CRED_KIND_PBKDF2:
        if (c->digest_len > sizeof(md) || c->iterations > INT32_MAX) {
            return 0;
        }
        ok = PKCS5_PBKDF2_HMAC(pw, (int)len, c->salt, (int)c->salt_len, (int)c->iterations,
                               evp_of(c->md), (int)c->digest_len, md) == 1 &&
             CRYPTO_memcmp(md, c->digest, c->digest_len) == 0;
        explicit_bzero(md, sizeof(md));
        return ok;
    case CRED_KIND_BCRYPT:
        snprintf(setting, sizeof(setting), "$2%c$%02d$%s%s", c->bcrypt_variant, c->bcrypt_cost,
                 c->bcrypt_salt, c->bcrypt_hash);
        ok = verify_crypt(setting, pw, len);
        explicit_bzero(setting, sizeof(setting));
        return ok;
    case CRED_KIND_OTHER:
        if (c->digest == NULL) {
            return -1;
        }
        if (strcmp(c->scheme, "ARGON2") == 0) {
            return argon2_verify((const char *)c->digest, pw, len,
                                 strncmp((const char *)c->digest, "$argon2id$", 10) == 0 ? Argon2_id
                                 : strncmp((const char *)c->digest, "$argon2d$", 9) == 0
                                     ? Argon2_d
                                     : Argon2_i) == ARGON2_OK;
        }
        return verify_crypt((const char *)c->digest, pw, len);
    }
    return -1;
}

int cred_is_weak(const char *scheme)
{
    static const char *const weak[] = {"MD5",       "SMD5",      "SHA",      "SSHA",
                                       "CLEARTEXT", "CRYPT-DES", "CRYPT-MD5"};

    for (size_t i = 0; scheme != NULL && i < sizeof(weak) / sizeof(weak[0]); i++) {
        if (strcmp(scheme, weak[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

#define STRONG_SALT_LEN 16
#define ARGON2_HASH_LEN 32

/* Standard base64 to OpenLDAP's "adapted base64" in place: '.' for '+', no padding
 * (contrib/slapd-modules/passwd/pbkdf2, after passlib). */
static void to_ab64(char *s)
{
    for (; *s; s++) {
        if (*s == '+') {
            *s = '.';
        } else if (*s == '=') {
            *s = '\0';
            break;
        }
    }
}

static int hash_pbkdf2(char **out, unsigned long iters, const unsigned char *salt, const char *pw,
                       size_t len, struct dm_err *err)
{
    unsigned char dk[SHA512_DIGEST_LENGTH];
    char salt64[4 * ((STRONG_SALT_LEN + 2) / 3) + 1], dk64[4 * ((sizeof(dk) + 2) / 3) + 1];
    size_t cap = sizeof("{PBKDF2-SHA512}") + 24 + sizeof(salt64) + sizeof(dk64);
    char *h;

    if (PKCS5_PBKDF2_HMAC(pw, (int)len, salt, STRONG_SALT_LEN, (int)iters, EVP_sha512(),
                          (int)sizeof(dk), dk) != 1) {
        return dm_err_set(err, DM_EINTERNAL, "PBKDF2-SHA512 failed");
    }
    EVP_EncodeBlock((unsigned char *)salt64, salt, STRONG_SALT_LEN);
    EVP_EncodeBlock((unsigned char *)dk64, dk, (int)sizeof(dk));
    explicit_bzero(dk, sizeof(dk));
    to_ab64(salt64);
    to_ab64(dk64);
    h = malloc(cap);
    if (h == NULL) {
        explicit_bzero(dk64, sizeof(dk64));
        return oom(err);
    }
    snprintf(h, cap, "{PBKDF2-SHA512}%lu$%s$%s", iters, salt64, dk64);
    explicit_bzero(dk64, sizeof(dk64));
    *out = h;
    return DM_OK;
}

static int hash_argon2(char **out, const struct cred_hash_params *p, const unsigned char *salt,
                       const char *pw, size_t len, struct dm_err *err)
{
    size_t enc = argon2_encodedlen(p->argon2_t, p->argon2_m_kib, p->argon2_p, STRONG_SALT_LEN,
                                   ARGON2_HASH_LEN, Argon2_id);
    char *h = malloc(8 + enc);
    int arc;

    if (h == NULL) {
        return oom(err);
    }
    memcpy(h, "{ARGON2}", 8);
    arc = argon2id_hash_encoded(p->argon2_t, p->argon2_m_kib, p->argon2_p, pw, len, salt,
                                STRONG_SALT_LEN, ARGON2_HASH_LEN, h + 8, enc);
    if (arc != ARGON2_OK) {
        explicit_bzero(h, 8 + enc);
        free(h);
        return dm_err_set(err, arc == ARGON2_MEMORY_ALLOCATION_ERROR ? DM_ENOMEM : DM_EINTERNAL,
                          "argon2id: %s", argon2_error_message(arc));
    }
    *out = h;
    return DM_OK;
}

int cred_hash(char **out, const struct cred_hash_params *p, const char *pw, size_t len,
              struct dm_err *err)
{
    unsigned char salt[STRONG_SALT_LEN];
    int rc;

    *out = NULL;
    if (len == 0 || len > INT32_MAX) {
        return dm_err_set(err, DM_EINVAL, "cred_hash: empty or oversized password");
    }
    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return dm_err_set(err, DM_EINTERNAL, "no random bytes for a password salt");
    }
    switch (p->alg) {
    case CRED_HASH_PBKDF2_SHA512:
        if (p->pbkdf2_iters < 1000 || p->pbkdf2_iters > INT32_MAX) {
            rc = dm_err_set(err, DM_EINVAL, "PBKDF2 iterations out of range");
            break;
        }
        rc = hash_pbkdf2(out, p->pbkdf2_iters, salt, pw, len, err);
        break;
    case CRED_HASH_ARGON2:
    default:
        if (p->argon2_t < 1 || p->argon2_m_kib < 8 * p->argon2_p || p->argon2_p < 1) {
            rc = dm_err_set(err, DM_EINVAL, "argon2 parameters out of range");
            break;
        }
        rc = hash_argon2(out, p, salt, pw, len, err);
        break;
    }
    explicit_bzero(salt, sizeof(salt));
    return rc;
}

void cred_hash_free(char *h)
{
    if (h != NULL) {
        explicit_bzero(h, strlen(h));
        free(h);
    }
}
