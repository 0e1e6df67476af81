/*
 * agent/reader.h: a source read on its own thread, feeding the pipeline through a bounded
 * queue.
 *
 * reader_run() starts conn_ops.read() of one scope on a thread that copies each entry into
 * a bounded queue of `cap` entries, and calls fn for each entry on the calling thread, so
 * source paging overlaps with mapping, journaling and target writes. The queue is the only
 * buffer: memory stays flat however big the directory is (the pipeline uses two batches).
 *
 * fn returns 0 to go on or non-zero to stop: the read is stopped (the reader thread sees
 * READER_STOP from its push and ends) and that value is returned. Otherwise the read's own
 * result is returned, with err filled on failure. Entries handed to fn are borrowed: valid
 * until fn returns.
 */
#ifndef DM_READER_H
#define DM_READER_H

#include <stddef.h>
#include "agent/util/err.h"
#include "connectors/connector.h"

/* What the queue's push returns to the connector once the consumer has stopped (not an
 * enum dm_rc). */
#define READER_STOP 1000

int reader_run(const struct conn_ops *ops, struct conn *conn, const struct scope *sc, size_t cap,
               conn_entry_fn fn, void *payload, struct dm_err *err);

#endif
