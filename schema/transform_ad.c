#include <config.h>
#include "schema/transform_ad.h"
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

int transform_guid_to_string(char out[37], const unsigned char *b, size_t n)
{
    if (n != 16) {
        return DM_EINVAL;
    }
    /* MS-DTYP 2.3.4.2: Data1..Data3 little-endian, Data4 in byte order */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[3],
             b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return DM_OK;
}

int transform_sid_to_string(char *out, size_t outlen, const unsigned char *b, size_t n)
{
    uint64_t auth = 0;
    size_t cnt, pos;
    int w;

    /* MS-DTYP 2.4.2.2: revision, sub-authority count (<= 15), 48-bit big-endian
     * authority, then count little-endian uint32 */
    if (n < 8 || b[0] != 1 || b[1] > 15 || n != 8 + 4 * (size_t)b[1]) {
        return DM_EINVAL;
    }
    cnt = b[1];
    for (int i = 2; i < 8; i++) {
        auth = (auth << 8) | b[i];
    }
    if (auth < ((uint64_t)1 << 32)) {
        w = snprintf(out, outlen, "S-%u-%" PRIu64, b[0], auth);
    } else {
        w = snprintf(out, outlen, "S-%u-0x%012" PRIX64, b[0], auth);
    }
    if (w < 0 || (size_t)w >= outlen) {
        return DM_EINVAL;
    }
    pos = (size_t)w;
    for (size_t i = 0; i < cnt; i++) {
        const unsigned char *p = b + 8 + 4 * i;
        uint32_t sub =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;

        w = snprintf(out + pos, outlen - pos, "-%" PRIu32, sub);
        if (w < 0 || (size_t)w >= outlen - pos) {
            return DM_EINVAL;
        }
        pos += (size_t)w;
    }
    return DM_OK;
}
