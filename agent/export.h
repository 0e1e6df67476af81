/*
 * export.h: the validation export and its reverse, the retry list.
 *
 * export_open() creates PREFIX.csv and PREFIX.jsonl; export_row() appends one row per
 * entry to both: its key, DN, kind, status ("ok", "problem", "inactive") and problems,
 * and in JSON Lines also its mapped values, with every pii or sensitive value written as
 * "***" and binary values as "(binary, N bytes)". Nothing else about a value is written.
 *
 * retry_load() reads such an export back (either file) and keeps the keys of the rows
 * whose status is not "ok": `dirmig run --retry-from FILE` re-runs just those entries.
 * The set is held in memory (one string per listed key): it is the size of the problem
 * list, not of the directory.
 */
#ifndef DM_EXPORT_H
#define DM_EXPORT_H

#include <stddef.h>
#include <stdio.h>
#include "agent/util/err.h"
#include "schema/entry.h"
#include "schema/map.h"
#include "schema/validate.h"

struct export;

int export_open(struct export **out, const char *prefix, struct dm_err *err) DM_MUST_USE;
/* mapped may be NULL (the entry failed before mapping). */
int export_row(struct export *x, const char *key, const char *dn, const char *kind,
               const char *status, const struct map_problem *probs, size_t nprobs,
               const struct map *m, enum map_kind mk, const struct entry *mapped,
               struct dm_err *err) DM_MUST_USE;
/* Flushes and closes both files; reports a write error. NULL-safe. */
int export_close(struct export *x, struct dm_err *err);
const char *export_csv_path(const struct export *x);
const char *export_jsonl_path(const struct export *x);

/* Writes s as one RFC 4180 CSV field followed by ',' or, when last, a newline. */
void export_csv_field(FILE *f, const char *s, int last);

struct retry_set;
int retry_load(struct retry_set **out, const char *path, struct dm_err *err) DM_MUST_USE;
int retry_has(const struct retry_set *r, const char *key);
size_t retry_count(const struct retry_set *r);
void retry_free(struct retry_set *r);

/* Uniqueness index over a whole population: counts how many entries carry each value of
 * each unique attribute (compared case-insensitively). Holds one 16-byte digest plus a
 * counter per distinct value (about 24 MiB per million values): uniqueness needs the whole
 * population, so this is the one place that grows with the directory, by design. */
struct uniq;
int uniq_new(struct uniq **out, struct dm_err *err) DM_MUST_USE;
/* Counts one occurrence of (attr, value). */
int uniq_add(struct uniq *u, const char *attr, const void *v, size_t len) DM_MUST_USE;
/* How many entries carry (attr, value). */
unsigned uniq_count(const struct uniq *u, const char *attr, const void *v, size_t len);
void uniq_free(struct uniq *u);

#endif
