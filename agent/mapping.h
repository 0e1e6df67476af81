/*
 * mapping.h: `dirmig mapping`, the user-correlation report.
 *
 * Correlates the source users with the users already in the target by the map's key
 * ("key": {"source": A, "target": B, "fallback": [{"source": C, "target": D}, ...]}):
 * values compared case-insensitively after trimming. Each source user is
 *   matched      exactly one target candidate under the first rule that finds any
 *   ambiguous    several candidates under that rule, or the candidate was already matched
 *   source-only  no candidate under any rule
 * and each target user no source user matched is target-only. Writes PREFIX.csv and
 * PREFIX.jsonl (one row per user) and prints a summary. The target's key values are held
 * in memory (one string per target user and rule): correlation needs the whole target
 * population at hand, and this says so in the log.
 */
#ifndef DM_MAPPING_H
#define DM_MAPPING_H

#include "agent/cli.h"
#include "agent/config.h"

int mapping_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                struct dm_err *err);

#endif
