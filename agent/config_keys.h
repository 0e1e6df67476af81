/*
 * agent/config_keys.h: the one table that describes every key of dirmig.json:
 * path, type, default, range or allowed values, flags, where the value is copied in
 * struct dm_config, and its documentation.
 *
 * The table drives the checks of config_load() (config_validate.c), the copy into struct
 * dm_config (config.c), the effective-config dump and the key section of dirmig.json(5)
 * (config_describe.c). Keys flagged CFG_EP exist under both "source" and "target"; their
 * path is relative to the endpoint object. A key with an offset is copied into struct
 * dm_config (or struct config_endpoint) by one generic loop; the few that need more
 * (log.level, the secrets, the map, the waves) are handled after it.
 */
#ifndef DM_CONFIG_KEYS_H
#define DM_CONFIG_KEYS_H

#include <stddef.h>

enum cfg_type {
    CFG_OBJ,     /* object whose keys are in this table */
    CFG_OPAQUE,  /* reserved section: any object (or array), not checked yet */
    CFG_WAVES,   /* array of wave objects: checked by config_parse_waves() */
    CFG_MAP,     /* attribute map: checked by schema/map_compile.c */
    CFG_STR,     /* non-empty string */
    CFG_PATH,    /* non-empty string; relative to the config file's directory */
    CFG_ENV,     /* environment variable name */
    CFG_INT,     /* integer in min..max */
    CFG_BOOL,    /* true or false */
    CFG_STRLIST, /* array of non-empty strings */
};

enum cfg_flag {
    CFG_REQUIRED = 1 << 0,
    CFG_SENSITIVE = 1 << 1, /* describe prints *** */
    CFG_EP = 1 << 2,        /* under source and target */
};

enum cfg_check { CHK_NONE = 0, CHK_URI, CHK_DN, CHK_FILTER };

enum cfg_where { AT_NONE = 0, AT_CONFIG, AT_EP };

struct cfg_key {
    const char *path;
    enum cfg_type type;
    const char *def; /* default as text, NULL = none */
    unsigned flags;
    long long min, max; /* CFG_INT */
    const char *values; /* allowed values "a|b|c" (CFG_STR) */
    enum cfg_check check;
    enum cfg_where where;
    size_t off;
    const char *doc;
};

/* The table, in documentation order, and its length. */
extern const struct cfg_key config_keys[];
extern const size_t config_nkeys;

/* "source" and "target": the prefixes of CFG_EP keys; the index is the role. */
extern const char *const config_roles[2];

/* The table entry for a full key path ("source.page_size", "log.level"), or NULL. *role
 * gets the endpoint index (0 for a key that is not CFG_EP). */
const struct cfg_key *config_keys_find(const char *path, int *role);

/* Writes the full path of k for role ("target.uri", "state.path") into buf. */
void config_keys_path(char *buf, size_t len, const struct cfg_key *k, int role);

#endif
