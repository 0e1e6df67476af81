/*
 * agent/delta.h: delta reads of the source between runs (source.delta; AD and LDAP
 * dialects).
 *
 * A run with source.delta reads only what changed since the last successful run. Each
 * scope (users, groups) has its own watermark, kept in the state journal's meta table
 * under "delta <kind> <uri> <base> <filter>": a watermark belongs to one search, so a
 * changed base or filter starts over with a full read. What a watermark is, and when it is
 * taken, is the connector's business (connector.h, read_mark):
 *   AD    "<invocationId>:<highestCommittedUSN>", noted when the read begins (USNs count
 *         per DC database, and the NTDS Settings invocationId names that database);
 *   LDAP  "ldapsync:<entryUUID of the source base>:<cookie>", the RFC 4533 cookie the
 *         server sent at the end of a refreshOnly read (slapd: the syncprov overlay).
 * The watermark of the run's first complete read of a scope replaces the stored one only
 * after a successful run without failed objects; otherwise the old one stays, so the next
 * run reads the same changes again (and reports the same deletions again).
 *
 * A read is a delta or a full read. It is full on the first run, when the stored watermark
 * cannot be used (another database or DC, a cookie the server refuses as too old or too
 * new) and when the source cannot track changes (no syncprov: then no watermark is kept).
 * delta_full() tells the caller after the reads, so that what left the source is then
 * found by comparing the full read with the journal. In a delta, deleted objects are what
 * the source says (AD tombstones; LDAP deletes, and after a present phase what the journal
 * holds that the server did not name), never inferred from what a read did not return.
 * Each goes through one function (delta_finish's fn; by default delta_report_deleted:
 * a migrated one is noted as gone for the leaver phase (state_gone_add), and every one is
 * logged, journaled as an error of category "source_deleted" and counted). Nothing here
 * changes the target.
 *
 * A run over part of the scope (--wave, --retry-from, --limit) reads it in full and keeps
 * no watermark.
 *
 * Call order: delta_begin (after the source is open and the run has an id) ->
 * delta_since() for each read -> the reads -> delta_full() (any time after the reads of a
 * kind) -> delta_finish (only after a successful run) -> delta_free.
 */
#ifndef DM_DELTA_H
#define DM_DELTA_H

#include "agent/config.h"
#include "agent/state.h"
#include "agent/util/err.h"
#include "connectors/connector.h"
#include "schema/map.h"

struct delta;

/* *out = NULL (and DM_OK) when cfg->source.delta is off, or whole is 0: a run over part of
 * the scope (--wave, --retry-from, --limit) reads it in full and keeps no watermark, since
 * advancing one would hide the changes of everything the run skipped. ops/c/st are
 * borrowed and outlive d. DM_EINVAL when the connector has no delta reads. */
int delta_begin(struct delta **out, const struct dm_config *cfg, int whole,
                const struct conn_ops *ops, struct conn *c, struct state *st,
                struct dm_err *err) DM_MUST_USE;

/* The watermark to read kind from (scope.since), or NULL for a full read. NULL-safe.
 * Every read of a delta run sets scope.delta (d != NULL), also with no since. */
const char *delta_since(const struct delta *d, enum map_kind kind);

/* After the reads of kind: 0 when they delivered only what changed (deletions come from
 * delta_finish), 1 when they delivered every object of the scope (also when d is NULL
 * or kind was not read). */
int delta_full(struct delta *d, enum map_kind kind);

/* One object the source says was deleted (or left the scope). Strings are borrowed. */
struct delta_deleted {
    enum map_kind kind;
    const char *key;                /* the correlation key */
    const char *dn;                 /* the journal's source DN, else the source's last
                                     * known DN, else "" */
    const char *name;               /* AD sAMAccountName, or NULL */
    const struct state_object *rec; /* the journal's row, NULL when never migrated */
    int out_of_scope;               /* not deleted: changed and out of the base or filter */
};

/* What happens to one deleted object; non-zero stops delta_finish (with err set). */
typedef int (*delta_deleted_fn)(const struct delta_deleted *g, void *payload, struct dm_err *err);

/* The default: a migrated object (g->rec) is noted as gone, a leaver of this run
 * (state_gone_add; agent/leavers.c acts on it); every one is logged and journaled as an
 * error of category "source_deleted". payload is the struct delta. */
int delta_report_deleted(const struct delta_deleted *g, void *payload, struct dm_err *err);

/* Hands every object deleted since the stored watermarks to fn (NULL = delta_report_deleted
 * with d as payload; *deleted = how many were handed) and, when advance is non-zero (no
 * object failed), stores the watermarks of this run's reads. Inside one journal batch.
 * NULL-safe (then *deleted = 0). */
int delta_finish(struct delta *d, long long run_id, int advance, delta_deleted_fn fn, void *payload,
                 long long *deleted, struct dm_err *err) DM_MUST_USE;

void delta_free(struct delta *d); /* NULL-safe */

#endif
