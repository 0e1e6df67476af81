/*
 * statecmd.h: `dirmig state`, commands on the state journal itself.
 *
 *   dirmig state migrate --from sqlite PATH
 *       copies the SQLite journal at PATH into the journal the configuration names
 *       (state_copy(), agent/state.h): moving a program from one machine's SQLite file to
 *       a PostgreSQL database that several hooks and agents share.
 */
#ifndef DM_STATECMD_H
#define DM_STATECMD_H

#include "agent/cli.h"

/* The command (cli_cmd_fn). Exit hints: 66 PATH missing, 65 destination not empty. */
int statecmd_run(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                 struct dm_err *err) DM_MUST_USE;

#endif
