/*
 * connectors/okta.c: the Okta-style Users/Groups API target (contract in okta.h).
 *
 * apply() runs every change of a batch as a small state machine ("job") driven by the
 * HTTP client's callbacks: each callback looks at the answer and submits the job's next
 * request, until the job has its result. http_run() returns when every job is done.
 * apply_start() starts one job whose requests are background requests (http.h): the
 * requests of every job started so far share the client's slots as a sliding window, and
 * each job reports (conn_done_fn) and frees itself when its result is final and no request
 * of it is outstanding (job_settle()); apply_wait() moves them on.
 */
#include <config.h>
#include "connectors/okta.h"
#include "agent/util/log.h"
#include "connectors/conncfg.h"
#include "connectors/http.h"
#include "connectors/okta_cred.h"
#include "schema/cred.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define OKTA_USERS_PAGE 200
#define OKTA_MEMBERS_PAGE 1000

struct job;

struct conn {
    struct conn_cfg cfg; /* strings borrowed from the config */
    struct http_client *http;
    struct job *jobs; /* every job not yet settled (doubly linked) */
    size_t nstreamed; /* ... of which started by apply_start() */
};

static void jobs_free(struct conn *c);

/* ---- small helpers ---- */

char *okta_url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *o = out;

    if (out == NULL) {
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Fills err from a final non-2xx answer or a transport failure: the Okta error code, its
 * summary and causes (they name fields, never values), and the request id. */
static int answer_err(struct dm_err *err, const struct http_response *r, int rc,
                      const struct dm_err *herr, const char *what)
{
    json_t *j = NULL, *causes;
    const char *code = "", *summary = "";
    char extra[160] = "";
    enum dm_rc out;

    if (rc != DM_OK) {
        char why[sizeof(err->msg)]; /* herr may be err itself */
        snprintf(why, sizeof(why), "%s", herr != NULL ? herr->msg : dm_strerror(rc));
        dm_err_set(err, rc, "%s: %s", what, why);
        return rc;
    }
    if (r->body.len > 0) {
        j = json_loadb(r->body.data, r->body.len, 0, NULL);
    }
    if (json_is_object(j)) {
        code = json_string_value(json_object_get(j, "errorCode"));
        summary = json_string_value(json_object_get(j, "errorSummary"));
        causes = json_object_get(j, "errorCauses");
        if (json_is_array(causes) && json_array_size(causes) > 0) {
            const char *c0 =
                json_string_value(json_object_get(json_array_get(causes, 0), "errorSummary"));
            if (c0 != NULL) {
                snprintf(extra, sizeof(extra), " (%s)", c0);
            }
        }
    }
    switch (r->status) {
    case 401:
    case 403:
        out = DM_EAUTH;
        break;
    case 404:
        out = DM_ENOTFOUND;
        break;
    case 400:
        out = DM_ESCHEMA;
        break;
    default:
        out = DM_EINTERNAL;
    }
    dm_err_set(err, out, "%s: HTTP %ld %s %s%s [request %s]", what, r->status, code ? code : "",
               summary ? summary : "", extra, r->request_id[0] ? r->request_id : "-");
    json_decref(j);
    return out;
}

static const char *error_code(const struct http_response *r, json_t **hold)
{
    *hold = r->body.len > 0 ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
    return json_string_value(json_object_get(*hold, "errorCode"));
}

/* The profile object of a mapped entry: one value = a string, several = an array, none =
 * null (the property is cleared). "member" (group members) is not a profile property. */
static json_t *profile_of(const struct entry *e)
{
    json_t *p = json_object();

    for (size_t i = 0; p != NULL && i < e->nattrs; i++) {
        const struct dm_attr *a = &e->attrs[i];
        json_t *v;
        if (strcasecmp(a->name, "member") == 0) {
            continue;
        }
        if (a->nvals == 0) {
            v = json_null(); /* a partial update with null clears the property */
        } else if (a->nvals == 1) {
            v = json_stringn((const char *)a->vals[0].data, a->vals[0].len);
        } else {
            v = json_array();
            for (size_t k = 0; v != NULL && k < a->nvals; k++) {
                json_array_append_new(v,
                                      json_stringn((const char *)a->vals[k].data, a->vals[k].len));
            }
        }
        if (v == NULL || json_object_set_new(p, a->name, v) != 0) {
            json_decref(p);
            return NULL;
        }
    }
    return p;
}

/* 1 when every property of want has the same value in have. */
static int profile_same(json_t *want, json_t *have)
{
    const char *k;
    json_t *v;

    json_object_foreach (want, k, v) {
        json_t *h = json_object_get(have, k);
        if (h == NULL || !json_equal(v, h)) {
            return 0;
        }
    }
    return 1;
}

/* An Okta user or group object as an entry: dn = login (or name), key = id, attributes =
 * profile properties plus "id" and "status". */
static struct entry *entry_of(json_t *obj, const char *dn_prop)
{
    json_t *prof = json_object_get(obj, "profile"), *v;
    const char *id = json_string_value(json_object_get(obj, "id"));
    const char *dn = json_string_value(json_object_get(prof, dn_prop));
    const char *k;
    struct entry *e = entry_new(dn ? dn : id);
    int rc = e != NULL ? DM_OK : DM_ENOMEM;

    if (rc == DM_OK && id != NULL) {
        rc = entry_set_key(e, id);
        if (rc == DM_OK) {
            rc = entry_add_str(e, "id", id);
        }
    }
    if (rc == DM_OK && json_is_string(json_object_get(obj, "status"))) {
        const char *st = json_string_value(json_object_get(obj, "status"));
        rc = entry_add_str(e, "status", st);
        /* the account state the planner compares (connector.h): a user who cannot sign in
         * because the target holds it back; STAGED and PROVISIONED wait for activation */
        if (rc == DM_OK && strcmp(dn_prop, "login") == 0) {
            rc = entry_add_str(e, "dirmigAccountState",
                               strcmp(st, "SUSPENDED") == 0 || strcmp(st, "DEPROVISIONED") == 0
                                   ? "disabled"
                                   : "enabled");
        }
    }
    json_object_foreach (prof, k, v) {
        if (rc != DM_OK) {
            break;
        }
        if (json_is_string(v)) {
            rc = entry_add_value(e, k, json_string_value(v), json_string_length(v));
        } else if (json_is_array(v)) {
            size_t i;
            json_t *x;
            json_array_foreach (v, i, x) {
                if (rc == DM_OK && json_is_string(x)) {
                    rc = entry_add_value(e, k, json_string_value(x), json_string_length(x));
                }
            }
        } else if (json_is_number(v) || json_is_boolean(v)) {
            char *s = json_dumps(v, JSON_ENCODE_ANY);
            rc = s != NULL ? entry_add_str(e, k, s) : DM_ENOMEM;
            free(s);
        }
    }
    if (rc != DM_OK) {
        entry_free(e);
        return NULL;
    }
    return e;
}

/* ---- open / close / check ---- */

static int okta_open(struct conn **out, const struct conn_cfg *cfg, struct dm_err *err)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct http_opts o;
    struct http_response r = {0};
    int rc;

    *out = NULL;
    if (c == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    c->cfg = *cfg;
    http_opts_init(&o);
    o.base_url = cfg->uri;
    o.token = cfg->token;
    o.concurrency = cfg->concurrency > 0 ? (unsigned)cfg->concurrency : 8;
    o.connect_timeout_ms = cfg->network_timeout_ms;
    o.request_timeout_ms = cfg->op_timeout_ms;
    o.max_retries = (unsigned)cfg->max_retries;
    o.ca_file = cfg->ca_file;
    o.verify = cfg->tls_verify;
    o.rate_share = cfg->rate_share_pct > 0 ? cfg->rate_share_pct / 100.0 : 0.5;
    rc = http_client_new(&c->http, &o, err);
    if (rc != DM_OK) {
        free(c);
        return rc;
    }
    /* One cheap authenticated read proves the URL, TLS and the token before any write. */
    rc = http_perform_one(&r, c->http, "GET", "/api/v1/users?limit=1", NULL, 0, err);
    if (rc == DM_OK && r.status != 200) {
        rc = answer_err(err, &r, rc, NULL, "checking the API token");
        if (rc != DM_EAUTH) {
            rc = DM_EUNAVAIL;
        }
    } else if (rc != DM_OK) {
        rc = DM_EUNAVAIL;
    }
    http_response_clear(&r);
    if (rc != DM_OK) {
        http_client_free(c->http);
        free(c);
        return rc;
    }
    *out = c;
    return DM_OK;
}

static void okta_close(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    http_client_free(c->http); /* no callback fires any more: the jobs left can go */
    jobs_free(c);
    free(c);
}

static int okta_check(struct conn *c, struct buf *out, struct dm_err *err)
{
    struct http_response r = {0};
    int rc = http_perform_one(&r, c->http, "GET", "/api/v1/groups?limit=1", NULL, 0, err);

    if (rc == DM_OK && r.status != 200) {
        rc = answer_err(err, &r, rc, NULL, "listing groups");
    }
    if (rc == DM_OK) {
        rc = buf_printf(out,
                        "  Okta-style Users/Groups API at %s: token accepted, users and "
                        "groups readable\n  requests in flight %d, share of each rate limit "
                        "%d%%, users created %s\n",
                        c->cfg.uri, c->cfg.concurrency, c->cfg.rate_share_pct,
                        c->cfg.activate ? "ACTIVE" : "STAGED");
    }
    http_response_clear(&r);
    return rc;
}

static void okta_stats(struct conn *c, struct conn_stats *out)
{
    struct http_stats s;

    http_get_stats(&s, c->http);
    out->requests = s.requests;
    out->retries = s.retries;
    out->rate_limited = s.rate_limited;
    out->server_errors = s.server_errors;
    out->transport_errors = s.transport_errors;
}

/* ---- synchronous reads: read() and find() ---- */

/* GETs path and every Link next page; fn gets each element of each page's array. */
typedef int (*elem_fn)(json_t *elem, void *payload);

static int list_all(struct conn *c, const char *path, elem_fn fn, void *payload, struct dm_err *err)
{
    char *url = strdup(path);
    int rc = url != NULL ? DM_OK : dm_err_set(err, DM_ENOMEM, "out of memory");

    while (rc == DM_OK && url != NULL) {
        struct http_response r = {0};
        json_t *arr = NULL, *x;
        size_t i;
        rc = http_perform_one(&r, c->http, "GET", url, NULL, 0, err);
        if (rc != DM_OK || r.status != 200) {
            rc = answer_err(err, &r, rc, err, "listing");
            http_response_clear(&r);
            break;
        }
        arr = json_loadb(r.body.data, r.body.len, 0, NULL);
        if (!json_is_array(arr)) {
            rc = dm_err_set(err, DM_EINTERNAL, "listing: answer is not a JSON array [request %s]",
                            r.request_id);
        }
        json_array_foreach (arr, i, x) {
            if (rc == DM_OK) {
                rc = fn(x, payload);
            }
        }
        json_decref(arr);
        free(url);
        url = r.next_url; /* opaque: followed as given */
        r.next_url = NULL;
        http_response_clear(&r);
    }
    free(url);
    return rc;
}

struct read_ctx {
    conn_entry_fn fn;
    void *payload;
    struct dm_err *err;
};

static int read_elem(json_t *u, void *payload)
{
    struct read_ctx *x = payload;
    struct entry *e = entry_of(u, "login");
    int rc;

    if (e == NULL) {
        return dm_err_set(x->err, DM_ENOMEM, "out of memory");
    }
    rc = x->fn(e, x->payload);
    entry_free(e);
    return rc;
}

static int okta_read(struct conn *c, const struct scope *s, conn_entry_fn fn, void *payload,
                     struct dm_err *err)
{
    struct read_ctx x = {fn, payload, err};
    char *esc = NULL, *path = NULL;
    int rc;

    /* the scope's filter is an Okta search expression (contracts 2.6: search includes
     * DEPROVISIONED users, a plain list does not) */
    if (s != NULL && s->filter != NULL && s->filter[0] != '\0') {
        esc = okta_url_escape(s->filter);
        if (esc == NULL ||
            asprintf(&path, "/api/v1/users?search=%s&limit=%d", esc, OKTA_USERS_PAGE) < 0) {
            free(esc);
            return dm_err_set(err, DM_ENOMEM, "out of memory");
        }
    } else if (asprintf(&path, "/api/v1/users?limit=%d", OKTA_USERS_PAGE) < 0) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    rc = list_all(c, path, read_elem, &x, err);
    free(esc);
    free(path);
    return rc;
}

static void okta_find_many(struct conn *c, enum obj_kind kind, const char *const *names, size_t n,
                           struct entry **out, int *rcs, struct dm_err *errs);

/* One user by login: find_many() of one name (one way to read and decode a user). */
static void users_get_many(struct conn *c, const char *const *names, size_t n, struct entry **out,
                           int *rcs, struct dm_err *errs);
static int okta_lookup(struct entry **out, struct conn *c, const char *dn, struct dm_err *err)
{
    int rc;

    users_get_many(c, &dn, 1, out, &rc, err); /* GET by login: strongly consistent */
    return rc;
}

/* The search expression for a group name: profile.name eq "..." with " and \ escaped. */
static char *group_search_path(const char *name)
{
    struct buf b;
    char *esc, *path = NULL;

    buf_init(&b, 4096);
    if (buf_puts(&b, "profile.name eq \"") != DM_OK) {
        return NULL;
    }
    for (const char *p = name; *p; p++) {
        if ((*p == '"' || *p == '\\') && buf_puts(&b, "\\") != DM_OK) {
            buf_free(&b);
            return NULL;
        }
        if (buf_append(&b, p, 1) != DM_OK) {
            buf_free(&b);
            return NULL;
        }
    }
    if (buf_puts(&b, "\"") != DM_OK) {
        buf_free(&b);
        return NULL;
    }
    esc = okta_url_escape(b.data);
    buf_free(&b);
    if (esc == NULL || asprintf(&path, "/api/v1/groups?search=%s&limit=200", esc) < 0) {
        path = NULL;
    }
    free(esc);
    return path;
}

struct find_ctx {
    const char *name;
    json_t *found;
    struct entry *e;
    struct dm_err *err;
};

static int find_group_elem(json_t *g, void *payload)
{
    struct find_ctx *x = payload;
    const char *n = json_string_value(json_object_get(json_object_get(g, "profile"), "name"));

    if (x->found == NULL && n != NULL && strcasecmp(n, x->name) == 0) {
        x->found = json_incref(g);
    }
    return DM_OK;
}

static int member_elem(json_t *u, void *payload)
{
    struct find_ctx *x = payload;
    const char *id = json_string_value(json_object_get(u, "id"));

    if (id != NULL && entry_add_str(x->e, "member", id) != DM_OK) {
        return dm_err_set(x->err, DM_ENOMEM, "out of memory");
    }
    return DM_OK;
}

static int okta_find(struct entry **out, struct conn *c, enum obj_kind kind, const char *name,
                     struct dm_err *err)
{
    struct find_ctx x = {name, NULL, NULL, err};
    char *path;
    int rc;

    *out = NULL;
    if (kind == OBJ_USER) {
        return okta_lookup(out, c, name, err);
    }
    path = group_search_path(name);
    if (path == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    rc = list_all(c, path, find_group_elem, &x, err);
    free(path);
    if (rc == DM_OK && x.found == NULL) {
        rc = dm_err_set(err, DM_ENOTFOUND, "no group named \"%s\"", name);
    }
    if (rc == DM_OK) {
        x.e = entry_of(x.found, "name");
        rc = x.e != NULL ? DM_OK : dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    if (rc == DM_OK &&
        asprintf(&path, "/api/v1/groups/%s/users?limit=%d", x.e->key, OKTA_MEMBERS_PAGE) >= 0) {
        rc = list_all(c, path, member_elem, &x, err);
        free(path);
    }
    json_decref(x.found);
    if (rc != DM_OK) {
        entry_free(x.e);
        return rc;
    }
    *out = x.e;
    return DM_OK;
}

/* One object by id: a user as find_many() reads it (GET /users/{id} takes an id), a group
 * with GET /groups/{id} and its member pages. */
static int okta_get(struct entry **out, struct conn *c, enum obj_kind kind, const char *ref,
                    struct dm_err *err)
{
    struct http_response r = {0};
    struct find_ctx x = {ref, NULL, NULL, err};
    char *esc = okta_url_escape(ref), *path = NULL;
    json_t *g = NULL;
    int rc;

    *out = NULL;
    if (kind == OBJ_USER) {
        free(esc);
        return okta_lookup(out, c, ref, err);
    }
    if (esc == NULL || asprintf(&path, "/api/v1/groups/%s", esc) < 0) {
        free(esc);
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    free(esc);
    rc = http_perform_one(&r, c->http, "GET", path, NULL, 0, err);
    free(path);
    path = NULL;
    if (rc == DM_OK && r.status == 404) {
        rc = dm_err_set(err, DM_ENOTFOUND, "no group with id %s", ref);
    } else if (rc != DM_OK || r.status != 200) {
        rc = answer_err(err, &r, rc, err, "reading a group");
    } else {
        g = json_loadb(r.body.data, r.body.len, 0, NULL);
        x.e = json_is_object(g) ? entry_of(g, "name") : NULL;
        rc =
            x.e != NULL ? DM_OK : dm_err_set(err, DM_EINTERNAL, "group %s: unreadable answer", ref);
    }
    http_response_clear(&r);
    json_decref(g);
    if (rc == DM_OK &&
        asprintf(&path, "/api/v1/groups/%s/users?limit=%d", x.e->key, OKTA_MEMBERS_PAGE) >= 0) {
        rc = list_all(c, path, member_elem, &x, err);
        free(path);
    }
    if (rc != DM_OK) {
        entry_free(x.e);
        return rc;
    }
    *out = x.e;
    return DM_OK;
}

/* find() of many users: one search per chunk of logins (`profile.login eq "a" or ...`),
 * every chunk in flight together: a batch of 500 look-ups is a dozen requests, not 500.
 * The search index is eventually consistent (contract: lag under a second, DEPROVISIONED
 * users included): a user created a moment ago may be missing from the answer. It is then
 * planned as a create, which the target answers E0000001, and the create job resolves that
 * as before: an intent of ours (change.adopt, a create retried) adopts it, anyone else's
 * user is a collision, never a merge. */
#define OKTA_FIND_CHUNK 40      /* logins per search (the answer stays under a page of 200) */
#define OKTA_FIND_EXPR_MAX 2400 /* bytes of the expression before URL-encoding */

struct chunk_ctx {
    const char *const *names;
    size_t idx[OKTA_FIND_CHUNK]; /* indexes into names/out/rcs/errs */
    size_t n;
    struct entry **out;
    int *rcs;
    struct dm_err *errs;
};

static void on_chunk(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct chunk_ctx *k = p;
    json_t *arr = NULL, *u;
    size_t i;

    if (rc == DM_OK && r->status == 200) {
        arr = json_loadb(r->body.data, r->body.len, 0, NULL);
    }
    for (size_t m = 0; m < k->n; m++) {
        size_t x = k->idx[m];
        if (arr == NULL && rc == DM_OK && r->status == 200) {
            k->rcs[x] = dm_err_set(&k->errs[x], DM_EINTERNAL, "searching users: unreadable answer");
        } else if (arr == NULL) {
            k->rcs[x] = answer_err(&k->errs[x], r, rc, herr, "searching users");
        } else {
            k->rcs[x] = dm_err_set(&k->errs[x], DM_ENOTFOUND, "not at the target");
        }
        dm_err_dn(&k->errs[x], k->names[x]);
    }
    json_array_foreach (arr, i, u) {
        const char *login =
            json_string_value(json_object_get(json_object_get(u, "profile"), "login"));
        for (size_t m = 0; login != NULL && m < k->n; m++) {
            size_t x = k->idx[m];
            if (k->out[x] != NULL || strcasecmp(login, k->names[x]) != 0) {
                continue;
            }
            k->out[x] = entry_of(u, "login");
            memset(&k->errs[x], 0, sizeof(k->errs[x]));
            k->rcs[x] = k->out[x] != NULL
                            ? DM_OK
                            : dm_err_set(&k->errs[x], DM_ENOMEM, "user %s: out of memory", login);
        }
    }
    json_decref(arr);
}

/* Appends `profile.login eq "NAME"` (with " and \ escaped) to the expression; 0 when it
 * does not fit in cap. */
static int expr_add(char *expr, size_t *len, size_t cap, const char *name)
{
    size_t need = 24 + 2 * strlen(name);

    if (*len + need >= cap) {
        return 0;
    }
    *len += (size_t)snprintf(expr + *len, cap - *len, "%sprofile.login eq \"", *len ? " or " : "");
    for (const char *q = name; *q; q++) {
        if (*q == '"' || *q == '\\') {
            expr[(*len)++] = '\\';
        }
        expr[(*len)++] = *q;
    }
    expr[(*len)++] = '"';
    expr[*len] = '\0';
    return 1;
}

static void okta_find_many(struct conn *c, enum obj_kind kind, const char *const *names, size_t n,
                           struct entry **out, int *rcs, struct dm_err *errs)
{
    size_t nchunks = (n + OKTA_FIND_CHUNK - 1) / OKTA_FIND_CHUNK + 1, used = 0;
    struct chunk_ctx *ks = kind == OBJ_USER ? calloc(nchunks ? nchunks : 1, sizeof(*ks)) : NULL;
    struct dm_err e = {0};
    size_t i = 0;

    for (size_t x = 0; x < n; x++) {
        out[x] = NULL;
        memset(&errs[x], 0, sizeof(errs[x]));
        rcs[x] = DM_ENOTFOUND; /* nothing to look up (the caller skips it) */
    }
    if (kind != OBJ_USER || ks == NULL) { /* groups (few, each a search plus member pages) */
        for (size_t x = 0; x < n; x++) {
            if (names[x] != NULL && names[x][0] != '\0') {
                rcs[x] = kind == OBJ_USER ? dm_err_set(&errs[x], DM_ENOMEM, "out of memory")
                                          : okta_find(&out[x], c, kind, names[x], &errs[x]);
            }
        }
        free(ks);
        return;
    }
    while (i < n) {
        struct chunk_ctx *k = NULL;
        char expr[OKTA_FIND_EXPR_MAX];
        char *esc = NULL, *path = NULL;
        size_t len = 0;

        expr[0] = '\0';
        for (; i < n; i++) {
            if (names[i] == NULL || names[i][0] == '\0') {
                continue;
            }
            if (k == NULL) {
                if (used == nchunks) {
                    break; /* cannot happen: nchunks counts one chunk per OKTA_FIND_CHUNK */
                }
                k = &ks[used++];
                *k = (struct chunk_ctx){.names = names, .out = out, .rcs = rcs, .errs = errs};
            }
            if (k->n == OKTA_FIND_CHUNK || !expr_add(expr, &len, sizeof(expr), names[i])) {
                if (k->n == 0) { /* one name longer than the expression allows */
                    rcs[i] = dm_err_set(&errs[i], DM_EINVAL, "login too long to look up");
                    dm_err_dn(&errs[i], names[i]);
                    continue;
                }
                break;
            }
            rcs[i] = DM_EINTERNAL; /* until the answer says */
            k->idx[k->n++] = i;
        }
        if (k == NULL || k->n == 0) {
            continue;
        }
        esc = okta_url_escape(expr);
        if (esc == NULL || asprintf(&path, "/api/v1/users?limit=200&search=%s", esc) < 0) {
            path = NULL;
        }
        if (path == NULL || http_submit(c->http, "GET", path, NULL, 0, on_chunk, k, &e) != DM_OK) {
            if (path == NULL) {
                dm_err_set(&e, DM_ENOMEM, "out of memory");
            }
            for (size_t m = 0; m < k->n; m++) {
                errs[k->idx[m]] = e;
                rcs[k->idx[m]] = e.rc;
            }
            k->n = 0;
        }
        free(esc);
        free(path);
    }
    if (used > 0 && http_run(c->http, &e) != DM_OK) {
        for (size_t x = 0; x < n; x++) {
            if (rcs[x] == DM_EINTERNAL && out[x] == NULL && errs[x].rc == DM_OK) {
                errs[x] = e;
                rcs[x] = DM_EUNAVAIL;
            }
        }
    }
    free(ks);
}

/* get() of many users by id: every GET in flight together on the shared client (strongly
 * consistent: the journal's reference of an object dirmig wrote). */
struct many_ctx {
    struct entry **out;
    int *rc;
    struct dm_err *err;
    const char *name;
};

static void on_many(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct many_ctx *m = p;
    json_t *j = NULL;

    if (rc == DM_OK && r->status == 200) {
        j = json_loadb(r->body.data, r->body.len, 0, NULL);
        *m->out = json_is_object(j) ? entry_of(j, "login") : NULL;
        *m->rc = *m->out != NULL
                     ? DM_OK
                     : dm_err_set(m->err, DM_EINTERNAL, "user %s: unreadable answer", m->name);
    } else {
        *m->rc = answer_err(m->err, r, rc, herr, "reading a user");
        dm_err_dn(m->err, m->name);
    }
    json_decref(j);
}

static void users_get_many(struct conn *c, const char *const *names, size_t n, struct entry **out,
                           int *rcs, struct dm_err *errs)
{
    struct many_ctx *m = calloc(n ? n : 1, sizeof(*m));
    struct dm_err e = {0};

    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        memset(&errs[i], 0, sizeof(errs[i]));
        if (names[i] == NULL || names[i][0] == '\0') {
            rcs[i] = DM_ENOTFOUND; /* nothing to look up (the caller skips it) */
            continue;
        }
        if (m == NULL) {
            rcs[i] = dm_err_set(&errs[i], DM_ENOMEM, "out of memory");
            continue;
        }
        char *esc = okta_url_escape(names[i]), *path = NULL;
        m[i] = (struct many_ctx){&out[i], &rcs[i], &errs[i], names[i]};
        rcs[i] = DM_EINTERNAL;
        if (esc == NULL || asprintf(&path, "/api/v1/users/%s", esc) < 0) {
            rcs[i] = dm_err_set(&errs[i], DM_ENOMEM, "out of memory");
        } else if (http_submit(c->http, "GET", path, NULL, 0, on_many, &m[i], &errs[i]) != DM_OK) {
            rcs[i] = errs[i].rc;
        }
        free(esc);
        free(path);
    }
    if (m != NULL && http_run(c->http, &e) != DM_OK) {
        for (size_t i = 0; i < n; i++) {
            if (rcs[i] == DM_EINTERNAL && out[i] == NULL && errs[i].rc == DM_OK) {
                errs[i] = e;
                rcs[i] = DM_EUNAVAIL;
            }
        }
    }
    free(m);
}

/* get() of many: users by id all in flight at once (GET /users/{x} takes an id as well as a
 * login), groups one by one (each a GET and member pages). */
static void okta_get_many(struct conn *c, enum obj_kind kind, const char *const *refs, size_t n,
                          struct entry **out, int *rcs, struct dm_err *errs)
{
    if (kind == OBJ_USER) {
        users_get_many(c, refs, n, out, rcs, errs);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        memset(&errs[i], 0, sizeof(errs[i]));
        rcs[i] = okta_get(&out[i], c, kind, refs[i], &errs[i]);
    }
}

/* ---- apply: one job per change ---- */

enum job_stage {
    J_USER_CREATE,      /* POST /users */
    J_USER_FETCH,       /* GET /users/{login} after E0000001 */
    J_USER_UPDATE,      /* POST /users/{id} */
    J_USER_DEACT,       /* POST /users/{id}/lifecycle/deactivate */
    J_USER_STATE,       /* POST /users/{id}/lifecycle/{deactivate,suspend,activate,unsuspend} */
    J_USER_GROUPS,      /* GET /users/{id}/groups, then DELETE each membership (leave_groups) */
    J_USER_LEAVE,       /* DELETE /groups/{gid}/users/{id} in flight (leave_groups) */
    J_USER_FETCH_STATE, /* GET /users/{id} before a state step (DISABLE) */
    J_USER_BEFORE,      /* GET /users/{id} before an update (change.undo: the before image) */
    J_USER_DELETE,      /* DELETE /users/{id} (twice when active) */
    J_GROUP_GET,        /* GET /groups/{id} */
    J_GROUP_FIND,       /* GET /groups?search= (all pages) */
    J_GROUP_CREATE,     /* POST /groups */
    J_GROUP_PUT,        /* PUT /groups/{id} */
    J_GROUP_LIST,       /* GET /groups/{id}/users (all pages) */
    J_GROUP_MEMBERS     /* PUT/DELETE /groups/{id}/users/{uid} */
};

struct job {
    struct conn *c;
    const struct change *ch;
    struct apply_result *res;
    enum job_stage stage;
    char id[64];
    json_t *profile;   /* wanted profile */
    int changed;       /* something was written */
    int created;       /* created in this job */
    int done;          /* res is final */
    int deletes;       /* DELETE calls made */
    char **have;       /* group: current member ids, sorted once listed */
    size_t nhave, cap; /* */
    size_t inflight;   /* member requests outstanding */
    size_t member_failed;
    struct dm_err member_err; /* first member failure */
    unsigned create_attempts; /* users: attempts of the create that met E0000001 */
    enum apply_status after;  /* the status a lifecycle step finishes with */
    int create_dup;           /* groups: our create met E0000001 (a retried POST) */
    time_t started;           /* wall clock when the job started */
    int left_groups;          /* a disable's leave_groups step is done (or under way) */
    enum apply_status then;   /* ... and the status the job finishes with after it */
    /* change.undo (connector.h): the images being made */
    struct entry *ubefore; /* the user's or group's properties before the change */
    struct entry *left;    /* CONN_UNDO_GROUPS: the groups the user left */
    json_t *gprof;         /* groups: the profile as read before the change */
    char prior[16];        /* users: the account state before ("enabled", "disabled") */
    /* settling (job_settle()) */
    struct job *prev, *next; /* conn.jobs */
    int bg;                  /* started by apply_start(): background requests */
    conn_done_fn done_fn;    /* NULL: nobody to tell (apply(), or abandoned) */
    void *done_payload;
    struct apply_result lost; /* res of an abandoned job */
};

/* A create met E0000001: the user is ours when an earlier attempt of this very request
 * created it and its answer was lost: the user was created after this job started (server
 * time) and either the request was retried by us, or its
 * profile is exactly the one we sent (libcurl resends a request silently when a reused
 * connection turns out dead; the caller looked the login up just before and found nothing).
 * A login that existed before would have answered the first attempt with E0000001. */
static int created_by_retry(const struct job *j, const char *created, int same)
{
    struct tm tm;
    time_t t;

    if ((j->create_attempts < 2 && !same) || created == NULL) {
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    if (strptime(created, "%Y-%m-%dT%H:%M:%S", &tm) == NULL) {
        return 0;
    }
    t = timegm(&tm);
    if (t == (time_t)-1) {
        return 0;
    }
    /* our own retry: allow the server's clock a minute behind ours; without a retry of ours
     * no allowance, so a user made just before this job is never taken for ours (if the
     * server's clock is behind, our own user is reported as existing instead, and the
     * journal's intent adopts it on the next run) */
    return j->create_attempts >= 2 ? t >= j->started - 60 : t >= j->started;
}

/* ---- undo images (connector.h, apply_result.before / .after) ---- */

/* The account state a user status means (as entry_of() says it). */
static const char *state_word(const char *status)
{
    return status != NULL &&
                   (strcmp(status, "SUSPENDED") == 0 || strcmp(status, "DEPROVISIONED") == 0)
               ? "disabled"
               : "enabled";
}

/* Copies the values of attribute name of from (absent: none) into to as name. */
static int copy_attr(struct entry *to, const char *name, const struct entry *from)
{
    const struct dm_attr *a = from != NULL ? entry_attr(from, name) : NULL;
    int rc = entry_attr_add(to, name) != NULL ? DM_OK : DM_ENOMEM;

    for (size_t i = 0; a != NULL && i < a->nvals && rc == DM_OK; i++) {
        rc = entry_add_value(to, name, a->vals[i].data, a->vals[i].len);
    }
    return rc;
}

/* The before image of a user: the properties the change names, as obj (the user as read)
 * has them, and its account state. */
static void undo_user_before(struct job *j, json_t *obj)
{
    struct entry *have = entry_of(obj, "login"), *b = entry_new(j->id);
    const char *st = json_string_value(json_object_get(obj, "status"));
    int rc = have != NULL && b != NULL ? DM_OK : DM_ENOMEM;

    for (size_t i = 0; rc == DM_OK && i < j->ch->entry->nattrs; i++) {
        const char *name = j->ch->entry->attrs[i].name;
        if (strcasecmp(name, "member") != 0) {
            rc = copy_attr(b, name, have);
        }
    }
    snprintf(j->prior, sizeof(j->prior), "%s", state_word(st));
    if (rc == DM_OK) {
        rc = entry_add_str(b, CONN_UNDO_STATE, j->prior);
    }
    entry_free(have);
    if (rc != DM_OK) {
        entry_free(b);
        log_warn("user %s: no undo image (out of memory)", j->ch->entry->dn);
        return;
    }
    entry_free(j->ubefore);
    j->ubefore = b;
}

/* The values of a profile property as an attribute of e (strings; arrays of strings). */
static int prop_attr(struct entry *e, const char *name, json_t *v)
{
    size_t i;
    json_t *x;
    int rc = entry_attr_add(e, name) != NULL ? DM_OK : DM_ENOMEM;

    if (json_is_string(v)) {
        return entry_add_value(e, name, json_string_value(v), json_string_length(v));
    }
    json_array_foreach (v, i, x) {
        if (rc == DM_OK && json_is_string(x)) {
            rc = entry_add_value(e, name, json_string_value(x), json_string_length(x));
        }
    }
    return rc;
}

/* A group's before image (before its members are made equal): the profile properties the
 * change names, as read, and the member ids listed. */
static void undo_group_before(struct job *j)
{
    struct entry *b = entry_new(j->id);
    int rc = b != NULL ? DM_OK : DM_ENOMEM;

    for (size_t i = 0; rc == DM_OK && i < j->ch->entry->nattrs; i++) {
        const char *name = j->ch->entry->attrs[i].name;
        if (strcasecmp(name, "member") != 0) {
            rc = prop_attr(b, name, json_object_get(j->gprof, name));
        }
    }
    if (rc == DM_OK && entry_attr_add(b, "member") == NULL) {
        rc = DM_ENOMEM;
    }
    for (size_t k = 0; rc == DM_OK && k < j->nhave; k++) {
        rc = entry_add_str(b, "member", j->have[k]);
    }
    if (rc != DM_OK) {
        entry_free(b);
        return;
    }
    entry_free(j->ubefore);
    j->ubefore = b;
}

/* The after image: every attribute of the before image (or, for a create, of the change)
 * as the change left it. */
static struct entry *undo_after(struct job *j, int created)
{
    const struct change *ch = j->ch;
    const struct entry *names = created ? ch->entry : j->ubefore;
    struct entry *a = entry_new(j->id);
    int merge = 0, rc = a != NULL ? DM_OK : DM_ENOMEM;

    for (size_t i = 0; ch->merge != NULL && ch->merge[i] != NULL; i++) {
        merge |= strcasecmp(ch->merge[i], "member") == 0;
    }
    for (size_t i = 0; rc == DM_OK && names != NULL && i < names->nattrs; i++) {
        const char *name = names->attrs[i].name;
        if (strcasecmp(name, CONN_UNDO_STATE) == 0 || strcasecmp(name, CONN_UNDO_GROUPS) == 0 ||
            (ch->kind == OBJ_USER && strcasecmp(name, "member") == 0)) {
            continue;
        }
        rc = copy_attr(a, name, ch->entry);
        if (rc == DM_OK && merge && !created && strcasecmp(name, "member") == 0) {
            const struct dm_attr *had = entry_attr(j->ubefore, "member"), *w;
            for (size_t k = 0; had != NULL && k < had->nvals && rc == DM_OK; k++) {
                int dup = 0;
                w = entry_attr(a, "member");
                for (size_t m = 0; w != NULL && m < w->nvals && !dup; m++) {
                    dup =
                        strcmp((const char *)w->vals[m].data, (const char *)had->vals[k].data) == 0;
                }
                if (!dup) {
                    rc = entry_add_value(a, "member", had->vals[k].data, had->vals[k].len);
                }
            }
        }
    }
    if (rc == DM_OK && ch->kind == OBJ_USER) {
        const char *st = ch->op == CHANGE_DISABLE || ch->state == CHANGE_STATE_DISABLE ? "disabled"
                         : ch->state == CHANGE_STATE_ENABLE || created                 ? "enabled"
                         : j->prior[0]                                                 ? j->prior
                                                                                       : "enabled";
        rc = entry_add_str(a, CONN_UNDO_STATE, st);
    }
    if (rc != DM_OK) {
        entry_free(a);
        return NULL;
    }
    return a;
}

/* Hands the images to the result when the change was made (connector.h), else drops them. */
static void undo_finish(struct job *j, enum apply_status st)
{
    struct apply_result *r = j->res;
    const struct dm_attr *g = j->left != NULL ? entry_attr(j->left, CONN_UNDO_GROUPS) : NULL;

    if (j->ch->undo && j->id[0] != '\0' &&
        (st == APPLY_CREATED || st == APPLY_UPDATED || st == APPLY_DISABLED ||
         (st == APPLY_UNCHANGED && g != NULL))) {
        int created = st == APPLY_CREATED && j->ubefore == NULL;
        if (!created && j->ubefore == NULL) {
            j->ubefore = entry_new(j->id); /* only groups were left */
        }
        for (size_t k = 0; g != NULL && j->ubefore != NULL && k < g->nvals; k++) {
            if (entry_add_value(j->ubefore, CONN_UNDO_GROUPS, g->vals[k].data, g->vals[k].len) !=
                DM_OK) {
                break;
            }
        }
        r->after = undo_after(j, created);
        r->before = created ? NULL : j->ubefore;
        if (!created) {
            j->ubefore = NULL;
        }
    }
    entry_free(j->ubefore);
    j->ubefore = NULL;
    entry_free(j->left);
    j->left = NULL;
}

struct member_req {
    struct job *j;
    char uid[64];
    char gid[64]; /* leave_groups: the group left */
    int add;
};

static void undo_finish(struct job *j, enum apply_status st);

static void job_finish(struct job *j, enum apply_status st)
{
    undo_finish(j, st);
    j->res->status = st;
    if (j->id[0]) {
        snprintf(j->res->target_id, sizeof(j->res->target_id), "%s", j->id);
    }
    j->done = 1;
}

static void job_fail_err(struct job *j, const struct dm_err *e)
{
    j->res->err = *e;
    dm_err_dn(&j->res->err, j->ch->entry->dn);
    job_finish(j, APPLY_FAILED);
}

/* A create found the name taken by an object that is not ours: nothing is written, the
 * caller's collision policy decides (never matched silently). */
static void job_exists(struct job *j, const char *what)
{
    dm_err_clear(&j->res->err);
    dm_err_set(&j->res->err, DM_EEXISTS,
               "%s already exists at the target and was not created "
               "by dirmig",
               what);
    dm_err_dn(&j->res->err, j->ch->entry->dn);
    j->res->created_with_hook = 0;
    job_finish(j, APPLY_EXISTS);
}

static void job_fail(struct job *j, const struct http_response *r, int rc,
                     const struct dm_err *herr, const char *what)
{
    struct dm_err e = {0};

    answer_err(&e, r, rc, herr, what);
    job_fail_err(j, &e);
}

static void job_submit(struct job *j, const char *method, const char *path, const char *body,
                       size_t len);
static void on_job(const struct http_response *r, int rc, const struct dm_err *herr, void *p);

static int id_from(struct job *j, const struct http_response *r)
{
    json_t *o = json_loadb(r->body.data, r->body.len, 0, NULL);
    const char *id = json_string_value(json_object_get(o, "id"));
    int ok = id != NULL && strlen(id) < sizeof(j->id);

    if (ok) {
        snprintf(j->id, sizeof(j->id), "%s", id);
    }
    json_decref(o);
    return ok;
}

/* The credentials object for a new user: the imported hash or the hook. Sets *hook. A lock
 * marker or placeholder ("*", "!!", "", schema/cred.h) gives no credentials at all and sets
 * *locked: the user is created STAGED without a password (never the hook: the source would
 * verify "*" against "*"). On a malformed hash value the job fails (for this user only).
 * Secret: wiped by the caller. */
static json_t *credentials_of(struct job *j, int *hook, int *locked)
{
    const struct change *ch = j->ch;
    struct cred *cr = NULL;
    json_t *hash = NULL, *pw;
    enum cred_outcome oc = CRED_HOOK;
    struct dm_err e = {0};

    *hook = 1;
    *locked = 0;
    if (ch->password != NULL && ch->hook_only) {
        oc = cred_is_locked(ch->password, ch->password_len) ? CRED_LOCKED : CRED_HOOK;
    } else if (ch->password != NULL) {
        if (cred_parse(&cr, ch->password, ch->password_len, &e) != DM_OK ||
            okta_cred_hash(&hash, &oc, NULL, cr, &e) != DM_OK) {
            cred_free(cr);
            job_fail_err(j, &e);
            return NULL;
        }
        cred_free(cr);
    }
    if (oc == CRED_LOCKED) {
        *hook = 0;
        *locked = 1;
        pw = json_object();
        if (pw == NULL) {
            dm_err_set(&e, DM_ENOMEM, "out of memory");
            job_fail_err(j, &e);
        }
        return pw;
    }
    if (oc == CRED_IMPORT && hash != NULL) {
        *hook = 0;
        pw = json_pack("{s:{s:o}}", "password", "hash", hash);
    } else {
        json_decref(hash);
        pw = json_pack("{s:{s:{s:s}}}", "password", "hook", "type", "default");
    }
    if (pw == NULL) {
        dm_err_set(&e, DM_ENOMEM, "out of memory");
        job_fail_err(j, &e);
    }
    return pw;
}

/* Serialises o, submits it and wipes the text (it may hold a hash). */
static void job_submit_json(struct job *j, const char *method, const char *path, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);

    if (s == NULL) {
        struct dm_err e = {0};
        dm_err_set(&e, DM_ENOMEM, "out of memory");
        job_fail_err(j, &e);
        return;
    }
    job_submit(j, method, path, s, strlen(s));
    explicit_bzero(s, strlen(s));
    free(s);
}

static int suspends(const struct conn *c)
{
    return c->cfg.disable_lifecycle != NULL && strcmp(c->cfg.disable_lifecycle, "suspend") == 0;
}

static void user_create(struct job *j)
{
    int hook = 1, locked = 0;
    json_t *cred = credentials_of(j, &hook, &locked), *body;
    char path[64];

    if (cred == NULL) {
        return;
    }
    /* A locked user: no credentials object at all, and STAGED (Okta cannot sign in a
     * STAGED user; an admin activates it with a new password if it is ever needed). */
    body = locked ? json_pack("{s:O}", "profile", j->profile)
                  : json_pack("{s:O,s:O}", "profile", j->profile, "credentials", cred);
    json_decref(cred);
    if (body == NULL) {
        struct dm_err e = {0};
        dm_err_set(&e, DM_ENOMEM, "out of memory");
        job_fail_err(j, &e);
        return;
    }
    j->res->created_with_hook = hook;
    j->stage = J_USER_CREATE;
    /* a user created to be deactivated right away is never activated first */
    snprintf(path, sizeof(path), "/api/v1/users?activate=%s",
             j->c->cfg.activate && !locked &&
                     !(j->ch->state == CHANGE_STATE_DISABLE && !suspends(j->c))
                 ? "true"
                 : "false");
    job_submit_json(j, "POST", path, body);
    json_decref(body);
}

/* The lifecycle step that takes a user in status st to the state the change asks for, or
 * NULL when it is there already. */
static const char *state_step(const struct job *j, const char *st, int disable)
{
    int off = st != NULL && (strcmp(st, "SUSPENDED") == 0 || strcmp(st, "DEPROVISIONED") == 0);

    if (disable) {
        if (off) {
            return NULL;
        }
        /* only an active user can be suspended; one never activated is deactivated */
        return suspends(j->c) && st != NULL && strcmp(st, "ACTIVE") == 0 ? "suspend" : "deactivate";
    }
    if (st != NULL && strcmp(st, "SUSPENDED") == 0) {
        return "unsuspend";
    }
    return st != NULL && strcmp(st, "DEPROVISIONED") == 0 ? "activate" : NULL;
}

static void leave_groups(struct job *j, enum apply_status then);

/* Moves the user to the state the change asks for (after a create or update whose answer
 * said status st), then finishes with `then`; finishes at once when nothing is to do. */
static void user_state(struct job *j, const char *st, enum apply_status then)
{
    const char *step;
    char path[160];

    if (j->ch->op != CHANGE_DISABLE && j->ch->state == CHANGE_STATE_KEEP) {
        job_finish(j, then);
        return;
    }
    step = state_step(j, st, j->ch->op == CHANGE_DISABLE || j->ch->state == CHANGE_STATE_DISABLE);
    if (step != NULL && j->ch->op == CHANGE_MODIFY && j->ch->state == CHANGE_STATE_DISABLE &&
        j->ch->leave_groups && !j->left_groups) {
        /* a user disabled in the source leaves its groups first, then is disabled */
        leave_groups(j, then);
        return;
    }
    if (step == NULL) {
        job_finish(j, j->ch->op == CHANGE_DISABLE ? APPLY_UNCHANGED : then);
        return;
    }
    j->after = then == APPLY_UNCHANGED ? APPLY_UPDATED : then;
    j->stage = J_USER_STATE;
    snprintf(path, sizeof(path), "/api/v1/users/%s/lifecycle/%s%s", j->id, step,
             strcmp(step, "activate") == 0 || strcmp(step, "deactivate") == 0 ? "?sendEmail=false"
                                                                              : "");
    job_submit(j, "POST", path, "", 0);
}

/* The status in a user object answer, copied into buf ("" when absent). */
static const char *status_of(const struct http_response *r, char *buf, size_t len)
{
    json_t *o = json_loadb(r->body.data, r->body.len, 0, NULL);
    const char *st = json_string_value(json_object_get(o, "status"));

    snprintf(buf, len, "%s", st != NULL ? st : "");
    json_decref(o);
    return buf;
}

static void user_update(struct job *j)
{
    json_t *body = json_pack("{s:O}", "profile", j->profile);
    char path[96];

    j->stage = J_USER_UPDATE;
    snprintf(path, sizeof(path), "/api/v1/users/%s", j->id);
    if (body != NULL) {
        job_submit_json(j, "POST", path, body);
    }
    json_decref(body);
}

static void user_fetch(struct job *j)
{
    char *esc = okta_url_escape(j->ch->entry->dn), *path = NULL;

    j->stage = J_USER_FETCH;
    if (esc != NULL && asprintf(&path, "/api/v1/users/%s", esc) >= 0) {
        job_submit(j, "GET", path, NULL, 0);
    }
    free(esc);
    free(path);
}

static void user_lifecycle(struct job *j, enum job_stage st)
{
    char path[128];

    j->stage = st;
    if (st == J_USER_DEACT) {
        snprintf(path, sizeof(path), "/api/v1/users/%s/lifecycle/deactivate?sendEmail=false",
                 j->id);
        job_submit(j, "POST", path, "", 0);
    } else {
        snprintf(path, sizeof(path), "/api/v1/users/%s", j->id);
        j->deletes++;
        job_submit(j, "DELETE", path, NULL, 0);
    }
}

static void group_list(struct job *j, const char *url)
{
    char path[128];

    j->stage = J_GROUP_LIST;
    if (url == NULL) {
        snprintf(path, sizeof(path), "/api/v1/groups/%s/users?limit=%d", j->id, OKTA_MEMBERS_PAGE);
        url = path;
    }
    job_submit(j, "GET", url, NULL, 0);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void on_member(const struct http_response *r, int rc, const struct dm_err *herr, void *p);
static void on_leave(const struct http_response *r, int rc, const struct dm_err *herr, void *p);
static void fetch_state(struct job *j);

static void member_submit(struct job *j, const char *uid, int add)
{
    struct member_req *m = calloc(1, sizeof(*m));
    char path[192];
    struct dm_err e = {0};

    if (m == NULL || strlen(uid) >= sizeof(m->uid)) {
        free(m);
        j->member_failed++;
        return;
    }
    m->j = j;
    m->add = add;
    snprintf(m->uid, sizeof(m->uid), "%s", uid);
    snprintf(path, sizeof(path), "/api/v1/groups/%s/users/%s", j->id, uid);
    if (http_submit(j->c->http, add ? "PUT" : "DELETE", path, "", 0, on_member, m, &e) != DM_OK) {
        if (j->member_failed++ == 0) {
            j->member_err = e;
        }
        free(m);
        return;
    }
    j->inflight++;
    j->changed = 1;
}

static void group_members_done(struct job *j)
{
    if (j->inflight > 0) {
        return;
    }
    if (j->member_failed > 0) {
        struct dm_err e = j->member_err;
        char msg[sizeof(e.msg)];
        snprintf(msg, sizeof(msg), "%zu membership change(s) failed; first: %.180s",
                 j->member_failed, j->member_err.msg);
        memcpy(e.msg, msg, sizeof(e.msg));
        if (e.rc == DM_OK) {
            e.rc = DM_EINTERNAL;
        }
        job_fail_err(j, &e);
        return;
    }
    job_finish(j, j->created ? APPLY_CREATED : j->changed ? APPLY_UPDATED : APPLY_UNCHANGED);
}

/* Compares the wanted member ids with the listed ones and sends the differences. */
static void group_sync_members(struct job *j)
{
    const struct dm_attr *a = entry_attr(j->ch->entry, "member");
    size_t nwant = a != NULL ? a->nvals : 0;
    char **want = nwant ? calloc(nwant, sizeof(char *)) : NULL;
    int merge = 0; /* "member" in change.merge: members are added, none removed */

    for (size_t i = 0; j->ch->merge != NULL && j->ch->merge[i] != NULL; i++) {
        merge |= strcasecmp(j->ch->merge[i], "member") == 0;
    }

    j->stage = J_GROUP_MEMBERS;
    if (j->ch->undo && !j->created) {
        undo_group_before(j);
    }
    if (nwant > 0 && want == NULL) {
        struct dm_err e = {0};
        dm_err_set(&e, DM_ENOMEM, "out of memory");
        job_fail_err(j, &e);
        return;
    }
    for (size_t i = 0; i < nwant; i++) {
        want[i] = (char *)a->vals[i].data;
    }
    if (nwant > 1) {
        qsort(want, nwant, sizeof(char *), str_cmp);
    }
    if (j->nhave > 1) {
        qsort(j->have, j->nhave, sizeof(char *), str_cmp);
    }
    /* merge walk: in want only -> PUT, in have only -> DELETE */
    for (size_t i = 0, k = 0; i < nwant || k < j->nhave;) {
        int c = i == nwant ? 1 : k == j->nhave ? -1 : strcmp(want[i], j->have[k]);
        if (c < 0) {
            if (i == 0 || strcmp(want[i], want[i - 1]) != 0) {
                member_submit(j, want[i], 1);
            }
            i++;
        } else if (c > 0) {
            if (!merge) {
                member_submit(j, j->have[k], 0);
            }
            k++;
        } else {
            i++;
            k++;
        }
    }
    free(want);
    group_members_done(j);
}

static void group_put(struct job *j)
{
    json_t *body = json_pack("{s:O}", "profile", j->profile);
    char path[96];

    j->stage = J_GROUP_PUT;
    snprintf(path, sizeof(path), "/api/v1/groups/%s", j->id);
    if (body != NULL) {
        job_submit_json(j, "PUT", path, body);
    }
    json_decref(body);
}

/* A group object was read (by id or by name): fix its profile, then its members. */
static void group_found(struct job *j, json_t *g)
{
    if (j->ch->undo && j->gprof == NULL) {
        j->gprof = json_incref(json_object_get(g, "profile"));
    }
    if (!profile_same(j->profile, json_object_get(g, "profile"))) {
        group_put(j);
        return;
    }
    group_list(j, NULL);
}

static void group_find(struct job *j, const char *url)
{
    char *path = url ? NULL : group_search_path(j->ch->entry->dn);

    j->stage = J_GROUP_FIND;
    if (url == NULL && path == NULL) {
        struct dm_err e = {0};
        dm_err_set(&e, DM_ENOMEM, "out of memory");
        job_fail_err(j, &e);
        return;
    }
    job_submit(j, "GET", url ? url : path, NULL, 0);
    free(path);
}

static void group_create(struct job *j)
{
    json_t *body = json_pack("{s:O}", "profile", j->profile);

    j->stage = J_GROUP_CREATE;
    if (body != NULL) {
        job_submit_json(j, "POST", "/api/v1/groups", body);
    }
    json_decref(body);
}

static void job_start(struct job *j)
{
    const struct change *ch = j->ch;
    char path[96];

    j->started = time(NULL);
    if (ch->target_id != NULL && ch->target_id[0] && strlen(ch->target_id) < sizeof(j->id)) {
        snprintf(j->id, sizeof(j->id), "%s", ch->target_id);
    }
    if (ch->op == CHANGE_DELETE || ch->op == CHANGE_DISABLE) {
        if (j->id[0] == '\0') {
            struct dm_err e = {0};
            dm_err_set(&e, DM_EINVAL, "no target id known for this object");
            job_fail_err(j, &e);
        } else if (ch->kind == OBJ_GROUP && ch->op == CHANGE_DISABLE) {
            struct dm_err e = {0};
            dm_err_set(&e, DM_EINVAL, "groups cannot be deactivated, only deleted");
            job_fail_err(j, &e);
        } else if (ch->kind == OBJ_GROUP) {
            j->stage = J_USER_DELETE;
            snprintf(path, sizeof(path), "/api/v1/groups/%s", j->id);
            j->deletes++;
            job_submit(j, "DELETE", path, NULL, 0);
        } else if (ch->op == CHANGE_DISABLE && ch->leave_groups) {
            leave_groups(j, APPLY_DISABLED);
        } else if (ch->op == CHANGE_DISABLE) {
            fetch_state(j);
        } else {
            user_lifecycle(j, J_USER_DELETE); /* a deleted user leaves its groups */
        }
        return;
    }
    j->profile = profile_of(ch->entry);
    if (j->profile == NULL) {
        struct dm_err e = {0};
        dm_err_set(&e, DM_ENOMEM, "out of memory");
        job_fail_err(j, &e);
        return;
    }
    if (ch->kind == OBJ_USER) {
        if (j->id[0] && ch->undo) {
            j->stage = J_USER_BEFORE; /* the before image first */
            snprintf(path, sizeof(path), "/api/v1/users/%s", j->id);
            job_submit(j, "GET", path, NULL, 0);
        } else if (j->id[0]) {
            user_update(j);
        } else {
            user_create(j);
        }
    } else if (j->id[0]) {
        j->stage = J_GROUP_GET;
        snprintf(path, sizeof(path), "/api/v1/groups/%s", j->id);
        job_submit(j, "GET", path, NULL, 0);
    } else {
        group_find(j, NULL);
    }
}

static void job_submit(struct job *j, const char *method, const char *path, const char *body,
                       size_t len)
{
    struct dm_err e = {0};

    if (path == NULL) {
        dm_err_set(&e, DM_ENOMEM, "out of memory");
        job_fail_err(j, &e);
        return;
    }
    if (http_submit(j->c->http, method, path, body, len, on_job, j, &e) != DM_OK) {
        job_fail_err(j, &e);
    }
}

/* Reads the user again: its status decides the lifecycle step (DISABLE). */
/* Lists the user's groups and leaves each (J_USER_GROUPS, J_USER_LEAVE), then reads the
 * user's state and moves it on (J_USER_FETCH_STATE), finishing with then. */
static void leave_groups(struct job *j, enum apply_status then)
{
    char path[96];

    j->left_groups = 1;
    j->then = then;
    j->stage = J_USER_GROUPS;
    snprintf(path, sizeof(path), "/api/v1/users/%s/groups", j->id);
    job_submit(j, "GET", path, NULL, 0);
}

static void fetch_state(struct job *j)
{
    char path[96];

    j->stage = J_USER_FETCH_STATE;
    snprintf(path, sizeof(path), "/api/v1/users/%s", j->id);
    job_submit(j, "GET", path, NULL, 0);
}

/* One membership of a leaver removed (404: gone already, as wanted). When the last answer
 * is in, the user is disabled. A failure is reported and the user disabled anyway. */
static void leave_answer(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct member_req *m = p;
    struct job *j = m->j;

    j->inflight--;
    if (rc != DM_OK || (r->status != 204 && r->status != 200 && r->status != 404)) {
        struct dm_err e = {0};
        answer_err(&e, r, rc, herr, "leaving a group");
        log_warn("user %s stays in a group: %s", j->ch->entry->dn, e.msg);
    } else if (r->status != 404 && j->ch->undo) {
        char note[80];
        snprintf(note, sizeof(note), "member %s", m->gid);
        if ((j->left == NULL && (j->left = entry_new(j->id)) == NULL) ||
            entry_add_str(j->left, CONN_UNDO_GROUPS, note) != DM_OK) {
            log_warn("user %s: the groups it left are not recorded (out of memory)",
                     j->ch->entry->dn);
        }
    }
    free(m);
    if (j->inflight == 0) {
        fetch_state(j);
    }
}

static void member_answer(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct member_req *m = p;
    struct job *j = m->j;

    j->inflight--;
    /* A member removed meanwhile (404 on DELETE) is what we wanted anyway. */
    if (rc != DM_OK || (r->status != 204 && r->status != 200 && !(r->status == 404 && !m->add))) {
        struct dm_err e = {0};
        answer_err(&e, r, rc, herr, m->add ? "adding a member" : "removing a member");
        if (j->member_failed++ == 0) {
            j->member_err = e;
        }
        log_warn("group %s: %s user %s failed: %s", j->ch->entry->dn,
                 m->add ? "adding" : "removing", m->uid, e.msg);
    }
    free(m);
    group_members_done(j);
}

static int have_add(struct job *j, const char *id)
{
    if (j->nhave == j->cap) {
        size_t n = j->cap ? j->cap * 2 : 256;
        char **g = realloc(j->have, n * sizeof(char *));
        if (g == NULL) {
            return DM_ENOMEM;
        }
        j->have = g;
        j->cap = n;
    }
    j->have[j->nhave] = strdup(id);
    return j->have[j->nhave++] != NULL ? DM_OK : DM_ENOMEM;
}

static void job_answer(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct job *j = p;
    json_t *hold = NULL, *x;
    const char *code;
    size_t i;

    if (rc != DM_OK) {
        job_fail(j, r, rc, herr, "request");
        return;
    }
    switch (j->stage) {
    case J_USER_CREATE:
        if (r->status == 200 && id_from(j, r)) {
            char st[32];
            user_state(j, status_of(r, st, sizeof(st)), APPLY_CREATED);
            break;
        }
        code = error_code(r, &hold);
        if (r->status == 400 && code != NULL && strcmp(code, "E0000001") == 0 &&
            strstr(r->body.data, "already exists") != NULL) {
            /* The login exists: our own earlier create (a lost answer) or a user made
             * outside dirmig. Match it by login; never create a duplicate. */
            j->create_attempts = r->attempts;
            user_fetch(j);
            break;
        }
        j->res->created_with_hook = 0;
        job_fail(j, r, rc, herr, "creating the user");
        break;
    case J_USER_FETCH:
        if (r->status == 200 && id_from(j, r)) {
            json_t *u = json_loadb(r->body.data, r->body.len, 0, NULL);
            int same = profile_same(j->profile, json_object_get(u, "profile"));
            int ours = created_by_retry(j, json_string_value(json_object_get(u, "created")), same);
            if (j->ch->undo && !same && u != NULL) {
                undo_user_before(j, u); /* adopted and updated: what it was before */
            }
            json_decref(u);
            if (!ours && !j->ch->adopt) {
                job_exists(j, "a user with this login");
                break;
            }
            if (!ours) {
                j->res->created_with_hook = 0;
            }
            /* ours: the create went through and its answer was lost; it is still this job's
             * create (counted as created), and the user still gets the state asked for */
            j->created = ours;
            if (same) {
                char st[32];
                user_state(j, status_of(r, st, sizeof(st)), ours ? APPLY_CREATED : APPLY_UNCHANGED);
            } else {
                user_update(j);
            }
            break;
        }
        job_fail(j, r, rc, herr, "looking up an existing login");
        break;
    case J_USER_UPDATE:
        if (r->status == 200) {
            char st[32];
            user_state(j, status_of(r, st, sizeof(st)), j->created ? APPLY_CREATED : APPLY_UPDATED);
        } else if (r->status == 404) {
            /* Deleted at the target since it was planned: the next run sees it missing and
             * creates it whole (an update never creates). */
            struct dm_err e = {0};
            dm_err_set(&e, DM_ENOTFOUND, "updating the user: it is no longer at the target");
            job_fail_err(j, &e);
        } else {
            job_fail(j, r, rc, herr, "updating the user");
        }
        break;
    case J_USER_DEACT:
        if (r->status == 200 || r->status == 204) {
            job_finish(j, APPLY_DISABLED);
        } else {
            job_fail(j, r, rc, herr, "deactivating the user");
        }
        break;
    case J_USER_STATE:
        if (r->status == 200 || r->status == 204) {
            job_finish(j, j->ch->op == CHANGE_DISABLE ? APPLY_DISABLED : j->after);
        } else {
            job_fail(j, r, rc, herr, "changing the user's lifecycle state");
        }
        break;
    case J_USER_BEFORE:
        if (r->status == 200) {
            json_t *u = json_loadb(r->body.data, r->body.len, 0, NULL);
            if (u != NULL) {
                undo_user_before(j, u);
            }
            json_decref(u);
            user_update(j);
        } else if (r->status == 404) {
            struct dm_err e = {0};
            dm_err_set(&e, DM_ENOTFOUND, "updating the user: it is no longer at the target");
            job_fail_err(j, &e);
        } else {
            job_fail(j, r, rc, herr, "reading the user");
        }
        break;
    case J_USER_FETCH_STATE:
        if (r->status == 200 && j->ch->undo && j->ubefore == NULL) {
            char st[32];
            j->ubefore = entry_new(j->id);
            snprintf(j->prior, sizeof(j->prior), "%s", state_word(status_of(r, st, sizeof(st))));
            if (j->ubefore != NULL &&
                entry_add_str(j->ubefore, CONN_UNDO_STATE, j->prior) != DM_OK) {
                entry_free(j->ubefore);
                j->ubefore = NULL;
            }
        }
        if (r->status == 200) {
            char st[32];
            user_state(j, status_of(r, st, sizeof(st)), j->left_groups ? j->then : APPLY_DISABLED);
        } else {
            job_fail(j, r, rc, herr, "reading the user");
        }
        break;
    case J_USER_GROUPS:
        if (r->status != 200) {
            job_fail(j, r, rc, herr, "listing the user's groups");
            break;
        }
        hold = json_loadb(r->body.data, r->body.len, 0, NULL);
        j->stage = J_USER_LEAVE;
        json_array_foreach (hold, i, x) {
            const char *gid = json_string_value(json_object_get(x, "id"));
            const char *type = json_string_value(json_object_get(x, "type"));
            char path[192];
            struct member_req *m = calloc(1, sizeof(*m));
            struct dm_err e = {0};
            if (gid == NULL || m == NULL || strlen(j->id) >= sizeof(m->uid) ||
                (type != NULL && strcmp(type, "OKTA_GROUP") != 0)) {
                free(m); /* BUILT_IN (Everyone) and APP_GROUP memberships are not the API's */
                continue;
            }
            m->j = j;
            m->add = 0;
            snprintf(m->uid, sizeof(m->uid), "%s", j->id);
            snprintf(m->gid, sizeof(m->gid), "%s", gid);
            snprintf(path, sizeof(path), "/api/v1/groups/%s/users/%s", gid, j->id);
            if (http_submit(j->c->http, "DELETE", path, "", 0, on_leave, m, &e) != DM_OK) {
                free(m);
                continue;
            }
            j->inflight++;
        }
        if (j->inflight == 0) {
            fetch_state(j);
        }
        break;
    case J_USER_LEAVE:
        break;
    case J_USER_DELETE:
        if (r->status == 404 || (r->status == 204 && j->ch->kind == OBJ_GROUP)) {
            job_finish(j, APPLY_DELETED);
        } else if (r->status == 204 && j->deletes < 2) {
            user_lifecycle(j, J_USER_DELETE); /* the first DELETE only deactivated */
        } else if (r->status == 204) {
            job_finish(j, APPLY_DELETED);
        } else {
            job_fail(j, r, rc, herr, "deleting");
        }
        break;
    case J_GROUP_GET:
        if (r->status == 200) {
            json_t *g = json_loadb(r->body.data, r->body.len, 0, NULL);
            group_found(j, g);
            json_decref(g);
        } else if (r->status == 404) {
            j->id[0] = '\0';
            group_find(j, NULL);
        } else {
            job_fail(j, r, rc, herr, "reading the group");
        }
        break;
    case J_GROUP_FIND:
        if (r->status != 200) {
            job_fail(j, r, rc, herr, "searching the group by name");
            break;
        }
        hold = json_loadb(r->body.data, r->body.len, 0, NULL);
        json_array_foreach (hold, i, x) {
            const char *n =
                json_string_value(json_object_get(json_object_get(x, "profile"), "name"));
            const char *id = json_string_value(json_object_get(x, "id"));
            if (n != NULL && id != NULL && strcasecmp(n, j->ch->entry->dn) == 0 &&
                strlen(id) < sizeof(j->id)) {
                if (!j->ch->adopt && !j->create_dup) {
                    job_exists(j, "a group with this name");
                    break;
                }
                snprintf(j->id, sizeof(j->id), "%s", id);
                group_found(j, x);
                break;
            }
        }
        if (j->id[0] == '\0' && !j->done) {
            if (r->next_url != NULL) {
                group_find(j, r->next_url);
            } else {
                group_create(j);
            }
        }
        break;
    case J_GROUP_CREATE:
        if (r->status == 200 && id_from(j, r)) {
            j->created = 1;
            j->changed = 1;
            group_sync_members(j); /* a new group has no members: nothing to list */
            break;
        }
        code = error_code(r, &hold);
        if (r->status == 400 && code != NULL && strcmp(code, "E0000001") == 0 &&
            strstr(r->body.data, "already exists") != NULL) {
            j->create_dup = 1;
            group_find(j, NULL); /* created by a retried POST whose answer was lost */
            break;
        }
        job_fail(j, r, rc, herr, "creating the group");
        break;
    case J_GROUP_PUT:
        if (r->status == 200) {
            j->changed = 1;
            group_list(j, NULL);
        } else {
            job_fail(j, r, rc, herr, "updating the group");
        }
        break;
    case J_GROUP_LIST:
        if (r->status != 200) {
            job_fail(j, r, rc, herr, "listing the group's members");
            break;
        }
        hold = json_loadb(r->body.data, r->body.len, 0, NULL);
        json_array_foreach (hold, i, x) {
            const char *id = json_string_value(json_object_get(x, "id"));
            if (id != NULL && have_add(j, id) != DM_OK) {
                struct dm_err e = {0};
                dm_err_set(&e, DM_ENOMEM, "out of memory");
                job_fail_err(j, &e);
                break;
            }
        }
        if (!j->done) {
            if (r->next_url != NULL) {
                group_list(j, r->next_url);
            } else {
                group_sync_members(j);
            }
        }
        break;
    case J_GROUP_MEMBERS:
        break;
    }
    json_decref(hold);
}

/* ---- jobs: start, settle, abandon ---- */

static void job_free(struct job *j)
{
    json_decref(j->profile);
    json_decref(j->gprof);
    entry_free(j->ubefore);
    entry_free(j->left);
    for (size_t k = 0; k < j->nhave; k++) {
        free(j->have[k]);
    }
    free(j->have);
    free(j);
}

/* Frees every job still linked (the client is gone: no answer will come). */
static void jobs_free(struct conn *c)
{
    while (c->jobs != NULL) {
        struct job *j = c->jobs;
        c->jobs = j->next;
        job_free(j);
    }
}

static void job_unlink(struct job *j)
{
    struct conn *c = j->c;

    if (j->prev != NULL) {
        j->prev->next = j->next;
    } else {
        c->jobs = j->next;
    }
    if (j->next != NULL) {
        j->next->prev = j->prev;
    }
    if (j->bg) {
        c->nstreamed--;
    }
}

/* A job whose result is final and that waits for no answer any more is unlinked, freed and
 * reported (in that order: the callback may start the next change). */
static void job_settle(struct job *j)
{
    conn_done_fn fn = j->done_fn;
    void *payload = j->done_payload;
    const struct change *ch = j->ch;
    struct apply_result *res = j->res;

    if (!j->done || j->inflight > 0) {
        return;
    }
    job_unlink(j);
    job_free(j);
    if (fn != NULL) {
        fn(ch, res, payload);
    }
}

/* The HTTP client's callbacks: a job's requests are background requests when the job is
 * (every submit of a job happens inside these or job_begin()), and the job may settle. */
static void on_job(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct job *j = p;
    int was = http_background(j->c->http, j->bg);

    job_answer(r, rc, herr, j);
    http_background(j->c->http, was);
    job_settle(j);
}

static void on_member(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct job *j = ((struct member_req *)p)->j;
    int was = http_background(j->c->http, j->bg);

    member_answer(r, rc, herr, p);
    http_background(j->c->http, was);
    job_settle(j);
}

static void on_leave(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct job *j = ((struct member_req *)p)->j;
    int was = http_background(j->c->http, j->bg);

    leave_answer(r, rc, herr, p);
    http_background(j->c->http, was);
    job_settle(j);
}

/* Starts the job of change v (result into res). */
static int job_begin(struct conn *c, const struct change *v, struct apply_result *res, int bg,
                     conn_done_fn fn, void *payload)
{
    struct job *j = calloc(1, sizeof(*j));
    int was;

    memset(res, 0, sizeof(*res));
    if (j == NULL) {
        return DM_ENOMEM;
    }
    j->c = c;
    j->ch = v;
    j->res = res;
    j->bg = bg;
    j->done_fn = fn;
    j->done_payload = payload;
    j->next = c->jobs;
    if (c->jobs != NULL) {
        c->jobs->prev = j;
    }
    c->jobs = j;
    c->nstreamed += bg != 0;
    was = http_background(c->http, bg);
    job_start(j);
    http_background(c->http, was);
    job_settle(j);
    return DM_OK;
}

/* The client failed underneath (a libcurl multi error): every unsettled job of the kind
 * (bg) is failed with e and reported now; the job itself stays linked, writing into a
 * result of its own, until its requests answer or the connection is closed. */
static void jobs_abandon(struct conn *c, int bg, const struct dm_err *e)
{
    for (struct job *j = c->jobs; j != NULL; j = j->next) {
        conn_done_fn fn = j->done_fn;
        struct apply_result *res = j->res;

        if (j->bg != bg || res == &j->lost) {
            continue;
        }
        res->status = APPLY_FAILED;
        res->err = *e;
        if (res->err.rc == DM_OK) {
            dm_err_set(&res->err, DM_EINTERNAL, "request did not complete");
        }
        dm_err_dn(&res->err, j->ch->entry->dn);
        j->res = &j->lost;
        j->done_fn = NULL;
        if (fn != NULL) {
            fn(j->ch, res, j->done_payload);
        }
    }
}

static int okta_apply(struct conn *c, const struct change *v, size_t n, struct apply_result *res)
{
    struct dm_err e = {0};
    int rc;

    for (size_t i = 0; i < n; i++) {
        if (job_begin(c, &v[i], &res[i], 0, NULL, NULL) != DM_OK) {
            res[i].status = APPLY_FAILED;
            dm_err_set(&res[i].err, DM_ENOMEM, "out of memory");
        }
    }
    rc = http_run(c->http, &e);
    if (rc != DM_OK) {
        jobs_abandon(c, 0, &e);
    }
    return rc == DM_OK ? DM_OK : DM_EUNAVAIL;
}

static int okta_apply_start(struct conn *c, const struct change *v, struct apply_result *res,
                            conn_done_fn done, void *payload)
{
    return job_begin(c, v, res, 1, done, payload);
}

static int okta_apply_wait(struct conn *c, long timeout_ms, size_t *inflight, struct dm_err *err)
{
    int rc = http_step(c->http, timeout_ms, err);

    if (rc != DM_OK) {
        err->rc = DM_EUNAVAIL; /* the connection is of no further use (connector.h) */
        jobs_abandon(c, 1, err);
        rc = DM_EUNAVAIL;
    }
    *inflight = c->nstreamed;
    return rc;
}

static const struct conn_key okta_keys[] = {
    CONNCFG_HTTP_KEYS,
    {"disable.lifecycle", CONN_KEY_STR, "deactivate", 0, .values = "deactivate|suspend",
     .off = offsetof(struct conn_cfg, disable_lifecycle),
     .doc = "How a user is disabled: deactivate (DEPROVISIONED; reactivated with activate) or "
            "suspend (SUSPENDED; unsuspended)."},
    {"activate", CONN_KEY_BOOL, "true", 0, .off = offsetof(struct conn_cfg, activate),
     .doc = "Create users ACTIVE (true) or STAGED (false). Imported-hash and hook users sign in "
            "with their old password either way once active."},
    {NULL, 0, NULL, 0, .off = 0, .doc = NULL},
};

const struct conn_ops conn_okta_ops = {
    .name = "okta",
    .what = "an Okta-style Users/Groups API",
    .caps = CONN_READ | CONN_WRITE | CONN_HASH_IMPORT | CONN_PASSWORD_HOOK | CONN_GROUPS |
            CONN_DISABLE | CONN_UNDO, /* not CONN_UNDO_DELETE: a user deleted for good is gone */
    .open = okta_open,
    .read = okta_read,
    .lookup = okta_lookup,
    .apply = okta_apply,
    .apply_start = okta_apply_start,
    .apply_wait = okta_apply_wait,
    .check = okta_check,
    .close = okta_close,
    .find = okta_find,
    .find_many = okta_find_many,
    .get = okta_get,
    .get_many = okta_get_many,
    .stats = okta_stats,
    .natural_key = {"login", "name"},
    .ident = CONN_IDENT_KEY,
    .members = CONN_MEMBERS_REF,
    .cred_outcome = okta_cred_outcome,
    .keys = okta_keys,
    .config_check = conncfg_check_http,
};
