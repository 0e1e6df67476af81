#!/usr/bin/env python3
# tests/harness/ad_fixture.py: the Active Directory fixture of the AD integration tests.
#
#   ad_fixture.py gen OUTDIR BASE NUSERS PWSEED
#       writes OUTDIR/users.ldif (OUs and users, some with unicodePwd), OUTDIR/groups.ldif,
#       OUTDIR/nest.ldif (modify: groups in groups),
#       OUTDIR/passwords.tsv (sAMAccountName<TAB>password), OUTDIR/expected.json
#   ad_fixture.py pgid OUTDIR BASE SIDB64
#       writes OUTDIR/pgid.ldif: the users whose primary group becomes g04 (whose objectSid
#       is SIDB64, base64 as ldapsearch prints it), then removes them from g04's member
#       (AD keeps the primary group out of `member`; Samba refuses the change while the
#       user is still listed there).
#
# Users u0000..: every 10th (i % 10 == 3) disabled (userAccountControl 514), i % 10 == 7
# expired (accountExpires in 2020), i % 10 == 8 has accountExpires 0 (the other "never"),
# every 25th a non-ASCII name. Groups g00..g29: g00 has the first 1600 users; g01 > g02 >
# g03 > g01 nest in a cycle (each also with 10 users of its own); g04 is the primary group
# of 10 users; the others hold 10-40 users each. Even groups are security groups, odd ones
# distribution groups. The last 10 users are in no group (the delta test deletes two).
# expected.json says, per user, the account state and, per group, the direct members
# (users by sAMAccountName, groups by cn), the primary-group members included.
import base64
import json
import os
import struct
import sys

NONASCII = ["Zoë Ångström", "José Müller", "Øyvind Ærø", "Łukasz Żółć", "Jürgen Groß",
            "Renée Dubé", "Ságvári Éva", "Çağla Işık"]
PFX = os.environ.get("AD_FIXTURE_PREFIX", "u")
EXPIRED_FT = 132223104000000000  # 2020-01-01T00:00:00Z as FILETIME


def b64(s):
    return base64.b64encode(s).decode()


def attr(name, value):
    if isinstance(value, bytes) or not value.isascii() or value.startswith((" ", ":", "<")):
        if not isinstance(value, bytes):
            value = value.encode()
        return "%s:: %s\n" % (name, b64(value))
    return "%s: %s\n" % (name, value)


def user(i):
    sam = PFX + "%04d" % i
    if i % 25 == 0:
        given, sn = NONASCII[(i // 25) % len(NONASCII)].split(" ")
        sn = "%s%d" % (sn, i)
    else:
        given, sn = "Given%d" % i, "Sur%04d" % i
    return sam, given, sn


def password(seed, i):
    return "Pw%d-%s!x" % (i, seed)


def has_password(i):
    return i < 40 or i % 100 == 1


def groups_of(n):
    """group -> (user indexes, nested group names, primary user indexes)."""
    g = {}
    g["g00"] = (list(range(0, min(1600, n))), [], [])
    g["g01"] = (list(range(1600, 1610)), ["g02"], [])
    g["g02"] = (list(range(1610, 1620)), ["g03"], [])
    g["g03"] = (list(range(1620, 1630)), ["g01"], [])
    g["g04"] = (list(range(1630, 1640)), [], list(range(1640, 1650)))
    k = 1650
    for j in range(5, 30):
        size = 10 + (j * 7) % 31
        members = [(k + x) % (n - 10) for x in range(size)]
        k += size
        g["g%02d" % j] = (sorted(set(members)), [], [])
    # a small fixture (the hook test) keeps only the users it has
    return {k: ([u for u in v[0] if u < n - 10], v[1], [u for u in v[2] if u < n - 10])
            for k, v in g.items()}


def gen(out, base, n, seed):
    os.makedirs(out, exist_ok=True)
    people = "OU=people,%s" % base
    gbase = "OU=groups,%s" % base
    exp = {"users": {}, "groups": {}, "base": base}
    with open(os.path.join(out, "users.ldif"), "w", encoding="utf-8") as f, \
            open(os.path.join(out, "passwords.tsv"), "w", encoding="utf-8") as pw:
        f.write("dn: %s\nobjectClass: organizationalUnit\n\n" % base)
        f.write("dn: %s\nobjectClass: organizationalUnit\n\n" % people)
        f.write("dn: %s\nobjectClass: organizationalUnit\n\n" % gbase)
        for i in range(n):
            sam, given, sn = user(i)
            cn = "%s %s" % (given, sn)
            p = password(seed, i)
            state = "enabled"
            f.write(attr("dn", "CN=%s,%s" % (cn, people)))
            f.write("objectClass: user\n")
            f.write(attr("cn", cn) + attr("givenName", given) + attr("sn", sn))
            f.write(attr("displayName", cn))
            f.write("sAMAccountName: %s\nuserPrincipalName: %s@example.test\n" % (sam, sam))
            f.write("mail: %s@example.test\n" % sam)
            if i % 5 == 0:
                f.write("proxyAddresses: smtp:alias%d@example.test\n" % i)
                f.write("proxyAddresses: SMTP:%s@example.test\n" % sam)
            # Samba hashes a password in ~25 ms of CPU (PBKDF2 for the Kerberos keys), so
            # only some users get one; the others are PASSWD_NOTREQD (0x20).
            uac = 512
            if has_password(i):
                f.write("unicodePwd:: %s\n" % b64(('"%s"' % p).encode("utf-16-le")))
                pw.write("%s\t%s\n" % (sam, p))
            else:
                uac |= 0x20
            if i % 10 == 3:
                uac |= 2
                state = "disabled"
            f.write("userAccountControl: %d\n" % uac)
            if i % 10 == 7:
                f.write("accountExpires: %d\n" % EXPIRED_FT)
                state = "expired"
            elif i % 10 == 8:
                f.write("accountExpires: 0\n")
            f.write("\n")
            exp["users"][sam] = {"cn": cn, "state": state, "dn": "CN=%s,%s" % (cn, people)}
    gs = groups_of(n)
    with open(os.path.join(out, "groups.ldif"), "w", encoding="utf-8") as f:
        for name in sorted(gs):
            users, nested, primary = gs[name]
            j = int(name[1:])
            f.write("dn: CN=%s,%s\nobjectClass: group\nsAMAccountName: %s%s\n" % (name, gbase, PFX, name))
            f.write("groupType: %d\n" % (-2147483646 if j % 2 == 0 else 2))
            f.write("description: fixture group %s\n" % name)
            for u in users + primary:
                f.write(attr("member", exp["users"][PFX + "%04d" % u]["dn"]))
            f.write("\n")
    # nesting after every group exists
    with open(os.path.join(out, "nest.ldif"), "w", encoding="utf-8") as f:
        for name in sorted(gs):
            if gs[name][1]:
                f.write("dn: CN=%s,%s\nchangetype: modify\nadd: member\n" % (name, gbase))
                for g in gs[name][1]:
                    f.write("member: CN=%s,%s\n" % (g, gbase))
                f.write("-\n\n")
    for name in sorted(gs):
        users, nested, primary = gs[name]
        exp["groups"][name] = {
            "users": sorted(PFX + "%04d" % u for u in users + primary),
            "groups": sorted(nested),
            "primary": sorted(PFX + "%04d" % u for u in primary),
            "security": int(name[1:]) % 2 == 0,
        }
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(exp, f, indent=1, ensure_ascii=False, sort_keys=True)


def pgid(out, base, sidb64):
    if sidb64.startswith("S-1-"):
        rid = int(sidb64.rsplit("-", 1)[1])
    else:
        rid = struct.unpack("<I", base64.b64decode(sidb64)[-4:])[0]
    with open(os.path.join(out, "expected.json"), encoding="utf-8") as f:
        exp = json.load(f)
    g = exp["groups"]["g04"]
    with open(os.path.join(out, "pgid.ldif"), "w", encoding="utf-8") as f:
        for sam in g["primary"]:
            f.write(attr("dn", exp["users"][sam]["dn"]))
            f.write("changetype: modify\nreplace: primaryGroupID\nprimaryGroupID: %d\n-\n\n"
                    % rid)


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif sys.argv[1] == "pgid":
        pgid(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: ad_fixture.py gen|pgid ...")
