#!/usr/bin/env python3
"""check_auth0.py PORT TOKEN_FILE RUN_LOG SOURCE_LDIF PWFILE...: every user of the password lists
("DN<TAB>password[<TAB>...]", uid from the DN, mail uid@example.org) either signs in at the
Auth0 contract server with its original password, or was left by dirmig to the lazy
migration (the run log says so for that DN) and is absent, or failed in dirmig (malformed
hash, refused record: the log names it). Which of the three is expected follows from the
user's scheme, decided here independently from Auth0's documented algorithms (a third
column ERROR in a password list marks a user dirmig must refuse). Prints a summary; exits 1
on the first mismatch."""
import json, re, sys, urllib.request

import base64
port, tok, runlog, ldif = sys.argv[1], open(sys.argv[2]).read().strip(), sys.argv[3], sys.argv[4]
log = open(runlog, encoding="utf-8", errors="replace").read()
pwvals = {}
for rec in open(ldif, encoding="utf-8").read().replace("\n ", "").split("\n\n"):
    dn = None
    for l in rec.split("\n"):
        if l.startswith("dn: "):
            dn = l[4:]
        elif l.lower().startswith("userpassword:: "):
            pwvals[dn] = base64.b64decode(l.split(":: ", 1)[1]).decode("utf-8", "replace")
        elif l.lower().startswith("userpassword: "):
            pwvals[dn] = l.split(": ", 1)[1]

# Auth0's custom_password_hash algorithms (its import schema): what an LDAP value becomes
IMPORTABLE = re.compile(r"^(\{(S?SHA(256|384|512)?|S?MD5|PBKDF2(-SHA(1|256|512))?|ARGON2)\}|"
                        r"\{CRYPT\}\$2[aby]\$)", re.I)

def expected(dn, mark):
    v = pwvals.get(dn)
    if mark == "ERROR":
        return "failed"
    if v is None or v == "":
        return "lazy"
    if not v.startswith("{"):
        return "signin"  # cleartext: hashed by dirmig
    return "signin" if IMPORTABLE.match(v) else "lazy"

def call(path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%s%s" % (port, path),
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + tok,
                                          "Content-Type": "application/json"},
                                 method="POST" if body is not None else "GET")
    return json.load(urllib.request.urlopen(req))

counts = {"signin": 0, "lazy": 0, "failed": 0}
for f in sys.argv[4:]:
    for line in open(f):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 2:
            continue
        dn, pw = parts[0], parts[1]
        uid = dn.split(",")[0].split("=", 1)[1]
        mail = "canary@example.org" if uid == "canary" else uid + "@example.org"
        lazy = re.search(r"user %s: left to the target's lazy migration" % re.escape(dn), log)
        failed = re.search(r"user (%s|%s) failed" % (re.escape(dn), re.escape(mail)), log)
        want = expected(dn, parts[2] if len(parts) > 2 else "")
        got = "lazy" if lazy else "failed" if failed else "signin"
        assert got == want, "%s: %s, want %s" % (uid, got, want)
        r = call("/test/signin", {"email": mail, "password": pw})
        if lazy:
            assert not r["user"], "%s was left to lazy migration but is at the target" % uid
            counts["lazy"] += 1
        elif failed:
            assert not r["user"], "%s failed but is at the target" % uid
            counts["failed"] += 1
        else:
            assert r["user"], "%s is neither imported, nor lazy, nor failed" % uid
            assert r["ok"], "%s does not sign in with its original password" % uid
            counts["signin"] += 1
print("%(signin)d users sign in with their original password, %(lazy)d are left to the "
      "lazy migration (hook), %(failed)d failed in dirmig" % counts)
