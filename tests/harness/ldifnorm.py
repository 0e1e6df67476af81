#!/usr/bin/env python3
"""ldifnorm.py: canonical form of an LDIF dump, for byte-exact comparisons in tests.

    ldapsearch -LLL -o ldif-wrap=no ... '*' | ldifnorm.py [--rebase OLD NEW] [--drop ATTR=VALUE]...

Reads LDIF on stdin (folded lines and "attr:: base64" handled), and writes every entry with
    - the DN, and the values of DN-valued attributes (--dn-attrs, default member,uniqueMember,
      owner,manager,seeAlso,secretary), rebased from suffix OLD to NEW (case-insensitive
      suffix match; the rest of the DN is kept byte for byte),
    - attribute names lower-cased and sorted, values sorted as bytes (duplicates kept),
    - a value printed as "attr: text" when it is printable ASCII, else "attr:: base64",
    - entries sorted by lower-cased DN, separated by a blank line.
--drop removes one exact value (after rebasing); --exclude-attr removes an attribute.
Python 3 standard library only.
"""

import argparse
import base64
import sys

DEFAULT_DN_ATTRS = "member,uniqueMember,owner,manager,seeAlso,secretary"


def parse(stream):
    """Yields entries as lists of (attr, bytes) with ("dn", ...) first."""
    lines = []
    for raw in stream.buffer if hasattr(stream, "buffer") else stream:
        line = raw.rstrip(b"\n").rstrip(b"\r") if isinstance(raw, bytes) else raw.rstrip("\n")
        if line.startswith(b" ") and lines:
            lines[-1] += line[1:]
            continue
        lines.append(line)
    entry = []
    for line in lines + [b""]:
        if line.startswith(b"#"):
            continue
        if line == b"":
            if entry:
                yield entry
                entry = []
            continue
        name, sep, rest = line.partition(b":")
        if not sep:
            raise SystemExit("ldifnorm: bad line: %r" % line[:80])
        name = name.decode("ascii")
        if rest.startswith(b":"):
            value = base64.b64decode(rest[1:].strip())
        elif rest.startswith(b"<"):
            raise SystemExit("ldifnorm: URL values are not supported")
        else:
            value = rest[1:] if rest.startswith(b" ") else rest
            value = value.lstrip(b" ")
        entry.append((name, value))


def rebase(value, old, new):
    if old is None:
        return value
    lv = value.lower()
    lo = old.lower()
    if lv == lo:
        return new
    if lv.endswith(b"," + lo):
        return value[: len(value) - len(old)] + new
    return value


def show(name, value):
    printable = all(0x20 <= c < 0x7F for c in value)
    if printable and value and value[:1] not in (b" ", b":", b"<") and value[-1:] != b" ":
        return "%s: %s" % (name, value.decode("ascii"))
    if value == b"":
        return "%s:" % name
    return "%s:: %s" % (name, base64.b64encode(value).decode("ascii"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rebase", nargs=2, metavar=("OLD", "NEW"))
    ap.add_argument("--dn-attrs", default=DEFAULT_DN_ATTRS)
    ap.add_argument("--drop", action="append", default=[], metavar="ATTR=VALUE")
    ap.add_argument("--exclude-attr", action="append", default=[])
    args = ap.parse_args()
    old = new = None
    if args.rebase:
        old, new = args.rebase[0].encode("utf-8"), args.rebase[1].encode("utf-8")
    dn_attrs = {a.strip().lower() for a in args.dn_attrs.split(",") if a.strip()}
    drops = set()
    for d in args.drop:
        a, _, v = d.partition("=")
        drops.add((a.lower(), v.encode("utf-8")))
    excluded = {a.lower() for a in args.exclude_attr}

    out = []
    for entry in parse(sys.stdin):
        dn = None
        attrs = []
        for name, value in entry:
            lname = name.lower()
            if lname == "dn" and dn is None:
                dn = rebase(value, old, new)
                continue
            if lname in excluded:
                continue
            if lname in dn_attrs:
                value = rebase(value, old, new)
            if (lname, value) in drops:
                continue
            attrs.append((lname, value))
        if dn is None:
            raise SystemExit("ldifnorm: entry without dn")
        attrs.sort()
        text = [show("dn", dn)] + [show(n, v) for n, v in attrs]
        out.append((dn.lower(), "\n".join(text)))
    out.sort()
    sys.stdout.write("".join(t + "\n\n" for _, t in out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
