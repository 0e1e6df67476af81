#!/bin/bash
# test_plan_saved.sh: saved plans (dirmig plan --out FILE, dirmig run --plan FILE), LDAP to
# LDAP between two real slapd servers.
#
# 1. plan --out writes the whole stream of changes as JSON Lines: a header (plan id, run,
#    config digest, target identity, time), one line per change (operation, kind, key, DNs,
#    reason, attribute names, source and target digests), a trailer with the count; mode
#    0600, no temporary file left, no attribute value in it (a mail, a name, a hash).
# 2. run --plan after source changes: the object changed in the source is refused and
#    listed, the one deleted from the source is refused and listed, a user added to the
#    source after the plan is not created, the groups the deleted user left (changed in the
#    source) are refused, every other change is made (exit 65, the refusals journaled as
#    plan_stale); a plain run afterwards does the rest.
# 3. a plan applied after the target changed: the object changed at the target is refused
#    and listed, the other planned update is made.
# 4. --max-age refuses a stale plan (exit 65, status "refused", nothing written); a plan for
#    another target or made with another configuration is refused the same way.
# 5. leavers in a saved plan: disabled only when still leavers; one that came back is
#    refused as no longer a leaver.
# 6. malformed plan files are refused with FILE:LINE (exit 65), a missing one with exit 66;
#    the options: --max-age without --plan, --plan with --wave, a bad duration (exit 64).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

S=dc=src,dc=example
T=dc=dst,dc=example
gen_users --suffix "$S" --users 30 --groups 3 --schemes ssha --ldif "$DATA/src.ldif" \
    --passwords "$SECRETS/src.pw"
add_canary "$DATA/src.ldif" "$S" "$SECRETS/src.pw"
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif "$T" "$DATA/dst.ldif"
start_server SRC "$S" "$DATA/src.ldif"
start_server DST "$T" "$DATA/dst.ldif"
users=$(slapd_count SRC "ou=people,$S" '(objectClass=inetOrgPerson)')
mkconfig "$WORK/d.json" SRC DST

adm() { # NAME: ldapmodify as the admin of instance NAME, LDIF on stdin
    local u="${1}_URI" s="${1}_SUFFIX" p="${1}_PW_FILE"
    ldapmodify -x -H "${!u}" -D "cn=admin,${!s}" -y "${!p}" > /dev/null || fail "ldapmodify on $1"
}

# plan_check FILE: the file's structure (header, changes, trailer) and that no value of the
# source is in it; prints the number of changes.
plan_check() {
    "$PYTHON3" - "$1" "$DATA/src.ldif" << 'EOF'
import base64, json, re, sys
path, ldif = sys.argv[1], sys.argv[2]
lines = open(path, encoding="utf-8").read().split("\n")
assert lines[-1] == "", "the file does not end with a newline"
lines = [json.loads(l) for l in lines[:-1]]
h, changes, t = lines[0], lines[1:-1], lines[-1]
assert h["dirmig_plan"] == 1, h
assert re.fullmatch(r"[0-9a-f]{32}", h["plan_id"]), h
assert re.fullmatch(r"[0-9a-f]{64}", h["config_digest"]), h
assert h["target"].startswith("ldap ldap://127.0.0.1:"), h
assert h["scope"] == "full" and h["created_unix"] > 0 and h["run"] > 0, h
assert t == {"end": True, "changes": len(changes)}, t
keys = set()
for c in changes:
    assert set(c) <= {"op", "kind", "key", "source_dn", "target", "ref", "reason",
                      "attributes", "state", "source_digest", "target_digest"}, c
    assert c["op"] in ("create", "update", "move", "disable", "delete"), c
    assert re.fullmatch(r"[0-9a-f]{64}|absent", c["source_digest"]), c
    assert re.fullmatch(r"[0-9a-f]{64}|absent", c["target_digest"]), c
    assert all(re.fullmatch(r"[A-Za-z0-9;.-]+", a) for a in c["attributes"]), c
    assert (c["kind"], c["key"]) not in keys, c
    keys.add((c["kind"], c["key"]))
# no value of any attribute other than the naming ones (which are in the DNs) is in the file
text = open(path, encoding="utf-8").read()
for line in open(ldif, encoding="utf-8"):
    name, sep, value = line.rstrip("\n").partition(": ")
    if not sep or name.lower() in ("dn", "uid", "cn", "ou", "objectclass", "member",
                                   "uniquemember", "dc", "memberuid", "sn", "givenname"):
        continue
    if len(value) >= 6 and value in text:
        sys.exit("value of %s found in the plan" % name)
print(len(changes))
EOF
}

# ---- 1. plan --out ----
dm plan1 -c "$WORK/d.json" plan --out "$WORK/p1.jsonl" --json
expect_rc 0 plan1 "plan --out"
expect_json "$WORK/plan1.out" status done users.create "$users" groups.create 3 \
    plan.file "$WORK/p1.jsonl" plan.changes $((users + 3))
n=$(plan_check "$WORK/p1.jsonl") || fail "p1.jsonl is not a good plan"
[ "$n" = $((users + 3)) ] || fail "p1.jsonl has $n changes, want $((users + 3))"
[ "$(stat -c %a "$WORK/p1.jsonl")" = 600 ] || fail "the plan file is not 0600"
ls "$WORK"/p1.jsonl.tmp.* > /dev/null 2>&1 && fail "a temporary plan file was left"
grep -q "saved plan $WORK/p1.jsonl: $((users + 3)) changes" "$WORK/plan1.err" ||
    fail "plan does not name the saved plan"
[ "$(slapd_count DST "ou=people,$T")" = 1 ] || fail "plan --out wrote to the target"
log "ok: plan --out wrote $n changes, 0600, no values"

# ---- 2. run --plan after source changes ----
# user00006 leaves the source and its groups (as the refint overlay would do)
for g in $(slapd_search SRC -b "ou=groups,$S" "(|(member=uid=user00006,ou=people,$S)(uniqueMember=uid=user00006,ou=people,$S))" 1.1 |
    sed -n 's/^dn: //p'); do
    printf 'dn: %s\nchangetype: modify\ndelete: member\nmember: uid=user00006,ou=people,%s\n' "$g" "$S" | adm SRC
done
adm SRC << EOF
dn: uid=user00005,ou=people,$S
changetype: modify
replace: mail
mail: changed-after-the-plan@example.org

dn: uid=user00006,ou=people,$S
changetype: delete

dn: uid=late,ou=people,$S
changetype: add
objectClass: inetOrgPerson
uid: late
cn: Late Comer
sn: Comer
EOF
dm run1 -c "$WORK/d.json" run --plan "$WORK/p1.jsonl" --json
expect_rc 65 run1 "run --plan with two stale objects"
expect_json "$WORK/run1.out" status done exit_code 65 users.created $((users - 2)) \
    groups.created 1 plan.applied $((users - 1)) plan.refused 4 plan.outside 1 \
    errors.plan_stale 4
"$PYTHON3" - "$WORK/run1.out" "$S" << 'EOF' || fail "the refusals are not listed as expected"
import json, sys
doc, s = json.load(open(sys.argv[1])), sys.argv[2]
got = sorted((r["op"], r["kind"], r["dn"], r["why"]) for r in doc["plan"]["refused_changes"])
want = sorted([
    ("create", "user", "uid=user00005,ou=people,dc=dst,dc=example",
     "the source object changed since the plan"),
    ("create", "user", "uid=user00006,ou=people,dc=dst,dc=example",
     "the object was not in this run's source read (gone or out of scope since the plan)"),
    # the groups user00006 left changed in the source too
    ("create", "group", "cn=grp0000,ou=groups,dc=dst,dc=example",
     "the source object changed since the plan"),
    ("create", "group", "cn=grp0001,ou=groups,dc=dst,dc=example",
     "the source object changed since the plan"),
])
assert got == want, got
EOF
grep -q "refused create  user uid=user00005,ou=people,$T: the source object changed since the plan" \
    "$WORK/run1.err" || fail "the text summary does not list user00005"
[ "$(slapd_count DST "uid=user00005,ou=people,$T")" = 0 ] || fail "user00005 was created"
[ "$(slapd_count DST "uid=late,ou=people,$T")" = 0 ] || fail "a user not in the plan was created"
[ "$(slapd_count DST "uid=user00007,ou=people,$T")" = 1 ] || fail "user00007 was not created"
"$PYTHON3" - "$WORK/d.db" << 'EOF' || fail "the refusals are not journaled"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
rows = con.execute("select dn, message from errors where category = 'plan_stale' "
                   "order by dn").fetchall()
assert len(rows) == 4 and all("saved plan line" in m for _, m in rows), rows
assert sorted(d.split(",")[0] for d, _ in rows) == ["cn=grp0000", "cn=grp0001", "uid=user00005",
                                                   "uid=user00006"], rows
EOF
dm run2 -c "$WORK/d.json" run --json
expect_rc 0 run2 "a plain run after the plan"
expect_json "$WORK/run2.out" users.created 2 groups.created 2 total.failed 0
log "ok: run --plan refused and listed the changed and the deleted object, made the rest"

# ---- 3. the target changed since the plan ----
adm SRC << EOF
dn: uid=user00007,ou=people,$S
changetype: modify
replace: sn
sn: Seven

dn: uid=user00008,ou=people,$S
changetype: modify
replace: sn
sn: Eight
EOF
dm plan2 -c "$WORK/d.json" plan --out "$WORK/p2.jsonl" --json
expect_rc 0 plan2 "second plan"
expect_json "$WORK/plan2.out" users.update 2 plan.changes 2
adm DST << EOF
dn: uid=user00007,ou=people,$T
changetype: modify
replace: telephoneNumber
telephoneNumber: +1 555 0107
EOF
dm run3 -c "$WORK/d.json" run --plan "$WORK/p2.jsonl" --json
expect_rc 65 run3 "run --plan after a change at the target"
expect_json "$WORK/run3.out" users.updated 1 plan.applied 1 plan.refused 1 \
    plan.refused_changes.0.dn "uid=user00007,ou=people,$T" \
    plan.refused_changes.0.why "the target object changed since the plan"
slapd_search DST -b "uid=user00008,ou=people,$T" -s base sn | grep -qx 'sn: Eight' ||
    fail "user00008 was not updated"
slapd_search DST -b "uid=user00007,ou=people,$T" -s base sn | grep -qx 'sn: Seven' &&
    fail "user00007 was updated although the target changed since the plan"
log "ok: a change at the target since the plan refuses that object only"

# ---- 4. --max-age, another target, another configuration ----
dm plan3 -c "$WORK/d.json" plan --out "$WORK/p3.jsonl" --json
expect_rc 0 plan3 "third plan"
sleep 2
dm old -c "$WORK/d.json" run --plan "$WORK/p3.jsonl" --max-age 1s --json
expect_rc 65 old "a plan older than --max-age"
expect_json "$WORK/old.out" status refused exit_code 65 total.updated 0
grep -q "more than --max-age allows" "$WORK/old.err" || fail "no reason for the refusal"
slapd_search DST -b "uid=user00007,ou=people,$T" -s base sn | grep -qx 'sn: Seven' &&
    fail "a refused plan wrote"
dm young -c "$WORK/d.json" run --plan "$WORK/p3.jsonl" --max-age 2h --json
expect_rc 0 young "a plan younger than --max-age"
expect_json "$WORK/young.out" status done users.updated 1 plan.applied 1
skeleton_ldif dc=other,dc=example "$DATA/other.ldif"
start_server OTHER dc=other,dc=example "$DATA/other.ldif"
mkconfig "$WORK/other.json" SRC OTHER
dm plan4 -c "$WORK/d.json" plan --out "$WORK/p4.jsonl"
expect_rc 0 plan4 "plan for the other-target test"
dm othertgt -c "$WORK/other.json" run --plan "$WORK/p4.jsonl" --json
expect_rc 65 othertgt "a plan made for another target"
expect_json "$WORK/othertgt.out" status refused total.created 0
grep -q "the plan was made for another target" "$WORK/othertgt.err" || fail "no clear message"
[ "$(slapd_count OTHER "ou=people,dc=other,dc=example")" = 1 ] || fail "the refused plan wrote"
mkconfig "$WORK/d2.json" SRC DST run.batch_size=100 state.path="$WORK/d.db"
dm othercfg -c "$WORK/d2.json" run --plan "$WORK/p4.jsonl" --json
expect_rc 65 othercfg "a plan made with another configuration"
expect_json "$WORK/othercfg.out" status refused
grep -q "another configuration or map" "$WORK/othercfg.err" || fail "no clear message"
log "ok: --max-age, another target and another configuration refuse the whole plan"

# ---- 5. leavers in a saved plan ----
# users marked employeeType=left are out of scope: leavers (their key stays the same, so one
# can come back)
mkconfig "$WORK/l.json" SRC DST state.path="$WORK/d.db" \
    'source.users.filter=(&(objectClass=inetOrgPerson)(!(employeeType=left)))' \
    'target.disable={"attribute": "description", "value": "disabled by dirmig"}'
for u in user00010 user00011; do
    printf 'dn: uid=%s,ou=people,%s\nchangetype: modify\nadd: employeeType\nemployeeType: left\n' "$u" "$S" | adm SRC
done
dm plan5 -c "$WORK/l.json" plan --out "$WORK/p5.jsonl" --json --allow-deletes 2
expect_rc 0 plan5 "plan with two leavers"
[ "$(grep -c '"op":"disable","kind":"user".*"reason":"leaver"' "$WORK/p5.jsonl")" = 2 ] ||
    fail "the plan does not hold the two leavers: $(cat "$WORK/p5.jsonl")"
# user00011 comes back before the run
printf 'dn: uid=user00011,ou=people,%s\nchangetype: modify\ndelete: employeeType\n' "$S" | adm SRC
dm run5 -c "$WORK/l.json" run --plan "$WORK/p5.jsonl" --json --allow-deletes 2
expect_rc 65 run5 "run --plan with a leaver that came back"
expect_json "$WORK/run5.out" plan.applied 1 plan.refused 1 \
    plan.refused_changes.0.dn "uid=user00011,ou=people,$T" \
    plan.refused_changes.0.why "no longer a leaver (or only the target's) in this run"
slapd_search DST -b "uid=user00010,ou=people,$T" -s base description |
    grep -qx 'description: disabled by dirmig' || fail "the leaver user00010 was not disabled"
slapd_search DST -b "uid=user00011,ou=people,$T" -s base description |
    grep -q 'disabled by dirmig' && fail "user00011, back in the source, was disabled"
log "ok: a saved plan disables a leaver only while it still is one"

# ---- 6. malformed plan files and options ----
bad_plan() { # TAG WANT_GREP: run --plan $WORK/TAG.jsonl fails with exit 65 naming FILE:LINE
    dm "$1" -c "$WORK/d.json" run --plan "$WORK/$1.jsonl"
    expect_rc 65 "$1" "malformed plan $1"
    grep -qF "$WORK/$1.jsonl:$2" "$WORK/$1.err" || fail "$1: $(cat "$WORK/$1.err")"
}
head -n 1 "$WORK/p2.jsonl" > "$WORK/trunc.jsonl"
bad_plan trunc "2: the plan ends before its last line"
sed '2s/"op":"update"/"op":"frobnicate"/' "$WORK/p2.jsonl" > "$WORK/badop.jsonl"
bad_plan badop '2: "op" "frobnicate" is not create, update, move, disable or delete'
sed '3s/"source_digest":"[0-9a-f]*"/"source_digest":"xyz"/' "$WORK/p2.jsonl" > "$WORK/baddig.jsonl"
bad_plan baddig '3: "source_digest" must be 64 hex digits or "absent"'
{ head -n 2 "$WORK/p2.jsonl"; echo 'not json'; tail -n 2 "$WORK/p2.jsonl"; } > "$WORK/notjson.jsonl"
bad_plan notjson "3: not JSON"
{ head -n 2 "$WORK/p2.jsonl"; sed -n 2p "$WORK/p2.jsonl"; sed -n 3,4p "$WORK/p2.jsonl"; } > "$WORK/dup.jsonl"
sed -i 's/"changes":2}/"changes":3}/' "$WORK/dup.jsonl"
bad_plan dup "3: a second change for user"
sed '$s/"changes":2/"changes":5/' "$WORK/p2.jsonl" > "$WORK/count.jsonl"
bad_plan count "4: the plan says it has 5 changes, the file holds 2"
dm missing -c "$WORK/d.json" run --plan "$WORK/no-such-plan.jsonl"
expect_rc 66 missing "a missing plan file"
dm maxage-alone -c "$WORK/d.json" run --max-age 1h
expect_rc 64 maxage-alone "--max-age without --plan"
dm plan-wave -c "$WORK/d.json" run --plan "$WORK/p2.jsonl" --wave x
expect_rc 64 plan-wave "--plan with --wave"
dm bad-age -c "$WORK/d.json" run --plan "$WORK/p2.jsonl" --max-age 3y
expect_rc 64 bad-age "--max-age 3y"
dm noplace -c "$WORK/d.json" plan --out "$WORK/no-such-dir/p.jsonl"
expect_rc 73 noplace "plan --out into a directory that does not exist"
grep -q "no-such-dir/p.jsonl: cannot create the plan file" "$WORK/noplace.err" || fail "no clear message"
dm plan-on-plan -c "$WORK/d.json" plan --plan "$WORK/p2.jsonl"
expect_rc 64 plan-on-plan "plan --plan"
log "ok: malformed plans refused at their line, bad options refused"

check_no_secrets
exit 0
