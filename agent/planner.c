#include <config.h>
#include "agent/planner.h"
#include "connectors/connector.h"
#include "agent/util/buf.h"
#include "schema/dn.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name, *text;
} reasons[] = {
    {PLAN_R_NEW, "new in the source"},
    {PLAN_R_CHANGED, "changed in the source"},
    {PLAN_R_DRIFT, "drifted at the target"},
    {PLAN_R_MISSING, "drifted at the target: missing there"},
    {PLAN_R_MEMBER_ADDED, "member added"},
    {PLAN_R_MEMBER_REMOVED, "member removed"},
    {PLAN_R_MOVED, "moved in the source"},
    {PLAN_R_LINKED, "linked to an object already at the target"},
    {PLAN_R_SUFFIXED, "created with a suffix beside an object already at the target"},
    {PLAN_R_COLLISION_SOURCE, "shares its target name with another source object"},
    {PLAN_R_COLLISION_TARGET, "already at the target and not created by dirmig"},
    {PLAN_R_MEMBERS_LEFT_OUT, "every member was left out"},
    {PLAN_R_CONTAINER, "container missing at the target"},
    {PLAN_R_UNCHANGED, "unchanged"},
    {PLAN_R_DISABLED, "disabled in the source"},
    {PLAN_R_ENABLED, "enabled in the source again"},
    {PLAN_R_LEAVER, "no longer in the source (leaver)"},
    {PLAN_R_UNMATCHED, "only the target has it"},
    {PLAN_R_PLAN_STALE, "refused: changed since the saved plan"},
};

const char *planner_reason_text(const char *reason)
{
    for (size_t i = 0; i < DM_ARRAY_LEN(reasons); i++) {
        if (strcmp(reasons[i].name, reason) == 0) {
            return reasons[i].text;
        }
    }
    return reason;
}

void plan_obj_clear(struct plan_obj *o)
{
    entry_free(o->mod);
    free(o->attrs);
    o->mod = NULL;
    o->attrs = NULL;
}

/* ---- names ---- */

struct names {
    const char **v;
    size_t n, cap;
    char *hold; /* copy of the journal's list, split in place */
};

static int names_add(struct names *ns, const char *name)
{
    if (name == NULL || name[0] == '\0') {
        return DM_OK;
    }
    for (size_t i = 0; i < ns->n; i++) {
        if (strcasecmp(ns->v[i], name) == 0) {
            return DM_OK;
        }
    }
    if (ns->n == ns->cap) {
        size_t nc = ns->cap ? ns->cap * 2 : 32;
        const char **p = realloc(ns->v, nc * sizeof(*p));
        if (p == NULL) {
            return DM_ENOMEM;
        }
        ns->v = p;
        ns->cap = nc;
    }
    ns->v[ns->n++] = name;
    return DM_OK;
}

/* Every attribute the object's change may touch: the map's ruled names, what dirmig wrote
 * before (journal) and what the map produced now. */
static int names_collect(struct names *ns, const struct plan_obj *o, const struct planner_ctx *c)
{
    const char *const *ruled;
    size_t nr = map_named_attrs(c->map, o->kind, &ruled);
    int rc = DM_OK;

    /* the produced names first: they keep the map's spelling in reports */
    for (size_t i = 0; i < o->want->nattrs && rc == DM_OK; i++) {
        rc = names_add(ns, o->want->attrs[i].name);
    }
    for (size_t i = 0; i < nr && rc == DM_OK; i++) {
        rc = names_add(ns, ruled[i]);
    }
    if (rc == DM_OK && o->rec != NULL && o->rec->attrs != NULL && o->rec->attrs[0]) {
        ns->hold = strdup(o->rec->attrs);
        if (ns->hold == NULL) {
            return DM_ENOMEM;
        }
        for (char *save = NULL, *t = strtok_r(ns->hold, ",", &save); t != NULL && rc == DM_OK;
             t = strtok_r(NULL, ",", &save)) {
            rc = names_add(ns, t);
        }
    }
    return rc;
}

static void names_free(struct names *ns)
{
    free(ns->v);
    free(ns->hold);
}

static int is_member_attr(const struct planner_ctx *c, const char *name)
{
    for (size_t i = 0; c->rules->dn_attrs != NULL && c->rules->dn_attrs[i] != NULL; i++) {
        if (strcasecmp(c->rules->dn_attrs[i], name) == 0) {
            return strcasecmp(name, "member") == 0 || strcasecmp(name, "uniqueMember") == 0;
        }
    }
    return strcasecmp(name, "member") == 0; /* CONN_MEMBERS_REF targets: member ids */
}

/* Compares want with have attribute by attribute under the map's ownership; fills o->attrs
 * (what differs), o->added, o->removed and o->mod: every attribute of want that is not
 * create-only, plus an attribute without values for each one the map names (or dirmig
 * wrote) that want lacks and the target still has (delete it). One form serves every
 * connector: entry_diff() over it writes only what differs. */
static int compare(struct plan_obj *o, const struct planner_ctx *c)
{
    struct names ns = {0};
    struct buf b;
    int rc;

    buf_init(&b, 1 << 16);
    o->mod = entry_new(o->want->dn);
    if (o->mod == NULL) {
        return DM_ENOMEM;
    }
    rc = names_collect(&ns, o, c);
    for (size_t i = 0; i < ns.n && rc == DM_OK; i++) {
        const char *name = ns.v[i];
        enum map_ownership own = map_attr_ownership(c->map, o->kind, name);
        const struct dm_attr *w = entry_attr(o->want, name);
        const struct proj_attr *h = o->have != NULL ? proj_attr(o->have, name) : NULL;
        size_t add = 0, rem = 0;

        if (own == MAP_OWN_CREATE_ONLY || (own == MAP_OWN_MERGE && (w == NULL || w->nvals == 0))) {
            continue;
        }
        rc = proj_diff_attr(&add, &rem, h, w, own == MAP_OWN_MERGE, c->rules);
        if (rc != DM_OK) {
            break;
        }
        if (w != NULL && w->nvals > 0) {
            for (size_t k = 0; k < w->nvals && rc == DM_OK; k++) {
                rc = entry_add_value(o->mod, w->name, w->vals[k].data, w->vals[k].len);
            }
        } else if (rem > 0 && entry_attr_add(o->mod, name) == NULL) {
            rc = DM_ENOMEM; /* no values: delete it */
        }
        if (rc != DM_OK || (add == 0 && rem == 0)) {
            continue;
        }
        if (is_member_attr(c, name)) {
            o->added += (long long)add;
            o->removed += (long long)rem;
        }
        rc = buf_printf(&b, "%s%s", b.len ? "," : "", name);
        if (rc == DM_ELIMIT) {
            rc = DM_OK; /* a cut list of names is still a list */
        }
    }
    names_free(&ns);
    if (rc == DM_OK && b.len > 0) {
        o->attrs = buf_steal(&b);
    }
    buf_free(&b);
    return rc;
}

/* ---- identity ---- */

static int same_dn(const char *a, const char *b)
{
    char *na = NULL, *nb = NULL;
    int same;

    if (strcmp(a, b) == 0) {
        return 1; /* the same text is the same DN: most references are the DN as written */
    }
    if (dn_normalize(&na, a, NULL) != DM_OK || dn_normalize(&nb, b, NULL) != DM_OK) {
        same = strcasecmp(a, b) == 0;
    } else {
        same = strcmp(na, nb) == 0;
    }
    free(na);
    free(nb);
    return same;
}

static int same_name(const struct planner_ctx *c, const char *a, const char *b)
{
    return c->dn_targets ? same_dn(a, b) : strcasecmp(a, b) == 0;
}

/* 1 when the object at the target is the one the journal's row stands for. */
static int is_ours(const struct plan_obj *o, const struct planner_ctx *c)
{
    const struct state_object *r = o->rec;

    if (r == NULL || r->target_ref == NULL || r->target_ref[0] == '\0') {
        return 0;
    }
    if (strcmp(r->status, "pending") == 0) {
        /* a create recorded before it was sent: the journal holds the name it was sent as */
        return same_name(c, r->target_ref, o->have->ident) ||
               (c->dn_targets && same_dn(r->target_ref, o->have->ref));
    }
    if (strcmp(r->status, "ok") != 0 && strcmp(r->status, "failed") != 0 &&
        strcmp(r->status, "left") != 0) {
        return 0;
    }
    /* written by dirmig (a later write may have failed): the reference it got */
    return c->dn_targets ? same_dn(r->target_ref, o->have->ref)
                         : strcmp(r->target_ref, o->have->ref) == 0;
}

/* Lowercased, trimmed copy of a value as `dirmig mapping` compares them; NULL when empty. */
static char *norm_value(const struct dm_val *v)
{
    size_t a = 0, b = v->len;
    char *s;

    while (a < b && (v->data[a] == ' ' || v->data[a] == '\t')) {
        a++;
    }
    while (b > a && (v->data[b - 1] == ' ' || v->data[b - 1] == '\t')) {
        b--;
    }
    if (a == b || memchr(v->data + a, 0, b - a) != NULL) {
        return NULL;
    }
    s = strndup((const char *)v->data + a, b - a);
    for (char *p = s; p != NULL && *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p + 32);
        }
    }
    return s;
}

/* 1 when a correlation rule of the map matches the object at the target: a source value of
 * the rule's source attribute equals a target value of its target attribute (trimmed,
 * case-insensitive), as `dirmig mapping` correlates. *rule names the rule. */
static int correlates(const struct plan_obj *o, const struct planner_ctx *c, const char **rule)
{
    for (size_t r = 0; r < c->ncorr; r++) {
        const struct dm_attr *s = o->corr ? entry_attr(o->corr, c->corr_src[r]) : NULL;
        const struct dm_attr *t = entry_attr(o->have->keys, c->corr_tgt[r]);
        for (size_t i = 0; s != NULL && t != NULL && i < s->nvals; i++) {
            char *sv = norm_value(&s->vals[i]);
            for (size_t j = 0; sv != NULL && j < t->nvals; j++) {
                char *tv = norm_value(&t->vals[j]);
                int eq = tv != NULL && strcmp(sv, tv) == 0;
                free(tv);
                if (eq) {
                    free(sv);
                    *rule = c->corr_src[r];
                    return 1;
                }
            }
            free(sv);
        }
    }
    return 0;
}

static void hold(struct plan_obj *o, const char *reason, const char *msg)
{
    o->op = PLAN_HOLD;
    o->reason = reason;
    snprintf(o->msg, sizeof(o->msg), "%s", msg);
}

/* An object of ours (or just linked) that exists: compare, then update, move or nothing. */
static int decide_existing(struct plan_obj *o, const struct planner_ctx *c)
{
    int src_same = o->rec != NULL && strcmp(o->rec->status, "ok") == 0 &&
                   strcmp(o->rec->digest, o->digest) == 0;
    int rc = compare(o, c);

    if (rc != DM_OK) {
        return rc;
    }
    if (o->want_disabled >= 0 && o->have->disabled >= 0 && o->want_disabled != o->have->disabled) {
        o->state = o->want_disabled ? CHANGE_STATE_DISABLE : CHANGE_STATE_ENABLE;
    }
    if (c->dn_targets && !same_dn(o->have->ref, o->want->dn)) {
        /* moved in the source, or to or from where the target keeps disabled accounts */
        o->op = PLAN_MOVE;
        o->reason = o->state == CHANGE_STATE_DISABLE  ? PLAN_R_DISABLED
                    : o->state == CHANGE_STATE_ENABLE ? PLAN_R_ENABLED
                                                      : PLAN_R_MOVED;
        return DM_OK;
    }
    if (o->attrs == NULL && o->state != CHANGE_STATE_KEEP) {
        o->op = PLAN_UPDATE;
        o->reason = o->state == CHANGE_STATE_DISABLE ? PLAN_R_DISABLED : PLAN_R_ENABLED;
        return DM_OK;
    }
    if (o->attrs == NULL) {
        o->op = PLAN_NONE;
        o->reason = o->linked ? PLAN_R_LINKED : PLAN_R_UNCHANGED;
        return DM_OK;
    }
    o->op = PLAN_UPDATE;
    if (o->linked) {
        o->reason = PLAN_R_LINKED;
    } else if (o->state != CHANGE_STATE_KEEP) {
        /* the account state says most: "disabled in the source" over "changed" */
        o->reason = o->state == CHANGE_STATE_DISABLE ? PLAN_R_DISABLED : PLAN_R_ENABLED;
    } else if (src_same) {
        o->reason = PLAN_R_DRIFT;
    } else if (o->added > 0 && o->removed == 0 && o->kind == MAP_GROUPS) {
        o->reason = PLAN_R_MEMBER_ADDED;
    } else if (o->removed > 0 && o->added == 0 && o->kind == MAP_GROUPS) {
        o->reason = PLAN_R_MEMBER_REMOVED;
    } else {
        o->reason = PLAN_R_CHANGED;
    }
    return DM_OK;
}

int planner_decide(struct plan_obj *o, const struct planner_ctx *c, struct dm_err *err)
{
    const char *rule = NULL;
    int rc = DM_OK;

    o->op = PLAN_NONE;
    o->reason = PLAN_R_UNCHANGED;
    o->msg[0] = '\0';
    o->state = CHANGE_STATE_KEEP;
    if (o->have == NULL) {
        o->op = PLAN_CREATE;
        /* a disabled user never arrives active */
        o->state = o->want_disabled == 1 ? CHANGE_STATE_DISABLE : CHANGE_STATE_KEEP;
        o->reason =
            o->rec != NULL && strcmp(o->rec->status, "ok") == 0 ? PLAN_R_MISSING : PLAN_R_NEW;
        o->adopt = o->rec != NULL && strcmp(o->rec->status, "pending") == 0;
        return DM_OK;
    }
    if (is_ours(o, c) || (o->by_ref && o->rec != NULL && o->rec->linked)) {
        o->adopt = o->rec != NULL && strcmp(o->rec->status, "pending") == 0;
        rc = decide_existing(o, c);
    } else if (c->collision == PLAN_COLLIDE_LINK && correlates(o, c, &rule)) {
        o->linked = 1;
        rc = decide_existing(o, c);
    } else if (c->collision == PLAN_COLLIDE_LINK) {
        hold(o, PLAN_R_COLLISION_TARGET,
             "already at the target and not created by dirmig; no correlation rule of the map "
             "matches it, so it is not linked");
    } else if (c->collision == PLAN_COLLIDE_SUFFIX) {
        o->op = PLAN_CREATE;
        o->reason = PLAN_R_SUFFIXED;
        o->suffix = 1;
        o->state = o->want_disabled == 1 ? CHANGE_STATE_DISABLE : CHANGE_STATE_KEEP;
    } else {
        hold(o, PLAN_R_COLLISION_TARGET,
             "already at the target and not created by dirmig (run.collision is \"skip\")");
    }
    (void)rule;
    if (rc != DM_OK) {
        plan_obj_clear(o);
        return dm_err_set(err, rc, "planner: out of memory");
    }
    return DM_OK;
}

char *planner_suffixed(const char *name, const char *suffix, int is_dn)
{
    char *out = NULL;

    if (is_dn) {
        struct dn *d = NULL;
        char *esc = NULL, *val = NULL;
        size_t vlen;
        int rc = dn_parse(&d, name, NULL);

        if (rc != DM_OK || d->nrdns == 0 || d->rdns[0].navas != 1) {
            dn_free(d);
            return NULL;
        }
        vlen = d->rdns[0].avas[0].value_len + strlen(suffix);
        val = malloc(vlen + 1);
        if (val != NULL) {
            memcpy(val, d->rdns[0].avas[0].value, d->rdns[0].avas[0].value_len);
            memcpy(val + d->rdns[0].avas[0].value_len, suffix, strlen(suffix) + 1);
        }
        if (val != NULL && dn_escape_value(&esc, val, vlen, NULL) == DM_OK &&
            asprintf(&out, "%s=%s%s", d->rdns[0].avas[0].type, esc, name + d->rdns[0].end) < 0) {
            out = NULL;
        }
        free(val);
        free(esc);
        dn_free(d);
        return out;
    }
    {
        const char *at = strchr(name, '@');
        size_t head = at != NULL ? (size_t)(at - name) : strlen(name);
        if (asprintf(&out, "%.*s%s%s", (int)head, name, suffix, name + head) < 0) {
            out = NULL;
        }
    }
    return out;
}

char *planner_written(const struct entry *want, const struct map *m, enum map_kind kind)
{
    struct buf b;

    buf_init(&b, 1 << 16);
    for (size_t i = 0; i < want->nattrs; i++) {
        const struct dm_attr *a = &want->attrs[i];
        if (a->nvals == 0 || map_attr_ownership(m, kind, a->name) == MAP_OWN_CREATE_ONLY) {
            continue;
        }
        if (buf_printf(&b, "%s%s", b.len ? "," : "", a->name) != DM_OK) {
            break;
        }
    }
    for (char *p = b.data; p != NULL && *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p + 32);
        }
    }
    if (b.data == NULL) {
        return strdup("");
    }
    return buf_steal(&b);
}
