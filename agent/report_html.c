#include <config.h>
#include "agent/report_html.h"
#include "agent/redact.h"
#include "agent/util/html.h"
#include "agent/util/log.h"
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

/*
 * The page is written top to bottom while the journal is read: each section runs its
 * queries and prints as rows arrive. Only what a chart must scale before it draws is held
 * in memory, and that is bounded: the newest REPORT_HTML_CHART_RUNS runs, one row per day
 * of the password curve (capped at MAX_DAYS), the error categories (capped at MAX_CATS).
 */

#define MAX_DAYS 3660 /* ten years of a migration program */
#define MAX_CATS 64
#define MAX_WAVES 256
#define MAX_MARKED_DAYS 62 /* beyond, the curve has no point markers (the table has the days) */
#define OPEN_DAYS 31       /* beyond, the table of days starts folded */
#define CHART_W 960
#define CHART_H 280
#define PAD_L 84
#define PAD_R 20
#define PAD_T 18
#define PAD_B 58

/* ---- small formatting helpers ---- */

struct page {
    FILE *f;
    struct state *s;
    const struct report_html_opts *o;
    struct buf scratch; /* masked strings */
    int rc;             /* first journal error */
};

/* v with thousands separators, in buf (32 bytes). */
static const char *num(char *buf, long long v)
{
    char raw[32];
    size_t n, j = 0, lead;
    int neg = v < 0;

    snprintf(raw, sizeof(raw), "%lld", neg ? -v : v);
    n = strlen(raw);
    lead = n % 3 == 0 ? 3 : n % 3;
    if (neg) {
        buf[j++] = '-';
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (i - lead) % 3 == 0 && i >= lead) {
            buf[j++] = ',';
        }
        buf[j++] = raw[i];
    }
    buf[j] = '\0';
    return buf;
}

/* UTC "YYYY-MM-DD HH:MM" (or "YYYY-MM-DD" without time) in buf (32 bytes); "-" for 0. */
static const char *when(char *buf, long long t, int with_time)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
        snprintf(buf, 32, "-");
    } else {
        strftime(buf, 32, with_time ? "%Y-%m-%d %H:%M" : "%Y-%m-%d", &tm);
    }
    return buf;
}

static void esc(struct page *pg, const char *s)
{
    html_escape(pg->f, s);
}

/* Writes an identity masked and escaped. */
static void esc_masked_id(struct page *pg, const char *s)
{
    buf_reset(&pg->scratch);
    if (s == NULL || s[0] == '\0') {
        fputs("-", pg->f);
    } else if (redact_identity(&pg->scratch, s) == DM_OK) {
        esc(pg, pg->scratch.data != NULL ? pg->scratch.data : "");
    } else {
        fputs("***", pg->f);
    }
}

/* Writes a message with the identities it names masked, escaped. */
static void esc_masked_text(struct page *pg, const char *msg, const char *key, const char *dn)
{
    buf_reset(&pg->scratch);
    if (redact_text(&pg->scratch, msg, key, dn) == DM_OK) {
        esc(pg, pg->scratch.data != NULL ? pg->scratch.data : "");
    } else {
        fputs("(message too long to show)", pg->f);
    }
}

/* Smallest 1, 2 or 5 times a power of ten that is >= v (at least 1). */
static long long nice_max(long long v)
{
    long long p = 1;

    for (;;) {
        if (v <= p) {
            return p;
        }
        if (v <= 2 * p) {
            return 2 * p;
        }
        if (v <= 5 * p) {
            return 5 * p;
        }
        if (p > LLONG_MAX / 20) {
            return v;
        }
        p *= 10;
    }
}

/* Horizontal grid lines and y labels of a chart scaled to ymax (a nice_max()): steps of
 * round numbers, never a fraction of a count. */
static void y_axis(struct page *pg, long long ymax)
{
    const int plot_h = CHART_H - PAD_T - PAD_B;
    long long lead = ymax, steps;
    char n[32];

    while (lead >= 10 && lead % 10 == 0) {
        lead /= 10;
    }
    steps = lead == 2 ? 4 : 5;
    if (ymax < steps) {
        steps = ymax;
    }
    for (long long i = 0; i <= steps; i++) {
        double y = PAD_T + plot_h - (double)plot_h * (double)i / (double)steps;
        fprintf(pg->f,
                "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
                "<text class=\"ylabel\" x=\"%d\" y=\"%.1f\">%s</text>\n",
                PAD_L, y, CHART_W - PAD_R, y, PAD_L - 6, y + 4, num(n, ymax * i / steps));
    }
}

/* 1 when the x label of point i of n (every every-th) is drawn: the last point always, the
 * regular ones unless they would collide with the last. */
static int label_here(size_t i, size_t n, size_t every)
{
    return i == n - 1 || (i % every == 0 && n - 1 - i >= every);
}

static void tile(struct page *pg, const char *label, long long v, const char *cls)
{
    char n[32];

    fprintf(pg->f, "<div class=\"tile %s\"><div class=\"v\">%s</div><div class=\"l\">", cls,
            num(n, v));
    esc(pg, label);
    fputs("</div></div>\n", pg->f);
}

static int journal_failed(struct page *pg, int rc)
{
    if (rc != DM_OK && pg->rc == DM_OK) {
        pg->rc = rc;
    }
    if (rc != DM_OK) {
        fputs("<p class=\"bad\">The journal could not be read here (see the error dirmig "
              "printed).</p>\n",
              pg->f);
    }
    return rc;
}

static int no_journal(struct page *pg)
{
    if (pg->s == NULL) {
        fputs("<p class=\"empty\">No state journal yet: nothing has run.</p>\n", pg->f);
        return 1;
    }
    return 0;
}

/* ---- head ---- */

static const char page_css[] =
    ":root{--ok:#2e7d32;--upd:#1565c0;--bad:#c62828;--del:#6a1b9a;--skip:#8d6e63;"
    "--imp:#2e7d32;--hook:#ef6c00;--ver:#1565c0;--muted:#5f6b76;--line:#d5dbe1}"
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "color:#1d252c;margin:0;background:#f6f8fa}"
    "header{background:#1d2b3a;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}"
    "header p{margin:4px 0 0;color:#c9d4df;font-size:13px}"
    "nav{padding:8px 28px;background:#eef2f6;border-bottom:1px solid var(--line);font-size:14px}"
    "nav a{margin-right:14px;color:#1d4f91;text-decoration:none}"
    "main{padding:8px 28px 40px;max-width:1100px}"
    "section{background:#fff;border:1px solid var(--line);border-radius:6px;margin:18px 0;"
    "padding:6px 20px 16px}h2{font-size:18px;margin:14px 0 8px}h3{font-size:15px;margin:14px 0 6px}"
    ".tiles{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}"
    ".tile{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:150px}"
    ".tile .v{font-size:22px;font-weight:600}.tile .l{color:var(--muted);font-size:13px}"
    ".tile.bad .v{color:var(--bad)}.tile.ok .v{color:var(--ok)}"
    "table{border-collapse:collapse;width:100%;font-size:13.5px;margin:6px 0}"
    "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e6eaee;vertical-align:top}"
    "th{background:#f1f4f7;font-weight:600}td.n,th.n{text-align:right;"
    "font-variant-numeric:tabular-nums}td.msg{word-break:break-word}"
    ".st-done{color:var(--ok)}.st-failed,.st-blocked{color:var(--bad);font-weight:600}"
    ".st-interrupted,.st-running{color:var(--hook)}"
    ".empty{color:var(--muted);font-style:italic}.bad{color:var(--bad)}"
    ".note{color:var(--muted);font-size:13px}"
    ".legend span{display:inline-block;margin-right:16px;font-size:13px}"
    ".legend i{display:inline-block;width:11px;height:11px;margin-right:5px;border-radius:2px}"
    ".sw-created,.sw-imp{background:var(--ok)}.sw-updated,.sw-ver{background:var(--upd)}"
    ".sw-failed{background:var(--bad)}.sw-deleted{background:var(--del)}"
    ".sw-hook{background:var(--hook)}"
    ".bar{display:inline-block;height:10px;background:var(--bad);border-radius:2px;"
    "vertical-align:middle}"
    "svg{max-width:100%;height:auto;font-size:12px}svg text{fill:#3b4650}"
    ".grid{stroke:#e3e8ed;stroke-width:1}.axis{stroke:#9aa5b1;stroke-width:1}"
    ".ylabel{text-anchor:end}.xlabel{text-anchor:middle}"
    ".c-created{fill:var(--ok)}.c-updated{fill:var(--upd)}.c-failed{fill:var(--bad)}"
    ".c-deleted{fill:var(--del)}.c-unchanged{fill:#b0bec5}.c-skipped{fill:var(--skip)}"
    ".flag{fill:var(--bad);font-weight:700;text-anchor:middle}"
    ".l-imp{stroke:var(--imp)}.l-hook{stroke:var(--hook)}.l-ver{stroke:var(--ver)}"
    "polyline{fill:none;stroke-width:2.5}.p-imp{fill:var(--imp)}.p-hook{fill:var(--hook)}"
    ".p-ver{fill:var(--ver)}details{margin:6px 0}summary{cursor:pointer;font-weight:600}"
    "@media print{body{background:#fff}nav{display:none}section{break-inside:avoid}}";

static void write_head(struct page *pg)
{
    char t[32];

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          /* Nothing may be fetched: the page is complete as it is. */
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n"
          "<meta name=\"referrer\" content=\"no-referrer\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"dirmig " PACKAGE_VERSION "\">\n"
          "<title>dirmig report</title>\n<style>",
          pg->f);
    fputs(page_css, pg->f);
    fputs("</style>\n</head>\n<body>\n<header>\n<h1>dirmig migration report</h1>\n<p>", pg->f);
    if (pg->o->source != NULL || pg->o->target != NULL) {
        esc(pg, pg->o->source != NULL ? pg->o->source : "?");
        fputs(" &#8594; ", pg->f);
        esc(pg, pg->o->target != NULL ? pg->o->target : "?");
        fputs(" &#183; ", pg->f);
    }
    fprintf(pg->f, "generated %s UTC", when(t, (long long)pg->o->now, 1));
    if (pg->o->journal != NULL) {
        fputs(" from ", pg->f);
        esc(pg, pg->o->journal);
    }
    fputs(" &#183; dirmig " PACKAGE_VERSION "</p>\n</header>\n"
          "<nav><a href=\"#summary\">Summary</a><a href=\"#runs\">Runs</a>"
          "<a href=\"#outcomes\">Outcomes</a><a href=\"#problems\">Problems</a>"
          "<a href=\"#waves\">Waves</a><a href=\"#blocked\">Blocked runs</a>"
          "<a href=\"#passwords\">Passwords</a></nav>\n<main>\n",
          pg->f);
}

/* ---- the password curve (read first: the summary shows its totals) ---- */

struct curve {
    struct state_signin_day *days;
    size_t n, cap;
    int truncated, oom;
    long long imported, hook_created, verified; /* totals */
};

static int curve_row(const struct state_signin_day *d, void *payload)
{
    struct curve *c = payload;

    c->imported += d->imported;
    c->hook_created += d->hook_created;
    c->verified += d->verified;
    if (c->n == MAX_DAYS) {
        /* Oldest days are kept; the totals still count every day. */
        c->truncated = 1;
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct state_signin_day *grown = realloc(c->days, cap * sizeof(*grown));
        if (grown == NULL) {
            c->oom = 1;
            return 1; /* stops the query */
        }
        c->days = grown;
        c->cap = cap;
    }
    c->days[c->n++] = *d;
    return 0;
}

/* Days since the epoch of "YYYY-MM-DD" (-1 when malformed). */
static long day_number(const char *day)
{
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof(tm));
    end = strptime(day, "%Y-%m-%d", &tm);
    if (end == NULL || *end != '\0') {
        return -1;
    }
    return (long)(timegm(&tm) / 86400);
}

/* ---- sections ---- */

static void write_summary(struct page *pg, const struct curve *cv)
{
    struct state_totals t = {0};
    struct dm_err e = {0};
    char n1[32];

    fputs("<section id=\"summary\">\n<h2>Summary</h2>\n", pg->f);
    if (no_journal(pg)) {
        fputs("</section>\n", pg->f);
        return;
    }
    if (journal_failed(pg, state_totals(&t, pg->s, &e)) == DM_OK) {
        fputs("<div class=\"tiles\">\n", pg->f);
        tile(pg, "users migrated", t.users_ok, "ok");
        tile(pg, "users failing", t.users_failed, t.users_failed ? "bad" : "");
        tile(pg, "groups migrated", t.groups_ok, "ok");
        tile(pg, "groups failing", t.groups_failed, t.groups_failed ? "bad" : "");
        tile(pg, "users with an imported hash", cv->imported, "");
        tile(pg, "users created for the hook", cv->hook_created, "");
        tile(pg, "verified through the hook", cv->verified, "");
        fputs("</div>\n", pg->f);
        if (cv->hook_created > 0) {
            fprintf(pg->f,
                    "<p>%.1f%% of the users created for the password-import hook have signed "
                    "in and moved their password (%s of ",
                    100.0 * (double)cv->verified / (double)cv->hook_created, num(n1, cv->verified));
            fprintf(pg->f, "%s).</p>\n", num(n1, cv->hook_created));
        }
    }
    fputs("</section>\n", pg->f);
}

struct run_list {
    struct state_run runs[REPORT_HTML_CHART_RUNS];
    size_t n;
};

static int collect_writing_run(const struct state_run *r, void *payload)
{
    struct run_list *l = payload;

    if (strcmp(r->kind, "plan") != 0) {
        l->runs[l->n++] = *r;
    }
    return l->n == REPORT_HTML_CHART_RUNS;
}

static int is_unfinished(const char *status)
{
    return strcmp(status, "done") != 0 && strcmp(status, "running") != 0;
}

static void runs_chart(struct page *pg, const struct run_list *l)
{
    const int plot_w = CHART_W - PAD_L - PAD_R, plot_h = CHART_H - PAD_T - PAD_B;
    long long top = 0, ymax;
    double slot, bw;
    size_t every;
    char n1[32], n2[32], n3[32], n4[32], t[32];

    for (size_t i = 0; i < l->n; i++) {
        const struct run_counts *c = &l->runs[i].counts;
        long long h = c->created + c->updated + c->failed + c->deleted;
        top = h > top ? h : top;
    }
    ymax = nice_max(top);
    slot = (double)plot_w / (double)l->n;
    bw = slot * 0.7 > 40.0 ? 40.0 : slot * 0.7;
    every = slot >= 28.0 ? 1 : (size_t)(28.0 / slot) + 1;
    fprintf(pg->f,
            "<svg id=\"runs-chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "aria-label=\"objects created, updated, failed and deleted per run\">\n",
            CHART_W, CHART_H);
    y_axis(pg, ymax);
    /* Oldest on the left: l->runs is newest first. */
    for (size_t k = 0; k < l->n; k++) {
        const struct state_run *r = &l->runs[l->n - 1 - k];
        const long long parts[4] = {r->counts.created, r->counts.updated, r->counts.failed,
                                    r->counts.deleted};
        static const char *const cls[4] = {"c-created", "c-updated", "c-failed", "c-deleted"};
        double x = PAD_L + slot * (double)k + (slot - bw) / 2.0, y = PAD_T + plot_h;

        fprintf(pg->f, "<g><title>run %lld (%s", r->id, r->kind);
        if (r->wave[0] != '\0') {
            fputs(", wave ", pg->f);
            esc(pg, r->wave);
        }
        fprintf(pg->f, ") %s UTC, ", when(t, r->started, 1));
        esc(pg, r->status);
        fprintf(pg->f, ": %s created, %s updated, %s failed, %s deleted, ",
                num(n1, r->counts.created), num(n2, r->counts.updated), num(n3, r->counts.failed),
                num(n4, r->counts.deleted));
        fprintf(pg->f, "%s unchanged</title>\n", num(n1, r->counts.unchanged));
        for (int j = 0; j < 4; j++) {
            double h = (double)plot_h * (double)parts[j] / (double)ymax;
            if (parts[j] <= 0) {
                continue;
            }
            y -= h;
            fprintf(pg->f,
                    "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n",
                    cls[j], x, y, bw, h);
        }
        if (is_unfinished(r->status)) {
            fprintf(pg->f, "<text class=\"flag\" x=\"%.1f\" y=\"%.1f\">!</text>\n", x + bw / 2,
                    y - 4);
        }
        if (label_here(k, l->n, every)) {
            fprintf(pg->f, "<text class=\"xlabel\" x=\"%.1f\" y=\"%d\">%lld</text>\n", x + bw / 2,
                    PAD_T + plot_h + 16, r->id);
        }
        fputs("</g>\n", pg->f);
    }
    fprintf(pg->f,
            "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n"
            "<text x=\"%d\" y=\"%d\">%s</text>",
            PAD_L, PAD_T + plot_h, CHART_W - PAD_R, PAD_T + plot_h, PAD_L, CHART_H - 12,
            when(t, l->runs[l->n - 1].started, 0));
    fprintf(pg->f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", CHART_W - PAD_R,
            CHART_H - 12, when(t, l->runs[0].started, 0));
    fprintf(pg->f, "<text class=\"xlabel\" x=\"%d\" y=\"%d\">run</text>\n</svg>\n",
            PAD_L + plot_w / 2, CHART_H - 12);
    fputs("<div class=\"legend\"><span><i class=\"sw-created\"></i>created</span>"
          "<span><i class=\"sw-updated\"></i>updated</span>"
          "<span><i class=\"sw-failed\"></i>failed</span>"
          "<span><i class=\"sw-deleted\"></i>deleted</span>"
          "<span><b class=\"bad\">!</b> blocked, failed or interrupted</span></div>\n",
          pg->f);
}

static void run_cells(struct page *pg, const struct state_run *r)
{
    char t[32], n[32];

    fprintf(pg->f, "<tr><td class=\"n\">%lld</td><td>", r->id);
    esc(pg, r->kind);
    fputs("</td><td>", pg->f);
    esc(pg, r->wave[0] ? r->wave : "-");
    fputs("</td><td class=\"st-", pg->f);
    esc(pg, r->status);
    fputs("\">", pg->f);
    esc(pg, r->status);
    fprintf(pg->f, "</td><td>%s</td>", when(t, r->started, 1));
    if (r->finished > 0 && r->finished >= r->started) {
        fprintf(pg->f, "<td class=\"n\">%lld s</td>", r->finished - r->started);
    } else {
        fputs("<td class=\"n\">-</td>", pg->f);
    }
    fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, r->counts.created));
    fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, r->counts.updated));
    fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, r->counts.unchanged));
    fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, r->counts.failed));
    fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, r->counts.deleted));
    fprintf(pg->f, "<td class=\"n\">%s</td></tr>\n", num(n, r->counts.skipped));
}

static int run_row(const struct state_run *r, void *payload)
{
    run_cells(payload, r);
    return 0;
}

static void write_runs(struct page *pg, const struct state_run_summary *sum)
{
    struct run_list *l;
    struct dm_err e = {0};
    char n1[32], n2[32], t1[32], t2[32];

    fputs("<section id=\"runs\">\n<h2>Runs over time</h2>\n", pg->f);
    if (no_journal(pg)) {
        fputs("</section>\n", pg->f);
        return;
    }
    fprintf(pg->f, "<p>%s run%s that wrote and %s plan%s", num(n1, sum->runs),
            sum->runs == 1 ? "" : "s", num(n2, sum->plans), sum->plans == 1 ? "" : "s");
    if (sum->first_started > 0) {
        fprintf(pg->f, ", from %s to %s UTC", when(t1, sum->first_started, 1),
                when(t2, sum->last_started, 1));
    }
    fputs(".</p>\n", pg->f);
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        journal_failed(pg, DM_ENOMEM);
        fputs("</section>\n", pg->f);
        return;
    }
    if (journal_failed(pg, state_runs(pg->s, 4 * REPORT_HTML_CHART_RUNS, collect_writing_run, l,
                                      &e)) == DM_OK) {
        if (l->n > 0 && (long long)l->n < sum->runs) {
            fprintf(pg->f, "<p class=\"note\">The chart shows the newest %zu.</p>\n", l->n);
        }
        if (l->n > 0) {
            runs_chart(pg, l);
        } else {
            fputs("<p class=\"empty\">No run has written anything yet.</p>\n", pg->f);
        }
    }
    free(l);
    fprintf(pg->f,
            "<h3>Newest runs</h3>\n<table id=\"runs-table\"><thead><tr><th class=\"n\">run</th>"
            "<th>kind</th><th>wave</th><th>status</th><th>started (UTC)</th>"
            "<th class=\"n\">took</th><th class=\"n\">created</th><th class=\"n\">updated</th>"
            "<th class=\"n\">unchanged</th><th class=\"n\">failed</th><th class=\"n\">deleted</th>"
            "<th class=\"n\">skipped</th></tr></thead><tbody>\n");
    journal_failed(pg, state_runs(pg->s, REPORT_HTML_TABLE_RUNS, run_row, pg, &e));
    fputs("</tbody></table>\n<p class=\"note\">Plans count what a run would do; the chart "
          "leaves them out.</p>\n</section>\n",
          pg->f);
}

static void write_outcomes(struct page *pg, const struct state_run_summary *sum)
{
    const int row_h = 30, w = CHART_W, label_w = 150, plot_w = w - label_w - 120;
    const struct {
        const char *name, *cls;
        long long v;
    } rows[] = {
        {"created", "c-created", sum->sum.created},
        {"updated", "c-updated", sum->sum.updated},
        {"unchanged", "c-unchanged", sum->sum.unchanged},
        {"failed", "c-failed", sum->sum.failed},
        {"deleted", "c-deleted", sum->sum.deleted},
        {"skipped", "c-skipped", sum->sum.skipped},
    };
    const size_t nrows = sizeof(rows) / sizeof(rows[0]);
    long long top = 0;
    char n[32];

    fputs("<section id=\"outcomes\">\n<h2>Outcome counts</h2>\n", pg->f);
    if (no_journal(pg)) {
        fputs("</section>\n", pg->f);
        return;
    }
    fputs("<p>Objects by outcome, summed over every run that wrote (an object unchanged in "
          "five runs counts five times).</p>\n",
          pg->f);
    for (size_t i = 0; i < nrows; i++) {
        top = rows[i].v > top ? rows[i].v : top;
    }
    fprintf(pg->f,
            "<svg id=\"outcomes-chart\" viewBox=\"0 0 %d %zu\" role=\"img\" "
            "aria-label=\"objects by outcome over all runs\">\n",
            w, nrows * (size_t)row_h + 10);
    for (size_t i = 0; i < nrows; i++) {
        double bw = top > 0 ? (double)plot_w * (double)rows[i].v / (double)top : 0.0;
        int y = 5 + (int)i * row_h;
        fprintf(pg->f,
                "<g><title>%s: %s</title><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>"
                "<rect class=\"%s\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\"/>"
                "<text x=\"%.1f\" y=\"%d\">%s</text></g>\n",
                rows[i].name, num(n, rows[i].v), label_w - 10, y + 18, rows[i].name, rows[i].cls,
                label_w, y + 4, bw, row_h - 10, label_w + bw + 8, y + 18, n);
    }
    fputs("</svg>\n</section>\n", pg->f);
}

struct cat_list {
    struct state_error_category c[MAX_CATS];
    char names[MAX_CATS][64];
    size_t n;
    long long rest_total, rest_open;
};

static int collect_cat(const struct state_error_category *c, void *payload)
{
    struct cat_list *l = payload;

    if (l->n == MAX_CATS) {
        l->rest_total += c->total;
        l->rest_open += c->open;
        return 0;
    }
    snprintf(l->names[l->n], sizeof(l->names[l->n]), "%s", c->category);
    l->c[l->n] = *c;
    l->c[l->n].category = l->names[l->n];
    l->n++;
    return 0;
}

struct example_ctx {
    struct page *pg;
    int open;     /* a category's <details> is open */
    char cat[64]; /* its category */
};

static int example_row(const struct state_error_row *r, void *payload)
{
    struct example_ctx *x = payload;
    struct page *pg = x->pg;
    char t[32];

    if (!x->open || strncmp(x->cat, r->category, sizeof(x->cat) - 1) != 0) {
        if (x->open) {
            fputs("</tbody></table></details>\n", pg->f);
        }
        x->open = 1;
        snprintf(x->cat, sizeof(x->cat), "%s", r->category);
        fputs("<details open><summary>", pg->f);
        esc(pg, r->category);
        fputs("</summary><table class=\"examples\"><thead><tr><th class=\"n\">run</th>"
              "<th>when (UTC)</th><th>object</th><th>entry</th><th>message</th></tr></thead>"
              "<tbody>\n",
              pg->f);
    }
    fprintf(pg->f, "<tr><td class=\"n\">%lld</td><td>%s</td><td>", r->run, when(t, r->at, 1));
    esc_masked_id(pg, r->key);
    fputs("</td><td>", pg->f);
    esc_masked_id(pg, r->dn);
    fputs("</td><td class=\"msg\">", pg->f);
    esc_masked_text(pg, r->message, r->key, r->dn);
    fputs("</td></tr>\n", pg->f);
    return 0;
}

static void write_problems(struct page *pg)
{
    struct cat_list *l;
    struct example_ctx x;
    struct dm_err e = {0};
    long long top = 1;
    char n1[32], n2[32];

    fputs("<section id=\"problems\">\n<h2>Problems by category</h2>\n", pg->f);
    if (no_journal(pg)) {
        fputs("</section>\n", pg->f);
        return;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        journal_failed(pg, DM_ENOMEM);
        fputs("</section>\n", pg->f);
        return;
    }
    if (journal_failed(pg, state_error_categories(pg->s, collect_cat, l, &e)) != DM_OK) {
        goto done;
    }
    if (l->n == 0) {
        fputs("<p class=\"empty\">No problem has been recorded.</p>\n", pg->f);
        goto done;
    }
    for (size_t i = 0; i < l->n; i++) {
        top = l->c[i].total > top ? l->c[i].total : top;
    }
    fputs("<p>Errors recorded by the runs. <em>Open</em>: the object's newest run failed with "
          "it (retried by the next run, or with <code>run --retry-from</code>).</p>\n"
          "<table id=\"problems-table\"><thead><tr><th>category</th><th class=\"n\">open</th>"
          "<th class=\"n\">recorded</th><th class=\"n\">newest run</th><th></th></tr></thead>"
          "<tbody>\n",
          pg->f);
    for (size_t i = 0; i < l->n; i++) {
        fputs("<tr><td>", pg->f);
        esc(pg, l->c[i].category);
        fprintf(pg->f,
                "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%lld</td>"
                "<td><span class=\"bar\" style=\"width:%dpx\"></span></td></tr>\n",
                num(n1, l->c[i].open), num(n2, l->c[i].total), l->c[i].last_run,
                (int)(1 + 199 * l->c[i].total / top));
    }
    if (l->rest_total > 0) {
        fprintf(pg->f,
                "<tr><td>(other categories)</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                "<td></td><td></td></tr>\n",
                num(n1, l->rest_open), num(n2, l->rest_total));
    }
    fprintf(pg->f,
            "</tbody></table>\n<h3>Newest examples</h3>\n<p class=\"note\">Up to %d per "
            "category. Identities are masked (first character of each name); the validation "
            "export and the log name them in full for the operator.</p>\n",
            REPORT_HTML_EXAMPLES);
    memset(&x, 0, sizeof(x));
    x.pg = pg;
    journal_failed(pg, state_error_examples(pg->s, REPORT_HTML_EXAMPLES, example_row, &x, &e));
    if (x.open) {
        fputs("</tbody></table></details>\n", pg->f);
    }
done:
    free(l);
    fputs("</section>\n", pg->f);
}

struct wave_ctx {
    struct page *pg;
    char names[MAX_WAVES][64];
    size_t n;
};

static int wave_row(const struct state_wave *w, void *payload)
{
    struct wave_ctx *x = payload;
    struct page *pg = x->pg;
    char n[32], t[32];

    if (x->n < MAX_WAVES) {
        snprintf(x->names[x->n++], sizeof(x->names[0]), "%s", w->name);
    }
    fputs("<tr><td>", pg->f);
    esc(pg, w->name);
    fprintf(pg->f, "</td><td class=\"n\">%s</td>", num(n, w->runs));
    fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, w->plans));
    fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, w->sum.created));
    fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, w->sum.updated));
    fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, w->sum.unchanged));
    fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, w->sum.failed));
    fprintf(pg->f, "<td>%lld, %s, <span class=\"st-", w->last_run, when(t, w->last_started, 1));
    esc(pg, w->last_status);
    fputs("\">", pg->f);
    esc(pg, w->last_status);
    fputs("</span></td></tr>\n", pg->f);
    return 0;
}

static void write_waves(struct page *pg)
{
    struct wave_ctx *x;
    struct dm_err e = {0};
    int pending = 0;

    fputs("<section id=\"waves\">\n<h2>Waves</h2>\n", pg->f);
    if (no_journal(pg)) {
        fputs("</section>\n", pg->f);
        return;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        journal_failed(pg, DM_ENOMEM);
        fputs("</section>\n", pg->f);
        return;
    }
    x->pg = pg;
    fputs("<table id=\"waves-table\"><thead><tr><th>wave</th><th class=\"n\">runs</th>"
          "<th class=\"n\">plans</th><th class=\"n\">created</th><th class=\"n\">updated</th>"
          "<th class=\"n\">unchanged</th><th class=\"n\">failed</th>"
          "<th>newest run, started (UTC), status</th></tr></thead><tbody>\n",
          pg->f);
    journal_failed(pg, state_waves(pg->s, wave_row, x, &e));
    fputs("</tbody></table>\n", pg->f);
    if (x->n == 0) {
        fputs("<p class=\"empty\">No run has been limited to a wave (<code>run --wave "
              "NAME</code>).</p>\n",
              pg->f);
    }
    for (size_t i = 0; i < pg->o->nwaves; i++) {
        int seen = 0;
        for (size_t j = 0; j < x->n && !seen; j++) {
            seen = strcmp(x->names[j], pg->o->waves[i].name) == 0;
        }
        if (seen) {
            continue;
        }
        fputs(pending++ ? ", " : "<p>Configured, not run yet: ", pg->f);
        esc(pg, pg->o->waves[i].name);
    }
    if (pending) {
        fputs(".</p>\n", pg->f);
    }
    free(x);
    fputs("</section>\n", pg->f);
}

static int unfinished_row(const struct state_run *r, void *payload)
{
    struct page *pg = payload;
    char t[32];

    fprintf(pg->f, "<tr><td class=\"n\">%lld</td><td>", r->id);
    esc(pg, r->kind);
    fputs("</td><td>", pg->f);
    esc(pg, r->wave[0] ? r->wave : "-");
    fputs("</td><td class=\"st-", pg->f);
    esc(pg, r->status);
    fputs("\">", pg->f);
    esc(pg, r->status);
    fprintf(pg->f, "</td><td>%s</td><td class=\"msg\">", when(t, r->started, 1));
    if (r->reason[0] != '\0') {
        esc_masked_text(pg, r->reason, NULL, NULL);
    } else if (strcmp(r->status, "interrupted") == 0) {
        fputs("stopped by a signal, or its process ended before it finished", pg->f);
    } else {
        fputs("-", pg->f);
    }
    fputs("</td></tr>\n", pg->f);
    return 0;
}

static void write_blocked(struct page *pg, const struct state_run_summary *sum)
{
    struct dm_err e = {0};
    char n1[32], n2[32], n3[32];

    fputs("<section id=\"blocked\">\n<h2>Blocked runs</h2>\n", pg->f);
    if (no_journal(pg)) {
        fputs("</section>\n", pg->f);
        return;
    }
    fprintf(pg->f,
            "<div class=\"tiles\"><div class=\"tile%s\"><div class=\"v\">%s</div>"
            "<div class=\"l\">blocked (a safety gate held the run back)</div></div>",
            sum->blocked ? " bad" : "", num(n1, sum->blocked));
    fprintf(pg->f,
            "<div class=\"tile%s\"><div class=\"v\">%s</div><div class=\"l\">failed</div></div>"
            "<div class=\"tile\"><div class=\"v\">%s</div><div class=\"l\">interrupted</div>"
            "</div></div>\n",
            sum->failed ? " bad" : "", num(n2, sum->failed), num(n3, sum->interrupted));
    if (sum->blocked + sum->failed + sum->interrupted == 0) {
        fputs("<p class=\"empty\">Every run finished: none was blocked, failed or "
              "interrupted.</p>\n",
              pg->f);
    }
    fprintf(pg->f, "<table id=\"blocked-table\"><thead><tr><th class=\"n\">run</th><th>kind</th>"
                   "<th>wave</th><th>status</th><th>started (UTC)</th><th>reason</th></tr></thead>"
                   "<tbody>\n");
    journal_failed(
        pg, state_runs_unfinished(pg->s, REPORT_HTML_UNFINISHED_RUNS, unfinished_row, pg, &e));
    fprintf(pg->f,
            "</tbody></table>\n<p class=\"note\">The newest %d runs that did not finish "
            "(a run still going shows as running).</p>\n</section>\n",
            REPORT_HTML_UNFINISHED_RUNS);
}

static void curve_chart(struct page *pg, const struct curve *cv)
{
    const int plot_w = CHART_W - PAD_L - PAD_R, plot_h = CHART_H - PAD_T - PAD_B;
    static const char *const series[3] = {"imp", "hook", "ver"};
    static const char *const names[3] = {"with an imported hash", "created for the hook",
                                         "verified through the hook"};
    long d0 = day_number(cv->days[0].day), d1 = day_number(cv->days[cv->n - 1].day);
    long long ymax, top = 0, cum[3] = {0, 0, 0};
    size_t every = cv->n > 8 ? (cv->n + 7) / 8 : 1;
    char n[32];

    for (size_t i = 0; i < cv->n; i++) {
        cum[0] += cv->days[i].imported;
        cum[1] += cv->days[i].hook_created;
        cum[2] += cv->days[i].verified;
    }
    for (int k = 0; k < 3; k++) {
        top = cum[k] > top ? cum[k] : top;
    }
    ymax = nice_max(top);
    if (d0 < 0 || d1 < d0) {
        d0 = d1 = 0;
    }
    if (d1 == d0) { /* one day: put it in the middle */
        d0 -= 1;
        d1 += 1;
    }
    fprintf(pg->f,
            "<svg id=\"passwords-chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "aria-label=\"users by sign-in path, cumulative per day\">\n",
            CHART_W, CHART_H);
    y_axis(pg, ymax);
    fprintf(pg->f, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", PAD_L,
            PAD_T + plot_h, CHART_W - PAD_R, PAD_T + plot_h);
    for (int k = 0; k < 3; k++) {
        long long c = 0;
        fprintf(pg->f, "<polyline class=\"l-%s\" points=\"", series[k]);
        for (size_t i = 0; i < cv->n; i++) {
            long dn = day_number(cv->days[i].day);
            double x = PAD_L + (double)plot_w * (double)(dn - d0) / (double)(d1 - d0);
            c += k == 0   ? cv->days[i].imported
                 : k == 1 ? cv->days[i].hook_created
                          : cv->days[i].verified;
            fprintf(pg->f, "%.1f,%.1f ", x, PAD_T + plot_h - (double)plot_h * c / ymax);
        }
        fputs("\"/>\n", pg->f);
    }
    memset(cum, 0, sizeof(cum));
    for (size_t i = 0; i < cv->n; i++) {
        long dn = day_number(cv->days[i].day);
        double x = PAD_L + (double)plot_w * (double)(dn - d0) / (double)(d1 - d0);
        cum[0] += cv->days[i].imported;
        cum[1] += cv->days[i].hook_created;
        cum[2] += cv->days[i].verified;
        for (int k = 0; k < 3 && cv->n <= MAX_MARKED_DAYS; k++) {
            fprintf(pg->f,
                    "<circle class=\"p-%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"><title>%s: %s "
                    "users %s</title></circle>\n",
                    series[k], x, PAD_T + plot_h - (double)plot_h * cum[k] / ymax, cv->days[i].day,
                    num(n, cum[k]), names[k]);
        }
        if (label_here(i, cv->n, every)) {
            /* Labels at the edges grow inwards, so none is cut off. */
            const char *anchor = x < PAD_L + 40             ? "start"
                                 : x > CHART_W - PAD_R - 40 ? "end"
                                                            : "middle";
            fprintf(pg->f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">%s</text>\n", x,
                    PAD_T + plot_h + 16, anchor, cv->days[i].day);
        }
    }
    fprintf(pg->f, "<text class=\"xlabel\" x=\"%d\" y=\"%d\">day (UTC)</text>\n</svg>\n",
            PAD_L + plot_w / 2, CHART_H - 12);
    fputs("<div class=\"legend\"><span><i class=\"sw-imp\"></i>users created with an "
          "imported hash</span><span><i class=\"sw-hook\"></i>users created for the "
          "password-import hook</span><span><i class=\"sw-ver\"></i>users verified through the "
          "hook</span> (cumulative)</div>\n",
          pg->f);
}

static void write_passwords(struct page *pg, const struct curve *cv)
{
    long long cum[3] = {0, 0, 0};
    char n[32];

    fputs("<section id=\"passwords\">\n<h2>Password migration</h2>\n", pg->f);
    if (no_journal(pg)) {
        fputs("</section>\n", pg->f);
        return;
    }
    fputs("<p>Every migrated user needs a way to sign in at the target: an imported password "
          "hash, or the password-import hook, which checks the password against the source at "
          "the user's first sign-in and moves it. Counted per UTC day, each user once per "
          "column.</p>\n",
          pg->f);
    if (cv->n == 0) {
        fputs("<p class=\"empty\">No user has been created with a password yet, and nobody "
              "has signed in through the hook.</p>\n</section>\n",
              pg->f);
        return;
    }
    curve_chart(pg, cv);
    fprintf(pg->f, "<details%s><summary>Per day (%zu days)</summary>\n",
            cv->n <= OPEN_DAYS ? " open" : "", cv->n);
    fputs("<table id=\"passwords-table\"><thead><tr><th>day (UTC)</th>"
          "<th class=\"n\">imported hash</th><th class=\"n\">created for the hook</th>"
          "<th class=\"n\">verified through the hook</th><th class=\"n\">verified so far</th>"
          "<th class=\"n\">of hook users</th></tr></thead><tbody>\n",
          pg->f);
    for (size_t i = 0; i < cv->n; i++) {
        const struct state_signin_day *d = &cv->days[i];
        cum[0] += d->imported;
        cum[1] += d->hook_created;
        cum[2] += d->verified;
        fprintf(pg->f, "<tr><td>%s</td><td class=\"n\">%s</td>", d->day, num(n, d->imported));
        fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, d->hook_created));
        fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, d->verified));
        fprintf(pg->f, "<td class=\"n\">%s</td>", num(n, cum[2]));
        if (cum[1] > 0) {
            fprintf(pg->f, "<td class=\"n\">%.1f%%</td></tr>\n",
                    100.0 * (double)cum[2] / (double)cum[1]);
        } else {
            fputs("<td class=\"n\">-</td></tr>\n", pg->f);
        }
    }
    fputs("</tbody></table>\n</details>\n", pg->f);
    if (cv->truncated) {
        fprintf(pg->f,
                "<p class=\"note\">Only the first %d days are drawn; the totals count "
                "every day.</p>\n",
                MAX_DAYS);
    }
    fputs("</section>\n", pg->f);
}

int report_html_write(FILE *out, struct state *s, const struct report_html_opts *o,
                      struct dm_err *err)
{
    struct page pg = {out, s, o, {0}, DM_OK};
    struct state_run_summary sum = {0};
    struct curve cv;
    int rc = DM_OK;

    memset(&cv, 0, sizeof(cv));
    buf_init(&pg.scratch, 1 << 16);
    if (s != NULL) {
        rc = state_signin_daily(s, curve_row, &cv, err);
        if (rc == DM_OK && cv.oom) {
            rc = dm_err_set(err, DM_ENOMEM, "out of memory");
        }
        if (rc == DM_OK) {
            rc = state_run_summary(&sum, s, err);
        }
        if (rc != DM_OK) {
            goto done;
        }
    }
    write_head(&pg);
    write_summary(&pg, &cv);
    write_runs(&pg, &sum);
    write_outcomes(&pg, &sum);
    write_problems(&pg);
    write_waves(&pg);
    write_blocked(&pg, &sum);
    write_passwords(&pg, &cv);
    fputs("</main>\n</body>\n</html>\n", out);
    if (pg.rc != DM_OK) {
        /* A section's query failed: say which journal, once. */
        rc = dm_err_set(err, pg.rc == DM_ENOMEM ? DM_ENOMEM : DM_EINTERNAL,
                        "report: the state journal could not be read completely");
        goto done;
    }
    if (fflush(out) != 0 || ferror(out)) {
        rc = dm_err_set(err, DM_EINTERNAL, "report: writing the page failed: %s", strerror(errno));
        goto done;
    }
    rc = DM_OK;
done:
    free(cv.days);
    buf_free(&pg.scratch);
    return rc;
}

/* The URI without user information ("user:secret@"), which a report never shows. */
static char *uri_shown(const char *uri)
{
    const char *scheme = uri != NULL ? strstr(uri, "://") : NULL;
    const char *host, *at, *end;
    char *r;

    if (uri == NULL) {
        return NULL;
    }
    host = scheme != NULL ? scheme + 3 : uri;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    if (at == NULL) {
        return strdup(uri);
    }
    r = malloc(strlen(uri) + 1);
    if (r != NULL) {
        memcpy(r, uri, (size_t)(host - uri));
        strcpy(r + (host - uri), at + 1);
    }
    return r;
}

int report_html_cmd(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                    struct dm_err *err)
{
    struct report_html_opts ho;
    struct state *st = NULL;
    char *tmp = NULL, *src = uri_shown(cfg->source.conn.uri),
         *dst = uri_shown(cfg->target.conn.uri);
    FILE *f = NULL;
    mode_t mask;
    int fd = -1, rc;

    memset(&ho, 0, sizeof(ho));
    ho.source = src;
    ho.target = dst;
    ho.journal = config_state_name(cfg);
    ho.waves = cfg->waves;
    ho.nwaves = cfg->nwaves;
    ho.now = time(NULL);
    if (config_state_exists(cfg)) {
        struct state_where w;

        config_state_where(&w, cfg);
        rc = state_open_cfg(&st, &w, err);
        if (rc != DM_OK) {
            goto done;
        }
    } else {
        log_warn("no state journal at %s yet (nothing has run): the report is empty",
                 cfg->state_path);
    }
    if (strcmp(o->html, "-") == 0) {
        rc = report_html_write(stdout, st, &ho, err);
        goto done;
    }
    /* Written beside the destination and renamed when complete: a reader never sees half
     * a page, and a failed report leaves an older one in place. */
    if (asprintf(&tmp, "%s.tmp-XXXXXX", o->html) < 0) {
        tmp = NULL;
        rc = dm_err_set(err, DM_ENOMEM, "out of memory");
        goto done;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        tmp = NULL;
        *exit_hint = EX_CANTCREAT;
        rc = dm_err_set(err, DM_EINVAL, "%s: cannot create the report: %s", o->html,
                        strerror(errno));
        goto done;
    }
    mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0 || (f = fdopen(fd, "w")) == NULL) {
        rc = dm_err_set(err, DM_EINTERNAL, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    rc = report_html_write(f, st, &ho, err);
    if (rc == DM_OK && (fsync(fileno(f)) != 0 || fclose(f) != 0)) {
        f = NULL;
        rc = dm_err_set(err, DM_EINTERNAL, "%s: writing the report failed: %s", o->html,
                        strerror(errno));
    }
    if (rc == DM_OK) {
        f = NULL;
        if (rename(tmp, o->html) != 0) {
            *exit_hint = EX_CANTCREAT;
            rc = dm_err_set(err, DM_EINVAL, "%s: cannot write the report: %s", o->html,
                            strerror(errno));
            goto done;
        }
        free(tmp);
        tmp = NULL;
        log_info("report written to %s", o->html);
        if (o->json) {
            json_t *j = json_pack("{s:s}", "html", o->html);
            json_dumpf(j, stdout, JSON_COMPACT);
            fputc('\n', stdout);
            json_decref(j);
        }
    }
done:
    if (f != NULL) {
        fclose(f);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    state_close(st);
    free(src);
    free(dst);
    return rc;
}
