/*
 * report_html.h: `dirmig report --html FILE`, the migration program on one page.
 *
 * One self-contained HTML5 file built from the state journal: inline CSS and SVG, no
 * script, no font, image or style from anywhere else (a Content-Security-Policy of
 * default-src 'none' forbids loading anything), so the page works offline, from a mail
 * attachment, and the same in any browser. Sections, each an element with this id:
 *   summary    where the journal stands: users and groups migrated or failing, and the
 *              password-migration share
 *   runs       runs over time: a chart of the newest REPORT_HTML_CHART_RUNS runs that
 *              wrote (plans left out) and a table of the newest REPORT_HTML_TABLE_RUNS
 *   outcomes   created, updated, unchanged, failed, deleted and skipped over all runs
 *   problems   recorded errors by category (still open, recorded in all), with the newest
 *              REPORT_HTML_EXAMPLES examples of each, identities masked
 *   waves      runs and counts per wave, and the configured waves not run yet
 *   blocked    blocked runs with their reason, and the other runs that did not finish
 *   passwords  the password-migration curve, per UTC day and cumulative: users created
 *              with an imported hash, created for the hook, verified through the hook
 *
 * What it shows: counts, dates, run ids, wave and category names, and in the problem
 * examples masked identities and error messages with the identities they name masked
 * (agent/redact.h). The journal never holds a password or hash, and the page reads nothing
 * else. Every string from the journal or the config is HTML-escaped (agent/util/html.h).
 *
 * Call order: report_html_cmd() from the CLI, or report_html_write() on an open journal.
 */
#ifndef DM_REPORT_HTML_H
#define DM_REPORT_HTML_H

#include <stdio.h>
#include <time.h>
#include "agent/cli.h"
#include "agent/config.h"
#include "agent/state.h"

#define REPORT_HTML_CHART_RUNS 60
#define REPORT_HTML_TABLE_RUNS 30
#define REPORT_HTML_EXAMPLES 5
#define REPORT_HTML_UNFINISHED_RUNS 50

struct report_html_opts {
    const char *source;              /* source URI shown in the title, or NULL */
    const char *target;              /* target URI, or NULL */
    const char *journal;             /* journal path shown in the header, or NULL */
    const struct config_wave *waves; /* configured waves (borrowed), nwaves of them */
    size_t nwaves;
    time_t now; /* "generated at" */
};

/* Writes the page to out. s may be NULL (no journal yet): every section then says that
 * nothing has run. Returns DM_OK, a journal error, or DM_EINTERNAL when out failed. */
int report_html_write(FILE *out, struct state *s, const struct report_html_opts *o,
                      struct dm_err *err) DM_MUST_USE;

/* `dirmig report --html FILE`: the page for cfg's journal, written to FILE.tmp-XXXXXX and
 * renamed to FILE when complete (never a partial page); FILE "-" is standard output. */
int report_html_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                    struct dm_err *err);

#endif
