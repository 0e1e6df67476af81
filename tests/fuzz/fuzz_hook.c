/*
 * fuzz_hook.c: libFuzzer target for the hook's request handler (agent/hook_core.c): body
 * parsing to answer, with the failure budget and eventId de-duplication live and a fake
 * verifier in place of the directory. The first input byte picks the endpoint (Okta or
 * generic); the rest is the request body. Checks that every answer is one of the fixed
 * status/body pairs and that a 200 says VERIFIED only for the one right credential.
 * Build and run: tests/fuzz/run_fuzz.sh [seconds].
 */
#include <config.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/hook_core.h"
#include "agent/util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum ldap_verify_result fake_resolve(struct ldap_verify_account *out, void *ctx,
                                            const char *login, size_t login_len,
                                            long long deadline_ms, struct dm_err *err)
{
    memset(out, 0, sizeof(*out));
    out->failures = -1;
    if (login_len == 5 && memcmp(login, "alice", 5) == 0) {
        snprintf(out->dn, sizeof(out->dn), "uid=alice,dc=x");
        snprintf(out->id, sizeof(out->id), "uuid:alice");
        return LDAP_VERIFY_OK;
    }
    if (login_len == 6 && memcmp(login, "locked", 6) == 0) {
        snprintf(out->dn, sizeof(out->dn), "uid=locked,dc=x");
        snprintf(out->id, sizeof(out->id), "uuid:locked");
        out->state = LDAP_VERIFY_R_NO_PASSWORD;
        return LDAP_VERIFY_INELIGIBLE;
    }
    if (login_len == 4 && memcmp(login, "down", 4) == 0) {
        dm_err_set(err, DM_EUNAVAIL, "fake source down");
        return LDAP_VERIFY_SOURCE_ERROR;
    }
    return LDAP_VERIFY_UNKNOWN;
}

static enum ldap_verify_result fake_bind(void *ctx, const struct ldap_verify_account *a,
                                         const char *pw, size_t pw_len, long long deadline_ms,
                                         struct dm_err *err)
{
    if (strcmp(a->dn, "uid=alice,dc=x") != 0) {
        abort(); /* only a resolved, eligible account is ever bound */
    }
    return pw_len == 6 && memcmp(pw, "s3cret", 6) == 0 ? LDAP_VERIFY_OK : LDAP_VERIFY_WRONG;
}

static const struct hook_verifier fake = {fake_resolve, fake_bind, NULL};

static struct hook_core *core;
static struct config_hook cfg;

static void setup(void)
{
    struct dm_err err = {0};

    log_init(LOG_LVL_ERR, NULL, 0);
    cfg.deadline_ms = 2000;
    cfg.max_failures = 5;
    cfg.max_failures_per_client = 1000000;
    cfg.max_failures_total = 100000000;
    cfg.failure_window_s = 900;
    cfg.max_concurrency = 64;
    cfg.max_body = 16384;
    if (hook_core_new(&core, &cfg, &fake, NULL, NULL, &err) != DM_OK) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hook_reply rep;
    enum hook_endpoint ep;

    if (core == NULL) {
        setup();
    }
    if (size == 0) {
        return 0;
    }
    ep = (data[0] & 1) ? HOOK_EP_GENERIC : HOOK_EP_OKTA;
    hook_core_handle(&rep, core, ep, (const char *)data + 1, size - 1, "127.0.0.1",
                     ldap_verify_now_ms());
    if (rep.len != strlen(rep.body) || rep.outcome >= HOOK_OUT__LAST) {
        abort();
    }
    switch (rep.status) {
    case 200:
        if (strstr(rep.body, "\"VERIFIED\"") != NULL || strstr(rep.body, "true") != NULL) {
            if (rep.outcome != HOOK_OUT_VERIFIED && rep.outcome != HOOK_OUT_DUPLICATE) {
                abort();
            }
        }
        break;
    case 400:
    case 413:
        break;
    default:
        abort();
    }
    return 0;
}
