#!/bin/bash
# test_plan_okta.sh: collisions and intents against the Okta contract server
# (tests/okta/okta_server.py), from a real slapd.
#
# 1. Two source users that share a mail (the target's login): neither is sent, both are
#    reported by name with the value masked, the run exits 65 and the target holds no user
#    with that login.
# 2. Accounts already at the target with a login a source user maps to, not created by
#    dirmig: skipped and reported by default (untouched, no refused create spent); linked with
#    run.collision "link" only when a correlation rule of the map matches (the other one stays
#    held); created under the suffixed login with run.collision "suffix".
# 3. kill -9 during the creates, then the run again: the contract server counts zero refused
#    creates (E0000001) and every user exists exactly once.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

S=dc=src,dc=example
write_secret "$SECRETS/token" "okta-plan-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf 'Authorization: SSWS %s\n' "$(cat "$SECRETS/token")" > "$SECRETS/auth.hdr"

# The okta starter map, with a fallback correlation rule mail -> email for "link".
"$PYTHON3" - "$top_srcdir/schema/maps/inetorgperson-to-okta.json" "$WORK/okta.map.json" << 'EOF'
import json, os, sys
m = json.load(open(sys.argv[1]))
d = os.path.dirname(os.path.abspath(sys.argv[1]))
m["source_profile"] = os.path.join(d, m["source_profile"])
m["target_profile"] = os.path.join(d, m["target_profile"])
m["key"]["fallback"] = [{"source": "mail", "target": "email"}]
json.dump(m, open(sys.argv[2], "w"), indent=1)
EOF

okta_config() { # OUT SRC PORT [overrides...]
    local out=$1 src=$2 port=$3
    shift 3
    mkconfig "$out" "$src" - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
        "target.type=okta" "target.uri=http://127.0.0.1:$port" \
        "target.token_file=$SECRETS/token" "target.network_timeout_ms=2000" \
        "map={\"file\": \"$WORK/okta.map.json\"}" "$@"
}
stat_of() { # PORT KEY
    curl -s "http://127.0.0.1:$1/test/stats" |
        "$PYTHON3" -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
okta_user() { # PORT LOGIN EMAIL FIRSTNAME: a user made at the target by someone else
    curl -s -o /dev/null -w '%{http_code}' -H @"$SECRETS/auth.hdr" \
        -H 'Content-Type: application/json' -X POST "http://127.0.0.1:$1/api/v1/users?activate=true" \
        --data "{\"profile\": {\"login\": \"$2\", \"email\": \"$3\", \"firstName\": \"$4\",
                 \"lastName\": \"Outsider\"}}" | grep -qx 200 || fail "cannot create $2 at the target"
}
dumped() { # PORT LOGIN KEY: a profile value of the user LOGIN (or "absent")
    curl -s "http://127.0.0.1:$1/test/dump" | "$PYTHON3" -c "
import json, sys
u = json.load(sys.stdin)['users'].get(sys.argv[1])
print('absent' if u is None else u['profile'].get(sys.argv[2]))" "$2" "$3"
}

gen_users --suffix "$S" --users 30 --groups 2 --schemes ssha --ldif "$DATA/src.ldif" \
    --passwords "$SECRETS/src.pw"
{
    printf '\ndn: uid=twin1,ou=people,%s\nobjectClass: inetOrgPerson\nuid: twin1\n' "$S"
    printf 'cn: Twin One\nsn: One\ngivenName: Twin\nmail: twin@example.org\n'
    printf '\ndn: uid=twin2,ou=people,%s\nobjectClass: inetOrgPerson\nuid: twin2\n' "$S"
    printf 'cn: Twin Two\nsn: Two\ngivenName: Twin\nmail: Twin@Example.org\n'
} >> "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$S"
printf 'mail: canary@example.org\n' >> "$DATA/src.ldif"
register_ldif_passwords "$DATA/src.ldif"
start_server SRC "$S" "$DATA/src.ldif"
users=$(slapd_count SRC "ou=people,$S" '(objectClass=inetOrgPerson)')

# ---- 1 and 2: collisions ----
start_okta OKTA
okta_user "$OKTA_PORT" user00001@example.org user00001@example.org Outsider1
okta_user "$OKTA_PORT" user00002@example.org somebody.else@example.org Outsider2
okta_config "$WORK/c.json" SRC "$OKTA_PORT"

dm plan -c "$WORK/c.json" plan --json
expect_rc 0 plan "plan with collisions"
expect_json "$WORK/plan.out" users.held 4 reasons.collision_source 2 reasons.collision_target 2 \
    users.create $((users - 4))
dm run1 -c "$WORK/c.json" run --json
expect_rc 65 run1 "run with collisions"
expect_json "$WORK/run1.out" status done exit_code 65 users.created $((users - 4)) \
    users.held 4 errors.collision_source 2 errors.collision_target 2
[ "$(dumped "$OKTA_PORT" twin@example.org login)" = absent ] || fail "a twin was sent"
[ "$(dumped "$OKTA_PORT" Twin@Example.org login)" = absent ] || fail "a twin was sent"
[ "$(dumped "$OKTA_PORT" user00001@example.org firstName)" = Outsider1 ] ||
    fail "an account not created by dirmig was written (skip)"
[ "$(dumped "$OKTA_PORT" user00002@example.org firstName)" = Outsider2 ] ||
    fail "an account not created by dirmig was written (skip)"
[ "$(stat_of "$OKTA_PORT" duplicates)" = 0 ] || fail "refused creates were sent"
for u in twin1 twin2; do
    grep -qi "held back \[collision_source\]: login \"twin@example.org\" is shared by 2.*source uid=$u," \
        "$WORK/c.log" || fail "$u is not reported as a collision"
done
grep -q 'user00001@example.org held back \[collision_target\]' "$WORK/c.log" ||
    fail "the existing account is not reported"

okta_config "$WORK/link.json" SRC "$OKTA_PORT" run.collision=link state.path="$WORK/c.db"
dm link -c "$WORK/link.json" run --json
expect_rc 65 link "run with collision link"
expect_json "$WORK/link.out" users.updated 1 reasons.linked 1 users.held 3 users.created 0
[ "$(dumped "$OKTA_PORT" user00001@example.org firstName)" != Outsider1 ] ||
    fail "the correlated account was not linked and updated"
[ "$(dumped "$OKTA_PORT" user00002@example.org firstName)" = Outsider2 ] ||
    fail "an account whose correlation does not match was linked"
grep -q 'user00002@example.org held back \[collision_target\].*no correlation rule of the map matches' \
    "$WORK/link.log" || fail "the uncorrelated account is not explained"

okta_config "$WORK/sfx.json" SRC "$OKTA_PORT" run.collision=suffix state.path="$WORK/c.db"
dm sfx -c "$WORK/sfx.json" run --json
expect_rc 65 sfx "run with collision suffix (the twins stay held)"
expect_json "$WORK/sfx.out" users.created 1 reasons.suffixed 1 users.held 2
[ "$(dumped "$OKTA_PORT" user00002_new@example.org login)" = user00002_new@example.org ] ||
    fail "the suffixed account was not created"
[ "$(dumped "$OKTA_PORT" user00002@example.org firstName)" = Outsider2 ] ||
    fail "the other account was touched"
dm sfx2 -c "$WORK/sfx.json" run --json
expect_rc 65 sfx2 "rerun (the twins stay held)"
expect_json "$WORK/sfx2.out" total.created 0 total.updated 0 users.held 2
[ "$(stat_of "$OKTA_PORT" duplicates)" = 0 ] || fail "refused creates were sent"

# ---- 3. kill -9 during the creates, then again ----
gen_users --suffix dc=many,dc=example --users 400 --groups 0 --schemes ssha \
    --ldif "$DATA/many.ldif" --passwords "$SECRETS/many.pw"
register_ldif_passwords "$DATA/many.ldif"
start_server MANY dc=many,dc=example "$DATA/many.ldif"
many=$(slapd_count MANY "ou=people,dc=many,dc=example" '(objectClass=inetOrgPerson)')
start_okta OKTA_K --rate-limit 3000
okta_config "$WORK/k.json" MANY "$OKTA_K_PORT" run.batch_size=40 target.concurrency=8 \
    target.rate_limit_share=80
dm_bg k1 -c "$WORK/k.json" run --json
for i in $(seq 1 300); do
    [ "$(stat_of "$OKTA_K_PORT" created)" -ge 130 ] && break
    kill -0 "$DM_PID" 2> /dev/null || fail "the run ended before it could be killed"
    sleep 0.1
done
kill -9 "$DM_PID"
wait "$DM_PID" 2> /dev/null
before=$(stat_of "$OKTA_K_PORT" created)
[ "$before" -lt "$many" ] || fail "the run finished before the kill ($before users)"
log "killed with $before of $many users created"
dm k2 -c "$WORK/k.json" run --json
expect_rc 0 k2 "run after kill -9"
[ "$(stat_of "$OKTA_K_PORT" duplicates)" = 0 ] ||
    fail "the resumed run sent $(stat_of "$OKTA_K_PORT" duplicates) refused creates"
[ "$(stat_of "$OKTA_K_PORT" users)" = "$many" ] ||
    fail "the target holds $(stat_of "$OKTA_K_PORT" users) users, want $many"
[ "$(stat_of "$OKTA_K_PORT" created)" = "$many" ] || fail "a user was created twice"
expect_json "$WORK/k2.out" users.created $((many - before)) users.failed 0 users.held 0
dm k3 -c "$WORK/k.json" run --json
expect_rc 0 k3 "third run"
expect_json "$WORK/k3.out" total.created 0 total.updated 0 users.unchanged "$many"

check_no_secrets
exit 0
