#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "connectors/syncrepl.h"

/* RFC 4533 values: some captured from slapd 2.5.13 (syncprov), the rest built here TLV by
 * TLV (every length below 128, so one length byte). */

static const unsigned char UUID_A[16] = {0x11, 0x31, 0xca, 0x04, 0x85, 0xa5, 0x10, 0x41,
                                         0x9f, 0x53, 0x33, 0x2e, 0x16, 0x58, 0x90, 0xa0};
static const char UUID_A_STR[] = "1131ca04-85a5-1041-9f53-332e165890a0";
static const unsigned char UUID_B[16] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2,  3,
                                         4,    5,    6,    7,    8, 9, 10, 11};
static const char COOKIE[] = "rid=000,csn=20261206094216.609242Z#000000#000#000000";

/* bytes from a hex string (no spaces); returns the length */
static size_t unhex(unsigned char *out, const char *hex)
{
    size_t n = strlen(hex) / 2;

    for (size_t i = 0; i < n; i++) {
        unsigned int b;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &b), 1);
        out[i] = (unsigned char)b;
    }
    return n;
}

/* appends tag, length (< 128) and n bytes of v at out + *len */
static void tlv(unsigned char *out, size_t *len, unsigned char tag, const void *v, size_t n)
{
    assert_true(n < 128);
    out[(*len)++] = tag;
    out[(*len)++] = (unsigned char)n;
    memcpy(out + *len, v, n);
    *len += n;
}

static struct berval bv(unsigned char *p, size_t n)
{
    struct berval b = {(ber_len_t)n, (char *)p};
    return b;
}

static void test_syncrepl__encode_request(void **state)
{
    struct berval ck = {3, "abc"}, empty = {0, ""}, *v;
    static const unsigned char none[] = {0x30, 0x03, 0x0a, 0x01, 0x01};
    static const unsigned char with[] = {0x30, 0x08, 0x0a, 0x01, 0x01, 0x04, 0x03, 'a', 'b', 'c'};

    (void)state;
    v = syncrepl_encode_request(NULL);
    assert_non_null(v);
    assert_memory_equal(v->bv_val, none, sizeof(none));
    assert_int_equal(v->bv_len, sizeof(none));
    ber_bvfree(v);
    v = syncrepl_encode_request(&empty); /* an empty cookie is no cookie */
    assert_int_equal(v->bv_len, sizeof(none));
    ber_bvfree(v);
    v = syncrepl_encode_request(&ck);
    assert_int_equal(v->bv_len, sizeof(with));
    assert_memory_equal(v->bv_val, with, sizeof(with));
    ber_bvfree(v);
}

static void test_syncrepl__parse_state(void **state)
{
    unsigned char buf[128], inner[96];
    size_t n, k = 0;
    struct syncrepl_state_ctl st;
    struct berval b;
    unsigned char st_enum[] = {0x02};

    (void)state;
    /* captured: add, 1131ca04-85a5-1041-9f53-332e165890a0, no cookie */
    n = unhex(buf, "30150a010104101131ca0485a510419f53332e165890a0");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_state(&st, &b), DM_OK);
    assert_int_equal(st.state, SYNCREPL_ADD);
    assert_memory_equal(st.uuid, UUID_A, 16);
    assert_null(st.cookie.bv_val);
    syncrepl_state_clear(&st);

    /* modify with a cookie */
    tlv(inner, &k, 0x0a, st_enum, 1);
    tlv(inner, &k, 0x04, UUID_B, 16);
    tlv(inner, &k, 0x04, COOKIE, strlen(COOKIE));
    n = 0;
    tlv(buf, &n, 0x30, inner, k);
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_state(&st, &b), DM_OK);
    assert_int_equal(st.state, SYNCREPL_MODIFY);
    assert_memory_equal(st.uuid, UUID_B, 16);
    assert_int_equal(st.cookie.bv_len, strlen(COOKIE));
    assert_string_equal(st.cookie.bv_val, COOKIE);
    syncrepl_state_clear(&st);

    /* malformed: a 15-byte UUID, an unknown state, trailing bytes, truncation, nothing */
    n = unhex(buf, "30140a0101040f1131ca0485a510419f53332e165890");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_state(&st, &b), DM_EINVAL);
    n = unhex(buf, "30150a010704101131ca0485a510419f53332e165890a0");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_state(&st, &b), DM_EINVAL);
    n = unhex(buf, "30150a010104101131ca0485a510419f53332e165890a00000");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_state(&st, &b), DM_EINVAL);
    n = unhex(buf, "30150a010104101131ca0485a5");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_state(&st, &b), DM_EINVAL);
    b = bv(buf, 0);
    assert_int_equal(syncrepl_parse_state(&st, &b), DM_EINVAL);
    assert_int_equal(syncrepl_parse_state(&st, NULL), DM_EINVAL);
    assert_null(st.cookie.bv_val);
}

static void test_syncrepl__parse_done(void **state)
{
    unsigned char buf[128];
    size_t n;
    struct syncrepl_done_ctl d;
    struct berval b;

    (void)state;
    /* captured: a cookie and refreshDeletes TRUE (slapd's full refresh) */
    n = unhex(buf, "303904347269643d3030302c63736e3d32303236313230363039343231362e36303932"
                   "34325a2330303030303023303030233030303030300101ff");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_done(&d, &b), DM_OK);
    assert_string_equal(d.cookie.bv_val, COOKIE);
    assert_int_equal(d.refresh_deletes, 1);
    syncrepl_done_clear(&d);
    /* captured: refreshDeletes left at its default FALSE (a present phase ended it) */
    n = unhex(buf, "303604347269643d3030302c63736e3d32303236313230363039343232352e3839373934"
                   "335a233030303030302330303023303030303030");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_done(&d, &b), DM_OK);
    assert_string_equal(d.cookie.bv_val, "rid=000,csn=20261206094225.897943Z#000000#000#000000");
    assert_int_equal(d.refresh_deletes, 0);
    syncrepl_done_clear(&d);
    /* no cookie, nothing: slapd's "nothing changed" carries refreshDeletes only */
    n = unhex(buf, "30030101ff");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_done(&d, &b), DM_OK);
    assert_null(d.cookie.bv_val);
    assert_int_equal(d.refresh_deletes, 1);
    n = unhex(buf, "3000");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_done(&d, &b), DM_OK);
    assert_null(d.cookie.bv_val);
    assert_int_equal(d.refresh_deletes, 0);
    /* malformed */
    n = unhex(buf, "31030101ff"); /* a SET */
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_done(&d, &b), DM_EINVAL);
    n = unhex(buf, "30050101ff0201"); /* an INTEGER after the flag */
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_done(&d, &b), DM_EINVAL);
}

static void test_syncrepl__parse_info(void **state)
{
    unsigned char buf[256], inner[192], set[96], t[] = {0xff}, f[] = {0x00};
    size_t n = 0, k = 0, s = 0;
    struct syncrepl_info info;
    struct berval b;

    (void)state;
    /* newcookie [0] */
    tlv(buf, &n, 0x80, COOKIE, strlen(COOKIE));
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_info(&info, &b), DM_OK);
    assert_int_equal(info.kind, SYNCREPL_NEW_COOKIE);
    assert_string_equal(info.cookie.bv_val, COOKIE);
    syncrepl_info_clear(&info);

    /* refreshDelete [1] { cookie, refreshDone FALSE } */
    tlv(inner, &k, 0x04, COOKIE, strlen(COOKIE));
    tlv(inner, &k, 0x01, f, 1);
    n = 0;
    tlv(buf, &n, 0xa1, inner, k);
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_info(&info, &b), DM_OK);
    assert_int_equal(info.kind, SYNCREPL_REFRESH_DELETE);
    assert_string_equal(info.cookie.bv_val, COOKIE);
    assert_int_equal(info.refresh_done, 0);
    syncrepl_info_clear(&info);

    /* refreshPresent [2] {}: refreshDone defaults to TRUE */
    n = unhex(buf, "a200");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_info(&info, &b), DM_OK);
    assert_int_equal(info.kind, SYNCREPL_REFRESH_PRESENT);
    assert_int_equal(info.refresh_done, 1);
    assert_null(info.cookie.bv_val);
    syncrepl_info_clear(&info);

    /* syncIdSet [3] { cookie, refreshDeletes TRUE, { A, B } } */
    tlv(set, &s, 0x04, UUID_A, 16);
    tlv(set, &s, 0x04, UUID_B, 16);
    k = 0;
    tlv(inner, &k, 0x04, COOKIE, strlen(COOKIE));
    tlv(inner, &k, 0x01, t, 1);
    tlv(inner, &k, 0x31, set, s);
    n = 0;
    tlv(buf, &n, 0xa3, inner, k);
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_info(&info, &b), DM_OK);
    assert_int_equal(info.kind, SYNCREPL_ID_SET);
    assert_int_equal(info.refresh_deletes, 1);
    assert_int_equal(info.nuuids, 2);
    assert_memory_equal(info.uuids, UUID_A, 16);
    assert_memory_equal(info.uuids + 16, UUID_B, 16);
    syncrepl_info_clear(&info);

    /* syncIdSet [3] { { A } }: present UUIDs (refreshDeletes FALSE), no cookie */
    s = 0;
    tlv(set, &s, 0x04, UUID_A, 16);
    k = 0;
    tlv(inner, &k, 0x31, set, s);
    n = 0;
    tlv(buf, &n, 0xa3, inner, k);
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_info(&info, &b), DM_OK);
    assert_int_equal(info.refresh_deletes, 0);
    assert_int_equal(info.nuuids, 1);
    assert_null(info.cookie.bv_val);
    syncrepl_info_clear(&info);

    /* an empty set is a set */
    n = unhex(buf, "a3023100");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_info(&info, &b), DM_OK);
    assert_int_equal(info.nuuids, 0);
    syncrepl_info_clear(&info);

    /* malformed: a 3-byte UUID, no set at all, an unknown choice [4], trailing bytes */
    n = unhex(buf, "a3053103040161");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_info(&info, &b), DM_EINVAL);
    n = unhex(buf, "a3030101ff");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_info(&info, &b), DM_EINVAL);
    n = unhex(buf, "a400");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_info(&info, &b), DM_EINVAL);
    n = unhex(buf, "a2000000");
    b = bv(buf, n);
    assert_int_equal(syncrepl_parse_info(&info, &b), DM_EINVAL);
    assert_null(info.uuids);
}

static void test_syncrepl__uuids(void **state)
{
    struct syncrepl_uuids set = {0};
    unsigned char u[16], c[16];
    char s[37];

    (void)state;
    syncrepl_uuid_str(s, UUID_A);
    assert_string_equal(s, UUID_A_STR);
    assert_int_equal(syncrepl_uuid_parse(u, UUID_A_STR), 0);
    assert_memory_equal(u, UUID_A, 16);
    assert_int_equal(syncrepl_uuid_parse(u, "1131CA04-85A5-1041-9F53-332E165890A0"), 0);
    assert_memory_equal(u, UUID_A, 16);
    assert_int_equal(syncrepl_uuid_parse(u, "1131ca04-85a5-1041-9f53-332e165890a"), -1);
    assert_int_equal(syncrepl_uuid_parse(u, "1131ca04x85a5-1041-9f53-332e165890a0"), -1);
    assert_int_equal(syncrepl_uuid_parse(u, "1131ca04-85a5-1041-9f53-332e165890g0"), -1);
    assert_int_equal(syncrepl_uuid_parse(u, "uid=alice,ou=people"), -1);
    assert_int_equal(syncrepl_uuid_parse(u, NULL), -1);

    /* a set: 500 UUIDs added twice each, and A */
    for (int i = 0; i < 1000; i++) {
        memcpy(c, UUID_B, 16);
        c[15] = (unsigned char)(i % 500 % 256);
        c[14] = (unsigned char)(i % 500 / 256);
        assert_int_equal(syncrepl_uuids_add(&set, c), DM_OK);
    }
    assert_int_equal(syncrepl_uuids_add(&set, UUID_A), DM_OK);
    syncrepl_uuids_seal(&set);
    assert_int_equal(set.n, 501);
    for (size_t i = 1; i < set.n; i++) {
        assert_true(memcmp(set.v + (i - 1) * 16, set.v + i * 16, 16) < 0);
    }
    assert_true(syncrepl_uuids_has(&set, UUID_A));
    memcpy(c, UUID_B, 16);
    c[15] = 499 % 256;
    c[14] = 1;
    assert_true(syncrepl_uuids_has(&set, c));
    c[14] = 2;
    assert_false(syncrepl_uuids_has(&set, c));
    syncrepl_uuids_clear(&set);
    assert_false(syncrepl_uuids_has(&set, UUID_A));
}

static void test_syncrepl__mark(void **state)
{
    struct berval ck = {(ber_len_t)strlen(COOKIE), (char *)COOKIE}, got;
    struct berval bin = {4, "\x01:\x7f "};
    char *m, *id;

    (void)state;
    m = syncrepl_mark_format(UUID_A_STR, &ck);
    assert_string_equal(m, "ldapsync:1131ca04-85a5-1041-9f53-332e165890a0:"
                           "rid=000,csn=20261206094216.609242Z#000000#000#000000");
    assert_int_equal(syncrepl_mark_parse(&id, &got, m), 0);
    assert_string_equal(id, UUID_A_STR);
    assert_int_equal(got.bv_len, strlen(COOKIE));
    assert_memory_equal(got.bv_val, COOKIE, got.bv_len);
    free(id);
    free(got.bv_val);
    free(m);

    /* a cookie that is not printable ASCII (or holds a space) goes in hex */
    m = syncrepl_mark_format("-", &bin);
    assert_string_equal(m, "ldapsynchex:-:013a7f20");
    assert_int_equal(syncrepl_mark_parse(&id, &got, m), 0);
    assert_string_equal(id, "-");
    assert_int_equal(got.bv_len, 4);
    assert_memory_equal(got.bv_val, bin.bv_val, 4);
    free(id);
    free(got.bv_val);
    free(m);

    /* not ours: an AD watermark, garbage, an odd hex cookie, no database */
    assert_int_equal(syncrepl_mark_parse(&id, &got, "4d572b04-ad42-4e7d-958c-9830f19a91e3:6069"),
                     -1);
    assert_int_equal(syncrepl_mark_parse(&id, &got, "ldapsync:"), -1);
    assert_int_equal(syncrepl_mark_parse(&id, &got, "ldapsync::rid=000"), -1);
    assert_int_equal(syncrepl_mark_parse(&id, &got, "ldapsynchex:x:abc"), -1);
    assert_int_equal(syncrepl_mark_parse(&id, &got, "ldapsynchex:x:zz"), -1);
    assert_int_equal(syncrepl_mark_parse(&id, &got, NULL), -1);
    assert_null(id);
    assert_null(got.bv_val);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syncrepl__encode_request),
        cmocka_unit_test(test_syncrepl__parse_state),
        cmocka_unit_test(test_syncrepl__parse_done),
        cmocka_unit_test(test_syncrepl__parse_info),
        cmocka_unit_test(test_syncrepl__uuids),
        cmocka_unit_test(test_syncrepl__mark),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
