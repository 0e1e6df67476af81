/*
 * buf.h: growable byte buffer with a hard cap (a group can have a million members).
 *
 * struct buf { data, len, cap_limit }: append bytes or printf output; every append fails
 * with DM_ELIMIT once len would pass the cap given to buf_init(), so a hostile or huge
 * input cannot grow memory without bound. data is always NUL-terminated (when non-NULL).
 */
#ifndef DM_BUF_H
#define DM_BUF_H

#include <stddef.h>
#include "attrs.h"

struct buf {
    char *data;
    size_t len;
    size_t alloc;
    size_t limit; /* hard cap on len */
};

/* Initialises an empty buffer capped at limit bytes (0 = 64 MiB). */
void buf_init(struct buf *b, size_t limit);
int buf_append(struct buf *b, const void *p, size_t n) DM_MUST_USE;
int buf_puts(struct buf *b, const char *s) DM_MUST_USE;
int buf_printf(struct buf *b, const char *fmt, ...) DM_PRINTF(2, 3) DM_MUST_USE;
void buf_reset(struct buf *b); /* len = 0, keeps memory */
void buf_free(struct buf *b);  /* frees memory, buffer reusable after buf_init */
/* Returns the data (caller frees with free()) and leaves b empty. */
char *buf_steal(struct buf *b);

#endif
