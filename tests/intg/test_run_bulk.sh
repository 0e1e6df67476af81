#!/bin/bash
# test_run_bulk.sh: 10,000 users (every password scheme) and 100 groups (one of 5,000
# members, one nested, one with an out-of-scope member). Checks: no failure, exactly one
# unresolved member, every user binds at the target with its original password, every entry
# and membership identical, a second run changes nothing, and 3 source edits give exactly 3
# updates. Written on four connections (target.write_connections 4): the same result.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
require_bindcheck

N_USERS=${BULK_USERS:-10000}
N_GROUPS=${BULK_GROUPS:-100}
EXT_DN=uid=ext00000,ou=contractors,dc=dst,dc=example # rebased name of the planted member

gen_users --suffix dc=src,dc=example --users "$N_USERS" --groups "$N_GROUPS" --seed 7 --ldif "$DATA/src.ldif" --passwords "$SECRETS/src.pw"
add_canary "$DATA/src.ldif" dc=src,dc=example "$SECRETS/src.pw"
register_ldif_passwords "$DATA/src.ldif"
cut -f2 "$SECRETS/src.pw" > "$SECRETS/src.pwonly" && register_secret_file "$SECRETS/src.pwonly"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC dc=src,dc=example "$DATA/src.ldif"
start_server DST dc=dst,dc=example "$DATA/dst.ldif"
users=$((N_USERS + 1)) # + canary

mkconfig "$WORK/bulk.json" SRC DST "target.write_connections=4"
log "running dirmig on $users users, $N_GROUPS groups"
t0=$(date +%s)
dm run1 -c "$WORK/bulk.json" run --json
expect_rc 0 run1 "dirmig run"
log "first run took $(($(date +%s) - t0)) s"
# target.write_connections 4: the batches are written on four connections
grep -q "writing on 4 connections" "$WORK/bulk.log" ||
    fail "the run did not write on 4 connections (target.write_connections 4)"
expect_json "$WORK/run1.out" status "done" \
    total.failed 0 \
    users.created "$users" \
    groups.created "$N_GROUPS" \
    unresolved_members 1

# Every user binds at the target with its original password.
sed 's/,dc=src,dc=example\t/,dc=dst,dc=example\t/' "$SECRETS/src.pw" > "$SECRETS/dst.pw"
"$BINDCHECK" "$DST_URI" "$SECRETS/dst.pw" > "$DATA/bindcheck.out"
bc_rc=$?
summary=$(tail -n 1 "$DATA/bindcheck.out")
if [ "$bc_rc" != 0 ] || [ "$summary" != "$users ok, 0 failed" ]; then
    # Tell a bad fixture from a bad migration: the same list must bind at the source.
    "$BINDCHECK" "$SRC_URI" "$SECRETS/src.pw" > "$DATA/bindcheck-src.out"
    log "bindcheck at the source: $(tail -n 1 "$DATA/bindcheck-src.out")"
    fail "bindcheck at the target: $summary; first failures: $(head -n 5 "$DATA/bindcheck.out")"
fi
log "bindcheck: $summary"

# Entries and memberships identical, except the planted out-of-scope member.
compare_trees SRC DST bulk1 --drop "member=$EXT_DN"
slapd_search DST -b cn=grp0000,ou=groups,dc=dst,dc=example -s base member |
    grep -c '^member:' > "$DATA/big.count"
[ "$(cat "$DATA/big.count")" = 5000 ] || [ "$N_USERS" -lt 5000 ] ||
    fail "big group has $(cat "$DATA/big.count") members at the target, want 5000"
slapd_search DST -b cn=grp0001,ou=groups,dc=dst,dc=example -s base member |
    grep -qxF "member: cn=grp0002,ou=groups,dc=dst,dc=example" || fail "nested group member lost"

# A second run changes nothing.
dm run2 -c "$WORK/bulk.json" run --json
expect_rc 0 run2 "second dirmig run"
expect_json "$WORK/run2.out" total.created 0 \
    total.updated 0 \
    total.failed 0 \
    unresolved_members 1

# Three edits in the source: two users and one group.
ldapmodify -x -H "$SRC_URI" -D "$SRC_ROOTDN" -y "$SRC_PW_FILE" > "$DATA/modify.out" 2>&1 << EOF ||
dn: uid=user00011,ou=people,dc=src,dc=example
changetype: modify
replace: mail
mail: changed.user00011@example.org
-

dn: uid=user00022,ou=people,dc=src,dc=example
changetype: modify
add: description
description:: w4ljaGFuZ8OpIGxlIDIy
-

dn: cn=grp0005,ou=groups,dc=src,dc=example
changetype: modify
add: memberUid
memberUid: user09999
-
EOF
    fail "ldapmodify on the source failed: $(cat "$DATA/modify.out")"
dm run3 -c "$WORK/bulk.json" run --json
expect_rc 0 run3 "third dirmig run"
expect_json "$WORK/run3.out" total.updated 3 \
    total.created 0 \
    total.failed 0
compare_trees SRC DST bulk3 --drop "member=$EXT_DN"

check_no_secrets
exit 0
