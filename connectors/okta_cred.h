/*
 * connectors/okta_cred.h: what the Okta connector does with a user's source credential
 * (its conn_ops.cred_outcome) and the `credentials.password.hash` object it sends
 * (POST /api/v1/users, credentials.password.hash). Moved from schema/cred (cred_okta_outcome ->
 * okta_cred_outcome, cred_to_okta -> okta_cred_hash), unchanged otherwise:
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
 *   lock markers          locked     "*", "!", "!!hash", "x", "*LK*", "NP", {CRYPT}*,
 *                                    {CRYPT}!..., empty (schema/cred.h): no credentials,
 *                                    created STAGED, never the hook
 */
#ifndef DM_OKTA_CRED_H
#define DM_OKTA_CRED_H

#include <jansson.h>
#include "agent/util/err.h"
#include "schema/cred.h"

/* What okta_cred_hash() will do with c, without building anything (no hashing of a
 * cleartext): CRED_IMPORT, CRED_HOOK or CRED_LOCKED with *reason as below (reason may be
 * NULL). */
enum cred_outcome okta_cred_outcome(const struct cred *c, const char **reason);

/* Translates c for Okta. On CRED_IMPORT, *hash_out is a new JSON object (caller
 * json_decref()s it; it is secret material: send it, never log it) and *reason is NULL. On
 * CRED_HOOK or CRED_LOCKED, *hash_out is NULL and *reason a static, secret-free text ("scheme not
 * supported by Okta", "PBKDF2 iteration count below 4096"...). reason may be NULL.
 * Cleartext is hashed here (SHA-512, random 16-byte salt, POSTFIX), so two calls give
 * different hashes. Errors: DM_ENOMEM, DM_EINTERNAL (no randomness). */
int okta_cred_hash(json_t **hash_out, enum cred_outcome *outcome, const char **reason,
                   const struct cred *c, struct dm_err *err) DM_MUST_USE;

#endif
