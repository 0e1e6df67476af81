/*
 * exitcode.h: the one table of dirmig's exit codes (STYLE V6; doc/dirmig.1 EXIT STATUS lists
 * the same). They follow sysexits(3):
 *
 *   0   EX_OK           done; nothing failed and nothing was held back
 *   64  EX_USAGE        bad command line
 *   65  EX_DATAERR      done, but some objects failed or were held back (collisions, blocking
 *                       data problems, groups without a member left, saved-plan changes
 *                       refused), or validate found blocking problems, or a saved plan was
 *                       refused whole (another target or configuration, too old, malformed)
 *   66  EX_NOINPUT      something named does not exist: a source or target base, a container,
 *                       an input file
 *   69  EX_UNAVAILABLE  a server could not be reached, or the connection was lost for good
 *   70  EX_SOFTWARE     internal error
 *   71  EX_OSERR        out of memory
 *   73  EX_CANTCREAT    an output file (log, export, plan --out) cannot be created
 *   75  EX_TEMPFAIL     blocked: a gate stopped every disable and delete of the run (the
 *                       source read did not complete or shrank, another identity, over the
 *                       deletion limits; --json "status": "blocked" and "blocked" say why),
 *                       or a server limit (size, time) was hit: look, then run again;
 *                       or another run of the same target is in progress (the runner
 *                       lock, "another run in progress on HOST (pid N)"; --json "status":
 *                       "busy"): run again later
 *   130                 interrupted by SIGINT or SIGTERM (status "interrupted")
 *   77  EX_NOPERM       a bind or token was refused
 *   78  EX_CONFIG       the configuration is invalid, or does not fit what it meets (a state
 *                       journal that belongs to another target; a PostgreSQL journal asked
 *                       for rollback or a saved plan, which only a SQLite journal keeps)
 *
 * --json output carries the same code as "exit_code".
 */
#ifndef DM_EXITCODE_H
#define DM_EXITCODE_H

#define DM_EXIT_INTERRUPTED 130

/* The exit code of a failed command whose error code (enum dm_rc) is rc; 0 for DM_OK. */
int exitcode_of(int rc);

#endif
