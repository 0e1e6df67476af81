#include <config.h>
#include "agent/exitcode.h"
#include "agent/util/err.h"
#include <sysexits.h>

int exitcode_of(int rc)
{
    switch (rc) {
    case DM_OK:
        return EX_OK;
    case DM_EINVAL:
    case DM_ESCHEMA:
    case DM_EEXISTS:
        return EX_DATAERR;
    case DM_ENOTFOUND:
        return EX_NOINPUT;
    case DM_EUNAVAIL:
        return EX_UNAVAILABLE;
    case DM_EAUTH:
        return EX_NOPERM;
    case DM_ENOMEM:
        return EX_OSERR;
    case DM_ELIMIT:
    case DM_EBUSY:
        return EX_TEMPFAIL;
    case DM_ECONFIG:
        return EX_CONFIG;
    default:
        return EX_SOFTWARE;
    }
}
