/*
 * connectors/ldif_parse.h: a streaming reader of LDIF content records (RFC 2849), as
 * slapcat and ldapsearch -LLL write them: folded lines (a line that starts with one space
 * continues the previous one), base64 values ("attr:: ..."), comments ('#' lines, folded
 * too), an optional "version: 1", and records without changetype or with "changetype: add".
 * One record is in memory at a time (memory stays flat whatever the file's size); a record
 * larger than LDIF_MAX_RECORD bytes is refused.
 *
 * Bad input is an error naming the place, "dump.ldif:1234: ..." (the line where the record
 * or the bad line starts), never a record silently skipped or cut: change records (modify,
 * delete, modrdn), URL values ("attr:< file://"), controls, a line without a colon, bad
 * base64, an attribute before the dn.
 *
 * Call order: ldif_reader_open -> ldif_reader_next* (until *out is NULL) ->
 * ldif_reader_rewind (optional, to read again) -> ldif_reader_free.
 */
#ifndef DM_LDIF_PARSE_H
#define DM_LDIF_PARSE_H

#include "agent/util/err.h"
#include "schema/entry.h"

#define LDIF_MAX_RECORD (256UL << 20)

struct ldif_reader;

/* Opens path for reading. DM_ENOTFOUND when it does not exist, DM_EINVAL when it cannot be
 * read. Returns a new reader; free with ldif_reader_free(). */
int ldif_reader_open(struct ldif_reader **out, const char *path, struct dm_err *err) DM_MUST_USE;

/* The next record as a new entry (caller frees with entry_free()), or *out NULL at the end
 * of the file. DM_EINVAL with "path:line: ..." for bad input (err->dn names the record's DN
 * when it was read). */
int ldif_reader_next(struct entry **out, struct ldif_reader *r, struct dm_err *err) DM_MUST_USE;

/* The line where the last record returned starts. */
long ldif_reader_line(const struct ldif_reader *r);

/* Starts again from the beginning of the file. */
int ldif_reader_rewind(struct ldif_reader *r, struct dm_err *err) DM_MUST_USE;

void ldif_reader_free(struct ldif_reader *r); /* NULL-safe */

/* Standard base64 (RFC 4648 §4, padding optional, whitespace not allowed) into a new buffer
 * of *outlen bytes plus a NUL; -1 when s is not base64, -2 when out of memory. */
int ldif_b64_decode(unsigned char **out, size_t *outlen, const char *s, size_t len);

#endif
