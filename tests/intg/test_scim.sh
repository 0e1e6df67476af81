#!/bin/bash
# tests/intg/test_scim.sh: `dirmig run` from a real slapd into a real SCIM 2.0 server (SCIMMY
# and its Express routers, tests/scim) through the scim connector.
#
# 1. Semantics (and 429 answers with Retry-After, waited for): users of every password scheme and nested groups; plan counts cleartext
#    passwords (sent as "password") and the rest (created without one, for the hook); every
#    user and membership exactly once; cleartext users sign in with their original password,
#    the others have none; a rerun writes nothing; a changed attribute is one PATCH; a
#    disabled user becomes active: false; drift at the server is repaired; a member removed in
#    the source is one PATCH remove.
# 2. Under faults: 5,000 users and a 5,000-member group written in chunks of member_chunk,
#    through a proxy that answers 5% of the requests with 503 and drops 5% of the connections
#    (half of them after the server applied the request): every user and membership exactly
#    once, and a rerun writes nothing.
# 3. No password or token in any log, output or the journal.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scim_lib.sh"
scim_modules

MAP=$top_srcdir/schema/maps/inetorgperson-to-scim.json
CHECK=$top_srcdir/tests/scim/check_scim.py
SUF=dc=src,dc=example
BULK=dc=bulk,dc=example

scim_config() { # OUT SRC PORT [overrides...]
    local out=$1 src=$2 port=$3
    shift 3
    mkconfig "$out" "$src" - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
        "target.type=scim" "target.uri=http://127.0.0.1:$port/scim" \
        "target.token_file=$SECRETS/scim.token" "target.network_timeout_ms=2000" \
        "map={\"file\": \"$MAP\"}" "$@"
}
stat_of() { # NAME KEY (a python expression on the stats object s)
    scim_get "$1" /test/stats | "$PYTHON3" -c "import json,sys; s=json.load(sys.stdin); print($2)"
}
last_json() { # FILE: the last line (the --json summary)
    tail -n 1 "$1"
}

# ---- 1. semantics ----
gen_users --suffix "$SUF" --users 42 --groups 6 --big-group 12 --schemes all \
    --ldif "$DATA/src.ldif" --passwords "$SECRETS/src.pw"
add_canary "$DATA/src.ldif" "$SUF" "$SECRETS/src.pw"
register_ldif_passwords "$DATA/src.ldif"
cut -f2 "$SECRETS/src.pw" > "$SECRETS/pwonly" && register_secret_file "$SECRETS/pwonly"
start_server SRC "$SUF" "$DATA/src.ldif"
start_scim S1
register_secret "$(cat "$SECRETS/scim.token")"
scim_config "$WORK/s1.json" SRC "$S1_PORT" "source.users.disabled.attribute=employeeType" \
    'source.users.disabled.values=["disabled"]'

dm check -c "$WORK/s1.json" check
expect_rc 0 check "check"
grep -q "SCIM 2.0 service provider at .*token accepted" "$WORK/check.out" "$WORK/check.err" ||
    fail "check does not describe the SCIM target: $(cat "$WORK/check.out" "$WORK/check.err")"
grep -q "PATCH yes, ETags yes (If-Match)" "$WORK/check.out" "$WORK/check.err" || fail "discovery did not find PATCH and ETags"

dm plan -c "$WORK/s1.json" --json plan
expect_rc 0 plan "plan"
"$PYTHON3" - "$WORK/plan.out" << 'PYEOF' || fail "plan counts are wrong"
import json, sys
p = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
by = {}
for c in p["passwords"]:
    by[c["outcome"]] = by.get(c["outcome"], 0) + c["users"]
# 42 users over 7 schemes: 6 cleartext, plus the canary (cleartext); the rest for the hook
assert by == {"import": 7, "hook": 36}, by
assert p["users"]["create"] == 43 and p["groups"]["create"] == 6, (p["users"], p["groups"])
PYEOF
[ "$(stat_of S1 's["writes"]')" = 0 ] || fail "plan wrote to the target"

dm run1 -c "$WORK/s1.json" --json run
expect_rc 0 run1 "run"
"$PYTHON3" - "$WORK/run1.out" << 'PYEOF' || fail "run counts are wrong"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["users"]["created"] == 43 and r["users"]["failed"] == 0, r["users"]
assert r["groups"]["created"] == 6 and r["groups"]["failed"] == 0, r["groups"]
assert r["created_with_hook"] == 36, r["created_with_hook"]
PYEOF
scim_get S1 /test/dump > "$DATA/dump1.json"
"$PYTHON3" "$CHECK" "$DATA/dump1.json" "$DATA/src.ldif" "ou=people,$SUF" "ou=groups,$SUF" \
    > "$WORK/check1.out" || fail "the target differs from the source: $(cat "$WORK/check1.out")"
log "run 1: $(cat "$WORK/check1.out")"
"$PYTHON3" - "$DATA/dump1.json" << 'PYEOF' || fail "attributes did not arrive as the map says"
import json, sys
d = json.load(open(sys.argv[1]))
u = {x["userName"]: x for x in d["Users"]}["user00000"]
assert u["name"]["familyName"] and u.get("active", True) is True, u
assert len(u["emails"]) == 2 and u["emails"][0].get("primary") is True, u["emails"]
assert u["externalId"], u
g1 = {x["displayName"]: x for x in d["Groups"]}["grp0001"]
g2 = {x["displayName"]: x for x in d["Groups"]}["grp0002"]
assert g2["id"] in [m["value"] for m in g1["members"]], "the nested group is not a member"
PYEOF
# sign-in: the cleartext users with their password; the hook users have none
port=$S1_SERVER_PORT
"$PYTHON3" - "$port" "$SECRETS/scim.token" "$SECRETS/src.pw" "$DATA/src.ldif" << 'PYEOF' > "$WORK/signin.out" || fail "sign-in checks failed: $(cat "$WORK/signin.out")"
import json, sys, urllib.request
port, tok = sys.argv[1], open(sys.argv[2]).read().strip()
pws = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[3]))
text = open(sys.argv[4]).read().replace("\n ", "")
clear = set()
for rec in text.split("\n\n"):
    dn = [l[4:] for l in rec.split("\n") if l.startswith("dn: ")]
    pw = [l for l in rec.split("\n") if l.lower().startswith("userpassword")]
    if dn and pw and not pw[0].split(":", 1)[1].strip().startswith(("{", ":")):
        clear.add(dn[0])
ok = hook = 0
for dn, pw in pws.items():
    uid = dn.split(",")[0].split("=")[1]
    req = urllib.request.Request("http://127.0.0.1:%s/test/signin" % port, method="POST",
        data=json.dumps({"userName": uid, "password": pw}).encode(),
        headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    res = json.load(urllib.request.urlopen(req))
    if dn in clear:
        assert res["ok"], "%s does not sign in" % uid
        ok += 1
    else:
        assert res["user"] and not res["ok"], "%s should have no password" % uid
        hook += 1
print("%d users sign in with their password, %d wait for the hook" % (ok, hook))
PYEOF
log "$(cat "$WORK/signin.out")"

writes=$(stat_of S1 's["writes"]')
dm run2 -c "$WORK/s1.json" --json run
expect_rc 0 run2 "second run"
expect_json "$WORK/run2.out" total.created 0 total.updated 0 total.failed 0
[ "$(stat_of S1 's["writes"]')" = "$writes" ] || fail "the second run wrote to the target"

ldapmodify -x -H "$SRC_URI" -D "cn=admin,$SUF" -y "$SRC_PW_FILE" > /dev/null << LDIFEOF ||
dn: uid=user00003,ou=people,$SUF
changetype: modify
replace: sn
sn: Renamed-Three
LDIFEOF
    fail "ldapmodify failed"
patches=$(stat_of S1 's["PATCH"].get("Users", 0)')
dm run3 -c "$WORK/s1.json" --json run
expect_rc 0 run3 "run after one change"
expect_json "$WORK/run3.out" users.updated 1 total.created 0 groups.updated 0
[ "$(stat_of S1 's["PATCH"].get("Users", 0)')" = $((patches + 1)) ] || fail "one change was not one PATCH"
scim_get S1 /test/dump | grep -q '"familyName":"Renamed-Three"' || fail "the new surname did not arrive"

ldapmodify -x -H "$SRC_URI" -D "cn=admin,$SUF" -y "$SRC_PW_FILE" > /dev/null << LDIFEOF ||
dn: uid=user00004,ou=people,$SUF
changetype: modify
add: employeeType
employeeType: disabled
LDIFEOF
    fail "ldapmodify failed"
dm run4 -c "$WORK/s1.json" --json run
expect_rc 0 run4 "run after a disable"
expect_json "$WORK/run4.out" users.updated 1
[ "$(stat_of S1 's["PATCH"].get("Users", 0)')" = $((patches + 2)) ] || fail "the disable was not one PATCH"
scim_get S1 /test/dump | "$PYTHON3" -c '
import json, sys
u = {x["userName"]: x for x in json.load(sys.stdin)["Users"]}
assert u["user00004"]["active"] is False and u["user00005"].get("active", True) is True' ||
    fail "the disabled user is not active: false"

# drift: someone renames a user at the server; the next run puts it back
uid5=$(scim_get S1 /test/dump | "$PYTHON3" -c '
import json, sys
print({x["userName"]: x for x in json.load(sys.stdin)["Users"]}["user00005"]["id"])')
curl -sf -X PATCH -H "Authorization: Bearer $(cat "$SECRETS/scim.token")" \
    -H 'Content-Type: application/scim+json' \
    -d '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Drifted"}]}' \
    "http://127.0.0.1:$S1_SERVER_PORT/scim/Users/$uid5" > /dev/null || fail "drift PATCH failed"
dm run5 -c "$WORK/s1.json" --json run
expect_rc 0 run5 "run after drift"
expect_json "$WORK/run5.out" users.updated 1 total.created 0
scim_get S1 /test/dump | grep -q '"displayName":"Drifted"' && fail "the drift was not repaired"
grep -q '"drift"' "$WORK/run5.out" || fail "the repair is not reported as drift"

# a disabled user leaves its groups (leavers.remove_from_groups, on by default); a member
# removed in the source: one PATCH remove
member=$(grep -m1 '^member: uid=' <(sed -n '/^dn: cn=grp0003,/,/^$/p' "$DATA/src.ldif") | cut -d' ' -f2)
[ -n "$member" ] || member=$(grep -m1 '^uniqueMember: uid=' <(sed -n '/^dn: cn=grp0003,/,/^$/p' "$DATA/src.ldif") | cut -d' ' -f2)
gp=$(stat_of S1 's["PATCH"].get("Groups", 0)')
attr=$(sed -n '/^dn: cn=grp0003,/,/^$/p' "$DATA/src.ldif" | grep -m1 -oE '^(member|uniqueMember):' | tr -d :)
ldapmodify -x -H "$SRC_URI" -D "cn=admin,$SUF" -y "$SRC_PW_FILE" > /dev/null << LDIFEOF ||
dn: cn=grp0003,ou=groups,$SUF
changetype: modify
delete: $attr
$attr: $member
LDIFEOF
    fail "ldapmodify (member) failed"
dm run6 -c "$WORK/s1.json" --json run
expect_rc 0 run6 "run after a member removal"
expect_json "$WORK/run6.out" groups.updated 1 users.updated 0
[ "$(stat_of S1 's["PATCH"].get("Groups", 0)')" = $((gp + 1)) ] || fail "the member removal was not one PATCH"
slapd_search SRC -b "ou=people,$SUF" -s one '(objectClass=*)' '*' > /dev/null
dm_ldif=$(mktemp -p "$DATA")
slapd_search SRC -b "$SUF" '(objectClass=*)' '*' > "$dm_ldif"
scim_get S1 /test/dump > "$DATA/dump6.json"
"$PYTHON3" "$CHECK" "$DATA/dump6.json" "$dm_ldif" "ou=people,$SUF" "ou=groups,$SUF" \
    --disabled-uid user00004 > "$WORK/check6.out" || fail "after the changes the target differs: $(cat "$WORK/check6.out")"

# 429 with Retry-After: waited for and retried, every user once
start_scim S3 --rate-429 0.1 --seed 5
scim_config "$WORK/s3.json" SRC "$S3_PORT"
dm r429 -c "$WORK/s3.json" --json run
expect_rc 0 r429 "run through 429s"
"$PYTHON3" - "$WORK/r429.out" << 'PYEOF' || fail "the 429s were not retried"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["users"]["created"] == 43 and r["users"]["failed"] == 0, r["users"]
assert r["target_requests"]["rate_limited"] > 0, r["target_requests"]
PYEOF
scim_get S3 /test/dump > "$DATA/dump429.json"
"$PYTHON3" "$CHECK" "$DATA/dump429.json" "$dm_ldif" "ou=people,$SUF" "ou=groups,$SUF" \
    > "$WORK/check429.out" || fail "after 429s the target differs: $(cat "$WORK/check429.out")"
log "429s: $(curl -s "http://127.0.0.1:$S3_PORT/proxy/stats")"

# ---- 2. 5,000 users and a 5,000-member group under faults ----
gen_users --suffix "$BULK" --users 5000 --groups 8 --big-group 5000 --schemes ssha \
    --ldif "$DATA/bulk.ldif" --passwords "$SECRETS/bulk.pw"
register_ldif_passwords "$DATA/bulk.ldif"
start_server BSRC "$BULK" "$DATA/bulk.ldif"
start_scim S2 --fail-5xx 0.05 --drop 0.05 --seed 7
scim_config "$WORK/bulk.json" BSRC "$S2_PORT" "target.concurrency=8" "target.timeout_ms=5000" \
    "target.max_retries=8" "target.member_chunk=1000" "run.batch_size=500"
t0=$(date +%s)
dm bulk1 -c "$WORK/bulk.json" --json run
expect_rc 0 bulk1 "bulk run under faults"
t1=$(date +%s)
"$PYTHON3" - "$WORK/bulk1.out" > "$WORK/bulk1.sum" << 'PYEOF' || fail "bulk counts are wrong"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["users"]["created"] == 5000 and r["users"]["failed"] == 0, r["users"]
assert r["groups"]["created"] == 8 and r["groups"]["failed"] == 0, r["groups"]
t = r["target_requests"]
assert t["server_errors"] > 0 and t["transport_errors"] > 0, t
print("%d requests, %d retried, %d 5xx, %d dropped" % (t["sent"], t["retried"],
      t["server_errors"], t["transport_errors"]))
PYEOF
log "bulk run in $((t1 - t0)) s: $(cat "$WORK/bulk1.sum"); proxy: $(curl -s "http://127.0.0.1:$S2_PORT/proxy/stats")"
scim_get S2 /test/dump > "$DATA/bulk_dump.json"
"$PYTHON3" "$CHECK" "$DATA/bulk_dump.json" "$DATA/bulk.ldif" "ou=people,$BULK" "ou=groups,$BULK" \
    > "$WORK/bulk_check.out" || fail "bulk: the target differs: $(cat "$WORK/bulk_check.out")"
log "bulk: $(cat "$WORK/bulk_check.out")"
[ "$(stat_of S2 's["PATCH"].get("Groups", 0)')" -ge 4 ] ||
    fail "the 5,000-member group was not written in chunks (PATCH add)"
writes=$(stat_of S2 's["writes"]')
dm bulk2 -c "$WORK/bulk.json" --json run
expect_rc 0 bulk2 "bulk rerun under faults"
expect_json "$WORK/bulk2.out" total.created 0 total.updated 0 total.failed 0
[ "$(stat_of S2 's["writes"]')" = "$writes" ] || fail "the bulk rerun wrote to the target"

check_no_secrets "$WORK"
exit 0
