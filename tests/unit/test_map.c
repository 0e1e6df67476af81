#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <unistd.h>
#include "schema/map.h"
#include "schema/validate.h"
#include "agent/util/buf.h"
#include "tests/unit/fixture.h"

static struct map *load_map(const char *text)
{
    struct dm_err err = {0};
    struct map *m = NULL;
    int rc = map_load_file(&m, fixture_write_tmp("ok.json", text), &err);

    if (rc != DM_OK) {
        fail_msg("map_load_file: %s", err.msg);
    }
    return m;
}

/* Loads text as a map file and expects DM_EINVAL with message
 * "<path>:<want>" (want starts after the file name). */
static void expect_bad(const char *text, const char *want)
{
    struct dm_err err = {0};
    struct map *m = NULL;
    const char *path = fixture_write_tmp("bad.json", text);
    char full[512];

    assert_int_equal(map_load_file(&m, path, &err), DM_EINVAL);
    assert_null(m);
    if (want == NULL) {
        /* the rest depends on the environment: only the start */
        snprintf(full, sizeof(full), "%s:1:2: ", path);
        assert_memory_equal(err.msg, full, strlen(full));
        return;
    }
    snprintf(full, sizeof(full), "%s%s", path, want);
    assert_string_equal(err.msg, full);
}

static struct entry *apply(const struct map *m, enum map_kind kind, const struct entry *in)
{
    struct dm_err err = {0};
    struct entry *out = NULL;

    assert_int_equal(map_apply(&out, m, kind, in, &err), DM_OK);
    assert_non_null(out);
    return out;
}

static size_t nvals(const struct entry *e, const char *name)
{
    const struct dm_attr *a = entry_attr(e, name);

    return a == NULL ? 0 : a->nvals;
}

static const char *val(const struct entry *e, const char *name, size_t i)
{
    const struct dm_attr *a = entry_attr(e, name);

    assert_non_null(a);
    assert_true(i < a->nvals);
    return (const char *)a->vals[i].data;
}

static void test_map__default_copies_by_name(void **state)
{
    struct dm_err err = {0};
    struct map *m = NULL;
    struct entry *in, *out;

    (void)state;
    assert_int_equal(map_default(&m, &err), DM_OK);
    assert_string_equal(map_key_attr(m), "entryUUID");
    in = fixture_entry(
        "uid=ada,ou=People,dc=src", "3e8e5ef6-7d1f-1041-9d55-8f40f8bcca1f", "objectClass",
        "inetOrgPerson", "objectClass", "top", "uid", "ada", "cn", "Ada Lovelace", "sn", "Lovelace",
        "userPassword", "{SSHA}abcdEFGH", "entryUUID", "3e8e5ef6-7d1f-1041-9d55-8f40f8bcca1f",
        "entryCSN", "20261125132410.816863Z#000000#000#000000", "createTimestamp",
        "20260101000000Z", "modifyTimestamp", "20260101000000Z", "creatorsName", "cn=admin",
        "modifiersName", "cn=admin", "structuralObjectClass", "inetOrgPerson", "entryDN", "uid=ada",
        "subschemaSubentry", "cn=Subschema", "hasSubordinates", "FALSE", "contextCSN", "x", NULL);
    out = apply(m, MAP_USERS, in);
    assert_string_equal(out->dn, "uid=ada,ou=People,dc=src");
    assert_string_equal(out->key, "3e8e5ef6-7d1f-1041-9d55-8f40f8bcca1f");
    assert_int_equal(out->nattrs, 5);
    assert_int_equal(nvals(out, "objectClass"), 2);
    assert_string_equal(entry_first(out, "cn"), "Ada Lovelace");
    assert_string_equal(entry_first(out, "userPassword"), "{SSHA}abcdEFGH");
    assert_null(entry_attr(out, "entryUUID"));
    assert_null(entry_attr(out, "entryCSN"));
    assert_null(entry_attr(out, "createTimestamp"));
    assert_null(entry_attr(out, "hasSubordinates"));
    assert_null(entry_attr(out, "contextCSN"));
    entry_free(out);
    /* groups too */
    out = apply(m, MAP_GROUPS, in);
    assert_int_equal(out->nattrs, 5);
    entry_free(out);
    entry_free(in);
    map_free(m);
    map_free(NULL);
}

static void test_map__from_rename_and_transforms(void **state)
{
    struct map *m =
        load_map("{\"users\": {\"auto\": \"none\", \"attributes\": {\n"
                 "  \"mail\": {\"from\": \"mail\", \"transforms\": [\"trim\", \"lower\"]},\n"
                 "  \"mobile\": {\"from\": \"telephoneNumber\"},\n"
                 "  \"uid\": {\"from\": \"uid\", \"transforms\": [\"upper\"]}\n"
                 "}}}");
    struct entry *in, *out;

    (void)state;
    in =
        fixture_entry("uid=a,dc=x", NULL, "mail", "  Ada@Example.ORG \t", "telephoneNumber",
                      "+1 555", "telephoneNumber", "+1 556", "uid", "ad\xc3\xa9m", "cn", "x", NULL);
    out = apply(m, MAP_USERS, in);
    assert_null(out->key);
    assert_int_equal(out->nattrs, 3);
    assert_string_equal(entry_first(out, "mail"), "ada@example.org");
    assert_int_equal(nvals(out, "mobile"), 2);
    assert_string_equal(val(out, "mobile", 0), "+1 555");
    assert_string_equal(val(out, "mobile", 1), "+1 556");
    /* ASCII case mapping only: UTF-8 bytes kept */
    assert_string_equal(entry_first(out, "uid"), "AD\xc3\xa9M");
    assert_null(entry_attr(out, "cn"));
    assert_null(entry_attr(out, "telephoneNumber"));
    entry_free(out);
    entry_free(in);
    map_free(m);
}

static void test_map__template_missing_attr_and_default(void **state)
{
    struct map *m = load_map(
        "{\"users\": {\"attributes\": {\n"
        "  \"displayName\": {\"template\": \"{givenName} {sn}\"},\n"
        "  \"gecos\": {\"template\": \"{cn} ({title})\", \"default\": \"n/a\"},\n"
        "  \"description\": {\"template\": \"{{literal}} {uid}\", \"transforms\": [\"upper\"]},\n"
        "  \"l\": {\"from\": \"l\", \"default\": \"Unknown\", \"transforms\": [\"lower\"]},\n"
        "  \"o\": {\"template\": \"Example\"}\n"
        "}}}");
    struct entry *in, *out;

    (void)state;
    in = fixture_entry("uid=a,dc=x", "k", "givenName", "Ada", "givenName", "Augusta", "sn",
                       "Lovelace", "cn", "Ada L", "uid", "ada", "gecos", "old", NULL);
    out = apply(m, MAP_USERS, in);
    /* first value of each placeholder */
    assert_string_equal(entry_first(out, "displayName"), "Ada Lovelace");
    assert_int_equal(nvals(out, "displayName"), 1);
    /* title is missing: default, literal (not transformed), replaces auto's gecos */
    assert_int_equal(nvals(out, "gecos"), 1);
    assert_string_equal(entry_first(out, "gecos"), "n/a");
    assert_string_equal(entry_first(out, "description"), "{LITERAL} ADA");
    assert_string_equal(entry_first(out, "l"), "Unknown");
    assert_string_equal(entry_first(out, "o"), "Example");
    entry_free(out);
    entry_free(in);

    /* without the default a missing attribute gives no attribute at all */
    in = fixture_entry("uid=b,dc=x", "k", "sn", "Only", NULL);
    out = apply(m, MAP_USERS, in);
    assert_null(entry_attr(out, "displayName"));
    assert_null(entry_attr(out, "description"));
    assert_string_equal(entry_first(out, "gecos"), "n/a");
    assert_string_equal(entry_first(out, "sn"), "Only");
    entry_free(out);
    entry_free(in);
    map_free(m);
}

static void test_map__value_constant(void **state)
{
    struct map *m =
        load_map("{\"groups\": {\"attributes\": {\n"
                 "  \"o\": {\"value\": \"Example Corp\"},\n"
                 "  \"businessCategory\": {\"value\": \" Eng \", \"transforms\": [\"trim\"]}\n"
                 "}}}");
    struct entry *in, *out;

    (void)state;
    in = fixture_entry("cn=g,dc=x", "k", "cn", "g", "o", "Old Corp", NULL);
    out = apply(m, MAP_GROUPS, in);
    assert_int_equal(nvals(out, "o"), 1);
    assert_string_equal(entry_first(out, "o"), "Example Corp");
    assert_string_equal(entry_first(out, "businessCategory"), "Eng");
    entry_free(out);
    /* the users section is absent: by-name */
    out = apply(m, MAP_USERS, in);
    assert_string_equal(entry_first(out, "o"), "Old Corp");
    assert_null(entry_attr(out, "businessCategory"));
    entry_free(out);
    entry_free(in);
    map_free(m);
}

static void test_map__auto_exclude_and_override(void **state)
{
    struct map *m = load_map("{\"users\": {\n"
                             "  \"auto\": \"by-name\",\n"
                             "  \"exclude\": [\"pwdHistory\", \"Description\", \"cn\"],\n"
                             "  \"attributes\": {\n"
                             "    \"mail\": {\"from\": \"mail\", \"transforms\": [\"lower\"]},\n"
                             "    \"street\": null,\n"
                             "    \"title\": {\"from\": \"nosuch\"}\n"
                             "  }\n"
                             "}}");
    struct entry *in, *out;

    (void)state;
    in = fixture_entry("uid=a,dc=x", "k", "uid", "a", "mail", "A@X.ORG", "mail", "b@x.org",
                       "pwdHistory", "h", "description", "d", "cn", "c", "cn;lang-en", "c",
                       "street", "Main St", "title", "Dr", "sn", "S", NULL);
    out = apply(m, MAP_USERS, in);
    assert_string_equal(entry_first(out, "uid"), "a");
    assert_string_equal(entry_first(out, "sn"), "S");
    assert_int_equal(nvals(out, "mail"), 2);
    assert_string_equal(val(out, "mail", 0), "a@x.org");
    assert_string_equal(val(out, "mail", 1), "b@x.org");
    assert_null(entry_attr(out, "pwdHistory"));
    assert_null(entry_attr(out, "description"));
    assert_null(entry_attr(out, "cn"));
    assert_null(entry_attr(out, "cn;lang-en"));
    assert_null(entry_attr(out, "street"));
    /* explicit rule wins even when it produces nothing */
    assert_null(entry_attr(out, "title"));
    assert_int_equal(out->nattrs, 3);
    entry_free(out);
    entry_free(in);
    map_free(m);
}

static void test_map__objectclass_mapping_and_dropping(void **state)
{
    struct map *m = load_map("{\"users\": {\"objectclasses\": {\n"
                             "  \"posixAccount\": null, \"shadowAccount\": null,\n"
                             "  \"oldPerson\": \"inetOrgPerson\", \"oldGroup\": \"groupOfNames\"\n"
                             "}}}");
    struct entry *in, *out;

    (void)state;
    in = fixture_entry("uid=a,dc=x", "k", "objectClass", "top", "objectClass", "POSIXACCOUNT",
                       "objectClass", "oldperson", "objectClass", "inetorgperson", "objectClass",
                       "shadowAccount", "objectClass", "extensibleObject", NULL);
    out = apply(m, MAP_USERS, in);
    assert_int_equal(nvals(out, "objectClass"), 3);
    assert_string_equal(val(out, "objectClass", 0), "top");
    assert_string_equal(val(out, "objectClass", 1), "inetOrgPerson");
    assert_string_equal(val(out, "objectClass", 2), "extensibleObject");
    entry_free(out);
    entry_free(in);

    /* every class dropped: no objectClass attribute left */
    in = fixture_entry("uid=a,dc=x", "k", "objectClass", "posixAccount", "uid", "a", NULL);
    out = apply(m, MAP_USERS, in);
    assert_null(entry_attr(out, "objectClass"));
    assert_string_equal(entry_first(out, "uid"), "a");
    entry_free(out);
    /* the groups section has no table: classes pass through */
    out = apply(m, MAP_GROUPS, in);
    assert_string_equal(entry_first(out, "objectClass"), "posixAccount");
    entry_free(out);
    entry_free(in);
    map_free(m);
}

static void test_map__binary_values_copied_exactly(void **state)
{
    static const unsigned char photo[] = {0xff, 0xd8, 0x00, 0x00, 'A', 0x00, 0x7f, 0x80};
    static const unsigned char pw[] = {'{', 'S', 'S', 'H', 'A', '}', 'A', 0x00, 'b', ' '};
    struct map *m = load_map("{\"users\": {\"attributes\": {\n"
                             "  \"userPassword\": {\"from\": \"userPassword\",\n"
                             "                   \"transforms\": [\"lower\", \"trim\"]},\n"
                             "  \"photo\": {\"from\": \"jpegPhoto\"}\n"
                             "}}}");
    struct entry *in = fixture_entry("uid=a,dc=x", "k", NULL), *out;
    const struct dm_attr *a;

    (void)state;
    assert_int_equal(entry_add_value(in, "jpegPhoto", photo, sizeof(photo)), DM_OK);
    assert_int_equal(entry_add_value(in, "userPassword", pw, sizeof(pw)), DM_OK);
    assert_int_equal(entry_add_value(in, "userPassword", pw, 6), DM_OK);
    out = apply(m, MAP_USERS, in);
    a = entry_attr(out, "jpegPhoto");
    assert_non_null(a);
    assert_int_equal(a->vals[0].len, sizeof(photo));
    assert_memory_equal(a->vals[0].data, photo, sizeof(photo));
    a = entry_attr(out, "photo");
    assert_non_null(a);
    assert_int_equal(a->vals[0].len, sizeof(photo));
    assert_memory_equal(a->vals[0].data, photo, sizeof(photo));
    /* never transformed */
    a = entry_attr(out, "userPassword");
    assert_non_null(a);
    assert_int_equal(a->nvals, 2);
    assert_int_equal(a->vals[0].len, sizeof(pw));
    assert_memory_equal(a->vals[0].data, pw, sizeof(pw));
    assert_int_equal(a->vals[1].len, 6);
    entry_free(out);
    entry_free(in);
    map_free(m);
}

static void test_map__multivalued_dedup(void **state)
{
    struct map *m =
        load_map("{\"users\": {\"attributes\": {\n"
                 "  \"mail\": {\"from\": \"mail\", \"transforms\": [\"trim\", \"lower\"]},\n"
                 "  \"cn\": {\"from\": \"cn\", \"transforms\": [\"trim\"]}\n"
                 "}}}");
    struct entry *in, *out;

    (void)state;
    in = fixture_entry("uid=a,dc=x", "k", "mail", "A@x.org", "mail", "a@x.org ", "mail", "b@x.org",
                       "cn", "   ", "cn", "Ada", "sn", "x", "sn", "x", NULL);
    out = apply(m, MAP_USERS, in);
    assert_int_equal(nvals(out, "mail"), 2);
    assert_string_equal(val(out, "mail", 0), "a@x.org");
    assert_string_equal(val(out, "mail", 1), "b@x.org");
    /* a value trimmed to nothing is dropped */
    assert_int_equal(nvals(out, "cn"), 1);
    assert_string_equal(entry_first(out, "cn"), "Ada");
    /* auto-copied duplicates are removed too */
    assert_int_equal(nvals(out, "sn"), 1);
    entry_free(out);
    entry_free(in);
    map_free(m);
}

static void test_map__many_values(void **state)
{
    struct map *m =
        load_map("{\"groups\": {\"attributes\": {\n"
                 "  \"uniqueMember\": {\"from\": \"member\", \"transforms\": [\"lower\"]}\n"
                 "}}}");
    struct entry *in = fixture_entry("cn=g,dc=x", "k", NULL), *out;
    char v[64];

    (void)state;
    for (int i = 0; i < 3000; i++) {
        snprintf(v, sizeof(v), "UID=U%d,DC=X", i % 2000);
        assert_int_equal(entry_add_str(in, "member", v), DM_OK);
    }
    out = apply(m, MAP_GROUPS, in);
    assert_int_equal(nvals(out, "member"), 2000);
    assert_int_equal(nvals(out, "uniqueMember"), 2000);
    entry_free(out);
    entry_free(in);
    map_free(m);
}

static void test_map__key_section(void **state)
{
    struct map *m = load_map("{\"key\": {\"source\": \"employeeNumber\", \"target\": \"uid\"}}");

    (void)state;
    assert_string_equal(map_key_attr(m), "employeeNumber");
    assert_string_equal(map_key_target(m), "uid");
    map_free(m);
    m = load_map("{\"key\": {\"fallback\": [{\"source\": \"mail\", \"target\": \"email\"}, "
                 "{\"source\": \"uid\", \"target\": \"login\"}]}}");
    {
        const char *const *fs = NULL, *const *ft = NULL;

        assert_string_equal(map_key_attr(m), "entryUUID");
        assert_null(map_key_target(m));
        assert_int_equal(map_key_fallbacks(m, &fs, &ft), 2);
        assert_string_equal(fs[1], "uid");
        assert_string_equal(ft[1], "login");
    }
    map_free(m);
    expect_bad("{\"key\": {\"fallback\": [{\"source\": \"mail\"}]}}",
               ":1:23: key.fallback[0]: must be an object with exactly \"source\" and \"target\"");
}

static void test_map__bad_maps_rejected_with_position(void **state)
{
    (void)state;
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"mail\": {\"from\": \"mail\", \"transforms\": [\"trim\", \"lowr\"]}\n"
               "}}}",
               ":2:51: users.attributes.mail.transforms[1]: unknown transform \"lowr\" "
               "(did you mean \"lower\"?)");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"mail\": {\"from\": \"mail\", \"transforms\": [\"trim\", \"xyzzy\"]}\n"
               "}}}",
               ":2:51: users.attributes.mail.transforms[1]: unknown transform \"xyzzy\" "
               "(known: trim, lower, upper, first, all, email, guid, sid, filetime, generalized, "
               "regex, split, join, lookup, default, date, flag)");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"mail\": {\"form\": \"mail\"}\n"
               "}}}",
               ":2:12: users.attributes.mail.form: unknown key (did you mean \"from\"?)");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"mail\": {\"from\": \"mail\", \"colour\": \"red\"}\n"
               "}}}",
               ":2:28: users.attributes.mail.colour: unknown key "
               "(known: from, template, value, transforms, default, ownership, type, "
               "max_length, min_length, required, unique, pattern, pii, max_utf8_bytes_per_char)");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"cn\": {}\n"
               "}}}",
               ":2:3: users.attributes.cn: needs exactly one of \"from\", \"template\", \"value\"");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"cn\": {\"from\": \"cn\",\n"
               "         \"value\": \"x\"}\n"
               "}}}",
               ":2:3: users.attributes.cn: needs exactly one of \"from\", \"template\", \"value\"");
    expect_bad("{\"groups\": {\"attributes\": {\n"
               "  \"cn\": {\"template\": \"{givenName} {sn\"}\n"
               "}}}",
               ":2:10: groups.attributes.cn.template: unterminated '{' at byte 12 of the template");
    expect_bad("{\"users\": {\"attributes\": {\"cn\": {\"template\": \"a{}\"}}}}",
               ":1:34: users.attributes.cn.template: empty '{}' at byte 1 of the template");
    expect_bad("{\"users\": {\"auto\": \"by-value\"}}",
               ":1:12: users.auto: must be \"by-name\" or \"none\"");
    expect_bad("{\n  \"users\": {\n    \"exclude\": [\"a\", 7]\n  }\n}",
               ":3:22: users.exclude[1]: must be a string");
    expect_bad("{\"users\": {\"exclude\": \"a\"}}",
               ":1:12: users.exclude: must be an array of strings");
    expect_bad("{\"users\": {\"objectclasses\": {\"a\": 1}}}",
               ":1:30: users.objectclasses.a: must be a string or null");
    expect_bad("{\"users\": {\"attributes\": {\"cn\": {\"from\": 1}}}}",
               ":1:34: users.attributes.cn.from: must be a string");
    expect_bad(
        "{\"users\": {\"attributes\": {\"cn\": {\"from\": \"cn\", \"transforms\": \"trim\"}}}}",
        ":1:48: users.attributes.cn.transforms: must be an array of transforms");
    expect_bad("{\"users\": {\"attributes\": {\"cn\": {\"from\": \"cn\", \"default\": []}}}}",
               ":1:48: users.attributes.cn.default: must be a string");
    expect_bad("{\"users\": {\"attributes\": {\"cn\": \"cn\"}}}",
               ":1:27: users.attributes.cn: must be an object or null");
    expect_bad("{\"users\": {\"attributes\": []}}", ":1:12: users.attributes: must be an object");
    expect_bad("{\"users\": {\"autp\": \"none\"}}",
               ":1:12: users.autp: unknown key (did you mean \"auto\"?)");
    expect_bad("{\"users\": {\"mode\": \"none\"}}",
               ":1:12: users.mode: unknown key (known: auto, exclude, objectclasses, attributes, "
               "ownership, target_profile)");
    expect_bad("{\"users\": {\"ownership\": {\"mail\": \"mine\"}}}",
               ":1:26: users.ownership.mail: must be \"authoritative\", \"create_only\" or "
               "\"merge\"");
    expect_bad("{\"users\": {\"attributes\": {\"mail\": {\"from\": \"mail\", \"ownership\": 1}}}}",
               ":1:52: users.attributes.mail.ownership: must be \"authoritative\", "
               "\"create_only\" or \"merge\"");
    expect_bad("{\"users\": [], \"groups\": {}}", ":1:2: users: must be an object");
    expect_bad("{\"key\": {\"source\": \"\"}}",
               ":1:10: key.source: must be a non-empty attribute name");
    expect_bad("{\"key\": {\"src\": \"uid\"}}",
               ":1:10: key.src: unknown key (known: source, target, fallback)");
    expect_bad("{\"users\": {}, \"people\": {}}",
               ":1:15: people: unknown key (known: key, users, groups, source_attributes, "
               "source_profile, target_profile)");
    expect_bad("[1]", ":1:1: (top level): the map must be a JSON object");
}

static void test_map__syntax_errors_name_position(void **state)
{
    struct dm_err err = {0};
    struct map *m = NULL;
    const char *path = fixture_write_tmp("syntax.json", "{\"users\": {\n  \"auto\": \"none\",\n}}");
    char want[600];

    (void)state;
    assert_int_equal(map_load_file(&m, path, &err), DM_EINVAL);
    snprintf(want, sizeof(want), "%s:3:", path);
    assert_memory_equal(err.msg, want, strlen(want));
    path =
        fixture_write_tmp("dup.json", "{\"users\": {\"auto\": \"none\", \"auto\": \"by-name\"}}");
    assert_int_equal(map_load_file(&m, path, &err), DM_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_int_equal(map_load_file(&m, "/nonexistent/map.json", &err), DM_ENOTFOUND);
    assert_null(m);
}

static void test_map__inline_map_with_prefix(void **state)
{
    static const char text[] =
        "{\n"
        "  \"source\": {},\n"
        "  \"map\": {\n"
        "    \"users\": {\"attributes\": {\"cn\": {\"value\": \"x\", \"foo\": 1}}}\n"
        "  }\n"
        "}\n";
    struct dm_err err = {0};
    struct jsonpos *pos = NULL;
    struct map *m = NULL;
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);

    (void)state;
    assert_non_null(root);
    assert_int_equal(jsonpos_build(&pos, text, strlen(text), &err), DM_OK);
    assert_int_equal(map_compile(&m, json_object_get(root, "map"), "dirmig.json", pos, "map", &err),
                     DM_EINVAL);
    assert_string_equal(err.msg, "dirmig.json:4:51: map.users.attributes.cn.foo: unknown key "
                                 "(known: from, template, value, transforms, default, "
                                 "ownership, type, max_length, min_length, required, unique, "
                                 "pattern, pii, max_utf8_bytes_per_char)");
    /* without positions the message still names the path */
    assert_int_equal(
        map_compile(&m, json_object_get(root, "map"), "dirmig.json", NULL, "map", &err), DM_EINVAL);
    assert_string_equal(err.msg, "dirmig.json: map.users.attributes.cn.foo: unknown key "
                                 "(known: from, template, value, transforms, default, "
                                 "ownership, type, max_length, min_length, required, unique, "
                                 "pattern, pii, max_utf8_bytes_per_char)");
    assert_null(m);
    jsonpos_free(pos);
    json_decref(root);
}

/* ---- golden cases: tests/data/map/<case>.{in.ldif,map.json,out.ldif} ---- */

/* Adds one "name: value" or "name:: base64" LDIF line to e (or sets the DN). */
static void ldif_line(struct entry **e, const char *line)
{
    const char *colon = strchr(line, ':');
    char name[128];
    size_t nlen;

    assert_non_null(colon);
    nlen = (size_t)(colon - line);
    assert_true(nlen > 0 && nlen < sizeof(name));
    memcpy(name, line, nlen);
    name[nlen] = '\0';
    if (colon[1] == ':') {
        const char *b64 = colon + 2;
        size_t len, pad = 0;
        unsigned char *raw;
        int n;

        while (*b64 == ' ') {
            b64++;
        }
        len = strlen(b64);
        raw = malloc(len + 1);
        assert_non_null(raw);
        n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
        assert_true(n >= 0);
        while (pad < 2 && len > pad && b64[len - 1 - pad] == '=') {
            pad++;
        }
        raw[(size_t)n - pad] = '\0';
        if (strcasecmp(name, "dn") == 0) {
            assert_null(*e);
            *e = entry_new((const char *)raw);
            assert_non_null(*e);
        } else {
            assert_non_null(*e);
            assert_int_equal(entry_add_value(*e, name, raw, (size_t)n - pad), DM_OK);
        }
        free(raw);
        return;
    }
    colon++;
    while (*colon == ' ') {
        colon++;
    }
    if (strcasecmp(name, "dn") == 0) {
        assert_null(*e);
        *e = entry_new(colon);
        assert_non_null(*e);
    } else {
        assert_non_null(*e);
        assert_int_equal(entry_add_str(*e, name, colon), DM_OK);
    }
}

/* Maps e (freed) and appends the dump of the result to out. Groups (groupOfNames,
 * groupOfUniqueNames, posixGroup) go through the "groups" section. */
static void golden_flush(struct buf *out, const struct map *m, struct entry *e)
{
    struct entry *res = NULL;
    struct dm_err err = {0};
    enum map_kind kind = MAP_USERS;

    if (entry_has_class(e, "groupOfNames") || entry_has_class(e, "groupOfUniqueNames") ||
        entry_has_class(e, "posixGroup")) {
        kind = MAP_GROUPS;
    }
    if (map_apply(&res, m, kind, e, &err) != DM_OK) {
        fail_msg("map_apply(%s): %s", e->dn, err.msg);
    }
    if (out->len > 0) {
        assert_int_equal(buf_puts(out, "\n"), DM_OK);
    }
    assert_int_equal(entry_dump(res, out), DM_OK);
    entry_free(res);
    entry_free(e);
}

/* Maps every entry of an LDIF text (modified in place) and dumps the results, separated
 * by blank lines. */
static void golden_run(struct buf *out, const struct map *m, char *ldif)
{
    struct entry *e = NULL;
    char *line = ldif, *next;

    /* unfold continuation lines (RFC 2849: a line starting with one space continues) */
    for (char *r = ldif, *w = ldif;; r++) {
        if (r[0] == '\n' && r[1] == ' ') {
            r++;
            continue;
        }
        *w++ = *r;
        if (*r == '\0') {
            break;
        }
    }
    while (line != NULL) {
        next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        if (line[0] == '\0') {
            if (e != NULL) {
                golden_flush(out, m, e);
                e = NULL;
            }
        } else if (line[0] != '#') {
            ldif_line(&e, line);
        }
        line = next;
    }
    if (e != NULL) {
        golden_flush(out, m, e);
    }
}

static void test_map__golden_cases(void **state)
{
    static const char *const cases[] = {"by-name-exclude", "rename-template-classes", "utf8-binary",
                                        "ad-transforms"};
    const char *top = fixture_srcdir();
    char path[1024];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dm_err err = {0};
        struct map *m = NULL;
        struct buf out;
        char *in, *want;
        size_t wl;

        snprintf(path, sizeof(path), "%s/tests/data/map/%s.map.json", top, cases[i]);
        if (map_load_file(&m, path, &err) != DM_OK) {
            fail_msg("%s", err.msg);
        }
        snprintf(path, sizeof(path), "%s/tests/data/map/%s.in.ldif", top, cases[i]);
        in = fixture_slurp(path);
        snprintf(path, sizeof(path), "%s/tests/data/map/%s.out.ldif", top, cases[i]);
        want = fixture_slurp(path);
        buf_init(&out, 0);
        assert_int_equal(buf_append(&out, "", 0), DM_OK);
        golden_run(&out, m, in);
        /* trailing blank lines are not significant */
        wl = strlen(want);
        while (wl > 0 && want[wl - 1] == '\n') {
            want[--wl] = '\0';
        }
        while (out.len > 0 && out.data[out.len - 1] == '\n') {
            out.data[--out.len] = '\0';
        }
        if (strcmp(out.data, want) != 0) {
            print_error("golden case %s differs; got:\n%s\n", cases[i], out.data);
        }
        assert_string_equal(out.data, want);
        buf_free(&out);
        free(in);
        free(want);
        map_free(m);
    }
}

/* ---- the full language ---- */

static void test_map__starter_maps_load(void **state)
{
    const char *top = fixture_srcdir();
    char dir[1024], path[1300];
    struct dirent *de;
    DIR *d;
    size_t n = 0;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/schema/maps", top);
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        struct dm_err err = {0};
        struct map *m = NULL;

        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (map_load_file(&m, path, &err) != DM_OK) {
            fail_msg("%s", err.msg);
        }
        map_free(m);
        n++;
    }
    closedir(d);
    assert_true(n >= 3);
}

static void test_map__from_list_first_present_wins(void **state)
{
    struct map *m =
        load_map("{\"users\": {\"auto\": \"none\", \"attributes\": {"
                 "\"login\": {\"from\": [\"userPrincipalName\", \"mail\", \"uid\"]}}}}");
    struct entry *in, *out;

    (void)state;
    in = fixture_entry("uid=a,dc=x", "k", "uid", "a", "mail", "m1@x.org", "mail", "m2@x.org", NULL);
    out = apply(m, MAP_USERS, in);
    assert_int_equal(nvals(out, "login"), 2);
    assert_string_equal(val(out, "login", 0), "m1@x.org");
    entry_free(out);
    entry_free(in);
    in = fixture_entry("uid=a,dc=x", "k", "uid", "a", NULL);
    out = apply(m, MAP_USERS, in);
    assert_string_equal(val(out, "login", 0), "a");
    entry_free(out);
    entry_free(in);
    in = fixture_entry("uid=a,dc=x", "k", "cn", "a", NULL);
    out = apply(m, MAP_USERS, in);
    assert_int_equal(nvals(out, "login"), 0);
    entry_free(out);
    entry_free(in);
    map_free(m);
}

static void test_map__transform_chain_per_value(void **state)
{
    struct map *m = load_map(
        "{\"users\": {\"auto\": \"none\", \"attributes\": {"
        "\"mail\": {\"from\": \"mail\", \"transforms\": [\"email\", "
        "  {\"regex\": {\"match\": \"@old\\\\.example$\", \"replace\": \"@new.example\"}}]},"
        "\"firstMail\": {\"from\": \"mail\", \"transforms\": [\"first\", \"upper\"]},"
        "\"allMail\": {\"from\": \"mail\", \"transforms\": [\"lower\", {\"join\": \",\"}]},"
        "\"kind\": {\"from\": \"employeeType\", \"transforms\": [{\"lookup\": "
        "  {\"table\": {\"staff\": \"EMP\", \"contractor\": \"CTR\"}, \"default\": \"OTHER\"}}]},"
        "\"note\": {\"from\": \"description\", \"transforms\": [\"trim\"], \"default\": \"n/a\"}"
        "}}}");
    struct entry *in, *out;

    (void)state;
    in = fixture_entry("uid=a,dc=x", "k", "mail", " A@OLD.Example ", "mail", "b@Other.example",
                       "employeeType", "staff", "employeeType", "intern", "description", "   ",
                       NULL);
    out = apply(m, MAP_USERS, in);
    assert_int_equal(nvals(out, "mail"), 2);
    assert_string_equal(val(out, "mail", 0), "A@new.example");
    assert_string_equal(val(out, "mail", 1), "b@other.example");
    assert_int_equal(nvals(out, "firstMail"), 1);
    assert_string_equal(val(out, "firstMail", 0), " A@OLD.EXAMPLE ");
    assert_string_equal(val(out, "allMail", 0), " a@old.example ,b@other.example");
    assert_int_equal(nvals(out, "kind"), 2);
    assert_string_equal(val(out, "kind", 0), "EMP");
    assert_string_equal(val(out, "kind", 1), "OTHER");
    /* the transform left nothing: the rule default applies, untransformed */
    assert_string_equal(val(out, "note", 0), "n/a");
    entry_free(out);
    entry_free(in);
    map_free(m);
}

static void test_map__source_attributes_checked_at_load(void **state)
{
    struct map *m;

    (void)state;
    expect_bad("{\"source_attributes\": [\"uid\", \"givenName\", \"sn\", \"cn\"],\n"
               " \"users\": {\"attributes\": {\n"
               "  \"mail\": {\"from\": \"mial\"}}}}",
               ":3:12: users.attributes.mail.from: \"mial\" is not a source attribute");
    expect_bad("{\"source_attributes\": [\"uid\", \"givenName\", \"sn\", \"cn\"],\n"
               " \"users\": {\"attributes\": {\n"
               "  \"mail\": {\"from\": [\"uid\", \"mail\"]}}}}",
               ":3:28: users.attributes.mail.from[1]: \"mail\" is not a source attribute");
    expect_bad("{\"source_attributes\": [\"uid\", \"givenName\", \"sn\"],\n"
               " \"users\": {\"attributes\": {\n"
               "  \"cn\": {\"template\": \"{givenName} {surname}\"}}}}",
               ":3:10: users.attributes.cn.template: placeholder {surname} names no source "
               "attribute");
    expect_bad("{\"source_attributes\": \"uid\"}",
               ":1:2: source_attributes: must be an array of attribute names");
    /* case-insensitive, options ignored; without a declaration nothing is checked */
    m = load_map("{\"source_attributes\": [\"givenName\", \"CN\"], \"users\": {\"attributes\": {"
                 "\"x\": {\"template\": \"{GIVENNAME} {cn;lang-en}\"}}}}");
    map_free(m);
    m = load_map("{\"users\": {\"attributes\": {\"x\": {\"from\": \"anything\"}}}}");
    map_free(m);
}

static void test_map__source_and_target_profiles(void **state)
{
    const char *top = fixture_srcdir();
    char text[2048], want[1400];
    struct map *m;
    struct entry *in, *out;
    struct map_problem *pr = NULL;
    struct dm_err err = {0};
    size_t n = 0;

    (void)state;
    /* absolute profile paths; a rule's keys override the profile's */
    snprintf(text, sizeof(text),
             "{\"source_profile\": \"%s/schema/profiles/inetorgperson.json\",\n"
             " \"target_profile\": \"%s/schema/profiles/okta-user.json\",\n"
             " \"users\": {\"auto\": \"none\", \"attributes\": {\n"
             "  \"login\": {\"from\": \"mail\"}, \"email\": {\"from\": \"mail\"},\n"
             "  \"firstName\": {\"from\": \"givenName\", \"max_length\": 3},\n"
             "  \"lastName\": {\"from\": \"sn\", \"required\": false}}}}",
             top, top);
    m = load_map(text);
    in = fixture_entry("uid=a,dc=x", "k", "mail", "ada@example.org", "givenName", "Adah", NULL);
    out = apply(m, MAP_USERS, in);
    assert_int_equal(map_check(&pr, &n, m, MAP_USERS, out, &err), DM_OK);
    assert_int_equal(n, 1);
    assert_string_equal(pr[0].category, "too_long");
    assert_string_equal(pr[0].attr, "firstName");
    assert_string_equal(pr[0].msg, "4 characters, at most 3");
    free(pr);
    entry_free(out);
    entry_free(in);
    map_free(m);
    /* a source profile refuses names it lacks */
    snprintf(text, sizeof(text),
             "{\"source_profile\": \"%s/schema/profiles/inetorgperson.json\",\n"
             " \"users\": {\"attributes\": {\"x\": {\"from\": \"userPrincipalName\"}}}}",
             top);
    expect_bad(text, ":2:33: users.attributes.x.from: \"userPrincipalName\" is not a source "
                     "attribute");
    /* a missing profile names the key and the file */
    expect_bad("{\"target_profile\": \"nosuch/okta.json\"}", NULL);
    snprintf(want, sizeof(want),
             ":1:2: target_profile: bad profile: %s/nosuch/okta.json: No such "
             "file or directory",
             fixture_tmpdir());
    expect_bad("{\"target_profile\": \"nosuch/okta.json\"}", want);
    /* the profile's type (date) against a flag transform (boolean output) */
    snprintf(text, sizeof(text),
             "{\"target_profile\": \"%s/schema/profiles/okta-user.json\",\n"
             " \"users\": {\"attributes\": {\n"
             "  \"email\": {\"from\": \"x\", \"transforms\": [\"trim\", {\"flag\": {\"bit\": 2}}, "
             "\"upper\"]}}}}",
             top);
    snprintf(want, sizeof(want),
             ":3:49: users.attributes.email.transforms[1]: transform \"flag\" outputs boolean but "
             "the type (target profile) is email");
    expect_bad(text, want);
}

static void test_map__bad_transforms_rejected_with_position(void **state)
{
    (void)state;
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"x\": {\"from\": \"x\", \"transforms\": [\n"
               "    {\"regex\": {\"match\": \"([a-z]+\", \"replace\": \"\\\\1\"}}]}}}}",
               ":3:5: users.attributes.x.transforms[0]: regex: bad regular expression "
               "\"([a-z]+\": missing closing parenthesis at offset 7");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"x\": {\"from\": \"x\", \"transforms\": [\"trim\", {\"frob\": 1}]}}}}",
               ":2:45: users.attributes.x.transforms[1]: unknown transform \"frob\" (with an "
               "argument: regex, split, join, lookup, default, date, flag)");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"enabled\": {\"from\": \"userAccountControl\",\n"
               "    \"transforms\": [{\"flag\": {\"bit\": 2}}],\n"
               "    \"type\": \"integer\"}}}}",
               ":4:5: users.attributes.enabled.type: transform \"flag\" outputs boolean but the "
               "type is integer");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"exp\": {\"from\": \"accountExpires\", \"transforms\": [\"filetime\", \"trim\"],"
               " \"type\": \"boolean\"}}}}",
               ":2:73: users.attributes.exp.type: transform \"filetime\" outputs date but the "
               "type is boolean");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"cn\": {\"from\": \"cn\", \"max_length\": 0}}}}",
               ":2:24: users.attributes.cn.max_length: must be an integer >= 1 (characters)");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"cn\": {\"from\": \"cn\", \"max_length\": 2, \"min_length\": 3}}}}",
               ":2:3: users.attributes.cn: min_length is greater than max_length");
    expect_bad("{\"users\": {\"attributes\": {\"cn\": {\"from\": \"cn\", \"pii\": \"yes\"}}}}",
               ":1:48: users.attributes.cn.pii: pii: must be true or false");
    expect_bad("{\"users\": {\"attributes\": {\"cn\": {\"from\": \"cn\", \"pattern\": \"a(\"}}}}",
               ":1:48: users.attributes.cn.pattern: bad regular expression \"a(\": missing closing "
               "parenthesis at offset 2");
    expect_bad("{\"users\": {\"attributes\": {\"cn\": {\"from\": []}}}}",
               ":1:34: users.attributes.cn.from: must be a name or a non-empty array of names");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"on\": {\"value\": \"yes\", \"type\": \"boolean\"}}}}",
               ":2:10: users.attributes.on.value: \"yes\" is not a valid boolean");
    expect_bad("{\"users\": {\"attributes\": {\n"
               "  \"n\": {\"from\": \"n\", \"default\": \"none\", \"type\": \"integer\"}}}}",
               ":2:22: users.attributes.n.default: \"none\" is not a valid integer");
    /* type "string" takes any output; date output into a date type is fine */
    map_free(
        load_map("{\"users\": {\"attributes\": {"
                 "\"a\": {\"from\": \"x\", \"transforms\": [\"guid\"], \"type\": \"string\"},"
                 "\"b\": {\"from\": \"x\", \"transforms\": [\"filetime\"], \"type\": \"date\"},"
                 "\"c\": {\"from\": \"x\", \"transforms\": [{\"flag\": {\"bit\": 2}}, "
                 "\"trim\"], \"type\": \"boolean\"}}}}"));
}

static void test_map__explain_shows_steps_and_masks_pii(void **state)
{
    struct map *m = load_map(
        "{\"users\": {\"exclude\": [\"entryUUID\"], \"attributes\": {"
        "\"mail\": {\"from\": [\"userPrincipalName\", \"mail\"], \"transforms\": [\"trim\", "
        "\"email\"],"
        "  \"type\": \"email\"},"
        "\"displayName\": {\"template\": \"{givenName} {sn}\", \"transforms\": [\"upper\"],"
        "  \"max_length\": 5},"
        "\"mobile\": {\"from\": \"mobile\", \"transforms\": [{\"regex\": {\"match\": \" \", "
        "  \"replace\": \"\", \"global\": true}}], \"pii\": true},"
        "\"title\": {\"from\": \"title\", \"default\": \"none\"},"
        "\"employeeNumber\": {\"from\": \"employeeNumber\", \"required\": true},"
        "\"street\": null"
        "}}}");
    struct entry *in = fixture_entry(
        "uid=ada,dc=x", "key-1", "uid", "ada", "mail", " Ada@Example.ORG ", "givenName", "Ada",
        "sn", "Lovelace", "mobile", "+1 555 0100", "userPassword", "{SSHA}c2VjcmV0c2VjcmV0",
        "street", "1 Main St", "objectClass", "inetOrgPerson", NULL);
    struct dm_err err = {0};
    struct buf out;

    (void)state;
    buf_init(&out, 0);
    assert_int_equal(map_explain(&out, m, MAP_USERS, in, &err), DM_OK);
    assert_non_null(out.data);
    assert_non_null(strstr(out.data, "entry: uid=ada,dc=x\nkey: key-1\nsection: users\n"));
    assert_non_null(strstr(out.data, "uid: auto (by-name)\n  source: [\"ada\"]\n"
                                     "  final: [\"ada\"]\n"));
    assert_non_null(strstr(out.data, "mail: from userPrincipalName | mail\n"
                                     "  source userPrincipalName: (absent)\n"
                                     "  source mail: [\" Ada@Example.ORG \"]\n"
                                     "  step 1 trim: [\"Ada@Example.ORG\"]\n"
                                     "  step 2 email: [\"Ada@example.org\"]\n"
                                     "  final: [\"Ada@example.org\"]\n"));
    assert_non_null(strstr(out.data, "displayName: template \"{givenName} {sn}\"\n"
                                     "  template: [\"Ada Lovelace\"]\n"
                                     "  step 1 upper: [\"ADA LOVELACE\"]\n"
                                     "  final: [\"ADA LOVELACE\"]\n"
                                     "  problem too_long: 12 characters, at most 5\n"));
    assert_non_null(strstr(out.data, "mobile: from mobile\n  source mobile: [***]\n"
                                     "  step 1 regex: [***]\n  final: [***]\n"));
    assert_non_null(strstr(out.data, "title: from title\n  source title: (absent)\n"
                                     "  default: [\"none\"]\n"));
    assert_non_null(strstr(out.data, "employeeNumber: from employeeNumber\n"
                                     "  source employeeNumber: (absent)\n  final: (no value)\n"
                                     "  problem missing_required: required attribute has no "
                                     "value\n"));
    assert_non_null(strstr(out.data, "street: dropped (null rule)\n  final: (no value)\n"));
    assert_non_null(strstr(out.data, "userPassword: auto (by-name)\n  source: [***]\n"));
    /* who owns each attribute once the object exists at the target */
    assert_non_null(strstr(out.data, "  final: [\"ada\"]\n  ownership: authoritative\n"));
    assert_non_null(strstr(out.data, "  final: [***]\n  ownership: create_only\n"));
    assert_non_null(strstr(out.data, "problems: 2\n"));
    /* no pii or secret anywhere */
    assert_null(strstr(out.data, "555"));
    assert_null(strstr(out.data, "SSHA"));
    assert_null(strstr(out.data, "1 Main"));
    buf_free(&out);
    entry_free(in);
    map_free(m);
}

static void test_map__explain_binary_values_escaped(void **state)
{
    struct map *m = load_map("{\"users\": {\"auto\": \"none\", \"attributes\": {"
                             "\"guid\": {\"from\": \"objectGUID\", \"transforms\": [\"guid\"]}}}}");
    static const unsigned char g[16] = {0x23, 0x8b, 0xee, 0x32, 0xaa, 0x34, 0x50, 0x40,
                                        0x9e, 0xed, 0xa9, 0xab, 0xe3, 0xf1, 0x17, 0x83};
    struct entry *in = fixture_entry("cn=a", NULL, NULL);
    struct dm_err err = {0};
    struct buf out;

    (void)state;
    assert_int_equal(entry_add_value(in, "objectGUID", g, sizeof(g)), DM_OK);
    buf_init(&out, 0);
    assert_int_equal(map_explain(&out, m, MAP_USERS, in, &err), DM_OK);
    assert_non_null(strstr(out.data, "key: (none)\n"));
    assert_non_null(strstr(out.data,
                           "  source objectGUID: [\"#\\x8b\\xee2\\xaa4P@\\x9e\\xed"
                           "\\xa9\\xab\\xe3\\xf1\\x17\\x83\"]\n"
                           "  step 1 guid: [\"32ee8b23-34aa-4050-9eed-a9abe3f11783\"]\n"));
    buf_free(&out);
    entry_free(in);
    map_free(m);
}

static void test_map__many_rules_and_option_names(void **state)
{
    struct buf text;
    struct map *m;
    struct entry *in, *out;
    char name[32], v[32];

    (void)state;
    /* more source attributes than the per-entry stack index holds */
    buf_init(&text, 0);
    assert_int_equal(buf_puts(&text, "{\"users\": {\"exclude\": [\"description\"], "
                                     "\"attributes\": {\"cn\": {\"from\": \"sn\"}"),
                     DM_OK);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(buf_printf(&text, ", \"t%d\": {\"from\": \"s%d\"}", i, i), DM_OK);
    }
    assert_int_equal(buf_puts(&text, "}}}"), DM_OK);
    m = load_map(text.data);
    buf_free(&text);
    in = fixture_entry("uid=a,dc=x", "k", "sn", "S", "cn", "C", "cn;lang-de", "CD", "description",
                       "d", "description;lang-de", "dd", NULL);
    for (int i = 0; i < 100; i += 3) {
        snprintf(name, sizeof(name), "S%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        assert_int_equal(entry_add_str(in, name, v), DM_OK);
    }
    out = apply(m, MAP_USERS, in);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        if (i % 3 == 0) {
            assert_string_equal(val(out, name, 0), v);
        } else {
            assert_int_equal(nvals(out, name), 0);
        }
    }
    /* a rule target replaces the auto copy of that exact name only; excluded names also
     * drop their ";options" variants */
    assert_string_equal(val(out, "cn", 0), "S");
    assert_int_equal(nvals(out, "cn"), 1);
    assert_string_equal(val(out, "cn;lang-de", 0), "CD");
    assert_int_equal(nvals(out, "description"), 0);
    assert_int_equal(nvals(out, "description;lang-de"), 0);
    entry_free(out);
    entry_free(in);
    map_free(m);
}

/* map_check() against the starter Okta map and its profile; map_mask() and friends. */
static void test_map__check_okta_profile_and_mask_pii(void **state)
{
    const char *top = fixture_srcdir();
    struct map *m = NULL;
    struct dm_err err = {0};
    struct entry *in, *out = NULL;
    struct map_problem *pr = NULL;
    const char **uniq = NULL;
    size_t n = 0;
    char path[1024];

    (void)state;
    snprintf(path, sizeof(path), "%s/schema/maps/inetorgperson-to-okta.json", top);
    if (map_load_file(&m, path, &err) != DM_OK) {
        fail_msg("%s", err.msg);
    }
    /* good entry */
    in = entry_new("uid=zoe,ou=people,dc=x");
    assert_int_equal(entry_add_str(in, "mail", "Zoë.Ünal@Example.ORG"), DM_OK);
    assert_int_equal(entry_add_str(in, "givenName", "Zoë"), DM_OK);
    assert_int_equal(entry_add_str(in, "sn", "Ünal"), DM_OK);
    assert_int_equal(entry_add_str(in, "mobile", "+1 555 0100"), DM_OK);
    assert_int_equal(map_apply(&out, m, MAP_USERS, in, &err), DM_OK);
    assert_string_equal(entry_first(out, "login"), "Zoë.Ünal@example.org");
    assert_int_equal(map_check(&pr, &n, m, MAP_USERS, out, &err), DM_OK);
    assert_int_equal(n, 0);
    assert_null(pr);
    entry_free(out);
    entry_free(in);
    /* bad entry: no sn, a 4-byte character in givenName, a 51-char... login not email */
    in = entry_new("uid=bad,ou=people,dc=x");
    assert_int_equal(entry_add_str(in, "mail", "bad"), DM_OK);
    assert_int_equal(entry_add_str(in, "givenName", "\xf0\x9f\x98\x80"), DM_OK);
    assert_int_equal(map_apply(&out, m, MAP_USERS, in, &err), DM_OK);
    assert_int_equal(map_check(&pr, &n, m, MAP_USERS, out, &err), DM_OK);
    {
        char all[1024] = "";

        for (size_t i = 0; i < n; i++) {
            snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s:%s;", pr[i].attr,
                     pr[i].category);
        }
        assert_string_equal(all, "login:too_short;login:invalid_email;email:too_short;"
                                 "email:invalid_email;firstName:bad_chars;"
                                 "lastName:missing_required;");
    }
    free(pr);
    entry_free(out);
    entry_free(in);
    /* uniqueness is the agent's: the list of attributes; pii and masking */
    assert_int_equal(map_unique_attrs(m, MAP_USERS, &uniq), 1);
    assert_string_equal(uniq[0], "login");
    assert_int_equal(map_unique_attrs(m, MAP_GROUPS, &uniq), 0);
    assert_true(map_attr_is_pii(m, MAP_USERS, "mobilePhone"));
    assert_true(map_attr_is_pii(m, MAP_USERS, "userPassword"));
    assert_false(map_attr_is_pii(m, MAP_USERS, "login"));
    assert_string_equal(map_mask(m, MAP_USERS, "mobilephone", "+1 555"), "***");
    assert_string_equal(map_mask(m, MAP_USERS, "login", "a@b.org"), "a@b.org");
    {
        struct buf b;

        in = entry_new("uid=p,dc=x");
        assert_int_equal(entry_add_str(in, "login", "p@x.org"), DM_OK);
        assert_int_equal(entry_add_str(in, "mobilePhone", "+1 555 0100"), DM_OK);
        assert_int_equal(entry_add_str(in, "mobilePhone", "+1 555 0101"), DM_OK);
        assert_int_equal(entry_add_str(in, "userPassword", "{SSHA}secret"), DM_OK);
        buf_init(&b, 0);
        assert_int_equal(map_dump_masked(&b, m, MAP_USERS, in), DM_OK);
        assert_non_null(strstr(b.data, "login: p@x.org\n"));
        assert_non_null(strstr(b.data, "mobilePhone: ***\nmobilePhone: ***\n"));
        assert_null(strstr(b.data, "555"));
        assert_null(strstr(b.data, "secret"));
        /* the entry itself is untouched */
        assert_string_equal(entry_first(in, "mobilePhone"), "+1 555 0100");
        buf_free(&b);
        entry_free(in);
    }
    map_free(m);
}

/* map_load_file_all(): one load names every problem, each at its place, and goes on across
 * rules, sections and top-level keys; err holds the first. */
static void test_map__every_problem_at_once(void **state)
{
    struct dm_err err = {0};
    struct map *m = NULL;
    struct buf errors;
    const char *path = fixture_write_tmp(
        "many.json", "{\n"
                     "  \"users\": { \"attributes\": {\n"
                     "    \"a\": { \"from\": \"x\", \"transforms\": [\"lowr\"] },\n"
                     "    \"b\": { \"form\": \"x\" },\n"
                     "    \"c\": { \"from\": \"x\" } } },\n"
                     "  \"groups\": { \"atuo\": \"none\" },\n"
                     "  \"keys\": {}\n"
                     "}\n");
    char want[2048];

    (void)state;
    buf_init(&errors, 0);
    assert_int_equal(map_load_file_all(&m, path, &errors, &err), DM_EINVAL);
    assert_null(m);
    snprintf(want, sizeof(want),
             "%s:3:40: users.attributes.a.transforms[0]: unknown transform \"lowr\" (did you "
             "mean \"lower\"?)\n"
             "%s:4:12: users.attributes.b.form: unknown key (did you mean \"from\"?)\n"
             "%s:6:15: groups.atuo: unknown key (did you mean \"auto\"?)\n"
             "%s:7:3: keys: unknown key (did you mean \"key\"?)\n",
             path, path, path, path);
    assert_string_equal(errors.data, want);
    assert_int_equal(strncmp(err.msg, errors.data, strlen(err.msg)), 0);
    buf_free(&errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map__default_copies_by_name),
        cmocka_unit_test(test_map__from_rename_and_transforms),
        cmocka_unit_test(test_map__template_missing_attr_and_default),
        cmocka_unit_test(test_map__value_constant),
        cmocka_unit_test(test_map__auto_exclude_and_override),
        cmocka_unit_test(test_map__objectclass_mapping_and_dropping),
        cmocka_unit_test(test_map__binary_values_copied_exactly),
        cmocka_unit_test(test_map__multivalued_dedup),
        cmocka_unit_test(test_map__many_values),
        cmocka_unit_test(test_map__key_section),
        cmocka_unit_test(test_map__bad_maps_rejected_with_position),
        cmocka_unit_test(test_map__every_problem_at_once),
        cmocka_unit_test(test_map__syntax_errors_name_position),
        cmocka_unit_test(test_map__inline_map_with_prefix),
        cmocka_unit_test(test_map__golden_cases),
        cmocka_unit_test(test_map__starter_maps_load),
        cmocka_unit_test(test_map__from_list_first_present_wins),
        cmocka_unit_test(test_map__transform_chain_per_value),
        cmocka_unit_test(test_map__source_attributes_checked_at_load),
        cmocka_unit_test(test_map__source_and_target_profiles),
        cmocka_unit_test(test_map__bad_transforms_rejected_with_position),
        cmocka_unit_test(test_map__explain_shows_steps_and_masks_pii),
        cmocka_unit_test(test_map__explain_binary_values_escaped),
        cmocka_unit_test(test_map__many_rules_and_option_names),
        cmocka_unit_test(test_map__check_okta_profile_and_mask_pii),
    };

    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
