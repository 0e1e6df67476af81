#!/usr/bin/env python3
"""man_examples.py: runs the tagged examples of a man page through tests/tools/mapdoc.

    man_examples.py PAGE MAPDOC WORKDIR [--ownership-only | --no-ownership]

An example is a group of .EX/.EE blocks, each right after a comment line
    .\\" example NAME KIND: PART
with KIND users or groups and PART one of entry (LDIF), map (JSON), result (lines that must
be in mapdoc's output; "attr: (none)" means the attribute must be absent), error (text that
must be in mapdoc's error, exit 1). An example without a result or error must load.
Examples whose map uses "ownership" are selected by the two options (the map engine learns
ownership with the planner). Prints one line per example; exit 1 when one fails.
"""
import os
import re
import subprocess
import sys


def unroff(s):
    out = []
    for line in s.split("\n"):
        if line.startswith("\\&"):
            line = line[2:]
        out.append(line.replace("\\-", "-").replace("\\e", "\\"))
    return "\n".join(out)


def main():
    page, mapdoc, work = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else ""
    text = open(page).read()
    ex = {}
    order = []
    for m in re.finditer(r'^\.\\" example (\S+) (users|groups): (entry|map|result|error)\n'
                         r'\.EX\n(.*?)^\.EE$', text, re.S | re.M):
        name, kind, part, body = m.group(1), m.group(2), m.group(3), unroff(m.group(4))
        if name not in ex:
            ex[name] = {"kind": kind}
            order.append(name)
        ex[name][part] = body
    bad = 0
    run = 0
    for name in order:
        e = ex[name]
        own = '"ownership"' in e.get("map", "")
        if (mode == "--ownership-only" and not own) or (mode == "--no-ownership" and own):
            continue
        run += 1
        mp = os.path.join(work, name + ".json")
        lp = os.path.join(work, name + ".ldif")
        open(mp, "w").write(e["map"])
        open(lp, "w").write(e.get("entry", ""))
        r = subprocess.run([mapdoc, mp, e["kind"], lp], capture_output=True, text=True)
        if "error" in e:
            ok = r.returncode == 1 and e["error"].strip() in r.stderr
            why = "want error %r, got exit %d: %s" % (e["error"].strip(), r.returncode, r.stderr)
        elif r.returncode != 0:
            ok, why = False, "exit %d: %s" % (r.returncode, r.stderr.strip())
        else:
            got = r.stdout.splitlines()
            missing = []
            for line in e.get("result", "").strip("\n").splitlines():
                if line.endswith(": (none)"):
                    a = line[: -len(": (none)")].lower() + ":"
                    if any(g.lower().startswith(a) for g in got):
                        missing.append("no " + line[: -len(": (none)")])
                elif line not in got:
                    missing.append(line)
            ok = not missing
            why = "not in the output: %s; output: %s" % (missing, got)
        print("%s %s%s" % ("ok" if ok else "FAILED", name, "" if ok else ": " + why))
        bad += not ok
    if run == 0:
        print("FAILED: no example found in %s" % page)
        return 1
    print("%d examples run, %d failed" % (run, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
