/*
 * hook.h: the password-import hook server and `dirmig report`.
 *
 * For users whose password hashes cannot move, the target identity system calls this
 * server at the user's first sign-in with the username and the password typed; dirmig
 * checks them against the source directory (connectors/ldap_verify.h) and answers VERIFIED
 * or UNVERIFIED. The server is libmicrohttpd over TLS (plain HTTP only on loopback, when
 * configured), and serves:
 *   POST hook.path          Okta password import inline hook (Okta sends the typed
 *                           credential in data.context.credential and waits up to
 *                           3 s): 200 with a com.okta.action.update command
 *   POST hook.generic_path  {"username","password"} -> {"verified": bool}
 *   GET  /healthz           200 when the source answers, else 503
 *   GET  /metrics           Prometheus text format
 * Both POST endpoints need the shared secret in hook.auth_header (constant-time compare);
 * without it: 401 and no directory traffic. What is answered, and the abuse protection, is
 * in agent/hook_core.h.
 *
 * Call order: hook_server_start() -> ... -> hook_server_stop(). `dirmig hook` (hook_cmd)
 * is just that around a wait for SIGINT/SIGTERM; the agent daemon embeds the same calls.
 */
#ifndef DM_HOOK_H
#define DM_HOOK_H

#include "agent/cli.h"
#include "agent/config.h"

struct hook_server;

/* Loads the TLS material, opens the state journal, creates the verifier and starts
 * listening on cfg->hook.listen. Returns a running server; stop with hook_server_stop().
 * cfg is borrowed and must outlive the server. DM_EINVAL for a config the server cannot
 * use (no secret, no certificate, plain HTTP off loopback), DM_EUNAVAIL when it cannot
 * listen. */
int hook_server_start(struct hook_server **out, const struct dm_config *cfg,
                      struct dm_err *err) DM_MUST_USE;

/* Stops listening, waits for requests in progress, frees everything. NULL-safe. */
void hook_server_stop(struct hook_server *s);

/* Lines that the process running the server adds to /metrics (dirmig agent: its scheduled
 * reconciliation). fn appends Prometheus text to b and returns DM_OK or DM_ENOMEM; it is
 * called on the server's threads, so it must be thread-safe. fn NULL: none. */
struct buf;
typedef int (*hook_metrics_fn)(void *ctx, struct buf *b);
void hook_server_set_metrics(struct hook_server *s, hook_metrics_fn fn, void *ctx);

/* `dirmig hook`: serves the password-import hook until SIGINT/SIGTERM. */
int hook_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
             struct dm_err *err);

/* `dirmig report`: password-migration progress per day (users verified for the first
 * time), plus the totals of `dirmig status`. --json: one object on stdout. */
int report_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
               struct dm_err *err);

#endif
