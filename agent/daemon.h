/*
 * daemon.h: `dirmig agent`, the long-running process for systemd.
 *
 * One process serves the password-import hook (agent/hook.h, when the config has a hook
 * section) and runs the create/update pipeline (pipeline_execute() in PIPE_RUN mode, what
 * `dirmig run` does) on the schedule of the config's reconcile section. The main thread
 * owns everything: it waits in poll(2) on a signalfd, a wake-up pipe of the run thread and
 * the next timer (scheduled run or systemd watchdog); a scheduled run happens on a worker
 * thread so the main thread keeps answering signals. Never two runs at once: a run that
 * is due while one is still going starts after it.
 *
 *   SIGTERM, SIGINT  stop: the current run is asked to stop after its batch
 *                    (pipeline_request_stop(); the journal marks it "interrupted"), the
 *                    hook server stops, exit 0
 *   SIGHUP           re-read the config; an invalid one is logged (file:line:col) and the
 *                    running one kept. A valid one restarts the hook server with it (its
 *                    secret and TLS files are read again) and reschedules; a run in
 *                    progress finishes with the config it started with
 * A failed run (the pipeline returned an error: an endpoint down, the journal unusable) is
 * logged and retried at the next interval; after reconcile.max_failures_before_backoff
 * failures in a row the delay doubles per failure up to reconcile.max_backoff_s. Entries
 * that failed inside a completed run are not a failed run (they are in the journal's
 * errors and retried by the next run anyway).
 *
 * systemd (Type=notify) is spoken without libsystemd (agent/util/sdnotify.h): READY=1 once
 * the hook listens and the schedule is set, RELOADING=1 / READY=1 around a reload,
 * STOPPING=1 at the stop signal, WATCHDOG=1 every half $WATCHDOG_USEC.
 *
 * The schedule and the outcome of the last scheduled run are kept in the journal's meta
 * table under STATE_META_AGENT (agent/state.h) as a JSON object, for `dirmig status`:
 *   {"pid", "state": "running"|"stopped", "interval_s", "failures", "next_due" (unix s,
 *    0 = none), "last_run" (run id, 0 when the run failed before it began),
 *    "last_status": "done"|"failed"|"interrupted", "last_started", "last_finished",
 *    "last_error" (one line, no secret)}
 */
#ifndef DM_DAEMON_H
#define DM_DAEMON_H

#include "agent/cli.h"
#include "agent/config.h"

/* `dirmig agent`: runs until SIGTERM/SIGINT. cfg is the config loaded by the CLI
 * (borrowed; reloads replace it with configs owned here). Returns DM_OK after a stop
 * signal; DM_EINVAL (exit hint EX_CONFIG) when the config gives the agent nothing to do
 * or the hook server cannot use it; DM_EUNAVAIL when the hook cannot listen. */
int daemon_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
               struct dm_err *err);

/* Milliseconds from the start of one scheduled run to the next, after `failures` failed
 * runs in a row (0 after a success): interval_s, doubled per failure beyond
 * max_failures_before_backoff up to max(max_backoff_s, interval_s), plus jitter_ms (the
 * caller's random pick in 0..jitter_s * 1000). 0 when interval_s is 0. */
long long daemon_delay_ms(const struct config_reconcile *r, int failures, long long jitter_ms);

#endif
