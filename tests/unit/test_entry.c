#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "schema/entry.h"

/* free() as the library objects call it (linked with -Wl,--wrap=free): records whether the
 * watched value was all zero bytes when the block holding it was freed. Values live in the
 * entry's arena, so the block is the entry's (or one of its arena blocks), not the value. */
void __real_free(void *p);
void __wrap_free(void *p);

static const unsigned char *watched;
static size_t watched_len;
static int watched_freed, watched_zero;

void __wrap_free(void *p)
{
    const unsigned char *b = p;

    if (p != NULL && watched != NULL && watched >= b && watched < b + malloc_usable_size(p)) {
        watched_freed = 1;
        watched_zero = 1;
        for (size_t i = 0; i < watched_len; i++) {
            watched_zero &= watched[i] == 0;
        }
        watched = NULL;
    }
    __real_free(p);
}

static void watch(const struct dm_val *v)
{
    watched = v->data;
    watched_len = v->len + 1;
    watched_freed = 0;
    watched_zero = 0;
}

/* The watched value, still in its entry's arena, is all zero bytes. */
static int watched_is_zero(void)
{
    int z = 1;

    for (size_t i = 0; i < watched_len; i++) {
        z &= watched[i] == 0;
    }
    watched = NULL;
    return z;
}

static struct entry *person(void)
{
    struct entry *e = entry_new("uid=ada,ou=People,dc=example,dc=org");

    assert_non_null(e);
    assert_int_equal(entry_set_key(e, "3e8e5ef6-7d1f-1041-9d55-8f40f8bcca1f"), DM_OK);
    assert_int_equal(entry_add_str(e, "objectClass", "top"), DM_OK);
    assert_int_equal(entry_add_str(e, "objectClass", "inetOrgPerson"), DM_OK);
    assert_int_equal(entry_add_str(e, "uid", "ada"), DM_OK);
    assert_int_equal(entry_add_str(e, "cn", "Ada Lovelace"), DM_OK);
    assert_int_equal(entry_add_str(e, "sn", "Lovelace"), DM_OK);
    assert_int_equal(entry_add_str(e, "mail", "ada@example.org"), DM_OK);
    assert_int_equal(entry_add_str(e, "mail", "countess@example.org"), DM_OK);
    return e;
}

static void test_entry__add_and_get_case_insensitive(void **state)
{
    struct entry *e = person();
    struct dm_attr *a;

    (void)state;
    assert_string_equal(e->dn, "uid=ada,ou=People,dc=example,dc=org");
    assert_non_null(entry_attr(e, "MAIL"));
    assert_ptr_equal(entry_attr(e, "Mail"), entry_attr(e, "mail"));
    assert_int_equal(entry_attr(e, "mail")->nvals, 2);
    assert_string_equal(entry_first(e, "CN"), "Ada Lovelace");
    assert_null(entry_first(e, "telephoneNumber"));
    assert_null(entry_attr(e, "telephoneNumber"));
    assert_true(entry_has_class(e, "INETORGPERSON"));
    assert_false(entry_has_class(e, "posixAccount"));
    /* adding to a differently cased name appends to the same attribute */
    assert_int_equal(entry_add_str(e, "MAIL", "third@example.org"), DM_OK);
    assert_int_equal(entry_attr(e, "mail")->nvals, 3);
    assert_string_equal(entry_attr(e, "mail")->name, "mail");
    /* options are part of the name */
    assert_int_equal(entry_add_str(e, "cn;lang-en", "Ada"), DM_OK);
    assert_int_equal(entry_attr(e, "cn")->nvals, 1);
    assert_int_equal(entry_attr(e, "CN;LANG-EN")->nvals, 1);
    /* entry_attr_add returns the existing attribute */
    a = entry_attr_add(e, "Sn");
    assert_ptr_equal(a, entry_attr(e, "sn"));
    a = entry_attr_add(e, "description");
    assert_non_null(a);
    assert_int_equal(a->nvals, 0);
    assert_null(entry_first(e, "description"));
    assert_int_equal(attr_add_value(a, "d", 1), DM_OK);
    assert_string_equal(entry_first(e, "description"), "d");
    entry_del_attr(e, "DESCRIPTION");
    assert_null(entry_attr(e, "description"));
    entry_del_attr(e, "nosuch");
    assert_int_equal(entry_set_dn(e, "uid=ada,dc=new"), DM_OK);
    assert_string_equal(e->dn, "uid=ada,dc=new");
    assert_int_equal(entry_set_key(e, NULL), DM_OK);
    assert_null(e->key);
    entry_free(e);
    entry_free(NULL);
}

static void test_entry__binary_values(void **state)
{
    static const unsigned char photo[] = {0xff, 0xd8, 0x00, 'x', 0x00, 0x80, 0x7f};
    struct entry *e = entry_new(NULL);
    struct dm_attr *a;

    (void)state;
    assert_non_null(e);
    assert_null(e->dn);
    assert_int_equal(entry_add_value(e, "jpegPhoto", photo, sizeof(photo)), DM_OK);
    assert_int_equal(entry_add_value(e, "jpegPhoto", "", 0), DM_OK);
    a = entry_attr(e, "jpegphoto");
    assert_non_null(a);
    assert_int_equal(a->nvals, 2);
    assert_int_equal(a->vals[0].len, sizeof(photo));
    assert_memory_equal(a->vals[0].data, photo, sizeof(photo));
    assert_int_equal(a->vals[0].data[sizeof(photo)], 0);
    assert_int_equal(a->vals[1].len, 0);
    assert_int_equal(a->vals[1].data[0], 0);
    entry_free(e);
}

static void test_entry__dedup(void **state)
{
    struct entry *e = entry_new("cn=g");
    struct dm_attr *a;
    char v[32];

    (void)state;
    assert_int_equal(entry_add_str(e, "mail", "b"), DM_OK);
    assert_int_equal(entry_add_str(e, "mail", "a"), DM_OK);
    assert_int_equal(entry_add_str(e, "mail", "b"), DM_OK);
    assert_int_equal(entry_add_str(e, "mail", "B"), DM_OK);
    assert_int_equal(entry_add_value(e, "mail", "a\0x", 3), DM_OK);
    assert_int_equal(entry_add_str(e, "mail", "a"), DM_OK);
    a = entry_attr(e, "mail");
    attr_dedup(a);
    /* small attributes keep their order; comparison is bytewise */
    assert_int_equal(a->nvals, 4);
    assert_string_equal(a->vals[0].data, "b");
    assert_string_equal(a->vals[1].data, "a");
    assert_string_equal(a->vals[2].data, "B");
    assert_int_equal(a->vals[3].len, 3);
    for (int i = 0; i < 2000; i++) {
        snprintf(v, sizeof(v), "uid=u%d,dc=x", i % 700);
        assert_int_equal(entry_add_str(e, "member", v), DM_OK);
    }
    a = entry_attr(e, "member");
    attr_dedup(a);
    assert_int_equal(a->nvals, 700);
    for (size_t i = 1; i < a->nvals; i++) {
        assert_int_not_equal(
            strcmp((const char *)a->vals[i - 1].data, (const char *)a->vals[i].data), 0);
    }
    entry_free(e);
}

static void test_entry__clone_is_deep(void **state)
{
    struct entry *e = person(), *c;
    char h1[65], h2[65];

    (void)state;
    assert_int_equal(entry_add_value(e, "jpegPhoto", "\0\1\2", 3), DM_OK);
    c = entry_clone(e);
    assert_non_null(c);
    assert_ptr_not_equal(c->dn, e->dn);
    assert_string_equal(c->dn, e->dn);
    assert_string_equal(c->key, e->key);
    assert_int_equal(c->nattrs, e->nattrs);
    entry_digest(e, h1);
    entry_digest(c, h2);
    assert_string_equal(h1, h2);
    assert_memory_equal(entry_attr(c, "jpegPhoto")->vals[0].data, "\0\1\2", 3);
    /* changing the clone leaves the original alone */
    c->attrs[2].vals[0].data[0] = 'X';
    assert_int_equal(entry_add_str(c, "sn", "Byron"), DM_OK);
    assert_string_equal(entry_first(e, "uid"), "ada");
    assert_int_equal(entry_attr(e, "sn")->nvals, 1);
    entry_free(e);
    entry_digest(c, h2);
    assert_string_not_equal(h1, h2);
    entry_free(c);
}

static void test_entry__digest_order_independent(void **state)
{
    struct entry *a = person(), *b = entry_new("uid=ada,ou=People,dc=example,dc=org");
    char ha[65], hb[65];

    (void)state;
    /* same content, attributes and values in another order, names in another case */
    assert_int_equal(entry_add_str(b, "MAIL", "countess@example.org"), DM_OK);
    assert_int_equal(entry_add_str(b, "mail", "ada@example.org"), DM_OK);
    assert_int_equal(entry_add_str(b, "sn", "Lovelace"), DM_OK);
    assert_int_equal(entry_add_str(b, "cn", "Ada Lovelace"), DM_OK);
    assert_int_equal(entry_add_str(b, "uid", "ada"), DM_OK);
    assert_int_equal(entry_add_str(b, "objectClass", "inetOrgPerson"), DM_OK);
    assert_int_equal(entry_add_str(b, "objectClass", "top"), DM_OK);
    entry_digest(a, ha);
    entry_digest(b, hb);
    assert_int_equal(strlen(ha), 64);
    assert_string_equal(ha, hb);
    /* one changed byte changes the digest */
    entry_attr(b, "sn")->vals[0].data[0] = 'l';
    entry_digest(b, hb);
    assert_string_not_equal(ha, hb);
    entry_attr(b, "sn")->vals[0].data[0] = 'L';
    entry_digest(b, hb);
    assert_string_equal(ha, hb);
    /* so does the DN */
    assert_int_equal(entry_set_dn(b, "uid=ada,ou=People,dc=example,dc=com"), DM_OK);
    entry_digest(b, hb);
    assert_string_not_equal(ha, hb);
    /* moving a value between attributes too */
    entry_free(b);
    b = entry_clone(a);
    assert_int_equal(entry_add_str(b, "cn", "x"), DM_OK);
    assert_int_equal(entry_add_str(a, "sn", "x"), DM_OK);
    entry_digest(a, ha);
    entry_digest(b, hb);
    assert_string_not_equal(ha, hb);
    entry_free(a);
    entry_free(b);
}

static void test_entry__dump_masks_passwords(void **state)
{
    struct entry *e = person();
    struct buf b;

    (void)state;
    buf_init(&b, 0);
    assert_int_equal(entry_add_str(e, "userPassword", "{SSHA}Canary123secret"), DM_OK);
    assert_int_equal(entry_add_str(e, "unicodePwd", "Canary456"), DM_OK);
    assert_int_equal(entry_add_value(e, "jpegPhoto", "\xff\xd8\x00", 3), DM_OK);
    assert_int_equal(entry_dump(e, &b), DM_OK);
    assert_non_null(strstr(b.data, "dn: uid=ada,ou=People,dc=example,dc=org\n"));
    assert_non_null(strstr(b.data, "cn: Ada Lovelace\n"));
    assert_non_null(strstr(b.data, "userPassword: ***\n"));
    assert_non_null(strstr(b.data, "unicodePwd: ***\n"));
    assert_null(strstr(b.data, "Canary"));
    assert_non_null(strstr(b.data, "jpegPhoto:: /9gA\n"));
    assert_true(entry_is_sensitive_attr("USERPASSWORD"));
    assert_true(entry_is_sensitive_attr("userPassword;binary"));
    assert_false(entry_is_sensitive_attr("userPasswordHint"));
    assert_false(entry_is_sensitive_attr("cn"));
    buf_free(&b);
    entry_free(e);
}

static const struct entry_mod *find_mod(const struct entry_diff *d, const char *name)
{
    for (size_t i = 0; i < d->nmods; i++) {
        if (strcmp(d->mods[i].name, name) == 0) {
            return &d->mods[i];
        }
    }
    return NULL;
}

static void test_entry__diff_unchanged(void **state)
{
    struct entry *a = person(), *b = entry_new("cn=other");
    struct entry_diff d = {0};
    struct dm_err err = {0};

    (void)state;
    /* the same values in reverse order, "mail" spelled "MAIL": no change; DN ignored */
    for (size_t i = a->nattrs; i-- > 0;) {
        const struct dm_attr *at = &a->attrs[i];
        const char *name = strcasecmp(at->name, "mail") == 0 ? "MAIL" : at->name;

        for (size_t j = at->nvals; j-- > 0;) {
            assert_int_equal(entry_add_value(b, name, at->vals[j].data, at->vals[j].len), DM_OK);
        }
    }
    assert_int_equal(entry_diff(&d, a, b, NULL, 1000, &err), DM_OK);
    assert_int_equal(d.nmods, 0);
    entry_diff_free(&d);
    entry_free(a);
    entry_free(b);
}

static void test_entry__diff_owned_merge_and_untouched(void **state)
{
    struct entry *old = person(), *want = person();
    static const char *const merge[] = {"objectClass", NULL};
    struct entry_diff d = {0};
    struct dm_err err = {0};
    const struct entry_mod *m;

    (void)state;
    assert_int_equal(entry_add_str(old, "telephoneNumber", "+1 555"), DM_OK);
    assert_int_equal(entry_add_str(old, "description", "target-only"), DM_OK);
    assert_int_equal(entry_add_str(old, "objectClass", "targetAux"), DM_OK);
    entry_attr(want, "mail")->vals[1].data[0] = 'C';
    assert_int_equal(entry_add_str(want, "title", "Countess"), DM_OK);
    /* telephoneNumber is named without values: deleted; description is not named: kept */
    assert_non_null(entry_attr_add(want, "telephoneNumber"));
    assert_int_equal(entry_diff(&d, old, want, merge, 1000, &err), DM_OK);
    assert_int_equal(d.nmods, 3);
    m = find_mod(&d, "mail");
    assert_non_null(m);
    assert_int_equal(m->op, ENTRY_MOD_REPLACE);
    assert_int_equal(m->nvals, 2);
    assert_string_equal(m->vals[0]->data, "ada@example.org");
    assert_string_equal(m->vals[1]->data, "Countess@example.org");
    m = find_mod(&d, "telephoneNumber");
    assert_non_null(m);
    assert_int_equal(m->op, ENTRY_MOD_DELETE);
    assert_int_equal(m->nvals, 0);
    m = find_mod(&d, "title");
    assert_non_null(m);
    assert_int_equal(m->op, ENTRY_MOD_ADD);
    assert_int_equal(m->nvals, 1);
    assert_null(find_mod(&d, "description"));
    /* objectClass is merged: the target's own class stays, nothing to add */
    assert_null(find_mod(&d, "objectClass"));
    entry_diff_free(&d);
    entry_diff_free(NULL);

    /* merge adds only the missing values */
    assert_int_equal(entry_add_str(want, "objectClass", "newAux"), DM_OK);
    assert_int_equal(entry_diff(&d, old, want, merge, 1000, &err), DM_OK);
    m = find_mod(&d, "objectClass");
    assert_non_null(m);
    assert_int_equal(m->op, ENTRY_MOD_ADD);
    assert_int_equal(m->nvals, 1);
    assert_string_equal(m->vals[0]->data, "newAux");
    entry_diff_free(&d);

    /* without the merge list objectClass is made equal: targetAux goes */
    assert_int_equal(entry_diff(&d, old, want, NULL, 1000, &err), DM_OK);
    m = find_mod(&d, "objectClass");
    assert_non_null(m);
    assert_int_equal(m->op, ENTRY_MOD_REPLACE);
    entry_diff_free(&d);
    entry_free(old);
    entry_free(want);
}

static size_t count_ops(const struct entry_diff *d, enum entry_mod_op op, size_t *nvals)
{
    size_t n = 0;

    *nvals = 0;
    for (size_t i = 0; i < d->nmods; i++) {
        if (d->mods[i].op == op) {
            n++;
            *nvals += d->mods[i].nvals;
        }
    }
    return n;
}

static void test_entry__diff_chunked_big_attribute(void **state)
{
    struct entry *old = entry_new("cn=big"), *new = entry_new("cn=big");
    struct entry_diff d = {0};
    struct dm_err err = {0};
    size_t nv;
    char v[40];

    (void)state;
    /* old: u0..u4999; new: u2500..u9999 (2,500 removed, 5,000 added) */
    for (int i = 0; i < 5000; i++) {
        snprintf(v, sizeof(v), "uid=u%d,dc=x", i);
        assert_int_equal(entry_add_str(old, "member", v), DM_OK);
    }
    for (int i = 2500; i < 10000; i++) {
        snprintf(v, sizeof(v), "uid=u%d,dc=x", i);
        assert_int_equal(entry_add_str(new, "member", v), DM_OK);
    }
    assert_int_equal(entry_diff(&d, old, new, NULL, 1000, &err), DM_OK);
    assert_int_equal(count_ops(&d, ENTRY_MOD_DELETE, &nv), 3); /* ceil(2500/1000) */
    assert_int_equal(nv, 2500);
    assert_int_equal(count_ops(&d, ENTRY_MOD_ADD, &nv), 5); /* ceil(5000/1000) */
    assert_int_equal(nv, 5000);
    assert_int_equal(count_ops(&d, ENTRY_MOD_REPLACE, &nv), 0);
    assert_int_equal(d.nmods, 8);
    /* deletes come first, no mod exceeds the chunk */
    assert_int_equal(d.mods[0].op, ENTRY_MOD_DELETE);
    for (size_t i = 0; i < d.nmods; i++) {
        assert_true(d.mods[i].nvals <= 1000);
    }
    entry_diff_free(&d);

    /* a new 5,000-value attribute: ceil(5000/300) = 17 adds */
    entry_del_attr(new, "member");
    for (int i = 0; i < 5000; i++) {
        snprintf(v, sizeof(v), "uid=u%d,dc=x", i);
        assert_int_equal(entry_add_str(new, "uniqueMember", v), DM_OK);
    }
    assert_int_equal(entry_diff(&d, old, new, NULL, 300, &err), DM_OK);
    assert_int_equal(count_ops(&d, ENTRY_MOD_ADD, &nv), 17);
    assert_int_equal(nv, 5000);
    /* the old member attribute is not named by want: untouched */
    assert_int_equal(count_ops(&d, ENTRY_MOD_DELETE, &nv), 0);
    entry_diff_free(&d);

    /* unchanged big attribute: nothing */
    assert_int_equal(entry_diff(&d, old, old, NULL, 1000, &err), DM_OK);
    assert_int_equal(d.nmods, 0);
    entry_diff_free(&d);
    entry_free(old);
    entry_free(new);
}

/* Password values are wiped before their memory is freed; other values are not touched. */
static void test_entry__free_wipes_password_values(void **state)
{
    struct entry *e = person(), *c;
    struct dm_attr *a;

    (void)state;
    assert_int_equal(entry_add_str(e, "userPassword", "{SSHA}c2VjcmV0c2FsdA=="), DM_OK);
    assert_int_equal(entry_add_str(e, "unicodePwd;binary", "\"secret\""), DM_OK);
    watch(&entry_attr(e, "userPassword")->vals[0]);
    entry_free(e);
    assert_true(watched_freed);
    assert_true(watched_zero);

    e = person();
    assert_int_equal(entry_add_str(e, "unicodePwd;binary", "\"secret\""), DM_OK);
    watch(&entry_attr(e, "unicodePwd;binary")->vals[0]);
    entry_del_attr(e, "unicodePwd;binary");
    assert_true(watched_is_zero());
    watch(&entry_attr(e, "mail")->vals[0]);
    entry_free(e);
    assert_true(watched_freed);
    assert_false(watched_zero);

    /* a duplicate value dropped by attr_dedup() */
    e = entry_new("uid=x,dc=example,dc=org");
    assert_non_null(e);
    assert_int_equal(entry_add_str(e, "userPassword", "{SHA}same"), DM_OK);
    assert_int_equal(entry_add_str(e, "userPassword", "{SHA}same"), DM_OK);
    a = entry_attr(e, "userPassword");
    watch(&a->vals[1]);
    attr_dedup(a);
    assert_int_equal(a->nvals, 1);
    assert_true(watched_is_zero());
    assert_string_equal(entry_first(e, "userPassword"), "{SHA}same");

    /* a value replaced by attr_set_value(), and every value at entry_reset() */
    watch(&a->vals[0]);
    assert_int_equal(attr_set_value(a, 0, "{SHA}other", 10), DM_OK);
    assert_true(watched_is_zero());
    assert_string_equal(entry_first(e, "userPassword"), "{SHA}other");
    watch(&entry_attr(e, "userPassword")->vals[0]);
    entry_reset(e);
    assert_true(watched_is_zero());
    assert_int_equal(e->nattrs, 0);
    assert_null(e->dn);
    entry_free(e);

    /* a clone wipes its own copy */
    e = person();
    assert_int_equal(entry_add_str(e, "userPassword", "{SSHA}c2VjcmV0c2FsdA=="), DM_OK);
    c = entry_clone(e);
    assert_non_null(c);
    entry_free(e);
    watch(&entry_attr(c, "userPassword")->vals[0]);
    entry_free(c);
    assert_true(watched_freed);
    assert_true(watched_zero);
}

/* Names are interned (one copy per spelling for the process, hash set), long names live in
 * the entry; a reset entry is reused; a big attribute grows past the first block. */
static void test_entry__arena_interned_names_and_reset(void **state)
{
    struct entry *a = person(), *b = person();
    char longname[200], v[32];
    struct dm_attr *big;

    (void)state;
    assert_ptr_equal(entry_attr(a, "mail")->name, entry_attr(b, "MAIL")->name);
    assert_int_equal(entry_attr(a, "mail")->hash, entry_name_hash("MaIl", 4));
    assert_int_equal(entry_add_str(a, "Mail", "x@example.org"), DM_OK);
    assert_int_equal(entry_attr(a, "mail")->nvals, 3); /* same attribute, any case */
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(entry_add_str(a, longname, "long"), DM_OK);
    assert_string_equal(entry_first(a, longname), "long");
    assert_true(entry_attr(a, longname)->name != entry_attr(b, "mail")->name);

    /* reset: nothing left, and the entry builds again */
    for (int round = 0; round < 3; round++) {
        entry_reset(b);
        assert_int_equal(b->nattrs, 0);
        assert_null(entry_first(b, "mail"));
        assert_int_equal(entry_set_dn(b, "uid=z,dc=example,dc=org"), DM_OK);
        assert_int_equal(entry_add_str(b, "uid", "z"), DM_OK);
        assert_string_equal(b->dn, "uid=z,dc=example,dc=org");
        assert_string_equal(entry_first(b, "uid"), "z");
    }
    /* 20,000 values: arena blocks and a value array of its own */
    big = entry_attr_add(b, "member");
    assert_non_null(big);
    for (int i = 0; i < 20000; i++) {
        snprintf(v, sizeof(v), "uid=u%d,dc=example,dc=org", i);
        assert_int_equal(attr_add_value(big, v, strlen(v)), DM_OK);
    }
    big = entry_attr(b, "member");
    assert_int_equal(big->nvals, 20000);
    assert_string_equal((const char *)big->vals[19999].data, "uid=u19999,dc=example,dc=org");
    assert_string_equal((const char *)big->vals[0].data, "uid=u0,dc=example,dc=org");
    assert_string_equal(entry_first(b, "uid"), "z");
    entry_free(a);
    entry_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry__add_and_get_case_insensitive),
        cmocka_unit_test(test_entry__binary_values),
        cmocka_unit_test(test_entry__dedup),
        cmocka_unit_test(test_entry__clone_is_deep),
        cmocka_unit_test(test_entry__digest_order_independent),
        cmocka_unit_test(test_entry__dump_masks_passwords),
        cmocka_unit_test(test_entry__diff_unchanged),
        cmocka_unit_test(test_entry__diff_owned_merge_and_untouched),
        cmocka_unit_test(test_entry__diff_chunked_big_attribute),
        cmocka_unit_test(test_entry__free_wipes_password_values),
        cmocka_unit_test(test_entry__arena_interned_names_and_reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
