// tests/scim/fault_proxy.js: a small fault-injecting HTTP proxy in front of the SCIM server.
// For each request, with the given probabilities (seeded, so a run can be repeated):
//   --fail-5xx P   answer 503 without forwarding (nothing was applied)
//   --drop P       drop the connection: half of them before forwarding (nothing applied),
//                  half after the server answered (applied, the answer lost)
//   --rate-429 P   answer 429 Too Many Requests with Retry-After: 1 (nothing applied)
// Everything else is forwarded as is. Prints "READY <port>" once listening on 127.0.0.1;
// GET /proxy/stats gives the faults injected.
"use strict";
const http = require("http");

const args = process.argv.slice(2);
const opt = (name, def) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : def;
};
const upstream = parseInt(opt("--upstream"), 10);
const p5xx = parseFloat(opt("--fail-5xx", "0"));
const pdrop = parseFloat(opt("--drop", "0"));
const p429 = parseFloat(opt("--rate-429", "0"));
let seed = parseInt(opt("--seed", "1"), 10) >>> 0;
const rand = () => { // mulberry32
    seed = (seed + 0x6D2B79F5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const agent = new http.Agent({keepAlive: true, maxSockets: 64});
const stats = {forwarded: 0, failed_5xx: 0, dropped_before: 0, dropped_after: 0, rate_429: 0};

const server = http.createServer((req, res) => {
    if (req.url === "/proxy/stats") {
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify(stats));
        return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
        const r = rand();
        const testPath = req.url.startsWith("/test/");
        if (!testPath && r < p5xx) {
            stats.failed_5xx++;
            res.writeHead(503, {"Content-Type": "application/scim+json"});
            res.end(JSON.stringify({schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
                status: "503", detail: "injected fault"}));
            return;
        }
        if (!testPath && r >= p5xx + pdrop && r < p5xx + pdrop + p429) {
            stats.rate_429++;
            res.writeHead(429, {"Content-Type": "application/scim+json", "Retry-After": "1"});
            res.end(JSON.stringify({schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
                status: "429", detail: "injected: too many requests"}));
            return;
        }
        const drop = !testPath && r < p5xx + pdrop;
        if (drop && rand() < 0.5) {
            stats.dropped_before++;
            req.socket.destroy();
            return;
        }
        const up = http.request({host: "127.0.0.1", port: upstream, method: req.method, agent,
            path: req.url, headers: req.headers}, (ur) => {
            const body = [];
            ur.on("data", (c) => body.push(c));
            ur.on("end", () => {
                if (drop) {
                    stats.dropped_after++;
                    req.socket.destroy();
                    return;
                }
                stats.forwarded++;
                res.writeHead(ur.statusCode, ur.headers);
                res.end(Buffer.concat(body));
            });
        });
        up.on("error", () => req.socket.destroy());
        up.end(Buffer.concat(chunks));
    });
});
server.keepAliveTimeout = 30000;
server.listen(parseInt(opt("--port", "0"), 10), "127.0.0.1", () => {
    process.stdout.write(`READY ${server.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
