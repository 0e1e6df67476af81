#include <config.h>
#include "connectors/ldap_verify.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/util/log.h"
#include "connectors/ad.h"
#include "connectors/ldap_common.h"
#include "schema/cred.h"
#include "schema/dn.h"
#include "schema/transform.h"

/*
 * Two pools of ldap_common sessions (search, bind). A pool is a fixed array of slots and a
 * stack of free slot indexes under one mutex; a caller takes a slot for one operation and
 * gives it back. A slot whose connection failed or timed out is closed before it is given
 * back, so the next taker reconnects; nothing else ever reconnects (no background thread,
 * no backoff: the deadline is the only limit, and a refused connect costs well under a ms).
 */

#define LV_MAX_FILTER 4096
#define LV_MAX_DN LDAP_VERIFY_MAX_DN
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
    int ad;             /* source.dialect "ad" */
    pthread_mutex_t mu; /* guards policy and dir_base */
    struct ldap_verify_policy policy;
    char dir_base[LV_MAX_DN]; /* the naming context: where an account outside the search
                               * base or filter is looked up; "" = the source base */
};

/* What resolve asks for: the identity, and everything that says whether the account can
 * verify, never more: OpenLDAP ppolicy's operational attributes (slapo-ppolicy(5)), or AD's
 * account control (userAccountControl, accountExpires, lockoutTime, pwdLastSet). */
static const char *const ldap_attrs[] = {"entryUUID",      "userPassword", "pwdAccountLockedTime",
                                         "pwdFailureTime", "pwdReset",     NULL};
static const char *const ad_attrs[] = {"objectGUID",
                                       "userAccountControl",
                                       "accountExpires",
                                       "lockoutTime",
                                       "msDS-User-Account-Control-Computed",
                                       "badPwdCount",
                                       "badPasswordTime",
                                       "pwdLastSet",
                                       "userPassword",
                                       NULL};

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
    case LDAP_VERIFY_INELIGIBLE:
        return "ineligible";
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
    [LDAP_VERIFY_R_OUT_OF_SCOPE] = {"", "out_of_scope"},
    [LDAP_VERIFY_R_NO_PASSWORD] = {"", "no_password"},
    [LDAP_VERIFY_R_RECENT_CHANGE] = {"", "password_recently_changed"},
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

int ldap_verify_squeeze_spaces(char *out, size_t outlen, const char *login, size_t len)
{
    size_t o = 0, i = 0;

    while (i < len && login[i] == ' ') {
        i++;
    }
    for (; i < len; i++) {
        if (login[i] == ' ' && (i + 1 == len || login[i + 1] == ' ')) {
            continue; /* a run of spaces becomes its last one; a trailing run goes */
        }
        if (o + 1 >= outlen) {
            return -1;
        }
        out[o++] = login[i];
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

/* (&FILTER(|(a1=v)(a2=v)...)), or (|(a1=v)...) without the users filter, with v RFC
 * 4515-escaped by libldap. */
static int build_filter(char *out, size_t outlen, const struct ldap_verify_cfg *cfg,
                        int with_filter, const char *login, size_t login_len, struct dm_err *err)
{
    struct berval in = {(ber_len_t)login_len, (char *)login};
    struct berval esc = {0, NULL};
    const char *f = with_filter && cfg->filter != NULL ? cfg->filter : "";
    size_t o = 0;
    int n, rc = DM_OK;

    if (ldap_bv2escaped_filter_value(&in, &esc) != 0) {
        return dm_err_set(err, DM_ENOMEM, "escaping the login");
    }
    n = snprintf(out, outlen, "(&%s(|", f);
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

/* Wipes the userPassword values of e (hashes are secret) and frees it. */
static void entry_free_wiped(struct entry *e)
{
    struct dm_attr *a = e != NULL ? entry_attr(e, "userPassword") : NULL;

    for (size_t i = 0; a != NULL && i < a->nvals; i++) {
        explicit_bzero(a->vals[i].data, a->vals[i].len);
    }
    entry_free(e);
}

/*
 * One search on a search connection (sizelimit 2: one entry is the answer, two mean the
 * login is ambiguous). *out gets the first entry (caller frees with entry_free_wiped) and
 * *count the number of entries (0, 1 or 2). DM_OK, or an error in err (DM_EUNAVAIL for a
 * source that does not answer in time).
 */
static int search_two(struct entry **out, int *count, struct ldap_verify *v, const char *base,
                      int scope, const char *filter, char **attrs, long long deadline,
                      struct dm_err *err)
{
    struct lv_pool *p = &v->search;
    LDAPMessage *msg = NULL;
    struct timeval tv;
    long idx;
    int fresh, lrc = LDAP_OTHER, rc = DM_EUNAVAIL;
    long long left;

    *out = NULL;
    *count = 0;
    idx = pool_get(p, deadline - LV_MIN_OP_MS);
    if (idx < 0) {
        return dm_err_set(err, DM_EUNAVAIL, "no free search connection before the deadline");
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = slot_ensure(p, idx, deadline, &fresh, err);
        if (rc != DM_OK) {
            goto done;
        }
        left = deadline - ldap_verify_now_ms();
        if (left < LV_MIN_OP_MS) {
            rc = dm_err_set(err, DM_EUNAVAIL, "deadline reached before the search");
            goto done;
        }
        ms_to_tv(&tv, left);
        log_debug("ldap_search_ext(base=\"%s\", scope=%d, filter=\"%s\", sizelimit=2) uri=%s", base,
                  scope, filter, p->cfg.uri);
        lrc = ldap_search_ext_s(p->sess[idx].ld, base, scope, filter, attrs, 0, NULL, NULL, &tv, 2,
                                &msg);
        if (ldap_common_is_conn_err(lrc)) {
            ldap_msgfree(msg);
            msg = NULL;
            rc = ldap_to_rc(err, NULL, lrc, NULL, NULL, "search for the login");
            slot_drop(p, idx);
            if (!fresh && lrc != LDAP_TIMEOUT) {
                continue; /* a pooled connection that died since its last use: retry once */
            }
            goto done;
        }
        break;
    }
    if (lrc == LDAP_NO_SUCH_OBJECT) {
        rc = DM_OK; /* the base (or the templated DN) does not exist: nothing found */
        goto done;
    }
    if (lrc != LDAP_SUCCESS && lrc != LDAP_SIZELIMIT_EXCEEDED) {
        rc = ldap_to_rc(err, NULL, lrc, NULL, NULL, "search for the login");
        if (rc == DM_OK) {
            rc = DM_EINTERNAL;
        }
        goto done;
    }
    *count = msg != NULL ? ldap_count_entries(p->sess[idx].ld, msg) : 0;
    if (lrc == LDAP_SIZELIMIT_EXCEEDED && *count < 2) {
        *count = 2;
    }
    rc = DM_OK;
    if (*count >= 1) {
        rc = ldap_common_msg_to_entry(out, p->sess[idx].ld, ldap_first_entry(p->sess[idx].ld, msg),
                                      NULL, err);
    }
done:
    ldap_msgfree(msg);
    pool_put(p, idx);
    return rc;
}

static int attr_i64(const struct entry *e, const char *name, long long *out)
{
    const char *s = entry_first(e, name);
    char *end;

    if (s == NULL) {
        return -1;
    }
    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' ? 0 : -1;
}

static long long gtime(const struct dm_val *v)
{
    int64_t t = 0;

    return transform_parse_generalized(&t, (const char *)v->data, v->len) == DM_OK ? (long long)t
                                                                                   : 0;
}

/* Lowercase hex of b into out ("guid:" + 32 digits for objectGUID). */
static void hex_id(char *out, size_t outlen, const char *prefix, const struct dm_val *b)
{
    static const char hx[] = "0123456789abcdef";
    size_t o = (size_t)snprintf(out, outlen, "%s", prefix);

    for (size_t i = 0; i < b->len && o + 2 < outlen; i++) {
        out[o++] = hx[b->data[i] >> 4];
        out[o++] = hx[b->data[i] & 15];
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

static void policy_copy(struct ldap_verify_policy *out, struct ldap_verify *v)
{
    pthread_mutex_lock(&v->mu);
    *out = v->policy;
    pthread_mutex_unlock(&v->mu);
}

/* Fills a from entry e: identity, state, failures, last change (AD: userAccountControl,
 * accountExpires, lockout, badPwdCount, pwdLastSet; OpenLDAP: the ppolicy attributes). */
static void describe(struct ldap_verify_account *a, struct ldap_verify *v, const struct entry *e)
{
    const struct dm_attr *pw = entry_attr(e, "userPassword");
    const struct dm_attr *guid = entry_attr(e, "objectGUID");
    const struct dm_attr *fails = entry_attr(e, "pwdFailureTime");
    const char *uuid = entry_first(e, "entryUUID"), *st;
    struct ldap_verify_policy pol;
    long long now = (long long)time(NULL), n, t;
    char *norm = NULL;
    int64_t ft;
    int never;

    policy_copy(&pol, v); /* (a was zeroed by ldap_verify_resolve) */
    snprintf(a->dn, sizeof(a->dn), "%s", e->dn);
    a->failures = -1;
    if (guid != NULL && guid->nvals > 0 && guid->vals[0].len == 16) {
        hex_id(a->id, sizeof(a->id), "guid:", &guid->vals[0]);
    } else if (uuid != NULL && strlen(uuid) < sizeof(a->id) - 5) {
        snprintf(a->id, sizeof(a->id), "uuid:%s", uuid);
        for (char *c = a->id; *c; c++) {
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        }
    } else if (dn_normalize(&norm, e->dn, NULL) == DM_OK && strlen(norm) < sizeof(a->id) - 3) {
        snprintf(a->id, sizeof(a->id), "dn:%s", norm);
    } else {
        /* a DN too long for the key would be cut, and two accounts could share a budget */
        a->state = LDAP_VERIFY_R_OUT_OF_SCOPE;
    }
    free(norm);
    /* slapd compares an untagged userPassword as cleartext: "userPassword: *" verifies the
     * password "*". Any lock marker or placeholder makes the account password-less. */
    a->password_read = pw != NULL;
    for (size_t i = 0; pw != NULL && i < pw->nvals && a->state == LDAP_VERIFY_R_NONE; i++) {
        if (cred_is_locked(pw->vals[i].data, pw->vals[i].len)) {
            a->state = LDAP_VERIFY_R_NO_PASSWORD;
        }
    }
    /* Active Directory: disabled, expired, locked (the constructed attribute), must change */
    st = entry_attr(e, "userAccountControl") != NULL ? ad_account_state(e, now) : "enabled";
    if (a->state == LDAP_VERIFY_R_NONE) {
        a->state = strcmp(st, "disabled") == 0  ? LDAP_VERIFY_R_ACCOUNT_DISABLED
                   : strcmp(st, "expired") == 0 ? LDAP_VERIFY_R_ACCOUNT_EXPIRED
                   : strcmp(st, "locked") == 0  ? LDAP_VERIFY_R_ACCOUNT_LOCKED
                                                : LDAP_VERIFY_R_NONE;
    }
    st = entry_first(e, "pwdLastSet");
    if (st != NULL && transform_parse_filetime(&ft, &never, st, strlen(st)) == DM_OK) {
        if (strcmp(st, "0") == 0 && a->state == LDAP_VERIFY_R_NONE) {
            a->state = LDAP_VERIFY_R_MUST_CHANGE_PASSWORD;
        } else if (!never) {
            a->pwd_changed = (long long)ft;
        }
    }
    if (attr_i64(e, "badPwdCount", &n) == 0) {
        /* AD forgets bad passwords older than lockOutObservationWindow (at the next one) */
        const char *bt = entry_first(e, "badPasswordTime");
        a->failures = (int)(n > 1000 ? 1000 : n < 0 ? 0 : n);
        if (bt != NULL && pol.window_s > 0 &&
            transform_parse_filetime(&ft, &never, bt, strlen(bt)) == DM_OK && !never &&
            now - (long long)ft >= pol.window_s) {
            a->failures = 0;
        }
    }
    /* OpenLDAP ppolicy (slapo-ppolicy(5)) */
    if (entry_first(e, "pwdAccountLockedTime") != NULL && a->state == LDAP_VERIFY_R_NONE) {
        const struct dm_attr *lt = entry_attr(e, "pwdAccountLockedTime");
        /* 000001010000Z: locked until an administrator unlocks; otherwise the lockout ends
         * pwdLockoutDuration after it started (0 = never) */
        t = gtime(&lt->vals[0]);
        if (strncmp((const char *)lt->vals[0].data, "000001010000Z", 13) == 0 ||
            pol.duration_s == 0 || t + pol.duration_s > now) {
            a->state = LDAP_VERIFY_R_ACCOUNT_LOCKED;
        }
    }
    if (fails != NULL) {
        int c = 0;
        for (size_t i = 0; i < fails->nvals; i++) {
            t = gtime(&fails->vals[i]);
            c += pol.window_s == 0 || t + pol.window_s > now;
        }
        a->failures = c;
    } else if (a->failures < 0 && pol.threshold > 0) {
        a->failures = 0; /* ppolicy clears pwdFailureTime: absent = none */
    }
    st = entry_first(e, "pwdReset");
    if (st != NULL && strcasecmp(st, "TRUE") == 0 && a->state == LDAP_VERIFY_R_NONE) {
        a->state = LDAP_VERIFY_R_MUST_CHANGE_PASSWORD; /* an administrator's temporary one */
    }
}

enum ldap_verify_result ldap_verify_resolve(struct ldap_verify_account *out, struct ldap_verify *v,
                                            const char *login, size_t login_len,
                                            long long deadline_ms, struct dm_err *err)
{
    char filter[LV_MAX_FILTER], dn[LV_MAX_DN], sq[LV_MAX_DN];
    char *attrs[DM_ARRAY_LEN(ad_attrs)];
    const char *const *want = v->ad ? ad_attrs : ldap_attrs;
    struct entry *e = NULL;
    const char *base;
    int count = 0, n, rc;
    enum ldap_verify_result r;

    memset(out, 0, sizeof(*out));
    if (login == NULL || login_len == 0 || memchr(login, '\0', login_len) != NULL) {
        return LDAP_VERIFY_INVALID;
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(attrs); i++) {
        attrs[i] = (char *)want[i];
        if (want[i] == NULL) {
            break;
        }
    }
    if (v->cfg.dn_template != NULL) {
        n = ldap_verify_squeeze_spaces(sq, sizeof(sq), login, login_len);
        if (n <= 0 || template_dn(dn, sizeof(dn), v->cfg.dn_template, sq, (size_t)n) != 0) {
            return LDAP_VERIFY_INVALID;
        }
        snprintf(filter, sizeof(filter), "%s",
                 v->cfg.filter != NULL ? v->cfg.filter : "(objectClass=*)");
        rc = search_two(&e, &count, v, dn, LDAP_SCOPE_BASE, filter, attrs, deadline_ms, err);
        if (rc == DM_OK && count == 0) {
            /* not matching the filter, or not there at all */
            rc = search_two(&e, &count, v, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs,
                            deadline_ms, err);
            if (rc == DM_OK && count == 1) {
                r = LDAP_VERIFY_INELIGIBLE;
                goto classify;
            }
        }
    } else {
        if (build_filter(filter, sizeof(filter), &v->cfg, 1, login, login_len, err) != DM_OK) {
            return LDAP_VERIFY_INVALID;
        }
        rc = search_two(&e, &count, v, v->cfg.search_base, LDAP_SCOPE_SUBTREE, filter, attrs,
                        deadline_ms, err);
        if (rc == DM_OK && count == 0) {
            /* Not in scope: is it in the directory at all (a disabled user the filter
             * leaves out, one in another OU)? Then say why, and never bind. */
            pthread_mutex_lock(&v->mu);
            snprintf(dn, sizeof(dn), "%s", v->dir_base);
            pthread_mutex_unlock(&v->mu);
            base = dn[0] ? dn : v->cfg.conn->base != NULL ? v->cfg.conn->base : v->cfg.search_base;
            if (build_filter(filter, sizeof(filter), &v->cfg, 0, login, login_len, err) != DM_OK) {
                return LDAP_VERIFY_INVALID;
            }
            rc = search_two(&e, &count, v, base, LDAP_SCOPE_SUBTREE, filter, attrs, deadline_ms,
                            err);
            if (rc == DM_OK && count == 1) {
                r = LDAP_VERIFY_INELIGIBLE;
                goto classify;
            }
            if (rc == DM_OK) {
                count = 0; /* two outside the scope: unknown here */
            }
        }
    }
    if (rc != DM_OK) {
        entry_free_wiped(e);
        return LDAP_VERIFY_SOURCE_ERROR;
    }
    if (count == 0) {
        entry_free_wiped(e);
        return LDAP_VERIFY_UNKNOWN;
    }
    if (count > 1) {
        entry_free_wiped(e);
        dm_err_set(err, DM_EINVAL, "the login matches more than one entry");
        return LDAP_VERIFY_AMBIGUOUS;
    }
    r = LDAP_VERIFY_OK;
classify:
    describe(out, v, e);
    entry_free_wiped(e);
    if (r == LDAP_VERIFY_INELIGIBLE && out->state == LDAP_VERIFY_R_NONE) {
        out->state = LDAP_VERIFY_R_OUT_OF_SCOPE;
    }
    return out->state != LDAP_VERIFY_R_NONE ? LDAP_VERIFY_INELIGIBLE : LDAP_VERIFY_OK;
}

enum ldap_verify_result ldap_verify_bind(struct ldap_verify *v, const struct ldap_verify_account *a,
                                         const char *pw, size_t pw_len, long long deadline,
                                         struct dm_err *err)
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

    if (pw == NULL || pw_len == 0 || memchr(pw, '\0', pw_len) != NULL || a->dn[0] == '\0') {
        return LDAP_VERIFY_INVALID;
    }
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
        log_debug("ldap_sasl_bind(dn=\"%s\", mech=SIMPLE, pw=***) uri=%s", a->dn, p->cfg.uri);
        lrc = ldap_sasl_bind(ld, a->dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, &msgid);
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

/* ---- the source's lockout policy ---- */

typedef void (*lv_entry_fn)(struct ldap_verify *v, const struct entry *e, void *payload);

/* A search on a search connection that hands every entry (at most 100) to fn. */
static int search_each(struct ldap_verify *v, const char *base, int scope, const char *filter,
                       char **attrs, lv_entry_fn fn, void *payload, long long deadline,
                       struct dm_err *err)
{
    struct lv_pool *p = &v->search;
    LDAPMessage *msg = NULL, *m;
    struct timeval tv;
    long idx;
    int fresh, lrc = LDAP_OTHER, rc = DM_EUNAVAIL;
    long long left;

    idx = pool_get(p, deadline - LV_MIN_OP_MS);
    if (idx < 0) {
        return dm_err_set(err, DM_EUNAVAIL, "no free search connection before the deadline");
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = slot_ensure(p, idx, deadline, &fresh, err);
        if (rc != DM_OK) {
            goto done;
        }
        left = deadline - ldap_verify_now_ms();
        if (left < LV_MIN_OP_MS) {
            rc = dm_err_set(err, DM_EUNAVAIL, "deadline reached before the search");
            goto done;
        }
        ms_to_tv(&tv, left);
        log_debug("ldap_search_ext(base=\"%s\", scope=%d, filter=\"%s\") uri=%s", base, scope,
                  filter, p->cfg.uri);
        lrc = ldap_search_ext_s(p->sess[idx].ld, base, scope, filter, attrs, 0, NULL, NULL, &tv,
                                100, &msg);
        if (ldap_common_is_conn_err(lrc)) {
            ldap_msgfree(msg);
            msg = NULL;
            rc = ldap_to_rc(err, NULL, lrc, NULL, NULL, "reading the lockout policy");
            slot_drop(p, idx);
            if (!fresh && lrc != LDAP_TIMEOUT) {
                continue;
            }
            goto done;
        }
        break;
    }
    rc = DM_OK;
    if (lrc != LDAP_SUCCESS && lrc != LDAP_SIZELIMIT_EXCEEDED && lrc != LDAP_NO_SUCH_OBJECT &&
        lrc != LDAP_INSUFFICIENT_ACCESS) {
        rc = ldap_to_rc(err, NULL, lrc, NULL, NULL, "reading the lockout policy");
        goto done;
    }
    for (m = msg != NULL ? ldap_first_entry(p->sess[idx].ld, msg) : NULL; m != NULL && rc == DM_OK;
         m = ldap_next_entry(p->sess[idx].ld, m)) {
        struct entry *e = NULL;
        rc = ldap_common_msg_to_entry(&e, p->sess[idx].ld, m, NULL, err);
        if (rc == DM_OK) {
            fn(v, e, payload);
        }
        entry_free(e);
    }
done:
    ldap_msgfree(msg);
    pool_put(p, idx);
    return rc;
}

/* AD durations are negative counts of 100 ns; the minimum int64 means "forever". */
static long long ad_interval_s(const struct entry *e, const char *name)
{
    long long v;

    if (attr_i64(e, name, &v) != 0 || v >= 0) {
        return 0;
    }
    if (v == INT64_MIN) {
        return 0;
    }
    return -v / 10000000LL;
}

static void take_rootdse(struct ldap_verify *v, const struct entry *e, void *payload)
{
    char *nc = payload;
    const struct dm_attr *a = entry_attr(e, "namingContexts");
    const char *def = entry_first(e, "defaultNamingContext");
    size_t best = 0;

    if (v->ad && def != NULL && dn_is_under(v->cfg.search_base, def) == 1) {
        snprintf(nc, LV_MAX_DN, "%s", def);
        return;
    }
    /* the naming context that holds the search base (the longest, for nested suffixes) */
    for (size_t i = 0; a != NULL && i < a->nvals; i++) {
        const char *c = (const char *)a->vals[i].data;
        if (a->vals[i].len > best && a->vals[i].len < LV_MAX_DN &&
            dn_is_under(v->cfg.search_base, c) == 1) {
            snprintf(nc, LV_MAX_DN, "%s", c);
            best = a->vals[i].len;
        }
    }
}

static void take_ppolicy(struct ldap_verify *v, const struct entry *e, void *payload)
{
    struct ldap_verify_policy *p = payload;
    const char *lock = entry_first(e, "pwdLockout");
    long long max = 0, d = 0, w = 0;

    (void)v;
    if (lock == NULL || strcasecmp(lock, "TRUE") != 0 || attr_i64(e, "pwdMaxFailure", &max) != 0 ||
        max <= 0 || (p->threshold > 0 && max >= p->threshold)) {
        return; /* no lockout with this policy, or a stricter one is known */
    }
    (void)attr_i64(e, "pwdLockoutDuration", &d);
    (void)attr_i64(e, "pwdFailureCountInterval", &w);
    p->threshold = max > 1000000 ? 1000000 : (int)max;
    p->duration_s = d > 0 ? d : 0;
    p->window_s = w > 0 ? w : 0;
    snprintf(p->where, sizeof(p->where), "pwdMaxFailure of %.150s", e->dn);
}

static void take_ad_domain(struct ldap_verify *v, const struct entry *e, void *payload)
{
    struct ldap_verify_policy *p = payload;
    long long t = 0;

    (void)v;
    if (attr_i64(e, "lockoutThreshold", &t) == 0 && t > 0 &&
        (p->threshold == 0 || t < p->threshold)) {
        p->threshold = t > 1000000 ? 1000000 : (int)t;
        p->duration_s = ad_interval_s(e, "lockoutDuration");
        p->window_s = ad_interval_s(e, "lockOutObservationWindow");
        snprintf(p->where, sizeof(p->where), "lockoutThreshold of %.150s", e->dn);
    }
}

static void take_ad_pso(struct ldap_verify *v, const struct entry *e, void *payload)
{
    struct ldap_verify_policy *p = payload;
    long long t = 0;

    (void)v;
    if (attr_i64(e, "msDS-LockoutThreshold", &t) == 0 && t > 0 &&
        (p->threshold == 0 || t < p->threshold)) {
        p->threshold = t > 1000000 ? 1000000 : (int)t;
        p->duration_s = ad_interval_s(e, "msDS-LockoutDuration");
        p->window_s = ad_interval_s(e, "msDS-LockoutObservationWindow");
        snprintf(p->where, sizeof(p->where), "msDS-LockoutThreshold of %.150s", e->dn);
    }
}

int ldap_verify_policy(struct ldap_verify_policy *out, struct ldap_verify *v, long long deadline_ms,
                       struct dm_err *err)
{
    static char *root_attrs[] = {"namingContexts", "defaultNamingContext", NULL};
    static char *pp_attrs[] = {"pwdMaxFailure", "pwdLockout", "pwdLockoutDuration",
                               "pwdFailureCountInterval", NULL};
    static char *dom_attrs[] = {"lockoutThreshold", "lockoutDuration", "lockOutObservationWindow",
                                NULL};
    static char *pso_attrs[] = {"msDS-LockoutThreshold", "msDS-LockoutDuration",
                                "msDS-LockoutObservationWindow", NULL};
    struct ldap_verify_policy pol;
    char nc[LV_MAX_DN] = "", pso[LV_MAX_DN + 64];
    int rc;

    policy_copy(&pol, v);
    if (pol.known) {
        *out = pol;
        return DM_OK;
    }
    memset(&pol, 0, sizeof(pol));
    rc = search_each(v, "", LDAP_SCOPE_BASE, "(objectClass=*)", root_attrs, take_rootdse, nc,
                     deadline_ms, err);
    if (rc == DM_OK && v->ad && nc[0]) {
        rc = search_each(v, nc, LDAP_SCOPE_BASE, "(objectClass=*)", dom_attrs, take_ad_domain, &pol,
                         deadline_ms, err);
        snprintf(pso, sizeof(pso), "CN=Password Settings Container,CN=System,%s", nc);
        if (rc == DM_OK) {
            rc = search_each(v, pso, LDAP_SCOPE_ONELEVEL, "(objectClass=msDS-PasswordSettings)",
                             pso_attrs, take_ad_pso, &pol, deadline_ms, err);
        }
    } else if (rc == DM_OK) {
        rc = search_each(v, nc[0] ? nc : v->cfg.search_base, LDAP_SCOPE_SUBTREE,
                         "(objectClass=pwdPolicy)", pp_attrs, take_ppolicy, &pol, deadline_ms, err);
    }
    if (rc != DM_OK) {
        return rc;
    }
    pol.known = 1;
    pthread_mutex_lock(&v->mu);
    v->policy = pol;
    snprintf(v->dir_base, sizeof(v->dir_base), "%s", nc);
    pthread_mutex_unlock(&v->mu);
    *out = pol;
    return DM_OK;
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
    v->ad = ad_is_dialect(cfg->conn);
    pthread_mutex_init(&v->mu, NULL);
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
    pthread_mutex_destroy(&v->mu);
    free(v);
}
