/*
 * map_explain.c: map_explain(), a human account of how one entry maps: map_apply() and
 * map_check() give the result and its problems, then each rule runs again through
 * map_rule_values() with a recorder that prints every step. Values of pii and sensitive
 * attributes show as ***.
 */
#include <config.h>
#include "schema/map_priv.h"
#include "agent/util/buf.h"
#include "schema/transform.h"
#include "schema/validate.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
int map_trace_list(struct buf *b, const char *label, const struct dm_val *v, size_t n, int mask)
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

/* Appends the final values of attr in dst, its ownership and its problems (marking them
 * printed). */
static int explain_tail(struct buf *out, const struct map *m, enum map_kind kind,
                        const struct entry *dst, const char *attr, int mask,
                        const struct map_problem *pr, size_t np, unsigned char *printed)
{
    const struct dm_attr *a = entry_attr(dst, attr);
    int rc;

    if (a == NULL || a->nvals == 0) {
        rc = buf_puts(out, "  final: (no value)\n");
    } else {
        rc = map_trace_list(out, "final", a->vals, a->nvals, mask);
    }
    for (size_t i = 0; i < np && rc == DM_OK; i++) {
        if (!printed[i] && strcasecmp(pr[i].attr, attr) == 0) {
            printed[i] = 1;
            rc = buf_printf(out, "  problem %s: %s\n", pr[i].category, pr[i].msg);
        }
    }
    if (rc == DM_OK) {
        rc = buf_printf(out, "  ownership: %s\n",
                        map_ownership_name(map_attr_ownership(m, kind, attr)));
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
        rc = map_rule_values(&vals, r, src, &t);
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
    rc = map_input_index(&ms, s, src, stack);
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
                    src->key ? src->key : "(none)", map_section_names[kind]);
    for (size_t i = 0; s->auto_by_name && i < src->nattrs && rc == DM_OK; i++) {
        const struct dm_attr *sa = &src->attrs[i];
        int mask = map_attr_is_pii(m, kind, sa->name);

        if (sa->nvals == 0 || map_auto_skipped(s, sa->name)) {
            continue;
        }
        rc = buf_printf(out, "%s: auto (by-name)\n", sa->name);
        if (rc == DM_OK) {
            rc = map_trace_list(out, "source", sa->vals, sa->nvals, mask);
        }
        if (rc == DM_OK && strcasecmp(sa->name, "objectClass") == 0 && s->nocs > 0) {
            rc = buf_puts(out, "  objectclasses table applied\n");
        }
        if (rc == DM_OK) {
            rc = explain_tail(out, m, kind, dst, sa->name, mask, pr, np, printed);
        }
    }
    for (size_t i = 0; i < s->nrules && rc == DM_OK; i++) {
        const struct map_rule *r = &s->rules[i];

        rc = explain_rule(out, m, kind, r, &ms);
        if (rc == DM_OK) {
            int mask = map_attr_is_pii(m, kind, r->target) || rule_reads_pii(m, kind, r);

            rc = explain_tail(out, m, kind, dst, r->target, mask, pr, np, printed);
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
