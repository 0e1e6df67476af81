#!/bin/bash
# test_check.sh: `dirmig check` tells the truth against real slapd servers: the TLS in use
# (StartTLS), the identity the session is bound as, each base (a missing one is named and
# exits 66), the containers the run writes into (missing: "will be created", or exit 66
# with target.create_containers false), a wave's OU; it goes on after a problem and names
# every one; --json carries status and exit_code; --offline contacts no server.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

gen_users --suffix dc=src,dc=example --users 10 --groups 2 --big-group 5 --schemes fast \
    --ldif "$DATA/src.ldif"
add_canary "$DATA/src.ldif" dc=src,dc=example
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
# a target holding only its suffix entry: the containers are missing
printf '%s\n' "dn: dc=bare,dc=example" "objectClass: dcObject" "objectClass: organization" \
    "dc: bare" "o: bare" > "$DATA/bare.ldif"
start_server SRC dc=src,dc=example "$DATA/src.ldif" tls
start_server DST dc=dst,dc=example "$DATA/dst.ldif"
start_server BARE dc=bare,dc=example "$DATA/bare.ldif"
ca="{\"ca_file\": \"$SRC_CA_FILE\"}"

# problems TAG: the PROBLEM lines of a check's report
problems() {
    grep '^  PROBLEM: ' "$WORK/$1.out" | sed 's/^  PROBLEM: //'
}

# ---- 1. a good config: StartTLS in use, the bound identity, bases and containers ----
mkconfig "$WORK/good.json" SRC DST source.starttls=true "source.tls=$ca"
dm good -c "$WORK/good.json" check
expect_rc 0 good "check over StartTLS"
for want in "source: $SRC_URI (ldap)" "  connect and bind: ok" \
    "  TLS: in use (StartTLS, TLS" "certificate verified" \
    "  bound as: dn:cn=admin,dc=src,dc=example" "  base dc=src,dc=example: exists" \
    "  users base ou=people,dc=src,dc=example: exists" \
    "  groups base ou=groups,dc=src,dc=example: exists" \
    "target: $DST_URI (ldap)" "  TLS: NOT in use (the server offers StartTLS: " \
    "  bound as: dn:cn=admin,dc=dst,dc=example" "  base dc=dst,dc=example: exists" \
    "  container ou=people,dc=dst,dc=example: exists" \
    "  container ou=groups,dc=dst,dc=example: exists" "state journal " "check: ok"; do
    grep -qF -- "$want" "$WORK/good.out" || fail "good: no '$want' in: $(cat "$WORK/good.out")"
done
! grep -q "(null)" "$WORK/good.out" || fail "check prints (null)"
! grep -q "^  StartTLS: no" "$WORK/good.out" || fail "check says StartTLS: no while using it"
dm goodjson -c "$WORK/good.json" check --json
expect_rc 0 goodjson "check --json"
expect_json "$WORK/goodjson.out" command check status ok exit_code 0 offline false problems '[]'
log "ok: StartTLS in use, bound identity, bases and containers shown"

# ---- 2. missing bases: 66, every one named, the rest still checked ----
mkconfig "$WORK/nobase.json" SRC DST source.users.base=ou=nobody,dc=src,dc=example \
    'waves=[{"name": "east", "ou": "ou=east,dc=src,dc=example"}]' target.base=dc=nothere,dc=example
dm nobase -c "$WORK/nobase.json" check
expect_rc 66 nobase "check with missing bases"
problems nobase > "$WORK/nobase.problems"
for want in "source users base ou=nobody,dc=src,dc=example does not exist (the server has dc=src,dc=example)" \
    "source wave \"east\" ou ou=east,dc=src,dc=example does not exist (the server has dc=src,dc=example)" \
    "target base dc=nothere,dc=example does not exist"; do
    grep -qF -- "$want" "$WORK/nobase.problems" || fail "nobase: '$want' not in: $(cat "$WORK/nobase.problems")"
done
grep -qF "  groups base ou=groups,dc=src,dc=example: exists" "$WORK/nobase.out" ||
    fail "nobase: the check stopped at the first problem"
grep -qF "check: 3 problems (exit 66)" "$WORK/nobase.out" || fail "nobase: no summary"
dm nobasejson -c "$WORK/nobase.json" --json check
expect_rc 66 nobasejson "check --json with missing bases"
expect_json "$WORK/nobasejson.out" status failed exit_code 66 problems.0.exit_code 66
log "ok: missing bases -> 66, each named"

# ---- 3. containers at a bare target: created by the run, or 66 ----
mkconfig "$WORK/bare.json" SRC BARE
dm bare -c "$WORK/bare.json" check
expect_rc 0 bare "check against a target without containers"
grep -qF "  container ou=people,dc=bare,dc=example: missing, will be created by the run" \
    "$WORK/bare.out" || fail "bare: $(cat "$WORK/bare.out")"
grep -qF "  container ou=groups,dc=bare,dc=example: missing, will be created by the run" \
    "$WORK/bare.out" || fail "bare: no groups container line"
mkconfig "$WORK/bare-no.json" SRC BARE target.create_containers=false
dm bareno -c "$WORK/bare-no.json" check
expect_rc 66 bareno "check with create_containers false and no containers"
problems bareno | grep -qF "target container ou=people,dc=bare,dc=example does not exist and target.create_containers is false" ||
    fail "bareno: $(cat "$WORK/bareno.out")"
# a users base two levels down: both levels, parents first
printf '%s\n' "dn: ou=staff,ou=people,dc=src,dc=example" "objectClass: organizationalUnit" \
    "ou: staff" > "$DATA/staff.ldif"
ldapadd -x -H "$SRC_URI" -D "$SRC_ROOTDN" -y "$SRC_PW_FILE" -f "$DATA/staff.ldif" > /dev/null ||
    fail "cannot add ou=staff"
mkconfig "$WORK/deep.json" SRC BARE source.users.base=ou=staff,ou=people,dc=src,dc=example \
    target.create_containers=false
dm deep -c "$WORK/deep.json" check
expect_rc 66 deep "check with a two-level container missing"
problems deep | head -n 1 | grep -qF "target container ou=people,dc=bare,dc=example does not exist" ||
    fail "deep: the parent is not named first: $(problems deep)"
problems deep | grep -qF "target container ou=staff,ou=people,dc=bare,dc=example does not exist" ||
    fail "deep: the child is not named: $(problems deep)"
log "ok: containers: will be created, or 66 naming each level"

# ---- 4. an unreachable source: 69, and the target is still checked ----
closed=$(free_port)
mkconfig "$WORK/unreach.json" SRC DST "source.uri=ldap://127.0.0.1:$closed" source.network_timeout_ms=2000
dm unreach -c "$WORK/unreach.json" check
expect_rc 69 unreach "check with the source down"
grep -qF "  base dc=dst,dc=example: exists" "$WORK/unreach.out" ||
    fail "unreach: the target was not checked: $(cat "$WORK/unreach.out")"

# ---- 5. --offline contacts nothing: two listeners count connections ----
"$PYTHON3" - "$WORK/listen" << 'PYEOF' &
import os, socket, sys, threading, time
out = sys.argv[1]
socks, counts = [], [0, 0]
for i in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); socks.append(s)
def serve(i):
    while True:
        c, _ = socks[i].accept(); counts[i] += 1; c.close()
        open(out + ".count", "w").write("%d %d\n" % tuple(counts))
for i in range(2):
    threading.Thread(target=serve, args=(i,), daemon=True).start()
open(out + ".ports.tmp", "w").write("%d %d\n" % (socks[0].getsockname()[1], socks[1].getsockname()[1]))
os.rename(out + ".ports.tmp", out + ".ports")
time.sleep(300)
PYEOF
DM_BG_PIDS="$DM_BG_PIDS $!"
for i in $(seq 1 100); do [ -s "$WORK/listen.ports" ] && break; sleep 0.05; done
read -r lport hport < "$WORK/listen.ports" || fail "the listeners did not start"
write_secret "$SECRETS/token" "tok-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
mkconfig "$WORK/offline.json" SRC - "source.uri=ldap://127.0.0.1:$lport" target.base=- \
    target.bind_dn=- target.bind_pw_file=- target.type=okta "target.uri=http://127.0.0.1:$hport" \
    "target.token_file=$SECRETS/token"
dm offline -c "$WORK/offline.json" check --offline
expect_rc 0 offline "check --offline"
grep -qF "(offline: no server contacted, no secret read)" "$WORK/offline.out" ||
    fail "offline: $(cat "$WORK/offline.out")"
sleep 0.3
[ ! -e "$WORK/listen.count" ] || fail "check --offline connected: $(cat "$WORK/listen.count")"
dm offjson -c "$WORK/offline.json" check --offline --json
expect_rc 0 offjson "check --offline --json"
expect_json "$WORK/offjson.out" status ok exit_code 0 offline true
[ ! -e "$WORK/listen.count" ] || fail "check --offline --json connected"
# the positive control: without --offline both listeners are contacted
dm online -c "$WORK/offline.json" check
[ "$DM_RC" != 0 ] || fail "check against the listeners passed"
for i in $(seq 1 50); do
    read -r a b < "$WORK/listen.count" 2> /dev/null && [ "$a" -ge 1 ] && [ "$b" -ge 1 ] && break
    sleep 0.1
done
read -r a b < "$WORK/listen.count" || fail "the listeners saw nothing"
[ "$a" -ge 1 ] && [ "$b" -ge 1 ] || fail "without --offline: ldap $a, http $b connections"
log "ok: --offline made no connection (check without it made $a + $b)"

check_no_secrets
exit 0
