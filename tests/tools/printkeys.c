/*
 * printkeys: writes the KEYS section of dirmig.json(5) as the key table and the connectors'
 * registered keys describe it (config_print_keys()). test_man_keys.sh compares it with
 * doc/dirmig.json.5; `make update-man-keys` puts it there.
 */
#include <config.h>
#include <stdio.h>
#include "agent/config.h"

int main(void)
{
    config_print_keys(stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
