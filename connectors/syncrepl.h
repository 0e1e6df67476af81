/*
 * connectors/syncrepl.h: the client side of RFC 4533 content synchronisation in
 * refreshOnly mode, for delta reads of the LDAP dialect (source.delta; the policy around
 * it is in connectors/ldap_delta.h).
 *
 * One refreshOnly search sends the Sync Request control (1.3.6.1.4.1.4203.1.9.1.1,
 * critical) with the cookie of an earlier search, or none for the initial content. The
 * server answers with
 *   - entries carrying a Sync State control (…1.9.1.2): state add or modify (the entry
 *     changed since the cookie, or every entry when there is no cookie), present (an
 *     unchanged entry, no attributes) or delete (DN and UUID only);
 *   - Sync Info intermediate responses (…1.9.1.4): a new cookie, the end of a present or
 *     delete phase, or a syncIdSet (UUIDs of entries that are still there, or with
 *     refreshDeletes TRUE, that are gone);
 *   - searchResultDone with a Sync Done control (…1.9.1.3): the final cookie, and
 *     refreshDeletes FALSE when the refresh ended with a present phase: then every entry
 *     the client holds that was neither named present nor sent is deleted (RFC 4533
 *     §3.3.1). slapd's syncprov answers with explicit deletes when its session log
 *     covers the cookie, and with a present phase when it does not.
 * Result codes that mean "start again without a cookie": e-syncRefreshRequired (4096,
 * "sync cookie is stale") and, for slapd, unwillingToPerform (53) to a cookie newer than
 * the database ("consumer state is newer than provider", a restored database).
 * unavailableCriticalExtension (12) means the database has no syncprov.
 *
 * The first half of this header is pure (no connection): the BER codec of the controls
 * and messages, syncUUIDs, UUID sets and the watermark text; tests/unit/test_syncrepl.c
 * covers it. The second half runs one search on a session.
 */
#ifndef DM_SYNCREPL_H
#define DM_SYNCREPL_H

#include <stddef.h>
#include "connectors/ldap_common.h"

#define SYNCREPL_UUID_LEN 16
/* A read keeps at most this many UUIDs (present or deleted): 16 bytes each. */
#define SYNCREPL_MAX_UUIDS (16 * 1024 * 1024)

/* ---- codec ---- */

/* The Sync Request control value SEQUENCE { mode ENUMERATED, cookie OCTET STRING
 * OPTIONAL } for refreshOnly (reloadHint is left at its default, FALSE). cookie may be NULL
 * or empty (no cookie). Returns a new berval (caller frees with ber_bvfree) or NULL when
 * out of memory. */
struct berval *syncrepl_encode_request(const struct berval *cookie);

enum syncrepl_state {
    SYNCREPL_PRESENT = 0,
    SYNCREPL_ADD = 1,
    SYNCREPL_MODIFY = 2,
    SYNCREPL_DELETE = 3,
};

/* A parsed Sync State control; cookie is a malloc'ed copy (bv_val NULL when absent),
 * freed by syncrepl_state_clear(). */
struct syncrepl_state_ctl {
    enum syncrepl_state state;
    unsigned char uuid[SYNCREPL_UUID_LEN];
    struct berval cookie;
};

/* Parses a Sync State control value; DM_EINVAL when malformed (unknown state, a UUID
 * that is not 16 bytes, trailing garbage). */
int syncrepl_parse_state(struct syncrepl_state_ctl *out, const struct berval *val) DM_MUST_USE;
void syncrepl_state_clear(struct syncrepl_state_ctl *st); /* NULL-safe */

/* A parsed Sync Done control (cookie owned as above). */
struct syncrepl_done_ctl {
    struct berval cookie;
    int refresh_deletes;
};

int syncrepl_parse_done(struct syncrepl_done_ctl *out, const struct berval *val) DM_MUST_USE;
void syncrepl_done_clear(struct syncrepl_done_ctl *d); /* NULL-safe */

enum syncrepl_info_kind {
    SYNCREPL_NEW_COOKIE = 0,
    SYNCREPL_REFRESH_DELETE = 1,
    SYNCREPL_REFRESH_PRESENT = 2,
    SYNCREPL_ID_SET = 3,
};

/* A parsed Sync Info value. cookie (owned, as above) and uuids (syncIdSet only: nuuids *
 * 16 bytes) are freed by syncrepl_info_clear(). */
struct syncrepl_info {
    enum syncrepl_info_kind kind;
    struct berval cookie;
    int refresh_done;    /* refreshDelete / refreshPresent (default TRUE) */
    int refresh_deletes; /* syncIdSet (default FALSE) */
    unsigned char *uuids;
    size_t nuuids;
};

int syncrepl_parse_info(struct syncrepl_info *out, const struct berval *val) DM_MUST_USE;
void syncrepl_info_clear(struct syncrepl_info *info); /* NULL-safe */

/* ---- UUIDs ---- */

/* The RFC 4122 string form, lowercase (as slapd shows entryUUID). out holds 37 bytes. */
void syncrepl_uuid_str(char out[37], const unsigned char uuid[SYNCREPL_UUID_LEN]);
/* Parses the string form (either case); returns 0, or -1 when s is not a UUID. */
int syncrepl_uuid_parse(unsigned char out[SYNCREPL_UUID_LEN], const char *s);

/* A set of UUIDs: add any number, then seal (sorts and drops duplicates), then query. */
struct syncrepl_uuids {
    unsigned char *v;
    size_t n, cap;
    int sealed;
};

/* DM_ENOMEM, or DM_ELIMIT past SYNCREPL_MAX_UUIDS. Adding unseals the set. */
int syncrepl_uuids_add(struct syncrepl_uuids *set, const unsigned char *uuid) DM_MUST_USE;
void syncrepl_uuids_seal(struct syncrepl_uuids *set);
/* 1 when uuid is in the sealed set. */
int syncrepl_uuids_has(const struct syncrepl_uuids *set, const unsigned char *uuid);
void syncrepl_uuids_clear(struct syncrepl_uuids *set); /* frees, leaves an empty set */

/* ---- watermark text ---- */

/*
 * The watermark kept in the journal for one scope: "ldapsync:<dbid>:<cookie>", where dbid
 * names the database the cookie belongs to (the source base entry's entryUUID) and cookie
 * is the server's as it sent it when that is printable ASCII (slapd's
 * "rid=000,csn=20261206094225.853634Z#000000#000#000000"), else "ldapsynchex:<dbid>:" and
 * the cookie in hex. Returns a new string (free()), or NULL when out of memory.
 */
char *syncrepl_mark_format(const char *dbid, const struct berval *cookie);
/* Splits a watermark made by syncrepl_mark_format into a new dbid string and a new
 * cookie (bv_val malloc'ed; free() both). Returns 0, or -1 when s is not one (e.g. an AD
 * watermark) or out of memory. */
int syncrepl_mark_parse(char **dbid, struct berval *cookie, const char *s);

/* ---- one refreshOnly search ---- */

/* A delete the server sent as an entry (syncState delete): its UUID and DN. */
struct syncrepl_gone_dn {
    unsigned char uuid[SYNCREPL_UUID_LEN];
    char *dn;
};

/* What one refreshOnly search found besides the entries it delivered. */
struct syncrepl_result {
    struct berval cookie;          /* the last cookie the server sent (malloc'ed), or NULL */
    int present_phase;             /* the server said what is present: what it neither sent
                                    * nor named present is gone */
    struct syncrepl_uuids present; /* UUIDs named present or sent (with a cookie only) */
    struct syncrepl_uuids gone;    /* UUIDs the server said are deleted (or out of scope) */
    struct syncrepl_gone_dn *dns;  /* the deletes that came with a DN */
    size_t ndns, capdns;
    size_t entries, presents, deletes; /* counts of what the server sent */
};

/* Seals both sets (call once the search is done, before the queries below). */
void syncrepl_result_seal(struct syncrepl_result *r);
void syncrepl_result_clear(struct syncrepl_result *r); /* frees; leaves an empty result */
/* The DN the server sent with the delete of uuid, or NULL. Borrowed from r. */
const char *syncrepl_result_gone_dn(const struct syncrepl_result *r, const unsigned char *uuid);

enum syncrepl_outcome {
    SYNCREPL_DONE = 0,    /* the refresh completed; r describes it */
    SYNCREPL_UNSUPPORTED, /* rc 12: no syncprov on this database; nothing was delivered */
    SYNCREPL_REFUSED,     /* the cookie was refused (4096, or 53 to a cookie); nothing was
                           * delivered: search again without a cookie */
};

/*
 * Runs one refreshOnly search (subtree) of base with filter and attrs, with cookie (NULL =
 * the initial content), on sess. Entries in state add or modify go to fn as they arrive
 * (the message is borrowed; a non-zero return stops the search, which is abandoned, and
 * is returned); present and delete states, syncIdSets and cookies are collected in r
 * (cleared first; presents only when a cookie was sent). On DM_OK *outcome says how it
 * ended. Connection errors come back as DM_EUNAVAIL with err->ldap_rc < 0 (the caller
 * reconnects and searches again); other result codes as ldap_to_rc() maps them.
 */
int syncrepl_search(enum syncrepl_outcome *outcome, struct syncrepl_result *r,
                    struct ldap_common_sess *sess, const char *base, const char *filter,
                    char **attrs, const struct berval *cookie, ldap_common_msg_fn fn, void *payload,
                    struct dm_err *err) DM_MUST_USE;

#endif
