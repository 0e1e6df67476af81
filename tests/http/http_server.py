#!/usr/bin/env python3
"""Tiny HTTP/1.1 test server for connectors/http.c (stdlib only, loopback only).

Okta-like X-Rate-Limit-* headers over a real window of --window seconds (429 + E0000047
past --limit), injected faults (--fail-5xx, --stall, --drop fractions, --force-429 N
first requests), Link pagination on /api/v1/users, 411 for a bodiless POST without
Content-Length, optional token check and TLS. GET /stats returns counters (never limited
or faulted). Prints "READY <port>" once listening. Never logs request headers.
"""
import argparse
import json
import math
import random
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ST = {"requests": 0, "connections": 0, "r429": 0, "r5xx": 0, "dropped": 0, "stalled": 0,
      "inflight": 0, "max_inflight": 0, "auth_fail": 0, "window_count": 0, "r411": 0}
WIN = {"start": None, "end": None, "count": 0}


def rate_check(a):
    """Returns (limit, remaining, reset, over) for one request in the current window."""
    now = time.time()
    with LOCK:
        if WIN["end"] is None or now >= WIN["end"]:
            WIN["start"], WIN["end"], WIN["count"] = now, now + a.window, 0
        WIN["count"] += 1
        over = WIN["count"] > a.limit
        return a.limit, max(0, a.limit - WIN["count"]), math.ceil(WIN["end"] + a.skew), over


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with LOCK:
            ST["connections"] += 1

    def log_message(self, fmt, *args):
        pass

    def date_time_string(self, timestamp=None):
        return super().date_time_string(time.time() + self.server.args.skew)

    def send(self, code, obj, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Okta-Request-Id", "req-%d" % ST["requests"])
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        a = self.server.args
        if self.path == "/stats":
            with LOCK:
                return self.send(200, dict(ST))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with LOCK:
            ST["requests"] += 1
            seq = ST["requests"]
            ST["inflight"] += 1
            ST["max_inflight"] = max(ST["max_inflight"], ST["inflight"])
        try:
            self.answer(a, seq, body)
        finally:
            with LOCK:
                ST["inflight"] -= 1

    def answer(self, a, seq, body):
        if a.token is not None and self.headers.get("Authorization") != "SSWS " + a.token:
            with LOCK:
                ST["auth_fail"] += 1
            return self.send(401, {"errorCode": "E0000011", "errorSummary": "Invalid token"})
        if self.command in ("POST", "PUT") and self.headers.get("Content-Length") is None:
            with LOCK:
                ST["r411"] += 1
            return self.send(411, {"errorSummary": "Length Required"})
        rnd = self.server.rng
        if seq <= a.force_429:
            reset = int(time.time() + a.skew) + a.force_429_reset
            with LOCK:
                ST["r429"] += 1
            return self.send(429, {"errorCode": "E0000047"},
                             [("X-Rate-Limit-Limit", "0"), ("X-Rate-Limit-Remaining", "0"),
                              ("X-Rate-Limit-Reset", str(reset))])
        with LOCK:
            roll = rnd.random()
        if roll < a.drop:
            with LOCK:
                ST["dropped"] += 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if a.drop <= roll < a.drop + a.stall:
            with LOCK:
                ST["stalled"] += 1
            time.sleep(a.stall_seconds)
        if a.drop + a.stall <= roll < a.drop + a.stall + a.fail_5xx:
            with LOCK:
                ST["r5xx"] += 1
            return self.send(503 if seq % 2 else 500, {"errorSummary": "injected"})
        extra = []
        if a.limit > 0:
            lim, rem, reset, over = rate_check(a)
            extra = [("X-Rate-Limit-Limit", str(lim)), ("X-Rate-Limit-Remaining", str(rem)),
                     ("X-Rate-Limit-Reset", str(reset))]
            if over:
                with LOCK:
                    ST["r429"] += 1
                return self.send(429, {"errorCode": "E0000047", "errorSummary":
                                       "API call exceeded rate limit due to too many requests."},
                                 extra)
        path, _, query = self.path.partition("?")
        if path == "/api/v1/users":
            after = 0
            for kv in query.split("&"):
                if kv.startswith("after="):
                    after = int(kv[6:])
            base = "http%s://127.0.0.1:%d" % ("s" if a.tls_cert else "", self.server.port)
            extra.append(("Link", '<%s/api/v1/users?limit=2>; rel="self"' % base))
            if after < a.pages - 1:
                extra.append(("Link", '<%s/api/v1/users?limit=2&after=%d>; rel="next"'
                              % (base, after + 1)))
            return self.send(200, [{"id": "u%d" % after}], extra)
        return self.send(200, {"method": self.command, "path": path, "len": len(body),
                              "ctype": self.headers.get_all("Content-Type"),
                              "prefer": self.headers.get("Prefer")}, extra)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--window", type=float, default=60.0)
    p.add_argument("--limit", type=int, default=0, help="requests per window; 0 = no headers")
    p.add_argument("--fail-5xx", type=float, default=0.0)
    p.add_argument("--stall", type=float, default=0.0)
    p.add_argument("--stall-seconds", type=float, default=3.0)
    p.add_argument("--drop", type=float, default=0.0)
    p.add_argument("--force-429", type=int, default=0, help="first N requests get 429")
    p.add_argument("--force-429-reset", type=int, default=2, help="their Reset: now + S")
    p.add_argument("--pages", type=int, default=3)
    p.add_argument("--token-file")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skew", type=float, default=0.0, help="server clock ahead by S seconds")
    a = p.parse_args()
    a.token = None
    if a.token_file:
        with open(a.token_file) as f:
            a.token = f.read().rstrip("\n")
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    srv.daemon_threads = True
    srv.args, srv.rng, srv.port = a, random.Random(a.seed), srv.server_address[1]
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("READY %d" % srv.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
