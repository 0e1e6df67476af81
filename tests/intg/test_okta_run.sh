#!/bin/bash
# tests/intg/test_okta_run.sh: `dirmig run` from a real slapd into the Okta contract server
# (tests/okta/okta_server.py) through the okta connector.
#
# 1. Passwords: users of every userPassword scheme (gen_users.py + tests/okta/extra_creds.py)
#    are migrated; each signs in at the contract server with its original password when its
#    hash is importable, needs the hook otherwise (no password included), and the two
#    malformed hashes fail for those users only (reported, never sent). `plan` counts users
#    per scheme and outcome beforehand.
# 2. Bulk under faults: 2,000 users and 50 groups with 10% 5xx, 2% stalls past the client
#    timeout and a per-minute rate limit: every user and membership exists exactly once, the
#    429s received are reported and at most a handful.
# 3. A second run creates nothing; one profile change in the source = exactly one update.
# 4. No password, hash or token in any log, output, config or the journal.

. "$(dirname "$0")/lib.sh"

OKTA_SERVER=$top_srcdir/tests/okta/okta_server.py
OKTA_CHECKS=$top_srcdir/tests/okta/check_server.py
MAP=$top_srcdir/schema/maps/inetorgperson-to-okta.json
SUF=dc=src,dc=example
BULK=dc=bulk,dc=example

write_secret "$SECRETS/token" "okta-run-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"

# okta_config OUT SRC PORT [overrides...]
okta_config() {
    local out=$1 src=$2 port=$3
    shift 3
    mkconfig "$out" "$src" - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
        "target.type=okta" "target.uri=http://127.0.0.1:$port" \
        "target.token_file=$SECRETS/token" "target.network_timeout_ms=2000" \
        "map={\"file\": \"$MAP\"}" "$@"
}

stat_of() { # PORT KEY
    curl -s "http://127.0.0.1:$1/test/stats" | "$PYTHON3" -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# ---- 1. passwords of every scheme ----
gen_users --suffix "$SUF" --users 21 --groups 3 --schemes all --ldif "$DATA/src.ldif" \
    --passwords "$SECRETS/gen.pw"
"$PYTHON3" "$top_srcdir/tests/okta/extra_creds.py" "$DATA/extra.ldif" "$SECRETS/extra.pw" "$SUF" ||
    fail "extra fixtures"
cat "$DATA/extra.ldif" >> "$DATA/src.ldif"
# Two users that break Okta's profile rules: a 4-byte UTF-8 character in the surname and a
# mail that is not an address. validate reports them; run never sends them.
{
    printf '\ndn: uid=xemoji,ou=people,%s\nobjectClass: inetOrgPerson\nuid: xemoji\n' "$SUF"
    printf 'cn: X emoji\nsn:: %s\nmail: xemoji@example.org\n' "$(printf 'Smile\360\237\230\200' | base64)"
    printf '\ndn: uid=xbadmail,ou=people,%s\nobjectClass: inetOrgPerson\nuid: xbadmail\n' "$SUF"
    printf 'cn: X badmail\nsn: Badmail\nmail: not-an-address\n'
} >> "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$SUF" "$SECRETS/gen.pw"
printf 'mail: canary@example.org\n' >> "$DATA/src.ldif"
register_ldif_passwords "$DATA/src.ldif"
cut -f2 "$SECRETS/gen.pw" > "$SECRETS/pwlist"
cut -f2 "$SECRETS/extra.pw" >> "$SECRETS/pwlist"
register_secret_file "$SECRETS/pwlist"
start_server SRC "$SUF" "$DATA/src.ldif"
start_okta OKTA

okta_config "$WORK/creds.json" SRC "$OKTA_PORT"
dm check -c "$WORK/creds.json" check
expect_rc 0 check "check"
grep -q "token accepted" "$WORK/check.out" || fail "check does not describe the Okta target"
! grep -q "(null)" "$WORK/check.out" || fail "check prints (null): $(grep -F '(null)' "$WORK/check.out")"

dm validate -c "$WORK/creds.json" validate --out "$WORK/validation"
expect_rc 65 validate "validate with two profile-rule breakers"
grep -q "uid=xemoji" "$WORK/validation.csv" && grep -q "uid=xbadmail" "$WORK/validation.csv" ||
    fail "validate does not report the two users that break the Okta profile rules"
grep -E "uid=xemoji.*bad_chars|bad_chars.*uid=xemoji" "$WORK/validation.csv" > /dev/null ||
    fail "the 4-byte character is not reported as bad_chars"
grep -E "uid=xbadmail.*invalid_email|invalid_email.*uid=xbadmail" "$WORK/validation.csv" > /dev/null ||
    fail "the bad mail is not reported as invalid_email"

dm plan -c "$WORK/creds.json" --json plan
expect_rc 0 plan "plan"
"$PYTHON3" - "$WORK/plan.out" << 'PYEOF' || fail "plan counts per scheme and outcome are wrong"
import json, sys
p = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
by = {(c["scheme"], c["outcome"]): c["users"] for c in p["passwords"]}
out = {}
for (s, o), n in by.items():
    out[o] = out.get(o, 0) + n
want = {"import": 3 + 3 + 3 + 3 + 1 + 11, "hook": 3 + 3 + 3 + 7 + 2, "error": 2}
# gen_users: 21 users over 7 schemes (3 each): SSHA SSHA512 $2b CLEARTEXT import; $6$
# PBKDF2(1000) ARGON2 hook; canary cleartext import; extra_creds: 11 import, 7 hook, 2 error
assert out == want, (out, want)
assert by[("CLEARTEXT", "import")] == 4 and by[("CRYPT-SHA512", "hook")] >= 3, by
assert by[("NONE", "hook")] == 3, by
assert p["users"]["create"] == 40 and p["users"]["failed"] == 4, p["users"]
PYEOF
[ "$(stat_of "$OKTA_PORT" created)" = 0 ] || fail "plan wrote to the target"

dm run1 -c "$WORK/creds.json" --json run
expect_rc 65 run1 "run with two malformed hashes"
"$PYTHON3" - "$WORK/run1.out" << 'PYEOF' || fail "run counts are wrong"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["users"]["created"] == 40 and r["users"]["failed"] == 4, r["users"]
assert r["errors"].get("credential") == 2 and r["errors"].get("constraint") == 2, r["errors"]
assert r["created_with_hook"] == 16, r["created_with_hook"]
assert r["groups"]["created"] == 3, r["groups"]
PYEOF
for u in xbadb64 xbadbcrypt; do
    grep -q "uid=$u,.*\(malformed\|userPassword\)" "$WORK/creds.log" ||
        fail "the malformed hash of $u is not reported for that user"
done
for u in xemoji xbadmail; do
    curl -s "http://127.0.0.1:$OKTA_PORT/test/dump" | grep -q "\"$u@" &&
        fail "$u breaks the profile rules but was sent"
done
"$PYTHON3" "$OKTA_CHECKS" signin "$OKTA_PORT" "$SECRETS/token" "$SECRETS/gen.pw" \
    "$SECRETS/extra.pw" "$CANARY_DN" > "$WORK/signin.out" || fail "sign-in checks failed"
log "sign-in: $(cat "$WORK/signin.out")"
dm status1 -c "$WORK/creds.json" status
grep -qE "16 users created with the hook" "$WORK/status1.out" "$WORK/status1.err" ||
    fail "status does not show the 16 users created with the hook"

# ---- 2. bulk: 2,000 users, 50 groups, faults and a rate limit ----
gen_users --suffix "$BULK" --users 2000 --groups 50 --big-group 400 --schemes fast \
    --ldif "$DATA/bulk.ldif" --passwords "$SECRETS/bulk.pw"
add_canary "$DATA/bulk.ldif" "$BULK"
printf 'mail: canary@example.org\n' >> "$DATA/bulk.ldif"
register_ldif_passwords "$DATA/bulk.ldif"
cut -f2 "$SECRETS/bulk.pw" > "$SECRETS/bulklist"
register_secret_file "$SECRETS/bulklist"
start_server BSRC "$BULK" "$DATA/bulk.ldif"
start_okta OKTA_B --rate-limit 12000 --fail-5xx 0.10 --stall 0.02 --stall-seconds 4 --seed 11
okta_config "$WORK/bulk.json" BSRC "$OKTA_B_PORT" "target.concurrency=16" \
    "target.timeout_ms=1500" "target.rate_limit_share=90" "target.max_retries=8"
t0=$(date +%s)
dm bulk1 -c "$WORK/bulk.json" --json run
expect_rc 0 bulk1 "bulk run under faults"
t1=$(date +%s)
"$PYTHON3" - "$WORK/bulk1.out" > "$WORK/bulk1.sum" << 'PYEOF' || fail "bulk run counts are wrong"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["users"]["created"] + r["users"]["unchanged"] == 2001 and r["users"]["failed"] == 0, r
assert r["groups"]["failed"] == 0 and r["groups"]["created"] == 50, r["groups"]
t = r["target_requests"]
assert t["server_errors"] > 0 and t["transport_errors"] > 0, t  # the faults did happen
assert t["rate_limited"] <= 5, t  # the governor paces instead of hitting 429s
print("%d requests, %d retried, %d 429s, %d 5xx, %d timeouts/drops" % (
    t["sent"], t["retried"], t["rate_limited"], t["server_errors"], t["transport_errors"]))
PYEOF
log "bulk run in $((t1 - t0)) s: $(cat "$WORK/bulk1.sum")"
"$PYTHON3" "$OKTA_CHECKS" bulk "$OKTA_B_PORT" "$SECRETS/token" "$DATA/bulk.ldif" \
    "ou=people,$BULK" > "$WORK/bulk_check.out" || fail "target differs from the source"
log "target: $(cat "$WORK/bulk_check.out")"

# ---- 3. rerun: nothing; one change: one update ----
created=$(stat_of "$OKTA_B_PORT" created)
dm bulk2 -c "$WORK/bulk.json" --json run
expect_rc 0 bulk2 "second run"
"$PYTHON3" - "$WORK/bulk2.out" << 'PYEOF' || fail "second run changed something"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
for k in ("users", "groups"):
    assert r[k]["created"] == 0 and r[k]["updated"] == 0 and r[k]["failed"] == 0, r
PYEOF
[ "$(stat_of "$OKTA_B_PORT" created)" = "$created" ] || fail "the second run created users"
updates=$(stat_of "$OKTA_B_PORT" updates)
ldapmodify -x -H "$BSRC_URI" -D "cn=admin,$BULK" -y "$BSRC_PW_FILE" > /dev/null << LDIFEOF ||
dn: uid=user00042,ou=people,$BULK
changetype: modify
replace: sn
sn: Renamed-Forty-Two
LDIFEOF
    fail "ldapmodify failed"
dm bulk3 -c "$WORK/bulk.json" --json run
expect_rc 0 bulk3 "run after one change"
"$PYTHON3" - "$WORK/bulk3.out" << 'PYEOF' || fail "the change did not give exactly one update"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["users"]["updated"] == 1 and r["users"]["created"] == 0, r["users"]
assert r["groups"]["updated"] == 0 and r["groups"]["created"] == 0, r["groups"]
PYEOF
[ "$(stat_of "$OKTA_B_PORT" updates)" = $((updates + 1)) ] ||
    fail "the target saw $(($(stat_of "$OKTA_B_PORT" updates) - updates)) updates, want 1"
curl -s "http://127.0.0.1:$OKTA_B_PORT/test/dump" | grep -q '"lastName": "Renamed-Forty-Two"' ||
    fail "the changed surname did not arrive"

# ---- 4. secrets ----
check_no_secrets "$WORK"
exit 0
