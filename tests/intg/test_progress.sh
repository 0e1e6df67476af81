#!/bin/bash
# tests/intg/test_progress.sh: progress of plan, run and validate (agent/progress.h).
#
# 1. --progress=json: JSON lines on stderr per phase (users, groups, leavers), done never
#    going back, the last line of each phase final with done == total; plan and validate too.
# 2. Off a terminal, run.progress_interval_s=1 against a slow target (the Okta contract
#    server with a rate limit): progress log lines with done, total, rate and ETA while the
#    run waits for the target; nothing drawn on stderr.
# 3. On a terminal (script(1) gives the run a pty): the line with done/total, rate and ETA.
# 4. --progress takes auto, json or none, and only plan, run and validate take it.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

command -v script > /dev/null 2>&1 || skip "missing tool: script (util-linux)"
S=dc=src,dc=example
T=dc=dst,dc=example

# check_json FILE PHASES...: the JSON progress lines of FILE (stderr of a command) cover
# PHASES in this order, each monotonic and ending final with done == total.
check_json() {
    local file=$1
    shift
    "$PYTHON3" - "$file" "$@" << 'PYEOF' || fail "progress JSON lines of $(basename "$file")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"type":"progress"')]
want = sys.argv[2:]
assert lines, "no progress line"
phases = []
for l in lines:
    assert set(l) == {"type", "phase", "done", "total", "rate", "eta_s", "elapsed_s", "final"}, l
    if not phases or phases[-1][0] != l["phase"]:
        phases.append((l["phase"], []))
    phases[-1][1].append(l)
names = [p for p, _ in phases]
assert names == want, (names, want)
for name, ls in phases:
    done = [l["done"] for l in ls]
    assert done == sorted(done), (name, done)
    assert ls[0]["done"] == 0 and not ls[0]["final"], (name, ls[0])
    assert ls[-1]["final"] and all(not l["final"] for l in ls[:-1]), (name, ls)
    last = ls[-1]
    assert last["total"] == last["done"], (name, last)
    assert last["eta_s"] == 0, (name, last)
    el = [l["elapsed_s"] for l in ls]
    assert el == sorted(el), (name, el)
    for l in ls:
        assert l["total"] is None or l["done"] <= l["total"], (name, l)
print(" ".join("%s %d" % (n, ls[-1]["done"]) for n, ls in phases))
PYEOF
}

# ---- 1. JSON lines: LDAP -> LDAP ----
gen_users --suffix "$S" --users 3000 --groups 30 --big-group 500 --schemes ssha --seed 3 \
    --ldif "$DATA/src.ldif" --passwords "$SECRETS/src.pw"
add_canary "$DATA/src.ldif" "$S"
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif "$T" "$DATA/dst.ldif"
start_server SRC "$S" "$DATA/src.ldif"
start_server DST "$T" "$DATA/dst.ldif"
users=$(slapd_count SRC "ou=people,$S" '(objectClass=inetOrgPerson)')
groups=$(slapd_count SRC "ou=groups,$S" '(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))')
mkconfig "$WORK/l.json" SRC DST run.batch_size=200 leavers.action=delete

dm plan -c "$WORK/l.json" plan --progress=json --json
expect_rc 0 plan "plan --progress=json"
log "plan: $(check_json "$WORK/plan.err" users groups)"
dm validate -c "$WORK/l.json" validate --progress json --out "$WORK/v"
expect_rc 0 validate "validate --progress json"
log "validate: $(check_json "$WORK/validate.err" users groups)"
dm run1 -c "$WORK/l.json" run --progress=json
expect_rc 0 run1 "run --progress=json"
got=$(check_json "$WORK/run1.err" users groups)
[ "$got" = "users $users groups $groups" ] || fail "run1 progress totals: $got (source: $users users, $groups groups)"
log "run: $got"
grep -q $'\r' "$WORK/run1.err" && fail "a terminal line was drawn off a terminal"
# leavers: 5 users gone from the source
printf 'uid=user%05d,ou=people,%s\n' 1 "$S" 2 "$S" 3 "$S" 4 "$S" 5 "$S" > "$DATA/gone.txt"
ldapdelete -x -H "$SRC_URI" -D "cn=admin,$S" -y "$SRC_PW_FILE" -f "$DATA/gone.txt" ||
    fail "ldapdelete"
dm run2 -c "$WORK/l.json" run --progress=json
expect_rc 0 run2 "run with leavers --progress=json"
log "run with leavers: $(check_json "$WORK/run2.err" users groups leavers)"

# ---- 2. off a terminal: log lines every second against a slow target ----
write_secret "$SECRETS/token" "okta-progress-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
gen_users --suffix dc=slow,dc=example --users 30 --groups 1 --big-group 10 --schemes ssha \
    --seed 4 --ldif "$DATA/slow.ldif" --passwords "$SECRETS/slow.pw"
register_ldif_passwords "$DATA/slow.ldif"
start_server SLOW dc=slow,dc=example "$DATA/slow.ldif"
# 600 requests a minute per endpoint family, half of it dirmig's: 5 a second
start_okta OKTA --rate-limit 600
okta_conf() { # OUT [overrides...]
    local out=$1
    shift
    mkconfig "$out" SLOW - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
        "target.type=okta" "target.uri=http://127.0.0.1:$OKTA_PORT" \
        "target.token_file=$SECRETS/token" \
        "map={\"file\": \"$top_srcdir/schema/maps/inetorgperson-to-okta.json\"}" \
        run.batch_size=5 "$@"
}
okta_conf "$WORK/slow.json" run.progress_interval_s=1
t0=$(date +%s)
dm slow -c "$WORK/slow.json" run
expect_rc 0 slow "rate-limited run"
secs=$(($(date +%s) - t0))
n=$(grep -c 'progress: users [0-9,]* of 30 ' "$WORK/slow.log")
[ "$n" -ge 3 ] || fail "$n progress lines for users in a ${secs} s run: $(grep progress "$WORK/slow.log" | head -n 3)"
grep -q 'progress: users [0-9,]* of 30 ([0-9]*%), [0-9.]*/s, ETA [0-9]' "$WORK/slow.log" ||
    fail "no ETA in the progress lines: $(grep -m 2 progress "$WORK/slow.log")"
grep -q 'progress: users 30 done in ' "$WORK/slow.log" || fail "no end line for the users phase"
grep -q 'progress: .*\[run [0-9]' "$WORK/slow.log" || grep -q '\[run [0-9]*\] progress:' "$WORK/slow.log" ||
    fail "the progress lines do not name the run"
! grep -q $'\r' "$WORK/slow.err" || fail "a terminal line was drawn off a terminal"
log "rate-limited run of ${secs} s: $n progress lines, e.g. $(grep -m 1 'progress: users' "$WORK/slow.log" | sed 's/.*progress:/progress:/')"
# progress_interval_s 0: none
okta_conf "$WORK/quiet.json" run.progress_interval_s=0 "state.path=$WORK/slow.db"
dm quiet -c "$WORK/quiet.json" run
expect_rc 0 quiet "run with run.progress_interval_s 0"
! grep -q 'progress:' "$WORK/quiet.log" || fail "progress lines with run.progress_interval_s 0"

# ---- 3. on a terminal ----
# a fresh target and journal: everything is created again, as slowly
start_okta OKTA2 --rate-limit 600
okta_conf "$WORK/tty.json" "target.uri=http://127.0.0.1:$OKTA2_PORT"
script -q -e -c "$DIRMIG -c $WORK/tty.json run" /dev/null > "$WORK/tty.out" 2>&1 < /dev/null
rc=$?
[ "$rc" = 0 ] || fail "run on a terminal: exit $rc: $(tail -c 400 "$WORK/tty.out")"
tr '\r' '\n' < "$WORK/tty.out" | grep -q 'users [0-9,]*/30 ([0-9]*%), [0-9.]*/s, ETA [0-9]' ||
    fail "no ETA line on the terminal: $(tr '\r' '\n' < "$WORK/tty.out" | grep -m 3 users)"
tr '\r' '\n' < "$WORK/tty.out" | grep -q 'users 30/30 (100%).*| created 30' ||
    fail "the users line does not end at 30/30 with the counts"
log "terminal: $(tr '\r' '\n' < "$WORK/tty.out" | grep -m 1 'ETA' | sed 's/\x1b\[K//')"

# ---- 4. the option ----
dm bad -c "$WORK/l.json" run --progress=yes
expect_rc 64 bad "--progress=yes"
grep -q -- '--progress: auto, json or none' "$WORK/bad.err" || fail "bad --progress not named"
dm st -c "$WORK/l.json" status --progress=json
expect_rc 64 st "status --progress"
dm none -c "$WORK/l.json" plan --progress none
expect_rc 0 none "plan --progress none"
! grep -q '"type":"progress"' "$WORK/none.err" || fail "--progress none wrote progress"

check_no_secrets
exit 0
