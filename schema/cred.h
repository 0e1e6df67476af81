/*
 * cred.h: password-hash formats found in userPassword: classification and parsing. What a
 * target does with a credential (import it, create the user for the password-import
 * hook, or create it without a password when the value is LOCKED) is the target
 * connector's own table and wire format (conn_ops.cred_outcome; e.g.
 * connectors/okta_cred.h); this module knows no target.
 *
 * cred_scheme() names the scheme of one userPassword value without printing or copying
 * it: "SSHA", "SSHA512", "CRYPT-SHA512" ($6$), "CRYPT-BCRYPT" ($2a$/$2b$/$2y$),
 * "PBKDF2-SHA256", "ARGON2", "CLEARTEXT" (no {TAG}), "UNKNOWN" ({TAG} not recognised),
 * "LOCKED" (a lock marker or placeholder, below)...
 * Used by plan/run to count users per scheme. For an LDAP target every scheme is carried
 * byte-exact (LOCKED too: the target then refuses what the source refused).
 *
 * Locked and placeholder values (cred_is_locked()) are never a password: NIS, pam_ldap and
 * shadow-style directories write "*" (locked system account), "!" or "!!" (Linux: locked,
 * "!!" = never set; "!"+hash = a hash locked by usermod -L), "x" (the password lives in
 * /etc/shadow), "*LK*" and "NP" (Solaris: locked, no password), the same behind {CRYPT}
 * ({CRYPT}*, {CRYPT}!$6$..., {CRYPT}x) and empty values. slapd compares an untagged value
 * as cleartext, so a bind with the password "*" succeeds against "userPassword: *": such a
 * value must never be hashed as cleartext, imported or verified by the hook. A user whose
 * value is LOCKED is created without a usable password.
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

/* 1 when the value (len bytes) is a lock marker or placeholder, never a password: empty;
 * untagged and "*", "x", "NP" or "*LK*", or starting with '*' or '!'; or {CRYPT} (any
 * case) followed by one of those (or by nothing). 0 otherwise. */
int cred_is_locked(const unsigned char *v, size_t len);

/* 1 when a typed password (len bytes) is exactly one of the placeholder tokens "*", "!",
 * "!!", "x", "NP", "*LK*" (never a real password worth a bind; the hook refuses it
 * whatever the directory says, in case it cannot read userPassword). */
int cred_is_placeholder_token(const char *pw, size_t len);

enum cred_kind {
    CRED_KIND_NONE,      /* no value at all (NULL): no password */
    CRED_KIND_LOCKED,    /* cred_is_locked(): a lock marker or placeholder, no password */
    CRED_KIND_CLEARTEXT, /* no {TAG}: digest holds the password bytes */
    CRED_KIND_DIGEST,    /* {SHA} {SSHA} {SHA2..} {SSHA2..} {MD5} {SMD5} */
    CRED_KIND_PBKDF2,    /* {PBKDF2*}: md is the PRF hash, digest the derived key */
    CRED_KIND_BCRYPT,    /* {CRYPT}$2a$ / $2b$ / $2y$ */
    CRED_KIND_OTHER      /* recognised or not, but not parsed further: hook; for {CRYPT}
                          * (not bcrypt) and {ARGON2} digest holds the payload string */
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
    CRED_HOOK,   /* the user needs the password-import hook; the reason says why */
    CRED_LOCKED  /* a lock marker or placeholder (CRED_KIND_LOCKED): the user gets no
                  * password at all, never the hook (the source would verify "*" against
                  * "*"), and where the target has one a locked or password-less state */
};

/*
 * Checks a password (len bytes, no NUL) against a parsed value, in constant time where the
 * scheme allows: DIGEST (digest of pw || salt), CLEARTEXT, PBKDF2 (OpenSSL), BCRYPT and
 * the other {CRYPT} schemes (crypt(3) of libxcrypt), ARGON2 (libargon2). Returns 1 when
 * it matches, 0 when not (LOCKED and NONE never match), -1 when the scheme cannot be
 * checked here (UNKNOWN).
 */
int cred_verify(const struct cred *c, const char *pw, size_t len);

/* Schemes replaced by a strong hash after a verified sign-in (hook.rehash): MD5, SMD5,
 * SHA, SSHA, CLEARTEXT, CRYPT-DES, CRYPT-MD5 (unsalted or fast single-pass digests and
 * crypt(3) schemes that are broken). 1 when scheme (a cred_scheme() name) is one. */
int cred_is_weak(const char *scheme);

/* A strong hash for an LDAP target that verifies it itself. */
enum cred_hash_alg {
    CRED_HASH_ARGON2,       /* {ARGON2}$argon2id$v=19$m=..,t=..,p=..$salt$hash: slapd's
                             * argon2 module (libargon2) */
    CRED_HASH_PBKDF2_SHA512 /* {PBKDF2-SHA512}<iter>$<ab64 salt>$<ab64 key>: pw-pbkdf2
                             * (slapd-contrib), 64-byte key */
};

struct cred_hash_params {
    enum cred_hash_alg alg;
    unsigned argon2_t;          /* passes (>= 1) */
    unsigned argon2_m_kib;      /* memory in KiB (>= 8) */
    unsigned argon2_p;          /* lanes (>= 1) */
    unsigned long pbkdf2_iters; /* >= 1000 */
};

/* Hashes the password (len bytes) with a fresh random 16-byte salt into a userPassword
 * value. *out is a new NUL-terminated string (secret material: the caller wipes and frees
 * it with cred_hash_free()). DM_EINVAL for bad parameters, DM_EINTERNAL when the library
 * fails or there is no randomness, DM_ENOMEM. */
int cred_hash(char **out, const struct cred_hash_params *p, const char *pw, size_t len,
              struct dm_err *err) DM_MUST_USE;

/* Wipes and frees a value from cred_hash(). NULL-safe. */
void cred_hash_free(char *h);

#endif
