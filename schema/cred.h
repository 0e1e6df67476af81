/*
 * cred.h: password-hash formats found in userPassword (first version: classification).
 *
 * cred_scheme() names the scheme of one userPassword value without printing or copying
 * it: "SSHA", "SSHA512", "CRYPT-SHA512" ($6$), "CRYPT-BCRYPT" ($2a$/$2b$/$2y$),
 * "PBKDF2-SHA256", "ARGON2", "CLEARTEXT" (no {TAG}), "UNKNOWN" ({TAG} not recognised)...
 * Used by plan/run to count users per scheme. For an LDAP target every scheme is carried
 * byte-exact; translation for other targets comes with issue 4.
 */
#ifndef DM_CRED_H
#define DM_CRED_H

#include <stddef.h>

/* Static scheme name for the value (len bytes). */
const char *cred_scheme(const unsigned char *v, size_t len);

#endif
