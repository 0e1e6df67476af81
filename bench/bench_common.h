/* bench_common.h: shared by the hook load client and the LDAP ceiling loop: the user list
 * (DN<TAB>password lines from tests/data/gen_users.py), worker threads that run a
 * verification function for a fixed time, and the latency summary. Benchmark code only. */
#ifndef DM_BENCH_COMMON_H
#define DM_BENCH_COMMON_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench_user {
    char *dn, *uid, *pw;
};

static struct bench_user *bench_users;
static size_t bench_nusers;

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_load_users(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t cap = 0;

    if (f == NULL) {
        perror(path);
        exit(2);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *tab = strchr(line, '\t'), *nl = strchr(line, '\n'), *eq, *comma;
        if (tab == NULL) {
            continue;
        }
        if (nl != NULL) {
            *nl = '\0';
        }
        *tab = '\0';
        if (bench_nusers == cap) {
            cap = cap ? cap * 2 : 1024;
            bench_users = realloc(bench_users, cap * sizeof(*bench_users));
        }
        eq = strchr(line, '=');
        comma = strchr(line, ',');
        bench_users[bench_nusers].dn = strdup(line);
        bench_users[bench_nusers].uid = strndup(eq + 1, (size_t)(comma - eq - 1));
        bench_users[bench_nusers].pw = strdup(tab + 1);
        bench_nusers++;
    }
    fclose(f);
}

typedef int (*bench_fn)(void *worker_state, const struct bench_user *u, unsigned long seq);

struct bench_worker {
    pthread_t th;
    int id;
    double duration;
    void *state;
    bench_fn fn;
    double *lat;
    size_t nlat, cap;
    unsigned long failed;
};

static void *bench_thread(void *arg)
{
    struct bench_worker *w = arg;
    double end = bench_now() + w->duration;
    unsigned long seq = 0;
    size_t i = (size_t)w->id * 7919u;

    while (bench_now() < end) {
        const struct bench_user *u = &bench_users[i++ % bench_nusers];
        double t0 = bench_now();
        int ok = w->fn(w->state, u, ((unsigned long)w->id << 32) | seq++);
        double dt = bench_now() - t0;
        if (!ok) {
            w->failed++;
        }
        if (w->nlat == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->lat = realloc(w->lat, w->cap * sizeof(*w->lat));
        }
        w->lat[w->nlat++] = dt;
    }
    return NULL;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs n workers for duration seconds; prints "label clients ops/s p50_ms p99_ms failed". */
static void bench_run(const char *label, int n, double duration, void **states, bench_fn fn)
{
    struct bench_worker *w = calloc((size_t)n, sizeof(*w));
    double *all, t0, el;
    size_t total = 0, k = 0;
    unsigned long failed = 0;

    t0 = bench_now();
    for (int i = 0; i < n; i++) {
        w[i].id = i;
        w[i].duration = duration;
        w[i].state = states[i];
        w[i].fn = fn;
        pthread_create(&w[i].th, NULL, bench_thread, &w[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].th, NULL);
        total += w[i].nlat;
        failed += w[i].failed;
    }
    el = bench_now() - t0;
    all = malloc((total ? total : 1) * sizeof(*all));
    for (int i = 0; i < n; i++) {
        memcpy(all + k, w[i].lat, w[i].nlat * sizeof(*all));
        k += w[i].nlat;
        free(w[i].lat);
    }
    qsort(all, total, sizeof(*all), bench_cmp);
    printf("%s %d %.0f %.2f %.2f %lu\n", label, n, (double)total / el,
           total ? all[total / 2] * 1e3 : 0.0,
           total ? all[(size_t)((double)total * 0.99)] * 1e3 : 0.0, failed);
    fflush(stdout);
    free(all);
    free(w);
}

#endif
