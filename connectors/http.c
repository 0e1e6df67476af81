#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/util/log.h"
#include "connectors/http.h"
#include "connectors/ratelimit.h"

/* One submitted request; lives in the client's queue or in the multi handle. */
struct http_xfer {
    struct http_xfer *next;
    CURL *easy;
    char method[8];
    char *url;
    char key[64];               /* rate-limit bucket */
    struct curl_slist *headers; /* NULL = the client's; else a copy with extras: wiped */
    char *body;
    size_t len;
    http_done_fn fn;
    void *payload;
    struct http_response resp;
    long long not_before; /* backoff: do not start before this (monotonic ms) */
    /* X-Rate-Limit-* of the current attempt; -1 when absent */
    long rl_limit;
    long rl_remaining;
    long long rl_reset_epoch;
    long long date_epoch;     /* the response's Date header, -1 if absent */
    long long retry_after_ms; /* Retry-After (RFC 9110 §10.2.3) as a delay, -1 if absent */
    int overflow;
    char errbuf[CURL_ERROR_SIZE];
};

struct http_client {
    struct http_opts o;
    char *base_url;
    char *origin; /* scheme://host[:port] of base_url */
    char *ca_file;
    CURLM *multi;
    struct curl_slist *headers; /* holds the Authorization line: wiped before free */
    struct ratelimit *rl;
    struct http_xfer *head;
    struct http_xfer *tail;
    struct http_xfer **active; /* concurrency slots */
    unsigned nactive;
    unsigned seed;
    struct http_stats st;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static long long clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

/* Length of a URL without its query: paths go into logs, queries may hold a login. */
static int path_len(const char *url)
{
    return (int)strcspn(url, "?#");
}

void http_opts_init(struct http_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->auth_scheme = "SSWS ";
    o->concurrency = 4;
    o->connect_timeout_ms = 10000;
    o->request_timeout_ms = 60000;
    o->max_retries = 5;
    o->backoff_base_ms = 500;
    o->backoff_max_ms = 30000;
    o->verify = 1;
    o->rate_share = 0.5;
    o->max_body = 16u << 20;
}

/* Is the space-separated relation list [s, s+n) holding "next"? (RFC 8288 §3.3) */
static int rel_has_next(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t start;

        while (i < n && (s[i] == ' ' || s[i] == '\t')) {
            i++;
        }
        start = i;
        while (i < n && s[i] != ' ' && s[i] != '\t') {
            i++;
        }
        if (i - start == 4 && strncasecmp(s + start, "next", 4) == 0) {
            return 1;
        }
    }
    return 0;
}

int http_link_next(char **out, const char *value)
{
    const char *p = value;

    while (*p != '\0') {
        const char *us;
        const char *ue;
        int is_next = 0;

        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        if (*p != '<') {
            break;
        }
        us = p + 1;
        ue = strchr(us, '>');
        if (ue == NULL) {
            break;
        }
        p = ue + 1;
        /* link-params: ; name[=value|="quoted"] ... up to the next ',' */
        while (*p != '\0' && *p != ',') {
            const char *ns;
            size_t nlen;
            const char *vs = NULL;
            size_t vlen = 0;

            while (*p == ' ' || *p == '\t' || *p == ';') {
                p++;
            }
            ns = p;
            nlen = strcspn(p, "=;, \t");
            p += nlen;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            if (*p == '=') {
                p++;
                while (*p == ' ' || *p == '\t') {
                    p++;
                }
                if (*p == '"') {
                    const char *e;

                    vs = p + 1;
                    e = strchr(vs, '"');
                    if (e == NULL) {
                        e = vs + strlen(vs);
                    }
                    vlen = (size_t)(e - vs);
                    p = *e != '\0' ? e + 1 : e;
                } else {
                    vs = p;
                    vlen = strcspn(p, ";, \t");
                    p += vlen;
                }
            }
            if (nlen == 3 && strncasecmp(ns, "rel", 3) == 0 && vs != NULL &&
                rel_has_next(vs, vlen)) {
                is_next = 1;
            }
        }
        if (is_next) {
            char *u = strndup(us, (size_t)(ue - us));

            if (u == NULL) {
                return DM_ENOMEM;
            }
            *out = u;
            return DM_OK;
        }
    }
    return DM_OK;
}

static void slist_wipe_free(struct curl_slist *l)
{
    struct curl_slist *i;

    for (i = l; i != NULL; i = i->next) {
        explicit_bzero(i->data, strlen(i->data));
    }
    curl_slist_free_all(l);
}

static int build_headers(struct http_client *c, struct dm_err *err)
{
    static const char *const fixed[] = {
        "Accept: application/json", "Content-Type: application/json",
        "Expect:", /* no 100-continue round trip on POST */
    };
    struct curl_slist *l = NULL;
    struct curl_slist *n;
    char *auth = NULL;
    size_t alen;
    int rc;

    for (size_t i = 0; i < DM_ARRAY_LEN(fixed); i++) {
        n = curl_slist_append(l, fixed[i]);
        if (n == NULL) {
            rc = dm_err_set(err, DM_ENOMEM, "http: header list");
            goto done;
        }
        l = n;
    }
    if (c->o.token != NULL) {
        const char *scheme = c->o.auth_scheme != NULL ? c->o.auth_scheme : "SSWS ";

        alen = strlen("Authorization: ") + strlen(scheme) + secret_len(c->o.token) + 1;
        auth = malloc(alen);
        if (auth == NULL) {
            rc = dm_err_set(err, DM_ENOMEM, "http: header list");
            goto done;
        }
        snprintf(auth, alen, "Authorization: %s%s", scheme, secret_reveal(c->o.token));
        n = curl_slist_append(l, auth);
        explicit_bzero(auth, alen);
        if (n == NULL) {
            rc = dm_err_set(err, DM_ENOMEM, "http: header list");
            goto done;
        }
        l = n;
    }
    c->headers = l;
    l = NULL;
    rc = DM_OK;
done:
    free(auth);
    slist_wipe_free(l);
    return rc;
}

int http_client_new(struct http_client **out, const struct http_opts *o, struct dm_err *err)
{
    struct http_client *c = NULL;
    const char *hs;
    size_t blen;
    int rc;

    if (o->base_url == NULL ||
        (strncmp(o->base_url, "https://", 8) != 0 && strncmp(o->base_url, "http://", 7) != 0)) {
        return dm_err_set(err, DM_EINVAL, "http: base_url must start with https:// or http://");
    }
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        return dm_err_set(err, DM_EINTERNAL, "http: curl_global_init: %s",
                          curl_easy_strerror(global_rc));
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return dm_err_set(err, DM_ENOMEM, "http: client");
    }
    c->o = *o;
    if (c->o.concurrency == 0) {
        c->o.concurrency = 1;
    }
    if (c->o.max_body == 0) {
        c->o.max_body = 16u << 20;
    }
    blen = strlen(o->base_url);
    while (blen > 0 && o->base_url[blen - 1] == '/') {
        blen--;
    }
    c->base_url = strndup(o->base_url, blen);
    hs = strstr(o->base_url, "://") + 3;
    c->origin = strndup(o->base_url, (size_t)(hs - o->base_url) + strcspn(hs, "/?#"));
    c->ca_file = o->ca_file != NULL ? strdup(o->ca_file) : NULL;
    c->active = calloc(c->o.concurrency, sizeof(*c->active));
    c->rl = ratelimit_new(o->rate_share);
    c->multi = curl_multi_init();
    if (c->base_url == NULL || c->origin == NULL || (o->ca_file != NULL && c->ca_file == NULL) ||
        c->active == NULL || c->rl == NULL || c->multi == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "http: client");
        goto done;
    }
    c->o.base_url = c->base_url;
    c->o.ca_file = c->ca_file;
    rc = build_headers(c, err);
    c->o.auth_scheme = NULL; /* read once, by build_headers(): the caller's string may go */
    if (rc != DM_OK) {
        goto done;
    }
    /* keep-alive: the multi handle's connection cache serves every transfer */
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->o.concurrency);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->o.concurrency);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->o.concurrency);
    c->seed = (unsigned)mono_ms() ^ (unsigned)getpid();
    *out = c;
    c = NULL;
    rc = DM_OK;
done:
    http_client_free(c);
    return rc;
}

static void response_clear(struct http_response *r)
{
    buf_free(&r->body);
    free(r->next_url);
    r->next_url = NULL;
    r->request_id[0] = '\0';
    r->status = 0;
}

static void xfer_free(struct http_xfer *x)
{
    if (x == NULL) {
        return;
    }
    if (x->easy != NULL) {
        curl_easy_cleanup(x->easy);
    }
    response_clear(&x->resp);
    slist_wipe_free(x->headers);
    free(x->url);
    if (x->body != NULL) {
        explicit_bzero(x->body, x->len); /* may hold an imported hash */
    }
    free(x->body);
    free(x);
}

void http_client_free(struct http_client *c)
{
    struct http_xfer *x;

    if (c == NULL) {
        return;
    }
    for (unsigned i = 0; c->active != NULL && i < c->o.concurrency; i++) {
        if (c->active[i] != NULL) {
            curl_multi_remove_handle(c->multi, c->active[i]->easy);
            xfer_free(c->active[i]);
        }
    }
    while (c->head != NULL) {
        x = c->head;
        c->head = x->next;
        xfer_free(x);
    }
    if (c->multi != NULL) {
        curl_multi_cleanup(c->multi);
    }
    slist_wipe_free(c->headers);
    ratelimit_free(c->rl);
    free(c->active);
    free(c->base_url);
    free(c->origin);
    free(c->ca_file);
    free(c);
}

/* Same name ("Name:" up to the colon, case-insensitive)? */
static int header_same_name(const char *a, const char *b)
{
    size_t na = strcspn(a, ":");
    size_t nb = strcspn(b, ":");

    return na == nb && strncasecmp(a, b, na) == 0;
}

/* The client's headers minus those the extras replace, plus the extras. */
static int headers_merge(struct curl_slist **out, const struct curl_slist *base,
                         const char *const *extra, struct dm_err *err)
{
    struct curl_slist *l = NULL;
    struct curl_slist *n;
    int rc;

    for (const struct curl_slist *i = base; i != NULL; i = i->next) {
        size_t k = 0;

        while (extra[k] != NULL && !header_same_name(i->data, extra[k])) {
            k++;
        }
        if (extra[k] != NULL) {
            continue;
        }
        n = curl_slist_append(l, i->data);
        if (n == NULL) {
            rc = dm_err_set(err, DM_ENOMEM, "http: header list");
            goto done;
        }
        l = n;
    }
    for (size_t k = 0; extra[k] != NULL; k++) {
        if (header_same_name(extra[k], "Authorization")) {
            rc = dm_err_set(err, DM_EINVAL, "http: Authorization comes from the token only");
            goto done;
        }
        n = curl_slist_append(l, extra[k]);
        if (n == NULL) {
            rc = dm_err_set(err, DM_ENOMEM, "http: header list");
            goto done;
        }
        l = n;
    }
    *out = l;
    l = NULL;
    rc = DM_OK;
done:
    slist_wipe_free(l);
    return rc;
}

int http_submit(struct http_client *c, const char *method, const char *path, const char *body,
                size_t len, http_done_fn fn, void *payload, struct dm_err *err)
{
    return http_submit_hdr(c, method, path, NULL, body, len, fn, payload, err);
}

int http_submit_hdr(struct http_client *c, const char *method, const char *path,
                    const char *const *headers, const char *body, size_t len, http_done_fn fn,
                    void *payload, struct dm_err *err)
{
    struct http_xfer *x = NULL;
    size_t olen = strlen(c->origin);
    int rc;

    if (strlen(method) >= sizeof(x->method)) {
        return dm_err_set(err, DM_EINVAL, "http: bad method");
    }
    if (strncmp(path, "https://", 8) == 0 || strncmp(path, "http://", 7) == 0) {
        /* a Link URL: the token may only go back to the origin it came from */
        if (strncasecmp(path, c->origin, olen) != 0 ||
            (path[olen] != '\0' && path[olen] != '/' && path[olen] != '?')) {
            return dm_err_set(err, DM_EINVAL, "http: refusing URL outside %s", c->origin);
        }
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return dm_err_set(err, DM_ENOMEM, "http: request");
    }
    snprintf(x->method, sizeof(x->method), "%s", method);
    if (path[0] == 'h' && strstr(path, "://") != NULL) {
        x->url = strdup(path);
    } else {
        size_t ulen = strlen(c->base_url) + strlen(path) + 2;

        x->url = malloc(ulen);
        if (x->url != NULL) {
            snprintf(x->url, ulen, "%s%s%s", c->base_url, path[0] == '/' ? "" : "/", path);
        }
    }
    x->body = malloc(len + 1);
    if (x->url == NULL || x->body == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "http: request");
        goto done;
    }
    if (len > 0) {
        memcpy(x->body, body, len);
    }
    x->body[len] = '\0';
    x->len = len;
    if (headers != NULL) {
        rc = headers_merge(&x->headers, c->headers, headers, err);
        if (rc != DM_OK) {
            goto done;
        }
    }
    x->fn = fn;
    x->payload = payload;
    /* Okta counts "get user by id" apart from "update or delete user by id" (separate rows
     * of its rate-limit table): reads of one object get a bucket of their own */
    ratelimit_key(x->key + 4, sizeof(x->key) - 4, x->url);
    memcpy(x->key, strcmp(method, "GET") == 0 && strstr(x->key + 4, "/*") != NULL ? "GET " : "ALL ",
           4);
    buf_init(&x->resp.body, c->o.max_body);
    if (c->tail != NULL) {
        c->tail->next = x;
    } else {
        c->head = x;
    }
    c->tail = x;
    x = NULL;
    rc = DM_OK;
done:
    xfer_free(x);
    return rc;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct http_xfer *x = userdata;
    size_t n = size * nmemb;

    if (buf_append(&x->resp.body, ptr, n) != DM_OK) {
        x->overflow = 1;
        return 0; /* CURLE_WRITE_ERROR */
    }
    return n;
}

/* Matches "Name:" case-insensitively and returns the trimmed value in [*v, *v+*vlen). */
static int header_is(const char *line, size_t n, const char *name, const char **v, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *s;
    const char *e;

    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0) {
        return 0;
    }
    s = line + nl + 1;
    e = line + n;
    while (s < e && (*s == ' ' || *s == '\t')) {
        s++;
    }
    while (e > s && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    *v = s;
    *vlen = (size_t)(e - s);
    return 1;
}

static long long parse_num(const char *v, size_t n)
{
    char tmp[32];
    char *end;
    long long r;

    if (n == 0 || n >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    r = strtoll(tmp, &end, 10);
    return (*end != '\0' || r < 0) ? -1 : r;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    struct http_xfer *x = userdata;
    size_t n = size * nmemb;
    const char *v;
    size_t vlen;

    if (header_is(line, n, "X-Rate-Limit-Limit", &v, &vlen)) {
        x->rl_limit = (long)parse_num(v, vlen);
    } else if (header_is(line, n, "X-Rate-Limit-Remaining", &v, &vlen)) {
        x->rl_remaining = (long)parse_num(v, vlen);
    } else if (header_is(line, n, "X-Rate-Limit-Reset", &v, &vlen)) {
        x->rl_reset_epoch = parse_num(v, vlen);
    } else if (header_is(line, n, "Date", &v, &vlen)) {
        char tmp[64];

        snprintf(tmp, sizeof(tmp), "%.*s", (int)vlen, v);
        x->date_epoch = (long long)curl_getdate(tmp, NULL);
    } else if (header_is(line, n, "Retry-After", &v, &vlen)) {
        /* delay-seconds, or an HTTP-date (taken relative to the answer's Date when given) */
        char tmp[64];
        long long secs = parse_num(v, vlen);

        if (secs < 0) {
            snprintf(tmp, sizeof(tmp), "%.*s", (int)vlen, v);
            secs = (long long)curl_getdate(tmp, NULL);
            secs =
                secs > 0 ? secs - (x->date_epoch > 0 ? x->date_epoch : (long long)time(NULL)) : -1;
        }
        x->retry_after_ms = secs >= 0 ? secs * 1000 : -1;
    } else if (header_is(line, n, "X-Okta-Request-Id", &v, &vlen)) {
        snprintf(x->resp.request_id, sizeof(x->resp.request_id), "%.*s", (int)vlen, v);
    } else if (header_is(line, n, "Link", &v, &vlen)) {
        /* several Link lines may come (RFC 8288); only rel="next" matters */
        char *val = strndup(v, vlen);
        char *next = NULL;

        if (val == NULL || http_link_next(&next, val) != DM_OK) {
            free(val);
            return 0;
        }
        free(val);
        if (next != NULL) {
            free(x->resp.next_url);
            x->resp.next_url = next;
        }
    }
    return n;
}

static int xfer_setup(struct http_client *c, struct http_xfer *x, struct dm_err *err)
{
    CURL *e = curl_easy_init();
    CURLcode cc = CURLE_OK;

    if (e == NULL) {
        return dm_err_set(err, DM_ENOMEM, "http: curl_easy_init");
    }
    x->easy = e;
    x->errbuf[0] = '\0';
    /* every option below is a plain setter; only allocation can fail, checked at the end */
    cc |= curl_easy_setopt(e, CURLOPT_URL, x->url);
    cc |= curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    cc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers != NULL ? x->headers : c->headers);
    cc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    cc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    cc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    cc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    cc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    cc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    cc |= curl_easy_setopt(e, CURLOPT_VERBOSE, 0L); /* verbose would print the token */
    cc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    cc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    cc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    cc |= curl_easy_setopt(e, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
    cc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
    cc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->o.request_timeout_ms);
    cc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->o.verify ? 1L : 0L);
    cc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->o.verify ? 2L : 0L);
    if (c->ca_file != NULL) {
        cc |= curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    }
    if (strcmp(x->method, "GET") == 0) {
        cc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(x->method, "POST") != 0) {
            cc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
        }
        if (x->len > 0 || strcmp(x->method, "DELETE") != 0) {
            /* an empty body still sends "Content-Length: 0": Okta answers 411 without */
            cc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
            cc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->len);
        }
    }
    if (cc != CURLE_OK) {
        return dm_err_set(err, DM_EINTERNAL, "http: curl_easy_setopt failed");
    }
    return DM_OK;
}

/* Hands a finished request to its callback and frees it. */
static void xfer_finish(struct http_xfer *x, int rc, const struct dm_err *err)
{
    x->fn(&x->resp, rc, err, x->payload);
    xfer_free(x);
}

static void xfer_start(struct http_client *c, struct http_xfer *x, unsigned slot, long long now)
{
    struct dm_err err = {0};
    int rc;

    x->resp.attempts++;
    buf_reset(&x->resp.body);
    free(x->resp.next_url);
    x->resp.next_url = NULL;
    x->resp.request_id[0] = '\0';
    x->resp.status = 0;
    x->rl_limit = -1;
    x->rl_remaining = -1;
    x->rl_reset_epoch = -1;
    x->date_epoch = -1;
    x->retry_after_ms = -1;
    x->overflow = 0;
    rc = xfer_setup(c, x, &err);
    if (rc == DM_OK && curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
        rc = dm_err_set(&err, DM_EINTERNAL, "http: curl_multi_add_handle failed");
    }
    if (rc != DM_OK) {
        xfer_finish(x, rc, &err);
        return;
    }
    if (ratelimit_started(c->rl, x->key, now) != DM_OK) {
        log_warn("http: rate-limit bucket %s not tracked (out of memory)", x->key);
    }
    c->active[slot] = x;
    c->nactive++;
    c->st.requests++;
    c->st.bytes_out += x->len;
    log_debug("http: %s %.*s (attempt %u)", x->method, path_len(x->url), x->url, x->resp.attempts);
}

/* Starts every queued request that may go now; returns the ms until the next held one
 * may go, or -1 if none is held. */
static long long start_ready(struct http_client *c, long long now)
{
    struct http_xfer **pp = &c->head;
    struct http_xfer *prev = NULL;
    long long wait = -1;

    while (*pp != NULL && c->nactive < c->o.concurrency) {
        struct http_xfer *x = *pp;
        long long d = x->not_before > now ? x->not_before - now : 0;
        unsigned slot = 0;

        if (d == 0) {
            d = ratelimit_delay(c->rl, x->key, now);
        }
        if (d > 0) {
            wait = (wait < 0 || d < wait) ? d : wait;
            prev = x;
            pp = &x->next;
            continue;
        }
        *pp = x->next;
        if (c->tail == x) {
            c->tail = prev;
        }
        x->next = NULL;
        while (c->active[slot] != NULL) {
            slot++;
        }
        xfer_start(c, x, slot, now);
    }
    return wait;
}

static int retryable_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR: /* handshake cut short: transient, unlike a bad cert */
        return 1;
    default:
        return 0;
    }
}

/* Full-jitter exponential backoff (AWS architecture blog): uniform in [0, min(cap,
 * base * 2^(attempt-1))]. */
static long long backoff_ms(struct http_client *c, unsigned attempt)
{
    long long ceil = c->o.backoff_base_ms;

    for (unsigned i = 1; i < attempt && ceil < c->o.backoff_max_ms; i++) {
        ceil *= 2;
    }
    if (ceil > c->o.backoff_max_ms) {
        ceil = c->o.backoff_max_ms;
    }
    if (ceil <= 0) {
        return 0;
    }
    return (long long)(rand_r(&c->seed) % (ceil + 1));
}

/* X-Rate-Limit-Reset is UTC epoch seconds on the server's clock: move it onto our
 * monotonic clock. Our wall clock gives millisecond precision when both clocks agree; when
 * it is more than 2 s off the server's Date header, trust Reset - Date (whole seconds) so a
 * skewed host neither stalls for minutes nor runs into 429s. */
static long long reset_to_mono(const struct http_xfer *x, long long now)
{
    long long left = x->rl_reset_epoch * 1000 - clock_ms(CLOCK_REALTIME);

    if (x->date_epoch > 0) {
        long long by_date = (x->rl_reset_epoch - x->date_epoch) * 1000;

        if (left - by_date > 2000 || by_date - left > 2000) {
            left = by_date;
        }
    }
    return now + left;
}

static void xfer_done(struct http_client *c, struct http_xfer *x, CURLcode cc, long long now)
{
    struct ratelimit_obs obs = {.limit = -1};
    struct dm_err err = {0};
    long status = 0;
    int retry = 0;
    int rc = DM_OK;

    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(c->multi, x->easy);
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
    x->resp.status = status;
    c->st.bytes_in += x->resp.body.len;
    if (status > 0) {
        if (x->rl_reset_epoch > 0) {
            obs.reset_ms = reset_to_mono(x, now);
        }
        if (x->rl_limit >= 0 && x->rl_remaining >= 0 && x->rl_reset_epoch > 0) {
            obs.limit = x->rl_limit;
            obs.remaining = x->rl_remaining;
        }
        obs.too_many = status == 429;
        if (obs.too_many && obs.reset_ms <= 0 && x->retry_after_ms >= 0) {
            obs.reset_ms = now + x->retry_after_ms; /* the bucket waits as long as asked */
        }
        ratelimit_done(c->rl, x->key, &obs, now);
    } else {
        ratelimit_done(c->rl, x->key, NULL, now);
    }
    if (cc == CURLE_OK) {
        if (status == 429) {
            c->st.rate_limited++;
            retry = 1;
        } else if (status >= 500) {
            c->st.server_errors++;
            retry = 1;
        }
    } else if (cc == CURLE_WRITE_ERROR && x->overflow) {
        rc = dm_err_set(&err, DM_ELIMIT, "http: %s %.*s: response body over %zu bytes", x->method,
                        path_len(x->url), x->url, c->o.max_body);
    } else if (retryable_curl(cc)) {
        c->st.transport_errors++;
        retry = 1;
    } else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE) {
        rc = dm_err_set(&err, DM_EINTERNAL, "http: %s %.*s: TLS verification failed: %s", x->method,
                        path_len(x->url), x->url,
                        x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(cc));
    } else {
        rc = dm_err_set(&err, DM_EINTERNAL, "http: %s %.*s: %s", x->method, path_len(x->url),
                        x->url, x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(cc));
    }
    if (retry && x->resp.attempts <= c->o.max_retries) {
        /* a 429 is paced by the governor (bucket blocked until Reset), not by backoff */
        long long d = status == 429 ? 0 : backoff_ms(c, x->resp.attempts);

        if (status >= 500 && x->retry_after_ms > d) {
            /* a 503 that says when: wait that long (capped like the backoff) */
            d = x->retry_after_ms < c->o.backoff_max_ms ? x->retry_after_ms : c->o.backoff_max_ms;
        }

        log_warn("http: %s %.*s: %s%s, retry %u/%u in %lld ms", x->method, path_len(x->url), x->url,
                 status > 0 ? "HTTP " : "",
                 status > 0 ? (status == 429 ? "429" : "5xx") : curl_easy_strerror(cc),
                 x->resp.attempts, c->o.max_retries, d);
        c->st.retries++;
        x->not_before = now + d;
        if (c->tail != NULL) {
            c->tail->next = x;
        } else {
            c->head = x;
        }
        c->tail = x;
        return;
    }
    if (retry) {
        if (status > 0) {
            rc = dm_err_set(&err, DM_EUNAVAIL, "http: %s %.*s: HTTP %ld after %u attempts",
                            x->method, path_len(x->url), x->url, status, x->resp.attempts);
        } else {
            rc = dm_err_set(&err, DM_EUNAVAIL, "http: %s %.*s: %s after %u attempts", x->method,
                            path_len(x->url), x->url,
                            x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(cc),
                            x->resp.attempts);
        }
    }
    if (rc != DM_OK) {
        log_debug("%s", err.msg);
    }
    xfer_finish(x, rc, &err);
}

int http_run(struct http_client *c, struct dm_err *err)
{
    while (c->head != NULL || c->nactive > 0) {
        long long now = mono_ms();
        long long wait = start_ready(c, now);
        int running = 0;
        int left = 0;
        int finished = 0;
        CURLMsg *m;
        CURLMcode mc;

        mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK) {
            return dm_err_set(err, DM_EINTERNAL, "http: curl_multi_perform: %s",
                              curl_multi_strerror(mc));
        }
        while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
            struct http_xfer *x = NULL;

            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            for (unsigned i = 0; i < c->o.concurrency; i++) {
                if (c->active[i] == x) {
                    c->active[i] = NULL;
                    c->nactive--;
                    break;
                }
            }
            xfer_done(c, x, m->data.result, mono_ms());
            finished++;
        }
        if (finished > 0) {
            continue;
        }
        if (wait < 0 || wait > 1000) {
            wait = 1000;
        }
        if (wait < 1) {
            wait = 1;
        }
        mc = curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL);
        if (mc != CURLM_OK) {
            return dm_err_set(err, DM_EINTERNAL, "http: curl_multi_poll: %s",
                              curl_multi_strerror(mc));
        }
    }
    return DM_OK;
}

struct one_ctx {
    struct http_response *out;
    struct dm_err *err;
    int rc;
};

static void one_done(const struct http_response *resp, int rc, const struct dm_err *err,
                     void *payload)
{
    struct one_ctx *ctx = payload;
    struct http_response *o = ctx->out;

    ctx->rc = rc;
    if (rc != DM_OK && ctx->err != NULL) {
        *ctx->err = *err;
    }
    o->status = resp->status;
    o->attempts = resp->attempts;
    memcpy(o->request_id, resp->request_id, sizeof(o->request_id));
    buf_init(&o->body, resp->body.limit);
    if (resp->body.len > 0 && buf_append(&o->body, resp->body.data, resp->body.len) != DM_OK) {
        ctx->rc = dm_err_set(ctx->err, DM_ENOMEM, "http: response copy");
    }
    if (resp->next_url != NULL) {
        o->next_url = strdup(resp->next_url);
        if (o->next_url == NULL) {
            ctx->rc = dm_err_set(ctx->err, DM_ENOMEM, "http: response copy");
        }
    }
}

int http_perform_one(struct http_response *out, struct http_client *c, const char *method,
                     const char *path, const char *body, size_t len, struct dm_err *err)
{
    struct one_ctx ctx = {.out = out, .err = err, .rc = DM_EINTERNAL};
    int rc;

    memset(out, 0, sizeof(*out));
    buf_init(&out->body, c->o.max_body);
    rc = http_submit(c, method, path, body, len, one_done, &ctx, err);
    if (rc != DM_OK) {
        return rc;
    }
    rc = http_run(c, err);
    if (rc != DM_OK) {
        return rc;
    }
    return ctx.rc;
}

void http_response_clear(struct http_response *r)
{
    if (r == NULL) {
        return;
    }
    response_clear(r);
}

void http_get_stats(struct http_stats *out, const struct http_client *c)
{
    *out = c->st;
}
