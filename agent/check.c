/*
 * agent/check.c: `dirmig check` (check.h).
 */
#include <config.h>
#include "agent/check.h"
#include "agent/exitcode.h"
#include "agent/state.h"
#include "agent/util/log.h"
#include "connectors/connector.h"
#include "schema/dn.h"
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

struct check {
    FILE *out;        /* the human report */
    json_t *problems; /* [{"problem", "exit_code"}] */
    json_t *notes;    /* [text] */
    int code;         /* exit code of the first problem, 0 while there is none */
    int rc;           /* its dm_rc */
    struct dm_err first;
};

/* The exit code of a failure with rc (agent/exitcode.h). At check time an invalid setting
 * is a configuration that does not fit the server (CA file, URI, ...): 78, not 65. */
static int exit_of(int rc)
{
    return rc == DM_EINVAL ? EX_CONFIG : exitcode_of(rc);
}

static void DM_PRINTF(3, 4) problem(struct check *k, int rc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(k->out, "  PROBLEM: %s\n", msg);
    if (k->out != stderr) {
        /* the report may go to a file or a pipe: problems also reach the terminal */
        fprintf(stderr, "dirmig: %s\n", msg);
    }
    json_array_append_new(k->problems,
                          json_pack("{s:s,s:i}", "problem", msg, "exit_code", exit_of(rc)));
    if (k->code == 0) {
        k->code = exit_of(rc);
        k->rc = rc;
        dm_err_set(&k->first, rc, "%s", msg);
    }
}

static void DM_PRINTF(2, 3) note(struct check *k, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(k->out, "  note: %s\n", msg);
    json_array_append_new(k->notes, json_string(msg));
}

/* ---- one endpoint, online ---- */

/* Looks dn up; reports "label dn: exists" or a problem (66 when it is not there). */
static int check_dn(struct check *k, const struct conn_ops *ops, struct conn *c, const char *role,
                    const char *label, const char *dn)
{
    struct entry *e = NULL;
    struct dm_err err = {0};
    int rc = ops->lookup(&e, c, dn, &err);

    entry_free(e);
    if (rc == DM_OK) {
        fprintf(k->out, "  %s %s: exists\n", label, dn);
    } else if (rc == DM_ENOTFOUND) {
        problem(k, rc, "%s %s %s does not exist%s%s%s", role, label, dn,
                err.matched_dn[0] != '\0' ? " (the server has " : "", err.matched_dn,
                err.matched_dn[0] != '\0' ? ")" : "");
    } else {
        char msg[1200];
        problem(k, rc, "%s %s %s: %s", role, label, dn, dm_err_format(&err, msg, sizeof(msg)));
    }
    return rc;
}

/* The source's bases and the DNs the config names in it. */
static void check_source_dns(struct check *k, const struct dm_config *cfg,
                             const struct conn_ops *ops, struct conn *c)
{
    const struct config_endpoint *s = &cfg->source;

    if (check_dn(k, ops, c, "source", "base", s->conn.base) != DM_OK) {
        return; /* nothing under it can be there */
    }
    if (strcmp(s->users_base, s->conn.base) != 0) {
        check_dn(k, ops, c, "source", "users base", s->users_base);
    }
    if (strcmp(s->groups_base, s->conn.base) != 0 && strcmp(s->groups_base, s->users_base) != 0) {
        check_dn(k, ops, c, "source", "groups base", s->groups_base);
    }
    for (size_t i = 0; i < cfg->nwaves; i++) {
        const struct config_wave *w = &cfg->waves[i];
        char label[200];

        if (w->ou != NULL || w->group != NULL) {
            snprintf(label, sizeof(label), "wave \"%s\" %s", w->name, w->ou ? "ou" : "group");
            check_dn(k, ops, c, "source", label, w->ou ? w->ou : w->group);
        }
    }
    if (cfg->hook.enabled && cfg->hook.dn_template == NULL && cfg->hook.search_base != NULL &&
        strcmp(cfg->hook.search_base, s->users_base) != 0) {
        check_dn(k, ops, c, "source", "hook search base", cfg->hook.search_base);
    }
}

/* One container the run writes into: every level between the target base and dn, parents
 * first. A missing level is created by the run (create_containers) or is a problem. */
static void check_container(struct check *k, const struct dm_config *cfg,
                            const struct conn_ops *ops, struct conn *c, const char *src_base,
                            const char *what)
{
    const struct config_endpoint *t = &cfg->target;
    struct dn *d = NULL, *tb = NULL;
    struct dm_err err = {0};
    char *dn = NULL;
    int missing = 0;

    if (dn_rebase(&dn, src_base, cfg->source.conn.base, t->conn.base, &err) != DM_OK) {
        problem(k, DM_EINVAL,
                "source %s %s is not under source.base %s: its entries have no place under "
                "target.base",
                what, src_base, cfg->source.conn.base);
        return;
    }
    if (dn_parse(&d, dn, &err) != DM_OK || dn_parse(&tb, t->conn.base, &err) != DM_OK) {
        problem(k, DM_EINVAL, "target container %s: %s", dn, err.msg);
        goto done;
    }
    /* d->rdns[0] is the most specific RDN: from the one just under the base down to it */
    for (size_t i = d->nrdns - tb->nrdns; i-- > 0;) {
        const char *level = dn + d->rdns[i].start;
        struct entry *e = NULL;
        int rc = DM_ENOTFOUND;

        if (!missing) {
            rc = ops->lookup(&e, c, level, &err);
            entry_free(e);
        }
        if (rc == DM_OK) {
            fprintf(k->out, "  container %s: exists\n", level);
        } else if (rc != DM_ENOTFOUND) {
            char msg[1200];
            problem(k, rc, "target container %s: %s", level, dm_err_format(&err, msg, sizeof(msg)));
            break;
        } else if (t->create_containers) {
            missing = 1;
            fprintf(k->out, "  container %s: missing, will be created by the run\n", level);
        } else {
            missing = 1;
            problem(k, DM_ENOTFOUND,
                    "target container %s does not exist and target.create_containers is false "
                    "(the %s's entries would be held back)",
                    level, what);
        }
    }
done:
    dn_free(d);
    dn_free(tb);
    free(dn);
}

/* target.disable.container: where disabled users are moved. A missing level is created
 * by the run (an organizationalUnit, when target.create_containers allows) or is a problem. */
static void check_disable_container(struct check *k, const struct dm_config *cfg,
                                    const struct conn_ops *ops, struct conn *c)
{
    const char *cont = cfg->target.conn.disable_container;
    struct dn *d = NULL, *tb = NULL;
    struct dm_err err = {0};
    int missing = 0;

    if (cont == NULL || ops->disabled_ref == NULL) {
        return;
    }
    if (dn_parse(&d, cont, &err) != DM_OK || dn_parse(&tb, cfg->target.conn.base, &err) != DM_OK ||
        d->nrdns <= tb->nrdns) {
        problem(k, DM_EINVAL, "target.disable.container %s: not under target.base", cont);
        goto done;
    }
    for (size_t i = d->nrdns - tb->nrdns; i-- > 0;) {
        const char *level = cont + d->rdns[i].start;
        struct entry *e = NULL;
        int rc = DM_ENOTFOUND,
            ou = d->rdns[i].navas == 1 && strcasecmp(d->rdns[i].avas[0].type, "ou") == 0;

        if (!missing) {
            rc = ops->lookup(&e, c, level, &err);
            entry_free(e);
        }
        if (rc == DM_OK) {
            fprintf(k->out, "  disabled users container %s: exists\n", level);
        } else if (rc != DM_ENOTFOUND) {
            char msg[1200];
            problem(k, rc, "target.disable.container %s: %s", level,
                    dm_err_format(&err, msg, sizeof(msg)));
            break;
        } else if (cfg->target.create_containers && ou) {
            missing = 1;
            fprintf(k->out, "  disabled users container %s: missing, will be created by the run\n",
                    level);
        } else {
            missing = 1;
            problem(k, DM_ENOTFOUND,
                    "target.disable.container: %s does not exist%s (disabled users cannot be "
                    "moved there)",
                    level,
                    !ou ? " and only an ou= container is created by dirmig"
                        : " and target.create_containers is false");
        }
    }
done:
    dn_free(d);
    dn_free(tb);
}

static void check_target_dns(struct check *k, const struct dm_config *cfg,
                             const struct conn_ops *ops, struct conn *c)
{
    const struct config_endpoint *s = &cfg->source;

    if (check_dn(k, ops, c, "target", "base", cfg->target.conn.base) != DM_OK) {
        return;
    }
    check_container(k, cfg, ops, c, s->users_base, "users base");
    if (strcmp(s->groups_base, s->users_base) != 0) {
        check_container(k, cfg, ops, c, s->groups_base, "groups base");
    }
    check_disable_container(k, cfg, ops, c);
}

static void endpoint_header(struct check *k, const struct config_endpoint *ep,
                            const struct conn_ops *ops)
{
    int ad = ep->conn.dialect != NULL && strcmp(ep->conn.dialect, "ad") == 0;

    fprintf(k->out, "%s: %s (%s%s)\n", ep->conn.role, ep->conn.uri, ops->name,
            ad ? ", Active Directory" : "");
}

/* How a target that names objects by key finds them ("login and name"). */
static void print_natural_key(struct check *k, const struct conn_ops *ops, const char *tail)
{
    if (ops->natural_key[1] != NULL) {
        fprintf(k->out, "  objects are found by %s and %s%s\n", ops->natural_key[0],
                ops->natural_key[1], tail);
    } else {
        fprintf(k->out, "  objects are found by %s%s\n", ops->natural_key[0], tail);
    }
}

static void check_endpoint(struct check *k, const struct dm_config *cfg, int r)
{
    const struct config_endpoint *ep = r == 0 ? &cfg->source : &cfg->target;
    const struct conn_ops *ops = conn_find(ep->conn.type);
    struct conn *c = NULL;
    struct dm_err err = {0};
    char msg[1200];
    struct buf b;
    int rc;

    if (ops == NULL) {
        fprintf(k->out, "%s: %s\n", ep->conn.role, ep->conn.uri);
        problem(k, DM_EINVAL, "%s: unknown connector type \"%s\"", ep->conn.role, ep->conn.type);
        return;
    }
    endpoint_header(k, ep, ops);
    rc = ops->open(&c, &ep->conn, &err);
    if (rc != DM_OK) {
        problem(k, rc, "%s: connect and bind: %s", ep->conn.role,
                dm_err_format(&err, msg, sizeof(msg)));
        return;
    }
    fprintf(k->out, "  connect and bind: ok\n");
    buf_init(&b, 1 << 20);
    if (ops->check != NULL) {
        rc = ops->check(c, &b, &err);
        if (b.len > 0) {
            fputs(b.data, k->out);
        }
        if (rc != DM_OK) {
            problem(k, rc, "%s: %s", ep->conn.role, dm_err_format(&err, msg, sizeof(msg)));
        }
    }
    buf_free(&b);
    fprintf(k->out, "  capabilities:%s%s%s%s\n", ops->caps & CONN_READ ? " read" : "",
            ops->caps & CONN_WRITE ? " write" : "", ops->caps & CONN_GROUPS ? " groups" : "",
            ops->caps & CONN_VERIFY ? " verify-password" : "");
    if (ops->ident == CONN_IDENT_KEY) {
        print_natural_key(k, ops, " (no base, no containers)");
    } else if (r == 1 && (ops->caps & CONN_SNAPSHOT)) {
        fprintf(k->out, "  written whole by each run, with its base and containers\n");
    } else if (ops->lookup == NULL) {
        fprintf(k->out, "  bases: not checked (the connector cannot look a DN up)\n");
    } else if (r == 0) {
        check_source_dns(k, cfg, ops, c);
    } else {
        check_target_dns(k, cfg, ops, c);
    }
    ops->close(c);
}

/* ---- offline ---- */

/* The directory of path exists and is writable (the journal and the log are created). */
static void check_dir_of(struct check *k, const char *what, const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    }
    if (access(dir, W_OK) != 0) {
        note(k, "%s %s: directory %s %s on this machine", what, path, dir,
             errno == ENOENT ? "does not exist" : "is not writable");
    } else {
        fprintf(k->out, "%s %s: directory %s is writable\n", what, path, dir);
    }
}

static void describe_offline(struct check *k, const struct dm_config *cfg)
{
    for (int r = 0; r < 2; r++) {
        const struct config_endpoint *ep = r == 0 ? &cfg->source : &cfg->target;
        const struct conn_ops *ops = conn_find(ep->conn.type);

        if (ops == NULL) {
            problem(k, DM_EINVAL, "%s: unknown connector type \"%s\"", ep->conn.role,
                    ep->conn.type);
            continue;
        }
        endpoint_header(k, ep, ops);
        if (ops->ident == CONN_IDENT_KEY) {
            print_natural_key(k, ops, " (no base)");
            continue;
        }
        fprintf(k->out, "  base %s\n", ep->conn.base);
        if (r == 0) {
            fprintf(k->out, "  users %s %s\n  groups %s %s\n", ep->users_base, ep->users_filter,
                    ep->groups_base, ep->groups_filter);
        }
    }
    if (cfg->state_type != NULL && strcmp(cfg->state_type, "postgresql") == 0) {
        fprintf(k->out, "state journal: postgresql (not contacted offline)\n");
    } else {
        check_dir_of(k, "state journal", cfg->state_path);
    }
    if (cfg->log_file != NULL) {
        check_dir_of(k, "log file", cfg->log_file);
    }
}

/* ---- the command ---- */

int check_cmd(const struct dm_config *cfg, const struct cli_opts *o, const char *notes,
              int *exit_hint, struct dm_err *err)
{
    struct check k = {o->json ? stderr : stdout, json_array(), json_array(), 0, DM_OK, {0}};
    json_t *j;

    if (k.problems == NULL || k.notes == NULL) {
        json_decref(k.problems);
        json_decref(k.notes);
        return dm_err_set(err, DM_ENOMEM, "check: out of memory");
    }
    fprintf(k.out, "config %s: ok%s\n", cfg->path,
            o->offline ? " (offline: no server contacted, no secret read)" : "");
    fprintf(k.out, "  map: %s\n", config_map_origin(cfg));
    if (o->offline) {
        describe_offline(&k, cfg);
        for (const char *p = notes; p != NULL && *p != '\0';) {
            size_t n = strcspn(p, "\n");
            note(&k, "%.*s", (int)n, p);
            p += n + (p[n] == '\n');
        }
    } else {
        struct state *st = NULL;
        struct dm_err e = {0};
        char msg[1200];

        check_endpoint(&k, cfg, 0);
        check_endpoint(&k, cfg, 1);
        struct state_where w;

        config_state_where(&w, cfg);
        if (state_open_cfg(&st, &w, &e) == DM_OK) {
            fprintf(k.out, "state journal %s: ok\n", state_name(st));
        } else {
            fprintf(k.out, "state journal %s:\n", config_state_name(cfg));
            problem(&k, e.rc == DM_ENOMEM ? DM_ENOMEM : DM_EINTERNAL, "state journal: %s",
                    dm_err_format(&e, msg, sizeof(msg)));
        }
        state_close(st);
    }
    if (k.code == 0) {
        fprintf(k.out, "check: ok%s\n",
                json_array_size(k.notes) > 0 ? " (see the notes: this machine is not ready)" : "");
    } else {
        fprintf(k.out, "check: %zu problem%s (exit %d)\n", json_array_size(k.problems),
                json_array_size(k.problems) == 1 ? "" : "s", k.code);
    }
    if (o->json) {
        j = json_pack("{s:s,s:b,s:s,s:i,s:O,s:O}", "command", "check", "offline", o->offline,
                      "status", k.code == 0 ? "ok" : "failed", "exit_code", k.code, "problems",
                      k.problems, "notes", k.notes);
        if (j != NULL) {
            json_dumpf(j, stdout, JSON_COMPACT);
            fputc('\n', stdout);
        }
        json_decref(j);
    }
    fflush(k.out);
    json_decref(k.problems);
    json_decref(k.notes);
    if (k.code != 0) {
        *exit_hint = k.code;
        *err = k.first;
        return k.rc;
    }
    return DM_OK;
}
