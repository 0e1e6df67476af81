/*
 * connectors/auth0.c: the Auth0 bulk-import target (contract in auth0.h).
 */
#include <config.h>
#include "connectors/auth0.h"
#include "agent/util/log.h"
#include "connectors/auth0_cred.h"
#include "connectors/conncfg.h"
#include "connectors/http.h"
#include "connectors/okta.h" /* okta_url_escape(): RFC 3986 percent-encoding */
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define AUTH0_MAX_JOBS 2

struct conn {
    struct conn_cfg cfg;
    struct http_client *http;
    const char *connection_id;
    int upsert;
    size_t max_file;
    long poll_ms;
    long job_timeout_s;
};

/* Fields of the import schema that are booleans. */
static int is_bool_field(const char *name)
{
    return strcasecmp(name, "email_verified") == 0 || strcasecmp(name, "blocked") == 0 ||
           strcasecmp(name, "verify_email") == 0;
}

static int answer_err(struct dm_err *err, const struct http_response *r, int rc,
                      const struct dm_err *herr, const char *what)
{
    json_t *j = NULL;
    const char *msg = NULL, *code = NULL;
    enum dm_rc out;

    if (rc != DM_OK) {
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", herr != NULL ? herr->msg : dm_strerror(rc));
        dm_err_set(err, rc, "%s: %s", what, why);
        return rc;
    }
    if (r->body.len > 0) {
        j = json_loadb(r->body.data, r->body.len, 0, NULL);
        msg = json_string_value(json_object_get(j, "message"));
        code = json_string_value(json_object_get(j, "errorCode"));
    }
    out = r->status == 401 || r->status == 403 ? DM_EAUTH
          : r->status == 404                   ? DM_ENOTFOUND
          : r->status == 400                   ? DM_ESCHEMA
                                               : DM_EINTERNAL;
    dm_err_set(err, out, "%s: HTTP %ld%s%s%s%.160s", what, r->status, code ? " " : "",
               code ? code : "", msg ? ": " : "", msg ? msg : "");
    json_decref(j);
    return out;
}

static int get_json(json_t **out, long *status, struct conn *c, const char *path,
                    struct dm_err *err)
{
    struct http_response r = {0};
    int rc = http_perform_one(&r, c->http, "GET", path, NULL, 0, err);

    *out = NULL;
    *status = r.status;
    if (rc == DM_OK && r.status == 200) {
        *out = json_loadb(r.body.data, r.body.len, 0, NULL);
        if (*out == NULL) {
            rc = dm_err_set(err, DM_EINTERNAL, "GET %s: the answer is not JSON", path);
        }
    } else if (!(rc == DM_OK && (r.status == 204 || r.status == 404))) {
        rc = answer_err(err, &r, rc, err, path);
    }
    http_response_clear(&r);
    return rc;
}

/* ---- open / close / check ---- */

static void auth0_close(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    http_client_free(c->http);
    free(c);
}

static int auth0_open(struct conn **out, const struct conn_cfg *cfg, struct dm_err *err)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct http_opts o;
    json_t *j = NULL;
    long status = 0;
    char path[128];
    int rc;

    *out = NULL;
    if (c == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    c->cfg = *cfg;
    c->connection_id = conn_cfg_opt(cfg, "connection_id");
    c->upsert = conn_cfg_opt_bool(cfg, "upsert", 1);
    c->max_file = (size_t)conn_cfg_opt_int(cfg, "max_file_bytes", 480000);
    c->poll_ms = (long)conn_cfg_opt_int(cfg, "poll_interval_ms", 1000);
    c->job_timeout_s = (long)conn_cfg_opt_int(cfg, "job_timeout_s", 7200);
    http_opts_init(&o);
    o.base_url = cfg->uri;
    o.token = cfg->token;
    o.auth_scheme = "Bearer ";
    o.concurrency = cfg->concurrency > 0 ? (unsigned)cfg->concurrency : 8;
    o.connect_timeout_ms = cfg->network_timeout_ms;
    o.request_timeout_ms = cfg->op_timeout_ms;
    o.max_retries = (unsigned)cfg->max_retries;
    o.ca_file = cfg->ca_file;
    o.verify = cfg->tls_verify;
    o.rate_share = cfg->rate_share_pct > 0 ? cfg->rate_share_pct / 100.0 : 0.5;
    rc = http_client_new(&c->http, &o, err);
    if (rc == DM_OK) {
        /* the token, and the connection it writes to, before anything is sent */
        snprintf(path, sizeof(path), "/api/v2/connections/%s", c->connection_id);
        rc = get_json(&j, &status, c, path, err);
        if (rc == DM_OK && status == 404) {
            rc = dm_err_set(err, DM_EINVAL, "Auth0 has no connection %s", c->connection_id);
        } else if (rc != DM_OK && rc != DM_EAUTH) {
            rc = DM_EUNAVAIL;
        }
        json_decref(j);
    }
    if (rc != DM_OK) {
        auth0_close(c);
        return rc;
    }
    *out = c;
    return DM_OK;
}

static int auth0_check(struct conn *c, struct buf *out, struct dm_err *err)
{
    (void)err;
    return buf_printf(out,
                      "  Auth0 Management API at %s: token accepted, connection %s exists\n"
                      "  bulk import: files of at most %zu bytes, upsert %s, at most %d jobs "
                      "at a time\n",
                      c->cfg.uri, c->connection_id, c->max_file, c->upsert ? "on" : "off",
                      AUTH0_MAX_JOBS);
}

static void auth0_stats(struct conn *c, struct conn_stats *out)
{
    struct http_stats s;

    http_get_stats(&s, c->http);
    out->requests = s.requests;
    out->retries = s.retries;
    out->rate_limited = s.rate_limited;
    out->server_errors = s.server_errors;
    out->transport_errors = s.transport_errors;
}

/* ---- users as entries ---- */

static struct entry *entry_of(json_t *u)
{
    const char *id = json_string_value(json_object_get(u, "user_id"));
    const char *email = json_string_value(json_object_get(u, "email"));
    const char *k;
    json_t *v;
    struct entry *e;
    int rc;

    if (id == NULL || email == NULL) {
        return NULL;
    }
    e = entry_new(email);
    rc = e != NULL ? entry_set_key(e, id) : DM_ENOMEM;
    json_object_foreach (u, k, v) {
        if (rc != DM_OK) {
            break;
        }
        if (json_is_string(v)) {
            rc = entry_add_value(e, k, json_string_value(v), json_string_length(v));
        } else if (json_is_boolean(v)) {
            rc = entry_add_str(e, k, json_is_true(v) ? "true" : "false");
        }
    }
    if (rc == DM_OK) {
        /* the account state the planner compares: a blocked user cannot sign in */
        rc = entry_add_str(e, "dirmigAccountState",
                           json_is_true(json_object_get(u, "blocked")) ? "disabled" : "enabled");
    }
    if (rc != DM_OK) {
        entry_free(e);
        return NULL;
    }
    return e;
}

struct many_ctx {
    struct entry **out;
    int *rc;
    struct dm_err *err;
    const char *name;
    int by_ref;
};

static void on_many(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct many_ctx *m = p;
    json_t *j = NULL, *u = NULL;

    if (rc == DM_OK && r->status == 200) {
        j = json_loadb(r->body.data, r->body.len, 0, NULL);
        u = m->by_ref ? j : json_array_get(j, 0);
        if (!m->by_ref && json_array_size(j) > 1) {
            *m->rc =
                dm_err_set(m->err, DM_EEXISTS, "%zu users have this email", json_array_size(j));
        } else if (u == NULL) {
            *m->rc = j != NULL ? dm_err_set(m->err, DM_ENOTFOUND, "not at the target")
                               : dm_err_set(m->err, DM_EINTERNAL, "the answer is not JSON");
        } else {
            *m->out = entry_of(u);
            *m->rc = *m->out != NULL
                         ? DM_OK
                         : dm_err_set(m->err, DM_EINTERNAL, "a user without user_id or email");
        }
    } else if (rc == DM_OK && r->status == 404) {
        *m->rc = dm_err_set(m->err, DM_ENOTFOUND, "not at the target");
    } else {
        *m->rc = answer_err(m->err, r, rc, herr, "reading a user");
    }
    dm_err_dn(m->err, m->name);
    json_decref(j);
}

static void lookup_many(struct conn *c, int by_ref, const char *const *keys, size_t n,
                        struct entry **out, int *rcs, struct dm_err *errs)
{
    struct many_ctx *m = calloc(n ? n : 1, sizeof(*m));
    struct dm_err e = {0};

    for (size_t i = 0; i < n; i++) {
        char *esc = NULL, *path = NULL;
        out[i] = NULL;
        memset(&errs[i], 0, sizeof(errs[i]));
        rcs[i] = DM_ENOTFOUND;
        if (keys[i] == NULL || keys[i][0] == '\0') {
            continue;
        }
        if (m == NULL) {
            rcs[i] = dm_err_set(&errs[i], DM_ENOMEM, "out of memory");
            continue;
        }
        m[i] = (struct many_ctx){&out[i], &rcs[i], &errs[i], keys[i], by_ref};
        rcs[i] = DM_EINTERNAL;
        esc = okta_url_escape(keys[i]);
        if (esc == NULL ||
            asprintf(&path, by_ref ? "/api/v2/users/%s" : "/api/v2/users-by-email?email=%s", esc) <
                0) {
            path = NULL;
        }
        if (path == NULL) {
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

static void auth0_find_many(struct conn *c, enum obj_kind kind, const char *const *names, size_t n,
                            struct entry **out, int *rcs, struct dm_err *errs)
{
    (void)kind;
    lookup_many(c, 0, names, n, out, rcs, errs);
}

static void auth0_get_many(struct conn *c, enum obj_kind kind, const char *const *refs, size_t n,
                           struct entry **out, int *rcs, struct dm_err *errs)
{
    (void)kind;
    lookup_many(c, 1, refs, n, out, rcs, errs);
}

static int auth0_find(struct entry **out, struct conn *c, enum obj_kind kind, const char *name,
                      struct dm_err *err)
{
    int rc;

    (void)kind;
    lookup_many(c, 0, &name, 1, out, &rc, err);
    return rc;
}

static int auth0_get(struct entry **out, struct conn *c, enum obj_kind kind, const char *ref,
                     struct dm_err *err)
{
    int rc;

    (void)kind;
    lookup_many(c, 1, &ref, 1, out, &rc, err);
    return rc;
}

static int auth0_lookup(struct entry **out, struct conn *c, const char *dn, struct dm_err *err)
{
    return auth0_find(out, c, OBJ_USER, dn, err);
}

/* ---- apply: import files and jobs ---- */

/* The import object of one change; NULL with res->err (failed) or on ENOMEM. */
static json_t *user_of(const struct change *ch, struct apply_result *res)
{
    const struct entry *e = ch->entry;
    json_t *u = json_object();
    struct dm_err *err = &res->err;

    if (u == NULL || json_object_set_new(u, "email", json_string(e->dn)) != 0) {
        json_decref(u);
        dm_err_set(err, DM_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < e->nattrs; i++) {
        const struct dm_attr *a = &e->attrs[i];
        json_t *v;
        if (strcasecmp(a->name, "email") == 0 && a->nvals > 0) {
            continue; /* the name the user has (the entry's DN) */
        }
        if (a->nvals == 0) {
            dm_err_set(err, DM_EINVAL,
                       "%s: the source no longer has it, and an Auth0 import cannot remove an "
                       "attribute; remove it in Auth0",
                       a->name);
            dm_err_attr(err, a->name);
            json_decref(u);
            return NULL;
        }
        if (is_bool_field(a->name)) {
            v = json_boolean(a->vals[0].len == 4 &&
                             strncasecmp((const char *)a->vals[0].data, "true", 4) == 0);
        } else {
            v = json_stringn((const char *)a->vals[0].data, a->vals[0].len);
        }
        if (v == NULL) {
            dm_err_set(err, DM_ESCHEMA, "%s: the value is not valid UTF-8 text", a->name);
            dm_err_attr(err, a->name);
            json_decref(u);
            return NULL;
        }
        json_object_set_new(u, a->name, v);
    }
    if (ch->op == CHANGE_DISABLE || ch->state == CHANGE_STATE_DISABLE) {
        json_object_set_new(u, "blocked", json_true());
    } else if (ch->state == CHANGE_STATE_ENABLE) {
        json_object_set_new(u, "blocked", json_false());
    }
    /* A lock marker or placeholder ("*", "!!", "", schema/cred.h) is imported without a
     * password: the user exists in Auth0, so the custom database (the hook) is never asked,
     * and no password signs it in. */
    if (ch->op == CHANGE_ADD && ch->password != NULL && !ch->hook_only &&
        !cred_is_locked(ch->password, ch->password_len)) {
        struct cred *cr = NULL;
        json_t *h = NULL;
        if (cred_parse(&cr, ch->password, ch->password_len, err) != DM_OK ||
            auth0_cred_hash(&h, cr, ch->password, ch->password_len, err) != DM_OK) {
            cred_free(cr);
            json_decref(u);
            return NULL;
        }
        cred_free(cr);
        json_object_set_new(u, "custom_password_hash", h);
    }
    return u;
}

/* ---- synchronous requests with headers of their own ---- */

struct sync_ctx {
    struct http_response *out;
    int rc;
    struct dm_err *err;
};

static void on_sync(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct sync_ctx *s = p;

    s->out->status = r->status;
    s->out->attempts = r->attempts;
    if (r->body.len > 0 && buf_append(&s->out->body, r->body.data, r->body.len) != DM_OK) {
        rc = dm_err_set(s->err, DM_ENOMEM, "out of memory");
    } else if (rc != DM_OK && herr != NULL) {
        *s->err = *herr;
    }
    s->rc = rc;
}

static int perform_hdr(struct http_response *out, struct conn *c, const char *method,
                       const char *path, const char *const *hdrs, const char *body, size_t len,
                       struct dm_err *err)
{
    struct sync_ctx s = {out, DM_EINTERNAL, err};
    int rc;

    memset(out, 0, sizeof(*out));
    buf_init(&out->body, 16u << 20);
    rc = http_submit_hdr(c->http, method, path, hdrs, body, len, on_sync, &s, err);
    if (rc == DM_OK) {
        rc = http_run(c->http, err);
    }
    return rc != DM_OK ? rc : s.rc;
}

struct job {
    char id[64];
    size_t first, n; /* items[first .. first+n) */
    int active, done;
    time_t started;
};

/* multipart/form-data (RFC 7578): the users file and the job's fields. */
static char *multipart(const char *boundary, const char *users, size_t ulen, const struct conn *c,
                       size_t *len)
{
    struct buf b;

    buf_init(&b, ulen + 4096);
    if (buf_printf(&b,
                   "--%s\r\nContent-Disposition: form-data; name=\"users\"; "
                   "filename=\"users.json\"\r\nContent-Type: application/json\r\n\r\n",
                   boundary) != DM_OK ||
        buf_append(&b, users, ulen) != DM_OK ||
        buf_printf(&b,
                   "\r\n--%s\r\nContent-Disposition: form-data; name=\"connection_id\"\r\n\r\n%s"
                   "\r\n--%s\r\nContent-Disposition: form-data; name=\"upsert\"\r\n\r\n%s"
                   "\r\n--%s\r\nContent-Disposition: form-data; "
                   "name=\"send_completion_email\"\r\n\r\nfalse\r\n--%s--\r\n",
                   boundary, c->connection_id, boundary, c->upsert ? "true" : "false", boundary,
                   boundary) != DM_OK) {
        if (b.data != NULL) {
            explicit_bzero(b.data, b.len);
        }
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return buf_steal(&b);
}

struct batch {
    struct conn *c;
    const struct change *v;
    struct apply_result *res;
    json_t **users; /* per change, NULL when it is not imported */
    size_t *items;  /* indexes of the changes imported, in file order */
    size_t nitems;
    int *ok; /* per change: imported (no error reported) */
};

static void fail_job_items(struct batch *b, const struct job *j, const struct dm_err *e)
{
    for (size_t k = j->first; k < j->first + j->n; k++) {
        size_t i = b->items[k];
        b->res[i].status = APPLY_FAILED;
        b->res[i].err = *e;
        dm_err_dn(&b->res[i].err, b->v[i].entry->dn);
        b->ok[i] = 0;
    }
}

/* Starts job j. Returns 1 when Auth0 says too many jobs run (try again later), 0 when the job
 * started or failed for good (its users failed). */
static int job_start(struct batch *b, struct job *j)
{
    const char *hdr[3] = {NULL, "Accept: application/json", NULL};
    char ctype[128], boundary[48];
    unsigned char rnd[12];
    struct http_response r = {0};
    struct dm_err e = {0};
    json_t *arr = json_array(), *o = NULL;
    char *text = NULL, *body = NULL;
    size_t blen = 0;
    int rc, again = 0;

    for (size_t k = j->first; arr != NULL && k < j->first + j->n; k++) {
        json_array_append(arr, b->users[b->items[k]]);
    }
    text = arr != NULL ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        memset(rnd, 7, sizeof(rnd));
    }
    snprintf(boundary, sizeof(boundary), "dirmig-");
    for (size_t k = 0; k < sizeof(rnd); k++) {
        snprintf(boundary + strlen(boundary), 3, "%02x", rnd[k]);
    }
    body = text != NULL ? multipart(boundary, text, strlen(text), b->c, &blen) : NULL;
    if (text != NULL) {
        explicit_bzero(text, strlen(text)); /* it holds the users' hashes */
        free(text);
    }
    if (body == NULL) {
        dm_err_set(&e, DM_ENOMEM, "out of memory");
        fail_job_items(b, j, &e);
        j->done = 1;
        return 0;
    }
    snprintf(ctype, sizeof(ctype), "Content-Type: multipart/form-data; boundary=%s", boundary);
    hdr[0] = ctype;
    rc = perform_hdr(&r, b->c, "POST", "/api/v2/jobs/users-imports", hdr, body, blen, &e);
    explicit_bzero(body, blen);
    free(body);
    if (rc == DM_OK && (r.status == 201 || r.status == 202 || r.status == 200)) {
        o = json_loadb(r.body.data, r.body.len, 0, NULL);
        const char *id = json_string_value(json_object_get(o, "id"));
        if (id != NULL && strlen(id) < sizeof(j->id) &&
            strspn(id, "abcdefghijklmnopqrstuvwxyz"
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789_-") == strlen(id)) {
            snprintf(j->id, sizeof(j->id), "%s", id);
            j->active = 1;
            j->started = time(NULL);
            log_info("Auth0 import job %s started: %zu users", j->id, j->n);
        } else {
            dm_err_set(&e, DM_EINTERNAL, "starting an import job: the answer has no job id");
            fail_job_items(b, j, &e);
            j->done = 1;
        }
        json_decref(o);
    } else if (rc == DM_EUNAVAIL && r.status == 429) {
        again = 1; /* two jobs run already: wait for one */
    } else {
        answer_err(&e, &r, rc, &e, "starting an import job");
        fail_job_items(b, j, &e);
        j->done = 1;
    }
    http_response_clear(&r);
    return again;
}

/* The job's error report: each entry fails the user it names (by email). */
static void job_errors(struct batch *b, struct job *j)
{
    char path[128];
    json_t *list = NULL, *x;
    long status = 0;
    struct dm_err e = {0};
    size_t i;

    snprintf(path, sizeof(path), "/api/v2/jobs/%s/errors", j->id);
    if (get_json(&list, &status, b->c, path, &e) != DM_OK) {
        fail_job_items(b, j, &e);
        return;
    }
    json_array_foreach (list, i, x) {
        const char *email = json_string_value(json_object_get(json_object_get(x, "user"), "email"));
        json_t *er = json_array_get(json_object_get(x, "errors"), 0);
        const char *code = json_string_value(json_object_get(er, "code"));
        const char *msg = json_string_value(json_object_get(er, "message"));
        const char *p = json_string_value(json_object_get(er, "path"));
        int found = 0;

        for (size_t k = j->first; email != NULL && k < j->first + j->n; k++) {
            size_t ci = b->items[k];
            if (strcasecmp(b->v[ci].entry->dn, email) != 0) {
                continue;
            }
            found = 1;
            b->ok[ci] = 0;
            b->res[ci].status = APPLY_FAILED;
            dm_err_set(&b->res[ci].err, DM_ESCHEMA, "Auth0 import job %s: %s%s%s%s%.120s", j->id,
                       code ? code : "error", p ? " at " : "", p ? p : "", msg ? ": " : "",
                       msg ? msg : "");
            if (p != NULL && p[0]) {
                dm_err_attr(&b->res[ci].err, p);
            }
            dm_err_dn(&b->res[ci].err, b->v[ci].entry->dn);
        }
        if (!found) {
            log_warn("Auth0 import job %s reports an error for a user it was not sent (%s)", j->id,
                     code ? code : "?");
        }
    }
    json_decref(list);
}

/* Polls an active job once. */
static void job_poll(struct batch *b, struct job *j)
{
    char path[128];
    json_t *o = NULL;
    long status = 0;
    struct dm_err e = {0};
    const char *st;

    snprintf(path, sizeof(path), "/api/v2/jobs/%s", j->id);
    if (get_json(&o, &status, b->c, path, &e) != DM_OK || o == NULL) {
        if (e.rc == DM_OK) {
            dm_err_set(&e, DM_EINTERNAL, "job %s: HTTP %ld", j->id, status);
        }
        fail_job_items(b, j, &e);
        j->done = 1;
        j->active = 0;
        json_decref(o);
        return;
    }
    st = json_string_value(json_object_get(o, "status"));
    if (st != NULL && strcmp(st, "completed") == 0) {
        json_t *sum = json_object_get(o, "summary");
        log_info("Auth0 import job %s completed: %lld inserted, %lld updated, %lld failed of %lld",
                 j->id, (long long)json_integer_value(json_object_get(sum, "inserted")),
                 (long long)json_integer_value(json_object_get(sum, "updated")),
                 (long long)json_integer_value(json_object_get(sum, "failed")),
                 (long long)json_integer_value(json_object_get(sum, "total")));
        job_errors(b, j);
        j->done = 1;
        j->active = 0;
    } else if (st != NULL && strcmp(st, "failed") == 0) {
        dm_err_set(&e, DM_EINTERNAL, "Auth0 import job %s failed", j->id);
        fail_job_items(b, j, &e);
        j->done = 1;
        j->active = 0;
    } else if (time(NULL) - j->started > b->c->job_timeout_s) {
        dm_err_set(&e, DM_EUNAVAIL, "Auth0 import job %s did not finish in %ld s", j->id,
                   b->c->job_timeout_s);
        fail_job_items(b, j, &e);
        j->done = 1;
        j->active = 0;
    }
    json_decref(o);
}

/* Splits the items into files below max_file bytes; a user larger than that alone fails. */
static struct job *plan_jobs(struct batch *b, size_t *njobs)
{
    struct job *jobs = calloc(b->nitems ? b->nitems : 1, sizeof(*jobs));
    size_t nj = 0, size = 2, k = 0, w = 0;
    size_t *kept = b->items;

    if (jobs == NULL) {
        return NULL;
    }
    for (k = 0; k < b->nitems; k++) {
        size_t i = b->items[k];
        char *t = json_dumps(b->users[i], JSON_COMPACT);
        size_t len = t != NULL ? strlen(t) + 1 : b->c->max_file + 1;

        if (t != NULL) {
            explicit_bzero(t, strlen(t));
            free(t);
        }
        if (len + 2 > b->c->max_file) {
            b->res[i].status = APPLY_FAILED;
            dm_err_set(&b->res[i].err, DM_ELIMIT,
                       "the user's import record (%zu bytes) is larger than an import file may "
                       "be (%zu)",
                       len, b->c->max_file);
            dm_err_dn(&b->res[i].err, b->v[i].entry->dn);
            b->ok[i] = 0;
            continue;
        }
        if (nj == 0 || size + len > b->c->max_file) {
            jobs[nj].first = w;
            nj++;
            size = 2;
        }
        kept[w++] = i;
        jobs[nj - 1].n++;
        size += len;
    }
    b->nitems = w;
    *njobs = nj;
    return jobs;
}

static void run_jobs(struct batch *b)
{
    size_t nj = 0, left;
    struct job *jobs = plan_jobs(b, &nj);

    if (jobs == NULL) {
        struct dm_err e = {0};
        struct job all = {.first = 0, .n = b->nitems};
        dm_err_set(&e, DM_ENOMEM, "out of memory");
        fail_job_items(b, &all, &e);
        return;
    }
    left = nj;
    while (left > 0) {
        int active = 0, waiting = 0;
        for (size_t k = 0; k < nj; k++) {
            active += jobs[k].active;
        }
        for (size_t k = 0; k < nj && active < AUTH0_MAX_JOBS && !waiting; k++) {
            if (!jobs[k].active && !jobs[k].done) {
                waiting = job_start(b, &jobs[k]);
                active += jobs[k].active;
                left -= jobs[k].done;
            }
        }
        if (left == 0) {
            break;
        }
        usleep((useconds_t)b->c->poll_ms * 1000);
        for (size_t k = 0; k < nj; k++) {
            if (jobs[k].active) {
                job_poll(b, &jobs[k]);
                left -= jobs[k].done;
            }
        }
    }
    free(jobs);
}

static int auth0_apply(struct conn *c, const struct change *v, size_t n, struct apply_result *res)
{
    struct batch b = {c, v, res, NULL, NULL, 0, NULL};
    const char **emails = NULL;
    struct entry **found = NULL;
    int *rcs = NULL;
    struct dm_err *errs = NULL;
    size_t *idx = NULL, m = 0;

    b.users = calloc(n ? n : 1, sizeof(*b.users));
    b.items = calloc(n ? n : 1, sizeof(*b.items));
    b.ok = calloc(n ? n : 1, sizeof(*b.ok));
    emails = calloc(n ? n : 1, sizeof(*emails));
    found = calloc(n ? n : 1, sizeof(*found));
    rcs = calloc(n ? n : 1, sizeof(*rcs));
    errs = calloc(n ? n : 1, sizeof(*errs));
    idx = calloc(n ? n : 1, sizeof(*idx));
    for (size_t i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof(res[i]));
        if (b.users == NULL || b.items == NULL || b.ok == NULL || emails == NULL || found == NULL ||
            rcs == NULL || errs == NULL || idx == NULL) {
            res[i].status = APPLY_FAILED;
            dm_err_set(&res[i].err, DM_ENOMEM, "out of memory");
            continue;
        }
        if (v[i].op == CHANGE_DELETE) {
            char *esc = okta_url_escape(v[i].target_id ? v[i].target_id : ""), *path = NULL;
            struct http_response r = {0};
            int rc = esc != NULL && asprintf(&path, "/api/v2/users/%s", esc) >= 0
                         ? http_perform_one(&r, c->http, "DELETE", path, NULL, 0, &res[i].err)
                         : dm_err_set(&res[i].err, DM_ENOMEM, "out of memory");
            if (rc == DM_OK && (r.status == 204 || r.status == 200 || r.status == 404)) {
                res[i].status = APPLY_DELETED;
            } else {
                answer_err(&res[i].err, &r, rc, &res[i].err, "deleting the user");
                res[i].status = APPLY_FAILED;
            }
            http_response_clear(&r);
            free(esc);
            free(path);
            continue;
        }
        if (v[i].kind != OBJ_USER || v[i].op == CHANGE_MOVE) {
            res[i].status = APPLY_FAILED;
            dm_err_set(&res[i].err, DM_EINVAL, "Auth0 holds users only");
            continue;
        }
        b.users[i] = user_of(&v[i], &res[i]);
        if (b.users[i] == NULL) {
            res[i].status = APPLY_FAILED;
            dm_err_dn(&res[i].err, v[i].entry->dn);
            continue;
        }
        b.ok[i] = 1;
        b.items[b.nitems++] = i;
    }
    if (b.nitems > 0) {
        run_jobs(&b);
    }
    /* what went in, looked up for its user_id (and proof it is there) */
    for (size_t i = 0; b.ok != NULL && i < n; i++) {
        if (b.ok[i]) {
            emails[m] = v[i].entry->dn;
            idx[m++] = i;
        }
    }
    if (m > 0) {
        lookup_many(c, 0, emails, m, found, rcs, errs);
    }
    for (size_t k = 0; k < m; k++) {
        size_t i = idx[k];
        if (rcs[k] != DM_OK) {
            res[i].status = APPLY_FAILED;
            res[i].err = errs[k];
            if (rcs[k] == DM_ENOTFOUND) {
                dm_err_set(&res[i].err, DM_EINTERNAL,
                           "the import job reported no error, but the user is not there");
            }
            dm_err_dn(&res[i].err, v[i].entry->dn);
        } else {
            snprintf(res[i].target_id, sizeof(res[i].target_id), "%s",
                     found[k]->key != NULL ? found[k]->key : "");
            res[i].status = v[i].op == CHANGE_ADD       ? APPLY_CREATED
                            : v[i].op == CHANGE_DISABLE ? APPLY_DISABLED
                                                        : APPLY_UPDATED;
        }
        entry_free(found[k]);
    }
    for (size_t i = 0; b.users != NULL && i < n; i++) {
        json_decref(b.users[i]); /* hashes: jansson frees them; the texts were wiped */
    }
    free(b.users);
    free(b.items);
    free(b.ok);
    free(emails);
    free(found);
    free(rcs);
    free(errs);
    free(idx);
    return DM_OK;
}

static int auth0_config_check(const struct conn_cfgcheck *x)
{
    const char *id = x->get(x->ctx, "connection_id");
    int rc = conncfg_check_http(x);

    /* ^con_[A-Za-z0-9]{16}$: what the import endpoint accepts (else 400) */
    if (rc == DM_OK && id != NULL &&
        (strlen(id) != 20 || strncmp(id, "con_", 4) != 0 ||
         strspn(id + 4, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != 16)) {
        rc = x->fail(x->ctx, "connection_id", "must be con_ and 16 letters or digits");
    }
    return rc;
}

static const struct conn_key auth0_keys[] = {
    CONNCFG_HTTP_KEYS,
    {"connection_id", CONN_KEY_STR, NULL, CONN_KEY_REQUIRED, .off = CONN_KEY_OPT,
     .doc = "The database connection the users are imported into (con_ and 16 characters)."},
    {"upsert", CONN_KEY_BOOL, "true", 0, .off = CONN_KEY_OPT,
     .doc = "Import with upsert: a user that exists is updated (a rerun, a create resent "
            "after a crash) instead of failing with DUPLICATED_USER."},
    {"max_file_bytes", CONN_KEY_INT, "480000", 0, 1024, 512000, .off = CONN_KEY_OPT,
     .doc = "Largest import file; Auth0 takes 500 KB."},
    {"poll_interval_ms", CONN_KEY_INT, "1000", 0, 50, 60000, .off = CONN_KEY_OPT,
     .doc = "How often a running import job is asked whether it has finished."},
    {"job_timeout_s", CONN_KEY_INT, "7200", 0, 1, 86400, .off = CONN_KEY_OPT,
     .doc = "A job not finished by then fails its users (Auth0 gives up after 2 hours)."},
    {NULL, 0, NULL, 0, .off = 0, .doc = NULL},
};

const struct conn_ops conn_auth0_ops = {
    .name = "auth0",
    .what = "an Auth0 database connection",
    .caps = CONN_WRITE | CONN_HASH_IMPORT | CONN_PASSWORD_HOOK | CONN_LAZY_CREATE | CONN_DISABLE,
    .open = auth0_open,
    .lookup = auth0_lookup,
    .apply = auth0_apply,
    .check = auth0_check,
    .close = auth0_close,
    .find = auth0_find,
    .find_many = auth0_find_many,
    .get = auth0_get,
    .get_many = auth0_get_many,
    .stats = auth0_stats,
    .natural_key = {"email", NULL},
    .ident = CONN_IDENT_KEY,
    .members = CONN_MEMBERS_REF,
    .cred_outcome = auth0_cred_outcome,
    .keys = auth0_keys,
    .config_check = auth0_config_check,
};
