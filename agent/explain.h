/*
 * explain.h: `dirmig map --explain KEY`: one source entry through the map, step by step.
 *
 * KEY is the entry's correlation key (the map's key.source attribute, entryUUID by
 * default) or its DN. The entry is looked up among the users, then the groups, and
 * map_explain() prints each target attribute, its source values and every transform
 * step's result; pii and password values show as ***.
 */
#ifndef DM_EXPLAIN_H
#define DM_EXPLAIN_H

#include "agent/cli.h"
#include "agent/config.h"

int explain_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                struct dm_err *err);

#endif
