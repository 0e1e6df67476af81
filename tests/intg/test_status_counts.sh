#!/bin/bash
# tests/intg/test_status_counts.sh: `dirmig status` counts what the target holds.
#
# Okta contract server (tests/okta/okta_server.py) with faults: 5xx answers, stalls past the
# client timeout, dropped connections and answers lost after the work was done (so creates
# are retried and adopted). After every run, `dirmig status --json` must equal the server's
# /test/dump: users dirmig manages at the target (total, active, deactivated), users created
# with an imported credential and with the password-import hook, groups; deleted users.
#   1. a run stopped with SIGTERM half-way (exit 130), then resumed
#   2. a run killed with SIGKILL between an intent and its answer, then resumed
#   3. users disabled in the source, leavers disabled, then deleted
#   4. an account linked by run.collision "link" and one the target holds alone
#   5. LDAP -> LDAP: users and groups of status equal the entries of the target
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

S=dc=src,dc=example
MAP=$top_srcdir/schema/maps/inetorgperson-to-okta.json
write_secret "$SECRETS/token" "okta-status-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf 'Authorization: SSWS %s\n' "$(cat "$SECRETS/token")" > "$SECRETS/auth.hdr"

# The okta starter map, with a fallback correlation rule mail -> email for "link".
"$PYTHON3" - "$MAP" "$WORK/okta.map.json" << 'EOF'
import json, os, sys
m = json.load(open(sys.argv[1]))
d = os.path.dirname(os.path.abspath(sys.argv[1]))
m["source_profile"] = os.path.join(d, m["source_profile"])
m["target_profile"] = os.path.join(d, m["target_profile"])
m["key"]["fallback"] = [{"source": "mail", "target": "email"}]
json.dump(m, open(sys.argv[2], "w"), indent=1)
EOF

okta_config() { # OUT PORT [overrides...]
    local out=$1 port=$2
    shift 2
    mkconfig "$out" SRC - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
        "target.type=okta" "target.uri=http://127.0.0.1:$port" \
        "target.token_file=$SECRETS/token" "target.network_timeout_ms=2000" \
        "target.timeout_ms=1500" "target.max_retries=10" "target.concurrency=8" \
        "map={\"file\": \"$WORK/okta.map.json\"}" "run.batch_size=50" "run.collision=link" \
        "source.users.disabled.attribute=employeeType" \
        'source.users.disabled.values=["left"]' "leavers.max_delete_percent=20" "$@"
}
okta_user() { # PORT LOGIN EMAIL FIRSTNAME: a user made at the target by someone else
    curl -s -o /dev/null -w '%{http_code}' -H @"$SECRETS/auth.hdr" \
        -H 'Content-Type: application/json' -X POST "http://127.0.0.1:$1/api/v1/users?activate=true" \
        --data "{\"profile\": {\"login\": \"$2\", \"email\": \"$3\", \"firstName\": \"$4\",
                 \"lastName\": \"Outsider\"}}" | grep -qx 200 || fail "cannot create $2 at the target"
}
dump_users() { # PORT: number of users at the target
    curl -s "http://127.0.0.1:$1/test/dump" | "$PYTHON3" -c "import json,sys; print(json.load(sys.stdin)['user_count'])"
}

# compare TAG PORT CFG DELETED: status --json after run TAG against the target's dump. The
# accounts the target holds alone (outsider*) are not dirmig's; DELETED users were deleted
# by dirmig (leavers).
compare() {
    local tag=$1 port=$2 cfg=$3 deleted=$4
    dm "$tag-status" -c "$cfg" status --json
    expect_rc 0 "$tag-status" "status after $tag"
    curl -s "http://127.0.0.1:$port/test/dump" > "$WORK/$tag-dump.json" || fail "dump"
    "$PYTHON3" - "$WORK/$tag-status.out" "$WORK/$tag-dump.json" "$deleted" << 'PYEOF' ||
import json, sys
st = json.load(open(sys.argv[1]))
dump = json.load(open(sys.argv[2]))
deleted = int(sys.argv[3])
# linked1 was at the target before; it is dirmig's once linked (its lastName then comes
# from the source)
users = {k: v for k, v in dump["users"].items() if not k.startswith("outsider") and
         (k != "linked1@example.org" or v["profile"]["lastName"] == "One")}
groups = dump["groups"]
off = ("DEPROVISIONED", "SUSPENDED")
want = {
    "users.at_target": len(users),
    "users.active": sum(1 for u in users.values() if u["status"] not in off),
    "users.disabled": sum(1 for u in users.values() if u["status"] in off),
    "users.deleted": deleted,
    "users.unconfirmed": 0,
    "passwords.imported": sum(1 for u in users.values() if u["credential"] in ("hash", "value")),
    "passwords.hook_created": sum(1 for u in users.values() if u["credential"] == "hook"),
    "groups.at_target": len(groups),
}
got = {}
for k in want:
    a, b = k.split(".")
    got[k] = st[a].get(b)
bad = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
print(json.dumps({k: got[k] for k in sorted(got)}))
if bad:
    sys.stderr.write("status (got, target): %s\n" % bad)
    sys.exit(1)
PYEOF
        fail "status after $tag differs from the target"
}

# ---- fixtures ----
gen_users --suffix "$S" --users 1200 --groups 12 --big-group 300 --schemes fast --seed 5 \
    --ldif "$DATA/src.ldif" --passwords "$SECRETS/src.pw"
{
    # disabled in the source: arrives deactivated
    for i in 1 2 3; do
        printf '\ndn: uid=gone%d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: gone%d\n' "$i" "$S" "$i"
        printf 'cn: Gone %d\nsn: Gone\ngivenName: G\nmail: gone%d@example.org\nemployeeType: left\n' "$i" "$i"
    done
    # linked: the target holds an account with this login and mail already
    printf '\ndn: uid=linked1,ou=people,%s\nobjectClass: inetOrgPerson\nuid: linked1\n' "$S"
    printf 'cn: Linked One\nsn: One\ngivenName: Linked\nmail: linked1@example.org\n'
} >> "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$S"
printf 'mail: canary@example.org\n' >> "$DATA/src.ldif"
register_ldif_passwords "$DATA/src.ldif"
cut -f2 "$SECRETS/src.pw" > "$SECRETS/pwlist"
register_secret_file "$SECRETS/pwlist"
start_server SRC "$S" "$DATA/src.ldif"
users=$(slapd_count SRC "ou=people,$S" '(objectClass=inetOrgPerson)')

start_okta OKTA --fail-5xx 0.04 --stall 0.01 --stall-seconds 2 --drop 0.02 --lose 0.06 --seed 13
okta_user "$OKTA_PORT" linked1@example.org linked1@example.org Linked
okta_user "$OKTA_PORT" outsider1@example.org outsider1@example.org Outsider
okta_config "$WORK/o.json" "$OKTA_PORT"

# ---- 1. SIGTERM half-way, then resumed ----
dm_bg run1 -c "$WORK/o.json" run --json
pid=$DM_PID
for i in $(seq 1 600); do
    [ "$(dump_users "$OKTA_PORT")" -ge $((users / 3)) ] && break
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
done
kill -TERM "$pid" 2> /dev/null || fail "the run ended before it could be stopped"
dm_wait "$pid" 120
expect_rc 130 run1 "run stopped with SIGTERM"
compare run1 "$OKTA_PORT" "$WORK/o.json" 0
dm run2 -c "$WORK/o.json" run --json
expect_rc 0 run2 "resumed run"
compare run2 "$OKTA_PORT" "$WORK/o.json" 0

# ---- 2. SIGKILL between intents and answers, then resumed ----
# 300 new users: half with a cleartext password (imported), half without one (the hook).
"$PYTHON3" - "$DATA/new.ldif" "$SECRETS/new.pw" "$S" << 'PYEOF' || fail "new users"
import random, string, sys
rng = random.Random(17)
with open(sys.argv[1], "w") as f, open(sys.argv[2], "w") as pw:
    for i in range(300):
        uid = "new%05d" % i
        f.write("dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\n" % (uid, sys.argv[3], uid))
        f.write("cn: New %d\nsn: New\ngivenName: N\nmail: %s@example.org\n" % (i, uid))
        if i % 2 == 0:
            p = "".join(rng.choice(string.ascii_letters) for _ in range(16))
            f.write("userPassword: %s\n" % p)
            pw.write(p + "\n")
        f.write("\n")
PYEOF
register_secret_file "$SECRETS/new.pw"
ldapadd -x -H "$SRC_URI" -D "cn=admin,$S" -y "$SRC_PW_FILE" -f "$DATA/new.ldif" > /dev/null ||
    fail "ldapadd of the new users"
before=$(dump_users "$OKTA_PORT")
dm_bg run3 -c "$WORK/o.json" run --json
pid=$DM_PID
for i in $(seq 1 600); do
    [ "$(dump_users "$OKTA_PORT")" -ge $((before + 120)) ] && break
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05
done
kill -9 "$pid" 2> /dev/null || fail "the run ended before it could be killed"
wait "$pid" 2> /dev/null
dm run3-status -c "$WORK/o.json" status --json
curl -s "http://127.0.0.1:$OKTA_PORT/test/dump" > "$WORK/run3-dump.json"
"$PYTHON3" - "$WORK/run3-status.out" "$WORK/run3-dump.json" << 'PYEOF' || fail "status after a kill"
import json, sys
st = json.load(open(sys.argv[1]))
n = json.load(open(sys.argv[2]))["user_count"] - 1  # outsider1
u = st["users"]
# what the journal knows is there, and the creates whose answer it never got
assert u["at_target"] <= n <= u["at_target"] + u["unconfirmed"], (u, n)
print("killed: %d at the target, journal %d + %d unconfirmed" % (n, u["at_target"], u["unconfirmed"]))
PYEOF
log "after kill -9: $(grep -o '"unconfirmed":[0-9]*' "$WORK/run3-status.out" | head -n 1)"
dm run4 -c "$WORK/o.json" run --json
expect_rc 0 run4 "run after the kill"
compare run4 "$OKTA_PORT" "$WORK/o.json" 0

# ---- 3. leavers: disabled, then deleted ----
for i in $(seq 100 139); do
    printf 'uid=user%05d,ou=people,%s\n' "$i" "$S"
done > "$DATA/leavers.txt"
ldapdelete -x -H "$SRC_URI" -D "cn=admin,$S" -y "$SRC_PW_FILE" -f "$DATA/leavers.txt" ||
    fail "ldapdelete of the leavers"
dm run5 -c "$WORK/o.json" run --json
expect_rc 0 run5 "run with 40 leavers"
expect_json "$WORK/run5.out" leavers.disabled 40
compare run5 "$OKTA_PORT" "$WORK/o.json" 0
okta_config "$WORK/o.json" "$OKTA_PORT" leavers.action=delete
dm run6 -c "$WORK/o.json" run --json
expect_rc 0 run6 "run deleting the 40 leavers"
expect_json "$WORK/run6.out" leavers.deleted 40
compare run6 "$OKTA_PORT" "$WORK/o.json" 40
log "faults: $(curl -s "http://127.0.0.1:$OKTA_PORT/test/stats")"

# ---- 5. LDAP -> LDAP: users and groups of status are the entries of the target ----
T=dc=dst,dc=example
gen_users --suffix "$S" --users 300 --groups 10 --big-group 100 --schemes ssha --seed 9 \
    --ldif "$DATA/l.ldif" --passwords "$SECRETS/l.pw"
register_ldif_passwords "$DATA/l.ldif"
skeleton_ldif "$T" "$DATA/dst.ldif"
start_server LSRC "$S" "$DATA/l.ldif"
start_server LDST "$T" "$DATA/dst.ldif"
ldap_compare() { # TAG DELETED
    local tag=$1 nu ng
    dm "$tag-status" -c "$WORK/l.json" status --json
    expect_rc 0 "$tag-status" "status after $tag"
    nu=$(slapd_count LDST "ou=people,$T" '(objectClass=inetOrgPerson)')
    ng=$(slapd_count LDST "ou=groups,$T" '(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))')
    expect_json "$WORK/$tag-status.out" users.at_target "$nu" users.active "$nu" \
        users.deleted "$2" users.unconfirmed 0 groups.at_target "$ng" \
        passwords.imported "$nu" passwords.hook_created 0
    log "$tag: status and the LDAP target agree: $nu users, $ng groups, $2 deleted"
}
mkconfig "$WORK/l.json" LSRC LDST leavers.action=delete leavers.max_delete_percent=10
dm l1 -c "$WORK/l.json" run --json
expect_rc 0 l1 "LDAP run"
ldap_compare l1 0
printf 'uid=user%05d,ou=people,%s\n' 7 "$S" 8 "$S" 9 "$S" > "$DATA/l-leavers.txt"
ldapdelete -x -H "$LSRC_URI" -D "cn=admin,$S" -y "$LSRC_PW_FILE" -f "$DATA/l-leavers.txt" ||
    fail "ldapdelete in the LDAP source"
dm l2 -c "$WORK/l.json" run --json
expect_rc 0 l2 "LDAP run with 3 leavers"
expect_json "$WORK/l2.out" leavers.deleted 3
ldap_compare l2 3

check_no_secrets
exit 0
