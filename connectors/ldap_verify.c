#include <config.h>
#include "connectors/ldap_verify.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/util/log.h"
#include "connectors/ldap_common.h"

/*
 * Two pools of ldap_common sessions (search, bind). A pool is a fixed array of slots and a
 * stack of free slot indexes under one mutex; a caller takes a slot for one operation and
 * gives it back. A slot whose connection failed or timed out is closed before it is given
 * back, so the next taker reconnects; nothing else ever reconnects (no background thread,
 * no backoff: the deadline is the only limit, and a refused connect costs well under a ms).
 */

#define LV_MAX_FILTER 4096
#define LV_MAX_DN 2048
#define LV_MIN_OP_MS 20 /* below this much time left, do not start an LDAP call */

struct lv_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct ldap_common_sess *sess;
    size_t *freelist;
    size_t nfree, n;
    struct conn_cfg cfg; /* search: the source settings; bind: the same, unbound */
    const char *name;
};

struct ldap_verify {
    struct ldap_verify_cfg cfg;
    struct lv_pool search, bind;
};

const char *ldap_verify_result_name(enum ldap_verify_result r)
{
    switch (r) {
    case LDAP_VERIFY_OK:
        return "verified";
    case LDAP_VERIFY_WRONG:
        return "wrong_password";
    case LDAP_VERIFY_UNKNOWN:
        return "unknown_user";
    case LDAP_VERIFY_AMBIGUOUS:
        return "ambiguous_user";
    case LDAP_VERIFY_INVALID:
        return "invalid_input";
    case LDAP_VERIFY_SOURCE_ERROR:
        return "source_error";
    }
    return "?";
}

static const struct {
    const char *code; /* lowercase hex, as AD writes it */
    const char *name;
} ad_codes[LDAP_VERIFY_R__LAST] = {
    [LDAP_VERIFY_R_NONE] = {"", ""},
    [LDAP_VERIFY_R_WRONG_PASSWORD] = {"52e", "wrong_password"},
    [LDAP_VERIFY_R_NO_SUCH_USER] = {"525", "no_such_user"},
    [LDAP_VERIFY_R_LOGON_HOURS] = {"530", "logon_hours"},
    [LDAP_VERIFY_R_WORKSTATION] = {"531", "workstation_restricted"},
    [LDAP_VERIFY_R_PASSWORD_EXPIRED] = {"532", "password_expired"},
    [LDAP_VERIFY_R_ACCOUNT_DISABLED] = {"533", "account_disabled"},
    [LDAP_VERIFY_R_ACCOUNT_EXPIRED] = {"701", "account_expired"},
    [LDAP_VERIFY_R_MUST_CHANGE_PASSWORD] = {"773", "must_change_password"},
    [LDAP_VERIFY_R_ACCOUNT_LOCKED] = {"775", "account_locked"},
    [LDAP_VERIFY_R_OTHER] = {"", "ad_other"},
};

enum ldap_verify_reason ldap_verify_ad_reason(const char *diag)
{
    const char *p = diag;
    char code[9];
    size_t n;

    /* "... AcceptSecurityContext error, data 52e, v4563": the word "data", a space, hex */
    while (p != NULL && (p = strstr(p, "data ")) != NULL) {
        p += 5;
        for (n = 0;
             n < sizeof(code) - 1 && ((p[n] >= '0' && p[n] <= '9') ||
                                      (p[n] >= 'a' && p[n] <= 'f') || (p[n] >= 'A' && p[n] <= 'F'));
             n++) {
            code[n] = (char)(p[n] >= 'A' && p[n] <= 'F' ? p[n] - 'A' + 'a' : p[n]);
        }
        if (n == 0 || (p[n] != ',' && p[n] != '\0' && p[n] != ' ')) {
            continue;
        }
        code[n] = '\0';
        for (int r = LDAP_VERIFY_R_WRONG_PASSWORD; r < LDAP_VERIFY_R_OTHER; r++) {
            if (strcmp(code, ad_codes[r].code) == 0) {
                return (enum ldap_verify_reason)r;
            }
        }
        return LDAP_VERIFY_R_OTHER;
    }
    return LDAP_VERIFY_R_NONE;
}

const char *ldap_verify_reason_name(enum ldap_verify_reason r)
{
    return r < LDAP_VERIFY_R__LAST ? ad_codes[r].name : "";
}

enum ldap_verify_reason ldap_verify_reason_from_name(const char *s)
{
    for (int r = LDAP_VERIFY_R_WRONG_PASSWORD; s != NULL && s[0] && r < LDAP_VERIFY_R__LAST; r++) {
        if (strcmp(s, ad_codes[r].name) == 0) {
            return (enum ldap_verify_reason)r;
        }
    }
    return LDAP_VERIFY_R_NONE;
}

long long ldap_verify_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ms_to_tv(struct timeval *tv, long long ms)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static int pool_init(struct lv_pool *p, const struct conn_cfg *cfg, size_t n, const char *name)
{
    pthread_condattr_t ca;

    p->name = name;
    p->cfg = *cfg;
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->sess = calloc(n, sizeof(*p->sess));
    p->freelist = calloc(n, sizeof(*p->freelist));
    if (p->sess == NULL || p->freelist == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        p->freelist[i] = n - 1 - i;
    }
    p->nfree = n;
    return DM_OK;
}

static void pool_destroy(struct lv_pool *p)
{
    if (p->n == 0) {
        return; /* never initialised */
    }
    for (size_t i = 0; p->sess != NULL && i < p->n; i++) {
        ldap_common_close(&p->sess[i]);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->sess);
    free(p->freelist);
}

/* Takes a free slot, waiting until deadline; -1 when none became free in time. */
static long pool_get(struct lv_pool *p, long long deadline)
{
    struct timespec ts;
    long idx = -1;

    ts.tv_sec = (time_t)(deadline / 1000);
    ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    if (p->nfree > 0) {
        idx = (long)p->freelist[--p->nfree];
    }
    pthread_mutex_unlock(&p->mu);
    return idx;
}

static void pool_put(struct lv_pool *p, long idx)
{
    pthread_mutex_lock(&p->mu);
    p->freelist[p->nfree++] = (size_t)idx;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Opens the slot's connection if it has none, with the connect and operation timeouts cut
 * to the time left. *fresh tells whether it was opened now. */
static int slot_ensure(struct lv_pool *p, long idx, long long deadline, int *fresh,
                       struct dm_err *err)
{
    struct ldap_common_sess *s = &p->sess[idx];
    struct conn_cfg c = p->cfg;
    long long left = deadline - ldap_verify_now_ms();

    *fresh = 0;
    if (s->ld != NULL) {
        return DM_OK;
    }
    if (left < LV_MIN_OP_MS) {
        return dm_err_set(err, DM_EUNAVAIL, "%s: deadline reached before connecting", c.uri);
    }
    if (c.network_timeout_ms <= 0 || c.network_timeout_ms > left) {
        c.network_timeout_ms = (int)left;
    }
    if (c.op_timeout_ms <= 0 || c.op_timeout_ms > left) {
        c.op_timeout_ms = (int)left;
    }
    *fresh = 1;
    return ldap_common_open(s, &c, err);
}

/* Drops a connection that failed or timed out (its state is unknown). */
static void slot_drop(struct lv_pool *p, long idx)
{
    ldap_common_close(&p->sess[idx]);
}

int ldap_verify_escape_dn_value(char *out, size_t outlen, const char *value, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value[i];
        int esc = strchr("\"+,;<>\\=", ch) != NULL || ch < 0x20 || ch == 0x7f ||
                  (i == 0 && (ch == '#' || ch == ' ')) || (i == len - 1 && ch == ' ');
        if (o + (esc ? 3 : 1) >= outlen) {
            return -1;
        }
        if (esc) {
            out[o++] = '\\';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    if (o >= outlen) {
        return -1;
    }
    out[o] = '\0';
    return (int)o;
}

/* DN from the template with {login} replaced (every occurrence). */
static int template_dn(char *out, size_t outlen, const char *tmpl, const char *login,
                       size_t login_len)
{
    char esc[LV_MAX_DN];
    size_t o = 0, elen;
    int n = ldap_verify_escape_dn_value(esc, sizeof(esc), login, login_len);

    if (n < 0) {
        return -1;
    }
    elen = (size_t)n;
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "{login}", 7) == 0) {
            if (o + elen >= outlen) {
                return -1;
            }
            memcpy(out + o, esc, elen);
            o += elen;
            p += 7;
        } else {
            if (o + 1 >= outlen) {
                return -1;
            }
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return 0;
}

/* (&FILTER(|(a1=v)(a2=v)...)) with v RFC 4515-escaped by libldap. */
static int build_filter(char *out, size_t outlen, const struct ldap_verify_cfg *cfg,
                        const char *login, size_t login_len, struct dm_err *err)
{
    struct berval in = {(ber_len_t)login_len, (char *)login};
    struct berval esc = {0, NULL};
    size_t o = 0;
    int n, rc = DM_OK;

    if (ldap_bv2escaped_filter_value(&in, &esc) != 0) {
        return dm_err_set(err, DM_ENOMEM, "escaping the login");
    }
    n = snprintf(out, outlen, "(&%s(|", cfg->filter != NULL ? cfg->filter : "");
    o = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; cfg->login_attrs[i] != NULL && o < outlen; i++) {
        n = snprintf(out + o, outlen - o, "(%s=%s)", cfg->login_attrs[i], esc.bv_val);
        o += n > 0 ? (size_t)n : 0;
    }
    if (o < outlen) {
        n = snprintf(out + o, outlen - o, "))");
        o += n > 0 ? (size_t)n : 0;
    }
    if (o >= outlen) {
        rc = dm_err_set(err, DM_ELIMIT, "search filter longer than %zu bytes", outlen);
    }
    ber_memfree(esc.bv_val);
    return rc;
}

/* One search for the login on a search connection: *dn gets the one matching DN. */
static enum ldap_verify_result find_dn(char *dn, size_t dnlen, struct ldap_verify *v,
                                       const char *filter, long long deadline, struct dm_err *err)
{
    struct lv_pool *p = &v->search;
    char *attrs[] = {(char *)LDAP_NO_ATTRS, NULL};
    enum ldap_verify_result res = LDAP_VERIFY_SOURCE_ERROR;
    LDAPMessage *msg = NULL;
    struct timeval tv;
    long idx;
    int fresh, lrc = LDAP_OTHER, count;
    long long left;

    idx = pool_get(p, deadline - LV_MIN_OP_MS);
    if (idx < 0) {
        dm_err_set(err, DM_EUNAVAIL, "no free search connection before the deadline");
        return LDAP_VERIFY_SOURCE_ERROR;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (slot_ensure(p, idx, deadline, &fresh, err) != DM_OK) {
            goto done;
        }
        left = deadline - ldap_verify_now_ms();
        if (left < LV_MIN_OP_MS) {
            dm_err_set(err, DM_EUNAVAIL, "deadline reached before the search");
            goto done;
        }
        ms_to_tv(&tv, left);
        log_debug("ldap_search_ext(base=\"%s\", filter=\"%s\", sizelimit=2) uri=%s",
                  v->cfg.search_base, filter, p->cfg.uri);
        /* sizelimit 2: one entry is the answer, two mean the login is ambiguous. */
        lrc = ldap_search_ext_s(p->sess[idx].ld, v->cfg.search_base, LDAP_SCOPE_SUBTREE, filter,
                                attrs, 0, NULL, NULL, &tv, 2, &msg);
        if (ldap_common_is_conn_err(lrc)) {
            ldap_msgfree(msg);
            msg = NULL;
            ldap_to_rc(err, NULL, lrc, NULL, NULL, "search for the login");
            slot_drop(p, idx);
            if (!fresh && lrc != LDAP_TIMEOUT) {
                continue; /* a pooled connection that died since its last use: retry once */
            }
            goto done;
        }
        break;
    }
    if (lrc != LDAP_SUCCESS && lrc != LDAP_SIZELIMIT_EXCEEDED && lrc != LDAP_NO_SUCH_OBJECT) {
        ldap_to_rc(err, NULL, lrc, NULL, NULL, "search for the login");
        goto done;
    }
    count = msg != NULL ? ldap_count_entries(p->sess[idx].ld, msg) : 0;
    if (count > 1 || lrc == LDAP_SIZELIMIT_EXCEEDED) {
        dm_err_set(err, DM_EINVAL, "the login matches more than one entry");
        res = LDAP_VERIFY_AMBIGUOUS;
        goto done;
    }
    if (lrc == LDAP_NO_SUCH_OBJECT || (lrc == LDAP_SUCCESS && count == 0)) {
        res = LDAP_VERIFY_UNKNOWN;
        goto done;
    }
    if (lrc != LDAP_SUCCESS) {
        ldap_to_rc(err, p->sess[idx].ld, lrc, NULL, NULL, "search for the login");
        goto done;
    }
    {
        char *d = ldap_get_dn(p->sess[idx].ld, ldap_first_entry(p->sess[idx].ld, msg));
        if (d == NULL || strlen(d) >= dnlen) {
            ldap_memfree(d);
            dm_err_set(err, DM_ELIMIT, "the user's DN is too long");
            goto done;
        }
        snprintf(dn, dnlen, "%s", d);
        ldap_memfree(d);
    }
    res = LDAP_VERIFY_OK;
done:
    ldap_msgfree(msg);
    pool_put(p, idx);
    return res;
}

/* The simple bind as dn with the password, on a bind connection. */
static enum ldap_verify_result try_bind(struct ldap_verify *v, const char *dn, const char *pw,
                                        size_t pw_len, long long deadline, struct dm_err *err)
{
    struct lv_pool *p = &v->bind;
    enum ldap_verify_result res = LDAP_VERIFY_SOURCE_ERROR;
    struct berval cred = {(ber_len_t)pw_len, (char *)pw};
    LDAPMessage *msg = NULL;
    struct timeval tv;
    long idx;
    int fresh, lrc = LDAP_OTHER, msgid, got;
    long long left;
    char *diag = NULL;
    enum ldap_verify_reason why;

    idx = pool_get(p, deadline - LV_MIN_OP_MS);
    if (idx < 0) {
        dm_err_set(err, DM_EUNAVAIL, "no free bind connection before the deadline");
        return LDAP_VERIFY_SOURCE_ERROR;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        LDAP *ld;

        if (slot_ensure(p, idx, deadline, &fresh, err) != DM_OK) {
            goto done;
        }
        ld = p->sess[idx].ld;
        left = deadline - ldap_verify_now_ms();
        if (left < LV_MIN_OP_MS) {
            dm_err_set(err, DM_EUNAVAIL, "deadline reached before the bind");
            goto done;
        }
        log_debug("ldap_sasl_bind(dn=\"%s\", mech=SIMPLE, pw=***) uri=%s", dn, p->cfg.uri);
        lrc = ldap_sasl_bind(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, &msgid);
        if (lrc == LDAP_SUCCESS) {
            ms_to_tv(&tv, left);
            got = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &msg);
            if (got == 0) {
                /* Timed out: the connection holds an unanswered bind; drop it. */
                dm_err_set(err, DM_EUNAVAIL, "%s: bind: no answer before the deadline", p->cfg.uri);
                slot_drop(p, idx);
                goto done;
            }
            if (got < 0) {
                ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &lrc);
            } else {
                lrc = LDAP_OTHER;
                ldap_memfree(diag);
                diag = NULL;
                if (ldap_parse_result(ld, msg, &lrc, NULL, &diag, NULL, NULL, 1) != LDAP_SUCCESS) {
                    ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &lrc);
                }
                msg = NULL;
            }
        }
        if (ldap_common_is_conn_err(lrc)) {
            ldap_to_rc(err, NULL, lrc, NULL, NULL, "bind as the user");
            slot_drop(p, idx);
            if (!fresh) {
                continue; /* the pooled connection died since its last use: retry once */
            }
            goto done;
        }
        break;
    }
    switch (lrc) {
    case LDAP_SUCCESS:
        res = LDAP_VERIFY_OK;
        break;
    case LDAP_INVALID_CREDENTIALS: /* 49 */
        /* AD names the reason (disabled, expired, locked, ...) in the diagnostic; it is
         * recorded, and the answer stays UNVERIFIED whatever it says. */
        why = ldap_verify_ad_reason(diag);
        res = why == LDAP_VERIFY_R_NO_SUCH_USER ? LDAP_VERIFY_UNKNOWN : LDAP_VERIFY_WRONG;
        if (why != LDAP_VERIFY_R_NONE && err != NULL) {
            dm_err_set(err, DM_EAUTH, "%s", ldap_verify_reason_name(why));
            err->ldap_rc = LDAP_INVALID_CREDENTIALS;
        }
        break;
    case LDAP_INAPPROPRIATE_AUTH:   /* 48: e.g. the entry has no userPassword */
    case LDAP_UNWILLING_TO_PERFORM: /* 53: account disabled or locked */
    case LDAP_CONSTRAINT_VIOLATION: /* 19: ppolicy lockout on some servers */
        res = LDAP_VERIFY_WRONG;
        break;
    case LDAP_NO_SUCH_OBJECT:
        res = LDAP_VERIFY_UNKNOWN;
        break;
    default:
        ldap_to_rc(err, NULL, lrc, NULL, NULL, "bind as the user");
        res = LDAP_VERIFY_SOURCE_ERROR;
        break;
    }
done:
    ldap_memfree(diag);
    ldap_msgfree(msg);
    pool_put(p, idx);
    return res;
}

enum ldap_verify_result ldap_verify_password(char *dn_out, size_t dn_len, struct ldap_verify *v,
                                             const char *login, size_t login_len, const char *pw,
                                             size_t pw_len, long long deadline_ms,
                                             struct dm_err *err)
{
    char filter[LV_MAX_FILTER];
    char dn[LV_MAX_DN];
    enum ldap_verify_result r;

    if (dn_out != NULL && dn_len > 0) {
        dn_out[0] = '\0';
    }
    if (login == NULL || pw == NULL || login_len == 0 || pw_len == 0 ||
        memchr(login, '\0', login_len) != NULL || memchr(pw, '\0', pw_len) != NULL) {
        return LDAP_VERIFY_INVALID;
    }
    if (v->cfg.dn_template != NULL) {
        if (template_dn(dn, sizeof(dn), v->cfg.dn_template, login, login_len) != 0) {
            return LDAP_VERIFY_INVALID;
        }
    } else {
        if (build_filter(filter, sizeof(filter), &v->cfg, login, login_len, err) != DM_OK) {
            return LDAP_VERIFY_INVALID;
        }
        r = find_dn(dn, sizeof(dn), v, filter, deadline_ms, err);
        if (r != LDAP_VERIFY_OK) {
            return r;
        }
    }
    if (dn_out != NULL && dn_len > 0) {
        snprintf(dn_out, dn_len, "%s", dn);
    }
    return try_bind(v, dn, pw, pw_len, deadline_ms, err);
}

int ldap_verify_ping(struct ldap_verify *v, long long deadline_ms, struct dm_err *err)
{
    struct lv_pool *p = &v->search;
    char *attrs[] = {(char *)LDAP_NO_ATTRS, NULL};
    LDAPMessage *msg = NULL;
    struct timeval tv;
    long long left;
    long idx;
    int fresh, lrc, rc = DM_EUNAVAIL;

    idx = pool_get(p, deadline_ms - LV_MIN_OP_MS);
    if (idx < 0) {
        return dm_err_set(err, DM_EUNAVAIL, "no free search connection before the deadline");
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = slot_ensure(p, idx, deadline_ms, &fresh, err);
        if (rc != DM_OK) {
            goto done;
        }
        left = deadline_ms - ldap_verify_now_ms();
        if (left < LV_MIN_OP_MS) {
            rc = dm_err_set(err, DM_EUNAVAIL, "deadline reached before the root DSE read");
            goto done;
        }
        ms_to_tv(&tv, left);
        lrc = ldap_search_ext_s(p->sess[idx].ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0,
                                NULL, NULL, &tv, 1, &msg);
        ldap_msgfree(msg);
        msg = NULL;
        rc = ldap_to_rc(err, NULL, lrc, NULL, NULL, "root DSE read");
        if (ldap_common_is_conn_err(lrc)) {
            slot_drop(p, idx);
            if (!fresh && lrc != LDAP_TIMEOUT) {
                continue;
            }
        }
        break;
    }
done:
    pool_put(p, idx);
    return rc;
}

int ldap_verify_new(struct ldap_verify **out, const struct ldap_verify_cfg *cfg, struct dm_err *err)
{
    struct ldap_verify *v = calloc(1, sizeof(*v));
    struct conn_cfg bind_cfg;
    int version = 0;
    size_t n;
    int rc;

    if (v == NULL) {
        return dm_err_set(err, DM_ENOMEM, "ldap_verify_new");
    }
    /* libldap's global options are initialised by the first call; make it here, on one
     * thread, before the workers (libldap's global options must not be initialised by two
     * threads at once). */
    ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &version);
    v->cfg = *cfg;
    if (cfg->dn_template == NULL &&
        (cfg->login_attrs == NULL || cfg->login_attrs[0] == NULL || cfg->search_base == NULL)) {
        rc = dm_err_set(err, DM_EINVAL, "hook: login attributes and a search base are needed");
        goto done;
    }
    n = cfg->pool_size > 0 ? (size_t)cfg->pool_size : 1;
    /* The bind pool connects without binding: the user's bind is its first operation.
     * StartTLS / ldaps:// settings stay, so the password never crosses in clear text
     * unless the source itself is configured as plain ldap://. */
    bind_cfg = *cfg->conn;
    bind_cfg.bind_dn = NULL;
    bind_cfg.bind_pw = NULL;
    bind_cfg.sasl_mech = NULL;
    if (pool_init(&v->search, cfg->conn, n, "search") != DM_OK ||
        pool_init(&v->bind, &bind_cfg, n, "bind") != DM_OK) {
        rc = dm_err_set(err, DM_ENOMEM, "ldap_verify_new: pools");
        goto done;
    }
    *out = v;
    v = NULL;
    rc = DM_OK;
done:
    ldap_verify_free(v);
    return rc;
}

void ldap_verify_free(struct ldap_verify *v)
{
    if (v == NULL) {
        return;
    }
    pool_destroy(&v->search);
    pool_destroy(&v->bind);
    free(v);
}
