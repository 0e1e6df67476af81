/*
 * dn.h: RFC 4514 distinguished names, without libldap (schema must not see LDAP types).
 *
 * dn_parse() splits a DN string into RDNs and each RDN into attribute-value assertions
 * (multi-valued RDNs joined by '+'), unescaping "\," "\+" "\\" "\XX" hex pairs and
 * "#hex" BER values (kept as the raw hex string). dn_normalize() gives a canonical form
 * for comparison: attribute types lowercased, values unescaped, ASCII-lowercased,
 * leading/trailing spaces removed, AVAs of a multi-valued RDN sorted, re-escaped per
 * RFC 4514. Two DNs name the same entry when their normal forms are equal (for the
 * case-insensitive attributes a directory DN uses).
 *
 * dn_rebase() moves a DN from one base (suffix) to another: the RDNs above the base are
 * kept byte-exact as written in the input; the matching suffix is replaced by the new
 * base string as given. dn_escape_value() escapes one attribute value for use in an RDN.
 *
 * All returned strings are new, freed by the caller with free().
 */
#ifndef DM_DN_H
#define DM_DN_H

#include <stddef.h>
#include "agent/util/err.h"

struct dn_ava {
    char *type;       /* as written (not lowercased) */
    char *value;      /* unescaped bytes + NUL */
    size_t value_len; /* values may contain NUL after unescaping \00 */
};

struct dn_rdn {
    size_t navas;
    struct dn_ava *avas;
    size_t start, end; /* byte offsets of this RDN in the original string */
};

struct dn {
    size_t nrdns; /* rdns[0] is the leftmost (most specific) RDN */
    struct dn_rdn *rdns;
};

/* Parses s. An empty string is the root DN (0 RDNs). Malformed input is DM_EINVAL with a
 * message naming the byte offset. Caller frees with dn_free(). */
int dn_parse(struct dn **out, const char *s, struct dm_err *err) DM_MUST_USE;
void dn_free(struct dn *d);

/* Canonical comparison form (see above). */
int dn_normalize(char **out, const char *s, struct dm_err *err) DM_MUST_USE;

/* 1 if dn equals base or lies under it (normalized comparison), else 0; -1 on parse error. */
int dn_is_under(const char *dn, const char *base);

/* If dn is at or under from_base, *out = dn with that suffix replaced by to_base and
 * DM_OK. If it is not under from_base: DM_ENOTFOUND (and *out untouched). */
int dn_rebase(char **out, const char *dn, const char *from_base, const char *to_base,
              struct dm_err *err) DM_MUST_USE;

/* RFC 4514 §2.4 escaping of one value: '"' '+' ',' ';' '<' '>' '\\' '=' , a leading
 * '#' or space, a trailing space, NUL and control bytes as \XX. UTF-8 is kept as is. */
int dn_escape_value(char **out, const char *v, size_t len, struct dm_err *err) DM_MUST_USE;

/* RFC 4515 §3 escaping of a filter assertion value: '*' '(' ')' '\\' NUL as \2a \28 \29
 * \5c \00, plus bytes < 0x20 and 0x7f. */
int dn_filter_escape(char **out, const char *v, size_t len, struct dm_err *err) DM_MUST_USE;

#endif
