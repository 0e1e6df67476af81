#!/bin/bash
# tests/intg/test_man_keys.sh: the KEYS section of doc/dirmig.json.5 is exactly what the
# key table and the connectors' own keys say (config_print_keys(), tests/tools/printkeys):
# a key added to a connector is documented, or this test fails (`make update-man-keys`).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
man=$top_srcdir/doc/dirmig.json.5
want=$(mktemp)
have=$(mktemp)
trap 'rm -f "$want" "$have"' EXIT
"$top_builddir/tests/tools/printkeys" > "$want" || { echo "printkeys failed"; exit 1; }
awk '/^\.SH KEYS$/ { on = 1; next } /^\.SH / { on = 0 } on' "$man" > "$have"
if ! diff -u "$have" "$want"; then
    echo "FAIL: doc/dirmig.json.5 KEYS differs from the key table (make update-man-keys)"
    exit 1
fi
grep -q 'type okta' "$have" || { echo "FAIL: the connectors' keys are not documented"; exit 1; }
echo "ok: KEYS section matches ($(grep -c '^\.TP' "$want") keys)"
