/*
 * map_nset.c: the case-insensitive attribute-name sets of a compiled section (struct
 * map_nset in map_priv.h): built once by map_compile.c, looked up per entry by map_apply.c.
 */
#include <config.h>
#include "schema/map_priv.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over the ASCII-lowercased name: the hash every dm_attr carries (entry_name_hash()), so
 * that map_input_index() needs no hashing per entry. */
static uint32_t ci_hash(const char *name, size_t len)
{
    return entry_name_hash(name, len);
}

/* 1 when a and b (len bytes each) are equal ignoring ASCII case. */
static int ci_equal(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

        if (x != y) {
            x = x >= 'A' && x <= 'Z' ? (unsigned char)(x - 'A' + 'a') : x;
            y = y >= 'A' && y <= 'Z' ? (unsigned char)(y - 'A' + 'a') : y;
            if (x != y) {
                return 0;
            }
        }
    }
    return 1;
}

/* Index of name (len bytes, hash h from entry_name_hash()) in ns, or -1. */
long map_nset_find_h(const struct map_nset *ns, const char *name, size_t len, uint32_t hash)
{
    if (ns->mask == 0) {
        return -1;
    }
    for (size_t h = hash & ns->mask; ns->tab[h] != 0; h = (h + 1) & ns->mask) {
        size_t at = ns->tab[h] - 1;

        if (ns->lens[at] == len && ci_equal(ns->names[at], name, len)) {
            return (long)at;
        }
    }
    return -1;
}

long map_nset_find_attr(const struct map_nset *ns, const struct dm_attr *a)
{
    size_t len = (size_t)-1;

    if (ns->mask == 0) {
        return -1;
    }
    for (size_t h = a->hash & ns->mask; ns->tab[h] != 0; h = (h + 1) & ns->mask) {
        size_t at = ns->tab[h] - 1;

        /* both interned: the same spelling is the same pointer */
        if (ns->names[at] == a->name) {
            return (long)at;
        }
        if (len == (size_t)-1) {
            len = strlen(a->name);
        }
        if (ns->lens[at] == len && ci_equal(ns->names[at], a->name, len)) {
            return (long)at;
        }
    }
    return -1;
}

/* Index of name (len bytes) in ns, or -1. */
long map_nset_find(const struct map_nset *ns, const char *name, size_t len)
{
    if (ns->mask == 0) {
        return -1;
    }
    return map_nset_find_h(ns, name, len, ci_hash(name, len));
}

/* Makes room for max names (call once before map_nset_add). */
int map_nset_init(struct map_nset *ns, size_t max)
{
    size_t size = 8;

    while (size < 2 * max + 2) {
        size *= 2;
    }
    ns->names = calloc(max + 1, sizeof(*ns->names));
    ns->base_ok = calloc(max + 1, 1);
    ns->lens = calloc(max + 1, sizeof(*ns->lens));
    ns->tab = calloc(size, sizeof(*ns->tab));
    if (ns->names == NULL || ns->base_ok == NULL || ns->lens == NULL || ns->tab == NULL) {
        return DM_ENOMEM;
    }
    ns->mask = size - 1;
    return DM_OK;
}

/* Adds name (borrowed) unless present; returns its index. */
size_t map_nset_add(struct map_nset *ns, const char *name, int base_ok)
{
    long at = map_nset_find(ns, name, strlen(name));
    struct entry_name en;
    size_t h;

    if (at >= 0) {
        ns->base_ok[at] |= (unsigned char)base_ok;
        return (size_t)at;
    }
    for (h = ci_hash(name, strlen(name)) & ns->mask; ns->tab[h] != 0; h = (h + 1) & ns->mask) {
    }
    /* the interned copy when there is one (it lives longer than the map), so that
     * map_nset_find_attr() mostly compares pointers */
    entry_name_init(&en, name);
    ns->names[ns->n] = en.name;
    ns->lens[ns->n] = strlen(name);
    ns->base_ok[ns->n] = (unsigned char)base_ok;
    ns->tab[h] = (uint32_t)(ns->n + 1);
    return ns->n++;
}
