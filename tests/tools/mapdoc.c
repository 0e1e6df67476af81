/*
 * mapdoc: runs entries through a map file, as the examples of dirmig-map(5) show them
 * (test tool).
 *
 *     mapdoc MAP.json users|groups ENTRIES.ldif
 *
 * Loads MAP.json with the map engine's own loader (map_load_file(): errors are
 * "file:line:col: key.path: problem" on stderr, exit 1), reads the LDIF entries (dn, then
 * "name: value" or "name:: base64" lines, continuation lines starting with one space,
 * entries separated by blank lines), and for each prints the mapped entry as
 * map_dump_masked() writes it (pii and password values as ***), then one line
 * "problem: <category> <attribute>" per constraint problem (map_check()), then a blank
 * line. Exit status: 0, 1 map error, 2 usage or input error.
 */
#include <config.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "agent/util/buf.h"
#include "schema/entry.h"
#include "schema/map.h"

/* Decodes base64 s into a new buffer; -1 on bad input. */
static int b64(unsigned char **out, size_t *len, const char *s)
{
    size_t n = strlen(s), pad = 0;
    unsigned char *p = malloc(n / 4 * 3 + 4);
    int m;

    if (p == NULL || n % 4 != 0) {
        free(p);
        return -1;
    }
    m = EVP_DecodeBlock(p, (const unsigned char *)s, (int)n);
    if (m < 0) {
        free(p);
        return -1;
    }
    pad = (n > 0 && s[n - 1] == '=') + (n > 1 && s[n - 2] == '=');
    *out = p;
    *len = (size_t)m - pad;
    return 0;
}

/* Adds one logical LDIF line to e (creating e at "dn:"). */
static int ldif_line(struct entry **e, const char *line)
{
    const char *colon = strchr(line, ':');
    unsigned char *v = NULL;
    size_t vlen;
    char name[128];
    int rc;

    if (colon == NULL || (size_t)(colon - line) >= sizeof(name)) {
        return -1;
    }
    snprintf(name, sizeof(name), "%.*s", (int)(colon - line), line);
    if (colon[1] == ':') {
        const char *p = colon + 2;
        while (*p == ' ') {
            p++;
        }
        if (b64(&v, &vlen, p) != 0) {
            return -1;
        }
    } else {
        const char *p = colon + 1;
        while (*p == ' ') {
            p++;
        }
        v = (unsigned char *)strdup(p);
        if (v == NULL) {
            return -1;
        }
        vlen = strlen(p);
    }
    if (strcasecmp(name, "dn") == 0) {
        *e = entry_new(NULL);
        rc = *e == NULL ? -1 : 0;
        if (rc == 0) {
            char *dn = strndup((const char *)v, vlen);
            rc = dn == NULL || entry_set_dn(*e, dn) != DM_OK || entry_set_key(*e, dn) != DM_OK ? -1
                                                                                               : 0;
            free(dn);
        }
    } else {
        rc = *e == NULL || entry_add_value(*e, name, v, vlen) != DM_OK ? -1 : 0;
    }
    free(v);
    return rc;
}

static int emit(const struct map *m, enum map_kind kind, const struct entry *src)
{
    struct entry *dst = NULL;
    struct map_problem *pr = NULL;
    struct dm_err err = {0};
    struct buf b;
    size_t np = 0;
    int rc;

    buf_init(&b, 0);
    rc = map_apply(&dst, m, kind, src, &err);
    if (rc == DM_OK) {
        rc = map_check(&pr, &np, m, kind, dst, &err);
    }
    if (rc == DM_OK) {
        rc = map_dump_masked(&b, m, kind, dst);
    }
    if (rc != DM_OK) {
        fprintf(stderr, "mapdoc: %s: %s\n", src->dn, err.msg);
    } else {
        fputs(b.data != NULL ? b.data : "", stdout);
        for (size_t i = 0; i < np; i++) {
            printf("problem: %s %s\n", pr[i].category, pr[i].attr);
        }
        putchar('\n');
    }
    free(pr);
    buf_free(&b);
    entry_free(dst);
    return rc;
}

int main(int argc, char **argv)
{
    struct map *m = NULL;
    struct dm_err err = {0};
    struct entry *e = NULL;
    enum map_kind kind;
    struct buf logical;
    char line[8192];
    FILE *in;
    int rc = 0;

    if (argc != 4 || (strcmp(argv[2], "users") != 0 && strcmp(argv[2], "groups") != 0)) {
        fprintf(stderr, "usage: mapdoc MAP.json users|groups ENTRIES.ldif\n");
        return 2;
    }
    kind = strcmp(argv[2], "users") == 0 ? MAP_USERS : MAP_GROUPS;
    if (map_load_file(&m, argv[1], &err) != DM_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    in = fopen(argv[3], "r");
    if (in == NULL) {
        perror(argv[3]);
        map_free(m);
        return 2;
    }
    buf_init(&logical, 0);
    for (int eof = 0; !eof && rc == 0;) {
        eof = fgets(line, sizeof(line), in) == NULL;
        if (!eof) {
            line[strcspn(line, "\r\n")] = '\0';
        }
        if (!eof && line[0] == ' ') { /* continuation of the logical line */
            rc = buf_puts(&logical, line + 1) == DM_OK ? 0 : 2;
            continue;
        }
        if (logical.len > 0 && logical.data[0] != '#') {
            rc = ldif_line(&e, logical.data) == 0 ? 0 : 2;
            if (rc != 0) {
                fprintf(stderr, "mapdoc: bad LDIF line: %s\n", logical.data);
            }
        }
        buf_reset(&logical);
        if (rc == 0 && (eof || line[0] == '\0') && e != NULL) {
            rc = emit(m, kind, e) == DM_OK ? 0 : 2;
            entry_free(e);
            e = NULL;
        }
        if (!eof && line[0] != '\0' && rc == 0) {
            rc = buf_puts(&logical, line) == DM_OK ? 0 : 2;
        }
    }
    entry_free(e);
    buf_free(&logical);
    fclose(in);
    map_free(m);
    return rc;
}
