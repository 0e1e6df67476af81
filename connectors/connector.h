/*
 * connectors/connector.h: the one interface every connector implements.
 *
 * Call order: conn_find(name) -> ops->open(cfg) -> any of read / lookup / apply / check ->
 * ops->close. One thread owns a struct conn. A source is read with read(), which streams
 * one entry at a time to a callback; paging, reconnects and resumption are the
 * connector's business, never the caller's. A target is written with apply(), which takes
 * a batch of changes and fills one result per change; the connector may pipeline the
 * batch (several operations in flight) but results are reported in batch order.
 *
 * Optional slots are NULL; callers check `caps` before calling them.
 */
#ifndef DM_CONNECTOR_H
#define DM_CONNECTOR_H

#include <stddef.h>
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "agent/util/secret.h"
#include "schema/entry.h"

enum conn_caps {
    CONN_READ = 1 << 0,
    CONN_WRITE = 1 << 1,
    CONN_HASH_IMPORT = 1 << 2,
    CONN_PASSWORD_HOOK = 1 << 3,
    CONN_DELTA = 1 << 4,
    CONN_GROUPS = 1 << 5,
    CONN_VERIFY = 1 << 6,
    CONN_KEYED = 1 << 7, /* objects are addressed by an id the target assigns, not a DN */
    /* apply() fills the undo images of a change that asks for them (change.undo) */
    CONN_UNDO = 1 << 16,
    /* ... and a DELETE's before image re-creates the object as it was (an LDAP entry); a
     * target that forgets what it deletes (an id-addressed user deleted for good) lacks it */
    CONN_UNDO_DELETE = 1 << 17,
};

/* What an object is; key-addressed targets (CONN_KEYED) treat users and groups apart. */
enum obj_kind { OBJ_USER = 0, OBJ_GROUP = 1 };

/* Everything a connector needs to open; filled from dirmig.json by the config module.
 * Strings and the secret are borrowed from the config and outlive the connection. */
struct conn_cfg {
    const char *role;             /* "source" or "target", for messages */
    const char *type;             /* "ldap" */
    const char *uri;              /* ldap://, ldaps:// or ldapi:// */
    const char *base;             /* naming context to read from / write under */
    const char *bind_dn;          /* NULL = anonymous (or SASL identity) */
    const struct secret *bind_pw; /* NULL unless bind_dn set; never empty */
    const char *sasl_mech;        /* NULL = simple bind; "EXTERNAL", "GSSAPI" */
    int starttls;                 /* 1 = StartTLS on ldap:// (required to succeed) */
    const char *ca_file;          /* NULL = system CAs */
    int tls_verify;               /* 1 (default) = demand a valid certificate */
    int network_timeout_ms;       /* connect timeout */
    int op_timeout_ms;            /* per operation */
    int page_size;                /* paged-results page size */
    int write_window;             /* max operations in flight during apply() */
    int member_chunk;             /* values per modify for big multi-valued attributes */
    int max_retries;              /* reconnect attempts after a dropped connection */
    /* HTTP targets (type "okta"): uri is the https:// base URL */
    const struct secret *token; /* API token; never logged */
    int concurrency;            /* requests in flight */
    int rate_share_pct;         /* share of each rate-limit bucket we may use, 1..100 */
    int activate;               /* create users ACTIVE (1) or STAGED (0) */
    const char *dialect;        /* "ldap" (NULL = the same) or "ad" (connectors/ad.h) */
    int range_size;             /* ad: values per ranged request (member;range=L-H);
                                 * 0 = take the ranges the server chooses */
    const char *group_nesting;  /* ad: "preserve" (NULL = the same) or "flatten" */
    /* target: how a user is disabled there (change.state) */
    const char *disable_attr;      /* LDAP: attribute set to disable_value, NULL = none */
    const char *disable_value;     /* LDAP: default "TRUE" */
    const char *disable_lifecycle; /* okta: "deactivate" or "suspend" */
};

/* What to read. attrs NULL = all user attributes; the connector always also fetches the
 * attribute named by key_attr (e.g. "entryUUID") and sets entry->key from it. */
struct scope {
    const char *base;
    const char *filter;
    const char *const *attrs;
    const char *key_attr; /* NULL = the DN is the key */
    const char *since;    /* delta read: only what changed after this watermark (from
                           * ops->watermark of an earlier run); NULL = everything */
    int *incomplete;      /* may be NULL; set to 1 when read() skipped part of the scope
                           * without an error (a search reference it did not follow): such a
                           * read proves nothing about what is absent */
};

/* Called once per entry; the entry is borrowed (valid until fn returns). A non-zero
 * return stops the read and is returned by read(). */
typedef int (*conn_entry_fn)(const struct entry *e, void *payload);

/* Account state a change asks for (struct change.state). */
enum { CHANGE_STATE_KEEP = 0, CHANGE_STATE_ENABLE, CHANGE_STATE_DISABLE };

/* CHANGE_DISABLE disables the account without deleting it (target.disable). CHANGE_MOVE (DN
 * targets): rename old_ref to entry->dn, then modify as CHANGE_MODIFY does. */
enum change_op { CHANGE_ADD = 0, CHANGE_MODIFY, CHANGE_DELETE, CHANGE_DISABLE, CHANGE_MOVE };

struct change {
    enum change_op op;
    enum obj_kind kind;
    const struct entry *entry; /* the wanted target entry (DN set); for DELETE only dn. For a
                                * CONN_KEYED target the "DN" is the natural key (login, group
                                * name) and member values are target ids. For MODIFY it says
                                * what to make equal, as entry_diff()'s `want`: attributes
                                * with values are set, attributes without values deleted,
                                * target attributes it does not name are never touched */
    const char *const *merge;  /* MODIFY: attributes whose values are added, the target's own
                                * kept (NULL-terminated; may be NULL) */
    const char *old_ref;       /* MOVE: the DN the object has at the target now */
    int state;                 /* users: CHANGE_STATE_KEEP, _ENABLE or _DISABLE the account
                                * (ADD, MODIFY), as the target does it (target.disable) */
    int leave_groups;          /* DISABLE, DELETE, and a MODIFY whose state is _DISABLE: take
                                * the object out of every group at the target too */
    int adopt;                 /* ADD: an object already at the target is ours (a create the
                                * journal recorded before a crash): compare and modify it
                                * instead of answering APPLY_EXISTS */
    /* CONN_KEYED targets only */
    const char *target_id;         /* the id the journal holds, NULL/"" = not known */
    const unsigned char *password; /* users: the source userPassword value (secret), or NULL */
    size_t password_len;
    int hook_only; /* users: create with the password-import hook whatever the password */
    int undo;      /* CONN_UNDO: fill apply_result.before and .after (see there) */
};

/* Undo images: pseudo attributes of apply_result.before. CONN_UNDO_GROUPS has one value per
 * group the change took the object out of (leave_groups): "ATTRIBUTE REF", the membership
 * attribute and the group's DN or id, so the membership can be given back. CONN_UNDO_STATE
 * ("enabled", "disabled") is the account state before a lifecycle step of a target whose
 * state is not an attribute (keyed targets). */
#define CONN_UNDO_GROUPS "dirmigLeftGroups"
#define CONN_UNDO_STATE "dirmigAccountState"

enum apply_status {
    APPLY_CREATED = 0,
    APPLY_UPDATED,
    APPLY_UNCHANGED,
    APPLY_DELETED,
    APPLY_FAILED,
    APPLY_DISABLED,
    APPLY_EXISTS, /* ADD: the object is already at the target and is not ours (err says so);
                   * nothing was written */
};

struct apply_result {
    enum apply_status status;
    struct dm_err err;     /* set when FAILED */
    char target_id[64];    /* CONN_KEYED: the object's id at the target ("" if unknown) */
    int created_with_hook; /* CONN_KEYED users: CREATED with the password-import hook */
    /* change.undo (CONN_UNDO): what the change did, for `dirmig rollback`. New entries the
     * caller frees with entry_free() (NULL when not asked for, or when nothing was written;
     * the caller sets both NULL before apply()):
     *   before  the object right before the change, read on this connection: dn = its
     *           reference then (DN, or the id of a keyed target); for a DELETE every
     *           attribute the connection reads (an LDAP entry: all user attributes, the
     *           password included; NULL without CONN_UNDO_DELETE); otherwise exactly the
     *           attributes the change wrote, each with its prior values (none: it was
     *           absent), CONN_UNDO_STATE and CONN_UNDO_GROUPS when they apply. NULL for an
     *           ADD that created the object.
     *   after   the same attributes as they are after the change (dn = the reference
     *           after it); an ADD's: the object as created; NULL for a DELETE. */
    struct entry *before, *after;
};

/* Counters of a connector's traffic (HTTP targets), for the run summary. */
struct conn_stats {
    unsigned long requests, retries, rate_limited, server_errors, transport_errors;
};

struct conn;

struct conn_ops {
    const char *name;
    unsigned caps;
    /* Connects, sets up TLS, binds; fails with DM_EUNAVAIL (unreachable), DM_EAUTH (bind
     * refused) or DM_EINVAL (bad settings). Returns a new conn; free with close(). */
    int (*open)(struct conn **out, const struct conn_cfg *cfg, struct dm_err *err);
    /* Streams every entry of the scope to fn. Survives dropped connections by
     * reconnecting and resuming (entries already delivered are not delivered again). */
    int (*read)(struct conn *c, const struct scope *s, conn_entry_fn fn, void *payload,
                struct dm_err *err);
    /* Reads one entry by DN (all user attributes); DM_ENOTFOUND if absent. */
    int (*lookup)(struct entry **out, struct conn *c, const char *dn, struct dm_err *err);
    /* Applies n changes. ADD of an object already there answers APPLY_EXISTS unless the
     * change says adopt (or the add was resent after a lost connection): then it becomes a
     * compare-and-modify. MODIFY computes the difference against the current target object
     * as entry_diff() does (only what the change names) and sends only that (UNCHANGED if
     * none); a MODIFY of a missing object fails (DM_ENOTFOUND), it never adds a partial
     * one. Big multi-valued attributes are written in member_chunk slices. Fills
     * res[0..n-1]; returns DM_OK unless the connection itself is lost for good
     * (DM_EUNAVAIL). */
    int (*apply)(struct conn *c, const struct change *v, size_t n, struct apply_result *res);
    /* Describes the server (rootDSE: vendor, naming contexts, supported controls, the
     * bound identity) as human text lines appended to out. */
    int (*check)(struct conn *c, struct buf *out, struct dm_err *err);
    void (*close)(struct conn *c); /* NULL-safe */
    /* CONN_KEYED: reads one object by its natural key (user login, group name), with a
     * group's members as "member" values (target ids); DM_ENOTFOUND if absent. */
    int (*find)(struct entry **out, struct conn *c, enum obj_kind kind, const char *name,
                struct dm_err *err);
    /* CONN_KEYED, optional: find() for n names at once (requests in flight together);
     * fills out[i] (or NULL), rcs[i] and errs[i] as find() would. */
    void (*find_many)(struct conn *c, enum obj_kind kind, const char *const *names, size_t n,
                      struct entry **out, int *rcs, struct dm_err *errs);
    /* CONN_KEYED, optional: reads one object by the reference the target assigned to it (its
     * id), in the same form as find(); DM_ENOTFOUND if absent. */
    int (*get)(struct entry **out, struct conn *c, enum obj_kind kind, const char *ref,
               struct dm_err *err);
    /* Optional: who the connection is bound as (LDAP who-am-I, else the configured bind
     * identity), as text to compare between runs; caller frees *out with free(). */
    int (*identity)(char **out, struct conn *c, struct dm_err *err);
    /* Optional: traffic counters so far. */
    void (*stats)(struct conn *c, struct conn_stats *out);
    /* CONN_KEYED: the mapped attribute that names an object (e.g. "login", "name"). */
    const char *natural_key[2];
    /* Delta reads (may be NULL; DM_EINVAL when the dialect has none). The source's change
     * watermark now, as text to keep for the next run's scope.since (AD:
     * "<invocationId>:<highestCommittedUSN>"); caller frees *out with free(). */
    int (*watermark)(char **out, struct conn *c, struct dm_err *err);
    /* Streams the objects deleted after s->since under s->base to fn (AD: tombstones read
     * with the Show Deleted control): borrowed entries whose key is the correlation key and
     * whose DN is the last known one. Never guessed from what a read did not return. */
    int (*read_deleted)(struct conn *c, const struct scope *s, conn_entry_fn fn, void *payload,
                        struct dm_err *err);
};

/* Registry lookup by name ("ldap", "okta"); NULL if unknown. */
const struct conn_ops *conn_find(const char *name);

#endif
