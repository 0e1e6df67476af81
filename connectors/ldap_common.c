#include <config.h>
#include "connectors/ldap_common.h"

#include <ctype.h>
#include <errno.h>
#include <sasl/sasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/util/log.h"

int ldap_to_rc(struct dm_err *err, LDAP *ld, int lrc, const char *matched, const char *diag,
               const char *op)
{
    enum dm_rc rc;
    char *m_ld = NULL;
    char *d_ld = NULL;

    switch (lrc) {
    case LDAP_SUCCESS:
        return DM_OK;
    case LDAP_INVALID_CREDENTIALS: /* 49 */
    case LDAP_INAPPROPRIATE_AUTH:  /* 48 */
    case LDAP_INSUFFICIENT_ACCESS: /* 50 */
        rc = DM_EAUTH;
        break;
    case LDAP_SERVER_DOWN:   /* -1 */
    case LDAP_CONNECT_ERROR: /* -11 */
    case LDAP_TIMEOUT:       /* -5 */
    case LDAP_BUSY:          /* 51 */
    case LDAP_UNAVAILABLE:   /* 52 */
        rc = DM_EUNAVAIL;
        break;
    case LDAP_NO_SUCH_OBJECT: /* 32 */
        rc = DM_ENOTFOUND;
        break;
    case LDAP_ALREADY_EXISTS: /* 68 */
        rc = DM_EEXISTS;
        break;
    case LDAP_UNDEFINED_TYPE:         /* 17 */
    case LDAP_INAPPROPRIATE_MATCHING: /* 18 */
    case LDAP_CONSTRAINT_VIOLATION:   /* 19 */
    case LDAP_TYPE_OR_VALUE_EXISTS:   /* 20 */
    case LDAP_INVALID_SYNTAX:         /* 21 */
    case LDAP_NAMING_VIOLATION:       /* 64 */
    case LDAP_OBJECT_CLASS_VIOLATION: /* 65 */
    case LDAP_NOT_ALLOWED_ON_RDN:     /* 67 */
    case LDAP_NO_OBJECT_CLASS_MODS:   /* 69 */
        rc = DM_ESCHEMA;
        break;
    case LDAP_TIMELIMIT_EXCEEDED:  /* 3 */
    case LDAP_SIZELIMIT_EXCEEDED:  /* 4 */
    case LDAP_ADMINLIMIT_EXCEEDED: /* 11 */
        rc = DM_ELIMIT;
        break;
    default:
        rc = DM_EINTERNAL;
        break;
    }
    if (err == NULL) {
        return rc;
    }
    if (matched == NULL && diag == NULL && ld != NULL) {
        ldap_get_option(ld, LDAP_OPT_MATCHED_DN, &m_ld);
        ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &d_ld);
        matched = m_ld;
        diag = d_ld;
    }
    err->ldap_rc = lrc;
    snprintf(err->matched_dn, sizeof(err->matched_dn), "%s", matched != NULL ? matched : "");
    if (diag != NULL && diag[0] != '\0') {
        /* Client-side codes (negative) read better with the detail in parentheses:
         * "ldaps://h: cannot connect: Can't contact LDAP server (TLS: ...)". */
        dm_err_set(err, rc, lrc < 0 ? "%s: %s (%s)" : "%s: %s: %s", op, ldap_err2string(lrc), diag);
    } else {
        dm_err_set(err, rc, "%s: %s", op, ldap_err2string(lrc));
    }
    ldap_memfree(m_ld);
    ldap_memfree(d_ld);
    return rc;
}

int ldap_common_is_conn_err(int lrc)
{
    return lrc == LDAP_SERVER_DOWN || lrc == LDAP_CONNECT_ERROR || lrc == LDAP_TIMEOUT;
}

struct timeval *ldap_common_op_timeout(const struct ldap_common_sess *sess, struct timeval *tv)
{
    if (sess->cfg.op_timeout_ms <= 0) {
        return NULL;
    }
    tv->tv_sec = sess->cfg.op_timeout_ms / 1000;
    tv->tv_usec = (sess->cfg.op_timeout_ms % 1000) * 1000;
    return tv;
}

static int ld_errno(LDAP *ld)
{
    int lrc = LDAP_OTHER;

    ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &lrc);
    return lrc;
}

/* SASL interaction: take each default the library offers (EXTERNAL asks at most for an
 * authorization identity, and an empty one means "the authenticated identity"). */
static int sasl_interact(LDAP *ld, unsigned flags, void *defaults, void *in)
{
    sasl_interact_t *it = in;

    for (; it->id != SASL_CB_LIST_END; it++) {
        it->result = it->defresult != NULL ? it->defresult : "";
        it->len = (unsigned)strlen(it->result);
    }
    return LDAP_SUCCESS;
}

static int set_tls_options(LDAP *ld, const struct conn_cfg *cfg, struct dm_err *err)
{
    int req = cfg->tls_verify == 0 ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_DEMAND;
    int zero = 0;

    log_debug("ldap_set_option(TLS_REQUIRE_CERT=%s, TLS_CACERTFILE=%s) uri=%s",
              req == LDAP_OPT_X_TLS_DEMAND ? "demand" : "never",
              cfg->ca_file != NULL ? cfg->ca_file : "(system)", cfg->uri);
    if (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &req) != LDAP_OPT_SUCCESS) {
        return dm_err_set(err, DM_EINVAL, "%s: cannot set TLS_REQUIRE_CERT", cfg->uri);
    }
    if (cfg->ca_file != NULL &&
        ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cfg->ca_file) != LDAP_OPT_SUCCESS) {
        return dm_err_set(err, DM_EINVAL, "%s: cannot use CA file %s", cfg->uri, cfg->ca_file);
    }
    /* Per-handle TLS options take effect only with a new context: without NEWCTX the handle
     * keeps the global one (a CA set here alone fails with -11 against slapd). */
    if (ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS) {
        return dm_err_set(err, DM_EINVAL, "%s: cannot create TLS context (CA file %s)", cfg->uri,
                          cfg->ca_file != NULL ? cfg->ca_file : "(system)");
    }
    return DM_OK;
}

/* SASL GSSAPI: the credential is the Kerberos ticket cache (KRB5CCNAME). The service
 * principal is ldap/<URI host> as written (NOCANON: no reverse-DNS lookup). Over TLS the
 * SASL security layer is turned off (maxssf=0): AD refuses GSSAPI sign/seal inside TLS
 * (MS-ADTS 5.1.1.1.2). Any failure that is not a lost connection (no ticket, expired ticket,
 * unknown service principal, refused by the DC) is DM_EAUTH with the ticket cache named. */
static int gssapi_bind(LDAP *ld, const struct conn_cfg *cfg, int tls, struct dm_err *err)
{
    const char *ccache = getenv("KRB5CCNAME");
    char op[600];
    char *diag = NULL;
    char *why;
    char *p;
    int lrc;
    int rc;

    if (ldap_set_option(ld, LDAP_OPT_X_SASL_NOCANON, LDAP_OPT_ON) != LDAP_OPT_SUCCESS ||
        (tls && ldap_set_option(ld, LDAP_OPT_X_SASL_SECPROPS, "maxssf=0") != LDAP_OPT_SUCCESS)) {
        return dm_err_set(err, DM_EINVAL, "%s: cannot set the SASL GSSAPI options", cfg->uri);
    }
    log_debug("ldap_sasl_interactive_bind(mech=GSSAPI, nocanon, %s, ccache=%s) uri=%s",
              tls ? "maxssf=0 (TLS)" : "sign+seal", ccache != NULL ? ccache : "(default)",
              cfg->uri);
    lrc = ldap_sasl_interactive_bind_s(ld, NULL, "GSSAPI", NULL, NULL, LDAP_SASL_QUIET,
                                       sasl_interact, NULL);
    if (lrc == LDAP_SUCCESS) {
        return DM_OK;
    }
    if (ldap_common_is_conn_err(lrc)) {
        snprintf(op, sizeof(op), "%s: SASL GSSAPI bind", cfg->uri);
        return ldap_to_rc(err, ld, lrc, NULL, NULL, op);
    }
    /* "SASL(-1): generic failure: GSSAPI Error: <major> (<minor>)": keep the minor text,
     * which says what is wrong with the ticket; err->msg is short. */
    ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
    why = diag != NULL && diag[0] != '\0' ? diag : ldap_err2string(lrc);
    if ((p = strstr(why, "GSSAPI Error: ")) != NULL) {
        why = p + strlen("GSSAPI Error: ");
        if ((p = strstr(why, " (")) != NULL && why[strlen(why) - 1] == ')') {
            why = p + 2;
            why[strlen(why) - 1] = '\0';
        }
    }
    rc = dm_err_set(err, DM_EAUTH,
                    lrc < 0 ? "%s: SASL GSSAPI bind: no usable Kerberos ticket in %s (kinit; "
                              "KRB5CCNAME)? %s"
                            : "%s: SASL GSSAPI bind with the ticket in %s refused: %s",
                    cfg->uri, ccache != NULL ? ccache : "the default cache", why);
    if (err != NULL) {
        err->ldap_rc = lrc;
    }
    ldap_memfree(diag);
    return rc;
}

static int do_bind(LDAP *ld, const struct conn_cfg *cfg, int tls, struct dm_err *err)
{
    char op[600];
    const char *pw;
    struct berval cred;
    int lrc;

    if (cfg->sasl_mech != NULL && strcmp(cfg->sasl_mech, "GSSAPI") == 0) {
        return gssapi_bind(ld, cfg, tls, err);
    }
    if (cfg->sasl_mech != NULL) {
        log_debug("ldap_sasl_interactive_bind(dn=\"%s\", mech=%s) uri=%s",
                  cfg->bind_dn != NULL ? cfg->bind_dn : "", cfg->sasl_mech, cfg->uri);
        lrc = ldap_sasl_interactive_bind_s(ld, cfg->bind_dn, cfg->sasl_mech, NULL, NULL,
                                           LDAP_SASL_QUIET, sasl_interact, NULL);
        snprintf(op, sizeof(op), "%s: SASL %s bind", cfg->uri, cfg->sasl_mech);
        return ldap_to_rc(err, ld, lrc, NULL, NULL, op);
    }
    if (cfg->bind_dn == NULL) {
        log_debug("anonymous session (no bind) uri=%s", cfg->uri);
        return DM_OK;
    }
    pw = cfg->bind_pw != NULL ? secret_reveal(cfg->bind_pw) : NULL;
    if (pw == NULL || pw[0] == '\0') {
        /* RFC 4513 §5.1.2: DN + empty password is an unauthenticated (anonymous) bind that
         * some servers (AD) answer with success. Never send one. */
        return dm_err_set(err, DM_EINVAL,
                          "%s: bind as \"%s\": empty password refused (RFC 4513 5.1.2)", cfg->uri,
                          cfg->bind_dn);
    }
    cred.bv_val = (char *)pw;
    cred.bv_len = secret_len(cfg->bind_pw);
    log_debug("ldap_sasl_bind(dn=\"%s\", mech=SIMPLE, pw=***) uri=%s", cfg->bind_dn, cfg->uri);
    lrc = ldap_sasl_bind_s(ld, cfg->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
    snprintf(op, sizeof(op), "%s: bind as \"%s\"", cfg->uri, cfg->bind_dn);
    return ldap_to_rc(err, ld, lrc, NULL, NULL, op);
}

/* Connection or TLS failure. libldap (GnuTLS) leaves only "(unknown error code)" as the
 * diagnostic of a failed handshake, so say what usually causes it. */
static int connect_fail(struct dm_err *err, LDAP *ld, int lrc, const struct conn_cfg *cfg,
                        const char *what, int tls)
{
    char op[600];
    char hint[400];
    char *diag = NULL;
    int rc;

    snprintf(op, sizeof(op), "%s: %s", cfg->uri, what);
    ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
    if (tls && lrc < 0 && (diag == NULL || diag[0] == '\0' || diag[0] == '(')) {
        snprintf(hint, sizeof(hint),
                 "TLS: certificate verify failed? ca_file=%s, tls_verify=%s;"
                 " the URI host must match the certificate",
                 cfg->ca_file != NULL ? cfg->ca_file : "(system CAs)",
                 cfg->tls_verify == 0 ? "no" : "yes");
        rc = ldap_to_rc(err, NULL, lrc, NULL, hint, op);
    } else {
        rc = ldap_to_rc(err, NULL, lrc, NULL, diag != NULL ? diag : "", op);
    }
    ldap_memfree(diag);
    return rc;
}

int ldap_common_open(struct ldap_common_sess *sess, const struct conn_cfg *cfg, struct dm_err *err)
{
    struct conn_cfg copy = *cfg; /* cfg may point into sess (reconnect) */
    LDAP *ld = NULL;
    int v3 = LDAP_VERSION3;
    int is_ldaps;
    struct timeval nt;
    struct timeval ot;
    int lrc;
    int rc;

    sess->ld = NULL;
    sess->cfg = copy;
    if (copy.uri == NULL || copy.uri[0] == '\0') {
        return dm_err_set(err, DM_EINVAL, "%s: no uri", copy.role != NULL ? copy.role : "ldap");
    }
    is_ldaps = strncasecmp(copy.uri, "ldaps://", 8) == 0;
    log_debug("ldap_initialize(uri=%s)", copy.uri);
    lrc = ldap_initialize(&ld, copy.uri);
    if (lrc != LDAP_SUCCESS) {
        rc = dm_err_set(err, DM_EINVAL, "%s: bad LDAP URI: %s", copy.uri, ldap_err2string(lrc));
        goto done;
    }
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);   /* library default is v2 */
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF); /* else chased anonymously */
    if (copy.network_timeout_ms > 0) {
        nt.tv_sec = copy.network_timeout_ms / 1000;
        nt.tv_usec = (copy.network_timeout_ms % 1000) * 1000;
        ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &nt);
    }
    if (copy.op_timeout_ms > 0) {
        ot.tv_sec = copy.op_timeout_ms / 1000;
        ot.tv_usec = (copy.op_timeout_ms % 1000) * 1000;
        ldap_set_option(ld, LDAP_OPT_TIMEOUT, &ot);
    }
    if (is_ldaps || copy.starttls) {
        rc = set_tls_options(ld, &copy, err);
        if (rc != DM_OK) {
            goto done;
        }
    }
    /* Connect now (TLS handshake included for ldaps://) so that an unreachable server or
     * a refused certificate is reported as such, not as a bind failure. */
    log_debug("ldap_connect() uri=%s", copy.uri);
    lrc = ldap_connect(ld);
    if (lrc != LDAP_SUCCESS) {
        rc = connect_fail(err, ld, lrc, &copy, "cannot connect", is_ldaps);
        goto done;
    }
    if (copy.starttls) {
        if (is_ldaps) {
            rc = dm_err_set(err, DM_EINVAL, "%s: starttls makes no sense with ldaps://", copy.uri);
            goto done;
        }
        log_debug("ldap_start_tls() uri=%s", copy.uri);
        lrc = ldap_start_tls_s(ld, NULL, NULL);
        if (lrc != LDAP_SUCCESS) {
            rc = connect_fail(err, ld, lrc, &copy, "StartTLS failed", 1);
            if (rc == DM_EINTERNAL) {
                rc = DM_EUNAVAIL; /* e.g. 2 protocolError: server has no TLS configured */
                err->rc = rc;
            }
            goto done;
        }
    }
    rc = do_bind(ld, &copy, is_ldaps || copy.starttls, err);
    if (rc != DM_OK) {
        goto done;
    }
    sess->ld = ld;
    ld = NULL;
    rc = DM_OK;
done:
    if (ld != NULL) {
        ldap_unbind_ext_s(ld, NULL, NULL);
    }
    return rc;
}

void ldap_common_close(struct ldap_common_sess *sess)
{
    if (sess == NULL || sess->ld == NULL) {
        return;
    }
    log_debug("ldap_unbind() uri=%s", sess->cfg.uri);
    ldap_unbind_ext_s(sess->ld, NULL, NULL);
    sess->ld = NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int ldap_common_reconnect(struct ldap_common_sess *sess, struct dm_err *err)
{
    struct conn_cfg cfg = sess->cfg;
    int tries = cfg.max_retries > 0 ? cfg.max_retries : 1;
    long delay = 200;
    int rc = DM_EUNAVAIL;

    ldap_common_close(sess);
    for (int i = 1; i <= tries; i++) {
        log_warn("%s: connection lost; reconnecting in %ld ms (attempt %d/%d)", cfg.uri, delay, i,
                 tries);
        sleep_ms(delay);
        if (delay < 10000) {
            delay *= 2;
        }
        rc = ldap_common_open(sess, &cfg, err);
        if (rc == DM_OK) {
            log_info("%s: reconnected", cfg.uri);
            return DM_OK;
        }
        if (rc == DM_EAUTH || rc == DM_EINVAL) {
            break;
        }
    }
    return rc;
}

int ldap_common_msg_to_entry(struct entry **out, LDAP *ld, LDAPMessage *msg, const char *key_attr,
                             struct dm_err *err)
{
    struct entry *e = entry_new(NULL);
    int rc;

    if (e == NULL) {
        return dm_err_set(err, DM_ENOMEM, "entry_new");
    }
    rc = ldap_common_msg_fill(e, ld, msg, key_attr, err);
    if (rc != DM_OK) {
        entry_free(e);
        return rc;
    }
    *out = e;
    return DM_OK;
}

int ldap_common_msg_fill(struct entry *e, LDAP *ld, LDAPMessage *msg, const char *key_attr,
                         struct dm_err *err)
{
    BerElement *ber = NULL;
    struct berval dn = {0, NULL};
    struct berval name;
    struct berval *vals = NULL;
    struct dm_attr *a;
    char small[256];
    char *nm = NULL;
    const char *key;
    int lrc;
    int rc;

    /* ldap_get_attribute_ber walks the entry once (ldap_get_values_len would rescan it
     * for every attribute); values point into the BER buffer and are copied below. */
    lrc = ldap_get_dn_ber(ld, msg, &ber, &dn);
    if (lrc != LDAP_SUCCESS) {
        rc = ldap_to_rc(err, ld, lrc, NULL, NULL, "search: cannot parse entry DN");
        goto done;
    }
    entry_reset(e);
    if (entry_set_dn_n(e, dn.bv_val, dn.bv_len) != DM_OK) {
        rc = dm_err_set(err, DM_ENOMEM, "entry dn");
        goto done;
    }
    for (;;) {
        vals = NULL;
        lrc = ldap_get_attribute_ber(ld, msg, ber, &name, &vals);
        if (lrc != LDAP_SUCCESS) {
            rc = ldap_to_rc(err, ld, lrc, NULL, NULL, "search: cannot parse entry");
            dm_err_dn(err, e->dn);
            goto done;
        }
        if (name.bv_val == NULL) {
            break;
        }
        if (name.bv_len < sizeof(small)) {
            nm = small;
        } else {
            nm = malloc(name.bv_len + 1);
            if (nm == NULL) {
                rc = dm_err_set(err, DM_ENOMEM, "attribute name");
                goto done;
            }
        }
        memcpy(nm, name.bv_val, name.bv_len);
        nm[name.bv_len] = '\0';
        a = entry_attr_add(e, nm);
        if (nm != small) {
            free(nm);
        }
        nm = NULL;
        if (a == NULL) {
            rc = dm_err_set(err, DM_ENOMEM, "entry_attr_add");
            goto done;
        }
        for (size_t i = 0; vals != NULL && vals[i].bv_val != NULL; i++) {
            rc = attr_add_value(a, vals[i].bv_val, vals[i].bv_len);
            if (rc != DM_OK) {
                rc = dm_err_set(err, rc, "attr_add_value");
                goto done;
            }
        }
        ber_memfree(vals);
        vals = NULL;
    }
    if (key_attr != NULL) {
        key = entry_first(e, key_attr);
        if (key != NULL) {
            rc = entry_set_key(e, key);
            if (rc != DM_OK) {
                rc = dm_err_set(err, rc, "entry_set_key");
                goto done;
            }
        }
    }
    rc = DM_OK;
done:
    ber_memfree(vals);
    if (ber != NULL) {
        ber_free(ber, 0);
    }
    return rc;
}

int ldap_common_next_msg(LDAPMessage **msg, struct ldap_common_sess *sess, int msgid, int *lrc_out)
{
    struct timeval tv;
    int n;

    *msg = NULL;
    n = ldap_result(sess->ld, msgid, LDAP_MSG_ONE, ldap_common_op_timeout(sess, &tv), msg);
    if (n == 0) {
        ldap_abandon_ext(sess->ld, msgid, NULL, NULL);
        *lrc_out = LDAP_TIMEOUT;
        return -1;
    }
    if (n < 0) {
        *lrc_out = ld_errno(sess->ld);
        if (*lrc_out == LDAP_SUCCESS) {
            *lrc_out = LDAP_SERVER_DOWN;
        }
        return -1;
    }
    return n;
}

int ldap_common_search(struct ldap_common_sess *sess, const char *base, int scope,
                       const char *filter, char **attrs, int page_size, ldap_common_msg_fn fn,
                       void *payload, struct dm_err *err)
{
    return ldap_common_search_ctrls(sess, base, scope, filter, attrs, page_size, NULL, fn, payload,
                                    err);
}

int ldap_common_search_ctrls(struct ldap_common_sess *sess, const char *base, int scope,
                             const char *filter, char **attrs, int page_size, LDAPControl *extra,
                             ldap_common_msg_fn fn, void *payload, struct dm_err *err)
{
    struct berval cookie = {0, NULL};
    LDAPControl *pc = NULL;
    LDAPControl *sctrls[3] = {NULL, NULL, NULL};
    LDAPControl **rctrls = NULL;
    LDAPControl *pr;
    LDAPMessage *msg = NULL;
    char *matched = NULL;
    char *diag = NULL;
    int paged = page_size > 0;
    int first = 1;
    int msgid = -1;
    int lrc;
    int code;
    int n;
    int rc;
    ber_int_t estimate;

    if (sess->ld == NULL) {
        return ldap_to_rc(err, NULL, LDAP_SERVER_DOWN, NULL, NULL, "search: not connected");
    }
    if (filter == NULL) {
        filter = "(objectClass=*)";
    }
    for (;;) {
        sctrls[0] = NULL;
        sctrls[1] = NULL;
        if (paged) {
            lrc = ldap_create_page_control(sess->ld, page_size, &cookie, 1, &pc);
            if (lrc != LDAP_SUCCESS) {
                rc = ldap_to_rc(err, sess->ld, lrc, NULL, NULL, "search: page control");
                goto done;
            }
            sctrls[0] = pc;
        }
        sctrls[paged ? 1 : 0] = extra;
        if (first) {
            log_debug("ldap_search(base=\"%s\", scope=%d, filter=\"%s\", page=%d) uri=%s", base,
                      scope, filter, paged ? page_size : 0, sess->cfg.uri);
        }
        lrc =
            ldap_search_ext(sess->ld, base, scope, filter, attrs, 0, sctrls, NULL, NULL, 0, &msgid);
        ldap_control_free(pc);
        pc = NULL;
        if (lrc != LDAP_SUCCESS) {
            rc = ldap_to_rc(err, sess->ld, lrc, NULL, NULL, "search");
            goto done;
        }
        for (;;) {
            n = ldap_common_next_msg(&msg, sess, msgid, &lrc);
            if (n < 0) {
                rc = ldap_to_rc(err, sess->ld, lrc, NULL, NULL, "search");
                goto done;
            }
            if (n == LDAP_RES_SEARCH_RESULT) {
                break;
            }
            if (n == LDAP_RES_SEARCH_ENTRY) {
                rc = fn(sess->ld, msg, payload);
                ldap_msgfree(msg);
                msg = NULL;
                if (rc != 0) {
                    ldap_abandon_ext(sess->ld, msgid, NULL, NULL);
                    goto done;
                }
                continue;
            }
            /* search references (referrals are off) and intermediate responses: a skipped
             * reference means part of the scope was not read */
            if (n == LDAP_RES_SEARCH_REFERENCE) {
                if (sess->refs_skipped++ == 0) {
                    log_warn("%s: search under \"%s\" returned a reference to another server; "
                             "referrals are not followed, so this read is not complete",
                             sess->cfg.uri, base);
                }
            }
            ldap_msgfree(msg);
            msg = NULL;
        }
        code = LDAP_OTHER;
        lrc = ldap_parse_result(sess->ld, msg, &code, &matched, &diag, NULL, &rctrls, 1);
        msg = NULL;
        if (lrc != LDAP_SUCCESS) {
            rc = ldap_to_rc(err, sess->ld, lrc, NULL, NULL, "search: bad result");
            goto done;
        }
        if (code == LDAP_UNAVAILABLE_CRITICAL_EXTENSION && paged && first) {
            log_warn("%s: server refuses paged results; reading without paging", sess->cfg.uri);
            paged = 0;
            ldap_controls_free(rctrls);
            rctrls = NULL;
            ldap_memfree(matched);
            ldap_memfree(diag);
            matched = NULL;
            diag = NULL;
            continue;
        }
        if (code != LDAP_SUCCESS) {
            rc = ldap_to_rc(err, sess->ld, code, matched, diag != NULL ? diag : "", "search");
            dm_err_dn(err, base);
            goto done;
        }
        first = 0;
        if (cookie.bv_val != NULL) {
            ldap_memfree(cookie.bv_val);
            cookie.bv_val = NULL;
            cookie.bv_len = 0;
        }
        pr = paged ? ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL) : NULL;
        if (pr != NULL) {
            lrc = ldap_parse_pageresponse_control(sess->ld, pr, &estimate, &cookie);
            if (lrc != LDAP_SUCCESS) {
                rc = ldap_to_rc(err, sess->ld, lrc, NULL, NULL, "search: page response");
                goto done;
            }
        }
        ldap_controls_free(rctrls);
        rctrls = NULL;
        ldap_memfree(matched);
        ldap_memfree(diag);
        matched = NULL;
        diag = NULL;
        if (!paged || cookie.bv_val == NULL || cookie.bv_len == 0) {
            break;
        }
    }
    rc = DM_OK;
done:
    ldap_msgfree(msg);
    ldap_control_free(pc);
    ldap_controls_free(rctrls);
    ldap_memfree(matched);
    ldap_memfree(diag);
    if (cookie.bv_val != NULL) {
        ldap_memfree(cookie.bv_val);
    }
    return rc;
}

struct lookup_ctx {
    struct entry *e;
    struct dm_err *err;
};

static int lookup_cb(LDAP *ld, LDAPMessage *msg, void *payload)
{
    struct lookup_ctx *lc = payload;

    if (lc->e != NULL) {
        return DM_OK; /* base scope: one entry */
    }
    return ldap_common_msg_to_entry(&lc->e, ld, msg, NULL, lc->err);
}

int ldap_common_lookup(struct entry **out, struct ldap_common_sess *sess, const char *dn,
                       char **attrs, struct dm_err *err)
{
    static char *all[] = {"*", NULL};
    struct lookup_ctx lc = {NULL, err};
    int rc;

    rc = ldap_common_search(sess, dn, LDAP_SCOPE_BASE, "(objectClass=*)",
                            attrs != NULL ? attrs : all, 0, lookup_cb, &lc, err);
    if (rc == DM_OK && lc.e == NULL) {
        rc = ldap_to_rc(err, NULL, LDAP_NO_SUCH_OBJECT, NULL, NULL, "lookup");
    }
    if (rc != DM_OK) {
        if (err != NULL && err->dn[0] == '\0') {
            dm_err_dn(err, dn);
        }
        goto done;
    }
    *out = lc.e;
    lc.e = NULL;
done:
    entry_free(lc.e);
    return rc;
}

static int is_attr_char(int c)
{
    return isalnum(c) || c == '-' || c == ';' || c == '.';
}

void ldap_common_guess_attr(struct dm_err *err, const char *diag)
{
    const char *p;
    const char *q;
    char name[64];
    size_t n;

    if (err == NULL || diag == NULL) {
        return;
    }
    /* slapd: "object class 'x' requires attribute 'sn'", "attribute 'foo' not allowed" */
    p = NULL;
    for (q = strstr(diag, "attribute '"); q != NULL; q = strstr(q + 1, "attribute '")) {
        p = q + strlen("attribute '");
    }
    if (p != NULL) {
        q = strchr(p, '\'');
        if (q == NULL) {
            return;
        }
    } else {
        /* slapd: "mail: value #0 invalid per syntax" */
        p = diag;
        for (q = p; *q != '\0' && is_attr_char((unsigned char)*q); q++) {
        }
        if (q == p || *q != ':' || !isalpha((unsigned char)*p)) {
            if (strstr(diag, "objectClass") != NULL || strstr(diag, "object class") != NULL) {
                dm_err_attr(err, "objectClass");
            }
            return;
        }
    }
    n = (size_t)(q - p);
    if (n == 0 || n >= sizeof(name)) {
        return;
    }
    memcpy(name, p, n);
    name[n] = '\0';
    dm_err_attr(err, name);
}
