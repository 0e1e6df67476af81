/*
 * config.h: dirmig.json, read with jansson and checked against one key table (STYLE C1).
 *
 * config_load() parses the file, checks every key against the documented schema (unknown
 * keys, wrong types, missing required keys, out-of-range values), loads the secrets the
 * config references (`*_file` / `*_env`, never inline), compiles the attribute map, and
 * returns a ready config. Every error names the place:
 *     dirmig.json:12:5: source.page_size: must be 1..10000
 * and is DM_EINVAL (the CLI exits EX_CONFIG). A relative path inside the config (map file,
 * state path, secret files, CA file) is resolved against the config file's directory.
 *
 * Sections (doc/dirmig.json.5 has every key):
 *   source, target   endpoint settings -> struct conn_cfg, plus users/groups scopes
 *   map              inline map object, or {"file": "maps/x.json"}; default by-name
 *   state            {"path": "dirmig.db"}
 *   run              {"batch_size": 500, "dn_attributes": [...]}
 *   log              {"level": "info", "json": false, "file": null}
 *   credentials, hook, waves, reconcile   reserved for later issues (accepted as objects)
 */
#ifndef DM_CONFIG_H
#define DM_CONFIG_H

#include <stdio.h>
#include "agent/util/buf.h"
#include "agent/util/err.h"
#include "agent/util/secret.h"
#include "connectors/connector.h"
#include "schema/map.h"

struct config_endpoint {
    struct conn_cfg conn;        /* strings point into this config */
    struct secret *bind_pw;      /* owned; conn.bind_pw points here */
    char *users_base;            /* default: conn.base */
    char *users_filter;          /* default "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))" */
    char *groups_base;           /* default: conn.base */
    char *groups_filter;         /* default "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))" */
};

struct dm_config {
    char *path;                  /* as given */
    struct config_endpoint source;
    struct config_endpoint target;
    struct map *map;             /* compiled; never NULL after load */
    char *state_path;            /* default "dirmig.db" beside the config */
    int batch_size;              /* 1..10000, default 500 */
    char **dn_attrs;             /* NULL-terminated; DN-valued attrs rebased to the target
                                  * base; default member uniqueMember owner manager
                                  * seeAlso secretary */
    char **member_attrs;         /* NULL-terminated; DN-valued membership attrs resolved
                                  * through the journal; default member uniqueMember */
    int log_level;               /* enum log_level */
    int log_json;
    char *log_file;              /* NULL = stderr */
    char digest[65];             /* SHA-256 of the file bytes */
};

/* Loads and checks path. Returns a new config; caller frees with config_free(). */
int config_load(struct dm_config **out, const char *path, struct dm_err *err) DM_MUST_USE;
void config_free(struct dm_config *c); /* NULL-safe; wipes secrets */

/* Appends a human description of the effective config to out; SENSITIVE keys as ***. */
int config_describe(const struct dm_config *c, struct buf *out) DM_MUST_USE;

/* Writes the key table as a man-page section (for doc/dirmig.json.5). */
void config_print_keys(FILE *out);

#endif
