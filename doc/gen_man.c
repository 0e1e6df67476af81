/*
 * doc/gen_man.c: writes a man page from its template at build time:
 *
 *   gen_man TEMPLATE > PAGE
 *
 * copies TEMPLATE, replacing "@VERSION@" with the package version and a line that is
 * exactly "@KEYS@" with the key section of dirmig.json(5) (config_print_keys(), from the
 * one key table that also drives validation). dirmig.json(5) is made this way so that it
 * cannot drift from the keys dirmig accepts.
 */
#include <config.h>
#include "agent/config.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    char line[4096];
    FILE *in;
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: gen_man TEMPLATE > PAGE\n");
        return 64;
    }
    in = fopen(argv[1], "r");
    if (in == NULL) {
        perror(argv[1]);
        return 66;
    }
    while (fgets(line, sizeof(line), in) != NULL) {
        char *v;

        if (strcmp(line, "@KEYS@\n") == 0) {
            config_print_keys(stdout);
            continue;
        }
        for (char *p = line; (v = strstr(p, "@VERSION@")) != NULL;
             p = v + strlen(PACKAGE_VERSION)) {
            memmove(v + strlen(PACKAGE_VERSION), v + 9, strlen(v + 9) + 1);
            memcpy(v, PACKAGE_VERSION, strlen(PACKAGE_VERSION));
        }
        fputs(line, stdout);
    }
    if (ferror(in) || fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "gen_man: %s: read or write error\n", argv[1]);
        rc = 74;
    }
    fclose(in);
    return rc;
}
