#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "agent/util/log.h"
#include "connectors/http.h"
#include "tests/unit/pyserver.h"
#include "connectors/okta.h"
#include "tests/unit/fixture.h"

/*
 * Drives conn_okta_ops (connectors/okta.c) directly against the Okta contract server
 * (tests/okta/okta_server.py) on a random loopback port, and checks the server's state
 * through /test/dump, /test/stats and /test/signin. Every log line goes to a file that the
 * last test searches for the token and the password material.
 */

#define TOKEN "00okta-TeSt-t0ken-4c3b2a1908f7e6d5"
#define PW "Corr3ct horse battery"
#define BAD_HASH "{SSHA}n0t*base64*AT-all!!"
#define UMLAUT_LOGIN "j\xc3\xbcrgen+ops@example.com" /* '+' and a 2-byte UTF-8 char */

static char logpath[600];
static char tokpath[600];
static FILE *logf_;
static struct secret *token;
static char ssha[128]; /* {SSHA} of PW, built in setup() */

struct server {
    struct pyserver py;
    char uri[64];
    struct http_client *adm; /* the test's own client: setup calls and /test/ endpoints */
};

/* ---- the contract server ---- */

/* Starts okta_server.py with extra args (NULL-terminated) and waits for READY. */
static void server_start(struct server *s, ...)
{
    const char *fixed[] = {"--port", "0", "--token-file", tokpath, NULL};
    va_list ap;
    struct http_opts o;
    struct dm_err err = {0};
    va_start(ap, s);
    pyserver_vstart(&s->py, "tests/okta/okta_server.py", fixed, ap);
    va_end(ap);
    snprintf(s->uri, sizeof(s->uri), "http://127.0.0.1:%d", s->py.port);
    http_opts_init(&o);
    o.base_url = s->uri;
    o.token = token;
    o.concurrency = 8;
    o.backoff_base_ms = 20;
    o.backoff_max_ms = 200;
    o.max_retries = 10;
    if (http_client_new(&s->adm, &o, &err) != DM_OK) {
        fail_msg("http_client_new: %s", err.msg);
    }
}

static void server_stop(struct server *s)
{
    http_client_free(s->adm);
    s->adm = NULL;
    pyserver_stop(&s->py);
}

/* Synchronous call with the test's client; returns the parsed body (NULL if none). */
static json_t *adm_call(struct server *s, const char *method, const char *path, json_t *body,
                        long want_status)
{
    struct http_response r;
    struct dm_err err = {0};
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *out = NULL;
    int rc;

    if (body == NULL && (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)) {
        text = strdup("");
    }
    rc = http_perform_one(&r, s->adm, method, path, text, text != NULL ? strlen(text) : 0, &err);
    free(text);
    if (rc != DM_OK) {
        fail_msg("%s %s: %s", method, path, err.msg);
    }
    if (r.status != want_status) {
        fail_msg("%s %s: HTTP %ld (want %ld): %s", method, path, r.status, want_status,
                 r.body.data != NULL ? r.body.data : "");
    }
    if (r.body.len > 0) {
        out = json_loadb(r.body.data, r.body.len, 0, NULL);
    }
    http_response_clear(&r);
    return out;
}

static json_t *dump(struct server *s)
{
    json_t *d = adm_call(s, "GET", "/test/dump", NULL, 200);

    assert_non_null(d);
    return d;
}

static long server_stat(struct server *s, const char *name)
{
    json_t *j = adm_call(s, "GET", "/test/stats", NULL, 200);
    long v;

    assert_non_null(json_object_get(j, name));
    v = (long)json_integer_value(json_object_get(j, name));
    json_decref(j);
    return v;
}

/* /test/signin result for login and password: VERIFIED, WRONG_PASSWORD, NEEDS_HOOK,
 * NO_PASSWORD, NOT_ACTIVE, NO_USER */
static void assert_signin(struct server *s, const char *login, const char *pw, const char *want)
{
    json_t *req = json_pack("{s:s,s:s}", "login", login, "password", pw);
    json_t *ans = adm_call(s, "POST", "/test/signin", req, 200);
    const char *got = json_string_value(json_object_get(ans, "result"));

    if (got == NULL || strcmp(got, want) != 0) {
        fail_msg("sign-in of %s: %s, want %s", login, got ? got : "(none)", want);
    }
    json_decref(req);
    json_decref(ans);
}

/* users[login] of a dump, or NULL. */
static json_t *dumped_user(json_t *d, const char *login)
{
    return json_object_get(json_object_get(d, "users"), login);
}

static json_t *dumped_group(json_t *d, const char *name)
{
    return json_object_get(json_object_get(d, "groups"), name);
}

static const char *dumped_str(json_t *obj, const char *a, const char *b)
{
    json_t *x = json_object_get(obj, a);

    if (b != NULL) {
        x = json_object_get(x, b);
    }
    return json_string_value(x);
}

/* Creates a user through the API (no credentials); returns its id in id[64]. */
static void api_user(struct server *s, const char *login, const char *first, const char *title,
                     char id[64])
{
    json_t *body = json_pack("{s:{s:s,s:s,s:s,s:s}}", "profile", "login", login, "email", login,
                             "firstName", first, "lastName", "Tester");
    json_t *u;

    if (title != NULL) {
        json_object_set_new(json_object_get(body, "profile"), "title", json_string(title));
    }
    u = adm_call(s, "POST", "/api/v1/users?activate=true", body, 200);
    snprintf(id, 64, "%s", json_string_value(json_object_get(u, "id")));
    assert_true(strncmp(id, "00u", 3) == 0);
    json_decref(body);
    json_decref(u);
}

static void api_group(struct server *s, const char *name, const char *desc, char id[64])
{
    json_t *body = json_pack("{s:{s:s,s:s}}", "profile", "name", name, "description", desc);
    json_t *g = adm_call(s, "POST", "/api/v1/groups", body, 200);

    snprintf(id, 64, "%s", json_string_value(json_object_get(g, "id")));
    assert_true(strncmp(id, "00g", 3) == 0);
    json_decref(body);
    json_decref(g);
}

struct bulk {
    json_t *ids; /* login -> id */
    int fail;
    char msg[256];
};

static void bulk_done(const struct http_response *r, int rc, const struct dm_err *err, void *p)
{
    struct bulk *b = p;
    json_t *u;

    if (rc != DM_OK || r->status != 200) {
        b->fail++;
        snprintf(b->msg, sizeof(b->msg), "rc %d HTTP %ld %.200s", rc, r->status,
                 rc != DM_OK ? err->msg : r->body.data);
        return;
    }
    u = json_loadb(r->body.data, r->body.len, 0, NULL);
    json_object_set(b->ids,
                    json_string_value(json_object_get(json_object_get(u, "profile"), "login")),
                    json_object_get(u, "id"));
    json_decref(u);
}

/* Creates n users "<prefix>NNNN@example.com" (members of gid unless NULL), all in flight at
 * once; adds login -> id to ids. */
static void api_users_bulk(struct server *s, const char *prefix, int n, const char *gid,
                           json_t *ids)
{
    struct bulk b = {ids, 0, ""};
    struct dm_err err = {0};

    for (int i = 0; i < n; i++) {
        char login[128];
        json_t *body;
        char *text;

        snprintf(login, sizeof(login), "%s%04d@example.com", prefix, i);
        body = json_pack("{s:{s:s,s:s,s:s,s:s}}", "profile", "login", login, "email", login,
                         "firstName", "Bulk", "lastName", prefix);
        if (gid != NULL) {
            json_object_set_new(body, "groupIds", json_pack("[s]", gid));
        }
        text = json_dumps(body, JSON_COMPACT);
        assert_int_equal(http_submit(s->adm, "POST", "/api/v1/users?activate=true", text,
                                     strlen(text), bulk_done, &b, &err),
                         DM_OK);
        free(text);
        json_decref(body);
    }
    assert_int_equal(http_run(s->adm, &err), DM_OK);
    if (b.fail > 0) {
        fail_msg("%d creates failed: %s", b.fail, b.msg);
    }
}

/* ---- the connector ---- */

static void cfg_init(struct conn_cfg *cfg, const char *uri, const struct secret *tok)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->role = "target";
    cfg->type = "okta";
    cfg->uri = uri;
    cfg->token = tok;
    cfg->tls_verify = 1;
    cfg->network_timeout_ms = 2000;
    cfg->op_timeout_ms = 10000;
    cfg->max_retries = 3;
    cfg->concurrency = 4;
    cfg->rate_share_pct = 50;
    cfg->activate = 1;
}

static struct conn *okta_open_ok(const struct conn_cfg *cfg)
{
    struct conn *c = NULL;
    struct dm_err err = {0};

    if (conn_okta_ops.open(&c, cfg, &err) != DM_OK) {
        fail_msg("open: %s", err.msg);
    }
    assert_non_null(c);
    return c;
}

static struct entry *user_entry(const char *login, const char *first, const char *last)
{
    struct entry *e = entry_new(login);

    assert_non_null(e);
    assert_int_equal(entry_add_str(e, "login", login), DM_OK);
    assert_int_equal(entry_add_str(e, "email", login), DM_OK);
    assert_int_equal(entry_add_str(e, "firstName", first), DM_OK);
    assert_int_equal(entry_add_str(e, "lastName", last), DM_OK);
    return e;
}

/* members: NULL-terminated ids */
static struct entry *group_entry(const char *name, const char *desc, const char *const *members)
{
    struct entry *e = entry_new(name);

    assert_non_null(e);
    assert_int_equal(entry_add_str(e, "name", name), DM_OK);
    if (desc != NULL) {
        assert_int_equal(entry_add_str(e, "description", desc), DM_OK);
    }
    for (size_t i = 0; members != NULL && members[i] != NULL; i++) {
        assert_int_equal(entry_add_str(e, "member", members[i]), DM_OK);
    }
    return e;
}

static void user_change(struct change *ch, enum change_op op, const struct entry *e,
                        const char *target_id, const char *password)
{
    memset(ch, 0, sizeof(*ch));
    ch->op = op;
    ch->kind = OBJ_USER;
    ch->entry = e;
    ch->target_id = target_id;
    ch->password = (const unsigned char *)password;
    ch->password_len = password != NULL ? strlen(password) : 0;
}

static void group_change(struct change *ch, enum change_op op, const struct entry *e,
                         const char *target_id)
{
    memset(ch, 0, sizeof(*ch));
    ch->op = op;
    ch->kind = OBJ_GROUP;
    ch->entry = e;
    ch->target_id = target_id;
}

static const char *status_name(enum apply_status st)
{
    static const char *const names[] = {"CREATED", "UPDATED",  "UNCHANGED", "DELETED",
                                        "FAILED",  "DISABLED", "EXISTS"};

    return (size_t)st < DM_ARRAY_LEN(names) ? names[st] : "?";
}

static void assert_status(const struct apply_result *r, enum apply_status want, const char *what)
{
    if (r->status != want) {
        fail_msg("%s: %s, want %s (%s)", what, status_name(r->status), status_name(want),
                 r->err.msg);
    }
}

/* ---- tests ---- */

static void test_open_check(void **state)
{
    struct server s;
    struct conn_cfg cfg;
    struct conn *c = NULL;
    struct secret *wrong = NULL;
    struct dm_err err = {0};
    struct buf out;
    char want[128];
    char uri[64];
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    int fd;

    (void)state;
    server_start(&s, NULL);
    /* wrong token: 401 E0000011, not retried */
    assert_int_equal(secret_from_mem(&wrong, "00not-the-token", 15, &err), DM_OK);
    cfg_init(&cfg, s.uri, wrong);
    assert_int_equal(conn_okta_ops.open(&c, &cfg, &err), DM_EAUTH);
    assert_null(c);
    print_message("wrong token: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "HTTP 401"));
    assert_non_null(strstr(err.msg, "E0000011"));
    assert_null(strstr(err.msg, "00not-the-token"));
    secret_free(wrong);

    /* right token: open, check() describes the target */
    cfg_init(&cfg, s.uri, token);
    cfg.concurrency = 6;
    cfg.rate_share_pct = 40;
    c = okta_open_ok(&cfg);
    buf_init(&out, 0);
    assert_int_equal(conn_okta_ops.check(c, &out, &err), DM_OK);
    print_message("check:\n%s", out.data);
    snprintf(want, sizeof(want), "Okta-style Users/Groups API at %s: token accepted", s.uri);
    assert_non_null(strstr(out.data, want));
    assert_non_null(strstr(out.data, "requests in flight 6, share of each rate limit 40%"));
    assert_non_null(strstr(out.data, "users created ACTIVE"));
    assert_null(strstr(out.data, TOKEN));
    buf_free(&out);
    conn_okta_ops.close(c);
    c = NULL;

    cfg.activate = 0;
    c = okta_open_ok(&cfg);
    buf_init(&out, 0);
    assert_int_equal(conn_okta_ops.check(c, &out, &err), DM_OK);
    assert_non_null(strstr(out.data, "users created STAGED"));
    buf_free(&out);
    /* the server goes away under an open connection: check() fails, not hangs */
    server_stop(&s);
    cfg.max_retries = 1;
    assert_true(conn_okta_ops.check(c, &out, &err) != DM_OK);
    print_message("check, server gone: %s\n", err.msg);
    buf_free(&out);
    conn_okta_ops.close(c);
    c = NULL;

    /* nothing listening: a port that was free a moment ago */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
    close(fd);
    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    cfg_init(&cfg, uri, token);
    cfg.max_retries = 1;
    assert_int_equal(conn_okta_ops.open(&c, &cfg, &err), DM_EUNAVAIL);
    assert_null(c);
    print_message("nothing listening: %s\n", err.msg);
    conn_okta_ops.close(NULL); /* NULL-safe */
}

struct seen {
    json_t *users; /* login -> id, from the dump */
    json_t *got;   /* dn -> key, from read() */
    int n;
    int dup;
    int bad;
};

static int read_cb(const struct entry *e, void *payload)
{
    struct seen *x = payload;
    const char *want = json_string_value(json_object_get(x->users, e->dn));

    x->n++;
    if (json_object_get(x->got, e->dn) != NULL) {
        x->dup++;
    }
    json_object_set_new(x->got, e->dn, json_string(e->key ? e->key : ""));
    if (want == NULL || e->key == NULL || strcmp(want, e->key) != 0 ||
        entry_first(e, "login") == NULL || strcmp(entry_first(e, "login"), e->dn) != 0 ||
        entry_first(e, "status") == NULL || strcmp(entry_first(e, "status"), "ACTIVE") != 0) {
        x->bad++;
    }
    return 0;
}

static int stop_cb(const struct entry *e, void *payload)
{
    (void)e;
    return ++*(int *)payload == 3 ? 42 : 0;
}

static void test_read_find(void **state)
{
    struct server s;
    struct conn_cfg cfg;
    struct conn *c;
    struct dm_err err = {0};
    struct entry *e = NULL;
    json_t *ids = json_object();
    json_t *d;
    struct seen x = {0};
    char big[64], quoted[64], plain[64], back[64], uid[64];
    const char *k;
    json_t *v;
    long req0;
    int stopped = 0;
    const int nbig = 1150;

    (void)state;
    server_start(&s, NULL);
    api_group(&s, "Big group", "more than one member page", big);
    api_group(&s, "Ops \"core\" team", "name with a double quote", quoted);
    api_group(&s, "Ops", "a prefix of the quoted name", plain);
    api_group(&s, "back\\slash", "name with a backslash", back);
    api_users_bulk(&s, "bulk", nbig, big, ids);
    api_user(&s, UMLAUT_LOGIN, "J\xc3\xbcrgen", NULL, uid);
    d = dump(&s);
    assert_int_equal(json_integer_value(json_object_get(d, "user_count")), nbig + 1);

    cfg_init(&cfg, s.uri, token);
    c = okta_open_ok(&cfg);

    /* read(): every user once, dn = login, key = id; 1151 users = 6 pages of 200 */
    x.users = json_object();
    json_object_foreach (json_object_get(d, "users"), k, v) {
        json_object_set(x.users, k, json_object_get(v, "id"));
    }
    x.got = json_object();
    req0 = server_stat(&s, "requests");
    assert_int_equal(conn_okta_ops.read(c, NULL, read_cb, &x, &err), DM_OK);
    print_message("read: %d users in %ld requests, %d duplicates, %d wrong\n", x.n,
                  server_stat(&s, "requests") - req0, x.dup, x.bad);
    assert_int_equal(x.n, nbig + 1);
    assert_int_equal(x.dup, 0);
    assert_int_equal(x.bad, 0);
    assert_int_equal(json_object_size(x.got), nbig + 1);
    assert_int_equal(server_stat(&s, "requests") - req0, (nbig + 1 + 199) / 200);
    /* a callback's non-zero return stops the read and is returned */
    assert_int_equal(conn_okta_ops.read(c, NULL, stop_cb, &stopped, &err), 42);
    assert_int_equal(stopped, 3);

    /* find() a user by login: '+' and a non-ASCII character survive the URL */
    assert_int_equal(conn_okta_ops.find(&e, c, OBJ_USER, UMLAUT_LOGIN, &err), DM_OK);
    assert_string_equal(e->dn, UMLAUT_LOGIN);
    assert_string_equal(e->key, uid);
    assert_string_equal(entry_first(e, "firstName"), "J\xc3\xbcrgen");
    entry_free(e);
    e = NULL;
    /* a login differing only in case is the same Okta user */
    assert_int_equal(conn_okta_ops.find(&e, c, OBJ_USER, "BULK0007@example.com", &err), DM_OK);
    assert_string_equal(e->key, json_string_value(json_object_get(ids, "bulk0007@example.com")));
    entry_free(e);
    e = NULL;
    assert_int_equal(conn_okta_ops.find(&e, c, OBJ_USER, "jurgen+ops@example.com", &err),
                     DM_ENOTFOUND);
    assert_null(e);
    assert_int_equal(conn_okta_ops.lookup(&e, c, "nobody@example.com", &err), DM_ENOTFOUND);
    assert_null(e);
    assert_string_equal(err.dn, "nobody@example.com");

    /* find_many() of users: one search per chunk of 40 logins; found by login whatever the
     * case, absent ones DM_ENOTFOUND, an empty name skipped */
    {
        enum { NF = 100 };
        const char *names[NF];
        char buf[NF][64];
        struct entry *out[NF];
        int rcs[NF];
        struct dm_err errs[NF];

        for (int i = 0; i < NF; i++) {
            if (i % 10 == 9) {
                snprintf(buf[i], sizeof(buf[i]), "absent%04d@example.com", i);
            } else {
                snprintf(buf[i], sizeof(buf[i]),
                         i % 2 ? "BULK%04d@example.com" : "bulk%04d@example.com", i);
            }
            names[i] = buf[i];
        }
        names[3] = "";
        names[4] = UMLAUT_LOGIN;
        names[5] = "quo\"te\\@example.com"; /* escaped in the search expression */
        req0 = server_stat(&s, "requests");
        conn_okta_ops.find_many(c, OBJ_USER, names, NF, out, rcs, errs);
        assert_int_equal(server_stat(&s, "requests") - req0, (NF - 1 + 39) / 40);
        for (int i = 0; i < NF; i++) {
            if (i == 3 || i == 5 || i % 10 == 9) {
                assert_int_equal(rcs[i], DM_ENOTFOUND);
                assert_null(out[i]);
                continue;
            }
            assert_int_equal(rcs[i], DM_OK);
            assert_non_null(out[i]);
            if (i == 4) {
                assert_string_equal(out[i]->key, uid);
            } else {
                char lk[64];
                snprintf(lk, sizeof(lk), "bulk%04d@example.com", i);
                assert_string_equal(out[i]->key, json_string_value(json_object_get(ids, lk)));
                assert_string_equal(out[i]->dn, lk);
            }
            entry_free(out[i]);
        }
    }

    /* find() a group by name, members as ids over two member pages (1000 + 151) */
    req0 = server_stat(&s, "requests");
    assert_int_equal(conn_okta_ops.find(&e, c, OBJ_GROUP, "Big group", &err), DM_OK);
    assert_int_equal(server_stat(&s, "requests") - req0, 1 + 2);
    assert_string_equal(e->dn, "Big group");
    assert_string_equal(e->key, big);
    assert_string_equal(entry_first(e, "description"), "more than one member page");
    {
        const struct dm_attr *m = entry_attr(e, "member");
        json_t *mset = json_object();

        assert_non_null(m);
        assert_int_equal(m->nvals, nbig);
        for (size_t i = 0; i < m->nvals; i++) {
            json_object_set_new(mset, (const char *)m->vals[i].data, json_true());
        }
        assert_int_equal(json_object_size(mset), nbig); /* no id twice */
        json_object_foreach (ids, k, v) {
            assert_non_null(json_object_get(mset, json_string_value(v)));
        }
        json_decref(mset);
    }
    entry_free(e);
    e = NULL;
    /* a name with a double quote; "Ops" alone is a different group */
    assert_int_equal(conn_okta_ops.find(&e, c, OBJ_GROUP, "Ops \"core\" team", &err), DM_OK);
    assert_string_equal(e->dn, "Ops \"core\" team");
    assert_string_equal(e->key, quoted);
    assert_null(entry_attr(e, "member"));
    entry_free(e);
    e = NULL;
    assert_int_equal(conn_okta_ops.find(&e, c, OBJ_GROUP, "Ops", &err), DM_OK);
    assert_string_equal(e->key, plain);
    entry_free(e);
    e = NULL;
    assert_int_equal(conn_okta_ops.find(&e, c, OBJ_GROUP, "back\\slash", &err), DM_OK);
    assert_string_equal(e->key, back);
    entry_free(e);
    e = NULL;
    assert_int_equal(conn_okta_ops.find(&e, c, OBJ_GROUP, "Ops \"core\"", &err), DM_ENOTFOUND);
    assert_null(e);
    assert_non_null(strstr(err.msg, "Ops \"core\""));
    assert_int_equal(conn_okta_ops.find(&e, c, OBJ_GROUP, "nothing", &err), DM_ENOTFOUND);
    assert_null(e);

    /* apply() on the big group: its members are listed over both pages and made equal
     * (the first 5 removed, 2 outsiders added), nothing else written */
    {
        const struct dm_attr *m;
        struct entry *ge = group_entry("Big group", "more than one member page", NULL);
        struct change gc;
        struct apply_result gr;
        long puts0 = server_stat(&s, "member_puts");
        long dels0 = server_stat(&s, "member_deletes");
        char o1[64], o2[64];

        api_user(&s, "outsider1@example.com", "Out", NULL, o1);
        api_user(&s, "outsider2@example.com", "Out", NULL, o2);
        for (int i = 5; i < nbig; i++) {
            char login[64];
            snprintf(login, sizeof(login), "bulk%04d@example.com", i);
            assert_int_equal(
                entry_add_str(ge, "member", json_string_value(json_object_get(ids, login))), DM_OK);
        }
        assert_int_equal(entry_add_str(ge, "member", o1), DM_OK);
        assert_int_equal(entry_add_str(ge, "member", o2), DM_OK);
        group_change(&gc, CHANGE_MODIFY, ge, big);
        assert_int_equal(conn_okta_ops.apply(c, &gc, 1, &gr), DM_OK);
        assert_status(&gr, APPLY_UPDATED, "big group members");
        assert_int_equal(server_stat(&s, "member_puts") - puts0, 2);
        assert_int_equal(server_stat(&s, "member_deletes") - dels0, 5);
        assert_int_equal(conn_okta_ops.find(&e, c, OBJ_GROUP, "Big group", &err), DM_OK);
        m = entry_attr(e, "member");
        assert_int_equal(m->nvals, nbig - 5 + 2);
        entry_free(e);
        e = NULL;
        /* again: listed, equal, UNCHANGED */
        assert_int_equal(conn_okta_ops.apply(c, &gc, 1, &gr), DM_OK);
        assert_status(&gr, APPLY_UNCHANGED, "big group members again");
        assert_int_equal(server_stat(&s, "member_puts") - puts0, 2);
        assert_int_equal(server_stat(&s, "member_deletes") - dels0, 5);
        entry_free(ge);
    }

    json_decref(x.users);
    json_decref(x.got);
    json_decref(ids);
    json_decref(d);
    conn_okta_ops.close(c);
    server_stop(&s);
}

static void test_apply_users(void **state)
{
    struct server s;
    struct conn_cfg cfg;
    struct conn *c;
    struct change ch[11];
    struct apply_result res[11];
    struct entry *e[11];
    char id_diff[64], id_same[64], id_mod[64], id_gone[64], id_dis[64], id_del[64];
    char path[128];
    json_t *d, *u;
    long req0, upd0;

    (void)state;
    server_start(&s, NULL);
    api_user(&s, "exist.diff@example.com", "Old", NULL, id_diff);
    api_user(&s, "exist.same@example.com", "Same", NULL, id_same);
    api_user(&s, "mod.target@example.com", "Mod", "Boss", id_mod);
    api_user(&s, "gone.later@example.com", "Gone", NULL, id_gone);
    api_user(&s, "disable.me@example.com", "Dis", NULL, id_dis);
    api_user(&s, "delete.me@example.com", "Del", NULL, id_del);
    /* gone.later is deleted at the target behind the journal's back */
    snprintf(path, sizeof(path), "/api/v1/users/%s", id_gone);
    json_decref(adm_call(&s, "DELETE", path, NULL, 204));
    json_decref(adm_call(&s, "DELETE", path, NULL, 204));

    cfg_init(&cfg, s.uri, token);
    c = okta_open_ok(&cfg);
    /* the users above exist from a second before this apply: never taken for its own */
    sleep(2);

    e[0] = user_entry("hash.user@example.com", "Hash", "User");
    user_change(&ch[0], CHANGE_ADD, e[0], NULL, ssha);
    e[1] = user_entry("hook.user@example.com", "Hook", "User");
    user_change(&ch[1], CHANGE_ADD, e[1], "", NULL);
    e[2] = user_entry("exist.diff@example.com", "New", "Tester");
    user_change(&ch[2], CHANGE_ADD, e[2], NULL, ssha);
    e[3] = user_entry("exist.same@example.com", "Same", "Tester");
    user_change(&ch[3], CHANGE_ADD, e[3], NULL, NULL);
    ch[3].adopt = 1; /* a create the journal recorded before a crash */
    e[4] = user_entry("mod.target@example.com", "Mod", "Changed");
    user_change(&ch[4], CHANGE_MODIFY, e[4], id_mod, ssha);
    e[5] = user_entry("gone.later@example.com", "Gone", "Back");
    user_change(&ch[5], CHANGE_MODIFY, e[5], id_gone, ssha);
    e[6] = user_entry("bad.hash@example.com", "Bad", "Hash");
    user_change(&ch[6], CHANGE_ADD, e[6], NULL, BAD_HASH);
    e[7] = entry_new("disable.me@example.com");
    user_change(&ch[7], CHANGE_DISABLE, e[7], id_dis, NULL);
    e[8] = entry_new("delete.me@example.com");
    user_change(&ch[8], CHANGE_DELETE, e[8], id_del, NULL);
    e[9] = user_entry("hook.only@example.com", "Hook", "Only");
    user_change(&ch[9], CHANGE_ADD, e[9], NULL, ssha);
    ch[9].hook_only = 1;
    e[10] = user_entry("wide.char@example.com", "Smile \xf0\x9f\x98\x80", "User");
    user_change(&ch[10], CHANGE_ADD, e[10], NULL, NULL);

    assert_int_equal(conn_okta_ops.apply(c, ch, 11, res), DM_OK);
    d = dump(&s);

    /* ADD with an imported {SSHA}: the server verifies the password with it */
    assert_status(&res[0], APPLY_CREATED, "ADD with hash");
    assert_int_equal(res[0].created_with_hook, 0);
    u = dumped_user(d, "hash.user@example.com");
    assert_string_equal(res[0].target_id, dumped_str(u, "id", NULL));
    assert_string_equal(dumped_str(u, "status", NULL), "ACTIVE");
    assert_string_equal(dumped_str(u, "credential", NULL), "hash");
    assert_signin(&s, "hash.user@example.com", PW, "VERIFIED");
    assert_signin(&s, "hash.user@example.com", "wrong password", "WRONG_PASSWORD");

    /* ADD without a password: the password-import hook */
    assert_status(&res[1], APPLY_CREATED, "ADD without password");
    assert_int_equal(res[1].created_with_hook, 1);
    assert_string_equal(res[1].target_id,
                        dumped_str(dumped_user(d, "hook.user@example.com"), "id", NULL));
    assert_signin(&s, "hook.user@example.com", PW, "NEEDS_HOOK");

    /* ADD of a login that someone else created: a collision, never matched and written */
    assert_status(&res[2], APPLY_EXISTS, "ADD of an existing login");
    assert_int_equal(res[2].err.rc, DM_EEXISTS);
    assert_string_equal(res[2].err.dn, "exist.diff@example.com");
    assert_int_equal(res[2].created_with_hook, 0);
    u = dumped_user(d, "exist.diff@example.com");
    assert_string_equal(dumped_str(u, "id", NULL), id_diff);
    assert_string_not_equal(dumped_str(u, "profile", "firstName"), "New");
    /* ... adopted when the change says it is ours (a pending create): UNCHANGED */
    assert_status(&res[3], APPLY_UNCHANGED, "ADD of an existing login, adopted");
    assert_string_equal(res[3].target_id, id_same);

    /* MODIFY with a known id: partial update, other properties kept */
    assert_status(&res[4], APPLY_UPDATED, "MODIFY");
    assert_string_equal(res[4].target_id, id_mod);
    u = dumped_user(d, "mod.target@example.com");
    assert_string_equal(dumped_str(u, "profile", "lastName"), "Changed");
    assert_string_equal(dumped_str(u, "profile", "title"), "Boss");
    assert_string_equal(dumped_str(u, "credential", NULL), "none");

    /* MODIFY with an id deleted at the target: an update never creates (it carries only what
     * differs); the planner sees the user missing next time and creates it whole */
    assert_status(&res[5], APPLY_FAILED, "MODIFY of a deleted id");
    assert_int_equal(res[5].err.rc, DM_ENOTFOUND);
    assert_null(dumped_user(d, "gone.later@example.com"));

    /* a malformed hash fails that change only; the message names the scheme, not the value */
    assert_status(&res[6], APPLY_FAILED, "ADD with a malformed hash");
    print_message("malformed hash: %s (dn=%s)\n", res[6].err.msg, res[6].err.dn);
    assert_non_null(strstr(res[6].err.msg, "SSHA"));
    assert_null(strstr(res[6].err.msg, "n0t*base64"));
    assert_string_equal(res[6].err.dn, "bad.hash@example.com");
    assert_null(dumped_user(d, "bad.hash@example.com"));

    /* DISABLE: deactivated, kept */
    assert_status(&res[7], APPLY_DISABLED, "DISABLE");
    assert_string_equal(res[7].target_id, id_dis);
    assert_string_equal(dumped_str(dumped_user(d, "disable.me@example.com"), "status", NULL),
                        "DEPROVISIONED");
    /* DELETE of an active user: gone */
    assert_status(&res[8], APPLY_DELETED, "DELETE");
    assert_null(dumped_user(d, "delete.me@example.com"));
    /* hook_only: the hook although the hash could be imported */
    assert_status(&res[9], APPLY_CREATED, "ADD hook_only");
    assert_int_equal(res[9].created_with_hook, 1);
    assert_signin(&s, "hook.only@example.com", PW, "NEEDS_HOOK");

    /* a 400 other than "already exists" fails that change, naming code and field */
    assert_status(&res[10], APPLY_FAILED, "ADD with a 4-byte character");
    print_message("4-byte character: %s\n", res[10].err.msg);
    assert_non_null(strstr(res[10].err.msg, "creating the user: HTTP 400 E0000001"));
    assert_non_null(strstr(res[10].err.msg, "firstName"));
    assert_int_equal(res[10].created_with_hook, 0);
    assert_null(dumped_user(d, "wide.char@example.com"));

    /* 6 made by the test - 1 deleted by the test - 1 DELETE + 3 created (the MODIFY of the
     * deleted id creates nothing) */
    assert_int_equal(json_integer_value(json_object_get(d, "user_count")), 6 - 1 - 1 + 3);
    assert_int_equal(server_stat(&s, "duplicates"), 2);
    json_decref(d);

    /* MODIFY of a known id is exactly one request, one partial update */
    req0 = server_stat(&s, "requests");
    upd0 = server_stat(&s, "updates");
    assert_int_equal(conn_okta_ops.apply(c, &ch[4], 1, res), DM_OK);
    assert_status(&res[0], APPLY_UPDATED, "MODIFY again");
    assert_int_equal(server_stat(&s, "requests") - req0, 1);
    assert_int_equal(server_stat(&s, "updates") - upd0, 1);

    /* DELETE of an active user is two DELETEs (deactivate, then delete) */
    req0 = server_stat(&s, "requests");
    {
        struct entry *de = entry_new("hook.user@example.com");
        struct change dc;
        char hid[64];

        d = dump(&s);
        snprintf(hid, sizeof(hid), "%s",
                 dumped_str(dumped_user(d, "hook.user@example.com"), "id", NULL));
        json_decref(d);
        user_change(&dc, CHANGE_DELETE, de, hid, NULL);
        assert_int_equal(conn_okta_ops.apply(c, &dc, 1, res), DM_OK);
        assert_status(&res[0], APPLY_DELETED, "DELETE of an active user");
        assert_int_equal(server_stat(&s, "requests") - req0, 2);
        d = dump(&s);
        assert_null(dumped_user(d, "hook.user@example.com"));
        json_decref(d);
        /* DELETE of what is already gone is DELETED too (idempotent) */
        assert_int_equal(conn_okta_ops.apply(c, &dc, 1, res), DM_OK);
        assert_status(&res[0], APPLY_DELETED, "DELETE of a deleted user");
        /* DELETE without a known id fails with a message */
        dc.target_id = NULL;
        assert_int_equal(conn_okta_ops.apply(c, &dc, 1, res), DM_OK);
        assert_status(&res[0], APPLY_FAILED, "DELETE without id");
        assert_non_null(strstr(res[0].err.msg, "no target id"));
        entry_free(de);
    }
    conn_okta_ops.close(c);

    /* activate = 0: created STAGED (with the hash) */
    cfg.activate = 0;
    c = okta_open_ok(&cfg);
    {
        struct entry *se = user_entry("staged.user@example.com", "Staged", "User");
        struct change sc;

        user_change(&sc, CHANGE_ADD, se, NULL, ssha);
        assert_int_equal(conn_okta_ops.apply(c, &sc, 1, res), DM_OK);
        assert_status(&res[0], APPLY_CREATED, "ADD with activate=0");
        d = dump(&s);
        u = dumped_user(d, "staged.user@example.com");
        assert_string_equal(dumped_str(u, "status", NULL), "STAGED");
        assert_string_equal(dumped_str(u, "credential", NULL), "hash");
        assert_string_equal(res[0].target_id, dumped_str(u, "id", NULL));
        json_decref(d);
        entry_free(se);
    }
    conn_okta_ops.close(c);

    /* Lock markers and placeholders ("*", "!!", "{CRYPT}!...", empty): no credentials at
     * all, STAGED even with activate = 1, never the hook; "*" never signs in. */
    cfg.activate = 1;
    c = okta_open_ok(&cfg);
    {
        static const char *const locked[] = {"*", "!!", "{CRYPT}!$6$salt$hash", "", "x", "NP"};
        for (size_t i = 0; i < DM_ARRAY_LEN(locked); i++) {
            char login[64];
            struct entry *le;
            struct change lc;

            snprintf(login, sizeof(login), "locked%zu@example.com", i);
            le = user_entry(login, "Locked", "User");
            user_change(&lc, CHANGE_ADD, le, NULL, locked[i]);
            assert_int_equal(conn_okta_ops.apply(c, &lc, 1, res), DM_OK);
            assert_status(&res[0], APPLY_CREATED, "ADD of a locked user");
            assert_int_equal(res[0].created_with_hook, 0);
            d = dump(&s);
            u = dumped_user(d, login);
            assert_string_equal(dumped_str(u, "status", NULL), "STAGED");
            assert_string_equal(dumped_str(u, "credential", NULL), "none");
            json_decref(d);
            assert_signin(&s, login, "*", "NOT_ACTIVE");
            assert_signin(&s, login, locked[i][0] ? locked[i] : "x", "NOT_ACTIVE");
            entry_free(le);
        }
    }
    conn_okta_ops.close(c);
    for (size_t i = 0; i < DM_ARRAY_LEN(e); i++) {
        entry_free(e[i]);
    }
    server_stop(&s);
}

/* The member logins of a dumped group, sorted, joined with ','. */
static void members_of(json_t *d, const char *group, char *out, size_t len)
{
    json_t *m = json_object_get(dumped_group(d, group), "members");
    const char *names[64];
    size_t n = 0, i;
    json_t *v;

    out[0] = '\0';
    json_array_foreach (m, i, v) {
        if (n < DM_ARRAY_LEN(names)) {
            names[n++] = json_string_value(v);
        }
    }
    for (size_t a = 1; a < n; a++) {
        for (size_t b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
            const char *t = names[b];
            names[b] = names[b - 1];
            names[b - 1] = t;
        }
    }
    for (size_t a = 0; a < n; a++) {
        snprintf(out + strlen(out), len - strlen(out), "%s%s", a ? "," : "", names[a]);
    }
}

static void test_apply_groups(void **state)
{
    struct server s;
    struct conn_cfg cfg;
    struct conn *c;
    struct change ch[4];
    struct apply_result res[4];
    struct entry *e[4];
    char u1[64], u2[64], u3[64], gx[64], path[160], got[512];
    json_t *d;
    long puts0, dels0, gup0;

    (void)state;
    server_start(&s, NULL);
    api_user(&s, "u1@example.com", "U", NULL, u1);
    api_user(&s, "u2@example.com", "U", NULL, u2);
    api_user(&s, "u3@example.com", "U", NULL, u3);
    api_group(&s, "Existing", "d1", gx);
    snprintf(path, sizeof(path), "/api/v1/groups/%s/users/%s", gx, u1);
    json_decref(adm_call(&s, "PUT", path, NULL, 204));
    snprintf(path, sizeof(path), "/api/v1/groups/%s/users/%s", gx, u2);
    json_decref(adm_call(&s, "PUT", path, NULL, 204));

    cfg_init(&cfg, s.uri, token);
    c = okta_open_ok(&cfg);
    puts0 = server_stat(&s, "member_puts");
    dels0 = server_stat(&s, "member_deletes");
    {
        const char *m12[] = {u1, u2, NULL};
        const char *m23[] = {u3, u2, u3, NULL}; /* a duplicate value is one member */
        const char *mbad[] = {u1, "00uDoesNotExist000", NULL};
        const char *m3[] = {u3, NULL};

        e[0] = group_entry("New group", "n", m12);
        group_change(&ch[0], CHANGE_ADD, e[0], NULL);
        e[1] = group_entry("Existing", "d1", m23);
        group_change(&ch[1], CHANGE_ADD, e[1], NULL);
        ch[1].adopt = 1; /* a create the journal recorded before a crash */
        e[2] = group_entry("Bad members", NULL, mbad);
        group_change(&ch[2], CHANGE_ADD, e[2], NULL);
        e[3] = group_entry("Say \"hi\"", "quoted", m3);
        group_change(&ch[3], CHANGE_ADD, e[3], NULL);
    }
    assert_int_equal(conn_okta_ops.apply(c, ch, 4, res), DM_OK);
    d = dump(&s);
    /* ADD creates, with its members */
    assert_status(&res[0], APPLY_CREATED, "group ADD");
    assert_string_equal(res[0].target_id, dumped_str(dumped_group(d, "New group"), "id", NULL));
    assert_string_equal(dumped_str(dumped_group(d, "New group"), "description", NULL), "n");
    members_of(d, "New group", got, sizeof(got));
    assert_string_equal(got, "u1@example.com,u2@example.com");
    /* ADD of an existing name, adopted: found, members made equal (u3 added, u1 removed) */
    assert_status(&res[1], APPLY_UPDATED, "group ADD of an existing name");
    assert_string_equal(res[1].target_id, gx);
    members_of(d, "Existing", got, sizeof(got));
    assert_string_equal(got, "u2@example.com,u3@example.com");
    /* a member id that does not exist: that group's change fails, with a message */
    assert_status(&res[2], APPLY_FAILED, "group with a missing member");
    print_message("missing member: %s\n", res[2].err.msg);
    assert_non_null(strstr(res[2].err.msg, "1 membership change(s) failed"));
    assert_non_null(strstr(res[2].err.msg, "404"));
    assert_string_equal(res[2].err.dn, "Bad members");
    members_of(d, "Bad members", got, sizeof(got));
    assert_string_equal(got, "u1@example.com");
    /* a name with a double quote */
    assert_status(&res[3], APPLY_CREATED, "group ADD, quoted name");
    assert_string_equal(res[3].target_id, dumped_str(dumped_group(d, "Say \"hi\""), "id", NULL));
    assert_int_equal(json_integer_value(json_object_get(d, "group_count")), 4);
    /* PUTs done: 2 (New group) + 1 (u3 to Existing) + 1 (u1 to Bad members; the missing
     * id is refused) + 1 (Say "hi"); 1 DELETE (u1 from Existing) */
    assert_int_equal(server_stat(&s, "member_puts") - puts0, 5);
    assert_int_equal(server_stat(&s, "member_deletes") - dels0, 1);
    json_decref(d);

    /* the same batch again without adopting: both names are taken, nothing is written */
    puts0 = server_stat(&s, "member_puts");
    gup0 = server_stat(&s, "group_updates");
    ch[0].adopt = ch[1].adopt = 0;
    assert_int_equal(conn_okta_ops.apply(c, ch, 2, res), DM_OK);
    assert_status(&res[0], APPLY_EXISTS, "group ADD of a taken name");
    assert_status(&res[1], APPLY_EXISTS, "group ADD of a taken name");
    assert_int_equal(server_stat(&s, "member_puts"), puts0);
    assert_int_equal(server_stat(&s, "group_updates"), gup0);

    /* the same batch again as resumed creates (ids unknown): found by name, nothing
     * duplicated or written */
    ch[0].adopt = ch[1].adopt = 1;
    assert_int_equal(conn_okta_ops.apply(c, ch, 2, res), DM_OK);
    assert_status(&res[0], APPLY_UNCHANGED, "group ADD again");
    assert_status(&res[1], APPLY_UNCHANGED, "group ADD again");
    assert_string_equal(res[1].target_id, gx);
    assert_int_equal(server_stat(&s, "member_puts"), puts0);
    assert_int_equal(server_stat(&s, "group_updates"), gup0);
    d = dump(&s);
    assert_int_equal(json_integer_value(json_object_get(d, "group_count")), 4);
    json_decref(d);

    /* description change by id: one PUT of the group, members untouched */
    entry_free(e[1]);
    {
        const char *m23[] = {u2, u3, NULL};
        e[1] = group_entry("Existing", "d2", m23);
    }
    group_change(&ch[1], CHANGE_MODIFY, e[1], gx);
    assert_int_equal(conn_okta_ops.apply(c, &ch[1], 1, res), DM_OK);
    assert_status(&res[0], APPLY_UPDATED, "group description change");
    assert_int_equal(server_stat(&s, "group_updates") - gup0, 1);
    assert_int_equal(server_stat(&s, "member_puts"), puts0);
    d = dump(&s);
    assert_string_equal(dumped_str(dumped_group(d, "Existing"), "description", NULL), "d2");
    members_of(d, "Existing", got, sizeof(got));
    assert_string_equal(got, "u2@example.com,u3@example.com");
    json_decref(d);

    /* DELETE of a group */
    {
        struct entry *de = entry_new("Say \"hi\"");
        struct change dc;
        char gid[64];

        d = dump(&s);
        snprintf(gid, sizeof(gid), "%s", dumped_str(dumped_group(d, "Say \"hi\""), "id", NULL));
        json_decref(d);
        group_change(&dc, CHANGE_DELETE, de, gid);
        assert_int_equal(conn_okta_ops.apply(c, &dc, 1, res), DM_OK);
        assert_status(&res[0], APPLY_DELETED, "group DELETE");
        d = dump(&s);
        assert_null(dumped_group(d, "Say \"hi\""));
        assert_int_equal(json_integer_value(json_object_get(d, "group_count")), 3);
        json_decref(d);
        entry_free(de);
    }
    conn_okta_ops.close(c);
    for (size_t i = 0; i < DM_ARRAY_LEN(e); i++) {
        entry_free(e[i]);
    }
    server_stop(&s);
}

static void test_faults(void **state)
{
    enum { N = 300 };
    struct server s;
    struct conn_cfg cfg;
    struct conn *c;
    struct change *ch = calloc(N, sizeof(*ch));
    struct apply_result *res = calloc(N, sizeof(*res));
    struct entry *e[N];
    struct conn_stats st;
    json_t *d;
    int created = 0, unchanged = 0, hooks = 0;
    long dups;

    (void)state;
    assert_non_null(ch);
    assert_non_null(res);
    /* --lose: the server does the request, the answer never arrives (a retried POST then
     * meets E0000001 and must be matched by login) */
    server_start(&s, "--fail-5xx", "0.2", "--drop", "0.05", "--stall", "0.05", "--stall-seconds",
                 "2", "--lose", "0.05", "--seed", "11", NULL);
    cfg_init(&cfg, s.uri, token);
    cfg.op_timeout_ms = 800;
    cfg.max_retries = 8;
    cfg.concurrency = 8;
    c = okta_open_ok(&cfg);
    for (int i = 0; i < N; i++) {
        char login[64];

        snprintf(login, sizeof(login), "fault%03d@example.com", i);
        e[i] = user_entry(login, "Fault", "User");
        user_change(&ch[i], CHANGE_ADD, e[i], NULL, i % 3 == 0 ? ssha : NULL);
    }
    assert_int_equal(conn_okta_ops.apply(c, ch, N, res), DM_OK);
    conn_okta_ops.stats(c, &st);
    d = dump(&s);
    for (int i = 0; i < N; i++) {
        json_t *u = dumped_user(d, e[i]->dn);

        if (res[i].status == APPLY_FAILED) {
            fail_msg("%s: FAILED: %s", e[i]->dn, res[i].err.msg);
        }
        assert_non_null(u);
        assert_string_equal(res[i].target_id, dumped_str(u, "id", NULL));
        assert_string_equal(dumped_str(u, "credential", NULL), i % 3 == 0 ? "hash" : "hook");
        created += res[i].status == APPLY_CREATED;
        unchanged += res[i].status == APPLY_UNCHANGED;
        hooks += res[i].created_with_hook;
    }
    dups = server_stat(&s, "duplicates");
    print_message("faults: %d created, %d matched by login after E0000001 (server saw %ld "
                  "duplicate POSTs, %ld lost answers); requests %lu retries %lu 5xx %lu "
                  "transport %lu 429 %lu\n",
                  created, unchanged, dups, server_stat(&s, "faults_lose"), st.requests, st.retries,
                  st.server_errors, st.transport_errors, st.rate_limited);
    assert_int_equal(json_integer_value(json_object_get(d, "user_count")), N);
    /* Lost answers: when our retry met E0000001 the user is recognised as created by this
     * very request (CREATED, with the credential kind sent); only libcurl's silent resends on
     * a dead reused connection stay invisible and count as UNCHANGED. */
    assert_int_equal(created + unchanged, N);
    assert_true(dups > 0);         /* the E0000001 path was taken */
    assert_true(unchanged < dups); /* and most of them were recognised as ours */
    assert_true(hooks <= N - (N + 2) / 3);
    assert_true(hooks >= N - (N + 2) / 3 - unchanged);
    assert_true(st.retries > 0);
    assert_true(st.server_errors > 0);
    assert_true(st.transport_errors > 0);
    assert_int_equal(st.retries, st.server_errors + st.transport_errors + st.rate_limited);
    assert_true(st.requests >= (unsigned long)N + st.retries);
    assert_signin(&s, "fault000@example.com", PW, "VERIFIED");
    assert_signin(&s, "fault001@example.com", PW, "NEEDS_HOOK");

    /* 20 groups of 15 members each under the same faults: each group once, members exact */
    {
        enum { G = 20, M = 15 };
        struct entry *ge[G];
        char names[G][32];

        for (int g = 0; g < G; g++) {
            snprintf(names[g], sizeof(names[g]), "fault group %02d", g);
            ge[g] = group_entry(names[g], "under faults", NULL);
            for (int k = 0; k < M; k++) {
                assert_int_equal(entry_add_str(ge[g], "member", res[g * M + k].target_id), DM_OK);
            }
            group_change(&ch[g], CHANGE_ADD, ge[g], NULL);
        }
        assert_int_equal(conn_okta_ops.apply(c, ch, G, res), DM_OK);
        json_decref(d);
        d = dump(&s);
        assert_int_equal(json_integer_value(json_object_get(d, "group_count")), G);
        for (int g = 0; g < G; g++) {
            json_t *gm = json_object_get(dumped_group(d, names[g]), "members");
            if (res[g].status == APPLY_FAILED) {
                fail_msg("%s: FAILED: %s", names[g], res[g].err.msg);
            }
            assert_true(res[g].status == APPLY_CREATED || res[g].status == APPLY_UPDATED);
            assert_string_equal(res[g].target_id,
                                dumped_str(dumped_group(d, names[g]), "id", NULL));
            /* a list in PUT order: M entries, each one of the wanted logins, none twice */
            assert_int_equal(json_array_size(gm), M);
            for (size_t k = 0; k < M; k++) {
                int idx = -1;
                assert_int_equal(
                    sscanf(json_string_value(json_array_get(gm, k)), "fault%d@example.com", &idx),
                    1);
                assert_true(idx >= g * M && idx < (g + 1) * M);
                for (size_t q = 0; q < k; q++) {
                    assert_string_not_equal(json_string_value(json_array_get(gm, q)),
                                            json_string_value(json_array_get(gm, k)));
                }
            }
            entry_free(ge[g]);
        }
    }
    json_decref(d);
    conn_okta_ops.close(c);
    for (int i = 0; i < N; i++) {
        entry_free(e[i]);
    }
    free(ch);
    free(res);
    server_stop(&s);
}

/* Runs last: nothing logged so far holds the token or password material. */
static void test_nothing_secret_logged(void **state)
{
    static char buf[1 << 20];
    FILE *f;
    size_t n;

    (void)state;
    fflush(logf_);
    f = fopen(logpath, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    print_message("log: %zu bytes\n", n);
    assert_true(n > 0); /* retries and failures were logged */
    assert_null(strstr(buf, TOKEN));
    assert_null(strstr(buf, "SSWS"));
    assert_null(strstr(buf, ssha + 6)); /* the base64 of the {SSHA} value */
    assert_null(strstr(buf, "n0t*base64"));
    assert_null(strstr(buf, PW));
}

/* {SSHA} of PW: base64(SHA1(PW || salt) || salt) */
static int make_ssha(void)
{
    static const unsigned char salt[8] = {0x5a, 0x17, 0x80, 0x01, 0xfe, 0x42, 0x09, 0xc3};
    unsigned char raw[20 + sizeof(salt)];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, PW, strlen(PW)) == 1 &&
             EVP_DigestUpdate(ctx, salt, sizeof(salt)) == 1 &&
             EVP_DigestFinal_ex(ctx, raw, &mdlen) == 1 && mdlen == 20;

    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return -1;
    }
    memcpy(raw + 20, salt, sizeof(salt));
    memcpy(ssha, "{SSHA}", 6);
    EVP_EncodeBlock((unsigned char *)ssha + 6, raw, (int)sizeof(raw));
    return 0;
}

static int setup(void **state)
{
    struct dm_err err = {0};
    FILE *f;

    (void)state;
    if (fixture_setup(state) != 0 || make_ssha() != 0) {
        return -1;
    }
    snprintf(logpath, sizeof(logpath), "%s/log", fixture_tmpdir());
    snprintf(tokpath, sizeof(tokpath), "%s/token", fixture_tmpdir());
    f = fopen(tokpath, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(TOKEN "\n", f);
    fclose(f);
    chmod(tokpath, 0600);
    if (secret_from_mem(&token, TOKEN, strlen(TOKEN), &err) != DM_OK) {
        return -1;
    }
    logf_ = fopen(logpath, "w");
    if (logf_ == NULL) {
        return -1;
    }
    log_init(LOG_LVL_DEBUG, logf_, 0);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    secret_free(token);
    log_init(LOG_LVL_WARN, NULL, 0);
    if (logf_ != NULL) {
        fclose(logf_);
    }
    return fixture_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_check),  cmocka_unit_test(test_read_find),
        cmocka_unit_test(test_apply_users), cmocka_unit_test(test_apply_groups),
        cmocka_unit_test(test_faults),      cmocka_unit_test(test_nothing_secret_logged),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
