#!/bin/bash
# test_pg_runner.sh: exactly one runner per target with a PostgreSQL journal shared by
# several processes (the runner lock, agent/state.h):
#   1. a manual run while another holds the lock exits 75 with "another run in progress on
#      HOST (pid N)" (and --json status busy), before reading or writing anything;
#   2. kill -9 of the holder: the server releases its session lock, the next run takes
#      over (and the killed run is journaled interrupted, not left running);
#   3. two `dirmig agent` with the same configuration, every 2 s: a watcher polling the
#      journal never sees two runs going at once, both agents run, the agent whose turn
#      comes during the other's run logs a skipped turn; the agent holding the lock is
#      killed with -9 mid-run and the other one runs the next turns.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg_lib.sh"

N=3000
gen_users --suffix dc=src,dc=example --users $N --groups 10 --schemes fast --ldif "$DATA/src.ldif"
add_canary "$DATA/src.ldif" dc=src,dc=example
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC dc=src,dc=example "$DATA/src.ldif" dbnosync
start_server DST dc=dst,dc=example "$DATA/dst.ldif" dbnosync
start_pg PG
pg_conninfo_file PG dirmig "$SECRETS/pg.conninfo"
pg_config "$WORK/run.json" SRC DST "$SECRETS/pg.conninfo" run.batch_size=50 log.file=-
host=$(hostname)

# wait_runner: until the runner table names a live holder; prints its pid
wait_runner() {
    local i pid
    for i in $(seq 1 300); do
        pid=$(pg_psql PG "SELECT r.pid FROM runner r JOIN pg_stat_activity a ON a.pid = r.backend" 2>/dev/null)
        [ -n "$pid" ] && { echo "$pid"; return 0; }
        sleep 0.1
    done
    return 1
}

# ---- 1 and 2: manual runs ----
dm_bg first -c "$WORK/run.json" run
first=$DM_PID
holder=$(wait_runner) || fail "the first run never took the runner lock: $(tail -n 5 "$WORK/first.err")"
[ "$holder" = "$first" ] || fail "runner table names pid $holder, the run is $first"
dm second -c "$WORK/run.json" run --json
expect_rc 75 second "a second run while the first holds the lock"
grep -qF "another run in progress on $host (pid $first)" "$WORK/second.err" ||
    fail "second run said: $(cat "$WORK/second.err")"
expect_json "$WORK/second.out" status busy exit_code 75
kill -0 "$first" 2> /dev/null || fail "the first run ended before it could be killed (make N larger)"
kill -9 "$first"
wait "$first" 2> /dev/null
dm third -c "$WORK/run.json" run --json
expect_rc 0 third "the run after the holder was killed"
expect_json "$WORK/third.out" status done users.failed 0
[ "$(pg_psql PG "SELECT string_agg(status, ',' ORDER BY id) FROM runs")" = interrupted,done ] ||
    fail "runs: $(pg_psql PG 'SELECT id, status FROM runs')"
[ "$(pg_psql PG "SELECT count(*) FROM objects WHERE kind = 'user' AND status = 'ok'")" = $((N + 1)) ] ||
    fail "users journaled: $(pg_psql PG "SELECT status, count(*) FROM objects GROUP BY 1")"

# ---- 3: two agents ----
pg_config "$WORK/agent.json" SRC DST "$SECRETS/pg.conninfo" run.batch_size=50 log.file=- \
    reconcile.interval_s=2 reconcile.run_at_start=true run.verify_target=always
"$PYTHON3" - "$WORK/watch.out" "$TESTDIR/pg_PG.pw" "$PG_PG_PORT" << 'EOF' &
# the watcher: how many runs are 'running' at once, every 50 ms, until killed
import os, subprocess, sys, time
out, pwfile, port = sys.argv[1:4]
env = dict(os.environ, PGPASSWORD=open(pwfile).read().strip())
top = 0
with open(out, "w") as f:
    while True:
        r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", port, "-U", "dirmig",
                            "-d", "dirmig", "-c",
                            "SELECT count(*) FROM runs WHERE status = 'running'"],
                           env=env, capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            n = int(r.stdout.strip())
            if n > top:
                top = n
                f.write("%d\n" % top)
                f.flush()
        time.sleep(0.05)
EOF
watcher=$!
DM_BG_PIDS="$DM_BG_PIDS $watcher"
dm_bg agentA -c "$WORK/agent.json" agent
agentA=$DM_PID
dm_bg agentB -c "$WORK/agent.json" agent
agentB=$DM_PID
# let them take turns for a while
sleep 14
runs_before=$(pg_psql PG "SELECT count(*) FROM runs WHERE kind = 'reconcile'")
[ "$runs_before" -ge 2 ] || fail "only $runs_before scheduled runs in 14 s"
grep -q "scheduled run skipped: another run in progress on $host (pid " "$WORK/agentA.err" "$WORK/agentB.err" ||
    fail "no agent ever found the other one running"
# kill -9 the agent that holds the lock now
holder=$(wait_runner) || fail "no agent took the lock"
[ "$holder" = "$agentA" ] || [ "$holder" = "$agentB" ] || fail "runner pid $holder is neither agent"
if [ "$holder" = "$agentA" ]; then other=$agentB; otag=agentB; else other=$agentA; otag=agentA; fi
kill -9 "$holder"
killed_at=$(date +%s)
wait "$holder" 2> /dev/null
sleep 10
kill -0 "$other" 2> /dev/null || fail "the other agent died"
after=$(pg_psql PG "SELECT count(*) FROM runs WHERE kind = 'reconcile' AND status = 'done' AND started >= $killed_at")
[ "$after" -ge 1 ] || fail "no run after the holder was killed: $(pg_psql PG 'SELECT id, status, started FROM runs')"
grep -q "scheduled run [0-9]* done" "$WORK/$otag.err" || fail "$otag never ran: $(tail -n 5 "$WORK/$otag.err")"
kill -TERM "$other"
dm_wait "$other" 30
kill "$watcher" 2> /dev/null
wait "$watcher" 2> /dev/null
top=$(tail -n 1 "$WORK/watch.out")
[ "$top" = 1 ] || fail "the watcher saw $top runs going at once"
[ "$(pg_psql PG "SELECT count(*) FROM runs WHERE status = 'running'")" = 0 ] ||
    fail "a run is left running: $(pg_psql PG "SELECT id, status FROM runs WHERE status = 'running'")"
log "runs: $(pg_psql PG "SELECT string_agg(status, ',' ORDER BY id) FROM runs")"
check_no_secrets
