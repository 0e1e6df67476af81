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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "agent/hook_core.h"
#include "agent/state.h"
#include "agent/util/log.h"
#include "connectors/ldap_verify.h"

#define HOOK_PEM_MAX (1u << 20)
#define HOOK_HEALTH_CACHE_MS 1000
#define HOOK_HEALTH_BUDGET_MS 1000

#define HOOK_JOURNAL_QUEUE_MAX 100000

enum route { R_NOT_FOUND = 0, R_OKTA, R_GENERIC, R_HEALTH, R_METRICS };

/* One verification outcome waiting for the journal writer. */
struct jrec {
    struct jrec *next;
    char outcome[24];
    char reason[24];
    char *dn; /* points into login[], after the login */
    char login[];
};

struct hook_server {
    const struct dm_config *cfg;
    const struct config_hook *h;
    struct MHD_Daemon *daemon;
    struct ldap_verify *lv;
    struct hook_core *core;
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
    char health_msg[256];
    char *cert, *key; /* PEM, key wiped on stop */
    size_t key_len;
    const char *login_attrs[33];
};

/* One HTTP request. The body holds a password: wiped when the request ends. */
struct hreq {
    long long start;
    enum route route;
    int refused; /* an answer was queued before the body was read */
    int too_large;
    char *body;
    size_t len, cap;
};

static enum ldap_verify_result verify_cb(char *dn_out, size_t dn_len, void *ctx, const char *login,
                                         size_t login_len, const char *pw, size_t pw_len,
                                         long long deadline_ms, struct dm_err *err)
{
    return ldap_verify_password(dn_out, dn_len, ctx, login, login_len, pw, pw_len, deadline_ms,
                                err);
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

/* /healthz: the source answers a root DSE read (cached for a second, so the endpoint
 * cannot be used to hammer the directory). */
static int serve_health(struct hook_server *s, struct MHD_Connection *conn)
{
    char body[512];
    long long now = ldap_verify_now_ms();
    struct dm_err err = {0};
    int up;

    pthread_mutex_lock(&s->health_mu);
    if (s->health_at == 0 || now - s->health_at >= HOOK_HEALTH_CACHE_MS) {
        up = ldap_verify_ping(s->lv, now + HOOK_HEALTH_BUDGET_MS, &err) == DM_OK;
        s->health_up = up;
        s->health_at = ldap_verify_now_ms();
        snprintf(s->health_msg, sizeof(s->health_msg), "%s", up ? "" : err.msg);
        hook_core_set_source_up(s->core, up);
        if (!up) {
            log_warn("hook: health: source unreachable: %s", err.msg);
        }
    }
    up = s->health_up;
    if (up) {
        snprintf(body, sizeof(body), "{\"status\":\"ok\",\"source\":\"up\"}");
    } else {
        json_t *o = json_pack("{s:s,s:s,s:s}", "status", "degraded", "source", "down", "error",
                              s->health_msg);
        char *t = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        snprintf(body, sizeof(body), "%s", t != NULL ? t : "{\"source\":\"down\"}");
        free(t);
        json_decref(o);
    }
    pthread_mutex_unlock(&s->health_mu);
    return queue(conn, up ? 200 : 503, "application/json", body, strlen(body));
}

static int serve_metrics(struct hook_server *s, struct MHD_Connection *conn)
{
    struct buf b;
    int ret;

    buf_init(&b, 1 << 20);
    if (hook_core_metrics(s->core, &b) != DM_OK) {
        buf_free(&b);
        return queue(conn, 500, "text/plain", "metrics\n", 8);
    }
    ret = queue(conn, 200, "text/plain; version=0.0.4", b.data, b.len);
    buf_free(&b);
    return ret;
}

static enum route route_of(const struct config_hook *h, const char *url, const char *method)
{
    int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;

    if (post && strcmp(url, h->path) == 0) {
        return R_OKTA;
    }
    if (post && strcmp(url, h->generic_path) == 0) {
        return R_GENERIC;
    }
    if (get && strcmp(url, "/healthz") == 0) {
        return R_HEALTH;
    }
    if (get && strcmp(url, "/metrics") == 0) {
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct hook_server *s = cls;
    const struct config_hook *h = s->h;
    struct hreq *r = *con_cls;
    struct hook_reply rep;
    const char *v;

    if (r == NULL) {
        /* First call: headers only. Refuse what needs no body before reading it. */
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            return MHD_NO;
        }
        r->start = ldap_verify_now_ms();
        r->route = route_of(h, url, method);
        *con_cls = r;
        if (r->route == R_HEALTH) {
            return (enum MHD_Result)serve_health(s, conn);
        }
        if (r->route == R_METRICS) {
            return (enum MHD_Result)serve_metrics(s, conn);
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
    /* The idle timeout (MHD_OPTION_CONNECTION_TIMEOUT) cuts off a client that stops
     * sending; this cuts off one that trickles a byte at a time (slowloris). */
    if (*upload_data_size > 0 &&
        ldap_verify_now_ms() - r->start > (long long)h->request_timeout_s * 1000) {
        log_debug("hook: request body not complete after %d s; closing", h->request_timeout_s);
        return MHD_NO;
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
                explicit_bzero(r->body, r->len);
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
    if (r->too_large) {
        return (enum MHD_Result)refuse(s, conn, r, HOOK_OUT_TOO_LARGE);
    }
    hook_core_handle(&rep, s->core, r->route == R_OKTA ? HOOK_EP_OKTA : HOOK_EP_GENERIC,
                     r->body != NULL ? r->body : "", r->len, r->start);
    r->refused = 1;
    return (enum MHD_Result)queue_reply(conn, &rep);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct hreq *r = *con_cls;

    if (r == NULL) {
        return;
    }
    if (r->body != NULL) {
        explicit_bzero(r->body, r->len);
        free(r->body);
    }
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

int hook_server_start(struct hook_server **out, const struct dm_config *cfg, struct dm_err *err)
{
    const struct config_hook *h = &cfg->hook;
    struct hook_server *s = calloc(1, sizeof(*s));
    struct ldap_verify_cfg vc;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    size_t cert_len = 0, nattrs = 0;
    unsigned flags;
    int port = 0, rc;

    if (s == NULL) {
        return dm_err_set(err, DM_ENOMEM, "hook_server_start");
    }
    s->cfg = cfg;
    s->h = h;
    pthread_mutex_init(&s->st_mu, NULL);
    pthread_cond_init(&s->st_cv, NULL);
    s->q_tail = &s->q_head;
    pthread_mutex_init(&s->health_mu, NULL);
    if (h->secret == NULL) {
        rc = dm_err_set(err, DM_EINVAL,
                        "%s: hook.secret_file or hook.secret_env is required "
                        "to serve the hook",
                        cfg->path);
        goto done;
    }
    rc = parse_listen(&ss, &sslen, &port, h->listen, err);
    if (rc != DM_OK) {
        goto done;
    }
    if (h->plain_http && !is_loopback(&ss)) {
        rc = dm_err_set(err, DM_EINVAL, "hook.plain_http: only allowed on a loopback address");
        goto done;
    }
    if (!h->plain_http) {
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
    rc = hook_core_new(&s->core, h, verify_cb, s->lv, record_cb, s, err);
    if (rc != DM_OK) {
        goto done;
    }
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    flags |= h->threads == 0 ? MHD_USE_THREAD_PER_CONNECTION : MHD_USE_EPOLL;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    if (!h->plain_http) {
        flags |= MHD_USE_TLS;
    }
    if (h->threads == 0) {
        s->daemon = MHD_start_daemon(
            flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)h->request_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
            MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)(h->max_concurrency * 4 > 256 ? h->max_concurrency * 4 : 256),
            MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s, MHD_OPTION_HTTPS_MEM_KEY,
            h->plain_http ? NULL : s->key, MHD_OPTION_HTTPS_MEM_CERT,
            h->plain_http ? NULL : s->cert, MHD_OPTION_END);
    } else {
        s->daemon = MHD_start_daemon(
            flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)h->request_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
            MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)(h->max_concurrency * 4 > 256 ? h->max_concurrency * 4 : 256),
            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)h->threads, MHD_OPTION_EXTERNAL_LOGGER,
            mhd_logger, s, MHD_OPTION_HTTPS_MEM_KEY, h->plain_http ? NULL : s->key,
            MHD_OPTION_HTTPS_MEM_CERT, h->plain_http ? NULL : s->cert, MHD_OPTION_END);
    }
    if (s->daemon == NULL) {
        rc = dm_err_set(err, DM_EUNAVAIL,
                        "hook: cannot listen on %s (address in use, or bad "
                        "TLS certificate/key)",
                        h->listen);
        goto done;
    }
    log_info("hook: listening on %s://%s (%s, %s, /healthz, /metrics), source %s",
             h->plain_http ? "http" : "https", h->listen, h->path, h->generic_path,
             cfg->source.conn.uri);
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
    if (s->daemon != NULL) {
        MHD_stop_daemon(s->daemon);
    }
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
    pthread_mutex_destroy(&s->st_mu);
    pthread_cond_destroy(&s->st_cv);
    pthread_mutex_destroy(&s->health_mu);
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
