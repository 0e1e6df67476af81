#include <config.h>
#include "agent/report.h"
#include <jansson.h>
#include <string.h>
#include <time.h>

static void kind_line(FILE *out, const char *name, const struct kind_counts *k,
                      enum pipeline_mode mode)
{
    if (mode == PIPE_PLAN) {
        fprintf(out, "  %-7s %8lld read  %8lld to create  %8lld to update  %8lld unchanged", name,
                k->seen, k->created, k->updated, k->unchanged);
        if (k->failed) {
            fprintf(out, "  %lld failing", k->failed);
        }
        if (k->skipped) {
            fprintf(out, "  %lld out of scope", k->skipped);
        }
        fputc('\n', out);
    } else {
        fprintf(out,
                "  %-7s %8lld read  %8lld created  %8lld updated  %8lld unchanged  %8lld failed",
                name, k->seen, k->created, k->updated, k->unchanged, k->failed);
        if (k->skipped) {
            fprintf(out, "  %8lld out of scope", k->skipped);
        }
        fputc('\n', out);
    }
}

/* Users plus groups. */
static void total_of(struct kind_counts *t, const struct pipeline_stats *st)
{
    t->seen = st->users.seen + st->groups.seen;
    t->created = st->users.created + st->groups.created;
    t->updated = st->users.updated + st->groups.updated;
    t->unchanged = st->users.unchanged + st->groups.unchanged;
    t->failed = st->users.failed + st->groups.failed;
    t->skipped = st->users.skipped + st->groups.skipped;
}

void report_pipeline_text(FILE *out, const struct pipeline_stats *st, enum pipeline_mode mode)
{
    struct kind_counts t;

    total_of(&t, st);
    fprintf(out, "%s %lld%s:\n", mode == PIPE_PLAN ? "plan" : "run", st->run_id,
            st->interrupted ? " (stopped early)" : "");
    kind_line(out, "users", &st->users, mode);
    kind_line(out, "groups", &st->groups, mode);
    kind_line(out, "total", &t, mode);
    if (st->nschemes > 0) {
        fprintf(out, "  password schemes (carried byte-exact):");
        for (size_t i = 0; i < st->nschemes; i++) {
            fprintf(out, " %s %lld%s", st->schemes[i].name, st->schemes[i].n,
                    i + 1 < st->nschemes ? "," : "");
        }
        fputc('\n', out);
    }
    if (st->unresolved_members > 0) {
        fprintf(out, "  members not migrated (left out, see the log): %lld\n",
                st->unresolved_members);
    }
    if (st->source_deleted > 0) {
        fprintf(out, "  deleted in the source (reported, target left alone): %lld\n",
                st->source_deleted);
    }
    if (st->ncats > 0) {
        fprintf(out, "  errors by category:");
        for (size_t i = 0; i < st->ncats; i++) {
            fprintf(out, " %s %lld%s", st->cats[i].name, st->cats[i].n,
                    i + 1 < st->ncats ? "," : "");
        }
        fputc('\n', out);
    }
    if (mode == PIPE_PLAN && st->nsamples > 0) {
        fprintf(out, "  sample changes:\n");
        for (size_t i = 0; i < st->nsamples; i++) {
            fprintf(out, "    %-6s %s [%s]\n", st->samples[i].action, st->samples[i].dn,
                    st->samples[i].attrs);
        }
    }
}

static json_t *kind_json(const struct kind_counts *k, enum pipeline_mode mode)
{
    if (mode == PIPE_PLAN) {
        return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "read", (json_int_t)k->seen, "create",
                         (json_int_t)k->created, "update", (json_int_t)k->updated, "unchanged",
                         (json_int_t)k->unchanged, "failed", (json_int_t)k->failed, "skipped",
                         (json_int_t)k->skipped);
    }
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "read", (json_int_t)k->seen, "created",
                     (json_int_t)k->created, "updated", (json_int_t)k->updated, "unchanged",
                     (json_int_t)k->unchanged, "failed", (json_int_t)k->failed, "skipped",
                     (json_int_t)k->skipped);
}

int report_pipeline_json(FILE *out, const struct pipeline_stats *st, enum pipeline_mode mode)
{
    struct kind_counts t;
    json_t *o, *schemes = json_object(), *errs = json_object(), *samples = json_array();
    int rc;

    total_of(&t, st);
    for (size_t i = 0; i < st->nschemes; i++) {
        json_object_set_new(schemes, st->schemes[i].name, json_integer(st->schemes[i].n));
    }
    for (size_t i = 0; i < st->ncats; i++) {
        json_object_set_new(errs, st->cats[i].name, json_integer(st->cats[i].n));
    }
    for (size_t i = 0; i < st->nsamples; i++) {
        json_t *attrs = json_array();
        char *list = strdup(st->samples[i].attrs ? st->samples[i].attrs : ""), *save = NULL;
        for (char *tok = list ? strtok_r(list, ",", &save) : NULL; tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            json_array_append_new(attrs, json_string(tok));
        }
        free(list);
        json_array_append_new(samples, json_pack("{s:s,s:s,s:o}", "action", st->samples[i].action,
                                                 "dn", st->samples[i].dn, "attributes", attrs));
    }
    o = json_pack("{s:I,s:s,s:o,s:o,s:o,s:o,s:o,s:I}", "run", (json_int_t)st->run_id, "status",
                  st->interrupted ? "stopped" : "done", "users", kind_json(&st->users, mode),
                  "groups", kind_json(&st->groups, mode), "total", kind_json(&t, mode), "schemes",
                  schemes, "errors", errs, "unresolved_members",
                  (json_int_t)st->unresolved_members);
    if (o == NULL) {
        json_decref(samples);
        return DM_ENOMEM;
    }
    json_object_set_new(o, "source_deleted", json_integer((json_int_t)st->source_deleted));
    if (mode == PIPE_PLAN) {
        json_object_set_new(o, "samples", samples);
    } else {
        json_decref(samples);
    }
    rc = json_dumpf(o, out, JSON_COMPACT) == 0 ? DM_OK : DM_EINTERNAL;
    fputc('\n', out);
    json_decref(o);
    return rc;
}

void report_validate_text(FILE *out, const struct pipeline_stats *st)
{
    fprintf(out,
            "validate: %lld entries checked (%lld users, %lld groups), %lld with problems, "
            "%lld with blocking problems\n",
            st->rows, st->users.seen, st->groups.seen, st->rows_with_problems, st->blocking);
    if (st->users.skipped + st->groups.skipped > 0) {
        fprintf(out, "  outside the wave or the retry list: %lld\n",
                st->users.skipped + st->groups.skipped);
    }
    if (st->ncats > 0) {
        fprintf(out, "  problems by category:\n");
        for (size_t i = 0; i < st->ncats; i++) {
            fprintf(out, "    %-18s %8lld\n", st->cats[i].name, st->cats[i].n);
        }
        fprintf(out, "  problems by category and attribute:\n");
        for (size_t i = 0; i < st->nattrcats; i++) {
            fprintf(out, "    %-18s %-24s %8lld\n", st->attrcats[i].cat,
                    st->attrcats[i].attr[0] ? st->attrcats[i].attr : "-", st->attrcats[i].n);
        }
        fprintf(out, "  first examples:\n");
        for (size_t i = 0; i < st->nexamples; i++) {
            fprintf(out, "    %-18s %s: %s\n", st->examples[i].cat, st->examples[i].dn,
                    st->examples[i].msg);
        }
    }
    if (st->export_csv != NULL) {
        fprintf(out, "  export: %s, %s\n", st->export_csv, st->export_jsonl);
    }
}

int report_validate_json(FILE *out, const struct pipeline_stats *st)
{
    json_t *cats = json_object(), *by = json_array(), *ex = json_array(), *o;
    int rc;

    for (size_t i = 0; i < st->ncats; i++) {
        json_object_set_new(cats, st->cats[i].name, json_integer(st->cats[i].n));
    }
    for (size_t i = 0; i < st->nattrcats; i++) {
        json_array_append_new(by, json_pack("{s:s,s:s,s:I}", "category", st->attrcats[i].cat,
                                            "attribute", st->attrcats[i].attr, "count",
                                            (json_int_t)st->attrcats[i].n));
    }
    for (size_t i = 0; i < st->nexamples; i++) {
        json_array_append_new(ex, json_pack("{s:s,s:s,s:s,s:s}", "category", st->examples[i].cat,
                                            "key", st->examples[i].key, "dn", st->examples[i].dn,
                                            "message", st->examples[i].msg));
    }
    o = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:s?,s:s?}", "checked", (json_int_t)st->rows, "users",
        (json_int_t)st->users.seen, "groups", (json_int_t)st->groups.seen, "with_problems",
        (json_int_t)st->rows_with_problems, "blocking", (json_int_t)st->blocking, "skipped",
        (json_int_t)(st->users.skipped + st->groups.skipped), "problems", cats, "by_attribute", by,
        "examples", ex, "export_csv", st->export_csv, "export_jsonl", st->export_jsonl);
    if (o == NULL) {
        return DM_ENOMEM;
    }
    rc = json_dumpf(o, out, JSON_COMPACT) == 0 ? DM_OK : DM_EINTERNAL;
    fputc('\n', out);
    json_decref(o);
    return rc;
}

struct status_ctx {
    FILE *out;
    int json;
    json_t *runs;
};

static void fmt_time(long long t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t == 0) {
        snprintf(buf, len, "-");
        return;
    }
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static int status_run(const struct state_run *r, void *payload)
{
    struct status_ctx *c = payload;
    char st[32], fin[32];

    fmt_time(r->started, st, sizeof(st));
    fmt_time(r->finished, fin, sizeof(fin));
    if (c->json) {
        json_array_append_new(c->runs, json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "id",
                                                 (json_int_t)r->id, "kind", r->kind, "status",
                                                 r->status, "started", st, "finished", fin,
                                                 "created", (json_int_t)r->counts.created,
                                                 "updated", (json_int_t)r->counts.updated,
                                                 "unchanged", (json_int_t)r->counts.unchanged,
                                                 "failed", (json_int_t)r->counts.failed));
    } else {
        fprintf(
            c->out,
            "  %5lld  %-5s %-11s %s  %8lld created %8lld updated %8lld unchanged %6lld failed\n",
            r->id, r->kind, r->status, st, r->counts.created, r->counts.updated,
            r->counts.unchanged, r->counts.failed);
    }
    return 0;
}

int report_status(FILE *out, struct state *s, int json, struct dm_err *err)
{
    struct state_totals t = {0};
    struct state_password_counts pc = {0};
    struct status_ctx c = {out, json, json_array()};
    double share;
    int rc;

    rc = state_totals(&t, s, err);
    if (rc != DM_OK) {
        goto done;
    }
    rc = state_password_counts(&pc, s, err);
    if (rc != DM_OK) {
        goto done;
    }
    /* Share of the migrated users whose password has moved through the hook. */
    share = t.users_ok > 0 ? (double)pc.verified_users / (double)t.users_ok : 0.0;
    if (!json) {
        fprintf(out,
                "journal: %lld users migrated (%lld failing), %lld groups migrated (%lld "
                "failing)\n",
                t.users_ok, t.users_failed, t.groups_ok, t.groups_failed);
        fprintf(out,
                "passwords: %lld users created with the hook, %lld verified so far "
                "(%.1f%% of users migrated)\nrecent runs:\n",
                pc.hook_created, pc.verified_users, 100.0 * share);
    }
    rc = state_runs(s, 20, status_run, &c, err);
    if (rc != DM_OK) {
        goto done;
    }
    if (json) {
        json_t *o = json_pack(
            "{s:{s:I,s:I},s:{s:I,s:I},s:{s:I,s:I,s:f},s:O}", "users", "ok", (json_int_t)t.users_ok,
            "failed", (json_int_t)t.users_failed, "groups", "ok", (json_int_t)t.groups_ok, "failed",
            (json_int_t)t.groups_failed, "passwords", "hook_created", (json_int_t)pc.hook_created,
            "verified", (json_int_t)pc.verified_users, "share", share, "runs", c.runs);
        json_dumpf(o, out, JSON_COMPACT);
        fputc('\n', out);
        json_decref(o);
    }
done:
    json_decref(c.runs);
    return rc;
}
