#!/bin/bash
# tests/intg/test_okta_window.sh: the sliding window of an HTTP target (no batch barrier),
# against the Okta contract server (tests/okta/okta_server.py --slow-create: matching user
# creates take a while, as a busy API answers some; the other requests go on meanwhile).
#
# 1. A slow request no longer idles the other slots: 200 users in batches of 25, 8 requests
#    in flight, every 20th create takes 2 s. With a barrier at the end of each batch the
#    run waits for a slow create in each of the 8 batches (16 s or more); with the window the
#    slow creates overlap with everything else (20 slot-seconds over 8 slots). The run must
#    take under 10 s, and every user is created exactly once.
# 2. The journal commits by completion: while one create of the first batch is slow (4 s),
#    the users read after it are journaled as created (the journal is read during the run),
#    and the slow one stays a pending intent until its answer comes. Every user the journal
#    calls ok exists at the target.
# 3. A crash with creates in flight (kill -9 while a slow create is outstanding): the
#    journal holds only confirmed users as ok; a resumed run exits 0, and the target holds
#    every user exactly once.
# 4. No token or password in any output, log or the journal.

. "$(dirname "$0")/lib.sh"

MAP=$top_srcdir/schema/maps/inetorgperson-to-okta.json
SUF=dc=src,dc=example

write_secret "$SECRETS/token" "okta-window-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"

okta_config() { # OUT SRC PORT [overrides...]
    local out=$1 src=$2 port=$3
    shift 3
    mkconfig "$out" "$src" - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
        "target.type=okta" "target.uri=http://127.0.0.1:$port" \
        "target.token_file=$SECRETS/token" "target.network_timeout_ms=2000" \
        "target.timeout_ms=20000" "map={\"file\": \"$MAP\"}" "$@"
}

stat_of() { # PORT KEY
    curl -s "http://127.0.0.1:$1/test/stats" |
        "$PYTHON3" -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# journal_users DB: "OK PENDING STATUS_OF_user00010" from the journal (read-only, during a run)
journal_users() {
    "$PYTHON3" - "$1" << 'EOF'
import os, sqlite3, sys
p = sys.argv[1]
if not os.path.exists(p):
    print("0 0 none"); sys.exit(0)
try:
    con = sqlite3.connect("file:%s?mode=ro" % p, uri=True, timeout=5)
    rows = con.execute("select source_dn, status from objects where kind = 'user'").fetchall()
except sqlite3.Error:
    print("0 0 none"); sys.exit(0)
ok = sum(1 for _, s in rows if s == "ok")
pend = sum(1 for _, s in rows if s == "pending")
slow = [s for d, s in rows if d.startswith("uid=user00010,")]
print(ok, pend, slow[0] if slow else "none")
EOF
}

# journal_ok_at_target DB PORT: every user the journal calls ok is at the target
journal_ok_at_target() {
    curl -s "http://127.0.0.1:$2/test/dump" > "$WORK/dump.json" || return 1
    "$PYTHON3" - "$1" "$WORK/dump.json" << 'EOF'
import json, sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
logins = set(json.load(open(sys.argv[2]))["users"].keys())
bad = [d for d, s in con.execute("select source_dn, status from objects where kind = 'user'")
       if s == "ok" and d.split(",")[0][4:] + "@example.org" not in logins]
if bad:
    print("journaled ok but not at the target:", bad[:5])
    sys.exit(1)
EOF
}

gen_users --suffix "$SUF" --users 200 --groups 0 --schemes fast --ldif "$DATA/src.ldif" \
    --passwords "$SECRETS/gen.pw"
add_canary "$DATA/src.ldif" "$SUF" "$SECRETS/gen.pw"
printf 'mail: canary@example.org\n' >> "$DATA/src.ldif"
register_ldif_passwords "$DATA/src.ldif"
cut -f2 "$SECRETS/gen.pw" > "$SECRETS/pwlist"
register_secret_file "$SECRETS/pwlist"
start_server SRC "$SUF" "$DATA/src.ldif"
want=$(grep -c '^dn: uid=[^,]*,ou=people,' "$DATA/src.ldif") # the users in scope

# ---- 1. a slow request does not idle the other slots ----
start_okta SLOW --slow-create '^user00[0-9][02468]0@' --slow-seconds 2
okta_config "$WORK/slow.json" SRC "$SLOW_PORT" "target.concurrency=8" "run.batch_size=25"
t0=$(date +%s.%N)
dm slow -c "$WORK/slow.json" --json run
expect_rc 0 slow "run with slow creates"
t1=$(date +%s.%N)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}')
log "200 users, 10 creates of 2 s, 8 in flight, batches of 25: ${secs} s"
[ "$(stat_of "$SLOW_PORT" created)" = "$want" ] ||
    fail "created $(stat_of "$SLOW_PORT" created) users, want $want"
[ "$(stat_of "$SLOW_PORT" users)" = "$want" ] || fail "the target holds $(stat_of "$SLOW_PORT" users) users"
awk -v s="$secs" 'BEGIN{exit !(s < 10)}' ||
    fail "the run took ${secs} s: slow creates held the other requests back (a batch barrier)"
expect_json "$WORK/slow.out" users.created "$want"

# ---- 2. the journal commits by completion ----
start_okta CRASH --slow-create '^user00010@' --slow-seconds 4
okta_config "$WORK/crash.json" SRC "$CRASH_PORT" "target.concurrency=8" "run.batch_size=25"
dm_bg crash -c "$WORK/crash.json" run
seen=""
for i in $(seq 1 60); do
    read -r ok pend slow <<< "$(journal_users "$WORK/crash.db")"
    if [ "$ok" -ge 40 ]; then
        seen="$ok $pend $slow"
        break
    fi
    kill -0 "$DM_PID" 2> /dev/null || break
    sleep 0.05
done
[ -n "$seen" ] || fail "the journal never held 40 created users during the run ($ok ok)"
log "journal during the run: $ok ok, $pend pending, user00010 $slow"
[ "$slow" = pending ] ||
    fail "user00010 (its create slow) is '$slow' while $ok users read after it are ok: want a pending intent"

# ---- 3. a crash with a create in flight, then a resumed run ----
kill -9 "$DM_PID" 2> /dev/null
wait "$DM_PID" 2> /dev/null
journal_ok_at_target "$WORK/crash.db" "$CRASH_PORT" || fail "the journal is ahead of the target"
read -r ok pend slow <<< "$(journal_users "$WORK/crash.db")"
log "after kill -9: $ok ok, $pend pending, user00010 $slow; target $(stat_of "$CRASH_PORT" users)"
dm resume -c "$WORK/crash.json" --json run
expect_rc 0 resume "the resumed run"
[ "$(stat_of "$CRASH_PORT" users)" = "$want" ] ||
    fail "after the resumed run the target holds $(stat_of "$CRASH_PORT" users) users, want $want"
read -r ok pend slow <<< "$(journal_users "$WORK/crash.db")"
[ "$ok" = "$want" ] && [ "$pend" = 0 ] || fail "journal after the resumed run: $ok ok, $pend pending"
journal_ok_at_target "$WORK/crash.db" "$CRASH_PORT" || fail "the journal is ahead of the target"
dm again -c "$WORK/crash.json" --json run
expect_rc 0 again "a third run"
expect_json "$WORK/again.out" users.created 0

# ---- 4. secrets ----
check_no_secrets "$WORK"
exit 0
