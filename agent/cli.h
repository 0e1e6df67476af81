/*
 * cli.h: the dirmig command line (DESIGN "CLI").
 *
 *   dirmig [-c FILE] [-v|-q] [--json] COMMAND [options]
 *
 * cli_main() parses arguments, loads the config and runs one command. It returns an enum
 * dm_rc; *exit_hint is set to a sysexits code when the CLI knows better than the rc
 * (EX_USAGE for bad arguments, EX_CONFIG for a bad config, EX_DATAERR when a run finished
 * but some entries failed), else 0; main() maps the rest with rc_to_sysexits().
 */
#ifndef DM_CLI_H
#define DM_CLI_H

int cli_main(int argc, char **argv, int *exit_hint);

#endif
