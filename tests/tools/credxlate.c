/*
 * credxlate: translates userPassword values for the Okta import API (test tool).
 *
 *     credxlate [FILE]
 *
 * Reads "DN<TAB>userPassword-value" lines from FILE (default stdin; empty lines and lines
 * starting with '#' are skipped, a trailing CR is dropped) and prints one JSON object per
 * line to stdout:
 *     {"dn": ..., "scheme": ..., "outcome": "import"|"hook"|"locked"|"error",
 *      "hash": {...} or null, "reason": hook reason or null, "error": message or null}
 * The hash goes only to stdout, for the tests that feed it to tests/okta/okta_server.py;
 * nothing is logged. Exit status: 0 (per-user errors included), 2 usage or I/O error.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "connectors/okta_cred.h"
#include "schema/cred.h"

/* Translates one value and prints its JSON line. Returns 0, or -1 on a fatal error. */
static int one(const char *dn, const char *v, size_t len)
{
    struct cred *c = NULL;
    struct dm_err err;
    json_t *hash = NULL, *line;
    enum cred_outcome oc = CRED_HOOK;
    const char *reason = NULL, *outcome;
    char *s;
    int rc;

    dm_err_clear(&err);
    rc = cred_parse(&c, (const unsigned char *)v, len, &err);
    if (rc == DM_OK) {
        rc = okta_cred_hash(&hash, &oc, &reason, c, &err);
    }
    cred_free(c);
    if (rc == DM_ENOMEM || rc == DM_EINTERNAL) {
        fprintf(stderr, "credxlate: %s\n", err.msg);
        return -1;
    }
    outcome = rc != DM_OK         ? "error"
              : oc == CRED_IMPORT ? "import"
              : oc == CRED_LOCKED ? "locked"
                                  : "hook";
    line = json_pack("{s:s, s:s, s:s, s:o, s:s?, s:s?}", "dn", dn, "scheme",
                     cred_scheme((const unsigned char *)v, len), "outcome", outcome, "hash",
                     hash != NULL ? hash : json_null(), "reason", reason, "error",
                     rc != DM_OK ? err.msg : NULL);
    if (line == NULL) {
        fprintf(stderr, "credxlate: cannot build JSON for a line\n");
        return -1;
    }
    s = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (s == NULL) {
        return -1;
    }
    puts(s);
    free(s);
    return 0;
}

int main(int argc, char **argv)
{
    FILE *in = stdin;
    char *buf = NULL, *tab;
    size_t cap = 0;
    ssize_t n;
    int status = 0;

    if (argc > 2) {
        fprintf(stderr, "usage: credxlate [FILE]\n");
        return 2;
    }
    if (argc == 2) {
        in = fopen(argv[1], "r");
        if (in == NULL) {
            perror(argv[1]);
            return 2;
        }
    }
    while ((n = getline(&buf, &cap, in)) >= 0) {
        size_t len = (size_t)n;

        if (len > 0 && buf[len - 1] == '\n') {
            buf[--len] = '\0';
        }
        if (len > 0 && buf[len - 1] == '\r') {
            buf[--len] = '\0';
        }
        if (len == 0 || buf[0] == '#') {
            continue;
        }
        tab = memchr(buf, '\t', len);
        if (tab == NULL) {
            fprintf(stderr, "credxlate: a line without a TAB\n");
            status = 2;
            break;
        }
        *tab = '\0';
        if (one(buf, tab + 1, len - (size_t)(tab + 1 - buf)) != 0) {
            status = 2;
            break;
        }
    }
    if (buf != NULL) {
        explicit_bzero(buf, cap);
        free(buf);
    }
    if (in != stdin) {
        fclose(in);
    }
    if (fflush(stdout) != 0) {
        status = 2;
    }
    return status;
}
