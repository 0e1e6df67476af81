/*
 * dirmig: Auth0 custom-database "Login" script for the lazy migration of users whose password
 * hashes Auth0 cannot import (connection settings: Custom Database on, Import Users to Auth0
 * on). Auth0 runs it when a user who is not in Auth0 yet signs in; it asks dirmig's
 * password-import hook (generic endpoint, hook.generic_path) whether the password is the
 * user's in the source directory, and Auth0 creates the user with that password on success.
 *
 * Settings (the connection's configuration, Auth0 Dashboard > Custom Database > Settings):
 *   DIRMIG_HOOK_URL     https://migrate.example.org:8443/verify  (hook.listen + generic_path)
 *   DIRMIG_HOOK_SECRET  the whole value of the hook's auth header (hook.secret_file), e.g.
 *                       "Bearer 3f1c..."; sent as the Authorization header
 *
 * Outcomes (Auth0's custom-database contract): verified -> the profile
 * (a stable user_id from the login, the email when the login is one); not verified ->
 * WrongUsernameOrPasswordError; the hook unreachable, slow or answering anything else ->
 * Error (Auth0 reports the directory as unavailable; nothing is created). The password is
 * sent only to the hook, over TLS, and never logged. The request gives up after 10 s (Auth0
 * stops a script after about 20 s).
 */
function login(usernameOrEmail, password, callback) {
    const url = new URL(configuration.DIRMIG_HOOK_URL);
    const transport = require(url.protocol === "http:" ? "http" : "https");
    const body = JSON.stringify({ username: usernameOrEmail, password: password });
    let done = false;
    const finish = (err, profile) => {
        if (!done) {
            done = true;
            callback(err, profile);
        }
    };
    const req = transport.request(url, {
        method: "POST",
        timeout: 10000,
        headers: {
            "Authorization": configuration.DIRMIG_HOOK_SECRET,
            "Content-Type": "application/json",
            "Content-Length": Buffer.byteLength(body)
        }
    }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
            let answer = null;
            try {
                answer = JSON.parse(Buffer.concat(chunks).toString("utf8"));
            } catch (e) {
                answer = null;
            }
            if (res.statusCode !== 200 || answer === null || typeof answer.verified !== "boolean") {
                return finish(new Error("dirmig hook: HTTP " + res.statusCode));
            }
            if (!answer.verified) {
                return finish(new WrongUsernameOrPasswordError(usernameOrEmail,
                                                               "Wrong username or password"));
            }
            const login = String(usernameOrEmail).trim().toLowerCase();
            const profile = { user_id: "dirmig|" + login, email_verified: false };
            if (login.indexOf("@") > 0) {
                profile.email = login;
            } else {
                profile.username = login;
            }
            return finish(null, profile);
        });
    });
    req.on("timeout", () => req.destroy(new Error("dirmig hook: no answer within 10 s")));
    req.on("error", (e) => finish(new Error("dirmig hook: " + e.message)));
    req.end(body);
}
