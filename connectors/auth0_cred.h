/*
 * connectors/auth0_cred.h: what the Auth0 connector does with a user's source credential
 * (its conn_ops.cred_outcome) and the `custom_password_hash` object it imports
 * (the import schema's algorithms: argon2, bcrypt, hmac, ldap, md5, sha1, sha256, sha512,
 * pbkdf2, scrypt; each with its own hash encoding):
 *
 *   {SSHA} {SSHA256} {SSHA512} {SMD5}  sha1 / sha256 / sha512 / md5, hash and salt base64,
 *                                      salt position suffix (RFC 2307: digest(pw ‖ salt))
 *   {SHA} {SHA256} {SHA512} {MD5}      the same without a salt
 *   {SSHA384} {SHA384}                 ldap: the userPassword string itself, utf8 (Auth0
 *                                      has no sha384 algorithm but reads the LDAP form)
 *   {CRYPT}$2a$ $2b$ $2y$              bcrypt: the MCF string, utf8
 *   {PBKDF2} {PBKDF2-SHA1|256|512}     pbkdf2: $pbkdf2-<digest>$i=<iter>,l=<keylen>$<salt>
 *                                      $<hash> (base64 without padding), utf8
 *   {ARGON2}$argon2i|d|id$...          argon2: the PHC string, utf8
 *   cleartext                          pbkdf2-sha512, 100,000 iterations, a fresh 16-byte
 *                                      salt, hashed here (the cleartext never leaves)
 *   everything else                    the hook (Auth0's custom-database lazy migration):
 *                                      {CRYPT} $1$ $5$ $6$ DES..., unknown schemes, none
 *   lock markers                       locked: "*", "!", "!!hash", "x", "*LK*", "NP",
 *                                      {CRYPT}*, {CRYPT}!..., empty (schema/cred.h): the user
 *                                      is imported without a password (so Auth0 never asks
 *                                      the custom database, and the hook, for it)
 */
#ifndef DM_AUTH0_CRED_H
#define DM_AUTH0_CRED_H

#include <jansson.h>
#include "agent/util/err.h"
#include "schema/cred.h"

/* CRED_IMPORT, CRED_HOOK or CRED_LOCKED (with a static, secret-free *reason when reason is
 * not NULL). */
enum cred_outcome auth0_cred_outcome(const struct cred *c, const char **reason);

/* The custom_password_hash object for c, whose userPassword value is raw (rawlen bytes; the
 * ldap and argon2 forms are taken from it as written). *out is a new object (secret
 * material: send it, never log it; json_decref()). CRED_HOOK and CRED_LOCKED credentials:
 * DM_EINVAL. */
int auth0_cred_hash(json_t **out, const struct cred *c, const unsigned char *raw, size_t rawlen,
                    struct dm_err *err) DM_MUST_USE;

#endif
