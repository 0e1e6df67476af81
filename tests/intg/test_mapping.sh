#!/bin/bash
# test_mapping.sh: dirmig mapping between two real slapd directories with planted
# matches, source-only, target-only and ambiguous users reports each exactly, by the map's
# key (uid) and its fallback rule (mail).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

S=dc=src,dc=example
T=dc=dst,dc=example
mkusers() { # OUT SUFFIX "uid:mail[:ou]" ...
    local out=$1 suf=$2 spec uid mail ou
    shift 2
    skeleton_ldif "$suf" "$out"
    printf '\ndn: ou=staff,%s\nobjectClass: organizationalUnit\nou: staff\n' "$suf" >> "$out"
    for spec in "$@"; do
        IFS=: read -r uid mail ou <<< "$spec"
        printf '\ndn: uid=%s,ou=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: X\n' \
            "$uid" "${ou:-people}" "$suf" "$uid" "$uid" >> "$out"
        [ -n "$mail" ] && printf 'mail: %s\n' "$mail" >> "$out"
    done
}
# u1 matches by uid; u2 matches by mail only (renamed at the target); u3 and u5 have no
# counterpart; u4 has two target candidates (same uid in two OUs); t9 exists only in the target.
mkusers "$DATA/src.ldif" "$S" u1:u1@example.org u2:u2@example.org u3:u3@example.org \
    u4:u4@example.org u5:
mkusers "$DATA/dst.ldif" "$T" u1:other1@example.org "renamed2:U2@Example.org" \
    u4:x4@example.org "u4:y4@example.org:staff" t9:t9@example.org
add_canary "$DATA/src.ldif" "$S"
start_server SRC "$S" "$DATA/src.ldif"
start_server DST "$T" "$DATA/dst.ldif"

cat > "$WORK/corr.map.json" << 'JSON'
{ "key": { "source": "uid", "target": "uid",
           "fallback": [ { "source": "mail", "target": "mail" } ] } }
JSON
mkconfig "$WORK/m.json" SRC DST map.file="$WORK/corr.map.json" \
    target.users='{"base": "dc=dst,dc=example", "filter": "(objectClass=inetOrgPerson)"}'
dm mapping -c "$WORK/m.json" mapping --json --out "$WORK/corr"
expect_rc 0 mapping "dirmig mapping"
# canary: source-only as well (no target counterpart).
expect_json "$WORK/mapping.out" matched 2 ambiguous 1 source_only 3 target_only 1
"$PYTHON3" - "$WORK/corr.jsonl" "$WORK/corr.csv" << 'PY' || fail "mapping rows are wrong"
import sys, json, csv
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["status"], []).append(r)
m = {r["source_dn"].split(",")[0]: r for r in by["matched"]}
assert m["uid=u1"]["target_dn"] == "uid=u1,ou=people,dc=dst,dc=example" and m["uid=u1"]["rule"] == "uid=uid", m
assert m["uid=u2"]["target_dn"] == "uid=renamed2,ou=people,dc=dst,dc=example" and m["uid=u2"]["rule"] == "mail=mail", m
a = by["ambiguous"][0]
assert a["source_dn"].startswith("uid=u4,") and len(a["target_dn"].split(";")) == 2, a
assert sorted(r["source_dn"].split(",")[0] for r in by["source-only"]) == ["uid=canary", "uid=u3", "uid=u5"]
assert [r["target_dn"] for r in by["target-only"]] == ["uid=t9,ou=people,dc=dst,dc=example"]
assert len(list(csv.DictReader(open(sys.argv[2])))) == len(rows) == 7
PY
check_no_secrets
log "matched, ambiguous, source-only and target-only reported exactly"
