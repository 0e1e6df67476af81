#!/bin/bash
# test_disable_ldap.sh: the LDAP target's ways of disabling an account, against real slapd
# servers: a move under a disabled container (target.disable.container) and a ppolicy lock
# (target.disable.attribute pwdAccountLockedTime).
#
# 1. dirmig check names the container: missing and created by the run, or a problem when
#    target.create_containers is false.
# 2. A user that arrives disabled is created under the container (created by the run), in
#    no group.
# 3. leavers.remove_from_groups false: a user disabled in the source moves under the
#    container with its RDN; the groups dirmig writes and a group only the target has name
#    its new DN; the journal follows; enabled again it moves back, the groups follow. With
#    remove_from_groups, out of its groups and back. A saved plan lists the disable as a
#    move under the container, and run --plan makes it.
# 4. remove_from_groups true: a leaver moves under the container and out of every group (a
#    group only the target has too); rolling that run back brings it to its DN and its
#    groups; the next run disables it again.
# 5. A user disabled in the source whose RDN is taken under the container: a clear error
#    for that user, the entry already there untouched, the user left where it is.
# 6. delete_after_days deletes the disabled users from the container.
# 7. ppolicy: pwdAccountLockedTime 000001010000Z together with the container (both
#    applied): a disabled user is moved and locked, its bind refused at the target (one
#    that arrives disabled too); enabled again, it is moved back, the lock is gone and the
#    bind works.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

S=dc=src,dc=example
T=dc=dst,dc=example
D="ou=disabled,$T"
gen_users --suffix "$S" --users 20 --groups 2 --schemes ssha --ldif "$DATA/src.ldif" \
    --passwords "$SECRETS/src.pw"
add_canary "$DATA/src.ldif" "$S"
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif "$T" "$DATA/dst.ldif"
start_server SRC "$S" "$DATA/src.ldif"
start_server DST "$T" "$DATA/dst.ldif"

adm() { # NAME: ldapmodify as the admin of instance NAME, LDIF on stdin
    local u="${1}_URI" s="${1}_SUFFIX" p="${1}_PW_FILE"
    ldapmodify -x -H "${!u}" -D "cn=admin,${!s}" -y "${!p}" > /dev/null || fail "ldapmodify on $1"
}
exists() { # NAME DN: 0 when DN is at instance NAME
    slapd_search "$1" -b "$2" -s base 1.1 2> /dev/null | grep -q '^dn:'
}
src_state() { # UID VALUE|-: sets (or removes) the source's disabled marker of UID
    if [ "$2" = - ]; then
        printf 'dn: uid=%s,ou=people,%s\nchangetype: modify\ndelete: employeeType\n' "$1" "$S" | adm SRC
    else
        printf 'dn: uid=%s,ou=people,%s\nchangetype: modify\nreplace: employeeType\nemployeeType: %s\n' \
            "$1" "$S" "$2" | adm SRC
    fi
}
members() { # GROUPDN...: the groups' member values at the target, lowercased, one a line
    local g
    for g in "$@"; do
        slapd_search DST -b "$g" -s base member | sed -n 's/^member: //p' | tr 'A-Z' 'a-z'
    done
}
journal_ref() { # UID: the journal's target reference of the user
    "$PYTHON3" - "$1" "$2" << 'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[2])
for (ref,) in db.execute("SELECT target_ref FROM objects WHERE kind = 'user' AND "
                         "lower(source_dn) LIKE ?", ("uid=%s,%%" % sys.argv[1],)):
    print(ref.lower())
EOF
}
G0="cn=grp0000,ou=groups,$T"
G1="cn=grp0001,ou=groups,$T"

MAP='{"key":{"source":"entryUUID"},"users":{"auto":"by-name","exclude":["employeeType"]},"groups":{"auto":"by-name"}}'
base_cfg=("map=$MAP" source.users.disabled.attribute=employeeType
    'source.users.disabled.values=["left","suspended"]' "target.disable.container=$D"
    leavers.max_delete_percent=50 leavers.max_shrink_percent=50 state.path="$WORK/c.db")
mkconfig "$WORK/c.json" SRC DST "${base_cfg[@]}"
mkconfig "$WORK/r.json" SRC DST "${base_cfg[@]}" leavers.remove_from_groups=false

# ---- 1. dirmig check ----
dm check1 -c "$WORK/c.json" check
expect_rc 0 check1 "check with a container to be created"
grep -qF "  disabled users container $D: missing, will be created by the run" "$WORK/check1.out" ||
    fail "check does not say that the disabled container will be created: $(cat "$WORK/check1.out")"
mkconfig "$WORK/nc.json" SRC DST "${base_cfg[@]}" target.create_containers=false
dm check2 -c "$WORK/nc.json" check
expect_rc 66 check2 "check with a missing container that may not be created"
grep -qF "target.disable.container: $D does not exist and target.create_containers is false" \
    "$WORK/check2.err" "$WORK/check2.out" || fail "check does not report the missing container"
mkconfig "$WORK/bad.json" SRC DST "${base_cfg[@]}" "target.disable.container=ou=disabled,dc=elsewhere"
dm bad -c "$WORK/bad.json" check
expect_rc 78 bad "a container outside the target base"
grep -q "target.disable.container: must be a container under target.base" "$WORK/bad.err" ||
    fail "no clear error for a container outside the base: $(cat "$WORK/bad.err")"
log "ok: check: the container is reported (created by the run, or a problem), one outside the base refused"

# ---- 2. a user that arrives disabled ----
src_state user00003 left
dm run1 -c "$WORK/c.json" run --json
expect_rc 0 run1 "first run"
expect_json "$WORK/run1.out" status done users.created 21
exists DST "$D" || fail "the disabled container was not created"
exists DST "uid=user00003,$D" || fail "user00003 (disabled in the source) was not created under $D"
exists DST "uid=user00003,ou=people,$T" && fail "user00003 arrived in ou=people"
[ "$(journal_ref user00003 "$WORK/c.db")" = "uid=user00003,$(echo "$D" | tr 'A-Z' 'a-z')" ] ||
    fail "the journal does not name user00003 under the container: $(journal_ref user00003 "$WORK/c.db")"
members "$G0" "$G1" | grep -q "uid=user00003," && fail "user00003 (arrived disabled) is in a group"
dm run1b -c "$WORK/c.json" run --json
expect_rc 0 run1b "rerun"
expect_json "$WORK/run1b.out" total.created 0 total.updated 0 leavers.would_change 0
log "ok: a user that arrives disabled is created under $D, in no group; the rerun changes nothing"

# a group only the target has (dirmig does not manage it) with members dirmig moves
g0m=$(members "$G0" | sed -n 's/^uid=\(user000[0-9][0-9]\),ou=people,.*/\1/p' | grep -v user00003)
mv_uid=$(echo "$g0m" | sed -n 1p)
lv_uid=$(echo "$g0m" | sed -n 2p)
[ -n "$mv_uid" ] && [ -n "$lv_uid" ] || fail "grp0000 has too few members to test with"
adm DST << EOF
dn: cn=local,$T
changetype: add
objectClass: groupOfNames
cn: local
member: uid=$mv_uid,ou=people,$T
member: uid=$lv_uid,ou=people,$T
member: cn=placeholder,$T
EOF
LOCAL="cn=local,$T"

# ---- 3. disabled in the source and enabled again, remove_from_groups false ----
src_state "$mv_uid" suspended
dm plan2 -c "$WORK/r.json" plan --json
expect_rc 0 plan2 "plan of a disable"
expect_json "$WORK/plan2.out" reasons.disabled 1
dm run2 -c "$WORK/r.json" run --json
expect_rc 0 run2 "run with a user disabled in the source"
expect_json "$WORK/run2.out" status done users.updated 1 reasons.disabled 1
exists DST "uid=$mv_uid,$D" || fail "$mv_uid was not moved under $D"
exists DST "uid=$mv_uid,ou=people,$T" && fail "$mv_uid is still in ou=people"
newdn=$(echo "uid=$mv_uid,$D" | tr 'A-Z' 'a-z')
[ "$(journal_ref "$mv_uid" "$WORK/c.db")" = "$newdn" ] || fail "the journal did not follow the move"
members "$G0" | grep -qx "$newdn" || fail "grp0000 (written by dirmig) does not name $newdn"
members "$G0" | grep -q "^uid=$mv_uid,ou=people," && fail "grp0000 still names the old DN"
members "$LOCAL" | grep -qx "$newdn" || fail "the target's own group does not name $newdn"
members "$LOCAL" | grep -q "^uid=$mv_uid,ou=people," && fail "the target's own group names the old DN"
dm run2b -c "$WORK/r.json" run --json
expect_rc 0 run2b "rerun"
expect_json "$WORK/run2b.out" total.created 0 total.updated 0 leavers.would_change 0
src_state "$mv_uid" -
dm run3 -c "$WORK/r.json" run --json
expect_rc 0 run3 "run with the user enabled again"
expect_json "$WORK/run3.out" status done users.updated 1 reasons.enabled 1
exists DST "uid=$mv_uid,ou=people,$T" || fail "$mv_uid was not moved back"
exists DST "uid=$mv_uid,$D" && fail "$mv_uid is still under $D"
members "$G0" | grep -q "^uid=$mv_uid,ou=people," || fail "grp0000 does not name $mv_uid again"
members "$LOCAL" | grep -q "^uid=$mv_uid,ou=people," || fail "the target's own group lost $mv_uid"
members "$G0" "$LOCAL" | grep -q "uid=$mv_uid,ou=disabled" && fail "a group still names the container DN"
log "ok: disabled in the source: moved under $D, groups (dirmig's and the target's own) follow; enabled: moved back"

# remove_from_groups true: out of the groups when disabled, back in them when enabled
src_state "$mv_uid" suspended
dm run3b -c "$WORK/c.json" run --json
expect_rc 0 run3b "disable with remove_from_groups"
exists DST "uid=$mv_uid,$D" || fail "$mv_uid was not moved under $D"
members "$G0" "$LOCAL" | grep -q "uid=$mv_uid," && fail "$mv_uid (disabled) is still in a group"
src_state "$mv_uid" -
dm run3c -c "$WORK/c.json" run --json
expect_rc 0 run3c "enable with remove_from_groups"
exists DST "uid=$mv_uid,ou=people,$T" || fail "$mv_uid was not moved back"
members "$G0" | grep -q "^uid=$mv_uid,ou=people," || fail "$mv_uid is not back in grp0000"
log "ok: with remove_from_groups: out of the groups under $D, back in grp0000 when enabled"

# a saved plan: the disable it lists is the move run --plan makes
src_state "$mv_uid" suspended
dm plan3d -c "$WORK/c.json" plan --out "$WORK/p3.jsonl" --json
expect_rc 0 plan3d "plan --out of a disable"
"$PYTHON3" - "$WORK/p3.jsonl" "$mv_uid" << 'EOF' || fail "the saved plan does not list the move"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ch = [r for r in rows if r.get("op") and "uid=%s," % sys.argv[2] in (r.get("target") or "").lower()]
assert len(ch) == 1 and ch[0]["op"] == "move" and ch[0]["reason"] == "disabled", ch
assert ch[0]["target"].lower().endswith(",ou=disabled,dc=dst,dc=example"), ch
EOF
exists DST "uid=$mv_uid,ou=people,$T" || fail "plan --out moved $mv_uid"
dm run3d -c "$WORK/c.json" run --plan "$WORK/p3.jsonl" --json
expect_rc 0 run3d "run --plan of a disable"
expect_json "$WORK/run3d.out" status done users.updated 1 reasons.disabled 1
exists DST "uid=$mv_uid,$D" || fail "run --plan did not move $mv_uid under $D"
src_state "$mv_uid" -
dm run3e -c "$WORK/c.json" run --json
expect_rc 0 run3e "enable after the saved plan"
exists DST "uid=$mv_uid,ou=people,$T" || fail "$mv_uid was not moved back after the saved plan"
log "ok: a saved plan lists the disable as a move under $D, and run --plan makes exactly it"

# ---- 4. a leaver, and the rollback of its run ----
printf 'dn: uid=%s,ou=people,%s\nchangetype: delete\n' "$lv_uid" "$S" | adm SRC
dump_norm DST "$T" sub "$DATA/before-leaver"
dm run4 -c "$WORK/c.json" run --json
expect_rc 0 run4 "run with a leaver"
expect_json "$WORK/run4.out" status done leavers.disabled 1 reasons.leaver 1
run4=$(json_get "$WORK/run4.out" run)
lvdn=$(echo "uid=$lv_uid,$D" | tr 'A-Z' 'a-z')
exists DST "uid=$lv_uid,$D" || fail "the leaver $lv_uid was not moved under $D"
exists DST "uid=$lv_uid,ou=people,$T" && fail "the leaver is still in ou=people"
[ "$(journal_ref "$lv_uid" "$WORK/c.db")" = "$lvdn" ] || fail "the journal did not follow the leaver"
members "$G0" "$G1" "$LOCAL" | grep -q "uid=$lv_uid," && fail "the leaver is still in a group"
grep -q "leaver user uid=$lv_uid,ou=people,$T (source .*): disabled at the target, moved to uid=$lv_uid,$D" \
    "$WORK/c.log" || fail "the log does not say where the leaver went"
dm run4b -c "$WORK/c.json" run --json
expect_rc 0 run4b "rerun after the leaver"
expect_json "$WORK/run4b.out" total.updated 0 leavers.would_change 0
dm rb4 -c "$WORK/c.json" rollback "$run4" --json
expect_rc 0 rb4 "rollback of the leaver run"
dump_norm DST "$T" sub "$DATA/after-rollback"
if ! cmp -s "$DATA/before-leaver" "$DATA/after-rollback"; then
    diff "$DATA/before-leaver" "$DATA/after-rollback" | grep -E '^[<>] ' | grep -viE 'userpassword' | head -20 >&2
    fail "the rollback of the leaver run did not give the target back"
fi
[ "$(journal_ref "$lv_uid" "$WORK/c.db")" = "$(echo "uid=$lv_uid,ou=people,$T" | tr 'A-Z' 'a-z')" ] ||
    fail "the rollback did not give the journal its reference back"
dm run5 -c "$WORK/c.json" run --json
expect_rc 0 run5 "the run after the rollback"
expect_json "$WORK/run5.out" leavers.disabled 1
exists DST "uid=$lv_uid,$D" || fail "the leaver was not moved again after the rollback"
log "ok: a leaver moved under $D and out of every group; rollback gives the tree back byte for byte"

# ---- 5. the RDN is taken under the container ----
adm DST << EOF
dn: uid=user00012,$D
changetype: add
objectClass: inetOrgPerson
uid: user00012
cn: Somebody Else
sn: Else
EOF
dump_norm DST "uid=user00012,$D" base "$DATA/clash-before"
src_state user00012 suspended
dm run6 -c "$WORK/c.json" run --json
expect_rc 65 run6 "a disable whose RDN is taken under the container"
expect_json "$WORK/run6.out" users.failed 1 errors.exists 1
grep -q "cannot move uid=user00012,ou=people,$T here: an entry with this DN already exists" \
    "$WORK/c.log" || fail "no clear error for the clash: $(grep -i user00012 "$WORK/c.log" | tail -3)"
dump_norm DST "uid=user00012,$D" base "$DATA/clash-after"
cmp -s "$DATA/clash-before" "$DATA/clash-after" || fail "the entry already under $D was changed"
exists DST "uid=user00012,ou=people,$T" || fail "user00012 is gone from its DN"
[ "$(journal_ref user00012 "$WORK/c.db")" = "$(echo "uid=user00012,ou=people,$T" | tr 'A-Z' 'a-z')" ] ||
    fail "the journal names the other entry for user00012: $(journal_ref user00012 "$WORK/c.db")"
dm run6b -c "$WORK/c.json" run --json
grep -c "cannot move uid=user00012" "$WORK/c.log" | grep -qx 2 || fail "the rerun did not report the clash again"
dump_norm DST "uid=user00012,$D" base "$DATA/clash-after2"
cmp -s "$DATA/clash-before" "$DATA/clash-after2" || fail "the rerun changed the entry already under $D"
src_state user00012 -
log "ok: an RDN taken under $D: a clear error for that user, nothing overwritten"

# ---- 6. delete_after_days ----
mkconfig "$WORK/d.json" SRC DST "${base_cfg[@]}" leavers.delete_after_days=3
"$PYTHON3" - "$WORK/c.db" << 'EOF' || fail "could not age the journal"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("UPDATE objects SET disabled_at = disabled_at - 4 * 86400 "
               "WHERE disabled_at > 0").rowcount
db.commit()
assert n == 2, n
EOF
dm run7 -c "$WORK/d.json" run --json
expect_rc 0 run7 "run once the time is up"
expect_json "$WORK/run7.out" status done leavers.deleted 2
exists DST "uid=$lv_uid,$D" && fail "the leaver was not deleted from $D"
exists DST "uid=user00003,$D" && fail "user00003 (disabled in the source) was not deleted from $D"
exists DST "uid=user00012,$D" || fail "the entry that is not dirmig's was deleted"
log "ok: delete_after_days deletes the disabled users from $D"

# ---- 7. ppolicy lock ----
skeleton_ldif "$T" "$DATA/dst2.ldif"
start_server DST2 "$T" "$DATA/dst2.ldif" ppolicy=3
mkconfig "$WORK/p.json" SRC DST2 "map=$MAP" source.users.disabled.attribute=employeeType \
    'source.users.disabled.values=["left","suspended"]' target.disable.attribute=pwdAccountLockedTime \
    target.disable.value=000001010000Z "target.disable.container=$D"
pw_of() { awk -F '\t' -v dn="uid=$1,ou=people,$S" '$1 == dn {print $2}' "$SECRETS/src.pw"; }
bind_as() { # UID [PARENT]: a simple bind as the user at DST2 with its source password
    ldapwhoami -x -H "$DST2_URI" -D "uid=$1,${2:-ou=people,$T}" -y <(printf '%s' "$(pw_of "$1")") \
        > "$WORK/bind.out" 2>&1
}
lock_of() { # DN: the entry's pwdAccountLockedTime at DST2
    slapd_search DST2 -b "$1" -s base pwdAccountLockedTime | sed -n 's/^pwdAccountLockedTime: //p'
}
# two users no section above touched
read -r p1 p2 <<< "$(slapd_search SRC -b "ou=people,$S" -s one uid | sed -n 's/^uid: //p' |
    grep -vx -e "$mv_uid" -e "$lv_uid" -e user00003 -e user00012 -e canary | sort | head -n 2 | tr '\n' ' ')"
[ -n "$p2" ] || fail "no two users left to test the lock with"
[ -n "$(pw_of "$p1")" ] || fail "no password for $p1 in the fixture"
src_state "$p1" suspended
dm prun1 -c "$WORK/p.json" run --json
expect_rc 0 prun1 "run into a ppolicy target"
[ "$(lock_of "uid=$p1,$D")" = 000001010000Z ] || fail "$p1 did not arrive locked under $D"
bind_as "$p2" || fail "$p2 (enabled) cannot bind at the target: $(cat "$WORK/bind.out")"
bind_as "$p1" "$D" && fail "$p1 (disabled, locked) could bind at the target"
grep -q "Invalid credentials (49)" "$WORK/bind.out" || fail "unexpected bind answer: $(cat "$WORK/bind.out")"
src_state "$p1" -
dm prun2 -c "$WORK/p.json" run --json
expect_rc 0 prun2 "run with the user enabled again"
expect_json "$WORK/prun2.out" users.updated 1 reasons.enabled 1
[ -z "$(lock_of "uid=$p1,ou=people,$T")" ] || fail "the lock is still there (or $p1 was not moved back)"
bind_as "$p1" || fail "$p1 (enabled again) cannot bind: $(cat "$WORK/bind.out")"
src_state "$p2" suspended
dm prun3 -c "$WORK/p.json" run --json
expect_rc 0 prun3 "run with an enabled user disabled"
expect_json "$WORK/prun3.out" users.updated 1 reasons.disabled 1
[ "$(lock_of "uid=$p2,$D")" = 000001010000Z ] || fail "$p2 was not moved under $D and locked"
bind_as "$p2" "$D" && fail "$p2 (disabled) could still bind"
log "ok: ppolicy with the container: locked and moved, the bind refused; enabled: moved back, unlocked, the bind works"

check_no_secrets
log "PASS"
