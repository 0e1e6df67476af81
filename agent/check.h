/*
 * check.h: `dirmig check`, the preflight.
 *
 * Online (the default) it checks, in this order, and goes on after a problem so that one
 * run names every problem it can:
 *   - the configuration, the map and the profiles (loaded by the caller);
 *   - each endpoint: connect and bind, what the server offers, the TLS actually in use and
 *     the identity the session is bound as (connector's check slot); for an LDAP endpoint
 *     that the base exists, and for the source the users and groups bases, the waves'
 *     groups and OUs and the hook's search base; for an LDAP target the containers the run
 *     writes into (the source users and groups bases rebased to the target base, each
 *     level): present, or missing and created by the run (target.create_containers), or
 *     missing and a problem;
 *   - the state journal (opened, created when new).
 * Offline (`check --offline`) it contacts nothing and reads no secret: the configuration,
 * the map and the profiles are checked by loading them (the caller loads with
 * config_load_opts.offline), and what this machine lacks (secret, CA and certificate files,
 * unset variables, the state and log directories) is listed as notes.
 *
 * Output: a report on standard output (standard error with --json), each problem also as
 * a "dirmig: problem" line on standard error; with --json one
 * object on standard output: {"command": "check", "offline": bool, "status": "ok" |
 * "failed", "exit_code": N, "problems": [{"problem": text, "exit_code": N}], "notes":
 * [text]}. The exit code is that of the first problem: 66 something named does not exist,
 * 69 a server cannot be reached, 77 a bind or token was refused, 78 the configuration does
 * not fit what it meets, 70/71 internal errors.
 */
#ifndef DM_CHECK_H
#define DM_CHECK_H

#include "agent/cli.h"
#include "agent/config.h"

/* Runs the check on cfg (offline when o->offline); notes are the loader's offline notes
 * (one per line, may be NULL or ""). Prints everything itself. Returns DM_OK when there
 * was no problem; otherwise the rc of the first problem with *exit_hint its exit code. */
int check_cmd(const struct dm_config *cfg, const struct cli_opts *o, const char *notes,
              int *exit_hint, struct dm_err *err);

#endif
