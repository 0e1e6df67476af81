#!/bin/bash
# bench/bench_okta.sh [N_USERS] [RL_SECONDS]: dirmig's Okta target against the contract server
# (tests/okta/okta_server.py), two measurements (results: doc/benchmarks.md):
#
# 1. Users per second with no rate limit at 1, 8 and 32 requests in flight: `dirmig run` of
#    N_USERS users (default 2000, {SSHA} hashes imported) from slapd into a fresh contract
#    server, against the baseline in the same run: bench/okta_ceiling.c POSTing the same
#    number of pre-built user bodies with the same concurrency to a fresh server (what the
#    server can take from a client that does nothing else). Reports the ratio.
# 2. Rate governor: the server limits every endpoint family to 600 requests/min and dirmig
#    may use 50% of it (300/min); `dirmig run` of enough users to keep it busy for
#    RL_SECONDS (default 180) is stopped after RL_SECONDS. Reports the user creates the server
#    counted in that time as a share of the allowed 300/min, and the 429s received.
#
# Prints markdown on stdout; progress on stderr. Environment: DIRMIG (default ./dirmig),
# CONC (default "1 8 32"), KEEP_TESTDIR=1.
set -u -o pipefail
umask 077

N_USERS=${1:-2000}
RL_SECS=${2:-180}
CONC=${CONC:-1 8 32}
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$here/.." && pwd)
: "${DIRMIG:=$top_srcdir/dirmig}"
: "${PYTHON3:=python3}"
: "${CC:=gcc}"
export LDAPNOINIT=1

die() {
    echo "bench: $*" >&2
    exit 1
}
say() {
    echo "bench: $*" >&2
}
[ -x "$DIRMIG" ] || die "no dirmig at $DIRMIG (build it, or set DIRMIG)"

TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-bench-okta.XXXXXX") || die "mktemp"
export TESTDIR
OKTA_PID=""
DM_PID=""
cleanup() {
    [ -n "$DM_PID" ] && kill -9 "$DM_PID" 2> /dev/null
    [ -n "$OKTA_PID" ] && kill "$OKTA_PID" 2> /dev/null && wait "$OKTA_PID" 2> /dev/null
    slapd_stop_all
    [ "${KEEP_TESTDIR:-0}" = 1 ] || rm -rf "$TESTDIR"
}
trap cleanup EXIT
. "$top_srcdir/tests/harness/slapd.sh"

SUFFIX=dc=src,dc=example
RL_USERS=$((RL_SECS * 300 / 60 + 200))
[ "$RL_USERS" -gt "$N_USERS" ] || RL_USERS=$N_USERS
say "generating $RL_USERS users"
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$SUFFIX" --users "$RL_USERS" \
    --groups 0 --schemes ssha --ldif "$TESTDIR/all.ldif" --passwords "$TESTDIR/users.pw" ||
    die "gen_users failed"
# the first N_USERS users for part 1 (entries are separated by blank lines; the skeleton
# and the contractor OU come first)
"$PYTHON3" - "$TESTDIR/all.ldif" "$TESTDIR/src.ldif" "$N_USERS" "$TESTDIR/bodies.jsonl" << 'PYEOF' || die "split"
import json, sys
src, out, n, bodies = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
blocks = open(src, encoding="utf-8").read().split("\n\n")
kept, users = [], 0
with open(bodies, "w") as b:
    for blk in blocks:
        if "\nuid: user" in blk:
            if users >= n:
                continue
            users += 1
            a = dict(l.split(": ", 1) for l in blk.strip().split("\n") if ": " in l)
            mail = "bench%06d@example.org" % users
            b.write(json.dumps({"profile": {"login": mail, "email": mail,
                                            "firstName": a.get("givenName", "x"),
                                            "lastName": a.get("sn", "x")},
                                "credentials": {"password": {"hook": {"type": "default"}}}}) + "\n")
        kept.append(blk)
open(out, "w", encoding="utf-8").write("\n\n".join(kept))
PYEOF
slapd_start SRC "$SUFFIX" "$TESTDIR/src.ldif" dbnosync || die "slapd failed"
slapd_start RLSRC "$SUFFIX" "$TESTDIR/all.ldif" dbnosync || die "slapd failed"
$CC -O2 -o "$TESTDIR/okta_ceiling" "$here/okta_ceiling.c" -lcurl || die "cc okta_ceiling"
printf 'bench-token-%s' "$(head -c 12 /dev/urandom | base64 | tr -d '/+=')" > "$TESTDIR/token"

# start_okta ARGS...: a fresh contract server; sets OKTA_PORT and OKTA_PID
start_okta() {
    local i
    [ -n "$OKTA_PID" ] && kill "$OKTA_PID" 2> /dev/null && wait "$OKTA_PID" 2> /dev/null
    "$PYTHON3" "$top_srcdir/tests/okta/okta_server.py" --port 0 --token-file "$TESTDIR/token" \
        "$@" > "$TESTDIR/okta.out" 2> "$TESTDIR/okta.err" &
    OKTA_PID=$!
    OKTA_PORT=""
    for i in $(seq 1 200); do
        OKTA_PORT=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$TESTDIR/okta.out")
        [ -n "$OKTA_PORT" ] && return 0
        sleep 0.05
    done
    die "okta_server.py did not start"
}
stat_of() {
    curl -s "http://127.0.0.1:$OKTA_PORT/test/stats" |
        "$PYTHON3" -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

# config NAME SRC CONCURRENCY SHARE
config() {
    local uri_var="${2}_URI" pw_var="${2}_PW_FILE"
    "$PYTHON3" - "$TESTDIR/$1.json" "${!uri_var}" "${!pw_var}" "$OKTA_PORT" "$TESTDIR" "$3" \
        "$4" "$top_srcdir/schema/maps/inetorgperson-to-okta.json" "$1" << 'PYEOF'
import json, sys
out, uri, pw, port, d, conc, share, mp, name = sys.argv[1:10]
json.dump({"source": {"uri": uri, "base": "dc=src,dc=example",
                      "bind_dn": "cn=admin,dc=src,dc=example", "bind_pw_file": pw,
                      "users": {"base": "ou=people,dc=src,dc=example",
                                "filter": "(objectClass=inetOrgPerson)"},
                      "groups": {"base": "ou=groups,dc=src,dc=example"}},
           "target": {"type": "okta", "uri": "http://127.0.0.1:%s" % port,
                      "token_file": d + "/token", "concurrency": int(conc),
                      "rate_limit_share": int(share)},
           "map": {"file": mp}, "state": {"path": "%s/%s.db" % (d, name)},
           "log": {"level": "warn", "file": "%s/%s.log" % (d, name)}}, open(out, "w"))
PYEOF
}

now() { date +%s.%N; }

echo "### Okta target: users per second, no rate limit ($N_USERS users, {SSHA} imported)"
echo
echo "| in flight | okta_ceiling (users/s) | dirmig run (users/s) | dirmig / ceiling |"
echo "|---|---|---|---|"
for c in $CONC; do
    start_okta
    out=$("$TESTDIR/okta_ceiling" "http://127.0.0.1:$OKTA_PORT" "$TESTDIR/token" \
        "$TESTDIR/bodies.jsonl" "$c") || die "okta_ceiling failed: $out"
    base=$(echo "$out" | awk '{printf "%.1f", $2 / $6}')
    start_okta
    config "c$c" SRC "$c" 100
    t0=$(now)
    "$DIRMIG" -c "$TESTDIR/c$c.json" run --no-progress > "$TESTDIR/c$c.out" 2>&1 ||
        die "dirmig run failed: $(tail -3 "$TESTDIR/c$c.out")"
    t1=$(now)
    created=$(stat_of created)
    [ "$created" = "$N_USERS" ] || die "dirmig created $created users, want $N_USERS"
    dm=$(awk -v n="$N_USERS" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", n / (b - a)}')
    ratio=$(awk -v a="$dm" -v b="$base" 'BEGIN{printf "%.2f", a / b}')
    say "concurrency $c: ceiling $base/s, dirmig $dm/s"
    echo "| $c | $base | $dm | $ratio |"
done
echo

say "rate governor: 600/min per bucket, 50% share, ${RL_SECS} s"
start_okta --rate-limit 600
config rl RLSRC 8 50
"$DIRMIG" -c "$TESTDIR/rl.json" run --no-progress --json > "$TESTDIR/rl.out" 2>&1 &
DM_PID=$!
sleep "$RL_SECS"
created=$(stat_of created)
r429=$(stat_of rate_limited)
kill -INT "$DM_PID"
wait "$DM_PID"
DM_PID=""
allowed=$((RL_SECS * 300 / 60))
share=$(awk -v c="$created" -v a="$allowed" 'BEGIN{printf "%.1f", 100 * c / a}')
say "created $created of $allowed allowed, 429s $r429"
echo "### Okta target: rate governor (limit 600/min per endpoint family, 50% share = 300/min)"
echo
echo "| run time | users created | allowed (300/min) | achieved share | 429s received |"
echo "|---|---|---|---|---|"
echo "| ${RL_SECS} s | $created | $allowed | ${share}% | $r429 |"
