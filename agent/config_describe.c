/*
 * agent/config_describe.c: the key table turned into text: the effective configuration
 * (config_describe(), SENSITIVE keys as ***) and the key section of dirmig.json(5)
 * (config_print_keys()).
 */
#include <config.h>
#include "agent/config_priv.h"
#include <stdio.h>
#include <string.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static int describe_key(const struct config_priv *cp, const struct cfg_key *k, int role,
                        struct buf *out)
{
    const struct dm_config *c = &cp->pub;
    const char *base;
    char path[128];
    const char *s;
    char **list;
    int iv, rc;

    config_keys_path(path, sizeof(path), k, role);
    if (k->flags & CFG_SENSITIVE) {
        return buf_printf(out, "%s = %s\n", path,
                          cp->present[k - config_keys][role] ? "***" : "(unset)");
    }
    if (strcmp(k->path, "log.level") == 0) {
        iv = c->log_level;
        s = iv >= 0 && (size_t)iv < DM_ARRAY_LEN(level_names) ? level_names[iv] : "?";
        return buf_printf(out, "%s = %s\n", path, s);
    }
    if (k->type == CFG_MAP) {
        return buf_printf(out, "%s = %s\n", path, cp->map_origin ? cp->map_origin : "?");
    }
    if (k->where == AT_NONE) {
        return DM_OK;
    }
    base =
        k->where == AT_EP ? (const char *)(role == 0 ? &c->source : &c->target) : (const char *)c;
    switch (k->type) {
    case CFG_STR:
    case CFG_PATH:
        memcpy(&s, base + k->off, sizeof(s));
        return buf_printf(out, "%s = %s\n", path, s ? s : "(unset)");
    case CFG_INT:
        memcpy(&iv, base + k->off, sizeof(iv));
        return buf_printf(out, "%s = %d\n", path, iv);
    case CFG_BOOL:
        memcpy(&iv, base + k->off, sizeof(iv));
        return buf_printf(out, "%s = %s\n", path, iv ? "true" : "false");
    case CFG_STRLIST:
        memcpy(&list, base + k->off, sizeof(list));
        rc = buf_printf(out, "%s =", path);
        for (size_t i = 0; rc == DM_OK && list != NULL && list[i] != NULL; i++) {
            rc = buf_printf(out, " %s", list[i]);
        }
        if (rc == DM_OK) {
            rc = buf_puts(out, "\n");
        }
        return rc;
    case CFG_OBJ:
    case CFG_OPAQUE:
    case CFG_WAVES:
    case CFG_MAP:
    case CFG_ENV:
        break;
    }
    return DM_OK;
}

int config_describe(const struct dm_config *c, struct buf *out)
{
    const struct config_priv *cp = (const struct config_priv *)c;
    int rc;

    rc = buf_printf(out, "config = %s\ndigest = %s\n", c->path, c->digest);
    for (int r = 0; r < 2 && rc == DM_OK; r++) {
        for (size_t i = 0; i < config_nkeys && rc == DM_OK; i++) {
            if (config_keys[i].flags & CFG_EP) {
                rc = describe_key(cp, &config_keys[i], r, out);
            }
        }
        if (rc == DM_OK) {
            rc = config_conn_describe(cp, r, out);
        }
    }
    for (size_t i = 0; i < config_nkeys && rc == DM_OK; i++) {
        if (!(config_keys[i].flags & CFG_EP) && config_keys[i].type != CFG_OBJ &&
            config_keys[i].type != CFG_OPAQUE) {
            rc = describe_key(cp, &config_keys[i], 0, out);
        }
    }
    return rc;
}

/* ---- documentation ---- */

static const char *type_name(enum cfg_type t)
{
    switch (t) {
    case CFG_OBJ:
        return "object";
    case CFG_OPAQUE:
        return "object, reserved";
    case CFG_WAVES:
        return "array of objects";
    case CFG_MAP:
        return "object";
    case CFG_STR:
        return "string";
    case CFG_PATH:
        return "path";
    case CFG_ENV:
        return "environment variable name";
    case CFG_INT:
        return "integer";
    case CFG_BOOL:
        return "boolean";
    case CFG_STRLIST:
        return "array of strings";
    }
    return "?";
}

/* Writes s with roff-special characters escaped. */
static void roff_puts(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\') {
            fputs("\\e", out);
        } else if (*s == '-') {
            fputs("\\-", out);
        } else {
            fputc(*s, out);
        }
    }
}

void config_print_key(FILE *out, const struct cfg_key *k, const char *types)
{
    fputs(".TP\n", out);
    if (k->flags & CFG_EP) {
        fputs("\\fIendpoint\\fB.", out);
    } else {
        fputs("\\fB", out);
    }
    roff_puts(out, k->path);
    fputs("\\fR (", out);
    if (types != NULL) {
        fputs("type ", out);
        fputs(types, out);
        fputs(": ", out);
    }
    fputs(type_name(k->type), out);
    if (k->flags & CFG_REQUIRED) {
        fputs(", required", out);
    }
    if (k->flags & CFG_SENSITIVE) {
        fputs(", sensitive", out);
    }
    fputs(")\n", out);
    roff_puts(out, k->doc);
    if (k->type == CFG_INT) {
        fprintf(out, " Range %lld..%lld.", k->min, k->max);
    }
    if (k->values != NULL) {
        fputs(" One of: ", out);
        for (const char *p = k->values; *p; p++) {
            if (*p == '|') {
                fputs(", ", out);
            } else {
                fputc(*p, out);
            }
        }
        fputs(".", out);
    }
    if (k->def != NULL) {
        fputs(" Default: \\fB", out);
        roff_puts(out, k->def);
        fputs("\\fR.", out);
    }
    fputs("\n", out);
}

void config_print_keys(FILE *out)
{
    for (size_t i = 0; i < config_nkeys; i++) {
        config_print_key(out, &config_keys[i], NULL);
        if (strcmp(config_keys[i].path, "base") == 0) {
            /* the connectors' own keys, after the endpoint keys every type has */
            config_conn_print_keys(out);
        }
    }
}
