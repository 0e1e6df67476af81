#include <config.h>
#include "agent/hook.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "agent/hook_core.h"
#include "agent/hook_migrate.h"
#include "agent/state.h"
#include "agent/util/log.h"
#include "connectors/ldap_verify.h"

#define HOOK_PEM_MAX (1u << 20)
#define HOOK_HEALTH_CACHE_MS 1000
#define HOOK_HEALTH_BUDGET_MS 1000
#define HOOK_POLICY_BUDGET_MS 3000 /* reading the lockout policy at start */
#define HOOK_POLICY_RETRY_MS 10000 /* ... and again this often while it is not known */
#define HOOK_REAPER_TICK_MS 100

#define HOOK_JOURNAL_QUEUE_MAX 100000

/* GnuTLS priorities (MHD_OPTION_HTTPS_PRIORITIES): TLS 1.2 or 1.3 only, forward-secret key
 * exchanges only (ECDHE; TLS 1.3 is always ephemeral), AEAD ciphers only: no static RSA key
 * transport, no CBC, no SHA-1 MACs. */
#define HOOK_TLS_KX ":-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA"
#define HOOK_TLS_CIPHERS ":-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD"
#define HOOK_TLS_12 "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" HOOK_TLS_KX HOOK_TLS_CIPHERS
#define HOOK_TLS_13 "NORMAL:-VERS-ALL:+VERS-TLS1.3" HOOK_TLS_CIPHERS

enum route { R_NOT_FOUND = 0, R_OKTA, R_GENERIC, R_HEALTH, R_METRICS };

/* One verification outcome waiting for the journal writer. */
struct jrec {
    struct jrec *next;
    char outcome[24];
    char reason[32];
    char *dn; /* points into login[], after the login */
    char login[];
};

/*
 * One TCP connection, for the whole-request deadline. libmicrohttpd's own timeout is an
 * idle timeout: a client that sends one byte a second is never idle. The reaper thread
 * shuts down (shutdown(2), never close: the fd stays libmicrohttpd's) every connection
 * that has been reading one request for longer than request_read_ms; libmicrohttpd then
 * sees the end of the stream and closes it. The entry is removed by the CLOSED
 * notification, which libmicrohttpd makes before it closes the socket (daemon.c,
 * MHD_cleanup_connections), under the same lock as the reaper's shutdown: the reaper can
 * never shut down a descriptor that was reused.
 */
struct hconn {
    struct hconn *prev, *next;
    int fd;
    int reading;     /* 1 while a request is arriving (or the connection waits for one) */
    long long since; /* monotonic ms: accept, or the end of the previous request */
};

struct hook_server;

/* A libmicrohttpd daemon and what its callbacks need. */
struct hook_listener {
    struct hook_server *s;
    struct MHD_Daemon *daemon;
    int monitor; /* serves /healthz and /metrics only */
    int hook;    /* serves the hook paths */
};

struct hook_server {
    const struct dm_config *cfg;
    const struct config_hook *h;
    struct hook_listener main, mon;
    struct ldap_verify *lv;
    struct hook_core *core;
    struct hook_migrate *migrate;
    struct state *st;      /* used by the journal thread only */
    pthread_mutex_t st_mu; /* guards the queue below */
    pthread_cond_t st_cv;
    pthread_t st_thread;
    int st_running, st_stop;
    struct jrec *q_head, **q_tail;
    size_t q_len;
    pthread_mutex_t health_mu;
    long long health_at; /* monotonic ms of the last check, 0 = never */
    int health_up;
    char *cert, *key; /* PEM, key wiped on stop */
    size_t key_len;
    const char *login_attrs[33];
    /* connections (the reaper) */
    pthread_mutex_t conn_mu;
    pthread_cond_t conn_cv;
    struct hconn *conns;
    long long nconns, cut_total;
    hook_metrics_fn extra_fn; /* hook_server_set_metrics(), under conn_mu */
    void *extra_ctx;
    pthread_t reaper;
    int reaper_running, reaper_stop;
    long long policy_tried; /* monotonic ms of the last policy read, 0 = never */
    int policy_known;
    /* verification workers (epoll pool mode) */
    pthread_mutex_t w_mu;
    pthread_cond_t w_cv;
    struct hreq *w_head, *w_tail;
    pthread_t *workers;
    int nworkers, idle_workers, max_workers, w_stop;
    int stopping;
};

/* One HTTP request. The body holds a password: wiped as soon as it is parsed. */
struct hreq {
    struct hreq *next; /* in the workers' queue */
    struct hook_listener *l;
    struct MHD_Connection *conn;
    long long start;
    enum route route;
    int refused; /* an answer was queued before the body was read */
    int too_large;
    int suspended, done; /* handed to a worker; its answer is ready */
    struct hook_req *job;
    struct hook_reply rep;
    char *body;
    size_t len, cap;
};

static enum ldap_verify_result resolve_cb(struct ldap_verify_account *out, void *ctx,
                                          const char *login, size_t login_len,
                                          long long deadline_ms, struct dm_err *err)
{
    return ldap_verify_resolve(out, ctx, login, login_len, deadline_ms, err);
}

static enum ldap_verify_result bind_cb(void *ctx, const struct ldap_verify_account *a,
                                       const char *pw, size_t pw_len, long long deadline_ms,
                                       struct dm_err *err)
{
    return ldap_verify_bind(ctx, a, pw, pw_len, deadline_ms, err);
}

/* Queues an outcome for the journal thread: the SQLite write (and its file locks) stays
 * off the sign-in path, and outcomes are committed in batches. */
static void record_cb(void *ctx, const char *login, const char *dn, const char *outcome,
                      const char *reason)
{
    struct hook_server *s = ctx;
    size_t n = strlen(login), m = strlen(dn);
    struct jrec *j = calloc(1, sizeof(*j) + n + 1 + m + 1);

    if (j == NULL) {
        log_warn("hook: out of memory; a verification was not journaled");
        return;
    }
    memcpy(j->login, login, n + 1);
    j->dn = j->login + n + 1;
    memcpy(j->dn, dn, m + 1);
    snprintf(j->outcome, sizeof(j->outcome), "%s", outcome);
    snprintf(j->reason, sizeof(j->reason), "%s", reason != NULL ? reason : "");
    pthread_mutex_lock(&s->st_mu);
    if (s->q_len >= HOOK_JOURNAL_QUEUE_MAX) {
        pthread_mutex_unlock(&s->st_mu);
        free(j);
        log_warn("hook: journal queue full; a verification was not journaled");
        return;
    }
    *s->q_tail = j;
    s->q_tail = &j->next;
    s->q_len++;
    pthread_cond_signal(&s->st_cv);
    pthread_mutex_unlock(&s->st_mu);
}

/* The journal thread: takes everything queued and writes it in one transaction, until
 * stopped; what is queued at the stop is still written. */
static void *journal_main(void *arg)
{
    struct hook_server *s = arg;
    struct dm_err err = {0};
    struct jrec *list, *next;
    int stop, rc, began;

    for (;;) {
        pthread_mutex_lock(&s->st_mu);
        while (s->q_head == NULL && !s->st_stop) {
            pthread_cond_wait(&s->st_cv, &s->st_mu);
        }
        list = s->q_head;
        s->q_head = NULL;
        s->q_tail = &s->q_head;
        s->q_len = 0;
        stop = s->st_stop;
        pthread_mutex_unlock(&s->st_mu);
        began = list != NULL && state_batch_begin(s->st, &err) == DM_OK;
        rc = list == NULL || began ? DM_OK : DM_EINTERNAL;
        for (; list != NULL; list = next) {
            next = list->next;
            if (rc == DM_OK) {
                rc = state_password_record(s->st, list->login, list->dn[0] ? list->dn : NULL,
                                           list->outcome, list->reason[0] ? list->reason : NULL,
                                           &err);
            }
            free(list);
        }
        if (began && state_batch_commit(s->st, rc == DM_OK ? &err : NULL) != DM_OK) {
            rc = DM_EINTERNAL;
        }
        if (rc != DM_OK) {
            log_warn("hook: cannot journal verifications: %s", err.msg);
        }
        if (stop) {
            return NULL;
        }
    }
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    log_debug("hook: libmicrohttpd: %s", msg);
}

static int queue(struct MHD_Connection *conn, int status, const char *ctype, const char *body,
                 size_t len)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static int queue_reply(struct MHD_Connection *conn, const struct hook_reply *rep)
{
    return queue(conn, rep->status, "application/json", rep->body, rep->len);
}

/* Reads the source's lockout policy (bounded); tells the core. 1 when known now. Logs a
 * budget that is not below the threshold (at start this is a configuration error instead:
 * hook_server_start). */
static int read_policy(struct hook_server *s, long long budget_ms, struct ldap_verify_policy *pol,
                       struct dm_err *err)
{
    if (s->h->source_lockout_threshold > 0) {
        memset(pol, 0, sizeof(*pol));
        pol->known = 1;
        pol->threshold = s->h->source_lockout_threshold;
        snprintf(pol->where, sizeof(pol->where), "hook.source_lockout_threshold");
    } else if (ldap_verify_policy(pol, s->lv, ldap_verify_now_ms() + budget_ms, err) != DM_OK) {
        return 0;
    }
    hook_core_set_policy(s->core, pol->threshold);
    __atomic_store_n(&s->policy_known, 1, __ATOMIC_RELEASE);
    return 1;
}

/* /healthz: the source answers a root DSE read (cached for a second, so the endpoint
 * cannot be used to hammer the directory). The answer is only "ok" or "degraded": the
 * source's address, the service account and the error are on /metrics and in the log,
 * never on an endpoint anyone may call. */
static int serve_health(struct hook_server *s, struct MHD_Connection *conn)
{
    long long now = ldap_verify_now_ms();
    struct dm_err err = {0};
    int up;

    pthread_mutex_lock(&s->health_mu);
    if (s->health_at == 0 || now - s->health_at >= HOOK_HEALTH_CACHE_MS) {
        up = ldap_verify_ping(s->lv, now + HOOK_HEALTH_BUDGET_MS, &err) == DM_OK;
        if (!up && s->health_up) {
            log_warn("hook: health: source unreachable: %s", err.msg);
        }
        s->health_up = up;
        s->health_at = ldap_verify_now_ms();
        hook_core_set_source_up(s->core, up);
    }
    up = s->health_up;
    pthread_mutex_unlock(&s->health_mu);
    return up ? queue(conn, 200, "text/plain", "ok\n", 3)
              : queue(conn, 503, "text/plain", "degraded\n", 9);
}

void hook_server_set_metrics(struct hook_server *s, hook_metrics_fn fn, void *ctx)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->conn_mu);
    s->extra_fn = fn;
    s->extra_ctx = ctx;
    pthread_mutex_unlock(&s->conn_mu);
}

static int serve_metrics(struct hook_server *s, struct MHD_Connection *conn)
{
    struct buf b;
    int ret, rc;

    buf_init(&b, 1 << 20);
    rc = hook_core_metrics(s->core, &b);
    if (rc == DM_OK) {
        pthread_mutex_lock(&s->conn_mu);
        rc = buf_printf(&b,
                        "# HELP dirmig_hook_connections Open connections.\n"
                        "# TYPE dirmig_hook_connections gauge\n"
                        "dirmig_hook_connections %lld\n"
                        "# HELP dirmig_hook_connections_cut_total Connections closed because a "
                        "request did not arrive whole within hook.request_read_ms.\n"
                        "# TYPE dirmig_hook_connections_cut_total counter\n"
                        "dirmig_hook_connections_cut_total %lld\n",
                        s->nconns, s->cut_total);
        if (rc == DM_OK && s->extra_fn != NULL) {
            rc = s->extra_fn(s->extra_ctx, &b);
        }
        pthread_mutex_unlock(&s->conn_mu);
    }
    if (rc == DM_OK && s->migrate != NULL) {
        rc = hook_migrate_metrics(s->migrate, &b);
    }
    if (rc != DM_OK) {
        buf_free(&b);
        return queue(conn, 500, "text/plain", "metrics\n", 8);
    }
    ret = queue(conn, 200, "text/plain; version=0.0.4", b.data, b.len);
    buf_free(&b);
    return ret;
}

static enum route route_of(const struct hook_listener *l, const char *url, const char *method)
{
    const struct config_hook *h = l->s->h;
    int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;

    if (l->hook && post && strcmp(url, h->path) == 0) {
        return R_OKTA;
    }
    if (l->hook && post && strcmp(url, h->generic_path) == 0) {
        return R_GENERIC;
    }
    if (l->monitor && get && strcmp(url, "/healthz") == 0) {
        return R_HEALTH;
    }
    if (l->monitor && get && strcmp(url, "/metrics") == 0) {
        return R_METRICS;
    }
    return R_NOT_FOUND;
}

/* Queues a refusal (401, 404, 413) before or instead of reading the body. */
static int refuse(struct hook_server *s, struct MHD_Connection *conn, struct hreq *r,
                  enum hook_outcome o)
{
    struct hook_reply rep;

    r->refused = 1;
    hook_core_refuse(&rep, s->core, o, r->start);
    return queue_reply(conn, &rep);
}

/* ---- connections and the whole-request deadline ---- */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct hook_listener *l = cls;
    struct hook_server *s = l->s;
    struct hconn *c = *socket_context;
    const union MHD_ConnectionInfo *ci;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = calloc(1, sizeof(*c));
        if (c == NULL || ci == NULL) {
            free(c);
            return; /* untracked: only the idle timeout applies */
        }
        c->fd = ci->connect_fd;
        c->reading = 1;
        c->since = ldap_verify_now_ms();
        pthread_mutex_lock(&s->conn_mu);
        c->next = s->conns;
        if (s->conns != NULL) {
            s->conns->prev = c;
        }
        s->conns = c;
        s->nconns++;
        pthread_mutex_unlock(&s->conn_mu);
        *socket_context = c;
        return;
    }
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&s->conn_mu);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    s->nconns--;
    pthread_mutex_unlock(&s->conn_mu);
    free(c);
    *socket_context = NULL;
}

static struct hconn *hconn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

/* The request has arrived whole (reading 0) or the connection waits for the next one
 * (reading 1: its clock starts again). */
static void hconn_reading(struct hook_server *s, struct MHD_Connection *conn, int reading)
{
    struct hconn *c = hconn_of(conn);

    if (c != NULL) {
        pthread_mutex_lock(&s->conn_mu);
        c->reading = reading;
        c->since = ldap_verify_now_ms();
        pthread_mutex_unlock(&s->conn_mu);
    }
}

/* The reaper: cuts connections whose request is late, and reads the source's lockout
 * policy again while it is not known. */
static void *reaper_main(void *arg)
{
    struct hook_server *s = arg;
    struct timespec ts;
    long long now, limit = s->h->request_read_ms;
    struct ldap_verify_policy pol;
    struct dm_err err = {0};

    pthread_mutex_lock(&s->conn_mu);
    while (!s->reaper_stop) {
        now = ldap_verify_now_ms();
        for (struct hconn *c = s->conns; c != NULL; c = c->next) {
            if (c->reading && c->fd >= 0 && now - c->since > limit) {
                shutdown(c->fd, SHUT_RDWR);
                c->fd = -1; /* once */
                s->cut_total++;
            }
        }
        if (!__atomic_load_n(&s->policy_known, __ATOMIC_ACQUIRE) &&
            now - s->policy_tried >= HOOK_POLICY_RETRY_MS) {
            s->policy_tried = now;
            pthread_mutex_unlock(&s->conn_mu);
            if (read_policy(s, 500, &pol, &err)) {
                if (pol.threshold > 0 && s->h->max_failures >= pol.threshold) {
                    log_err("hook: hook.max_failures %d is not below the source's lockout "
                            "threshold %d (%s): the per-account budget is lowered to %d",
                            s->h->max_failures, pol.threshold, pol.where, pol.threshold - 1);
                } else {
                    log_info("hook: source lockout threshold %d (%s)", pol.threshold,
                             pol.threshold > 0 ? pol.where : "no lockout policy found");
                }
            }
            pthread_mutex_lock(&s->conn_mu);
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += HOOK_REAPER_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->conn_cv, &s->conn_mu, &ts);
    }
    pthread_mutex_unlock(&s->conn_mu);
    return NULL;
}

/* ---- verification workers (thread-pool mode): the HTTP threads never wait for LDAP ---- */

static void *worker_main(void *arg)
{
    struct hook_server *s = arg;
    struct hreq *r;

    pthread_mutex_lock(&s->w_mu);
    for (;;) {
        while (s->w_head == NULL && !s->w_stop) {
            s->idle_workers++;
            pthread_cond_wait(&s->w_cv, &s->w_mu);
            s->idle_workers--;
        }
        if (s->w_head == NULL) {
            break; /* stopping, nothing left */
        }
        r = s->w_head;
        s->w_head = r->next;
        if (s->w_head == NULL) {
            s->w_tail = NULL;
        }
        pthread_mutex_unlock(&s->w_mu);
        hook_core_run(&r->rep, s->core, r->job);
        r->job = NULL;
        __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
        MHD_resume_connection(r->conn);
        pthread_mutex_lock(&s->w_mu);
    }
    pthread_mutex_unlock(&s->w_mu);
    return NULL;
}

/* Hands r to a worker (starting one when none is idle). 0 when it could not. */
static int submit(struct hook_server *s, struct hreq *r)
{
    int ok = 1;

    pthread_mutex_lock(&s->w_mu);
    if (s->w_stop) {
        ok = 0;
    } else if (s->idle_workers == 0 && s->nworkers < s->max_workers) {
        if (pthread_create(&s->workers[s->nworkers], NULL, worker_main, s) == 0) {
            s->nworkers++;
        } else if (s->nworkers == 0) {
            ok = 0;
        }
    }
    if (ok) {
        r->next = NULL;
        if (s->w_tail != NULL) {
            s->w_tail->next = r;
        } else {
            s->w_head = r;
        }
        s->w_tail = r;
        pthread_cond_signal(&s->w_cv);
    }
    pthread_mutex_unlock(&s->w_mu);
    return ok;
}

static void workers_stop(struct hook_server *s)
{
    pthread_mutex_lock(&s->w_mu);
    s->w_stop = 1;
    pthread_cond_broadcast(&s->w_cv);
    pthread_mutex_unlock(&s->w_mu);
    for (int i = 0; i < s->nworkers; i++) {
        pthread_join(s->workers[i], NULL);
    }
    s->nworkers = 0;
}

/* The peer's client key ("" when unknown). */
static void peer_key(char out[HOOK_CLIENT_LEN], struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char host[NI_MAXHOST];
    socklen_t len;

    out[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL) {
        return;
    }
    len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in);
    if (getnameinfo(ci->client_addr, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST) == 0) {
        (void)hook_core_client_key(out, host);
    }
}

static void wipe_body(struct hreq *r)
{
    if (r->body != NULL) {
        explicit_bzero(r->body, r->cap + 1);
        free(r->body);
        r->body = NULL;
    }
}

/* The whole body is there: answer, or hand the verification to a worker. */
static enum MHD_Result finish(struct hook_server *s, struct MHD_Connection *conn, struct hreq *r)
{
    char client[HOOK_CLIENT_LEN];
    int admitted;

    hconn_reading(s, conn, 0);
    if (r->too_large) {
        return (enum MHD_Result)refuse(s, conn, r, HOOK_OUT_TOO_LARGE);
    }
    peer_key(client, conn);
    admitted = hook_core_begin(&r->rep, &r->job, s->core,
                               r->route == R_OKTA ? HOOK_EP_OKTA : HOOK_EP_GENERIC,
                               r->body != NULL ? r->body : "", r->len, client, r->start);
    wipe_body(r); /* begin kept what it needs */
    r->refused = 1;
    if (admitted && s->h->threads > 0 && !s->stopping) {
        /* Suspended before a worker can see it: the worker's resume always follows. */
        r->suspended = 1;
        r->conn = conn;
        MHD_suspend_connection(conn);
        if (submit(s, r)) {
            return MHD_YES;
        }
        hook_core_run(&r->rep, s->core, r->job); /* no worker could start */
        r->job = NULL;
        __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
        MHD_resume_connection(conn);
        return MHD_YES;
    }
    if (admitted) {
        /* a thread per connection (or stopping): this thread may wait */
        hook_core_run(&r->rep, s->core, r->job);
        r->job = NULL;
    }
    return (enum MHD_Result)queue_reply(conn, &r->rep);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct hook_listener *l = cls;
    struct hook_server *s = l->s;
    const struct config_hook *h = s->h;
    struct hreq *r = *con_cls;
    const char *v;

    if (r == NULL) {
        /* First call: headers only. Refuse what needs no body before reading it. */
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            return MHD_NO;
        }
        r->l = l;
        r->start = ldap_verify_now_ms();
        r->route = route_of(l, url, method);
        *con_cls = r;
        if (r->route == R_HEALTH || r->route == R_METRICS) {
            hconn_reading(s, conn, 0);
            r->refused = 1;
            return (enum MHD_Result)(r->route == R_HEALTH ? serve_health(s, conn)
                                                          : serve_metrics(s, conn));
        }
        if (r->route == R_NOT_FOUND) {
            return (enum MHD_Result)refuse(s, conn, r, HOOK_OUT_NOT_FOUND);
        }
        v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, h->auth_header);
        if (v == NULL || !secret_equal(h->secret, v, strlen(v))) {
            return (enum MHD_Result)refuse(s, conn, r, HOOK_OUT_UNAUTHORIZED);
        }
        v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (v != NULL && strtoull(v, NULL, 10) > (unsigned long long)h->max_body) {
            return (enum MHD_Result)refuse(s, conn, r, HOOK_OUT_TOO_LARGE);
        }
        r->cap = v != NULL ? (size_t)strtoull(v, NULL, 10) : 0;
        return MHD_YES;
    }
    if (r->suspended) {
        /* resumed by the worker: its answer */
        if (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
            return MHD_YES; /* spurious */
        }
        r->suspended = 0;
        return (enum MHD_Result)queue_reply(conn, &r->rep);
    }
    if (r->refused) {
        *upload_data_size = 0; /* discard */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (r->too_large || r->len + *upload_data_size > (size_t)h->max_body) {
            r->too_large = 1;
        } else {
            if (r->body == NULL) {
                /* Sized by Content-Length when given (checked against max_body above). */
                r->cap = r->cap > 0 ? r->cap : (size_t)h->max_body;
                r->body = malloc(r->cap + 1);
                if (r->body == NULL) {
                    return MHD_NO;
                }
            }
            if (r->len + *upload_data_size > r->cap) {
                char *nb = malloc((size_t)h->max_body + 1);
                if (nb == NULL) {
                    return MHD_NO;
                }
                memcpy(nb, r->body, r->len);
                explicit_bzero(r->body, r->cap + 1);
                free(r->body);
                r->body = nb;
                r->cap = (size_t)h->max_body;
            }
            memcpy(r->body + r->len, upload_data, *upload_data_size);
            r->len += *upload_data_size;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return finish(s, conn, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct hook_listener *l = cls;
    struct hreq *r = *con_cls;

    if (r == NULL) {
        return;
    }
    /* The connection now waits for its next request: a new clock. */
    hconn_reading(l->s, conn, 1);
    if (r->job != NULL) {
        hook_core_drop(l->s->core, r->job);
    }
    wipe_body(r);
    explicit_bzero(&r->rep, sizeof(r->rep));
    free(r);
    *con_cls = NULL;
}

/* Reads a PEM file; a private key must not be readable by group or others (as for every
 * secret file, agent/util/secret.h). */
static int read_pem(char **out, size_t *outlen, const char *path, int is_key, struct dm_err *err)
{
    struct stat sb;
    char *data = NULL;
    ssize_t n;
    size_t len = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return dm_err_set(err, DM_EINVAL, "hook: %s: cannot open: %s", path, strerror(errno));
    }
    if (fstat(fd, &sb) != 0 || sb.st_size <= 0 || (size_t)sb.st_size > HOOK_PEM_MAX) {
        rc = dm_err_set(err, DM_EINVAL, "hook: %s: empty or larger than %u bytes", path,
                        HOOK_PEM_MAX);
        goto done;
    }
    if (is_key && (sb.st_mode & 077) != 0) {
        rc = dm_err_set(err, DM_EINVAL,
                        "hook: %s: private key is accessible by group or "
                        "others (chmod 600)",
                        path);
        goto done;
    }
    data = calloc(1, (size_t)sb.st_size + 1);
    if (data == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "hook: reading %s", path);
        goto done;
    }
    while (len < (size_t)sb.st_size) {
        n = read(fd, data + len, (size_t)sb.st_size - len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            rc = dm_err_set(err, DM_EINVAL, "hook: %s: read error", path);
            goto done;
        }
        len += (size_t)n;
    }
    *out = data;
    *outlen = len;
    data = NULL;
    rc = DM_OK;
done:
    if (data != NULL) {
        explicit_bzero(data, (size_t)sb.st_size);
        free(data);
    }
    close(fd);
    return rc;
}

/* "127.0.0.1:8443", "[::1]:8443", "0.0.0.0:8443" -> address. */
static int parse_listen(struct sockaddr_storage *ss, socklen_t *sslen, int *port,
                        const char *listen, struct dm_err *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    struct addrinfo hints, *ai = NULL;
    size_t hl;
    int grc;

    if (colon == NULL) {
        return dm_err_set(err, DM_EINVAL, "hook.listen: %s: want address:port", listen);
    }
    hl = (size_t)(colon - listen);
    if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
        listen++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host)) {
        return dm_err_set(err, DM_EINVAL, "hook.listen: %s: want address:port", listen);
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    grc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (grc != 0 || ai == NULL) {
        return dm_err_set(err, DM_EINVAL, "hook.listen: %s: %s", host, gai_strerror(grc));
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = ai->ai_addrlen;
    *port = atoi(colon + 1);
    freeaddrinfo(ai);
    return DM_OK;
}

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}

/* Raises the open-files limit towards what the connection limits need (each connection is a
 * descriptor, plus both LDAP pools, the journal and the listeners); warns when it cannot. */
static void fd_budget(const struct config_hook *h)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)h->max_connections * (h->monitor_listen != NULL ? 2 : 1) +
                  (rlim_t)h->pool_size * 2 + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need) {
        return;
    }
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need) {
        log_warn("hook: the open-files limit (%llu) is below what hook.max_connections needs "
                 "(%llu); raise LimitNOFILE",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)need);
    }
}

/* Starts one libmicrohttpd daemon for l on listen. */
static int listen_on(struct hook_listener *l, const char *key, const char *listen, int plain,
                     struct dm_err *err)
{
    struct hook_server *s = l->s;
    const struct config_hook *h = s->h;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    unsigned flags;
    int port = 0, rc;

    rc = parse_listen(&ss, &sslen, &port, listen, err);
    if (rc != DM_OK) {
        return rc;
    }
    if (plain && !is_loopback(&ss)) {
        return dm_err_set(err, DM_EINVAL, "%s: plain HTTP is only allowed on a loopback address",
                          key);
    }
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    /* A thread per connection waits with poll(2), not select(2): descriptors above
     * FD_SETSIZE are normal with hook.max_connections in the thousands. */
    flags |= h->threads == 0 ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL : MHD_USE_EPOLL;
    if (h->threads > 0 && l->hook) {
        flags |= MHD_ALLOW_SUSPEND_RESUME;
    }
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    if (!plain) {
        flags |= MHD_USE_TLS;
    }
    {
        struct MHD_OptionItem ops[] = {
            {MHD_OPTION_SOCK_ADDR, 0, &ss},
            {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l},
            {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, l},
            {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)h->request_timeout_s, NULL},
            {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)(64 * 1024), NULL},
            {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)h->max_connections, NULL},
            {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)h->max_connections_per_client, NULL},
            {MHD_OPTION_LISTEN_BACKLOG_SIZE, (intptr_t)1024, NULL},
            {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, s},
            {h->threads > 0 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
             (intptr_t)(l->hook ? h->threads : 1), NULL},
            {MHD_OPTION_END, 0, NULL},
        };
        struct MHD_OptionItem tls[] = {
            {MHD_OPTION_HTTPS_MEM_KEY, 0, s->key},
            {MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert},
            {MHD_OPTION_HTTPS_PRIORITIES, 0,
             (void *)(strcmp(h->tls_min_version, "1.3") == 0 ? HOOK_TLS_13 : HOOK_TLS_12)},
            {MHD_OPTION_END, 0, NULL},
        };
        l->daemon =
            MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, l, MHD_OPTION_ARRAY,
                             ops, MHD_OPTION_ARRAY, plain ? &tls[3] : tls, MHD_OPTION_END);
    }
    if (l->daemon == NULL) {
        return dm_err_set(err, DM_EUNAVAIL,
                          "hook: cannot listen on %s (address in use, or bad TLS certificate/key)",
                          listen);
    }
    return DM_OK;
}

int hook_server_start(struct hook_server **out, const struct dm_config *cfg, struct dm_err *err)
{
    const struct config_hook *h = &cfg->hook;
    struct hook_server *s = calloc(1, sizeof(*s));
    struct ldap_verify_cfg vc;
    struct hook_verifier ver;
    struct ldap_verify_policy pol;
    struct dm_err perr = {0};
    size_t cert_len = 0, nattrs = 0;
    int rc;

    if (s == NULL) {
        return dm_err_set(err, DM_ENOMEM, "hook_server_start");
    }
    s->cfg = cfg;
    s->h = h;
    s->main.s = s;
    s->mon.s = s;
    s->main.hook = 1;
    s->main.monitor = h->monitor_listen == NULL;
    s->mon.monitor = 1;
    pthread_mutex_init(&s->st_mu, NULL);
    pthread_cond_init(&s->st_cv, NULL);
    s->q_tail = &s->q_head;
    pthread_mutex_init(&s->health_mu, NULL);
    s->health_up = 1;
    pthread_mutex_init(&s->conn_mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->conn_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    pthread_mutex_init(&s->w_mu, NULL);
    pthread_cond_init(&s->w_cv, NULL);
    if (h->secret == NULL) {
        rc = dm_err_set(err, DM_EINVAL,
                        "%s: hook.secret_file or hook.secret_env is required "
                        "to serve the hook",
                        cfg->path);
        goto done;
    }
    if (!h->plain_http || (h->monitor_listen != NULL && !h->monitor_plain_http)) {
        if (h->tls_cert_file == NULL || h->tls_key_file == NULL) {
            rc = dm_err_set(err, DM_EINVAL,
                            "%s: hook.tls.cert_file and hook.tls.key_file are "
                            "required (or plain_http on loopback)",
                            cfg->path);
            goto done;
        }
        rc = read_pem(&s->cert, &cert_len, h->tls_cert_file, 0, err);
        if (rc == DM_OK) {
            rc = read_pem(&s->key, &s->key_len, h->tls_key_file, 1, err);
        }
        if (rc != DM_OK) {
            goto done;
        }
    }
    {
        struct state_where w;

        config_state_where(&w, cfg);
        rc = state_open_cfg(&s->st, &w, err);
    }
    if (rc != DM_OK) {
        goto done;
    }
    if (pthread_create(&s->st_thread, NULL, journal_main, s) != 0) {
        rc = dm_err_set(err, DM_EINTERNAL, "hook: cannot start the journal thread");
        goto done;
    }
    s->st_running = 1;
    for (nattrs = 0; h->login_attrs != NULL && h->login_attrs[nattrs] != NULL &&
                     nattrs + 1 < DM_ARRAY_LEN(s->login_attrs);
         nattrs++) {
        s->login_attrs[nattrs] = h->login_attrs[nattrs];
    }
    memset(&vc, 0, sizeof(vc));
    vc.conn = &cfg->source.conn;
    vc.search_base = h->search_base;
    vc.filter = cfg->source.users_filter;
    vc.login_attrs = s->login_attrs;
    vc.dn_template = h->dn_template;
    vc.pool_size = h->pool_size;
    rc = ldap_verify_new(&s->lv, &vc, err);
    if (rc != DM_OK) {
        goto done;
    }
    ver.resolve = resolve_cb;
    ver.bind = bind_cb;
    ver.ctx = s->lv;
    rc = hook_core_new(&s->core, h, &ver, record_cb, s, err);
    if (rc != DM_OK) {
        goto done;
    }
    /* The failure budget must stay below the source's own lockout threshold, or the hook
     * itself could lock people out of the old directory. */
    s->policy_tried = ldap_verify_now_ms();
    if (read_policy(s, HOOK_POLICY_BUDGET_MS, &pol, &perr)) {
        if (pol.threshold > 0 && h->max_failures >= pol.threshold) {
            rc =
                dm_err_set(err, DM_EINVAL,
                           "%s: hook.max_failures %d is not below the source's lockout "
                           "threshold %d (%s); set it to %d or less",
                           cfg->path, h->max_failures, pol.threshold, pol.where, pol.threshold - 1);
            goto done;
        }
        log_info("hook: source lockout threshold %d (%s); per-account budget %d", pol.threshold,
                 pol.threshold > 0 ? pol.where : "no lockout policy found", h->max_failures);
    } else {
        log_warn("hook: cannot read the source's lockout policy now (%s); reading it again "
                 "every %d s",
                 perr.msg, HOOK_POLICY_RETRY_MS / 1000);
    }
    if (h->lazy_migration || h->rehash) {
        rc = hook_migrate_new(&s->migrate, cfg, record_cb, s, err);
        if (rc != DM_OK) {
            goto done;
        }
        hook_core_on_verified(s->core, hook_migrate_submit_cb, s->migrate);
    }
    s->max_workers = h->max_concurrency;
    s->workers = calloc((size_t)s->max_workers, sizeof(*s->workers));
    if (s->workers == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "hook: workers");
        goto done;
    }
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        rc = dm_err_set(err, DM_EINTERNAL, "hook: cannot start the connection reaper");
        goto done;
    }
    s->reaper_running = 1;
    fd_budget(h);
    rc = listen_on(&s->main, "hook.plain_http", h->listen, h->plain_http, err);
    if (rc == DM_OK && h->monitor_listen != NULL) {
        rc = listen_on(&s->mon, "hook.monitor_plain_http", h->monitor_listen, h->monitor_plain_http,
                       err);
    }
    if (rc != DM_OK) {
        goto done;
    }
    log_info("hook: listening on %s://%s (%s, %s%s), /healthz and /metrics on %s://%s; source %s",
             h->plain_http ? "http" : "https", h->listen, h->path, h->generic_path,
             h->lazy_migration || h->rehash ? "; lazy migration into the LDAP target" : "",
             (h->monitor_listen ? h->monitor_plain_http : h->plain_http) ? "http" : "https",
             h->monitor_listen ? h->monitor_listen : h->listen, cfg->source.conn.uri);
    *out = s;
    s = NULL;
    rc = DM_OK;
done:
    hook_server_stop(s);
    return rc;
}

void hook_server_stop(struct hook_server *s)
{
    if (s == NULL) {
        return;
    }
    /* No new connections; the requests in the workers finish within the deadline and are
     * resumed, then the daemons stop (libmicrohttpd needs every connection resumed). */
    s->stopping = 1;
    if (s->main.daemon != NULL) {
        MHD_socket lfd = MHD_quiesce_daemon(s->main.daemon);
        if (lfd != MHD_INVALID_SOCKET) {
            close(lfd); /* quiesce hands the listening socket over */
        }
    }
    workers_stop(s);
    if (s->main.daemon != NULL) {
        MHD_stop_daemon(s->main.daemon);
    }
    if (s->mon.daemon != NULL) {
        MHD_stop_daemon(s->mon.daemon);
    }
    if (s->reaper_running) {
        pthread_mutex_lock(&s->conn_mu);
        s->reaper_stop = 1;
        pthread_cond_signal(&s->conn_cv);
        pthread_mutex_unlock(&s->conn_mu);
        pthread_join(s->reaper, NULL);
    }
    hook_migrate_free(s->migrate); /* may still journal: before the journal thread stops */
    if (s->st_running) {
        pthread_mutex_lock(&s->st_mu);
        s->st_stop = 1;
        pthread_cond_signal(&s->st_cv);
        pthread_mutex_unlock(&s->st_mu);
        pthread_join(s->st_thread, NULL);
    }
    hook_core_free(s->core);
    ldap_verify_free(s->lv);
    state_close(s->st);
    if (s->key != NULL) {
        explicit_bzero(s->key, s->key_len);
    }
    free(s->key);
    free(s->cert);
    free(s->workers);
    pthread_mutex_destroy(&s->st_mu);
    pthread_cond_destroy(&s->st_cv);
    pthread_mutex_destroy(&s->health_mu);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_cond_destroy(&s->conn_cv);
    pthread_mutex_destroy(&s->w_mu);
    pthread_cond_destroy(&s->w_cv);
    free(s);
}

int hook_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
             struct dm_err *err)
{
    struct hook_server *s = NULL;
    sigset_t set, old;
    int sig = 0, rc;

    /* Block the stop signals before any thread starts, so every thread inherits the mask
     * and sigwait() below is the one place that receives them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    signal(SIGPIPE, SIG_IGN);
    rc = hook_server_start(&s, cfg, err);
    if (rc != DM_OK) {
        if (rc == DM_EINVAL) {
            *exit_hint = EX_CONFIG;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    while (sigwait(&set, &sig) != 0) {
    }
    log_info("hook: signal %d, stopping", sig);
    hook_server_stop(s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return DM_OK;
}

struct daily_ctx {
    FILE *out;
    json_t *days;
};

static int daily_row(const char *category, long long count, void *payload)
{
    struct daily_ctx *c = payload;

    if (c->days != NULL) {
        json_array_append_new(
            c->days, json_pack("{s:s,s:I}", "day", category, "verified", (json_int_t)count));
    } else {
        fprintf(c->out, "  %s  %8lld\n", category, count);
    }
    return 0;
}

int report_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
               struct dm_err *err)
{
    struct state_password_counts pc = {0};
    struct state_totals t = {0};
    struct daily_ctx c = {o->json ? stdout : stderr, o->json ? json_array() : NULL};
    struct state *st = NULL;
    struct state_where w;
    int rc;

    if (!config_state_exists(cfg)) {
        fprintf(stderr, "dirmig: no state journal at %s yet (nothing has run)\n", cfg->state_path);
        if (o->json) {
            printf("{\"days\":[]}\n");
        }
        json_decref(c.days);
        return DM_OK;
    }
    config_state_where(&w, cfg);
    rc = state_open_cfg(&st, &w, err);
    if (rc == DM_OK) {
        rc = state_password_counts(&pc, st, err);
    }
    if (rc == DM_OK) {
        rc = state_totals(&t, st, err);
    }
    if (rc == DM_OK && !o->json) {
        fprintf(stderr,
                "password migration: %lld users created with the hook, %lld verified "
                "(%.1f%% of %lld users migrated)\nverified per day (UTC):\n",
                pc.hook_created, pc.verified_users,
                t.users_ok > 0 ? 100.0 * (double)pc.verified_users / (double)t.users_ok : 0.0,
                t.users_ok);
    }
    if (rc == DM_OK) {
        rc = state_password_daily(st, daily_row, &c, err);
    }
    if (rc == DM_OK && o->json) {
        json_t *j = json_pack(
            "{s:I,s:I,s:I,s:f,s:O}", "hook_created", (json_int_t)pc.hook_created, "verified",
            (json_int_t)pc.verified_users, "users_migrated", (json_int_t)t.users_ok, "share",
            t.users_ok > 0 ? (double)pc.verified_users / (double)t.users_ok : 0.0, "days", c.days);
        json_dumpf(j, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        json_decref(j);
    }
    json_decref(c.days);
    state_close(st);
    return rc;
}
