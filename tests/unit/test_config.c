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
#include <unistd.h>
#include "agent/config.h"
#include "agent/util/log.h"
#include "tests/unit/fixture.h"

/* Fixtures are written by the tests into one temp dir made by the group setup. */
static int g_seq;

#define CANARY "Canary-Pw-7f3a9"

/* Writes text to a new dirmig.json in its own subdirectory; path receives its name. */
static void write_config(char *path, size_t len, const char *text)
{
    char dir[400];

    snprintf(dir, sizeof(dir), "%s/c%d", fixture_tmpdir(), ++g_seq);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, len, "%s/dirmig.json", dir);
    fixture_write(path, text, 0600);
}

/* Loads text as a config and asserts DM_EINVAL with the message "<path>:<want>". */
static void expect_error(const char *text, const char *want)
{
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    char path[512], full[1024];

    write_config(path, sizeof(path), text);
    assert_int_equal(config_load(&c, path, &e), DM_EINVAL);
    assert_null(c);
    snprintf(full, sizeof(full), "%s:%s", path, want);
    assert_string_equal(e.msg, full);
}

#define MINIMAL                                                                                    \
    "{\n"                                                                                          \
    "    \"source\": { \"uri\": \"ldap://127.0.0.1:3890\", \"base\": \"dc=src,dc=test\" },\n"      \
    "    \"target\": { \"uri\": \"ldapi:///\", \"base\": \"dc=dst,dc=test\" }\n"                   \
    "}\n"

static void test_config__minimal_gets_defaults(void **state)
{
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    char path[512], want[600];
    const char *dnattrs[] = {"member", "uniqueMember", "owner", "manager", "seeAlso", "secretary"};

    (void)state;
    write_config(path, sizeof(path), MINIMAL);
    if (config_load(&c, path, &e) != DM_OK) {
        fail_msg("config_load: %s", e.msg);
    }
    assert_string_equal(c->path, path);
    assert_string_equal(c->source.conn.role, "source");
    assert_string_equal(c->target.conn.role, "target");
    assert_string_equal(c->source.conn.type, "ldap");
    assert_string_equal(c->source.conn.uri, "ldap://127.0.0.1:3890");
    assert_string_equal(c->source.conn.base, "dc=src,dc=test");
    assert_string_equal(c->target.conn.uri, "ldapi:///");
    assert_null(c->source.conn.bind_dn);
    assert_null(c->source.conn.bind_pw);
    assert_null(c->source.bind_pw);
    assert_null(c->source.conn.sasl_mech);
    assert_null(c->source.conn.ca_file);
    assert_int_equal(c->source.conn.starttls, 0);
    assert_int_equal(c->source.conn.tls_verify, 1);
    assert_int_equal(c->target.conn.tls_verify, 1);
    assert_int_equal(c->source.conn.network_timeout_ms, 10000);
    assert_int_equal(c->source.conn.op_timeout_ms, 120000);
    assert_int_equal(c->source.conn.page_size, 500);
    assert_int_equal(c->source.conn.max_retries, 5);
    assert_int_equal(c->source.conn.write_window, 64);
    assert_int_equal(c->target.conn.member_chunk, 1000);
    assert_string_equal(c->source.users_base, "dc=src,dc=test");
    assert_string_equal(c->target.groups_base, "dc=dst,dc=test");
    assert_string_equal(c->source.users_filter,
                        "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))");
    assert_string_equal(c->source.groups_filter,
                        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)"
                        "(objectClass=posixGroup))");
    assert_non_null(c->map);
    snprintf(want, sizeof(want), "%s/c%d/dirmig.db", fixture_tmpdir(), g_seq);
    assert_string_equal(c->state_path, want);
    assert_int_equal(c->batch_size, 500);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(c->dn_attrs[i], dnattrs[i]);
    }
    assert_null(c->dn_attrs[6]);
    assert_string_equal(c->member_attrs[0], "member");
    assert_string_equal(c->member_attrs[1], "uniqueMember");
    assert_null(c->member_attrs[2]);
    assert_int_equal(c->log_level, LOG_LVL_INFO);
    assert_int_equal(c->log_json, 0);
    assert_null(c->log_file);
    assert_int_equal(strlen(c->digest), 64);
    assert_int_equal(strspn(c->digest, "0123456789abcdef"), 64);
    assert_int_equal(c->hook.enabled, 0);
    assert_int_equal(c->reconcile.interval_s, 0);
    assert_int_equal(c->reconcile.jitter_s, 0);
    assert_int_equal(c->reconcile.run_at_start, 0);
    assert_int_equal(c->reconcile.max_failures_before_backoff, 3);
    assert_int_equal(c->reconcile.max_backoff_s, 3600);
    config_free(c);
    config_free(NULL);
}

#define WITH_RECONCILE(r)                                                                          \
    "{\n"                                                                                          \
    "    \"source\": { \"uri\": \"ldap://127.0.0.1:3890\", \"base\": \"dc=src,dc=test\" },\n"      \
    "    \"target\": { \"uri\": \"ldapi:///\", \"base\": \"dc=dst,dc=test\" },\n"                  \
    "    \"reconcile\": " r "\n"                                                                   \
    "}\n"

static void test_config__reconcile_keys(void **state)
{
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    char path[512];

    (void)state;
    write_config(path, sizeof(path),
                 WITH_RECONCILE("{ \"interval_s\": 300, \"jitter_s\": 30, \"run_at_start\": true, "
                                "\"max_failures_before_backoff\": 0, \"max_backoff_s\": 7200 }"));
    if (config_load(&c, path, &e) != DM_OK) {
        fail_msg("config_load: %s", e.msg);
    }
    assert_int_equal(c->reconcile.interval_s, 300);
    assert_int_equal(c->reconcile.jitter_s, 30);
    assert_int_equal(c->reconcile.run_at_start, 1);
    assert_int_equal(c->reconcile.max_failures_before_backoff, 0);
    assert_int_equal(c->reconcile.max_backoff_s, 7200);
    config_free(c);
    expect_error(WITH_RECONCILE("{ \"interval_s\": -1 }"),
                 "4:20: reconcile.interval_s: must be 0..604800");
    expect_error(WITH_RECONCILE("{ \"run_at_start\": 1 }"),
                 "4:20: reconcile.run_at_start: must be true or false");
    expect_error(WITH_RECONCILE("{ \"every\": 5 }"), "4:20: reconcile.every: unknown key");
}

static void test_config__full_config_and_relative_paths(void **state)
{
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    char path[512], dir[512], want[700];
    const char *text =
        "{\n"
        "  \"source\": {\n"
        "    \"type\": \"ldap\",\n"
        "    \"uri\": \"ldap://127.0.0.1:3890\",\n"
        "    \"base\": \"dc=src,dc=test\",\n"
        "    \"bind_dn\": \"cn=admin,dc=src,dc=test\",\n"
        "    \"bind_pw_file\": \"secrets/src.pw\",\n"
        "    \"starttls\": true,\n"
        "    \"tls\": { \"ca_file\": \"ca.pem\", \"verify\": false },\n"
        "    \"network_timeout_ms\": 2000, \"timeout_ms\": 5000, \"page_size\": 100,\n"
        "    \"max_retries\": 0, \"write_window\": 4, \"member_chunk\": 50,\n"
        "    \"users\": { \"base\": \"ou=people,dc=src,dc=test\", \"filter\": \"(uid=*)\" },\n"
        "    \"groups\": { \"filter\": \"(cn=*)\" }\n"
        "  },\n"
        "  \"target\": {\n"
        "    \"uri\": \"ldaps://127.0.0.1:6360\",\n"
        "    \"base\": \"dc=dst,dc=test\",\n"
        "    \"bind_dn\": \"cn=admin,dc=dst,dc=test\",\n"
        "    \"bind_pw_env\": \"DM_TEST_CONFIG_PW\",\n"
        "    \"tls\": { \"ca_file\": \"/etc/ssl/certs/ca.pem\" }\n"
        "  },\n"
        "  \"map\": { \"file\": \"maps/m.json\" },\n"
        "  \"state\": { \"path\": \"var/j.db\" },\n"
        "  \"run\": { \"batch_size\": 10, \"dn_attributes\": [\"member\", \"owner\"],\n"
        "           \"member_attributes\": [] },\n"
        "  \"log\": { \"level\": \"debug\", \"json\": true, \"file\": \"/var/log/d.log\" },\n"
        "  \"credentials\": { \"anything\": 1 },\n"
        "  \"hook\": {}, \"waves\": [ { \"name\": \"a\", \"ou\": \"ou=a,dc=src,dc=test\" } ], "
        "\"reconcile\": {}\n"
        "}\n";

    (void)state;
    write_config(path, sizeof(path), text);
    snprintf(dir, sizeof(dir), "%s/c%d", fixture_tmpdir(), g_seq);
    snprintf(want, sizeof(want), "%s/secrets", dir);
    assert_int_equal(mkdir(want, 0700), 0);
    snprintf(want, sizeof(want), "%s/secrets/src.pw", dir);
    fixture_write(want, CANARY "\n", 0600);
    snprintf(want, sizeof(want), "%s/maps", dir);
    assert_int_equal(mkdir(want, 0700), 0);
    snprintf(want, sizeof(want), "%s/maps/m.json", dir);
    fixture_write(want, "{ \"users\": { \"auto\": \"by-name\" } }\n", 0644);
    assert_int_equal(setenv("DM_TEST_CONFIG_PW", CANARY "-env", 1), 0);

    if (config_load(&c, path, &e) != DM_OK) {
        fail_msg("config_load: %s", e.msg);
    }
    assert_string_equal(c->source.conn.bind_dn, "cn=admin,dc=src,dc=test");
    assert_non_null(c->source.bind_pw);
    assert_ptr_equal(c->source.conn.bind_pw, c->source.bind_pw);
    assert_string_equal(secret_reveal(c->source.bind_pw), CANARY);
    assert_string_equal(secret_reveal(c->target.conn.bind_pw), CANARY "-env");
    assert_int_equal(c->source.conn.starttls, 1);
    assert_int_equal(c->source.conn.tls_verify, 0);
    assert_int_equal(c->target.conn.tls_verify, 1);
    snprintf(want, sizeof(want), "%s/ca.pem", dir);
    assert_string_equal(c->source.conn.ca_file, want);
    assert_string_equal(c->target.conn.ca_file, "/etc/ssl/certs/ca.pem");
    assert_int_equal(c->source.conn.network_timeout_ms, 2000);
    assert_int_equal(c->source.conn.op_timeout_ms, 5000);
    assert_int_equal(c->source.conn.page_size, 100);
    assert_int_equal(c->source.conn.max_retries, 0);
    assert_int_equal(c->source.conn.write_window, 4);
    assert_int_equal(c->source.conn.member_chunk, 50);
    assert_string_equal(c->source.users_base, "ou=people,dc=src,dc=test");
    assert_string_equal(c->source.users_filter, "(uid=*)");
    assert_string_equal(c->source.groups_base, "dc=src,dc=test");
    assert_string_equal(c->source.groups_filter, "(cn=*)");
    snprintf(want, sizeof(want), "%s/var/j.db", dir);
    assert_string_equal(c->state_path, want);
    assert_int_equal(c->batch_size, 10);
    assert_string_equal(c->dn_attrs[0], "member");
    assert_string_equal(c->dn_attrs[1], "owner");
    assert_null(c->dn_attrs[2]);
    assert_null(c->member_attrs[0]);
    assert_int_equal(c->log_level, LOG_LVL_DEBUG);
    assert_int_equal(c->log_json, 1);
    assert_string_equal(c->log_file, "/var/log/d.log");
    assert_non_null(c->map);
    config_free(c);
    unsetenv("DM_TEST_CONFIG_PW");
}

static void test_config__describe_hides_secrets(void **state)
{
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    struct buf b;
    char path[512], pw[600];
    const char *text =
        "{\n"
        "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\", \"bind_dn\": \"cn=a,dc=s\",\n"
        "              \"bind_pw_file\": \"pw\" },\n"
        "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\", \"bind_dn\": \"cn=a,dc=t\",\n"
        "              \"bind_pw_env\": \"DM_TEST_CONFIG_PW2\" }\n"
        "}\n";

    (void)state;
    write_config(path, sizeof(path), text);
    snprintf(pw, sizeof(pw), "%s/c%d/pw", fixture_tmpdir(), g_seq);
    fixture_write(pw, CANARY, 0400);
    assert_int_equal(setenv("DM_TEST_CONFIG_PW2", CANARY "-2", 1), 0);
    if (config_load(&c, path, &e) != DM_OK) {
        fail_msg("config_load: %s", e.msg);
    }
    buf_init(&b, 0);
    assert_int_equal(config_describe(c, &b), DM_OK);
    assert_null(strstr(b.data, CANARY));
    assert_null(strstr(b.data, "DM_TEST_CONFIG_PW2"));
    assert_non_null(strstr(b.data, "source.bind_pw_file = ***\n"));
    assert_non_null(strstr(b.data, "target.bind_pw_env = ***\n"));
    assert_non_null(strstr(b.data, "source.bind_pw_env = (unset)\n"));
    assert_non_null(strstr(b.data, "source.page_size = 500\n"));
    assert_non_null(strstr(b.data, "target.uri = ldap://h\n"));
    assert_non_null(strstr(b.data, "log.level = info\n"));
    assert_non_null(strstr(b.data, "run.member_attributes = member uniqueMember\n"));
    buf_free(&b);
    config_free(c);
    unsetenv("DM_TEST_CONFIG_PW2");
}

static void test_config__unknown_key(void **state)
{
    (void)state;
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "    \"pgae_size\": 10 },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:5: source.pgae_size: unknown key");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" },\n"
                 "  \"log\": { \"tls\": { } }, \"bogus\": 1\n"
                 "}\n",
                 "4:12: log.tls: unknown key");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "              \"tls\": { \"verfiy\": true } },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:24: source.tls.verfiy: unknown key");
}

static void test_config__wrong_type(void **state)
{
    (void)state;
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "    \"page_size\": \"500\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:5: source.page_size: must be an integer");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\", \"starttls\": 1 },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "2:50: source.starttls: must be true or false");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": 5, \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:15: target.uri: must be a string");
    expect_error("{\n"
                 "  \"source\": [],\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "2:3: source: must be an object");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" },\n"
                 "  \"run\": { \"dn_attributes\": [\"member\",\n"
                 "                              3] }\n"
                 "}\n",
                 "5:31: run.dn_attributes[1]: must be a non-empty string");
}

static void test_config__missing_required(void **state)
{
    (void)state;
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:3: target.uri: required key is missing");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" }\n"
                 "}\n",
                 "1:1: target: required key is missing");
}

static void test_config__out_of_range(void **state)
{
    (void)state;
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "    \"page_size\": 0 },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:5: source.page_size: must be 1..10000");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" },\n"
                 "  \"run\": { \"batch_size\": 10001 }\n"
                 "}\n",
                 "4:12: run.batch_size: must be 1..10000");
}

static void test_config__bad_values(void **state)
{
    (void)state;
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"http://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "2:15: source.uri: scheme must be ldap://, ldaps:// or ldapi:// for type ldap");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" },\n"
                 "  \"log\": { \"level\": \"verbose\" }\n"
                 "}\n",
                 "4:12: log.level: must be one of error, warn, info, debug");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\", \"type\": \"ad\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "2:50: source.type: must be one of ldap, okta");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "              \"users\": { \"filter\": \"(uid=*\" } },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:26: source.users.filter: must be an LDAP filter in parentheses, such as "
                 "(objectClass=person)");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"example\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "2:34: source.base: must be a DN such as dc=example,dc=org");
    expect_error(
        "{\n"
        "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\", \"sasl_mech\": \"PLAIN\" },\n"
        "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
        "}\n",
        "2:50: source.sasl_mech: must be one of EXTERNAL, GSSAPI");
    expect_error(
        "{\n"
        "  \"source\": { \"uri\": \"ldaps://h\", \"base\": \"dc=s\", \"starttls\": true },\n"
        "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
        "}\n",
        "2:51: source.starttls: only valid with an ldap:// uri");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" },\n"
                 "  \"waves\": [ { \"name\": \"w\", \"filter\": \"(a=1)\", \"ou\": \"ou=x\" } ]\n"
                 "}\n",
                 "4:14: waves[0]: a wave needs exactly one of filter, group, ou");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" },\n"
                 "  \"waves\": [ { \"name\": \"w\", \"colour\": \"red\" } ]\n"
                 "}\n",
                 "4:29: waves[0].colour: unknown key (name, filter, group, ou, groups)");
}

static void test_config__inline_secret_refused(void **state)
{
    (void)state;
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "    \"bind_dn\": \"cn=a,dc=s\", \"bind_pw\": \"" CANARY "\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:29: source.bind_pw: secrets are not accepted inline; use bind_pw_file or "
                 "bind_pw_env");
    expect_error(
        "{\n"
        "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
        "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\", \"password\": \"x\" }\n"
        "}\n",
        "3:50: target.password: secrets are not accepted inline; use bind_pw_file or "
        "bind_pw_env");
}

static void test_config__bind_password_rules(void **state)
{
    (void)state;
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "    \"bind_dn\": \"cn=a,dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:5: source.bind_dn: needs bind_pw_file or bind_pw_env (or sasl_mech)");
    expect_error(
        "{\n"
        "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
        "    \"bind_dn\": \"cn=a,dc=s\", \"bind_pw_file\": \"f\", \"bind_pw_env\": \"E\" },\n"
        "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
        "}\n",
        "3:50: source.bind_pw_env: use only one of bind_pw_file and bind_pw_env");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "    \"bind_pw_env\": \"E\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:5: source.bind_pw_env: only used for a simple bind with bind_dn");
    /* GSSAPI: the identity is the Kerberos ticket's; a bind_dn would only mislead. */
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "    \"bind_dn\": \"cn=a,dc=s\", \"sasl_mech\": \"GSSAPI\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:5: source.bind_dn: not used with sasl_mech GSSAPI (the identity is the "
                 "ticket's)");
}

/* Type okta: target only, https (http only to loopback), exactly one token source, no
 * LDAP bind keys; the token never in the message. */
static void test_config__okta_target(void **state)
{
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    char path[512], tok[600], text[2048];

    (void)state;
    expect_error("{\n"
                 "  \"source\": { \"type\": \"okta\", \"uri\": \"https://o.example\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "2:15: source.type: okta is a target type; the source must be an LDAP directory");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"type\": \"okta\", \"uri\": \"http://o.example\",\n"
                 "              \"token_env\": \"DM_TEST_OKTA\" }\n"
                 "}\n",
                 "3:31: target.uri: type okta needs an https:// URL (http:// only to loopback)");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"type\": \"okta\", \"uri\": \"https://o.example\" }\n"
                 "}\n",
                 "3:3: target.token_file: type okta needs exactly one of token_file and "
                 "token_env");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"type\": \"okta\", \"uri\": \"https://o.example\",\n"
                 "              \"token_env\": \"DM_TEST_OKTA\", \"bind_dn\": \"cn=x\" }\n"
                 "}\n",
                 "4:44: target.bind_dn: not used with type okta (it authenticates with a token)");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\" }\n"
                 "}\n",
                 "3:3: target.base: required key is missing");
    /* a good one: token from a 0600 file, loopback http */
    snprintf(tok, sizeof(tok), "%s/okta.token", fixture_tmpdir());
    fixture_write(tok, CANARY "\n", 0600);
    snprintf(text, sizeof(text),
             "{\n"
             "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
             "  \"target\": { \"type\": \"okta\", \"uri\": \"http://127.0.0.1:8080\",\n"
             "              \"token_file\": \"%s\", \"concurrency\": 4,\n"
             "              \"rate_limit_share\": 40, \"activate\": false }\n"
             "}\n",
             tok);
    write_config(path, sizeof(path), text);
    assert_int_equal(config_load(&c, path, &e), DM_OK);
    assert_string_equal(c->target.conn.type, "okta");
    assert_non_null(c->target.conn.token);
    assert_string_equal(secret_reveal(c->target.conn.token), CANARY);
    assert_int_equal(c->target.conn.concurrency, 4);
    assert_int_equal(c->target.conn.rate_share_pct, 40);
    assert_int_equal(c->target.conn.activate, 0);
    assert_null(c->target.conn.base);
    config_free(c);
}

static void test_config__secret_errors_name_the_key(void **state)
{
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    char path[512], pw[600], want[2048];
    const char *text =
        "{\n"
        "  \"source\": { \"uri\": \"ldapi:///\", \"sasl_mech\": \"EXTERNAL\", \"base\": \"dc=s\" "
        "},\n"
        "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\", \"bind_dn\": \"cn=a,dc=t\",\n"
        "              \"bind_pw_file\": \"pw\" }\n"
        "}\n";

    (void)state;
    write_config(path, sizeof(path), text);
    snprintf(pw, sizeof(pw), "%s/c%d/pw", fixture_tmpdir(), g_seq);
    fixture_write(pw, CANARY "\n", 0644);
    assert_int_equal(config_load(&c, path, &e), DM_EINVAL);
    assert_null(c);
    snprintf(want, sizeof(want),
             "%s:4:15: target.bind_pw_file: %s: secret file is accessible by group or others "
             "(mode 644); chmod 600 it",
             path, pw);
    assert_string_equal(e.msg, want);
    assert_null(strstr(e.msg, CANARY));
    /* fixed mode: loads; SASL EXTERNAL needs no password */
    assert_int_equal(chmod(pw, 0600), 0);
    if (config_load(&c, path, &e) != DM_OK) {
        fail_msg("config_load: %s", e.msg);
    }
    assert_string_equal(c->source.conn.sasl_mech, "EXTERNAL");
    assert_null(c->source.conn.bind_pw);
    config_free(c);
}

static void test_config__syntax_error(void **state)
{
    (void)state;
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\" \"base\": \"dc=s\" },\n"
                 "}\n",
                 "2:38: '}' expected near '\"base\"'");
    expect_error(
        "{\n"
        "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\", \"uri\": \"ldap://x\" },\n"
        "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
        "}\n",
        "2:54: duplicate object key near '\"uri\"'");
    expect_error("[1]\n", "1:1: the top level must be an object");
}

static void test_config__missing_file(void **state)
{
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    char path[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/does-not-exist.json", fixture_tmpdir());
    assert_int_equal(config_load(&c, path, &e), DM_EINVAL);
    assert_null(c);
    assert_non_null(strstr(e.msg, path));
}

static void test_config__null_means_default(void **state)
{
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    char path[512];
    const char *text =
        "{\n"
        "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\", \"page_size\": null },\n"
        "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" },\n"
        "  \"log\": { \"level\": \"warn\", \"json\": false, \"file\": null },\n"
        "  \"map\": { \"users\": { \"auto\": \"by-name\" } }\n"
        "}\n";

    (void)state;
    write_config(path, sizeof(path), text);
    if (config_load(&c, path, &e) != DM_OK) {
        fail_msg("config_load: %s", e.msg);
    }
    assert_int_equal(c->source.conn.page_size, 500);
    assert_null(c->log_file);
    assert_int_equal(c->log_level, LOG_LVL_WARN);
    assert_non_null(c->map);
    config_free(c);
}

static void test_config__print_keys_lists_every_section(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    (void)state;
    assert_non_null(f);
    config_print_keys(f);
    fclose(f);
    assert_non_null(strstr(text, "\\fIendpoint\\fB.page_size\\fR (integer)"));
    assert_non_null(strstr(text, "\\fBstate.path\\fR (path)"));
    assert_non_null(strstr(text, "\\fIendpoint\\fB.bind_pw_file\\fR (path, sensitive)"));
    assert_non_null(strstr(text, "\\fIendpoint\\fB.uri\\fR (string, required)"));
    assert_non_null(strstr(text, "\\fBreconcile\\fR"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config__minimal_gets_defaults),
        cmocka_unit_test(test_config__reconcile_keys),
        cmocka_unit_test(test_config__full_config_and_relative_paths),
        cmocka_unit_test(test_config__describe_hides_secrets),
        cmocka_unit_test(test_config__unknown_key),
        cmocka_unit_test(test_config__wrong_type),
        cmocka_unit_test(test_config__missing_required),
        cmocka_unit_test(test_config__out_of_range),
        cmocka_unit_test(test_config__bad_values),
        cmocka_unit_test(test_config__okta_target),
        cmocka_unit_test(test_config__inline_secret_refused),
        cmocka_unit_test(test_config__bind_password_rules),
        cmocka_unit_test(test_config__secret_errors_name_the_key),
        cmocka_unit_test(test_config__syntax_error),
        cmocka_unit_test(test_config__missing_file),
        cmocka_unit_test(test_config__null_means_default),
        cmocka_unit_test(test_config__print_keys_lists_every_section),
    };

    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
