/*
 * hash64.h: a keyed 64-bit hash for in-memory comparisons (SipHash-2-4, Aumasson and
 * Bernstein, "SipHash: a fast short-input PRF", 2012).
 *
 * The planner compares what the target holds with what the map produces through 64-bit
 * hashes of attribute names and values, so that the target's values never have to stay in
 * memory. The key is drawn from getrandom(2) once per process (hash64_init(), idempotent and
 * thread-safe), so nobody who controls directory data can craft two values that collide;
 * hashes are never stored or shown, and they differ between processes.
 */
#ifndef DM_HASH64_H
#define DM_HASH64_H

#include <stddef.h>
#include <stdint.h>

/* Draws the process key (once; later calls do nothing). */
void hash64_init(void);

/* SipHash-2-4 of len bytes under the process key (hash64_init() is called if needed). */
uint64_t hash64(const void *data, size_t len);

/* The same hash of data with ASCII letters folded to lower case (attribute names, logins). */
uint64_t hash64_lower(const void *data, size_t len);

#endif
