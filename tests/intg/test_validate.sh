#!/bin/bash
# test_validate.sh: dirmig validate against a real slapd seeded with known defects
# (missing required, duplicates on a unique attribute, too long, wrong type, invalid email,
# not yet active, expired) gives exactly the expected counts and export rows; no pii value
# (mail is pii) appears in any output; run --retry-from takes the problem rows back;
# map --explain shows the steps with pii masked; run refuses entries with blocking problems.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

S=dc=src,dc=example
"$PYTHON3" - "$DATA/src.ldif" "$S" << 'PY' || fail "fixture generation failed"
import sys, datetime, base64
out, S = sys.argv[1], sys.argv[2]
now = datetime.datetime.now(datetime.timezone.utc)
gt = lambda d: (now + datetime.timedelta(days=d)).strftime("%Y%m%d%H%M%SZ")
ents = [f"dn: {S}\nobjectClass: dcObject\nobjectClass: organization\ndc: src\no: src\n",
        f"dn: ou=people,{S}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{S}\nobjectClass: organizationalUnit\nou: groups\n"]
def user(uid, cn, mail=None, emp=None, start=None, end=None, dept=None):
    e = [f"dn: uid={uid},ou=people,{S}", "objectClass: inetOrgPerson", f"uid: {uid}",
         "cn:: " + base64.b64encode(cn.encode()).decode(), "sn: Test"]
    if mail: e.append(f"mail: {mail}")
    if emp: e.append(f"employeeNumber: {emp}")
    if start: e.append(f"carLicense: {start}")
    if end: e.append(f"roomNumber: {end}")
    if dept: e.append(f"departmentNumber: {dept}")
    ents.append("\n".join(e) + "\n")
user("good1", "Good One", "good1@pii.example.org", "1001", start=gt(-100), end=gt(100))
user("good2", "Good Two", "good2@pii.example.org", "1002")
user("nomail", "No Mail", None, "1003")
user("dup1", "Dup One", "Dup@pii.example.org", "1004")
user("dup2", "Dup Two", "dup@PII.example.org", "1005")
user("longcn", "A name far too long for it", "longcn@pii.example.org", "1006")
user("zoe", "Zoë Ångström-Øverbø", "zoe@pii.example.org", "1007")   # 19 chars, 24 bytes
user("badnum", "Bad Number", "badnum@pii.example.org", "12a")
user("bademail", "Bad Email", "not-an-email", "1009")
user("future", "Future Pupil", "future@pii.example.org", "1010", start=gt(60))
user("soon", "Soon Pupil", "soon@pii.example.org", "1011", start=gt(10))
user("expired", "Gone Pupil", "expired@pii.example.org", "1012", start=gt(-400), end=gt(-30))
open(out, "w").write("\n".join(ents))
PY
add_canary "$DATA/src.ldif" "$S"
echo "mail: canary@pii.example.org" >> "$DATA/src.ldif" # the canary entry is last
register_secret "canary@pii.example.org"
for m in good1 good2 dup dup longcn zoe badnum future soon expired; do
    register_secret "$m@pii.example.org"
done
register_secret "Dup@pii.example.org"
register_secret "not-an-email"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC "$S" "$DATA/src.ldif"
start_server DST dc=dst,dc=example "$DATA/dst.ldif"

cat > "$WORK/quality.map.json" << 'JSON'
{
  "key": { "source": "uid" },
  "users": {
    "auto": "by-name",
    "exclude": ["carLicense", "roomNumber"],
    "attributes": {
      "mail": { "from": "mail", "transforms": ["trim", "lower"], "type": "email",
                "required": true, "unique": true, "pii": true },
      "cn": { "from": "cn", "max_length": 20 },
      "employeeNumber": { "from": "employeeNumber", "type": "integer" }
    }
  }
}
JSON
mkconfig "$WORK/v.json" SRC DST map.file="$WORK/quality.map.json" \
    source.users.activity.start_attribute=carLicense \
    source.users.activity.start_format=generalized \
    source.users.activity.end_attribute=roomNumber \
    source.users.activity.end_format=generalized \
    source.users.activity.lookahead_days=30

cd "$WORK" || fail "cd"
dm validate -c "$WORK/v.json" validate --json --out "$WORK/export"
expect_rc 65 validate "validate with blocking problems"
expect_json "$WORK/validate.out" checked 13 users 13 with_problems 8 \
    problems.missing_required 1 problems.duplicate 2 problems.too_long 1 \
    problems.wrong_type 1 problems.invalid_email 1 problems.not_yet_active 1 \
    problems.expired 1
# Export rows: one per entry, the right status and problems for each.
"$PYTHON3" - "$WORK/export.jsonl" "$WORK/export.csv" << 'PY' || fail "export rows are wrong"
import sys, json, csv
rows = {json.loads(l)["key"]: json.loads(l) for l in open(sys.argv[1])}
want = {"good1": [], "good2": [], "zoe": [], "soon": [], "canary": [],
        "nomail": ["missing_required:mail"], "dup1": ["duplicate:mail"],
        "dup2": ["duplicate:mail"], "longcn": ["too_long:cn"],
        "badnum": ["wrong_type:employeeNumber"], "bademail": ["invalid_email:mail"],
        "future": ["not_yet_active:carLicense"], "expired": ["expired:roomNumber"]}
assert set(rows) == set(want), sorted(rows)
for k, w in want.items():
    got = sorted(p["category"] + ":" + p["attribute"] for p in rows[k]["problems"])
    assert got == sorted(w), (k, got, w)
    assert rows[k]["status"] == ("ok" if not w else "inactive" if k in ("future", "expired") else "problem"), (k, rows[k]["status"])
    for v in rows[k]["values"].get("mail", []):
        assert v == "***", (k, "mail not masked")
assert rows["zoe"]["values"]["cn"] == ["Zoë Ångström-Øverbø"]
crows = list(csv.DictReader(open(sys.argv[2])))
assert len(crows) == 13 and {r["key"] for r in crows} == set(want)
assert [r["problems"] for r in crows if r["key"] == "longcn"] == ["too_long:cn"]
PY

# Which categories block is configurable: with none blocking, validate exits 0.
mkconfig "$WORK/v2.json" SRC DST map.file="$WORK/quality.map.json" \
    source.users.activity.start_attribute=carLicense \
    source.users.activity.start_format=generalized \
    source.users.activity.end_attribute=roomNumber \
    source.users.activity.end_format=generalized validate.blocking='["expired"]'
dm validate2 -c "$WORK/v2.json" validate --out "$WORK/export2"
expect_rc 65 validate2 "validate with only 'expired' blocking"
mkconfig "$WORK/v3.json" SRC DST map.file="$WORK/quality.map.json" validate.blocking='["bad_chars"]'
dm validate3 -c "$WORK/v3.json" validate --out "$WORK/export3"
expect_rc 0 validate3 "validate with no blocking category present"

# map --explain: every step shown, pii masked.
dm explain -c "$WORK/v.json" map --explain dup1
expect_rc 0 explain "map --explain"
grep -q 'mail' "$WORK/explain.out" || fail "explain does not mention mail"
grep -q 'lower' "$WORK/explain.out" || fail "explain does not show the lower step"
grep -q '\*\*\*' "$WORK/explain.out" || fail "explain does not mask pii"
grep -qi 'pii.example.org' "$WORK/explain.out" && fail "explain shows a pii value"
dm explain_missing -c "$WORK/v.json" map --explain no-such-user
expect_rc 66 explain_missing "map --explain of an unknown key"

# run refuses entries with blocking problems (never sent), migrates the rest. The two users
# that share a mail (unique) are both held back: a run never sends what validate blocks.
dm run1 -c "$WORK/v.json" run --json
expect_rc 65 run1 "run with invalid entries"
expect_json "$WORK/run1.out" users.created 5 users.failed 4 users.held 2 users.inactive 2 \
    errors.collision_source 2
for u in dup1 dup2; do
    grep -q "held back \[collision_source\]: mail \"\*\*\*\" is shared by 2 source objects.*source uid=$u,ou=people,dc=src" \
        "$WORK/v.log" || fail "the held-back $u is not named with the value masked"
done
for u in nomail longcn badnum bademail future expired dup1 dup2; do
    slapd_search DST -b "uid=$u,ou=people,dc=dst,dc=example" -s base 1.1 > /dev/null 2>&1 &&
        fail "uid=$u was written to the target"
done

# Fix two entries at the source, re-run just the exported problems.
ldapmodify -x -H "$SRC_URI" -D "cn=admin,$S" -y "$SRC_PW_FILE" > /dev/null << EOF || fail "ldapmodify"
dn: uid=nomail,ou=people,$S
changetype: modify
add: mail
mail: nomail@pii.example.org

dn: uid=longcn,ou=people,$S
changetype: modify
replace: cn
cn: Short Name
EOF
register_secret "nomail@pii.example.org"
dm retry -c "$WORK/v.json" run --json --retry-from "$WORK/export.csv"
expect_rc 65 retry "run --retry-from (badnum, bademail still bad)"
expect_json "$WORK/retry.out" users.read 13 users.skipped 5 users.inactive 2 users.created 2 \
    users.failed 2 users.held 2
for u in nomail longcn; do
    slapd_search DST -b "uid=$u,ou=people,dc=dst,dc=example" -s base 1.1 > /dev/null ||
        fail "uid=$u was not migrated by the retry"
done
dm retry_bad -c "$WORK/v.json" run --retry-from "$WORK/v.json"
expect_rc 65 retry_bad "run --retry-from a file that is not an export"
grep -q 'not a dirmig validation export\|not a validation export row' "$WORK/retry_bad.err" ||
    fail "no clear message for a bad --retry-from file"

check_no_secrets
log "validation export, blocking categories, explain, retry-from and constraints OK"
