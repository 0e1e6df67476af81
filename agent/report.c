#include <config.h>
#include "agent/report.h"
#include "agent/planner.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void kind_line(FILE *out, const char *name, const struct kind_counts *k,
                      enum pipeline_mode mode)
{
    if (mode == PIPE_PLAN) {
        fprintf(out, "  %-10s %8lld read  %8lld to create  %8lld to update  %8lld unchanged", name,
                k->seen, k->created, k->updated, k->unchanged);
        if (k->failed) {
            fprintf(out, "  %lld failing", k->failed);
        }
    } else {
        fprintf(out,
                "  %-10s %8lld read  %8lld created  %8lld updated  %8lld unchanged  %8lld failed",
                name, k->seen, k->created, k->updated, k->unchanged, k->failed);
    }
    if (k->held) {
        fprintf(out, "  %lld held back", k->held);
    }
    if (k->inactive) {
        fprintf(out, "  %lld left out by dated activity", k->inactive);
    }
    if (k->skipped) {
        fprintf(out, "  %lld out of scope", k->skipped);
    }
    fputc('\n', out);
}

/* Users, groups and containers. */
static void total_of(struct kind_counts *t, const struct pipeline_stats *st)
{
    const struct kind_counts *k[] = {&st->users, &st->groups, &st->containers};

    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < 3; i++) {
        t->seen += k[i]->seen;
        t->created += k[i]->created;
        t->updated += k[i]->updated;
        t->unchanged += k[i]->unchanged;
        t->failed += k[i]->failed;
        t->skipped += k[i]->skipped;
        t->inactive += k[i]->inactive;
        t->held += k[i]->held;
    }
}

/* The saved plan a plan wrote or a run applied, and what was refused. */
static void report_saved_text(FILE *out, const struct pipeline_stats *st, enum pipeline_mode mode)
{
    if (st->irreversible > 0) {
        fprintf(out,
                "  cannot be undone: %lld delete(s) at this target are final (dirmig rollback "
                "cannot re-create what it deletes here)\n",
                st->irreversible);
    }
    if (st->plan_file == NULL || st->plan_id[0] == '\0') {
        return;
    }
    if (mode == PIPE_PLAN) {
        fprintf(out, "  saved plan %s: %lld changes (plan %s)\n", st->plan_file, st->plan_changes,
                st->plan_id);
        return;
    }
    if (st->refused_why[0] != '\0') {
        fprintf(out, "  saved plan %s refused, nothing was done: %s\n", st->plan_file,
                st->refused_why);
        return;
    }
    fprintf(out,
            "  saved plan %s (plan %s): %lld changes made, %lld refused, %lld objects not in "
            "the plan left as they are\n",
            st->plan_file, st->plan_id, st->plan_applied, st->plan_refused, st->plan_outside);
    for (size_t i = 0; i < st->nrefusals; i++) {
        fprintf(out, "    refused %-7s %s %s: %s\n", st->refusals[i].op, st->refusals[i].kind,
                st->refusals[i].dn, st->refusals[i].why);
    }
    if ((long long)st->nrefusals < st->plan_refused) {
        fprintf(out, "    ... and %lld more (the log and the journal list every one)\n",
                st->plan_refused - (long long)st->nrefusals);
    }
}

void report_pipeline_text(FILE *out, const struct pipeline_stats *st, enum pipeline_mode mode)
{
    struct kind_counts t;

    total_of(&t, st);
    fprintf(out, "%s %lld: %s%s\n", mode == PIPE_PLAN ? "plan" : "run", st->run_id,
            st->status ? st->status : "?", st->interrupted ? " (stopped early)" : "");
    if (st->blocked[0] != '\0') {
        fprintf(out, "  blocked: %s\n", st->blocked);
    }
    kind_line(out, "users", &st->users, mode);
    kind_line(out, "groups", &st->groups, mode);
    if (st->containers.created + st->containers.failed + st->containers.held > 0) {
        kind_line(out, "containers", &st->containers, mode);
    }
    kind_line(out, "total", &t, mode);
    if (st->verified) {
        fprintf(out, "  target compared: %lld objects read, %lld looked up\n", st->target_read,
                st->target_lookups);
    } else {
        fprintf(out, "  target not read this run (run.verify_target): objects unchanged since "
                     "the journal's write were not looked at\n");
    }
    if (st->nreasons > 0) {
        fprintf(out, "  changes by reason:\n");
        for (size_t i = 0; i < st->nreasons; i++) {
            fprintf(out, "    %-52s %8lld\n", planner_reason_text(st->reasons[i].name),
                    st->reasons[i].n);
        }
    }
    if (st->group_passes > 1) {
        fprintf(out, "  groups written in %d passes (groups after the groups they contain)\n",
                st->group_passes);
    }
    if (st->cred_outcomes && st->ncreds > 0) {
        static const char *const outcomes[] = {"import", "hook", "locked", "error"};
        static const char *const words[] = {"imported hash", "password-import hook",
                                            "locked, no password (created without one)",
                                            "malformed (those users fail)"};
        fprintf(out, "  passwords by scheme and outcome:\n");
        for (size_t k = 0; k < 4; k++) {
            long long tot = 0;
            for (size_t i = 0; i < st->ncreds; i++) {
                tot += strcmp(st->creds[i].outcome, outcomes[k]) == 0 ? st->creds[i].n : 0;
            }
            if (tot == 0) {
                continue;
            }
            fprintf(out, "    %-41s %8lld:", words[k], tot);
            for (size_t i = 0; i < st->ncreds; i++) {
                if (strcmp(st->creds[i].outcome, outcomes[k]) == 0) {
                    fprintf(out, " %s %lld", st->creds[i].scheme, st->creds[i].n);
                }
            }
            fputc('\n', out);
        }
        if (mode != PIPE_PLAN && st->created_with_hook > 0) {
            fprintf(out, "  users created with the password-import hook: %lld\n",
                    st->created_with_hook);
        }
        if (st->lazy_users > 0) {
            fprintf(out,
                    "  users left to the target's lazy migration (created at their first "
                    "sign-in through the hook): %lld\n",
                    st->lazy_users);
        }
    } else if (st->nschemes > 0) {
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
    if (st->state_not_carried > 0) {
        fprintf(out,
                "  users disabled in the source but enabled at the target (target.disable is "
                "not set): %lld\n",
                st->state_not_carried);
    }
    if (st->have_target_stats && st->target_stats.requests > 0) {
        const struct conn_stats *ts = &st->target_stats;
        fprintf(out,
                "  target requests: %lu sent, %lu retried, %lu rate-limited (429), %lu server "
                "errors (5xx), %lu timeouts or connection errors\n",
                ts->requests, ts->retries, ts->rate_limited, ts->server_errors,
                ts->transport_errors);
    }
    if (st->source_read[0] != NULL) {
        fprintf(out, "  source read: users %s, groups %s (source.delta)\n", st->source_read[0],
                st->source_read[1] != NULL ? st->source_read[1] : "full");
    }
    if (st->source_deleted > 0) {
        fprintf(out, "  deleted in the source: %lld\n", st->source_deleted);
    }
    if (st->would_change + st->leavers_reported + st->leavers_failed + st->unmatched_found > 0) {
        const char *verb = mode == PIPE_PLAN ? "would be " : "";
        fprintf(out,
                "  leavers: %lld %sdisabled, %lld %sdeleted, %lld reported only, %lld failed%s\n",
                st->leavers_disabled, verb, st->leavers_deleted, verb, st->leavers_reported,
                st->leavers_failed,
                st->blocked[0] != '\0' && st->would_change > 0 ? " (none made: blocked)" : "");
        if (st->unmatched_found > 0) {
            fprintf(out, "  accounts only the target has: %lld found, %lld %sdisabled or deleted\n",
                    st->unmatched_found, st->unmatched_changed, verb);
        }
        if (st->blocked[0] != '\0' && st->would_change > 0) {
            fprintf(out,
                    "  disables and deletes the run would have made: %lld "
                    "(--allow-deletes %lld approves them)\n",
                    st->would_change, st->would_change);
        }
    }
    if (st->ncats > 0) {
        fprintf(out, "  problems by category:");
        for (size_t i = 0; i < st->ncats; i++) {
            fprintf(out, " %s %lld%s", st->cats[i].name, st->cats[i].n,
                    i + 1 < st->ncats ? "," : "");
        }
        fputc('\n', out);
    }
    report_saved_text(out, st, mode);
    if (st->nsamples > 0) {
        fprintf(out, "  sample changes:\n");
        for (size_t i = 0; i < st->nsamples; i++) {
            fprintf(out, "    %-6s %s [%s] (%s)\n", st->samples[i].action, st->samples[i].dn,
                    st->samples[i].attrs,
                    st->samples[i].reason ? planner_reason_text(st->samples[i].reason) : "");
        }
    }
}

static json_t *kind_json(const struct kind_counts *k, enum pipeline_mode mode)
{
    int plan = mode == PIPE_PLAN;

    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "read", (json_int_t)k->seen,
                     plan ? "create" : "created", (json_int_t)k->created,
                     plan ? "update" : "updated", (json_int_t)k->updated, "unchanged",
                     (json_int_t)k->unchanged, "failed", (json_int_t)k->failed, "skipped",
                     (json_int_t)k->skipped, "inactive", (json_int_t)k->inactive, "held",
                     (json_int_t)k->held);
}

int report_pipeline_json(FILE *out, const struct pipeline_stats *st, enum pipeline_mode mode,
                         int exit_code)
{
    struct kind_counts t;
    json_t *o, *schemes = json_object(), *errs = json_object(), *samples = json_array();
    json_t *reasons = json_object();
    int rc;

    total_of(&t, st);
    for (size_t i = 0; i < st->nschemes; i++) {
        json_object_set_new(schemes, st->schemes[i].name, json_integer(st->schemes[i].n));
    }
    for (size_t i = 0; i < st->ncats; i++) {
        json_object_set_new(errs, st->cats[i].name, json_integer(st->cats[i].n));
    }
    for (size_t i = 0; i < st->nreasons; i++) {
        json_object_set_new(reasons, st->reasons[i].name, json_integer(st->reasons[i].n));
    }
    for (size_t i = 0; i < st->nsamples; i++) {
        json_t *attrs = json_array();
        char *list = strdup(st->samples[i].attrs ? st->samples[i].attrs : ""), *save = NULL;
        for (char *tok = list ? strtok_r(list, ",", &save) : NULL; tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            json_array_append_new(attrs, json_string(tok));
        }
        free(list);
        json_array_append_new(samples, json_pack("{s:s,s:s,s:s,s:o}", "action",
                                                 st->samples[i].action, "reason",
                                                 st->samples[i].reason ? st->samples[i].reason : "",
                                                 "dn", st->samples[i].dn, "attributes", attrs));
    }
    o = json_pack("{s:s,s:I,s:s,s:i,s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I}", "command",
                  mode == PIPE_PLAN ? "plan" : "run", "run", (json_int_t)st->run_id, "status",
                  st->status ? st->status : "failed", "exit_code", exit_code, "stopped_early",
                  st->interrupted, "users", kind_json(&st->users, mode), "groups",
                  kind_json(&st->groups, mode), "containers", kind_json(&st->containers, mode),
                  "total", kind_json(&t, mode), "reasons", reasons, "schemes", schemes, "errors",
                  errs, "unresolved_members", (json_int_t)st->unresolved_members);
    if (o == NULL) {
        json_decref(samples);
        return DM_ENOMEM;
    }
    json_object_set_new(o, "target",
                        json_pack("{s:b,s:I,s:I}", "verified", st->verified, "read",
                                  (json_int_t)st->target_read, "looked_up",
                                  (json_int_t)st->target_lookups));
    if (st->cred_outcomes) {
        json_t *cr = json_array();
        for (size_t i = 0; cr != NULL && i < st->ncreds; i++) {
            json_array_append_new(cr, json_pack("{s:s,s:s,s:I}", "scheme", st->creds[i].scheme,
                                                "outcome", st->creds[i].outcome, "users",
                                                (json_int_t)st->creds[i].n));
        }
        json_object_set_new(o, "passwords", cr);
        json_object_set_new(o, "created_with_hook", json_integer(st->created_with_hook));
        json_object_set_new(o, "lazy_migration", json_integer(st->lazy_users));
    }
    if (st->have_target_stats) {
        const struct conn_stats *ts = &st->target_stats;
        json_object_set_new(o, "target_requests",
                            json_pack("{s:I,s:I,s:I,s:I,s:I}", "sent", (json_int_t)ts->requests,
                                      "retried", (json_int_t)ts->retries, "rate_limited",
                                      (json_int_t)ts->rate_limited, "server_errors",
                                      (json_int_t)ts->server_errors, "transport_errors",
                                      (json_int_t)ts->transport_errors));
    }
    json_object_set_new(o, "source_deleted", json_integer((json_int_t)st->source_deleted));
    json_object_set_new(o, "state_not_carried", json_integer((json_int_t)st->state_not_carried));
    if (st->source_read[0] != NULL) {
        json_object_set_new(o, "source_read",
                            json_pack("{s:s,s:s}", "users", st->source_read[0], "groups",
                                      st->source_read[1] != NULL ? st->source_read[1] : "full"));
    }
    json_object_set_new(o, "blocked",
                        st->blocked[0] != '\0' ? json_string(st->blocked) : json_null());
    json_object_set_new(
        o, "leavers",
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "disabled", (json_int_t)st->leavers_disabled,
                  "deleted", (json_int_t)st->leavers_deleted, "reported",
                  (json_int_t)st->leavers_reported, "failed", (json_int_t)st->leavers_failed,
                  "would_change", (json_int_t)st->would_change, "unmatched_found",
                  (json_int_t)st->unmatched_found, "unmatched_changed",
                  (json_int_t)st->unmatched_changed));
    json_object_set_new(o, "irreversible_deletes", json_integer((json_int_t)st->irreversible));
    if (st->plan_file != NULL && st->plan_id[0] != '\0') {
        json_t *pl = json_pack("{s:s,s:s}", "file", st->plan_file, "id", st->plan_id);
        if (mode == PIPE_PLAN) {
            json_object_set_new(pl, "changes", json_integer((json_int_t)st->plan_changes));
        } else {
            json_t *rl = json_array();
            for (size_t i = 0; rl != NULL && i < st->nrefusals; i++) {
                json_array_append_new(rl,
                                      json_pack("{s:s,s:s,s:s,s:s}", "op", st->refusals[i].op,
                                                "kind", st->refusals[i].kind, "dn",
                                                st->refusals[i].dn, "why", st->refusals[i].why));
            }
            json_object_set_new(pl, "applied", json_integer((json_int_t)st->plan_applied));
            json_object_set_new(pl, "refused", json_integer((json_int_t)st->plan_refused));
            json_object_set_new(pl, "outside", json_integer((json_int_t)st->plan_outside));
            json_object_set_new(pl, "refused_changes", rl);
            json_object_set_new(pl, "refused_plan",
                                st->refused_why[0] ? json_string(st->refused_why) : json_null());
        }
        json_object_set_new(o, "plan", pl);
    }
    json_object_set_new(o, "samples", samples);
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
    json_t *blocked; /* the latest writing run's block (object), json null, or NULL: none yet */
    FILE *lines;     /* text: the run lines, printed after the summary */
    char *text;
    size_t len;
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
    if (c->blocked == NULL && strcmp(r->kind, "plan") != 0 && strcmp(r->kind, "validate") != 0 &&
        strcmp(r->status, "running") != 0) {
        /* the latest run that wrote: blocked until a person approves or the source recovers */
        c->blocked = strcmp(r->status, "blocked") == 0
                         ? json_pack("{s:I,s:s,s:s}", "run", (json_int_t)r->id, "finished", fin,
                                     "reason", r->reason)
                         : json_null();
        if (!c->json && strcmp(r->status, "blocked") == 0) {
            fprintf(c->out, "BLOCKED: run %lld made no disable or delete: %s\n", r->id, r->reason);
        }
    }
    if (c->json) {
        json_array_append_new(
            c->runs, json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:s}", "id",
                               (json_int_t)r->id, "kind", r->kind, "status", r->status, "started",
                               st, "finished", fin, "created", (json_int_t)r->counts.created,
                               "updated", (json_int_t)r->counts.updated, "unchanged",
                               (json_int_t)r->counts.unchanged, "failed",
                               (json_int_t)r->counts.failed, "wave", r->wave, "reason", r->reason));
    } else if (c->lines != NULL) {
        fprintf(c->lines,
                "  %5lld  %-9s %-11s %s  %8lld created %8lld updated %8lld unchanged %6lld "
                "failed%s%s\n",
                r->id, r->kind, r->status, st, r->counts.created, r->counts.updated,
                r->counts.unchanged, r->counts.failed, r->reason[0] ? "\n         " : "",
                r->reason);
    }
    return 0;
}

/* The agent daemon's schedule (meta STATE_META_AGENT, agent/daemon.h): a new object, or
 * NULL when no agent has run on this journal. */
static json_t *agent_meta(struct state *s)
{
    struct dm_err e = {0};
    char *text = NULL;
    json_t *o = NULL;

    if (state_meta_get(&text, s, STATE_META_AGENT, &e) == DM_OK) {
        o = json_loads(text, 0, NULL);
        free(text);
    }
    if (o != NULL && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static void agent_line(FILE *out, json_t *a)
{
    long long next = json_integer_value(json_object_get(a, "next_due"));
    long long run = json_integer_value(json_object_get(a, "last_run"));
    const char *st = json_string_value(json_object_get(a, "state"));
    const char *ls = json_string_value(json_object_get(a, "last_status"));
    const char *le = json_string_value(json_object_get(a, "last_error"));
    char t1[32], t2[32];

    fprintf(out, "agent: %s (pid %lld, %d failed runs in a row)\n", st ? st : "?",
            (long long)json_integer_value(json_object_get(a, "pid")),
            (int)json_integer_value(json_object_get(a, "failures")));
    if (ls != NULL) {
        fmt_time(json_integer_value(json_object_get(a, "last_finished")), t1, sizeof(t1));
        if (run > 0) {
            fprintf(out, "  last scheduled run: %lld %s at %s", run, ls, t1);
        } else {
            fprintf(out, "  last scheduled run: %s at %s", ls, t1);
        }
        if (le != NULL) {
            fprintf(out, " (%s)", le);
        }
        fputc('\n', out);
    }
    if (next > 0 && st != NULL && strcmp(st, "running") == 0) {
        long long in = next - (long long)time(NULL);
        fmt_time(next, t2, sizeof(t2));
        fprintf(out, "  next scheduled run: %s (in %lld s)\n", t2, in > 0 ? in : 0);
    }
}

/* One kind's totals (state.h): "ok" is at_target under its older name. */
static json_t *kind_totals_json(const struct state_kind_totals *k, int users)
{
    json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "ok", (json_int_t)k->at_target, "failed",
                          (json_int_t)k->failed, "at_target", (json_int_t)k->at_target, "deleted",
                          (json_int_t)k->deleted, "unconfirmed", (json_int_t)k->unconfirmed,
                          "linked", (json_int_t)k->linked);

    if (o != NULL && users) {
        json_object_set_new(o, "active", json_integer(k->at_target - k->disabled));
        json_object_set_new(o, "disabled", json_integer(k->disabled));
    }
    return o;
}

int report_status(FILE *out, struct state *s, int json, struct dm_err *err)
{
    struct state_totals t = {0};
    struct state_password_counts pc = {0};
    struct status_ctx c = {out, json, json_array(), NULL, NULL, NULL, 0};
    json_t *agent = NULL;
    long long hookers;
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
    /* Share of the users who can sign in only through the hook (created for it, or with no
     * password) that have been verified through it. */
    hookers = pc.hook_created + pc.no_password;
    share = hookers > 0 ? (double)pc.verified_users / (double)hookers : 0.0;
    share = share > 1.0 ? 1.0 : share;
    if (!json) {
        fprintf(out,
                "users at the target: %lld (%lld active, %lld disabled by dirmig; %lld linked), "
                "%lld deleted by dirmig, %lld failing",
                t.users.at_target, t.users.at_target - t.users.disabled, t.users.disabled,
                t.users.linked, t.users.deleted, t.users.failed);
        if (t.users.unconfirmed > 0) {
            fprintf(out, ", %lld creates unconfirmed (the next run looks them up)",
                    t.users.unconfirmed);
        }
        fprintf(out, "\ngroups at the target: %lld, %lld deleted by dirmig, %lld failing\n",
                t.groups.at_target, t.groups.deleted, t.groups.failed);
        fprintf(out,
                "passwords: %lld users created with an imported hash, %lld users created with "
                "the hook, %lld without a password",
                pc.imported, pc.hook_created, pc.no_password);
        if (pc.locked > 0) {
            fprintf(out, ", %lld locked (a lock marker: no password, never the hook)", pc.locked);
        }
        if (pc.unknown > 0) {
            fprintf(out, ", %lld not recorded", pc.unknown);
        }
        fprintf(out, "; %lld verified through the hook so far (%.1f%%)\n", pc.verified_users,
                100.0 * share);
    }
    agent = agent_meta(s);
    if (!json && agent != NULL) {
        agent_line(out, agent);
    }
    if (!json) {
        c.lines = open_memstream(&c.text, &c.len);
        if (c.lines == NULL) {
            rc = dm_err_set(err, DM_ENOMEM, "status: out of memory");
            goto done;
        }
    }
    rc = state_runs(s, 20, status_run, &c, err);
    if (c.lines != NULL) {
        fclose(c.lines);
        c.lines = NULL;
        fprintf(out, "recent runs:\n%s", c.text != NULL ? c.text : "");
    }
    if (rc != DM_OK) {
        goto done;
    }
    if (json) {
        json_t *o =
            json_pack("{s:o,s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:f},s:O}", "users",
                      kind_totals_json(&t.users, 1), "groups", kind_totals_json(&t.groups, 0),
                      "passwords", "imported", (json_int_t)pc.imported, "hook_created",
                      (json_int_t)pc.hook_created, "no_password", (json_int_t)pc.no_password,
                      "locked", (json_int_t)pc.locked, "unknown", (json_int_t)pc.unknown,
                      "verified", (json_int_t)pc.verified_users, "share", share, "runs", c.runs);
        json_object_set(o, "agent", agent != NULL ? agent : json_null());
        json_object_set(o, "blocked", c.blocked != NULL ? c.blocked : json_null());
        json_dumpf(o, out, JSON_COMPACT);
        fputc('\n', out);
        json_decref(o);
    }
done:
    if (c.lines != NULL) {
        fclose(c.lines);
    }
    free(c.text);
    json_decref(c.blocked);
    json_decref(c.runs);
    json_decref(agent);
    return rc;
}
