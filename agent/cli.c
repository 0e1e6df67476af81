#include <config.h>
#include "agent/cli.h"
#include "agent/check.h"
#include "agent/config.h"
#include "agent/daemon.h"
#include "agent/exitcode.h"
#include "agent/explain.h"
#include "agent/hook.h"
#include "agent/mapping.h"
#include "agent/pipeline.h"
#include "agent/planfile.h"
#include "agent/report.h"
#include "agent/rollback.h"
#include "agent/report_html.h"
#include "agent/state.h"
#include "agent/statecmd.h"
#include "agent/util/log.h"
#include "agent/util/suggest.h"
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

/*
 * agent/cli.c: the command line (cli.h). One table of options and one of commands; a
 * command lists the options it takes, and everything else is refused.
 */

struct cli {
    struct cli_opts o;
    FILE *logf;
    struct buf notes; /* check --offline: what the loader could not check here */
};

/* ---- the options ---- */

enum {
    O_WAVE = 1u << 0,
    O_RETRY = 1u << 1,
    O_LIMIT = 1u << 2,
    O_SAMPLES = 1u << 3,
    O_NO_PROGRESS = 1u << 4,
    O_OUT = 1u << 5,
    O_EXPLAIN = 1u << 6,
    O_OFFLINE = 1u << 7,
    O_VERIFY = 1u << 8,
    O_REBIND = 1u << 9,
    O_JSON = 1u << 10,
    O_ALLOW_DELETES = 1u << 11,
    O_HTML = 1u << 12,
    O_PLAN_OUT = 1u << 13, /* plan --out FILE */
    O_PLAN_IN = 1u << 14,  /* run --plan FILE */
    O_MAX_AGE = 1u << 15,
    O_DRY = 1u << 16, /* rollback --plan */
    O_PROGRESS = 1u << 17,
    O_FROM = 1u << 18, /* state migrate --from TYPE */
};

/* The options a command may take (the global ones, -c -v -q -h -V, every command takes). */
static const struct cli_option {
    const char *name; /* long name, without "--" */
    const char *arg;  /* its argument, NULL for a flag */
    unsigned bit;
    const char *help;
} options[] = {
    {"wave", "NAME", O_WAVE, "only the users of this wave (\"waves\" in dirmig.json)"},
    {"retry-from", "FILE", O_RETRY,
     "only the entries of a validation export (PREFIX.csv of dirmig validate)"},
    {"limit", "N", O_LIMIT, "stop after N users"},
    {"samples", "N", O_SAMPLES, "sample changes shown, 0..100 (default 10)"},
    {"no-progress", NULL, O_NO_PROGRESS, "no progress line on a terminal (--progress none)"},
    {"progress", "MODE", O_PROGRESS,
     "auto: a line with the phase, done/total, rate and ETA when standard error is a "
     "terminal; json: JSON lines on standard error; none"},
    {"out", "PREFIX", O_OUT, "write PREFIX.csv and PREFIX.jsonl"},
    {"explain", "KEY", O_EXPLAIN, "the entry: its correlation key or its DN (required)"},
    {"offline", NULL, O_OFFLINE,
     "contact no server and read no secret: check the configuration, the map, the profiles "
     "and the files they name; list what this machine lacks"},
    {"verify-target", NULL, O_VERIFY,
     "read the target and compare it with the source in this run (see run.verify_target)"},
    {"rebind-state", NULL, O_REBIND,
     "the state journal was written for another target: rebind it to this one"},
    {"allow-deletes", "N", O_ALLOW_DELETES,
     "allow this run up to N deletions or disables beyond the leavers limits (leavers.max_deletes, "
     "leavers.max_delete_percent); refused when the source read is not provably complete"},
    {"html", "FILE", O_HTML, "the whole program on one self-contained HTML page"},
    {"from", "TYPE", O_FROM, "the type of the journal to copy (sqlite)"},
    /* two options may share a name when no command takes both (plan's --out FILE is not
     * validate's --out PREFIX; run's --plan FILE is not rollback's --plan) */
    {"out", "FILE", O_PLAN_OUT,
     "save every change to FILE (JSON Lines, mode 0600; attribute names and digests, never "
     "values) for a run of exactly those changes"},
    {"plan", "FILE", O_PLAN_IN,
     "apply exactly the changes of a plan saved by dirmig plan: an object whose source or "
     "target changed since is refused and listed"},
    {"max-age", "DURATION", O_MAX_AGE,
     "with --plan: refuse a plan older than DURATION (N seconds, or Ns, Nm, Nh, Nd)"},
    {"plan", NULL, O_DRY, "show what the rollback would do; write nothing"},
    {"json", NULL, O_JSON, "the result as one JSON object on standard output"},
};

/* ---- the commands ---- */

struct cli_command;
typedef int (*cli_run_fn)(struct cli *c, const struct cli_command *cmd, int *exit_hint);

struct cli_command {
    const char *name;
    const char *summary; /* one line for dirmig --help */
    unsigned opts;       /* options taken */
    unsigned required;   /* options needed */
    const char *about;   /* for dirmig COMMAND --help */
    const char *example;
    cli_run_fn run;
    cli_cmd_fn fn;    /* when run is NULL: runs on the loaded config */
    const char *args; /* its positional arguments, as its usage shows them ("RUN", "migrate
                       * PATH"): exactly that many words are required; NULL for none */
};

static int cmd_check(struct cli *c, const struct cli_command *cmd, int *exit_hint);
static int cmd_plan(struct cli *c, const struct cli_command *cmd, int *exit_hint);
static int cmd_run(struct cli *c, const struct cli_command *cmd, int *exit_hint);
static int cmd_validate(struct cli *c, const struct cli_command *cmd, int *exit_hint);
static int cmd_status_run(struct cli *c, const struct cli_command *cmd, int *exit_hint);
static int cmd_report(struct cli *c, const struct cli_command *cmd, int *exit_hint);
static int cmd_rollback(struct cli *c, const struct cli_command *cmd, int *exit_hint);

static const struct cli_command commands[] = {
    {"check", "preflight: the configuration, the servers, the bases and the containers",
     O_OFFLINE | O_JSON, 0,
     "Loads the configuration, the map and its profiles, and reports every problem at once "
     "with its file:line:column. Then connects and binds to the source and the target and "
     "shows what each server offers, the TLS in use and the identity the session is bound "
     "as; checks that the bases exist (for the source also the users and groups bases, the "
     "waves' groups and OUs and the hook's search base) and, for an LDAP target, the "
     "containers the run writes into (missing ones are created by the run unless "
     "target.create_containers is false); opens the state journal. Exits 66 when something "
     "named does not exist, 69 when a server cannot be reached, 77 when a bind is refused, "
     "78 for a configuration error.",
     "dirmig -c dirmig.json check --offline", cmd_check, NULL, NULL},
    {"validate", "data-quality report and validation export (CSV and JSON Lines)",
     O_WAVE | O_OUT | O_PROGRESS | O_NO_PROGRESS | O_JSON, 0,
     "Reads the whole source through the scope and the map, checks every constraint of the "
     "map and of its target profile and the dated activity, and writes a validation export: "
     "PREFIX.csv and PREFIX.jsonl (default prefix \"validation\"), one row per entry, pii "
     "values masked; then a summary by problem category. Writes nothing to the target. "
     "Exits 65 when a blocking category (validate.blocking) has problems.",
     "dirmig -c dirmig.json validate --wave pilot --out quality", cmd_validate, NULL, NULL},
    {"mapping", "correlation report: matched, source-only, target-only, ambiguous", O_OUT | O_JSON,
     0,
     "Correlates the source users with the users already in the target by the map's key and "
     "fallback rules: matched, source-only, target-only and ambiguous, as a summary and as "
     "PREFIX.csv and PREFIX.jsonl (default prefix \"mapping\").",
     "dirmig -c dirmig.json mapping --out correlation", NULL, mapping_cmd, NULL},
    {"map", "one entry through the map, step by step (--explain KEY)", O_EXPLAIN, O_EXPLAIN,
     "Shows how one source entry maps: each target attribute, its rule, the source values, "
     "every transform step and its result, and the constraint problems. KEY is the entry's "
     "correlation key or its DN. Values of pii and password attributes show as ***.",
     "dirmig -c dirmig.json map --explain uid=ada,ou=people,dc=example,dc=org", NULL, explain_cmd,
     NULL},
    {"plan", "dry run: what a run would create, update or leave unchanged, and why",
     O_WAVE | O_RETRY | O_LIMIT | O_SAMPLES | O_PROGRESS | O_NO_PROGRESS | O_VERIFY | O_REBIND |
         O_ALLOW_DELETES | O_PLAN_OUT | O_JSON,
     0,
     "Reads the source through the map and compares each object with what the target holds: "
     "what a run would create, update, disable, delete or leave unchanged and why (new, "
     "changed, drift, missing, leaver, collision...), the password schemes found, the members "
     "that would be left out, and sample changes (attribute names only, never values). Writes "
     "nothing to the target. With --out FILE every change is saved, for a run of exactly those "
     "changes (SQLite journal only). "
     "Deletes the target cannot give back (rollback) are counted and named. Exits 75 when the "
     "source-health gate or a deletion limit blocks the changes.",
     "dirmig -c dirmig.json plan --wave pilot --samples 3", cmd_plan, NULL, NULL},
    {"run", "the migration: users, then groups and memberships",
     O_WAVE | O_RETRY | O_LIMIT | O_PROGRESS | O_NO_PROGRESS | O_VERIFY | O_REBIND |
         O_ALLOW_DELETES | O_PLAN_IN | O_MAX_AGE | O_JSON,
     0,
     "Migrates users, then groups and memberships, planned from what the target holds and "
     "journaling every batch in the state journal: a run stopped half-way can be started "
     "again, and a second run writes nothing. Leavers are disabled or deleted as leavers.* "
     "says, only after a complete source read. Every change is recorded in the undo store "
     "for dirmig rollback (SQLite journal only). With --plan FILE (SQLite journal only) only "
     "the changes of a saved plan are made, each "
     "only when its object is as the plan found it. Prints a summary; exits 65 when some "
     "objects failed or were refused, or the saved plan was refused, 75 when the run was "
     "blocked (source-health gate, deletion limits) or another run of the target holds the "
     "runner lock, 130 when interrupted.",
     "dirmig -c dirmig.json run --wave pilot", cmd_run, NULL, NULL},
    {"status", "runs, counts and progress from the state journal", O_JSON, 0,
     "Recent runs, the journal's totals and the password-migration program's progress, read "
     "from the state journal (nothing is contacted); when an agent has run on this journal, "
     "its last scheduled run and the next one.",
     "dirmig -c dirmig.json status --json", cmd_status_run, NULL, NULL},
    {"hook", "serve the password-import hook (HTTPS), /metrics and /healthz", 0, 0,
     "Serves the password-import hook until SIGINT or SIGTERM: the Okta password import "
     "inline hook on hook.path, a generic JSON endpoint on hook.generic_path, /healthz and "
     "/metrics; HTTPS, or plain HTTP on a loopback address with hook.plain_http. Answers "
     "VERIFIED only after a successful bind as the user at the source. Needs a hook section "
     "and its secret.",
     "dirmig -c dirmig.json hook", NULL, hook_cmd, NULL},
    {"agent", "daemon: the hook server plus scheduled runs", 0, 0,
     "The long-running process for systemd (Type=notify): serves the hook when the "
     "configuration has a hook section and runs what dirmig run does every "
     "reconcile.interval_s seconds. SIGHUP re-reads the configuration (an invalid one is "
     "logged and the old one kept); SIGTERM stops after the current batch.",
     "dirmig -c dirmig.json agent", NULL, daemon_cmd, NULL},
    {"report", "password-migration progress per day", O_HTML | O_JSON, 0,
     "Password migrations per day (verified through the hook, by outcome) from the state "
     "journal. With --html FILE, the whole program on one self-contained page: users by "
     "sign-in path, waves, open problems and the daily curve.",
     "dirmig -c dirmig.json report --html program.html", cmd_report, NULL, NULL},
    {"rollback", "undo a run: remove what it created, restore what it changed or deleted",
     O_WAVE | O_DRY | O_JSON, 0,
     "Reverses the run RUN (its id in dirmig status, or \"last\" for the newest run) from the "
     "undo store, newest change first: deletes what it created, gives back the attributes it "
     "changed and the DN it moved, re-enables what it disabled and re-creates what it deleted "
     "(LDAP: the whole entry, password included, and its group memberships). An object "
     "changed at the target since the run is refused and listed, never overwritten. With "
     "--wave only that wave's objects; with --plan nothing is written. The rollback is "
     "journaled as a run of kind \"rollback\". Exits 65 when some changes were refused or "
     "failed, 78 on a PostgreSQL journal, which keeps no undo store.",
     "dirmig -c dirmig.json rollback last --plan", cmd_rollback, NULL, "RUN"},
    {"state", "the state journal: copy a SQLite journal into PostgreSQL", O_FROM, O_FROM,
     "state migrate --from sqlite PATH copies the SQLite journal at PATH (its runs, objects, "
     "errors, password migrations, user creations and counters, with their ids and times) "
     "into the journal this configuration names, typically state.type postgresql, in one "
     "transaction; the destination must hold no run and no object yet. PATH is brought to "
     "this dirmig's schema version first and is otherwise only read. Prints what was copied; "
     "exits 66 when PATH does not exist, 65 when the destination holds a journal already, "
     "69 when the database cannot be reached. The undo store beside PATH (PATH.undo) is not "
     "copied into a PostgreSQL journal, which keeps none; the command says so.",
     "dirmig -c dirmig.json state migrate --from sqlite old.db", NULL, statecmd_run,
     "migrate PATH"},
};

/* How many positional arguments a command's usage names ("migrate PATH": 2). */
static int count_words(const char *usage)
{
    int n = 0;

    for (const char *q = usage; q != NULL && *q != '\0'; q++) {
        if (*q != ' ' && (q == usage || q[-1] == ' ')) {
            n++;
        }
    }
    return n;
}

/* The rest of a command's usage after its first n words. */
static const char *skip_words(const char *usage, int n)
{
    const char *q = usage;

    for (int i = 0; i < n; i++) {
        q += strcspn(q, " ");
        q += strspn(q, " ");
    }
    return q;
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < DM_ARRAY_LEN(commands); i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

/* ---- help and usage errors ---- */

/* Writes the n bytes at p as one unbreakable word at column col: after a space, or on a
 * new line indented to indent when it would pass column 79. Returns the new column. */
static size_t put_word(FILE *f, const char *p, size_t n, size_t col, size_t indent)
{
    if (col > indent && col + 1 + n > 79) {
        fprintf(f, "\n%*s", (int)indent, "");
        col = indent;
    } else if (col > indent) {
        fputc(' ', f);
        col++;
    }
    fwrite(p, 1, n, f);
    return col + n;
}

/* Writes text from column col, words wrapped before column 80, continuation lines
 * indented to indent. Returns the column after the last word. */
static size_t wrap(FILE *f, const char *text, size_t col, size_t indent)
{
    const char *p = text;

    while (*p != '\0') {
        size_t n = strcspn(p, " ");

        col = put_word(f, p, n, col, indent);
        p += n;
        while (*p == ' ') {
            p++;
        }
    }
    return col;
}

static void print_global_help(FILE *f)
{
    fputs("usage: dirmig [-c FILE] [-v|-q] COMMAND [options]\n\ncommands:\n", f);
    for (size_t i = 0; i < DM_ARRAY_LEN(commands); i++) {
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fputs("\n"
          "options of every command:\n"
          "  -c, --config FILE   configuration (default: $DIRMIG_CONFIG or ./dirmig.json)\n"
          "  -v, --verbose       debug logging\n"
          "  -q, --quiet         errors only\n"
          "  -h, --help          this text; after a command, that command's options and an "
          "example\n"
          "  -V, --version       print the version\n"
          "\n"
          "`dirmig COMMAND --help` (or `dirmig help COMMAND`) shows what a command does, its\n"
          "options and an example. Secrets are never taken from the command line: see\n"
          "bind_pw_file / bind_pw_env in dirmig.json(5). Exit statuses: dirmig(1).\n",
          f);
}

static void print_command_help(FILE *f, const struct cli_command *cmd)
{
    size_t col;

    col = (size_t)fprintf(f, "usage: dirmig [-c FILE] [-v|-q] %s%s%s", cmd->name,
                          cmd->args != NULL ? " " : "", cmd->args != NULL ? cmd->args : "");
    for (size_t i = 0; i < DM_ARRAY_LEN(options); i++) {
        char item[64];

        if (!(cmd->opts & options[i].bit)) {
            continue;
        }
        snprintf(item, sizeof(item), (cmd->required & options[i].bit) ? "--%s%s%s" : "[--%s%s%s]",
                 options[i].name, options[i].arg ? " " : "", options[i].arg ? options[i].arg : "");
        col = put_word(f, item, strlen(item), col, 7);
    }
    fputs("\n\n", f);
    wrap(f, cmd->about, 0, 0);
    fputs("\n\noptions:\n", f);
    for (size_t i = 0; i < DM_ARRAY_LEN(options); i++) {
        char item[64];

        if (!(cmd->opts & options[i].bit)) {
            continue;
        }
        snprintf(item, sizeof(item), "--%s%s%s", options[i].name, options[i].arg ? " " : "",
                 options[i].arg ? options[i].arg : "");
        fprintf(f, "  %-19s", item);
        wrap(f, options[i].help, 21, 21);
        fputc('\n', f);
    }
    fputs("  -c, --config FILE  configuration (default: $DIRMIG_CONFIG or ./dirmig.json)\n"
          "  -v, -q             debug logging; errors only\n"
          "  -h, --help         this text\n",
          f);
    fprintf(f, "\nexample:\n  %s\n", cmd->example);
}

/* Prints "dirmig[ COMMAND]: problem" and where to find help; sets EX_USAGE. */
static int DM_PRINTF(3, 4)
    usage_error(const struct cli_command *cmd, int *exit_hint, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (cmd != NULL) {
        fprintf(stderr, "dirmig %s: %s\nTry 'dirmig %s --help'.\n", cmd->name, msg, cmd->name);
    } else {
        fprintf(stderr, "dirmig: %s\nTry 'dirmig --help'.\n", msg);
    }
    *exit_hint = EX_USAGE;
    return DM_EINVAL;
}

/* "--wave is not an option of status (plan, run and validate take it)". */
static int refused(const struct cli_command *cmd, int *exit_hint, const struct cli_option *opt)
{
    char who[200] = "";
    size_t n = 0, k = 0;

    unsigned bits = 0;

    for (size_t i = 0; i < DM_ARRAY_LEN(options); i++) {
        bits |= strcmp(options[i].name, opt->name) == 0 ? options[i].bit : 0;
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(commands); i++) {
        n += (commands[i].opts & bits) != 0;
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(commands); i++) {
        size_t len = strlen(who);
        if (!(commands[i].opts & bits)) {
            continue;
        }
        k++;
        snprintf(who + len, sizeof(who) - len, "%s%s",
                 k == 1   ? ""
                 : k == n ? " and "
                          : ", ",
                 commands[i].name);
    }
    return usage_error(cmd, exit_hint, "--%s is not an option of %s (%s %s it)", opt->name,
                       cmd->name, who, n == 1 ? "takes" : "take");
}

/* The option text of an unknown option: "--foo" (without "=value") or "-x". */
static void unknown_option(const struct cli_command *cmd, int *exit_hint, const char *arg,
                           int short_opt)
{
    const char *cands[DM_ARRAY_LEN(options) + 5];
    char name[64];
    const char *best;
    size_t n = 0;

    if (short_opt != 0) {
        usage_error(cmd, exit_hint, "unknown option -%c", short_opt);
        return;
    }
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
    for (size_t i = 0; i < DM_ARRAY_LEN(options); i++) {
        if (cmd == NULL || (cmd->opts & options[i].bit)) {
            cands[n++] = options[i].name;
        }
    }
    cands[n++] = "config";
    cands[n++] = "verbose";
    cands[n++] = "quiet";
    cands[n++] = "help";
    cands[n++] = "version";
    best = strncmp(name, "--", 2) == 0 ? suggest_closest(name + 2, cands, n) : NULL;
    if (best != NULL) {
        usage_error(cmd, exit_hint, "unknown option %s (did you mean --%s?)", name, best);
    } else {
        usage_error(cmd, exit_hint, "unknown option %s", name);
    }
}

/* ---- running commands ---- */

static void print_err(const struct dm_err *err)
{
    char msg[1200];

    fprintf(stderr, "dirmig: %s\n", dm_err_format(err, msg, sizeof(msg)));
}

/* Loads the config (every problem printed, one a line) and sets up logging. Offline
 * (check --offline) no secret is read and no log file is opened. */
static int load_config(struct dm_config **cfg, struct cli *c, int *exit_hint, struct dm_err *err)
{
    struct config_load_opts lo = {0};
    struct buf errors;
    int rc, level;

    buf_init(&errors, 1 << 20);
    lo.offline = c->o.offline;
    lo.errors = &errors;
    lo.notes = &c->notes;
    rc = config_load_all(cfg, c->o.config_path, &lo, err);
    if (rc != DM_OK) {
        if (errors.len > 0) {
            for (const char *p = errors.data; *p != '\0';) {
                size_t n = strcspn(p, "\n");
                fprintf(stderr, "dirmig: %.*s\n", (int)n, p);
                p += n + (p[n] == '\n');
            }
        } else {
            print_err(err);
        }
        if (rc == DM_EINVAL || rc == DM_ENOTFOUND) {
            *exit_hint = EX_CONFIG;
        }
        buf_free(&errors);
        return rc;
    }
    buf_free(&errors);
    level = (*cfg)->log_level;
    if (c->o.verbose) {
        level = LOG_LVL_DEBUG;
    } else if (c->o.quiet) {
        level = LOG_LVL_ERR;
    }
    if ((*cfg)->log_file != NULL && !c->o.offline) {
        c->logf = fopen((*cfg)->log_file, "a");
        if (c->logf == NULL) {
            *exit_hint = EX_CANTCREAT;
            rc = dm_err_set(err, DM_EINVAL, "%s: cannot open log file", (*cfg)->log_file);
            print_err(err);
            config_free(*cfg);
            *cfg = NULL;
            return rc;
        }
    }
    log_init((enum log_level)level, c->logf, (*cfg)->log_json);
    return DM_OK;
}

static int cmd_check(struct cli *c, const struct cli_command *cmd, int *exit_hint)
{
    struct dm_config *cfg = NULL;
    struct dm_err err = {0};
    int rc;

    (void)cmd;
    rc = load_config(&cfg, c, exit_hint, &err);
    if (rc != DM_OK) {
        if (c->o.json) {
            json_t *j = json_pack("{s:s,s:b,s:s,s:i,s:s}", "command", "check", "offline",
                                  c->o.offline, "status", "failed", "exit_code",
                                  *exit_hint != 0 ? *exit_hint : EX_SOFTWARE, "error", err.msg);
            if (j != NULL) {
                json_dumpf(j, stdout, JSON_COMPACT);
                fputc('\n', stdout);
            }
            json_decref(j);
        }
        return rc;
    }
    rc = check_cmd(cfg, &c->o, c->notes.data, exit_hint, &err);
    config_free(cfg);
    return rc;
}

/* The exit code of a plan or run that returned rc (agent/exitcode.h). */
static int pipeline_exit(int rc, const struct pipeline_stats *st, enum pipeline_mode mode, int hint)
{
    const struct kind_counts *k[] = {&st->users, &st->groups, &st->containers};
    long long bad = 0;

    if (hint != 0) {
        return hint;
    }
    if (st->cantcreat) {
        return EX_CANTCREAT; /* plan --out FILE */
    }
    if (rc != DM_OK) {
        return exitcode_of(rc);
    }
    if (st->status != NULL && strcmp(st->status, "interrupted") == 0) {
        return DM_EXIT_INTERRUPTED;
    }
    if (st->status != NULL && strcmp(st->status, "blocked") == 0) {
        return EX_TEMPFAIL;
    }
    if (st->status != NULL && strcmp(st->status, "refused") == 0) {
        return EX_DATAERR; /* a saved plan that does not fit this run */
    }
    for (size_t i = 0; i < 3; i++) {
        bad += k[i]->failed + k[i]->held;
    }
    /* a plan that foresees failures has still done its job: the run says 65 */
    return bad > 0 && mode == PIPE_RUN ? EX_DATAERR : EX_OK;
}

static int cmd_pipeline(struct cli *c, enum pipeline_mode mode, int *exit_hint)
{
    struct dm_config *cfg = NULL;
    struct pipeline_stats st;
    struct pipeline_opts o = {0};
    struct dm_err err = {0};
    int rc, code;

    memset(&st, 0, sizeof(st));
    rc = load_config(&cfg, c, exit_hint, &err);
    if (rc != DM_OK) {
        return rc;
    }
    o.mode = mode;
    o.limit = c->o.limit;
    o.samples = c->o.samples;
    /* --progress auto (the default): the line on a terminal, unless --json asks for machine
     * output only; json: JSON lines whatever stderr is */
    o.progress = !c->o.no_progress && c->o.progress == NULL && !c->o.json && isatty(STDERR_FILENO);
    o.progress_json =
        !c->o.no_progress && c->o.progress != NULL && strcmp(c->o.progress, "json") == 0;
    o.wave = c->o.wave;
    o.retry_from = c->o.retry_from;
    o.out_prefix = c->o.out_prefix;
    o.verify_target = c->o.verify_target;
    o.rebind_state = c->o.rebind_state;
    o.allow_deletes = c->o.allow_deletes;
    o.plan_out = c->o.plan_out;
    o.plan_in = c->o.plan_in;
    o.max_age = c->o.max_age;
    rc = pipeline_execute(&st, cfg, &o, &err);
    if (rc != DM_OK) {
        print_err(&err);
    }
    if (mode == PIPE_VALIDATE) {
        if (rc == DM_OK) {
            report_validate_text(c->o.json ? stderr : stdout, &st);
            if (c->o.json) {
                report_validate_json(stdout, &st);
            }
            if (st.blocking > 0) {
                *exit_hint = EX_DATAERR;
            }
        }
        pipeline_stats_free(&st);
        config_free(cfg);
        return rc;
    }
    code = pipeline_exit(rc, &st, mode, *exit_hint);
    st.plan_file = mode == PIPE_PLAN ? c->o.plan_out : c->o.plan_in;
    /* the summary on stdout (logs are on stderr); with --json the JSON object is stdout's
     * only content and the summary goes to stderr */
    if (st.run_id != 0) {
        report_pipeline_text(c->o.json ? stderr : stdout, &st, mode);
    }
    if (c->o.json) {
        if (st.run_id != 0) {
            report_pipeline_json(stdout, &st, mode, code);
        } else {
            char msg[1200];
            json_t *j =
                json_pack("{s:s,s:s,s:i,s:s}", "command", mode == PIPE_PLAN ? "plan" : "run",
                          "status", rc == DM_EBUSY ? "busy" : "failed", "exit_code", code, "error",
                          dm_err_format(&err, msg, sizeof(msg)));
            if (j != NULL) {
                json_dumpf(j, stdout, JSON_COMPACT);
                fputc('\n', stdout);
            }
            json_decref(j);
        }
    }
    *exit_hint = code;
    pipeline_stats_free(&st);
    config_free(cfg);
    return rc;
}

static int cmd_status(struct cli *c, int *exit_hint)
{
    struct dm_config *cfg = NULL;
    struct state *st = NULL;
    struct state_where w;
    struct dm_err err = {0};
    int rc;

    rc = load_config(&cfg, c, exit_hint, &err);
    if (rc != DM_OK) {
        return rc;
    }
    if (!config_state_exists(cfg)) {
        fprintf(stderr, "dirmig: no state journal at %s yet (nothing has run)\n", cfg->state_path);
        if (c->o.json) {
            printf("{\"runs\":[]}\n");
        }
        config_free(cfg);
        return DM_OK;
    }
    config_state_where(&w, cfg);
    rc = state_open_cfg(&st, &w, &err);
    if (rc == DM_OK) {
        rc = report_status(stdout, st, c->o.json, &err);
    }
    if (rc != DM_OK) {
        print_err(&err);
    }
    state_close(st);
    config_free(cfg);
    return rc;
}

static int cmd_plan(struct cli *c, const struct cli_command *cmd, int *exit_hint)
{
    (void)cmd;
    return cmd_pipeline(c, PIPE_PLAN, exit_hint);
}

static int cmd_run(struct cli *c, const struct cli_command *cmd, int *exit_hint)
{
    (void)cmd;
    return cmd_pipeline(c, PIPE_RUN, exit_hint);
}

static int cmd_validate(struct cli *c, const struct cli_command *cmd, int *exit_hint)
{
    (void)cmd;
    return cmd_pipeline(c, PIPE_VALIDATE, exit_hint);
}

static int cmd_status_run(struct cli *c, const struct cli_command *cmd, int *exit_hint)
{
    (void)cmd;
    return cmd_status(c, exit_hint);
}

static int with_config(struct cli *c, int *exit_hint, cli_cmd_fn fn);

static int cmd_rollback(struct cli *c, const struct cli_command *cmd, int *exit_hint)
{
    (void)cmd;
    return with_config(c, exit_hint, rollback_cmd);
}

static int cmd_report(struct cli *c, const struct cli_command *cmd, int *exit_hint)
{
    (void)cmd;
    return with_config(c, exit_hint, c->o.html != NULL ? report_html_cmd : report_cmd);
}

/* Loads the config and runs fn on it (commands that live in their own module). */
static int with_config(struct cli *c, int *exit_hint, cli_cmd_fn fn)
{
    struct dm_config *cfg = NULL;
    struct dm_err err = {0};
    int rc;

    rc = load_config(&cfg, c, exit_hint, &err);
    if (rc != DM_OK) {
        return rc;
    }
    rc = fn(cfg, &c->o, exit_hint, &err);
    if (rc != DM_OK) {
        print_err(&err);
    }
    config_free(cfg);
    return rc;
}

/* ---- parsing ---- */

#define OPT_BASE 1000 /* getopt codes of options[i]: OPT_BASE + i */

struct parsed {
    unsigned seen; /* option bits given */
    int help, version;
};

/* Parses options until the end (or, with cmd NULL, the first non-option: the command).
 * Every option is recorded, whichever command takes it; the caller refuses those the
 * command does not take. */
static int parse_options(struct cli *cl, struct parsed *p, const struct cli_command *cmd, int argc,
                         char **argv, int *exit_hint)
{
    struct option lo[DM_ARRAY_LEN(options) + 6];
    size_t n = 0;
    char *end;
    int ch;

    for (size_t i = 0; i < DM_ARRAY_LEN(options); i++) {
        size_t k = 0;

        while (k < n && strcmp(lo[k].name, options[i].name) != 0) {
            k++;
        }
        if (k < n && !(cmd != NULL && (cmd->opts & options[i].bit))) {
            continue; /* a second option of that name: the first one, unless the command
                       * takes this one */
        }
        lo[k].name = options[i].name;
        lo[k].has_arg = options[i].arg != NULL ? required_argument : no_argument;
        lo[k].flag = NULL;
        lo[k].val = OPT_BASE + (int)i;
        n += k == n;
    }
    lo[n++] = (struct option){"config", required_argument, NULL, 'c'};
    lo[n++] = (struct option){"verbose", no_argument, NULL, 'v'};
    lo[n++] = (struct option){"quiet", no_argument, NULL, 'q'};
    lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n++] = (struct option){"version", no_argument, NULL, 'V'};
    lo[n] = (struct option){NULL, 0, NULL, 0};
    opterr = 0;
    while ((ch = getopt_long(argc, argv, cmd == NULL ? "+:c:vqhV" : ":c:vqhV", lo, NULL)) != -1) {
        const struct cli_option *o = ch >= OPT_BASE && ch < OPT_BASE + (int)DM_ARRAY_LEN(options)
                                         ? &options[ch - OPT_BASE]
                                         : NULL;
        if (ch == '?') {
            unknown_option(cmd, exit_hint, argv[optind - 1], optopt);
            return DM_EINVAL;
        }
        if (ch == ':') {
            if (optopt != 0 && optopt < OPT_BASE) {
                return usage_error(cmd, exit_hint, "-%c needs an argument", optopt);
            }
            return usage_error(cmd, exit_hint, "%s needs an argument", argv[optind - 1]);
        }
        if (o != NULL) {
            p->seen |= o->bit;
        }
        switch (o != NULL ? (int)o->bit : ch) {
        case 'c':
            cl->o.config_path = optarg;
            break;
        case 'v':
            cl->o.verbose = 1;
            break;
        case 'q':
            cl->o.quiet = 1;
            break;
        case 'h':
            p->help = 1;
            break;
        case 'V':
            p->version = 1;
            break;
        case O_JSON:
            cl->o.json = 1;
            break;
        case O_LIMIT:
            cl->o.limit = strtoll(optarg, &end, 10);
            if (*end != '\0' || cl->o.limit < 1) {
                return usage_error(cmd, exit_hint, "--limit: not a positive number: %s", optarg);
            }
            break;
        case O_SAMPLES:
            cl->o.samples = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || cl->o.samples < 0 || cl->o.samples > PIPE_MAX_SAMPLES) {
                return usage_error(cmd, exit_hint, "--samples: must be 0..%d: %s", PIPE_MAX_SAMPLES,
                                   optarg);
            }
            break;
        case O_NO_PROGRESS:
            cl->o.no_progress = 1;
            break;
        case O_PROGRESS:
            if (strcmp(optarg, "none") == 0) {
                cl->o.no_progress = 1;
            } else if (strcmp(optarg, "json") == 0) {
                cl->o.progress = optarg;
            } else if (strcmp(optarg, "auto") != 0) {
                return usage_error(cmd, exit_hint, "--progress: auto, json or none, not %s",
                                   optarg);
            }
            break;
        case O_WAVE:
            cl->o.wave = optarg;
            break;
        case O_RETRY:
            cl->o.retry_from = optarg;
            break;
        case O_OUT:
            cl->o.out_prefix = optarg;
            break;
        case O_EXPLAIN:
            cl->o.explain = optarg;
            break;
        case O_OFFLINE:
            cl->o.offline = 1;
            break;
        case O_VERIFY:
            cl->o.verify_target = 1;
            break;
        case O_REBIND:
            cl->o.rebind_state = 1;
            break;
        case O_ALLOW_DELETES:
            cl->o.allow_deletes = strtoll(optarg, &end, 10);
            if (*end != '\0' || end == optarg || cl->o.allow_deletes < 0) {
                return usage_error(cmd, exit_hint, "--allow-deletes: not a number >= 0: %s",
                                   optarg);
            }
            break;
        case O_HTML:
            cl->o.html = optarg;
            break;
        case O_FROM:
            cl->o.from = optarg;
            break;
        case O_PLAN_OUT:
            cl->o.plan_out = optarg;
            break;
        case O_PLAN_IN:
            cl->o.plan_in = optarg;
            break;
        case O_MAX_AGE:
            if (planfile_duration(&cl->o.max_age, optarg) != DM_OK) {
                return usage_error(cmd, exit_hint,
                                   "--max-age: not a duration (N seconds, or Ns, Nm, Nh, Nd): %s",
                                   optarg);
            }
            break;
        case O_DRY:
            cl->o.dry_run = 1;
            break;
        default:
            return usage_error(cmd, exit_hint, "cannot parse the command line");
        }
    }
    return DM_OK;
}

/* `dirmig help [COMMAND]` */
static int help_command(int argc, char **argv, int *exit_hint)
{
    const struct cli_command *cmd;

    if (argc == 1) {
        print_global_help(stdout);
        return DM_OK;
    }
    cmd = find_command(argv[1]);
    if (cmd == NULL || argc > 2) {
        return usage_error(NULL, exit_hint, "help: %s %s",
                           cmd == NULL ? "no such command:" : "one command at a time:",
                           cmd == NULL ? argv[1] : argv[2]);
    }
    print_command_help(stdout, cmd);
    return DM_OK;
}

int cli_main(int argc, char **argv, int *exit_hint)
{
    const struct cli_command *cmd;
    struct parsed p = {0, 0, 0};
    struct cli c;
    int nwords;
    int rc;

    memset(&c, 0, sizeof(c));
    buf_init(&c.notes, 1 << 20);
    c.o.samples = 10;
    c.o.allow_deletes = -1;
    c.o.config_path = getenv("DIRMIG_CONFIG") ? getenv("DIRMIG_CONFIG") : "dirmig.json";
    *exit_hint = 0;
    log_init(LOG_LVL_INFO, NULL, 0);
    /* Options may come before the command and after it. */
    optind = 1;
    rc = parse_options(&c, &p, NULL, argc, argv, exit_hint);
    if (rc != DM_OK) {
        return rc;
    }
    if (p.version) {
        printf("dirmig %s\n", PACKAGE_VERSION);
        return DM_OK;
    }
    if (optind >= argc) {
        if (p.help) {
            print_global_help(stdout);
            return DM_OK;
        }
        return usage_error(NULL, exit_hint, "a command is required");
    }
    if (strcmp(argv[optind], "help") == 0) {
        return help_command(argc - optind, argv + optind, exit_hint);
    }
    cmd = find_command(argv[optind]);
    if (cmd == NULL) {
        const char *names[DM_ARRAY_LEN(commands)];
        const char *best;

        for (size_t i = 0; i < DM_ARRAY_LEN(commands); i++) {
            names[i] = commands[i].name;
        }
        best = suggest_closest(argv[optind], names, DM_ARRAY_LEN(names));
        if (best != NULL) {
            return usage_error(NULL, exit_hint, "unknown command \"%s\" (did you mean %s?)",
                               argv[optind], best);
        }
        return usage_error(NULL, exit_hint, "unknown command \"%s\"", argv[optind]);
    }
    argc -= optind;
    argv += optind;
    /* 0, not 1: GNU getopt then starts afresh, in permuting order (the first pass stopped
     * at the command with "+"), so options may follow a command's arguments */
    optind = 0;
    rc = parse_options(&c, &p, cmd, argc, argv, exit_hint);
    if (rc != DM_OK) {
        return rc;
    }
    if (p.help) {
        print_command_help(stdout, cmd);
        return DM_OK;
    }
    nwords = count_words(cmd->args);
    if (argc - optind > nwords) {
        return usage_error(cmd, exit_hint, "unexpected argument \"%s\"", argv[optind + nwords]);
    }
    if (argc - optind < nwords) {
        /* name what is missing: "RUN", or "PATH" after "state migrate" */
        return usage_error(cmd, exit_hint, "%s is required", skip_words(cmd->args, argc - optind));
    }
    c.o.args = argv + optind;
    c.o.nargs = argc - optind;
    /* an option the command does not take first, then one it needs and did not get */
    for (size_t i = 0; i < DM_ARRAY_LEN(options); i++) {
        if ((p.seen & options[i].bit) && !(cmd->opts & options[i].bit)) {
            return refused(cmd, exit_hint, &options[i]);
        }
    }
    for (size_t i = 0; i < DM_ARRAY_LEN(options); i++) {
        if ((cmd->required & options[i].bit) && !(p.seen & options[i].bit)) {
            return usage_error(cmd, exit_hint, "--%s %s is required", options[i].name,
                               options[i].arg != NULL ? options[i].arg : "");
        }
    }
    if ((p.seen & O_MAX_AGE) && !(p.seen & O_PLAN_IN)) {
        return usage_error(cmd, exit_hint, "--max-age is only for a saved plan: --plan FILE");
    }
    if ((p.seen & O_PLAN_IN) && (p.seen & (O_WAVE | O_RETRY | O_LIMIT))) {
        return usage_error(cmd, exit_hint,
                           "--%s cannot be given with --plan: the saved plan "
                           "decides the scope",
                           (p.seen & O_WAVE)    ? "wave"
                           : (p.seen & O_RETRY) ? "retry-from"
                                                : "limit");
    }
    if (cmd->run != NULL) {
        rc = cmd->run(&c, cmd, exit_hint);
    } else {
        rc = with_config(&c, exit_hint, cmd->fn);
    }
    if (c.logf != NULL) {
        fclose(c.logf);
    }
    buf_free(&c.notes);
    return rc;
}
