#!/bin/bash
# test_hook.sh: the password-import hook server (`dirmig hook`) against a real slapd:
# answers, caller authentication with zero LDAP traffic on 401, hostile usernames, body
# limits, a slow client, the failure budget, eventId de-duplication, /metrics, the state
# journal and `dirmig status` / `dirmig report`, and no password anywhere in dirmig output.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/intg/lib.sh"
. "$top_srcdir/tests/intg/test_hook_lib.sh"

# Config checks first: plain HTTP is refused off loopback.
hook_config "$WORK/bad.json" "hook.listen=0.0.0.0:$HOOK_PORT" "hook.plain_http=true"
dm badcfg -c "$WORK/bad.json" check
expect_rc 78 badcfg "plain_http on 0.0.0.0"
grep -q 'plain_http' "$WORK/badcfg.err" || fail "plain_http error not explained"

# The server refuses to start without a secret or without TLS material.
hook_config "$WORK/nosecret.json" "hook.secret_file=-"
dm nosecret -c "$WORK/nosecret.json" hook
expect_rc 78 nosecret "hook without a secret"
grep -q 'secret_file or hook.secret_env is required' "$WORK/nosecret.err" || fail "no-secret message"
hook_config "$WORK/nocert.json" "hook.tls=-"
dm nocert -c "$WORK/nocert.json" hook
expect_rc 78 nocert "hook without a certificate"
chmod 0644 "$SECRETS/hook.key"
hook_config "$WORK/openkey.json"
dm openkey -c "$WORK/openkey.json" hook
expect_rc 78 openkey "hook with a world-readable key"
grep -q 'chmod 600' "$WORK/openkey.err" || fail "world-readable key not explained"
chmod 0600 "$SECRETS/hook.key"

# The failure window must outlast 7 requests; under valgrind a request takes seconds.
WINDOW=8 # long enough for 7 requests and the checks on a loaded machine
[ -z "$VALGRIND" ] || WINDOW=40
hook_config "$WORK/hook.json" "hook.failure_window_s=$WINDOW" "hook.request_timeout_s=2" \
    "hook.request_read_ms=2000" "hook.threads=16" 'hook.login_attributes=["uid","mail"]'
hook_start "$WORK/hook.json"

# ---- answers ----
expect_okta VERIFIED "right password" '"alice"' "$(jstr "$PW_ALICE")"
expect_okta UNVERIFIED "wrong password" '"bob"' "$(jstr "$PW_WRONG")"
expect_okta UNVERIFIED "unknown user" '"nobody"' "$(jstr "$PW_ALICE")"
expect_okta UNVERIFIED "another user's password" '"bob"' "$(jstr "$PW_ALICE")"
expect_okta VERIFIED "case-insensitive uid" '"BOB"' "$(jstr "$PW_BOB")"
expect_okta VERIFIED "login by mail" '"alice@example.org"' "$(jstr "$PW_ALICE")"
expect_okta UNVERIFIED "mail of two users (ambiguous)" '"shared@example.org"' "$(jstr "$PW_BOB")"
printf '{"username":"alice","password":"%s"}' "$PW_ALICE" > "$DATA/gen.json"
post "$DATA/gen.json" /verify
[ "$CODE" = 200 ] && [ "$RESP" = '{"verified":true}' ] || fail "generic right: $CODE $RESP"
printf '{"username":"alice","password":"%s"}' "$PW_WRONG" > "$DATA/gen.json"
post "$DATA/gen.json" /verify
[ "$CODE" = 200 ] && [ "$RESP" = '{"verified":false}' ] || fail "generic wrong: $CODE $RESP"
log "right/wrong/unknown passwords answered correctly (Okta and generic)"

# ---- caller authentication: 401 and no LDAP operation at all ----
sleep 0.3
before=$(ldap_ops)
okta_body "$DATA/req.json" '"alice"' "$(jstr "$PW_ALICE")"
printf 'X-Other: 1\n' > "$SECRETS/noauth.hdr"
for hdr in noauth badauth; do
    for i in 1 2 3; do
        post "$DATA/req.json" "$OKTA_PATH" "$SECRETS/$hdr.hdr"
        [ "$CODE" = 401 ] || fail "$hdr secret: HTTP $CODE, want 401"
        post "$DATA/gen.json" /verify "$SECRETS/$hdr.hdr"
        [ "$CODE" = 401 ] || fail "$hdr secret (generic): HTTP $CODE, want 401"
    done
done
printf 'Authorization: %s\n' "${HOOK_SECRET}x" > "$SECRETS/longauth.hdr"
post "$DATA/req.json" "$OKTA_PATH" "$SECRETS/longauth.hdr"
[ "$CODE" = 401 ] || fail "secret with a suffix: HTTP $CODE, want 401"
sleep 0.5
after=$(ldap_ops)
[ "$before" = "$after" ] || fail "401 requests caused LDAP traffic ($before -> $after operations)"
[ "$(metric 'dirmig_hook_requests_total{outcome="unauthorized"}')" = 13 ] ||
    fail "unauthorized count in /metrics"
log "missing/wrong secret: 401 x13, LDAP operations unchanged ($after)"

# ---- hostile usernames and values never verify ----
binds_before=$(grep -cF ' BIND dn=' "$TESTDIR/SRC/slapd.log")
expect_okta UNVERIFIED "username *" '"*"' "$(jstr "$PW_ALICE")"
expect_okta UNVERIFIED "filter injection" '"admin)(uid=*"' "$(jstr "$PW_ADMIN")"
expect_okta UNVERIFIED "filter injection 2" '"*)(uid=admin"' "$(jstr "$PW_ADMIN")"
expect_okta UNVERIFIED "NUL in username" '"admin\u0000b"' "$(jstr "$PW_ADMIN")"
expect_okta UNVERIFIED "a\\00b literally" '"a\\00b"' "$(jstr "$PW_ALICE")"
expect_okta UNVERIFIED "NUL in password" '"alice"' "\"${PW_ALICE}\\u0000x\""
expect_okta UNVERIFIED "empty password" '"alice"' '""'
expect_okta UNVERIFIED "empty username" '""' "$(jstr "$PW_ALICE")"
okta '"alice\udc00"' "$(jstr "$PW_ALICE")" # not Unicode: a malformed escape (400)
[ "$CODE" = 400 ] || fail "lone surrogate escape: HTTP $CODE $RESP, want 400"
long=$(head -c 10240 /dev/zero | tr '\0' 'a')
expect_okta UNVERIFIED "10 kB username" "\"$long\"" "$(jstr "$PW_ALICE")"
okta '42' "$(jstr "$PW_ALICE")"
[ "$CODE" = 400 ] || fail "username not a string: HTTP $CODE, want 400"
# Invalid UTF-8 bytes in the body: an answer (UNVERIFIED), not an error.
okta_body "$DATA/req.json" '"alice"' "$(printf '"%s\xff\xfe"' "$PW_ALICE")"
post "$DATA/req.json"
case "$CODE $RESP" in
'200 '*'"UNVERIFIED"'*) ;;
*) fail "invalid UTF-8: HTTP $CODE $RESP" ;;
esac
binds_after=$(grep -cF ' BIND dn=' "$TESTDIR/SRC/slapd.log")
[ "$binds_before" = "$binds_after" ] ||
    fail "hostile values caused binds ($binds_before -> $binds_after)"
log "hostile usernames/passwords: UNVERIFIED, no bind"

# ---- malformed requests ----
printf '{"data": {"context": ' > "$DATA/bad.json"
post "$DATA/bad.json"
[ "$CODE" = 400 ] || fail "malformed JSON: HTTP $CODE, want 400"
printf '{"data":{}}' > "$DATA/bad.json"
post "$DATA/bad.json"
[ "$CODE" = 400 ] || fail "no credential: HTTP $CODE, want 400"
printf '[1,2]' > "$DATA/bad.json"
post "$DATA/bad.json" /verify
[ "$CODE" = 400 ] || fail "array body: HTTP $CODE, want 400"
head -c 20000 /dev/zero | tr '\0' ' ' > "$DATA/big.json"
post "$DATA/big.json"
[ "$CODE" = 413 ] || fail "20 kB body: HTTP $CODE, want 413"
# Chunked upload (no Content-Length) over the limit: cut off while reading.
CODE=$(curl -sS --cacert "$DATA/hook.pem" -o /dev/null -w '%{http_code}' -H "@$SECRETS/auth.hdr" \
    -H 'Transfer-Encoding: chunked' --data-binary "@$DATA/big.json" "$HOOK_URL$OKTA_PATH")
[ "$CODE" = 413 ] || fail "20 kB chunked body: HTTP $CODE, want 413"
CODE=$(curl -sS --cacert "$DATA/hook.pem" -o /dev/null -w '%{http_code}' "$HOOK_URL/nope")
[ "$CODE" = 404 ] || fail "unknown path: HTTP $CODE, want 404"
log "malformed JSON 400, oversized body 413 (Content-Length and chunked), unknown path 404"

# ---- a client that sends its body slowly is cut off (request_timeout_s = 2,
# request_read_ms = 2000) ----
# Two clients: one stalls after a few bytes (idle timeout), one trickles a byte every
# 0.4 s (whole-request limit). Both must be disconnected within about 2 s.
"$PYTHON3" - "$HOOK_PORT" "$DATA/hook.pem" "$SECRETS/auth.hdr" << 'PYEOF' || fail "slow client was not cut off"
import socket, ssl, sys, time
port, ca, hdr = int(sys.argv[1]), sys.argv[2], open(sys.argv[3]).read().strip()
ctx = ssl.create_default_context(cafile=ca)

def start():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                        server_hostname="127.0.0.1")
    s.sendall(("POST /okta/password-import HTTP/1.1\r\nHost: x\r\n%s\r\n"
               "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{" % hdr).encode())
    return s

def closed(s, wait):
    s.settimeout(wait)
    try:
        return s.recv(4096) == b""
    except socket.timeout:
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True

ok = True
s = start()                                   # stalls
t0 = time.time()
c = closed(s, 6)
print("stalled client: closed=%s after %.1f s" % (c, time.time() - t0), file=sys.stderr)
ok = ok and c and time.time() - t0 < 4.5
s = start()                                   # trickles
t0 = time.time()
c = False
while time.time() - t0 < 8 and not c:
    try:
        s.sendall(b" ")
    except (ConnectionError, ssl.SSLError, OSError):
        c = True
        break
    c = closed(s, 0.4)
print("trickling client: closed=%s after %.1f s" % (c, time.time() - t0), file=sys.stderr)
ok = ok and c and time.time() - t0 < 4.5
sys.exit(0 if ok else 1)
PYEOF
log "stalled and trickling uploads are cut off by the server"

# ---- failure budget: 5 wrong, then even the right password is UNVERIFIED without a bind --
CAROL_DN="uid=carol,ou=people,$SUFFIX"
for i in 1 2 3 4 5; do
    expect_okta UNVERIFIED "carol wrong $i" '"carol"' "$(jstr "$PW_WRONG")"
done
b5=$(ldap_ops "$CAROL_DN")
[ "$b5" = 5 ] || fail "5 wrong passwords made $b5 binds as carol, want 5"
expect_okta UNVERIFIED "carol right after 5 failures" '"carol"' "$(jstr "$PW_CAROL")"
expect_okta UNVERIFIED "carol right after 5 failures (case)" '"CAROL"' "$(jstr "$PW_CAROL")"
sleep 0.3
[ "$(ldap_ops "$CAROL_DN")" = 5 ] || fail "a throttled attempt reached the directory"
[ "$(metric 'dirmig_hook_throttled_users')" = 1 ] || fail "throttled_users gauge is not 1"
[ "$(metric 'dirmig_hook_requests_total{outcome="throttled"}')" = 2 ] || fail "throttled count"
sleep "$WINDOW.2"
expect_okta VERIFIED "carol right after the window" '"carol"' "$(jstr "$PW_CAROL")"
[ "$(ldap_ops "$CAROL_DN")" = 6 ] || fail "binds as carol: $(ldap_ops "$CAROL_DN"), want 6"
log "failure budget: throttled after 5 failures without a bind, verified after the window"

# ---- eventId de-duplication: a retried event is answered the same, without a bind ----
ALICE_DN="uid=alice,ou=people,$SUFFIX"
b0=$(ldap_ops "$ALICE_DN")
expect_okta VERIFIED "event first" '"alice"' "$(jstr "$PW_ALICE")" "evt-dup-1"
expect_okta VERIFIED "event retried" '"alice"' "$(jstr "$PW_ALICE")" "evt-dup-1"
expect_okta UNVERIFIED "event 2 first" '"alice"' "$(jstr "$PW_WRONG")" "evt-dup-2"
expect_okta UNVERIFIED "event 2 retried" '"alice"' "$(jstr "$PW_WRONG")" "evt-dup-2"
sleep 0.3
[ "$(ldap_ops "$ALICE_DN")" = $((b0 + 2)) ] || fail "retried eventIds were bound again"
log "eventId retries answered from the first verification"

# ---- parallel requests ----
pids=""
for i in $(seq 1 20); do
    okta_body "$DATA/par$i.json" '"alice"' "$(jstr "$PW_ALICE")"
    curl -sS --max-time 10 --cacert "$DATA/hook.pem" -o "$WORK/par$i.out" \
        -H "@$SECRETS/auth.hdr" --data-binary "@$DATA/par$i.json" "$HOOK_URL$OKTA_PATH" &
    pids="$pids $!"
done
for p in $pids; do
    wait "$p"
done
[ "$(grep -l '"VERIFIED"' "$WORK"/par*.out | wc -l)" = 20 ] || fail "parallel requests"
log "20 parallel verifications all VERIFIED"

# ---- health, metrics ----
CODE=$(curl -sS --cacert "$DATA/hook.pem" -o "$WORK/health.json" -w '%{http_code}' \
    "$HOOK_URL/healthz")
[ "$CODE" = 200 ] && [ "$(cat "$WORK/health.json")" = ok ] ||
    fail "/healthz: $CODE $(cat "$WORK/health.json")"
[ "$(metric 'dirmig_hook_requests_total{outcome="verified"}')" -ge 25 ] || fail "verified count"
grep -q '^dirmig_hook_request_duration_seconds_bucket{le="+Inf"}' "$WORK/metrics.txt" ||
    fail "no latency histogram"
grep -q '^dirmig_hook_source_errors_total 0$' "$WORK/metrics.txt" || fail "source errors != 0"
hook_stop

# ---- DN template instead of a search: RFC 4514 escaping of the login; the entry is read
# by its DN (base scope) first, so a name that is no account never binds ----
hook_config "$WORK/tmpl.json" "hook.dn_template=uid={login},ou=people,$SUFFIX"
hook_start "$WORK/tmpl.json"
l0=$(wc -l < "$TESTDIR/SRC/slapd.log")
expect_okta VERIFIED "template: right password" '"alice"' "$(jstr "$PW_ALICE")"
expect_okta VERIFIED "template: padded login" '"  alice "' "$(jstr "$PW_ALICE")"
expect_okta UNVERIFIED "template: wrong password" '"alice"' "$(jstr "$PW_WRONG")"
expect_okta UNVERIFIED "template: DN injection" '"admin,ou=people"' "$(jstr "$PW_ADMIN")"
expect_okta UNVERIFIED "template: unknown" '"nobody"' "$(jstr "$PW_ALICE")"
sleep 0.3
tail -n +"$((l0 + 1))" "$TESTDIR/SRC/slapd.log" > "$WORK/tmpl-ops.log"
grep -qF 'SRCH base="uid=admin\2Cou\3Dpeople,ou=people,' "$WORK/tmpl-ops.log" ||
    fail "the template login was not RFC 4514-escaped"
! grep -E ' SRCH base=.* scope=2 ' "$WORK/tmpl-ops.log" || fail "the DN template mode searched a subtree"
! grep -qE 'BIND dn="uid=(admin|nobody)' "$WORK/tmpl-ops.log" ||
    fail "a templated DN that is no entry was bound"
[ "$(grep -cE 'BIND dn="uid=alice,ou=people,[^"]*" method=' "$WORK/tmpl-ops.log")" = 3 ] ||
    fail "template: binds as alice: $(grep -cE 'BIND dn="uid=alice,ou=people,[^"]*" method=' "$WORK/tmpl-ops.log"), want 3"
hook_stop
log "DN template: a base read, then the bind; login escaped and space-squeezed; no bind for non-entries"

# ---- plain HTTP, allowed on loopback only when configured ----
hook_config "$WORK/plain.json" "hook.plain_http=true" "hook.tls=-"
dm_bg hook -c "$WORK/plain.json" hook
HOOK_PID=$DM_PID
for i in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$HOOK_PORT/metrics" && break
    sleep 0.1
done
printf '{"username":"alice","password":"%s"}' "$PW_ALICE" > "$DATA/gen.json"
RESP=$(curl -sS -H "@$SECRETS/auth.hdr" --data-binary "@$DATA/gen.json" \
    "http://127.0.0.1:$HOOK_PORT/verify")
[ "$RESP" = '{"verified":true}' ] || fail "plain HTTP on loopback: $RESP"
hook_stop
log "plain HTTP on 127.0.0.1 when plain_http is set; refused to start without secret/TLS"

# ---- journal, status, report ----
dm status -c "$WORK/hook.json" --json status
expect_rc 0 status "dirmig status"
expect_json "$WORK/status.out" passwords.verified 3 passwords.hook_created 0
dm status_txt -c "$WORK/hook.json" status
grep -q 'verified' "$WORK/status_txt.out" || fail "status text has no hook line"
dm report -c "$WORK/hook.json" --json report
expect_rc 0 report "dirmig report"
expect_json "$WORK/report.out" verified 3 days.0.verified 3
dm report_txt -c "$WORK/hook.json" report
expect_rc 0 report_txt "dirmig report (text)"
"$PYTHON3" - "$WORK/hook.db" << 'PYEOF' || fail "journal rows"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
rows = dict(con.execute("select outcome, count(*) from password_migrations group by 1"))
logins = {r[0] for r in con.execute("select login from password_migrations")}
assert rows.get("verified", 0) >= 25, rows
assert rows.get("wrong_password", 0) >= 7, rows
assert "nobody" not in logins, logins          # unknown logins are not journaled
assert logins <= {"alice", "alice@example.org", "bob", "BOB", "carol", "CAROL",
                  "shared@example.org"}, logins
dns = {r[0] for r in con.execute("select lower(dn) from password_migrations "
                                 "where outcome = 'verified'")}
assert dns == {"uid=%s,ou=people,dc=src,dc=example" % u for u in ("alice", "bob", "carol")}, dns
PYEOF
grep -q 'unknown user (login not logged)' "$WORK/hook.log" || fail "unknown user not logged"
! grep -q 'nobody' "$WORK/hook.log" || fail "an unknown login was logged"
log "journal: verified users counted; status and report show them"

check_no_secrets
