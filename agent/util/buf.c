#include <config.h>
#include "buf.h"
#include "err.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->limit = limit ? limit : (size_t)64 << 20;
}

static int grow(struct buf *b, size_t need)
{
    size_t n;
    char *p;

    if (need > b->limit) {
        return DM_ELIMIT;
    }
    if (need + 1 <= b->alloc) {
        return DM_OK;
    }
    n = b->alloc ? b->alloc : 256;
    while (n < need + 1) {
        n *= 2;
    }
    p = realloc(b->data, n);
    if (p == NULL) {
        return DM_ENOMEM;
    }
    b->data = p;
    b->alloc = n;
    return DM_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int rc = grow(b, b->len + n);

    if (rc != DM_OK) {
        return rc;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return DM_OK;
}

int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return DM_EINTERNAL;
    }
    rc = grow(b, b->len + (size_t)n);
    if (rc != DM_OK) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return DM_OK;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

char *buf_steal(struct buf *b)
{
    char *p = b->data;

    if (p == NULL) {
        p = calloc(1, 1);
    }
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return p;
}
