/*
 * rollback.h: `dirmig rollback RUN [--wave W] [--plan] [--json]`: reverses a run from the undo
 * store (agent/undo.h), newest change first.
 *
 *   created   the object is deleted
 *   modified  the attributes the change wrote get their prior values back (and a keyed
 *             target's account state its prior lifecycle state)
 *   moved     the object is renamed back to its old DN, its attributes restored
 *   disabled  the disable is reversed (the attribute's prior value, or the lifecycle), and
 *             the groups it left get it back
 *   deleted   the entry is created again from its before image, byte for byte (password
 *             included), and its group memberships given back; a target without
 *             CONN_UNDO_DELETE (a user deleted for good) cannot be: refused and listed
 *
 * Before each object is touched it is read at the target: an object changed since the run
 * (its touched attributes no longer digest as the run left them, or a deleted one is back)
 * is refused and listed, never overwritten. The journal follows: a rolled-back create's row
 * goes (a later run sees the object as absent and not dirmig's), any other row gets back
 * what it held before the run. The rollback is itself journaled as a run of kind
 * "rollback"; --plan reads and checks everything and writes nothing anywhere.
 *
 * --wave W: the objects of that wave only. For a run made with --wave W, all of its
 * changes; for a run over the whole scope, the users the wave selects: by OU from the source
 * DN the record keeps (deleted users included), by group or filter as the source has them
 * now. Groups and containers of a whole-scope run belong to no wave.
 */
#ifndef DM_ROLLBACK_H
#define DM_ROLLBACK_H

#include "agent/cli.h"
#include "agent/config.h"
#include "agent/util/err.h"

/* The command (cli_cmd_fn). o->args[0] is RUN (a run id, or "last"), o->dry_run --plan. */
int rollback_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                 struct dm_err *err) DM_MUST_USE;

#endif
