#include <config.h>
#include "schema/transform_regex.h"
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent/util/err.h"

/* What a match needs besides the pattern, kept per thread: the match data (the ovector;
 * pcre2_match() needs one per call, and creating it is a malloc()) and, for JIT code, a JIT
 * stack of its own in a match context (without one, every pcre2_jit_match() sets up a
 * 32 KiB stack on the C stack first: a third of the cost of a short match). The pointer
 * sits in a __thread variable (static TLS, which leak checkers scan) and is registered with
 * a pthread key whose destructor frees it when a thread ends; the main thread's lives until
 * exit. 10 pairs: the match and \1..\9 (a pattern with more groups still matches;
 * pcre2_match() then returns 0 and fills the first 10). */
#define MD_PAIRS (TRANSFORM_REGEX_GROUPS + 1)
#define JIT_STACK_MIN (32 * 1024)
#define JIT_STACK_MAX (512 * 1024) /* what a pattern may use before PCRE2 gives up */

struct rx_thread {
    pcre2_match_data *md;
    pcre2_match_context *mctx; /* with the JIT stack; NULL: use the default stack */
    pcre2_jit_stack *jstack;
};

static __thread struct rx_thread *rx_tls;
static pthread_key_t rx_key;
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;
static int rx_key_ok;

static void rx_thread_free(void *p)
{
    struct rx_thread *t = p;

    if (t == NULL) {
        return;
    }
    pcre2_match_data_free(t->md);
    pcre2_match_context_free(t->mctx);
    pcre2_jit_stack_free(t->jstack);
    free(t);
    rx_tls = NULL;
}

static void rx_key_init(void)
{
    rx_key_ok = pthread_key_create(&rx_key, rx_thread_free) == 0;
}

static struct rx_thread *rx_get(void)
{
    struct rx_thread *t = rx_tls;

    if (t != NULL) {
        return t;
    }
    pthread_once(&rx_once, rx_key_init);
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->md = pcre2_match_data_create(MD_PAIRS, NULL);
    if (t->md == NULL) {
        free(t);
        return NULL;
    }
    /* the JIT stack is an optimisation: without it the default stack is used */
    t->mctx = pcre2_match_context_create(NULL);
    t->jstack = pcre2_jit_stack_create(JIT_STACK_MIN, JIT_STACK_MAX, NULL);
    if (t->mctx != NULL && t->jstack != NULL) {
        pcre2_jit_stack_assign(t->mctx, NULL, t->jstack);
    } else {
        pcre2_match_context_free(t->mctx);
        pcre2_jit_stack_free(t->jstack);
        t->mctx = NULL;
        t->jstack = NULL;
    }
    if (rx_key_ok) {
        (void)pthread_setspecific(rx_key, t);
    }
    rx_tls = t;
    return t;
}

int transform_regex_compile(struct transform_regex *out, const char *pattern, unsigned flags,
                            char *why, size_t whylen)
{
    /* UTF mode, invalid UTF-8 subjects allowed (binary values pass through the map) */
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    uint32_t ng = 0;
    pcre2_code *code;

    memset(out, 0, sizeof(*out));
    if (flags & TRANSFORM_REGEX_WHOLE) {
        opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
    }
    code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &errcode, &erroff, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[160];

        if (errcode == PCRE2_ERROR_NOMEMORY) {
            return DM_ENOMEM;
        }
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0) {
            snprintf((char *)msg, sizeof(msg), "error %d", errcode);
        }
        snprintf(why, whylen, "bad regular expression \"%.60s\": %s at offset %zu", pattern,
                 (const char *)msg, (size_t)erroff);
        return DM_EINVAL;
    }
    (void)pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &ng);
    /* JIT when the platform has it; without it pcre2_match() interprets the same code */
    out->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    out->code = code;
    out->ngroups = ng;
    out->whole = (flags & TRANSFORM_REGEX_WHOLE) != 0;
    return DM_OK;
}

size_t transform_regex_ngroups(const struct transform_regex *r)
{
    return r->ngroups;
}

int transform_regex_exec(const struct transform_regex *r, const char *subj, size_t len,
                         size_t start, size_t ng, struct transform_regex_match *pm)
{
    struct rx_thread *t = rx_get();
    const PCRE2_SIZE *ov;
    int rc;

    if (t == NULL) {
        return -1;
    }
    if (r->jit) {
        rc = pcre2_jit_match(r->code, (PCRE2_SPTR)subj, len, start, 0, t->md, t->mctx);
    } else {
        rc = pcre2_match(r->code, (PCRE2_SPTR)subj, len, start, 0, t->md, NULL);
    }
    if (rc < 0) {
        /* PCRE2_ERROR_NOMATCH, or a limit / resource error: no match either way */
        return 1;
    }
    ov = pcre2_get_ovector_pointer(t->md);
    if (ng > TRANSFORM_REGEX_GROUPS) {
        ng = TRANSFORM_REGEX_GROUPS;
    }
    for (size_t g = 0; g <= ng; g++) {
        /* a group beyond the pattern's count or unset has PCRE2_UNSET offsets */
        if (g > r->ngroups || ov[2 * g] == PCRE2_UNSET) {
            pm[g].so = pm[g].eo = -1;
        } else {
            pm[g].so = (ptrdiff_t)ov[2 * g];
            pm[g].eo = (ptrdiff_t)ov[2 * g + 1];
        }
    }
    return 0;
}

int transform_regex_is_jit(const struct transform_regex *r)
{
    return r->jit;
}

void transform_regex_clear(struct transform_regex *r)
{
    if (r == NULL) {
        return;
    }
    pcre2_code_free(r->code);
    memset(r, 0, sizeof(*r));
}
