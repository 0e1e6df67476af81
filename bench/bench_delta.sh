#!/bin/bash
# bench/bench_delta.sh [N_USERS] [N_GROUPS]: a delta reconcile (source.delta, RFC 4533
# refreshOnly against slapd's syncprov) against a full reconcile of the same directory,
# same run, same machine. See bench/README.md and doc/benchmarks.md.
#
# A source slapd with syncprov (session log of 10,000 operations) holding N users and
# N_GROUPS groups, a target slapd that one `dirmig run` with source.delta has filled (so the
# journal holds a sync cookie), both dbnosync. Then 1% of the users change in the source:
# 95% of those are modified (sn, description), 2.5% deleted, 2.5% added. The target and the
# journal are saved as they are, and each measured run starts from that saved state (the
# target reloaded with slapadd, the journal copied back), so that every run has the same
# changes to make:
#   full      dirmig run, source.delta false, run.verify_target "always" (the default: the
#             whole target read beside the whole source)
#   full-j    dirmig run, source.delta false, run.verify_target "never" (the journal answers)
#   delta     dirmig run, source.delta true: the server answers from its session log (the
#             changed entries and the deleted UUIDs)
#   delta-p   the same after a restart of the source, which empties the session log: the
#             server answers with a present phase (the changed entries and the UUIDs of
#             every unchanged one); deletions come from comparing them with the journal
#   writes    the floor of any reconcile: ldapmodify of the same modifies and adds, rebased,
#             into the saved target (no read at all)
# Each timed 3 times (the median is kept); each run's --json is checked for the work done.
# Prints a markdown table on stdout (ratios to `full`); progress on stderr.
#
# Environment: DIRMIG (default ./dirmig of the build tree), PYTHON3, KEEP_TESTDIR=1.
set -u -o pipefail
umask 077

N_USERS=${1:-100000}
N_GROUPS=${2:-$((N_USERS / 100))}
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$here/.." && pwd)
: "${DIRMIG:=$top_srcdir/dirmig}"
: "${PYTHON3:=python3}"
export LDAPNOINIT=1

die() {
    echo "bench: $*" >&2
    exit 1
}
say() {
    echo "bench: $*" >&2
}
[ -x "$DIRMIG" ] || die "no dirmig at $DIRMIG (build it, or set DIRMIG)"
for t in slapd slapadd slapcat ldapmodify "$PYTHON3"; do
    command -v "$t" > /dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || die "missing tool: $t"
done
[ "$N_USERS" -ge 1000 ] || die "N_USERS must be at least 1000 (1% of it changes)"

TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-bench-delta.XXXXXX") || die "mktemp failed"
export TESTDIR
# shellcheck source=../tests/harness/slapd.sh
. "$top_srcdir/tests/harness/slapd.sh"
cleanup() {
    trap - EXIT INT TERM
    slapd_stop_all
    if [ "${KEEP_TESTDIR:-0}" = 1 ]; then
        say "kept $TESTDIR"
    else
        rm -rf "$TESTDIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

S=dc=src,dc=example
T=dc=dst,dc=example
D=$TESTDIR/data
W=$TESTDIR/work
mkdir -p "$D" "$W"

now() {
    date +%s.%N
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'
}
median3() {
    printf '%s\n' "$@" | sort -g | sed -n 2p
}

say "generating $N_USERS users, $N_GROUPS groups"
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$S" --users "$N_USERS" \
    --groups "$N_GROUPS" --schemes ssha --seed 3 --ldif "$D/src.ldif" || die "gen_users failed"
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$T" --skeleton --ldif "$D/dst.ldif" ||
    die "gen_users failed"
slapd_start SRC "$S" "$D/src.ldif" syncprov dbnosync || die "source start failed"
slapd_start DST "$T" "$D/dst.ldif" dbnosync || die "target start failed"

config() { # OUT DELTA VERIFY
    cat > "$1" << EOF
{
  "source": { "uri": "$SRC_URI", "base": "$S", "bind_dn": "cn=admin,$S",
              "bind_pw_file": "$SRC_PW_FILE", "page_size": 1000, "delta": $2,
              "users":  { "base": "ou=people,$S", "filter": "(objectClass=inetOrgPerson)" },
              "groups": { "base": "ou=groups,$S" } },
  "target": { "uri": "$DST_URI", "base": "$T", "bind_dn": "cn=admin,$T",
              "bind_pw_file": "$DST_PW_FILE" },
  "state": { "path": "$W/bench.db" },
  "run": { "batch_size": 500, "verify_target": "$3" },
  "log": { "level": "info", "file": "$W/bench.log" }
}
EOF
}
config "$W/full.json" false always
config "$W/fullj.json" false never
config "$W/delta.json" true always

say "filling the target (dirmig run with source.delta: the journal keeps a sync cookie)"
"$DIRMIG" -c "$W/delta.json" run --json > "$W/fill.out" 2> "$W/fill.err" ||
    die "the first run failed: $(tail -n 3 "$W/fill.err")"

# 1% of the users change: 95% modified, 2.5% deleted, 2.5% added.
n_changed=$((N_USERS / 100))
n_del=$((n_changed / 40))
n_add=$n_del
n_mod=$((n_changed - n_del - n_add))
say "changing $n_changed users in the source ($n_mod modified, $n_del deleted, $n_add added)"
"$PYTHON3" - "$N_USERS" "$n_mod" "$n_del" "$n_add" "$S" > "$D/changes.ldif" << 'EOF'
import random, sys
n, n_mod, n_del, n_add, s = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
pick = random.Random(7).sample(range(n), n_mod + n_del)
for i in pick[:n_mod]:
    print("dn: uid=user%05d,ou=people,%s\nchangetype: modify\nreplace: sn\nsn: Changed %d\n-\n"
          "replace: description\ndescription: bench delta\n" % (i, s, i))
for i in pick[n_mod:]:
    print("dn: uid=user%05d,ou=people,%s\nchangetype: delete\n" % (i, s))
for i in range(n_add):
    print("dn: uid=new%05d,ou=people,%s\nchangetype: add\nobjectClass: inetOrgPerson\n"
          "uid: new%05d\ncn: New %d\nsn: New\n" % (i, s, i, i))
EOF
ldapmodify -x -H "$SRC_URI" -D "cn=admin,$S" -y "$SRC_PW_FILE" -f "$D/changes.ldif" \
    > "$W/changes.log" 2>&1 || die "ldapmodify failed: $(tail -n 3 "$W/changes.log")"

# the writes alone, rebased to the target (the reconcile deletes nothing)
"$PYTHON3" - "$D/changes.ldif" "$S" "$T" > "$D/writes.ldif" << 'EOF'
import sys
for rec in open(sys.argv[1]).read().split("\n\n"):
    if rec.strip() and "changetype: delete" not in rec:
        print(rec.replace(sys.argv[2], sys.argv[3]) + "\n")
EOF
say "saving the target and the journal"
slapd_dump DST "$D/dst-filled.ldif" || die "slapcat of the target failed"
[ ! -e "$W/bench.db-wal" ] || [ ! -s "$W/bench.db-wal" ] || die "the journal has an open WAL"
cp "$W/bench.db" "$D/bench.db.saved"

restore() {
    slapd_reload DST "$D/dst-filled.ldif" > /dev/null || die "reloading the target failed"
    rm -f "$W/bench.db-wal" "$W/bench.db-shm"
    cp "$D/bench.db.saved" "$W/bench.db"
}
timed() { # TAG COMMAND...: seconds; --json in $W/TAG.out
    local tag=$1 t0 t1
    shift
    t0=$(now)
    "$@" > "$W/$tag.out" 2> "$W/$tag.err" || die "$tag failed: $(tail -n 3 "$W/$tag.err")"
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
check() { # TAG MODE: the run did the whole work, and (delta) read only the changes
    "$PYTHON3" - "$W/$1.out" "$2" "$n_mod" "$n_del" "$n_add" "$N_USERS" << 'EOF' ||
import json, sys
r = json.load(open(sys.argv[1]))
mode = sys.argv[2]
n_mod, n_del, n_add, n = (int(x) for x in sys.argv[3:7])
u = r["users"]
assert r["status"] == "done", r["status"]
assert u["updated"] == n_mod and u["created"] == n_add and u["failed"] == 0, u
if mode == "delta":
    assert u["read"] == n_mod + n_add, u
    assert r["groups"]["read"] == 0, r["groups"]
    assert r["source_deleted"] == n_del, r["source_deleted"]
    assert r["source_read"] == {"users": "delta", "groups": "delta"}, r["source_read"]
else:
    assert u["read"] == n - n_del + n_add, u
EOF
        die "$1 did not do what it should: see $W/$1.out"
}

declare -a f fj d dp wr
for i in 1 2 3; do
    say "round $i"
    restore
    wr+=("$(timed writes ldapmodify -x -H "$DST_URI" -D "cn=admin,$T" -y "$DST_PW_FILE" \
        -f "$D/writes.ldif")")
    restore
    f+=("$(timed full "$DIRMIG" -c "$W/full.json" run --json)")
    check full full
    restore
    fj+=("$(timed fullj "$DIRMIG" -c "$W/fullj.json" run --json)")
    check fullj full
    restore
    d+=("$(timed delta "$DIRMIG" -c "$W/delta.json" run --json)")
    check delta delta
done
[ "$(grep -c 'people,.*: a present phase' "$W/bench.log")" = 0 ] ||
    die "the session log did not answer the delta runs"
say "restarting the source (its session log starts empty: the next answers are present phases)"
slapd_restart SRC || die "restarting the source failed"
for i in 1 2 3; do
    say "round $i (present phase)"
    restore
    dp+=("$(timed deltap "$DIRMIG" -c "$W/delta.json" run --json)")
    check deltap delta
done
[ "$(grep -c 'people,.*: a present phase' "$W/bench.log")" = 3 ] ||
    die "the delta-p runs were not answered with present phases"
F=$(median3 "${f[@]}")
FJ=$(median3 "${fj[@]}")
DL=$(median3 "${d[@]}")
DP=$(median3 "${dp[@]}")
WR=$(median3 "${wr[@]}")

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
cat << EOF
### Delta reconcile against a full reconcile ($N_USERS users, $N_GROUPS groups, 1% of the users changed)

$(date -u +%Y-%m-%d) · $(nproc) CPU ($cpu) · load before: $(cut -d' ' -f1-3 /proc/loadavg) · $("$DIRMIG" --version 2> /dev/null | head -n 1)

Changes in the source: $n_mod users modified, $n_del deleted, $n_add added. Every run
starts from the same target and journal and makes the same $((n_mod + n_add)) writes.

| run | what | wall s (median of 3) | vs full |
|---|---|---:|---:|
| full | source.delta false, verify_target always (whole source and target read) | $F | 1.000 |
| full-j | source.delta false, verify_target never (whole source read, journal answers) | $FJ | $(ratio "$FJ" "$F") |
| delta | source.delta, syncprov session log: $((n_mod + n_add)) entries read, $n_del deletions named | $DL | $(ratio "$DL" "$F") |
| delta-p | source.delta, present phase (session log empty after a restart) | $DP | $(ratio "$DP" "$F") |
| writes | ldapmodify of the same $((n_mod + n_add)) modifies and adds, no read (the floor) | $WR | $(ratio "$WR" "$F") |

All runs (s): full ${f[*]}; full-j ${fj[*]}; delta ${d[*]}; delta-p ${dp[*]}; writes ${wr[*]}.
EOF
