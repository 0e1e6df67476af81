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
        "    \"max_retries\": 0,\n"
        "    \"users\": { \"base\": \"ou=people,dc=src,dc=test\", \"filter\": \"(uid=*)\" },\n"
        "    \"groups\": { \"filter\": \"(cn=*)\" }\n"
        "  },\n"
        "  \"target\": {\n"
        "    \"uri\": \"ldaps://127.0.0.1:6360\",\n"
        "    \"base\": \"dc=dst,dc=test\",\n"
        "    \"bind_dn\": \"cn=admin,dc=dst,dc=test\",\n"
        "    \"bind_pw_env\": \"DM_TEST_CONFIG_PW\",\n"
        "    \"tls\": { \"ca_file\": \"/etc/ssl/certs/ca-certificates.crt\" },\n"
        "    \"write_window\": 4, \"member_chunk\": 50\n"
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
    snprintf(want, sizeof(want), "%s/ca.pem", dir);
    fixture_write(want, "(a CA file must be there; TLS reads it)\n", 0644);
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
    assert_string_equal(c->target.conn.ca_file, "/etc/ssl/certs/ca-certificates.crt");
    assert_int_equal(c->source.conn.network_timeout_ms, 2000);
    assert_int_equal(c->source.conn.op_timeout_ms, 5000);
    assert_int_equal(c->source.conn.page_size, 100);
    assert_int_equal(c->source.conn.max_retries, 0);
    assert_int_equal(c->target.conn.write_window, 4);
    assert_int_equal(c->target.conn.member_chunk, 50);
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
                 "3:5: source.pgae_size: unknown key (did you mean \"page_size\"?)");
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
                 "3:24: source.tls.verfiy: unknown key (did you mean \"verify\"?)");
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
                 "2:50: source.type: must be one of ldap, okta, scim, auth0, ldif, csv, jsonl");
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
                 "2:15: source.type: okta is a target type; the source must be an LDAP directory "
                 "or an LDIF file");
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

/* Loads text with config_load_all(); asserts DM_EINVAL and that the error list is exactly
 * want ("@" in want stands for the config's path, "%" for its directory). */
static void expect_errors(const char *text, const char *want)
{
    struct config_load_opts o = {0};
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    struct buf errors, expected;
    char path[512];

    buf_init(&errors, 0);
    buf_init(&expected, 0);
    write_config(path, sizeof(path), text);
    o.errors = &errors;
    assert_int_equal(config_load_all(&c, path, &o, &e), DM_EINVAL);
    assert_null(c);
    for (const char *p = want; *p != '\0'; p++) {
        if (*p == '@') {
            assert_int_equal(buf_puts(&expected, path), DM_OK);
        } else if (*p == '%') {
            assert_int_equal(buf_append(&expected, path, (size_t)(strrchr(path, '/') - path)),
                             DM_OK);
        } else {
            assert_int_equal(buf_append(&expected, p, 1), DM_OK);
        }
    }
    assert_string_equal(errors.data, expected.data);
    /* err holds the first one */
    assert_int_equal(strncmp(errors.data, e.msg, strlen(e.msg)), 0);
    buf_free(&errors);
    buf_free(&expected);
}

/* One load names every problem, each at its place: keys, types, endpoint rules, waves, the
 * map file. */
static void test_config__every_error_at_once(void **state)
{
    (void)state;
    expect_errors("{\n"
                  "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\", \"pgae_size\": 10,\n"
                  "              \"page_size\": \"100\", \"range_size\": 10 },\n"
                  "  \"target\": { \"uri\": \"ldap://h\", \"starttls\": \"yes\" },\n"
                  "  \"waves\": [ { \"name\": \"w\", \"fitler\": \"(a=b)\" } ],\n"
                  "  \"map\": { \"file\": \"nowhere/m.json\" },\n"
                  "  \"lgo\": { }\n"
                  "}\n",
                  "@:2:50: source.pgae_size: unknown key (did you mean \"page_size\"?)\n"
                  "@:3:15: source.page_size: must be an integer\n"
                  "@:4:34: target.starttls: must be true or false\n"
                  "@:7:3: lgo: unknown key (did you mean \"log\"?)\n"
                  "@:3:35: source.range_size: does nothing here: only with dialect \"ad\"\n"
                  "@:4:3: target.base: required key is missing\n"
                  "@:5:29: waves[0].fitler: unknown key (did you mean \"filter\"?)\n"
                  "@:6:12: map.file: %/nowhere/m.json: No such file or directory\n");
}

/* Past CONFIG_MAX_ERRORS the list says how many more there were. */
static void test_config__error_list_is_capped(void **state)
{
    struct config_load_opts o = {0};
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    struct buf text, errors;
    char path[512];
    size_t lines = 0;

    (void)state;
    buf_init(&text, 0);
    buf_init(&errors, 0);
    assert_int_equal(buf_puts(&text,
                              "{ \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                              "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }"),
                     DM_OK);
    for (int i = 0; i < CONFIG_MAX_ERRORS + 5; i++) {
        assert_int_equal(buf_printf(&text, ",\n  \"bogus%d\": 1", i), DM_OK);
    }
    assert_int_equal(buf_puts(&text, "\n}\n"), DM_OK);
    write_config(path, sizeof(path), text.data);
    o.errors = &errors;
    assert_int_equal(config_load_all(&c, path, &o, &e), DM_EINVAL);
    for (const char *p = errors.data; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, CONFIG_MAX_ERRORS + 1);
    assert_non_null(strstr(errors.data, "... and 5 more\n"));
    assert_non_null(strstr(e.msg, "bogus0: unknown key"));
    buf_free(&text);
    buf_free(&errors);
}

/* Keys that would do nothing where they are set are refused, not ignored. */
static void test_config__keys_that_do_nothing_are_refused(void **state)
{
    (void)state;
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\", \"delta\": true }\n"
                 "}\n",
                 "3:50: target.delta: does nothing here: only for the source (type ldap, "
                 "either dialect)");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "              \"create_containers\": false },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:15: source.create_containers: does nothing here: only for a target that "
                 "holds a tree of entries (type ldap, ldif)");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\",\n"
                 "              \"groups\": { \"nesting\": \"flatten_in_chain\" } },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "3:27: source.groups.nesting: flatten_in_chain needs dialect \"ad\" (the "
                 "in-chain rule is AD's); use \"flatten\"");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\",\n"
                 "              \"groups\": { \"nesting\": \"flatten\" } }\n"
                 "}\n",
                 "4:27: target.groups.nesting: does nothing here: only for the source (where "
                 "groups are read)");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\", \"range_size\": 5 },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" }\n"
                 "}\n",
                 "2:50: source.range_size: does nothing here: only with dialect \"ad\"");
    expect_error("{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\", \"concurrency\": 4 }\n"
                 "}\n",
                 "3:50: target.concurrency: does nothing here: only with type okta, scim, auth0");
}

/* An unreadable map file is named at its place in dirmig.json; a problem inside it at its
 * own place; a relative one not beside the config is found in the data directory. */
static void test_config__map_file_positions(void **state)
{
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    char path[512], map[600], want[1400];

    (void)state;
    write_config(path, sizeof(path),
                 "{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" },\n"
                 "  \"map\": { \"file\": \"m.json\" }\n"
                 "}\n");
    snprintf(map, sizeof(map), "%.*s/m.json", (int)(strrchr(path, '/') - path), path);
    assert_int_equal(config_load(&c, path, &e), DM_EINVAL);
    snprintf(want, sizeof(want), "%s:4:12: map.file: %s: No such file or directory", path, map);
    assert_string_equal(e.msg, want);
    fixture_write(map, "{\n  \"users\": {\n    \"atributes\": {}\n  }\n}\n", 0644);
    assert_int_equal(config_load(&c, path, &e), DM_EINVAL);
    snprintf(want, sizeof(want), "%s:3:5: users.atributes: unknown key", map);
    assert_int_equal(strncmp(e.msg, want, strlen(want)), 0);
    assert_non_null(strstr(e.msg, "did you mean \"attributes\"?"));
    /* "maps/<starter>.json" from the data directory */
    write_config(path, sizeof(path),
                 "{\n"
                 "  \"source\": { \"uri\": \"ldap://h\", \"base\": \"dc=s\" },\n"
                 "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\" },\n"
                 "  \"map\": { \"file\": \"maps/inetorgperson-to-inetorgperson.json\" }\n"
                 "}\n");
    snprintf(want, sizeof(want), "%s/schema", fixture_srcdir());
    assert_int_equal(setenv("DIRMIG_DATADIR", want, 1), 0);
    if (config_load(&c, path, &e) != DM_OK) {
        fail_msg("config_load: %s", e.msg);
    }
    snprintf(want, sizeof(want), "%s/schema/maps/inetorgperson-to-inetorgperson.json",
             fixture_srcdir());
    assert_string_equal(config_map_origin(c), want);
    config_free(c);
    unsetenv("DIRMIG_DATADIR");
}

/* Offline: no secret is read; a missing secret or CA file and an unset variable are
 * notes; a secret file that others can read is still an error. */
static void test_config__offline_reads_no_secret(void **state)
{
    struct config_load_opts o = {0};
    struct dm_config *c = NULL;
    struct dm_err e = {0};
    struct buf notes;
    char path[512], pw[600], text[2048];

    (void)state;
    buf_init(&notes, 0);
    unsetenv("DM_TEST_UNSET_PW");
    write_config(path, sizeof(path), "{}");
    snprintf(pw, sizeof(pw), "%.*s/src.pw", (int)(strrchr(path, '/') - path), path);
    fixture_write(pw, CANARY "\n", 0600);
    snprintf(text, sizeof(text),
             "{\n"
             "  \"source\": { \"uri\": \"ldaps://h\", \"base\": \"dc=s\", \"bind_dn\": \"cn=r\",\n"
             "              \"bind_pw_file\": \"%s\", \"tls\": { \"ca_file\": \"no-ca.pem\" } },\n"
             "  \"target\": { \"uri\": \"ldap://h\", \"base\": \"dc=t\", \"bind_dn\": \"cn=w\",\n"
             "              \"bind_pw_env\": \"DM_TEST_UNSET_PW\" },\n"
             "  \"hook\": { \"secret_file\": \"/nonexistent/hook.secret\" }\n"
             "}\n",
             pw);
    fixture_write(path, text, 0600);
    o.offline = 1;
    o.notes = &notes;
    if (config_load_all(&c, path, &o, &e) != DM_OK) {
        fail_msg("config_load_all: %s", e.msg);
    }
    assert_null(c->source.bind_pw);
    assert_null(c->target.bind_pw);
    assert_null(c->hook.secret);
    assert_non_null(strstr(notes.data, "source.tls.ca_file: "));
    assert_non_null(strstr(notes.data, "no-ca.pem: not on this machine\n"));
    assert_non_null(strstr(notes.data, "target.bind_pw_env: environment variable "
                                       "DM_TEST_UNSET_PW is not set here\n"));
    assert_non_null(strstr(notes.data, "hook.secret_file: /nonexistent/hook.secret: not on this "
                                       "machine\n"));
    assert_null(strstr(notes.data, "source.bind_pw_file"));
    config_free(c);
    /* without --offline the same config fails on the missing CA file */
    assert_int_equal(config_load(&c, path, &e), DM_EINVAL);
    assert_non_null(strstr(e.msg, "source.tls.ca_file: "));
    /* a secret file others can read is refused offline too */
    assert_int_equal(chmod(pw, 0644), 0);
    assert_int_equal(config_load_all(&c, path, &o, &e), DM_EINVAL);
    assert_non_null(strstr(e.msg, "source.bind_pw_file: "));
    assert_non_null(strstr(e.msg, "accessible by group or others"));
    assert_null(strstr(e.msg, CANARY));
    buf_free(&notes);
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
        cmocka_unit_test(test_config__every_error_at_once),
        cmocka_unit_test(test_config__error_list_is_capped),
        cmocka_unit_test(test_config__keys_that_do_nothing_are_refused),
        cmocka_unit_test(test_config__map_file_positions),
        cmocka_unit_test(test_config__offline_reads_no_secret),
    };

    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
