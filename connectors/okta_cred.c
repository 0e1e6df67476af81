/*
 * connectors/okta_cred.c: the Okta connector's credential table and translation
 * (okta_cred.h), moved here from schema/cred.c: schema/cred parses and verifies schemes,
 * this file knows Okta's wire format (credentials.password.hash of POST /api/v1/users).
 */
#include <config.h>
#include "connectors/okta_cred.h"
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

static int oom(struct dm_err *err)
{
    return dm_err_set(err, DM_ENOMEM, "out of memory parsing userPassword");
}

#define OKTA_MIN_PBKDF2_ITERATIONS 4096UL
#define OKTA_MAX_BCRYPT_COST 20
#define CLEARTEXT_SALT_LEN 16

/* Standard base64 with padding as a new JSON string (NULL on ENOMEM). */
static json_t *json_b64(const unsigned char *p, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *s = malloc(cap);
    json_t *j;

    if (s == NULL) {
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)s, p, (int)n);
    j = json_string(s);
    explicit_bzero(s, cap);
    free(s);
    return j;
}

static const char *okta_digest_name(enum cred_md md)
{
    switch (md) {
    case CRED_MD_MD5:
        return "MD5";
    case CRED_MD_SHA1:
        return "SHA-1";
    case CRED_MD_SHA256:
        return "SHA-256";
    case CRED_MD_SHA512:
        return "SHA-512";
    default:
        return NULL;
    }
}

/* Sets key to val (stolen) in o; returns -1 if val is NULL or the set fails. */
static int put(json_t *o, const char *key, json_t *val)
{
    if (val == NULL) {
        return -1;
    }
    return json_object_set_new(o, key, val);
}

/* SHA-512(pw ‖ salt) with a fresh random salt: the cleartext never leaves the agent. */
static int hash_cleartext(json_t *o, const struct cred *c, struct dm_err *err)
{
    unsigned char salt[CLEARTEXT_SALT_LEN];
    unsigned char md[SHA512_DIGEST_LENGTH];
    EVP_MD_CTX *ctx;
    int rc = DM_OK;

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return dm_err_set(err, DM_EINTERNAL, "no random bytes for a password salt");
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return oom(err);
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, c->digest, c->digest_len) != 1 ||
        EVP_DigestUpdate(ctx, salt, sizeof(salt)) != 1 || EVP_DigestFinal_ex(ctx, md, NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return dm_err_set(err, DM_EINTERNAL, "SHA-512 failed");
    }
    EVP_MD_CTX_free(ctx);
    if (put(o, "algorithm", json_string("SHA-512")) != 0 ||
        put(o, "salt", json_b64(salt, sizeof(salt))) != 0 ||
        put(o, "saltOrder", json_string("POSTFIX")) != 0 ||
        put(o, "value", json_b64(md, sizeof(md))) != 0) {
        rc = oom(err);
    }
    explicit_bzero(md, sizeof(md));
    explicit_bzero(salt, sizeof(salt));
    return rc;
}

enum cred_outcome okta_cred_outcome(const struct cred *c, const char **reason)
{
    const char *why = NULL;

    switch (c->kind) {
    case CRED_KIND_NONE:
        why = "no password";
        break;
    case CRED_KIND_LOCKED:
        if (reason != NULL) {
            *reason = "locked or placeholder value: no password";
        }
        return CRED_LOCKED;
    case CRED_KIND_OTHER:
        why = "scheme not supported by Okta";
        break;
    case CRED_KIND_DIGEST:
        if (okta_digest_name(c->md) == NULL) {
            why = "scheme not supported by Okta";
        }
        break;
    case CRED_KIND_PBKDF2:
        if (c->md != CRED_MD_SHA256 && c->md != CRED_MD_SHA512) {
            why = "PBKDF2 with HMAC-SHA1 not supported by Okta";
        } else if (c->iterations < OKTA_MIN_PBKDF2_ITERATIONS) {
            why = "PBKDF2 iteration count below 4096";
        }
        break;
    case CRED_KIND_BCRYPT:
        if (c->bcrypt_cost > OKTA_MAX_BCRYPT_COST) {
            why = "bcrypt cost above 20";
        }
        break;
    case CRED_KIND_CLEARTEXT:
        break;
    }
    if (reason != NULL) {
        *reason = why;
    }
    return why != NULL ? CRED_HOOK : CRED_IMPORT;
}

int okta_cred_hash(json_t **hash_out, enum cred_outcome *outcome, const char **reason,
                   const struct cred *c, struct dm_err *err)
{
    json_t *o = NULL;
    int rc = DM_OK, bad_put = 0;

    *hash_out = NULL;
    *outcome = okta_cred_outcome(c, reason);
    if (*outcome != CRED_IMPORT) {
        return DM_OK;
    }

    o = json_object();
    if (o == NULL) {
        return oom(err);
    }
    switch (c->kind) {
    case CRED_KIND_CLEARTEXT:
        rc = hash_cleartext(o, c, err);
        break;
    case CRED_KIND_DIGEST:
        bad_put |= put(o, "algorithm", json_string(okta_digest_name(c->md)));
        if (c->salt_len > 0) {
            bad_put |= put(o, "salt", json_b64(c->salt, c->salt_len));
            bad_put |= put(o, "saltOrder", json_string("POSTFIX"));
        }
        bad_put |= put(o, "value", json_b64(c->digest, c->digest_len));
        break;
    case CRED_KIND_PBKDF2:
        bad_put |= put(o, "algorithm", json_string("PBKDF2"));
        bad_put |= put(o, "salt", json_b64(c->salt, c->salt_len));
        bad_put |= put(o, "value", json_b64(c->digest, c->digest_len));
        bad_put |= put(o, "iterationCount", json_integer((json_int_t)c->iterations));
        bad_put |= put(o, "keySize", json_integer((json_int_t)c->digest_len));
        bad_put |= put(o, "digestAlgorithm",
                       json_string(c->md == CRED_MD_SHA256 ? "SHA256_HMAC" : "SHA512_HMAC"));
        break;
    case CRED_KIND_BCRYPT:
        /* Okta takes no variant. $2b$ and $2y$ compute the same hash as $2a$ (libxcrypt,
         * crypt_blowfish) except for the 8-bit-character bug of old $2a$ and the 255-byte
         * wraparound of old OpenBSD $2a$; a password hit by either one fails at Okta and
         * falls back to a reset. */
        bad_put |= put(o, "algorithm", json_string("BCRYPT"));
        bad_put |= put(o, "workFactor", json_integer(c->bcrypt_cost));
        bad_put |= put(o, "salt", json_string(c->bcrypt_salt));
        bad_put |= put(o, "value", json_string(c->bcrypt_hash));
        break;
    default:
        break;
    }
    if (rc == DM_OK && bad_put != 0) {
        rc = oom(err);
    }
    if (rc != DM_OK) {
        json_decref(o);
        return rc;
    }
    *hash_out = o;
    *outcome = CRED_IMPORT;
    return DM_OK;
}
