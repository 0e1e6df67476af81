#include <config.h>
#include "agent/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "agent/hook.h"
#include "agent/pipeline.h"
#include "agent/state.h"
#include "agent/util/buf.h"
#include "agent/util/log.h"
#include "agent/util/sdnotify.h"

/* How often the stop request is repeated while a run winds down: pipeline_execute()
 * clears its stop flag when it starts, so a request that lands just before that would be
 * lost. */
#define DAEMON_STOP_POLL_MS 100
/* The least gap between the end of one run and the start of the next. */
#define DAEMON_MIN_GAP_MS 1000

/* The scheduled run in progress. Written by the run thread, read by the main thread only
 * after pthread_join(). */
struct daemon_job {
    pthread_t thread;
    struct pipeline_stats stats;
    struct dm_err err;
    int rc;
    long long started_ms; /* monotonic */
    time_t started;       /* wall clock, for the journal */
};

struct daemon {
    const struct cli_opts *o;
    const struct dm_config *initial; /* the CLI's; never freed here */
    const struct dm_config *cfg;     /* current */
    const struct dm_config *run_cfg; /* the one the running job uses, else NULL */
    const struct dm_config *hook_cfg;
    struct hook_server *hook;
    int sfd;     /* signalfd: SIGTERM, SIGINT, SIGHUP */
    int wake[2]; /* the run thread writes one byte when it is done */
    int running, stopping;
    struct daemon_job job;
    long long next_due_ms; /* monotonic; 0 = no run scheduled */
    time_t next_due;       /* the same in wall-clock seconds, for status */
    int failures;          /* failed runs in a row */
    long long wd_period_ms, wd_next_ms;
    unsigned rnd;
    /* the last scheduled run, for the journal's meta */
    long long last_run;
    const char *last_status;
    time_t last_started, last_finished;
    char last_error[256];
    /* the same for /metrics, read on the hook server's threads (agent_metrics()) */
    pthread_mutex_t m_mu;
    char m_status[16];
    long long m_run, m_finished;
    int m_failures, m_blocked;
    char m_reason[256];
};

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long daemon_delay_ms(const struct config_reconcile *r, int failures, long long jitter_ms)
{
    long long d = r->interval_s,
              cap = r->max_backoff_s > r->interval_s ? r->max_backoff_s : r->interval_s;

    if (r->interval_s <= 0) {
        return 0;
    }
    for (int i = r->max_failures_before_backoff; i < failures && d < cap; i++) {
        d *= 2;
    }
    if (d > cap) {
        d = cap;
    }
    return d * 1000 + (jitter_ms > 0 ? jitter_ms : 0);
}

/* Frees c unless the CLI owns it or the daemon still uses it. */
static void cfg_release(struct daemon *d, const struct dm_config *c)
{
    if (c == NULL || c == d->initial || c == d->cfg || c == d->run_cfg || c == d->hook_cfg) {
        return;
    }
    config_free((struct dm_config *)c); /* loaded by reload(): ours */
}

/* Schedules the next run `failures` after a run that started at base_ms (0: from now). */
static void schedule(struct daemon *d, long long base_ms)
{
    const struct config_reconcile *r = &d->cfg->reconcile;
    long long now = mono_ms(), jitter = 0, due;

    if (r->interval_s <= 0 || d->stopping) {
        d->next_due_ms = 0;
        d->next_due = 0;
        return;
    }
    if (r->jitter_s > 0) {
        jitter = (long long)(rand_r(&d->rnd) % (r->jitter_s * 1000 + 1));
    }
    due = (base_ms > 0 ? base_ms : now) + daemon_delay_ms(r, d->failures, jitter);
    if (base_ms > 0 && due < now + DAEMON_MIN_GAP_MS) {
        due = now + DAEMON_MIN_GAP_MS;
    }
    d->next_due_ms = due;
    d->next_due = time(NULL) + (time_t)((due - now + 999) / 1000);
}

/* Appends v to b as a Prometheus label value (backslash, double quote and newline
 * escaped). */
static int label_value(struct buf *b, const char *v)
{
    int rc = DM_OK;

    for (; *v != '\0' && rc == DM_OK; v++) {
        rc = *v == '\\'   ? buf_puts(b, "\\\\")
             : *v == '"'  ? buf_puts(b, "\\\"")
             : *v == '\n' ? buf_puts(b, "\\n")
                          : buf_append(b, v, 1);
    }
    return rc;
}

/* /metrics lines of the scheduled reconciliation (hook_server_set_metrics()). */
static int agent_metrics(void *ctx, struct buf *b)
{
    struct daemon *d = ctx;
    int rc;

    pthread_mutex_lock(&d->m_mu);
    rc = buf_printf(b,
                    "# HELP dirmig_reconcile_blocked 1 when the last scheduled run was blocked "
                    "(source-health gate or deletion limits: no disable or delete made).\n"
                    "# TYPE dirmig_reconcile_blocked gauge\n"
                    "dirmig_reconcile_blocked %d\n"
                    "# HELP dirmig_reconcile_failures Scheduled runs failed in a row.\n"
                    "# TYPE dirmig_reconcile_failures gauge\n"
                    "dirmig_reconcile_failures %d\n"
                    "# HELP dirmig_reconcile_last_finished_seconds Unix time the last scheduled "
                    "run ended (0: none yet).\n"
                    "# TYPE dirmig_reconcile_last_finished_seconds gauge\n"
                    "dirmig_reconcile_last_finished_seconds %lld\n",
                    d->m_blocked, d->m_failures, d->m_finished);
    if (rc == DM_OK && d->m_status[0] != '\0') {
        rc = buf_printf(b,
                        "# HELP dirmig_reconcile_last_run_info The last scheduled run and how it "
                        "ended.\n"
                        "# TYPE dirmig_reconcile_last_run_info gauge\n"
                        "dirmig_reconcile_last_run_info{run=\"%lld\",status=\"%s\"} 1\n",
                        d->m_run, d->m_status);
    }
    if (rc == DM_OK && d->m_blocked) {
        rc = buf_printf(b, "# HELP dirmig_reconcile_blocked_info Why the last scheduled run was "
                           "blocked.\n"
                           "# TYPE dirmig_reconcile_blocked_info gauge\n"
                           "dirmig_reconcile_blocked_info{reason=\"");
        rc = rc == DM_OK ? label_value(b, d->m_reason) : rc;
        rc = rc == DM_OK ? buf_puts(b, "\"} 1\n") : rc;
    }
    pthread_mutex_unlock(&d->m_mu);
    return rc;
}

/* Starts the hook server on c with the agent's /metrics lines. */
static int start_hook(struct daemon *d, const struct dm_config *c, struct dm_err *err)
{
    int rc = hook_server_start(&d->hook, c, err);

    if (rc == DM_OK) {
        hook_server_set_metrics(d->hook, agent_metrics, d);
    }
    return rc;
}

/* Writes the schedule and the last run to the journal's meta (best effort: a journal
 * that cannot be written is logged, the daemon goes on). */
static void meta_write(struct daemon *d)
{
    struct state *st = NULL;
    struct state_where w;
    struct dm_err e = {0};
    char msg[512], *text = NULL;
    json_t *o;

    pthread_mutex_lock(&d->m_mu);
    snprintf(d->m_status, sizeof(d->m_status), "%s", d->last_status ? d->last_status : "");
    d->m_run = d->last_run;
    d->m_finished = (long long)d->last_finished;
    d->m_failures = d->failures;
    d->m_blocked = d->last_status != NULL && strcmp(d->last_status, "blocked") == 0;
    snprintf(d->m_reason, sizeof(d->m_reason), "%s",
             strncmp(d->last_error, "blocked: ", 9) == 0 ? d->last_error + 9 : "");
    pthread_mutex_unlock(&d->m_mu);
    o = json_pack("{s:I,s:s,s:i,s:i,s:I,s:I,s:s?,s:I,s:I,s:s?}", "pid", (json_int_t)getpid(),
                  "state", d->stopping ? "stopped" : "running", "interval_s",
                  d->cfg->reconcile.interval_s, "failures", d->failures, "next_due",
                  (json_int_t)(d->stopping ? 0 : d->next_due), "last_run", (json_int_t)d->last_run,
                  "last_status", d->last_status, "last_started", (json_int_t)d->last_started,
                  "last_finished", (json_int_t)d->last_finished, "last_error",
                  d->last_error[0] ? d->last_error : NULL);
    if (o != NULL) {
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    if (text == NULL) {
        log_warn("agent: cannot record the schedule in the journal: out of memory");
        return;
    }
    config_state_where(&w, d->cfg);
    if (state_open_cfg(&st, &w, &e) != DM_OK ||
        state_meta_set(st, STATE_META_AGENT, text, &e) != DM_OK) {
        log_warn("agent: cannot record the schedule in the journal: %s",
                 dm_err_format(&e, msg, sizeof(msg)));
    }
    state_close(st);
    free(text);
}

static void describe_schedule(const struct dm_config *c, char *buf, size_t len)
{
    const struct config_reconcile *r = &c->reconcile;

    if (r->interval_s <= 0) {
        snprintf(buf, len, "no scheduled runs (reconcile.interval_s is 0)");
    } else {
        snprintf(buf, len, "a run every %d s (jitter %d s%s)", r->interval_s, r->jitter_s,
                 r->run_at_start ? ", first at start" : "");
    }
}

/* The agent needs something to do: a hook or a schedule. */
static int check_usable(const struct dm_config *c, struct dm_err *err)
{
    if (!c->hook.enabled && c->reconcile.interval_s <= 0) {
        return dm_err_set(err, DM_EINVAL,
                          "%s: dirmig agent has nothing to do: add a hook section or set "
                          "reconcile.interval_s",
                          c->path);
    }
    return DM_OK;
}

/* ---- the run thread ---- */

static void *run_main(void *arg)
{
    struct daemon *d = arg;
    struct pipeline_opts o;
    ssize_t n;

    memset(&o, 0, sizeof(o));
    o.mode = PIPE_RUN;
    o.allow_deletes = -1; /* a schedule never approves: a blocked run waits for a person */
    o.embedded = 1;
    o.run_kind = "reconcile";
    d->job.rc = pipeline_execute(&d->job.stats, d->run_cfg, &o, &d->job.err);
    do {
        n = write(d->wake[1], "r", 1);
    } while (n < 0 && errno == EINTR);
    return NULL;
}

static void run_start(struct daemon *d)
{
    memset(&d->job, 0, sizeof(d->job));
    d->job.started_ms = mono_ms();
    d->job.started = time(NULL);
    d->run_cfg = d->cfg;
    d->next_due_ms = 0;
    d->next_due = 0;
    if (pthread_create(&d->job.thread, NULL, run_main, d) != 0) {
        d->run_cfg = NULL;
        d->failures++;
        d->last_run = 0;
        d->last_status = "failed";
        d->last_started = d->last_finished = d->job.started;
        snprintf(d->last_error, sizeof(d->last_error), "cannot start the run thread");
        log_err("agent: scheduled run: cannot start the run thread");
        schedule(d, d->job.started_ms);
        meta_write(d);
        return;
    }
    d->running = 1;
    log_debug("agent: scheduled run starting");
}

/* Joins the finished run, logs its outcome, schedules the next. */
static void run_finished(struct daemon *d)
{
    struct pipeline_stats *s = &d->job.stats;
    const struct dm_config *used = d->run_cfg;
    long long ms;
    char msg[1200];

    pthread_join(d->job.thread, NULL);
    d->running = 0;
    d->run_cfg = NULL;
    ms = mono_ms() - d->job.started_ms;
    d->last_run = s->run_id;
    d->last_started = d->job.started;
    d->last_finished = time(NULL);
    d->last_error[0] = '\0';
    if (d->job.rc == DM_EBUSY) {
        /* another agent (or a person) is running this target: not a failure; this agent
         * tries again at its next turn, and takes over when that runner is gone */
        d->last_status = "busy";
        dm_err_format(&d->job.err, d->last_error, sizeof(d->last_error));
        log_info("agent: scheduled run skipped: %s", d->job.err.msg);
    } else if (d->job.rc != DM_OK) {
        d->failures++;
        d->last_status = "failed";
        dm_err_format(&d->job.err, msg, sizeof(msg));
        dm_err_format(&d->job.err, d->last_error, sizeof(d->last_error));
        if (s->run_id != 0) {
            log_err("agent: scheduled run %lld failed after %.1f s: %s", s->run_id, ms / 1000.0,
                    msg);
        } else {
            log_err("agent: scheduled run failed before it began: %s", msg);
        }
    } else {
        long long failed = s->users.failed + s->groups.failed;
        d->last_status = s->interrupted && d->stopping ? "interrupted" : s->status;
        if (!d->stopping) {
            d->failures = 0; /* a blocked run is not retried sooner: it waits for a person */
        }
        if (s->blocked[0] != '\0') {
            snprintf(d->last_error, sizeof(d->last_error), "blocked: %.240s", s->blocked);
            log_warn("agent: scheduled run %lld is blocked (no disable or delete made): %s; it "
                     "stays so until the source recovers or a person runs dirmig run "
                     "--allow-deletes N",
                     s->run_id, s->blocked);
        }
        log_info("agent: scheduled run %lld %s in %.1f s: %lld created, %lld updated, "
                 "%lld unchanged, %lld failed",
                 s->run_id, d->last_status, ms / 1000.0, s->users.created + s->groups.created,
                 s->users.updated + s->groups.updated, s->users.unchanged + s->groups.unchanged,
                 failed);
    }
    pipeline_stats_free(s);
    cfg_release(d, used);
    schedule(d, d->job.started_ms);
    if (d->failures > 0 && d->next_due_ms > 0) {
        log_warn("agent: next run in %lld s (%d failed in a row)",
                 (d->next_due_ms - mono_ms() + 999) / 1000, d->failures);
    }
    meta_write(d);
}

/* ---- signals ---- */

static void reload(struct daemon *d)
{
    struct dm_config *nc = NULL;
    const struct dm_config *old = d->cfg;
    struct config_load_opts lo = {0};
    struct dm_err e = {0};
    struct buf errors;
    char msg[1200], sched[128];
    int rc;

    log_info("agent: SIGHUP: re-reading %s", d->o->config_path);
    sdnotify_sendf("RELOADING=1\nMONOTONIC_USEC=%lld", mono_ms() * 1000);
    buf_init(&errors, 1 << 20);
    lo.errors = &errors;
    rc = config_load_all(&nc, d->o->config_path, &lo, &e);
    if (rc == DM_OK) {
        rc = check_usable(nc, &e);
    }
    if (rc != DM_OK && errors.len > 0) {
        /* every problem of the file, one log line each */
        for (char *p = errors.data; *p != '\0';) {
            size_t n = strcspn(p, "\n");
            log_err("agent: %.*s", (int)n, p);
            p += n + (p[n] == '\n');
        }
    } else if (rc != DM_OK) {
        log_err("agent: %s", dm_err_format(&e, msg, sizeof(msg)));
    }
    buf_free(&errors);
    if (rc != DM_OK) {
        log_err("agent: the new configuration is invalid; still running with the previous one");
        config_free(nc);
        sdnotify_send("READY=1\nSTATUS=reload failed: running with the previous config");
        return;
    }
    /* The hook server borrows its config: restart it on the new one (which also reads the
     * secret and TLS files again). If that fails, go back to the old one. */
    if (d->hook != NULL || nc->hook.enabled) {
        hook_server_stop(d->hook);
        d->hook = NULL;
        d->hook_cfg = NULL;
        if (nc->hook.enabled) {
            rc = start_hook(d, nc, &e);
            if (rc == DM_OK) {
                d->hook_cfg = nc;
            }
        }
        if (rc != DM_OK) {
            log_err("agent: %s", dm_err_format(&e, msg, sizeof(msg)));
            log_err("agent: the hook server does not start with the new configuration; "
                    "still running with the previous one");
            config_free(nc);
            if (old->hook.enabled) {
                memset(&e, 0, sizeof(e));
                if (start_hook(d, old, &e) == DM_OK) {
                    d->hook_cfg = old;
                } else {
                    log_err("agent: the hook server is down: %s (fix it and send SIGHUP)",
                            dm_err_format(&e, msg, sizeof(msg)));
                }
            }
            sdnotify_send("READY=1\nSTATUS=reload failed: running with the previous config");
            return;
        }
    }
    d->cfg = nc;
    if (!d->o->verbose && !d->o->quiet) {
        log_set_level((enum log_level)nc->log_level);
    }
    if ((old->log_file == NULL) != (nc->log_file == NULL) ||
        (old->log_file != NULL && strcmp(old->log_file, nc->log_file) != 0) ||
        old->log_json != nc->log_json) {
        log_warn("agent: log.file and log.json changes take effect at the next start");
    }
    if (memcmp(&old->reconcile, &nc->reconcile, sizeof(nc->reconcile)) != 0 && !d->running) {
        d->failures = 0;
        schedule(d, 0);
    } else if (nc->reconcile.interval_s <= 0) {
        schedule(d, 0); /* clears it */
    }
    cfg_release(d, old);
    describe_schedule(nc, sched, sizeof(sched));
    log_info("agent: configuration reloaded: %s, %s", nc->hook.enabled ? "hook" : "no hook", sched);
    meta_write(d);
    sdnotify_sendf("READY=1\nSTATUS=%s", sched);
}

/* Reads every pending signal. */
static void on_signals(struct daemon *d)
{
    struct signalfd_siginfo si;
    ssize_t n;

    for (;;) {
        n = read(d->sfd, &si, sizeof(si));
        if (n != (ssize_t)sizeof(si)) {
            return; /* EAGAIN: none left */
        }
        if (si.ssi_signo == SIGHUP) {
            if (!d->stopping) {
                reload(d);
            }
        } else if (!d->stopping) {
            d->stopping = 1;
            log_info("agent: signal %u, stopping%s", si.ssi_signo,
                     d->running ? " after the current batch of the run" : "");
            sdnotify_send("STOPPING=1");
            if (d->running) {
                pipeline_request_stop();
            }
        }
    }
}

static int poll_timeout(const struct daemon *d)
{
    long long now = mono_ms(), t = -1;

    if (d->stopping) {
        return DAEMON_STOP_POLL_MS;
    }
    if (!d->running && d->next_due_ms > 0) {
        t = d->next_due_ms > now ? d->next_due_ms - now : 0;
    }
    if (d->wd_period_ms > 0) {
        long long w = d->wd_next_ms > now ? d->wd_next_ms - now : 0;
        t = t < 0 || w < t ? w : t;
    }
    return t > INT_MAX ? INT_MAX : (int)t;
}

static void loop(struct daemon *d)
{
    struct pollfd fds[2];
    char buf[16];

    for (;;) {
        fds[0].fd = d->sfd;
        fds[0].events = POLLIN;
        fds[1].fd = d->wake[0];
        fds[1].events = POLLIN;
        fds[0].revents = fds[1].revents = 0;
        if (poll(fds, 2, poll_timeout(d)) < 0 && errno != EINTR) {
            log_err("agent: poll: %s", strerror(errno));
            d->stopping = 1;
        }
        if (fds[0].revents & POLLIN) {
            on_signals(d);
        }
        if (fds[1].revents & POLLIN) {
            while (read(d->wake[0], buf, sizeof(buf)) > 0) {
            }
            if (d->running) {
                run_finished(d);
            }
        }
        if (d->stopping) {
            if (!d->running) {
                return;
            }
            pipeline_request_stop();
            continue;
        }
        if (d->wd_period_ms > 0 && mono_ms() >= d->wd_next_ms) {
            sdnotify_send("WATCHDOG=1");
            d->wd_next_ms = mono_ms() + d->wd_period_ms;
        }
        if (!d->running && d->next_due_ms > 0 && mono_ms() >= d->next_due_ms) {
            run_start(d);
        }
    }
}

int daemon_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
               struct dm_err *err)
{
    struct daemon d;
    sigset_t set;
    char sched[128];
    int rc;

    memset(&d, 0, sizeof(d));
    pthread_mutex_init(&d.m_mu, NULL);
    d.o = o;
    d.initial = d.cfg = cfg;
    d.sfd = d.wake[0] = d.wake[1] = -1;
    d.rnd = (unsigned)time(NULL) ^ (unsigned)getpid();
    rc = check_usable(cfg, err);
    if (rc != DM_OK) {
        *exit_hint = EX_CONFIG;
        return rc;
    }
    /* Block the signals before any thread starts: every thread inherits the mask and the
     * signalfd is the one place that receives them (the pipeline's own SIGINT/SIGTERM
     * handler never runs here; its stop flag is set through pipeline_request_stop()). */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    d.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d.sfd < 0 || pipe2(d.wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        rc = dm_err_set(err, DM_EINTERNAL, "agent: signalfd/pipe: %s", strerror(errno));
        goto done;
    }
    if (cfg->hook.enabled) {
        rc = start_hook(&d, cfg, err);
        if (rc != DM_OK) {
            if (rc == DM_EINVAL) {
                *exit_hint = EX_CONFIG;
            }
            goto done;
        }
        d.hook_cfg = cfg;
    }
    if (cfg->reconcile.interval_s > 0) {
        if (cfg->reconcile.run_at_start) {
            d.next_due_ms = mono_ms();
            d.next_due = time(NULL);
        } else {
            schedule(&d, 0);
        }
    }
    d.wd_period_ms = sdnotify_watchdog_usec() / 2000;
    if (d.wd_period_ms == 0 && sdnotify_watchdog_usec() > 0) {
        d.wd_period_ms = 1;
    }
    d.wd_next_ms = mono_ms();
    describe_schedule(cfg, sched, sizeof(sched));
    log_info("agent: started (pid %ld): %s, %s", (long)getpid(),
             cfg->hook.enabled ? "hook server running" : "no hook", sched);
    meta_write(&d);
    if (sdnotify_sendf("READY=1\nMAINPID=%ld\nSTATUS=%s", (long)getpid(), sched) != 0) {
        log_warn("agent: cannot notify systemd at $NOTIFY_SOCKET: %s", strerror(errno));
    }
    loop(&d);
    hook_server_stop(d.hook);
    d.hook = NULL;
    d.hook_cfg = NULL;
    meta_write(&d);
    log_info("agent: stopped");
    rc = DM_OK;
done:
    hook_server_stop(d.hook); /* no /metrics request reads d after this */
    pthread_mutex_destroy(&d.m_mu);
    if (d.cfg != d.initial) {
        config_free((struct dm_config *)d.cfg); /* loaded by reload() */
    }
    if (d.sfd >= 0) {
        close(d.sfd);
    }
    if (d.wake[0] >= 0) {
        close(d.wake[0]);
        close(d.wake[1]);
    }
    /* The stop signals stay blocked: the process exits right after this, and unblocking
     * would act on a second SIGTERM that arrived during the shutdown. */
    return rc;
}
