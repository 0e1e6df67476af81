#!/bin/bash
# examples/demo.sh: a complete demo migration between two throwaway slapd directories.
#
# Starts a source slapd seeded with 500 users (passwords in every common scheme) and 20
# groups, and an empty target slapd, both on random loopback ports in a temporary
# directory; then runs dirmig check, plan, run, a second run (which changes nothing) and
# status, shows that users bind at the target with their old passwords, and tears
# everything down. Run `make demo` in a build directory (README command 1), or
# DIRMIG=/path/to/dirmig examples/demo.sh.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
DIRMIG=${DIRMIG:-$top/dirmig}
[ -x "$DIRMIG" ] || { echo "demo: no dirmig at $DIRMIG: build it and run make demo" >&2; exit 1; }
TESTDIR=$(mktemp -d /tmp/dirmig-demo.XXXXXX)
export TESTDIR
. "$top/tests/harness/slapd.sh"
cleanup() { slapd_stop_all >/dev/null 2>&1 || true; rm -rf "$TESTDIR"; }
trap cleanup EXIT INT TERM

echo "== generating a source directory (500 users, 20 groups) and an empty target"
"${PYTHON3:-python3}" "$top/tests/data/gen_users.py" --suffix dc=src,dc=example --users 500 \
    --groups 20 --big-group 300 --schemes all --ldif "$TESTDIR/src.ldif" \
    --passwords "$TESTDIR/passwords.tsv"
"${PYTHON3:-python3}" "$top/tests/data/gen_users.py" --suffix dc=dst,dc=example --skeleton \
    --ldif "$TESTDIR/dst.ldif"
slapd_start SRC dc=src,dc=example "$TESTDIR/src.ldif"
slapd_start DST dc=dst,dc=example "$TESTDIR/dst.ldif"

cat > "$TESTDIR/dirmig.json" <<JSON
{
  "source": { "uri": "$SRC_URI", "base": "dc=src,dc=example",
              "bind_dn": "$SRC_ROOTDN", "bind_pw_file": "$SRC_PW_FILE",
              "users":  { "base": "ou=people,dc=src,dc=example" },
              "groups": { "base": "ou=groups,dc=src,dc=example" } },
  "target": { "uri": "$DST_URI", "base": "dc=dst,dc=example",
              "bind_dn": "$DST_ROOTDN", "bind_pw_file": "$DST_PW_FILE" },
  "state":  { "path": "$TESTDIR/dirmig.db" },
  "log":    { "level": "warn" }
}
JSON

cd "$TESTDIR"
echo; echo "== dirmig check"; "$DIRMIG" -c dirmig.json check
echo; echo "== dirmig plan"; "$DIRMIG" -c dirmig.json plan --samples 3
echo; echo "== dirmig run"; "$DIRMIG" -c dirmig.json run || [ $? = 65 ]
echo; echo "== dirmig run (again: nothing to do)"; "$DIRMIG" -c dirmig.json run || [ $? = 65 ]
echo; echo "== dirmig status"; "$DIRMIG" -c dirmig.json status

echo; echo "== users bind at the target with their old passwords"
head -n 7 passwords.tsv | while IFS="$(printf '\t')" read -r dn pw; do
    tdn=${dn%,dc=src,dc=example},dc=dst,dc=example
    printf '%s' "$pw" > pw.tmp; chmod 600 pw.tmp
    # Only the {SCHEME} tag is shown, never the hash itself.
    scheme=$(ldapsearch -LLL -o ldif-wrap=no -x -H "$SRC_URI" -D "$SRC_ROOTDN" -y "$SRC_PW_FILE" \
        -b "$dn" -s base userPassword | "${PYTHON3:-python3}" -c '
import sys, base64, re
for l in sys.stdin:
    if l.startswith("userPassword::"): v = base64.b64decode(l.split("::", 1)[1].strip()).decode("utf-8", "replace")
    elif l.startswith("userPassword:"): v = l.split(":", 1)[1].strip()
    else: continue
    m = re.match(r"(\{[^}]*\}(\$[0-9a-z]+\$)?)", v)
    print(m.group(1) if m else "cleartext")')
    if ldapwhoami -x -H "$DST_URI" -D "$tdn" -y pw.tmp >/dev/null 2>&1; then r=ok; else r=FAILED; fi
    printf '  %-50s %-16s %s\n' "$tdn" "$scheme" "$r"
done
rm -f pw.tmp
echo; echo "demo done (the directories are torn down now)"
