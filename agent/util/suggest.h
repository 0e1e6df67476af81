/*
 * suggest.h: "did you mean" for a mistyped name (a configuration key, a map key, a
 * transform, a command or an option).
 *
 * suggest_closest() compares the word with each candidate by the optimal string alignment
 * distance (Levenshtein plus the swap of two neighbours, "pgae" -> "page" is one edit),
 * ignoring ASCII case, and returns the closest candidate when it is close enough to be
 * what was meant: at most 1 edit for words of up to 4 characters, 2 up to 8, 3 beyond.
 * A candidate that starts with the word, or that the word starts with (3 characters or
 * more), counts as one edit away ("bind_pw" -> "bind_pw_file"). A candidate equal to the
 * word (case ignored) is not suggested. Ties go to the earlier candidate.
 */
#ifndef DM_SUGGEST_H
#define DM_SUGGEST_H

#include <stddef.h>

/* The candidate closest to word, or NULL when none is close enough. cands holds n
 * strings (NULL entries are skipped); the result is one of them (borrowed). */
const char *suggest_closest(const char *word, const char *const *cands, size_t n);

/* The optimal string alignment distance between a and b, ASCII case ignored; words
 * longer than 63 bytes compare as far apart (SIZE_MAX). */
size_t suggest_distance(const char *a, const char *b);

#endif
