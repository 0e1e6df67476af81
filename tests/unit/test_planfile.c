/* tests/unit/test_planfile.c: the saved-plan file (agent/planfile.h): written and read back,
 * mode 0600 and no temporary file left, every malformed line refused with FILE:LINE, a file
 * without its trailer refused as truncated, durations, the configuration digest. */
#include <config.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "agent/planfile.h"
#include "tests/unit/fixture.h"

#define D1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static const char *path_of(const char *name)
{
    static char buf[512];

    snprintf(buf, sizeof(buf), "%s/%s", fixture_tmpdir(), name);
    return buf;
}

struct seen {
    int n;
    char ops[8][16], keys[8][64], attrs[8][64];
    long lines[8];
};

static int collect(const struct planfile_change *c, void *payload)
{
    struct seen *s = payload;

    if (s->n < 8) {
        snprintf(s->ops[s->n], sizeof(s->ops[0]), "%s", c->op);
        snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", c->key);
        snprintf(s->attrs[s->n], sizeof(s->attrs[0]), "%s", c->attrs ? c->attrs : "");
        s->lines[s->n] = c->line;
    }
    s->n++;
    return 0;
}

/* Writes a plan with two changes to name; returns its path (static buffer). */
static const char *write_two(const char *name, char id[33])
{
    struct planfile_header h;
    struct planfile *f = NULL;
    struct planfile_change c = {0};
    struct dm_err e = {0};
    const char *path = path_of(name);

    memset(&h, 0, sizeof(h));
    h.run = 7;
    h.created = 1700000000;
    snprintf(h.config_digest, sizeof(h.config_digest), "%s", D1);
    h.target = (char *)"ldap ldap://127.0.0.1:389 dc=example,dc=org uuid";
    h.source = (char *)"ldap://old";
    h.full_scope = 1;
    assert_int_equal(planfile_create(&f, path, &h, &e), DM_OK);
    c.op = "create";
    c.kind = "user";
    c.key = "k1";
    c.source_dn = "uid=a,ou=people,dc=old";
    c.target = "uid=a,ou=people,dc=example,dc=org";
    c.reason = "new";
    c.attrs = "cn,mail,userPassword";
    c.state = "keep";
    c.source_digest = D1;
    c.target_digest = PLANFILE_ABSENT;
    assert_int_equal(planfile_add(f, &c, &e), DM_OK);
    c.op = "update";
    c.key = "k2";
    c.ref = "uid=b,ou=people,dc=example,dc=org";
    c.target = c.ref;
    c.attrs = "sn";
    c.reason = "changed";
    c.target_digest = D2;
    assert_int_equal(planfile_add(f, &c, &e), DM_OK);
    assert_int_equal(planfile_count(f), 2);
    assert_int_equal(planfile_commit(f, &e), DM_OK);
    if (id != NULL) {
        memcpy(id, h.plan_id, 33);
    }
    return path;
}

static void test_planfile__round_trip(void **state)
{
    struct planfile_header h;
    struct seen s = {0};
    struct dm_err e = {0};
    struct stat sb;
    char id[33];
    const char *path = write_two("rt.jsonl", id);
    DIR *d;
    struct dirent *de;

    (void)state;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    d = opendir(fixture_tmpdir());
    while ((de = readdir(d)) != NULL) {
        assert_null(strstr(de->d_name, ".tmp."));
    }
    closedir(d);
    assert_int_equal(planfile_read(&h, path, collect, &s, &e), DM_OK);
    assert_string_equal(h.plan_id, id);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(h.run, 7);
    assert_int_equal(h.created, 1700000000);
    assert_string_equal(h.config_digest, D1);
    assert_string_equal(h.target, "ldap ldap://127.0.0.1:389 dc=example,dc=org uuid");
    assert_null(h.wave);
    assert_int_equal(h.full_scope, 1);
    assert_int_equal(h.changes, 2);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ops[0], "create");
    assert_string_equal(s.keys[1], "k2");
    assert_string_equal(s.attrs[0], "cn,mail,userPassword");
    assert_int_equal(s.lines[0], 2);
    assert_int_equal(s.lines[1], 3);
    planfile_header_clear(&h);
}

static void test_planfile__abort_leaves_nothing(void **state)
{
    struct planfile_header h;
    struct planfile *f = NULL;
    struct dm_err e = {0};
    struct stat sb;
    const char *path = path_of("aborted.jsonl");
    DIR *d;
    struct dirent *de;

    (void)state;
    memset(&h, 0, sizeof(h));
    snprintf(h.config_digest, sizeof(h.config_digest), "%s", D1);
    h.target = (char *)"t";
    assert_int_equal(planfile_create(&f, path, &h, &e), DM_OK);
    planfile_abort(f);
    assert_int_not_equal(stat(path, &sb), 0);
    d = opendir(fixture_tmpdir());
    while ((de = readdir(d)) != NULL) {
        assert_null(strstr(de->d_name, "aborted"));
    }
    closedir(d);
    /* a directory that does not exist: an error naming the file */
    assert_int_not_equal(planfile_create(&f, "/nonexistent-dir/p.jsonl", &h, &e), DM_OK);
    assert_non_null(strstr(e.msg, "/nonexistent-dir/p.jsonl"));
}

/* The text of the good two-change plan with line n (1-based) replaced by repl (NULL:
 * removed), written to name. */
static const char *variant(const char *name, int n, const char *repl)
{
    char *text = fixture_slurp(write_two("base.jsonl", NULL));
    static char out[512];
    FILE *f;
    int line = 1;
    char *p = text;

    snprintf(out, sizeof(out), "%s", path_of(name));
    f = fopen(out, "w");
    assert_non_null(f);
    while (*p != '\0') {
        char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
        if (line == n) {
            if (repl != NULL) {
                fputs(repl, f);
                fputc('\n', f);
            }
        } else {
            fwrite(p, 1, len, f);
        }
        p += len;
        line++;
    }
    fclose(f);
    free(text);
    return out;
}

/* The read of path fails with DM_EINVAL and a message starting "path:line: " and holding
 * want. */
static void expect_bad(const char *path, long line, const char *want)
{
    struct planfile_header h;
    struct seen s = {0};
    struct dm_err e = {0};
    char prefix[600];

    memset(&h, 0, sizeof(h));
    assert_int_equal(planfile_read(&h, path, collect, &s, &e), DM_EINVAL);
    snprintf(prefix, sizeof(prefix), "%s:%ld: ", path, line);
    if (strncmp(e.msg, prefix, strlen(prefix)) != 0 || strstr(e.msg, want) == NULL) {
        fail_msg("got \"%s\", want \"%s%s\"", e.msg, prefix, want);
    }
    assert_null(h.target);
}

static void test_planfile__bad_lines_name_their_line(void **state)
{
    (void)state;
    expect_bad(variant("b1.jsonl", 2, "{\"op\":\"create\""), 2, "not JSON");
    expect_bad(variant("b2.jsonl", 2, "[1,2]"), 2, "not a JSON object");
    expect_bad(variant("b3.jsonl", 3,
                       "{\"op\":\"zap\",\"kind\":\"user\",\"key\":\"k\",\"target\":\"t\","
                       "\"reason\":\"r\",\"state\":\"keep\",\"source_digest\":\"absent\","
                       "\"target_digest\":\"absent\"}"),
               3, "\"op\" \"zap\" is not create, update, move, disable or delete");
    expect_bad(variant("b4.jsonl", 3,
                       "{\"op\":\"create\",\"kind\":\"user\",\"key\":\"k\",\"target\":\"t\","
                       "\"reason\":\"r\",\"state\":\"keep\",\"source_digest\":\"12ab\","
                       "\"target_digest\":\"absent\"}"),
               3, "\"source_digest\" must be 64 hex digits or \"absent\"");
    expect_bad(variant("b5.jsonl", 2,
                       "{\"op\":\"create\",\"kind\":\"user\",\"target\":\"t\",\"reason\":\"r\","
                       "\"state\":\"keep\",\"source_digest\":\"absent\",\"target_digest\":"
                       "\"absent\"}"),
               2, "\"key\" is missing");
    expect_bad(variant("b6.jsonl", 2,
                       "{\"op\":\"create\",\"kind\":\"user\",\"key\":\"k\",\"target\":\"t\","
                       "\"reason\":\"r\",\"state\":\"keep\",\"source_digest\":\"absent\","
                       "\"target_digest\":\"absent\",\"mail\":\"a@b\"}"),
               2, "unknown field \"mail\"");
    expect_bad(variant("b7.jsonl", 2,
                       "{\"op\":\"create\",\"kind\":\"user\",\"key\":\"k\",\"target\":\"t\","
                       "\"reason\":\"r\",\"state\":\"keep\",\"source_digest\":\"absent\","
                       "\"target_digest\":\"absent\",\"attributes\":[\"cn: x\"]}"),
               2, "\"attributes\"[0] is not an attribute name");
    expect_bad(variant("b8.jsonl", 4, NULL), 4, "the plan ends before its last line");
    expect_bad(variant("b9.jsonl", 4, "{\"end\":true,\"changes\":3}"), 4,
               "the plan says it has 3 changes, the file holds 2");
    expect_bad(variant("b10.jsonl", 1, "{\"hello\":1}"), 1, "not a dirmig plan");
    expect_bad(variant("b11.jsonl", 1, "{\"dirmig_plan\":2}"), 1,
               "plan format version 2 is not one this dirmig reads");
    expect_bad(
        variant("b12.jsonl", 4, "{\"end\":true,\"changes\":2}\n{\"end\":true,\"changes\":2}"), 5,
        "text after the plan's last line");
    expect_bad(variant("b13.jsonl", 2, ""), 2, "not JSON");
    expect_bad(variant("b14.jsonl", 3,
                       "{\"op\":\"create\",\"op\":\"update\",\"kind\":\"user\",\"key\":\"k\"}"),
               3, "not JSON");
}

static void test_planfile__missing_and_empty(void **state)
{
    struct planfile_header h;
    struct dm_err e = {0};
    const char *empty = fixture_write_tmp("empty.jsonl", "");

    (void)state;
    memset(&h, 0, sizeof(h));
    assert_int_equal(planfile_read(&h, path_of("no-such.jsonl"), NULL, NULL, &e), DM_ENOTFOUND);
    assert_int_equal(planfile_read(&h, empty, NULL, NULL, &e), DM_EINVAL);
    assert_non_null(strstr(e.msg, "empty file"));
}

static int stop_at_first(const struct planfile_change *c, void *payload)
{
    (void)c;
    (*(int *)payload)++;
    return 42;
}

static void test_planfile__fn_stops_the_read(void **state)
{
    struct planfile_header h;
    struct dm_err e = {0};
    const char *path = write_two("stop.jsonl", NULL);
    int calls = 0;

    (void)state;
    memset(&h, 0, sizeof(h));
    assert_int_equal(planfile_read(&h, path, NULL, NULL, &e), DM_OK); /* checked without fn */
    assert_int_equal(h.changes, 2);
    planfile_header_clear(&h);
    assert_int_equal(planfile_read(&h, path, stop_at_first, &calls, &e), 42);
    assert_int_equal(calls, 1);
    assert_null(h.target);
}

static void test_planfile__durations(void **state)
{
    long long s = 0;

    (void)state;
    assert_int_equal(planfile_duration(&s, "90"), DM_OK);
    assert_int_equal(s, 90);
    assert_int_equal(planfile_duration(&s, "45s"), DM_OK);
    assert_int_equal(s, 45);
    assert_int_equal(planfile_duration(&s, "30m"), DM_OK);
    assert_int_equal(s, 1800);
    assert_int_equal(planfile_duration(&s, "2h"), DM_OK);
    assert_int_equal(s, 7200);
    assert_int_equal(planfile_duration(&s, "1d"), DM_OK);
    assert_int_equal(s, 86400);
    assert_int_equal(planfile_duration(&s, "0"), DM_EINVAL);
    assert_int_equal(planfile_duration(&s, "-5m"), DM_EINVAL);
    assert_int_equal(planfile_duration(&s, "3y"), DM_EINVAL);
    assert_int_equal(planfile_duration(&s, "1hh"), DM_EINVAL);
    assert_int_equal(planfile_duration(&s, "h"), DM_EINVAL);
    assert_int_equal(planfile_duration(&s, ""), DM_EINVAL);
    assert_int_equal(planfile_duration(&s, "99999999999999d"), DM_EINVAL);
}

static void test_planfile__config_digest_covers_the_map(void **state)
{
    char a[65], b[65], c[65], d[65];
    const char *map = fixture_write_tmp("map.json", "{\"users\": {}}");

    (void)state;
    planfile_config_digest(a, D1, NULL);
    planfile_config_digest(b, D1, map);
    planfile_config_digest(c, D2, map);
    fixture_write(map, "{\"users\": {\"x\": 1}}", 0600);
    planfile_config_digest(d, D1, map);
    assert_int_equal(strlen(a), 64);
    assert_string_not_equal(a, b);
    assert_string_not_equal(b, c);
    assert_string_not_equal(b, d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planfile__round_trip),
        cmocka_unit_test(test_planfile__abort_leaves_nothing),
        cmocka_unit_test(test_planfile__bad_lines_name_their_line),
        cmocka_unit_test(test_planfile__missing_and_empty),
        cmocka_unit_test(test_planfile__fn_stops_the_read),
        cmocka_unit_test(test_planfile__durations),
        cmocka_unit_test(test_planfile__config_digest_covers_the_map),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
