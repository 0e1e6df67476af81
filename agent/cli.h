/*
 * cli.h: the dirmig command line (DESIGN "CLI").
 *
 *   dirmig [-c FILE] [-v|-q] [--json] COMMAND [options]
 *
 * cli_main() parses arguments, loads the config and runs one command. It returns an enum
 * dm_rc; *exit_hint is set to a sysexits code when the CLI knows better than the rc
 * (EX_USAGE for bad arguments, EX_CONFIG for a bad config, EX_DATAERR when a run finished
 * but some entries failed), else 0; main() maps the rest with exitcode_of() (agent/exitcode.h).
 */
#ifndef DM_CLI_H
#define DM_CLI_H

#include "agent/util/err.h"

/* Options shared by every command, parsed by cli_main(). */
struct cli_opts {
    const char *config_path;
    int verbose, quiet, json;
    long long limit;
    int samples;
    int no_progress;
    const char *wave;        /* --wave NAME */
    const char *retry_from;  /* --retry-from FILE */
    const char *out_prefix;  /* --out PREFIX (validate, mapping) */
    const char *explain;     /* map --explain KEY */
    int verify_target;       /* plan/run --verify-target */
    int rebind_state;        /* plan/run --rebind-state */
    long long allow_deletes; /* plan/run --allow-deletes N; -1 when not given */
    const char *html;        /* report --html FILE */
};

struct dm_config;

/* A command that runs on a loaded config. Returns an enum dm_rc; may set *exit_hint. */
typedef int (*cli_cmd_fn)(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                          struct dm_err *err);

int cli_main(int argc, char **argv, int *exit_hint);

#endif
