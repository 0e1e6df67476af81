/*
 * agent/delta.h: delta reads of the source between runs (source.delta; AD dialect).
 *
 * A run with source.delta reads only what changed since the last successful run. The
 * connector says what "changed" means through its watermark (conn_ops.watermark; AD:
 * "<invocationId>:<highestCommittedUSN>": USNs count per DC database, and the NTDS
 * Settings invocationId names that database), which this module
 * keeps in the state journal's meta table, one key per source (URI + base).
 *
 * The watermark is taken *before* the read, so a change made while the run reads is read
 * again next time rather than lost. No stored watermark, or one from another DC database
 * (different invocationId), means a full read. Deleted objects are read explicitly from
 * the source (conn_ops.read_deleted: AD tombstones) and reported (log, journal errors with
 * category "source_deleted", the run's count); they are never inferred from objects that
 * a (possibly short or failed) read did not return, and nothing is deleted in the target.
 *
 * Call order: delta_begin (after the source is open and the run has an id) ->
 * delta_since() for each scope -> the reads -> delta_finish (only after a successful run:
 * reports deletions, then stores the new watermark) -> delta_free.
 */
#ifndef DM_DELTA_H
#define DM_DELTA_H

#include "agent/config.h"
#include "agent/state.h"
#include "agent/util/err.h"
#include "connectors/connector.h"

struct delta;

/* *out = NULL (and DM_OK) when cfg->source.delta is off. ops/c/st are borrowed. */
int delta_begin(struct delta **out, const struct dm_config *cfg, const struct conn_ops *ops,
                struct conn *c, struct state *st, struct dm_err *err) DM_MUST_USE;

/* The watermark to read from (scope.since), or NULL for a full read. NULL-safe. */
const char *delta_since(const struct delta *d);

/* Reports the objects deleted since the stored watermark (count in *deleted) and, when
 * advance is non-zero (no object failed), stores the watermark taken by delta_begin; with
 * failures the old one stays, so the next run reads the failed objects again (and reports
 * the same deletions again). NULL-safe (then *deleted = 0). */
int delta_finish(struct delta *d, long long run_id, int advance, long long *deleted,
                 struct dm_err *err) DM_MUST_USE;

void delta_free(struct delta *d); /* NULL-safe */

#endif
