/*
 * connectors/ldif_filter.h: an LDAP search filter (RFC 4515) evaluated on an entry, for
 * sources without a server to search (the LDIF source reads users.filter and groups.filter
 * itself). AND, OR, NOT, equality, presence, substrings, >=, <= and ~= (as equality);
 * values compared case-insensitively (caseIgnoreMatch, what the attributes a migration
 * filters on use), DN-shaped values as normalised DNs, numbers as numbers for >= and <=.
 * Extensible matches (":=") are refused when the filter is compiled.
 *
 * Call order: ldif_filter_compile -> ldif_filter_match* -> ldif_filter_free.
 */
#ifndef DM_LDIF_FILTER_H
#define DM_LDIF_FILTER_H

#include "agent/util/err.h"
#include "schema/entry.h"

struct ldif_filter;

/* Compiles s (NULL or "" = match everything). DM_EINVAL names the byte offset. */
int ldif_filter_compile(struct ldif_filter **out, const char *s, struct dm_err *err) DM_MUST_USE;

/* 1 when e matches. */
int ldif_filter_match(const struct ldif_filter *f, const struct entry *e);

void ldif_filter_free(struct ldif_filter *f); /* NULL-safe */

#endif
