#include <config.h>
#include "schema/map.h"
#include "agent/util/buf.h"
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The attribute-map engine. map_compile() turns the JSON (see map.h) into plain arrays so
 * that map_apply(), called once per entry, never touches jansson:
 *
 *   struct map -> two sections (users, groups) -> rules[], exclude[], ocs[]
 *   struct map_rule = target name + one source (FROM attr / TEMPLATE pieces / VALUE bytes)
 *                     + transforms[] + optional default
 *
 * Apply order per entry: auto by-name copy (minus excluded, operational and explicitly
 * ruled names), then the explicit rules in file order, then objectClass mapping, with
 * attr_dedup() on everything produced. Transforms apply to values from "from", "template"
 * and "value", never to "default" (a literal the admin wrote) and never to sensitive
 * attributes such as userPassword, which are always copied byte-exact.
 */

#define MAP_FILE_LIMIT ((size_t)16 << 20)  /* a map file larger than this is refused */
#define MAP_VALUE_LIMIT ((size_t)16 << 20) /* one produced value */

enum map_src { MAP_SRC_FROM = 0, MAP_SRC_TEMPLATE, MAP_SRC_VALUE };

enum map_xf { MAP_XF_TRIM = 0, MAP_XF_LOWER, MAP_XF_UPPER };

static const char *const xf_names[] = {
    [MAP_XF_TRIM] = "trim",
    [MAP_XF_LOWER] = "lower",
    [MAP_XF_UPPER] = "upper",
};

/* One template piece: literal text, or (is_attr) the name of the attribute whose first
 * value is substituted. */
struct map_piece {
    int is_attr;
    char *text;
    size_t len;
};

struct map_rule {
    char *target;
    int drop; /* "name": null */
    enum map_src src;
    char *from;               /* MAP_SRC_FROM */
    struct map_piece *pieces; /* MAP_SRC_TEMPLATE */
    size_t npieces;
    char *value; /* MAP_SRC_VALUE */
    size_t value_len;
    enum map_xf *xf;
    size_t nxf;
    char *def; /* NULL when no default */
    size_t def_len;
};

struct map_oc {
    char *from;
    char *to; /* NULL: drop the class */
};

struct map_section {
    int auto_by_name;
    char **exclude;
    size_t nexclude;
    struct map_oc *ocs;
    size_t nocs;
    struct map_rule *rules;
    size_t nrules;
};

struct map {
    char *key_source;
    char *key_target; /* NULL when the map does not say */
    struct map_section sec[2];
};

/* Operational attributes a source may return when asked for "+" or by name; they are
 * maintained by the target server and never copied by auto-mapping. */
static const char *const operational_attrs[] = {
    "entryUUID",
    "entryCSN",
    "createTimestamp",
    "modifyTimestamp",
    "creatorsName",
    "modifiersName",
    "structuralObjectClass",
    "entryDN",
    "subschemaSubentry",
    "hasSubordinates",
    "contextCSN",
};

static const char *const section_names[] = {
    [MAP_USERS] = "users",
    [MAP_GROUPS] = "groups",
};

/* ---- freeing ---- */

static void rule_clear(struct map_rule *r)
{
    free(r->target);
    free(r->from);
    for (size_t i = 0; i < r->npieces; i++) {
        free(r->pieces[i].text);
    }
    free(r->pieces);
    free(r->value);
    free(r->xf);
    free(r->def);
}

static void section_clear(struct map_section *s)
{
    for (size_t i = 0; i < s->nexclude; i++) {
        free(s->exclude[i]);
    }
    free(s->exclude);
    for (size_t i = 0; i < s->nocs; i++) {
        free(s->ocs[i].from);
        free(s->ocs[i].to);
    }
    free(s->ocs);
    for (size_t i = 0; i < s->nrules; i++) {
        rule_clear(&s->rules[i]);
    }
    free(s->rules);
}

void map_free(struct map *m)
{
    if (m == NULL) {
        return;
    }
    free(m->key_source);
    free(m->key_target);
    for (size_t i = 0; i < DM_ARRAY_LEN(m->sec); i++) {
        section_clear(&m->sec[i]);
    }
    free(m);
}

const char *map_key_attr(const struct map *m)
{
    return m->key_source;
}

/* ---- compile ---- */

struct map_cc {
    const char *origin;
    const struct jsonpos *pos;
    struct dm_err *err;
};

/* Joins parent path and key ("" parent gives key alone). Returns a new string or NULL. */
static char *path_join(const char *parent, const char *key)
{
    char *p = NULL;

    if (parent[0] == '\0') {
        return strdup(key);
    }
    if (asprintf(&p, "%s.%s", parent, key) < 0) {
        return NULL;
    }
    return p;
}

static char *path_index(const char *parent, size_t i)
{
    char *p = NULL;

    if (asprintf(&p, "%s[%zu]", parent, i) < 0) {
        return NULL;
    }
    return p;
}

/* Sets err to "origin:line:col: path: problem" (or "origin: path: problem" when the
 * position is unknown) and returns DM_EINVAL. */
static int DM_PRINTF(3, 4) cc_err(const struct map_cc *cc, const char *path, const char *fmt, ...)
{
    char problem[200];
    const char *shown = path[0] != '\0' ? path : "(top level)";
    va_list ap;
    int line = 0, col = 0;

    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    if (cc->pos != NULL && jsonpos_find(cc->pos, path, &line, &col) == 0) {
        return dm_err_set(cc->err, DM_EINVAL, "%s:%d:%d: %s: %s", cc->origin, line, col, shown,
                          problem);
    }
    return dm_err_set(cc->err, DM_EINVAL, "%s: %s: %s", cc->origin, shown, problem);
}

static int cc_nomem(const struct map_cc *cc)
{
    return dm_err_set(cc->err, DM_ENOMEM, "%s: out of memory compiling the map", cc->origin);
}

/* Duplicates a JSON string (which may hold NULs) into *out / *len. */
static int dup_json_string(char **out, size_t *len, const json_t *v)
{
    size_t n = json_string_length(v);
    char *p = malloc(n + 1);

    if (p == NULL) {
        return DM_ENOMEM;
    }
    memcpy(p, json_string_value(v), n);
    p[n] = '\0';
    *out = p;
    if (len != NULL) {
        *len = n;
    }
    return DM_OK;
}

/* Requires a non-empty string without NUL bytes (attribute names, class names). */
static int need_name(char **out, const struct map_cc *cc, const char *path, const json_t *v)
{
    if (!json_is_string(v)) {
        return cc_err(cc, path, "must be a string");
    }
    if (json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v)) {
        return cc_err(cc, path, "must be a non-empty attribute name");
    }
    *out = strdup(json_string_value(v));
    if (*out == NULL) {
        return cc_nomem(cc);
    }
    return DM_OK;
}

/* Splits "{givenName} {sn}" into pieces; "{{" and "}}" are literal braces. */
static int compile_template(struct map_rule *r, const struct map_cc *cc, const char *path,
                            const char *t, size_t n)
{
    struct buf lit;
    size_t i = 0;
    int rc = DM_OK;

    buf_init(&lit, MAP_VALUE_LIMIT);
    while (i <= n && rc == DM_OK) {
        int flush = (i == n);
        size_t close = 0;

        if (!flush && t[i] == '{' && i + 1 < n && t[i + 1] == '{') {
            rc = buf_append(&lit, "{", 1);
            i += 2;
            continue;
        }
        if (!flush && t[i] == '}' && i + 1 < n && t[i + 1] == '}') {
            rc = buf_append(&lit, "}", 1);
            i += 2;
            continue;
        }
        if (!flush && t[i] != '{') {
            rc = buf_append(&lit, t + i, 1);
            i++;
            continue;
        }
        if (!flush) {
            for (close = i + 1; close < n && t[close] != '}' && t[close] != '{'; close++) {
            }
            if (close >= n || t[close] != '}') {
                rc = cc_err(cc, path, "unterminated '{' at byte %zu of the template", i);
                break;
            }
            if (close == i + 1) {
                rc = cc_err(cc, path, "empty '{}' at byte %zu of the template", i);
                break;
            }
        }
        /* flush pending literal text, then add the placeholder (if any) */
        for (int k = 0; k < 2 && rc == DM_OK; k++) {
            struct map_piece *np;
            const char *src = k == 0 ? lit.data : t + i + 1;
            size_t len = k == 0 ? lit.len : close - i - 1;

            if ((k == 0 && lit.len == 0) || (k == 1 && flush)) {
                continue;
            }
            np = realloc(r->pieces, (r->npieces + 1) * sizeof(*np));
            if (np == NULL) {
                rc = cc_nomem(cc);
                break;
            }
            r->pieces = np;
            np[r->npieces].is_attr = k;
            np[r->npieces].len = len;
            np[r->npieces].text = strndup(src, len);
            if (np[r->npieces].text == NULL) {
                rc = cc_nomem(cc);
                break;
            }
            r->npieces++;
        }
        buf_reset(&lit);
        if (flush) {
            break;
        }
        i = close + 1;
    }
    if (rc == DM_ELIMIT || rc == DM_ENOMEM) {
        rc = cc_nomem(cc);
    }
    buf_free(&lit);
    return rc;
}

static int compile_transforms(struct map_rule *r, const struct map_cc *cc, const char *path,
                              const json_t *v)
{
    size_t i;
    json_t *it;
    int rc = DM_OK;

    if (!json_is_array(v)) {
        return cc_err(cc, path, "must be an array of strings");
    }
    r->xf = calloc(json_array_size(v) ? json_array_size(v) : 1, sizeof(*r->xf));
    if (r->xf == NULL) {
        return cc_nomem(cc);
    }
    json_array_foreach(v, i, it)
    {
        char *ip = path_index(path, i);
        size_t k;

        if (ip == NULL) {
            return cc_nomem(cc);
        }
        if (!json_is_string(it)) {
            rc = cc_err(cc, ip, "must be a string");
        } else {
            for (k = 0; k < DM_ARRAY_LEN(xf_names); k++) {
                if (strcmp(json_string_value(it), xf_names[k]) == 0) {
                    break;
                }
            }
            if (k == DM_ARRAY_LEN(xf_names)) {
                rc = cc_err(cc, ip, "unknown transform \"%.64s\" (known: trim, lower, upper)",
                            json_string_value(it));
            } else {
                r->xf[r->nxf++] = (enum map_xf)k;
            }
        }
        free(ip);
        if (rc != DM_OK) {
            return rc;
        }
    }
    return DM_OK;
}

/* One "attributes" member; path is that of the member. */
static int compile_rule(struct map_rule *r, const struct map_cc *cc, const char *path,
                        const char *target, const json_t *v)
{
    const char *k;
    json_t *kv;
    int nsrc = 0, rc = DM_OK;

    r->target = strdup(target);
    if (r->target == NULL) {
        return cc_nomem(cc);
    }
    if (target[0] == '\0') {
        return cc_err(cc, path, "empty attribute name");
    }
    if (json_is_null(v)) {
        r->drop = 1;
        return DM_OK;
    }
    if (!json_is_object(v)) {
        return cc_err(cc, path, "must be an object or null");
    }
    json_object_foreach((json_t *)v, k, kv)
    {
        char *kp = path_join(path, k);

        if (kp == NULL) {
            return cc_nomem(cc);
        }
        if (strcmp(k, "from") == 0) {
            nsrc++;
            r->src = MAP_SRC_FROM;
            rc = need_name(&r->from, cc, kp, kv);
        } else if (strcmp(k, "template") == 0) {
            nsrc++;
            r->src = MAP_SRC_TEMPLATE;
            if (!json_is_string(kv)) {
                rc = cc_err(cc, kp, "must be a string");
            } else {
                rc = compile_template(r, cc, kp, json_string_value(kv), json_string_length(kv));
            }
        } else if (strcmp(k, "value") == 0) {
            nsrc++;
            r->src = MAP_SRC_VALUE;
            if (!json_is_string(kv)) {
                rc = cc_err(cc, kp, "must be a string");
            } else if (dup_json_string(&r->value, &r->value_len, kv) != DM_OK) {
                rc = cc_nomem(cc);
            }
        } else if (strcmp(k, "transforms") == 0) {
            rc = compile_transforms(r, cc, kp, kv);
        } else if (strcmp(k, "default") == 0) {
            if (!json_is_string(kv)) {
                rc = cc_err(cc, kp, "must be a string");
            } else if (dup_json_string(&r->def, &r->def_len, kv) != DM_OK) {
                rc = cc_nomem(cc);
            }
        } else {
            rc = cc_err(cc, kp, "unknown key (known: from, template, value, transforms, default)");
        }
        free(kp);
        if (rc != DM_OK) {
            return rc;
        }
    }
    if (nsrc != 1) {
        return cc_err(cc, path, "needs exactly one of \"from\", \"template\", \"value\"");
    }
    return DM_OK;
}

static int compile_exclude(struct map_section *s, const struct map_cc *cc, const char *path,
                           const json_t *v)
{
    size_t i;
    json_t *it;

    if (!json_is_array(v)) {
        return cc_err(cc, path, "must be an array of strings");
    }
    s->exclude = calloc(json_array_size(v) ? json_array_size(v) : 1, sizeof(*s->exclude));
    if (s->exclude == NULL) {
        return cc_nomem(cc);
    }
    json_array_foreach(v, i, it)
    {
        char *ip = path_index(path, i);
        int rc;

        if (ip == NULL) {
            return cc_nomem(cc);
        }
        rc = need_name(&s->exclude[s->nexclude], cc, ip, it);
        free(ip);
        if (rc != DM_OK) {
            return rc;
        }
        s->nexclude++;
    }
    return DM_OK;
}

static int compile_ocs(struct map_section *s, const struct map_cc *cc, const char *path,
                       const json_t *v)
{
    const char *k;
    json_t *kv;

    if (!json_is_object(v)) {
        return cc_err(cc, path, "must be an object");
    }
    s->ocs = calloc(json_object_size(v) ? json_object_size(v) : 1, sizeof(*s->ocs));
    if (s->ocs == NULL) {
        return cc_nomem(cc);
    }
    json_object_foreach((json_t *)v, k, kv)
    {
        char *kp = path_join(path, k);
        struct map_oc *oc = &s->ocs[s->nocs];
        int rc = DM_OK;

        if (kp == NULL) {
            return cc_nomem(cc);
        }
        oc->from = strdup(k);
        if (oc->from == NULL) {
            rc = cc_nomem(cc);
        } else {
            s->nocs++;
            if (k[0] == '\0') {
                rc = cc_err(cc, kp, "empty class name");
            } else if (!json_is_null(kv)) {
                if (!json_is_string(kv)) {
                    rc = cc_err(cc, kp, "must be a string or null");
                } else {
                    rc = need_name(&oc->to, cc, kp, kv);
                }
            }
        }
        free(kp);
        if (rc != DM_OK) {
            return rc;
        }
    }
    return DM_OK;
}

static int compile_attributes(struct map_section *s, const struct map_cc *cc, const char *path,
                              const json_t *v)
{
    const char *k;
    json_t *kv;

    if (!json_is_object(v)) {
        return cc_err(cc, path, "must be an object");
    }
    s->rules = calloc(json_object_size(v) ? json_object_size(v) : 1, sizeof(*s->rules));
    if (s->rules == NULL) {
        return cc_nomem(cc);
    }
    json_object_foreach((json_t *)v, k, kv)
    {
        char *kp = path_join(path, k);
        int rc;

        if (kp == NULL) {
            return cc_nomem(cc);
        }
        /* counted before compiling so that a half-built rule is freed by map_free() */
        rc = compile_rule(&s->rules[s->nrules++], cc, kp, k, kv);
        free(kp);
        if (rc != DM_OK) {
            return rc;
        }
    }
    return DM_OK;
}

static int compile_section(struct map_section *s, const struct map_cc *cc, const char *path,
                           const json_t *v)
{
    const char *k;
    json_t *kv;

    s->auto_by_name = 1;
    if (!json_is_object(v)) {
        return cc_err(cc, path, "must be an object");
    }
    json_object_foreach((json_t *)v, k, kv)
    {
        char *kp = path_join(path, k);
        int rc = DM_OK;

        if (kp == NULL) {
            return cc_nomem(cc);
        }
        if (strcmp(k, "auto") == 0) {
            if (json_is_string(kv) && strcmp(json_string_value(kv), "by-name") == 0) {
                s->auto_by_name = 1;
            } else if (json_is_string(kv) && strcmp(json_string_value(kv), "none") == 0) {
                s->auto_by_name = 0;
            } else {
                rc = cc_err(cc, kp, "must be \"by-name\" or \"none\"");
            }
        } else if (strcmp(k, "exclude") == 0) {
            rc = compile_exclude(s, cc, kp, kv);
        } else if (strcmp(k, "objectclasses") == 0) {
            rc = compile_ocs(s, cc, kp, kv);
        } else if (strcmp(k, "attributes") == 0) {
            rc = compile_attributes(s, cc, kp, kv);
        } else {
            rc = cc_err(cc, kp, "unknown key (known: auto, exclude, objectclasses, attributes)");
        }
        free(kp);
        if (rc != DM_OK) {
            return rc;
        }
    }
    return DM_OK;
}

static int compile_key(struct map *m, const struct map_cc *cc, const char *path, const json_t *v)
{
    const char *k;
    json_t *kv;

    if (!json_is_object(v)) {
        return cc_err(cc, path, "must be an object");
    }
    json_object_foreach((json_t *)v, k, kv)
    {
        char *kp = path_join(path, k);
        int rc;

        if (kp == NULL) {
            return cc_nomem(cc);
        }
        if (strcmp(k, "source") == 0) {
            char *s = NULL;

            rc = need_name(&s, cc, kp, kv);
            if (rc == DM_OK) {
                free(m->key_source);
                m->key_source = s;
            }
        } else if (strcmp(k, "target") == 0) {
            rc = need_name(&m->key_target, cc, kp, kv);
        } else {
            rc = cc_err(cc, kp, "unknown key (known: source, target)");
        }
        free(kp);
        if (rc != DM_OK) {
            return rc;
        }
    }
    return DM_OK;
}

int map_compile(struct map **out, const json_t *root, const char *origin, const struct jsonpos *pos,
                const char *prefix, struct dm_err *err)
{
    struct map_cc cc = {origin != NULL ? origin : "map", pos, err};
    struct map *m = calloc(1, sizeof(*m));
    const char *k;
    json_t *kv;
    int rc = DM_OK;

    if (prefix == NULL) {
        prefix = "";
    }
    if (m == NULL) {
        return cc_nomem(&cc);
    }
    m->sec[MAP_USERS].auto_by_name = 1;
    m->sec[MAP_GROUPS].auto_by_name = 1;
    m->key_source = strdup("entryUUID");
    if (m->key_source == NULL) {
        rc = cc_nomem(&cc);
        goto done;
    }
    if (!json_is_object(root)) {
        rc = cc_err(&cc, prefix, "the map must be a JSON object");
        goto done;
    }
    json_object_foreach((json_t *)root, k, kv)
    {
        char *kp = path_join(prefix, k);

        if (kp == NULL) {
            rc = cc_nomem(&cc);
            goto done;
        }
        if (strcmp(k, "key") == 0) {
            rc = compile_key(m, &cc, kp, kv);
        } else if (strcmp(k, section_names[MAP_USERS]) == 0) {
            rc = compile_section(&m->sec[MAP_USERS], &cc, kp, kv);
        } else if (strcmp(k, section_names[MAP_GROUPS]) == 0) {
            rc = compile_section(&m->sec[MAP_GROUPS], &cc, kp, kv);
        } else {
            rc = cc_err(&cc, kp, "unknown key (known: key, users, groups)");
        }
        free(kp);
        if (rc != DM_OK) {
            goto done;
        }
    }
    *out = m;
    m = NULL;
    rc = DM_OK;
done:
    map_free(m);
    return rc;
}

int map_default(struct map **out, struct dm_err *err)
{
    struct map *m = calloc(1, sizeof(*m));

    if (m == NULL || (m->key_source = strdup("entryUUID")) == NULL) {
        free(m);
        return dm_err_set(err, DM_ENOMEM, "map_default");
    }
    m->sec[MAP_USERS].auto_by_name = 1;
    m->sec[MAP_GROUPS].auto_by_name = 1;
    *out = m;
    return DM_OK;
}

/* Reads a whole file (capped) into a new NUL-terminated buffer. */
static int read_file(char **out, size_t *len, const char *path, struct dm_err *err)
{
    FILE *f = fopen(path, "rb");
    struct buf b;
    char chunk[8192];
    size_t n;
    int rc = DM_OK;

    if (f == NULL) {
        return dm_err_set(err, errno == ENOENT ? DM_ENOTFOUND : DM_EINVAL, "%s: %s", path,
                          strerror(errno));
    }
    buf_init(&b, MAP_FILE_LIMIT);
    rc = buf_append(&b, "", 0);
    while (rc == DM_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = buf_append(&b, chunk, n);
    }
    if (rc == DM_OK && ferror(f)) {
        rc = dm_err_set(err, DM_EINVAL, "%s: read error", path);
    } else if (rc == DM_ELIMIT) {
        rc = dm_err_set(err, DM_ELIMIT, "%s: map file larger than %zu bytes", path,
                        (size_t)MAP_FILE_LIMIT);
    } else if (rc != DM_OK) {
        rc = dm_err_set(err, rc, "%s: out of memory", path);
    }
    fclose(f);
    if (rc != DM_OK) {
        buf_free(&b);
        return rc;
    }
    *len = b.len;
    *out = buf_steal(&b);
    return DM_OK;
}

int map_load_file(struct map **out, const char *path, struct dm_err *err)
{
    json_error_t jerr;
    json_t *root = NULL;
    struct jsonpos *pos = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    rc = read_file(&text, &len, path, err);
    if (rc != DM_OK) {
        return rc;
    }
    /* Same parse as json_load_file(path, JSON_REJECT_DUPLICATES), on the text we keep
     * for jsonpos. */
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rc = dm_err_set(err, DM_EINVAL, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        goto done;
    }
    /* Positions only improve messages: without them errors still name the key path. */
    if (jsonpos_build(&pos, text, len, NULL) != DM_OK) {
        pos = NULL;
    }
    rc = map_compile(out, root, path, pos, "", err);
done:
    jsonpos_free(pos);
    json_decref(root);
    free(text);
    return rc;
}

/* ---- apply ---- */

static int in_list(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(list[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Excluded by the section's list or as operational: full name or the name without
 * options ("cn;lang-en" is excluded by "cn"). */
static int auto_skipped(const struct map_section *s, const char *name)
{
    size_t base = strcspn(name, ";");
    char short_name[256];

    if (in_list((const char *const *)s->exclude, s->nexclude, name) ||
        in_list(operational_attrs, DM_ARRAY_LEN(operational_attrs), name)) {
        return 1;
    }
    for (size_t i = 0; i < s->nrules; i++) {
        if (strcasecmp(s->rules[i].target, name) == 0) {
            return 1;
        }
    }
    if (name[base] == ';' && base < sizeof(short_name)) {
        memcpy(short_name, name, base);
        short_name[base] = '\0';
        return in_list((const char *const *)s->exclude, s->nexclude, short_name) ||
               in_list(operational_attrs, DM_ARRAY_LEN(operational_attrs), short_name);
    }
    return 0;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Applies the transforms in place on b (bytes; ASCII case mapping keeps UTF-8 intact). */
static void run_transforms(struct buf *b, const enum map_xf *xf, size_t nxf)
{
    for (size_t k = 0; k < nxf; k++) {
        unsigned char *p = (unsigned char *)b->data;

        switch (xf[k]) {
        case MAP_XF_TRIM: {
            size_t lo = 0, hi = b->len;

            while (lo < hi && is_space(p[lo])) {
                lo++;
            }
            while (hi > lo && is_space(p[hi - 1])) {
                hi--;
            }
            memmove(p, p + lo, hi - lo);
            b->len = hi - lo;
            p[b->len] = '\0';
            break;
        }
        case MAP_XF_LOWER:
            for (size_t i = 0; i < b->len; i++) {
                if (p[i] >= 'A' && p[i] <= 'Z') {
                    p[i] = (unsigned char)(p[i] - 'A' + 'a');
                }
            }
            break;
        case MAP_XF_UPPER:
            for (size_t i = 0; i < b->len; i++) {
                if (p[i] >= 'a' && p[i] <= 'z') {
                    p[i] = (unsigned char)(p[i] - 'a' + 'A');
                }
            }
            break;
        }
    }
}

/* Adds one produced value to dst's target attribute, transformed unless raw. A value that
 * transforms to nothing (e.g. trim of blanks) is dropped: LDAP has no empty values. */
static int emit(struct entry *dst, const struct map_rule *r, const void *data, size_t len, int raw,
                size_t *nout)
{
    struct dm_attr *a;
    struct buf b;
    int rc;

    buf_init(&b, MAP_VALUE_LIMIT);
    rc = buf_append(&b, data, len);
    if (rc != DM_OK) {
        goto done;
    }
    if (!raw && r->nxf > 0) {
        run_transforms(&b, r->xf, r->nxf);
        if (b.len == 0) {
            goto done;
        }
    }
    a = entry_attr_add(dst, r->target);
    if (a == NULL) {
        rc = DM_ENOMEM;
        goto done;
    }
    rc = attr_add_value(a, b.data, b.len);
    if (rc == DM_OK) {
        (*nout)++;
    }
done:
    buf_free(&b);
    return rc;
}

/* Expands a template with the first value of each placeholder; *missing set when an
 * attribute is absent. */
static int expand_template(struct buf *b, int *missing, const struct map_rule *r,
                           const struct entry *src)
{
    int rc = buf_append(b, "", 0);

    *missing = 0;
    for (size_t i = 0; i < r->npieces && rc == DM_OK; i++) {
        const struct map_piece *pc = &r->pieces[i];

        if (pc->is_attr) {
            const struct dm_attr *a = entry_attr(src, pc->text);

            if (a == NULL || a->nvals == 0) {
                *missing = 1;
                return DM_OK;
            }
            rc = buf_append(b, a->vals[0].data, a->vals[0].len);
        } else {
            rc = buf_append(b, pc->text, pc->len);
        }
    }
    return rc;
}

static int rule_apply(const struct map_rule *r, const struct entry *src, struct entry *dst,
                      struct dm_err *err)
{
    int raw = entry_is_sensitive_attr(r->target);
    size_t nout = 0;
    struct dm_attr *a;
    struct buf b;
    int rc = DM_OK, missing = 0;

    buf_init(&b, MAP_VALUE_LIMIT);
    switch (r->src) {
    case MAP_SRC_FROM: {
        const struct dm_attr *sa = entry_attr(src, r->from);

        raw = raw || entry_is_sensitive_attr(r->from);
        for (size_t i = 0; sa != NULL && i < sa->nvals && rc == DM_OK; i++) {
            rc = emit(dst, r, sa->vals[i].data, sa->vals[i].len, raw, &nout);
        }
        break;
    }
    case MAP_SRC_TEMPLATE:
        rc = expand_template(&b, &missing, r, src);
        if (rc == DM_OK && !missing) {
            rc = emit(dst, r, b.data, b.len, raw, &nout);
        }
        break;
    case MAP_SRC_VALUE:
        rc = emit(dst, r, r->value, r->value_len, raw, &nout);
        break;
    }
    if (rc == DM_OK && nout == 0 && r->def != NULL) {
        rc = emit(dst, r, r->def, r->def_len, 1, &nout);
    }
    if (rc == DM_OK) {
        a = entry_attr(dst, r->target);
        if (a != NULL) {
            attr_dedup(a);
        }
    }
    buf_free(&b);
    if (rc != DM_OK) {
        dm_err_dn(err, src->dn);
        dm_err_attr(err, r->target);
        return dm_err_set(err, rc,
                          rc == DM_ELIMIT ? "map: value too large"
                                          : "map: out of memory building attribute");
    }
    return DM_OK;
}

static const struct map_oc *find_oc(const struct map_section *s, const char *name)
{
    for (size_t i = 0; i < s->nocs; i++) {
        if (strcasecmp(s->ocs[i].from, name) == 0) {
            return &s->ocs[i];
        }
    }
    return NULL;
}

/* Rewrites dst's objectClass values through the section's table. */
static int map_classes(const struct map_section *s, struct entry *dst, struct dm_err *err)
{
    struct dm_attr *a = entry_attr(dst, "objectClass");
    size_t keep = 0;

    if (a == NULL || s->nocs == 0) {
        return DM_OK;
    }
    for (size_t i = 0; i < a->nvals; i++) {
        const struct map_oc *oc = find_oc(s, (const char *)a->vals[i].data);

        if (oc == NULL) {
            a->vals[keep++] = a->vals[i];
        } else if (oc->to == NULL) {
            free(a->vals[i].data);
        } else {
            size_t n = strlen(oc->to);
            unsigned char *p = malloc(n + 1);

            if (p == NULL) {
                /* keep the array consistent before bailing out */
                for (size_t j = i; j < a->nvals; j++) {
                    a->vals[keep++] = a->vals[j];
                }
                a->nvals = keep;
                dm_err_dn(err, dst->dn);
                dm_err_attr(err, "objectClass");
                return dm_err_set(err, DM_ENOMEM, "map: out of memory mapping objectClass");
            }
            memcpy(p, oc->to, n + 1);
            free(a->vals[i].data);
            a->vals[keep].data = p;
            a->vals[keep].len = n;
            keep++;
        }
    }
    a->nvals = keep;
    if (keep == 0) {
        entry_del_attr(dst, "objectClass");
        return DM_OK;
    }
    /* two source classes mapped to one target class; dedup is bytewise, so compare
     * class names case-insensitively here */
    keep = 0;
    for (size_t i = 0; i < a->nvals; i++) {
        int dup = 0;

        for (size_t j = 0; j < keep && !dup; j++) {
            dup = strcasecmp((const char *)a->vals[j].data, (const char *)a->vals[i].data) == 0;
        }
        if (dup) {
            free(a->vals[i].data);
        } else {
            a->vals[keep++] = a->vals[i];
        }
    }
    a->nvals = keep;
    return DM_OK;
}

int map_apply(struct entry **out, const struct map *m, enum map_kind kind, const struct entry *src,
              struct dm_err *err)
{
    const struct map_section *s;
    struct entry *dst = NULL;
    int rc = DM_OK;

    assert((unsigned)kind < DM_ARRAY_LEN(m->sec));
    s = &m->sec[kind];
    dst = entry_new(src->dn);
    if (dst == NULL || entry_set_key(dst, src->key) != DM_OK) {
        rc = DM_ENOMEM;
        goto nomem;
    }
    if (s->auto_by_name) {
        for (size_t i = 0; i < src->nattrs; i++) {
            const struct dm_attr *sa = &src->attrs[i];
            struct dm_attr *da;

            if (sa->nvals == 0 || auto_skipped(s, sa->name)) {
                continue;
            }
            da = entry_attr_add(dst, sa->name);
            if (da == NULL) {
                rc = DM_ENOMEM;
                goto nomem;
            }
            for (size_t j = 0; j < sa->nvals; j++) {
                rc = attr_add_value(da, sa->vals[j].data, sa->vals[j].len);
                if (rc != DM_OK) {
                    goto nomem;
                }
            }
            attr_dedup(da);
        }
    }
    for (size_t i = 0; i < s->nrules; i++) {
        if (s->rules[i].drop) {
            continue;
        }
        rc = rule_apply(&s->rules[i], src, dst, err);
        if (rc != DM_OK) {
            goto done;
        }
    }
    rc = map_classes(s, dst, err);
    if (rc != DM_OK) {
        goto done;
    }
    *out = dst;
    dst = NULL;
    rc = DM_OK;
    goto done;
nomem:
    dm_err_dn(err, src->dn);
    rc = dm_err_set(err, DM_ENOMEM, "map: out of memory building the target entry");
done:
    entry_free(dst);
    return rc;
}
