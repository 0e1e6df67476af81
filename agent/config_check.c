#include <config.h>
#include "agent/config_check.h"
#include <ctype.h>
#include <string.h>
#include <strings.h>

int cfgcheck_uri(const char *s)
{
    return strncasecmp(s, "ldap://", 7) == 0 || strncasecmp(s, "ldaps://", 8) == 0 ||
           strncasecmp(s, "ldapi://", 8) == 0 || strncasecmp(s, "https://", 8) == 0 ||
           strncasecmp(s, "http://", 7) == 0 || strncmp(s, "file:", 5) == 0;
}

/* A basic sanity check only; schema/dn.c parses DNs properly where it matters. */
int cfgcheck_dn(const char *s)
{
    return strchr(s, '=') != NULL && s[0] != '=' && s[0] != ',';
}

/* Starts with '(' and the parentheses balance, ending at the last byte (RFC 4515 escapes
 * parentheses in values as \28 \29, so a raw one is structure). */
int cfgcheck_filter(const char *s)
{
    int depth = 0;

    if (s[0] != '(') {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && p[1] != '\0') {
            p++;
        } else if (*p == '(') {
            depth++;
        } else if (*p == ')') {
            depth--;
            if (depth < 0 || (depth == 0 && p[1] != '\0')) {
                return 0;
            }
        }
    }
    return depth == 0;
}

int cfgcheck_env_name(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_')) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '_')) {
            return 0;
        }
    }
    return 1;
}

/* 1 for 127.0.0.0/8 and [::1] listen addresses ("host:port"). */
int cfgcheck_loopback_listen(const char *s)
{
    return strncmp(s, "127.", 4) == 0 || strncmp(s, "[::1]:", 6) == 0 ||
           strncmp(s, "localhost:", 10) == 0;
}
