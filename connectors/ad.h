/*
 * connectors/ad.h: the Active Directory dialect of the LDAP connector (source.dialect
 * "ad"). ldap.c keeps the session, paging and reconnects; this module
 * adds what AD needs on top of them, per read:
 *
 *   - the attributes to ask for: "*" plus the constructed
 *     msDS-User-Account-Control-Computed, objectGUID, and with range_size an explicit
 *     "member;range=0-<range_size-1>" (AD's MaxValRange caps an attribute at 1500 values
 *     and names the chunk member;range=0-1499; Samba never does, so tests force it)
 *   - the filter: the scope's, ANDed with (uSNChanged>=<since+1>) for a delta read
 *   - per entry (ad_read_fixup): every ranged attribute fetched to the end and stored
 *     under its plain name (a ranged or missing chunk is an error, never an empty list);
 *     the key = objectGUID in canonical string form; on users the synthetic attributes
 *     dirmigAccountState and dirmigEnabled; on groups the members whose primaryGroupID is
 *     the group's RID (AD never lists them in member), and with group_nesting "flatten"
 *     member replaced by every transitive non-group member (in-chain matching rule
 *     1.2.840.113556.1.4.1941, which the DC evaluates cycle-safe)
 *
 * and, for delta runs, the watermark ("<invocationId>:<highestCommittedUSN>" from the
 * rootDSE and the NTDS Settings object) and the tombstones deleted after it.
 *
 * Extra searches run on the same connection while the paged search is open (libldap
 * queues the messages of each msgid). Call order: ad_read_new -> ad_read_attrs /
 * ad_read_filter -> ad_read_fixup per entry -> ad_read_free.
 */
#ifndef DM_AD_H
#define DM_AD_H

#include <stdint.h>
#include "connectors/ldap_common.h"

/* Synthetic attributes added to every user entry (documented in doc/dirmig.json.5):
 * dirmigAccountState is one of "disabled", "expired", "locked", "enabled" (first that
 * applies, in that order); dirmigEnabled is "TRUE" when the state is enabled, else "FALSE". */
#define AD_ATTR_STATE "dirmigAccountState"
#define AD_ATTR_ENABLED "dirmigEnabled"

/* The AD page size cap (the Default Query Policy's MaxPageSize: a larger page is cut to
 * it, an unpaged search stops there with sizeLimitExceeded). */
#define AD_MAX_PAGE 1000

struct ad_read;

/* 1 when cfg selects the AD dialect. */
int ad_is_dialect(const struct conn_cfg *cfg);

/* Prepares one read of scope sc on sess (borrowed; both outlive the read). Fails with
 * DM_EINVAL on a bad sc->since. Free with ad_read_free(). */
int ad_read_new(struct ad_read **out, struct ldap_common_sess *sess, const struct scope *sc,
                struct dm_err *err) DM_MUST_USE;
void ad_read_free(struct ad_read *r); /* NULL-safe */

/* NULL-terminated attribute list to request; borrowed from r. */
char **ad_read_attrs(struct ad_read *r);

/* The filter to send; borrowed from r. */
const char *ad_read_filter(const struct ad_read *r);

/* Completes entry e (read with the attributes above) in place, see the header comment.
 * Errors name the entry. */
int ad_read_fixup(struct ad_read *r, struct entry *e, struct dm_err *err) DM_MUST_USE;

/* Reads one entry by DN the way a read delivers it: ranged attributes completed, the
 * objectGUID key, account state, primary-group members (conn_ops.lookup of the AD dialect,
 * e.g. for a wave defined by a group). DM_ENOTFOUND if absent. */
int ad_lookup(struct entry **out, struct ldap_common_sess *sess, const char *dn,
              struct dm_err *err) DM_MUST_USE;

/* The watermark now; caller frees *out. */
int ad_watermark(char **out, struct ldap_common_sess *sess, struct dm_err *err) DM_MUST_USE;

/* Tombstones deleted after sc->since whose last known parent is under sc->base (or
 * anywhere when sc->base is NULL): fn gets entries with the key (objectGUID string), DN
 * "<msDS-LastKnownRDN>,<lastKnownParent>" and the attributes sAMAccountName, objectClass.
 * Then the objects that changed after sc->since and left the scope without being deleted
 * (under sc->base but no longer matching sc->filter, or moved out of sc->base): the same
 * form with the synthetic attribute dirmigOutOfScope: TRUE. Either may be an object
 * dirmig never migrated: the caller keeps only its own. */
int ad_read_deleted(struct ldap_common_sess *sess, const struct scope *sc, conn_entry_fn fn,
                    void *payload, struct dm_err *err) DM_MUST_USE;

/* The account state of a user entry read with userAccountControl, accountExpires,
 * lockoutTime and msDS-User-Account-Control-Computed, at now (unix seconds): "disabled",
 * "expired", "locked" or "enabled" (the first that applies; the value of
 * dirmigAccountState). Static string. */
const char *ad_account_state(const struct entry *e, int64_t now);

/* Parses "<invocationId>:<usn>"; returns 0 on success. inv must hold 64 bytes. */
int ad_parse_watermark(char inv[64], unsigned long long *usn, const char *s);

#endif
