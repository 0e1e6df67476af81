#include <config.h>
#include "schema/map.h"
#include "agent/util/buf.h"
#include "schema/transform.h"
#include "schema/validate.h"
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>
#include <unistd.h>

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

/* One template piece: literal text, or (is_attr) the name of the attribute whose first
 * value is substituted. */
struct map_piece {
    int is_attr;
    char *text;
    size_t len;
    size_t slot; /* is_attr: index in the section's "need" set */
};

/* A case-insensitive set of attribute names (open addressing), so that per-entry look-ups
 * cost one hash instead of a strcasecmp() per candidate. Names are borrowed. */
struct name_set {
    const char **names;
    unsigned char *base_ok; /* 1: also matches "name;options" (exclude, operational) */
    size_t *lens;           /* strlen of each name */
    size_t n;
    uint32_t *tab; /* index + 1; 0 = empty */
    size_t mask;   /* table size - 1; 0 = not built */
};

struct map_rule {
    char *target;
    char *path; /* key path of the rule, for load-time messages */
    int drop;   /* "name": null */
    enum map_src src;
    char **froms; /* MAP_SRC_FROM: first present wins */
    size_t nfroms;
    size_t *from_slot;        /* index of each froms[] in the section's "need" set */
    unsigned char *from_raw;  /* each froms[] is a sensitive attribute */
    int raw;                  /* the target is a sensitive attribute */
    int unique_target;        /* no other rule has the same target (case-insensitive) */
    struct map_piece *pieces; /* MAP_SRC_TEMPLATE */
    size_t npieces;
    char *value; /* MAP_SRC_VALUE */
    size_t value_len;
    struct transform_step *xf;
    size_t nxf;
    char *def; /* NULL when no default */
    size_t def_len;
    struct validate_constraint cons; /* the rule's own constraint keys */
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
    struct validate_profile *profile; /* target profile, NULL if none */
    char *profile_path;               /* key path of "target_profile", for messages */
    struct validate_constraint *cons; /* merged constraints (built by section_finish) */
    size_t ncons;
    const char **unique; /* borrowed names from cons[] with unique */
    size_t nunique;
    struct name_set need; /* source attributes the rules read */
    struct name_set skip; /* names auto-mapping skips: exclude, operational, rule targets */
};

struct map {
    char *key_source;
    char *key_target; /* NULL when the map does not say */
    size_t nfallback; /* key.fallback rules for `dirmig mapping` */
    char *fb_source[MAP_MAX_FALLBACK];
    char *fb_target[MAP_MAX_FALLBACK];
    struct map_section sec[2];
    char **src_attrs; /* declared source attributes (NULL: not declared) */
    size_t nsrc_attrs;
    int has_src_attrs;
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
    free(r->path);
    for (size_t i = 0; i < r->nfroms; i++) {
        free(r->froms[i]);
    }
    free(r->froms);
    free(r->from_slot);
    free(r->from_raw);
    for (size_t i = 0; i < r->npieces; i++) {
        free(r->pieces[i].text);
    }
    free(r->pieces);
    free(r->value);
    for (size_t i = 0; i < r->nxf; i++) {
        transform_clear(&r->xf[i]);
    }
    free(r->xf);
    free(r->def);
    validate_constraint_clear(&r->cons);
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
    validate_profile_free(s->profile);
    free(s->profile_path);
    for (size_t i = 0; i < s->ncons; i++) {
        validate_constraint_clear(&s->cons[i]);
    }
    free(s->cons);
    free(s->unique);
    free(s->need.names);
    free(s->need.base_ok);
    free(s->need.lens);
    free(s->need.tab);
    free(s->skip.names);
    free(s->skip.base_ok);
    free(s->skip.lens);
    free(s->skip.tab);
}

void map_free(struct map *m)
{
    if (m == NULL) {
        return;
    }
    free(m->key_source);
    free(m->key_target);
    for (size_t i = 0; i < m->nfallback; i++) {
        free(m->fb_source[i]);
        free(m->fb_target[i]);
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(m->sec); i++) {
        section_clear(&m->sec[i]);
    }
    for (size_t i = 0; i < m->nsrc_attrs; i++) {
        free(m->src_attrs[i]);
    }
    free(m->src_attrs);
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
    const struct map *m; /* for the declared source attributes */
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

    if (!json_is_array(v)) {
        return cc_err(cc, path, "must be an array of transforms");
    }
    r->xf = calloc(json_array_size(v) ? json_array_size(v) : 1, sizeof(*r->xf));
    if (r->xf == NULL) {
        return cc_nomem(cc);
    }
    json_array_foreach (v, i, it) {
        char *ip = path_index(path, i);
        char why[200];
        int rc;

        if (ip == NULL) {
            return cc_nomem(cc);
        }
        rc = transform_compile(&r->xf[r->nxf], it, why, sizeof(why));
        if (rc == DM_OK) {
            r->nxf++;
        } else if (rc == DM_ENOMEM) {
            rc = cc_nomem(cc);
        } else {
            rc = cc_err(cc, ip, "%s", why);
        }
        free(ip);
        if (rc != DM_OK) {
            return rc;
        }
    }
    return DM_OK;
}

/* 1 when name (options such as ";lang-en" ignored) is a declared source attribute, or
 * when the map declares none. */
static int source_known(const struct map *m, const char *name, size_t len)
{
    size_t base = 0;

    if (!m->has_src_attrs) {
        return 1;
    }
    while (base < len && name[base] != ';') {
        base++;
    }
    for (size_t i = 0; i < m->nsrc_attrs; i++) {
        if (strlen(m->src_attrs[i]) == base && strncasecmp(m->src_attrs[i], name, base) == 0) {
            return 1;
        }
    }
    return 0;
}

/* "from": a name or a non-empty array of names. */
static int compile_from(struct map_rule *r, const struct map_cc *cc, const char *path,
                        const json_t *v)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;

    if (json_is_array(v) && n == 0) {
        return cc_err(cc, path, "must be a name or a non-empty array of names");
    }
    r->froms = calloc(n, sizeof(*r->froms));
    if (r->froms == NULL) {
        return cc_nomem(cc);
    }
    for (size_t i = 0; i < n; i++) {
        char *ip = json_is_array(v) ? path_index(path, i) : strdup(path);
        const json_t *it = json_is_array(v) ? json_array_get(v, i) : v;
        int rc;

        if (ip == NULL) {
            return cc_nomem(cc);
        }
        rc = need_name(&r->froms[i], cc, ip, it);
        if (rc == DM_OK) {
            r->nfroms++;
            if (!source_known(cc->m, r->froms[i], strlen(r->froms[i]))) {
                rc = cc_err(cc, ip, "\"%.64s\" is not a source attribute", r->froms[i]);
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
    r->path = strdup(path);
    if (r->target == NULL || r->path == NULL) {
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
    json_object_foreach ((json_t *)v, k, kv) {
        char *kp = path_join(path, k);

        if (kp == NULL) {
            return cc_nomem(cc);
        }
        if (strcmp(k, "from") == 0) {
            nsrc++;
            r->src = MAP_SRC_FROM;
            rc = compile_from(r, cc, kp, kv);
        } else if (strcmp(k, "template") == 0) {
            nsrc++;
            r->src = MAP_SRC_TEMPLATE;
            if (!json_is_string(kv)) {
                rc = cc_err(cc, kp, "must be a string");
            } else {
                rc = compile_template(r, cc, kp, json_string_value(kv), json_string_length(kv));
            }
            for (size_t i = 0; rc == DM_OK && i < r->npieces; i++) {
                if (r->pieces[i].is_attr &&
                    !source_known(cc->m, r->pieces[i].text, r->pieces[i].len)) {
                    rc = cc_err(cc, kp, "placeholder {%.64s} names no source attribute",
                                r->pieces[i].text);
                }
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
            char why[200];

            rc = validate_constraint_set(&r->cons, k, kv, why, sizeof(why));
            if (rc == DM_ENOTFOUND) {
                rc = cc_err(cc, kp,
                            "unknown key (known: from, template, value, transforms, "
                            "default, type, max_length, min_length, required, unique, "
                            "pattern, pii, max_utf8_bytes_per_char)");
            } else if (rc == DM_ENOMEM) {
                rc = cc_nomem(cc);
            } else if (rc != DM_OK) {
                rc = cc_err(cc, kp, "%s", why);
            }
        }
        free(kp);
        if (rc != DM_OK) {
            return rc;
        }
    }
    if (nsrc != 1) {
        return cc_err(cc, path, "needs exactly one of \"from\", \"template\", \"value\"");
    }
    if ((r->cons.has & VALIDATE_HAS_MAX) && (r->cons.has & VALIDATE_HAS_MIN) &&
        r->cons.min_length > r->cons.max_length) {
        return cc_err(cc, path, "min_length is greater than max_length");
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
    json_array_foreach (v, i, it) {
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
    json_object_foreach ((json_t *)v, k, kv) {
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
    json_object_foreach ((json_t *)v, k, kv) {
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

/* Resolves a profile path named in the map: absolute as is; else relative to the map
 * file's directory, then to its parent, then to the cwd (first that exists; the first
 * candidate when none does, so that the error names it). Returns a new string or NULL. */
static char *profile_resolve(const char *origin, const char *given)
{
    const char *slash = strrchr(origin, '/');
    int dlen = slash != NULL ? (int)(slash - origin) : 1;
    const char *dir = slash != NULL ? origin : ".";
    char *c1 = NULL, *c2 = NULL;

    if (given[0] == '/') {
        return strdup(given);
    }
    if (asprintf(&c1, "%.*s/%s", dlen, dir, given) < 0) {
        return NULL;
    }
    if (access(c1, F_OK) == 0) {
        return c1;
    }
    if (asprintf(&c2, "%.*s/../%s", dlen, dir, given) < 0) {
        free(c1);
        return NULL;
    }
    if (access(c2, F_OK) == 0) {
        free(c1);
        return c2;
    }
    free(c2);
    if (access(given, F_OK) == 0) {
        free(c1);
        return strdup(given);
    }
    return c1;
}

/* Loads the profile named by v (a string) at key path kp. */
static int load_profile(struct validate_profile **out, const struct map_cc *cc, const char *kp,
                        const json_t *v)
{
    struct dm_err perr = {0};
    char *path;
    int rc;

    if (!json_is_string(v) || json_string_length(v) == 0) {
        return cc_err(cc, kp, "must be a profile file path");
    }
    path = profile_resolve(cc->origin, json_string_value(v));
    if (path == NULL) {
        return cc_nomem(cc);
    }
    rc = validate_profile_load(out, path, &perr);
    free(path);
    if (rc == DM_ENOMEM) {
        return cc_nomem(cc);
    }
    if (rc != DM_OK) {
        return cc_err(cc, kp, "bad profile: %s", perr.msg);
    }
    return DM_OK;
}

/* FNV-1a over the ASCII-lowercased name (attribute names are ASCII). */
static uint32_t ci_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c - 'A' + 'a');
        }
        h = (h ^ c) * 16777619u;
    }
    return h;
}

/* 1 when a and b (len bytes each) are equal ignoring ASCII case. */
static int ci_equal(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

        if (x != y) {
            x = x >= 'A' && x <= 'Z' ? (unsigned char)(x - 'A' + 'a') : x;
            y = y >= 'A' && y <= 'Z' ? (unsigned char)(y - 'A' + 'a') : y;
            if (x != y) {
                return 0;
            }
        }
    }
    return 1;
}

/* Index of name (len bytes, hash h from ci_hash()) in ns, or -1. */
static long nset_find_h(const struct name_set *ns, const char *name, size_t len, uint32_t hash)
{
    if (ns->mask == 0) {
        return -1;
    }
    for (size_t h = hash & ns->mask; ns->tab[h] != 0; h = (h + 1) & ns->mask) {
        size_t at = ns->tab[h] - 1;

        if (ns->lens[at] == len && ci_equal(ns->names[at], name, len)) {
            return (long)at;
        }
    }
    return -1;
}

/* Index of name (len bytes) in ns, or -1. */
static long nset_find(const struct name_set *ns, const char *name, size_t len)
{
    if (ns->mask == 0) {
        return -1;
    }
    return nset_find_h(ns, name, len, ci_hash(name, len));
}

/* Makes room for max names (call once before nset_add). */
static int nset_init(struct name_set *ns, size_t max)
{
    size_t size = 8;

    while (size < 2 * max + 2) {
        size *= 2;
    }
    ns->names = calloc(max + 1, sizeof(*ns->names));
    ns->base_ok = calloc(max + 1, 1);
    ns->lens = calloc(max + 1, sizeof(*ns->lens));
    ns->tab = calloc(size, sizeof(*ns->tab));
    if (ns->names == NULL || ns->base_ok == NULL || ns->lens == NULL || ns->tab == NULL) {
        return DM_ENOMEM;
    }
    ns->mask = size - 1;
    return DM_OK;
}

/* Adds name (borrowed) unless present; returns its index. */
static size_t nset_add(struct name_set *ns, const char *name, int base_ok)
{
    long at = nset_find(ns, name, strlen(name));
    size_t h;

    if (at >= 0) {
        ns->base_ok[at] |= (unsigned char)base_ok;
        return (size_t)at;
    }
    for (h = ci_hash(name, strlen(name)) & ns->mask; ns->tab[h] != 0; h = (h + 1) & ns->mask) {
    }
    ns->names[ns->n] = name;
    ns->lens[ns->n] = strlen(name);
    ns->base_ok[ns->n] = (unsigned char)base_ok;
    ns->tab[h] = (uint32_t)(ns->n + 1);
    return ns->n++;
}

/* Builds the section's "need" (source names the rules read, with each rule's slots) and
 * "skip" (auto-mapping exclusions) sets. */
static int section_index(struct map_section *s)
{
    size_t nneed = 0;

    for (size_t i = 0; i < s->nrules; i++) {
        nneed += s->rules[i].nfroms + s->rules[i].npieces;
    }
    if (nset_init(&s->need, nneed) != DM_OK ||
        nset_init(&s->skip, s->nexclude + DM_ARRAY_LEN(operational_attrs) + s->nrules) != DM_OK) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; i < s->nrules; i++) {
        struct map_rule *r = &s->rules[i];

        r->from_slot = calloc(r->nfroms + 1, sizeof(*r->from_slot));
        r->from_raw = calloc(r->nfroms + 1, 1);
        if (r->from_slot == NULL || r->from_raw == NULL) {
            return DM_ENOMEM;
        }
        for (size_t f = 0; f < r->nfroms; f++) {
            r->from_slot[f] = nset_add(&s->need, r->froms[f], 0);
            r->from_raw[f] = (unsigned char)entry_is_sensitive_attr(r->froms[f]);
        }
        r->raw = entry_is_sensitive_attr(r->target);
        r->unique_target = 1;
        for (size_t k = 0; k < s->nrules; k++) {
            if (k != i && strcasecmp(s->rules[k].target, r->target) == 0) {
                r->unique_target = 0;
            }
        }
        for (size_t k = 0; k < r->npieces; k++) {
            if (r->pieces[k].is_attr) {
                r->pieces[k].slot = nset_add(&s->need, r->pieces[k].text, 0);
            }
        }
        (void)nset_add(&s->skip, r->target, 0);
    }
    for (size_t i = 0; i < s->nexclude; i++) {
        (void)nset_add(&s->skip, s->exclude[i], 1);
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(operational_attrs); i++) {
        (void)nset_add(&s->skip, operational_attrs[i], 1);
    }
    return DM_OK;
}

/* Builds s->cons (rule constraints merged over the profile) and s->unique, and checks each
 * rule's transform output type against its type constraint. */
static int section_finish(struct map_section *s, const struct map_cc *cc)
{
    size_t cap = s->nrules + (s->profile != NULL ? s->profile->nattrs : 0);

    if (section_index(s) != DM_OK) {
        return cc_nomem(cc);
    }
    s->cons = calloc(cap ? cap : 1, sizeof(*s->cons));
    s->unique = calloc(cap ? cap : 1, sizeof(*s->unique));
    if (s->cons == NULL || s->unique == NULL) {
        return cc_nomem(cc);
    }
    for (size_t i = 0; i < s->nrules; i++) {
        const struct map_rule *r = &s->rules[i];
        const struct validate_constraint *pc = validate_profile_find(s->profile, r->target);
        struct validate_constraint *c;
        enum transform_type ot = TRANSFORM_T_ANY;
        size_t last = 0;

        if (r->cons.has == 0 && pc == NULL) {
            continue;
        }
        c = &s->cons[s->ncons++];
        c->attr = strdup(r->target);
        if (c->attr == NULL || validate_constraint_merge(c, &r->cons) != DM_OK ||
            (pc != NULL && validate_constraint_merge(c, pc) != DM_OK)) {
            return cc_nomem(cc);
        }
        for (size_t k = 0; k < r->nxf; k++) {
            if (transform_output_type(&r->xf[k]) != TRANSFORM_T_ANY) {
                ot = transform_output_type(&r->xf[k]);
                last = k;
            }
        }
        /* literals the admin wrote must fit the type: "default", and "value" when no
         * transform changes it */
        if (!r->drop && (c->has & VALIDATE_HAS_TYPE) && r->def != NULL &&
            !validate_value_ok(c->type, r->def, r->def_len)) {
            char kp[400];

            snprintf(kp, sizeof(kp), "%s.default", r->path);
            return cc_err(cc, kp, "\"%.60s\" is not a valid %s", r->def,
                          transform_type_name(c->type));
        }
        if (!r->drop && (c->has & VALIDATE_HAS_TYPE) && r->src == MAP_SRC_VALUE && r->nxf == 0 &&
            !validate_value_ok(c->type, r->value, r->value_len)) {
            char kp[400];

            snprintf(kp, sizeof(kp), "%s.value", r->path);
            return cc_err(cc, kp, "\"%.60s\" is not a valid %s", r->value,
                          transform_type_name(c->type));
        }
        /* a "string" type takes any output */
        if (!r->drop && (c->has & VALIDATE_HAS_TYPE) && c->type != TRANSFORM_T_STRING &&
            ot != TRANSFORM_T_ANY && ot != c->type) {
            char kp[400];
            int own = (r->cons.has & VALIDATE_HAS_TYPE) != 0;

            if (own) {
                snprintf(kp, sizeof(kp), "%s.type", r->path);
            } else {
                snprintf(kp, sizeof(kp), "%s.transforms[%zu]", r->path, last);
            }
            return cc_err(cc, kp, "transform \"%s\" outputs %s but the type%s is %s",
                          transform_name(&r->xf[last]), transform_type_name(ot),
                          own ? "" : " (target profile)", transform_type_name(c->type));
        }
    }
    for (size_t i = 0; s->profile != NULL && i < s->profile->nattrs; i++) {
        const struct validate_constraint *pc = &s->profile->attrs[i];
        struct validate_constraint *c;
        size_t k;

        for (k = 0; k < s->ncons && strcasecmp(s->cons[k].attr, pc->attr) != 0; k++) {
        }
        if (k < s->ncons) {
            continue;
        }
        c = &s->cons[s->ncons++];
        c->attr = strdup(pc->attr);
        if (c->attr == NULL || validate_constraint_merge(c, pc) != DM_OK) {
            return cc_nomem(cc);
        }
    }
    for (size_t i = 0; i < s->ncons; i++) {
        if (s->cons[i].unique) {
            s->unique[s->nunique++] = s->cons[i].attr;
        }
    }
    return DM_OK;
}

/* "source_attributes" (names) or "source_profile" (a profile's attribute names). */
static int compile_sources(struct map *m, const struct map_cc *cc, const char *kp, const char *k,
                           const json_t *v)
{
    struct validate_profile *p = NULL;
    size_t n;
    int rc = DM_OK;

    if (strcmp(k, "source_profile") == 0) {
        rc = load_profile(&p, cc, kp, v);
        if (rc != DM_OK) {
            return rc;
        }
        n = p->nattrs;
    } else if (!json_is_array(v)) {
        return cc_err(cc, kp, "must be an array of attribute names");
    } else {
        n = json_array_size(v);
    }
    m->has_src_attrs = 1;
    m->src_attrs = realloc(m->src_attrs, (m->nsrc_attrs + n + 1) * sizeof(*m->src_attrs));
    if (m->src_attrs == NULL) {
        m->nsrc_attrs = 0;
        validate_profile_free(p);
        return cc_nomem(cc);
    }
    for (size_t i = 0; i < n && rc == DM_OK; i++) {
        char **slot = &m->src_attrs[m->nsrc_attrs];

        if (p != NULL) {
            *slot = strdup(p->attrs[i].attr);
            rc = *slot == NULL ? cc_nomem(cc) : DM_OK;
        } else {
            char *ip = path_index(kp, i);

            if (ip == NULL) {
                rc = cc_nomem(cc);
                break;
            }
            rc = need_name(slot, cc, ip, json_array_get(v, i));
            free(ip);
        }
        if (rc == DM_OK) {
            m->nsrc_attrs++;
        }
    }
    validate_profile_free(p);
    return rc;
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
    json_object_foreach ((json_t *)v, k, kv) {
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
        } else if (strcmp(k, "target_profile") == 0) {
            validate_profile_free(s->profile);
            s->profile = NULL;
            rc = load_profile(&s->profile, cc, kp, kv);
        } else {
            rc = cc_err(cc, kp,
                        "unknown key (known: auto, exclude, objectclasses, attributes, "
                        "target_profile)");
        }
        free(kp);
        if (rc != DM_OK) {
            return rc;
        }
    }
    return DM_OK;
}

/* "fallback": [{"source": "mail", "target": "mail"}, ...]: extra correlation rules tried in
 * order by `dirmig mapping` when the key finds no candidate. */
static int compile_fallback(struct map *m, const struct map_cc *cc, const char *path,
                            const json_t *v)
{
    size_t i;
    json_t *it;

    if (!json_is_array(v)) {
        return cc_err(cc, path, "must be an array of {\"source\", \"target\"} objects");
    }
    if (json_array_size(v) > MAP_MAX_FALLBACK) {
        return cc_err(cc, path, "at most %d fallback rules", MAP_MAX_FALLBACK);
    }
    json_array_foreach ((json_t *)v, i, it) {
        char ip[64];
        char *kp, *src = NULL, *tgt = NULL;
        json_t *sv, *tv;
        int rc;

        snprintf(ip, sizeof(ip), "%s[%zu]", path, i);
        sv = json_object_get(it, "source");
        tv = json_object_get(it, "target");
        if (!json_is_object(it) || json_object_size(it) != 2 || sv == NULL || tv == NULL) {
            return cc_err(cc, ip, "must be an object with exactly \"source\" and \"target\"");
        }
        kp = path_join(ip, "source");
        if (kp == NULL) {
            return cc_nomem(cc);
        }
        rc = need_name(&src, cc, kp, sv);
        free(kp);
        if (rc == DM_OK) {
            kp = path_join(ip, "target");
            if (kp == NULL) {
                free(src);
                return cc_nomem(cc);
            }
            rc = need_name(&tgt, cc, kp, tv);
            free(kp);
        }
        if (rc != DM_OK) {
            free(src);
            return rc;
        }
        m->fb_source[m->nfallback] = src;
        m->fb_target[m->nfallback] = tgt;
        m->nfallback++;
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
    json_object_foreach ((json_t *)v, k, kv) {
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
        } else if (strcmp(k, "fallback") == 0) {
            rc = compile_fallback(m, cc, kp, kv);
        } else {
            rc = cc_err(cc, kp, "unknown key (known: source, target, fallback)");
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
    struct map_cc cc = {origin != NULL ? origin : "map", pos, err, NULL};
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
    cc.m = m;
    if (!json_is_object(root)) {
        rc = cc_err(&cc, prefix, "the map must be a JSON object");
        goto done;
    }
    /* first the declarations the rules are checked against */
    json_object_foreach ((json_t *)root, k, kv) {
        char *kp = NULL;

        if (strcmp(k, "source_attributes") != 0 && strcmp(k, "source_profile") != 0 &&
            strcmp(k, "target_profile") != 0) {
            continue;
        }
        kp = path_join(prefix, k);
        if (kp == NULL) {
            rc = cc_nomem(&cc);
            goto done;
        }
        if (k[0] == 't') {
            rc = load_profile(&m->sec[MAP_USERS].profile, &cc, kp, kv);
        } else {
            rc = compile_sources(m, &cc, kp, k, kv);
        }
        free(kp);
        if (rc != DM_OK) {
            goto done;
        }
    }
    json_object_foreach ((json_t *)root, k, kv) {
        char *kp = path_join(prefix, k);

        if (kp == NULL) {
            rc = cc_nomem(&cc);
            goto done;
        }
        if (strcmp(k, "source_attributes") == 0 || strcmp(k, "source_profile") == 0 ||
            strcmp(k, "target_profile") == 0) {
            rc = DM_OK;
        } else if (strcmp(k, "key") == 0) {
            rc = compile_key(m, &cc, kp, kv);
        } else if (strcmp(k, section_names[MAP_USERS]) == 0) {
            rc = compile_section(&m->sec[MAP_USERS], &cc, kp, kv);
        } else if (strcmp(k, section_names[MAP_GROUPS]) == 0) {
            rc = compile_section(&m->sec[MAP_GROUPS], &cc, kp, kv);
        } else {
            rc = cc_err(&cc, kp,
                        "unknown key (known: key, users, groups, source_attributes, "
                        "source_profile, target_profile)");
        }
        free(kp);
        if (rc != DM_OK) {
            goto done;
        }
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(m->sec); i++) {
        rc = section_finish(&m->sec[i], &cc);
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
    for (size_t i = 0; i < DM_ARRAY_LEN(m->sec); i++) {
        if (section_index(&m->sec[i]) != DM_OK) {
            map_free(m);
            return dm_err_set(err, DM_ENOMEM, "map_default");
        }
    }
    *out = m;
    return DM_OK;
}

int map_load_file(struct map **out, const char *path, struct dm_err *err)
{
    json_t *root = NULL;
    struct jsonpos *pos = NULL;
    int rc;

    rc = jsonpos_load_file(&root, &pos, path, MAP_FILE_LIMIT, err);
    if (rc == DM_OK) {
        rc = map_compile(out, root, path, pos, "", err);
    }
    jsonpos_free(pos);
    json_decref(root);
    return rc;
}

/* ---- apply ---- */

/* attr_dedup(), which leaves a single value as it is. */
static void dedup(struct dm_attr *a)
{
    if (a->nvals > 1) {
        attr_dedup(a);
    }
}

/* Excluded by the section's list or as operational: full name or the name without
 * options ("cn;lang-en" is excluded by "cn"); or the target of an explicit rule (full
 * name only). */
static int auto_skipped(const struct map_section *s, const char *name)
{
    size_t base = strcspn(name, ";");
    long at;

    if (nset_find(&s->skip, name, strlen(name)) >= 0) {
        return 1;
    }
    if (name[base] == ';') {
        at = nset_find(&s->skip, name, base);
        return at >= 0 && s->skip.base_ok[at];
    }
    return 0;
}

/* The source entry with the attributes the section's rules read, found once per entry:
 * slots[i] is the attribute named need.names[i], NULL when absent. */
struct map_input {
    const struct entry *e;
    const struct dm_attr **slots;
};

#define MAP_STACK_SLOTS 64

/* Fills ms for src; slots points to stack (MAP_STACK_SLOTS long) or to a new array that
 * the caller frees when it is not stack. */
static int src_index(struct map_input *ms, const struct map_section *s, const struct entry *src,
                     const struct dm_attr **stack)
{
    ms->e = src;
    ms->slots = stack;
    if (s->need.n > MAP_STACK_SLOTS) {
        ms->slots = calloc(s->need.n, sizeof(*ms->slots));
        if (ms->slots == NULL) {
            return DM_ENOMEM;
        }
    } else {
        memset(stack, 0, s->need.n * sizeof(*stack));
    }
    for (size_t i = 0; i < src->nattrs && s->need.n > 0; i++) {
        const char *name = src->attrs[i].name;
        uint32_t h = 2166136261u;
        size_t len = 0;
        long at;

        /* ci_hash() and strlen() in one pass */
        for (; name[len] != '\0'; len++) {
            unsigned char c = (unsigned char)name[len];

            if (c >= 'A' && c <= 'Z') {
                c = (unsigned char)(c - 'A' + 'a');
            }
            h = (h ^ c) * 16777619u;
        }
        at = nset_find_h(&s->need, name, len, h);

        if (at >= 0 && ms->slots[at] == NULL) {
            ms->slots[at] = &src->attrs[i];
        }
    }
    return DM_OK;
}

/* map_explain()'s recorder; NULL in map_apply(). */
struct map_trace {
    struct buf *out;
    int mask; /* print values as *** */
};

#define TRACE_SHOW_VALUES 10 /* values listed per line */
#define TRACE_SHOW_BYTES 160 /* bytes shown per value */

/* Appends one value quoted, bytes outside printable ASCII / valid UTF-8 as \xNN. */
static int trace_val(struct buf *b, const unsigned char *p, size_t len, int mask)
{
    size_t nch = 0, shown = len < TRACE_SHOW_BYTES ? len : TRACE_SHOW_BYTES;
    int maxb = 0, utf8, rc;

    if (mask) {
        return buf_puts(b, "***");
    }
    utf8 = transform_utf8_len(&nch, &maxb, (const char *)p, len) == 0;
    rc = buf_puts(b, "\"");
    for (size_t i = 0; i < shown && rc == DM_OK; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            rc = buf_printf(b, "\\%c", p[i]);
        } else if ((p[i] >= 0x20 && p[i] < 0x7f) || (utf8 && p[i] >= 0x80)) {
            rc = buf_append(b, p + i, 1);
        } else {
            rc = buf_printf(b, "\\x%02x", p[i]);
        }
    }
    if (rc == DM_OK) {
        rc = buf_puts(b, "\"");
    }
    if (rc == DM_OK && shown < len) {
        rc = buf_printf(b, "... (%zu bytes)", len);
    }
    return rc;
}

/* Appends "  label: [v1, v2]" and a newline. */
static int trace_list(struct buf *b, const char *label, const struct dm_val *v, size_t n, int mask)
{
    int rc = buf_printf(b, "  %s: [", label);

    for (size_t i = 0; i < n && i < TRACE_SHOW_VALUES && rc == DM_OK; i++) {
        if (i > 0) {
            rc = buf_puts(b, ", ");
        }
        if (rc == DM_OK) {
            rc = trace_val(b, v[i].data, v[i].len, mask);
        }
    }
    if (rc == DM_OK && n > TRACE_SHOW_VALUES) {
        rc = buf_printf(b, ", ... (%zu values)", n);
    }
    return rc == DM_OK ? buf_puts(b, "]\n") : rc;
}

static int trace_vals(struct map_trace *t, const char *label, const struct transform_vals *l)
{
    if (t == NULL) {
        return DM_OK;
    }
    return trace_list(t->out, label, l->v, l->n, t->mask);
}

/* Expands a template with the first value of each placeholder and appends the result to
 * l (one allocation of the exact size); *missing set (nothing added) when an attribute is
 * absent. */
static int expand_template(struct transform_vals *l, int *missing, const struct map_rule *r,
                           const struct map_input *src)
{
    size_t len = 0, at = 0;
    unsigned char *p;

    *missing = 0;
    for (size_t i = 0; i < r->npieces; i++) {
        const struct map_piece *pc = &r->pieces[i];

        if (pc->is_attr) {
            const struct dm_attr *a = src->slots[pc->slot];

            if (a == NULL || a->nvals == 0) {
                *missing = 1;
                return DM_OK;
            }
            len += a->vals[0].len;
        } else {
            len += pc->len;
        }
    }
    if (len > MAP_VALUE_LIMIT) {
        return DM_ELIMIT;
    }
    p = malloc(len + 1);
    if (p == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; i < r->npieces; i++) {
        const struct map_piece *pc = &r->pieces[i];

        if (pc->is_attr) {
            const struct dm_val *v = &src->slots[pc->slot]->vals[0];

            memcpy(p + at, v->data, v->len);
            at += v->len;
        } else {
            memcpy(p + at, pc->text, pc->len);
            at += pc->len;
        }
    }
    p[len] = '\0';
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        struct dm_val *nv = realloc(l->v, nc * sizeof(*nv));

        if (nv == NULL) {
            free(p);
            return DM_ENOMEM;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n].data = p;
    l->v[l->n].len = len;
    l->n++;
    return DM_OK;
}

/* The source values of r for src (before transforms), into l; *raw set when a source is a
 * sensitive attribute. */
static int rule_source(struct transform_vals *l, int *raw, const struct map_rule *r,
                       const struct map_input *src, struct map_trace *t)
{
    int rc = DM_OK, missing = 0;
    char label[300];
    /* a chain starting with "first" needs one value: skip copying the rest (not when
     * explaining, which shows every source value) */
    int only_first = t == NULL && r->nxf > 0 && r->xf[0].op == TRANSFORM_FIRST;

    switch (r->src) {
    case MAP_SRC_FROM:
        for (size_t f = 0; f < r->nfroms; f++) {
            const struct dm_attr *sa = src->slots[r->from_slot[f]];

            if (sa == NULL || sa->nvals == 0) {
                if (t != NULL) {
                    rc = buf_printf(t->out, "  source %s: (absent)\n", r->froms[f]);
                }
                continue;
            }
            *raw = *raw || r->from_raw[f];
            for (size_t i = 0; i < (only_first ? 1 : sa->nvals) && rc == DM_OK; i++) {
                rc = transform_vals_add(l, sa->vals[i].data, sa->vals[i].len);
            }
            if (rc == DM_OK && t != NULL) {
                snprintf(label, sizeof(label), "source %s", r->froms[f]);
                rc = trace_vals(t, label, l);
            }
            break;
        }
        break;
    case MAP_SRC_TEMPLATE: {
        rc = expand_template(l, &missing, r, src);
        if (rc == DM_OK && missing && t != NULL) {
            rc = buf_puts(t->out, "  template: (a placeholder's attribute is absent)\n");
        } else if (rc == DM_OK) {
            rc = trace_vals(t, "template", l);
        }
        break;
    }
    case MAP_SRC_VALUE:
        rc = transform_vals_add(l, r->value, r->value_len);
        if (rc == DM_OK) {
            rc = trace_vals(t, "value", l);
        }
        break;
    }
    return rc;
}

/* 1 for steps transform_run_inplace() does itself. */
static int step_inplace(const struct transform_step *x)
{
    switch (x->op) {
    case TRANSFORM_ALL:
    case TRANSFORM_FIRST:
    case TRANSFORM_DEFAULT:
    case TRANSFORM_TRIM:
    case TRANSFORM_LOWER:
    case TRANSFORM_UPPER:
        return 1;
    default:
        return 0;
    }
}

/* When the first copying step of r can read the source values where they are, sets view
 * to them (borrowed: never modified or freed), *k to that step and returns 1: saves a copy
 * of each source value. Only for a non-sensitive "from" rule whose chain starts with that
 * step, or with "first" then that step (and a non-empty first value, which "first" would
 * have kept as is). */
static int borrow_source(struct transform_vals *view, size_t *k, const struct map_rule *r,
                         const struct map_input *src)
{
    const struct dm_attr *sa = NULL;
    size_t f;

    if (r->src != MAP_SRC_FROM || r->raw || r->nxf == 0) {
        return 0;
    }
    for (f = 0; f < r->nfroms && sa == NULL; f++) {
        sa = src->slots[r->from_slot[f]];
        if (sa != NULL && sa->nvals == 0) {
            sa = NULL;
        }
    }
    if (sa == NULL || r->from_raw[f - 1]) {
        return 0;
    }
    view->v = sa->vals;
    view->n = sa->nvals;
    view->cap = sa->nvals;
    *k = 0;
    if (r->xf[0].op == TRANSFORM_FIRST) {
        if (sa->vals[0].len == 0) {
            return 0;
        }
        view->n = 1;
        *k = 1;
    }
    return *k < r->nxf && !step_inplace(&r->xf[*k]);
}

/* Computes the values rule r produces for src: source values, every transform in order
 * (not for sensitive attributes: byte-exact), then the rule's default when nothing is
 * left. a and b are scratch lists, empty on entry (their arrays are reused); *res is set to
 * the one holding the values (the caller takes or resets them), the other is left empty. */
static int rule_run(struct transform_vals **res, const struct map_rule *r,
                    const struct map_input *src, struct map_trace *t, struct transform_vals *a,
                    struct transform_vals *b)
{
    struct transform_vals view, *cur = a, *nxt = b, *tmp;
    int raw = r->raw;
    int rc;
    char label[80];
    size_t k0 = 0;

    if (t == NULL && borrow_source(&view, &k0, r, src)) {
        /* same result as copying the source values and running steps [0, k0] on them */
        rc = transform_run(cur, &r->xf[k0], &view);
        k0++;
    } else {
        k0 = 0;
        rc = rule_source(cur, &raw, r, src, t);
    }
    if (rc == DM_OK && raw && r->nxf > 0 && t != NULL) {
        rc = buf_puts(t->out, "  transforms skipped: sensitive attribute, copied byte-exact\n");
    }
    for (size_t k = k0; !raw && k < r->nxf && rc == DM_OK; k++) {
        /* steps on an empty list are not shown unless they can produce a value */
        int shown = cur->n > 0 || r->xf[k].op == TRANSFORM_DEFAULT;

        rc = transform_run_inplace(cur, &r->xf[k]);
        if (rc == DM_ENOTFOUND) {
            rc = transform_run(nxt, &r->xf[k], cur);
            tmp = cur;
            cur = nxt;
            nxt = tmp;
        }
        if (rc == DM_OK && t != NULL && shown) {
            snprintf(label, sizeof(label), "step %zu %s", k + 1, transform_name(&r->xf[k]));
            rc = trace_vals(t, label, cur);
        }
    }
    if (rc == DM_OK && cur->n == 0 && r->def != NULL) {
        rc = transform_vals_add(cur, r->def, r->def_len);
        if (rc == DM_OK) {
            rc = trace_vals(t, "default", cur);
        }
    }
    transform_vals_reset(nxt);
    if (rc != DM_OK) {
        transform_vals_reset(cur);
        return rc;
    }
    *res = cur;
    return DM_OK;
}

/* rule_run() with lists of its own: the values land in *res (initialised and empty). */
static int rule_values(struct transform_vals *res, const struct map_rule *r,
                       const struct map_input *src, struct map_trace *t)
{
    struct transform_vals a, b, *cur = NULL;
    int rc;

    transform_vals_init(&a);
    transform_vals_init(&b);
    rc = rule_run(&cur, r, src, t, &a, &b);
    if (rc == DM_OK) {
        /* hand the list over; cur is left empty for the frees below */
        *res = *cur;
        transform_vals_init(cur);
    }
    transform_vals_free(&a);
    transform_vals_free(&b);
    return rc;
}

/* Appends a value to a, taking ownership of data (len bytes + NUL, from malloc). Saves the
 * copy attr_add_value() would make of a value the transforms just built. */
static int attr_take_value(struct dm_attr *a, unsigned char *data, size_t len)
{
    if (a->nvals == a->cap) {
        size_t n = a->cap ? a->cap * 2 : 4;
        struct dm_val *v = realloc(a->vals, n * sizeof(*v));

        if (v == NULL) {
            return DM_ENOMEM;
        }
        a->vals = v;
        a->cap = n;
    }
    a->vals[a->nvals].data = data;
    a->vals[a->nvals].len = len;
    a->nvals++;
    return DM_OK;
}

/* The target attribute of r in dst, created. A rule whose target no other rule shares
 * appends it without a search: auto-mapping skips rule targets, so it is not there yet. */
static struct dm_attr *rule_attr(struct entry *dst, const struct map_rule *r)
{
    return r->unique_target ? entry_attr_append(dst, r->target) : entry_attr_add(dst, r->target);
}

/* Copies the values of the first present "from" attribute (or the default) straight into
 * dst: the common rename case, without the transform lists. */
static int rule_copy(const struct map_rule *r, const struct map_input *src, struct entry *dst)
{
    const struct dm_attr *sa = NULL;
    struct dm_attr *a;
    int rc = DM_OK;

    for (size_t f = 0; f < r->nfroms && sa == NULL; f++) {
        sa = src->slots[r->from_slot[f]];
        if (sa != NULL && sa->nvals == 0) {
            sa = NULL;
        }
    }
    if (sa == NULL && r->def == NULL) {
        return DM_OK;
    }
    a = rule_attr(dst, r);
    if (a == NULL) {
        return DM_ENOMEM;
    }
    if (sa == NULL) {
        return attr_add_value(a, r->def, r->def_len);
    }
    for (size_t i = 0; i < sa->nvals && rc == DM_OK; i++) {
        rc = attr_add_value(a, sa->vals[i].data, sa->vals[i].len);
    }
    dedup(a);
    return rc;
}

/* Applies rule r; scratch is two empty value lists whose arrays map_apply() reuses from
 * rule to rule (left empty). */
static int rule_apply(const struct map_rule *r, const struct map_input *src, struct entry *dst,
                      struct transform_vals *scratch, struct dm_err *err)
{
    struct transform_vals *vals = NULL;
    struct dm_attr *a;
    int rc;

    if (r->src == MAP_SRC_FROM && r->nxf == 0) {
        rc = rule_copy(r, src, dst);
    } else {
        rc = rule_run(&vals, r, src, NULL, &scratch[0], &scratch[1]);
    }
    if (rc == DM_OK && vals != NULL && vals->n > 0) {
        size_t i;

        a = rule_attr(dst, r);
        if (a == NULL) {
            rc = DM_ENOMEM;
        }
        for (i = 0; i < vals->n && rc == DM_OK; i++) {
            rc = attr_take_value(a, vals->v[i].data, vals->v[i].len);
        }
        if (rc == DM_OK) {
            vals->n = 0; /* every value now belongs to dst */
            dedup(a);
        } else {
            /* values [i-1, n) were not taken */
            for (size_t j = 0; j + 1 < i; j++) {
                vals->v[j].data = NULL;
            }
        }
    }
    if (vals != NULL) {
        transform_vals_reset(vals);
    }
    if (rc != DM_OK) {
        dm_err_dn(err, src->e->dn);
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
    struct dm_attr *a;
    size_t keep = 0;

    if (s->nocs == 0) {
        return DM_OK;
    }
    a = entry_attr(dst, "objectClass");
    if (a == NULL) {
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
    const struct dm_attr *stack[MAP_STACK_SLOTS];
    struct map_input ms = {src, stack};
    struct transform_vals scratch[2];
    struct entry *dst = NULL;
    int rc = DM_OK;

    assert((unsigned)kind < DM_ARRAY_LEN(m->sec));
    s = &m->sec[kind];
    transform_vals_init(&scratch[0]);
    transform_vals_init(&scratch[1]);
    if (src_index(&ms, s, src, stack) != DM_OK) {
        dm_err_dn(err, src->dn);
        return dm_err_set(err, DM_ENOMEM, "map: out of memory building the target entry");
    }
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
            dedup(da);
        }
    }
    for (size_t i = 0; i < s->nrules; i++) {
        if (s->rules[i].drop) {
            continue;
        }
        rc = rule_apply(&s->rules[i], &ms, dst, scratch, err);
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
    if (ms.slots != stack) {
        free(ms.slots);
    }
    transform_vals_free(&scratch[0]);
    transform_vals_free(&scratch[1]);
    entry_free(dst);
    return rc;
}

/* ---- constraints and explain ---- */

const struct validate_constraint *map_constraints(const struct map *m, enum map_kind kind,
                                                  size_t *n)
{
    assert((unsigned)kind < DM_ARRAY_LEN(m->sec));
    *n = m->sec[kind].ncons;
    return m->sec[kind].cons;
}

size_t map_unique_attrs(const struct map *m, enum map_kind kind, const char ***out)
{
    assert((unsigned)kind < DM_ARRAY_LEN(m->sec));
    *out = m->sec[kind].unique;
    return m->sec[kind].nunique;
}

/* Appends the final values of attr in dst and its problems (marking them printed). */
static int explain_tail(struct buf *out, const struct entry *dst, const char *attr, int mask,
                        const struct map_problem *pr, size_t np, unsigned char *printed)
{
    const struct dm_attr *a = entry_attr(dst, attr);
    int rc;

    if (a == NULL || a->nvals == 0) {
        rc = buf_puts(out, "  final: (no value)\n");
    } else {
        rc = trace_list(out, "final", a->vals, a->nvals, mask);
    }
    for (size_t i = 0; i < np && rc == DM_OK; i++) {
        if (!printed[i] && strcasecmp(pr[i].attr, attr) == 0) {
            printed[i] = 1;
            rc = buf_printf(out, "  problem %s: %s\n", pr[i].category, pr[i].msg);
        }
    }
    return rc;
}

/* 1 when any attribute rule r reads is pii or sensitive. */
static int rule_reads_pii(const struct map *m, enum map_kind kind, const struct map_rule *r)
{
    for (size_t i = 0; i < r->nfroms; i++) {
        if (map_attr_is_pii(m, kind, r->froms[i])) {
            return 1;
        }
    }
    for (size_t i = 0; i < r->npieces; i++) {
        if (r->pieces[i].is_attr && map_attr_is_pii(m, kind, r->pieces[i].text)) {
            return 1;
        }
    }
    return 0;
}

static int explain_rule(struct buf *out, const struct map *m, enum map_kind kind,
                        const struct map_rule *r, const struct map_input *src)
{
    struct map_trace t = {out, 0};
    struct transform_vals vals;
    int rc;

    t.mask = map_attr_is_pii(m, kind, r->target) || rule_reads_pii(m, kind, r);
    if (r->drop) {
        return buf_printf(out, "%s: dropped (null rule)\n", r->target);
    }
    rc = buf_printf(out, "%s: ", r->target);
    if (rc == DM_OK && r->src == MAP_SRC_FROM) {
        rc = buf_puts(out, "from ");
        for (size_t i = 0; i < r->nfroms && rc == DM_OK; i++) {
            rc = buf_printf(out, "%s%s", i > 0 ? " | " : "", r->froms[i]);
        }
    } else if (rc == DM_OK && r->src == MAP_SRC_TEMPLATE) {
        rc = buf_puts(out, "template \"");
        for (size_t i = 0; i < r->npieces && rc == DM_OK; i++) {
            rc = buf_printf(out, r->pieces[i].is_attr ? "{%s}" : "%s", r->pieces[i].text);
        }
        if (rc == DM_OK) {
            rc = buf_puts(out, "\"");
        }
    } else if (rc == DM_OK) {
        rc = buf_puts(out, "value");
    }
    if (rc == DM_OK) {
        rc = buf_puts(out, "\n");
    }
    transform_vals_init(&vals);
    if (rc == DM_OK) {
        rc = rule_values(&vals, r, src, &t);
    }
    transform_vals_free(&vals);
    return rc;
}

int map_explain(struct buf *out, const struct map *m, enum map_kind kind, const struct entry *src,
                struct dm_err *err)
{
    const struct map_section *s;
    const struct dm_attr *stack[MAP_STACK_SLOTS];
    struct map_input ms = {src, stack};
    struct entry *dst = NULL;
    struct map_problem *pr = NULL;
    unsigned char *printed = NULL;
    size_t np = 0;
    int rc;

    assert((unsigned)kind < DM_ARRAY_LEN(m->sec));
    s = &m->sec[kind];
    rc = map_apply(&dst, m, kind, src, err);
    if (rc != DM_OK) {
        return rc;
    }
    rc = src_index(&ms, s, src, stack);
    if (rc != DM_OK) {
        goto nomem;
    }
    rc = map_check(&pr, &np, m, kind, dst, err);
    if (rc != DM_OK) {
        goto done;
    }
    printed = calloc(np + 1, 1);
    if (printed == NULL) {
        rc = DM_ENOMEM;
        goto nomem;
    }
    rc = buf_printf(out, "entry: %s\nkey: %s\nsection: %s\n", src->dn ? src->dn : "(none)",
                    src->key ? src->key : "(none)", section_names[kind]);
    for (size_t i = 0; s->auto_by_name && i < src->nattrs && rc == DM_OK; i++) {
        const struct dm_attr *sa = &src->attrs[i];
        int mask = map_attr_is_pii(m, kind, sa->name);

        if (sa->nvals == 0 || auto_skipped(s, sa->name)) {
            continue;
        }
        rc = buf_printf(out, "%s: auto (by-name)\n", sa->name);
        if (rc == DM_OK) {
            rc = trace_list(out, "source", sa->vals, sa->nvals, mask);
        }
        if (rc == DM_OK && strcasecmp(sa->name, "objectClass") == 0 && s->nocs > 0) {
            rc = buf_puts(out, "  objectclasses table applied\n");
        }
        if (rc == DM_OK) {
            rc = explain_tail(out, dst, sa->name, mask, pr, np, printed);
        }
    }
    for (size_t i = 0; i < s->nrules && rc == DM_OK; i++) {
        const struct map_rule *r = &s->rules[i];

        rc = explain_rule(out, m, kind, r, &ms);
        if (rc == DM_OK) {
            int mask = map_attr_is_pii(m, kind, r->target) || rule_reads_pii(m, kind, r);

            rc = explain_tail(out, dst, r->target, mask, pr, np, printed);
        }
    }
    for (size_t i = 0; i < np && rc == DM_OK; i++) {
        if (!printed[i]) {
            rc = buf_printf(out, "%s: (no rule)\n  problem %s: %s\n", pr[i].attr, pr[i].category,
                            pr[i].msg);
        }
    }
    if (rc == DM_OK) {
        rc = buf_printf(out, "problems: %zu\n", np);
    }
    if (rc == DM_OK) {
        goto done;
    }
nomem:
    dm_err_dn(err, src->dn);
    rc = dm_err_set(
        err, rc, rc == DM_ELIMIT ? "map_explain: output too large" : "map_explain: out of memory");
done:
    if (ms.slots != stack) {
        free(ms.slots);
    }
    free(printed);
    free(pr);
    entry_free(dst);
    return rc;
}

const char *map_key_target(const struct map *m)
{
    return m->key_target;
}

size_t map_key_fallbacks(const struct map *m, const char *const **sources,
                         const char *const **targets)
{
    *sources = (const char *const *)m->fb_source;
    *targets = (const char *const *)m->fb_target;
    return m->nfallback;
}
