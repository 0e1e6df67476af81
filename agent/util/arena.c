#include <config.h>
#include "agent/util/arena.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A block from malloc(): this header, then its pieces. The header is ARENA_ALIGN bytes so
 * that the first piece is aligned as malloc() aligns the block. */
struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes after the header */
};

#define HDR ((sizeof(struct arena_block) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))
#define MIN_BLOCK ((size_t)4096)
#define MAX_BLOCK ((size_t)65536)
#define BIG_PIECE ((size_t)4096) /* larger pieces get a block of their own */

static size_t round_up(size_t n)
{
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

static unsigned char *block_data(struct arena_block *b)
{
    return (unsigned char *)b + HDR;
}

/* The first aligned address at or after p. */
static unsigned char *align_ptr(unsigned char *p)
{
    uintptr_t u = (uintptr_t)p;

    return p + (((u + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1)) - u);
}

void arena_init(struct arena *a, void *first, size_t len)
{
    memset(a, 0, sizeof(*a));
    a->next_size = MIN_BLOCK;
    if (first != NULL && len >= ARENA_ALIGN) {
        unsigned char *p = align_ptr(first);

        a->first = p;
        a->first_len = len - (size_t)(p - (unsigned char *)first);
        a->cur = a->first;
        a->end = a->first + a->first_len;
    }
}

/* A piece of its own for a large request, pushed on a->bigs. */
static void *big_alloc(struct arena *a, size_t n)
{
    struct arena_block *b = malloc(HDR + n);

    if (b == NULL) {
        return NULL;
    }
    b->size = n;
    b->next = a->bigs;
    a->bigs = b;
    return block_data(b);
}

void *arena_alloc_slow(struct arena *a, size_t n)
{
    size_t need = round_up(n > 0 ? n : 1); /* a distinct, non-NULL piece even for 0 */
    struct arena_block *b;
    unsigned char *p;

    if (n > ARENA_MAX_PIECE) {
        return NULL;
    }
    if (need <= (size_t)(a->end - a->cur)) {
        p = a->cur;
        a->cur += need;
        a->last = p;
        return p;
    }
    if (n > BIG_PIECE) {
        return big_alloc(a, n);
    }
    b = malloc(HDR + a->next_size);
    if (b == NULL) {
        return NULL;
    }
    b->size = a->next_size;
    b->next = a->blocks;
    a->blocks = b;
    if (a->next_size < MAX_BLOCK) {
        a->next_size *= 2;
    }
    p = block_data(b);
    a->cur = p + need;
    a->end = p + b->size;
    a->last = p;
    return p;
}

void *arena_grow(struct arena *a, void *p, size_t oldn, size_t newn)
{
    unsigned char *q = p, *r;

    if (p == NULL) {
        return arena_alloc(a, newn);
    }
    if (newn > ARENA_MAX_PIECE) {
        return NULL;
    }
    /* the newest piece of the current region: move the cursor */
    if (q == a->last && round_up(newn) <= (size_t)(a->end - q)) {
        a->cur = q + round_up(newn);
        return q;
    }
    /* a piece with a block of its own: realloc() the block and relink it */
    for (struct arena_block **link = &a->bigs; *link != NULL; link = &(*link)->next) {
        if (block_data(*link) == q) {
            struct arena_block *nb = realloc(*link, HDR + newn);

            if (nb == NULL) {
                return NULL;
            }
            nb->size = newn;
            *link = nb;
            return block_data(nb);
        }
    }
    if (newn <= oldn) {
        return p;
    }
    r = arena_alloc(a, newn);
    if (r != NULL && oldn > 0) {
        memcpy(r, q, oldn);
    }
    return r;
}

void arena_wipe(struct arena *a)
{
    /* the first region up to the cursor when it is still current, else all of it */
    if (a->first != NULL) {
        int current = a->cur >= a->first && a->cur <= a->first + a->first_len;

        explicit_bzero(a->first, current ? (size_t)(a->cur - a->first) : a->first_len);
    }
    for (struct arena_block *b = a->blocks; b != NULL; b = b->next) {
        explicit_bzero(block_data(b), b->size);
    }
    for (struct arena_block *b = a->bigs; b != NULL; b = b->next) {
        explicit_bzero(block_data(b), b->size);
    }
}

static void free_list(struct arena_block *b)
{
    while (b != NULL) {
        struct arena_block *next = b->next;

        free(b);
        b = next;
    }
}

void arena_reset(struct arena *a)
{
    if (a->blocks == NULL && a->bigs == NULL) {
        /* the common case: everything fitted in the first region */
        a->cur = a->first;
        a->last = NULL;
        return;
    }
    free_list(a->blocks);
    free_list(a->bigs);
    a->blocks = NULL;
    a->bigs = NULL;
    a->last = NULL;
    a->next_size = MIN_BLOCK;
    a->cur = a->first;
    a->end = a->first != NULL ? a->first + a->first_len : NULL;
}

void arena_clear(struct arena *a)
{
    if (a == NULL) {
        return;
    }
    arena_reset(a);
    memset(a, 0, sizeof(*a));
    a->next_size = MIN_BLOCK;
}

size_t arena_heap_bytes(const struct arena *a)
{
    size_t n = 0;

    for (const struct arena_block *b = a->blocks; b != NULL; b = b->next) {
        n += HDR + b->size;
    }
    for (const struct arena_block *b = a->bigs; b != NULL; b = b->next) {
        n += HDR + b->size;
    }
    return n;
}
