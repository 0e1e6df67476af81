#!/bin/bash
# test_ad_okta_leavers.sh: account state and leavers from a real Samba AD DC to the Okta
# contract server (tests/okta/okta_server.py), with schema/maps/ad-to-okta.json and delta
# reads (source.delta).
#
# 1. Disabled (userAccountControl ACCOUNTDISABLE) and expired (accountExpires in the past)
#    AD users arrive deactivated, never ACTIVE, and in no group; every other user is ACTIVE.
# 2. A user disabled in AD after the migration is deactivated at the target by the next
#    (delta) run and taken out of every group it was in.
# 3. A user deleted in AD (a tombstone the delta read reports) is a leaver: deactivated
#    (leavers.action "disable" on an Okta target: the lifecycle deactivate) and out of its
#    groups in the same delta run, though no group changed in AD.
# 4. Enabled again in AD, the user is activated again.
# 5. With the users filter of examples/ad-to-okta.json, which leaves disabled users out:
#    disabled users are not migrated at all, and a user disabled after the migration
#    leaves the scope: the delta run finds it (changed, no longer matching the filter), a
#    leaver, deactivated and out of its groups.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ad_lib.sh"

ad_setup 200
CANARY_PW=$(cat "$SAMBA_PW_FILE") # the bind password: must never show up in any output
register_secret "$CANARY_PW"
write_secret "$SECRETS/token" "okta-leavers-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
start_okta OKTA

aoconfig() { # OUT PORT [overrides]
    local out=$1 port=$2
    shift 2
    mkconfig "$out" - - target.base=- target.bind_dn=- target.bind_pw_file=- \
        target.type=okta "target.uri=http://127.0.0.1:$port" "target.token_file=$SECRETS/token" \
        source.uri="$SAMBA_LDAPS_URI" source.base="$AD_BASE" \
        source.bind_dn="$SAMBA_ADMIN_DN" source.bind_pw_file="$SAMBA_PW_FILE" \
        source.tls='{"ca_file": "'"$SAMBA_CA_FILE"'"}' source.dialect=ad source.delta=true \
        source.users='{"base": "'"$AD_PEOPLE"'"}' source.groups='{"base": "'"$AD_GROUPS"'"}' \
        map='{"file": "'"$top_srcdir/schema/maps/ad-to-okta.json"'"}' "$@"
}
aoconfig "$WORK/ao.json" "$OKTA_PORT"

# dump_check CHECK ARGS...: runs a check over the contract server's /test/dump and the
# fixture's expected.json (python below); fails the test with its message.
dump_check() {
    curl -s "http://127.0.0.1:${DUMP_PORT:-$OKTA_PORT}/test/dump" > "$WORK/dump.json" || fail "no /test/dump"
    "$PYTHON3" - "$WORK/dump.json" "$AD_FX/expected.json" "$@" << 'EOF' || fail "dump check $* failed"
import json, sys
dump = json.load(open(sys.argv[1]))
exp = json.load(open(sys.argv[2]))
what, args = sys.argv[3], sys.argv[4:]
users = dump["users"]
def login(sam):
    return "%s@example.test" % sam
def groups_of(lg):
    return sorted(n for n, g in dump["groups"].items() if lg in g["members"])
if what == "arrival":
    bad = []
    n = {"ACTIVE": 0, "DEPROVISIONED": 0}
    for sam, u in exp["users"].items():
        got = users.get(login(sam))
        if got is None:
            bad.append("%s missing" % sam)
            continue
        want = "DEPROVISIONED" if u["state"] in ("disabled", "expired") else "ACTIVE"
        n[want] = n.get(want, 0) + 1
        if got["status"] != want:
            bad.append("%s (%s) is %s, want %s" % (sam, u["state"], got["status"], want))
        if want != "ACTIVE" and groups_of(login(sam)):
            bad.append("%s (%s) is in %s" % (sam, u["state"], groups_of(login(sam))))
    if bad:
        sys.exit("; ".join(bad[:10]))
    if n["DEPROVISIONED"] < 20:
        sys.exit("only %d disabled or expired users in the fixture" % n["DEPROVISIONED"])
    print("%d ACTIVE, %d DEPROVISIONED" % (n["ACTIVE"], n["DEPROVISIONED"]))
elif what == "status":  # SAM STATUS
    got = users[login(args[0])]["status"]
    if got != args[1]:
        sys.exit("%s is %s, want %s" % (args[0], got, args[1]))
elif what == "groups":  # SAM: prints the user's groups
    print(" ".join(groups_of(login(args[0]))))
elif what == "absent":  # STATE: no user of the fixture in this state is at the target
    there = [sam for sam, u in exp["users"].items() if u["state"] == args[0] and login(sam) in users]
    if there:
        sys.exit("%d %s users at the target, e.g. %s" % (len(there), args[0], there[:3]))
elif what == "nogroups":  # SAM
    g = groups_of(login(args[0]))
    if g:
        sys.exit("%s is still in %s" % (args[0], g))
EOF
}
dn_of() {
    "$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["users"][sys.argv[2]]["dn"])' \
        "$AD_FX/expected.json" "$1"
}

# ---- 1. arrival ----
dm run1 -c "$WORK/ao.json" run --json
expect_rc 0 run1 "first run (AD -> Okta)"
expect_json "$WORK/run1.out" status done total.failed 0 users.created 200
log "arrival: $(dump_check arrival)"

# two enabled users who are members of groups (u0011, u0012 are enabled: i % 10 == 1, 2)
g11=$(dump_check groups u0011)
g12=$(dump_check groups u0012)
[ -n "$g11" ] && [ -n "$g12" ] || fail "u0011 ($g11) or u0012 ($g12) is in no group: pick others"
dump_check status u0011 ACTIVE

# ---- 2. disabled in AD after the migration ----
printf '%s\n' "dn: $(dn_of u0011)" "changetype: modify" "replace: userAccountControl" \
    "userAccountControl: 514" > "$DATA/disable.ldif"
samba_modify -f "$DATA/disable.ldif" > "$WORK/disable.log" 2>&1 || fail "disabling u0011 failed"
dm run2 -c "$WORK/ao.json" run --json
expect_rc 0 run2 "delta run after a disable"
expect_json "$WORK/run2.out" status done total.failed 0 users.read 1 groups.read 0 reasons.disabled 1
dump_check status u0011 DEPROVISIONED
dump_check nogroups u0011
log "ok: u0011 disabled in AD: deactivated and out of $g11"

# ---- 3. deleted in AD ----
ldapdelete -x -H "$SAMBA_URI" -D "$SAMBA_ADMIN_UPN" -y "$SAMBA_PW_FILE" "$(dn_of u0012)" ||
    fail "deleting u0012 failed"
dm run3 -c "$WORK/ao.json" run --json
expect_rc 0 run3 "delta run after a delete"
expect_json "$WORK/run3.out" status done source_deleted 1 leavers.disabled 1 reasons.leaver 1
dump_check status u0012 DEPROVISIONED
dump_check nogroups u0012
log "ok: u0012 deleted in AD: a leaver, deactivated and out of $g12"

# ---- 4. enabled again ----
printf '%s\n' "dn: $(dn_of u0011)" "changetype: modify" "replace: userAccountControl" \
    "userAccountControl: 512" > "$DATA/enable.ldif"
samba_modify -f "$DATA/enable.ldif" > "$WORK/enable.log" 2>&1 || fail "enabling u0011 failed"
dm run4 -c "$WORK/ao.json" run --json
expect_rc 0 run4 "delta run after an enable"
expect_json "$WORK/run4.out" status done reasons.enabled 1
dump_check status u0011 ACTIVE
dm run5 -c "$WORK/ao.json" run --json
expect_rc 0 run5 "delta run with nothing changed"
expect_json "$WORK/run5.out" status done total.created 0 total.updated 0 leavers.would_change 0
log "ok: u0011 enabled in AD: active again"

# ---- 5. a users filter that leaves disabled users out (examples/ad-to-okta.json) ----
start_okta OKTA2
DUMP_PORT=$OKTA2_PORT
aoconfig "$WORK/af.json" "$OKTA2_PORT" \
    source.users='{"base": "'"$AD_PEOPLE"'", "filter": "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"}'
dm frun1 -c "$WORK/af.json" run --json
expect_rc 0 frun1 "first run with the filtered scope"
dump_check absent disabled
dump_check status u0007 DEPROVISIONED
dump_check status u0021 ACTIVE
g21=$(dump_check groups u0021)
[ -n "$g21" ] || fail "u0021 is in no group: pick another user"
printf '%s\n' "dn: $(dn_of u0021)" "changetype: modify" "replace: userAccountControl" \
    "userAccountControl: 514" > "$DATA/disable21.ldif"
samba_modify -f "$DATA/disable21.ldif" > "$WORK/disable21.log" 2>&1 || fail "disabling u0021 failed"
dm frun2 -c "$WORK/af.json" run --json
expect_rc 0 frun2 "delta run after a disable that takes the user out of the filter"
expect_json "$WORK/frun2.out" status done leavers.disabled 1 reasons.leaver 1
grep -q 'left the scope (no longer matches the filter' "$WORK/af.log" ||
    fail "the run does not say that u0021 left the scope"
dump_check status u0021 DEPROVISIONED
dump_check nogroups u0021
log "ok: filtered scope: disabled users never migrated; u0021 disabled after: a leaver, deactivated, out of $g21"

check_no_secrets
log "PASS"
