/*
 * connectors/conncfg.h: what several connectors share about their configuration: the keys
 * of HTTP targets (token, concurrency, rate-limit share), the endpoint rules of the LDAP,
 * HTTP and file connectors (their conn_ops.config_check), and file: URIs.
 *
 * The rules report through struct conn_cfgcheck (connectors/connector.h), so an error
 * names the key and its place in dirmig.json like any other config error.
 */
#ifndef DM_CONNCFG_H
#define DM_CONNCFG_H

#include "connectors/connector.h"

/* The keys every HTTP target takes (spliced into its NULL-terminated key list). The token
 * files and variables are loaded by the config module into conn_cfg.token. */
#define CONNCFG_HTTP_KEYS                                                                          \
    {"token_file",                                                                                 \
     CONN_KEY_PATH,                                                                                \
     NULL,                                                                                         \
     CONN_KEY_SENSITIVE,                                                                           \
     .off = CONN_KEY_OPT,                                                                          \
     .doc = "File holding the API token. Must not be accessible by group or others."},             \
        {"token_env",                                                                              \
         CONN_KEY_ENV,                                                                             \
         NULL,                                                                                     \
         CONN_KEY_SENSITIVE,                                                                       \
         .off = CONN_KEY_OPT,                                                                      \
         .doc = "Environment variable holding the API token."},                                    \
        {"concurrency",                                                                            \
         CONN_KEY_INT,                                                                             \
         "8",                                                                                      \
         0,                                                                                        \
         1,                                                                                        \
         256,                                                                                      \
         .off = offsetof(struct conn_cfg, concurrency),                                            \
         .doc = "Requests in flight at once."},                                                    \
    {                                                                                              \
        "rate_limit_share", CONN_KEY_INT, "50", 0, 1, 100,                                         \
            .off = offsetof(struct conn_cfg, rate_share_pct),                                      \
            .doc =                                                                                 \
                "Percent of each rate-limit bucket dirmig may use (X-Rate-Limit-* headers); the "  \
                "rest stays free for other clients."                                               \
    }

/* HTTP targets: an https:// URI (http:// only to a loopback address, for tests), exactly
 * one of token_file and token_env, none of the LDAP bind keys. */
int conncfg_check_http(const struct conn_cfgcheck *x);

/* LDAP endpoints: ldap://, ldaps:// or ldapi://, a base, the bind rules (bind_dn with a
 * password file or variable, or a SASL mechanism), StartTLS only on ldap://. */
int conncfg_check_ldap(const struct conn_cfgcheck *x);

/* File endpoints: a file: URI (file:/abs/path, file:///abs/path or file:relative/path,
 * relative to the config file's directory), no bind or token keys. */
int conncfg_check_file(const struct conn_cfgcheck *x);

/* 1 for an http:// URL whose host is a loopback address (127.x, localhost, [::1]). */
int conncfg_loopback_http(const char *s);

/* The file a file: URI names, resolved against cfg->config_dir. New string (free()), or
 * NULL with err (not a file: URI, ENOMEM). */
char *conncfg_file_path(const struct conn_cfg *cfg, struct dm_err *err);

#endif
