/*
 * hook_migrate.h: lazy migration into an LDAP target (hook.lazy_migration, hook.rehash).
 *
 * When the target is an LDAP directory whose users came without a usable hash (AD ->
 * OpenLDAP: AD's hashes cannot be read) or with a weak one ({MD5}, {SHA}, {CRYPT} DES...),
 * the target's login flow (the application, or a proxy in front of the directory) calls
 * the hook's generic endpoint; after a VERIFIED answer this module writes the password to
 * the user's target entry as a strong hash ({ARGON2} or {PBKDF2-SHA512}, hook.hash_scheme),
 * so that the next sign-in binds at the target directly:
 *   - the target entry is the one `dirmig run` created for the source account (the state
 *     journal's objects row for the source DN): never guessed from a DN, so a password
 *     never lands on another person's entry;
 *   - an entry with no userPassword gets one (lazy_migration), under an assertion that it
 *     still has none; an entry whose single value is a weak scheme that matches the
 *     verified password gets it replaced (rehash), under a compare of the old value;
 *     anything else (a strong hash, a password changed at the target since, a lock marker,
 *     several values) is left alone;
 *   - the result is journaled (password_migrations outcome "migrated" or "rehashed", the
 *     scheme as reason) and counted on /metrics.
 * One writer thread with a bounded queue: the sign-in answer never waits for the hashing
 * or the write. The queued password copies are wiped once written (or dropped).
 *
 * Call order: hook_migrate_new -> hook_migrate_submit_cb (as the hook core's
 * hook_verified_fn, any thread) -> hook_migrate_free (drains what is queued).
 */
#ifndef DM_HOOK_MIGRATE_H
#define DM_HOOK_MIGRATE_H

#include "agent/config.h"
#include "agent/hook_core.h"
#include "agent/util/buf.h"
#include "agent/util/err.h"

struct hook_migrate;

/* Starts the writer (the target connection is opened at the first job). cfg is borrowed;
 * record journals the results (record_ctx borrowed). DM_EINVAL when the target is not an
 * LDAP directory. */
int hook_migrate_new(struct hook_migrate **out, const struct dm_config *cfg, hook_record_fn record,
                     void *record_ctx, struct dm_err *err) DM_MUST_USE;

/* hook_verified_fn: queues one verified sign-in (ctx is the struct hook_migrate). Never
 * blocks; a full queue drops the job with a warning (the next sign-in tries again). */
void hook_migrate_submit_cb(void *ctx, const struct ldap_verify_account *a, const char *login,
                            const char *pw, size_t pw_len);

/* Appends dirmig_hook_target_writes_total{result=...} to out. */
int hook_migrate_metrics(struct hook_migrate *m, struct buf *out) DM_MUST_USE;

/* Writes what is queued, stops the writer, frees m. NULL-safe. */
void hook_migrate_free(struct hook_migrate *m);

#endif
