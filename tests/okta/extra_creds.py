#!/usr/bin/env python3
"""extra_creds.py OUT.ldif OUT.pw SUFFIX: users with every userPassword form the Okta import
cares about beyond tests/data/gen_users.py ({SHA} {SSHA256} {SHA256} {MD5} {SMD5} {SHA512},
PBKDF2-SHA256/512 at >= 4096 iterations, {PBKDF2}/{PBKDF2-SHA1}, $2a$ $2y$ $1$ $5$ {SSHA384},
a bcrypt of cost 21, no password, two malformed values). Each is uid=x<name>,ou=people,SUFFIX
with mail x<name>@example.org. OUT.pw (0600) gets "DN<TAB>password<TAB>expected sign-in
result at the Okta contract server" (VERIFIED, NEEDS_HOOK or ERROR = refused by dirmig)."""
import base64, ctypes, ctypes.util, hashlib, os, sys
out, pwfile, suf = sys.argv[1:4]
lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
lib.crypt.restype = ctypes.c_char_p
lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
def crypt(pw, s):
    return lib.crypt(pw.encode(), s.encode()).decode()
b64 = lambda b: base64.b64encode(b).decode()
ab64 = lambda b: b64(b).replace("+", ".").rstrip("=")
def salted(tag, alg, pw, salt):
    return "{%s}%s" % (tag, b64(hashlib.new(alg, pw.encode() + salt).digest() + salt))
def plain(tag, alg, pw):
    return "{%s}%s" % (tag, b64(hashlib.new(alg, pw.encode()).digest()))
def pbkdf2(tag, alg, it, pw, n):
    s = bytes(range(250, 256)) + bytes(range(10))
    dk = hashlib.pbkdf2_hmac(alg, pw.encode(), s, it, n)
    return "{%s}%d$%s$%s" % (tag, it, ab64(s), ab64(dk))
BC = "abcdefghijklmnopqrstuu"
cases = [  # name, value(pw), expected sign-in result
    ("sha", lambda p: plain("SHA", "sha1", p), "VERIFIED"),
    ("ssha256", lambda p: salted("SSHA256", "sha256", p, b"\x00\x01\xfe\xff+/=a"), "VERIFIED"),
    ("sha256", lambda p: plain("SHA256", "sha256", p), "VERIFIED"),
    ("sha512", lambda p: plain("SHA512", "sha512", p), "VERIFIED"),
    ("md5", lambda p: plain("MD5", "md5", p), "VERIFIED"),
    ("smd5", lambda p: salted("SMD5", "md5", p, b"salt"), "VERIFIED"),
    ("pbkdf2s256", lambda p: pbkdf2("PBKDF2-SHA256", "sha256", 4096, p, 32), "VERIFIED"),
    ("pbkdf2s512", lambda p: pbkdf2("PBKDF2-SHA512", "sha512", 5000, p, 64), "VERIFIED"),
    ("bcrypt2a", lambda p: "{CRYPT}" + crypt(p, "$2a$05$" + BC), "VERIFIED"),
    ("bcrypt2y", lambda p: "{CRYPT}" + crypt(p, "$2y$04$" + BC), "VERIFIED"),
    ("lowerssha", lambda p: salted("ssha", "sha1", p, b"1234"), "VERIFIED"),
    ("pbkdf2sha1", lambda p: pbkdf2("PBKDF2-SHA1", "sha1", 10000, p, 20), "NEEDS_HOOK"),
    ("pbkdf2plain", lambda p: pbkdf2("PBKDF2", "sha1", 10000, p, 20), "NEEDS_HOOK"),
    ("md5crypt", lambda p: "{CRYPT}" + crypt(p, "$1$saltsalt"), "NEEDS_HOOK"),
    ("sha256crypt", lambda p: "{CRYPT}" + crypt(p, "$5$saltsaltsaltsalt"), "NEEDS_HOOK"),
    ("ssha384", lambda p: salted("SSHA384", "sha384", p, b"12345678"), "NEEDS_HOOK"),
    ("bcrypt21", lambda p: "{CRYPT}$2b$21$" + BC + "0123456789012345678901234567890",
     "NEEDS_HOOK"),
    ("nopw", None, "NEEDS_HOOK"),
    ("badb64", lambda p: "{SSHA}not*base64!!", "ERROR"),
    ("badbcrypt", lambda p: "{CRYPT}$2b$04$" + BC + "tooshort", "ERROR"),
]
fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with open(out, "w") as f, os.fdopen(fd, "w") as pf:
    for name, mk, want in cases:
        pw = "Pw-%s-%s" % (name, base64.b32encode(os.urandom(10)).decode())
        dn = "uid=x%s,ou=people,%s" % (name, suf)
        f.write("\ndn: %s\nobjectClass: inetOrgPerson\nuid: x%s\ncn: X %s\nsn: %s\n"
                "mail: x%s@example.org\n" % (dn, name, name, name, name))
        if mk is not None:
            f.write("userPassword: %s\n" % mk(pw))
        pf.write("%s\t%s\t%s\n" % (dn, pw, want))
