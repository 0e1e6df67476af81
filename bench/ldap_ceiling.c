/*
 * bench/ldap_ceiling.c: the ceiling for the hook benchmark: what a plain C loop gets from
 * the same slapd doing what the hook does per request, with nothing around it: search the
 * uid (sizelimit 2, no attributes) on a connection bound as the service account, then a
 * simple bind as the found DN on a second connection. One pair of connections per thread.
 *
 * usage: ldap_ceiling URI BIND_DN BIND_PW_FILE BASE USERS_FILE SECONDS CLIENTS...
 * prints: ceiling CLIENTS ops/s p50_ms p99_ms failed
 */
#include <ldap.h>
#include "bench_common.h"

static const char *g_base;

struct lstate {
    LDAP *search, *bind;
};

static LDAP *connect_to(const char *uri, const char *dn, const char *pw)
{
    LDAP *ld = NULL;
    int v3 = LDAP_VERSION3;
    struct berval cred;

    if (ldap_initialize(&ld, uri) != LDAP_SUCCESS) {
        exit(2);
    }
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    if (dn != NULL) {
        cred.bv_val = (char *)pw;
        cred.bv_len = strlen(pw);
        if (ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL) != 0) {
            fprintf(stderr, "service bind failed\n");
            exit(2);
        }
    } else if (ldap_connect(ld) != LDAP_SUCCESS) {
        exit(2);
    }
    return ld;
}

static int verify(void *st, const struct bench_user *u, unsigned long seq)
{
    struct lstate *s = st;
    char filter[512], *dn;
    char *attrs[] = {LDAP_NO_ATTRS, NULL};
    LDAPMessage *msg = NULL;
    struct berval cred = {strlen(u->pw), u->pw};
    int rc, ok = 0;

    snprintf(filter, sizeof(filter), "(&(objectClass=inetOrgPerson)(|(uid=%s)))", u->uid);
    rc = ldap_search_ext_s(s->search, g_base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL,
                           NULL, 2, &msg);
    if (rc == LDAP_SUCCESS && ldap_count_entries(s->search, msg) == 1) {
        dn = ldap_get_dn(s->search, ldap_first_entry(s->search, msg));
        ok = ldap_sasl_bind_s(s->bind, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL) == 0;
        ldap_memfree(dn);
    }
    ldap_msgfree(msg);
    return ok;
}

int main(int argc, char **argv)
{
    char pw[256];
    FILE *f;
    double secs;

    if (argc < 8) {
        fprintf(stderr, "usage: %s URI BIND_DN PW_FILE BASE USERS SECONDS CLIENTS...\n", argv[0]);
        return 2;
    }
    f = fopen(argv[3], "r");
    if (f == NULL || fgets(pw, sizeof(pw), f) == NULL) {
        return 2;
    }
    fclose(f);
    pw[strcspn(pw, "\n")] = '\0';
    g_base = argv[4];
    bench_load_users(argv[5]);
    secs = atof(argv[6]);
    for (int a = 7; a < argc; a++) {
        int n = atoi(argv[a]);
        void **states = calloc((size_t)n, sizeof(*states));
        for (int i = 0; i < n; i++) {
            struct lstate *s = calloc(1, sizeof(*s));
            s->search = connect_to(argv[1], argv[2], pw);
            s->bind = connect_to(argv[1], NULL, NULL);
            states[i] = s;
        }
        bench_run("ceiling", n, secs, states, verify);
        for (int i = 0; i < n; i++) {
            struct lstate *s = states[i];
            ldap_unbind_ext_s(s->search, NULL, NULL);
            ldap_unbind_ext_s(s->bind, NULL, NULL);
            free(s);
        }
        free(states);
    }
    return 0;
}
