#!/bin/bash
# test_waves.sh: `run --wave pilot` migrates exactly the pilot set; the next wave
# (by group membership) adds to it without touching the first; a wave by OU; plan and
# validate take --wave too; an unknown wave is a clear error.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

S=dc=src,dc=example
gen_users --suffix "$S" --users 60 --groups 0 --big-group 0 --schemes fast --ldif "$DATA/src.ldif"
cat >> "$DATA/src.ldif" << LDIF

dn: ou=staff,$S
objectClass: organizationalUnit
ou: staff

dn: uid=head,ou=staff,$S
objectClass: inetOrgPerson
uid: head
cn: Head Teacher
sn: Teacher

dn: cn=wave2,ou=groups,$S
objectClass: groupOfNames
cn: wave2
member: uid=user00010,ou=people,$S
member: uid=user00011,ou=people,$S
member: uid=user00012,ou=people,$S
LDIF
add_canary "$DATA/src.ldif" "$S"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC "$S" "$DATA/src.ldif"
start_server DST dc=dst,dc=example "$DATA/dst.ldif"
printf '\ndn: ou=staff,dc=dst,dc=example\nobjectClass: organizationalUnit\nou: staff\n' |
    ldapadd -x -H "$DST_URI" -D cn=admin,dc=dst,dc=example -y "$DST_PW_FILE" > /dev/null ||
    fail "could not add ou=staff to the target"

mkconfig "$WORK/w.json" SRC DST source.users.base="$S" \
    source.users.filter="(&(objectClass=inetOrgPerson)(!(uid=ext*)))" \
    waves='[{"name": "pilot", "filter": "(|(uid=user00001)(uid=user00002)(uid=user00003))"},
            {"name": "wave2", "group": "cn=wave2,ou=groups,dc=src,dc=example"},
            {"name": "staff", "ou": "ou=staff,dc=src,dc=example"}]'
people() { slapd_count DST ou=people,dc=dst,dc=example '(objectClass=inetOrgPerson)'; }

dm plan_pilot -c "$WORK/w.json" plan --wave pilot --json
expect_rc 0 plan_pilot "plan --wave pilot"
expect_json "$WORK/plan_pilot.out" users.create 3
dm val_pilot -c "$WORK/w.json" validate --wave pilot --json --out "$WORK/pilot"
expect_rc 0 val_pilot "validate --wave pilot"
expect_json "$WORK/val_pilot.out" checked 3

dm pilot -c "$WORK/w.json" run --wave pilot --json
expect_rc 0 pilot "run --wave pilot"
expect_json "$WORK/pilot.out" users.created 3 groups.read 0
[ "$(people)" = 3 ] || fail "after the pilot wave the target has $(people) people, want 3"
for u in user00001 user00002 user00003; do
    slapd_search DST -b "uid=$u,ou=people,dc=dst,dc=example" -s base 1.1 > /dev/null ||
        fail "pilot user $u missing"
done
before=$(slapd_search DST -b ou=people,dc=dst,dc=example '(uid=user0000*)' entryCSN | sort)

dm wave2 -c "$WORK/w.json" run --wave wave2 --json
expect_rc 0 wave2 "run --wave wave2"
expect_json "$WORK/wave2.out" users.created 3 users.updated 0 users.unchanged 0
[ "$(people)" = 6 ] || fail "after wave2 the target has $(people) people, want 6"
after=$(slapd_search DST -b ou=people,dc=dst,dc=example '(uid=user0000*)' entryCSN | sort)
[ "$before" = "$after" ] || fail "wave2 touched the pilot users"

dm staff -c "$WORK/w.json" run --wave staff --json
expect_rc 0 staff "run --wave staff"
expect_json "$WORK/staff.out" users.created 1
slapd_search DST -b uid=head,ou=staff,dc=dst,dc=example -s base 1.1 > /dev/null ||
    fail "staff wave user missing"

dm nowave -c "$WORK/w.json" run --wave nosuch
expect_rc 65 nowave "run --wave nosuch"
grep -q 'no such wave' "$WORK/nowave.err" || fail "no clear message for an unknown wave"

# Finally everything: the waves' users are unchanged, the rest is created.
dm all -c "$WORK/w.json" run --json
expect_rc 0 all "run (all)"
expect_json "$WORK/all.out" users.unchanged 7 users.created 55
check_no_secrets
log "waves by filter, group and OU migrate exactly their users"
