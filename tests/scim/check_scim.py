#!/usr/bin/env python3
"""check_scim.py: compares a SCIM server's resources (GET /test/dump) with the source LDIF.

    check_scim.py DUMP.json SOURCE.ldif PEOPLE_BASE GROUPS_BASE [--skip-uid UID]...
                  [--disabled-uid UID]...

Every inetOrgPerson under PEOPLE_BASE must be exactly one User (by userName = uid), no
other User may exist, every group under GROUPS_BASE exactly one Group (displayName = cn),
and each group's members must be exactly the ids of its source members that were migrated
(users by uid, groups by cn; members outside the scopes left out), each once; a user
disabled in the source (--disabled-uid) is there with active false and in no group (users
disabled in the source leave their groups, leavers.remove_from_groups). Prints a
one-line summary; exits 1 with the first differences otherwise.
"""
import base64
import json
import sys


def records(path):
    text = open(path, encoding="utf-8").read().replace("\n ", "")
    for rec in text.split("\n\n"):
        attrs = {}
        dn = None
        for line in rec.split("\n"):
            if not line or line.startswith("#") or ":" not in line:
                continue
            name, _, val = line.partition(":")
            if val.startswith(":"):
                val = base64.b64decode(val[1:].strip()).decode("utf-8", "replace")
            else:
                val = val.strip()
            if name.lower() == "dn":
                dn = val
            else:
                attrs.setdefault(name.lower(), []).append(val)
        if dn:
            yield dn, attrs


def main():
    dump = json.load(open(sys.argv[1]))
    src, people, groups = sys.argv[2], sys.argv[3].lower(), sys.argv[4].lower()
    skip = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--skip-uid"]
    disabled = [sys.argv[i + 1].lower() for i, a in enumerate(sys.argv) if a == "--disabled-uid"]
    problems = []
    users, grps = {}, {}
    for dn, a in records(src):
        low = dn.lower()
        oc = [o.lower() for o in a.get("objectclass", [])]
        if low.endswith("," + people) and "inetorgperson" in oc and a.get("uid", [""])[0] not in skip:
            users[low] = a["uid"][0]
        elif low.endswith("," + groups) and ("groupofnames" in oc or "groupofuniquenames" in oc
                                             or "posixgroup" in oc):
            grps[low] = (a["cn"][0], a.get("member", []) + a.get("uniquemember", []))
    by_name = {}
    for u in dump["Users"]:
        by_name.setdefault(u["userName"].lower(), []).append(u)
    for name, lst in by_name.items():
        if len(lst) > 1:
            problems.append("user %s exists %d times" % (name, len(lst)))
    want = {u.lower() for u in users.values()}
    for name in sorted(want - set(by_name)):
        problems.append("user %s is missing" % name)
    for name in sorted(set(by_name) - want):
        problems.append("user %s should not be there" % name)
    gby = {}
    for g in dump["Groups"]:
        gby.setdefault(g["displayName"].lower(), []).append(g)
    uid_id = {n: lst[0]["id"] for n, lst in by_name.items()}
    gid_id = {n: lst[0]["id"] for n, lst in gby.items()}
    nmembers = 0
    for gdn, (cn, members) in grps.items():
        lst = gby.get(cn.lower(), [])
        if len(lst) != 1:
            problems.append("group %s exists %d times" % (cn, len(lst)))
            continue
        expect = set()
        for m in members:
            ml = m.lower()
            if ml in users and users[ml].lower() not in disabled:
                expect.add(uid_id.get(users[ml].lower()))
            elif ml in grps:
                expect.add(gid_id.get(grps[ml][0].lower()))
        have = [m["value"] for m in lst[0].get("members", [])]
        if len(have) != len(set(have)):
            problems.append("group %s has a member twice" % cn)
        if set(have) != expect:
            problems.append("group %s: %d members, want %d (%d missing, %d extra)" % (
                cn, len(set(have)), len(expect), len(expect - set(have)), len(set(have) - expect)))
        nmembers += len(have)
    for d in disabled:
        u = by_name.get(d, [{}])[0]
        if u.get("active") is not False:
            problems.append("user %s is not active: false" % d)
    if len(gby) != len(grps):
        problems.append("%d groups at the target, %d in the source" % (len(gby), len(grps)))
    if problems:
        print("\n".join(problems[:20]))
        return 1
    print("%d users, %d groups, %d memberships: each exactly once" % (len(by_name), len(gby),
                                                                      nmembers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
