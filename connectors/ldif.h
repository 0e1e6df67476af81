/*
 * connectors/ldif.h: LDIF files as a source and as a target, connector type "ldif".
 *
 * As a source (uri file:dump.ldif) it streams a slapcat or ldapsearch dump
 * (connectors/ldif_parse.h: folded lines, base64 values, comments, changetype absent or
 * add) so a migration can run from a backup without touching the production directory:
 * read() returns the records under the scope's base that match its filter
 * (connectors/ldif_filter.h), with the user attributes (the operational ones a server would
 * not return to "*" are dropped; the scope's key attribute, e.g. entryUUID, is kept and is
 * the entry's key), as an LDAP search would. lookup() finds one DN by reading the file.
 *
 * As a target it writes slapadd-ready LDIF through the same map: the whole migrated tree
 * every run (CONN_SNAPSHOT): the base entry and the containers copied from the source
 * first, then users, then groups after their members (the pipeline's order), each record
 * once, values base64-encoded where RFC 2849 asks and lines folded at 76 columns, the
 * password hashes byte-exact. The file appears only at the end of a successful run
 * (connectors/fileout.h); a failed run leaves the previous one.
 */
#ifndef DM_LDIF_H
#define DM_LDIF_H

#include <stdio.h>
#include "connectors/connector.h"

extern const struct conn_ops conn_ldif_ops;

/* Writes e as one LDIF record (dn, attributes in entry order, an empty line after it).
 * Returns DM_OK, or DM_EINTERNAL when the stream fails. */
int ldif_write_entry(FILE *f, const struct entry *e, struct dm_err *err) DM_MUST_USE;

#endif
