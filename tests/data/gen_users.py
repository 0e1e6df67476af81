#!/usr/bin/env python3
"""gen_users.py: deterministic LDIF fixtures for the dirmig integration tests and benchmarks.

    gen_users.py --suffix dc=src,dc=example --users 10000 --groups 100 \
                 --ldif src.ldif --passwords src.pw [--seed 1] [--schemes all|fast|ssha]
    gen_users.py --suffix dc=dst,dc=example --skeleton --ldif dst.ldif

Writes the suffix entry, ou=people, ou=groups, ou=contractors (one out-of-scope user), N users
and G groups, and a DN<TAB>password file for tests/tools/bindcheck (mode 0600).

Users (uid=userNNNNN,ou=people): inetOrgPerson, every third also posixAccount; uid, cn, sn,
givenName, mail (some with two values), some non-ASCII names. userPassword schemes rotate over
    {SSHA} {SSHA512} {CRYPT}$6$ {CRYPT}$2b$04$ {PBKDF2-SHA256} {ARGON2} cleartext
("all"), or over the hashes computed in Python only ("fast": no crypt/argon2), or {SSHA} only.
Work factors are kept low so tests stay fast ($6$ rounds=1000, bcrypt cost 4, PBKDF2 1000
iterations, argon2id m=1024,t=1,p=1).

Groups (cn=grpNNNN,ou=groups):
    grp0000  groupOfNames with min(5000, N) members (the big group)
    grp0001  groupOfNames whose members include the group grp0002 (nested group)
    grp0002  groupOfNames with one member outside the migrated scope
             (uid=ext00000,ou=contractors,<suffix>): the planted unresolved member
    others   rotate groupOfNames / groupOfUniqueNames / posixGroup (memberUid), 1-50 members

Everything, salts included, comes from one seeded PRNG, so the same arguments give the same
bytes (argon2 needs libargon2.so.1 through ctypes; without it slappasswd is used and that part
is not deterministic). Python 3 standard library only.
"""

import argparse
import base64
import ctypes
import ctypes.util
import hashlib
import os
import random
import subprocess
import sys

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

GIVEN = ["Ada", "Alan", "Grace", "Linus", "Zoë", "Åsa", "José", "Jürgen", "Søren", "Chloé",
         "Ελένη", "Иван", "太郎", "Hana", "Noor", "Mateo", "Olu", "Priya", "Wei", "Kai"]
SURNAMES = ["Lovelace", "Turing", "Hopper", "Torvalds", "Ångström", "Núñez", "Müller",
            "Østergaard", "Dvořák", "Παπαδόπουλος", "Смирнов", "山田", "Kim", "Haddad",
            "García", "Okafor", "Iyer", "Zhang", "Nakamura", "Smith"]

SCHEMES_ALL = ["SSHA", "SSHA512", "CRYPT6", "CRYPT2B", "PBKDF2-SHA256", "ARGON2", "CLEAR"]
SCHEMES_FAST = ["SSHA", "SSHA512", "PBKDF2-SHA256", "CLEAR"]


def b64(data):
    return base64.b64encode(data).decode("ascii")


def ab64(data):
    """passlib 'adapted base64': '+' -> '.', no padding (what pw-pbkdf2 reads)."""
    return b64(data).replace("+", ".").rstrip("=")


class Hasher:
    def __init__(self, rng):
        self.rng = rng
        self._crypt = None
        self._argon2 = None
        self._argon2_tried = False

    def salt(self, n):
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    def chars(self, alphabet, n):
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def crypt(self, pw, setting):
        if self._crypt is None:
            name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
            lib = ctypes.CDLL(name)
            lib.crypt.restype = ctypes.c_char_p
            lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
            self._crypt = lib.crypt
        out = self._crypt(pw.encode("utf-8"), setting.encode("ascii"))
        if out is None or out.startswith(b"*"):
            raise RuntimeError("crypt(3) refused setting " + setting)
        return out.decode("ascii")

    def argon2(self, pw):
        if not self._argon2_tried:
            self._argon2_tried = True
            try:
                lib = ctypes.CDLL("libargon2.so.1")
                fn = lib.argon2id_hash_encoded
                fn.restype = ctypes.c_int
                fn.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                               ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                               ctypes.c_size_t, ctypes.c_size_t, ctypes.c_char_p,
                               ctypes.c_size_t]
                self._argon2 = fn
            except (OSError, AttributeError):
                self._argon2 = None
        salt = self.salt(16)
        if self._argon2 is not None:
            buf = ctypes.create_string_buffer(256)
            pwb = pw.encode("utf-8")
            rc = self._argon2(1, 1024, 1, pwb, len(pwb), salt, len(salt), 32, buf, len(buf))
            if rc != 0:
                raise RuntimeError("argon2id_hash_encoded failed: %d" % rc)
            return "{ARGON2}" + buf.value.decode("ascii")
        # Fallback: slappasswd (random salt, so this part is not reproducible).
        out = subprocess.run(["slappasswd", "-o", "module-load=argon2 m=1024 t=1 p=1",
                              "-h", "{ARGON2}", "-s", pw],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def hash(self, scheme, pw):
        pwb = pw.encode("utf-8")
        if scheme == "SSHA":
            s = self.salt(4)
            return "{SSHA}" + b64(hashlib.sha1(pwb + s).digest() + s)
        if scheme == "SSHA512":
            s = self.salt(8)
            return "{SSHA512}" + b64(hashlib.sha512(pwb + s).digest() + s)
        if scheme == "CRYPT6":
            return "{CRYPT}" + self.crypt(pw, "$6$rounds=1000$" + self.chars(CRYPT_ALPHABET, 16))
        if scheme == "CRYPT2B":
            return "{CRYPT}" + self.crypt(pw, "$2b$04$" + self.chars(BCRYPT_ALPHABET, 22))
        if scheme == "PBKDF2-SHA256":
            s = self.salt(16)
            dk = hashlib.pbkdf2_hmac("sha256", pwb, s, 1000, 32)
            return "{PBKDF2-SHA256}1000$%s$%s" % (ab64(s), ab64(dk))
        if scheme == "ARGON2":
            return self.argon2(pw)
        if scheme == "CLEAR":
            return pw
        raise ValueError(scheme)


def needs_b64(value):
    """RFC 2849 SAFE-STRING check."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return True
    if value == "":
        return False
    if value[0] in " :<" or value[-1] == " ":
        return True
    return any(ord(c) > 126 or c in "\0\r\n" for c in value)


def attr_line(attr, value):
    if needs_b64(value):
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        return "%s:: %s" % (attr, b64(raw))
    if isinstance(value, bytes):
        value = value.decode("ascii")
    return "%s: %s" % (attr, value)


def write_entry(out, dn, attrs):
    out.write(attr_line("dn", dn) + "\n")
    for name, values in attrs:
        if not isinstance(values, list):
            values = [values]
        for v in values:
            out.write(attr_line(name, v) + "\n")
    out.write("\n")


def skeleton(out, suffix):
    first = suffix.split(",")[0]
    attr, _, val = first.partition("=")
    if attr.lower() != "dc":
        raise SystemExit("gen_users.py: the suffix must start with dc=")
    write_entry(out, suffix, [("objectClass", ["top", "dcObject", "organization"]),
                              ("dc", val), ("o", val)])
    for ou in ("people", "groups"):
        write_entry(out, "ou=%s,%s" % (ou, suffix),
                    [("objectClass", ["top", "organizationalUnit"]), ("ou", ou)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suffix", required=True)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--groups", type=int, default=10)
    ap.add_argument("--big-group", type=int, default=5000, help="members of grp0000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--schemes", choices=["all", "fast", "ssha"], default="all")
    ap.add_argument("--ldif", required=True)
    ap.add_argument("--passwords", help="DN<TAB>password output (0600)")
    ap.add_argument("--skeleton", action="store_true",
                    help="only the suffix entry, ou=people and ou=groups")
    args = ap.parse_args()

    suffix = args.suffix
    rng = random.Random(args.seed)
    hasher = Hasher(rng)
    schemes = {"all": SCHEMES_ALL, "fast": SCHEMES_FAST, "ssha": ["SSHA"]}[args.schemes]
    people = "ou=people," + suffix
    groups = "ou=groups," + suffix

    with open(args.ldif, "w", encoding="utf-8", newline="\n") as out:
        skeleton(out, suffix)
        if args.skeleton:
            return 0
        pwf = None
        if args.passwords:
            fd = os.open(args.passwords, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            pwf = os.fdopen(fd, "w", encoding="utf-8", newline="\n")

        # One account outside the migrated scopes, referenced by grp0002.
        write_entry(out, "ou=contractors," + suffix,
                    [("objectClass", ["top", "organizationalUnit"]), ("ou", "contractors")])
        ext_dn = "uid=ext00000,ou=contractors," + suffix
        write_entry(out, ext_dn, [("objectClass", ["top", "person", "organizationalPerson",
                                                   "inetOrgPerson"]),
                                  ("uid", "ext00000"), ("cn", "External Contractor"),
                                  ("sn", "Contractor")])

        uids = []
        for i in range(args.users):
            uid = "user%05d" % i
            dn = "uid=%s,%s" % (uid, people)
            given = rng.choice(GIVEN)
            sn = rng.choice(SURNAMES)
            pw = "pw-" + hasher.chars(ALNUM, 16)
            scheme = schemes[i % len(schemes)]
            ocs = ["top", "person", "organizationalPerson", "inetOrgPerson"]
            attrs = [("uid", uid), ("cn", "%s %s %d" % (given, sn, i)), ("sn", sn),
                     ("givenName", given)]
            mails = ["%s@example.org" % uid]
            if i % 5 == 0:
                mails.append("%s.alt@example.net" % uid)
            attrs.append(("mail", mails))
            if i % 4 == 0:
                attrs.append(("telephoneNumber", "+1 555 %04d" % (i % 10000)))
            if i % 3 == 0:
                ocs.append("posixAccount")
                attrs += [("uidNumber", str(10000 + i)), ("gidNumber", "10000"),
                          ("homeDirectory", "/home/" + uid), ("loginShell", "/bin/bash")]
            attrs.append(("userPassword", hasher.hash(scheme, pw)))
            write_entry(out, dn, [("objectClass", ocs)] + attrs)
            if pwf is not None:
                pwf.write("%s\t%s\n" % (dn, pw))
            uids.append(uid)

        def udn(u):
            return "uid=%s,%s" % (u, people)

        def gdn(i):
            return "cn=grp%04d,%s" % (i, groups)

        for g in range(args.groups):
            cn = "grp%04d" % g
            if g == 0:
                members = [udn(u) for u in uids[:min(args.big_group, len(uids))]]
                kind = "gon"
            elif g == 1:
                members = [udn(u) for u in rng.sample(uids, min(5, len(uids)))]
                if args.groups > 2:
                    members.append(gdn(2))
                kind = "gon"
            elif g == 2:
                members = [udn(u) for u in rng.sample(uids, min(3, len(uids)))]
                members.append(ext_dn)
                kind = "gon"
            else:
                n = rng.randint(1, min(50, max(1, len(uids))))
                picked = rng.sample(uids, min(n, len(uids)))
                kind = ("gon", "goun", "posix")[g % 3]
                members = picked if kind == "posix" else [udn(u) for u in picked]
            if kind == "gon":
                if not members:
                    members = [ext_dn]
                write_entry(out, gdn(g), [("objectClass", ["top", "groupOfNames"]),
                                          ("cn", cn), ("description", "group %d" % g),
                                          ("member", members)])
            elif kind == "goun":
                write_entry(out, gdn(g), [("objectClass", ["top", "groupOfUniqueNames"]),
                                          ("cn", cn), ("uniqueMember", members)])
            else:
                write_entry(out, gdn(g), [("objectClass", ["top", "posixGroup"]),
                                          ("cn", cn), ("gidNumber", str(20000 + g)),
                                          ("memberUid", members)])
        if pwf is not None:
            pwf.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
