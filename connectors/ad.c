#include <config.h>
/*
 * connectors/ad.c: the Active Directory dialect (see ad.h).
 */
#include "connectors/ad.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/util/log.h"
#include "schema/transform_ad.h"
#include "schema/transform_date.h"

#define AD_UAC_ACCOUNTDISABLE 0x2u
#define AD_UAC_LOCKOUT 0x10u
#define AD_IN_CHAIN "1.2.840.113556.1.4.1941"
#define AD_SHOW_DELETED "1.2.840.113556.1.4.417"
#define AD_MAX_RANGE_ROUNDS 100000 /* bound on continuation requests per attribute */

struct ad_read {
    struct ldap_common_sess *sess;
    const struct scope *sc;
    char *attrs[8];
    char range_attr[64];
    char *filter;
    int flatten;
    int64_t now;
};

int ad_is_dialect(const struct conn_cfg *cfg)
{
    return cfg->dialect != NULL && strcmp(cfg->dialect, "ad") == 0;
}

int ad_parse_watermark(char inv[64], unsigned long long *usn, const char *s)
{
    const char *colon = s != NULL ? strrchr(s, ':') : NULL;
    char *end;

    if (colon == NULL || (size_t)(colon - s) >= 64 || colon[1] < '0' || colon[1] > '9') {
        return -1;
    }
    memcpy(inv, s, (size_t)(colon - s));
    inv[colon - s] = '\0';
    *usn = strtoull(colon + 1, &end, 10);
    return *end == '\0' ? 0 : -1;
}

int ad_read_new(struct ad_read **out, struct ldap_common_sess *sess, const struct scope *sc,
                struct dm_err *err)
{
    struct ad_read *r = calloc(1, sizeof(*r));
    const char *f = sc->filter != NULL ? sc->filter : "(objectClass=*)";
    size_t k = 0, n;
    char inv[64];
    unsigned long long usn = 0;

    if (r == NULL) {
        return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
    }
    r->sess = sess;
    r->sc = sc;
    r->now = (int64_t)time(NULL);
    if (sess->cfg.group_nesting != NULL && strcmp(sess->cfg.group_nesting, "flatten") == 0) {
        r->flatten = 1;
    } else if (sess->cfg.group_nesting != NULL &&
               strcmp(sess->cfg.group_nesting, "flatten_in_chain") == 0) {
        r->flatten = 2;
    }
    /* "*" does not include constructed or operational attributes: name them. */
    r->attrs[k++] = "*";
    r->attrs[k++] = "objectGUID";
    r->attrs[k++] = "msDS-User-Account-Control-Computed";
    if (sess->cfg.range_size > 0) {
        /* An explicit first range: with it the DC returns only this chunk of member (not
         * the plain attribute), as AD does on its own above MaxValRange. */
        snprintf(r->range_attr, sizeof(r->range_attr), "member;range=0-%d",
                 sess->cfg.range_size - 1);
        r->attrs[k++] = r->range_attr;
    }
    r->attrs[k] = NULL;
    if (sc->since != NULL) {
        if (ad_parse_watermark(inv, &usn, sc->since) != 0) {
            free(r);
            return dm_err_set(err, DM_EINVAL, "ad: bad delta watermark \"%s\"", sc->since);
        }
        n = strlen(f) + 64;
        r->filter = malloc(n);
        if (r->filter != NULL) {
            snprintf(r->filter, n, "(&%s(uSNChanged>=%llu))", f, usn + 1);
        }
    } else {
        r->filter = strdup(f);
    }
    if (r->filter == NULL) {
        free(r);
        return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
    }
    *out = r;
    return DM_OK;
}

void ad_read_free(struct ad_read *r)
{
    if (r == NULL) {
        return;
    }
    free(r->filter);
    free(r);
}

char **ad_read_attrs(struct ad_read *r)
{
    return r->attrs;
}

const char *ad_read_filter(const struct ad_read *r)
{
    return r->filter;
}

/* ---- ranged attributes ---- */

/* Splits "member;range=1500-2999" into the plain name length, low and high (-1 for "*").
 * Returns 0 when name is a ranged attribute. Other options (";binary") stay in the name. */
static int parse_range(const char *name, size_t *baselen, long long *lo, long long *hi)
{
    const char *p = strcasestr(name, ";range=");
    char *end;

    if (p == NULL) {
        return -1;
    }
    *baselen = (size_t)(p - name);
    p += 7;
    *lo = strtoll(p, &end, 10);
    if (end == p || *end != '-') {
        return -1;
    }
    p = end + 1;
    if (*p == '*' && p[1] == '\0') {
        *hi = -1;
        return 0;
    }
    *hi = strtoll(p, &end, 10);
    return end != p && *end == '\0' && *hi >= *lo ? 0 : -1;
}

struct range_ctx {
    struct entry *got;
};

static int range_cb(LDAP *ld, LDAPMessage *msg, void *payload)
{
    struct range_ctx *x = payload;
    struct dm_err e = {0};

    if (x->got != NULL) {
        return DM_OK;
    }
    return ldap_common_msg_to_entry(&x->got, ld, msg, NULL, &e);
}

/* Moves the values of ranged attribute index i to the plain name, fetching the later
 * chunks: AD marks the last one member;range=<low>-*. */
static int finish_range(struct ad_read *r, struct entry *e, size_t i, struct dm_err *err)
{
    char base[128], req[200], *attrs[2] = {req, NULL};
    size_t blen;
    long long lo, hi;
    struct dm_attr *dst;
    int rc = DM_OK;

    if (parse_range(e->attrs[i].name, &blen, &lo, &hi) != 0 || blen == 0 || blen >= sizeof(base)) {
        return dm_err_set(err, DM_EINVAL, "ad: %s: cannot parse ranged attribute \"%s\"", e->dn,
                          e->attrs[i].name);
    }
    memcpy(base, e->attrs[i].name, blen);
    base[blen] = '\0';
    if (lo != 0) {
        return dm_err_set(err, DM_EINVAL, "ad: %s: ranged attribute \"%s\" does not start at 0",
                          e->dn, e->attrs[i].name);
    }
    /* The server sent the first chunk under the ranged name; gather everything under the
     * plain name. */
    {
        struct entry *tmp = entry_new(NULL);
        struct dm_attr *a;
        if (tmp == NULL) {
            return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        }
        a = entry_attr_add(tmp, base);
        for (size_t j = 0; a != NULL && j < e->attrs[i].nvals && rc == DM_OK; j++) {
            rc = attr_add_value(a, e->attrs[i].vals[j].data, e->attrs[i].vals[j].len);
        }
        if (a == NULL || rc != DM_OK) {
            entry_free(tmp);
            return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        }
        entry_del_attr(e, e->attrs[i].name);
        entry_del_attr(e, base); /* cannot be there with a ranged one; be sure */
        dst = entry_attr_add(e, base);
        for (size_t j = 0; dst != NULL && j < a->nvals && rc == DM_OK; j++) {
            rc = attr_add_value(dst, a->vals[j].data, a->vals[j].len);
        }
        entry_free(tmp);
        if (dst == NULL || rc != DM_OK) {
            return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        }
    }
    for (int round = 0; hi >= 0; round++) {
        struct range_ctx x = {NULL};
        const struct dm_attr *got = NULL;
        long long nlo, nhi;
        size_t nb;
        if (round > AD_MAX_RANGE_ROUNDS) {
            return dm_err_set(err, DM_ELIMIT, "ad: %s: %s: too many ranges", e->dn, base);
        }
        if (r->sess->cfg.range_size > 0) {
            snprintf(req, sizeof(req), "%s;range=%lld-%lld", base, hi + 1,
                     hi + (long long)r->sess->cfg.range_size);
        } else {
            snprintf(req, sizeof(req), "%s;range=%lld-*", base, hi + 1);
        }
        log_debug("ldap_search(base=\"%s\", scope=base, attrs=%s) uri=%s", e->dn, req,
                  r->sess->cfg.uri);
        rc = ldap_common_search(r->sess, e->dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0,
                                range_cb, &x, err);
        if (rc != DM_OK) {
            entry_free(x.got);
            dm_err_dn(err, e->dn);
            dm_err_attr(err, base);
            return rc;
        }
        if (x.got == NULL) {
            return dm_err_set(err, DM_ENOTFOUND, "ad: %s vanished while reading %s", e->dn, req);
        }
        for (size_t j = 0; j < x.got->nattrs; j++) {
            if (parse_range(x.got->attrs[j].name, &nb, &nlo, &nhi) == 0 && nb == blen &&
                strncasecmp(x.got->attrs[j].name, base, blen) == 0) {
                got = &x.got->attrs[j];
                break;
            }
        }
        if (got == NULL) {
            /* Samba answers a start beyond the end with no attribute: the previous chunk
             * ended exactly at the last value. (AD marks the last chunk "-*" instead.) */
            entry_free(x.got);
            break;
        }
        if (nlo != hi + 1) {
            entry_free(x.got);
            return dm_err_set(err, DM_EINVAL, "ad: %s: asked for %s, got range %lld-", e->dn, req,
                              nlo);
        }
        dst = entry_attr(e, base);
        for (size_t j = 0; j < got->nvals && rc == DM_OK; j++) {
            rc = attr_add_value(dst, got->vals[j].data, got->vals[j].len);
        }
        hi = nhi;
        entry_free(x.got);
        if (rc != DM_OK) {
            return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        }
    }
    log_debug("ad: %s: %s read in ranges: %zu values", e->dn, base, entry_attr(e, base)->nvals);
    return DM_OK;
}

/* ---- identity and state ---- */

static int attr_u64(const struct entry *e, const char *name, unsigned long long *out)
{
    const char *v = entry_first(e, name);
    char *end;

    if (v == NULL) {
        return -1;
    }
    *out = strtoull(v, &end, 10);
    if (*v == '-') {
        /* userAccountControl is a signed 32-bit integer on the wire */
        *out = (unsigned long long)(uint32_t)strtoll(v, &end, 10);
    }
    return end != v && *end == '\0' ? 0 : -1;
}

static const char *account_state(const struct ad_read *r, const struct entry *e)
{
    return ad_account_state(e, r->now);
}

/* enabled/disabled/locked/expired: userAccountControl ACCOUNTDISABLE (0x2), accountExpires
 * (FILETIME; 0 and 2^63-1 mean never), the constructed LOCKOUT bit (0x10) or lockoutTime. */
const char *ad_account_state(const struct entry *e, int64_t now)
{
    unsigned long long uac = 0, computed = 0, lockout = 0;
    const char *ae = entry_first(e, "accountExpires");
    int64_t t;
    int never;

    if (attr_u64(e, "userAccountControl", &uac) == 0 && (uac & AD_UAC_ACCOUNTDISABLE)) {
        return "disabled";
    }
    /* 0 and 9223372036854775807 both mean "never" (transform_parse_filetime knows both). */
    if (ae != NULL && transform_parse_filetime(&t, &never, ae, strlen(ae)) == DM_OK && !never &&
        t <= now) {
        return "expired";
    }
    /* LOCKOUT is not kept up to date in userAccountControl since 2003: the constructed
     * attribute is; without it (not readable), a non-zero lockoutTime counts. */
    if (attr_u64(e, "msDS-User-Account-Control-Computed", &computed) == 0) {
        if (computed & AD_UAC_LOCKOUT) {
            return "locked";
        }
    } else if ((uac & AD_UAC_LOCKOUT) ||
               (attr_u64(e, "lockoutTime", &lockout) == 0 && lockout != 0)) {
        return "locked";
    }
    return "enabled";
}

static int is_group(const struct entry *e)
{
    return entry_has_class(e, "group");
}

static int is_user(const struct entry *e)
{
    return !is_group(e) && entry_attr(e, "userAccountControl") != NULL;
}

/* ---- groups ---- */

struct dn_list_ctx {
    struct entry *into;   /* member values are appended here */
    const char *attr;     /* "member" */
    struct entry *groups; /* flatten: nested groups' RIDs as values of "rid" */
    struct dm_err *err;
};

static int add_dn_cb(LDAP *ld, LDAPMessage *msg, void *payload)
{
    struct dn_list_ctx *x = payload;
    char *dn = ldap_get_dn(ld, msg);
    struct entry *tmp = NULL;
    struct dm_err e = {0};
    int rc = DM_OK;

    if (dn == NULL) {
        return dm_err_set(x->err, DM_EINTERNAL, "ad: entry without a DN");
    }
    if (x->groups != NULL) {
        rc = ldap_common_msg_to_entry(&tmp, ld, msg, NULL, &e);
        if (rc != DM_OK) {
            *x->err = e;
            goto done;
        }
        if (is_group(tmp)) {
            const struct dm_attr *sid = entry_attr(tmp, "objectSid");
            rc = entry_add_str(x->groups, "dn", dn);
            if (rc != DM_OK) {
                goto done;
            }
            if (sid != NULL && sid->nvals > 0 && sid->vals[0].len >= 12) {
                const unsigned char *b = sid->vals[0].data + sid->vals[0].len - 4;
                char rid[16];
                snprintf(rid, sizeof(rid), "%" PRIu32,
                         (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                             (uint32_t)b[3] << 24);
                rc = entry_add_str(x->groups, "rid", rid);
            } else {
                rc = entry_add_str(x->groups, "rid", "0"); /* keeps "rid" aligned with "dn" */
            }
            goto done;
        }
    }
    rc = entry_add_str(x->into, x->attr, dn);
done:
    if (rc == DM_ENOMEM) {
        dm_err_set(x->err, rc, "ad: out of memory");
    }
    entry_free(tmp);
    ldap_memfree(dn);
    return rc;
}

/* The domain-wide base for look-ups that must see every object (primary group members
 * may live outside the users base). */
static const char *domain_base(const struct ad_read *r)
{
    return r->sess->cfg.base;
}

static int add_primary_members(struct ad_read *r, struct entry *e, const char *rid,
                               struct dm_err *err)
{
    char filter[64], *attrs[] = {LDAP_NO_ATTRS, NULL};
    struct dn_list_ctx x = {e, "member", NULL, err};
    int page = r->sess->cfg.page_size > 0 && r->sess->cfg.page_size < AD_MAX_PAGE
                   ? r->sess->cfg.page_size
                   : AD_MAX_PAGE;

    snprintf(filter, sizeof(filter), "(primaryGroupID=%s)", rid);
    return ldap_common_search(r->sess, domain_base(r), LDAP_SCOPE_SUBTREE, filter, attrs, page,
                              add_dn_cb, &x, err);
}

static int group_rid(char out[16], const struct entry *e)
{
    const struct dm_attr *sid = entry_attr(e, "objectSid");
    const unsigned char *b;

    if (sid == NULL || sid->nvals == 0 || sid->vals[0].len < 12) {
        return -1;
    }
    b = sid->vals[0].data + sid->vals[0].len - 4;
    snprintf(out, 16, "%" PRIu32,
             (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
    return 0;
}

/* Flatten: member = every transitive member that is not a group (in-chain rule, evaluated
 * by the DC and safe against cycles), plus the primary-group members of the group and of
 * every group nested in it. */
static int flatten_members(struct ad_read *r, struct entry *e, struct dm_err *err)
{
    struct berval in, esc = {0, NULL};
    char *filter = NULL, *attrs[] = {"objectClass", "objectSid", NULL};
    struct entry *groups = entry_new(NULL);
    struct dn_list_ctx x = {e, "member", NULL, err};
    const struct dm_attr *rids;
    char rid[16];
    size_t n;
    int page = AD_MAX_PAGE, rc;

    if (groups == NULL) {
        return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
    }
    x.groups = groups;
    in.bv_val = e->dn;
    in.bv_len = strlen(e->dn);
    /* RFC 4515: the DN is an assertion value */
    if (ldap_bv2escaped_filter_value(&in, &esc) != 0) {
        entry_free(groups);
        return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
    }
    n = esc.bv_len + 64;
    filter = malloc(n);
    if (filter == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        goto done;
    }
    snprintf(filter, n, "(memberOf:" AD_IN_CHAIN ":=%s)", esc.bv_val);
    entry_del_attr(e, "member");
    rc = ldap_common_search(r->sess, domain_base(r), LDAP_SCOPE_SUBTREE, filter, attrs, page,
                            add_dn_cb, &x, err);
    if (rc != DM_OK) {
        goto done;
    }
    if (group_rid(rid, e) == 0) {
        rc = add_primary_members(r, e, rid, err);
    }
    rids = entry_attr(groups, "rid");
    for (size_t i = 0; rc == DM_OK && rids != NULL && i < rids->nvals; i++) {
        rc = add_primary_members(r, e, (const char *)rids->vals[i].data, err);
    }
    if (rc == DM_OK && entry_attr(e, "member") != NULL) {
        attr_dedup(entry_attr(e, "member"));
    }
done:
    free(filter);
    ber_memfree(esc.bv_val);
    entry_free(groups);
    return rc;
}

/* Flatten by walking the nesting from the client: one (memberOf=<group>) search per
 * group reached (memberOf is the indexed back-link of member), each group visited once,
 * so cycles end. On Samba 4.17 this takes ~0.1 s per group where one in-chain search took
 * 6 s (2,000 users). Adds the primary-group members of every group reached. */
static int flatten_walk(struct ad_read *r, struct entry *e, struct dm_err *err)
{
    char *attrs[] = {"objectClass", "objectSid", NULL};
    struct entry *seen = entry_new(NULL);  /* "dn": groups queued, in order */
    struct entry *found = entry_new(NULL); /* per search: "dn" of groups, "rid" */
    struct dn_list_ctx x = {e, "member", NULL, err};
    char rid[16];
    int rc = DM_OK;

    if (seen == NULL || found == NULL || entry_add_str(seen, "dn", e->dn) != DM_OK) {
        rc = dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        goto done;
    }
    entry_del_attr(e, "member");
    if (group_rid(rid, e) == 0) {
        rc = add_primary_members(r, e, rid, err);
    }
    for (size_t i = 0; rc == DM_OK && i < entry_attr(seen, "dn")->nvals; i++) {
        struct berval in, esc = {0, NULL};
        const struct dm_attr *g;
        char *filter;
        size_t n;

        in.bv_val = (char *)entry_attr(seen, "dn")->vals[i].data;
        in.bv_len = entry_attr(seen, "dn")->vals[i].len;
        if (ldap_bv2escaped_filter_value(&in, &esc) != 0) { /* RFC 4515 */
            rc = dm_err_set(err, DM_ENOMEM, "ad: out of memory");
            break;
        }
        n = esc.bv_len + 16;
        filter = malloc(n);
        if (filter == NULL) {
            ber_memfree(esc.bv_val);
            rc = dm_err_set(err, DM_ENOMEM, "ad: out of memory");
            break;
        }
        snprintf(filter, n, "(memberOf=%s)", esc.bv_val);
        ber_memfree(esc.bv_val);
        entry_del_attr(found, "rid");
        entry_del_attr(found, "dn");
        x.groups = found;
        rc = ldap_common_search(r->sess, domain_base(r), LDAP_SCOPE_SUBTREE, filter, attrs,
                                AD_MAX_PAGE, add_dn_cb, &x, err);
        free(filter);
        /* nested groups: queue the new ones, add their primary-group members */
        g = entry_attr(found, "dn");
        for (size_t j = 0; rc == DM_OK && g != NULL && j < g->nvals; j++) {
            const struct dm_attr *sn = entry_attr(seen, "dn");
            const struct dm_attr *rids = entry_attr(found, "rid");
            int dup = 0;
            for (size_t k = 0; k < sn->nvals && !dup; k++) {
                dup =
                    strcasecmp((const char *)sn->vals[k].data, (const char *)g->vals[j].data) == 0;
            }
            if (dup) {
                continue; /* a cycle or a diamond: visited already */
            }
            rc = entry_add_str(seen, "dn", (const char *)g->vals[j].data);
            if (rc == DM_OK && rids != NULL && j < rids->nvals) {
                rc = add_primary_members(r, e, (const char *)rids->vals[j].data, err);
            }
        }
    }
    if (rc == DM_OK && entry_attr(e, "member") != NULL) {
        attr_dedup(entry_attr(e, "member"));
    }
done:
    entry_free(seen);
    entry_free(found);
    return rc;
}

int ad_read_fixup(struct ad_read *r, struct entry *e, struct dm_err *err)
{
    const struct dm_attr *guid;
    const char *ka;
    char key[37], rid[16];
    size_t blen;
    long long lo, hi;
    int rc = DM_OK;

    for (size_t i = 0; i < e->nattrs && rc == DM_OK;) {
        if (parse_range(e->attrs[i].name, &blen, &lo, &hi) == 0) {
            rc = finish_range(r, e, i, err); /* reorders attributes: start again */
            i = 0;
            continue;
        }
        i++;
    }
    if (rc != DM_OK) {
        return rc;
    }
    /* The key: objectGUID as a string for the map's objectGUID, and for entryUUID (the
     * generic default, which AD lacks); objectSid as S-1-5-...; else the first value. */
    ka = r->sc->key_attr;
    if (ka != NULL && strcasecmp(ka, "objectSid") == 0) {
        const struct dm_attr *sid = entry_attr(e, "objectSid");
        char s[200];
        rc = entry_set_key(e, sid != NULL && sid->nvals > 0 &&
                                      transform_sid_to_string(s, sizeof(s), sid->vals[0].data,
                                                              sid->vals[0].len) == DM_OK
                                  ? s
                                  : NULL);
    } else if (ka != NULL && strcasecmp(ka, "objectGUID") != 0 &&
               strcasecmp(ka, "entryUUID") != 0) {
        rc = entry_set_key(e, entry_first(e, ka));
    } else if ((guid = entry_attr(e, "objectGUID")) != NULL && guid->nvals > 0 &&
               transform_guid_to_string(key, guid->vals[0].data, guid->vals[0].len) == DM_OK) {
        rc = entry_set_key(e, key);
    } else {
        rc = entry_set_key(e, NULL);
        log_warn("ad: %s has no objectGUID; its DN is its key", e->dn);
    }
    if (rc != DM_OK) {
        return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
    }
    if (is_user(e)) {
        const char *st = account_state(r, e);
        entry_del_attr(e, AD_ATTR_STATE);
        entry_del_attr(e, AD_ATTR_ENABLED);
        if (entry_add_str(e, AD_ATTR_STATE, st) != DM_OK ||
            entry_add_str(e, AD_ATTR_ENABLED, strcmp(st, "enabled") == 0 ? "TRUE" : "FALSE") !=
                DM_OK) {
            return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        }
    } else if (is_group(e)) {
        if (r->flatten == 2) {
            rc = flatten_members(r, e, err);
        } else if (r->flatten) {
            rc = flatten_walk(r, e, err);
        } else if (group_rid(rid, e) == 0) {
            rc = add_primary_members(r, e, rid, err);
            if (rc == DM_OK && entry_attr(e, "member") != NULL) {
                attr_dedup(entry_attr(e, "member"));
            }
        }
        if (rc != DM_OK) {
            dm_err_dn(err, e->dn);
        }
    }
    return rc;
}

int ad_lookup(struct entry **out, struct ldap_common_sess *sess, const char *dn, struct dm_err *err)
{
    struct scope sc = {.base = dn, .filter = "(objectClass=*)"};
    struct ad_read *r = NULL;
    int rc;

    *out = NULL;
    rc = ad_read_new(&r, sess, &sc, err);
    if (rc == DM_OK) {
        rc = ldap_common_lookup(out, sess, dn, ad_read_attrs(r), err);
    }
    if (rc == DM_OK) {
        rc = ad_read_fixup(r, *out, err);
        if (rc != DM_OK) {
            entry_free(*out);
            *out = NULL;
        }
    }
    ad_read_free(r);
    return rc;
}

/* ---- delta ---- */

struct dse_ctx {
    struct entry *e;
};

static int dse_cb(LDAP *ld, LDAPMessage *msg, void *payload)
{
    struct dse_ctx *x = payload;
    struct dm_err e = {0};

    if (x->e != NULL) {
        return DM_OK;
    }
    return ldap_common_msg_to_entry(&x->e, ld, msg, NULL, &e);
}

int ad_watermark(char **out, struct ldap_common_sess *sess, struct dm_err *err)
{
    char *attrs[] = {"highestCommittedUSN", "dsServiceName", NULL};
    char *iattrs[] = {"invocationId", NULL};
    struct dse_ctx x = {NULL}, y = {NULL};
    const char *usn, *dsa;
    const struct dm_attr *inv;
    char invs[37], *s = NULL;
    int rc;

    rc =
        ldap_common_search(sess, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, dse_cb, &x, err);
    if (rc != DM_OK) {
        goto done;
    }
    usn = x.e != NULL ? entry_first(x.e, "highestCommittedUSN") : NULL;
    dsa = x.e != NULL ? entry_first(x.e, "dsServiceName") : NULL;
    if (usn == NULL || dsa == NULL) {
        rc = dm_err_set(err, DM_EINVAL,
                        "%s: the rootDSE has no highestCommittedUSN/dsServiceName: not an AD DC",
                        sess->cfg.uri);
        goto done;
    }
    /* The DC's database identity: uSNs of a restored DC (new invocationId) or of another
     * DC do not compare (a restored DC gets a new invocationId). */
    rc = ldap_common_search(sess, dsa, LDAP_SCOPE_BASE, "(objectClass=*)", iattrs, 0, dse_cb, &y,
                            err);
    if (rc != DM_OK) {
        goto done;
    }
    inv = y.e != NULL ? entry_attr(y.e, "invocationId") : NULL;
    if (inv == NULL || inv->nvals == 0 ||
        transform_guid_to_string(invs, inv->vals[0].data, inv->vals[0].len) != DM_OK) {
        rc = dm_err_set(err, DM_EINVAL, "%s: %s has no invocationId", sess->cfg.uri, dsa);
        goto done;
    }
    s = malloc(strlen(usn) + sizeof(invs) + 2);
    if (s == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        goto done;
    }
    sprintf(s, "%s:%s", invs, usn);
    *out = s;
    rc = DM_OK;
done:
    entry_free(x.e);
    entry_free(y.e);
    return rc;
}

struct del_ctx {
    const struct scope *sc;
    conn_entry_fn fn;
    void *payload;
    int fn_rc;
    struct dm_err *err;
};

static int del_cb(LDAP *ld, LDAPMessage *msg, void *payload)
{
    struct del_ctx *x = payload;
    struct entry *t = NULL, *out = NULL;
    const struct dm_attr *guid, *a;
    const char *parent, *rdn;
    char key[37];
    struct dm_err e = {0};
    int rc;

    rc = ldap_common_msg_to_entry(&t, ld, msg, NULL, &e);
    if (rc != DM_OK) {
        *x->err = e;
        return rc;
    }
    guid = entry_attr(t, "objectGUID");
    parent = entry_first(t, "lastKnownParent");
    rdn = entry_first(t, "msDS-LastKnownRDN");
    if (guid == NULL || guid->nvals == 0 ||
        transform_guid_to_string(key, guid->vals[0].data, guid->vals[0].len) != DM_OK) {
        goto done; /* not ours to report */
    }
    if (x->sc->base != NULL && parent != NULL) {
        /* Only what was under the scope's base: compare the tail case-insensitively
         * (both come from the DC in its own form). */
        size_t pl = strlen(parent), bl = strlen(x->sc->base);
        if (pl < bl || strcasecmp(parent + pl - bl, x->sc->base) != 0 ||
            (pl > bl && parent[pl - bl - 1] != ',')) {
            goto done;
        }
    }
    {
        size_t n = (rdn ? strlen(rdn) : 0) + (parent ? strlen(parent) : 0) + 8;
        char *dn = malloc(n);
        if (dn == NULL) {
            rc = dm_err_set(x->err, DM_ENOMEM, "ad: out of memory");
            goto done;
        }
        if (rdn != NULL && parent != NULL) {
            /* msDS-LastKnownRDN is the RDN value only; users and groups are CN= */
            snprintf(dn, n, "CN=%s,%s", rdn, parent);
        } else {
            snprintf(dn, n, "%s", t->dn);
        }
        out = entry_new(dn);
        free(dn);
    }
    if (out == NULL || entry_set_key(out, key) != DM_OK) {
        rc = dm_err_set(x->err, DM_ENOMEM, "ad: out of memory");
        goto done;
    }
    if ((a = entry_attr(t, "sAMAccountName")) != NULL && a->nvals > 0) {
        rc = entry_add_value(out, "sAMAccountName", a->vals[0].data, a->vals[0].len);
    }
    for (size_t i = 0; rc == DM_OK && (a = entry_attr(t, "objectClass")) != NULL && i < a->nvals;
         i++) {
        rc = entry_add_value(out, "objectClass", a->vals[i].data, a->vals[i].len);
    }
    if (rc != DM_OK) {
        rc = dm_err_set(x->err, DM_ENOMEM, "ad: out of memory");
        goto done;
    }
    rc = x->fn(out, x->payload);
    if (rc != 0) {
        x->fn_rc = rc;
    }
done:
    entry_free(t);
    entry_free(out);
    return rc;
}

/* 1 when dn is base or below it (DNs in the DC's own form: compared case-insensitively). */
static int under_base(const char *dn, const char *base)
{
    size_t dl = strlen(dn), bl = strlen(base);

    return dl >= bl && strcasecmp(dn + dl - bl, base) == 0 && (dl == bl || dn[dl - bl - 1] == ',');
}

struct out_ctx {
    const char *base; /* report only entries outside it (NULL: every entry) */
    conn_entry_fn fn;
    void *payload;
    int fn_rc;
    struct dm_err *err;
};

/* An entry that changed since the watermark and left the scope: its GUID as the key, its
 * DN, its classes and the synthetic dirmigOutOfScope: TRUE. */
static int out_cb(LDAP *ld, LDAPMessage *msg, void *payload)
{
    struct out_ctx *x = payload;
    struct entry *t = NULL, *out = NULL;
    const struct dm_attr *guid, *a;
    char key[37];
    struct dm_err e = {0};
    int rc;

    rc = ldap_common_msg_to_entry(&t, ld, msg, NULL, &e);
    if (rc != DM_OK) {
        *x->err = e;
        return rc;
    }
    guid = entry_attr(t, "objectGUID");
    if (guid == NULL || guid->nvals == 0 ||
        transform_guid_to_string(key, guid->vals[0].data, guid->vals[0].len) != DM_OK ||
        (x->base != NULL && under_base(t->dn, x->base))) {
        goto done;
    }
    out = entry_new(t->dn);
    rc = out == NULL || entry_set_key(out, key) != DM_OK ||
                 entry_add_str(out, "dirmigOutOfScope", "TRUE") != DM_OK
             ? DM_ENOMEM
             : DM_OK;
    for (size_t i = 0; rc == DM_OK && (a = entry_attr(t, "objectClass")) != NULL && i < a->nvals;
         i++) {
        rc = entry_add_value(out, "objectClass", a->vals[i].data, a->vals[i].len);
    }
    if ((a = entry_attr(t, "sAMAccountName")) != NULL && a->nvals > 0 && rc == DM_OK) {
        rc = entry_add_value(out, "sAMAccountName", a->vals[0].data, a->vals[0].len);
    }
    if (rc != DM_OK) {
        rc = dm_err_set(x->err, DM_ENOMEM, "ad: out of memory");
        goto done;
    }
    rc = x->fn(out, x->payload);
    if (rc != 0) {
        x->fn_rc = rc;
    }
done:
    entry_free(t);
    entry_free(out);
    return rc;
}

/* Objects that changed since usn and left the scope without being deleted: under the
 * base but no longer matching the filter (disabled, and the filter leaves disabled users
 * out), or moved out of the base while still matching it. A delta read by uSNChanged and
 * the filter never sees them; without this they would stay at the target forever. */
static int read_out_of_scope(struct ldap_common_sess *sess, const struct scope *sc, const char *nc,
                             unsigned long long usn, conn_entry_fn fn, void *payload,
                             struct dm_err *err)
{
    char *attrs[] = {"objectGUID", "objectClass", "sAMAccountName", NULL};
    struct out_ctx x = {NULL, fn, payload, 0, err};
    char *filter = NULL;
    int rc = DM_OK;

    if (sc->filter != NULL && sc->base != NULL) {
        if (asprintf(&filter, "(&(uSNChanged>=%llu)(!%s))", usn + 1, sc->filter) < 0) {
            return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        }
        log_debug("ldap_search(base=\"%s\", filter=\"%s\") uri=%s: left the filter", sc->base,
                  filter, sess->cfg.uri);
        rc = ldap_common_search(sess, sc->base, LDAP_SCOPE_SUBTREE, filter, attrs, AD_MAX_PAGE,
                                out_cb, &x, err);
        free(filter);
        filter = NULL;
    }
    if (rc == DM_OK && x.fn_rc == 0 && sc->base != NULL && strcasecmp(sc->base, nc) != 0) {
        x.base = sc->base;
        if (asprintf(&filter, "(&(uSNChanged>=%llu)%s)", usn + 1,
                     sc->filter != NULL ? sc->filter : "(objectClass=*)") < 0) {
            return dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        }
        log_debug("ldap_search(base=\"%s\", filter=\"%s\") uri=%s: moved out of %s", nc, filter,
                  sess->cfg.uri, sc->base);
        rc = ldap_common_search(sess, nc, LDAP_SCOPE_SUBTREE, filter, attrs, AD_MAX_PAGE, out_cb,
                                &x, err);
        free(filter);
    }
    return x.fn_rc != 0 ? x.fn_rc : rc;
}

int ad_read_deleted(struct ldap_common_sess *sess, const struct scope *sc, conn_entry_fn fn,
                    void *payload, struct dm_err *err)
{
    char *attrs[] = {"objectGUID",
                     "lastKnownParent",
                     "msDS-LastKnownRDN",
                     "sAMAccountName",
                     "objectClass",
                     "isDeleted",
                     NULL};
    char *dattrs[] = {"defaultNamingContext", NULL};
    struct dse_ctx x = {NULL};
    struct del_ctx d = {sc, fn, payload, 0, err};
    LDAPControl ctl;
    char inv[64], filter[96], *base = NULL;
    const char *nc;
    unsigned long long usn;
    int rc;

    if (sc->since == NULL || ad_parse_watermark(inv, &usn, sc->since) != 0) {
        return dm_err_set(err, DM_EINVAL, "ad: deleted objects need a watermark");
    }
    rc = ldap_common_search(sess, "", LDAP_SCOPE_BASE, "(objectClass=*)", dattrs, 0, dse_cb, &x,
                            err);
    if (rc != DM_OK) {
        goto done;
    }
    nc = x.e != NULL ? entry_first(x.e, "defaultNamingContext") : NULL;
    if (nc == NULL) {
        rc = dm_err_set(err, DM_EINVAL, "%s: no defaultNamingContext", sess->cfg.uri);
        goto done;
    }
    base = malloc(strlen(nc) + 32);
    if (base == NULL) {
        rc = dm_err_set(err, DM_ENOMEM, "ad: out of memory");
        goto done;
    }
    sprintf(base, "CN=Deleted Objects,%s", nc);
    snprintf(filter, sizeof(filter), "(&(isDeleted=TRUE)(uSNChanged>=%llu))", usn + 1);
    /* Show Deleted (1.2.840.113556.1.4.417, no value, critical): tombstones are otherwise
     * invisible. */
    memset(&ctl, 0, sizeof(ctl));
    ctl.ldctl_oid = AD_SHOW_DELETED;
    ctl.ldctl_iscritical = 1;
    log_debug("ldap_search(base=\"%s\", filter=\"%s\", ctrl=show-deleted) uri=%s", base, filter,
              sess->cfg.uri);
    rc = ldap_common_search_ctrls(sess, base, LDAP_SCOPE_SUBTREE, filter, attrs, AD_MAX_PAGE, &ctl,
                                  del_cb, &d, err);
    if (d.fn_rc != 0) {
        rc = d.fn_rc;
    }
    if (rc == DM_OK) {
        rc = read_out_of_scope(sess, sc, nc, usn, fn, payload, err);
    }
done:
    free(base);
    entry_free(x.e);
    return rc;
}
