/*
 * transform_ad.h: the Active Directory binary codecs of the map language: objectGUID and
 * objectSid as text (the "guid" and "sid" steps, and the AD connector's correlation key).
 *
 * Pure functions on bytes, no state, usable on their own. AD's FILETIME is a date format
 * and lives with the other dates in transform_date.h.
 */
#ifndef DM_TRANSFORM_AD_H
#define DM_TRANSFORM_AD_H

#include <stddef.h>
#include "agent/util/err.h"

/* objectGUID bytes (16) -> 36-char lowercase canonical string + NUL (MS-DTYP 2.3.4.2: the
 * first three fields little-endian). DM_EINVAL when n != 16. */
int transform_guid_to_string(char out[37], const unsigned char *b, size_t n) DM_MUST_USE;

/* objectSid bytes -> "S-1-5-21-..." (MS-DTYP 2.4.2.1; authority >= 2^32 as 0x + 12 hex).
 * DM_EINVAL on a malformed SID or when out (outlen bytes) is too small (192 always fits). */
int transform_sid_to_string(char *out, size_t outlen, const unsigned char *b, size_t n) DM_MUST_USE;

#endif
