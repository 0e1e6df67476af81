/*
 * test_planner.c: the planner's decisions (agent/planner.h) from the three inputs, with
 * projections built from entries (agent/projection.h) and the map's ownership, and the
 * dated-activity formats (agent/activity.h) it relies on upstream.
 */
#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "agent/activity.h"
#include "agent/planner.h"
#include "agent/projection.h"
#include "tests/unit/fixture.h"

static const char *const dn_attrs[] = {"member", "uniqueMember", NULL};
static const char *const key_attrs[] = {"entryUUID", "employeeNumber", NULL};
static const struct proj_rules rules = {dn_attrs, key_attrs, 0};
static const char *const corr_src[] = {"entryUUID", "employeeNumber"};
static const char *const corr_tgt[] = {"entryUUID", "employeeNumber"};

static struct map *by_name(void)
{
    struct map *m = NULL;
    struct dm_err e = {0};

    assert_int_equal(map_default(&m, &e), DM_OK);
    return m;
}

static void ctx_init(struct planner_ctx *c, const struct map *m, enum plan_collision coll)
{
    memset(c, 0, sizeof(*c));
    c->map = m;
    c->rules = &rules;
    c->collision = coll;
    c->suffix = "_new";
    c->dn_targets = 1;
    c->ncorr = 2;
    c->corr_src = corr_src;
    c->corr_tgt = corr_tgt;
}

static struct proj *proj_of(const struct entry *e)
{
    struct proj *p = NULL;
    struct dm_err err = {0};

    assert_int_equal(proj_build(&p, e, &rules, &err), DM_OK);
    return p;
}

/* A journal row for dn written with digest d. */
static void rec_init(struct state_object *r, const char *status, const char *dn, const char *d,
                     const char *attrs)
{
    memset(r, 0, sizeof(*r));
    r->kind = (char *)"user";
    r->key = (char *)"k";
    r->status = (char *)status;
    r->target_ref = (char *)dn;
    r->attrs = (char *)attrs;
    snprintf(r->digest, sizeof(r->digest), "%s", d);
}

static struct entry *person(const char *sn)
{
    return fixture_entry("uid=ada,ou=people,dc=t", NULL, "objectClass", "inetOrgPerson", "uid",
                         "ada", "cn", "Ada", "sn", sn, "userPassword", "{SSHA}c2VjcmV0c2Vj", NULL);
}

static void decide(struct plan_obj *o, const struct planner_ctx *c)
{
    struct dm_err e = {0};

    assert_int_equal(planner_decide(o, c, &e), DM_OK);
}

static void test_planner__absent_is_new_or_missing(void **state)
{
    struct map *m = by_name();
    struct planner_ctx c;
    struct entry *want = person("Lovelace");
    struct state_object rec;
    struct plan_obj o;

    (void)state;
    ctx_init(&c, m, PLAN_COLLIDE_SKIP);
    memset(&o, 0, sizeof(o));
    o.kind = MAP_USERS;
    o.want = want;
    o.digest = "d1";
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_CREATE);
    assert_string_equal(o.reason, PLAN_R_NEW);
    assert_int_equal(o.adopt, 0);
    plan_obj_clear(&o);
    /* the journal wrote it, it is gone: missing at the target */
    rec_init(&rec, "ok", want->dn, "d1", NULL);
    o.rec = &rec;
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_CREATE);
    assert_string_equal(o.reason, PLAN_R_MISSING);
    plan_obj_clear(&o);
    /* a create recorded before a crash and not done: create, adopting one that appears */
    rec_init(&rec, "pending", want->dn, "", NULL);
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_CREATE);
    assert_int_equal(o.adopt, 1);
    plan_obj_clear(&o);
    entry_free(want);
    map_free(m);
}

static void test_planner__drift_change_and_ownership(void **state)
{
    struct map *m = by_name();
    struct planner_ctx c;
    struct entry *want = person("Lovelace"), *have = person("Lovelace");
    struct state_object rec;
    struct plan_obj o;
    struct proj *p;

    (void)state;
    ctx_init(&c, m, PLAN_COLLIDE_SKIP);
    /* the target's own password and an attribute only it has: never compared */
    entry_del_attr(have, "userPassword");
    assert_int_equal(entry_add_str(have, "userPassword", "{SSHA}b3RoZXJvdGhlcg=="), DM_OK);
    assert_int_equal(entry_add_str(have, "description", "the target's own"), DM_OK);
    assert_int_equal(entry_add_str(have, "objectClass", "targetAux"), DM_OK);
    p = proj_of(have);
    rec_init(&rec, "ok", want->dn, "d1", "objectclass,uid,cn,sn");
    memset(&o, 0, sizeof(o));
    o.kind = MAP_USERS;
    o.want = want;
    o.rec = &rec;
    o.digest = "d1";
    o.have = p;
    o.by_ref = 1;
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_NONE);
    assert_null(o.attrs);
    plan_obj_clear(&o);
    proj_free(p);

    /* sn changed at the target, the source did not change: drift, sn named */
    entry_del_attr(have, "sn");
    assert_int_equal(entry_add_str(have, "sn", "Byron"), DM_OK);
    p = proj_of(have);
    o.have = p;
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_UPDATE);
    assert_string_equal(o.reason, PLAN_R_DRIFT);
    assert_string_equal(o.attrs, "sn");
    /* the change carries want without the create-only password */
    assert_null(entry_attr(o.mod, "userPassword"));
    assert_string_equal(entry_first(o.mod, "sn"), "Lovelace");
    plan_obj_clear(&o);

    /* the same, and the source changed since the journal's write: changed in the source */
    o.digest = "d2";
    decide(&o, &c);
    assert_string_equal(o.reason, PLAN_R_CHANGED);
    plan_obj_clear(&o);
    proj_free(p);

    /* an attribute dirmig wrote before (journal) that the source dropped: deleted */
    entry_del_attr(have, "sn");
    assert_int_equal(entry_add_str(have, "sn", "Lovelace"), DM_OK);
    assert_int_equal(entry_add_str(have, "telephoneNumber", "+1 555"), DM_OK);
    rec_init(&rec, "ok", want->dn, "d1", "objectclass,uid,cn,sn,telephonenumber");
    p = proj_of(have);
    o.have = p;
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_UPDATE);
    assert_string_equal(o.attrs, "telephonenumber");
    assert_non_null(entry_attr(o.mod, "telephonenumber"));
    assert_int_equal(entry_attr(o.mod, "telephonenumber")->nvals, 0);
    plan_obj_clear(&o);
    /* ... but never one that dirmig did not write and the map does not name */
    rec_init(&rec, "ok", want->dn, "d1", "objectclass,uid,cn,sn");
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_NONE);
    plan_obj_clear(&o);
    proj_free(p);

    /* objectClass is merged: a class the map adds is added, the target's own stays */
    assert_int_equal(entry_add_str(want, "objectClass", "extensibleObject"), DM_OK);
    p = proj_of(have);
    o.have = p;
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_UPDATE);
    assert_string_equal(o.attrs, "objectClass");
    plan_obj_clear(&o);
    proj_free(p);
    entry_free(want);
    entry_free(have);
    map_free(m);
}

static void test_planner__members_and_moves(void **state)
{
    struct map *m = by_name();
    struct planner_ctx c;
    struct entry *want =
        fixture_entry("cn=g,ou=groups,dc=t", NULL, "objectClass", "groupOfNames", "cn", "g",
                      "member", "uid=a,ou=people,dc=t", "member", "UID=B, ou=People,dc=t", NULL);
    struct entry *have =
        fixture_entry("cn=g,ou=groups,dc=t", NULL, "objectClass", "groupOfNames", "cn", "g",
                      "member", "uid=a,ou=people,dc=t", "member", "uid=b,ou=people,dc=t", NULL);
    struct state_object rec;
    struct plan_obj o;
    struct proj *p = proj_of(have);

    (void)state;
    ctx_init(&c, m, PLAN_COLLIDE_SKIP);
    rec_init(&rec, "ok", want->dn, "d1", NULL);
    memset(&o, 0, sizeof(o));
    o.kind = MAP_GROUPS;
    o.want = want;
    o.rec = &rec;
    o.digest = "d2";
    o.have = p;
    o.by_ref = 1;
    /* member values are DNs: compared normalised, so the spelling is not a change */
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_NONE);
    plan_obj_clear(&o);
    proj_free(p);
    /* a member the source added, another the target lost */
    assert_int_equal(entry_add_str(want, "member", "uid=c,ou=people,dc=t"), DM_OK);
    p = proj_of(have);
    o.have = p;
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_UPDATE);
    assert_string_equal(o.reason, PLAN_R_MEMBER_ADDED);
    assert_int_equal(o.added, 1);
    assert_int_equal(o.removed, 0);
    plan_obj_clear(&o);
    proj_free(p);
    /* the journal wrote it at another DN (the source moved it): a move */
    assert_int_equal(entry_set_dn(have, "cn=g,ou=old,dc=t"), DM_OK);
    rec_init(&rec, "ok", "cn=g,ou=old,dc=t", "d1", NULL);
    p = proj_of(have);
    o.have = p;
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_MOVE);
    assert_string_equal(o.reason, PLAN_R_MOVED);
    plan_obj_clear(&o);
    proj_free(p);
    entry_free(want);
    entry_free(have);
    map_free(m);
}

static void test_planner__collisions(void **state)
{
    struct map *m = by_name();
    struct planner_ctx c;
    struct entry *want = person("Lovelace"), *have = person("Other");
    struct entry *corr =
        fixture_entry("uid=ada,ou=people,dc=s", NULL, "employeeNumber", " 42 ", NULL);
    struct state_object rec;
    struct plan_obj o;
    struct proj *p = proj_of(have);

    (void)state;
    memset(&o, 0, sizeof(o));
    o.kind = MAP_USERS;
    o.want = want;
    o.corr = corr;
    o.digest = "d1";
    o.have = p;
    /* there, and the journal knows nothing of it: skip */
    ctx_init(&c, m, PLAN_COLLIDE_SKIP);
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_HOLD);
    assert_string_equal(o.reason, PLAN_R_COLLISION_TARGET);
    assert_non_null(strstr(o.msg, "not created by dirmig"));
    plan_obj_clear(&o);
    /* the journal knows another object at that name: still not ours */
    rec_init(&rec, "ok", "uid=someone,ou=people,dc=t", "d1", NULL);
    o.rec = &rec;
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_HOLD);
    plan_obj_clear(&o);
    o.rec = NULL;
    /* link: only when a correlation rule matches */
    ctx_init(&c, m, PLAN_COLLIDE_LINK);
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_HOLD);
    assert_non_null(strstr(o.msg, "no correlation rule"));
    plan_obj_clear(&o);
    proj_free(p);
    assert_int_equal(entry_add_str(have, "employeeNumber", "42"), DM_OK);
    p = proj_of(have);
    o.have = p;
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_UPDATE);
    assert_int_equal(o.linked, 1);
    assert_string_equal(o.reason, PLAN_R_LINKED);
    plan_obj_clear(&o);
    /* suffix: created beside it */
    ctx_init(&c, m, PLAN_COLLIDE_SUFFIX);
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_CREATE);
    assert_int_equal(o.suffix, 1);
    assert_string_equal(o.reason, PLAN_R_SUFFIXED);
    plan_obj_clear(&o);
    /* a pending create of ours that went through before a crash: adopted, not a collision */
    rec_init(&rec, "pending", want->dn, "", NULL);
    o.rec = &rec;
    ctx_init(&c, m, PLAN_COLLIDE_SKIP);
    decide(&o, &c);
    assert_int_equal(o.op, PLAN_UPDATE);
    assert_int_equal(o.adopt, 1);
    plan_obj_clear(&o);
    proj_free(p);
    entry_free(want);
    entry_free(have);
    entry_free(corr);
    map_free(m);
}

static void test_planner__suffixed_names(void **state)
{
    char *s;

    (void)state;
    s = planner_suffixed("ada@example.org", "_new", 0);
    assert_string_equal(s, "ada_new@example.org");
    free(s);
    s = planner_suffixed("Staff", "_new", 0);
    assert_string_equal(s, "Staff_new");
    free(s);
    s = planner_suffixed("uid=ada,ou=People,dc=t", "_new", 1);
    assert_string_equal(s, "uid=ada_new,ou=People,dc=t");
    free(s);
    s = planner_suffixed("cn=Doe\\, Jane,ou=People,dc=t", "_new", 1);
    assert_string_equal(s, "cn=Doe\\, Jane_new,ou=People,dc=t");
    free(s);
    assert_null(planner_suffixed("not a dn", "_new", 1));
}

static void test_activity__formats(void **state)
{
    struct dm_val v;
    int64_t t;
    int never;
    struct {
        enum activity_format f;
        const char *s;
        int64_t want;
        int never, ok;
    } cases[] = {
        {ACT_GENERALIZED, "20250101000000Z", 1735689600, 0, 1},
        {ACT_GENERALIZED, "20250101", 0, 0, 0}, /* an integer-looking date is no GT */
        {ACT_DATE, "20250101", 1735689600, 0, 1},
        {ACT_DATE, "2025-01-01", 1735689600, 0, 1},
        {ACT_DATE, "2025-01-01T01:00:00Z", 1735693200, 0, 1},
        {ACT_UNIX_DAYS, "20089", 1735689600, 0, 1},
        {ACT_UNIX_DAYS, "-1", 0, 1, 1},
        {ACT_UNIX_DAYS, "1.5", 0, 0, 0},
        {ACT_UNIX_SECONDS, "1735689600", 1735689600, 0, 1},
        {ACT_FILETIME, "133801632000000000", 1735689600, 0, 1},
        {ACT_FILETIME, "0", 0, 1, 1},
        {ACT_FILETIME, "20250101", 0, 0, 1}, /* as named: a FILETIME in 1601 */
    };

    (void)state;
    assert_int_equal(activity_format_of("unix_days"), ACT_UNIX_DAYS);
    assert_int_equal(activity_format_of("guess"), ACT_NONE);
    for (size_t i = 0; i < DM_ARRAY_LEN(cases); i++) {
        int rc;
        v.data = (unsigned char *)cases[i].s;
        v.len = strlen(cases[i].s);
        rc = activity_parse(&t, &never, cases[i].f, &v);
        if (!cases[i].ok) {
            assert_int_not_equal(rc, DM_OK);
            continue;
        }
        assert_int_equal(rc, DM_OK);
        assert_int_equal(never, cases[i].never);
        if (!cases[i].never && i != DM_ARRAY_LEN(cases) - 1) {
            assert_int_equal(t, cases[i].want);
        }
    }
}

static void test_activity__window(void **state)
{
    struct activity_rule r = {"carLicense", "shadowExpire", ACT_GENERALIZED, ACT_UNIX_DAYS, 30};
    struct entry *e;
    const char *attr = NULL;
    int64_t now = 1735689600; /* 2025-01-01 */

    (void)state;
    e = fixture_entry("uid=a", NULL, "shadowExpire", "20079", NULL); /* 10 days ago */
    assert_string_equal(activity_check(&r, e, now, &attr), "expired");
    assert_string_equal(attr, "shadowExpire");
    entry_free(e);
    e = fixture_entry("uid=a", NULL, "shadowExpire", "-1", "carLicense", "20250120000000Z", NULL);
    assert_null(activity_check(&r, e, now, &attr)); /* starts within the 30-day look-ahead */
    entry_free(e);
    e = fixture_entry("uid=a", NULL, "carLicense", "20250301000000Z", NULL);
    assert_string_equal(activity_check(&r, e, now, &attr), "not_yet_active");
    entry_free(e);
    e = fixture_entry("uid=a", NULL, "carLicense", "soon", NULL);
    assert_string_equal(activity_check(&r, e, now, &attr), "bad_date");
    entry_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planner__absent_is_new_or_missing),
        cmocka_unit_test(test_planner__drift_change_and_ownership),
        cmocka_unit_test(test_planner__members_and_moves),
        cmocka_unit_test(test_planner__collisions),
        cmocka_unit_test(test_planner__suffixed_names),
        cmocka_unit_test(test_activity__formats),
        cmocka_unit_test(test_activity__window),
    };

    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
