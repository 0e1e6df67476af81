/*
 * connectors/ldap_check.c: what `dirmig check` shows of an LDAP server (both dialects):
 * the rootDSE (vendor, naming contexts, paged results, SASL mechanisms, controls), the TLS
 * actually in use on the session, and the identity the session is bound as.
 *
 * The bound identity comes from the Who am I? extended operation (RFC 4532). A server
 * that does not offer it (Samba's AD DC answers protocolError) is asked through the
 * rootDSE instead: Active Directory constructs tokenGroups there, the SIDs of the
 * session's security token (MS-ADTS 3.1.1.3.2); the first SID that names a user (a base
 * search on "<SID=...>", AD's extended DN form) is the bound account. A SASL session also
 * knows the name it authenticated (a Kerberos principal for GSSAPI), which is shown first.
 * What is shown is always what the server says, never the configured bind_dn.
 */
#include <config.h>
#include "connectors/ldap_common.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/util/log.h"
#include "schema/transform_ad.h"

static int has_value(const struct entry *e, const char *attr, const char *val)
{
    const struct dm_attr *a = entry_attr(e, attr);

    for (size_t i = 0; a != NULL && i < a->nvals; i++) {
        if (strcasecmp((const char *)a->vals[i].data, val) == 0) {
            return 1;
        }
    }
    return 0;
}

static int put_list(struct buf *out, const struct entry *e, const char *attr, const char *label)
{
    const struct dm_attr *a = entry_attr(e, attr);
    int rc;

    rc = buf_printf(out, "  %s: ", label);
    for (size_t i = 0; rc == DM_OK && a != NULL && i < a->nvals; i++) {
        rc = buf_printf(out, "%s%s", i > 0 ? ", " : "", (const char *)a->vals[i].data);
    }
    if (rc == DM_OK && (a == NULL || a->nvals == 0)) {
        rc = buf_puts(out, "(none)");
    }
    if (rc == DM_OK) {
        rc = buf_puts(out, "\n");
    }
    return rc;
}

/* The TLS the session runs on, as libldap has it (not as the config asks for it). */
static int put_tls(struct buf *out, struct ldap_common_sess *s, const struct entry *root)
{
    const struct conn_cfg *cfg = &s->cfg;
    char *version = NULL, *cipher = NULL;
    int rc;

    if (strncasecmp(cfg->uri, "ldapi://", 8) == 0) {
        return buf_puts(out, "  TLS: none needed (local socket)\n");
    }
    if (!ldap_tls_inplace(s->ld)) {
        return buf_printf(out, "  TLS: NOT in use (the server offers StartTLS: %s)\n",
                          has_value(root, "supportedExtension", LDAP_EXOP_START_TLS) ? "yes"
                                                                                     : "no");
    }
    ldap_get_option(s->ld, LDAP_OPT_X_TLS_VERSION, &version);
    ldap_get_option(s->ld, LDAP_OPT_X_TLS_CIPHER, &cipher);
    rc = buf_printf(out, "  TLS: in use (%s%s%s%s%s), certificate %s\n",
                    strncasecmp(cfg->uri, "ldaps://", 8) == 0 ? "ldaps://" : "StartTLS",
                    version != NULL ? ", " : "", version != NULL ? version : "",
                    cipher != NULL ? ", " : "", cipher != NULL ? cipher : "",
                    cfg->tls_verify == 0 ? "NOT verified (tls.verify false)" : "verified");
    ldap_memfree(version);
    ldap_memfree(cipher);
    return rc;
}

struct sid_ctx {
    char dn[512];
    int found;
};

static int sid_user_cb(LDAP *ld, LDAPMessage *msg, void *payload)
{
    struct sid_ctx *x = payload;
    struct berval **oc = ldap_get_values_len(ld, msg, "objectClass");
    int user = 0;
    char *dn;

    for (size_t i = 0; oc != NULL && oc[i] != NULL; i++) {
        user |= oc[i]->bv_len == 4 && strncasecmp(oc[i]->bv_val, "user", 4) == 0;
    }
    ldap_value_free_len(oc);
    if (user && !x->found && (dn = ldap_get_dn(ld, msg)) != NULL) {
        snprintf(x->dn, sizeof(x->dn), "%s", dn);
        x->found = 1;
        ldap_memfree(dn);
    }
    return 0;
}

/* Active Directory: the account behind the session, from the rootDSE's tokenGroups (the
 * SIDs of the security token) and a base search on "<SID=...>" for each until one is a
 * user. Writes the DN into dn; returns 1 when found. */
static int ad_token_user(struct ldap_common_sess *s, char *dn, size_t len)
{
    static char *tg_attrs[] = {"tokenGroups", NULL};
    static char *oc_attrs[] = {"objectClass", NULL};
    struct entry *tg = NULL;
    struct dm_err e = {0};
    const struct dm_attr *a;
    struct sid_ctx x = {{0}, 0};

    log_debug("ldap_search(base=\"\", scope=base, attrs=tokenGroups) uri=%s", s->cfg.uri);
    if (ldap_common_lookup(&tg, s, "", tg_attrs, &e) != DM_OK) {
        return 0;
    }
    a = entry_attr(tg, "tokenGroups");
    for (size_t i = 0; a != NULL && i < a->nvals && i < 64 && !x.found; i++) {
        char sid[192], base[200];

        if (transform_sid_to_string(sid, sizeof(sid), a->vals[i].data, a->vals[i].len) != DM_OK) {
            continue;
        }
        snprintf(base, sizeof(base), "<SID=%s>", sid);
        if (ldap_common_search(s, base, LDAP_SCOPE_BASE, "(objectClass=*)", oc_attrs, 0,
                               sid_user_cb, &x, &e) != DM_OK) {
            dm_err_clear(&e); /* well-known SIDs (S-1-5-11, ...) have no entry */
        }
    }
    entry_free(tg);
    if (x.found) {
        snprintf(dn, len, "%s", x.dn);
    }
    return x.found;
}

static int put_identity(struct buf *out, struct ldap_common_sess *s, const struct entry *root)
{
    struct berval *authzid = NULL;
    char *sasl_user = NULL;
    char dn[512];
    int lrc, rc, ad = entry_attr(root, "supportedCapabilities") != NULL;

    log_debug("ldap_whoami() uri=%s", s->cfg.uri);
    lrc = ldap_whoami_s(s->ld, &authzid, NULL, NULL);
    if (lrc == LDAP_SUCCESS) {
        if (authzid != NULL && authzid->bv_len > 0) {
            rc = buf_printf(out, "  bound as: %.*s\n", (int)authzid->bv_len, authzid->bv_val);
        } else {
            rc = buf_puts(out, "  bound as: anonymous\n");
        }
        ber_bvfree(authzid);
        return rc;
    }
    if (s->cfg.sasl_mech != NULL &&
        ldap_get_option(s->ld, LDAP_OPT_X_SASL_USERNAME, &sasl_user) != LDAP_OPT_SUCCESS) {
        sasl_user = NULL;
    }
    if (ad && ad_token_user(s, dn, sizeof(dn))) {
        if (sasl_user != NULL) {
            rc = buf_printf(out, "  bound as: %s (%s; SASL %s, from the rootDSE tokenGroups)\n",
                            sasl_user, dn, s->cfg.sasl_mech);
        } else {
            rc = buf_printf(out, "  bound as: %s (from the rootDSE tokenGroups)\n", dn);
        }
    } else if (sasl_user != NULL) {
        rc = buf_printf(out, "  bound as: %s (SASL %s)\n", sasl_user, s->cfg.sasl_mech);
    } else if (s->cfg.bind_dn == NULL && s->cfg.sasl_mech == NULL) {
        rc = buf_puts(out, "  bound as: anonymous (no bind)\n");
    } else {
        /* the bind succeeded with these credentials, but the server will not say more */
        rc = buf_printf(out, "  bound as: not shown by the server (who-am-I: %s)\n",
                        ldap_err2string(lrc));
    }
    ldap_memfree(sasl_user);
    return rc;
}

int ldap_common_check(struct ldap_common_sess *s, struct buf *out, struct dm_err *err)
{
    static char *root_attrs[] = {"namingContexts",        "supportedControl",
                                 "supportedExtension",    "supportedSASLMechanisms",
                                 "supportedCapabilities", "vendorName",
                                 "vendorVersion",         "supportedLDAPVersion",
                                 "objectClass",           NULL};
    struct entry *root = NULL;
    const char *vendor;
    const char *version;
    int rc;

    log_debug("ldap_search(base=\"\", scope=base) rootDSE uri=%s", s->cfg.uri);
    rc = ldap_common_lookup(&root, s, "", root_attrs, err);
    if (rc != DM_OK) {
        return rc;
    }
    vendor = entry_first(root, "vendorName");
    version = entry_first(root, "vendorVersion");
    if (vendor == NULL && has_value(root, "objectClass", "OpenLDAProotDSE")) {
        vendor = "OpenLDAP";
    }
    if (vendor == NULL && entry_attr(root, "supportedCapabilities") != NULL) {
        vendor = "Active Directory";
    }
    rc = buf_printf(out, "  vendor: %s%s%s\n", vendor != NULL ? vendor : "(not published)",
                    version != NULL ? " " : "", version != NULL ? version : "");
    if (rc == DM_OK) {
        rc = put_tls(out, s, root);
    }
    if (rc == DM_OK) {
        rc = put_identity(out, s, root);
    }
    if (rc == DM_OK) {
        rc = put_list(out, root, "namingContexts", "naming contexts");
    }
    if (rc == DM_OK) {
        rc = buf_printf(out, "  paged results: %s\n",
                        has_value(root, "supportedControl", LDAP_CONTROL_PAGEDRESULTS) ? "yes"
                                                                                       : "no");
    }
    if (rc == DM_OK) {
        rc = put_list(out, root, "supportedSASLMechanisms", "SASL mechanisms");
    }
    if (rc == DM_OK) {
        rc = put_list(out, root, "supportedControl", "controls");
    }
    if (rc != DM_OK) {
        rc = dm_err_set(err, rc, "check: output too large");
    }
    entry_free(root);
    return rc;
}
