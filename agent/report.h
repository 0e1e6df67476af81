/*
 * report.h: what dirmig tells its user after plan, run and status.
 *
 * Human text goes to the given stream (stderr by convention); --json output is one JSON
 * object on stdout, stable for scripts. Neither ever contains a password, hash or token:
 * the stats hold counts, DNs and attribute names only.
 */
#ifndef DM_REPORT_H
#define DM_REPORT_H

#include <stdio.h>
#include "agent/pipeline.h"
#include "agent/state.h"

/* Summary of a plan (mode PIPE_PLAN) or run: counts per kind, changes by reason, the
 * target comparison, samples. The JSON form also carries the status and exit_code the
 * process ends with (agent/exitcode.h). */
void report_pipeline_text(FILE *out, const struct pipeline_stats *st, enum pipeline_mode mode);
int report_pipeline_json(FILE *out, const struct pipeline_stats *st, enum pipeline_mode mode,
                         int exit_code);

/* `dirmig validate`: rows, problem counts per category and attribute, first examples,
 * whether blocking problems exist, and where the export went. */
void report_validate_text(FILE *out, const struct pipeline_stats *st);
int report_validate_json(FILE *out, const struct pipeline_stats *st);

/* `dirmig status`: recent runs and journal totals. */
int report_status(FILE *out, struct state *s, int json, struct dm_err *err) DM_MUST_USE;

#endif
