/*
 * tview.h: the target as it is, for the planner (DESIGN "The planner is the heart").
 *
 * Two ways to see the target, chosen by tview_open():
 *   - a full read (targets that address objects by DN): a thread reads everything under the
 *     target base with the connector's paged streaming read, on its own connection, while
 *     the source is read and mapped; each entry goes into an index as a projection
 *     (agent/projection.h), keyed by its normalised DN. tview_get() takes a projection out
 *     of the index (so memory holds only what the read is ahead of the source by);
 *   - look-ups on demand: everything else, and any object the read has not reached yet,
 *     is looked up directly on the caller's connection (conn_ops.lookup for DNs; find_many
 *     by natural key or get by target id for targets that name objects by key; a snapshot
 *     target, written anew by the run, holds nothing yet). An object looked up directly
 *     is remembered (a 64-bit hash) so that the read drops it when it gets there.
 * The index is bounded (max_ahead entries): the read waits while it is full, and the planner
 * goes on with look-ups. tview_drain() then hands every target object nobody asked for to a
 * callback and waits for the read to finish, returning whether the read was complete.
 *
 * Call order: tview_open -> tview_get()* (one thread) -> tview_drain() (optional) ->
 * tview_close. Nothing here writes to the target.
 */
#ifndef DM_TVIEW_H
#define DM_TVIEW_H

#include <stddef.h>
#include "agent/projection.h"
#include "agent/util/err.h"
#include "connectors/connector.h"

struct tview;

struct tview_cfg {
    const struct conn_ops *ops;
    const struct conn_cfg *conn;    /* the target's settings (the read opens its own conn) */
    struct conn *lookup;            /* the caller's connection for direct look-ups (borrowed) */
    int full_read;                  /* 1: read the whole target in the background */
    size_t max_ahead;               /* index bound, entries */
    const struct proj_rules *rules; /* borrowed; outlives the view */
};

/* Starts the view (and the background read when cfg->full_read and the connector addresses
 * objects by DN and is not a snapshot). Returns a new view; free with tview_close(). */
int tview_open(struct tview **out, const struct tview_cfg *cfg, struct dm_err *err) DM_MUST_USE;

/* A request for one object: by the reference the journal holds (by_ref: DN or target id) or
 * by its natural identity (DN, login, group name). key NULL or "" = skip (out NULL, ENOTFOUND). */
struct tview_req {
    const char *key;
    int by_ref;
};

/* Resolves n requests of one kind: out[i] is a new projection (caller frees with proj_free)
 * and rcs[i] DM_OK, or out[i] NULL and rcs[i] DM_ENOTFOUND (absent at the target), or
 * another rc with errs[i] (the look-up failed: the object's state is unknown). */
void tview_get(struct tview *v, enum obj_kind kind, const struct tview_req *reqs, size_t n,
               struct proj **out, int *rcs, struct dm_err *errs);

/* 1 once the background read has finished without error (0 without a background read). */
int tview_read_complete(const struct tview *v);

/* Calls fn (from the calling thread) with every target object the read returned that no
 * tview_get() asked for, until the read ends; fn gets a borrowed projection. Returns DM_OK
 * when the read completed, or the read's error (fn's non-zero return stops and is returned).
 * Without a background read: DM_EINVAL. */
typedef int (*tview_proj_fn)(const struct proj *p, void *payload);
int tview_drain(struct tview *v, tview_proj_fn fn, void *payload, struct dm_err *err) DM_MUST_USE;

/* Counters for the run summary. */
struct tview_stats {
    long long read, taken, looked_up, max_held;
};
void tview_get_stats(const struct tview *v, struct tview_stats *out);

void tview_close(struct tview *v); /* NULL-safe; stops the read */

#endif
