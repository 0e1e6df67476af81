#!/bin/bash
# test_nesting.sh: source.groups.nesting on a plain LDAP source. "flatten" gives every group
# its transitive non-group members, through a cycle (g1 in g3 in g2 in g1) and across
# member/uniqueMember, and no group stays a member; "preserve" (the default) keeps nested
# groups as members.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

S=dc=src,dc=example
T=dc=dst,dc=example
{
    printf '%s\n' "dn: $S" "objectClass: dcObject" "objectClass: organization" "dc: src" "o: src" \
        "" "dn: ou=people,$S" "objectClass: organizationalUnit" "ou: people" "" \
        "dn: ou=groups,$S" "objectClass: organizationalUnit" "ou: groups" ""
    for u in u1 u2 u3 u4 u5; do
        printf '%s\n' "dn: uid=$u,ou=people,$S" "objectClass: inetOrgPerson" "uid: $u" "cn: $u" \
            "sn: $u" ""
    done
    printf '%s\n' "dn: cn=g1,ou=groups,$S" "objectClass: groupOfNames" "cn: g1" \
        "member: uid=u1,ou=people,$S" "member: cn=g2,ou=groups,$S" "" \
        "dn: cn=g2,ou=groups,$S" "objectClass: groupOfNames" "cn: g2" \
        "member: uid=u2,ou=people,$S" "member: cn=g3,ou=groups,$S" "" \
        "dn: cn=g3,ou=groups,$S" "objectClass: groupOfNames" "cn: g3" \
        "member: uid=u3,ou=people,$S" "member: cn=g1,ou=groups,$S" "" \
        "dn: cn=g4,ou=groups,$S" "objectClass: groupOfUniqueNames" "cn: g4" \
        "uniqueMember: uid=u4,ou=people,$S" "uniqueMember: cn=g1,ou=groups,$S" "" \
        "dn: cn=g5,ou=groups,$S" "objectClass: groupOfNames" "cn: g5" \
        "member: uid=u5,ou=people,$S" "member: uid=u1,ou=people,$S" ""
} > "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$S"
skeleton_ldif "$T" "$DATA/dst.ldif"
start_server SRC "$S" "$DATA/src.ldif"
start_server DST "$T" "$DATA/dst.ldif"
start_server DST2 "$T" "$DATA/dst.ldif"

# members NAME GROUP ATTR: the sorted RDN values of GROUP's ATTR values at instance NAME
members() {
    slapd_search "$1" -b "cn=$2,ou=groups,$T" -s base '(objectClass=*)' "$3" |
        sed -n "s/^$3: [a-z]*=\([^,]*\),.*/\1/p" | sort | tr '\n' ' ' | sed 's/ $//'
}

mkconfig "$WORK/flat.json" SRC DST source.users.filter='(objectClass=inetOrgPerson)' \
    source.groups.nesting=flatten
dm flat -c "$WORK/flat.json" run --json
expect_rc 0 flat "run with groups.nesting flatten"
expect_json "$WORK/flat.out" users.created 6 groups.created 5 total.failed 0
for want in "g1 member u1 u2 u3" "g2 member u1 u2 u3" "g3 member u1 u2 u3" \
    "g4 uniqueMember u1 u2 u3 u4" "g5 member u1 u5"; do
    read -r g attr m <<< "$want"
    got=$(members DST "$g" "$attr")
    [ "$got" = "$m" ] || fail "flatten: $g $attr is '$got', want '$m'"
done
grep -q "groups flattened" "$WORK/flat.log" || fail "flatten: nothing logged"
log "ok: flatten through a cycle and across member/uniqueMember"

mkconfig "$WORK/keep.json" SRC DST2 source.users.filter='(objectClass=inetOrgPerson)'
dm keep -c "$WORK/keep.json" run --json
expect_rc 0 keep "run with groups.nesting preserve"
[ "$(members DST2 g1 member)" = "g2 u1" ] || fail "preserve: g1 is '$(members DST2 g1 member)'"
[ "$(members DST2 g4 uniqueMember)" = "g1 u4" ] ||
    fail "preserve: g4 is '$(members DST2 g4 uniqueMember)'"
log "ok: preserve keeps nested groups"

check_no_secrets
exit 0
