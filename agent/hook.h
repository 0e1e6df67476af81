/*
 * hook.h: the password-import hook server (issue 5). Placeholder until implemented.
 */
#ifndef DM_HOOK_H
#define DM_HOOK_H

#include "agent/cli.h"
#include "agent/config.h"

/* `dirmig hook`: serves the password-import hook until SIGINT/SIGTERM. */
int hook_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
             struct dm_err *err);

/* `dirmig report`: password-migration progress per day. */
int report_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
               struct dm_err *err);

#endif
