#!/bin/bash
# tests/intg/test_connector_boundary.sh: what differs between targets lives in connectors/.
#  1. tests/tools/boundary.py finds no connector type name in agent/ and schema/ code
#     outside the configuration's connector list (and no CONN_KEYED);
#  2. it does find one when a type branch is planted in a copy of the pipeline (the check
#     checks something);
#  3. the configuration's list of types is the connector registry, in its order.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
PYTHON3=${PYTHON3:-python3}
BOUNDARY=$top_srcdir/tests/tools/boundary.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL [test_connector_boundary]: $*"
    exit 1
}

"$PYTHON3" "$BOUNDARY" "$top_srcdir" > "$tmp/out" || fail "$(cat "$tmp/out")"
echo "$(tail -n 1 "$tmp/out")"

mkdir -p "$tmp/tree/agent" "$tmp/tree/schema" "$tmp/tree/connectors"
cp "$top_srcdir"/connectors/*.c "$tmp/tree/connectors/"
cp "$top_srcdir"/agent/pipeline.c "$tmp/tree/agent/"
printf 'static int planted(const char *t)\n{\n    return strcmp(t, "scim") == 0;\n}\n' \
    >> "$tmp/tree/agent/pipeline.c"
if "$PYTHON3" "$BOUNDARY" "$tmp/tree" > "$tmp/out2"; then
    fail "a planted type branch was not found: $(cat "$tmp/out2")"
fi
grep -q 'agent/pipeline.c:.*"scim"' "$tmp/out2" || fail "the finding does not name the place"

reg=$(sed -n 's/^ *&conn_\([a-z0-9]*\)_ops,.*/\1/p' "$top_srcdir/connectors/connector.c" | paste -sd'|')
list=$(sed -n 's/.*{"type", CFG_STR, "ldap", CFG_EP, \.values = "\([^"]*\)".*/\1/p' \
    "$top_srcdir/agent/config_keys.c")
[ -n "$reg" ] && [ "$reg" = "$list" ] ||
    fail "the configuration's types ($list) are not the registry ($reg)"
echo "ok: no type branch outside connectors/; the configuration lists the registry: $list"
