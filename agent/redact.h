/*
 * redact.h: identities cut down for reports that leave the operator's hands.
 *
 * The HTML report (agent/report_html.h) is meant to be shared: its problem examples
 * show which kind of entry failed and why, not who. redact_identity() keeps the shape of
 * an identity and its first character ("uid=a***,ou=people,dc=example,dc=org", "a***");
 * redact_text() does the same to every identity a message names. The validation export
 * and the log keep the full names for the operator.
 *
 * Both append to a struct buf (agent/util/buf.h) and return DM_OK, or DM_ELIMIT/DM_ENOMEM
 * from the buffer.
 */
#ifndef DM_REDACT_H
#define DM_REDACT_H

#include "agent/util/buf.h"
#include "agent/util/err.h"

/* Appends s masked: for a DN (its first RDN an attribute type, '=' and a value), each
 * value of the first RDN is cut to its first character and "***" and the rest is kept;
 * any other string is cut the same way. A first character that is a DN escape or quote
 * is left out ("***"). NULL or "" appends nothing. */
int redact_identity(struct buf *b, const char *s) DM_MUST_USE;

/* Appends msg with the identities it names masked: every occurrence of dn, of key and of
 * the value of dn's first RDN (each at least 3 bytes), the DN in every dn="..." and any
 * other DN of two RDNs or more ("uid=x,ou=people,..."). dn and key may be NULL. */
int redact_text(struct buf *b, const char *msg, const char *key, const char *dn) DM_MUST_USE;

#endif
