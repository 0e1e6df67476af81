/*
 * connectors/auth0_cred.c: the Auth0 connector's credential table and custom_password_hash
 * translation (auth0_cred.h).
 */
#include <config.h>
#include "connectors/auth0_cred.h"
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH0_CLEAR_ITERATIONS 100000
#define AUTH0_CLEAR_SALT 16
#define AUTH0_CLEAR_KEYLEN 64

static const char *digest_alg(enum cred_md md)
{
    switch (md) {
    case CRED_MD_MD5:
        return "md5";
    case CRED_MD_SHA1:
        return "sha1";
    case CRED_MD_SHA256:
        return "sha256";
    case CRED_MD_SHA512:
        return "sha512";
    default:
        return NULL;
    }
}

enum cred_outcome auth0_cred_outcome(const struct cred *c, const char **reason)
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
    case CRED_KIND_CLEARTEXT:
    case CRED_KIND_BCRYPT:
        break;
    case CRED_KIND_DIGEST:
        /* sha384 goes as the ldap form; the rest as a digest with the salt's position */
        if (digest_alg(c->md) == NULL && c->md != CRED_MD_SHA384) {
            why = "scheme not supported by Auth0";
        }
        break;
    case CRED_KIND_PBKDF2:
        if (c->md != CRED_MD_SHA1 && c->md != CRED_MD_SHA256 && c->md != CRED_MD_SHA512) {
            why = "PBKDF2 digest not supported by Auth0";
        }
        break;
    case CRED_KIND_OTHER:
        if (strcmp(c->scheme, "ARGON2") != 0) {
            why = "scheme not supported by Auth0";
        }
        break;
    }
    if (reason != NULL) {
        *reason = why;
    }
    return why != NULL ? CRED_HOOK : CRED_IMPORT;
}

/* Base64 of n bytes, standard alphabet, with or without padding; new string or NULL. */
static char *b64(const unsigned char *p, size_t n, int pad)
{
    char *s = malloc(4 * ((n + 2) / 3) + 1);
    int len;

    if (s == NULL) {
        return NULL;
    }
    len = EVP_EncodeBlock((unsigned char *)s, p, (int)n);
    while (!pad && len > 0 && s[len - 1] == '=') {
        s[--len] = '\0';
    }
    return s;
}

static void wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static json_t *phc_pbkdf2(const char *md, unsigned long iter, const unsigned char *salt,
                          size_t slen, const unsigned char *dk, size_t dklen)
{
    char *s = b64(salt, slen, 0), *h = b64(dk, dklen, 0), *phc = NULL;
    json_t *o = NULL;

    if (s != NULL && h != NULL &&
        asprintf(&phc, "$pbkdf2-%s$i=%lu,l=%zu$%s$%s", md, iter, dklen, s, h) >= 0) {
        o = json_pack("{s:s,s:{s:s,s:s}}", "algorithm", "pbkdf2", "hash", "value", phc, "encoding",
                      "utf8");
    }
    free(s);
    wipe_free(h);
    wipe_free(phc);
    return o;
}

static int hash_cleartext(json_t **out, const struct cred *c, struct dm_err *err)
{
    unsigned char salt[AUTH0_CLEAR_SALT], dk[AUTH0_CLEAR_KEYLEN];

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return dm_err_set(err, DM_EINTERNAL, "no random bytes for a password salt");
    }
    if (PKCS5_PBKDF2_HMAC((const char *)c->digest, (int)c->digest_len, salt, sizeof(salt),
                          AUTH0_CLEAR_ITERATIONS, EVP_sha512(), sizeof(dk), dk) != 1) {
        return dm_err_set(err, DM_EINTERNAL, "PBKDF2 failed");
    }
    *out = phc_pbkdf2("sha512", AUTH0_CLEAR_ITERATIONS, salt, sizeof(salt), dk, sizeof(dk));
    explicit_bzero(dk, sizeof(dk));
    return *out != NULL ? DM_OK : dm_err_set(err, DM_ENOMEM, "out of memory");
}

int auth0_cred_hash(json_t **out, const struct cred *c, const unsigned char *raw, size_t rawlen,
                    struct dm_err *err)
{
    json_t *o = NULL;
    char *tmp = NULL, *salt = NULL;

    *out = NULL;
    if (auth0_cred_outcome(c, NULL) != CRED_IMPORT) {
        return dm_err_set(err, DM_EINVAL, "%s: no Auth0 form", c->scheme);
    }
    switch (c->kind) {
    case CRED_KIND_CLEARTEXT:
        return hash_cleartext(out, c, err);
    case CRED_KIND_DIGEST:
        if (c->md == CRED_MD_SHA384) {
            /* the ldap algorithm reads the RFC 2307 value itself (no salt object) */
            tmp = strndup((const char *)raw, rawlen);
            o = tmp != NULL ? json_pack("{s:s,s:{s:s,s:s}}", "algorithm", "ldap", "hash", "value",
                                        tmp, "encoding", "utf8")
                            : NULL;
            break;
        }
        tmp = b64(c->digest, c->digest_len, 1);
        if (tmp != NULL) {
            o = json_pack("{s:s,s:{s:s,s:s}}", "algorithm", digest_alg(c->md), "hash", "value", tmp,
                          "encoding", "base64");
        }
        if (o != NULL && c->salt_len > 0) {
            salt = b64(c->salt, c->salt_len, 1);
            if (salt == NULL ||
                json_object_set_new(o, "salt",
                                    json_pack("{s:s,s:s,s:s}", "value", salt, "encoding", "base64",
                                              "position", "suffix")) != 0) {
                json_decref(o);
                o = NULL;
            }
        }
        break;
    case CRED_KIND_PBKDF2:
        o = phc_pbkdf2(c->md == CRED_MD_SHA1     ? "sha1"
                       : c->md == CRED_MD_SHA256 ? "sha256"
                                                 : "sha512",
                       c->iterations, c->salt, c->salt_len, c->digest, c->digest_len);
        break;
    case CRED_KIND_BCRYPT:
        if (asprintf(&tmp, "$2%c$%02d$%s%s", c->bcrypt_variant, c->bcrypt_cost, c->bcrypt_salt,
                     c->bcrypt_hash) < 0) {
            tmp = NULL;
        }
        o = tmp != NULL ? json_pack("{s:s,s:{s:s,s:s}}", "algorithm", "bcrypt", "hash", "value",
                                    tmp, "encoding", "utf8")
                        : NULL;
        break;
    case CRED_KIND_OTHER: /* ARGON2: the PHC string after the tag */
        if (rawlen > 8 && strncasecmp((const char *)raw, "{ARGON2}", 8) == 0) {
            tmp = strndup((const char *)raw + 8, rawlen - 8);
        }
        if (tmp == NULL || strncmp(tmp, "$argon2", 7) != 0) {
            wipe_free(tmp);
            dm_err_attr(err, "userPassword");
            return dm_err_set(err, DM_EINVAL,
                              "userPassword ARGON2 value is malformed: not a PHC "
                              "string");
        }
        o = json_pack("{s:s,s:{s:s,s:s}}", "algorithm", "argon2", "hash", "value", tmp, "encoding",
                      "utf8");
        break;
    case CRED_KIND_NONE:
    case CRED_KIND_LOCKED:
        break;
    }
    wipe_free(tmp);
    wipe_free(salt);
    if (o == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    *out = o;
    return DM_OK;
}
