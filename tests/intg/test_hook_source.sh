#!/bin/bash
# test_hook_source.sh: the hook while the source directory hangs, stops and comes back.
# Answers stay under the deadline (UNVERIFIED, never 5xx), /healthz reports the outage,
# source errors are counted as such (not as wrong passwords, and not against the failure
# budget), and verification resumes when the source returns, without restarting dirmig.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/intg/lib.sh"
. "$top_srcdir/tests/intg/test_hook_lib.sh"

# Thread-per-connection mode (the default; test_hook.sh covers the epoll pool).
hook_config "$WORK/hook.json" "hook.deadline_ms=2000" "hook.threads=0"
hook_start "$WORK/hook.json"

ms() {
    echo $(($(date +%s%N) / 1000000))
}

# timed_okta WANT MAX_MS WHAT USERNAME_JSON PASSWORD_JSON: MAX_MS bounds the server's time
# (request sent -> answer); the whole curl call must also stay under Okta's 3 s.
timed_okta() {
    local want=$1 max=$2 what=$3 t0 dt
    shift 3
    t0=$(ms)
    expect_okta "$want" "$what" "$@"
    dt=$(($(ms) - t0))
    if [ -z "$VALGRIND" ]; then # under valgrind everything is 20x slower: outcomes only
        [ "$SERVER_MS" -le "$max" ] || fail "$what: answered in $SERVER_MS ms, want <= $max ms"
        [ "$dt" -le 3000 ] || fail "$what: the whole call took $dt ms (Okta gives up at 3 s)"
    fi
    log "$what: $ANSWER in $SERVER_MS ms (curl call $dt ms)"
}

health() {
    HEALTH=$(curl -sS --max-time 5 --cacert "$DATA/hook.pem" -o "$WORK/health.json" \
        -w '%{http_code}' "$HOOK_URL/healthz")
}

timed_okta VERIFIED 1000 "source up" '"alice"' "$(jstr "$PW_ALICE")"
health
[ "$HEALTH" = 200 ] || fail "/healthz with the source up: $HEALTH"

# ---- hung source (SIGSTOP): every answer before the 2 s deadline ----
SRC_PID=$(cat "$TESTDIR/SRC/run/mypid")
kill -STOP "$SRC_PID"
for i in 1 2 3; do
    timed_okta UNVERIFIED 2000 "hung source, attempt $i" '"alice"' "$(jstr "$PW_ALICE")"
done
printf '{"username":"bob","password":"%s"}' "$PW_BOB" > "$DATA/gen.json"
post "$DATA/gen.json" /verify
[ "$CODE" = 200 ] && [ "$RESP" = '{"verified":false}' ] || fail "generic, hung source: $CODE"
[ -n "$VALGRIND" ] || [ "$SERVER_MS" -le 2000 ] ||
    fail "generic endpoint missed the deadline ($SERVER_MS ms)"
health
[ "$HEALTH" = 503 ] || fail "/healthz with a hung source: $HEALTH"
grep -q "the source did not answer 3 verifications in a row" "$WORK/hook.log" ||
    fail "the breaker did not open after 3 timeouts"
kill -CONT "$SRC_PID"
sleep 0.5
timed_okta VERIFIED 1000 "source resumed after SIGCONT" '"alice"' "$(jstr "$PW_ALICE")"
grep -q "the source answers again" "$WORK/hook.log" || fail "the breaker did not close"

# ---- stopped source: quick UNVERIFIED, logged as a source error ----
slapd_stop SRC
for i in 1 2 3 4 5 6 7; do
    # carol's right password during the outage: source errors must not use her budget
    timed_okta UNVERIFIED 1000 "source down, attempt $i" '"carol"' "$(jstr "$PW_CAROL")"
done
sleep 1.1 # the health answer is cached for a second
health
[ "$HEALTH" = 503 ] || fail "/healthz with the source down: $HEALTH"
[ "$(cat "$WORK/health.json")" = degraded ] || fail "/healthz body: $(cat "$WORK/health.json")"
errs=$(metric dirmig_hook_source_errors_total)
[ "$errs" -ge 11 ] || fail "source errors counted: $errs, want >= 11"
[ "$(metric 'dirmig_hook_requests_total{outcome="wrong_password"}')" = 0 ] ||
    fail "source errors were counted as wrong passwords"
[ "$(metric dirmig_hook_source_up)" = 0 ] || fail "source_up gauge is not 0"
grep -q 'source error' "$WORK/hook.log" || fail "no source error in the log"

# ---- the source returns: verification resumes, same dirmig process ----
slapd_restart SRC || fail "slapd restart failed"
timed_okta VERIFIED 1500 "source back" '"alice"' "$(jstr "$PW_ALICE")"
timed_okta VERIFIED 1500 "carol after the outage" '"carol"' "$(jstr "$PW_CAROL")"
sleep 1.1
health
[ "$HEALTH" = 200 ] || fail "/healthz after the restart: $HEALTH"
kill -0 "$HOOK_PID" || fail "dirmig hook died"
hook_stop

"$PYTHON3" - "$WORK/hook.db" << 'PYEOF' || fail "journal rows"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
rows = dict(con.execute("select outcome, count(*) from password_migrations group by 1"))
# requests answered while the breaker was open never reached the source: not journaled
assert rows.get("source_error", 0) >= 3, rows
assert rows.get("verified", 0) == 4, rows
assert "wrong_password" not in rows, rows
PYEOF
check_no_secrets
