/*
 * progress.h: how far a plan, run or validate has come, for a person at a terminal, for a
 * log read through journald, and for other tools.
 *
 * The pipeline names phases ("users", "groups", "leavers"...) and, within each, publishes
 * how many items are done and, when it knows, how many there are. A reporter thread (one per
 * progress object) wakes on its own clock and writes what was asked for:
 *
 *   tty   one line on a terminal, redrawn in place 4 times a second: phase, done/total,
 *         percent, rate, ETA and the caller's detail text (e.g. created/updated/failed
 *         counts); the phase's last state stays on its own line when the phase ends
 *   json  JSON Lines: {"type":"progress","phase":P,"done":N,"total":N|null,"rate":R,
 *         "eta_s":N|null,"elapsed_s":S,"final":B}, written when a phase starts, at most once
 *         a second while its done count moves, and when it ends (final true; done equals
 *         total when the phase completed, and an unknown total becomes done)
 *   log   one log line (log_info) every log_interval_s seconds while a phase runs, for a
 *         daemon or a run whose standard error is not a terminal; and one when a phase that
 *         wrote such a line ends
 *
 * The reporter runs beside the work, so a batch that waits minutes for a rate-limited target
 * still gets its lines on time, and the work pays one relaxed atomic store per item
 * (progress_done()): no system call, no clock read, no lock. Memory is constant.
 *
 * Numbers: done and total count the phase's items (for the pipeline: source entries read and
 * written, or decided, at the target); rate = done / seconds since the phase started;
 * eta_s = (total - done) / rate, unknown while the total or the rate is; elapsed_s counts
 * from progress_new() (the whole command).
 *
 * Call order: progress_new -> (progress_phase -> progress_done* [progress_total]
 * [progress_detail] -> progress_phase_end)* -> progress_free. Every call but the reporter's
 * own work comes from one thread. A NULL progress is accepted everywhere and does nothing.
 */
#ifndef DM_PROGRESS_H
#define DM_PROGRESS_H

#include <stdio.h>
#include "agent/util/err.h"

struct progress;

struct progress_cfg {
    FILE *out;             /* where the tty line and JSON lines go (borrowed; stderr) */
    int tty;               /* draw the in-place line on out (a terminal) */
    int json;              /* write JSON lines on out */
    double log_interval_s; /* a log line this often; 0 = none */
    /* how often the tty line is redrawn and JSON lines may be written (0 = 0.25 s and 1 s);
     * tests make them short */
    double tty_interval_s, json_interval_s;
    long long run_id; /* the run the log lines name (0 = none) */
};

/* A progress object, or *out = NULL (and DM_OK) when cfg asks for no output at all. Starts
 * the reporter thread. Free with progress_free(). */
int progress_new(struct progress **out, const struct progress_cfg *cfg,
                 struct dm_err *err) DM_MUST_USE;

/* Ends the current phase if one is open, then starts phase `name` (static string) with
 * `total` items (-1 = not known yet) and done = 0. */
void progress_phase(struct progress *p, const char *name, long long total);

/* The current phase's items done so far (never less than before: a smaller value is kept
 * as it was). Cheap: call per item. */
void progress_done(struct progress *p, long long done);

/* The current phase's total, once known (-1 = not known). */
void progress_total(struct progress *p, long long total);

/* Short text shown after the numbers on the tty line and in the log line (copied; at most
 * 160 bytes kept). Takes a lock: call per batch, not per item. */
void progress_detail(struct progress *p, const char *text);

/* Ends the current phase: its last line (tty), its final JSON line, its log line. Nothing
 * when no phase is open. */
void progress_phase_end(struct progress *p);

/* Ends the open phase, stops the reporter thread and frees p. NULL-safe. */
void progress_free(struct progress *p);

/* Formats a duration as "45s", "3m05s" or "2h07m" into buf. For tests and reports. */
const char *progress_fmt_duration(char *buf, size_t len, double seconds);

/* Whether a progress object holds anything to report (cfg asks for some output). */
int progress_cfg_wanted(const struct progress_cfg *cfg);

#endif
