#include <config.h>
#include "agent/hook_migrate.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/state.h"
#include "agent/util/log.h"
#include "connectors/ldap_passwd.h"
#include "schema/cred.h"
#include "schema/dn.h"

#define MIGRATE_QUEUE_MAX 10000

enum mres {
    M_MIGRATED = 0,
    M_REHASHED,
    M_UNCHANGED,
    M_NOT_JOURNALED,
    M_CHANGED,
    M_FAILED,
    M__LAST
};

static const char *const mres_names[M__LAST] = {
    [M_MIGRATED] = "migrated",         [M_REHASHED] = "rehashed",
    [M_UNCHANGED] = "unchanged",       [M_NOT_JOURNALED] = "not_migrated",
    [M_CHANGED] = "changed_meanwhile", [M_FAILED] = "failed",
};

/* One verified sign-in to write. pw is wiped when the job is freed. */
struct mjob {
    struct mjob *next;
    char *pw;
    size_t plen;
    char *dn; /* the source DN; points into login[] */
    char login[];
};

struct hook_migrate {
    const struct dm_config *cfg;
    hook_record_fn record;
    void *record_ctx;
    struct cred_hash_params hp;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct mjob *head, **tail;
    size_t len;
    int stop, running;
    pthread_t thread;
    struct state *st;        /* the writer's own (read) handle on the journal */
    struct ldap_passwd *tgt; /* the writer's target connection, NULL until needed */
    long long counts[M__LAST];
};

static void job_free(struct mjob *j)
{
    if (j != NULL) {
        explicit_bzero(j->pw, j->plen);
        free(j->pw);
        free(j);
    }
}

/* The target DN dirmig run wrote for this source DN (journal objects row; an LDAP target
 * names objects by DN), as a new string; NULL when the user was not migrated (or failed),
 * or when the entry was at the target before and only linked by the collision policy (not
 * created by dirmig: its password is the target's own). */
static char *target_dn_of(struct hook_migrate *m, const char *source_dn)
{
    struct state_object o = {0};
    struct dm_err err = {0};
    char *norm = NULL, *t = NULL;

    if (dn_normalize(&norm, source_dn, &err) != DM_OK) {
        return NULL;
    }
    if (state_object_by_source_dn(&o, m->st, norm, &err) == DM_OK && o.kind != NULL &&
        strcmp(o.kind, "user") == 0 && o.status != NULL && strcmp(o.status, "ok") == 0 &&
        !o.linked && o.target_ref != NULL && o.target_ref[0]) {
        t = strdup(o.target_ref);
    }
    state_object_clear(&o);
    free(norm);
    return t;
}

/* Writes one verified password (see the header). Returns the result. */
static enum mres write_one(struct hook_migrate *m, const struct mjob *j, const char **scheme)
{
    struct entry *e = NULL;
    struct cred *c = NULL;
    struct dm_err err = {0};
    const struct dm_attr *pw;
    char *tdn = target_dn_of(m, j->dn), *h = NULL;
    enum mres res = M_UNCHANGED;
    int rc;

    *scheme = NULL;
    if (tdn == NULL) {
        log_info("hook: %s: not in the journal as a migrated user; no target write", j->dn);
        return M_NOT_JOURNALED;
    }
    if (m->tgt == NULL && ldap_passwd_open(&m->tgt, &m->cfg->target.conn, &err) != DM_OK) {
        log_warn("hook: target %s: %s; the password of %s is not written", m->cfg->target.conn.uri,
                 err.msg, tdn);
        res = M_FAILED;
        goto done;
    }
    rc = ldap_passwd_read(&e, m->tgt, tdn, &err);
    if (rc != DM_OK) {
        log_warn("hook: target entry %s: %s", tdn, rc == DM_ENOTFOUND ? "not found" : err.msg);
        res = rc == DM_ENOTFOUND ? M_NOT_JOURNALED : M_FAILED;
        goto done;
    }
    pw = entry_attr(e, "userPassword");
    if (pw == NULL || pw->nvals == 0) {
        if (!m->cfg->hook.lazy_migration) {
            goto done;
        }
    } else if (pw->nvals > 1 || cred_is_locked(pw->vals[0].data, pw->vals[0].len) ||
               !m->cfg->hook.rehash) {
        goto done; /* several values, a lock marker, or rehash off: not ours to decide */
    } else {
        if (cred_parse(&c, pw->vals[0].data, pw->vals[0].len, &err) != DM_OK ||
            !cred_is_weak(c->scheme) || cred_verify(c, j->pw, j->plen) != 1) {
            goto done; /* strong already, or the target's password is another one now */
        }
    }
    rc = cred_hash(&h, &m->hp, j->pw, j->plen, &err);
    if (rc == DM_OK) {
        rc = ldap_passwd_swap(m->tgt, tdn, pw != NULL && pw->nvals ? pw->vals[0].data : NULL,
                              pw != NULL && pw->nvals ? pw->vals[0].len : 0, h, &err);
    }
    if (rc == DM_EEXISTS) {
        log_info("hook: target entry %s: userPassword changed meanwhile; left alone", tdn);
        res = M_CHANGED;
    } else if (rc != DM_OK) {
        log_warn("hook: target entry %s: %s", tdn, err.msg);
        res = M_FAILED;
    } else {
        res = pw != NULL && pw->nvals ? M_REHASHED : M_MIGRATED;
        *scheme = m->hp.alg == CRED_HASH_ARGON2 ? "ARGON2" : "PBKDF2-SHA512";
        log_info("hook: target entry %s: password %s as {%s}", tdn,
                 res == M_REHASHED ? "re-hashed" : "written", *scheme);
    }
done:
    cred_hash_free(h);
    cred_free(c);
    ldap_passwd_entry_free(e);
    free(tdn);
    return res;
}

static void *writer_main(void *arg)
{
    struct hook_migrate *m = arg;
    struct mjob *j;
    const char *scheme;
    enum mres r;

    pthread_mutex_lock(&m->mu);
    for (;;) {
        while (m->head == NULL && !m->stop) {
            pthread_cond_wait(&m->cv, &m->mu);
        }
        j = m->head;
        if (j == NULL) {
            break;
        }
        m->head = j->next;
        if (m->head == NULL) {
            m->tail = &m->head;
        }
        m->len--;
        pthread_mutex_unlock(&m->mu);
        r = write_one(m, j, &scheme);
        __atomic_add_fetch(&m->counts[r], 1, __ATOMIC_RELAXED);
        if ((r == M_MIGRATED || r == M_REHASHED) && m->record != NULL) {
            m->record(m->record_ctx, j->login, j->dn, mres_names[r], scheme);
        }
        job_free(j);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int hook_migrate_new(struct hook_migrate **out, const struct dm_config *cfg, hook_record_fn record,
                     void *record_ctx, struct dm_err *err)
{
    struct hook_migrate *m;
    int rc;

    if (cfg->target.conn.type != NULL && strcmp(cfg->target.conn.type, "ldap") != 0) {
        return dm_err_set(err, DM_EINVAL,
                          "%s: hook.lazy_migration and hook.rehash need an LDAP target", cfg->path);
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return dm_err_set(err, DM_ENOMEM, "hook_migrate_new");
    }
    m->cfg = cfg;
    m->record = record;
    m->record_ctx = record_ctx;
    m->hp.alg = cfg->hook.hash_scheme != NULL && strcmp(cfg->hook.hash_scheme, "PBKDF2-SHA512") == 0
                    ? CRED_HASH_PBKDF2_SHA512
                    : CRED_HASH_ARGON2;
    m->hp.argon2_t = (unsigned)cfg->hook.argon2_iterations;
    m->hp.argon2_m_kib = (unsigned)cfg->hook.argon2_memory_kib;
    m->hp.argon2_p = 1;
    m->hp.pbkdf2_iters = (unsigned long)cfg->hook.pbkdf2_iterations;
    m->tail = &m->head;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    rc = state_open(&m->st, cfg->state_path, err);
    if (rc == DM_OK && pthread_create(&m->thread, NULL, writer_main, m) != 0) {
        rc = dm_err_set(err, DM_EINTERNAL, "hook: cannot start the target writer");
    }
    if (rc != DM_OK) {
        state_close(m->st);
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->cv);
        free(m);
        return rc;
    }
    m->running = 1;
    *out = m;
    return DM_OK;
}

void hook_migrate_submit_cb(void *ctx, const struct ldap_verify_account *a, const char *login,
                            const char *pw, size_t pw_len)
{
    struct hook_migrate *m = ctx;
    size_t ln = strlen(login), dl = strlen(a->dn);
    struct mjob *j = calloc(1, sizeof(*j) + ln + 1 + dl + 1);

    if (j != NULL) {
        j->pw = malloc(pw_len + 1);
    }
    if (j == NULL || j->pw == NULL) {
        free(j);
        log_warn("hook: out of memory; a verified password is not written to the target");
        return;
    }
    memcpy(j->pw, pw, pw_len);
    j->pw[pw_len] = '\0';
    j->plen = pw_len;
    memcpy(j->login, login, ln + 1);
    j->dn = j->login + ln + 1;
    memcpy(j->dn, a->dn, dl + 1);
    pthread_mutex_lock(&m->mu);
    if (m->len >= MIGRATE_QUEUE_MAX || m->stop) {
        pthread_mutex_unlock(&m->mu);
        job_free(j);
        log_warn("hook: target writer queue full; a verified password is not written");
        return;
    }
    *m->tail = j;
    m->tail = &j->next;
    m->len++;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

int hook_migrate_metrics(struct hook_migrate *m, struct buf *out)
{
    int rc = buf_puts(out, "# HELP dirmig_hook_target_writes_total Verified passwords written "
                           "to the LDAP target (lazy migration), by result.\n"
                           "# TYPE dirmig_hook_target_writes_total counter\n");

    for (int i = 0; i < M__LAST && rc == DM_OK; i++) {
        rc = buf_printf(out, "dirmig_hook_target_writes_total{result=\"%s\"} %lld\n", mres_names[i],
                        __atomic_load_n(&m->counts[i], __ATOMIC_RELAXED));
    }
    return rc;
}

void hook_migrate_free(struct hook_migrate *m)
{
    if (m == NULL) {
        return;
    }
    if (m->running) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    while (m->head != NULL) {
        struct mjob *j = m->head;
        m->head = j->next;
        job_free(j);
    }
    ldap_passwd_close(m->tgt);
    state_close(m->st);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}
