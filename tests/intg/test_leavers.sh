#!/bin/bash
# test_leavers.sh: leavers, account state and the gates in front of every disable and
# delete (LDAP -> LDAP, real slapd on both sides; the source is read as a reader account
# whose access rules and limits the test changes).
#
# 1. Account state: a user disabled in the source (source.users.disabled) is disabled at
#    the target (target.disable), enabled again when the source enables it; a new user
#    that is disabled in the source arrives disabled, never active.
# 2. The source-health gate: a wrong users base, access rules that hide every user, a
#    size limit on the reader, and a source that dies half-way through the read each end
#    the run "blocked" (exit 75) with the reason, with zero disables and deletes, the
#    target byte-identical, and `dirmig status` showing why; --allow-deletes never
#    overrides them.
# 3. Limits: 30% of the users leave with max_delete_percent 5: plan and run say how many
#    they would change and change none (blocked, exit 75); --allow-deletes 10 is not
#    enough; --allow-deletes 30 disables exactly them and takes them out of their groups;
#    the next run changes nothing.
# 4. delete_after_days: the disabled leavers are deleted once their time is up, not before.
# 5. Accounts only the target has are reported; unmatched_target.action disable acts on
#    those its filter names and never on any other account.
# 6. An empty source (every user deleted) never deletes anything, whatever the flags.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

S=dc=src,dc=example
T=dc=dst,dc=example
READER="cn=reader,$S"
gen_users --suffix "$S" --users 100 --groups 4 --big-group 40 --schemes ssha --ldif "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$S"
register_ldif_passwords "$DATA/src.ldif"
rpw="Reader-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
register_secret "$rpw"
write_secret "$SECRETS/reader.pw" "$rpw"
printf '%s\n' "" "dn: $READER" "objectClass: organizationalRole" "objectClass: simpleSecurityObject" \
    "cn: reader" "userPassword: $(slappasswd -s "$rpw")" >> "$DATA/src.ldif"
# the reader reads everything (userPassword included); anonymous may only bind
acl_open() {
    printf '%s\n' \
        "access to attrs=userPassword by dn.exact=\"$READER\" read by anonymous auth by * none" \
        "access to * by dn.exact=\"$READER\" read by * none"
}
acl_open > "$DATA/src-acl.conf"
skeleton_ldif "$T" "$DATA/dst.ldif"
start_server SRC "$S" "$DATA/src.ldif" "dbconf=$DATA/src-acl.conf"
start_server DST "$T" "$DATA/dst.ldif"

adm() { # NAME: ldapmodify as the admin of instance NAME, LDIF on stdin
    local u="${1}_URI" s="${1}_SUFFIX" p="${1}_PW_FILE"
    ldapmodify -x -H "${!u}" -D "cn=admin,${!s}" -y "${!p}" > /dev/null || fail "ldapmodify on $1"
}
# set_src_conf FILE: the source's access rules and limits become FILE's, and it restarts
set_src_conf() {
    local conf=$TESTDIR/SRC/slapd.conf
    sed -i '/^access to\|^limits /d' "$conf"
    cat "$1" >> "$conf"
    slapd_restart SRC || fail "source restart"
}
# attr_of DN ATTR: the values of ATTR of DN at the target, one a line
attr_of() {
    slapd_search DST -b "$1" -s base "$2" | sed -n "s/^$2: //p"
}
# target_dump OUT: the whole target, user attributes and entryCSN (any write shows)
target_dump() {
    slapd_search DST -b "$T" '(objectClass=*)' '*' entryCSN > "$1.raw" || fail "ldapsearch on DST"
    "$PYTHON3" "$top_srcdir/tests/harness/ldifnorm.py" < "$1.raw" > "$1" || fail "ldifnorm"
}
count_users() {
    slapd_count DST "ou=people,$T" '(objectClass=inetOrgPerson)'
}

MAP='{"key":{"source":"entryUUID"},"users":{"auto":"by-name","exclude":["employeeType"]},"groups":{"auto":"by-name"}}'
base_cfg=(source.bind_dn="$READER" source.bind_pw_file="$SECRETS/reader.pw" "map=$MAP"
    source.users.disabled.attribute=employeeType 'source.users.disabled.values=["left","suspended"]'
    target.disable.attribute=employeeType target.disable.value=DISABLED)
mkconfig "$WORK/l.json" SRC DST "${base_cfg[@]}"

dm run1 -c "$WORK/l.json" run --json
expect_rc 0 run1 "first run"
expect_json "$WORK/run1.out" status done users.created 101 groups.created 4 leavers.would_change 0
[ "$(count_users)" = 101 ] || fail "target has $(count_users) users after the first run"

# ---- 1. account state ----
adm SRC << EOF
dn: uid=user00010,ou=people,$S
changetype: modify
add: employeeType
employeeType: suspended

dn: uid=new00001,ou=people,$S
changetype: add
objectClass: inetOrgPerson
uid: new00001
cn: New Starter
sn: Starter
employeeType: left
EOF
dm plan1 -c "$WORK/l.json" plan --json
expect_rc 0 plan1 "plan with a user disabled in the source"
expect_json "$WORK/plan1.out" status done reasons.disabled 1 users.create 1
dm run2 -c "$WORK/l.json" run --json
expect_rc 0 run2 "run with a user disabled in the source"
expect_json "$WORK/run2.out" users.created 1 users.updated 1 reasons.disabled 1
[ "$(attr_of "uid=user00010,ou=people,$T" employeeType)" = DISABLED ] ||
    fail "user00010 is not disabled at the target"
member_of_g0() {
    slapd_search DST -b "cn=grp0000,ou=groups,$T" -s base member | grep -qi "^member: uid=$1,"
}
member_of_g0 user00010 && fail "user00010 (disabled in the source) is still a member of grp0000"
member_of_g0 user00011 || fail "user00011 is not a member of grp0000"
[ "$(attr_of "uid=new00001,ou=people,$T" employeeType)" = DISABLED ] ||
    fail "new00001 (disabled in the source) arrived enabled at the target"
adm SRC << EOF
dn: uid=user00010,ou=people,$S
changetype: modify
delete: employeeType
EOF
dm run3 -c "$WORK/l.json" run --json
expect_rc 0 run3 "run with a user enabled again"
expect_json "$WORK/run3.out" users.updated 1 reasons.enabled 1
[ -z "$(attr_of "uid=user00010,ou=people,$T" employeeType)" ] ||
    fail "user00010 is still disabled at the target after the source enabled it"
[ "$(attr_of "uid=new00001,ou=people,$T" employeeType)" = DISABLED ] ||
    fail "new00001 lost its disabled state"
member_of_g0 user00010 || fail "user00010 (enabled again) is not back in grp0000"
dm run4 -c "$WORK/l.json" run --json
expect_rc 0 run4 "rerun"
expect_json "$WORK/run4.out" total.created 0 total.updated 0 leavers.would_change 0
log "ok: account state carried: disabled (and out of its groups), enabled again (and back), new user arrives disabled"

# ---- 2. the source-health gate ----
target_dump "$DATA/target-before-gates"
# every gate below would otherwise see 40 leavers (uid user0006x..user0009x deleted)
for i in $(seq 60 99); do
    printf 'dn: uid=user%05d,ou=people,%s\nchangetype: delete\n\n' "$i" "$S"
done | adm SRC
gate() { # TAG CONFIG WHY [ARGS]: the run is blocked for WHY and changes nothing at the target
    local tag=$1 cfg=$2 why=$3
    shift 3
    dm "$tag" -c "$cfg" run --json "$@"
    expect_rc 75 "$tag" "$tag: a run that fails the source-health gate"
    expect_json "$WORK/$tag.out" status blocked exit_code 75 leavers.disabled 0 leavers.deleted 0
    json_get "$WORK/$tag.out" blocked | grep -q -- "$why" ||
        fail "$tag: blocked for '$(json_get "$WORK/$tag.out" blocked)', want '$why'"
    grep -q "no disable or delete in this run: .*$why" "$WORK/$(basename "$cfg" .json).log" ||
        fail "$tag: the log does not say why the run is blocked"
    target_dump "$DATA/$tag-target"
    cmp -s "$DATA/target-before-gates" "$DATA/$tag-target" ||
        fail "$tag: the target changed: $(diff "$DATA/target-before-gates" "$DATA/$tag-target" | head -n 5)"
    dm "$tag-status" -c "$cfg" status --json
    expect_rc 0 "$tag-status" "status after $tag"
    json_get "$WORK/$tag-status.out" blocked.reason | grep -q -- "$why" ||
        fail "$tag: dirmig status --json does not show the block"
    dm "$tag-statustext" -c "$cfg" status
    grep -q "^BLOCKED: run [0-9]* made no disable or delete: .*$why" "$WORK/$tag-statustext.out" ||
        fail "$tag: dirmig status does not show the block"
    log "ok: $tag: blocked ($why), nothing written"
}
# a wrong users base
mkconfig "$WORK/wrongbase.json" SRC DST "${base_cfg[@]}" "source.users.base=ou=peeple,$S" \
    state.path="$WORK/l.db"
gate wrongbase "$WORK/wrongbase.json" "did not complete"
gate wrongbase-allow "$WORK/wrongbase.json" "did not complete" --allow-deletes 1000
# access rules that hide every user from the reader
{
    echo "access to dn.children=\"ou=people,$S\" by dn.exact=\"$READER\" none by anonymous auth by * none"
    acl_open
} > "$DATA/src-hide.conf"
set_src_conf "$DATA/src-hide.conf"
gate acl "$WORK/l.json" "returned no user"
gate acl-allow "$WORK/l.json" "returned no user" --allow-deletes 1000
# a size limit on the reader
{
    acl_open
    echo "limits dn.exact=\"$READER\" size.soft=20 size.hard=20 size.prtotal=20"
} > "$DATA/src-limit.conf"
set_src_conf "$DATA/src-limit.conf"
gate sizelimit "$WORK/l.json" "did not complete"
set_src_conf "$DATA/src-acl.conf"
# the source dies half-way through the users read (after about 20 users, pages of 10)
"$PYTHON3" "$top_srcdir/tests/harness/cutproxy.py" --target-port "$SRC_PORT" --cut-after 8000 \
    > "$WORK/cutproxy.out" 2> "$WORK/cutproxy.err" &
DM_BG_PIDS="$DM_BG_PIDS $!"
for _ in $(seq 1 100); do grep -q "^READY" "$WORK/cutproxy.out" && break; sleep 0.05; done
cport=$(sed -n "s/^READY //p" "$WORK/cutproxy.out")
[ -n "$cport" ] || fail "cutproxy did not start"
mkconfig "$WORK/cut.json" SRC DST "${base_cfg[@]}" "source.uri=ldap://127.0.0.1:$cport" \
    source.page_size=10 source.max_retries=2 state.path="$WORK/l.db"
gate cut "$WORK/cut.json" "did not complete"
grep -q "^CUT" "$WORK/cutproxy.out" || fail "the proxy never cut the read: nothing was tested"

# ---- 3. limits ----
# 40 of the 102 migrated users are gone: over max_delete_percent 5 and the 10% shrink
dm plan3 -c "$WORK/l.json" plan --json
expect_rc 75 plan3 "plan over the limits"
expect_json "$WORK/plan3.out" status blocked leavers.would_change 40 leavers.disabled 0
grep -q "disables and deletes the run would have made: 40" "$WORK/plan3.err" ||
    fail "the plan's summary does not say how many it would change"
dm run5 -c "$WORK/l.json" run --json
expect_rc 75 run5 "run over the limits"
expect_json "$WORK/run5.out" status blocked leavers.would_change 40 leavers.disabled 0
[ -z "$(attr_of "uid=user00070,ou=people,$T" employeeType)" ] || fail "a leaver was disabled over the limit"
dm run6 -c "$WORK/l.json" run --json --allow-deletes 10
expect_rc 75 run6 "--allow-deletes below the count"
expect_json "$WORK/run6.out" status blocked leavers.disabled 0
in_groups=$(slapd_search DST -b "ou=groups,$T" member | grep -c 'uid=user000[6-9][0-9],')
[ "$in_groups" -gt 0 ] || fail "no leaver is a group member at the target: nothing to test"
dm run7 -c "$WORK/l.json" run --json --allow-deletes 40
expect_rc 0 run7 "--allow-deletes 40"
expect_json "$WORK/run7.out" status done leavers.disabled 40 leavers.deleted 0 reasons.leaver 40
n=0
for i in $(seq 60 99); do
    [ "$(attr_of "uid=user000$i,ou=people,$T" employeeType)" = DISABLED ] && n=$((n + 1))
done
[ "$n" = 40 ] || fail "$n of the 40 leavers are disabled at the target"
[ -z "$(attr_of "uid=user00059,ou=people,$T" employeeType)" ] || fail "user00059 (not a leaver) was disabled"
slapd_search DST -b "ou=groups,$T" member | grep -q 'uid=user000[6-9][0-9],' &&
    fail "a disabled leaver is still a member of a group at the target"
dm run8 -c "$WORK/l.json" run --json
expect_rc 0 run8 "rerun after the leavers"
expect_json "$WORK/run8.out" status done total.created 0 total.updated 0 leavers.would_change 0
log "ok: limits: 40 leavers blocked at 5%, --allow-deletes 10 refused, 40 approved, disabled and out of their $in_groups memberships"

# ---- 4. delete_after_days ----
mkconfig "$WORK/d.json" SRC DST "${base_cfg[@]}" leavers.delete_after_days=3 leavers.max_delete_percent=50 \
    state.path="$WORK/l.db"
dm run9 -c "$WORK/d.json" run --json
expect_rc 0 run9 "run before the leavers' time is up"
expect_json "$WORK/run9.out" leavers.deleted 0 leavers.would_change 0
# four days pass for the journal: the 40 leavers and new00001 (disabled in the source)
"$PYTHON3" - "$WORK/l.db" << 'EOF' || fail "could not age the journal"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("UPDATE objects SET disabled_at = disabled_at - 4 * 86400 "
               "WHERE disabled_at > 0").rowcount
db.commit()
assert n == 41, n
EOF
dm plan10 -c "$WORK/d.json" plan --json
expect_rc 0 plan10 "plan once the leavers' time is up"
expect_json "$WORK/plan10.out" leavers.deleted 41 leavers.would_change 41
dm run10 -c "$WORK/d.json" run --json
expect_rc 0 run10 "run once the leavers' time is up"
expect_json "$WORK/run10.out" status done leavers.deleted 41
[ "$(count_users)" = 61 ] || fail "target has $(count_users) users, want 61 after the deletes"
dm run11 -c "$WORK/d.json" run --json
expect_rc 0 run11 "rerun after the deletes"
expect_json "$WORK/run11.out" total.created 0 total.updated 0 leavers.would_change 0
log "ok: delete_after_days: leavers and a user disabled in the source deleted after their time, not before, and not created again"

# ---- 5. accounts only the target has ----
adm DST << EOF
dn: uid=old001,ou=people,$T
changetype: add
objectClass: inetOrgPerson
uid: old001
cn: Old One
sn: One

dn: uid=old002,ou=people,$T
changetype: add
objectClass: inetOrgPerson
uid: old002
cn: Old Two
sn: Two

dn: uid=keepme,ou=people,$T
changetype: add
objectClass: inetOrgPerson
uid: keepme
cn: Keep Me
sn: Me
EOF
dm run12 -c "$WORK/l.json" run --json
expect_rc 0 run12 "run with accounts only the target has"
expect_json "$WORK/run12.out" leavers.unmatched_found 3 leavers.unmatched_changed 0
grep -q "account only the target has: uid=keepme" "$WORK/l.log" || fail "unmatched accounts not named"
mkconfig "$WORK/u.json" SRC DST "${base_cfg[@]}" unmatched_target.action=disable \
    "unmatched_target.filter=(uid=old*)" state.path="$WORK/l.db"
dm run13 -c "$WORK/u.json" run --json
expect_rc 0 run13 "unmatched_target disable"
expect_json "$WORK/run13.out" leavers.unmatched_changed 2 reasons.unmatched 2
[ "$(attr_of "uid=old001,ou=people,$T" employeeType)" = DISABLED ] || fail "old001 not disabled"
[ "$(attr_of "uid=old002,ou=people,$T" employeeType)" = DISABLED ] || fail "old002 not disabled"
[ -z "$(attr_of "uid=keepme,ou=people,$T" employeeType)" ] || fail "keepme (outside the filter) was disabled"
[ -z "$(attr_of "uid=user00001,ou=people,$T" employeeType)" ] || fail "a migrated user was disabled"
log "ok: accounts only the target has: reported; the filter's two disabled, no other"

# ---- 6. an empty source ----
target_dump "$DATA/target-before-empty"
slapd_search SRC -b "ou=people,$S" -s one dn | sed -n 's/^dn: \(.*\)/dn: \1\nchangetype: delete\n/p' | adm SRC
[ "$(slapd_count SRC "ou=people,$S" '(objectClass=inetOrgPerson)')" = 0 ] || fail "source not emptied"
dm run14 -c "$WORK/d.json" run --json --allow-deletes 100000
expect_rc 75 run14 "run on an empty source"
expect_json "$WORK/run14.out" status blocked leavers.deleted 0 leavers.disabled 0
json_get "$WORK/run14.out" blocked | grep -q "returned no user" || fail "empty source: wrong reason"
target_dump "$DATA/after-empty"
cmp -s "$DATA/target-before-empty" "$DATA/after-empty" || fail "an empty source changed the target"
log "ok: an empty source deletes nothing, even with --allow-deletes"

check_no_secrets
log "PASS"
