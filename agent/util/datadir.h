/*
 * datadir.h: where dirmig's own data files are: the starter maps (maps/) and the attribute
 * profiles (profiles/).
 *
 * The data directory is, first that applies:
 *   1. $DIRMIG_DATADIR, when set and not empty;
 *   2. for a binary run from its build tree, the source tree's schema/ directory: `make`
 *      writes its path into the file .dirmig-uninstalled beside the binary (never
 *      installed), so no build path is compiled into the program;
 *   3. the installed one, $(pkgdatadir) (/usr/share/dirmig in the Debian package).
 * So "maps/ad-to-okta.json" in a configuration names the same starter map installed and
 * from the build tree.
 */
#ifndef DM_DATADIR_H
#define DM_DATADIR_H

#include <stddef.h>

/* Writes the data directory (without a trailing slash) into buf; returns buf. A result
 * that does not fit is cut short (and will not be found). */
const char *datadir_get(char *buf, size_t len);

/* The file rel (relative path, e.g. "maps/x.json") in the data directory, when it exists:
 * a new string (caller frees with free()); NULL when it does not exist or rel is absolute
 * or out of memory. */
char *datadir_find(const char *rel);

#endif
