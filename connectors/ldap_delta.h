/*
 * connectors/ldap_delta.h: delta reads of the LDAP connector (scope.delta, source.delta) for
 * both dialects, behind conn_ops.read_mark and conn_ops.read_deleted.
 *
 *   AD (connectors/ad.h): the watermark "<invocationId>:<highestCommittedUSN>" is noted
 *   when a read begins; a since from the same DC database narrows the read to
 *   uSNChanged above it, and deletions are the tombstones changed after it.
 *
 *   LDAP (connectors/syncrepl.h): a read is one RFC 4533 refreshOnly search with the
 *   cookie of since; the watermark is "ldapsync:<dbid>:<cookie>" with the cookie the
 *   server sent at the end (syncDone) and dbid the entryUUID of the source base entry,
 *   so a cookie of another database (a server rebuilt or replaced behind the same URI)
 *   is never sent. Deletions are, of what the caller holds (scope.known), the entries the
 *   server named deleted (syncprov names every entry deleted anywhere in the database,
 *   and every modified entry the filter no longer matches, as "delete it if you have
 *   it"), and after a present phase the entries it neither sent nor named present. The
 *   key must then be entryUUID (the only identity the server sends with a delete).
 *
 * Either way a since that cannot be used (another database, malformed, refused by the
 * server: e-syncRefreshRequired, or slapd's "consumer state is newer than provider")
 * gives a full read, logged once per connection, and read_mark() says so (delta 0). A
 * database without syncprov (the Sync Request control refused as an unavailable critical
 * extension) gives full paged reads with no watermark, logged once.
 *
 * A sync read resumed after a reconnect (ldap_delta_read_search called again: the search
 * starts over and the caller skips what it already delivered) keeps the watermark it
 * started from: a change made in between to an entry delivered the first time is in
 * neither search, and the new cookie would hide it.
 *
 * Per connection, the first read of each scope (base and filter) that completes with
 * scope.delta is remembered: its watermark, whether it was a delta, and (LDAP) what it
 * found deleted and present (16 bytes per UUID). A later read of the same scope in the same
 * run is not remembered: the first watermark is the oldest, so keeping it can only make the
 * next run read a change twice, never miss one.
 *
 * Call order per read (connectors/ldap.c): ldap_delta_read_begin -> the search, through
 * ldap_delta_read_search for the LDAP dialect (again after a reconnect) or the AD read
 * with ldap_delta_read_scope -> ldap_delta_read_end. Then, after the reads:
 * ldap_delta_mark / ldap_delta_deleted. One thread owns a struct ldap_delta (that of its
 * connection).
 */
#ifndef DM_LDAP_DELTA_H
#define DM_LDAP_DELTA_H

#include "connectors/ldap_common.h"

struct ldap_delta;
struct ldap_delta_read;

/* NULL when out of memory. */
struct ldap_delta *ldap_delta_new(void);
void ldap_delta_free(struct ldap_delta *d); /* NULL-safe */

/* Starts a read of s. *out = NULL when s->delta is not set (a plain read). Otherwise the
 * read's state: AD notes the watermark now (a search of the rootDSE and the NTDS Settings
 * object); LDAP checks that since belongs to this database. DM_EINVAL when the LDAP
 * dialect's key is not entryUUID. Free with ldap_delta_read_end(). */
int ldap_delta_read_begin(struct ldap_delta_read **out, struct ldap_delta *d,
                          struct ldap_common_sess *sess, const struct scope *s,
                          struct dm_err *err) DM_MUST_USE;

/* The scope to read (s with since cleared when it cannot be used). Borrowed from r. */
const struct scope *ldap_delta_read_scope(const struct ldap_delta_read *r);

/* LDAP dialect: runs the read's search as ldap_common_search() would (base, filter, attrs,
 * fn, payload), as a refreshOnly sync search; falls back to a sync search without a cookie
 * when the server refuses the cookie, and to a paged search (page_size) without syncprov.
 * May be called again after a reconnect: what the previous attempt collected is dropped.
 * Returns as ldap_common_search() does. */
int ldap_delta_read_search(struct ldap_delta_read *r, struct ldap_common_sess *sess,
                           const char *base, const char *filter, char **attrs, int page_size,
                           ldap_common_msg_fn fn, void *payload, struct dm_err *err) DM_MUST_USE;

/* Ends the read: when complete is non-zero (the whole scope was read, nothing stopped it)
 * and it is the first complete read of its scope, remembers it. Frees r (NULL-safe). */
void ldap_delta_read_end(struct ldap_delta_read *r, int complete);

/* conn_ops.read_mark: the remembered read of s; DM_ENOTFOUND if none. */
int ldap_delta_mark(struct read_mark *out, const struct ldap_delta *d,
                    const struct ldap_common_sess *sess, const struct scope *s,
                    struct dm_err *err) DM_MUST_USE;

/* conn_ops.read_deleted for the remembered read of s (nothing if none, or not a delta). */
int ldap_delta_deleted(struct ldap_delta *d, struct ldap_common_sess *sess, const struct scope *s,
                       conn_entry_fn fn, void *payload, struct dm_err *err) DM_MUST_USE;

#endif
