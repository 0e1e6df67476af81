/*
 * connectors/fileout.h: the output file of a snapshot target (ldif, csv, jsonl): written
 * to a temporary file beside the destination (mode 0600: it may hold password hashes),
 * made visible by one rename() when the run succeeded (fileout_commit), removed otherwise
 * (fileout_free without a commit). A reader never sees half a file, and a failed or
 * interrupted run leaves the previous file as it was.
 *
 * Call order: fileout_open -> fileout_file() writes -> fileout_commit (optional) ->
 * fileout_free.
 */
#ifndef DM_FILEOUT_H
#define DM_FILEOUT_H

#include <stdio.h>
#include "agent/util/err.h"

struct fileout;

/* Creates the temporary file for path. DM_EINVAL when its directory is not writable. */
int fileout_open(struct fileout **out, const char *path, struct dm_err *err) DM_MUST_USE;

/* The stream to write to (borrowed). */
FILE *fileout_file(struct fileout *o);

/* The destination path (borrowed). */
const char *fileout_path(const struct fileout *o);

/* Flushes, syncs and renames the temporary file over the destination. */
int fileout_commit(struct fileout *o, struct dm_err *err) DM_MUST_USE;

/* Closes; the temporary file is removed unless committed. NULL-safe. */
void fileout_free(struct fileout *o);

#endif
