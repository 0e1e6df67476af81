/*
 * map_apply.c: one source entry through a section of a compiled map (map_priv.h): auto
 * by-name copy, the explicit rules with their transforms, then the objectClass table.
 * This is the per-entry hot path: no jansson, name look-ups by hash, source values
 * borrowed where a transform can read them in place. map_explain.c runs the same rules
 * with a recorder (struct map_trace).
 */
#include <config.h>
#include "schema/map_priv.h"
#include "agent/util/buf.h"
#include "schema/transform.h"
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
int map_auto_skipped(const struct map_section *s, const char *name)
{
    size_t base = strcspn(name, ";");
    long at;

    if (map_nset_find(&s->skip, name, strlen(name)) >= 0) {
        return 1;
    }
    if (name[base] == ';') {
        at = map_nset_find(&s->skip, name, base);
        return at >= 0 && s->skip.base_ok[at];
    }
    return 0;
}

/* map_auto_skipped() for an attribute of an entry: the full name by its hash first. */
static int auto_skipped_attr(const struct map_section *s, const struct dm_attr *a)
{
    if (map_nset_find_attr(&s->skip, a) >= 0) {
        return 1;
    }
    return strchr(a->name, ';') != NULL && map_auto_skipped(s, a->name);
}

/* Fills ms for src; slots points to stack (MAP_STACK_SLOTS long) or to a new array that
 * the caller frees when it is not stack. */
int map_input_index(struct map_input *ms, const struct map_section *s, const struct entry *src,
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
        /* the name's hash was computed once, when the attribute was added (interned names:
         * once per process) */
        const struct dm_attr *a = &src->attrs[i];
        long at = map_nset_find_attr(&s->need, a);

        if (at >= 0 && ms->slots[at] == NULL) {
            ms->slots[at] = &src->attrs[i];
        }
    }
    return DM_OK;
}

static int trace_vals(struct map_trace *t, const char *label, const struct transform_vals *l)
{
    if (t == NULL) {
        return DM_OK;
    }
    return map_trace_list(t->out, label, l->v, l->n, t->mask);
}

/* Expands a template with the first value of each placeholder and appends the result to
 * l (one piece of the exact size); *missing set (nothing added) when an attribute is
 * absent. */
static int expand_template(struct transform_vals *l, int *missing, const struct map_rule *r,
                           const struct map_input *src)
{
    size_t len = 0, at = 0;
    unsigned char *p = NULL;
    int rc;

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
    rc = transform_vals_push(&p, l, len);
    if (rc != DM_OK) {
        return rc;
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
int map_rule_values(struct transform_vals *res, const struct map_rule *r,
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

/* The target attribute of r in dst, created. A rule whose target no other rule shares
 * appends it without a search: auto-mapping skips rule targets, so it is not there yet. */
static struct dm_attr *rule_attr(struct entry *dst, const struct map_rule *r)
{
    return r->unique_target ? entry_attr_append_name(dst, &r->tname)
                            : entry_attr_add_name(dst, &r->tname);
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

/* 1 when rule r reads a sensitive attribute of src (its values must not stay in scratch
 * memory). */
static int rule_reads_secret(const struct map_rule *r, const struct map_input *src)
{
    if (r->raw) {
        return 1;
    }
    for (size_t f = 0; r->src == MAP_SRC_FROM && f < r->nfroms; f++) {
        if (r->from_raw[f]) {
            return 1;
        }
    }
    for (size_t i = 0; r->src == MAP_SRC_TEMPLATE && i < r->npieces; i++) {
        const struct dm_attr *a = r->pieces[i].is_attr ? src->slots[r->pieces[i].slot] : NULL;

        if (a != NULL && a->secret) {
            return 1;
        }
    }
    return 0;
}

/* Applies rule r. The values are built in scratch (empty on entry, reset on return: no
 * allocation per value) and copied into dst's arena. */
static int rule_apply(const struct map_rule *r, const struct map_input *src, struct entry *dst,
                      struct arena *scratch, struct dm_err *err)
{
    struct transform_vals lists[2], *vals = NULL;
    struct dm_attr *a;
    int rc;

    if (r->src == MAP_SRC_FROM && r->nxf == 0) {
        rc = rule_copy(r, src, dst);
    } else {
        transform_vals_init_arena(&lists[0], scratch);
        transform_vals_init_arena(&lists[1], scratch);
        rc = rule_run(&vals, r, src, NULL, &lists[0], &lists[1]);
    }
    if (rc == DM_OK && vals != NULL && vals->n > 0) {
        a = rule_attr(dst, r);
        if (a == NULL) {
            rc = DM_ENOMEM;
        }
        for (size_t i = 0; i < vals->n && rc == DM_OK; i++) {
            rc = attr_add_value(a, vals->v[i].data, vals->v[i].len);
        }
        if (rc == DM_OK) {
            dedup(a);
        }
    }
    if (!(r->src == MAP_SRC_FROM && r->nxf == 0) && rule_reads_secret(r, src)) {
        arena_wipe(scratch);
    }
    arena_reset(scratch);
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
        } else if (oc->to != NULL) {
            a->vals[keep] = a->vals[i];
            if (attr_set_value(a, keep, oc->to, strlen(oc->to)) != DM_OK) {
                /* keep the array consistent before bailing out */
                keep++;
                for (size_t j = i + 1; j < a->nvals; j++) {
                    a->vals[keep++] = a->vals[j];
                }
                a->nvals = keep;
                dm_err_dn(err, dst->dn);
                dm_err_attr(err, "objectClass");
                return dm_err_set(err, DM_ENOMEM, "map: out of memory mapping objectClass");
            }
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
        if (!dup) {
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
    unsigned char scratch_mem[2048]; /* the rules' values, before the copy into dst */
    struct arena scratch;
    struct entry *dst = NULL;
    int rc = DM_OK;

    assert((unsigned)kind < DM_ARRAY_LEN(m->sec));
    s = &m->sec[kind];
    arena_init(&scratch, scratch_mem, sizeof(scratch_mem));
    if (map_input_index(&ms, s, src, stack) != DM_OK) {
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

            struct entry_name n;

            if (sa->nvals == 0 || auto_skipped_attr(s, sa)) {
                continue;
            }
            entry_attr_name(&n, sa);
            da = entry_attr_add_name(dst, &n);
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
        rc = rule_apply(&s->rules[i], &ms, dst, &scratch, err);
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
    arena_clear(&scratch);
    entry_free(dst);
    return rc;
}
