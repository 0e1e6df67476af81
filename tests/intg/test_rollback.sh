#!/bin/bash
# test_rollback.sh: the undo store and dirmig rollback, LDAP to LDAP between real slapd
# servers, then to the Okta contract server.
#
# Each rollback is checked by a byte comparison of the target tree (ldapsearch -LLL of every
# entry with all user attributes, userPassword included, canonical: tests/harness/ldifnorm.py)
# with the tree before the run:
# 1. a create run into a target that has only its suffix (containers, users, groups): rollback
#    --plan lists the deletes and writes nothing; rollback gives the tree back; the journal
#    forgets the objects, so the next run creates them as new, not as missing.
# 2. an update run (attributes changed and dropped, a member removed, a user renamed in the
#    source): rollback gives the tree back, the renamed entry at its old DN.
# 3. a delete run (two leavers deleted, taken out of their groups): rollback creates them
#    again byte for byte and gives the memberships back; they bind with their old password.
# 4. an object changed at the target since the run is refused and listed (exit 65), the
#    others rolled back; a second rollback of the same run has nothing left to do.
# 5. waves: a whole-scope run rolled back for one wave removes only that wave's users; a
#    run made with --wave cannot be rolled back for another wave.
# 6. the undo store is 0600 and holds the deleted users' password hashes; the journal, the
#    logs, the reports and the summaries hold none (a known hash is grepped for).
# 7. Okta-style target: an update of a profile and a disabled leaver are rolled back (the
#    profile values and the ACTIVE state come back, the group membership too); plan says
#    that a delete there cannot be undone.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
require_bindcheck

S=dc=src,dc=example
T=dc=dst,dc=example
gen_users --suffix "$S" --users 40 --groups 4 --schemes ssha --ldif "$DATA/src.ldif" \
    --passwords "$SECRETS/src.pw"
add_canary "$DATA/src.ldif" "$S" "$SECRETS/src.pw"
register_ldif_passwords "$DATA/src.ldif"
printf 'dn: %s\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\ndc: dst\no: dst\n' \
    "$T" > "$DATA/dst.ldif"
start_server SRC "$S" "$DATA/src.ldif"
start_server DST "$T" "$DATA/dst.ldif"
users=$(slapd_count SRC "ou=people,$S" '(objectClass=inetOrgPerson)')
mkconfig "$WORK/r.json" SRC DST

adm() { # NAME: ldapmodify as the admin of instance NAME, LDIF on stdin
    local u="${1}_URI" s="${1}_SUFFIX" p="${1}_PW_FILE"
    ldapmodify -x -H "${!u}" -D "cn=admin,${!s}" -y "${!p}" > /dev/null || fail "ldapmodify on $1"
}
tree() { # NAME OUT: every entry of the instance's tree, canonical
    local s="${1}_SUFFIX"
    dump_norm "$1" "${!s}" sub "$2"
}
same_tree() { # WANT GOT WHAT
    if ! cmp -s "$1" "$2"; then
        diff "$1" "$2" | grep -E '^[<>] ' | grep -viE '^[<>] userpassword' | cut -c1-120 |
            head -n 30 >&2
        fail "$3 ($1 vs $2; KEEP_TESTDIR=1 keeps them)"
    fi
}

# ---- 1. a create run ----
tree DST "$DATA/t0"
dm run1 -c "$WORK/r.json" run --json
expect_rc 0 run1 "the create run"
expect_json "$WORK/run1.out" users.created "$users" groups.created 4 containers.created 2
run1=$(json_get "$WORK/run1.out" run)
tree DST "$DATA/t1"
[ "$(stat -c %a "$WORK/r.db.undo")" = 600 ] || fail "the undo store is not 0600"
dm rb1plan -c "$WORK/r.json" rollback "$run1" --plan --json
expect_rc 0 rb1plan "rollback --plan of the create run"
expect_json "$WORK/rb1plan.out" dry_run true removed $((users + 4 + 2)) refused 0 run 0
grep -q "group     cn=grp0001,ou=groups,$T: delete (created by run $run1)" "$WORK/rb1plan.err" ||
    fail "rollback --plan does not list the group's delete: $(head -20 "$WORK/rb1plan.err")"
tree DST "$DATA/t1b"
same_tree "$DATA/t1" "$DATA/t1b" "rollback --plan wrote to the target"
dm rb1 -c "$WORK/r.json" rollback "$run1" --json
expect_rc 0 rb1 "rollback of the create run"
expect_json "$WORK/rb1.out" status done exit_code 0 removed $((users + 4 + 2)) refused 0 failed 0
tree DST "$DATA/t1r"
same_tree "$DATA/t0" "$DATA/t1r" "the target after the rollback of the create run is not the target before it"
[ "$(state_object_rows "$WORK/r.db")" = 0 ] || fail "the journal still holds rolled-back objects"
dm status1 -c "$WORK/r.json" status --json
expect_json "$WORK/status1.out" runs.0.kind rollback runs.0.status done
dm run2 -c "$WORK/r.json" run --json
expect_rc 0 run2 "the run after the rollback"
expect_json "$WORK/run2.out" users.created "$users" reasons.new $((users + 4)) reasons.container 2 \
    reasons.missing null
log "ok: a create run rolled back to the tree before it, byte for byte; the next run creates anew"

# ---- 2. an update run ----
tree DST "$DATA/t2"
adm SRC << EOF
dn: uid=user00003,ou=people,$S
changetype: modify
replace: sn
sn: Renamed
-
replace: mail
mail: three@example.org

dn: uid=user00004,ou=people,$S
changetype: modify
delete: telephoneNumber

dn: uid=user00005,ou=people,$S
changetype: modify
add: description
description: added in the source

dn: uid=user00009,ou=people,$S
changetype: modrdn
newrdn: uid=user00009b
deleteoldrdn: 1

dn: cn=grp0003,ou=groups,$S
changetype: modify
delete: member
member: uid=user00003,ou=people,$S
EOF
# the renamed user's memberships follow it, as the refint overlay would do
for g in $(slapd_search SRC -b "ou=groups,$S" "(member=uid=user00009,ou=people,$S)" 1.1 | sed -n 's/^dn: //p'); do
    printf 'dn: %s\nchangetype: modify\ndelete: member\nmember: uid=user00009,ou=people,%s\n-\nadd: member\nmember: uid=user00009b,ou=people,%s\n' \
        "$g" "$S" "$S" | adm SRC
done
dm run3 -c "$WORK/r.json" run --json
expect_rc 0 run3 "the update run"
expect_json "$WORK/run3.out" users.updated 4 reasons.moved 1 total.failed 0
run3=$(json_get "$WORK/run3.out" run)
updated3=$(json_get "$WORK/run3.out" total.updated)
# four users and grp0003; the groups of user00009 name user00009b from the rename on (the
# connector rewrites their member values as refint would, so the group pass finds them done)
[ "$updated3" -ge 5 ] || fail "the update run changed only $updated3 objects"
[ "$(slapd_count DST "uid=user00009b,ou=people,$T")" = 1 ] || fail "the rename did not happen"
[ -z "$(slapd_search DST -b "ou=groups,$T" "(member=uid=user00009,ou=people,$T)" 1.1 | grep '^dn:')" ] ||
    fail "a group still names user00009 after its rename"
[ -n "$(slapd_search DST -b "ou=groups,$T" "(member=uid=user00009b,ou=people,$T)" 1.1 | grep '^dn:')" ] ||
    fail "no group names user00009b after its rename"
dm rb3 -c "$WORK/r.json" rollback "$run3" --json
expect_rc 0 rb3 "rollback of the update run"
expect_json "$WORK/rb3.out" restored "$updated3" refused 0 failed 0
tree DST "$DATA/t3r"
same_tree "$DATA/t2" "$DATA/t3r" "the target after the rollback of the update run is not the target before it"
dm run4 -c "$WORK/r.json" run --json
expect_rc 0 run4 "the update run again"
expect_json "$WORK/run4.out" users.updated 4 total.updated "$updated3"
log "ok: an update run (attributes, a member, a rename) rolled back byte for byte"

# ---- 3. a delete run ----
tree DST "$DATA/t4"
# users marked employeeType=left are out of the scope of this configuration: leavers that keep
# their key, so they can come back
mkconfig "$WORK/del.json" SRC DST state.path="$WORK/r.db" leavers.action=delete \
    'source.users.filter=(&(objectClass=inetOrgPerson)(!(employeeType=left)))'
for u in user00011 user00012; do
    grep -A 30 "^dn: uid=$u,ou=people" "$DATA/src.ldif" | sed '/^$/q' |
        sed -n 's/^userPassword: //p' > "$SECRETS/$u.hash"
    printf 'dn: uid=%s,ou=people,%s\nchangetype: modify\nadd: employeeType\nemployeeType: left\n' \
        "$u" "$S" | adm SRC
done
HASH=$(cat "$SECRETS/user00011.hash")
[ -n "$HASH" ] || fail "no hash for user00011 in the fixture"
dm run5 -c "$WORK/del.json" run --json --allow-deletes 2
expect_rc 0 run5 "the delete run"
expect_json "$WORK/run5.out" leavers.deleted 2
run5=$(json_get "$WORK/run5.out" run)
[ "$(slapd_count DST "uid=user00011,ou=people,$T")" = 0 ] || fail "user00011 was not deleted"
slapd_search DST -b "ou=groups,$T" "(member=uid=user00011,ou=people,$T)" 1.1 | grep -q '^dn:' &&
    fail "user00011 stayed in a group"
grep -qF "$HASH" "$WORK/r.db.undo" "$WORK/r.db.undo-wal" 2> /dev/null ||
    fail "the undo store does not hold the deleted entry's password"
dm rb5 -c "$WORK/r.json" rollback "$run5" --json
expect_rc 0 rb5 "rollback of the delete run"
expect_json "$WORK/rb5.out" recreated 2 refused 0 failed 0
tree DST "$DATA/t5r"
same_tree "$DATA/t4" "$DATA/t5r" "the target after the rollback of the delete run is not the target before it"
grep -E "^uid=user0001[12],ou=people" "$SECRETS/src.pw" | sed "s/,$S/,$T/" > "$SECRETS/back.pw"
[ "$(wc -l < "$SECRETS/back.pw")" = 2 ] || fail "no passwords for the re-created users"
"$BINDCHECK" "$DST_URI" "$SECRETS/back.pw" > "$DATA/bind.out" ||
    fail "a re-created user cannot bind with the old password: $(cat "$DATA/bind.out")"
log "ok: a delete run rolled back: entries back byte for byte (password included), groups too"

# ---- 4. changed at the target since the run ----
for u in user00011 user00012; do # back in scope: the next runs see no leaver
    printf 'dn: uid=%s,ou=people,%s\nchangetype: modify\ndelete: employeeType\n' "$u" "$S" | adm SRC
done
dm run6a -c "$WORK/r.json" run --json
expect_rc 0 run6a "the run after the users came back"
expect_json "$WORK/run6a.out" total.created 0 total.updated 0
tree DST "$DATA/t6"
adm SRC << EOF
dn: uid=user00020,ou=people,$S
changetype: modify
replace: sn
sn: Twenty

dn: uid=user00021,ou=people,$S
changetype: modify
replace: sn
sn: TwentyOne
EOF
dm run6 -c "$WORK/r.json" run --json
expect_rc 0 run6 "a run that updates two users"
expect_json "$WORK/run6.out" users.updated 2
run6=$(json_get "$WORK/run6.out" run)
adm DST << EOF
dn: uid=user00021,ou=people,$T
changetype: modify
replace: sn
sn: Changed by the target's admin
EOF
dm rb6 -c "$WORK/r.json" rollback "$run6" --json
expect_rc 65 rb6 "rollback with an object changed since the run"
expect_json "$WORK/rb6.out" restored 1 refused 1 \
    not_rolled_back.0.dn "uid=user00021,ou=people,$T" \
    not_rolled_back.0.why "changed at the target since run $run6: left as it is"
slapd_search DST -b "uid=user00021,ou=people,$T" -s base sn | grep -qx "sn: Changed by the target's admin" ||
    fail "the object changed at the target was overwritten"
slapd_search DST -b "uid=user00020,ou=people,$T" -s base sn | grep -q "^sn: Twenty$" &&
    fail "user00020 was not rolled back"
dm rb6again -c "$WORK/r.json" rollback "$run6" --json
expect_rc 65 rb6again "the same rollback again"
expect_json "$WORK/rb6again.out" restored 0 refused 1
dm rbagain -c "$WORK/r.json" rollback "$run1" --json
expect_rc 0 rbagain "rollback of a run whose changes are all rolled back"
grep -q "rolled back already" "$WORK/rbagain.err" || fail "no word that it is rolled back already"
dm rbrb -c "$WORK/r.json" rollback "$(json_get "$WORK/rb1.out" run)"
expect_rc 65 rbrb "rollback of a rollback"
grep -q "is a rollback: only what a run wrote can be rolled back" "$WORK/rbrb.err" ||
    fail "no clear message: $(cat "$WORK/rbrb.err")"
dm nosuch -c "$WORK/r.json" rollback 999
expect_rc 66 nosuch "rollback of a run that does not exist"
dm badrun -c "$WORK/r.json" rollback yesterday
expect_rc 64 badrun "rollback of a run that is not a number"
log "ok: an object changed at the target since the run is refused and listed"

# ---- 5. waves ----
printf 'dn: %s\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\ndc: wave\no: wave\n' \
    "dc=wave,dc=example" > "$DATA/wave.ldif"
start_server WAVE dc=wave,dc=example "$DATA/wave.ldif"
mkconfig "$WORK/w.json" SRC WAVE \
    'waves=[{"name": "w1", "filter": "(uid=user0000*)"}, {"name": "w2", "filter": "(uid=user0001*)"}]'
dm wrun1 -c "$WORK/w.json" run --wave w1 --json
expect_rc 0 wrun1 "a run of wave w1"
wrun1=$(json_get "$WORK/wrun1.out" run)
dm wrun2 -c "$WORK/w.json" run --json
expect_rc 0 wrun2 "a run over the whole scope"
wrun2=$(json_get "$WORK/wrun2.out" run)
tree WAVE "$DATA/w2"
dm wrb1 -c "$WORK/w.json" rollback "$wrun2" --wave w1 --json
expect_rc 0 wrb1 "rollback of the whole-scope run for wave w1 (created by the earlier run)"
expect_json "$WORK/wrb1.out" removed 0 restored 0
dm wrb2 -c "$WORK/w.json" rollback "$wrun2" --wave w2 --json
expect_rc 0 wrb2 "rollback of the whole-scope run for wave w2"
expect_json "$WORK/wrb2.out" removed 10 refused 0
tree WAVE "$DATA/w2r"
"$PYTHON3" - "$DATA/w2" "$DATA/w2r" << 'EOF' || fail "the wave rollback touched more than its wave"
import re, sys
def entries(p):
    return [e for e in open(p, encoding="utf-8").read().split("\n\n") if e.strip()]
before, after = entries(sys.argv[1]), entries(sys.argv[2])
want = [e for e in before if not re.match(r"dn: uid=user0001\d,ou=people,", e)]
assert len(before) - len(want) == 10, len(before) - len(want)
assert [e.strip() for e in want] == [e.strip() for e in after], "trees differ"
EOF
dm wrb3 -c "$WORK/w.json" rollback "$wrun1" --wave w2
expect_rc 65 wrb3 "rollback of a wave run for another wave"
grep -q "was limited to wave w1, not w2" "$WORK/wrb3.err" || fail "no clear message"
dm wrb4 -c "$WORK/w.json" rollback "$wrun1" --wave w1 --plan --json
expect_rc 0 wrb4 "rollback --plan of the wave run"
expect_json "$WORK/wrb4.out" removed 11 outside_wave 0
log "ok: a wave's rollback touches that wave only"

# ---- 7. an Okta-style target ----
write_secret "$SECRETS/token" "okta-rollback-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
"$PYTHON3" - "$top_srcdir/schema/maps/inetorgperson-to-okta.json" "$WORK/okta.map.json" << 'EOF'
import json, os, sys
m = json.load(open(sys.argv[1]))
d = os.path.dirname(os.path.abspath(sys.argv[1]))
m["source_profile"] = os.path.join(d, m["source_profile"])
m["target_profile"] = os.path.join(d, m["target_profile"])
json.dump(m, open(sys.argv[2], "w"), indent=1)
EOF
start_okta OKTA
okta_config() { # OUT [overrides...]
    local out=$1
    shift
    mkconfig "$out" SRC - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
        "target.type=okta" "target.uri=http://127.0.0.1:$OKTA_PORT" \
        "target.token_file=$SECRETS/token" "target.network_timeout_ms=2000" \
        "map={\"file\": \"$WORK/okta.map.json\"}" state.path="$WORK/o.db" \
        'source.users.filter=(&(objectClass=inetOrgPerson)(!(employeeType=left)))' "$@"
}
okta_state() { # OUT: users (status, profile without nulls) and groups (members), canonical
    curl -s "http://127.0.0.1:$OKTA_PORT/test/dump" | "$PYTHON3" -c '
import json, sys
d = json.load(sys.stdin)
out = {"users": {l: {"status": u["status"],
                     "profile": {k: v for k, v in u["profile"].items() if v is not None}}
                 for l, u in d["users"].items()},
       "groups": {n: sorted(g["members"]) for n, g in d["groups"].items()}}
print(json.dumps(out, indent=1, sort_keys=True))' > "$1" || fail "cannot read the Okta dump"
}
okta_config "$WORK/o.json"
printf 'dn: %s\nchangetype: modify\nadd: mail\nmail: canary@example.org\n' "$CANARY_DN" | adm SRC
dm orun1 -c "$WORK/o.json" run --json
expect_rc 0 orun1 "a run to the Okta contract server"
okta_state "$DATA/o1"
login22=$(grep -A 30 "^dn: uid=user00022,ou=people" "$DATA/src.ldif" | sed -n 's/^mail: //p' | head -n 1)
grep -q "\"$login22\"" "$DATA/o1" || fail "user00022 ($login22) is not at the Okta target"
"$PYTHON3" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert any(sys.argv[2] in m for m in d["groups"].values()), "user00022 is in no group"' \
    "$DATA/o1" "$login22" || fail "user00022 is in no group at the Okta target"
adm SRC << EOF
dn: uid=user00024,ou=people,$S
changetype: modify
replace: sn
sn: Changed For Okta
-
replace: title
title: Rolled back later

dn: uid=user00022,ou=people,$S
changetype: modify
add: employeeType
employeeType: left
EOF
dm orun2 -c "$WORK/o.json" run --json --allow-deletes 1
expect_rc 0 orun2 "an update and a leaver at the Okta target"
expect_json "$WORK/orun2.out" users.updated 1 leavers.disabled 1
orun2=$(json_get "$WORK/orun2.out" run)
okta_state "$DATA/o2"
"$PYTHON3" -c '
import json, sys
d = json.load(open(sys.argv[1]))
u = d["users"][sys.argv[2]]
assert u["status"] == "DEPROVISIONED", u
assert not any(sys.argv[2] in m for m in d["groups"].values()), "the leaver kept a group"' \
    "$DATA/o2" "$login22" || fail "the leaver was not deactivated and taken out of its groups"
dm orb -c "$WORK/o.json" rollback "$orun2" --json
expect_rc 0 orb "rollback at the Okta target"
expect_json "$WORK/orb.out" restored 2 refused 0 failed 0
okta_state "$DATA/o2r"
same_tree "$DATA/o1" "$DATA/o2r" "the Okta target after the rollback is not the target before the run"
# a delete at this target cannot be undone: plan says so
okta_config "$WORK/odel.json" leavers.action=delete
printf 'dn: uid=user00025,ou=people,%s\nchangetype: modify\nadd: employeeType\nemployeeType: left\n' \
    "$S" | adm SRC
dm oplan -c "$WORK/odel.json" plan --json --allow-deletes 2
expect_rc 0 oplan "plan of deletes at the Okta target"
expect_json "$WORK/oplan.out" irreversible_deletes 2
grep -q "cannot be undone: 2 delete(s) at this target are final" "$WORK/oplan.err" ||
    fail "plan does not say that the deletes cannot be undone"
log "ok: Okta-style target: profile, lifecycle state and memberships rolled back; plan names final deletes"

# ---- 6. secrets ----
for f in "$WORK"/*.undo "$WORK"/*.undo-wal "$WORK"/*.undo-shm; do
    [ -e "$f" ] || continue
    [ "$(stat -c %a "$f")" = 600 ] || fail "$f is not 0600"
done
grep -rlaF "$HASH" "$WORK" | grep -v '\.undo' && fail "a password hash is outside the undo store"
check_no_secrets
log "ok: only the undo store (0600) holds credentials"

exit 0
