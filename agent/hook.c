#include <config.h>
#include "agent/hook.h"

int hook_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
             struct dm_err *err)
{
    return dm_err_set(err, DM_EINVAL, "hook: not implemented yet");
}

int report_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
               struct dm_err *err)
{
    return dm_err_set(err, DM_EINVAL, "report: not implemented yet");
}
