/*
 * connectors/ldap_common.h: the parts of an LDAP connector that every LDAP dialect shares
 * (plain LDAP in ldap.c, Active Directory in ad.c): opening and binding a session, the
 * one mapping of LDAP result codes to dm_rc, reconnecting with backoff, converting a
 * search result entry into a struct entry, and a streaming Simple Paged Results search.
 *
 * Call order: ldap_common_open() fills a struct ldap_common_sess (connect, TLS, bind);
 * then any of ldap_common_search() / ldap_common_lookup() / raw libldap calls on sess->ld;
 * when a call fails with a connection error (ldap_common_is_conn_err()), call
 * ldap_common_reconnect() and redo the work; finally ldap_common_close().
 *
 * The session is owned by one thread (a handle's error state is shared by everything that
 * uses it, ldap_dup(3)). libldap and lber types appear here because this header is private
 * to connectors/: nothing above connectors/ sees them.
 */
#ifndef DM_LDAP_COMMON_H
#define DM_LDAP_COMMON_H

#include <ldap.h>
#include "agent/util/err.h"
#include "connectors/connector.h"
#include "schema/entry.h"

/* One LDAP session. cfg is a shallow copy of the caller's settings: its strings and the
 * secret are borrowed and must outlive the session (connector.h says they do). */
struct ldap_common_sess {
    LDAP *ld; /* NULL while disconnected */
    struct conn_cfg cfg;
    unsigned long refs_skipped; /* search references not followed (referrals are off) */
};

/*
 * Maps an LDAP result code to a dm_rc in the one place that does it and fills
 * err: ldap_rc, matched_dn, and msg as "<op>: <ldap_err2string>: <diagnostic>" (for
 * client-side codes, which are negative: "<op>: <text> (<diagnostic>)"). matched and diag
 * may be NULL; when both are NULL and ld is non-NULL they are taken from the handle
 * (LDAP_OPT_MATCHED_DN, LDAP_OPT_DIAGNOSTIC_MESSAGE). err may be NULL. Returns the dm_rc
 * (DM_OK for LDAP_SUCCESS).
 *   49, 48, 50 -> DM_EAUTH; -1, -11, -5, 51, 52 -> DM_EUNAVAIL; 32 -> DM_ENOTFOUND;
 *   68 -> DM_EEXISTS; 17-21, 64, 65, 67, 69 -> DM_ESCHEMA; 3, 4, 11 -> DM_ELIMIT;
 *   anything else -> DM_EINTERNAL.
 */
int ldap_to_rc(struct dm_err *err, LDAP *ld, int lrc, const char *matched, const char *diag,
               const char *op);

/* 1 for the client-side codes that mean the connection is gone or stuck (SERVER_DOWN,
 * CONNECT_ERROR, TIMEOUT) and a reconnect may help. */
int ldap_common_is_conn_err(int lrc);

/* Connects to cfg->uri, sets LDAPv3, referrals off, the timeouts, TLS (ldaps:// or
 * StartTLS; certificate demanded unless cfg->tls_verify == 0), and binds: SASL when
 * cfg->sasl_mech is set (EXTERNAL works over ldapi://; GSSAPI uses the KRB5CCNAME ticket,
 * service principal from the URI host as written, and fails with DM_EAUTH naming the
 * ticket cache when there is no usable ticket), simple when cfg->bind_dn is set
 * (an empty or missing password is refused, RFC 4513 §5.1.2), anonymous otherwise.
 * On success sess->ld is set. On failure sess->ld is NULL and err says why:
 * DM_EINVAL (bad settings), DM_EUNAVAIL (unreachable, TLS failure), DM_EAUTH. */
int ldap_common_open(struct ldap_common_sess *sess, const struct conn_cfg *cfg,
                     struct dm_err *err) DM_MUST_USE;

/* Drops the current connection (if any) and opens a new one, waiting 200 ms, 400 ms, ...
 * before each of at most cfg.max_retries attempts (at least one). Stops early on
 * DM_EAUTH / DM_EINVAL. Returns DM_OK or the last open() error. */
int ldap_common_reconnect(struct ldap_common_sess *sess, struct dm_err *err) DM_MUST_USE;

/* Unbinds and frees sess->ld (NULL-safe); the session can be reopened. */
void ldap_common_close(struct ldap_common_sess *sess);

/* The timeout of one operation from cfg.op_timeout_ms; NULL when unlimited. tv is the
 * storage for the returned pointer. */
struct timeval *ldap_common_op_timeout(const struct ldap_common_sess *sess, struct timeval *tv);

/* ldap_common_msg_to_entry() (below) into e, which is emptied first (entry_reset()): a read
 * loop that streams through one entry allocates nothing per entry once its arena is large
 * enough. On failure e holds a partial entry (reset it or free it). */
int ldap_common_msg_fill(struct entry *e, LDAP *ld, LDAPMessage *msg, const char *key_attr,
                         struct dm_err *err) DM_MUST_USE;

/* Converts a search result entry into a new entry (caller frees with entry_free()):
 * the DN, and every attribute with binary-safe values. When key_attr is non-NULL, the
 * first value of that attribute (case-insensitive name) becomes entry->key. */
int ldap_common_msg_to_entry(struct entry **out, LDAP *ld, LDAPMessage *msg, const char *key_attr,
                             struct dm_err *err) DM_MUST_USE;

/* Waits (at most the operation timeout) for the next message of msgid; on timeout abandons
 * the operation. Returns the message type (> 0) with *msg set (caller frees with
 * ldap_msgfree), or -1 with an LDAP client error code (< 0) in *lrc_out. */
int ldap_common_next_msg(LDAPMessage **msg, struct ldap_common_sess *sess, int msgid, int *lrc_out);

/* Called once per search result entry, in order; the message is borrowed. A non-zero
 * return stops the search and is returned by ldap_common_search(). */
typedef int (*ldap_common_msg_fn)(LDAP *ld, LDAPMessage *msg, void *payload);

/*
 * Runs a subtree search (scope LDAP_SCOPE_*) and streams each entry to fn, one message at
 * a time. With page_size > 0 it uses Simple Paged Results (RFC 2696, critical), one
 * page request after another; a server that refuses the control (rc 12) gets one
 * unpaged search instead. Search references are skipped. Connection errors are returned
 * as they are (DM_EUNAVAIL with err->ldap_rc < 0); the caller decides to reconnect.
 * A result other than success (e.g. 4 sizeLimitExceeded) is an error after the entries
 * already delivered.
 */
int ldap_common_search(struct ldap_common_sess *sess, const char *base, int scope,
                       const char *filter, char **attrs, int page_size, ldap_common_msg_fn fn,
                       void *payload, struct dm_err *err) DM_MUST_USE;

/* The same with one more server control sent with every request (e.g. AD's Show Deleted,
 * 1.2.840.113556.1.4.417); extra is borrowed and may be NULL. */
int ldap_common_search_ctrls(struct ldap_common_sess *sess, const char *base, int scope,
                             const char *filter, char **attrs, int page_size, LDAPControl *extra,
                             ldap_common_msg_fn fn, void *payload, struct dm_err *err) DM_MUST_USE;

/* Base-scope read of dn with attrs (NULL = all user attributes). Returns a new entry or
 * DM_ENOTFOUND (rc 32). */
int ldap_common_lookup(struct entry **out, struct ldap_common_sess *sess, const char *dn,
                       char **attrs, struct dm_err *err) DM_MUST_USE;

/* `dirmig check` (connectors/ldap_check.c): appends what the server offers (rootDSE),
 * the TLS in use on the session and the identity it is bound as (who-am-I, or AD's
 * rootDSE tokenGroups), as "  name: value" lines. */
int ldap_common_check(struct ldap_common_sess *s, struct buf *out, struct dm_err *err) DM_MUST_USE;

/* Best-effort attribute name from a server diagnostic ("attribute 'x' not allowed",
 * "x: value #0 invalid per syntax"); copies it into err->attr when found. */
void ldap_common_guess_attr(struct dm_err *err, const char *diag);

#endif
