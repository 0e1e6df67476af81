#!/bin/bash
# test_plan_drift.sh: runs see the target as it is (LDAP -> LDAP, real slapd on both sides).
#
# 1. Drift: after a run, a migrated user is deleted at the target, another one's attribute is
#    changed there and a member is removed from a group there: plan shows those three changes
#    as drift ("drifted at the target"), run repairs them, the next run writes nothing.
# 2. Ownership: a password changed at the target survives a run that changes the same
#    user's sn in the source (userPassword is create-only); an attribute only the target
#    has (the map does not name it) survives every run; an attribute the source drops is
#    removed from the target (dirmig wrote it).
# 3. With run.verify_target "never" the journal is trusted and a no-change rerun does not
#    look at the target; --verify-target reads it anyway and finds the drift.
# 4. The journal belongs to its target: pointed at another target it is refused (exit 78)
#    unless --rebind-state.
# 5. --json of a run whose target goes away mid-way says "failed" with the exit code.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
require_bindcheck

S=dc=src,dc=example
T=dc=dst,dc=example
gen_users --suffix "$S" --users 40 --groups 3 --schemes ssha --ldif "$DATA/src.ldif" \
    --passwords "$SECRETS/src.pw"
add_canary "$DATA/src.ldif" "$S" "$SECRETS/src.pw"
register_ldif_passwords "$DATA/src.ldif"
cut -f2 "$SECRETS/src.pw" > "$SECRETS/pwonly" && register_secret_file "$SECRETS/pwonly"
skeleton_ldif "$T" "$DATA/dst.ldif"
start_server SRC "$S" "$DATA/src.ldif"
start_server DST "$T" "$DATA/dst.ldif"
users=$(slapd_count SRC "ou=people,$S" '(objectClass=inetOrgPerson)')
mkconfig "$WORK/d.json" SRC DST

adm() { # NAME: ldapmodify as the admin of instance NAME, LDIF on stdin
    local u="${1}_URI" s="${1}_SUFFIX" p="${1}_PW_FILE"
    ldapmodify -x -H "${!u}" -D "cn=admin,${!s}" -y "${!p}" > /dev/null || fail "ldapmodify on $1"
}

dm run1 -c "$WORK/d.json" run --json
expect_rc 0 run1 "first run"
expect_json "$WORK/run1.out" status done exit_code 0 users.created "$users" groups.created 3
dump_norm DST "ou=people,$T ou=groups,$T" one "$DATA/after-run1"

# ---- 1. drift ----
m=$(slapd_search DST -b "cn=grp0001,ou=groups,$T" -s base member | sed -n 's/^member: //p' | head -n 1)
[ -n "$m" ] || fail "grp0001 has no member at the target"
adm DST << EOF
dn: uid=user00003,ou=people,$T
changetype: delete

dn: uid=user00004,ou=people,$T
changetype: modify
replace: telephoneNumber
telephoneNumber: +1 999 9999

dn: cn=grp0001,ou=groups,$T
changetype: modify
delete: member
member: $m
EOF
dm plan1 -c "$WORK/d.json" plan --json
expect_rc 0 plan1 "plan after drift"
expect_json "$WORK/plan1.out" users.create 1 users.update 1 groups.update 1 total.unchanged \
    $((users + 3 - 3)) reasons.drift 2 reasons.missing 1 target.verified true
grep -q 'create uid=user00003,ou=people,dc=dst,dc=example .*(drifted at the target: missing' \
    "$WORK/plan1.err" || fail "plan does not show the deleted user as drift"
grep -q 'update uid=user00004,ou=people,dc=dst,dc=example \[telephoneNumber\] (drifted at the target)' \
    "$WORK/plan1.err" || fail "plan does not name the drifted attribute"
grep -q 'update cn=grp0001,ou=groups,dc=dst,dc=example \[member\] (drifted at the target)' \
    "$WORK/plan1.err" || fail "plan does not show the removed member"
[ "$(slapd_count DST "uid=user00003,ou=people,$T")" = 0 ] || fail "plan wrote to the target"

dm run2 -c "$WORK/d.json" run --json
expect_rc 0 run2 "run repairing the drift"
expect_json "$WORK/run2.out" users.created 1 users.updated 1 groups.updated 1 total.failed 0
dump_norm DST "ou=people,$T ou=groups,$T" one "$DATA/after-repair"
cmp -s "$DATA/after-run1" "$DATA/after-repair" ||
    fail "the repaired target differs from the target after the first run"
dm run3 -c "$WORK/d.json" run --json
expect_rc 0 run3 "run after the repair"
expect_json "$WORK/run3.out" total.created 0 total.updated 0 total.unchanged $((users + 3))

# ---- 2. ownership ----
# a user that has a telephoneNumber (the source will drop it)
U6=$(slapd_search SRC -b "ou=people,$S" '(&(telephoneNumber=*)(!(uid=user00003))(!(uid=user00004)))' 1.1 |
    sed -n 's/^dn: uid=\([^,]*\),.*/\1/p' | head -n 1)
[ -n "$U6" ] || fail "no user with a telephoneNumber in the fixture"
NEWPW="Changed-at-target-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
register_secret "$NEWPW"
ldappasswd -x -H "$DST_URI" -D "cn=admin,$T" -y "$DST_PW_FILE" -s "$NEWPW" \
    "uid=$U6,ou=people,$T" > /dev/null || fail "ldappasswd at the target"
adm DST << EOF
dn: uid=$U6,ou=people,$T
changetype: modify
add: description
description: added at the target by its own admin
EOF
adm SRC << EOF
dn: uid=$U6,ou=people,$S
changetype: modify
replace: sn
sn: Renamed
-
delete: telephoneNumber
EOF
dm run4 -c "$WORK/d.json" run --json
expect_rc 0 run4 "run after an sn change"
expect_json "$WORK/run4.out" users.updated 1 reasons.changed 1
slapd_search DST -b "uid=$U6,ou=people,$T" -s base sn description telephoneNumber \
    > "$DATA/u6.ldif"
grep -qx 'sn: Renamed' "$DATA/u6.ldif" || fail "sn was not updated at the target"
grep -qx 'description: added at the target by its own admin' "$DATA/u6.ldif" ||
    fail "an attribute only the target has was removed"
grep -q '^telephoneNumber' "$DATA/u6.ldif" && fail "telephoneNumber (dropped by the source) stayed"
printf 'uid=%s,ou=people,%s\t%s\n' "$U6" "$T" "$NEWPW" > "$SECRETS/newpw"
"$BINDCHECK" "$DST_URI" "$SECRETS/newpw" > "$DATA/bind6.out" ||
    fail "the password changed at the target was reverted: $(cat "$DATA/bind6.out")"

# ---- 3. run.verify_target never: the journal is trusted; --verify-target reads anyway ----
mkconfig "$WORK/never.json" SRC DST run.verify_target=never state.path="$WORK/d.db"
adm DST << EOF
dn: uid=user00007,ou=people,$T
changetype: modify
replace: sn
sn: Changed at the target
EOF
dm never1 -c "$WORK/never.json" run --json
expect_rc 0 never1 "run without target verification"
expect_json "$WORK/never1.out" total.updated 0 target.verified false target.looked_up 0 \
    total.unchanged $((users + 3))
dm never2 -c "$WORK/never.json" run --json --verify-target
expect_rc 0 never2 "run --verify-target"
expect_json "$WORK/never2.out" users.updated 1 reasons.drift 1 target.verified true
mkconfig "$WORK/bad.json" SRC DST run.verify_target=sometimes
dm badverify -c "$WORK/bad.json" plan
expect_rc 78 badverify "run.verify_target sometimes"
grep -q 'run.verify_target: must be "always", "never" or "every N runs"' "$WORK/badverify.err" ||
    fail "no clear message for a bad run.verify_target"

# ---- 4. the journal belongs to its target ----
skeleton_ldif dc=other,dc=example "$DATA/other.ldif"
start_server OTHER dc=other,dc=example "$DATA/other.ldif"
mkconfig "$WORK/other.json" SRC OTHER state.path="$WORK/d.db"
dm other1 -c "$WORK/other.json" run --json
expect_rc 78 other1 "run with a journal of another target"
expect_json "$WORK/other1.out" status failed exit_code 78
grep -q 'belongs to another target' "$WORK/other1.err" || fail "no clear message"
[ "$(slapd_count OTHER "ou=people,dc=other,dc=example")" = 1 ] || fail "the refused run wrote"
dm other2 -c "$WORK/other.json" run --json --rebind-state
expect_rc 0 other2 "run --rebind-state"
expect_json "$WORK/other2.out" users.created "$users" groups.created 3 reasons.missing $((users + 3))

# ---- 5. the target goes away mid-way: failed, with the exit code ----
gen_users --suffix dc=big,dc=example --users 3000 --groups 2 --schemes ssha \
    --ldif "$DATA/big.ldif" --passwords "$SECRETS/big.pw"
register_ldif_passwords "$DATA/big.ldif"
start_server BIG dc=big,dc=example "$DATA/big.ldif"
skeleton_ldif dc=gone,dc=example "$DATA/gone.ldif"
start_server GONE dc=gone,dc=example "$DATA/gone.ldif"
mkconfig "$WORK/gone.json" BIG GONE run.batch_size=50 target.max_retries=1 \
    target.network_timeout_ms=1000 target.timeout_ms=3000
dm_bg gone -c "$WORK/gone.json" run --json
wait_count GONE "ou=people,dc=gone,dc=example" 200 60 "$DM_PID" > /dev/null ||
    fail "the run did not get going"
slapd_kill GONE
dm_wait "$DM_PID" 120
expect_rc 69 gone "run whose target went away"
expect_json "$WORK/gone.out" status failed exit_code 69

check_no_secrets
exit 0
