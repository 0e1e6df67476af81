/*
 * planfile.h: the saved-plan file of `dirmig plan --out FILE` and `dirmig run --plan FILE`.
 *
 * A plan file is JSON Lines, one object per line:
 *
 *   line 1     the header: {"dirmig_plan": 1, "plan_id", "run", "created", "created_unix",
 *              "config_digest", "target", "source", "wave", "scope"}
 *   lines 2..  one change each: {"op", "kind", "key", "source_dn", "target", "ref",
 *              "reason", "attributes", "state", "source_digest", "target_digest"}
 *   last line  the trailer: {"end": true, "changes": N}
 *
 * A change names the object (its correlation key, its source DN, the DN or name it has or
 * will have at the target and the reference the journal holds), the operation, the reason
 * and the names of the attributes that differ, and two SHA-256 digests: of the source
 * object and of the target object the change was computed from ("absent" when there was
 * none). It never holds an attribute value: the digests are what a run compares.
 *
 * Writing: planfile_create() opens a temporary file beside FILE (mode 0600) and writes the
 * header; planfile_add() per change; planfile_commit() writes the trailer, syncs and
 * renames it to FILE, so FILE is either the whole plan or not there. planfile_abort()
 * removes the temporary file instead.
 *
 * Reading: planfile_read() checks every line (JSON, known fields, known values, digests,
 * the trailer's count) and calls fn per change; any problem is an error naming
 * "FILE:LINE" and nothing of the plan is used. A file without its trailer is refused as
 * truncated.
 */
#ifndef DM_PLANFILE_H
#define DM_PLANFILE_H

#include <stddef.h>
#include "agent/util/err.h"

#define PLANFILE_VERSION 1
#define PLANFILE_ABSENT "absent" /* digest of an object that was not there */

struct planfile_header {
    char plan_id[33];       /* 32 hex digits, random per plan */
    long long run;          /* the journal's id of the plan run */
    long long created;      /* unix seconds */
    char config_digest[65]; /* the configuration and its map (planfile_config_digest) */
    char *target;           /* the target's identity (type, URI, base, base entry UUID) */
    char *source;           /* the source URI (for people; not compared) */
    char *wave;             /* the plan's --wave, NULL for none */
    int full_scope;         /* 1: made over the whole scope (leavers were looked for) */
    long long changes;      /* planfile_read(): the trailer's count */
};

/* Frees the header's strings (not h itself). NULL-safe. */
void planfile_header_clear(struct planfile_header *h);

/* One change. Strings are borrowed (writer: the caller's; reader: valid during fn). */
struct planfile_change {
    const char *op;            /* create, update, move, disable, delete */
    const char *kind;          /* user, group, container, unmatched */
    const char *key;           /* correlation key (unmatched: the target reference) */
    const char *source_dn;     /* may be NULL */
    const char *target;        /* the DN or name at the target */
    const char *ref;           /* the journal's target reference, NULL when none */
    const char *reason;        /* new, changed, drift, leaver, ... */
    const char *attrs;         /* comma-separated attribute names, NULL when none */
    const char *state;         /* keep, enable, disable */
    const char *source_digest; /* 64 hex digits or "absent" */
    const char *target_digest; /* 64 hex digits or "absent" */
    long line;                 /* reader: the line in the file */
};

struct planfile;

/* Opens FILE's temporary sibling (0600) and writes h's header line (h->plan_id is filled
 * with a new random id). Returns a writer; finish with planfile_commit or planfile_abort. */
int planfile_create(struct planfile **out, const char *path, struct planfile_header *h,
                    struct dm_err *err) DM_MUST_USE;
int planfile_add(struct planfile *f, const struct planfile_change *c,
                 struct dm_err *err) DM_MUST_USE;
/* Number of changes written so far. */
long long planfile_count(const struct planfile *f);
/* Writes the trailer, fsyncs, renames the file to its name and frees f (also on error,
 * when the temporary file is removed). */
int planfile_commit(struct planfile *f, struct dm_err *err) DM_MUST_USE;
/* Removes the temporary file and frees f. NULL-safe. */
void planfile_abort(struct planfile *f);

/* Reads FILE: *out gets the header (clear with planfile_header_clear), fn every change in
 * order (fn may be NULL: the whole file is still checked). fn's non-zero return stops the
 * read and is returned. DM_ENOTFOUND when FILE does not exist, DM_EINVAL with "FILE:LINE:
 * ..." for a malformed file. */
typedef int (*planfile_change_fn)(const struct planfile_change *c, void *payload);
int planfile_read(struct planfile_header *out, const char *path, planfile_change_fn fn,
                  void *payload, struct dm_err *err) DM_MUST_USE;

/* A duration as --max-age takes it: N (seconds) or N followed by s, m, h or d. Returns
 * DM_OK with *out in seconds (> 0), or DM_EINVAL. */
int planfile_duration(long long *out, const char *s) DM_MUST_USE;

/* The digest a plan binds to: the configuration file's digest and the bytes of the map
 * file it names (map_file NULL: an inline or default map, which the configuration's bytes
 * already cover). hex is 65 bytes. */
void planfile_config_digest(char hex[65], const char *config_digest, const char *map_file);

#endif
