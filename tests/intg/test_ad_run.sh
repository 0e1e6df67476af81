#!/bin/bash
# test_ad_run.sh: reads a real Samba AD DC through the AD dialect (source.dialect "ad") and
# migrates it to slapd with schema/maps/ad-to-inetorgperson.json, over LDAPS with the
# certificate verified.
#   - 2,000 users (disabled, expired, accountExpires 0, non-ASCII names) and 30 groups:
#     every user, its state (dirmigAccountState) and every membership (primary-group
#     members included, nesting preserved with a cycle) match the fixture; objectGUID and
#     objectSid strings match ldbsearch's
#   - range_size 100: the 1,600-member group comes back whole through member;range=
#   - groups.nesting "flatten": the g01 > g02 > g03 > g01 cycle gives 30 users each
#   - delta: after 5 users change and 2 are deleted, the next run reads only those 5 and
#     reports the 2 deletions
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ad_lib.sh"

T0=$(date +%s.%N)
ad_setup 2000
CANARY_PW=$(cat "$SAMBA_PW_FILE") # the bind password: must never show up in any output
register_secret "$CANARY_PW"

skeleton() {
    printf '%s\n' "dn: $1" "objectClass: organization" "o: x" "" \
        "dn: ou=dirmig,$1" "objectClass: organizationalUnit" "ou: dirmig" "" \
        "dn: ou=people,ou=dirmig,$1" "objectClass: organizationalUnit" "ou: people" "" \
        "dn: ou=groups,ou=dirmig,$1" "objectClass: organizationalUnit" "ou: groups"
}
skeleton o=dst > "$DATA/dst.ldif"
skeleton o=flat > "$DATA/flat.ldif"
start_server DST o=dst "$DATA/dst.ldif" dbnosync
start_server FLAT o=flat "$DATA/flat.ldif" dbnosync

adconfig() {
    local out=$1 dst=$2
    shift 2
    mkconfig "$out" - "$dst" source.uri="$SAMBA_LDAPS_URI" source.base="$AD_BASE" \
        source.bind_dn="$SAMBA_ADMIN_DN" source.bind_pw_file="$SAMBA_PW_FILE" \
        source.tls='{"ca_file": "'"$SAMBA_CA_FILE"'"}' source.dialect=ad \
        source.users='{"base": "'"$AD_PEOPLE"'"}' source.groups='{"base": "'"$AD_GROUPS"'"}' \
        target.base="ou=dirmig,$(eval echo "\$${dst}_SUFFIX")" \
        map='{"file": "'"$top_srcdir/schema/maps/ad-to-inetorgperson.json"'"}' "$@"
}
adconfig "$WORK/ad.json" DST source.range_size=100 source.delta=true log.level=debug
T1=$(date +%s.%N)

# ---- full run ----
dm run1 -c "$WORK/ad.json" run --json
expect_rc 0 run1 "dirmig run (AD -> slapd)"
expect_json "$WORK/run1.out" status done total.failed 0 users.created 2000 groups.created 30 \
    unresolved_members 0 source_deleted 0 state_not_carried 400
# no target.disable here: the 400 disabled and expired users are written with their state
# in employeeType (the map's), enabled, and the run says so
grep -q 'users disabled or expired in the source are written enabled' "$WORK/ad.log" ||
    fail "the run does not say that the account state is not carried"

slapd_search DST -b "ou=people,ou=dirmig,o=dst" '(objectClass=inetOrgPerson)' \
    uid cn employeeType employeeNumber departmentNumber mail > "$DATA/dst-users.ldif"
ldbsearch -H "$SAMBA_DIR/private/sam.ldb" -b "$AD_PEOPLE" '(objectClass=user)' \
    sAMAccountName objectGUID objectSid > "$DATA/ldb.ldif" 2> /dev/null || fail "ldbsearch failed"
"$PYTHON3" "$top_srcdir/tests/harness/ad_check.py" users "$AD_FX/expected.json" \
    "$DATA/dst-users.ldif" "$DATA/ldb.ldif" || fail "users differ from the fixture"
slapd_search DST -b "ou=groups,ou=dirmig,o=dst" '(objectClass=groupOfNames)' cn member \
    > "$DATA/dst-groups.ldif"
"$PYTHON3" "$top_srcdir/tests/harness/ad_check.py" groups "$AD_FX/expected.json" \
    "$DATA/dst-groups.ldif" preserve || fail "group memberships differ from the fixture"
n=$(slapd_search DST -b "cn=g00,ou=groups,ou=dirmig,o=dst" -s base member | grep -c '^member:')
[ "$n" = 1600 ] || fail "g00 has $n members in the target, want 1600 (range_size 100)"
# The 1,600 members came in ranged requests of 100 (Samba would send them all at once).
grep -q 'CN=g00,OU=groups,OU=dirmig,DC=example,DC=test: member read in ranges: 1600 values' \
    "$WORK/ad.log" || fail "g00 was not read in ranges"
n=$(grep -c 'base="CN=g00,OU=groups,OU=dirmig,DC=example,DC=test", scope=base, attrs=member;range=' \
    "$WORK/ad.log")
[ "$n" -ge 15 ] || fail "g00: $n ranged requests, want >= 15"

# ---- a wave defined by an AD group: lookup() completes the group as a read does, so its
# 10 primary-group-only members (never listed in member) belong to the wave too ----
# (the same journal as the full run: waves are runs of one migration)
adconfig "$WORK/wave.json" DST waves='[{"name": "g04", "group": "CN=g04,'"$AD_GROUPS"'"}]' \
    state.path="$WORK/ad.db"
dm wave -c "$WORK/wave.json" plan --wave g04 --json
expect_rc 0 wave "plan --wave g04"
expect_json "$WORK/wave.out" users.unchanged 20 users.skipped 1980
T2=$(date +%s.%N)

# ---- flatten: the nested cycle, in a small scope ----
adconfig "$WORK/flat.json" FLAT source.groups.nesting=flatten \
    source.users.filter='(&(objectClass=user)(|(sAMAccountName=u160*)(sAMAccountName=u161*)(sAMAccountName=u162*)))' \
    source.groups.filter='(|(cn=g01)(cn=g02)(cn=g03))' log.level=debug
dm flat -c "$WORK/flat.json" run --json
expect_rc 0 flat "dirmig run (flatten)"
expect_json "$WORK/flat.out" status done total.failed 0 users.created 30 groups.created 3
slapd_search FLAT -b "ou=groups,ou=dirmig,o=flat" '(objectClass=groupOfNames)' cn member \
    > "$DATA/flat-groups.ldif"
"$PYTHON3" "$top_srcdir/tests/harness/ad_check.py" groups "$AD_FX/expected.json" \
    "$DATA/flat-groups.ldif" flatten g01 g02 g03 || fail "flattened memberships are wrong"
T3=$(date +%s.%N)

# ---- delta: 5 users change, 2 are deleted ----
{
    for u in 0011 0012 0500 1000 1500; do
        "$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["users"][sys.argv[2]]["dn"])' \
            "$AD_FX/expected.json" "u$u" | sed 's/^/dn: /'
        printf '%s\n' "changetype: modify" "replace: displayName" "displayName: Changed $u" "-" ""
    done
} > "$DATA/delta.ldif"
samba_modify -f "$DATA/delta.ldif" > "$WORK/delta-modify.log" 2>&1 || fail "modify failed"
for u in u1990 u1991; do
    dn=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["users"][sys.argv[2]]["dn"])' \
        "$AD_FX/expected.json" "$u")
    ldapdelete -x -H "$SAMBA_URI" -D "$SAMBA_ADMIN_UPN" -y "$SAMBA_PW_FILE" "$dn" ||
        fail "deleting $dn failed"
done
dm run2 -c "$WORK/ad.json" run --json
expect_rc 0 run2 "dirmig delta run"
expect_json "$WORK/run2.out" status done total.failed 0 users.read 5 users.updated 5 \
    groups.read 0 source_deleted 2
grep -q 'delta: reading changes after' "$WORK/ad.log" || fail "the second run was not a delta read"
n=$(grep -c 'was deleted in the source' "$WORK/ad.log")
[ "$n" = 2 ] || fail "$n deletions logged, want 2"
dn=$(slapd_search DST -b "ou=people,ou=dirmig,o=dst" '(uid=u0500)' displayName | grep '^displayName:')
[ "$dn" = "displayName: Changed 0500" ] || fail "u0500 not updated: $dn"
# A third run with nothing changed reads nothing and reports nothing.
dm run3 -c "$WORK/ad.json" run --json
expect_rc 0 run3 "dirmig delta run (no change)"
expect_json "$WORK/run3.out" status done users.read 0 groups.read 0 source_deleted 0
T4=$(date +%s.%N)

check_no_secrets
log "$(awk -v a="$T0" -v b="$T1" -v c="$T2" -v d="$T3" -v e="$T4" 'BEGIN {
    printf "timings: setup %.1fs (%s), full run+checks %.1fs, flatten %.1fs, delta %.1fs",
    b-a, "'"$AD_TIMES"'", c-b, d-c, e-d }')"
