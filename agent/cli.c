#include <config.h>
#include "agent/cli.h"
#include "agent/config.h"
#include "agent/daemon.h"
#include "agent/exitcode.h"
#include "agent/explain.h"
#include "agent/hook.h"
#include "agent/mapping.h"
#include "agent/pipeline.h"
#include "agent/report.h"
#include "agent/report_html.h"
#include "agent/state.h"
#include "agent/util/log.h"
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: dirmig [-c FILE] [-v|-q] [--json] COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  check      parse the config, connect and bind to every endpoint, print capabilities\n"
    "  validate   data-quality report and validation export (CSV and JSON Lines)\n"
    "             [--wave NAME] [--out PREFIX]\n"
    "  mapping    correlation report: matched, source-only, target-only, ambiguous\n"
    "             [--out PREFIX]\n"
    "  map        --explain KEY: one entry through the map, step by step\n"
    "  plan       dry run: what a run would create, update or leave unchanged, and why\n"
    "             [--wave NAME] [--retry-from FILE] [--limit N] [--samples N]\n"
    "             [--verify-target] [--rebind-state] [--allow-deletes N]\n"
    "  run        one-time bulk migration\n"
    "             [--wave NAME] [--retry-from FILE] [--limit N] [--no-progress]\n"
    "             [--verify-target] [--rebind-state] [--allow-deletes N]\n"
    "  status     runs, counts and progress from the state journal\n"
    "  hook       serve the password-import hook (HTTPS), /metrics and /healthz\n"
    "  agent      daemon: the hook server plus scheduled runs (reconcile.interval_s);\n"
    "             SIGHUP re-reads the config, SIGTERM stops\n"
    "  report     password-migration progress per day\n"
    "             [--html FILE]: the whole program on one self-contained page\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration (default: $DIRMIG_CONFIG or ./dirmig.json)\n"
    "  -v, --verbose       debug logging\n"
    "  -q, --quiet         errors only\n"
    "      --json          machine-readable output on stdout\n"
    "  -h, --help          this text\n"
    "  -V, --version       print the version\n"
    "\n"
    "Secrets are never taken from the command line: see bind_pw_file / bind_pw_env in\n"
    "dirmig.json(5).\n";

struct cli {
    struct cli_opts o;
    FILE *logf;
};

static int usage_error(int *exit_hint, const char *what, const char *arg)
{
    fprintf(stderr, "dirmig: %s%s\n%s", what, arg, usage_text);
    *exit_hint = EX_USAGE;
    return DM_EINVAL;
}

static void print_err(const struct dm_err *err)
{
    char msg[1200];

    fprintf(stderr, "dirmig: %s\n", dm_err_format(err, msg, sizeof(msg)));
}

static int load_config(struct dm_config **cfg, struct cli *c, int *exit_hint, struct dm_err *err)
{
    int rc = config_load(cfg, c->o.config_path, err);
    int level;

    if (rc != DM_OK) {
        print_err(err);
        if (rc == DM_EINVAL || rc == DM_ENOTFOUND) {
            *exit_hint = EX_CONFIG;
        }
        return rc;
    }
    level = (*cfg)->log_level;
    if (c->o.verbose) {
        level = LOG_LVL_DEBUG;
    } else if (c->o.quiet) {
        level = LOG_LVL_ERR;
    }
    if ((*cfg)->log_file != NULL) {
        c->logf = fopen((*cfg)->log_file, "a");
        if (c->logf == NULL) {
            *exit_hint = EX_CANTCREAT;
            rc = dm_err_set(err, DM_EINVAL, "%s: cannot open log file", (*cfg)->log_file);
            print_err(err);
            return rc;
        }
    }
    log_init((enum log_level)level, c->logf, (*cfg)->log_json);
    return DM_OK;
}

static int check_endpoint(const struct config_endpoint *ep, struct dm_err *err)
{
    const struct conn_ops *ops = conn_find(ep->conn.type);
    struct conn *conn = NULL;
    struct buf b;
    int rc;

    buf_init(&b, 1 << 20);
    if (ops == NULL) {
        return dm_err_set(err, DM_EINVAL, "%s: unknown connector type \"%s\"", ep->conn.role,
                          ep->conn.type);
    }
    fprintf(stderr, "%s: %s (%s), base %s\n", ep->conn.role, ep->conn.uri, ops->name,
            ep->conn.base);
    rc = ops->open(&conn, &ep->conn, err);
    if (rc != DM_OK) {
        fprintf(stderr, "  FAILED: connect/bind\n");
        goto done;
    }
    fprintf(stderr, "  connect and bind: ok\n");
    if (ops->check != NULL) {
        rc = ops->check(conn, &b, err);
        if (b.len) {
            fputs(b.data, stderr);
        }
        if (rc != DM_OK) {
            goto done;
        }
    }
    fprintf(stderr, "  capabilities:%s%s%s%s\n", ops->caps & CONN_READ ? " read" : "",
            ops->caps & CONN_WRITE ? " write" : "", ops->caps & CONN_GROUPS ? " groups" : "",
            ops->caps & CONN_VERIFY ? " verify-password" : "");
done:
    if (conn != NULL) {
        ops->close(conn);
    }
    buf_free(&b);
    return rc;
}

static int cmd_check(struct cli *c, int *exit_hint)
{
    struct dm_config *cfg = NULL;
    struct dm_err err = {0};
    struct state *st = NULL;
    int rc;

    rc = load_config(&cfg, c, exit_hint, &err);
    if (rc != DM_OK) {
        return rc;
    }
    fprintf(stderr, "config %s: ok\n", c->o.config_path);
    rc = check_endpoint(&cfg->source, &err);
    if (rc == DM_OK) {
        rc = check_endpoint(&cfg->target, &err);
    }
    if (rc == DM_OK) {
        rc = state_open(&st, cfg->state_path, &err);
        if (rc == DM_OK) {
            fprintf(stderr, "state journal %s: ok\n", cfg->state_path);
        }
        state_close(st);
    }
    if (rc != DM_OK) {
        print_err(&err);
    } else if (c->o.json) {
        printf("{\"check\":\"ok\"}\n");
    }
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
    if (rc != DM_OK) {
        return exitcode_of(rc);
    }
    if (st->status != NULL && strcmp(st->status, "interrupted") == 0) {
        return DM_EXIT_INTERRUPTED;
    }
    if (st->status != NULL && strcmp(st->status, "blocked") == 0) {
        return EX_TEMPFAIL;
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
    o.progress = !c->o.no_progress && !c->o.json && isatty(STDERR_FILENO);
    o.wave = c->o.wave;
    o.retry_from = c->o.retry_from;
    o.out_prefix = c->o.out_prefix;
    o.verify_target = c->o.verify_target;
    o.rebind_state = c->o.rebind_state;
    o.allow_deletes = c->o.allow_deletes;
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
            json_t *j = json_pack(
                "{s:s,s:s,s:i,s:s}", "command", mode == PIPE_PLAN ? "plan" : "run", "status",
                "failed", "exit_code", code, "error", dm_err_format(&err, msg, sizeof(msg)));
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
    struct dm_err err = {0};
    int rc;

    rc = load_config(&cfg, c, exit_hint, &err);
    if (rc != DM_OK) {
        return rc;
    }
    if (access(cfg->state_path, F_OK) != 0) {
        fprintf(stderr, "dirmig: no state journal at %s yet (nothing has run)\n", cfg->state_path);
        if (c->o.json) {
            printf("{\"runs\":[]}\n");
        }
        config_free(cfg);
        return DM_OK;
    }
    rc = state_open(&st, cfg->state_path, &err);
    if (rc == DM_OK) {
        rc = report_status(c->o.json ? stdout : stderr, st, c->o.json, &err);
    }
    if (rc != DM_OK) {
        print_err(&err);
    }
    state_close(st);
    config_free(cfg);
    return rc;
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

/* Long options, shared by the part before the command and the part after it. */
static const struct option opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"json", no_argument, NULL, 'j'},
    {"limit", required_argument, NULL, 'l'},
    {"samples", required_argument, NULL, 's'},
    {"no-progress", no_argument, NULL, 'P'},
    {"wave", required_argument, NULL, 'w'},
    {"retry-from", required_argument, NULL, 'r'},
    {"out", required_argument, NULL, 'o'},
    {"explain", required_argument, NULL, 'e'},
    {"verify-target", no_argument, NULL, 'T'},
    {"rebind-state", no_argument, NULL, 'R'},
    {"allow-deletes", required_argument, NULL, 'A'},
    {"html", required_argument, NULL, 'H'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Parses options until the end (or, with stop_at_command, the first non-option). Returns
 * DM_OK, or DM_EINVAL with *exit_hint = EX_USAGE; *done is set after --help/--version. */
static int parse_options(struct cli *cl, int argc, char **argv, int stop_at_command, int *done,
                         int *exit_hint)
{
    char *end;
    int ch;

    while ((ch = getopt_long(argc, argv, stop_at_command ? "+c:vqhV" : "c:vqhV", opts, NULL)) !=
           -1) {
        switch (ch) {
        case 'c':
            cl->o.config_path = optarg;
            break;
        case 'v':
            cl->o.verbose = 1;
            break;
        case 'q':
            cl->o.quiet = 1;
            break;
        case 'j':
            cl->o.json = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            *done = 1;
            return DM_OK;
        case 'V':
            printf("dirmig %s\n", PACKAGE_VERSION);
            *done = 1;
            return DM_OK;
        case 'l':
            cl->o.limit = strtoll(optarg, &end, 10);
            if (*end != '\0' || cl->o.limit < 1) {
                return usage_error(exit_hint, "--limit: not a positive number: ", optarg);
            }
            break;
        case 's':
            cl->o.samples = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || cl->o.samples < 0 || cl->o.samples > PIPE_MAX_SAMPLES) {
                return usage_error(exit_hint, "--samples: must be 0..100: ", optarg);
            }
            break;
        case 'P':
            cl->o.no_progress = 1;
            break;
        case 'w':
            cl->o.wave = optarg;
            break;
        case 'r':
            cl->o.retry_from = optarg;
            break;
        case 'o':
            cl->o.out_prefix = optarg;
            break;
        case 'e':
            cl->o.explain = optarg;
            break;
        case 'T':
            cl->o.verify_target = 1;
            break;
        case 'R':
            cl->o.rebind_state = 1;
            break;
        case 'A':
            cl->o.allow_deletes = strtoll(optarg, &end, 10);
            if (*end != '\0' || cl->o.allow_deletes < 0) {
                return usage_error(exit_hint, "--allow-deletes: not a number >= 0: ", optarg);
            }
            break;
        case 'H':
            cl->o.html = optarg;
            break;
        default:
            *exit_hint = EX_USAGE;
            fputs(usage_text, stderr);
            return DM_EINVAL;
        }
    }
    return DM_OK;
}

int cli_main(int argc, char **argv, int *exit_hint)
{
    struct cli c;
    const char *cmd;
    int rc, done = 0;

    memset(&c, 0, sizeof(c));
    c.o.samples = 10;
    c.o.allow_deletes = -1;
    c.o.config_path = getenv("DIRMIG_CONFIG") ? getenv("DIRMIG_CONFIG") : "dirmig.json";
    *exit_hint = 0;
    log_init(LOG_LVL_INFO, NULL, 0);
    /* Options may come before the command and after it. */
    rc = parse_options(&c, argc, argv, 1, &done, exit_hint);
    if (rc != DM_OK || done) {
        return rc;
    }
    if (optind >= argc) {
        return usage_error(exit_hint, "a command is required", "");
    }
    cmd = argv[optind];
    argc -= optind;
    argv += optind;
    optind = 1;
    rc = parse_options(&c, argc, argv, 0, &done, exit_hint);
    if (rc != DM_OK || done) {
        return rc;
    }
    if (optind < argc) {
        return usage_error(exit_hint, "unexpected argument: ", argv[optind]);
    }
    if (strcmp(cmd, "check") == 0) {
        rc = cmd_check(&c, exit_hint);
    } else if (strcmp(cmd, "plan") == 0) {
        rc = cmd_pipeline(&c, PIPE_PLAN, exit_hint);
    } else if (strcmp(cmd, "run") == 0) {
        rc = cmd_pipeline(&c, PIPE_RUN, exit_hint);
    } else if (strcmp(cmd, "validate") == 0) {
        rc = cmd_pipeline(&c, PIPE_VALIDATE, exit_hint);
    } else if (strcmp(cmd, "mapping") == 0) {
        rc = with_config(&c, exit_hint, mapping_cmd);
    } else if (strcmp(cmd, "map") == 0) {
        rc = with_config(&c, exit_hint, explain_cmd);
    } else if (strcmp(cmd, "status") == 0) {
        rc = cmd_status(&c, exit_hint);
    } else if (strcmp(cmd, "hook") == 0) {
        rc = with_config(&c, exit_hint, hook_cmd);
    } else if (strcmp(cmd, "agent") == 0) {
        rc = with_config(&c, exit_hint, daemon_cmd);
    } else if (strcmp(cmd, "report") == 0) {
        rc = with_config(&c, exit_hint, c.o.html != NULL ? report_html_cmd : report_cmd);
    } else {
        rc = usage_error(exit_hint, "unknown command: ", cmd);
    }
    if (c.logf != NULL) {
        fclose(c.logf);
    }
    return rc;
}
