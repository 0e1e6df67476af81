#!/bin/bash
# test_nis_locked.sh: lock markers and placeholders never become passwords (issue 12 point 8).
#
# The source holds tests/data/nis_locked.ldif, a NIS / pam_ldap-style branch written for this
# test (the same properties as OpenLDAP's NIS sample: `userPassword: *` for locked system
# accounts, uid 0 among them; "!", "!!", "!!<hash>", "x", "*LK*", "NP", "{CRYPT}*",
# "{CRYPT}!<hash>", an empty value), plus users with real passwords. The source itself
# accepts a bind with "*" for such an account (checked first). Then:
#   - validate reports every such account (locked_password), plan counts them as their own
#     outcome ("locked"), never as cleartext;
#   - run into the Okta-style target creates them without credentials and STAGED: none signs
#     in with "*", "" or its stored value, none is a hook user; the real users sign in;
#   - the Auth0 and SCIM targets count them as "locked" too and create them without a password
#     (Auth0: no custom_password_hash, never left to its lazy migration; SCIM: no password);
#   - LDAP -> LDAP carries the values byte-exact (the target refuses and accepts what the
#     source did);
#   - the hook answers UNVERIFIED for such an account without a bind, even with a password
#     the source's bind would accept.
. "$(dirname "$0")/lib.sh"
command -v curl > /dev/null 2>&1 || skip "missing tool: curl"

SUF=dc=nis,dc=example
MAP=$top_srcdir/schema/maps/inetorgperson-to-okta.json
LOCKED="root sysadm daemon neverset lockedhash shadowed lk np cryptstar cryptbang emptypw"
NLOCKED=$(echo $LOCKED | wc -w)
PW_ALICE="Alice-Nis-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
PW_BOB="Bob-Nis-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
register_secret "$PW_ALICE"
register_secret "$PW_BOB"
write_secret "$SECRETS/token" "okta-nis-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"

# ---- the source: suffix, the fixture, two users with real passwords, the canary ----
printf '%s' "$PW_ALICE" > "$SECRETS/alice.pw"
H_ALICE=$(slappasswd -h '{SSHA}' -T "$SECRETS/alice.pw") || fail "slappasswd"
register_secret "$H_ALICE"
{
    printf '%s\n' "dn: $SUF" "objectClass: dcObject" "objectClass: organization" "dc: nis" \
        "o: nis" "" "dn: ou=people,$SUF" "objectClass: organizationalUnit" "ou: people" "" \
        "dn: ou=groups,$SUF" "objectClass: organizationalUnit" "ou: groups" ""
    grep -v '^#' "$top_srcdir/tests/data/nis_locked.ldif"
    printf '\n'
    printf '%s\n' "dn: uid=alice,ou=people,$SUF" "objectClass: inetOrgPerson" "uid: alice" \
        "cn: Alice" "sn: Nis" "mail: alice@nis.example.org" "userPassword: $H_ALICE"
    printf '\n'
    printf '%s\n' "dn: uid=bob,ou=people,$SUF" "objectClass: inetOrgPerson" "uid: bob" \
        "cn: Bob" "sn: Nis" "mail: bob@nis.example.org" "userPassword: $PW_BOB"
} > "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$SUF"
printf 'mail: canary@nis.example.org\n' >> "$DATA/src.ldif"
start_server SRC "$SUF" "$DATA/src.ldif" stats

# The danger, at the source itself: slapd compares "*" as cleartext.
ldapwhoami -x -H "$SRC_URI" -D "uid=sysadm,ou=people,$SUF" -w '*' > "$WORK/whoami-star.out" 2>&1 ||
    fail "the source refused '*' for sysadm: the fixture does not reproduce the problem"
log "the source itself verifies the password '*' for sysadm"

# ---- validate and plan (Okta-style target) ----
start_okta OKTA
mkconfig "$WORK/okta.json" SRC - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
    "target.type=okta" "target.uri=http://127.0.0.1:$OKTA_PORT" \
    "target.token_file=$SECRETS/token" "map={\"file\": \"$MAP\"}"
dm validate -c "$WORK/okta.json" validate --out "$WORK/validation"
expect_rc 0 validate "validate (locked_password is reported, not blocking)"
for u in $LOCKED; do
    grep -E "uid=$u,ou=people.*locked_password" "$WORK/validation.csv" > /dev/null ||
        fail "validate does not report $u"
done
for u in alice bob canary; do
    ! grep -E "uid=$u,ou=people.*locked_password" "$WORK/validation.csv" > /dev/null ||
        fail "validate reports $u, who has a real password"
done
grep -q "locked_password" "$WORK/validate.out" || fail "the validate summary has no locked_password"

dm plan -c "$WORK/okta.json" --json plan
expect_rc 0 plan "plan"
"$PYTHON3" - "$WORK/plan.out" "$NLOCKED" << 'PYEOF' || fail "plan does not count the locked accounts"
import json, sys
p = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
by = {(c["scheme"], c["outcome"]): c["users"] for c in p["passwords"]}
assert by.get(("LOCKED", "locked")) == int(sys.argv[2]), by
assert by.get(("SSHA", "import")) == 1 and by.get(("CLEARTEXT", "import")) == 2, by
assert not any(o == "hook" for (_, o) in by), by   # a placeholder never goes to the hook
PYEOF
dm plan_txt -c "$WORK/okta.json" plan
grep -E "locked, no password .* $NLOCKED: LOCKED $NLOCKED" "$WORK/plan_txt.out" > /dev/null ||
    fail "the plan text does not show the locked accounts: $(grep -A4 'by scheme' "$WORK/plan_txt.out")"

# ---- run into the Okta-style target ----
dm run -c "$WORK/okta.json" --json run
expect_rc 0 run "run"
expect_json "$WORK/run.out" users.created $((NLOCKED + 3)) created_with_hook 0
curl -s "http://127.0.0.1:$OKTA_PORT/test/dump" > "$WORK/okta.dump"
"$PYTHON3" - "$WORK/okta.dump" "$OKTA_PORT" "$SECRETS/alice.pw" "$PW_BOB" $LOCKED << 'PYEOF' ||
import json, sys, urllib.request
dump, port, alice_pw_file, bob_pw = sys.argv[1:5]
locked = sys.argv[5:]
users = json.load(open(dump))["users"]
stored = {"root": "*", "sysadm": "*", "daemon": "!", "neverset": "!!",
          "lockedhash": "!!$6$Ws8Q0Ecj$nis.fixture.locked.shadow.hash", "shadowed": "x",
          "lk": "*LK*", "np": "NP", "cryptstar": "{CRYPT}*",
          "cryptbang": "{CRYPT}!$1$nisfixt$locked.md5crypt.hash", "emptypw": ""}
def signin(login, pw):
    req = urllib.request.Request("http://127.0.0.1:%s/test/signin" % port, method="POST",
                                 data=json.dumps({"login": login, "password": pw}).encode())
    return json.load(urllib.request.urlopen(req))["result"]
bad = []
for u in locked:
    login = "%s@nis.example.org" % u
    rec = users.get(login)
    if rec is None:
        bad.append("%s: not created" % u)
        continue
    if rec["credential"] != "none" or rec["status"] != "STAGED":
        bad.append("%s: credential %s, status %s" % (u, rec["credential"], rec["status"]))
    for pw in ("*", "", stored[u], "x", "!!"):
        r = signin(login, pw)
        if r == "VERIFIED":
            bad.append("%s signs in with %r" % (u, pw))
alice = open(alice_pw_file).read()
if signin("alice@nis.example.org", alice) != "VERIFIED":
    bad.append("alice does not sign in with her password")
if signin("bob@nis.example.org", bob_pw) != "VERIFIED":
    bad.append("bob does not sign in with his password")
if bad:
    sys.exit("; ".join(bad))
print("%d locked accounts: STAGED, no credential, no sign-in" % len(locked))
PYEOF
    fail "a locked account is usable at the Okta-style target"
log "Okta-style target: $NLOCKED locked accounts created STAGED without a password; real users sign in"
# status counts them by their own sign-in path: none (not an imported hash, not the hook)
dm ostatus -c "$WORK/okta.json" status --json
expect_rc 0 ostatus "status (Okta-style target)"
expect_json "$WORK/ostatus.out" passwords.locked "$NLOCKED" passwords.imported 3 \
    passwords.hook_created 0 passwords.no_password 0

# ---- Auth0 and SCIM targets: the same values, by each connector's own table ----
# plan counts them as "locked" (never the hook or an import); run creates them without a
# password (Auth0: imported without custom_password_hash, so its custom database, and the
# hook, is never asked for them; SCIM: no "password"); none signs in with "*", "" or its
# stored value; the real users do (or are left to the hook).
. "$(dirname "$0")/scim_lib.sh"
A0_CONN=con_Nis0Locked0Test0
write_secret "$SECRETS/auth0.token" "auth0-nis-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
"$PYTHON3" "$top_srcdir/tests/auth0/auth0_server.py" --port 0 --token-file "$SECRETS/auth0.token" \
    --connection-id "$A0_CONN" > "$WORK/a0srv.out" 2> "$WORK/a0srv.err" &
DM_BG_PIDS="$DM_BG_PIDS $!"
A0_PORT=$(_wait_ready "$WORK/a0srv.out")
[ -n "$A0_PORT" ] || fail "auth0_server.py did not start: $(cat "$WORK/a0srv.err")"
mkconfig "$WORK/a0.json" SRC - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
    "target.type=auth0" "target.uri=http://127.0.0.1:$A0_PORT" \
    "target.token_file=$SECRETS/auth0.token" "target.connection_id=$A0_CONN" \
    "target.poll_interval_ms=100" "map={\"file\": \"$top_srcdir/schema/maps/inetorgperson-to-auth0.json\"}"
start_scim SCIM
register_secret "$(cat "$SECRETS/scim.token")"
mkconfig "$WORK/scim.json" SRC - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
    "target.type=scim" "target.uri=http://127.0.0.1:$SCIM_PORT/scim" \
    "target.token_file=$SECRETS/scim.token" \
    "map={\"file\": \"$top_srcdir/schema/maps/inetorgperson-to-scim.json\"}"
for t in a0 scim; do
    dm "${t}plan" -c "$WORK/$t.json" --json plan
    expect_rc 0 "${t}plan" "plan ($t)"
    dm "${t}run" -c "$WORK/$t.json" --json run
    expect_rc 0 "${t}run" "run ($t)"
done
"$PYTHON3" - "$WORK" "$NLOCKED" "$A0_PORT" "$(cat "$SECRETS/auth0.token")" "$SCIM_SERVER_PORT" \
    "$(cat "$SECRETS/scim.token")" "$SECRETS/alice.pw" "$PW_BOB" $LOCKED << 'PYEOF' ||
import json, sys, urllib.request
work, nlocked, a0port, a0tok, scport, sctok, alice_pw_file, bob_pw = sys.argv[1:9]
locked, nlocked = sys.argv[9:], int(nlocked)
alice = open(alice_pw_file).read()
stored = {"root": "*", "sysadm": "*", "daemon": "!", "neverset": "!!",
          "lockedhash": "!!$6$Ws8Q0Ecj$nis.fixture.locked.shadow.hash", "shadowed": "x",
          "lk": "*LK*", "np": "NP", "cryptstar": "{CRYPT}*",
          "cryptbang": "{CRYPT}!$1$nisfixt$locked.md5crypt.hash", "emptypw": ""}
def last(f):
    return json.loads(open("%s/%s.out" % (work, f)).read().strip().splitlines()[-1])
def post(port, tok, body):
    req = urllib.request.Request("http://127.0.0.1:%s/test/signin" % port, method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + tok,
                                          "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
bad = []
for t in ("a0", "scim"):
    p, r = last(t + "plan"), last(t + "run")
    by = {(c["scheme"], c["outcome"]): c["users"] for c in p["passwords"]}
    if by.get(("LOCKED", "locked")) != nlocked or any(s == "LOCKED" and o != "locked" for (s, o) in by):
        bad.append("%s plan: %s" % (t, by))
    if r["users"]["created"] != nlocked + 3 or r["users"]["failed"] != 0:
        bad.append("%s run: %s" % (t, r["users"]))
    # Auth0: nobody is left to the lazy migration; SCIM: only alice ({SSHA}) uses the hook
    want_hook = 0 if t == "a0" else 1
    if r["created_with_hook"] != want_hook or r.get("lazy_migration", 0) != 0:
        bad.append("%s run: created_with_hook %s, lazy_migration %s" % (
            t, r["created_with_hook"], r.get("lazy_migration")))
for u in locked:
    for pw in ("*", "", stored[u], "x", "!!"):
        a = post(a0port, a0tok, {"email": "%s@nis.example.org" % u, "password": pw})
        if not a["user"] or a["has_password"] or a["ok"]:
            bad.append("auth0 %s with %r: %s" % (u, pw, a))
        s = post(scport, sctok, {"userName": u, "password": pw})
        if not s["user"] or s["ok"]:
            bad.append("scim %s with %r: %s" % (u, pw, s))
for who, pw in (("alice", alice), ("bob", bob_pw)):
    if not post(a0port, a0tok, {"email": who + "@nis.example.org", "password": pw})["ok"]:
        bad.append("auth0: %s does not sign in" % who)
if not post(scport, sctok, {"userName": "bob", "password": bob_pw})["ok"]:
    bad.append("scim: bob (cleartext) does not sign in")
if bad:
    sys.exit("; ".join(bad[:12]))
print("Auth0 and SCIM: %d locked accounts counted as locked, created without a password, "
      "no sign-in" % nlocked)
PYEOF
    fail "a locked account is usable at the Auth0 or SCIM target"
log "Auth0 and SCIM targets: $NLOCKED locked accounts created without a password; real users sign in"

# ---- LDAP -> LDAP: carried byte-exact ----
skeleton_ldif "$SUF" "$DATA/dst.ldif"
start_server DST "$SUF" "$DATA/dst.ldif"
mkconfig "$WORK/ldap.json" SRC DST
dm lplan -c "$WORK/ldap.json" --json plan
expect_rc 0 lplan "plan LDAP -> LDAP"
expect_json "$WORK/lplan.out" schemes.LOCKED "$NLOCKED"
dm lrun -c "$WORK/ldap.json" run
expect_rc 0 lrun "run LDAP -> LDAP"
for u in $LOCKED; do
    a=$(slapd_search SRC -b "uid=$u,ou=people,$SUF" -s base userPassword | grep -i '^userPassword')
    b=$(slapd_search DST -b "uid=$u,ou=people,$SUF" -s base userPassword | grep -i '^userPassword')
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "$u: userPassword not carried byte-exact"
done
ldapwhoami -x -H "$DST_URI" -D "uid=sysadm,ou=people,$SUF" -w '*' > /dev/null 2>&1 ||
    fail "the target does not behave as the source did"
dm lstatus -c "$WORK/ldap.json" status --json
expect_rc 0 lstatus "status (LDAP target)"
expect_json "$WORK/lstatus.out" passwords.locked "$NLOCKED" passwords.imported 3
log "LDAP -> LDAP: $NLOCKED lock markers carried byte-exact (status: locked, not imported)"

# ---- the hook: UNVERIFIED without a bind, whatever the source's bind would say ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$SECRETS/hook.key" -out "$DATA/hook.pem" -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" > "$DATA/openssl.log" 2>&1 || fail "openssl failed"
chmod 0600 "$SECRETS/hook.key"
HOOK_SECRET="Bearer nis-$(head -c 27 /dev/urandom | base64 | tr -d '/+=')"
write_secret "$SECRETS/hook.secret" "$HOOK_SECRET"
printf 'Authorization: %s\n' "$HOOK_SECRET" > "$SECRETS/auth.hdr"
HOOK_PORT=$(free_port)
mkconfig "$WORK/hook.json" SRC SRC "hook.listen=127.0.0.1:$HOOK_PORT" \
    "hook.tls.cert_file=$DATA/hook.pem" "hook.tls.key_file=$SECRETS/hook.key" \
    "hook.secret_file=$SECRETS/hook.secret" "hook.pool_size=2"
dm_bg hook -c "$WORK/hook.json" hook
HOOK_PID=$DM_PID
for i in $(seq 1 100); do
    curl -s -o /dev/null --cacert "$DATA/hook.pem" "https://127.0.0.1:$HOOK_PORT/metrics" && break
    sleep 0.1
done
verify() { # LOGIN PASSWORD -> prints the generic endpoint's answer
    "$PYTHON3" -c 'import json,sys; print(json.dumps({"username": sys.argv[1], "password": sys.argv[2]}))' \
        "$1" "$2" > "$DATA/req.json"
    curl -sS --cacert "$DATA/hook.pem" -H "@$SECRETS/auth.hdr" --data-binary "@$DATA/req.json" \
        "https://127.0.0.1:$HOOK_PORT/verify"
}
# The stored value of lockedhash, typed as a password: the source's bind accepts it...
ldapwhoami -x -H "$SRC_URI" -D "uid=lockedhash,ou=people,$SUF" \
    -w '!!$6$Ws8Q0Ecj$nis.fixture.locked.shadow.hash' > /dev/null 2>&1 ||
    fail "the source refused lockedhash's stored value"
l0=$(wc -l < "$TESTDIR/SRC/slapd.log")
for u in $LOCKED; do
    [ "$(verify "$u" '*')" = '{"verified":false}' ] || fail "hook: $u with '*' verified"
done
[ "$(verify lockedhash '!!$6$Ws8Q0Ecj$nis.fixture.locked.shadow.hash')" = '{"verified":false}' ] ||
    fail "hook: lockedhash with its stored value verified"
[ "$(verify cryptbang '{CRYPT}!$1$nisfixt$locked.md5crypt.hash')" = '{"verified":false}' ] ||
    fail "hook: cryptbang with its stored value verified"
[ "$(verify alice "$PW_ALICE")" = '{"verified":true}' ] || fail "hook: alice not verified"
sleep 0.3
tail -n +"$((l0 + 1))" "$TESTDIR/SRC/slapd.log" > "$WORK/hook-ops.log"
for u in $LOCKED; do
    ! grep -qE "BIND dn=\"uid=$u,ou=people,[^\"]*\" method=" "$WORK/hook-ops.log" ||
        fail "the hook bound as $u"
done
grep -qE 'BIND dn="uid=alice,ou=people,[^"]*" method=' "$WORK/hook-ops.log" ||
    fail "the hook did not bind as alice"
curl -s --cacert "$DATA/hook.pem" "https://127.0.0.1:$HOOK_PORT/metrics" > "$WORK/metrics.txt"
grep -q '^dirmig_hook_ineligible_total{reason="no_password"} 2$' "$WORK/metrics.txt" ||
    fail "ineligible no_password count: $(grep 'ineligible_total{reason="no_password"}' "$WORK/metrics.txt")"
kill -TERM "$HOOK_PID"
dm_wait "$HOOK_PID" 20
log "hook: no bind for any locked account ('*' refused as typed; stored values refused as no_password)"

check_no_secrets
