/* tests/unit/test_undo.c: undo records (agent/undo.h) and their store (agent/state.h): images
 * serialised and read back byte for byte (binary values, NULs), a damaged record refused, the
 * digest rollback compares (names only, order-free, DN values normalised, passwords left
 * out), the images of a modify (schema/entry.h entry_diff_images), records written, listed
 * newest first, marked, counted, and the store's file mode. */
#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "agent/state.h"
#include "agent/undo.h"
#include "tests/unit/fixture.h"

static const char *const dn_attrs[] = {"member", "manager", NULL};

static void test_undo__image_round_trip(void **state)
{
    struct entry *e = fixture_entry("uid=a,ou=people,dc=x", NULL, "objectClass", "person", "cn",
                                    "A", "userPassword", "{SSHA}abc", NULL);
    struct entry *back = NULL;
    struct dm_err err = {0};
    unsigned char *blob = NULL, bin[] = {0, 1, 2, '\n', 'V', ' ', '9', 0};
    size_t len = 0;

    (void)state;
    assert_int_equal(entry_add_value(e, "jpegPhoto", bin, sizeof(bin)), DM_OK);
    assert_non_null(entry_attr_add(e, "description")); /* no values: absent before */
    assert_non_null(entry_attr_add(e, CONN_UNDO_GROUPS));
    assert_int_equal(entry_add_str(e, CONN_UNDO_GROUPS, "member cn=g,ou=groups,dc=x"), DM_OK);
    assert_int_equal(undo_image_encode(&blob, &len, e), DM_OK);
    assert_int_equal(undo_image_decode(&back, blob, len, &err), DM_OK);
    assert_string_equal(back->dn, "uid=a,ou=people,dc=x");
    assert_int_equal(back->nattrs, e->nattrs);
    for (size_t i = 0; i < e->nattrs; i++) {
        assert_string_equal(back->attrs[i].name, e->attrs[i].name);
        assert_int_equal(back->attrs[i].nvals, e->attrs[i].nvals);
        for (size_t k = 0; k < e->attrs[i].nvals; k++) {
            assert_int_equal(back->attrs[i].vals[k].len, e->attrs[i].vals[k].len);
            assert_memory_equal(back->attrs[i].vals[k].data, e->attrs[i].vals[k].data,
                                e->attrs[i].vals[k].len);
        }
    }
    /* damaged: cut short, a bad length, not an image at all */
    assert_int_equal(undo_image_decode(&back, blob, len - 3, &err), DM_EINVAL);
    assert_non_null(strstr(err.msg, "damaged undo record"));
    blob[9] = '9';
    assert_int_equal(undo_image_decode(&back, blob, len, &err), DM_EINVAL);
    assert_int_equal(undo_image_decode(&back, (const unsigned char *)"hello", 5, &err), DM_EINVAL);
    explicit_bzero(blob, len);
    free(blob);
    entry_free(back);
    entry_free(e);
}

static void test_undo__digest(void **state)
{
    struct entry *a =
        fixture_entry("uid=a,ou=people,dc=x", NULL, "objectClass", "inetOrgPerson", "cn", "A", "sn",
                      "One", "member", "uid=b, ou=People,dc=x", "userPassword", "{SSHA}x", NULL);
    struct entry *b = fixture_entry(
        "00u123", "00u123", "sn", "One", "member", "UID=b,ou=people,DC=x", "cn", "A", "objectClass",
        "INETORGPERSON", "userPassword", "{SSHA}other", "title", "not compared", NULL);
    char da[65], db[65];

    (void)state;
    /* the same attributes in another order, DN value spelt otherwise, class case, another
     * password and DN, an attribute outside the names: the same digest */
    undo_digest(da, a, "objectClass,cn,sn,member,userPassword", dn_attrs);
    undo_digest(db, b, "objectClass,cn,sn,member,userPassword", dn_attrs);
    assert_int_equal(strlen(da), 64);
    assert_string_equal(da, db);
    /* a named value changed: another digest */
    entry_del_attr(b, "sn");
    assert_int_equal(entry_add_str(b, "sn", "Two"), DM_OK);
    undo_digest(db, b, "objectClass,cn,sn,member,userPassword", dn_attrs);
    assert_string_not_equal(da, db);
    entry_free(a);
    entry_free(b);
}

static void test_undo__diff_images(void **state)
{
    struct entry *old =
        fixture_entry("cn=g,dc=x", NULL, "objectClass", "groupOfNames", "member", "uid=a,dc=x",
                      "member", "uid=b,dc=x", "description", "old", "cn", "g", NULL);
    struct entry *want =
        fixture_entry("cn=g,dc=x", NULL, "objectClass", "groupOfNames", "objectClass",
                      "extensibleObject", "member", "uid=c,dc=x", "cn", "g", NULL);
    struct entry *before = NULL, *after = NULL;
    struct entry_diff d = {0, NULL};
    const char *merge[] = {"objectClass", NULL}, *extra[] = {"cn", NULL};
    struct dm_err err = {0};
    const struct dm_attr *x;

    (void)state;
    assert_non_null(entry_attr_add(want, "description")); /* delete it */
    assert_int_equal(entry_diff(&d, old, want, merge, 1000, &err), DM_OK);
    assert_int_equal(entry_diff_images(&before, &after, old, want, merge, &d, extra), DM_OK);
    x = entry_attr(before, "member");
    assert_non_null(x);
    assert_int_equal(x->nvals, 2);
    x = entry_attr(after, "member");
    assert_int_equal(x->nvals, 1);
    assert_string_equal((const char *)x->vals[0].data, "uid=c,dc=x");
    /* merged: the target's classes kept, the wanted one added */
    assert_int_equal(entry_attr(before, "objectClass")->nvals, 1);
    assert_int_equal(entry_attr(after, "objectClass")->nvals, 2);
    /* deleted: a value before, none after */
    assert_int_equal(entry_attr(before, "description")->nvals, 1);
    assert_int_equal(entry_attr(after, "description")->nvals, 0);
    /* extra, untouched: the same on both sides */
    assert_string_equal(entry_first(before, "cn"), "g");
    assert_string_equal(entry_first(after, "cn"), "g");
    entry_diff_free(&d);
    entry_free(before);
    entry_free(after);
    entry_free(old);
    entry_free(want);
}

struct seen {
    int n;
    long long ids[8];
    char ops[8][16];
    char rows[8][256];
    int had_before[8];
};

static int collect(const struct state_undo *u, void *payload)
{
    struct seen *s = payload;

    if (s->n < 8) {
        s->ids[s->n] = u->id;
        snprintf(s->ops[s->n], sizeof(s->ops[0]), "%s", u->op);
        snprintf(s->rows[s->n], sizeof(s->rows[0]), "%s", u->row_before ? u->row_before : "");
        s->had_before[s->n] = u->before != NULL;
    }
    s->n++;
    return 0;
}

static void test_undo__store(void **state)
{
    char path[512], undo[600];
    struct state *s = NULL;
    struct dm_err err = {0};
    struct state_object row = {0};
    struct change c = {0};
    struct apply_result r;
    struct undo_change u = {0};
    struct seen seen = {0};
    struct stat sb;
    long long total = 0, undone = 0;
    struct entry *e = fixture_entry("uid=a,dc=x", NULL, "cn", "A", NULL);

    (void)state;
    memset(&r, 0, sizeof(r));
    snprintf(path, sizeof(path), "%s/undo.db", fixture_tmpdir());
    snprintf(undo, sizeof(undo), "%s.undo", path);
    assert_int_equal(state_open(&s, path, &err), DM_OK);
    assert_int_equal(state_undo_open(s, &err), DM_OK);
    assert_string_equal(state_undo_path(s), undo);
    assert_int_equal(stat(undo, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* a create (no before image), then a delete of another object with one and its row */
    c.op = CHANGE_ADD;
    c.entry = e;
    r.status = APPLY_CREATED;
    r.after = entry_clone(e);
    u.run = 5;
    u.kind = "user";
    u.key = "k1";
    u.change = &c;
    u.result = &r;
    u.dn_attrs = dn_attrs;
    assert_int_equal(state_batch_begin(s, &err), DM_OK);
    assert_int_equal(undo_record(s, &u, &err), DM_OK);
    undo_images_free(&r);
    c.op = CHANGE_DELETE;
    r.status = APPLY_DELETED;
    r.before = entry_clone(e);
    row.kind = (char *)"user";
    row.key = (char *)"k2";
    row.target_ref = (char *)"uid=a,dc=x";
    row.status = (char *)"ok";
    row.last_run = 4;
    u.key = "k2";
    u.row_before = &row;
    assert_int_equal(undo_record(s, &u, &err), DM_OK);
    undo_images_free(&r);
    /* a failed change is not recorded */
    r.status = APPLY_FAILED;
    assert_int_equal(undo_record(s, &u, &err), DM_OK);
    assert_int_equal(state_batch_commit(s, &err), DM_OK);

    assert_int_equal(state_undo_list(s, 5, 0, 10, collect, &seen, &err), DM_OK);
    assert_int_equal(seen.n, 2);
    assert_true(seen.ids[0] > seen.ids[1]); /* newest first */
    assert_string_equal(seen.ops[0], UNDO_DELETED);
    assert_string_equal(seen.ops[1], UNDO_CREATED);
    assert_int_equal(seen.had_before[0], 1);
    assert_int_equal(seen.had_before[1], 0);
    {
        struct state_object back = {0};
        assert_int_equal(undo_row_decode(&back, seen.rows[0], &err), DM_OK);
        assert_string_equal(back.key, "k2");
        assert_string_equal(back.target_ref, "uid=a,dc=x");
        assert_int_equal(back.last_run, 4);
        state_object_clear(&back);
    }
    assert_int_equal(state_undo_mark(s, seen.ids[0], 9, &err), DM_OK);
    assert_int_equal(state_undo_count(&total, &undone, s, 5, &err), DM_OK);
    assert_int_equal(total, 2);
    assert_int_equal(undone, 1);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(state_undo_list(s, 5, 0, 10, collect, &seen, &err), DM_OK);
    assert_int_equal(seen.n, 1); /* reversed records are not listed again */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(state_undo_list(s, 6, 0, 10, collect, &seen, &err), DM_OK);
    assert_int_equal(seen.n, 0);
    state_close(s);
    entry_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_undo__image_round_trip),
        cmocka_unit_test(test_undo__digest),
        cmocka_unit_test(test_undo__diff_images),
        cmocka_unit_test(test_undo__store),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
