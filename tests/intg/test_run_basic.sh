#!/bin/bash
# test_run_basic.sh: migrates tests/data/basic.ldif and checks that the target holds the same
# bytes as the source (DNs rebased): Unicode and Japanese values, the escaped multi-valued
# RDN cn=Doe\, Jane+uid=jd, a binary jpegPhoto with NUL bytes, multi-valued attributes,
# userPassword, and group members pointing at the rebased DNs.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
require_bindcheck

cp "$top_srcdir/tests/data/basic.ldif" "$DATA/src.ldif"
(umask 077 && cp "$top_srcdir/tests/data/basic.pw" "$SECRETS/src.pw")
add_canary "$DATA/src.ldif" dc=src,dc=example "$SECRETS/src.pw"
register_ldif_passwords "$DATA/src.ldif"
cut -f2 "$SECRETS/src.pw" > "$SECRETS/src.pwonly" && register_secret_file "$SECRETS/src.pwonly"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC dc=src,dc=example "$DATA/src.ldif" online
start_server DST dc=dst,dc=example "$DATA/dst.ldif"

users=$(slapd_count SRC ou=people,dc=src,dc=example '(objectClass=inetOrgPerson)')
groups=$(($(slapd_count SRC ou=groups,dc=src,dc=example) - 1))
[ "$users" = 5 ] && [ "$groups" = 4 ] || fail "fixture has $users users, $groups groups"
mkconfig "$WORK/basic.json" SRC DST

dm check -c "$WORK/basic.json" check
expect_rc 0 check "dirmig check"

# Plan: everything is to be created, nothing written yet.
dm plan -c "$WORK/basic.json" plan --json
expect_rc 0 plan "dirmig plan"
expect_json "$WORK/plan.out" users.create "$users" \
    groups.create "$groups" \
    total.create $((users + groups)) \
    unresolved_members 0
[ "$(slapd_count DST dc=dst,dc=example)" = 3 ] || fail "plan wrote to the target"

# Run.
dm run1 -c "$WORK/basic.json" run --json
expect_rc 0 run1 "dirmig run"
expect_json "$WORK/run1.out" status "done" \
    total.failed 0 \
    users.created "$users" \
    groups.created "$groups" \
    unresolved_members 0

# Byte-exact comparison of everything under ou=people and ou=groups.
compare_trees SRC DST basic

# Spot checks that make failures obvious.
esc='cn=Doe\, Jane+uid=jd,ou=people,dc=dst,dc=example'
slapd_search DST -b "$esc" -s base 1.1 > /dev/null || fail "target lacks the entry $esc"
slapd_search DST -b cn=staff,ou=groups,dc=dst,dc=example -s base member > "$DATA/staff.ldif"
# The server stores its pretty form of a DN value ("\2C" for "\,"): accept either.
grep -qxE 'member: cn=Doe\\(,|2C) Jane\+uid=jd,ou=people,dc=dst,dc=example' "$DATA/staff.ldif" ||
    fail "cn=staff has no member '$esc': $(grep member "$DATA/staff.ldif" | tr '\n' ' ')"
grep -q 'dc=src' "$DATA/staff.ldif" && fail "cn=staff still has source DNs"
slapd_search DST -b uid=zoe,ou=people,dc=dst,dc=example -s base jpegPhoto > "$DATA/zoe.dst"
slapd_search SRC -b uid=zoe,ou=people,dc=src,dc=example -s base jpegPhoto > "$DATA/zoe.src"
[ "$(grep jpegPhoto "$DATA/zoe.src")" = "$(grep jpegPhoto "$DATA/zoe.dst")" ] ||
    fail "jpegPhoto differs"

# Every user binds at the target with the original password.
sed 's/,dc=src,dc=example\t/,dc=dst,dc=example\t/' "$SECRETS/src.pw" > "$SECRETS/dst.pw"
"$BINDCHECK" "$DST_URI" "$SECRETS/dst.pw" > "$DATA/bindcheck.out" ||
    fail "bindcheck at the target: $(tr '\n' ' ' < "$DATA/bindcheck.out")"

# A second run changes nothing.
dm run2 -c "$WORK/basic.json" run --json
expect_rc 0 run2 "second dirmig run"
expect_json "$WORK/run2.out" total.created 0 \
    total.updated 0 \
    total.unchanged $((users + groups)) \
    total.failed 0

dm status -c "$WORK/basic.json" status --json
expect_rc 0 status "dirmig status"

check_no_secrets
exit 0
