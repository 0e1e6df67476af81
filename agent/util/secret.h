/*
 * secret.h: passwords, tokens and shared secrets.
 *
 * A secret is loaded from a file (`*_file` config keys) or an environment variable
 * (`*_env`), never from argv. A file readable or writable by group/others is refused.
 * One trailing newline of a file is dropped. The bytes live in an opaque struct that is
 * wiped on free and has no print function; reveal them only at the call that needs them
 * (a bind). secret_equal() compares in constant time.
 */
#ifndef DM_SECRET_H
#define DM_SECRET_H

#include <stddef.h>
#include "err.h"

struct secret;

/* Loads from `file` if non-NULL, else from the environment variable `env`. Exactly one
 * should be given. Returns a new secret; caller frees with secret_free(). An empty secret
 * is an error (DM_EINVAL): dirmig never binds with an empty password. */
int secret_load(struct secret **out, const char *file, const char *env,
                struct dm_err *err) DM_MUST_USE;

/* Checks a secret file without reading it: DM_OK when it is a regular file that group
 * and others cannot access, DM_ENOTFOUND when it does not exist, DM_EINVAL otherwise (err
 * says why). For `dirmig check --offline`. */
int secret_check_file(const char *file, struct dm_err *err) DM_MUST_USE;

/* Copies len bytes (for tests and for values received on the wire). */
int secret_from_mem(struct secret **out, const void *data, size_t len,
                    struct dm_err *err) DM_MUST_USE;

/* Borrowed, NUL-terminated bytes; valid until secret_free(). */
const char *secret_reveal(const struct secret *s);
size_t secret_len(const struct secret *s);

/* Constant-time comparison of the secret with len bytes at p (time depends only on the
 * lengths). Returns 1 when equal. */
int secret_equal(const struct secret *s, const void *p, size_t len);

/* explicit_bzero, then free. NULL-safe. */
void secret_free(struct secret *s);

#endif
