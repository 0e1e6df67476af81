#!/bin/bash
# test_examples.sh: every shipped configuration example (examples/*.json) and starter map
# (schema/maps/*.json) loads with `dirmig check --offline`, and so do the configuration
# examples of README.md and dirmig.json(5). Two layouts: the build tree (the uninstalled
# binary finds "maps/..." in the source tree) and the installed one (`make install-data`
# into a staging directory, found through DIRMIG_DATADIR as $(pkgdatadir) would be).
# Nothing is contacted: the examples name hosts that do not exist.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

: "${PKGDATADIR:?PKGDATADIR is set by make check}"
unset DIRMIG_DATADIR

# offline TAG CONFIG: check --offline passes and says so; --json says status ok
offline() {
    dm "$1" -c "$2" check --offline
    expect_rc 0 "$1" "check --offline $2"
    grep -q "^check: ok" "$WORK/$1.out" || fail "$1: $(cat "$WORK/$1.out")"
    dm "$1-json" -c "$2" check --offline --json
    expect_rc 0 "$1-json" "check --offline --json $2"
    expect_json "$WORK/$1-json.out" status ok exit_code 0 offline true
}

# ---- 1. the shipped examples, from the build tree ----
n=0
for ex in "$top_srcdir"/examples/*.json; do
    name=$(basename "$ex" .json)
    offline "ex-$name" "$ex"
    # the map named as maps/<x>.json is the one in the source tree
    mf=$(json_get "$ex" map.file)
    if [ "$mf" != null ]; then
        grep -qF "  map: $(cd "$top_srcdir/schema" && pwd -P)/$mf" "$WORK/ex-$name.out" ||
            fail "$name: map not resolved in the source tree: $(grep 'map:' "$WORK/ex-$name.out")"
    fi
    n=$((n + 1))
done
[ "$n" -ge 4 ] || fail "only $n examples found"
log "ok: $n examples load offline from the build tree"

# ---- 2. every starter map, by its data-directory name ----
m=0
for map in "$top_srcdir"/schema/maps/*.json; do
    name=$(basename "$map")
    mkconfig "$WORK/map-$name" - - source.uri=ldap://old.example.org source.base=dc=example,dc=org \
        source.bind_dn=- source.bind_pw_file=- target.uri=ldap://new.example.org \
        target.base=dc=example,dc=org target.bind_dn=- target.bind_pw_file=- \
        "map={\"file\": \"maps/$name\"}"
    if grep -q '"ad-user.json"\|ad-user' "$map"; then
        "$PYTHON3" - "$WORK/map-$name" << 'PYEOF' || fail "cannot set the AD dialect"
import json, sys
c = json.load(open(sys.argv[1])); c["source"]["dialect"] = "ad"
json.dump(c, open(sys.argv[1], "w"))
PYEOF
    fi
    offline "map-$name" "$WORK/map-$name"
    m=$((m + 1))
done
log "ok: $m starter maps load offline"

# ---- 3. the installed layout ----
inst=$TESTDIR/inst
make -s -C "$top_builddir" install-data DESTDIR="$inst" > "$WORK/install.log" 2>&1 ||
    fail "make install-data: $(tail -5 "$WORK/install.log")"
for map in "$top_srcdir"/schema/maps/*.json "$top_srcdir"/schema/profiles/*.json; do
    sub=$(basename "$(dirname "$map")")
    [ -f "$inst$PKGDATADIR/$sub/$(basename "$map")" ] ||
        fail "$sub/$(basename "$map") is not installed into \$(pkgdatadir)/$sub"
done
for ex in "$top_srcdir"/examples/*.json; do
    name=$(basename "$ex" .json)
    # as an administrator would: the example copied to the configuration directory
    mkdir -p "$TESTDIR/etc" && cp "$ex" "$TESTDIR/etc/dirmig.json"
    DIRMIG_DATADIR=$inst$PKGDATADIR offline "inst-$name" "$TESTDIR/etc/dirmig.json"
    mf=$(json_get "$ex" map.file)
    if [ "$mf" != null ]; then
        grep -qF "  map: $inst$PKGDATADIR/$mf" "$WORK/inst-$name.out" ||
            fail "$name: map not found installed: $(grep 'map:' "$WORK/inst-$name.out")"
    fi
done
log "ok: the examples load offline against the installed maps and profiles"

# ---- 4. the configuration examples of the documentation ----
"$PYTHON3" - "$top_srcdir/README.md" "$top_srcdir/doc/dirmig.json.5.in" "$WORK/doc" << 'PYEOF' ||
import json, re, sys
readme, man, out = sys.argv[1:4]
blocks = re.findall(r"```json\n(.*?)```", open(readme).read(), re.S)
text = open(man).read()
for b in re.findall(r"^\.(?:nf|EX)\n(.*?)^\.(?:fi|EE)$", text, re.S | re.M):
    b = b.replace("\\-", "-").replace("\\e", "\\")
    if b.lstrip().startswith("{") or b.lstrip().startswith('"'):
        blocks.append(b)
base = {"source": {"uri": "ldap://old.example.org", "base": "dc=example,dc=org"},
        "target": {"uri": "ldap://new.example.org", "base": "dc=example,dc=org"}}
n = 0
for b in blocks:
    b = b.strip()
    if b.startswith('"'):  # a fragment: one top-level key of a configuration
        doc = dict(base); doc.update(json.loads("{" + b + "}"))
    else:
        doc = json.loads(b)
    n += 1
    json.dump(doc, open("%s-%d.json" % (out, n), "w"), indent=2)
print(n)
PYEOF
    fail "cannot extract the documentation's examples"
k=0
for f in "$WORK"/doc-*.json; do
    offline "doc-$(basename "$f" .json)" "$f"
    k=$((k + 1))
done
[ "$k" -ge 4 ] || fail "only $k documentation examples found"
log "ok: $k configuration examples of README.md and dirmig.json(5) load offline"
exit 0
