#include <config.h>
#include "agent/util/html.h"

size_t html_utf8_seq(const unsigned char *s, unsigned long *cp)
{
    unsigned long c = s[0], min;
    size_t len;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        c &= 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        c &= 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) { /* also stops at the terminating NUL */
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }
    *cp = c;
    return len;
}

/* Characters that reorder the text around them (Trojan Source, CVE-2021-42574): a DN
 * holding one could make a row read as something else. */
static int is_bidi_control(unsigned long cp)
{
    return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
           cp == 0x200f || cp == 0x061c;
}

void html_escape(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");

    while (*p != '\0') {
        unsigned long cp = 0;
        size_t n = html_utf8_seq(p, &cp);

        if (n == 0 || (cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0x7f ||
            (cp >= 0x80 && cp < 0xa0) || is_bidi_control(cp)) {
            fputs("\xef\xbf\xbd", out); /* U+FFFD */
            p += n == 0 ? 1 : n;
            continue;
        }
        switch (cp) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            fwrite(p, 1, n, out);
        }
        p += n;
    }
}
