#!/bin/bash
# tests/intg/test_auth0.sh: `dirmig run` from a real slapd into the Auth0 bulk-import contract
# server (tests/auth0/auth0_server.py, written from the Auth0 documentation).
#
# 1. Every scheme: users of every userPassword form (gen_users.py all schemes,
#    tests/okta/extra_creds.py) are imported with a custom_password_hash and sign in at the
#    contract server with their original password, or are left to Auth0's lazy migration
#    (absent, counted in plan and run), or fail in dirmig (malformed hashes); which of the
#    three is decided per scheme by tests/auth0/check_auth0.py on its own.
# 2. A job with a bad record (a given_name Auth0 refuses: MAX_LENGTH) fails that user only,
#    with Auth0's code and path.
# 3. Files within the size limit: a 300-byte max_file_bytes splits the import into several
#    jobs, never more than two at a time.
# 4. A rerun changes nothing; a run killed while its job is pending and run again while it
#    still is: upsert makes the second import update, each user exists once.
# 5. No password, hash or token in any log, output or the journal.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

SERVER=$top_srcdir/tests/auth0/auth0_server.py
CHECK=$top_srcdir/tests/auth0/check_auth0.py
MAP=$top_srcdir/schema/maps/inetorgperson-to-auth0.json
SUF=dc=src,dc=example
CONN=con_Xa12Bc34De56Fg78

write_secret "$SECRETS/auth0.token" "auth0-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"

start_auth0() { # NAME [server args...]
    local name=$1 i port=""
    shift
    "$PYTHON3" "$SERVER" --port 0 --token-file "$SECRETS/auth0.token" --connection-id "$CONN" \
        "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
    DM_BG_PIDS="$DM_BG_PIDS $!"
    for i in $(seq 1 200); do
        port=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$WORK/$name.out")
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || fail "auth0_server.py did not start: $(cat "$WORK/$name.err")"
    printf -v "${name}_PORT" '%s' "$port"
}
a0_get() { # NAME PATH
    local p="${1}_PORT"
    curl -sf -H "Authorization: Bearer $(cat "$SECRETS/auth0.token")" "http://127.0.0.1:${!p}$2"
}
a0_stat() { # NAME KEY
    a0_get "$1" /test/stats | "$PYTHON3" -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
a0_config() { # OUT SRC PORT [overrides...]
    local out=$1 src=$2 port=$3
    shift 3
    mkconfig "$out" "$src" - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
        "target.type=auth0" "target.uri=http://127.0.0.1:$port" \
        "target.token_file=$SECRETS/auth0.token" "target.connection_id=$CONN" \
        "target.poll_interval_ms=100" "map={\"file\": \"$MAP\"}" "$@"
}

# ---- fixtures: every scheme, and a record Auth0 refuses ----
gen_users --suffix "$SUF" --users 21 --groups 3 --schemes all --ldif "$DATA/src.ldif" \
    --passwords "$SECRETS/gen.pw"
"$PYTHON3" "$top_srcdir/tests/okta/extra_creds.py" "$DATA/extra0.ldif" "$SECRETS/extra0.pw" "$SUF" ||
    fail "extra fixtures"
# the cost-21 bcrypt of extra_creds is not the user's password (it only tests Okta's limit)
"$PYTHON3" - "$DATA/extra0.ldif" "$DATA/extra.ldif" "$SECRETS/extra0.pw" "$SECRETS/extra.pw" << 'PYEOF'
import sys
recs = open(sys.argv[1]).read().split("\n\n")
open(sys.argv[2], "w").write("\n\n".join(r for r in recs if "uid=xbcrypt21," not in r) + "\n")
open(sys.argv[4], "w").write("".join(l for l in open(sys.argv[3]) if "uid=xbcrypt21," not in l))
PYEOF
chmod 600 "$SECRETS/extra.pw"
cat "$DATA/extra.ldif" >> "$DATA/src.ldif"
long=$(printf 'Q%.0s' $(seq 1 200))
{
    printf '\ndn: uid=xlongname,ou=people,%s\nobjectClass: inetOrgPerson\nuid: xlongname\n' "$SUF"
    printf 'cn: X longname\nsn: Longname\ngivenName: %s\nmail: xlongname@example.org\n' "$long"
    printf 'userPassword: Pw-longname-cleartext\n'
} >> "$DATA/src.ldif"
printf 'uid=xlongname,ou=people,%s\tPw-longname-cleartext\tERROR\n' "$SUF" > "$SECRETS/long.pw"
add_canary "$DATA/src.ldif" "$SUF" "$SECRETS/gen.pw"
printf 'mail: canary@example.org\n' >> "$DATA/src.ldif"
register_ldif_passwords "$DATA/src.ldif"
cat "$SECRETS/gen.pw" "$SECRETS/extra.pw" "$SECRETS/long.pw" | cut -f2 > "$SECRETS/pwlist"
register_secret_file "$SECRETS/pwlist"
start_server SRC "$SUF" "$DATA/src.ldif"
start_auth0 A0

# ---- 1. and 2. ----
a0_config "$WORK/a0.json" SRC "$A0_PORT"
dm check -c "$WORK/a0.json" check
expect_rc 0 check "check"
grep -q "Auth0 Management API at .*token accepted, connection $CONN exists" "$WORK/check.out" "$WORK/check.err" ||
    fail "check does not describe the Auth0 target: $(cat "$WORK/check.err")"
dm plan -c "$WORK/a0.json" --json plan
expect_rc 0 plan "plan"
"$PYTHON3" - "$WORK/plan.out" << 'PYEOF' > "$WORK/plan.sum" || fail "plan counts are wrong"
import json, sys
p = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
by = {}
for c in p["passwords"]:
    by[c["outcome"]] = by.get(c["outcome"], 0) + c["users"]
assert by.get("hook", 0) == p["lazy_migration"] > 0, (by, p["lazy_migration"])
assert p["users"]["create"] == by["import"] and by["error"] == 2, (p["users"], by)
assert p["groups"]["create"] == 0, p["groups"]
print("plan: %d to import, %d left to the lazy migration, %d malformed" % (
    by["import"], by["hook"], by["error"]))
PYEOF
log "$(cat "$WORK/plan.sum")"
[ "$(a0_stat A0 jobs)" = 0 ] || fail "plan started an import job"

dm run1 -c "$WORK/a0.json" --json run
expect_rc 65 run1 "run with two malformed hashes and a refused record"
"$PYTHON3" - "$WORK/run1.out" "$WORK/plan.out" << 'PYEOF' || fail "run counts are wrong"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
p = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
assert r["users"]["created"] == p["users"]["create"] - 1, (r["users"], p["users"])
assert r["users"]["failed"] == 3, r["users"]
assert r["errors"].get("credential") == 2 and r["errors"].get("schema") == 1, r["errors"]
assert r["lazy_migration"] == p["lazy_migration"], r
PYEOF
grep -q 'user xlongname@example.org failed.*MAX_LENGTH at given_name' "$WORK/a0.log" ||
    fail "the refused record is not reported for that user with Auth0's code and path"
"$PYTHON3" "$CHECK" "$A0_PORT" "$SECRETS/auth0.token" "$WORK/a0.log" "$DATA/src.ldif" \
    "$SECRETS/gen.pw" "$SECRETS/extra.pw" "$SECRETS/long.pw" > "$WORK/signin.out" ||
    fail "sign-in checks failed: $(cat "$WORK/signin.out")"
log "$(cat "$WORK/signin.out")"

# ---- 4a. rerun: nothing changes ----
inserted=$(a0_stat A0 inserted)
updated=$(a0_stat A0 updated)
dm run2 -c "$WORK/a0.json" --json run
expect_rc 65 run2 "rerun (the refused record fails again)"
expect_json "$WORK/run2.out" users.created 0 users.updated 0 users.failed 3
[ "$(a0_stat A0 inserted)" = "$inserted" ] && [ "$(a0_stat A0 updated)" = "$updated" ] ||
    fail "the rerun changed users at the target"

# ---- 3. small files: several jobs, two at a time ----
start_auth0 A1 --job-delay 0.5
a0_config "$WORK/small.json" SRC "$A1_PORT" "target.max_file_bytes=1024" \
    "source.users.filter=(&(objectClass=inetOrgPerson)(uid=user*))"
dm small -c "$WORK/small.json" --json run
expect_rc 0 small "run in small files"
jobs=$(a0_stat A1 jobs)
[ "$jobs" -ge 4 ] || fail "1 KB files gave $jobs jobs"
[ "$(a0_stat A1 max_active)" -le 2 ] || fail "more than two jobs ran at once"
log "small files: $jobs jobs, at most $(a0_stat A1 max_active) at a time, $(a0_stat A1 refused_429) refused with 429"

# ---- 4b. killed while the job is pending; rerun while it still is: upsert ----
start_auth0 A2 --job-delay 4
a0_config "$WORK/kill.json" SRC "$A2_PORT" "source.users.filter=(&(objectClass=inetOrgPerson)(uid=user*))"
dm_bg kill1 -c "$WORK/kill.json" --json run
for i in $(seq 1 100); do
    [ "$(a0_stat A2 jobs)" -ge 1 ] && break
    sleep 0.1
done
kill -9 "$DM_PID"
wait "$DM_PID" 2> /dev/null
dm kill2 -c "$WORK/kill.json" --json run
expect_rc 0 kill2 "run after kill -9 while the job was pending"
sleep 4.5 # the first job finishes now, after the second
a0_get A2 /test/dump | "$PYTHON3" -c '
import collections, json, sys
users = json.load(sys.stdin)
n = collections.Counter(u["email"] for u in users)
assert n and max(n.values()) == 1, [e for e, k in n.items() if k > 1]' ||
    fail "a user exists twice after the rerun"
[ "$(a0_stat A2 updated)" -gt 0 ] || fail "the second import did not upsert"
log "killed during a job: $(a0_stat A2 jobs) jobs, $(a0_stat A2 inserted) inserted, $(a0_stat A2 updated) updated by upsert, none twice"

check_no_secrets "$WORK"
exit 0
