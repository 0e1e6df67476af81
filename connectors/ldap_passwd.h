/*
 * connectors/ldap_passwd.h: reads and replaces the userPassword of one entry in an LDAP
 * target, for the hook's lazy migration (agent/hook_migrate.h).
 *
 * The replacement is a compare-and-swap in one modify, so that it can never overwrite a
 * password set by someone else in the meantime: with an old value, "delete that value, add
 * the new one" (the server refuses the delete, 16 noSuchAttribute, when the value is no
 * longer there); without one, "add" under an LDAP assertion control (RFC 4528) that the
 * entry has no userPassword at all (122 assertionFailed otherwise).
 *
 * One connection, owned by one thread. Call order: ldap_passwd_open -> (read, swap)* ->
 * ldap_passwd_close. A lost connection is reopened once per call. Values are secret: never
 * logged; ldap_passwd_entry_free() wipes them.
 */
#ifndef DM_LDAP_PASSWD_H
#define DM_LDAP_PASSWD_H

#include <stddef.h>
#include "agent/util/err.h"
#include "connectors/connector.h"
#include "schema/entry.h"

struct ldap_passwd;

/* Connects and binds as cfg's identity (the target's bind_dn; it needs write access to
 * userPassword). cfg is borrowed and must outlive the handle. */
int ldap_passwd_open(struct ldap_passwd **out, const struct conn_cfg *cfg,
                     struct dm_err *err) DM_MUST_USE;

/* Reads dn's userPassword values into a new entry (caller frees with
 * ldap_passwd_entry_free()); DM_ENOTFOUND when dn does not exist. */
int ldap_passwd_read(struct entry **out, struct ldap_passwd *p, const char *dn,
                     struct dm_err *err) DM_MUST_USE;

/* Wipes the userPassword values of e and frees it. NULL-safe. */
void ldap_passwd_entry_free(struct entry *e);

/* Sets dn's userPassword to value (NUL-terminated), only if it still holds exactly old
 * (oldlen bytes) or, with old NULL, has no userPassword: DM_OK, DM_EEXISTS when the entry
 * changed meanwhile (nothing written), DM_ENOTFOUND, or another error in err. */
int ldap_passwd_swap(struct ldap_passwd *p, const char *dn, const unsigned char *old, size_t oldlen,
                     const char *value, struct dm_err *err) DM_MUST_USE;

void ldap_passwd_close(struct ldap_passwd *p); /* NULL-safe */

#endif
