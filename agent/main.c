/*
 * main.c: the dirmig program. Everything else lives in libdirmig, which the tests link
 * too; this file only runs the CLI and maps the result to a sysexits(3) code, in the one
 * function that does it.
 */
#include <config.h>
#include "agent/cli.h"
#include "agent/util/err.h"
#include <ldap.h>
#include <sysexits.h>

/* The one place dm_rc becomes an exit status. */
static int rc_to_sysexits(int rc)
{
    switch (rc) {
    case DM_OK:
        return EX_OK;
    case DM_EINVAL:
        return EX_DATAERR;
    case DM_EUNAVAIL:
        return EX_UNAVAILABLE;
    case DM_EAUTH:
        return EX_NOPERM;
    case DM_ENOTFOUND:
        return EX_NOINPUT;
    case DM_ENOMEM:
        return EX_OSERR;
    case DM_ELIMIT:
        return EX_TEMPFAIL;
    default:
        return EX_SOFTWARE;
    }
}

int main(int argc, char **argv)
{
    int hint = 0, rc, dbg = 0;

    /* libldap initialises its global options at the first call, which must not race:
     * make it here, before any thread starts (ldap_dup(3)). */
    ldap_get_option(NULL, LDAP_OPT_DEBUG_LEVEL, &dbg);
    rc = cli_main(argc, argv, &hint);
    if (hint != 0) {
        return hint;
    }
    return rc_to_sysexits(rc);
}
