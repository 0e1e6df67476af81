#!/usr/bin/env python3
# tests/harness/ad_check.py: compares what dirmig wrote to a slapd target (from the AD
# fixture, map schema/maps/ad-to-inetorgperson.json) with what the test created.
#
#   ad_check.py users EXPECTED.json TARGET.ldif LDB.ldif [SAM_REGEX]
#       every fixture user (whose sAMAccountName matches SAM_REGEX) exists once in the
#       target with its cn and employeeType (= dirmigAccountState); employeeNumber and
#       departmentNumber equal objectGUID / objectSid as ldbsearch prints them (LDB.ldif)
#   ad_check.py groups EXPECTED.json TARGET.ldif preserve|flatten [GROUP...]
#       every fixture group (or those named) exists with exactly the expected members
#       (preserve: direct users + primary-group users + nested groups; flatten: every
#       transitive user, cycles included)
# Prints one line per problem (at most 20) and exits 1 if any.
import base64
import re
import sys


def parse_ldif_raw(path):
    """LDIF blocks as {lowercased name: [values]} (folded lines joined, base64 decoded)."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    text = re.sub(r"\n ", "", text)
    entries = []
    for block in text.split("\n\n"):
        cur = {}
        for line in block.split("\n"):
            if not line or line.startswith("#"):
                continue
            name, _, val = line.partition(":")
            if val.startswith(":"):
                val = base64.b64decode(val[1:].strip()).decode("utf-8", "replace")
            else:
                val = val.strip()
            cur.setdefault(name.lower(), []).append(val)
        if cur:
            entries.append(cur)
    return entries


problems = []


def bad(msg):
    problems.append(msg)


def check_users(exp, target, ldb, rx):
    by_uid = {}
    for e in target:
        for u in e.get("uid", []):
            if u in by_uid:
                bad("uid %s twice in the target" % u)
            by_uid[u] = e
    ids = {}
    for e in ldb:
        sam = e.get("samaccountname", [None])[0]
        if sam:
            ids[sam] = (e.get("objectguid", [None])[0], e.get("objectsid", [None])[0])
    n = 0
    for sam, u in sorted(exp["users"].items()):
        if rx and not re.fullmatch(rx, sam):
            continue
        n += 1
        e = by_uid.get(sam)
        if e is None:
            bad("user %s missing in the target" % sam)
            continue
        if e.get("cn") != [u["cn"]]:
            bad("user %s: cn %r, want %r" % (sam, e.get("cn"), u["cn"]))
        if e.get("employeetype") != [u["state"]]:
            bad("user %s: state %r, want %r" % (sam, e.get("employeetype"), u["state"]))
        g, s = ids.get(sam, (None, None))
        if g is None or e.get("employeenumber") != [g]:
            bad("user %s: objectGUID %r, ldbsearch says %r" % (sam, e.get("employeenumber"), g))
        if s is None or e.get("departmentnumber") != [s]:
            bad("user %s: objectSid %r, ldbsearch says %r" % (sam, e.get("departmentnumber"), s))
        if e.get("mail") != ["%s@example.test" % sam]:
            bad("user %s: mail %r" % (sam, e.get("mail")))
    extra = set(by_uid) - set(k for k in exp["users"] if not rx or re.fullmatch(rx, k))
    if extra:
        bad("unexpected users in the target: %s" % sorted(extra)[:5])
    print("ad_check: %d users compared" % n)


def rdn_value(dn):
    m = re.match(r"(?i)(cn|uid)=((?:[^,\\]|\\.)*)", dn)
    v = m.group(2)
    return re.sub(r"\\([0-9A-Fa-f]{2}|.)",
                  lambda x: chr(int(x.group(1), 16)) if len(x.group(1)) == 2 else x.group(1), v)


def check_groups(exp, target, mode, only):
    cn_to_sam = {u["cn"]: sam for sam, u in exp["users"].items()}
    by_cn = {e["cn"][0]: e for e in target if "cn" in e}
    want_groups = only or sorted(exp["groups"])

    def flat(g, seen):
        if g in seen:
            return set()
        seen.add(g)
        out = set(exp["groups"][g]["users"])
        for n in exp["groups"][g]["groups"]:
            out |= flat(n, seen)
        return out

    for g in want_groups:
        e = by_cn.get(g)
        if e is None:
            bad("group %s missing in the target" % g)
            continue
        got_users, got_groups = set(), set()
        for m in e.get("member", []):
            v = rdn_value(m)
            if v in cn_to_sam:
                got_users.add(cn_to_sam[v])
            else:
                got_groups.add(v)
        if mode == "flatten":
            want_u, want_g = flat(g, set()), set()
        else:
            want_u, want_g = set(exp["groups"][g]["users"]), set(exp["groups"][g]["groups"])
        if got_users != want_u:
            bad("group %s: %d user members, want %d (missing %s, extra %s)" % (
                g, len(got_users), len(want_u), sorted(want_u - got_users)[:3],
                sorted(got_users - want_u)[:3]))
        if got_groups != want_g:
            bad("group %s: group members %s, want %s" % (g, sorted(got_groups), sorted(want_g)))
    print("ad_check: %d groups compared (%s)" % (len(want_groups), mode))


def main():
    import json
    what, exp_path, tgt = sys.argv[1:4]
    exp = json.load(open(exp_path, encoding="utf-8"))
    target = parse_ldif_raw(tgt)
    if what == "users":
        ldb = parse_ldif_raw(sys.argv[4])
        check_users(exp, target, ldb, sys.argv[5] if len(sys.argv) > 5 else None)
    else:
        check_groups(exp, target, sys.argv[4], sys.argv[5:])
    for p in problems[:20]:
        print("ad_check: " + p)
    if len(problems) > 20:
        print("ad_check: ... %d problems in all" % len(problems))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
