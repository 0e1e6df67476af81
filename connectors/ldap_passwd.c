#include <config.h>
#include "connectors/ldap_passwd.h"

#include <stdlib.h>
#include <string.h>

#include "agent/util/log.h"
#include "connectors/ldap_common.h"

struct ldap_passwd {
    struct ldap_common_sess sess;
};

int ldap_passwd_open(struct ldap_passwd **out, const struct conn_cfg *cfg, struct dm_err *err)
{
    struct ldap_passwd *p = calloc(1, sizeof(*p));
    int rc;

    if (p == NULL) {
        return dm_err_set(err, DM_ENOMEM, "ldap_passwd_open");
    }
    rc = ldap_common_open(&p->sess, cfg, err);
    if (rc != DM_OK) {
        free(p);
        return rc;
    }
    *out = p;
    return DM_OK;
}

void ldap_passwd_close(struct ldap_passwd *p)
{
    if (p != NULL) {
        ldap_common_close(&p->sess);
        free(p);
    }
}

void ldap_passwd_entry_free(struct entry *e)
{
    struct dm_attr *a = e != NULL ? entry_attr(e, "userPassword") : NULL;

    for (size_t i = 0; a != NULL && i < a->nvals; i++) {
        explicit_bzero(a->vals[i].data, a->vals[i].len);
    }
    entry_free(e);
}

/* Reopens the connection when it is gone (one attempt). */
static int ensure(struct ldap_passwd *p, struct dm_err *err)
{
    if (p->sess.ld != NULL) {
        return DM_OK;
    }
    return ldap_common_open(&p->sess, &p->sess.cfg, err);
}

int ldap_passwd_read(struct entry **out, struct ldap_passwd *p, const char *dn, struct dm_err *err)
{
    char *attrs[] = {"userPassword", NULL};
    int rc = DM_EUNAVAIL;

    for (int attempt = 0; attempt < 2; attempt++) {
        rc = ensure(p, err);
        if (rc != DM_OK) {
            return rc;
        }
        rc = ldap_common_lookup(out, &p->sess, dn, attrs, err);
        if (rc != DM_EUNAVAIL || err->ldap_rc >= 0) {
            break;
        }
        ldap_common_close(&p->sess); /* lost: reconnect once */
    }
    return rc;
}

int ldap_passwd_swap(struct ldap_passwd *p, const char *dn, const unsigned char *old, size_t oldlen,
                     const char *value, struct dm_err *err)
{
    struct berval oldv = {(ber_len_t)oldlen, (char *)old};
    struct berval newv = {(ber_len_t)strlen(value), (char *)value};
    struct berval *oldvals[] = {&oldv, NULL}, *newvals[] = {&newv, NULL};
    LDAPMod del = {LDAP_MOD_DELETE | LDAP_MOD_BVALUES, "userPassword", {NULL}};
    LDAPMod add = {LDAP_MOD_ADD | LDAP_MOD_BVALUES, "userPassword", {NULL}};
    LDAPMod *mods[3];
    LDAPControl *assertion = NULL, *ctrls[2] = {NULL, NULL};
    int lrc = LDAP_OTHER, rc = DM_EUNAVAIL;

    del.mod_bvalues = oldvals;
    add.mod_bvalues = newvals;
    mods[0] = old != NULL ? &del : &add;
    mods[1] = old != NULL ? &add : NULL;
    mods[2] = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = ensure(p, err);
        if (rc != DM_OK) {
            return rc;
        }
        if (old == NULL && assertion == NULL) {
            /* only if the entry still has no password at all (RFC 4528) */
            lrc = ldap_create_assertion_control(p->sess.ld, "(!(userPassword=*))", 1, &assertion);
            if (lrc != LDAP_SUCCESS) {
                return ldap_to_rc(err, p->sess.ld, lrc, NULL, NULL, "assertion control");
            }
            ctrls[0] = assertion;
        }
        /* bounded by LDAP_OPT_TIMEOUT (the target's timeout_ms), set at open */
        log_debug("ldap_modify_ext(dn=\"%s\", userPassword=***, %s) uri=%s", dn,
                  old != NULL ? "replacing the old value" : "asserting none", p->sess.cfg.uri);
        lrc = ldap_modify_ext_s(p->sess.ld, dn, mods, old == NULL ? ctrls : NULL, NULL);
        if (ldap_common_is_conn_err(lrc)) {
            ldap_common_close(&p->sess);
            ldap_control_free(assertion);
            assertion = NULL;
            continue;
        }
        break;
    }
    ldap_control_free(assertion);
    switch (lrc) {
    case LDAP_SUCCESS:
        return DM_OK;
    case LDAP_NO_SUCH_ATTRIBUTE:    /* 16: the old value is gone */
    case LDAP_ASSERTION_FAILED:     /* 122: a password appeared */
    case LDAP_TYPE_OR_VALUE_EXISTS: /* 20 */
        return dm_err_set(err, DM_EEXISTS, "userPassword changed at the target meanwhile");
    default:
        rc = ldap_to_rc(err, p->sess.ld, lrc, NULL, NULL, "writing userPassword");
        dm_err_dn(err, dn);
        return rc != DM_OK ? rc : DM_EINTERNAL;
    }
}
