/*
 * map_compile.c: a map's JSON (map.h) into the plain arrays of map_priv.h: map_compile(),
 * map_load_file() and map_default(). Every key is checked here, once; errors name the
 * place as "file:line:col: key.path: problem" (jsonpos). Target and source profiles are
 * loaded here too, and each section's constraint table and name sets are built.
 */
#include <config.h>
#include "schema/map_priv.h"
#include "agent/util/buf.h"
#include "agent/util/datadir.h"
#include "agent/util/suggest.h"
#include "schema/transform.h"
#include "schema/validate.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAP_FILE_LIMIT ((size_t)16 << 20) /* a map file larger than this is refused */

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

/* Where the problems of one compile go when every one is wanted (map_compile_all()). */
struct map_errs {
    struct buf *lines; /* one problem a line, at most MAP_MAX_ERRORS */
    size_t n;          /* problems found */
};

#define MAP_MAX_ERRORS 20

struct map_cc {
    const char *origin;
    const struct jsonpos *pos;
    struct dm_err *err;      /* the first problem */
    const struct map *m;     /* for the declared source attributes */
    struct map_errs *errors; /* NULL: stop at the first problem */
};

/* Goes on to the next key or rule after a problem (rc DM_EINVAL) when every problem is
 * wanted; allocation failures always stop. */
static int cc_go_on(const struct map_cc *cc, int rc)
{
    return rc == DM_EINVAL && cc->errors != NULL;
}

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

    char text[700];

    va_start(ap, fmt);
    vsnprintf(problem, sizeof(problem), fmt, ap);
    va_end(ap);
    if (cc->pos != NULL && jsonpos_find(cc->pos, path, &line, &col) == 0) {
        snprintf(text, sizeof(text), "%s:%d:%d: %s: %s", cc->origin, line, col, shown, problem);
    } else {
        snprintf(text, sizeof(text), "%s: %s: %s", cc->origin, shown, problem);
    }
    if (cc->errors == NULL || cc->errors->n == 0) {
        dm_err_set(cc->err, DM_EINVAL, "%s", text);
    }
    if (cc->errors != NULL && ++cc->errors->n <= MAP_MAX_ERRORS) {
        int brc = buf_printf(cc->errors->lines, "%s\n", text);
        (void)brc; /* a list cut short still has the first problem in err */
    }
    return DM_EINVAL;
}

/* "unknown key", with the closest of the known keys (a comma-separated list) as a "did you
 * mean", or the whole list when none is close. */
static int cc_unknown(const struct map_cc *cc, const char *path, const char *key, const char *known)
{
    const char *cands[24];
    char list[400], *save = NULL, *tok;
    const char *best;
    size_t n = 0;

    snprintf(list, sizeof(list), "%s", known);
    for (tok = strtok_r(list, ", ", &save); tok != NULL && n < DM_ARRAY_LEN(cands);
         tok = strtok_r(NULL, ", ", &save)) {
        cands[n++] = tok;
    }
    best = suggest_closest(key, cands, n);
    if (best != NULL) {
        return cc_err(cc, path, "unknown key (did you mean \"%s\"?)", best);
    }
    return cc_err(cc, path, "unknown key (known: %s)", known);
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

/* "authoritative" | "create_only" | "merge" -> enum map_ownership, or -1. */
static int ownership_of(const json_t *v)
{
    const char *s = json_string_value(v);

    if (s == NULL) {
        return -1;
    }
    for (int o = MAP_OWN_AUTHORITATIVE; o <= MAP_OWN_MERGE; o++) {
        if (strcmp(s, map_ownership_name((enum map_ownership)o)) == 0) {
            return o;
        }
    }
    return -1;
}

/* One "attributes" member; path is that of the member. */
static int compile_rule(struct map_rule *r, const struct map_cc *cc, const char *path,
                        const char *target, const json_t *v)
{
    const char *k;
    json_t *kv;
    int nsrc = 0, rc = DM_OK;

    r->own = -1;
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
        } else if (strcmp(k, "ownership") == 0) {
            r->own = ownership_of(kv);
            if (r->own < 0) {
                rc = cc_err(cc, kp, "must be \"authoritative\", \"create_only\" or \"merge\"");
            }
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
                rc = cc_unknown(cc, kp, k,
                                "from, template, value, transforms, default, ownership, type, "
                                "max_length, "
                                "min_length, required, unique, pattern, pii, "
                                "max_utf8_bytes_per_char");
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
    int bad = DM_OK;

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
        if (cc_go_on(cc, rc)) {
            bad = rc;
        } else if (rc != DM_OK) {
            return rc;
        }
    }
    return bad;
}

/* Resolves a profile path named in the map: absolute as is; else relative to the map
 * file's directory, then to its parent, then to the cwd, then to dirmig's data directory
 * ("profiles/okta-user.json", agent/util/datadir.h): the first that exists; the first
 * candidate when none does, so that the error names it. Returns a new string or NULL. */
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
    c2 = datadir_find(given);
    if (c2 != NULL) {
        free(c1);
        return c2;
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

/* Builds the section's "need" (source names the rules read, with each rule's slots) and
 * "skip" (auto-mapping exclusions) sets. */
static int section_index(struct map_section *s)
{
    size_t nneed = 0;

    for (size_t i = 0; i < s->nrules; i++) {
        nneed += s->rules[i].nfroms + s->rules[i].npieces;
    }
    if (map_nset_init(&s->need, nneed) != DM_OK ||
        map_nset_init(&s->skip, s->nexclude + DM_ARRAY_LEN(operational_attrs) + s->nrules) !=
            DM_OK) {
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
            r->from_slot[f] = map_nset_add(&s->need, r->froms[f], 0);
            r->from_raw[f] = (unsigned char)entry_is_sensitive_attr(r->froms[f]);
        }
        r->raw = entry_is_sensitive_attr(r->target);
        entry_name_init(&r->tname, r->target);
        r->unique_target = 1;
        for (size_t k = 0; k < s->nrules; k++) {
            if (k != i && strcasecmp(s->rules[k].target, r->target) == 0) {
                r->unique_target = 0;
            }
        }
        for (size_t k = 0; k < r->npieces; k++) {
            if (r->pieces[k].is_attr) {
                r->pieces[k].slot = map_nset_add(&s->need, r->pieces[k].text, 0);
            }
        }
        (void)map_nset_add(&s->skip, r->target, 0);
    }
    s->named = calloc(s->nrules + 1, sizeof(*s->named));
    if (s->named == NULL) {
        return DM_ENOMEM;
    }
    for (size_t i = 0; i < s->nrules; i++) {
        int seen = s->rules[i].drop;
        for (size_t k = 0; k < s->nnamed && !seen; k++) {
            seen = strcasecmp(s->named[k], s->rules[i].target) == 0;
        }
        if (!seen) {
            s->named[s->nnamed++] = s->rules[i].target;
        }
    }
    for (size_t i = 0; i < s->nexclude; i++) {
        (void)map_nset_add(&s->skip, s->exclude[i], 1);
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(operational_attrs); i++) {
        (void)map_nset_add(&s->skip, operational_attrs[i], 1);
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

/* Section "ownership": {"attr": "merge", ...}, for ruled and auto-mapped attributes. */
static int compile_owns(struct map_section *s, const struct map_cc *cc, const char *path,
                        const json_t *v)
{
    const char *k;
    json_t *kv;

    if (!json_is_object(v)) {
        return cc_err(cc, path, "must be an object of \"attribute\": \"mode\"");
    }
    s->owns = calloc(json_object_size(v) ? json_object_size(v) : 1, sizeof(*s->owns));
    if (s->owns == NULL) {
        return cc_nomem(cc);
    }
    json_object_foreach ((json_t *)v, k, kv) {
        int o = ownership_of(kv);
        char *kp;
        int rc;

        if (o >= 0 && k[0] != '\0') {
            s->owns[s->nowns].name = strdup(k);
            if (s->owns[s->nowns].name == NULL) {
                return cc_nomem(cc);
            }
            s->owns[s->nowns++].own = (enum map_ownership)o;
            continue;
        }
        kp = path_join(path, k);
        if (kp == NULL) {
            return cc_nomem(cc);
        }
        rc = k[0] == '\0' ? cc_err(cc, kp, "empty attribute name")
                          : cc_err(cc, kp,
                                   "must be \"authoritative\", \"create_only\" or "
                                   "\"merge\"");
        free(kp);
        return rc;
    }
    return DM_OK;
}

static int compile_section(struct map_section *s, const struct map_cc *cc, const char *path,
                           const json_t *v)
{
    const char *k;
    json_t *kv;
    int bad = DM_OK;

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
        } else if (strcmp(k, "ownership") == 0) {
            rc = compile_owns(s, cc, kp, kv);
        } else if (strcmp(k, "target_profile") == 0) {
            validate_profile_free(s->profile);
            s->profile = NULL;
            rc = load_profile(&s->profile, cc, kp, kv);
        } else {
            rc = cc_unknown(cc, kp, k,
                            "auto, exclude, objectclasses, attributes, ownership, target_profile");
        }
        free(kp);
        if (cc_go_on(cc, rc)) {
            bad = rc;
        } else if (rc != DM_OK) {
            return rc;
        }
    }
    return bad;
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
            rc = cc_unknown(cc, kp, k, "source, target, fallback");
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
    return map_compile_all(out, root, origin, pos, prefix, NULL, err);
}

int map_compile_all(struct map **out, const json_t *root, const char *origin,
                    const struct jsonpos *pos, const char *prefix, struct buf *errors,
                    struct dm_err *err)
{
    struct map_errs col = {errors, 0};
    struct map_cc cc = {origin != NULL ? origin : "map", pos, err, NULL,
                        errors != NULL ? &col : NULL};
    struct map *m = calloc(1, sizeof(*m));
    const char *k;
    json_t *kv;
    int rc = DM_OK, bad = DM_OK;

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
        } else if (strcmp(k, map_section_names[MAP_USERS]) == 0) {
            rc = compile_section(&m->sec[MAP_USERS], &cc, kp, kv);
        } else if (strcmp(k, map_section_names[MAP_GROUPS]) == 0) {
            rc = compile_section(&m->sec[MAP_GROUPS], &cc, kp, kv);
        } else {
            rc = cc_unknown(&cc, kp, k,
                            "key, users, groups, source_attributes, source_profile, "
                            "target_profile");
        }
        free(kp);
        if (cc_go_on(&cc, rc)) {
            bad = rc; /* the next section or key may have problems of its own */
        } else if (rc != DM_OK) {
            goto done;
        }
    }
    if (bad != DM_OK) {
        rc = bad; /* the sections are not finished: their rules are not all there */
        goto done;
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
    if (errors != NULL && col.n > MAP_MAX_ERRORS) {
        int brc = buf_printf(errors, "... and %zu more in %s\n", col.n - MAP_MAX_ERRORS, cc.origin);
        (void)brc;
    }
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
    return map_load_file_all(out, path, NULL, err);
}

int map_load_file_all(struct map **out, const char *path, struct buf *errors, struct dm_err *err)
{
    json_t *root = NULL;
    struct jsonpos *pos = NULL;
    int rc;

    rc = jsonpos_load_file(&root, &pos, path, MAP_FILE_LIMIT, err);
    if (rc == DM_OK) {
        rc = map_compile_all(out, root, path, pos, "", errors, err);
    } else if (errors != NULL) {
        int brc = buf_printf(errors, "%s\n", err->msg);
        (void)brc;
    }
    jsonpos_free(pos);
    json_decref(root);
    return rc;
}
