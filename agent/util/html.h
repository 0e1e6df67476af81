/*
 * html.h: text into HTML, safely.
 *
 * html_escape() writes any byte string as HTML text or attribute value: the five markup
 * characters as entities, and whatever could not be shown as intended (invalid UTF-8,
 * control characters, the bidirectional overrides of CVE-2021-42574) as U+FFFD. Used by
 * the HTML report (agent/report_html.h) for every string it did not write itself.
 */
#ifndef DM_HTML_H
#define DM_HTML_H

#include <stddef.h>
#include <stdio.h>

/* Writes s (NUL-terminated; NULL writes nothing) escaped to out. */
void html_escape(FILE *out, const char *s);

/* Length (1..4) of the well-formed UTF-8 sequence at s (RFC 3629: no overlong form, no
 * surrogate, nothing above U+10FFFF), 0 when s does not start with one; *cp is its code
 * point. Reads no further than a NUL. */
size_t html_utf8_seq(const unsigned char *s, unsigned long *cp);

#endif
