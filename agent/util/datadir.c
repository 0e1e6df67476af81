/*
 * agent/util/datadir.c: the data directory (datadir.h).
 */
#include <config.h>
#include "agent/util/datadir.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/share/dirmig"
#endif

/* The marker `make` leaves beside an uninstalled binary: one line, the schema/ path. */
#define DATADIR_MARKER ".dirmig-uninstalled"

/* The path in the marker beside /proc/self/exe, or 0 when there is none. */
static int uninstalled_dir(char *buf, size_t len)
{
    char exe[PATH_MAX], marker[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;
    FILE *f;
    int ok = 0;

    if (n <= 0) {
        return 0;
    }
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash == NULL) {
        return 0;
    }
    *slash = '\0';
    snprintf(marker, sizeof(marker), "%s/%s", exe, DATADIR_MARKER);
    f = fopen(marker, "r");
    if (f == NULL) {
        return 0;
    }
    if (fgets(marker, (int)sizeof(marker), f) != NULL) {
        marker[strcspn(marker, "\n")] = '\0';
        /* the path as make wrote it may hold "build/.."; show the plain one */
        if (marker[0] == '/' && realpath(marker, exe) != NULL) {
            snprintf(buf, len, "%s", exe);
            ok = 1;
        }
    }
    fclose(f);
    return ok;
}

const char *datadir_get(char *buf, size_t len)
{
    const char *env = getenv("DIRMIG_DATADIR");

    if (env != NULL && env[0] != '\0') {
        snprintf(buf, len, "%s", env);
    } else if (!uninstalled_dir(buf, len)) {
        snprintf(buf, len, "%s", PKGDATADIR);
    }
    len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/') {
        buf[--len] = '\0';
    }
    return buf;
}

char *datadir_find(const char *rel)
{
    char dir[PATH_MAX];
    char *p = NULL;

    if (rel == NULL || rel[0] == '/' || rel[0] == '\0') {
        return NULL;
    }
    datadir_get(dir, sizeof(dir));
    if (asprintf(&p, "%s/%s", dir, rel) < 0) {
        return NULL;
    }
    if (access(p, F_OK) != 0) {
        free(p);
        return NULL;
    }
    return p;
}
