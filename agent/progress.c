/*
 * progress.c: the progress reporter (agent/progress.h).
 *
 * The worker publishes `done` and `total` with relaxed atomic stores; everything else (the
 * phase, its start time, the detail text, the outputs) is under one mutex that the worker
 * takes only at phase boundaries and per batch. The reporter thread sleeps on a condition
 * variable against CLOCK_MONOTONIC until the next output is due.
 */
#include <config.h>
#include "agent/progress.h"
#include "agent/util/log.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define TTY_INTERVAL_S 0.25
#define JSON_INTERVAL_S 1.0
#define SAMPLE_INTERVAL_S 0.25 /* how often the reporter looks whether done moved */
#define DETAIL_MAX 160
#define LINE_MAX_COLS 200

struct progress {
    struct progress_cfg cfg;
    pthread_t thread;
    pthread_mutex_t m;
    pthread_cond_t cv;
    int started; /* the thread runs */
    int stop;
    _Atomic long long done, total;
    /* under m */
    const char *phase; /* NULL between phases */
    double t0, phase_t0;
    double next_tty, next_json, next_log, next_sample;
    long long seen_done; /* done at the reporter's last look, and when it last moved: */
    double t_moved;      /* the rate is taken there, so the ETA counts down between batches */
    long long json_done; /* done of the last JSON line */
    int logged;          /* a periodic log line was written in this phase */
    int cols;            /* terminal width, 0 = unknown */
    char detail[DETAIL_MAX + 1];
};

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int progress_cfg_wanted(const struct progress_cfg *cfg)
{
    return cfg->tty || cfg->json || cfg->log_interval_s > 0;
}

const char *progress_fmt_duration(char *buf, size_t len, double s)
{
    long long t = s < 0 ? 0 : (long long)(s + 0.5);

    if (t < 60) {
        snprintf(buf, len, "%llds", t);
    } else if (t < 3600) {
        snprintf(buf, len, "%lldm%02llds", t / 60, t % 60);
    } else {
        snprintf(buf, len, "%lldh%02lldm", t / 3600, (t % 3600) / 60);
    }
    return buf;
}

/* n with thousands separators ("12,345"). */
static const char *fmt_count(char *buf, size_t len, long long n)
{
    char raw[32];
    size_t k = 0, dl;
    const char *d = raw;

    snprintf(raw, sizeof(raw), "%lld", n < 0 ? -n : n);
    dl = strlen(raw);
    if (n < 0 && k + 1 < len) {
        buf[k++] = '-';
    }
    for (size_t i = 0; i < dl && k + 2 < len; i++) {
        if (i > 0 && (dl - i) % 3 == 0) {
            buf[k++] = ',';
        }
        buf[k++] = d[i];
    }
    buf[k] = '\0';
    return buf;
}

/* The numbers of the current phase at time now (under m). */
struct snap {
    long long done, total;
    double rate, eta, elapsed;
};

/* The rate is the phase's average up to the moment done last moved (work arrives in
 * batches: between two, the ETA counts down instead of growing); once that ETA has run out
 * (the work is slower than it was), the average up to now. */
static void snap_of(const struct progress *p, double now, int final, struct snap *s)
{
    double pe = now - p->phase_t0, pm = p->t_moved - p->phase_t0;

    s->done = atomic_load_explicit(&p->done, memory_order_relaxed);
    s->total = atomic_load_explicit(&p->total, memory_order_relaxed);
    if (final && s->total < 0) {
        s->total = s->done;
    }
    s->rate = pe > 0.001 ? (double)s->done / pe : 0.0;
    s->eta = -1;
    if (s->total >= 0 && s->done >= s->total) {
        s->eta = 0;
    } else if (s->total >= 0 && s->done > 0) {
        if (!final && s->done == p->seen_done && pm > 0.001) {
            double rm = (double)s->done / pm;
            double eta = (double)(s->total - s->done) / rm - (now - p->t_moved);
            if (eta > 0) {
                s->rate = rm;
                s->eta = eta;
            }
        }
        if (s->eta < 0 && s->rate > 0) {
            s->eta = (double)(s->total - s->done) / s->rate;
        }
    }
    s->elapsed = now - p->t0;
}

/* "users 1,234/20,000 6% 41/s ETA 7m30s" (without what is unknown) into buf. */
static void numbers(char *buf, size_t len, const struct progress *p, const struct snap *s,
                    const char *of)
{
    char d[32], t[32], e[32];
    size_t n;

    fmt_count(d, sizeof(d), s->done);
    if (s->total >= 0) {
        fmt_count(t, sizeof(t), s->total);
        n = (size_t)snprintf(buf, len, "%s %s%s%s", p->phase, d, of, t);
        if (s->total > 0 && n < len) {
            n += (size_t)snprintf(buf + n, len - n, " (%d%%)",
                                  (int)(100.0 * (double)s->done / (double)s->total));
        }
    } else {
        n = (size_t)snprintf(buf, len, "%s %s", p->phase, d);
    }
    if (n < len) {
        n += (size_t)snprintf(buf + n, len - n, ", %.*f/s", s->rate < 10 ? 1 : 0, s->rate);
    }
    if (n < len && s->eta > 0) {
        snprintf(buf + n, len - n, ", ETA %s", progress_fmt_duration(e, sizeof(e), s->eta));
    }
}

static void draw_tty(struct progress *p, double now, int final)
{
    char line[DETAIL_MAX + 200], nums[160];
    struct snap s;
    size_t max = p->cols > 1 && p->cols - 1 < LINE_MAX_COLS ? (size_t)p->cols - 1 : LINE_MAX_COLS;

    snap_of(p, now, final, &s);
    numbers(nums, sizeof(nums), p, &s, "/");
    snprintf(line, sizeof(line), "%s%s%s", nums, p->detail[0] ? " | " : "", p->detail);
    if (strlen(line) > max) {
        line[max] = '\0'; /* a wrapped line could not be redrawn in place */
    }
    fprintf(p->cfg.out, "\r\033[K%s%s", line, final ? "\n" : "");
    fflush(p->cfg.out);
}

static void write_json(struct progress *p, double now, int final)
{
    struct snap s;
    char total[32], eta[32];

    snap_of(p, now, final, &s);
    if (s.total >= 0) {
        snprintf(total, sizeof(total), "%lld", s.total);
    } else {
        snprintf(total, sizeof(total), "null");
    }
    if (s.eta >= 0) {
        snprintf(eta, sizeof(eta), "%lld", (long long)(s.eta + 0.999));
    } else {
        snprintf(eta, sizeof(eta), "null");
    }
    /* phase names are the pipeline's own tokens: nothing to escape */
    fprintf(p->cfg.out,
            "{\"type\":\"progress\",\"phase\":\"%s\",\"done\":%lld,\"total\":%s,\"rate\":%.1f,"
            "\"eta_s\":%s,\"elapsed_s\":%.1f,\"final\":%s}\n",
            p->phase, s.done, total, s.rate, eta, s.elapsed, final ? "true" : "false");
    fflush(p->cfg.out);
    p->json_done = s.done;
}

static void write_log(struct progress *p, double now, int final)
{
    char nums[160], dur[32];
    struct snap s;

    snap_of(p, now, final, &s);
    if (final) {
        char d[32];
        log_info("progress: %s %s done in %s (%.1f/s)%s%s", p->phase,
                 fmt_count(d, sizeof(d), s.done),
                 progress_fmt_duration(dur, sizeof(dur), now - p->phase_t0), s.rate,
                 p->detail[0] ? "; " : "", p->detail);
        return;
    }
    numbers(nums, sizeof(nums), p, &s, " of ");
    log_info("progress: %s%s%s", nums, p->detail[0] ? "; " : "", p->detail);
    p->logged = 1;
}

/* Writes what is due at now (under m). */
static void report_due(struct progress *p, double now)
{
    long long done = atomic_load_explicit(&p->done, memory_order_relaxed);

    if (done != p->seen_done) {
        p->seen_done = done;
        p->t_moved = now;
    }
    p->next_sample = now + SAMPLE_INTERVAL_S;
    if (p->cfg.tty && now >= p->next_tty) {
        draw_tty(p, now, 0);
        p->next_tty = now + p->cfg.tty_interval_s;
    }
    if (p->cfg.json && now >= p->next_json) {
        if (atomic_load_explicit(&p->done, memory_order_relaxed) != p->json_done) {
            write_json(p, now, 0);
        }
        p->next_json = now + p->cfg.json_interval_s;
    }
    if (p->cfg.log_interval_s > 0 && now >= p->next_log) {
        write_log(p, now, 0);
        p->next_log = now + p->cfg.log_interval_s;
    }
}

static double next_due(const struct progress *p)
{
    double w = p->next_sample;

    if (p->cfg.tty && p->next_tty < w) {
        w = p->next_tty;
    }
    if (p->cfg.json && p->next_json < w) {
        w = p->next_json;
    }
    if (p->cfg.log_interval_s > 0 && p->next_log < w) {
        w = p->next_log;
    }
    return w;
}

static void *reporter(void *arg)
{
    struct progress *p = arg;

    log_set_context(p->cfg.run_id, NULL); /* the log lines name the run */
    pthread_mutex_lock(&p->m);
    while (!p->stop) {
        double now = mono(), wake;

        if (p->phase == NULL) {
            pthread_cond_wait(&p->cv, &p->m);
            continue;
        }
        wake = next_due(p);
        if (wake > now) {
            struct timespec ts;
            double w = wake;
            ts.tv_sec = (time_t)w;
            ts.tv_nsec = (long)((w - (double)ts.tv_sec) * 1e9);
            pthread_cond_timedwait(&p->cv, &p->m, &ts);
            continue; /* woken or due: look again */
        }
        report_due(p, now);
    }
    pthread_mutex_unlock(&p->m);
    return NULL;
}

int progress_new(struct progress **out, const struct progress_cfg *cfg, struct dm_err *err)
{
    struct progress *p;
    pthread_condattr_t ca;
    struct winsize ws;

    *out = NULL;
    if (!progress_cfg_wanted(cfg)) {
        return DM_OK;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    p->cfg = *cfg;
    if (p->cfg.out == NULL) {
        p->cfg.out = stderr;
    }
    if (p->cfg.tty_interval_s <= 0) {
        p->cfg.tty_interval_s = TTY_INTERVAL_S;
    }
    if (p->cfg.json_interval_s <= 0) {
        p->cfg.json_interval_s = JSON_INTERVAL_S;
    }
    if (p->cfg.tty && ioctl(fileno(p->cfg.out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        p->cols = ws.ws_col;
    }
    atomic_init(&p->done, 0);
    atomic_init(&p->total, -1);
    p->t0 = mono();
    pthread_mutex_init(&p->m, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->thread, NULL, reporter, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->m);
        free(p);
        return dm_err_set(err, DM_EINTERNAL, "cannot start the progress reporter thread");
    }
    p->started = 1;
    *out = p;
    return DM_OK;
}

/* Ends the open phase (under m). */
static void end_locked(struct progress *p)
{
    double now = mono();

    if (p->phase == NULL) {
        return;
    }
    if (p->cfg.tty) {
        draw_tty(p, now, 1);
    }
    if (p->cfg.json) {
        write_json(p, now, 1);
    }
    if (p->cfg.log_interval_s > 0 && p->logged) {
        write_log(p, now, 1);
    }
    p->phase = NULL;
}

void progress_phase(struct progress *p, const char *name, long long total)
{
    double now;

    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->m);
    end_locked(p);
    now = mono();
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->total, total, memory_order_relaxed);
    p->phase = name;
    p->phase_t0 = now;
    p->detail[0] = '\0';
    p->logged = 0;
    p->seen_done = 0;
    p->t_moved = now;
    p->next_sample = now;
    p->next_tty = now;
    p->next_json = now + p->cfg.json_interval_s;
    p->next_log = now + p->cfg.log_interval_s;
    if (p->cfg.json) {
        write_json(p, now, 0);
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->m);
}

void progress_done(struct progress *p, long long done)
{
    if (p == NULL || done <= atomic_load_explicit(&p->done, memory_order_relaxed)) {
        return;
    }
    atomic_store_explicit(&p->done, done, memory_order_relaxed);
}

void progress_total(struct progress *p, long long total)
{
    if (p != NULL) {
        atomic_store_explicit(&p->total, total, memory_order_relaxed);
    }
}

void progress_detail(struct progress *p, const char *text)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->m);
    snprintf(p->detail, sizeof(p->detail), "%s", text != NULL ? text : "");
    pthread_mutex_unlock(&p->m);
}

void progress_phase_end(struct progress *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->m);
    end_locked(p);
    pthread_mutex_unlock(&p->m);
}

void progress_free(struct progress *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->m);
    end_locked(p);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->m);
    if (p->started) {
        pthread_join(p->thread, NULL);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->m);
    free(p);
}
