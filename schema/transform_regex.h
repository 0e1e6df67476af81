/*
 * transform_regex.h: the one regular-expression engine of the map language: PCRE2
 * (libpcre2-8) with its JIT compiler, behind the "regex" transform (transform.h) and the
 * "pattern" constraint (validate.h). dirmig-map(5) documents the syntax for users.
 *
 * Syntax and semantics are PCRE2's (Perl-compatible): leftmost-first alternation, greedy and
 * lazy quantifiers, \d \w \s (ASCII), (?i) and the other inline options, look-around,
 * POSIX classes such as [[:alpha:]]. Patterns are compiled in UTF mode: "." and a class
 * match one character of a UTF-8 value, not one byte; a value that is not valid UTF-8 is
 * still matched (PCRE2_MATCH_INVALID_UTF: its invalid bytes match nothing). \d and \w stay
 * ASCII (no PCRE2_UCP), so "[0-9]" and "\d" are the same set.
 *
 * Call order: transform_regex_compile() once (at map load), transform_regex_exec() per
 * subject, transform_regex_clear() at the end. A compiled regex is read-only after compile
 * and may be shared by threads: each thread matches with match data of its own (kept per
 * thread, freed when the thread exits), so matching allocates nothing.
 */
#ifndef DM_TRANSFORM_REGEX_H
#define DM_TRANSFORM_REGEX_H

#include <stddef.h>
#include <stdint.h>
#include "agent/util/attrs.h"

/* One compiled expression. Zeroed memory is a valid "nothing compiled" state. */
struct transform_regex {
    void *code;     /* pcre2_code_8, or NULL */
    size_t ngroups; /* capture groups of the pattern */
    int jit;        /* 1 when the JIT compiled it (matching then runs machine code) */
    int whole;      /* compiled with TRANSFORM_REGEX_WHOLE */
};

/* The offsets of one match or group, in bytes from the start of the subject; so = -1 for a
 * group that did not take part in the match. */
struct transform_regex_match {
    ptrdiff_t so, eo;
};

#define TRANSFORM_REGEX_GROUPS 9 /* \1..\9: the groups a match reports */

/* flags for transform_regex_compile() */
#define TRANSFORM_REGEX_WHOLE 1u /* the match must span the whole subject ("pattern") */

/* Compiles pattern into *out, which is cleared first. On a bad pattern returns DM_EINVAL and
 * writes a one-line reason (`bad regular expression "P": why at offset N`) to why; *out then
 * holds nothing to free. DM_ENOMEM when out of memory. */
int transform_regex_compile(struct transform_regex *out, const char *pattern, unsigned flags,
                            char *why, size_t whylen) DM_MUST_USE;

/* Number of capture groups of the expression. */
size_t transform_regex_ngroups(const struct transform_regex *r);

/* Looks for the first match in subj (len bytes, NULs allowed) starting at byte offset start
 * (text before start is seen by look-behind, and "^" does not match at start > 0). 0 on a
 * match, with pm[0] the match and pm[1..ng] the first ng groups (ng <= TRANSFORM_REGEX_GROUPS;
 * offsets from subj); 1 when there is none. A subject on which the pattern runs into PCRE2's
 * match limit (catastrophic backtracking) or a resource error counts as not matching; -1 is
 * returned only when there is no memory for the match data. */
int transform_regex_exec(const struct transform_regex *r, const char *subj, size_t len,
                         size_t start, size_t ng, struct transform_regex_match *pm);

/* 1 when r was JIT-compiled (for tests and benchmarks). */
int transform_regex_is_jit(const struct transform_regex *r);

/* Frees what r holds and zeroes it; NULL-safe. */
void transform_regex_clear(struct transform_regex *r);

#endif
