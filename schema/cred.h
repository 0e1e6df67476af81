/*
 * cred.h: password-hash formats found in userPassword: classification and parsing. What a
 * target does with a credential (import it, or create the user for the password-import
 * hook) is the target connector's own table and wire format (conn_ops.cred_outcome; e.g.
 * connectors/okta_cred.h); this module knows no target.
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
 * cred_free() wipes it.
 */
#ifndef DM_CRED_H
#define DM_CRED_H

#include <stddef.h>
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

/* What a target does with a user's credential (conn_ops.cred_outcome). */
enum cred_outcome {
    CRED_IMPORT, /* the connector sends it in a form the target checks at sign-in */
    CRED_HOOK    /* the user needs the password-import hook; the reason says why */
};

#endif
