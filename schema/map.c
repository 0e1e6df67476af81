/*
 * map.c: the compiled map as an object: freeing it and the accessors of map.h. The map is
 * built by map_compile.c, applied by map_apply.c and explained by map_explain.c; its
 * layout is in map_priv.h.
 */
#include <config.h>
#include "schema/map_priv.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const map_section_names[2] = {
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
    for (size_t i = 0; i < s->nowns; i++) {
        free(s->owns[i].name);
    }
    free(s->owns);
    free(s->named);
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

/* ---- accessors ---- */

const char *map_key_attr(const struct map *m)
{
    return m->key_source;
}

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

enum map_ownership map_attr_ownership(const struct map *m, enum map_kind kind, const char *attr)
{
    const struct map_section *s;

    assert((unsigned)kind < DM_ARRAY_LEN(m->sec));
    s = &m->sec[kind];
    for (size_t i = 0; i < s->nowns; i++) {
        if (strcasecmp(s->owns[i].name, attr) == 0) {
            return s->owns[i].own;
        }
    }
    for (size_t i = 0; i < s->nrules; i++) {
        if (s->rules[i].own >= 0 && strcasecmp(s->rules[i].target, attr) == 0) {
            return (enum map_ownership)s->rules[i].own;
        }
    }
    if (entry_is_sensitive_attr(attr)) {
        return MAP_OWN_CREATE_ONLY;
    }
    if (strcasecmp(attr, "objectClass") == 0) {
        return MAP_OWN_MERGE;
    }
    return MAP_OWN_AUTHORITATIVE;
}

const char *map_ownership_name(enum map_ownership o)
{
    static const char *const names[] = {"authoritative", "create_only", "merge"};

    return (unsigned)o < DM_ARRAY_LEN(names) ? names[o] : "?";
}

size_t map_named_attrs(const struct map *m, enum map_kind kind, const char *const **out)
{
    assert((unsigned)kind < DM_ARRAY_LEN(m->sec));
    *out = m->sec[kind].named;
    return m->sec[kind].nnamed;
}

int map_auto_by_name(const struct map *m, enum map_kind kind)
{
    assert((unsigned)kind < DM_ARRAY_LEN(m->sec));
    return m->sec[kind].auto_by_name;
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
