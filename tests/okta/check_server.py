#!/usr/bin/env python3
"""check_server.py: the client side of tests/intg/test_okta_creds.sh and test_okta_run.sh.

    check_server.py e2e PORT TOKEN_FILE XLATE_JSONL GEN_PW EXTRA_PW CANARY_DN
        Creates every user of credxlate's output at okta_server.py (hash or hook), signs each
        in with its original password and compares with the expected result. Prints totals.
    check_server.py server PORT RL_PORT FAULT_PORT TOKEN_FILE
        Checks the contract server's own behaviour (401, 411, E0000001, hash field rules,
        pagination, groups, lifecycle, 429, faults). Prints a summary.
    check_server.py signin PORT TOKEN_FILE GEN_PW EXTRA_PW CANARY_DN
        After `dirmig run`: every user signs in with its original password (VERIFIED), needs
        the hook, or (malformed hash) does not exist; never a user without hash or hook.
    check_server.py bulk PORT TOKEN_FILE SOURCE_LDIF PEOPLE_BASE
        After `dirmig run`: the target holds exactly the source's users and groups, each
        group exactly its migrated user members.

Exit 0 when every check passes; failures go to stderr without passwords or hashes.
"""

import base64
import hashlib
import http.client
import json
import socket
import sys
import time
import urllib.parse


class Client:
    def __init__(self, port, token, timeout=10):
        self.token = token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.conn.request(method, path, body=data, headers={
            "Authorization": "SSWS " + self.token, "Accept": "application/json",
            "Content-Type": "application/json"})
        r = self.conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None), r


def e2e(port, tokf, xlate, genpw, extrapw, canary):
    c = Client(int(port), open(tokf).read().strip())
    pws, want = {}, {}
    # gen_users.py rotates SSHA SSHA512 CRYPT6 CRYPT2B PBKDF2-SHA256(1000 it) ARGON2 CLEAR
    gen_expect = ["VERIFIED", "VERIFIED", "NEEDS_HOOK", "VERIFIED", "NEEDS_HOOK", "NEEDS_HOOK",
                  "VERIFIED"]
    for line in open(genpw):
        dn, pw = line.rstrip("\n").split("\t")
        pws[dn] = pw
        want[dn] = "VERIFIED" if dn == canary else gen_expect[int(dn.split(",")[0][8:]) % 7]
    for line in open(extrapw):
        dn, pw, w = line.rstrip("\n").split("\t")
        pws[dn], want[dn] = pw, w
    fails, counts = [], {}
    for line in open(xlate):
        rec = json.loads(line)
        dn = rec["dn"]
        if dn not in want:
            fails.append("%s: not a generated user" % dn)
            continue
        uid = dn.split(",")[0][4:]
        login = uid + "@example.org"
        if rec["outcome"] == "error":
            got = "ERROR"
            if not rec["error"] or "malformed" not in rec["error"] or pws[dn] in rec["error"]:
                fails.append("%s: bad error message" % dn)
            if rec["hash"] is not None:
                fails.append("%s: error with a hash" % dn)
        else:
            if rec["outcome"] == "import":
                cred = {"hash": rec["hash"]}
            else:
                cred = {"hook": {"type": "default"}}
                if not rec.get("reason"):
                    fails.append("%s: hook without a reason" % dn)
            st, body, _ = c.call("POST", "/api/v1/users?activate=true",
                                 {"profile": {"login": login, "email": login,
                                              "firstName": "Test", "lastName": uid},
                                  "credentials": {"password": cred}})
            if st != 200:
                fails.append("%s (%s): create %d %s" % (dn, rec["scheme"], st,
                                                        body.get("errorCauses")))
                continue
            st, body, _ = c.call("POST", "/test/signin", {"login": login, "password": pws[dn]})
            got = body["result"]
            if got == "VERIFIED":
                st, body, _ = c.call("POST", "/test/signin",
                                     {"login": login, "password": pws[dn] + "x"})
                if body["result"] != "WRONG_PASSWORD":
                    fails.append("%s: a wrong password gave %s" % (dn, body["result"]))
        counts[got] = counts.get(got, 0) + 1
        if got != want[dn]:
            fails.append("%s (%s): %s, want %s" % (dn, rec["scheme"], got, want[dn]))
        want.pop(dn)
    if want:
        fails.append("not translated: %s" % sorted(want))
    st, body, _ = c.call("POST", "/test/signin", {"login": "nobody@example.org", "password": "x"})
    if body["result"] != "NO_USER":
        fails.append("unknown login: %s" % body)
    if counts.get("ERROR") != 2 or counts.get("VERIFIED", 0) < 20 or \
            counts.get("NEEDS_HOOK", 0) < 10:
        fails.append("unexpected totals %s" % counts)
    st, stats, _ = c.call("GET", "/test/stats")
    print(json.dumps({"counts": counts, "users": stats["users"]}))
    return fails


def server(port, rl_port, fault_port, tokf):
    port, rl_port, fault_port = int(port), int(rl_port), int(fault_port)
    tok = open(tokf).read().strip()
    fails = []

    def check(cond, what):
        if not cond:
            fails.append(what)

    def user(i, **kw):
        login = "bulk%05d@example.com" % i
        b = {"profile": {"login": login, "email": login, "firstName": "Bulk",
                         "lastName": str(i)}}
        b.update(kw)
        return b

    c = Client(port, tok)
    st, stats, _ = c.call("GET", "/test/stats")
    base = stats["users"]  # users the e2e step created
    # 401 on a wrong token, with the rate-limit and request-id headers
    st, body, r = Client(port, "wrong").call("GET", "/api/v1/users")
    check(st == 401 and body["errorCode"] == "E0000011", "wrong token: %d %s" % (st, body))
    check(r.getheader("X-Okta-Request-Id") and r.getheader("X-Rate-Limit-Reset"),
          "headers on 401")
    # 411: POST without body and without Content-Length
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("POST /api/v1/users/x/lifecycle/deactivate HTTP/1.1\r\nHost: x\r\n"
               "Authorization: SSWS %s\r\n\r\n" % tok).encode())
    resp = s.recv(4096).decode("latin-1")
    s.close()
    check(resp.startswith("HTTP/1.1 411"), "no Content-Length: %s" % resp[:40])
    # duplicate login (case-insensitive) -> E0000001 with the cause
    st, body, _ = c.call("POST", "/api/v1/users",
                         user(0, credentials={"password": {"hook": {"type": "default"}}}))
    check(st == 200, "create bulk0: %d %s" % (st, body))
    dup = user(0)
    dup["profile"]["login"] = dup["profile"]["login"].upper()
    st, body, _ = c.call("POST", "/api/v1/users", dup)
    check(st == 400 and body["errorCode"] == "E0000001" and
          "already exists" in body["errorCauses"][0]["errorSummary"],
          "duplicate: %d %s" % (st, body))
    # hash field rules of Okta's import (algorithm, value, salt, saltOrder, workFactor)
    bads = [({"algorithm": "BCRYPT", "workFactor": 21, "salt": "a" * 22, "value": "b" * 31},
             "workFactor"),
            ({"algorithm": "BCRYPT", "workFactor": 10, "salt": "a" * 21, "value": "b" * 31},
             "salt"),
            ({"algorithm": "PBKDF2", "salt": "AAAA", "value": "A" * 43 + "=",
              "iterationCount": 4095, "keySize": 32, "digestAlgorithm": "SHA256_HMAC"},
             "iterationCount"),
            ({"algorithm": "PBKDF2", "salt": "AAAA", "value": "A" * 43 + "=",
              "iterationCount": 4096, "keySize": 32, "digestAlgorithm": "SHA1_HMAC"},
             "digestAlgorithm"),
            ({"algorithm": "SHA-1", "salt": "AAAA", "saltOrder": "MIDDLE",
              "value": "5en6G6MezRroT3XKqkdPOmY/BfQ="}, "saltOrder"),
            ({"algorithm": "SHA-384", "value": "x"}, "algorithm"),
            ({"algorithm": "SHA-256", "value": "5en6G6MezRroT3XKqkdPOmY/BfQ="}, "value")]
    for bad, why in bads:
        st, body, _ = c.call("POST", "/api/v1/users",
                             user(99999, credentials={"password": {"hash": bad}}))
        check(st == 400 and body["errorCode"] == "E0000001" and
              why in json.dumps(body["errorCauses"]), "bad hash %s: %d %s" % (why, st, body))
    st, body, _ = c.call("POST", "/api/v1/users?activate=true",
                         user(99998, credentials={"password": {"hook": {"type": "x"}}}))
    check(st == 400, "hook type must be default")
    # saltOrder PREFIX (the contract's examples) and a plain password value sign in too
    salt = b"MySalt"
    h = {"algorithm": "SHA-256", "salt": base64.b64encode(salt).decode(), "saltOrder": "PREFIX",
         "value": base64.b64encode(hashlib.sha256(salt + b"pre-pw").digest()).decode()}
    for i, pw in ((99990, {"hash": h}), (99991, {"value": "plain-Pw-1"})):
        st, body, _ = c.call("POST", "/api/v1/users", user(i, credentials={"password": pw}))
        check(st == 200, "create %d: %d %s" % (i, st, body))
    for i, pw, want in ((99990, "pre-pw", "VERIFIED"), (99990, "pre-pwx", "WRONG_PASSWORD"),
                        (99991, "plain-Pw-1", "VERIFIED"), (0, "x", "NEEDS_HOOK")):
        st, body, _ = c.call("POST", "/test/signin",
                             {"login": "bulk%05d@example.com" % i, "password": pw})
        check(body["result"] == want, "signin %d: %s, want %s" % (i, body["result"], want))
    for i in (99990, 99991):  # out of the pagination count below
        for _ in range(2):
            st, _, _ = c.call("DELETE", "/api/v1/users/bulk%05d@example.com" % i)
    st, body, _ = c.call("POST", "/api/v1/users", {"profile": {
        "login": "ab", "email": "x@y.z", "firstName": "\U0001F600", "lastName": "L"}})
    causes = json.dumps(body.get("errorCauses"))
    check(st == 400 and "login" in causes and "firstName" in causes,
          "profile rules: %s" % body)
    # > 1000 users, listed 150 at a time through Link rel="next"
    for i in range(1, 1101):
        st, body, _ = c.call("POST", "/api/v1/users?activate=false", user(i))
        if st != 200:
            fails.append("bulk create %d: %d" % (i, st))
            break
    path, seen, pages = "/api/v1/users?limit=150", [], 0
    while path:
        st, body, r = c.call("GET", path)
        check(st == 200, "list page: %d" % st)
        links = r.headers.get_all("Link") or []
        nxt = None
        for part in links:
            url, _, rel = part.partition("; ")
            if rel == 'rel="next"':
                nxt = url.strip("<>")
        check(any('rel="self"' in l for l in links), "no self link")
        seen += [u["id"] for u in body]
        pages += 1
        path = urllib.parse.urlsplit(nxt)._replace(scheme="", netloc="").geturl() if nxt else None
    total = base + 1101
    check(len(seen) == total and len(set(seen)) == total and pages == (total + 149) // 150,
          "pagination: %d users, %d unique, %d pages" % (len(seen), len(set(seen)), pages))
    # search / get by login / partial update
    q = urllib.parse.quote('profile.login eq "BULK00042@example.com"')
    st, body, _ = c.call("GET", "/api/v1/users?search=" + q)
    check(st == 200 and len(body) == 1 and body[0]["profile"]["lastName"] == "42", "search eq")
    st, body, _ = c.call("GET", "/api/v1/users?filter=" + q)
    check(st == 200 and len(body) == 0, "filter is case-sensitive")
    st, body, _ = c.call("GET", "/api/v1/users/" + urllib.parse.quote("bulk00043@example.com"))
    check(st == 200 and body["status"] == "STAGED", "get by login")
    uid43 = body["id"]
    st, body, _ = c.call("POST", "/api/v1/users/" + uid43, {"profile": {"department": "R&D"}})
    check(st == 200 and body["profile"]["department"] == "R&D" and
          body["profile"]["lastName"] == "43", "partial update")
    # groups: create, members, paged member listing, remove
    st, g, _ = c.call("POST", "/api/v1/groups", {"profile": {"name": "West", "description": "d"}})
    check(st == 200, "group create")
    st, body, _ = c.call("POST", "/api/v1/groups", {"profile": {"name": "west"}})
    check(st == 400 and body["errorCode"] == "E0000001", "duplicate group")
    members = seen[base + 200:base + 320]  # bulk00200..bulk00319
    for u in members:
        st, _, _ = c.call("PUT", "/api/v1/groups/%s/users/%s" % (g["id"], u))
        check(st == 204, "add member: %d" % st)
    member_ids, path = [], "/api/v1/groups/%s/users?limit=50" % g["id"]
    while path:
        st, body, r = c.call("GET", path)
        member_ids += [u["id"] for u in body]
        nxt = [l for l in (r.headers.get_all("Link") or []) if 'rel="next"' in l]
        path = None
        if nxt:
            url = nxt[0].partition("; ")[0].strip("<>")
            path = urllib.parse.urlsplit(url)._replace(scheme="", netloc="").geturl()
    check(member_ids == members, "member pages: %d" % len(member_ids))
    st, _, _ = c.call("DELETE", "/api/v1/groups/%s/users/%s" % (g["id"], members[0]))
    check(st == 204, "remove member")
    st, body, _ = c.call("GET", "/api/v1/groups?q=we")
    check(st == 200 and len(body) == 1, "group q")
    st, body, _ = c.call("GET", "/api/v1/groups?search=" +
                         urllib.parse.quote('profile.name eq "WEST"'))
    check(st == 200 and [x["id"] for x in body] == [g["id"]], "group search")
    st, body, _ = c.call("GET", "/api/v1/users/%s/groups" % members[1])
    check(st == 200 and [x["id"] for x in body] == [g["id"]], "user groups")
    st, body, _ = c.call("POST", "/api/v1/users/%s/lifecycle/activate?sendEmail=false"
                         % members[1])
    st2, body, _ = c.call("GET", "/api/v1/users/" + members[1])
    check(st == 200 and body["status"] == "ACTIVE", "activate")
    st, body, _ = c.call("POST", "/api/v1/users/%s/lifecycle/activate" % members[1])
    check(st == 403 and body["errorCode"] == "E0000016", "activate an active user")
    st, body, _ = c.call("GET", "/api/v1/users/00unosuchuser")
    check(st == 404 and body["errorCode"] == "E0000007", "unknown user")
    # lifecycle: DELETE deactivates first, then deletes
    st, _, _ = c.call("DELETE", "/api/v1/users/" + uid43)
    st2, body, _ = c.call("GET", "/api/v1/users/" + uid43)
    check(st == 204 and body["status"] == "DEPROVISIONED", "first delete deactivates")
    st, _, _ = c.call("DELETE", "/api/v1/users/" + uid43)
    st2, body, _ = c.call("GET", "/api/v1/users/" + uid43)
    check(st == 204 and st2 == 404 and body["errorCode"] == "E0000007", "second delete deletes")
    # rate limit: 30/min, then 429 E0000047 with Reset in the next minute
    rl = Client(rl_port, tok)
    codes, last = [], None
    for _ in range(35):
        st, body, r = rl.call("GET", "/api/v1/users?limit=1")
        codes.append(st)
        last = (body, r.getheader("X-Rate-Limit-Remaining"), r.getheader("X-Rate-Limit-Reset"),
                r.getheader("X-Rate-Limit-Limit"))
    reset = int(last[2])
    check(codes[:30] == [200] * 30 and codes[30:] == [429] * 5, "rate limit codes %s" % codes)
    check(last[0]["errorCode"] == "E0000047" and last[1] == "0" and last[3] == "30" and
          time.time() < reset <= time.time() + 62, "429 headers %s" % (last[1:],))
    # faults: 5xx, drops and stalls (past a 1 s client timeout), all counted by the server
    got = {"ok": 0, "5xx": 0, "drop": 0, "timeout": 0}
    for _ in range(60):
        fc = Client(fault_port, tok, timeout=1.0)
        try:
            st, body, _ = fc.call("GET", "/api/v1/users")
            got["ok" if st == 200 else "5xx" if st in (500, 503) else "other"] = \
                got.get("ok" if st == 200 else "5xx" if st in (500, 503) else "other", 0) + 1
        except socket.timeout:
            got["timeout"] += 1
        except (http.client.RemoteDisconnected, ConnectionError):
            got["drop"] += 1
        fc.conn.close()
    st, fstats, _ = Client(fault_port, tok).call("GET", "/test/stats")
    check(got["5xx"] == fstats["faults_5xx"] and got["timeout"] == fstats["faults_stall"] and
          got["drop"] == fstats["faults_drop"] and min(got.values()) > 0,
          "faults %s vs %s" % (got, fstats))
    st, stats, _ = c.call("GET", "/test/stats")
    check(stats["duplicates"] >= 1 and stats["groups"] == 1 and stats["memberships"] == 119,
          "stats %s" % stats)
    print(json.dumps({"pages": pages, "users": len(seen), "faults": got, "stats": stats}))
    return fails


GEN_EXPECT = ["VERIFIED", "VERIFIED", "NEEDS_HOOK", "VERIFIED", "NEEDS_HOOK", "NEEDS_HOOK",
              "VERIFIED"]  # gen_users.py rotation: SSHA SSHA512 CRYPT6 CRYPT2B PBKDF2(1000) ARGON2 CLEAR


def signin(port, tokf, genpw, extrapw, canary):
    """Users migrated by `dirmig run`: each signs in with its original password (or needs
    the hook, or was refused by dirmig for a malformed hash and does not exist)."""
    c = Client(int(port), open(tokf).read().strip())
    want = {}
    for line in open(genpw):
        dn, pw = line.rstrip("\n").split("\t")
        uid = dn.split(",")[0][4:]
        w = "VERIFIED" if dn == canary else GEN_EXPECT[int(uid[4:]) % 7]
        want[uid + "@example.org"] = (pw, w)
    for line in open(extrapw):
        dn, pw, w = line.rstrip("\n").split("\t")
        want[dn.split(",")[0][4:] + "@example.org"] = (pw, w)
    st, dump, _ = c.call("GET", "/test/dump")
    fails, counts = [], {}
    for login, (pw, w) in sorted(want.items()):
        st, body, _ = c.call("POST", "/test/signin", {"login": login, "password": pw})
        got = body["result"]
        if w == "ERROR":
            w = "NO_USER"  # refused by dirmig, never sent
        counts[got] = counts.get(got, 0) + 1
        if got != w:
            fails.append("%s: %s, want %s" % (login, got, w))
        if got == "VERIFIED":
            st, body, _ = c.call("POST", "/test/signin", {"login": login, "password": pw + "x"})
            if body["result"] != "WRONG_PASSWORD":
                fails.append("%s: a wrong password gave %s" % (login, body["result"]))
        u = dump["users"].get(login)
        if u is not None and u["credential"] not in ("hash", "hook"):
            fails.append("%s: created with credential %s (never neither)" % (login, u["credential"]))
        if u is not None and u["status"] != "ACTIVE":
            fails.append("%s: status %s" % (login, u["status"]))
    extra = set(dump["users"]) - set(want)
    if extra:
        fails.append("users nobody asked for: %s" % sorted(extra))
    print(json.dumps({"signin": counts, "users": dump["user_count"]}))
    return fails


def parse_ldif(path):
    """Entries of an LDIF file as (dn, {attr_lower: [values]}) (no folding, no base64
    beyond what gen_users.py writes for these attributes)."""
    out, dn, attrs = [], None, {}
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            if dn is not None:
                out.append((dn, attrs))
            dn, attrs = None, {}
            continue
        k, _, v = line.partition(": ")
        if k == "dn":
            dn = v
        elif not k.endswith(":"):
            attrs.setdefault(k.lower(), []).append(v)
    if dn is not None:
        out.append((dn, attrs))
    return out


def bulk(port, tokf, ldif, people_base):
    """The target after `dirmig run`: exactly the source's users (by login = first mail) and
    groups (by cn), every group's members equal to its user members in the source, each
    once; everyone with a hash or the hook."""
    c = Client(int(port), open(tokf).read().strip(), timeout=60)
    entries = parse_ldif(ldif)
    users = {}
    for dn, a in entries:
        if dn.lower().endswith("," + people_base.lower()) and "mail" in a:
            users[dn.lower()] = a["mail"][0]
    groups = {}
    for dn, a in entries:
        if "groupofnames" in [o.lower() for o in a.get("objectclass", [])] or \
                "groupofuniquenames" in [o.lower() for o in a.get("objectclass", [])]:
            ms = a.get("member", []) + a.get("uniquemember", [])
            groups[a["cn"][0]] = sorted(users[m.lower()] for m in ms if m.lower() in users)
    st, dump, _ = c.call("GET", "/test/dump")
    fails = []
    if dump["user_count"] != len(users) or set(dump["users"]) != set(users.values()):
        fails.append("users: %d at the target, %d in the source; missing %s; extra %s" % (
            dump["user_count"], len(users), sorted(set(users.values()) - set(dump["users"]))[:5],
            sorted(set(dump["users"]) - set(users.values()))[:5]))
    for login, u in dump["users"].items():
        if u["credential"] not in ("hash", "hook"):
            fails.append("%s: credential %s" % (login, u["credential"]))
    nmem = 0
    for name, want in groups.items():
        g = dump["groups"].get(name)
        if g is None:
            fails.append("group %s missing" % name)
            continue
        got = sorted(g["members"])
        nmem += len(got)
        if got != want:
            fails.append("group %s: %d members, want %d (missing %s, extra %s)" % (
                name, len(got), len(want), sorted(set(want) - set(got))[:3],
                sorted(set(got) - set(want))[:3]))
    posix = [dn for dn, a in entries
             if "posixgroup" in [o.lower() for o in a.get("objectclass", [])]]
    if dump["group_count"] != len(groups) + len(posix):
        fails.append("groups: %d at the target, want %d" % (dump["group_count"],
                                                          len(groups) + len(posix)))
    print(json.dumps({"users": dump["user_count"], "groups": dump["group_count"],
                      "memberships_checked": nmem}))
    return fails


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "e2e" and len(sys.argv) == 8:
        fails = e2e(*sys.argv[2:])
    elif len(sys.argv) >= 2 and sys.argv[1] == "signin" and len(sys.argv) == 7:
        fails = signin(*sys.argv[2:])
    elif len(sys.argv) >= 2 and sys.argv[1] == "bulk" and len(sys.argv) == 6:
        fails = bulk(*sys.argv[2:])
    elif len(sys.argv) >= 2 and sys.argv[1] == "server" and len(sys.argv) == 6:
        fails = server(*sys.argv[2:])
    else:
        sys.exit(__doc__)
    for f in fails:
        sys.stderr.write("check_server.py: %s\n" % f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
