/*
 * arena.h: region allocation for memory that lives and dies together (one entry, one rule's
 * scratch values).
 *
 * An arena hands out pieces of a few large blocks and frees them all at once: no per-piece
 * free(), no per-piece header, neighbours in memory. Call order: arena_init() (optionally
 * with a first region the caller owns: a stack buffer, or the tail of a larger malloc), then
 * arena_alloc() / arena_grow() any number of times, arena_reset() to start over while keeping
 * the first region, and arena_clear() at the end. An arena belongs to one thread at a time.
 *
 * Blocks after the first come from malloc(), doubling from 4 KiB up to 64 KiB; a request
 * larger than a quarter of the block size gets a block of its own, which arena_grow() can
 * realloc() in place (a million-value array grows without copying the arena around it).
 * Every piece is aligned for any object (16 bytes).
 *
 * Ownership: the arena owns every piece it returned; they are valid until arena_reset() or
 * arena_clear(). The first region stays the caller's. Nothing is zeroed or wiped: a caller
 * that stores secrets wipes them before the reset (schema/entry.c does, for passwords).
 */
#ifndef DM_ARENA_H
#define DM_ARENA_H

#include <stddef.h>
#include <string.h>
#include "attrs.h"

struct arena_block; /* a malloc()ed block; private to arena.c */

struct arena {
    unsigned char *cur, *end;   /* free space of the current region */
    unsigned char *last;        /* the newest piece (arena_grow() extends it in place) */
    unsigned char *first;       /* the caller's first region, or NULL */
    size_t first_len;           /* its usable length */
    struct arena_block *blocks; /* blocks from malloc(), newest first */
    struct arena_block *bigs;   /* blocks of one piece each (large requests) */
    size_t next_size;           /* size of the next ordinary block */
};

#define ARENA_ALIGN 16
#define ARENA_MAX_PIECE ((size_t)1 << 40) /* larger requests fail as out of memory */

/* Prepares a (which needs no clean-up before). first (may be NULL) is a region of len bytes
 * used before any malloc(); it must outlive the arena's use and is never freed by it. */
void arena_init(struct arena *a, void *first, size_t len);

/* arena_alloc() when the current region has no room (not for direct use). */
void *arena_alloc_slow(struct arena *a, size_t n);

/* n bytes (n may be 0), aligned to ARENA_ALIGN, uninitialised. NULL when out of memory.
 * Inline: the common case is a bump of the cursor. */
static inline void *arena_alloc(struct arena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    unsigned char *p = a->cur;

    if (n - 1 < (size_t)(a->end - p) && need <= (size_t)(a->end - p)) {
        /* n - 1 wraps for n == 0, which the slow path serves */
        a->cur = p + need;
        a->last = p;
        return p;
    }
    return arena_alloc_slow(a, n);
}

/* A copy of n bytes of p plus a terminating NUL. NULL when out of memory. */
static inline char *arena_memdup(struct arena *a, const void *p, size_t n)
{
    char *d = n < ARENA_MAX_PIECE ? arena_alloc(a, n + 1) : NULL;

    if (d == NULL) {
        return NULL;
    }
    if (n > 0) {
        memcpy(d, p, n);
    }
    d[n] = '\0';
    return d;
}

/* As realloc(): p (from this arena, oldn bytes, or NULL) made newn bytes long, moved when it
 * cannot grow where it is (the old piece is then abandoned until the reset). Extends in place
 * when p is the newest piece and the region has room, or p has a block of its own. The
 * content up to min(oldn, newn) is kept. NULL when out of memory (p is left as it was). */
void *arena_grow(struct arena *a, void *p, size_t oldn, size_t newn);

/* Overwrites with zeros (explicit_bzero) every piece handed out since the last reset: for an
 * arena that held secrets, before arena_reset(). */
void arena_wipe(struct arena *a);

/* Forgets every piece: frees the blocks from malloc(), keeps the first region. */
void arena_reset(struct arena *a);

/* arena_reset(), and the first region is forgotten too; a may be arena_init()ed again. */
void arena_clear(struct arena *a);

/* Bytes taken from malloc() by the arena now (blocks, not the first region). */
size_t arena_heap_bytes(const struct arena *a);

#endif
