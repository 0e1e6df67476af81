/*
 * main.c: the dirmig program. Everything else lives in libdirmig, which the tests link
 * too; this file only runs the CLI and maps the result to an exit code (agent/exitcode.h).
 */
#include <config.h>
#include "agent/cli.h"
#include "agent/exitcode.h"
#include "agent/util/err.h"
#include <ldap.h>
#include <signal.h>
#include <sysexits.h>

int main(int argc, char **argv)
{
    int hint = 0, rc, dbg = 0;

    /* libldap initialises its global options at the first call, which must not race:
     * make it here, before any thread starts (ldap_dup(3)). */
    ldap_get_option(NULL, LDAP_OPT_DEBUG_LEVEL, &dbg);
    /* A server that goes away mid-write must be an error to report (EPIPE), not a signal
     * that kills the run before it says what happened. */
    signal(SIGPIPE, SIG_IGN);
    rc = cli_main(argc, argv, &hint);
    if (hint != 0) {
        return hint;
    }
    return exitcode_of(rc);
}
