#!/usr/bin/env python3
"""auth0_server.py: a contract server for the Auth0 Management API's bulk user import, written
from the Auth0 documentation of the bulk user import and its schema, for dirmig's tests.

    auth0_server.py --port 0 --token-file FILE --connection-id con_XXXXXXXXXXXXXXXX
                    [--job-delay S] [--max-file BYTES]

Serves (Authorization: Bearer <token>, else 401):
  GET    /api/v2/connections/{id}              the one database connection (else 404)
  POST   /api/v2/jobs/users-imports            multipart/form-data: users (a JSON array file,
                                               at most 500 KB, else 413), connection_id,
                                               upsert, external_id, send_completion_email;
                                               202 {"status":"pending","type":"users_import",
                                               "id":"job_...",...}; a third job while two run:
                                               429 with Auth0's message
  GET    /api/v2/jobs/{id}                     pending, then completed with summary
                                               {failed, updated, inserted, total}
  GET    /api/v2/jobs/{id}/errors              [{"user": {... hash redacted}, "errors":
                                               [{"code","message","path"}]}]; 204 when none
  GET    /api/v2/users-by-email?email=E        the users with that email (case-insensitive)
  GET    /api/v2/users/{id}, DELETE /api/v2/users/{id}
Each user is checked against the import schema (email required and an address,
additionalProperties false, string lengths, booleans, password_hash XOR custom_password_hash,
and custom_password_hash per algorithm as §3.3 says); a bad record fails alone. With upsert a
user that exists (same email) is updated, its custom_password_hash only while it has not
signed in; without, DUPLICATED_USER.
Test-only: POST /test/signin {"email","password"} verifies the stored hash as Auth0 would
at sign-in (bcrypt and ldap {CRYPT}-free schemes through libcrypt/hashlib, argon2 through
libargon2, pbkdf2 PHC strings, md5/sha* with the salt's position and encoding, hmac);
GET /test/stats; GET /test/dump (no hashes). Prints "READY <port>".
"""
import argparse
import base64
import ctypes
import ctypes.util
import email.parser
import email.policy
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CONN_RE = re.compile(r"^con_[A-Za-z0-9]{16}$")
FIELDS = {"email": str, "email_verified": bool, "user_id": str, "username": str,
          "given_name": str, "family_name": str, "name": str, "nickname": str, "picture": str,
          "blocked": bool, "app_metadata": dict, "user_metadata": dict, "mfa_factors": list,
          "password_hash": str, "custom_password_hash": dict}
MAXLEN = {"given_name": 150, "family_name": 150, "name": 300, "nickname": 300, "username": 128,
          "email": 254}
UPSERTABLE = ["email_verified", "username", "given_name", "family_name", "name", "nickname",
              "picture", "blocked", "app_metadata", "user_metadata"]
ALGORITHMS = ["argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512",
              "pbkdf2", "scrypt"]
DIGEST_LEN = {"md5": 16, "sha": 20, "sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}

_lock = threading.Lock()
_libs = {}


def lib(name):
    with _lock:
        if name not in _libs:
            _libs[name] = ctypes.CDLL(ctypes.util.find_library(name) or "lib%s.so.1" % name)
        return _libs[name]


def crypt(pw, setting):
    c = lib("crypt")
    c.crypt.restype = ctypes.c_char_p
    c.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    with _lock:
        out = c.crypt(pw.encode("utf-8"), setting.encode("ascii"))
    return out.decode("ascii", "replace") if out else None


def argon2_ok(encoded, pw):
    a = lib("argon2")
    a.argon2_verify.restype = ctypes.c_int
    a.argon2_verify.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    kind = {"$argon2d$": 0, "$argon2i$": 1, "$argon2id$": 2}
    for prefix, t in kind.items():
        if encoded.startswith(prefix):
            b = pw.encode("utf-8")
            return a.argon2_verify(encoded.encode("ascii"), b, len(b), t) == 0
    return False


def b64any(s):
    s = s.replace("-", "+").replace("_", "/").replace(".", "+")
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def decode(value, encoding):
    if encoding == "hex":
        return bytes.fromhex(value)
    if encoding == "base64":
        return b64any(value)
    return value.encode("utf-8")


# ---- custom_password_hash: the schema (§3.3) ----

def check_hash(h, errs):
    def bad(code, msg, path):
        errs.append({"code": code, "message": msg, "path": "custom_password_hash" + path})
    if not isinstance(h, dict):
        return bad("INVALID_TYPE", "Expected type object", "")
    alg = h.get("algorithm")
    hv = h.get("hash")
    if alg not in ALGORITHMS:
        return bad("ENUM_MISMATCH", "No enum match for: %s" % alg, ".algorithm")
    if not isinstance(hv, dict) or not isinstance(hv.get("value"), str):
        return bad("OBJECT_REQUIRED", "Missing required property: value", ".hash")
    enc = hv.get("encoding", "utf8")
    if alg in ("argon2", "bcrypt", "ldap", "pbkdf2") and enc != "utf8":
        return bad("ENUM_MISMATCH", "encoding must be utf8 for %s" % alg, ".hash.encoding")
    if alg in ("md4", "md5", "sha1", "sha256", "sha512", "hmac", "scrypt") and enc not in ("hex", "base64"):
        return bad("ENUM_MISMATCH", "encoding must be hex or base64", ".hash.encoding")
    v = hv["value"]
    if alg == "bcrypt" and not re.match(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$", v):
        return bad("PATTERN", "not a bcrypt $2a$/$2b$/$2y$ hash", ".hash.value")
    if alg == "argon2" and not v.startswith(("$argon2i$", "$argon2d$", "$argon2id$")):
        return bad("PATTERN", "not an argon2 PHC string", ".hash.value")
    if alg == "pbkdf2" and not re.match(r"^\$pbkdf2-[a-z0-9-]+\$i=\d+,l=\d+\$[^$]+\$[^$]+$", v):
        return bad("PATTERN", "not a pbkdf2 PHC string", ".hash.value")
    if alg == "ldap":
        m = re.match(r"^\{([A-Za-z0-9]+)\}", v)
        if not m or m.group(1).lower() not in ("md5", "smd5", "sha", "ssha", "sha256", "ssha256",
                                                "sha384", "ssha384", "sha512", "ssha512"):
            return bad("PATTERN", "scheme not supported by the ldap algorithm", ".hash.value")
        if "salt" in h:
            return bad("NOT_PASSED", "salt is not allowed with ldap", ".salt")
    if alg == "hmac" and (not hv.get("digest") or not isinstance(hv.get("key"), dict)):
        return bad("OBJECT_REQUIRED", "hmac needs hash.digest and hash.key", ".hash")
    if "salt" in h:
        s = h["salt"]
        if not isinstance(s, dict) or not isinstance(s.get("value"), str):
            return bad("OBJECT_REQUIRED", "Missing required property: value", ".salt")
        if s.get("position", "prefix") not in ("prefix", "suffix"):
            return bad("ENUM_MISMATCH", "No enum match for position", ".salt.position")
    try:
        if enc in ("hex", "base64"):
            decode(v, enc)
    except (ValueError, TypeError):
        return bad("FORMAT", "hash.value is not %s" % enc, ".hash.value")
    return None


def verify(h, pw):
    """Sign-in: does pw match the stored custom_password_hash h?"""
    alg, hv = h["algorithm"], h["hash"]
    v = hv["value"]
    pwb = pw.encode("utf-8")
    if alg == "bcrypt":
        return hmac.compare_digest((crypt(pw, v) or ""), v)
    if alg == "argon2":
        return argon2_ok(v, pw)
    if alg == "pbkdf2":
        _, name, params, salt, dk = v.split("$")
        it, ln = [int(x.split("=")[1]) for x in params.split(",")]
        got = hashlib.pbkdf2_hmac(name[len("pbkdf2-"):], pwb, b64any(salt), it, ln)
        return hmac.compare_digest(got, b64any(dk))
    if alg == "ldap":
        m = re.match(r"^\{([A-Za-z0-9]+)\}(.*)$", v)
        scheme, raw = m.group(1).lower(), b64any(m.group(2))
        base = scheme[1:] if scheme.startswith("s") and scheme != "sha" else scheme
        name = {"sha": "sha1", "md5": "md5"}.get(base, base)
        n = DIGEST_LEN[base if base != "sha" else "sha"]
        digest, salt = raw[:n], raw[n:]
        return hmac.compare_digest(hashlib.new(name, pwb + salt).digest(), digest)
    want = decode(v, hv.get("encoding"))
    salt = b""
    pos = "prefix"
    if "salt" in h:
        salt = decode(h["salt"]["value"], h["salt"].get("encoding", "utf8"))
        pos = h["salt"].get("position", "prefix")
    data = salt + pwb if pos == "prefix" else pwb + salt
    if alg == "hmac":
        key = decode(hv["key"]["value"], hv["key"].get("encoding", "utf8"))
        return hmac.compare_digest(hmac.new(key, data, hv["digest"]).digest(), want)
    return hmac.compare_digest(hashlib.new(alg, data).digest(), want)


def check_user(u):
    errs = []
    if not isinstance(u, dict):
        return [{"code": "INVALID_TYPE", "message": "Expected type object", "path": ""}]
    for k, v in u.items():
        if k not in FIELDS:
            errs.append({"code": "INVALID_TYPE", "message": "Additional property not allowed",
                         "path": k})
        elif not isinstance(v, FIELDS[k]):
            errs.append({"code": "INVALID_TYPE", "message": "Expected type %s" %
                         FIELDS[k].__name__, "path": k})
        elif isinstance(v, str) and k in MAXLEN and len(v) > MAXLEN[k]:
            errs.append({"code": "MAX_LENGTH", "message": "String is too long (%d chars), "
                         "maximum %d" % (len(v), MAXLEN[k]), "path": k})
    if "email" not in u:
        errs.append({"code": "OBJECT_REQUIRED", "message": "Missing required property: email",
                     "path": "email"})
    elif isinstance(u["email"], str) and not EMAIL_RE.match(u["email"]):
        errs.append({"code": "FORMAT", "message": "Object didn't pass validation for format "
                     "email: %s" % u["email"], "path": "email"})
    if "password_hash" in u and "custom_password_hash" in u:
        errs.append({"code": "NOT_PASSED", "message": "password_hash and custom_password_hash "
                     "are exclusive", "path": "custom_password_hash"})
    if not errs and "custom_password_hash" in u:
        check_hash(u["custom_password_hash"], errs)
    return errs


def redacted(u):
    r = {k: v for k, v in u.items() if k not in ("password_hash", "custom_password_hash")} \
        if isinstance(u, dict) else u
    return r


class Tenant:
    def __init__(self, conn_id, delay):
        self.conn_id, self.delay = conn_id, delay
        self.users = {}   # user_id -> user (with "hash", "logged_in")
        self.jobs = {}
        self.lock = threading.Lock()
        self.stats = {"jobs": 0, "inserted": 0, "updated": 0, "failed": 0, "max_active": 0,
                      "refused_429": 0, "signins": 0}

    def active(self):
        return sum(1 for j in self.jobs.values() if j["status"] == "pending")

    def by_email(self, e):
        return [u for u in self.users.values() if u["email"].lower() == e.lower()]

    def run_job(self, job, users, upsert):
        time.sleep(self.delay)
        summary = {"failed": 0, "updated": 0, "inserted": 0, "total": len(users)}
        errors = []
        for u in users:
            errs = check_user(u)
            with self.lock:
                if not errs:
                    have = self.by_email(u["email"])
                    if have and not upsert:
                        errs = [{"code": "DUPLICATED_USER", "message": "The user already exists.",
                                 "path": "email"}]
                    elif have:
                        cur = have[0]
                        for k in UPSERTABLE:
                            if k in u:
                                cur[k] = u[k]
                        if "custom_password_hash" in u and not cur["logged_in"]:
                            cur["hash"] = u["custom_password_hash"]
                        summary["updated"] += 1
                        self.stats["updated"] += 1
                    else:
                        uid = "auth0|" + (u.get("user_id") or secrets.token_hex(12))
                        rec = {k: v for k, v in u.items()
                               if k not in ("custom_password_hash", "password_hash", "user_id")}
                        rec.update({"user_id": uid, "logged_in": False,
                                    "hash": u.get("custom_password_hash") or (
                                        {"algorithm": "bcrypt", "hash": {"value": u["password_hash"]}}
                                        if "password_hash" in u else None)})
                        self.users[uid] = rec
                        summary["inserted"] += 1
                        self.stats["inserted"] += 1
                if errs:
                    summary["failed"] += 1
                    self.stats["failed"] += 1
                    errors.append({"user": redacted(u), "errors": errs})
        with self.lock:
            job.update({"status": "completed", "summary": summary})
            job["_errors"] = errors


def view(u):
    return {k: v for k, v in u.items() if k not in ("hash", "logged_in")}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, code, obj=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(code)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def err(self, code, error, message, extra=None):
        o = {"statusCode": code, "error": error, "message": message}
        o.update(extra or {})
        self.send(code, o)

    def authed(self):
        h = self.headers.get("Authorization", "")
        if not hmac.compare_digest(h.encode(), ("Bearer " + self.server.token).encode()):
            self.err(401, "Unauthorized", "Invalid token")
            return False
        return True

    def body(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        t = self.server.tenant
        if not self.authed():
            return
        url = urllib.parse.urlparse(self.path)
        p = url.path
        q = urllib.parse.parse_qs(url.query)
        if p == "/test/stats":
            with t.lock:
                return self.send(200, dict(t.stats, users=len(t.users)))
        if p == "/test/dump":
            with t.lock:
                return self.send(200, [view(u) for u in t.users.values()])
        m = re.match(r"^/api/v2/connections/([^/]+)$", p)
        if m:
            if m.group(1) != t.conn_id:
                return self.err(404, "Not Found", "The connection does not exist")
            return self.send(200, {"id": t.conn_id, "name": "Username-Password-Authentication",
                                   "strategy": "auth0"})
        m = re.match(r"^/api/v2/jobs/([^/]+)(/errors)?$", p)
        if m:
            with t.lock:
                job = t.jobs.get(m.group(1))
                if job is None:
                    return self.err(404, "Not Found", "The job does not exist")
                if m.group(2):
                    if job["status"] != "completed" or not job.get("_errors"):
                        return self.send(204)
                    return self.send(200, job["_errors"])
                return self.send(200, {k: v for k, v in job.items() if not k.startswith("_")})
        if p == "/api/v2/users-by-email":
            with t.lock:
                return self.send(200, [view(u) for u in t.by_email(q.get("email", [""])[0])])
        m = re.match(r"^/api/v2/users/([^/]+)$", p)
        if m:
            with t.lock:
                u = t.users.get(urllib.parse.unquote(m.group(1)))
            return self.send(200, view(u)) if u else self.err(404, "Not Found", "The user does not exist.")
        self.err(404, "Not Found", "Not found")

    def do_DELETE(self):
        t = self.server.tenant
        if not self.authed():
            return
        m = re.match(r"^/api/v2/users/([^/]+)$", urllib.parse.urlparse(self.path).path)
        if not m:
            return self.err(404, "Not Found", "Not found")
        with t.lock:
            t.users.pop(urllib.parse.unquote(m.group(1)), None)
        self.send(204)

    def do_POST(self):
        t = self.server.tenant
        raw = self.body()
        if not self.authed():
            return
        p = urllib.parse.urlparse(self.path).path
        if p == "/test/signin":
            req = json.loads(raw or b"{}")
            with t.lock:
                us = t.by_email(req.get("email", ""))
                ok = bool(us) and us[0]["hash"] is not None and verify(us[0]["hash"], req.get("password", ""))
                if ok:
                    us[0]["logged_in"] = True
                    t.stats["signins"] += 1
            return self.send(200, {"ok": ok, "user": bool(us),
                                   "has_password": bool(us) and us[0]["hash"] is not None})
        if p != "/api/v2/jobs/users-imports":
            return self.err(404, "Not Found", "Not found")
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            return self.err(400, "Bad Request", "Payload validation error: 'Expected a multipart "
                            "form' on property users")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
        fields = {}
        for part in msg.iter_parts():
            fields[part.get_param("name", header="content-disposition")] = part.get_payload(decode=True)
        users_raw = fields.get("users")
        conn = (fields.get("connection_id") or b"").decode()
        upsert = (fields.get("upsert") or b"false").decode() == "true"
        if users_raw is None:
            return self.err(400, "Bad Request", "Payload validation error: 'Missing required "
                            "property: users'")
        if not CONN_RE.match(conn):
            return self.err(400, "Bad Request", "Payload validation error: 'String does not match "
                            "pattern ^con_[A-Za-z0-9]{16}$' on property connection_id")
        if conn != t.conn_id:
            return self.err(404, "Not Found", "The connection does not exist")
        if len(users_raw) > self.server.max_file:
            return self.err(413, "Request Entity Too Large", "Payload content length greater "
                            "than maximum allowed: %d" % self.server.max_file)
        try:
            users = json.loads(users_raw)
            if not isinstance(users, list):
                raise ValueError
        except ValueError:
            return self.err(400, "Bad Request", "Users file must be an array")
        with t.lock:
            if t.active() >= 2:
                t.stats["refused_429"] += 1
                return self.err(429, "Too Many Requests", "There are 2 active import users jobs, "
                                "please wait until some of them are finished and try again")
            jid = "job_" + secrets.token_hex(8)
            job = {"status": "pending", "type": "users_import", "id": jid, "connection_id": conn,
                   "upsert": upsert, "send_completion_email":
                   (fields.get("send_completion_email") or b"true").decode() == "true",
                   "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
            if fields.get("external_id"):
                job["external_id"] = fields["external_id"].decode()
            t.jobs[jid] = job
            t.stats["jobs"] += 1
            t.stats["max_active"] = max(t.stats["max_active"], t.active())
        threading.Thread(target=t.run_job, args=(job, users, upsert), daemon=True).start()
        self.send(202, {k: v for k, v in job.items() if not k.startswith("_")})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--connection-id", required=True)
    ap.add_argument("--job-delay", type=float, default=0.3)
    ap.add_argument("--max-file", type=int, default=500 * 1024)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.token = open(a.token_file).read().strip()
    srv.max_file = a.max_file
    srv.tenant = Tenant(a.connection_id, a.job_delay)
    print("READY %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
