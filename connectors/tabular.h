/*
 * connectors/tabular.h: the mapped users as a file for other tools, connector types "csv"
 * (RFC 4180) and "jsonl" (one JSON object per line). Targets only, users only (no groups:
 * CONN_GROUPS is not set, so the pipeline leaves them out and says so), written whole by
 * every run like the LDIF target (CONN_SNAPSHOT, connectors/fileout.h: the file appears
 * at the end of a successful run, mode 0600).
 *
 *   csv    a header line, then one row per user: the columns of target.columns ("dn" is the
 *          user's DN, moved to target.base when one is set); several values joined with
 *          target.value_separator; fields with a comma, quote, CR or LF quoted, quotes
 *          doubled; a value that is not UTF-8 written as base64 with a "base64:" prefix
 *   jsonl  {"dn": "...", "attr": "value" | ["v1", "v2"], ...} per user, in the map's
 *          attribute order; a value that is not UTF-8 as {"base64": "..."}
 */
#ifndef DM_TABULAR_H
#define DM_TABULAR_H

#include "connectors/connector.h"

extern const struct conn_ops conn_csv_ops;
extern const struct conn_ops conn_jsonl_ops;

#endif
