#!/usr/bin/env python3
"""okta_server.py: a local stand-in for the Okta Users/Groups API, for dirmig's tests.

    okta_server.py --port P --token-file F [--rate-limit N_PER_MIN] [--fail-5xx FRACTION]
                   [--stall FRACTION] [--stall-seconds S] [--drop FRACTION] [--lose FRACTION]
                   [--seed N] [--slow-create REGEX --slow-seconds S]

Listens on 127.0.0.1:P (P = 0 picks a free port) and prints "READY <port>" on stdout once it
accepts connections. Implements the subset of Okta's Users/Groups API that dirmig uses:

  Authorization: SSWS <token>             else 401 E0000011
  POST   /api/v1/users?activate=true|false  profile rules, credentials.password.hash checked
                                          field by field, or .hook {"type":"default"}, or .value
  GET    /api/v1/users/{id or login}
  GET    /api/v1/users?search=|filter=|q=  &limit= &after=  (Link rel="self"/"next", opaque
                                          cursors; eq/sw/pr terms joined by and/or)
  POST   /api/v1/users/{id}               partial profile update (hash only while STAGED)
  POST   /api/v1/users/{id}/lifecycle/activate | deactivate | suspend | unsuspend
  DELETE /api/v1/users/{id}               deactivates first, deletes a DEPROVISIONED user
  GET    /api/v1/users/{id}/groups
  POST   /api/v1/groups; GET /api/v1/groups?q=|search=; GET|PUT|DELETE /api/v1/groups/{gid}
  PUT|DELETE /api/v1/groups/{gid}/users/{uid} (204); GET /api/v1/groups/{gid}/users (paged)

Every response carries X-Okta-Request-Id and X-Rate-Limit-Limit/-Remaining/-Reset (epoch
seconds; a real 60 s window starting at the first request of each window, one per endpoint
family as Okta counts them: /users, /users/{id}..., GET /users/{id}..., and the same for
/groups); over the limit: 429 E0000047. POST/PUT without a body and without Content-Length: 411. Faults (drawn from
--seed, API paths only): --fail-5xx answers 500 or 503 without doing anything, --stall
sleeps --stall-seconds and then closes the connection without doing anything, --drop closes
the connection at once, --lose does the request and then closes the connection without
answering (an answer lost on the way back). --slow-create is no fault: a user create
(POST /api/v1/users) whose profile.login matches REGEX takes --slow-seconds before it is done
and answered (a slow request, as a busy API answers some; the others go on meanwhile). /test/* is exempt from auth, rate limit and faults:

  POST /test/signin {"login","password"} -> {"result": VERIFIED | WRONG_PASSWORD | NEEDS_HOOK |
                                             NO_PASSWORD | NOT_ACTIVE | NO_USER, "status"}
                                             (checks the stored hash by the algorithm's
                                             documented meaning; only ACTIVE users sign in,
                                             a user created without credentials has no
                                             password to check)
  GET  /test/stats   -> counts of requests, 429s, faults, creates, updates, member PUT/DELETEs,
                        users, groups, memberships
  GET  /test/dump    -> users by login (id, status, profile, needs-hook) and groups by name
                        (description, member logins); never credentials

Python 3 standard library only; bcrypt is checked with crypt(3) from libcrypt via ctypes.
Passwords and hashes are never printed.
"""

import argparse
import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import random
import re
import string
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BCRYPT_ALPHABET = set("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
DIGESTS = {"SHA-1": ("sha1", 20), "SHA-256": ("sha256", 32), "SHA-512": ("sha512", 64),
           "MD5": ("md5", 16)}
PBKDF2_DIGESTS = {"SHA256_HMAC": "sha256", "SHA512_HMAC": "sha512"}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

ERRORS = {
    "E0000001": (400, "Api validation failed: {0}"),
    "E0000003": (400, "The request body was not well-formed."),
    "E0000007": (404, "Not found: Resource not found: {0}"),
    "E0000011": (401, "Invalid token provided"),
    "E0000014": (403, "Update of credentials failed"),
    "E0000016": (403, "Activation failed because the user is already active"),
    "E0000022": (405, "The endpoint does not support the provided HTTP method"),
    "E0000047": (429, "API call exceeded rate limit due to too many requests."),
    "E0000093": (400, "Target count limit exceeded"),
}

_crypt_lock = threading.Lock()
_crypt_fn = None


def crypt(pw, setting):
    global _crypt_fn
    with _crypt_lock:
        if _crypt_fn is None:
            lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
            lib.crypt.restype = ctypes.c_char_p
            lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
            _crypt_fn = lib.crypt
        out = _crypt_fn(pw.encode("utf-8"), setting.encode("ascii"))
        return out.decode("ascii", "replace") if out else None


def b64d(s):
    """Strict standard base64 -> bytes, or None."""
    if not isinstance(s, str):
        return None
    try:
        return base64.b64decode(s, validate=True)
    except (ValueError, TypeError):
        try:  # Okta's SHA-256 example has no padding
            return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
        except (ValueError, TypeError):
            return None


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def rand_id(prefix, rng):
    return prefix + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(17))


class ApiError(Exception):
    def __init__(self, code, detail="", causes=None, status=None):
        super().__init__(code)
        self.code = code
        self.status = status or ERRORS[code][0]
        self.summary = ERRORS[code][1].format(detail)
        self.causes = causes or []


def validation(causes):
    raise ApiError("E0000001", "; ".join(causes), [{"errorSummary": c} for c in causes])


def too_wide(s):
    return any(ord(ch) > 0xFFFF for ch in s)


def check_profile(p, causes):
    if not isinstance(p, dict):
        causes.append("profile: The field cannot be left blank")
        return
    for k, v in p.items():
        if isinstance(v, str) and too_wide(v):
            causes.append("%s: Characters of more than 3 UTF-8 bytes are not supported" % k)
    for k, lo, hi in (("login", 5, 100), ("email", 5, 100), ("firstName", 1, 50),
                      ("lastName", 1, 50)):
        v = p.get(k)
        if v is None or v == "":
            causes.append("%s: The field cannot be left blank" % k)
        elif not isinstance(v, str):
            causes.append("%s: Does not match required type" % k)
        elif not lo <= len(v) <= hi:
            causes.append("%s: The field must be between %d and %d characters" % (k, lo, hi))
        elif k in ("login", "email") and not EMAIL_RE.match(v):
            causes.append("%s: Does not match required pattern" % k)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_hash(h, causes):
    if not isinstance(h, dict):
        causes.append("password.hash: Does not match required type")
        return
    alg = h.get("algorithm")
    if alg not in ("BCRYPT", "MD5", "PBKDF2", "SHA-1", "SHA-256", "SHA-512"):
        causes.append("password.hash.algorithm: Does not match required enum")
        return
    known = {"algorithm", "value", "salt", "saltOrder", "workFactor", "iterationCount",
             "keySize", "digestAlgorithm"}
    for k in h:
        if k not in known:
            causes.append("password.hash.%s: Unknown property" % k)
    value = h.get("value")
    if not isinstance(value, str) or value == "":
        causes.append("password.hash.value: The field cannot be left blank")
        return
    if alg == "BCRYPT":
        wf = h.get("workFactor")
        if not is_int(wf) or not 1 <= wf <= 20:
            causes.append("password.hash.workFactor: must be between 1 and 20")
        salt = h.get("salt")
        if not isinstance(salt, str) or len(salt) != 22 or not set(salt) <= BCRYPT_ALPHABET:
            causes.append("password.hash.salt: must be 22 characters of the bcrypt alphabet")
        if len(value) != 31 or not set(value) <= BCRYPT_ALPHABET:
            causes.append("password.hash.value: must be 31 characters of the bcrypt alphabet")
        for k in ("iterationCount", "keySize", "digestAlgorithm"):
            if k in h:
                causes.append("password.hash.%s: not allowed for BCRYPT" % k)
        return
    if alg == "PBKDF2":
        it, ks = h.get("iterationCount"), h.get("keySize")
        if not is_int(it) or it < 4096:
            causes.append("password.hash.iterationCount: must be at least 4096")
        if not is_int(ks) or not 1 <= ks <= 1024:
            causes.append("password.hash.keySize: must be a positive number of bytes")
        if h.get("digestAlgorithm") not in PBKDF2_DIGESTS:
            causes.append("password.hash.digestAlgorithm: Does not match required enum")
        if b64d(h.get("salt")) is None:
            causes.append("password.hash.salt: must be Base64")
        raw = b64d(value)
        if raw is None or (is_int(ks) and len(raw) != ks):
            causes.append("password.hash.value: must be Base64 of keySize bytes")
        return
    # SHA-*/MD5
    raw = b64d(value)
    if raw is None or len(raw) != DIGESTS[alg][1]:
        causes.append("password.hash.value: must be Base64 of the %s digest" % alg)
    if "salt" in h:
        if b64d(h["salt"]) is None:
            causes.append("password.hash.salt: must be Base64")
        if h.get("saltOrder") not in ("PREFIX", "POSTFIX"):
            causes.append("password.hash.saltOrder: must be PREFIX or POSTFIX")
    elif "saltOrder" in h:
        causes.append("password.hash.saltOrder: only for salted hashes")
    for k in ("workFactor", "iterationCount", "keySize", "digestAlgorithm"):
        if k in h:
            causes.append("password.hash.%s: not allowed for %s" % (k, alg))


def check_credentials(cred, causes):
    """Returns the stored form: ("hash", obj) | ("hook", None) | ("value", pw) | None."""
    if cred is None:
        return None
    if not isinstance(cred, dict):
        causes.append("credentials: Does not match required type")
        return None
    pw = cred.get("password")
    if pw is None:
        return None
    if not isinstance(pw, dict):
        causes.append("credentials.password: Does not match required type")
        return None
    given = [k for k in ("hash", "hook", "value") if k in pw]
    if len(given) > 1:
        causes.append("credentials.password: only one of hash, hook, value")
        return None
    if "hash" in pw:
        check_hash(pw["hash"], causes)
        return ("hash", pw["hash"])
    if "hook" in pw:
        if pw["hook"] != {"type": "default"}:
            causes.append("credentials.password.hook.type: must be \"default\"")
        return ("hook", None)
    if "value" in pw:
        if not isinstance(pw["value"], str) or pw["value"] == "":
            causes.append("credentials.password.value: The field cannot be left blank")
        return ("value", pw["value"])
    return None


def verify(stored, pw):
    kind, h = stored
    if kind == "value":
        return hmac.compare_digest(h.encode("utf-8"), pw.encode("utf-8"))
    alg = h["algorithm"]
    pwb = pw.encode("utf-8")
    if alg == "BCRYPT":
        setting = "$2a$%02d$%s%s" % (h["workFactor"], h["salt"], h["value"])
        out = crypt(pw, setting)
        return out is not None and hmac.compare_digest(out, setting)
    if alg == "PBKDF2":
        dk = hashlib.pbkdf2_hmac(PBKDF2_DIGESTS[h["digestAlgorithm"]], pwb, b64d(h["salt"]),
                                 h["iterationCount"], h["keySize"])
        return hmac.compare_digest(dk, b64d(h["value"]))
    salt = b64d(h["salt"]) if "salt" in h else b""
    data = salt + pwb if h.get("saltOrder") == "PREFIX" else pwb + salt
    return hmac.compare_digest(hashlib.new(DIGESTS[alg][0], data).digest(), b64d(h["value"]))


# ---- search / filter expressions (a subset: terms joined by and/or, no parentheses) ----

TERM_RE = re.compile(r'\s*([A-Za-z0-9_.]+)\s+(eq|sw|pr|gt|lt|ge|le)(?:\s+"((?:[^"\\]|\\.)*)")?\s*',
                     re.I)


def parse_expr(expr):
    """Returns a list (or) of lists (and) of (attr, op, value)."""
    ors, ands, pos = [], [], 0
    while True:
        m = TERM_RE.match(expr, pos)
        if not m:
            raise ApiError("E0000001", "Invalid search criteria",
                           [{"errorSummary": "Invalid search criteria."}])
        op = m.group(2).lower()
        val = m.group(3)
        if op != "pr" and val is None:
            raise ApiError("E0000001", "Invalid search criteria",
                           [{"errorSummary": "Invalid search criteria."}])
        if val is not None:
            val = re.sub(r"\\(.)", r"\1", val)
        ands.append((m.group(1), op, val))
        pos = m.end()
        if pos >= len(expr):
            break
        m2 = re.compile(r"(and|or)\s+", re.I).match(expr, pos)
        if not m2:
            raise ApiError("E0000001", "Invalid search criteria",
                           [{"errorSummary": "Invalid search criteria."}])
        if m2.group(1).lower() == "or":
            ors.append(ands)
            ands = []
        pos = m2.end()
    ors.append(ands)
    return ors


def obj_get(obj, path):
    node = obj
    for k in path.split("."):
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node


def matches(obj, expr, fold):
    for ands in expr:
        ok = True
        for attr, op, val in ands:
            got = obj_get(obj, attr)
            if op == "pr":
                ok = got is not None and got != ""
            elif got is None:
                ok = False
            else:
                g, v = str(got), val
                if fold:
                    g, v = g.lower(), v.lower()
                ok = {"eq": g == v, "sw": g.startswith(v), "gt": g > v, "lt": g < v,
                      "ge": g >= v, "le": g <= v}[op]
            if not ok:
                break
        if ok:
            return True
    return False


class Store:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.ids = random.Random(args.seed + 1)
        self.args = args
        self.users = {}      # id -> user dict (insertion order = creation order)
        self.logins = {}     # login.lower() -> id
        self.creds = {}      # id -> stored credential
        self.groups = {}     # gid -> group
        self.members = {}    # gid -> dict uid -> True (ordered)
        self.stats = {"requests": 0, "rate_limited": 0, "faults_5xx": 0, "faults_stall": 0,
                      "faults_drop": 0, "faults_lose": 0, "created": 0, "duplicates": 0, "updates": 0,
                      "group_updates": 0, "member_puts": 0, "member_deletes": 0}
        self.windows = {}    # bucket -> [window start, requests in the window]

    def rate(self, bucket):
        """Returns (allowed, limit, remaining, reset) for one rate-limit bucket."""
        limit = self.args.rate_limit
        t = time.time()
        w = self.windows.get(bucket)
        if w is None or t >= w[0] + 60:
            w = self.windows[bucket] = [t, 0]
        w[1] += 1
        reset = int(w[0] + 60) + 1
        remaining = max(0, limit - w[1])
        return w[1] <= limit, limit, remaining, reset

    def fault(self):
        a = self.args
        r = self.rng.random()
        if r < a.drop:
            return "drop"
        r -= a.drop
        if r < a.stall:
            return "stall"
        r -= a.stall
        if r < a.fail_5xx:
            return "5xx"
        r -= a.fail_5xx
        if r < a.lose:
            return "lose"
        return None


def bucket_of(method, path):
    """Okta counts limits per endpoint family (contract 2.10): /api/v1/users (create, list),
    /api/v1/users/{id} and below (update, delete), GET of one user apart; the same for
    groups. Each bucket has its own per-minute window."""
    parts = [p for p in path.split("/") if p][2:] if path.startswith("/api/v1/") else []
    if not parts:
        return "other"
    if len(parts) == 1:
        return parts[0]
    return ("GET " if method == "GET" else "") + parts[0] + "/*"


def user_view(u):
    return dict(u)


def paginate(items, limit, after, base_url, query):
    start = 0
    if after:
        try:
            start = int(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()[1:])
        except (ValueError, UnicodeDecodeError):
            raise ApiError("E0000001", "after: invalid cursor",
                           [{"errorSummary": "after: invalid cursor"}])
    page = items[start:start + limit]
    links = ["<%s?%s>; rel=\"self\"" % (base_url, urllib.parse.urlencode(query))]
    if start + limit < len(items):
        q = dict(query)
        q["after"] = base64.urlsafe_b64encode(("c%d" % (start + limit)).encode()).decode()
        q["after"] = q["after"].rstrip("=")
        links.append("<%s?%s>; rel=\"next\"" % (base_url, urllib.parse.urlencode(q)))
    return page, links


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "okta-contract/1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

    def log_message(self, fmt, *a):  # quiet: request lines may hold logins
        pass

    # ---- plumbing ----

    def send_json(self, status, obj, extra=None):
        if getattr(self, "lose_answer", False):  # --lose: done, but the answer never arrives
            self.close_connection = True
            return
        body = b"" if obj is None else json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("X-Okta-Request-Id", rand_id("req", random.Random()))
        for k, v in self.rl_headers:
            self.send_header(k, v)
        for k, v in (extra or []):
            self.send_header(k, v)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_error_obj(self, e):
        self.send_json(e.status, {"errorCode": e.code, "errorSummary": e.summary,
                                  "errorLink": e.code, "errorId": rand_id("oae", random.Random()),
                                  "errorCauses": e.causes})

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        cl = self.headers.get("Content-Length")
        if "chunked" in te.lower():
            data = b""
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(n)
                self.rfile.readline()
            return data, True
        if cl is None:
            return b"", False
        return self.rfile.read(int(cl)), True

    def json_body(self, raw):
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ApiError("E0000003")

    def handle_any(self, method):
        store = self.server.store
        self.rl_headers = []
        self.lose_answer = False
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        raw, has_len = (b"", True)
        if method in ("POST", "PUT", "DELETE"):
            raw, has_len = self.read_body()
        if path.startswith("/test/"):
            try:
                self.test_endpoint(method, path, raw)
            except ApiError as e:
                self.send_error_obj(e)
            return
        with store.lock:
            store.stats["requests"] += 1
            fault = store.fault()
            if fault is not None:
                store.stats["faults_" + fault] += 1
            code_5xx = store.rng.choice((500, 503))
            ok, limit, remaining, reset = store.rate(bucket_of(method, path))
        self.rl_headers = [("X-Rate-Limit-Limit", str(limit)),
                           ("X-Rate-Limit-Remaining", str(remaining)),
                           ("X-Rate-Limit-Reset", str(reset))]
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "stall":
            time.sleep(self.server.args.stall_seconds)
            self.close_connection = True
            return
        if fault == "5xx":
            self.send_json(code_5xx, {"errorCode": "E0000009", "errorSummary": "Internal Server Error",
                                  "errorLink": "E0000009", "errorId": rand_id("oae", random.Random()),
                                  "errorCauses": []})
            return
        if method in ("POST", "PUT") and not has_len:
            self.send_json(411, {"errorCode": "E0000003",
                                 "errorSummary": "Length Required", "errorLink": "E0000003",
                                 "errorId": rand_id("oae", random.Random()), "errorCauses": []})
            self.close_connection = True
            return
        self.lose_answer = fault == "lose"
        try:
            auth = self.headers.get("Authorization", "")
            if not hmac.compare_digest(auth.encode(), ("SSWS " + self.server.token).encode()):
                raise ApiError("E0000011")
            if not ok:
                with store.lock:
                    store.stats["rate_limited"] += 1
                raise ApiError("E0000047")
            body = self.json_body(raw)
            a = self.server.args
            if a.slow_create and method == "POST" and path == "/api/v1/users" and \
                    isinstance(body, dict) and isinstance(body.get("profile"), dict) and \
                    re.search(a.slow_create, str(body["profile"].get("login", ""))):
                time.sleep(a.slow_seconds)  # outside the lock: only this request is slow
            with store.lock:
                self.route(method, path, query, body, store)
        except ApiError as e:
            self.send_error_obj(e)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    # ---- test endpoints ----

    def test_endpoint(self, method, path, raw):
        store = self.server.store
        if path == "/test/stats" and method == "GET":
            with store.lock:
                out = dict(store.stats)
                out["users"] = len(store.users)
                out["groups"] = len(store.groups)
                out["memberships"] = sum(len(m) for m in store.members.values())
            self.send_json(200, out)
            return
        if path == "/test/signin" and method == "POST":
            req = self.json_body(raw) or {}
            with store.lock:
                uid = store.logins.get(str(req.get("login", "")).lower())
                stored = store.creds.get(uid) if uid else None
                status = store.users[uid]["status"] if uid else None
            # Okta signs in only ACTIVE users (a STAGED user has never been activated) and
            # only against a stored credential: no password and no hook = nothing to check.
            if uid is None:
                result = "NO_USER"
            elif status != "ACTIVE":
                result = "NOT_ACTIVE"
            elif stored is None:
                result = "NO_PASSWORD"
            elif stored[0] == "hook":
                result = "NEEDS_HOOK"
            else:
                result = "VERIFIED" if verify(stored, str(req.get("password", ""))) \
                    else "WRONG_PASSWORD"
            self.send_json(200, {"result": result, "status": status})
            return
        if path == "/test/dump" and method == "GET":
            # Everything a test compares, by login and group name (no credentials): users
            # with id, status, profile and credential kind (hash, hook, value or none); groups with their
            # member logins (in a list, so a duplicate would show).
            with store.lock:
                users = {u["profile"]["login"]: {
                    "id": u["id"], "status": u["status"], "profile": u["profile"],
                    "credential": (store.creds.get(u["id"]) or ("none",))[0]}
                    for u in store.users.values()}
                groups = {g["profile"]["name"]: {
                    "id": g["id"], "description": g["profile"].get("description"),
                    "members": [store.users[m]["profile"]["login"]
                                for m in store.members[g["id"]] if m in store.users]}
                    for g in store.groups.values()}
                nusers = len(store.users)
                ngroups = len(store.groups)
            self.send_json(200, {"users": users, "groups": groups, "user_count": nusers,
                                 "group_count": ngroups})
            return
        raise ApiError("E0000007", path)

    # ---- API ----

    def base(self, path):
        return "http://127.0.0.1:%d%s" % (self.server.server_address[1], path)

    def route(self, method, path, query, body, store):
        parts = [p for p in path.split("/") if p][2:] if path.startswith("/api/v1/") else None
        if not parts:
            raise ApiError("E0000007", path)
        parts = [urllib.parse.unquote(p) for p in parts]
        if parts[0] == "users":
            return self.users_route(method, parts[1:], query, body, store, path)
        if parts[0] == "groups":
            return self.groups_route(method, parts[1:], query, body, store, path)
        raise ApiError("E0000007", path)

    def find_user(self, store, key):
        uid = key if key in store.users else store.logins.get(key.lower())
        if uid is None:
            raise ApiError("E0000007", key if key.startswith("00u") else "user")
        return store.users[uid]

    def users_route(self, method, rest, query, body, store, path):
        if not rest:
            if method == "POST":
                return self.create_user(query, body, store)
            if method == "GET":
                return self.list_users(query, store, path)
            raise ApiError("E0000022")
        u = self.find_user(store, rest[0])
        if len(rest) == 1:
            if method == "GET":
                return self.send_json(200, user_view(u))
            if method == "POST":
                return self.update_user(u, body, store)
            if method == "DELETE":
                if u["status"] != "DEPROVISIONED":
                    u["status"] = "DEPROVISIONED"
                    u["statusChanged"] = now_iso()
                else:
                    del store.users[u["id"]]
                    store.logins.pop(u["profile"]["login"].lower(), None)
                    store.creds.pop(u["id"], None)
                    for m in store.members.values():
                        m.pop(u["id"], None)
                return self.send_json(204, None)
            raise ApiError("E0000022")
        if rest[1:] == ["groups"] and method == "GET":
            gs = [store.groups[g] for g, m in store.members.items() if u["id"] in m]
            return self.send_json(200, gs)
        if len(rest) == 3 and rest[1] == "lifecycle" and method == "POST":
            if rest[2] == "deactivate":
                u["status"] = "DEPROVISIONED"
            elif rest[2] == "activate":
                if u["status"] not in ("STAGED", "DEPROVISIONED"):
                    raise ApiError("E0000016")
                u["status"] = "ACTIVE"
            elif rest[2] == "suspend":
                # Okta: only an ACTIVE user can be suspended
                if u["status"] != "ACTIVE":
                    validation(["status: Cannot suspend a user that is not active"])
                u["status"] = "SUSPENDED"
            elif rest[2] == "unsuspend":
                if u["status"] != "SUSPENDED":
                    validation(["status: Cannot unsuspend a user that is not suspended"])
                u["status"] = "ACTIVE"
            else:
                raise ApiError("E0000007", path)
            u["statusChanged"] = u["lastUpdated"] = now_iso()
            return self.send_json(200, {})
        raise ApiError("E0000007", path)

    def create_user(self, query, body, store):
        if not isinstance(body, dict):
            raise ApiError("E0000003")
        causes = []
        profile = body.get("profile")
        check_profile(profile, causes)
        stored = check_credentials(body.get("credentials"), causes)
        gids = body.get("groupIds") or []
        if not isinstance(gids, list):
            causes.append("groupIds: Does not match required type")
            gids = []
        if causes:
            validation(causes)
        if len(gids) > 20:
            raise ApiError("E0000093")
        for g in gids:
            if g not in store.groups:
                validation(["groupIds: group %s not found" % g])
        if profile["login"].lower() in store.logins:
            store.stats["duplicates"] += 1
            validation(["login: An object with this field already exists in the current "
                        "organization"])
        activate = query.get("activate", "true").lower() != "false"
        t = now_iso()
        uid = rand_id("00u", store.ids)
        u = {"id": uid, "status": "ACTIVE" if activate else "STAGED", "created": t,
             "activated": t if activate else None, "statusChanged": t, "lastLogin": None,
             "lastUpdated": t, "passwordChanged": t if stored else None,
             "type": {"id": "oty1"}, "profile": dict(profile),
             "credentials": {"password": {}, "provider": {"type": "IMPORT", "name": "IMPORT"}},
             "_links": {"self": {"href": self.base("/api/v1/users/" + uid)}}}
        store.users[uid] = u
        store.logins[profile["login"].lower()] = uid
        if stored is not None:
            store.creds[uid] = stored
        for g in gids:
            store.members[g][uid] = True
        store.stats["created"] += 1
        self.send_json(200, user_view(u))

    def update_user(self, u, body, store):
        if not isinstance(body, dict):
            raise ApiError("E0000003")
        causes = []
        prof = dict(u["profile"])
        if isinstance(body.get("profile"), dict):
            prof.update(body["profile"])
        check_profile(prof, causes)
        stored = check_credentials(body.get("credentials"), causes)
        if causes:
            validation(causes)
        if stored is not None and stored[0] in ("hash", "hook") and u["status"] != "STAGED":
            raise ApiError("E0000014")
        old = u["profile"]["login"].lower()
        new = prof["login"].lower()
        if new != old and new in store.logins:
            validation(["login: An object with this field already exists in the current "
                        "organization"])
        store.logins.pop(old, None)
        store.logins[new] = u["id"]
        u["profile"] = prof
        if stored is not None:
            store.creds[u["id"]] = stored
        u["lastUpdated"] = now_iso()
        store.stats["updates"] += 1
        self.send_json(200, user_view(u))

    def list_users(self, query, store, path):
        if "search" in query:
            expr, fold, hide = parse_expr(query["search"]), True, False
        elif "filter" in query:
            expr, fold, hide = parse_expr(query["filter"]), False, True
        elif "q" in query:
            qv = query["q"].lower()
            expr, fold, hide = [[("profile.firstName", "sw", qv)], [("profile.lastName", "sw", qv)],
                                [("profile.email", "sw", qv)]], True, True
        else:
            expr, fold, hide = None, False, True
        if expr is not None and fold and all(len(a) == 1 and a[0][0] == "profile.login" and
                                             a[0][1] == "eq" for a in expr):
            # logins looked up by the index (as Okta's search index does), not matched one by
            # one: the same answer, in the same order
            ids = {store.logins.get(a[0][2].lower()) for a in expr} - {None}
            items = [u for u in store.users.values() if u["id"] in ids]
        else:
            items = [u for u in store.users.values()
                     if (not hide or u["status"] != "DEPROVISIONED") and
                     (expr is None or matches(u, expr, fold))]
        dflt = 10 if "q" in query else 200
        limit = self.limit(query, dflt, dflt)
        if "q" in query:
            return self.send_json(200, items[:limit])
        page, links = paginate(items, limit, query.get("after"), self.base(path),
                               {k: v for k, v in query.items() if k != "after"})
        self.send_json(200, [user_view(u) for u in page], [("Link", l) for l in links])

    def limit(self, query, dflt, hi):
        try:
            n = int(query.get("limit", dflt))
        except ValueError:
            validation(["limit: must be a number"])
        return max(1, min(n, hi))

    def groups_route(self, method, rest, query, body, store, path):
        if not rest:
            if method == "POST":
                if not isinstance(body, dict) or not isinstance(body.get("profile"), dict):
                    raise ApiError("E0000003")
                name = body["profile"].get("name")
                if not isinstance(name, str) or not 1 <= len(name) <= 255 or too_wide(name):
                    validation(["name: The field cannot be left blank"])
                if any(g["profile"]["name"].lower() == name.lower() for g in store.groups.values()):
                    validation(["name: An object with this field already exists in the current "
                                "organization"])
                gid = rand_id("00g", store.ids)
                t = now_iso()
                g = {"id": gid, "created": t, "lastUpdated": t, "lastMembershipUpdated": t,
                     "type": "OKTA_GROUP", "objectClass": ["okta:user_group"],
                     "profile": {"name": name,
                                 "description": body["profile"].get("description")}}
                store.groups[gid] = g
                store.members[gid] = {}
                return self.send_json(200, g)
            if method == "GET":
                gs = list(store.groups.values())
                if "q" in query:
                    qv = query["q"].lower()
                    gs = [g for g in gs if g["profile"]["name"].lower().startswith(qv)]
                    return self.send_json(200, gs[:self.limit(query, 300, 10000)])
                if "search" in query:
                    expr = parse_expr(query["search"])
                    gs = [g for g in gs if matches(g, expr, True)]
                page, links = paginate(gs, self.limit(query, 10000, 10000), query.get("after"),
                                       self.base(path),
                                       {k: v for k, v in query.items() if k != "after"})
                return self.send_json(200, page, [("Link", l) for l in links])
            raise ApiError("E0000022")
        g = store.groups.get(rest[0])
        if g is None:
            raise ApiError("E0000007", rest[0])
        if len(rest) == 1:
            if method == "GET":
                return self.send_json(200, g)
            if method == "PUT":
                if not isinstance(body, dict) or not isinstance(body.get("profile"), dict):
                    raise ApiError("E0000003")
                name = body["profile"].get("name")
                if not isinstance(name, str) or not 1 <= len(name) <= 255 or too_wide(name):
                    validation(["name: The field cannot be left blank"])
                if any(x["profile"]["name"].lower() == name.lower() and x["id"] != g["id"]
                       for x in store.groups.values()):
                    validation(["name: An object with this field already exists in the current "
                                "organization"])
                g["profile"] = {"name": name, "description": body["profile"].get("description")}
                g["lastUpdated"] = now_iso()
                store.stats["group_updates"] += 1
                return self.send_json(200, g)
            if method == "DELETE":
                del store.groups[rest[0]]
                del store.members[rest[0]]
                return self.send_json(204, None)
            raise ApiError("E0000022")
        if rest[1] == "users" and len(rest) == 2 and method == "GET":
            ms = [store.users[u] for u in store.members[g["id"]] if u in store.users]
            page, links = paginate(ms, self.limit(query, 1000, 10000), query.get("after"),
                                   self.base(path),
                                   {k: v for k, v in query.items() if k != "after"})
            return self.send_json(200, page, [("Link", l) for l in links])
        if rest[1] == "users" and len(rest) == 3:
            if rest[2] not in store.users:
                raise ApiError("E0000007", rest[2])
            if method == "PUT":
                store.members[g["id"]][rest[2]] = True
                store.stats["member_puts"] += 1
            elif method == "DELETE":
                store.members[g["id"]].pop(rest[2], None)
                store.stats["member_deletes"] += 1
            else:
                raise ApiError("E0000022")
            g["lastMembershipUpdated"] = now_iso()
            return self.send_json(204, None)
        raise ApiError("E0000007", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--rate-limit", type=int, default=100000, help="requests per minute")
    ap.add_argument("--fail-5xx", type=float, default=0.0)
    ap.add_argument("--stall", type=float, default=0.0)
    ap.add_argument("--stall-seconds", type=float, default=30.0)
    ap.add_argument("--drop", type=float, default=0.0)
    ap.add_argument("--lose", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--slow-create", default="")
    ap.add_argument("--slow-seconds", type=float, default=2.0)
    args = ap.parse_args()
    with open(args.token_file, encoding="utf-8") as f:
        token = f.read().strip()
    if not token:
        sys.exit("okta_server.py: empty token file")
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256  # a real API front end does not drop SYNs
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.token = token
    srv.args = args
    srv.store = Store(args)
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
