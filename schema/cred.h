/*
 * cred.h: password-hash formats found in userPassword: classification, parsing and
 * translation for the Okta import API.
 *
 * cred_scheme() names the scheme of one userPassword value without printing or copying
 * it: "SSHA", "SSHA512", "CRYPT-SHA512" ($6$), "CRYPT-BCRYPT" ($2a$/$2b$/$2y$),
 * "PBKDF2-SHA256", "ARGON2", "CLEARTEXT" (no {TAG}), "UNKNOWN" ({TAG} not recognised)...
 * Used by plan/run to count users per scheme. For an LDAP target every scheme is carried
 * byte-exact.
 *
 * cred_parse() decodes one value (the formats slapd writes and verifies) into a struct cred
 * holding the salt, digest, iterations or bcrypt pieces. A struct cred is secret material:
 * there is no print function, error messages name only the scheme, never the value, and
 * cred_free() wipes it. cred_to_okta() turns it into the `credentials.password.hash` object
 * of Okta's user-create API (credentials.password.hash), or says that the user needs the
 * password hook:
 *
 *   {SSHA}/{SHA}          SHA-1      salted: salt = bytes after the digest, POSTFIX
 *   {SSHA256}/{SHA256}    SHA-256    (same)
 *   {SSHA512}/{SHA512}    SHA-512    (same)
 *   {SMD5}/{MD5}          MD5        (same)
 *   {CRYPT}$2a$/$2b$/$2y$ BCRYPT     workFactor (1..20, else hook), 22-char salt, 31-char value
 *   {PBKDF2-SHA256/512}   PBKDF2     iterationCount >= 4096 (else hook), keySize = DK bytes,
 *                                    SHA256_HMAC / SHA512_HMAC, salt/value standard base64
 *   cleartext             SHA-512    hashed here with a fresh random 16-byte salt, POSTFIX
 *                                    (the cleartext never leaves the agent)
 *   everything else       hook       {SSHA384}/{SHA384}, {PBKDF2}/{PBKDF2-SHA1}, {CRYPT}
 *                                    DES/$1$/$5$/$6$/$y$/..., {ARGON2}, unknown tags, no value
 */
#ifndef DM_CRED_H
#define DM_CRED_H

#include <stddef.h>
#include <jansson.h>
#include "agent/util/err.h"

/* Static scheme name for the value (len bytes). */
const char *cred_scheme(const unsigned char *v, size_t len);

enum cred_kind {
    CRED_KIND_NONE,      /* empty value: no password */
    CRED_KIND_CLEARTEXT, /* no {TAG}: digest holds the password bytes */
    CRED_KIND_DIGEST,    /* {SHA} {SSHA} {SHA2..} {SSHA2..} {MD5} {SMD5} */
    CRED_KIND_PBKDF2,    /* {PBKDF2*}: md is the PRF hash, digest the derived key */
    CRED_KIND_BCRYPT,    /* {CRYPT}$2a$ / $2b$ / $2y$ */
    CRED_KIND_OTHER      /* recognised or not, but not parsed further: hook */
};

enum cred_md {
    CRED_MD_NONE,
    CRED_MD_MD5,
    CRED_MD_SHA1,
    CRED_MD_SHA256,
    CRED_MD_SHA384,
    CRED_MD_SHA512
};

/* Parsed userPassword value. Secret: never print, log or copy it into a message. */
struct cred {
    const char *scheme; /* static cred_scheme() name */
    enum cred_kind kind;
    enum cred_md md;     /* DIGEST: the hash; PBKDF2: the HMAC hash */
    unsigned char *salt; /* DIGEST (salted) / PBKDF2: raw salt bytes, else NULL */
    size_t salt_len;
    unsigned char *digest; /* DIGEST: digest; PBKDF2: DK; CLEARTEXT: password bytes */
    size_t digest_len;
    unsigned long iterations; /* PBKDF2 */
    int bcrypt_cost;          /* BCRYPT: the 2-digit cost */
    char bcrypt_variant;      /* BCRYPT: 'a', 'b' or 'y' */
    char bcrypt_salt[23];     /* BCRYPT: 22 chars + NUL */
    char bcrypt_hash[32];     /* BCRYPT: 31 chars + NUL */
};

/* Parses len bytes of one userPassword value. Returns a new cred (caller frees with
 * cred_free()), also for schemes that are only classified (kind OTHER) and for an empty
 * value (kind NONE). A malformed value of a parsed scheme (bad base64, wrong digest
 * length, bcrypt string of the wrong length or alphabet, non-numeric iterations...) is
 * DM_EINVAL with err->attr "userPassword" and a message naming only the scheme. */
int cred_parse(struct cred **out, const unsigned char *v, size_t len,
               struct dm_err *err) DM_MUST_USE;

/* Wipes (explicit_bzero) and frees. NULL-safe. */
void cred_free(struct cred *c);

enum cred_outcome {
    CRED_IMPORT, /* *hash_out holds the Okta hash object */
    CRED_HOOK    /* the user needs the password-import hook; *reason says why */
};

/* What cred_to_okta() will do with c, without building anything (no hashing of a
 * cleartext): CRED_IMPORT or CRED_HOOK with *reason as below (reason may be NULL). */
enum cred_outcome cred_okta_outcome(const struct cred *c, const char **reason);

/* Translates c for Okta. On CRED_IMPORT, *hash_out is a new JSON object (caller
 * json_decref()s it; it is secret material: send it, never log it) and *reason is NULL. On
 * CRED_HOOK, *hash_out is NULL and *reason a static, secret-free text ("scheme not
 * supported by Okta", "PBKDF2 iteration count below 4096"...). reason may be NULL.
 * Cleartext is hashed here (SHA-512, random 16-byte salt, POSTFIX), so two calls give
 * different hashes. Errors: DM_ENOMEM, DM_EINTERNAL (no randomness). */
int cred_to_okta(json_t **hash_out, enum cred_outcome *outcome, const char **reason,
                 const struct cred *c, struct dm_err *err) DM_MUST_USE;

#endif
