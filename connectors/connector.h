/*
 * connectors/connector.h: the one interface every connector implements.
 *
 * Call order: conn_find(name) -> ops->open(cfg) -> any of read / lookup / apply / check ->
 * ops->close. One thread owns a struct conn. A source is read with read(), which streams
 * one entry at a time to a callback; paging, reconnects and resumption are the
 * connector's business, never the caller's. A target is written with apply(), which takes
 * a batch of changes and fills one result per change; the connector may pipeline the
 * batch (several operations in flight) but results are reported in batch order. A target
 * that keeps a window of requests in flight also offers apply_start() / apply_wait(): one
 * change at a time, each reported when it completes, so that a slow change never keeps the
 * next ones from starting.
 *
 * Optional slots are NULL; callers check `caps` before calling them.
 */
#ifndef DM_CONNECTOR_H
#define DM_CONNECTOR_H

#include <stddef.h>
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "agent/util/secret.h"
#include "schema/cred.h"
#include "schema/entry.h"

enum conn_caps {
    CONN_READ = 1 << 0,
    CONN_WRITE = 1 << 1,
    CONN_HASH_IMPORT = 1 << 2,
    CONN_PASSWORD_HOOK = 1 << 3,
    CONN_DELTA = 1 << 4,
    CONN_GROUPS = 1 << 5,
    CONN_VERIFY = 1 << 6,
    CONN_SOURCE = 1 << 7,        /* may be the source of a migration (read() by scope) */
    CONN_TREE = 1 << 8,          /* objects live in a tree: the containers above an object
                                  * must exist before it (created by the pipeline) */
    CONN_NESTED_GROUPS = 1 << 9, /* a group may hold groups as members */
    CONN_SNAPSHOT = 1 << 10,     /* every run writes the whole target anew (a file): the
                                  * target starts empty each run, nothing is skipped as
                                  * unchanged per the journal, the base entry is written too */
    CONN_LDAP = 1 << 13,         /* speaks LDAP: binds, paging, dialects, write windows */
    CONN_DISABLE = 1 << 12,      /* the target disables an account itself (a lifecycle or
                                  * an active flag), without a configured attribute */
    CONN_LAZY_CREATE = 1 << 11,  /* users for the password-import hook are not created by
                                  * dirmig: the target creates each one at its first sign-in,
                                  * after the hook verified it (Auth0's custom database) */
    /* apply() fills the undo images of a change that asks for them (change.undo) */
    CONN_UNDO = 1 << 16,
    /* ... and a DELETE's before image re-creates the object as it was (an LDAP entry); a
     * target that forgets what it deletes (an id-addressed user deleted for good) lacks it */
    CONN_UNDO_DELETE = 1 << 17,
};

/* How a target names its objects (conn_ops.ident). */
enum conn_ident {
    CONN_IDENT_DN = 0, /* by DN: the source DN moved from the source base to the target base
                        * (the DN is the reference the journal keeps) */
    CONN_IDENT_KEY,    /* by a mapped natural key (conn_ops.natural_key: a user's login, a
                        * group's name); the target assigns an id, which the journal keeps */
};

/* How a group's members are written (conn_ops.members). */
enum conn_members {
    CONN_MEMBERS_DN = 0, /* member values are the members' DNs at the target */
    CONN_MEMBERS_REF,    /* "member" values are the members' references (ids) at the target */
};

/* What an object is; key-addressed targets (CONN_IDENT_KEY) treat users and groups apart. */
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
    int write_connections;        /* LDAP: connections writing a batch in parallel, each with
                                   * its window; objects partitioned by DN */
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
    const char *disable_container; /* LDAP: disabled users live under this DN (their RDN kept;
                                    * conn_ops.disabled_ref), NULL = where the map puts them */
    const char *disable_lifecycle; /* okta: "deactivate" or "suspend" */
    const char *config_dir;        /* directory of the config file (relative file: URIs) */
    /* the connector's own keys without a field here (conn_key.off CONN_KEY_OPT), as
     * "path" -> value text (booleans "true"/"false", integers in decimal); read with
     * conn_cfg_opt() */
    const struct conn_opt *opts;
    size_t nopts;
};

struct conn_opt {
    const char *path;
    const char *value;
};

/* The value text of the connector key path ("connection_id"), the default when the config
 * did not give it, NULL when neither. Borrowed from the config. */
const char *conn_cfg_opt(const struct conn_cfg *cfg, const char *path);
/* conn_cfg_opt() as a number / a boolean (1/0), def when unset. */
long long conn_cfg_opt_int(const struct conn_cfg *cfg, const char *path, long long def);
int conn_cfg_opt_bool(const struct conn_cfg *cfg, const char *path, int def);

/*
 * A connector's own configuration keys, registered by the connector (what differs between
 * targets lives in the connector, its keys too): they
 * are checked by the config module like its own keys (type, range, allowed values, file:
 * line:col errors) and listed in dirmig.json(5). The path is relative to the endpoint
 * ("token_file" is source.token_file or target.token_file).
 */
enum conn_key_type { CONN_KEY_STR = 0, CONN_KEY_PATH, CONN_KEY_ENV, CONN_KEY_INT, CONN_KEY_BOOL };
enum conn_key_flag {
    CONN_KEY_REQUIRED = 1 << 0,
    CONN_KEY_SENSITIVE = 1 << 1, /* described as *** (a secret's file or variable) */
};
#define CONN_KEY_OPT ((size_t)-1) /* no field of struct conn_cfg: kept in conn_cfg.opts */
struct conn_key {
    const char *path;
    enum conn_key_type type;
    const char *def; /* default as text, NULL = none */
    unsigned flags;
    long long min, max; /* CONN_KEY_INT */
    const char *values; /* allowed values "a|b" (CONN_KEY_STR) */
    size_t off;         /* offsetof(struct conn_cfg, field), or CONN_KEY_OPT */
    const char *doc;
};

/* What a connector's config_check() sees of its endpoint: the values as written (strings
 * as given, numbers and booleans as text; NULL when absent) and a way to report an error
 * at a key's place in the file ("dirmig.json:12:5: target.uri: ..."). */
struct conn_cfgcheck {
    const char *role; /* "source" or "target" */
    const char *type; /* the endpoint's type */
    void *ctx;
    const char *(*get)(void *ctx, const char *path);
    /* Returns DM_EINVAL with the error set (at path, or at its nearest parent when absent). */
    int (*fail)(void *ctx, const char *path, const char *msg);
};

/* Called once per key by a conn_known_fn: the correlation key of an object the caller
 * holds and the DN it was last read with (may be NULL). Non-zero stops the listing. */
typedef int (*conn_key_fn)(const char *key, const char *dn, void *payload);
/* Lists the objects the caller took from earlier reads of a scope, calling each(key, dn,
 * each_payload) for every one; returns DM_OK, the first non-zero return of each, or an
 * error in err. */
typedef int (*conn_known_fn)(conn_key_fn each, void *each_payload, void *payload,
                             struct dm_err *err);

/* What to read. attrs NULL = all user attributes; the connector always also fetches the
 * attribute named by key_attr (e.g. "entryUUID") and sets entry->key from it. A scope is
 * named by its base and filter (NULL base = the connection's base, NULL filter = every
 * object): change tracking (watermarks, deletions) belongs to that pair. */
struct scope {
    const char *base;
    const char *filter;
    const char *const *attrs;
    const char *key_attr; /* NULL = the DN is the key */
    const char *since;    /* delta read: only what changed after this watermark, which
                           * read_mark() gave for an earlier read of the same base and
                           * filter; NULL = everything. A watermark the source cannot use
                           * (another database, a cookie it no longer accepts) gives a
                           * full read, which read_mark() then reports */
    int *incomplete;      /* may be NULL; set to 1 when read() skipped part of the scope
                           * without an error (a search reference it did not follow): such a
                           * read proves nothing about what is absent */
    int delta;            /* 1: a delta run. The read tracks changes (CONN_DELTA) and
                           * notes its watermark and deletions for read_mark() and
                           * read_deleted() */
    /* read_deleted() only (may be NULL): the objects the caller holds for this scope, for
     * a source that says what is still there rather than what went away (RFC 4533
     * present phase) */
    conn_known_fn known;
    void *known_payload;
};

/* How a read with scope.delta went (conn_ops.read_mark). */
struct read_mark {
    char *watermark; /* where the next read of the same scope starts (its scope.since), or
                      * NULL when the source cannot track changes; caller frees */
    int delta;       /* 1: the read delivered what changed after scope.since, and
                      * read_deleted() knows what was deleted; 0: it delivered every
                      * object of the scope (no usable since, or no change tracking at the
                      * source): objects not delivered are gone, and read_deleted() has
                      * nothing to say */
};

/* Called once per entry; the entry is borrowed (valid until fn returns). A non-zero
 * return stops the read and is returned by read(). */
typedef int (*conn_entry_fn)(const struct entry *e, void *payload);

/* Account state a change asks for (struct change.state). */
enum { CHANGE_STATE_KEEP = 0, CHANGE_STATE_ENABLE, CHANGE_STATE_DISABLE };

/* CHANGE_DISABLE disables the account without deleting it (target.disable). CHANGE_MOVE (DN
 * targets): rename old_ref to entry->dn, then modify as CHANGE_MODIFY does; member values
 * that name old_ref in the target's groups name entry->dn after it (as the refint overlay
 * does; with leave_groups, the groups that could not lose it). A rename onto an entry that
 * exists fails (never an overwrite). */
enum change_op { CHANGE_ADD = 0, CHANGE_MODIFY, CHANGE_DELETE, CHANGE_DISABLE, CHANGE_MOVE };

struct change {
    enum change_op op;
    enum obj_kind kind;
    const struct entry *entry; /* the wanted target entry (DN set); for DELETE only dn. For a
                                * CONN_IDENT_KEY target the "DN" is the natural key (login,
                                * group name); with CONN_MEMBERS_REF "member" values are the
                                * members' target ids. For MODIFY it says
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
    /* CONN_IDENT_KEY targets */
    const char *target_id; /* the id the journal holds, NULL/"" = not known */
    /* CONN_HASH_IMPORT targets, users to create */
    const unsigned char *password; /* the source userPassword value (secret), or NULL when
                                    * there is none; an empty value is non-NULL with
                                    * password_len 0 (a lock marker: no password) */
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
    char target_id[64];    /* CONN_IDENT_KEY: the object's id at the target ("" if unknown) */
    int created_with_hook; /* users: CREATED for the password-import hook (no credential) */
    int moved;             /* MOVE: the object is at entry->dn now (the rename was made, even
                            * when what followed it failed); 0 = still at old_ref */
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

/* Called once per change started with conn_ops.apply_start(), when its result is final: res
 * is the result the caller gave (filled as apply() fills it). Called from inside the
 * connector (apply_wait(), or any other call that drives the connection, e.g. a look-up
 * while changes are in flight): it must not call back into the connection. */
typedef void (*conn_done_fn)(const struct change *v, struct apply_result *res, void *payload);

struct conn_ops {
    const char *name; /* the type in dirmig.json */
    const char *what; /* "an LDAP directory", for messages and documentation */
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
    /* Optional, a sliding window (HTTP targets): apply() of one change without waiting for
     * it. The change starts as soon as one of the connection's request slots is free, after
     * any look-up waiting (find_many, get ...); done is called exactly once, when its
     * result is final (possibly before apply_start() returns), with res filled as apply()
     * fills it. v, what it points to and res
     * must stay valid until then. Changes started this way complete in any order; the
     * caller starts a change of an object only after the object's earlier change is done.
     * Returns DM_OK, or DM_ENOMEM (nothing started, done not called). */
    int (*apply_start)(struct conn *c, const struct change *v, struct apply_result *res,
                       conn_done_fn done, void *payload);
    /* With apply_start: moves the changes in flight on, calling done for each one that
     * completes; waits at most timeout_ms (0: not at all) when none completes at once.
     * Sets *inflight to the changes started and not yet done. Returns DM_OK, or DM_EUNAVAIL
     * when the connection failed underneath: every change in flight is then done as
     * APPLY_FAILED (with err). */
    int (*apply_wait)(struct conn *c, long timeout_ms, size_t *inflight, struct dm_err *err);
    /* Describes the server (rootDSE: vendor, naming contexts, supported controls, the
     * bound identity) as human text lines appended to out. */
    int (*check)(struct conn *c, struct buf *out, struct dm_err *err);
    void (*close)(struct conn *c); /* NULL-safe */
    /* CONN_IDENT_KEY: reads one object by its natural key (user login, group name), with a
     * group's members as "member" values (target ids); DM_ENOTFOUND if absent. */
    int (*find)(struct entry **out, struct conn *c, enum obj_kind kind, const char *name,
                struct dm_err *err);
    /* CONN_IDENT_KEY, optional: find() for n names at once (requests in flight together);
     * fills out[i] (or NULL), rcs[i] and errs[i] as find() would. */
    void (*find_many)(struct conn *c, enum obj_kind kind, const char *const *names, size_t n,
                      struct entry **out, int *rcs, struct dm_err *errs);
    /* CONN_IDENT_KEY, optional: reads one object by the reference the target assigned to it (its
     * id), in the same form as find(); DM_ENOTFOUND if absent. */
    int (*get)(struct entry **out, struct conn *c, enum obj_kind kind, const char *ref,
               struct dm_err *err);
    /* CONN_IDENT_KEY, optional: get() for n references at once (requests in flight
     * together); fills out[i] (or NULL), rcs[i] and errs[i] as get() would. */
    void (*get_many)(struct conn *c, enum obj_kind kind, const char *const *refs, size_t n,
                     struct entry **out, int *rcs, struct dm_err *errs);
    /* Optional: who the connection is bound as (LDAP who-am-I, else the configured bind
     * identity), as text to compare between runs; caller frees *out with free(). */
    int (*identity)(char **out, struct conn *c, struct dm_err *err);
    /* Optional: traffic counters so far. */
    void (*stats)(struct conn *c, struct conn_stats *out);
    /* CONN_IDENT_KEY: the mapped attribute that names a user / a group ("login", "name");
     * NULL for a kind the target does not hold. */
    const char *natural_key[2];
    /* CONN_DELTA (may be NULL). How the first read of s (its base and filter) on this
     * connection that completed with s->delta set went: its watermark and whether it was a
     * delta. DM_ENOTFOUND when no such read completed. AD: the
     * "<invocationId>:<highestCommittedUSN>" noted when the read began; LDAP with
     * syncprov (RFC 4533): the cookie the server sent at the end of the read. */
    int (*read_mark)(struct read_mark *out, struct conn *c, const struct scope *s,
                     struct dm_err *err);
    /* CONN_DELTA (may be NULL). Streams the objects that the read read_mark() describes
     * found deleted (or gone out of scope) to fn, as borrowed entries whose key is the
     * correlation key and whose DN is the last one the source knows ("" when it does not
     * say: the caller's journal knows it). Nothing when that read was not a delta. AD:
     * the tombstones under s->base changed after the watermark that read started from
     * (Show Deleted control), with sAMAccountName and objectClass; LDAP (key entryUUID):
     * of the objects s->known lists, those the server named deleted and, after a present
     * phase, those it neither sent nor named present (without s->known: the UUIDs the
     * server named). Never guessed from what an incomplete read did not return. */
    int (*read_deleted)(struct conn *c, const struct scope *s, conn_entry_fn fn, void *payload,
                        struct dm_err *err);

    /* ---- what differs between targets: the pipeline asks, it never names a type ---- */
    enum conn_ident ident;
    enum conn_members members;
    /* CONN_HASH_IMPORT: what becomes of a user's parsed source credential at this target,
     * decided without building anything: CRED_IMPORT (apply() sends it in a form the target
     * checks at sign-in), CRED_HOOK (created for the password-import hook) or CRED_LOCKED (a
     * lock marker or placeholder, schema/cred.h: created without a password, never for the
     * hook); *reason, when reason is not NULL, says why in static secret-free words. The
     * connector's own table: the pipeline counts and plans with it, apply() translates with the
     * same rules. */
    enum cred_outcome (*cred_outcome)(const struct cred *c, const char **reason);
    /* Optional: a stable identity of the target behind the URI (LDAP: the base entry's
     * entryUUID), so a journal is never applied to another server behind the same name.
     * *out is a new string (free()); DM_ENOTFOUND when the base does not exist. */
    int (*target_identity)(char **out, struct conn *c, struct dm_err *err);
    /* Optional: the end of a run that wrote through c; ok = 0 when the run failed or was
     * interrupted. A snapshot target makes its output visible only here (ok) or drops it
     * (not ok): never a partial silent write. */
    int (*finish)(struct conn *c, int ok, struct dm_err *err);
    /* Optional (DN targets): where an account lives once disabled, for a target that keeps
     * disabled accounts apart (LDAP target.disable.container: its RDN under the container).
     * *out = a new string (free()): the reference the account at ref has when disabled (ref
     * itself when it is there already), or NULL when disabling does not move an account.
     * Answers from the configuration alone (no connection: plan, run and rollback alike);
     * DM_EINVAL when ref is not a DN. */
    int (*disabled_ref)(char **out, const struct conn_cfg *cfg, const char *ref,
                        struct dm_err *err);
    /* The connector's own config keys (NULL-terminated by path NULL; may be NULL) and the
     * rules that involve several keys of its endpoint (may be NULL): x->fail() at the key. */
    const struct conn_key *keys;
    int (*config_check)(const struct conn_cfgcheck *x);
};

/* Registry lookup by name ("ldap", "okta"); NULL if unknown. */
const struct conn_ops *conn_find(const char *name);

/* The registered connectors, NULL-terminated, in the order of the configuration's list. */
const struct conn_ops *const *conn_all(void);

#endif
