/*
 * bindcheck: checks that every account in a list can simple-bind with its password.
 *
 *     bindcheck URI FILE
 *
 * FILE has one account per line, "DN<TAB>password" (empty lines and lines starting with '#'
 * are skipped; a trailing CR is dropped). One connection is opened and rebound for each line;
 * if the server drops it, it is reopened once for that line. The DNs that fail are printed
 * to stdout with the LDAP result; the final line is "N ok, M failed". Passwords are never
 * printed. Exit status: 0 all ok, 1 any failure, 2 usage or I/O error.
 *
 * Uses only libldap/liblber (tests link nothing else). LDAPNOINIT=1 is recommended.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <ldap.h>

static LDAP *open_conn(const char *uri)
{
    LDAP *ld = NULL;
    int v3 = LDAP_VERSION3;
    struct timeval nt = {10, 0};
    struct timeval op = {60, 0};
    int rc;

    rc = ldap_initialize(&ld, uri);
    if (rc != LDAP_SUCCESS) {
        fprintf(stderr, "bindcheck: ldap_initialize(%s): %s\n", uri, ldap_err2string(rc));
        return NULL;
    }
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &nt);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &op);
    return ld;
}

/* Returns the LDAP result code of a simple bind as dn with pw. */
static int try_bind(LDAP *ld, const char *dn, const char *pw)
{
    struct berval cred;

    cred.bv_val = (char *)pw;
    cred.bv_len = strlen(pw);
    return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

int main(int argc, char **argv)
{
    const char *uri;
    FILE *f = NULL;
    LDAP *ld = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long ok = 0, failed = 0, lineno = 0;
    int status = 2;

    if (argc != 3) {
        fprintf(stderr, "usage: bindcheck URI FILE   (FILE lines: DN<TAB>password)\n");
        return 2;
    }
    uri = argv[1];
    f = fopen(argv[2], "r");
    if (f == NULL) {
        fprintf(stderr, "bindcheck: %s: %s\n", argv[2], strerror(errno));
        goto done;
    }
    ld = open_conn(uri);
    if (ld == NULL) {
        goto done;
    }
    for (;;) {
        char *tab;
        const char *dn;
        const char *pw;
        int rc;

        len = getline(&line, &cap, f);
        if (len < 0) {
            break;
        }
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len == 0 || line[0] == '#') {
            continue;
        }
        tab = strchr(line, '\t');
        if (tab == NULL) {
            fprintf(stderr, "bindcheck: %s:%lu: no TAB between DN and password\n", argv[2], lineno);
            failed++;
            continue;
        }
        *tab = '\0';
        dn = line;
        pw = tab + 1;
        if (pw[0] == '\0') {
            /* An empty password would be an unauthenticated bind (RFC 4513 5.1.2). */
            printf("FAIL %s: empty password in list\n", dn);
            failed++;
            continue;
        }
        rc = try_bind(ld, dn, pw);
        if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT) {
            /* The connection is gone: reopen once and retry this line. */
            ldap_unbind_ext_s(ld, NULL, NULL);
            ld = open_conn(uri);
            if (ld == NULL) {
                goto done;
            }
            rc = try_bind(ld, dn, pw);
        }
        if (rc == LDAP_SUCCESS) {
            ok++;
        } else {
            printf("FAIL %s: %s (%d)\n", dn, ldap_err2string(rc), rc);
            failed++;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "bindcheck: %s: read error\n", argv[2]);
        goto done;
    }
    printf("%lu ok, %lu failed\n", ok, failed);
    status = (failed == 0 && ok > 0) ? 0 : 1;
done:
    if (line != NULL) {
        /* The buffer held a password: wipe it before freeing. */
        memset(line, 0, cap);
        free(line);
    }
    if (ld != NULL) {
        ldap_unbind_ext_s(ld, NULL, NULL);
    }
    if (f != NULL) {
        fclose(f);
    }
    return status;
}
