/*
 * jsonpos.h: source positions of the keys and values of a JSON document.
 *
 * jansson reports line:column only for syntax errors; dirmig also reports semantic errors
 * (unknown key, wrong type, bad value) at their place in dirmig.json or a map file. A
 * jsonpos is built once from the raw text with a small scanner and answers "where is the
 * value at this key path". Paths join object keys with '.' and array indexes as "[i]":
 * "source.page_size", "waves[1].filter". The position of a path is that of its key's
 * opening quote (for array items: of the value). Lines and columns start at 1; columns
 * count bytes.
 */
#ifndef DM_JSONPOS_H
#define DM_JSONPOS_H

#include <stddef.h>
#include "attrs.h"
#include "err.h"

struct jsonpos;

/* Scans text (len bytes). A syntax error gives DM_EINVAL with line:col in the message;
 * callers normally parse with jansson first, so this is not expected. Caller frees with
 * jsonpos_free(). */
int jsonpos_build(struct jsonpos **out, const char *text, size_t len,
                  struct dm_err *err) DM_MUST_USE;

/* Position of path; returns 0 and sets line and col when found, -1 when not found (then
 * line and col are those of the nearest existing parent path, or 1:1). */
int jsonpos_find(const struct jsonpos *jp, const char *path, int *line, int *col);

void jsonpos_free(struct jsonpos *jp); /* NULL-safe */

/* Reads a JSON file of at most limit bytes, parses it with duplicate keys rejected
 * (a syntax error is DM_EINVAL "path:line:col: text"; a missing file DM_ENOTFOUND; a
 * larger one DM_ELIMIT) and builds its positions. *root is a new reference (json_decref);
 * *pos may be NULL when positions could not be built (they only improve messages); free
 * it with jsonpos_free(). */
struct json_t;
int jsonpos_load_file(struct json_t **root, struct jsonpos **pos, const char *path, size_t limit,
                      struct dm_err *err) DM_MUST_USE;

#endif
