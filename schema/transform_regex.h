/*
 * transform_regex.h: the regex matcher of the map language's "regex" step: one POSIX
 * extended regular expression compiled by regcomp(), plus, for simple patterns, a second
 * compiled form that finds the same matches without regexec().
 *
 * Call order: transform_regex_compile() once (at map load), transform_regex_exec() per
 * subject (the compiled regex is read-only then and may be shared by threads; glibc's
 * regexec() takes a lock per regex_t, the fast form none), transform_regex_clear() at the
 * end. The fast form is an optimisation only: transform_regex_exec() returns exactly what
 * regexec() returns, match offsets and groups included (leftmost-longest, POSIX).
 */
#ifndef DM_TRANSFORM_REGEX_H
#define DM_TRANSFORM_REGEX_H

#include <regex.h>
#include <stddef.h>
#include "agent/util/attrs.h"

struct transform_fastre; /* the fast form; private to transform_regex.c */

/* One compiled expression. Zeroed memory is a valid "nothing compiled" state. */
struct transform_regex {
    regex_t re;
    int compiled;                  /* re holds a regcomp() result */
    struct transform_fastre *fast; /* the fast form for simple patterns, or NULL */
};

/* Compiles pattern (REG_EXTENDED) into *out, which is cleared first. On a bad pattern
 * returns DM_EINVAL and writes a one-line reason (`bad regular expression "P": why`, no
 * position) to why; *out then holds nothing to free. */
int transform_regex_compile(struct transform_regex *out, const char *pattern, char *why,
                            size_t whylen) DM_MUST_USE;

/* Number of parenthesised groups of the expression (regex_t.re_nsub). */
size_t transform_regex_ngroups(const struct transform_regex *r);

/* As regexec(&r->re, subj, ng + 1, pm, notbol ? REG_NOTBOL : 0) on the NUL-terminated
 * subj: 0 on a match (pm[0..ng] set), REG_NOMATCH otherwise. ng <= 9. */
int transform_regex_exec(const struct transform_regex *r, const char *subj, size_t ng,
                         regmatch_t *pm, int notbol);

/* 1 when r uses the fast form (for tests and benchmarks). */
int transform_regex_is_fast(const struct transform_regex *r);

/* Frees what r holds and zeroes it; NULL-safe. */
void transform_regex_clear(struct transform_regex *r);

#endif
