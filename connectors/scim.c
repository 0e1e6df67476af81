/*
 * connectors/scim.c: the SCIM 2.0 target (contract in scim.h).
 *
 * apply() runs every change of a batch as a small state machine ("job") driven by the HTTP
 * client's callbacks, as connectors/okta.c does: each callback looks at the answer and
 * submits the job's next request until the job has its result. apply_start() starts one job
 * on background requests (a sliding window, as in okta.c); a job reports and frees itself
 * when its result is final (job_settle()).
 */
#include <config.h>
#include "connectors/scim.h"
#include "connectors/scim_json.h"
#include "agent/util/log.h"
#include "connectors/conncfg.h"
#include "connectors/http.h"
#include "connectors/okta.h" /* okta_url_escape(): RFC 3986 percent-encoding */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SCIM_PATCH_SCHEMA "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#define SCIM_MAX_412 3

struct conn {
    struct conn_cfg cfg;
    struct http_client *http;
    char users_ep[64], groups_ep[64];
    int patch, etag, bulk, filter;
    long page;              /* filter.maxResults, capped */
    struct scim_schema sch; /* what /Schemas and /ResourceTypes said */
    struct job *jobs;       /* every job not yet settled (doubly linked) */
    size_t nstreamed;       /* ... of which started by apply_start() */
};

static void jobs_free(struct conn *c);

static const char *const scim_hdrs[] = {"Accept: application/scim+json",
                                        "Content-Type: application/scim+json", NULL};

/* ---- errors ---- */

/* Fills err from a final answer: HTTP status, scimType and detail of the SCIM error body
 * (RFC 7644 §3.12; they name attributes, never values we sent), or the transport failure. */
static int answer_err(struct dm_err *err, const struct http_response *r, int rc,
                      const struct dm_err *herr, const char *what)
{
    json_t *j = NULL;
    const char *type = NULL, *detail = NULL;
    enum dm_rc out;

    if (rc != DM_OK) {
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", herr != NULL ? herr->msg : dm_strerror(rc));
        dm_err_set(err, rc, "%s: %s", what, why);
        return rc;
    }
    if (r->body.len > 0) {
        j = json_loadb(r->body.data, r->body.len, 0, NULL);
        type = json_string_value(json_object_get(j, "scimType"));
        detail = json_string_value(json_object_get(j, "detail"));
    }
    switch (r->status) {
    case 401:
    case 403:
        out = DM_EAUTH;
        break;
    case 404:
        out = DM_ENOTFOUND;
        break;
    case 409:
        out = DM_EEXISTS;
        break;
    case 400:
        out = DM_ESCHEMA;
        break;
    default:
        out = DM_EINTERNAL;
    }
    dm_err_set(err, out, "%s: HTTP %ld%s%s%s%.160s", what, r->status, type ? " " : "",
               type ? type : "", detail ? ": " : "", detail ? detail : "");
    json_decref(j);
    return out;
}

/* ---- open: discovery ---- */

static int get_json(json_t **out, struct conn *c, const char *path, struct dm_err *err)
{
    struct http_response r = {0};
    int rc = http_perform_one(&r, c->http, "GET", path, NULL, 0, err);

    *out = NULL;
    if (rc != DM_OK || r.status != 200) {
        rc = answer_err(err, &r, rc, err, path);
    } else {
        *out = json_loadb(r.body.data, r.body.len, 0, NULL);
        if (*out == NULL) {
            rc = dm_err_set(err, DM_EINTERNAL, "GET %s: the answer is not JSON", path);
        }
    }
    http_response_clear(&r);
    return rc;
}

/* /ResourceTypes, /Schemas: the endpoints, the User extensions and attribute types. */
static int discover(struct conn *c, struct dm_err *err)
{
    json_t *j = NULL, *list, *x, *a;
    size_t i, k;
    int rc = get_json(&j, c, "/ServiceProviderConfig", err);

    if (rc != DM_OK) {
        return rc;
    }
    c->patch = json_is_true(json_object_get(json_object_get(j, "patch"), "supported"));
    c->etag = json_is_true(json_object_get(json_object_get(j, "etag"), "supported"));
    c->bulk = json_is_true(json_object_get(json_object_get(j, "bulk"), "supported"));
    c->filter = json_is_true(json_object_get(json_object_get(j, "filter"), "supported"));
    c->page = json_integer_value(json_object_get(json_object_get(j, "filter"), "maxResults"));
    json_decref(j);
    if (c->page <= 0 || c->page > 500) {
        c->page = c->page <= 0 ? 100 : 500;
    }
    if (!c->filter) {
        return dm_err_set(err, DM_EINVAL,
                          "the SCIM service provider does not support filter, which dirmig needs "
                          "to find users by userName and groups by displayName");
    }
    snprintf(c->users_ep, sizeof(c->users_ep), "/Users");
    snprintf(c->groups_ep, sizeof(c->groups_ep), "/Groups");
    rc = get_json(&j, c, "/ResourceTypes", err);
    if (rc != DM_OK) {
        return rc;
    }
    list = json_is_array(j) ? j : json_object_get(j, "Resources");
    json_array_foreach (list, i, x) {
        const char *name = json_string_value(json_object_get(x, "name"));
        const char *ep = json_string_value(json_object_get(x, "endpoint"));
        if (name == NULL || ep == NULL || strlen(ep) >= sizeof(c->users_ep) || ep[0] != '/') {
            continue;
        }
        if (strcmp(name, "User") == 0) {
            snprintf(c->users_ep, sizeof(c->users_ep), "%s", ep);
            json_array_foreach (json_object_get(x, "schemaExtensions"), k, a) {
                const char *urn = json_string_value(json_object_get(a, "schema"));
                if (urn != NULL && c->sch.next < SCIM_MAX_EXT &&
                    strlen(urn) < sizeof(c->sch.ext[0])) {
                    snprintf(c->sch.ext[c->sch.next++], sizeof(c->sch.ext[0]), "%s", urn);
                }
            }
        } else if (strcmp(name, "Group") == 0) {
            snprintf(c->groups_ep, sizeof(c->groups_ep), "%s", ep);
        }
    }
    json_decref(j);
    rc = get_json(&j, c, "/Schemas", err);
    if (rc != DM_OK) {
        return rc;
    }
    list = json_is_array(j) ? j : json_object_get(j, "Resources");
    json_array_foreach (list, i, x) {
        const char *id = json_string_value(json_object_get(x, "id"));
        int ext = 0;
        if (id == NULL) {
            continue;
        }
        for (size_t e = 0; e < c->sch.next; e++) {
            ext = strcmp(id, c->sch.ext[e]) == 0 ? (int)e + 1 : ext;
        }
        if (strcmp(id, SCIM_USER_SCHEMA) != 0 && ext == 0) {
            continue;
        }
        json_array_foreach (json_object_get(x, "attributes"), k, a) {
            const char *n = json_string_value(json_object_get(a, "name"));
            const char *t = json_string_value(json_object_get(a, "type"));
            struct scim_attr *s = &c->sch.attrs[c->sch.nattrs];
            size_t m;
            json_t *sub;
            if (n == NULL || t == NULL || c->sch.nattrs >= SCIM_MAX_ATTRS ||
                strlen(n) >= sizeof(s->name)) {
                continue;
            }
            snprintf(s->name, sizeof(s->name), "%s", n);
            snprintf(s->type, sizeof(s->type), "%s", t);
            s->multi = json_is_true(json_object_get(a, "multiValued"));
            s->ext = ext;
            json_array_foreach (json_object_get(a, "subAttributes"), m, sub) {
                const char *sn = json_string_value(json_object_get(sub, "name"));
                s->has_value |= sn != NULL && strcmp(sn, "value") == 0;
                s->has_primary |= sn != NULL && strcmp(sn, "primary") == 0;
            }
            c->sch.nattrs++;
        }
    }
    json_decref(j);
    log_debug("SCIM discovery: Users at %s, Groups at %s, %zu attributes, %zu extension(s), "
              "patch %s, etag %s, bulk %s (not used), page %ld",
              c->users_ep, c->groups_ep, c->sch.nattrs, c->sch.next, c->patch ? "yes" : "no",
              c->etag ? "yes" : "no", c->bulk ? "yes" : "no", c->page);
    return DM_OK;
}

static void scim_close(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    http_client_free(c->http); /* no callback fires any more: the jobs left can go */
    jobs_free(c);
    free(c);
}

static int scim_open(struct conn **out, const struct conn_cfg *cfg, struct dm_err *err)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct http_opts o;
    int rc;

    *out = NULL;
    if (c == NULL) {
        return dm_err_set(err, DM_ENOMEM, "out of memory");
    }
    c->cfg = *cfg;
    c->sch.chunk = cfg->member_chunk > 0 ? (size_t)cfg->member_chunk : 1000;
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
        rc = discover(c, err);
        if (rc != DM_OK && rc != DM_EAUTH && rc != DM_ENOMEM && rc != DM_EINVAL) {
            rc = DM_EUNAVAIL;
        }
    }
    if (rc != DM_OK) {
        scim_close(c);
        return rc;
    }
    *out = c;
    return DM_OK;
}

static int scim_check(struct conn *c, struct buf *out, struct dm_err *err)
{
    (void)err;
    return buf_printf(out,
                      "  SCIM 2.0 service provider at %s: token accepted, Users at %s, Groups "
                      "at %s\n  PATCH %s, ETags %s, bulk %s (not used), filter pages of %ld, "
                      "%zu User attributes, %zu extension(s)\n",
                      c->cfg.uri, c->users_ep, c->groups_ep, c->patch ? "yes" : "no (PUT)",
                      c->etag ? "yes (If-Match)" : "no", c->bulk ? "supported" : "no", c->page,
                      c->sch.nattrs, c->sch.next);
}

static void scim_stats(struct conn *c, struct conn_stats *out)
{
    struct http_stats s;

    http_get_stats(&s, c->http);
    out->requests = s.requests;
    out->retries = s.retries;
    out->rate_limited = s.rate_limited;
    out->server_errors = s.server_errors;
    out->transport_errors = s.transport_errors;
}

/* ---- find / get / read ---- */

/* The path of a filter "attr eq "value"" on the kind's endpoint (" and \ escaped, RFC 7644
 * §3.4.2.2), percent-encoded. New string or NULL. */
static char *filter_path(const struct conn *c, enum obj_kind kind, const char *value)
{
    struct buf b;
    char *esc, *path = NULL;

    buf_init(&b, 8192);
    if (buf_printf(&b, "%s eq \"", kind == OBJ_USER ? "userName" : "displayName") != DM_OK) {
        return NULL;
    }
    for (const char *p = value; *p; p++) {
        if (((*p == '"' || *p == '\\') && buf_puts(&b, "\\") != DM_OK) ||
            buf_append(&b, p, 1) != DM_OK) {
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
    if (esc == NULL || asprintf(&path, "%s?filter=%s&count=2",
                                kind == OBJ_USER ? c->users_ep : c->groups_ep, esc) < 0) {
        path = NULL;
    }
    free(esc);
    return path;
}

/* The one resource of a filter answer: DM_ENOTFOUND for none, an error for several. */
static int one_of_list(json_t **out, const struct http_response *r, const char *name,
                       struct dm_err *err)
{
    json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
    json_t *list = json_object_get(j, "Resources");
    json_int_t total = json_integer_value(json_object_get(j, "totalResults"));
    int rc = DM_OK;

    *out = NULL;
    if (!json_is_object(j) || (!json_is_array(list) && total != 0)) {
        rc =
            dm_err_set(err, DM_EINTERNAL, "looking up \"%s\": the answer is not a SCIM list", name);
    } else if (total == 0 || json_array_size(list) == 0) {
        rc = dm_err_set(err, DM_ENOTFOUND, "\"%s\" is not at the target", name);
    } else if (total > 1 || json_array_size(list) > 1) {
        rc = dm_err_set(err, DM_EEXISTS, "\"%s\" names %lld objects at the target", name,
                        (long long)total);
    } else {
        *out = json_incref(json_array_get(list, 0));
    }
    json_decref(j);
    return rc;
}

struct many_ctx {
    struct conn *c;
    enum obj_kind kind;
    int by_ref;
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
        if (m->by_ref) {
            j = json_loadb(r->body.data, r->body.len, 0, NULL);
            *m->rc = j != NULL
                         ? DM_OK
                         : dm_err_set(m->err, DM_EINTERNAL, "%s: the answer is not JSON", m->name);
        } else {
            *m->rc = one_of_list(&j, r, m->name, m->err);
        }
        if (*m->rc == DM_OK) {
            *m->out = scim_entry_of(&m->c->sch, j, m->kind);
            *m->rc = *m->out != NULL
                         ? DM_OK
                         : dm_err_set(m->err, DM_EINTERNAL, "%s: the answer has no id", m->name);
        }
    } else if (rc == DM_OK && r->status == 404 && m->by_ref) {
        *m->rc = dm_err_set(m->err, DM_ENOTFOUND, "%s is not at the target", m->name);
    } else {
        *m->rc = answer_err(m->err, r, rc, herr, "reading the object");
    }
    dm_err_dn(m->err, m->name);
    json_decref(j);
}

static void lookup_many(struct conn *c, enum obj_kind kind, int by_ref, const char *const *keys,
                        size_t n, struct entry **out, int *rcs, struct dm_err *errs)
{
    struct many_ctx *m = calloc(n ? n : 1, sizeof(*m));
    struct dm_err e = {0};

    for (size_t i = 0; i < n; i++) {
        char *path = NULL, *esc = NULL;
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
        m[i] = (struct many_ctx){c, kind, by_ref, &out[i], &rcs[i], &errs[i], keys[i]};
        rcs[i] = DM_EINTERNAL;
        if (by_ref) {
            esc = okta_url_escape(keys[i]);
            if (esc == NULL ||
                asprintf(&path, "%s/%s", kind == OBJ_USER ? c->users_ep : c->groups_ep, esc) < 0) {
                path = NULL;
            }
        } else {
            path = filter_path(c, kind, keys[i]);
        }
        if (path == NULL) {
            rcs[i] = dm_err_set(&errs[i], DM_ENOMEM, "out of memory");
        } else if (http_submit_hdr(c->http, "GET", path, scim_hdrs, NULL, 0, on_many, &m[i],
                                   &errs[i]) != DM_OK) {
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

static void scim_find_many(struct conn *c, enum obj_kind kind, const char *const *names, size_t n,
                           struct entry **out, int *rcs, struct dm_err *errs)
{
    lookup_many(c, kind, 0, names, n, out, rcs, errs);
}

static void scim_get_many(struct conn *c, enum obj_kind kind, const char *const *refs, size_t n,
                          struct entry **out, int *rcs, struct dm_err *errs)
{
    lookup_many(c, kind, 1, refs, n, out, rcs, errs);
}

static int scim_find(struct entry **out, struct conn *c, enum obj_kind kind, const char *name,
                     struct dm_err *err)
{
    int rc;

    lookup_many(c, kind, 0, &name, 1, out, &rc, err);
    return rc;
}

static int scim_get(struct entry **out, struct conn *c, enum obj_kind kind, const char *ref,
                    struct dm_err *err)
{
    int rc;

    lookup_many(c, kind, 1, &ref, 1, out, &rc, err);
    return rc;
}

static int scim_lookup(struct entry **out, struct conn *c, const char *dn, struct dm_err *err)
{
    return scim_find(out, c, OBJ_USER, dn, err);
}

/* Every user, page by page (startIndex/count, RFC 7644 §3.4.2.4). */
static int scim_read(struct conn *c, const struct scope *s, conn_entry_fn fn, void *payload,
                     struct dm_err *err)
{
    long start = 1;
    int rc = DM_OK;

    (void)s;
    for (;;) {
        char path[128];
        json_t *j = NULL, *list, *x;
        size_t i, got;
        json_int_t total;

        snprintf(path, sizeof(path), "%s?startIndex=%ld&count=%ld", c->users_ep, start, c->page);
        rc = get_json(&j, c, path, err);
        if (rc != DM_OK) {
            return rc;
        }
        list = json_object_get(j, "Resources");
        total = json_integer_value(json_object_get(j, "totalResults"));
        got = json_array_size(list);
        json_array_foreach (list, i, x) {
            struct entry *e = rc == DM_OK ? scim_entry_of(&c->sch, x, OBJ_USER) : NULL;
            if (rc == DM_OK) {
                rc = e != NULL ? fn(e, payload)
                               : dm_err_set(err, DM_EINTERNAL, "listing users: a user without id");
            }
            entry_free(e);
        }
        json_decref(j);
        if (rc != DM_OK || got == 0 || start + (long)got - 1 >= (long)total) {
            return rc;
        }
        start += (long)got;
    }
}

/* ---- apply: one job per change ---- */

enum job_stage { J_CREATE, J_FIND, J_GET, J_PATCH, J_PUT, J_DELETE };

struct job {
    struct conn *c;
    const struct change *ch;
    struct apply_result *res;
    enum job_stage stage;
    char id[64];       /* as apply_result.target_id holds it */
    char version[128]; /* meta.version of the last answer ("" unknown) */
    json_t *ops;       /* PATCH bodies still to send (array), or the PUT body */
    size_t nextop;
    int created;   /* created by this job (CREATED whatever follows) */
    int changed;   /* a write went through */
    int after_409; /* J_FIND after a 409 */
    unsigned create_attempts;
    unsigned stale; /* 412s met */
    int done;
    time_t started;
    /* settling (job_settle()) */
    struct job *prev, *next; /* conn.jobs */
    int bg;                  /* started by apply_start(): background requests */
    conn_done_fn done_fn;    /* NULL: nobody to tell (apply(), or abandoned) */
    void *done_payload;
    struct apply_result lost; /* res of an abandoned job */
};

static void job_finish(struct job *j, enum apply_status st)
{
    j->res->status = st;
    snprintf(j->res->target_id, sizeof(j->res->target_id), "%s", j->id);
    j->done = 1;
}

static void job_fail_err(struct job *j, const struct dm_err *e)
{
    j->res->err = *e;
    dm_err_dn(&j->res->err, j->ch->entry->dn);
    j->res->created_with_hook = 0;
    job_finish(j, APPLY_FAILED);
}

static void job_fail(struct job *j, const struct http_response *r, int rc,
                     const struct dm_err *herr, const char *what)
{
    struct dm_err e = {0};

    answer_err(&e, r, rc, herr, what);
    job_fail_err(j, &e);
}

static void job_nomem(struct job *j)
{
    struct dm_err e = {0};

    dm_err_set(&e, DM_ENOMEM, "out of memory");
    job_fail_err(j, &e);
}

static void on_job(const struct http_response *r, int rc, const struct dm_err *herr, void *p);

static const char *ep_of(const struct job *j)
{
    return j->ch->kind == OBJ_USER ? j->c->users_ep : j->c->groups_ep;
}

static void job_send(struct job *j, const char *method, const char *path, json_t *body)
{
    const char *hdrs[4] = {scim_hdrs[0], scim_hdrs[1], NULL, NULL};
    char ifmatch[160];
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    struct dm_err e = {0};

    if ((body != NULL && text == NULL) || path == NULL) {
        free(text);
        job_nomem(j);
        return;
    }
    if (j->c->etag && j->version[0] && strcmp(method, "POST") != 0 && strcmp(method, "GET") != 0) {
        snprintf(ifmatch, sizeof(ifmatch), "If-Match: %s", j->version);
        hdrs[2] = ifmatch;
    }
    if (http_submit_hdr(j->c->http, method, path, hdrs, text, text ? strlen(text) : 0, on_job, j,
                        &e) != DM_OK) {
        job_fail_err(j, &e);
    }
    if (text != NULL) {
        explicit_bzero(text, strlen(text)); /* a create may carry a password */
        free(text);
    }
}

static void job_path(struct job *j, const char *method, json_t *body, enum job_stage st)
{
    char *esc = okta_url_escape(j->id), *path = NULL;

    j->stage = st;
    if (esc == NULL || asprintf(&path, "%s/%s", ep_of(j), esc) < 0) {
        path = NULL;
    }
    job_send(j, method, path, body);
    free(esc);
    free(path);
}

/* id and meta.version of an answer's resource; 0 when it has no id. */
static int note_resource(struct job *j, json_t *res)
{
    const char *id = json_string_value(json_object_get(res, "id"));
    const char *ver = json_string_value(json_object_get(json_object_get(res, "meta"), "version"));

    if (id == NULL || strlen(id) >= sizeof(j->id)) {
        return 0;
    }
    snprintf(j->id, sizeof(j->id), "%s", id);
    snprintf(j->version, sizeof(j->version), "%s",
             ver != NULL && strlen(ver) < sizeof(j->version) ? ver : "");
    return 1;
}

/* The password for a new user: the cleartext source password, or none (the hook; or a lock
 * marker or placeholder such as "*" or "!!", schema/cred.h: no password, never the hook). */
static int password_of(struct job *j, json_t *res)
{
    const struct change *ch = j->ch;
    struct cred *cr = NULL;
    struct dm_err e = {0};
    int rc = DM_OK;

    j->res->created_with_hook = ch->kind == OBJ_USER;
    if (ch->kind != OBJ_USER || ch->hook_only || ch->password == NULL) {
        return DM_OK;
    }
    if (cred_parse(&cr, ch->password, ch->password_len, &e) != DM_OK) {
        job_fail_err(j, &e);
        return e.rc;
    }
    if (cr->kind == CRED_KIND_LOCKED) {
        j->res->created_with_hook = 0;
    } else if (cr->kind == CRED_KIND_CLEARTEXT) {
        json_t *pw = json_stringn((const char *)cr->digest, cr->digest_len);
        if (pw == NULL) {
            dm_err_set(&e, DM_EINVAL, "the cleartext password is not UTF-8 text");
            dm_err_attr(&e, "userPassword");
            job_fail_err(j, &e);
            rc = DM_EINVAL;
        } else if (json_object_set_new(res, "password", pw) != 0) {
            job_nomem(j);
            rc = DM_ENOMEM;
        } else {
            j->res->created_with_hook = 0;
        }
    }
    cred_free(cr);
    return rc;
}

static void user_or_group_create(struct job *j)
{
    struct dm_err e = {0};
    json_t *res = scim_resource_of(&j->c->sch, j->ch, &e);
    char path[96];

    if (res == NULL) {
        job_fail_err(j, &e);
        return;
    }
    if (password_of(j, res) != DM_OK) {
        json_decref(res);
        return;
    }
    j->stage = J_CREATE;
    snprintf(path, sizeof(path), "%s", ep_of(j));
    job_send(j, "POST", path, res);
    json_object_del(res, "password");
    json_decref(res);
}

static void job_find(struct job *j)
{
    j->stage = J_FIND;
    char *path = filter_path(j->c, j->ch->kind, j->ch->entry->dn);
    job_send(j, "GET", path, NULL);
    free(path);
}

/* 1 when the values of attribute name in have equal those of want (as sets). */
static int same_values(const struct dm_attr *want, const struct dm_attr *have)
{
    size_t nw = want != NULL ? want->nvals : 0, nh = have != NULL ? have->nvals : 0;

    if (nw != nh) {
        return 0;
    }
    for (size_t i = 0; i < nw; i++) {
        int found = 0;
        for (size_t k = 0; k < nh && !found; k++) {
            found = want->vals[i].len == have->vals[k].len &&
                    memcmp(want->vals[i].data, have->vals[k].data, want->vals[i].len) == 0;
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}

static int in_merge(const struct change *ch, const char *name)
{
    for (size_t i = 0; ch->merge != NULL && ch->merge[i] != NULL; i++) {
        if (strcasecmp(ch->merge[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_str(char **sorted, size_t n, const char *s)
{
    return n > 0 && bsearch(&s, sorted, n, sizeof(char *), str_cmp) != NULL;
}

/* Sorted copy of the member ids of a (borrowed strings). */
static char **ids_of(const struct dm_attr *a, size_t *n)
{
    char **v;

    *n = a != NULL ? a->nvals : 0;
    v = calloc(*n ? *n : 1, sizeof(char *));
    for (size_t i = 0; v != NULL && i < *n; i++) {
        v[i] = (char *)a->vals[i].data;
    }
    if (v != NULL && *n > 1) {
        qsort(v, *n, sizeof(char *), str_cmp);
    }
    return v;
}

static json_t *patch_body(void)
{
    return json_pack("{s:[s],s:[]}", "schemas", SCIM_PATCH_SCHEMA, "Operations");
}

/* Appends op to the last body of ops, starting a new body every `chunk` operations. */
static int add_op(json_t *ops, json_t *op, size_t chunk)
{
    json_t *body = json_array_get(ops, json_array_size(ops) - 1);

    if (op == NULL) {
        return -1;
    }
    if (body == NULL || json_array_size(json_object_get(body, "Operations")) >= chunk) {
        body = patch_body();
        if (body == NULL || json_array_append_new(ops, body) != 0) {
            json_decref(op);
            return -1;
        }
    }
    return json_array_append_new(json_object_get(body, "Operations"), op);
}

/* Member changes: "add" with value lists and "remove" by value, member_chunk values per
 * request. */
static int member_ops(struct job *j, json_t *ops, const struct dm_attr *want,
                      const struct dm_attr *have)
{
    size_t nw, nh;
    char **w = ids_of(want, &nw), **h = ids_of(have, &nh);
    json_t *add = NULL;
    int bad = w == NULL || h == NULL;
    int merge = in_merge(j->ch, "member");

    for (size_t i = 0; !bad && i < nw; i++) {
        if (has_str(h, nh, w[i]) || (i > 0 && strcmp(w[i], w[i - 1]) == 0)) {
            continue;
        }
        if (add == NULL || json_array_size(add) >= j->c->sch.chunk) {
            json_t *op = json_pack("{s:s,s:s,s:[]}", "op", "add", "path", "members", "value");
            add = op != NULL ? json_object_get(op, "value") : NULL;
            bad = op == NULL || add_op(ops, op, 1) != 0;
            if (bad) {
                break;
            }
        }
        bad = json_array_append_new(add, json_pack("{s:s}", "value", w[i])) != 0;
    }
    for (size_t i = 0; !bad && !merge && i < nh; i++) {
        char path[200];
        if (has_str(w, nw, h[i]) || strlen(h[i]) > 150) {
            continue;
        }
        snprintf(path, sizeof(path), "members[value eq \"%s\"]", h[i]);
        bad =
            add_op(ops, json_pack("{s:s,s:s}", "op", "remove", "path", path), j->c->sch.chunk) != 0;
    }
    free(w);
    free(h);
    return bad ? -1 : 0;
}

/* What to send to make the object at the target (cur, as read) what the change asks: PATCH
 * bodies, or one PUT body when the provider has no PATCH. Empty: nothing differs. */
static json_t *diff_ops(struct job *j, json_t *cur, struct dm_err *err)
{
    const struct entry *want = j->ch->entry;
    struct entry *have = scim_entry_of(&j->c->sch, cur, j->ch->kind);
    json_t *ops = json_array(), *put = NULL;
    int bad = have == NULL || ops == NULL;

    if (!j->c->patch && !bad) {
        put = json_deep_copy(cur);
        json_object_del(put, "meta");
        bad = put == NULL;
    }
    for (size_t i = 0; !bad && i < want->nattrs; i++) {
        const struct dm_attr *w = &want->attrs[i];
        const struct dm_attr *h = entry_attr(have, w->name);
        struct scim_where where;
        json_t *v;
        if (strcasecmp(w->name, "member") == 0 && j->ch->kind == OBJ_GROUP) {
            if (put != NULL) {
                if (!same_values(w, h)) {
                    bad = json_object_set_new(put, "members", scim_members_of(w, 0, w->nvals)) != 0;
                }
                continue;
            }
            bad = member_ops(j, ops, w, h) != 0;
            continue;
        }
        if (same_values(w, h) || (in_merge(j->ch, w->name) && w->nvals == 0)) {
            continue;
        }
        scim_where_of(&j->c->sch, w->name, &where);
        v = scim_value_of(&where, w);
        if (w->nvals > 0 && v == NULL) {
            dm_err_set(err, DM_ESCHEMA, "%s: a value is not valid UTF-8 text", w->name);
            dm_err_attr(err, w->name);
            bad = 2;
            break;
        }
        if (put != NULL) {
            bad = scim_set_path(put, &where, v) != 0;
            continue;
        }
        {
            char path[300];
            snprintf(path, sizeof(path), "%s%s%s", where.urn, where.urn[0] ? ":" : "", where.path);
            if (v == NULL) {
                bad = add_op(ops, json_pack("{s:s,s:s}", "op", "remove", "path", path), 1000) != 0;
            } else {
                bad = add_op(ops,
                             json_pack("{s:s,s:s,s:o}", "op",
                                       in_merge(j->ch, w->name) ? "add" : "replace", "path", path,
                                       "value", v),
                             1000) != 0;
            }
        }
    }
    if (!bad && j->ch->kind == OBJ_USER && j->ch->state != CHANGE_STATE_KEEP) {
        int want_active = j->ch->state == CHANGE_STATE_ENABLE;
        json_t *cur_active = json_object_get(cur, "active");
        if (!json_is_boolean(cur_active) || json_is_true(cur_active) != want_active) {
            if (put != NULL) {
                bad = json_object_set_new(put, "active", json_boolean(want_active)) != 0;
            } else {
                bad = add_op(ops,
                             json_pack("{s:s,s:s,s:b}", "op", "replace", "path", "active", "value",
                                       want_active),
                             1000) != 0;
            }
        }
    }
    entry_free(have);
    if (bad) {
        json_decref(ops);
        json_decref(put);
        if (bad != 2) {
            dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        return NULL;
    }
    if (put != NULL) {
        if (!json_equal(put, cur)) {
            json_object_del(put, "id");
            json_array_append_new(ops, put);
        } else {
            json_decref(put);
        }
    }
    return ops;
}

static void job_next_write(struct job *j)
{
    json_t *body = json_array_get(j->ops, j->nextop);

    if (body == NULL) {
        job_finish(j, j->created ? APPLY_CREATED : j->changed ? APPLY_UPDATED : APPLY_UNCHANGED);
        return;
    }
    job_path(j, j->c->patch ? "PATCH" : "PUT", body, j->c->patch ? J_PATCH : J_PUT);
}

/* The object as it is (cur): compute what differs and send it. */
static void job_converge(struct job *j, json_t *cur)
{
    struct dm_err e = {0};

    json_decref(j->ops);
    j->nextop = 0;
    if (j->ch->op == CHANGE_DISABLE) {
        j->ops = json_array();
        if (j->ops == NULL ||
            (json_is_false(json_object_get(cur, "active"))
                 ? 0
                 : add_op(j->ops,
                          json_pack("{s:s,s:s,s:b}", "op", "replace", "path", "active", "value", 0),
                          1) != 0)) {
            job_nomem(j);
            return;
        }
    } else {
        j->ops = diff_ops(j, cur, &e);
        if (j->ops == NULL) {
            job_fail_err(j, &e);
            return;
        }
    }
    if (j->ch->op == CHANGE_DISABLE && json_array_size(j->ops) == 0) {
        job_finish(j, APPLY_DISABLED);
        return;
    }
    job_next_write(j);
}

/* A create met 409: the object is ours when an earlier attempt of this very request made it
 * and its answer was lost: it was created after this job started and either our HTTP
 * client resent the request (a minute of clock skew allowed), or it holds exactly what we
 * sent (libcurl resends a request by itself, unseen, when a reused connection dies before
 * any answer; then no skew is allowed, so a look-alike made just before is never taken).
 * Or the journal holds our pending create (adopt). */
static int ours(struct job *j, json_t *res)
{
    const char *created =
        json_string_value(json_object_get(json_object_get(res, "meta"), "created"));
    struct dm_err e = {0};
    json_t *ops;
    struct tm tm;
    time_t t;
    int same;

    if (j->ch->adopt) {
        return 1;
    }
    memset(&tm, 0, sizeof(tm));
    if (created == NULL || strptime(created, "%Y-%m-%dT%H:%M:%S", &tm) == NULL ||
        (t = timegm(&tm)) == (time_t)-1) {
        return 0;
    }
    if (j->create_attempts >= 2) {
        return t >= j->started - 60;
    }
    ops = diff_ops(j, res, &e);
    same = ops != NULL && json_array_size(ops) == 0;
    json_decref(ops);
    return same && t >= j->started;
}

static void job_start(struct job *j)
{
    const struct change *ch = j->ch;

    j->started = time(NULL);
    if (ch->target_id != NULL && ch->target_id[0] && strlen(ch->target_id) < sizeof(j->id)) {
        snprintf(j->id, sizeof(j->id), "%s", ch->target_id);
    }
    switch (ch->op) {
    case CHANGE_ADD:
        if (ch->adopt) {
            job_find(j); /* a create the journal recorded before a crash: is it there? */
        } else {
            user_or_group_create(j);
        }
        return;
    case CHANGE_DELETE:
    case CHANGE_DISABLE:
    case CHANGE_MODIFY:
    case CHANGE_MOVE:
        if (j->id[0] == '\0') {
            struct dm_err e = {0};
            dm_err_set(&e, DM_EINVAL, "no target id known for this object");
            job_fail_err(j, &e);
        } else if (ch->op == CHANGE_DELETE) {
            job_path(j, "DELETE", NULL, J_DELETE);
        } else {
            job_path(j, "GET", NULL, J_GET);
        }
        return;
    }
}

static void job_answer(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct job *j = p;
    json_t *body = NULL;
    struct dm_err e = {0};

    if (rc != DM_OK) {
        job_fail(j, r, rc, herr, "request");
        return;
    }
    if (r->body.len > 0 && r->status >= 200 && r->status < 300) {
        body = json_loadb(r->body.data, r->body.len, 0, NULL);
    }
    switch (j->stage) {
    case J_CREATE:
        if ((r->status == 201 || r->status == 200) && note_resource(j, body)) {
            const struct dm_attr *m = entry_attr(j->ch->entry, "member");
            j->created = 1;
            j->changed = 1;
            json_decref(j->ops);
            j->ops = json_array();
            j->nextop = 0;
            if (j->ops == NULL) {
                job_nomem(j);
                break;
            }
            if (j->ch->kind == OBJ_GROUP && m != NULL && m->nvals > j->c->sch.chunk) {
                /* the members the create did not carry, in chunks */
                for (size_t i = j->c->sch.chunk; i < m->nvals; i += j->c->sch.chunk) {
                    size_t to = i + j->c->sch.chunk < m->nvals ? i + j->c->sch.chunk : m->nvals;
                    json_t *op = json_pack("{s:s,s:s,s:o}", "op", "add", "path", "members", "value",
                                           scim_members_of(m, i, to));
                    if (add_op(j->ops, op, 1) != 0) {
                        job_nomem(j);
                        break;
                    }
                }
            }
            if (!j->done) {
                job_next_write(j);
            }
        } else if (r->status == 409) {
            /* the name is taken: our own create whose answer was lost, or someone else's */
            j->create_attempts = r->attempts;
            j->after_409 = 1;
            job_find(j);
        } else if (r->status >= 200 && r->status < 300) {
            dm_err_set(&e, DM_EINTERNAL, "creating: HTTP %ld but the answer has no id", r->status);
            job_fail_err(j, &e);
        } else {
            job_fail(j, r, rc, herr, "creating");
        }
        break;
    case J_FIND:
        if (r->status != 200) {
            job_fail(j, r, rc, herr, "looking up the name");
            break;
        }
        {
            json_t *found = NULL;
            int frc = one_of_list(&found, r, j->ch->entry->dn, &e);
            if (frc == DM_ENOTFOUND && !j->after_409) {
                user_or_group_create(j); /* the pending create never reached the target */
            } else if (frc != DM_OK) {
                if (j->after_409) {
                    dm_err_set(&e, DM_EEXISTS,
                               "the target refused the create as a duplicate (409) but no object "
                               "of that name can be found");
                }
                job_fail_err(j, &e);
            } else if (!ours(j, found)) {
                dm_err_set(&j->res->err, DM_EEXISTS,
                           "%s already exists at the target and was not created by dirmig",
                           j->ch->kind == OBJ_USER ? "a user with this userName"
                                                   : "a group with this displayName");
                dm_err_dn(&j->res->err, j->ch->entry->dn);
                j->res->created_with_hook = 0;
                note_resource(j, found);
                job_finish(j, APPLY_EXISTS);
            } else if (!note_resource(j, found)) {
                dm_err_set(&e, DM_EINTERNAL, "the object found has no id");
                job_fail_err(j, &e);
            } else {
                j->created = j->after_409 && !j->ch->adopt;
                if (!j->created) {
                    j->res->created_with_hook = 0;
                }
                job_converge(j, found);
            }
            json_decref(found);
        }
        break;
    case J_GET:
        if (r->status == 200 && body != NULL && note_resource(j, body)) {
            job_converge(j, body);
        } else if (r->status == 404) {
            /* deleted at the target since it was planned: the next run creates it whole */
            dm_err_set(&e, DM_ENOTFOUND, "updating: the object is no longer at the target");
            job_fail_err(j, &e);
        } else if (r->status == 200) {
            dm_err_set(&e, DM_EINTERNAL, "reading the object: the answer is not a resource");
            job_fail_err(j, &e);
        } else {
            job_fail(j, r, rc, herr, "reading the object");
        }
        break;
    case J_PATCH:
    case J_PUT:
        if (r->status == 200 || r->status == 204) {
            j->changed = 1;
            j->nextop++;
            j->version[0] = '\0';
            if (body != NULL) {
                const char *ver =
                    json_string_value(json_object_get(json_object_get(body, "meta"), "version"));
                if (ver != NULL && strlen(ver) < sizeof(j->version)) {
                    snprintf(j->version, sizeof(j->version), "%s", ver);
                }
            }
            if (j->ch->op == CHANGE_DISABLE) {
                job_finish(j, APPLY_DISABLED);
            } else {
                job_next_write(j);
            }
        } else if (r->status == 412 && j->stale++ < SCIM_MAX_412) {
            job_path(j, "GET", NULL, J_GET); /* changed meanwhile: read it again, recompute */
        } else if (r->status == 404) {
            dm_err_set(&e, DM_ENOTFOUND, "updating: the object is no longer at the target");
            job_fail_err(j, &e);
        } else {
            job_fail(j, r, rc, herr, j->stage == J_PATCH ? "PATCH" : "PUT");
        }
        break;
    case J_DELETE:
        if (r->status == 204 || r->status == 200 || r->status == 404) {
            job_finish(j, APPLY_DELETED);
        } else {
            job_fail(j, r, rc, herr, "deleting");
        }
        break;
    }
    json_decref(body);
}

/* ---- jobs: start, settle, abandon (as in okta.c) ---- */

static void jobs_free(struct conn *c)
{
    while (c->jobs != NULL) {
        struct job *j = c->jobs;
        c->jobs = j->next;
        json_decref(j->ops);
        free(j);
    }
}

static void job_settle(struct job *j)
{
    conn_done_fn fn = j->done_fn;
    void *payload = j->done_payload;
    const struct change *ch = j->ch;
    struct apply_result *res = j->res;
    struct conn *c = j->c;

    if (!j->done) {
        return;
    }
    if (j->prev != NULL) {
        j->prev->next = j->next;
    } else {
        c->jobs = j->next;
    }
    if (j->next != NULL) {
        j->next->prev = j->prev;
    }
    c->nstreamed -= j->bg != 0;
    json_decref(j->ops);
    free(j);
    if (fn != NULL) {
        fn(ch, res, payload);
    }
}

static void on_job(const struct http_response *r, int rc, const struct dm_err *herr, void *p)
{
    struct job *j = p;
    int was = http_background(j->c->http, j->bg);

    job_answer(r, rc, herr, j);
    http_background(j->c->http, was);
    job_settle(j);
}

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

static int scim_apply(struct conn *c, const struct change *v, size_t n, struct apply_result *res)
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

static int scim_apply_start(struct conn *c, const struct change *v, struct apply_result *res,
                            conn_done_fn done, void *payload)
{
    return job_begin(c, v, res, 1, done, payload);
}

static int scim_apply_wait(struct conn *c, long timeout_ms, size_t *inflight, struct dm_err *err)
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

/* SCIM has no password hashes (RFC 7643 §4.1.1: "password" is the cleartext): a cleartext
 * source password is sent at create; a lock marker or placeholder gives no password at all;
 * everyone else signs in through the hook. */
static enum cred_outcome scim_cred_outcome(const struct cred *c, const char **reason)
{
    if (c->kind == CRED_KIND_LOCKED) {
        if (reason != NULL) {
            *reason = "locked or placeholder value: no password";
        }
        return CRED_LOCKED;
    }
    if (c->kind == CRED_KIND_CLEARTEXT) {
        if (reason != NULL) {
            *reason = NULL;
        }
        return CRED_IMPORT;
    }
    if (reason != NULL) {
        *reason = c->kind == CRED_KIND_NONE ? "no password" : "SCIM carries no password hashes";
    }
    return CRED_HOOK;
}

static const struct conn_key scim_keys[] = {
    CONNCFG_HTTP_KEYS,
    {NULL, 0, NULL, 0, .off = 0, .doc = NULL},
};

const struct conn_ops conn_scim_ops = {
    .name = "scim",
    .what = "a SCIM 2.0 service provider",
    .caps = CONN_READ | CONN_WRITE | CONN_HASH_IMPORT | CONN_PASSWORD_HOOK | CONN_GROUPS |
            CONN_NESTED_GROUPS | CONN_DISABLE,
    .open = scim_open,
    .read = scim_read,
    .lookup = scim_lookup,
    .apply = scim_apply,
    .check = scim_check,
    .close = scim_close,
    .apply_start = scim_apply_start,
    .apply_wait = scim_apply_wait,
    .find = scim_find,
    .find_many = scim_find_many,
    .get = scim_get,
    .get_many = scim_get_many,
    .stats = scim_stats,
    .natural_key = {"userName", "displayName"},
    .ident = CONN_IDENT_KEY,
    .members = CONN_MEMBERS_REF,
    .cred_outcome = scim_cred_outcome,
    .keys = scim_keys,
    .config_check = conncfg_check_http,
};
