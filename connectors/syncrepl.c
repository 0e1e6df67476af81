#include <config.h>
/*
 * connectors/syncrepl.c: RFC 4533 refreshOnly, the client side (connectors/syncrepl.h).
 *
 * The values are decoded with liblber (ber_init copies the value, so every cookie is
 * copied out before the BerElement is freed). Each value is exactly one ASN.1 element:
 * anything left after it is a malformed value, not an extension.
 */
#include "connectors/syncrepl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/util/log.h"

#define TAG_BOOL ((ber_tag_t)0x01U)
#define TAG_OCTETS ((ber_tag_t)0x04U)

/* ---- codec ---- */

struct berval *syncrepl_encode_request(const struct berval *cookie)
{
    BerElement *ber = ber_alloc_t(LBER_USE_DER);
    struct berval *out = NULL;
    int ok;

    if (ber == NULL) {
        return NULL;
    }
    /* syncRequestValue ::= SEQUENCE { mode ENUMERATED { refreshOnly (1), ... },
     *     cookie syncCookie OPTIONAL, reloadHint BOOLEAN DEFAULT FALSE } */
    ok = ber_printf(ber, "{e", (ber_int_t)LDAP_SYNC_REFRESH_ONLY) != -1;
    if (ok && cookie != NULL && cookie->bv_len > 0) {
        ok = ber_printf(ber, "O", cookie) != -1;
    }
    ok = ok && ber_printf(ber, "}") != -1;
    if (!ok || ber_flatten(ber, &out) != 0) {
        out = NULL;
    }
    ber_free(ber, 1);
    return out;
}

/* A copy of the OCTET STRING at ber's position into out (malloc'ed, NUL-terminated). */
static int take_octets(struct berval *out, BerElement *ber)
{
    struct berval v = {0, NULL};

    if (ber_scanf(ber, "m", &v) == LBER_ERROR) {
        return DM_EINVAL;
    }
    out->bv_val = malloc(v.bv_len + 1);
    if (out->bv_val == NULL) {
        return DM_ENOMEM;
    }
    memcpy(out->bv_val, v.bv_val, v.bv_len);
    out->bv_val[v.bv_len] = '\0';
    out->bv_len = v.bv_len;
    return DM_OK;
}

/* An optional cookie, then an optional BOOLEAN, inside the sequence ber is in. */
static int cookie_and_flag(struct berval *cookie, int *flag, BerElement *ber)
{
    ber_len_t len;
    ber_int_t b;
    int rc;

    if (ber_peek_tag(ber, &len) == TAG_OCTETS) {
        rc = take_octets(cookie, ber);
        if (rc != DM_OK) {
            return rc;
        }
    }
    if (ber_peek_tag(ber, &len) == TAG_BOOL) {
        if (ber_get_boolean(ber, &b) == LBER_ERROR) {
            return DM_EINVAL;
        }
        *flag = b != 0;
    }
    return DM_OK;
}

/* A BerElement over a copy of val, or NULL. */
static BerElement *ber_over(const struct berval *val)
{
    struct berval v;

    if (val == NULL || val->bv_val == NULL || val->bv_len == 0) {
        return NULL;
    }
    v = *val;
    return ber_init(&v);
}

int syncrepl_parse_state(struct syncrepl_state_ctl *out, const struct berval *val)
{
    BerElement *ber = ber_over(val);
    struct berval uuid = {0, NULL};
    ber_int_t state = -1;
    ber_len_t len;
    int rc = DM_EINVAL;

    memset(out, 0, sizeof(*out));
    if (ber == NULL) {
        return DM_EINVAL;
    }
    /* syncStateValue ::= SEQUENCE { state ENUMERATED { present (0), add (1), modify (2),
     *     delete (3) }, entryUUID syncUUID, cookie syncCookie OPTIONAL } */
    if (ber_scanf(ber, "{em", &state, &uuid) == LBER_ERROR || state < SYNCREPL_PRESENT ||
        state > SYNCREPL_DELETE || uuid.bv_len != SYNCREPL_UUID_LEN) {
        goto done;
    }
    out->state = (enum syncrepl_state)state;
    memcpy(out->uuid, uuid.bv_val, SYNCREPL_UUID_LEN);
    if (ber_peek_tag(ber, &len) == TAG_OCTETS) {
        rc = take_octets(&out->cookie, ber);
        if (rc != DM_OK) {
            goto done;
        }
    }
    rc = ber_remaining(ber) == 0 ? DM_OK : DM_EINVAL;
done:
    if (rc != DM_OK) {
        syncrepl_state_clear(out);
    }
    ber_free(ber, 1);
    return rc;
}

void syncrepl_state_clear(struct syncrepl_state_ctl *st)
{
    if (st != NULL) {
        free(st->cookie.bv_val);
        memset(st, 0, sizeof(*st));
    }
}

int syncrepl_parse_done(struct syncrepl_done_ctl *out, const struct berval *val)
{
    BerElement *ber;
    ber_len_t len;
    int rc = DM_EINVAL;

    memset(out, 0, sizeof(*out));
    /* syncDoneValue ::= SEQUENCE { cookie syncCookie OPTIONAL,
     *     refreshDeletes BOOLEAN DEFAULT FALSE }; an empty SEQUENCE is 30 00 */
    if (val != NULL && val->bv_len == 2 && (unsigned char)val->bv_val[0] == 0x30 &&
        val->bv_val[1] == 0) {
        return DM_OK;
    }
    ber = ber_over(val);
    if (ber == NULL) {
        return DM_EINVAL;
    }
    if (ber_skip_tag(ber, &len) != LBER_SEQUENCE) {
        goto done;
    }
    rc = cookie_and_flag(&out->cookie, &out->refresh_deletes, ber);
    if (rc == DM_OK && ber_remaining(ber) != 0) {
        rc = DM_EINVAL;
    }
done:
    if (rc != DM_OK) {
        syncrepl_done_clear(out);
    }
    ber_free(ber, 1);
    return rc;
}

void syncrepl_done_clear(struct syncrepl_done_ctl *d)
{
    if (d != NULL) {
        free(d->cookie.bv_val);
        memset(d, 0, sizeof(*d));
    }
}

/* syncUUIDs SET OF syncUUID, at ber's position. */
static int take_uuids(struct syncrepl_info *out, BerElement *ber)
{
    struct berval u;
    ber_len_t len;
    ber_tag_t tag;
    char *last = NULL;
    unsigned char *grown;
    size_t cap = 0;

    for (tag = ber_first_element(ber, &len, &last); tag != LBER_DEFAULT;
         tag = ber_next_element(ber, &len, last)) {
        if (ber_scanf(ber, "m", &u) == LBER_ERROR || u.bv_len != SYNCREPL_UUID_LEN) {
            return DM_EINVAL;
        }
        if (out->nuuids == cap) {
            cap = cap != 0 ? cap * 2 : 64;
            if (cap > SYNCREPL_MAX_UUIDS) {
                return DM_ELIMIT;
            }
            grown = realloc(out->uuids, cap * SYNCREPL_UUID_LEN);
            if (grown == NULL) {
                return DM_ENOMEM;
            }
            out->uuids = grown;
        }
        memcpy(out->uuids + out->nuuids * SYNCREPL_UUID_LEN, u.bv_val, SYNCREPL_UUID_LEN);
        out->nuuids++;
    }
    /* LBER_DEFAULT with last unset: not a SET at all (an empty SET sets last) */
    return last != NULL ? DM_OK : DM_EINVAL;
}

int syncrepl_parse_info(struct syncrepl_info *out, const struct berval *val)
{
    BerElement *ber = ber_over(val);
    ber_len_t len;
    ber_tag_t tag;
    int rc = DM_EINVAL;

    memset(out, 0, sizeof(*out));
    if (ber == NULL) {
        return DM_EINVAL;
    }
    /* syncInfoValue ::= CHOICE {
     *     newcookie      [0] syncCookie,
     *     refreshDelete  [1] SEQUENCE { cookie OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE },
     *     refreshPresent [2] SEQUENCE { cookie OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE },
     *     syncIdSet      [3] SEQUENCE { cookie OPTIONAL,
     *                                   refreshDeletes BOOLEAN DEFAULT FALSE,
     *                                   syncUUIDs SET OF syncUUID } } */
    tag = ber_peek_tag(ber, &len);
    switch (tag) {
    case LDAP_TAG_SYNC_NEW_COOKIE:
        out->kind = SYNCREPL_NEW_COOKIE;
        rc = take_octets(&out->cookie, ber);
        break;
    case LDAP_TAG_SYNC_REFRESH_DELETE:
    case LDAP_TAG_SYNC_REFRESH_PRESENT:
        out->kind = tag == LDAP_TAG_SYNC_REFRESH_DELETE ? SYNCREPL_REFRESH_DELETE
                                                        : SYNCREPL_REFRESH_PRESENT;
        out->refresh_done = 1;
        if (ber_skip_tag(ber, &len) == LBER_DEFAULT) {
            break;
        }
        rc = cookie_and_flag(&out->cookie, &out->refresh_done, ber);
        break;
    case LDAP_TAG_SYNC_ID_SET:
        out->kind = SYNCREPL_ID_SET;
        if (ber_skip_tag(ber, &len) == LBER_DEFAULT) {
            break;
        }
        rc = cookie_and_flag(&out->cookie, &out->refresh_deletes, ber);
        if (rc == DM_OK) {
            rc = take_uuids(out, ber);
        }
        break;
    default:
        break;
    }
    if (rc == DM_OK && ber_remaining(ber) != 0) {
        rc = DM_EINVAL;
    }
    if (rc != DM_OK) {
        syncrepl_info_clear(out);
    }
    ber_free(ber, 1);
    return rc;
}

void syncrepl_info_clear(struct syncrepl_info *info)
{
    if (info != NULL) {
        free(info->cookie.bv_val);
        free(info->uuids);
        memset(info, 0, sizeof(*info));
    }
}

/* ---- UUIDs ---- */

void syncrepl_uuid_str(char out[37], const unsigned char uuid[SYNCREPL_UUID_LEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;

    for (size_t i = 0; i < SYNCREPL_UUID_LEN; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[k++] = '-';
        }
        out[k++] = hex[uuid[i] >> 4];
        out[k++] = hex[uuid[i] & 0xf];
    }
    out[k] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int syncrepl_uuid_parse(unsigned char out[SYNCREPL_UUID_LEN], const char *s)
{
    size_t k = 0;
    int hi, lo;

    if (s == NULL || strlen(s) != 36) {
        return -1;
    }
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return -1;
            }
            i++;
            continue;
        }
        hi = hexval(s[i]);
        lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[k++] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    return 0;
}

int syncrepl_uuids_add(struct syncrepl_uuids *set, const unsigned char *uuid)
{
    unsigned char *grown;
    size_t cap;

    if (set->n == set->cap) {
        if (set->cap >= SYNCREPL_MAX_UUIDS) {
            return DM_ELIMIT;
        }
        cap = set->cap != 0 ? set->cap * 2 : 256;
        cap = cap < SYNCREPL_MAX_UUIDS ? cap : SYNCREPL_MAX_UUIDS;
        grown = realloc(set->v, cap * SYNCREPL_UUID_LEN);
        if (grown == NULL) {
            return DM_ENOMEM;
        }
        set->v = grown;
        set->cap = cap;
    }
    memcpy(set->v + set->n * SYNCREPL_UUID_LEN, uuid, SYNCREPL_UUID_LEN);
    set->n++;
    set->sealed = 0;
    return DM_OK;
}

static int uuid_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SYNCREPL_UUID_LEN);
}

void syncrepl_uuids_seal(struct syncrepl_uuids *set)
{
    size_t k = 0;

    if (set->sealed) {
        return;
    }
    if (set->n > 1) {
        qsort(set->v, set->n, SYNCREPL_UUID_LEN, uuid_cmp);
        for (size_t i = 0; i < set->n; i++) {
            if (k == 0 || memcmp(set->v + (k - 1) * SYNCREPL_UUID_LEN,
                                 set->v + i * SYNCREPL_UUID_LEN, SYNCREPL_UUID_LEN) != 0) {
                memmove(set->v + k * SYNCREPL_UUID_LEN, set->v + i * SYNCREPL_UUID_LEN,
                        SYNCREPL_UUID_LEN);
                k++;
            }
        }
        set->n = k;
    }
    set->sealed = 1;
}

int syncrepl_uuids_has(const struct syncrepl_uuids *set, const unsigned char *uuid)
{
    if (set->n == 0) {
        return 0;
    }
    return bsearch(uuid, set->v, set->n, SYNCREPL_UUID_LEN, uuid_cmp) != NULL;
}

void syncrepl_uuids_clear(struct syncrepl_uuids *set)
{
    free(set->v);
    memset(set, 0, sizeof(*set));
}

/* ---- watermark text ---- */

#define MARK_TEXT "ldapsync:"
#define MARK_HEX "ldapsynchex:"

char *syncrepl_mark_format(const char *dbid, const struct berval *cookie)
{
    static const char hex[] = "0123456789abcdef";
    size_t dl = strlen(dbid), clen = cookie != NULL ? cookie->bv_len : 0, k;
    int printable = 1;
    char *s;

    for (size_t i = 0; i < clen; i++) {
        unsigned char c = (unsigned char)cookie->bv_val[i];
        printable &= c > 0x20 && c < 0x7f;
    }
    s = malloc(sizeof(MARK_HEX) + dl + 2 + 2 * clen);
    if (s == NULL) {
        return NULL;
    }
    k = (size_t)sprintf(s, "%s%s:", printable ? MARK_TEXT : MARK_HEX, dbid);
    for (size_t i = 0; i < clen; i++) {
        unsigned char c = (unsigned char)cookie->bv_val[i];
        if (printable) {
            s[k++] = (char)c;
        } else {
            s[k++] = hex[c >> 4];
            s[k++] = hex[c & 0xf];
        }
    }
    s[k] = '\0';
    return s;
}

int syncrepl_mark_parse(char **dbid, struct berval *cookie, const char *s)
{
    const char *p, *colon;
    size_t n;
    int is_hex;
    char *id = NULL, *ck = NULL;

    *dbid = NULL;
    memset(cookie, 0, sizeof(*cookie));
    if (s == NULL) {
        return -1;
    }
    is_hex = strncmp(s, MARK_HEX, strlen(MARK_HEX)) == 0;
    if (!is_hex && strncmp(s, MARK_TEXT, strlen(MARK_TEXT)) != 0) {
        return -1;
    }
    p = s + (is_hex ? strlen(MARK_HEX) : strlen(MARK_TEXT));
    colon = strchr(p, ':');
    if (colon == NULL || colon == p) {
        return -1;
    }
    id = strndup(p, (size_t)(colon - p));
    n = strlen(colon + 1);
    if (is_hex && n % 2 != 0) {
        free(id);
        return -1;
    }
    ck = malloc(n + 1);
    if (id == NULL || ck == NULL) {
        free(id);
        free(ck);
        return -1;
    }
    if (is_hex) {
        for (size_t i = 0; i < n / 2; i++) {
            int hi = hexval(colon[1 + 2 * i]), lo = hexval(colon[2 + 2 * i]);
            if (hi < 0 || lo < 0) {
                free(id);
                free(ck);
                return -1;
            }
            ck[i] = (char)(hi << 4 | lo);
        }
        n /= 2;
    } else {
        memcpy(ck, colon + 1, n);
    }
    ck[n] = '\0';
    *dbid = id;
    cookie->bv_val = ck;
    cookie->bv_len = n;
    return 0;
}

/* ---- the result of one search ---- */

void syncrepl_result_seal(struct syncrepl_result *r)
{
    syncrepl_uuids_seal(&r->present);
    syncrepl_uuids_seal(&r->gone);
}

void syncrepl_result_clear(struct syncrepl_result *r)
{
    free(r->cookie.bv_val);
    syncrepl_uuids_clear(&r->present);
    syncrepl_uuids_clear(&r->gone);
    for (size_t i = 0; i < r->ndns; i++) {
        free(r->dns[i].dn);
    }
    free(r->dns);
    memset(r, 0, sizeof(*r));
}

const char *syncrepl_result_gone_dn(const struct syncrepl_result *r, const unsigned char *uuid)
{
    for (size_t i = 0; i < r->ndns; i++) {
        if (memcmp(r->dns[i].uuid, uuid, SYNCREPL_UUID_LEN) == 0) {
            return r->dns[i].dn;
        }
    }
    return NULL;
}

/* Keeps the newest cookie: the last one the server sent wins (RFC 4533 §3.4). */
static int set_cookie(struct syncrepl_result *r, struct berval *c)
{
    if (c->bv_val == NULL) {
        return DM_OK;
    }
    free(r->cookie.bv_val);
    r->cookie = *c;
    c->bv_val = NULL;
    c->bv_len = 0;
    return DM_OK;
}

static int add_gone(struct syncrepl_result *r, const unsigned char *uuid, char *dn)
{
    struct syncrepl_gone_dn *grown;
    int rc = syncrepl_uuids_add(&r->gone, uuid);

    r->deletes++;
    if (rc != DM_OK || dn == NULL) {
        return rc;
    }
    if (r->ndns == r->capdns) {
        size_t cap = r->capdns != 0 ? r->capdns * 2 : 16;
        if (cap > SYNCREPL_MAX_UUIDS) {
            return DM_ELIMIT;
        }
        grown = realloc(r->dns, cap * sizeof(*grown));
        if (grown == NULL) {
            return DM_ENOMEM;
        }
        r->dns = grown;
        r->capdns = cap;
    }
    r->dns[r->ndns].dn = strdup(dn);
    if (r->dns[r->ndns].dn == NULL) {
        return DM_ENOMEM;
    }
    memcpy(r->dns[r->ndns].uuid, uuid, SYNCREPL_UUID_LEN);
    r->ndns++;
    return DM_OK;
}

/* ---- one search ---- */

struct search {
    struct syncrepl_result *r;
    struct ldap_common_sess *sess;
    int with_cookie;
    ldap_common_msg_fn fn;
    void *payload;
    int fn_rc;
    struct dm_err *err;
};

static int bad(struct search *x, const char *what, int rc)
{
    if (rc == DM_ENOMEM) {
        return dm_err_set(x->err, DM_ENOMEM, "sync: out of memory");
    }
    if (rc == DM_ELIMIT) {
        return dm_err_set(x->err, DM_ELIMIT, "sync: more than %d entry UUIDs in one read",
                          SYNCREPL_MAX_UUIDS);
    }
    return dm_err_set(x->err, DM_EINTERNAL, "%s: sync: malformed %s from the server",
                      x->sess->cfg.uri, what);
}

static int on_entry(struct search *x, LDAPMessage *msg)
{
    LDAP *ld = x->sess->ld;
    LDAPControl **ctrls = NULL, *c;
    struct syncrepl_state_ctl st;
    char *dn = NULL;
    int rc;

    if (ldap_get_entry_controls(ld, msg, &ctrls) != LDAP_SUCCESS) {
        return bad(x, "entry controls", DM_EINVAL);
    }
    c = ldap_control_find(LDAP_CONTROL_SYNC_STATE, ctrls, NULL);
    if (c == NULL) {
        ldap_controls_free(ctrls);
        return bad(x, "entry (no Sync State control)", DM_EINVAL);
    }
    rc = syncrepl_parse_state(&st, &c->ldctl_value);
    ldap_controls_free(ctrls);
    if (rc != DM_OK) {
        return bad(x, "Sync State control", rc);
    }
    rc = set_cookie(x->r, &st.cookie);
    switch (st.state) {
    case SYNCREPL_ADD:
    case SYNCREPL_MODIFY:
        x->r->entries++;
        if (x->with_cookie) {
            rc = syncrepl_uuids_add(&x->r->present, st.uuid);
        }
        if (rc == DM_OK) {
            rc = x->fn(ld, msg, x->payload);
            if (rc != 0) {
                x->fn_rc = rc;
            }
            syncrepl_state_clear(&st);
            return rc;
        }
        break;
    case SYNCREPL_PRESENT:
        x->r->presents++;
        x->r->present_phase = 1;
        rc = syncrepl_uuids_add(&x->r->present, st.uuid);
        break;
    case SYNCREPL_DELETE:
        dn = ldap_get_dn(ld, msg);
        rc = add_gone(x->r, st.uuid, dn);
        ldap_memfree(dn);
        break;
    }
    syncrepl_state_clear(&st);
    return rc != DM_OK ? bad(x, "entry", rc) : DM_OK;
}

static int on_intermediate(struct search *x, LDAPMessage *msg)
{
    char *oid = NULL;
    struct berval *data = NULL;
    struct syncrepl_info info;
    int lrc, rc;

    lrc = ldap_parse_intermediate(x->sess->ld, msg, &oid, &data, NULL, 0);
    if (lrc != LDAP_SUCCESS) {
        return ldap_to_rc(x->err, x->sess->ld, lrc, NULL, NULL, "sync: intermediate response");
    }
    if (oid == NULL || strcmp(oid, LDAP_SYNC_INFO) != 0) {
        /* not ours: RFC 4511 lets a client ignore intermediate responses it does not know */
        ldap_memfree(oid);
        ber_bvfree(data);
        return DM_OK;
    }
    rc = syncrepl_parse_info(&info, data);
    ldap_memfree(oid);
    ber_bvfree(data);
    if (rc != DM_OK) {
        return bad(x, "Sync Info message", rc);
    }
    rc = set_cookie(x->r, &info.cookie);
    if (info.kind == SYNCREPL_REFRESH_PRESENT) {
        x->r->present_phase = 1; /* the end of a present phase (a delete phase may follow) */
    } else if (info.kind == SYNCREPL_ID_SET) {
        if (!info.refresh_deletes) {
            x->r->present_phase = 1;
        }
        for (size_t i = 0; rc == DM_OK && i < info.nuuids; i++) {
            const unsigned char *u = info.uuids + i * SYNCREPL_UUID_LEN;
            if (info.refresh_deletes) {
                rc = add_gone(x->r, u, NULL);
            } else {
                x->r->presents++;
                rc = syncrepl_uuids_add(&x->r->present, u);
            }
        }
    }
    syncrepl_info_clear(&info);
    return rc != DM_OK ? bad(x, "Sync Info message", rc) : DM_OK;
}

/* searchResultDone: the outcome, and the Sync Done control of a success. */
static int on_done(enum syncrepl_outcome *outcome, struct search *x, LDAPMessage *msg,
                   const char *base)
{
    LDAPControl **ctrls = NULL, *c;
    struct syncrepl_done_ctl dc;
    char *matched = NULL, *diag = NULL;
    int code = LDAP_OTHER, lrc, rc;
    size_t sent = x->r->entries + x->r->presents + x->r->deletes;

    lrc = ldap_parse_result(x->sess->ld, msg, &code, &matched, &diag, NULL, &ctrls, 0);
    if (lrc != LDAP_SUCCESS) {
        return ldap_to_rc(x->err, x->sess->ld, lrc, NULL, NULL, "sync: bad result");
    }
    if (code == LDAP_UNAVAILABLE_CRITICAL_EXTENSION && sent == 0) {
        /* no syncprov on this database (or not in this context) */
        log_debug("%s: sync request refused: %s", x->sess->cfg.uri, diag ? diag : "");
        *outcome = SYNCREPL_UNSUPPORTED;
        rc = DM_OK;
    } else if ((code == LDAP_SYNC_REFRESH_REQUIRED ||
                (code == LDAP_UNWILLING_TO_PERFORM && x->with_cookie)) &&
               sent == 0) {
        log_debug("%s: sync cookie refused (%d): %s", x->sess->cfg.uri, code, diag ? diag : "");
        *outcome = SYNCREPL_REFUSED;
        rc = DM_OK;
    } else if (code != LDAP_SUCCESS) {
        rc =
            ldap_to_rc(x->err, x->sess->ld, code, matched, diag != NULL ? diag : "", "sync search");
        dm_err_dn(x->err, base);
    } else if ((c = ldap_control_find(LDAP_CONTROL_SYNC_DONE, ctrls, NULL)) == NULL) {
        /* a success without Sync Done: a server that took the critical control and did not
         * synchronise; its answer says nothing about what changed */
        rc = bad(x, "result (no Sync Done control)", DM_EINVAL);
    } else if ((rc = syncrepl_parse_done(&dc, &c->ldctl_value)) != DM_OK) {
        rc = bad(x, "Sync Done control", rc);
    } else {
        set_cookie(x->r, &dc.cookie);
        if (!dc.refresh_deletes) {
            /* refreshDeletes FALSE: the refresh ended with a present phase */
            x->r->present_phase = 1;
        }
        syncrepl_done_clear(&dc);
        *outcome = SYNCREPL_DONE;
    }
    ldap_controls_free(ctrls);
    ldap_memfree(matched);
    ldap_memfree(diag);
    return rc;
}

int syncrepl_search(enum syncrepl_outcome *outcome, struct syncrepl_result *r,
                    struct ldap_common_sess *sess, const char *base, const char *filter,
                    char **attrs, const struct berval *cookie, ldap_common_msg_fn fn, void *payload,
                    struct dm_err *err)
{
    struct search x = {r, sess, cookie != NULL && cookie->bv_len > 0, fn, payload, 0, err};
    LDAPControl ctl, *sctrls[2] = {&ctl, NULL};
    struct berval *val = NULL;
    LDAPMessage *msg = NULL;
    int msgid = -1, lrc, n, rc;

    syncrepl_result_clear(r);
    *outcome = SYNCREPL_DONE;
    if (sess->ld == NULL) {
        return ldap_to_rc(err, NULL, LDAP_SERVER_DOWN, NULL, NULL, "sync: not connected");
    }
    val = syncrepl_encode_request(cookie);
    if (val == NULL) {
        return dm_err_set(err, DM_ENOMEM, "sync: out of memory");
    }
    /* Critical: a server without syncprov must refuse (12), never answer with a plain
     * search that would look like "nothing changed". */
    memset(&ctl, 0, sizeof(ctl));
    ctl.ldctl_oid = LDAP_CONTROL_SYNC;
    ctl.ldctl_value = *val;
    ctl.ldctl_iscritical = 1;
    log_debug("ldap_search(base=\"%s\", filter=\"%s\", ctrl=sync refreshOnly, cookie=%.*s) uri=%s",
              base, filter, x.with_cookie ? (int)cookie->bv_len : 6,
              x.with_cookie ? cookie->bv_val : "(none)", sess->cfg.uri);
    lrc = ldap_search_ext(sess->ld, base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, sctrls, NULL, NULL,
                          0, &msgid);
    ber_bvfree(val);
    if (lrc != LDAP_SUCCESS) {
        return ldap_to_rc(err, sess->ld, lrc, NULL, NULL, "sync search");
    }
    for (;;) {
        n = ldap_common_next_msg(&msg, sess, msgid, &lrc);
        if (n < 0) {
            rc = ldap_to_rc(err, sess->ld, lrc, NULL, NULL, "sync search");
            break;
        }
        if (n == LDAP_RES_SEARCH_RESULT) {
            rc = on_done(outcome, &x, msg, base);
            break;
        }
        if (n == LDAP_RES_SEARCH_ENTRY) {
            rc = on_entry(&x, msg);
        } else if (n == LDAP_RES_INTERMEDIATE) {
            rc = on_intermediate(&x, msg);
        } else if (n == LDAP_RES_SEARCH_REFERENCE) {
            /* referrals are off: a reference is part of the scope this read did not see */
            if (sess->refs_skipped++ == 0) {
                log_warn("%s: search under \"%s\" returned a reference to another server; "
                         "referrals are not followed, so this read is not complete",
                         sess->cfg.uri, base);
            }
            rc = DM_OK;
        } else {
            rc = DM_OK;
        }
        ldap_msgfree(msg);
        msg = NULL;
        if (rc != DM_OK) {
            ldap_abandon_ext(sess->ld, msgid, NULL, NULL);
            break;
        }
    }
    ldap_msgfree(msg);
    if (rc == DM_OK && *outcome == SYNCREPL_DONE) {
        syncrepl_result_seal(r);
        log_debug("sync: %zu entries, %zu present, %zu deleted, %s phase, cookie %s", r->entries,
                  r->presents, r->deletes, r->present_phase ? "present" : "delete",
                  r->cookie.bv_val != NULL ? r->cookie.bv_val : "(unchanged)");
    }
    return x.fn_rc != 0 ? x.fn_rc : rc;
}
