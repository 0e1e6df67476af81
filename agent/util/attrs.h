/*
 * attrs.h: compiler attribute macros used across dirmig.
 *
 * DM_PRINTF(f, a) marks printf-like functions; DM_MUST_USE marks functions whose
 * return code (an enum dm_rc) must be checked; DM_STATIC is `static` in normal builds
 * and empty in unit-test builds (-DDM_UNIT_TEST) so tests can reach file-local helpers.
 */
#ifndef DM_ATTRS_H
#define DM_ATTRS_H

#define DM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DM_MUST_USE __attribute__((warn_unused_result))
#define DM_UNUSED __attribute__((unused))
#ifdef DM_UNIT_TEST
#define DM_STATIC
#else
#define DM_STATIC static
#endif
#define DM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
