#include <config.h>
#include "agent/statecmd.h"
#include "agent/config.h"
#include "agent/state.h"
#include "agent/util/log.h"
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

/* What a journal holds, to show both sides of a copy. */
struct counts {
    struct state_totals t;
    struct state_run_summary r;
    struct state_password_counts p;
};

static int count(struct counts *out, struct state *s, struct dm_err *err)
{
    int rc = state_totals(&out->t, s, err);

    if (rc == DM_OK) {
        rc = state_run_summary(&out->r, s, err);
    }
    if (rc == DM_OK) {
        rc = state_password_counts(&out->p, s, err);
    }
    return rc;
}

static void show(const char *what, const char *name, const struct counts *c)
{
    printf("%s %s: %lld runs, %lld plans, %lld users (%lld failed), %lld groups (%lld failed), "
           "%lld verifications of %lld users\n",
           what, name, c->r.runs, c->r.plans, c->t.users_ok + c->t.users_failed, c->t.users_failed,
           c->t.groups_ok + c->t.groups_failed, c->t.groups_failed, c->p.verifications,
           c->p.verified_users);
}

/* What the copy leaves behind: the undo store beside the SQLite file (PATH.undo) when the
 * destination keeps none. It holds credentials and is never copied into a journal. */
static void not_copied(const char *path, const struct state *dst)
{
    char undo[4096];

    if (state_undo_supported(dst) ||
        (size_t)snprintf(undo, sizeof(undo), "%s.undo", path) >= sizeof(undo) ||
        access(undo, F_OK) != 0) {
        return;
    }
    printf("state migrate: not copied: the undo store %s (a %s journal keeps none; the runs "
           "copied cannot be rolled back from it)\n",
           undo, state_backend(dst));
    log_warn("state migrate: the undo store %s was not copied: the copied runs cannot be "
             "rolled back from %s",
             undo, state_name(dst));
}

static int migrate(const struct dm_config *cfg, const char *path, int *exit_hint,
                   struct dm_err *err)
{
    struct state *src = NULL, *dst = NULL;
    struct state_where w;
    struct counts a = {0}, b = {0};
    long long rows = 0;
    int rc;

    if (access(path, F_OK) != 0) {
        /* never create an empty journal where one was expected */
        *exit_hint = EX_NOINPUT;
        return dm_err_set(err, DM_ENOTFOUND, "%s: no SQLite journal there", path);
    }
    rc = state_open(&src, path, err);
    if (rc == DM_OK) {
        config_state_where(&w, cfg);
        if (w.type == NULL || strcmp(w.type, "sqlite") == 0) {
            if (strcmp(w.path, path) == 0) {
                rc = dm_err_set(err, DM_EINVAL,
                                "%s: the source and the destination are the same "
                                "journal",
                                path);
            }
        }
    }
    if (rc == DM_OK) {
        rc = state_open_cfg(&dst, &w, err);
    }
    if (rc == DM_OK) {
        rc = count(&a, src, err);
    }
    if (rc == DM_OK) {
        rc = state_copy(&rows, dst, src, err);
    }
    if (rc == DM_OK) {
        rc = count(&b, dst, err);
    }
    if (rc == DM_OK) {
        show("from", path, &a);
        show("into", state_name(dst), &b);
        printf("state migrate: %lld rows copied\n", rows);
        log_info("state migrate: %lld rows copied from %s into %s", rows, path, state_name(dst));
        not_copied(path, dst);
    }
    state_close(dst); /* rolls back a failed copy */
    state_close(src);
    return rc;
}

int statecmd_run(const struct dm_config *cfg, const struct cli_opts *o, int *exit_hint,
                 struct dm_err *err)
{
    if (o->nargs != 2 || strcmp(o->args[0], "migrate") != 0) {
        *exit_hint = EX_USAGE;
        return dm_err_set(err, DM_EINVAL, "state: usage: dirmig state migrate --from sqlite PATH");
    }
    if (strcmp(o->from, "sqlite") != 0) {
        *exit_hint = EX_USAGE;
        return dm_err_set(err, DM_EINVAL,
                          "state migrate: --from %s: only sqlite journals are "
                          "copied",
                          o->from);
    }
    return migrate(cfg, o->args[1], exit_hint, err);
}
