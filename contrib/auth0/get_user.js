/*
 * dirmig: Auth0 custom-database "Get User" script (Auth0 runs it on sign-up, password reset
 * and email change, for users who are not in Auth0 yet).
 *
 * It answers "not found" (callback(null)) without asking dirmig's hook: the hook verifies
 * passwords and has no way to tell whether an account exists without one, and asking it
 * with a made-up password would count a failure against that account's lockout budget at
 * the source directory (hook.max_failures, the directory's own password policy). What this
 * means, and what to set:
 *   - turn sign-ups off on the connection while the migration runs (Disable Sign Ups), or an
 *     unmigrated user's email could be claimed by a new sign-up;
 *   - a user not migrated yet resets a forgotten password at the source directory (or signs
 *     in once through the Login script, after which Auth0 has the user and resets work).
 * Once every user has signed in (dirmig status shows the progress), replace both scripts
 * with callback(null, null) no-ops and keep Import Users to Auth0 on.
 */
function getByEmail(email, callback) {
    return callback(null);
}
