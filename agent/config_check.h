/*
 * agent/config_check.h: the checks of single config values that need no context (the
 * shapes of URIs, DNs, filters, variable names, loopback addresses). Each returns 1 when
 * the string passes, 0 otherwise; agent/config.c turns a 0 into a file:line:col error.
 */
#ifndef DM_CONFIG_CHECK_H
#define DM_CONFIG_CHECK_H

/* ldap://, ldaps://, ldapi://, https://, http:// or file: (the endpoint's connector decides
 * which it takes). */
int cfgcheck_uri(const char *s);
/* A basic DN shape (schema/dn.c parses DNs properly where it matters). */
int cfgcheck_dn(const char *s);
/* Starts with '(' and the parentheses balance, ending at the last byte. */
int cfgcheck_filter(const char *s);
/* A POSIX environment variable name. */
int cfgcheck_env_name(const char *s);
/* A "host:port" listen address on 127.0.0.0/8, localhost or [::1]. */
int cfgcheck_loopback_listen(const char *s);

#endif
