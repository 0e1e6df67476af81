// tests/auth0/run_script.js: runs an Auth0 custom-database script (contrib/auth0/*.js) the way
// Auth0's extensibility runtime does: the script's function with `configuration`, the
// WrongUsernameOrPasswordError class and core modules in scope, called once with a callback.
//
//   node run_script.js SCRIPT.js login USER PASSWORD_FILE   (the settings from the
//   node run_script.js SCRIPT.js getByEmail EMAIL            environment: DIRMIG_HOOK_URL,
//                                                            DIRMIG_HOOK_SECRET_FILE)
// Prints one JSON line: {"error": null | "WrongUsernameOrPasswordError" | "Error",
// "message": ..., "profile": ...}; exits 0. A callback called twice, or never within 25 s,
// exits 1.
"use strict";
const fs = require("fs");
const vm = require("vm");

class WrongUsernameOrPasswordError extends Error {
    constructor(user, msg) {
        super(msg);
        this.name = "WrongUsernameOrPasswordError";
        this.user = user;
    }
}
const [script, fn, arg, pwfile] = process.argv.slice(2);
const configuration = {
    DIRMIG_HOOK_URL: process.env.DIRMIG_HOOK_URL,
    DIRMIG_HOOK_SECRET: fs.readFileSync(process.env.DIRMIG_HOOK_SECRET_FILE, "utf8").trim(),
};
const ctx = vm.createContext({configuration, WrongUsernameOrPasswordError, require, Buffer, URL,
                              console});
vm.runInContext(fs.readFileSync(script, "utf8"), ctx, {filename: script});
let calls = 0;
const timer = setTimeout(() => { console.log("no callback within 25 s"); process.exit(1); }, 25000);
const cb = (err, profile) => {
    calls++;
    if (calls > 1) {
        console.log("callback called twice");
        process.exit(1);
    }
    clearTimeout(timer);
    console.log(JSON.stringify({error: err ? err.name : null, message: err ? err.message : null,
                                profile: profile === undefined ? null : profile}));
};
if (fn === "login") {
    ctx.login(arg, fs.readFileSync(pwfile, "utf8"), cb);
} else {
    ctx.getByEmail(arg, cb);
}
