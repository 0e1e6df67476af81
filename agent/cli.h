/*
 * cli.h: the dirmig command line.
 *
 *   dirmig [-c FILE] [-v|-q] COMMAND [options]
 *
 * cli_main() parses arguments against one table of commands (agent/cli.c): each command
 * names the options it takes, and an option given to a command that does not take it is
 * a usage error, as is an unknown option or command (each with a "did you mean" when one
 * is close). A usage error is two lines on standard error, the problem and where to get
 * help, and exit 64. `dirmig --help` lists the commands; `dirmig COMMAND --help` (or
 * `dirmig help COMMAND`) shows the command's options and an example.
 *
 * It then loads the config and runs one command. It returns an enum dm_rc; *exit_hint is
 * set to a sysexits code when the CLI knows better than the rc (EX_USAGE for bad
 * arguments, EX_CONFIG for a bad config, EX_DATAERR when a run finished but some entries
 * failed), else 0; main() maps the rest with exitcode_of() (agent/exitcode.h).
 */
#ifndef DM_CLI_H
#define DM_CLI_H

#include "agent/util/err.h"

/* The parsed command line. Only the options the command takes are ever set. */
struct cli_opts {
    const char *config_path;
    int verbose, quiet, json;
    long long limit;
    int samples;
    int no_progress;         /* --no-progress, --progress none */
    const char *progress;    /* --progress json; NULL = auto */
    const char *wave;        /* --wave NAME */
    const char *retry_from;  /* --retry-from FILE */
    const char *out_prefix;  /* --out PREFIX (validate, mapping) */
    const char *explain;     /* map --explain KEY */
    int offline;             /* check --offline */
    int verify_target;       /* plan/run --verify-target */
    int rebind_state;        /* plan/run --rebind-state */
    long long allow_deletes; /* plan/run --allow-deletes N; -1 when not given */
    const char *html;        /* report --html FILE */
    const char *from;        /* state migrate --from TYPE */
    const char *plan_out;    /* plan --out FILE */
    const char *plan_in;     /* run --plan FILE */
    long long max_age;       /* run --max-age DURATION, seconds; 0 when not given */
    int dry_run;             /* rollback --plan */
    char **args;             /* the command's positional arguments, as many as its usage names */
    int nargs;               /* (rollback RUN: 1; state migrate PATH: 2) */
};

struct dm_config;

/* A command that runs on a loaded config. Returns an enum dm_rc; may set *exit_hint. */
typedef int (*cli_cmd_fn)(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                          struct dm_err *err);

int cli_main(int argc, char **argv, int *exit_hint);

#endif
