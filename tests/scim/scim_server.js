// tests/scim/scim_server.js: a SCIM 2.0 service provider for dirmig's tests, built on the
// SCIMMY library and its Express routers (versions pinned in package-lock.json), resources in
// memory. The protocol (discovery, filters, paging, PATCH, errors) is SCIMMY's; this file only
// stores resources and adds what a real provider adds around it:
//   - bearer token auth (the token from --token-file), 401 otherwise
//   - userName unique (case-insensitive, as RFC 7643 says) and group displayName unique:
//     409 uniqueness, so a create resent after a lost answer is refused, never doubled
//   - ETags: meta.version on every resource, If-Match checked (412 on a stale version),
//     etag.supported in /ServiceProviderConfig
//   - the password is writeOnly: kept aside (as a salted hash) for /test/signin only
// Test-only endpoints (token required): GET /test/stats (writes by method and type),
// GET /test/dump (every resource), POST /test/signin {userName, password} -> {ok}.
// Prints "READY <port>" on stdout once listening on 127.0.0.1.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const express = require("express");
const SCIMMY = require("scimmy");
const SCIMMYRouters = require("scimmy-routers").default || require("scimmy-routers");

const args = process.argv.slice(2);
const opt = (name, def) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : def;
};
const token = fs.readFileSync(opt("--token-file"), "utf8").trim();
const port = parseInt(opt("--port", "0"), 10);
const maxResults = parseInt(opt("--max-results", "200"), 10);

const store = {Users: new Map(), Groups: new Map()};
// lower-cased userName / displayName -> id: an "eq" filter on it is an index look-up, and
// matches without regard to case as RFC 7643 says of userName (caseExact false)
const names = {Users: new Map(), Groups: new Map()};
const passwords = new Map(); // user id -> {salt, hash}
const stats = {requests: 0, writes: 0, POST: {}, PUT: {}, PATCH: {}, DELETE: {}, created: 0};
let seq = 0;

const now = () => new Date().toISOString();
const version = (n) => `W/"${n}"`;
const fail = (status, scimType, detail) => new SCIMMY.Types.Error(status, scimType, detail);

function hashPw(salt, pw) {
    return crypto.createHash("sha256").update(salt).update(pw, "utf8").digest("hex");
}

function plain(instance) {
    // the schema instance as plain JSON, without what the store sets itself
    const o = JSON.parse(JSON.stringify(instance));
    delete o.schemas;
    delete o.meta;
    delete o.id;
    return o;
}

function declare(type, unique) {
    const Resource = SCIMMY.Resources[type === "Users" ? "User" : "Group"];
    const map = store[type];
    Resource.ingress((resource, instance) => {
        const data = plain(instance);
        const password = instance.password; // writeOnly: not in the instance's JSON
        const name = data[unique];
        const key = String(name).toLowerCase();
        const taken = names[type].get(key);
        if (name !== undefined && taken !== undefined && taken !== resource.id) {
            throw fail(409, "uniqueness", `${unique} "${name}" is already taken`);
        }
        let rec;
        if (resource.id) {
            rec = map.get(resource.id);
            if (!rec) throw fail(404, null, `Resource ${resource.id} not found`);
            names[type].delete(String(rec.data[unique]).toLowerCase());
            rec.data = data;
            rec.version++;
            rec.modified = now();
        } else {
            rec = {id: crypto.randomUUID(), data, version: 1, created: now()};
            rec.modified = rec.created;
            map.set(rec.id, rec);
            stats.created++;
        }
        if (type === "Users" && password !== undefined) {
            const salt = crypto.randomBytes(8).toString("hex");
            passwords.set(rec.id, {salt, hash: hashPw(salt, password)});
        }
        delete rec.data.password;
        if (name !== undefined) names[type].set(key, rec.id);
        return out(type, rec);
    });
    Resource.egress((resource) => {
        if (resource.id) {
            const rec = map.get(resource.id);
            if (!rec) throw fail(404, null, `Resource ${resource.id} not found`);
            return out(type, rec);
        }
        const f = resource.filter;
        if (f && f.length === 1 && Object.keys(f[0]).length === 1 &&
            Object.keys(f[0])[0].toLowerCase() === unique.toLowerCase() && f[0][Object.keys(f[0])[0]][0] === "eq") {
            const id = names[type].get(String(f[0][Object.keys(f[0])[0]][1]).toLowerCase());
            return id !== undefined ? [out(type, map.get(id))] : [];
        }
        if (!f) {
            // a page without a filter: only the page is built (SCIMMY would build every
            // resource and slice after), totalResults told through the constraints
            const c = resource.constraints || {};
            const start = Math.max(1, parseInt(c.startIndex || 1, 10));
            const count = Math.max(0, Math.min(parseInt(c.count ?? maxResults, 10), maxResults));
            const recs = [...map.values()];
            if (resource.constraints) resource.constraints.totalResults = recs.length;
            return recs.slice(start - 1, start - 1 + count).map((r) => out(type, r));
        }
        return f.match([...map.values()].map((r) => out(type, r)));
    });
    Resource.degress((resource) => {
        const rec = map.get(resource.id);
        if (!rec) throw fail(404, null, `Resource ${resource.id} not found`);
        map.delete(resource.id);
        names[type].delete(String(rec.data[unique]).toLowerCase());
        passwords.delete(resource.id);
    });
}

function out(type, rec) {
    return Object.assign({}, rec.data, {
        id: rec.id,
        meta: {created: rec.created, lastModified: rec.modified, version: version(rec.version)},
    });
}

SCIMMY.Resources.declare(SCIMMY.Resources.User.extend(SCIMMY.Schemas.EnterpriseUser, false));
SCIMMY.Resources.declare(SCIMMY.Resources.Group);
declare("Users", "userName");
declare("Groups", "displayName");
SCIMMY.Config.set({
    patch: {supported: true},
    filter: {supported: true, maxResults},
    etag: {supported: true},
    changePassword: {supported: true},
    sort: {supported: false},
    bulk: {supported: false},
});

const app = express();
const authorized = (req) => {
    const h = req.header("Authorization") || "";
    const want = Buffer.from(`Bearer ${token}`);
    const got = Buffer.from(h);
    return got.length === want.length && crypto.timingSafeEqual(got, want);
};

// counts writes as they reach the provider (after the fault proxy, if any)
app.use((req, res, next) => {
    stats.requests++;
    const m = /^\/scim\/(Users|Groups)/.exec(req.path);
    if (m && stats[req.method]) {
        res.on("finish", () => {
            if (res.statusCode < 300) {
                stats.writes++;
                stats[req.method][m[1]] = (stats[req.method][m[1]] || 0) + 1;
            }
        });
    }
    next();
});

// If-Match: a stale version is refused before SCIMMY sees the request (RFC 7644 §3.14)
app.use(/^\/scim\/(Users|Groups)\/([^/]+)$/, (req, res, next) => {
    const want = req.header("If-Match");
    const m = /^\/scim\/(Users|Groups)\/([^/]+)$/.exec(req.originalUrl.split("?")[0]);
    if (!want || !m || want === "*") return next();
    const rec = store[m[1]].get(decodeURIComponent(m[2]));
    if (rec && version(rec.version) !== want) {
        res.status(412).type("application/scim+json").send(JSON.stringify({
            schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], status: "412",
            detail: `resource version is ${version(rec.version)}, not ${want}`}));
        return;
    }
    next();
});

app.use("/test", express.json(), (req, res, next) => (authorized(req) ? next() : res.sendStatus(401)));
app.get("/test/stats", (req, res) => res.json(Object.assign({users: store.Users.size,
    groups: store.Groups.size}, stats)));
app.get("/test/dump", (req, res) => res.json({
    Users: [...store.Users.values()].map((r) => out("Users", r)),
    Groups: [...store.Groups.values()].map((r) => out("Groups", r))}));
app.post("/test/signin", (req, res) => {
    const {userName, password} = req.body || {};
    const u = [...store.Users.values()].find((r) =>
        String(r.data.userName).toLowerCase() === String(userName).toLowerCase());
    const p = u && passwords.get(u.id);
    res.json({ok: !!(p && hashPw(p.salt, String(password)) === p.hash), user: !!u});
});

app.use("/scim", new SCIMMYRouters({
    type: "bearer",
    handler: (req) => {
        if (!authorized(req)) throw new Error("Authorization failed");
        return "dirmig";
    },
}));

const server = app.listen(port, "127.0.0.1", () => {
    process.stdout.write(`READY ${server.address().port}\n`);
});
server.keepAliveTimeout = 30000;
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
