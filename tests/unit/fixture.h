/*
 * tests/unit/fixture.h: what the unit programs share instead of repeating it: a private
 * temporary directory per program, files written into it or read whole, paths in the
 * source tree, and entries built from name/value pairs.
 *
 * Call order: pass fixture_setup and fixture_teardown to cmocka_run_group_tests() (or
 * call them from the program's own group setup and teardown); fixture_setup() makes
 * /tmp/<program>.XXXXXX, fixture_teardown() removes it with everything in it. The other
 * helpers fail the running cmocka test on an error instead of returning one.
 */
#ifndef DM_TEST_FIXTURE_H
#define DM_TEST_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>
#include "schema/entry.h"

/* cmocka group setup / teardown: make / remove the temporary directory. 0 on success. */
int fixture_setup(void **state);
int fixture_teardown(void **state);

/* The temporary directory ("" before fixture_setup()). Borrowed. */
const char *fixture_tmpdir(void);

/* Writes text to path (created or truncated) with the given mode. */
void fixture_write(const char *path, const char *text, mode_t mode);

/* Writes text to <tmpdir>/name (mode 0600) and returns that path, in a static buffer
 * valid until the next call. */
const char *fixture_write_tmp(const char *name, const char *text);

/* The whole file at path, NUL-terminated. Caller frees with free(). */
char *fixture_slurp(const char *path);

/* $top_srcdir (the source tree, set by make check; "." when unset). Borrowed. */
const char *fixture_srcdir(void);

/* An entry with dn, key (may be NULL) and the NULL-terminated name, value, name, value...
 * string pairs that follow. Caller frees with entry_free(). */
struct entry *fixture_entry(const char *dn, const char *key, ...);

#endif
