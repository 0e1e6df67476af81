#!/usr/bin/env python3
"""boundary.py TOP: the connector boundary of dirmig. Outside connectors/ (agent/, schema/),
with comments removed, no C code names a connector type: no string literal that is a
connector's name, no identifier made from one ("okta_...", "..._scim"), no CONN_KEYED; the
only place that lists the types is the configuration's connector list (agent/config_keys.c,
key "type"). Connector names come from connectors/*.c (.name = "..."). "ldap" is left out:
it names the source protocol everywhere (ldap:// URIs, libldap, the hook's verification), not
a target. Two more things are not target types and are not counted: identifiers made from
"csv"/"jsonl" (the validation export and the mapping report write CSV and JSON Lines files),
and those of the password-import hook (agent/hook*: Okta's inline-hook protocol is one of
the hook's two endpoints, whatever the target). Prints each finding as file:line: text;
exits 1 when there is one."""
import glob, os, re, sys

top = sys.argv[1]
names = set()
for f in glob.glob(os.path.join(top, "connectors", "*.c")):
    names.update(re.findall(r'\.name\s*=\s*"([a-z0-9]+)"', open(f).read()))
names.discard("ldap")
if len(names) < 5:
    sys.exit("boundary: found only %s in connectors/*.c" % sorted(names))


def strip_comments(text):
    # keep line numbers: replace comment bodies by spaces, leave strings alone
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text[i] in "\"'":
            q, j = text[i], i + 1
            while j < n and text[j] != q:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


alt = "|".join(sorted(names))
idalt = "|".join(sorted(names - {"csv", "jsonl"}))
literal = re.compile(r'"(%s)"' % alt, re.I)
ident = re.compile(r"\b\w*(?:(?:%s)_\w*|_(?:%s))\b" % (idalt, idalt), re.I)
keyed = re.compile(r"\bCONN_KEYED\b|\bkeyed\b")
found = 0
files = sorted(glob.glob(os.path.join(top, "agent", "**", "*.[ch]"), recursive=True) +
               glob.glob(os.path.join(top, "schema", "*.[ch]")))
for f in files:
    rel = os.path.relpath(f, top)
    code = strip_comments(open(f, encoding="utf-8").read())
    for no, line in enumerate(code.split("\n"), 1):
        if rel == "agent/config_keys.c" and re.search(r'\{"type", CFG_STR|\.values = "ldap\|', line):
            continue  # the configuration's connector list
        pats = [literal, keyed] if os.path.basename(rel).startswith("hook") else [literal, ident, keyed]
        for p in pats:
            m = p.search(line)
            if m:
                print("%s:%d: %s" % (rel, no, line.strip()))
                found += 1
                break
print("boundary: %d files outside connectors/, connector names %s: %d findings" % (
    len(files), ", ".join(sorted(names)), found))
sys.exit(1 if found else 0)
