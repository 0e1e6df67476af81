#!/bin/bash
# test_agent.sh: `dirmig agent`, the daemon, as the real binary against a real slapd source
# and target: the hook answers while scheduled runs happen (never two at once); a user added
# to the source reaches the target within the interval; a failing target makes runs fail,
# back off and recover; SIGHUP with a broken config keeps the agent running and logs the
# error with file:line; a valid change after SIGHUP takes effect (new hook secret, new
# interval); SIGTERM in the middle of a run exits 0 quickly and the runs table has no run
# left 'running'; systemd's NOTIFY_SOCKET receives READY=1, RELOADING=1, WATCHDOG=1 and
# STOPPING=1; `dirmig status` shows the last scheduled run and the next due time; no
# password anywhere in dirmig output.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/intg/lib.sh"
. "$top_srcdir/tests/intg/test_hook_lib.sh"

DST_SUFFIX_DN="dc=dst,dc=example"
skeleton_ldif "$DST_SUFFIX_DN" "$DATA/dst.ldif"
start_server DST "$DST_SUFFIX_DN" "$DATA/dst.ldif"

INTERVAL=2
SLACK=1
[ -z "$VALGRIND" ] || SLACK=20

# agent_config OUT [path=value ...]: SRC -> DST with the hook and a 2 s schedule.
agent_config() {
    local out=$1
    shift
    mkconfig "$out" SRC DST \
        "hook.listen=127.0.0.1:$HOOK_PORT" "hook.tls.cert_file=$DATA/hook.pem" \
        "hook.tls.key_file=$SECRETS/hook.key" "hook.secret_file=$SECRETS/hook.secret" \
        "source.network_timeout_ms=1000" "target.network_timeout_ms=1000" "hook.pool_size=4" \
        "reconcile.interval_s=$INTERVAL" "reconcile.run_at_start=true" \
        "reconcile.max_failures_before_backoff=1" "reconcile.max_backoff_s=4" "$@"
}

# runs_query SQL: one result row per line, columns separated by '|'.
runs_query() {
    "$PYTHON3" - "$WORK/agent.db" "$1" << 'PYEOF'
import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
for row in con.execute(sys.argv[2]):
    print("|".join("" if v is None else str(v) for v in row))
PYEOF
}

# done_runs: scheduled runs finished so far.
done_runs() {
    runs_query "select count(*) from runs where kind = 'reconcile' and status = 'done'" 2> /dev/null ||
        echo 0
}

# runs_over N: more than N scheduled runs are done.
runs_over() {
    [ "$(done_runs)" -gt "$1" ]
}

# wait_for WHAT TIMEOUT_S COMMAND...: retries COMMAND every 0.1 s; fails the test on time-out.
wait_for() {
    local what=$1 limit=$2 i
    shift 2
    for ((i = 0; i < limit * 10; i++)); do
        "$@" && return 0
        kill -0 "$AGENT_PID" 2> /dev/null || {
            tail -n 20 "$WORK/agent.log" "$WORK/agent.err" >&2
            fail "the agent exited while waiting for: $what"
        }
        sleep 0.1
    done
    tail -n 20 "$WORK/agent.log" >&2
    fail "timed out after $limit s waiting for: $what"
}

# elapsed T0 [T1]: seconds from T0 to T1 (default now), both from date +%s.%N.
elapsed() {
    awk -v a="$1" -v b="${2:-$(date +%s.%N)}" 'BEGIN { printf "%.2f", b - a }'
}

notified() {
    grep -qx "$1" "$WORK/notify.log" 2> /dev/null
}

hook_answers() {
    curl -s -o /dev/null --cacert "$DATA/hook.pem" "$HOOK_URL/metrics"
}

in_target() {
    [ "$(slapd_count DST "ou=people,$DST_SUFFIX_DN" "(uid=$1)")" = 1 ]
}

# ---- the config is checked: the agent needs a hook or a schedule ----
mkconfig "$WORK/idle.json" SRC DST
dm idle -c "$WORK/idle.json" agent
expect_rc 78 idle "agent without hook and schedule"
grep -q 'nothing to do' "$WORK/idle.err" || fail "idle agent not explained"
agent_config "$WORK/badrec.json" "reconcile.interval_s=-1"
dm badrec -c "$WORK/badrec.json" agent
expect_rc 78 badrec "negative interval"
grep -qE 'badrec.json:[0-9]+:[0-9]+: reconcile.interval_s: must be 0..' "$WORK/badrec.err" ||
    fail "bad interval not placed: $(cat "$WORK/badrec.err")"
agent_config "$WORK/badkey.json" "reconcile.every=5"
dm badkey -c "$WORK/badkey.json" check
expect_rc 78 badkey "unknown reconcile key"

# ---- systemd's notification socket (a datagram listener, one line per message) ----
NOTIFY_SOCK="$TESTDIR/notify.sock"
"$PYTHON3" - "$NOTIFY_SOCK" "$WORK/notify.log" << 'PYEOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        msg = s.recv(4096).decode()
        for line in msg.split("\n"):
            out.write(line + "\n")
        out.flush()
PYEOF
NOTIFY_PID=$!
DM_BG_PIDS="$DM_BG_PIDS $NOTIFY_PID"
for i in $(seq 1 50); do
    [ -S "$NOTIFY_SOCK" ] && break
    sleep 0.1
done
[ -S "$NOTIFY_SOCK" ] || fail "notify listener did not start"

# ---- start: hook + scheduled runs ----
agent_config "$WORK/agent.json"
cp "$WORK/agent.json" "$DATA/agent.good.json"
T0=$(date +%s.%N)
export NOTIFY_SOCKET="$NOTIFY_SOCK" WATCHDOG_USEC=1000000
dm_bg agent -c "$WORK/agent.json" agent
unset NOTIFY_SOCKET WATCHDOG_USEC
AGENT_PID=$DM_PID
wait_for "READY=1" 10 notified READY=1
wait_for "the hook to answer" 10 hook_answers
T_READY=$(date +%s.%N)
log "READY=1 after $(elapsed "$T0" "$T_READY") s"
wait_for "the first run (run_at_start) to reach the target" $((5 + SLACK)) in_target alice
wait_for "two scheduled runs" $((3 * INTERVAL + SLACK)) runs_over 1

# The hook answers while runs keep happening.
for i in 1 2 3; do
    expect_okta VERIFIED "right password during scheduled runs ($i)" '"alice"' "$(jstr "$PW_ALICE")"
    expect_okta UNVERIFIED "wrong password during scheduled runs ($i)" '"bob"' "$(jstr "$PW_WRONG")"
    sleep 0.7
done
n_before=$(done_runs)
wait_for "another run while the hook serves" $((2 * INTERVAL + SLACK)) runs_over "$n_before"
log "hook VERIFIED/UNVERIFIED while $(done_runs) scheduled runs were done"
curl -sS --cacert "$DATA/hook.pem" "$HOOK_URL/metrics" > "$WORK/metrics_ok.txt" || fail "no /metrics"
grep -qx 'dirmig_reconcile_blocked 0' "$WORK/metrics_ok.txt" || fail "/metrics: blocked while runs are done"
grep -q '^dirmig_reconcile_last_run_info{run="[0-9]*",status="done"} 1$' "$WORK/metrics_ok.txt" ||
    fail "/metrics: no done scheduled run: $(grep reconcile "$WORK/metrics_ok.txt")"

# ---- a change in the source reaches the target within the interval ----
printf '%s\n' "dn: uid=dave,ou=people,$SUFFIX" "objectClass: inetOrgPerson" "uid: dave" \
    "cn: Dave New" "sn: New" "mail: dave@example.org" > "$DATA/dave.ldif"
ldapadd -x -H "$SRC_URI" -D "$SRC_ROOTDN" -y "$SRC_PW_FILE" -f "$DATA/dave.ldif" \
    > "$DATA/ldapadd.log" 2>&1 || fail "ldapadd dave: $(cat "$DATA/ldapadd.log")"
t_add=$(date +%s.%N)
wait_for "dave in the target" $((INTERVAL + 2 + SLACK)) in_target dave
lat=$(elapsed "$t_add")
log "a user added to the source was in the target after $lat s (interval $INTERVAL s)"
printf '%s\n' "dn: uid=dave,ou=people,$SUFFIX" "changetype: modify" "replace: sn" "sn: Renamed" \
    > "$DATA/dave.mod"
ldapmodify -x -H "$SRC_URI" -D "$SRC_ROOTDN" -y "$SRC_PW_FILE" -f "$DATA/dave.mod" \
    > "$DATA/ldapmodify.log" 2>&1 || fail "ldapmodify dave"
dave_sn() {
    slapd_search DST -b "uid=dave,ou=people,$DST_SUFFIX_DN" -s base sn | grep -qx 'sn: Renamed'
}
wait_for "dave's new sn in the target" $((INTERVAL + 2 + SLACK)) dave_sn
log "an update in the source reached the target"

# ---- never two runs at once: every run starts after the previous one finished ----
runs_query "select id, started, finished, status from runs where kind = 'reconcile' order by id" \
    > "$WORK/runs1.txt"
awk -F'|' 'NR > 1 && $2 < prev_fin { bad = 1 } { prev_fin = $3 } END { exit bad }' \
    "$WORK/runs1.txt" || fail "overlapping runs: $(tr '\n' ' ' < "$WORK/runs1.txt")"

# ---- status: the last scheduled run and the next due time ----
dm status -c "$WORK/agent.json" --json status
expect_rc 0 status "dirmig status"
expect_json "$WORK/status.out" agent.state running agent.last_status done agent.failures 0
due=$(json_get "$WORK/status.out" agent.next_due)
now=$(date +%s)
[ "$due" -ge $((now - 1)) ] && [ "$due" -le $((now + INTERVAL + 2)) ] ||
    fail "agent.next_due $due is not within the interval of now ($now)"
dm status_txt -c "$WORK/agent.json" status
grep -q 'last scheduled run: [0-9]* done at' "$WORK/status_txt.out" || fail "status: no last run"
grep -q 'next scheduled run: ' "$WORK/status_txt.out" || fail "status: no next run"
log "status shows the last scheduled run and the next due time"

# ---- a failing target: runs fail, are logged, back off, and recover ----
slapd_stop DST
count_failed() {
    grep -c 'scheduled run failed before it began' "$WORK/agent.log"
}
f0=$(count_failed)
failed_over() {
    [ "$(count_failed)" -gt "$1" ]
}
wait_for "two failed runs" $((3 * INTERVAL + 4 + SLACK)) failed_over $((f0 + 1))
grep -qE 'next run in [34] s \(2 failed in a row\)' "$WORK/agent.log" ||
    fail "no backoff after 2 failures: $(grep 'next run in' "$WORK/agent.log" | tail -n 3)"
dm status_f -c "$WORK/agent.json" --json status
expect_json "$WORK/status_f.out" agent.last_status failed
slapd_restart DST || fail "could not restart DST"
n_before=$(done_runs)
wait_for "a successful run after the target is back" $((4 + INTERVAL + 2 + SLACK)) \
    runs_over "$n_before"
log "failed runs logged, backed off to 4 s, recovered"

# ---- SIGHUP with a broken config: logged with file:line, still running on the old one ----
printf '{\n  "source": {\n    "uri": "ldap://127.0.0.1:1",\n    "page_size": 0\n' > "$WORK/agent.json"
printf '  }\n}\n' >> "$WORK/agent.json"
kill -HUP "$AGENT_PID"
broken_logged() {
    grep -qE 'agent\.json:[0-9]+:[0-9]+: ' "$WORK/agent.log" &&
        grep -q 'still running with the previous one' "$WORK/agent.log"
}
wait_for "the broken config to be reported" 10 broken_logged
log "broken config reported: $(grep -oE 'agent\.json:[0-9]+:[0-9]+: [^"]*' "$WORK/agent.log" | head -n 1)"
printf '{ "source": {"uri": \n' > "$WORK/agent.json" # not even JSON
kill -HUP "$AGENT_PID"
json_logged() {
    [ "$(grep -c 'still running with the previous one' "$WORK/agent.log")" -ge 2 ]
}
wait_for "the JSON syntax error to be reported" 10 json_logged
grep -E 'agent\.json:[0-9]+(:[0-9]+)?: ' "$WORK/agent.log" | tail -n 1 | grep -q . ||
    fail "JSON syntax error without file:line"
kill -0 "$AGENT_PID" || fail "the agent died on a broken config"
expect_okta VERIFIED "hook after a broken reload" '"alice"' "$(jstr "$PW_ALICE")"
n_before=$(done_runs)
wait_for "runs to go on after a broken reload" $((2 * INTERVAL + SLACK)) \
    runs_over "$n_before"
log "broken configs rejected, agent kept serving and running"

# ---- a valid change after SIGHUP takes effect: new hook secret, interval 30 s ----
HOOK_SECRET2="Bearer hook2-$(head -c 27 /dev/urandom | base64 | tr -d '/+=')"
write_secret "$SECRETS/hook2.secret" "$HOOK_SECRET2"
printf 'Authorization: %s\n' "$HOOK_SECRET2" > "$SECRETS/auth2.hdr"
agent_config "$WORK/agent.json" "hook.secret_file=$SECRETS/hook2.secret" \
    "reconcile.interval_s=30" "reconcile.jitter_s=1"
kill -HUP "$AGENT_PID"
reloaded() {
    grep -q "configuration reloaded: hook, a run every $1 s" "$WORK/agent.log"
}
wait_for "the valid config to be reloaded" 10 reloaded 30
wait_for "the hook to answer after the reload" 10 hook_answers
okta_body "$DATA/req.json" '"alice"' "$(jstr "$PW_ALICE")"
post "$DATA/req.json"
[ "$CODE" = 401 ] || fail "old secret after the reload: HTTP $CODE, want 401"
post "$DATA/req.json" "$OKTA_PATH" "$SECRETS/auth2.hdr"
case "$CODE $RESP" in
'200 '*'"VERIFIED"'*) ;;
*) fail "new secret after the reload: HTTP $CODE $RESP" ;;
esac
wait_for "RELOADING=1" 5 notified RELOADING=1
dm status_r -c "$WORK/agent.json" --json status
due=$(json_get "$WORK/status_r.out" agent.next_due)
now=$(date +%s)
[ "$due" -ge $((now + 25)) ] && [ "$due" -le $((now + 32)) ] ||
    fail "after the reload agent.next_due is $due, want now + 30 s ($now)"
log "valid reload: new secret in force (old one 401), next run 30 s later"

# ---- a blocked scheduled run: status and the log say why; no retry before the interval ----
agent_config "$WORK/agent.json" "hook.secret_file=$SECRETS/hook2.secret" "reconcile.interval_s=2" \
    "source.users.base=ou=nosuch,$SUFFIX"
kill -HUP "$AGENT_PID"
wait_for "the 2 s schedule" 10 reloaded 2
blocked_runs() {
    grep -c 'is blocked (no disable or delete made)' "$WORK/agent.log"
}
blocked_over() {
    [ "$(blocked_runs)" -gt "$1" ]
}
wait_for "a blocked scheduled run" $((2 * INTERVAL + 4 + SLACK)) blocked_over 0
b0=$(blocked_runs)
sleep 5
b1=$(blocked_runs)
[ $((b1 - b0)) -le 3 ] || fail "$((b1 - b0)) blocked runs in 5 s with a 2 s interval: retries spin"
dm status_b -c "$WORK/agent.json" --json status
expect_json "$WORK/status_b.out" agent.last_status blocked
json_get "$WORK/status_b.out" blocked.reason | grep -q "did not complete" ||
    fail "status --json does not show why the run is blocked: $(cat "$WORK/status_b.out")"
dm status_bt -c "$WORK/agent.json" status
grep -q '^BLOCKED: run [0-9]* made no disable or delete' "$WORK/status_bt.out" ||
    fail "status does not show the block"
grep -q 'last scheduled run: [0-9]* blocked at .*(blocked: ' "$WORK/status_bt.out" ||
    fail "status does not show the agent's blocked run"
[ "$(runs_query "select count(*) from runs where status = 'blocked'")" -ge 1 ] ||
    fail "no run journaled as blocked"
# /metrics says it too (the agent's hook server): the gauge, the last run and the reason
curl -sS --cacert "$DATA/hook.pem" "$HOOK_URL/metrics" > "$WORK/metrics_b.txt" ||
    fail "no /metrics while blocked"
grep -qx 'dirmig_reconcile_blocked 1' "$WORK/metrics_b.txt" ||
    fail "/metrics: dirmig_reconcile_blocked is not 1: $(grep reconcile "$WORK/metrics_b.txt")"
grep -q '^dirmig_reconcile_last_run_info{run="[0-9]*",status="blocked"} 1$' "$WORK/metrics_b.txt" ||
    fail "/metrics: the last run is not shown as blocked"
grep -q '^dirmig_reconcile_blocked_info{reason=".*did not complete.*"} 1$' "$WORK/metrics_b.txt" ||
    fail "/metrics does not say why the run is blocked"
log "blocked scheduled runs: $((b1 - b0)) in 5 s (interval 2 s), status and /metrics show why"
agent_config "$WORK/agent.json" "hook.secret_file=$SECRETS/hook2.secret" \
    "reconcile.interval_s=30" "reconcile.jitter_s=1"
r30=$(grep -c "configuration reloaded: hook, a run every 30 s" "$WORK/agent.log")
kill -HUP "$AGENT_PID"
reloaded30_over() {
    [ "$(grep -c "configuration reloaded: hook, a run every 30 s" "$WORK/agent.log")" -gt "$1" ]
}
wait_for "the 30 s schedule again" 10 reloaded30_over "$r30"

# ---- SIGTERM during a run: exits 0 within a few seconds, no run left 'running' ----
# A bulk of new source users makes the next run long enough to be interrupted.
"$PYTHON3" - "$SUFFIX" 3000 > "$DATA/bulk.ldif" << 'PYEOF'
import sys
suffix, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    print("dn: uid=bulk%05d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: bulk%05d\n"
          "cn: Bulk %d\nsn: Bulk\n" % (i, suffix, i, i))
PYEOF
ldapadd -x -H "$SRC_URI" -D "$SRC_ROOTDN" -y "$SRC_PW_FILE" -f "$DATA/bulk.ldif" \
    > "$DATA/ldapadd.log" 2>&1 || fail "ldapadd bulk"
n_runs=$(runs_query "select count(*) from runs")
agent_config "$WORK/agent.json" "hook.secret_file=$SECRETS/hook2.secret" "run.batch_size=50" \
    "reconcile.interval_s=1"
kill -HUP "$AGENT_PID"
wait_for "the 1 s schedule" 10 reloaded 1
[ "$(runs_query "select count(*) from runs")" = "$n_runs" ] ||
    fail "a run happened while the schedule said 30 s"
started=$(grep -c 'run started' "$WORK/agent.log")
started_over() {
    [ "$(grep -c 'run started' "$WORK/agent.log")" -gt "$1" ]
}
wait_for "a run to start" $((10 + SLACK)) started_over "$started"
sleep 0.3
kill -TERM "$AGENT_PID"
t_term=$(date +%s.%N)
dm_wait "$AGENT_PID" $((5 + SLACK))
expect_rc 0 agent "agent after SIGTERM"
stop_s=$(elapsed "$t_term")
for i in $(seq 1 30); do
    notified STOPPING=1 && break
    sleep 0.1
done
notified STOPPING=1 || fail "no STOPPING=1"
grep -qx 'WATCHDOG=1' "$WORK/notify.log" || fail "no WATCHDOG=1 (WATCHDOG_USEC was set)"
[ "$(runs_query "select count(*) from runs where status = 'running'")" = 0 ] ||
    fail "a run was left 'running': $(runs_query 'select id, status from runs')"
last=$(runs_query "select status from runs order by id desc limit 1")
bulk=$(slapd_count DST "ou=people,$DST_SUFFIX_DN" '(uid=bulk*)')
case "$last" in
interrupted) [ "$bulk" -lt 3000 ] || fail "run marked interrupted but all 3000 users arrived" ;;
done) [ "$bulk" = 3000 ] || fail "run marked done with $bulk of 3000 users" ;;
*) fail "last run status '$last'" ;;
esac
grep -q 'agent: stopped' "$WORK/agent.log" || fail "no 'agent: stopped' in the log"
log "SIGTERM: exit 0 after $stop_s s; last run '$last' with $bulk/3000 bulk users in the target"
dm status_end -c "$WORK/agent.json" --json status
expect_json "$WORK/status_end.out" agent.state stopped agent.last_status "$last"
log "notifications: $(sort -u "$WORK/notify.log" | grep -E '^[A-Z]+=1$' | tr '\n' ' ')"

check_no_secrets
exit 0
