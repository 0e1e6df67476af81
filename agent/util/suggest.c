/*
 * agent/util/suggest.c: "did you mean" (suggest.h).
 */
#include <config.h>
#include "agent/util/suggest.h"
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define SUGGEST_MAX_LEN 63

size_t suggest_distance(const char *a, const char *b)
{
    size_t d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];
    size_t n = strlen(a), m = strlen(b);

    if (n > SUGGEST_MAX_LEN || m > SUGGEST_MAX_LEN) {
        return SIZE_MAX;
    }
    for (size_t i = 0; i <= n; i++) {
        d[i][0] = i;
    }
    for (size_t j = 0; j <= m; j++) {
        d[0][j] = j;
    }
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);

            if (d[i - 1][j] + 1 < best) {
                best = d[i - 1][j] + 1;
            }
            if (d[i][j - 1] + 1 < best) {
                best = d[i][j - 1] + 1;
            }
            /* two neighbours swapped: one edit */
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best) {
                best = d[i - 2][j - 2] + 1;
            }
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* The largest distance still taken for a typo of a word of n characters. */
static size_t tolerance(size_t n)
{
    return n <= 4 ? 1 : n <= 8 ? 2 : 3;
}

const char *suggest_closest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX, wlen = strlen(word);

    if (wlen == 0) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t d, clen;

        if (cands[i] == NULL || strcasecmp(cands[i], word) == 0) {
            continue;
        }
        d = suggest_distance(word, cands[i]);
        clen = strlen(cands[i]);
        if (d > 1 && wlen >= 3 &&
            (strncasecmp(cands[i], word, wlen) == 0 ||
             (clen >= 3 && strncasecmp(word, cands[i], clen) == 0))) {
            d = 1; /* a prefix either way: as good as one typo */
        }
        if (d <= tolerance(wlen) && d < best_d) {
            best = cands[i];
            best_d = d;
        }
    }
    return best;
}
