#include <config.h>
#include "agent/util/hash64.h"
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static uint64_t k0, k1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void draw_key(void)
{
    uint64_t k[2];

    if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
        /* no entropy source: still a fixed-per-process key, only the collision resistance
         * against crafted data is weaker */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
        k[1] = (uint64_t)(uintptr_t)&ts * 0xc2b2ae3d27d4eb4fULL;
    }
    k0 = k[0];
    k1 = k[1];
}

void hash64_init(void)
{
    pthread_once(&once, draw_key);
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static inline unsigned char fold(unsigned char c, int lower)
{
    return lower && c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static uint64_t siphash(const unsigned char *p, size_t len, int lower)
{
    uint64_t v0, v1, v2, v3, b = (uint64_t)len << 56, m;
    size_t i = 0;

    hash64_init(); /* before the key is read */
    v0 = 0x736f6d6570736575ULL ^ k0;
    v1 = 0x646f72616e646f6dULL ^ k1;
    v2 = 0x6c7967656e657261ULL ^ k0;
    v3 = 0x7465646279746573ULL ^ k1;
    for (; i + 8 <= len; i += 8) {
        m = 0;
        for (int j = 0; j < 8; j++) {
            m |= (uint64_t)fold(p[i + (size_t)j], lower) << (8 * j);
        }
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (int j = 0; i < len; i++, j++) {
        b |= (uint64_t)fold(p[i], lower) << (8 * j);
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t hash64(const void *data, size_t len)
{
    return siphash(data, len, 0);
}

uint64_t hash64_lower(const void *data, size_t len)
{
    return siphash(data, len, 1);
}
