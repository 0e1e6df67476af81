#!/bin/bash
# bench/bench_mem.sh [POINTS]: memory and time per user of `dirmig run` as the directory
# grows: LDAP -> LDAP at each point of POINTS (default "10000 100000 1000000" users, with
# users/1000 groups), each from its own source slapd into a fresh dbnosync target, under
# /usr/bin/time -v. Prints a markdown table on stdout (progress on stderr): wall time, peak
# RSS, µs per entry, peak RSS as a multiple of the first point's and time per entry as a
# multiple of the second point's (the aims of issue 15: 1M peak RSS at most 1.5x the 10k
# figure and at most 64 MiB, time per user at 1M within 10% of 100k).
#
# A million users takes about 15 minutes on 2 shared cores (generating and slapadd of the
# source included) and about 6 GiB of disk under TMPDIR. Environment: DIRMIG (default
# ./dirmig), PYTHON3, KEEP_TESTDIR=1. Results: doc/benchmarks.md.
set -u -o pipefail
umask 077

POINTS=${1:-10000 100000 1000000}
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$here/.." && pwd)
: "${DIRMIG:=$top_srcdir/dirmig}"
: "${PYTHON3:=python3}"
TIME_BIN=/usr/bin/time
export LDAPNOINIT=1
export SLAPD_MAXSIZE=$((8 * 1024 * 1024 * 1024)) # a million entries pass slapd.sh's 1 GiB

die() {
    echo "bench: $*" >&2
    exit 1
}
say() {
    echo "bench: $*" >&2
}
[ -x "$DIRMIG" ] || die "no dirmig at $DIRMIG (build it, or set DIRMIG)"
[ -x "$TIME_BIN" ] || die "$TIME_BIN missing: apt-get install -y time"

TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-bench-mem.XXXXXX") || die "mktemp failed"
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

SRC_SUF=dc=src,dc=example
DST_SUF=dc=dst,dc=example
D=$TESTDIR/data
W=$TESTDIR/work
mkdir -p "$D" "$W"
now() { date +%s.%N; }

"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$DST_SUF" --skeleton \
    --ldif "$D/dst.ldif" || die "gen_users.py failed"

rows=()
first_rss="" second_us=""
for n in $POINTS; do
    g=$((n / 1000))
    [ "$g" -ge 1 ] || g=1
    say "$n users, $g groups: generating the source"
    "$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$SRC_SUF" --users "$n" \
        --groups "$g" --schemes ssha --seed 3 --ldif "$D/src.ldif" || die "gen_users.py failed"
    slapd_start SRC "$SRC_SUF" "$D/src.ldif" dbnosync || die "source start failed"
    rm -f "$D/src.ldif"
    entries=$(($(slapd_count SRC "ou=people,$SRC_SUF") - 1 + $(slapd_count SRC "ou=groups,$SRC_SUF") - 1))
    slapd_start DST "$DST_SUF" "$D/dst.ldif" dbnosync || die "target start failed"
    cat > "$W/m$n.json" << EOF
{
  "source": { "uri": "$SRC_URI", "base": "$SRC_SUF",
              "bind_dn": "cn=admin,$SRC_SUF", "bind_pw_file": "$SRC_PW_FILE", "page_size": 1000,
              "users":  { "base": "ou=people,$SRC_SUF", "filter": "(objectClass=inetOrgPerson)" },
              "groups": { "base": "ou=groups,$SRC_SUF" } },
  "target": { "uri": "$DST_URI", "base": "$DST_SUF",
              "bind_dn": "cn=admin,$DST_SUF", "bind_pw_file": "$DST_PW_FILE" },
  "state": { "path": "$W/m$n.db" },
  "run": { "batch_size": 500 },
  "log": { "level": "info", "file": "$W/m$n.log" }
}
EOF
    say "$n users: dirmig run ($entries entries)"
    t0=$(now)
    "$TIME_BIN" -v -o "$W/m$n.time" "$DIRMIG" -c "$W/m$n.json" run --json --progress none \
        > "$W/m$n.out" 2> "$W/m$n.err" || {
        tail -n 5 "$W/m$n.err" >&2
        die "dirmig run ($n) failed"
    }
    t1=$(now)
    got=$(($(slapd_count DST "ou=people,$DST_SUF") - 1 + $(slapd_count DST "ou=groups,$DST_SUF") - 1))
    [ "$got" -ge "$entries" ] || die "the target holds $got of $entries entries"
    slapd_stop DST
    slapd_stop SRC
    rm -rf "$TESTDIR/DST" "$TESTDIR/SRC"
    rss=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$W/m$n.time")
    read -r secs us <<< "$(awk -v a="$t0" -v b="$t1" -v n="$entries" \
        'BEGIN { printf "%.1f %.1f", b - a, (b - a) * 1e6 / n }')"
    [ -n "$first_rss" ] || first_rss=$rss
    if [ -z "$second_us" ] && [ "${#rows[@]}" = 1 ]; then
        second_us=$us
    fi
    rss_x=$(awk -v a="$rss" -v b="$first_rss" 'BEGIN { printf "%.2f", a / b }')
    us_x=$([ -n "$second_us" ] && awk -v a="$us" -v b="$second_us" 'BEGIN { printf "%.2f", a / b }' || echo -)
    say "$n users: ${secs} s, ${us} µs/entry, peak RSS $((rss / 1024)) MiB"
    rows+=("| $n | $g | $entries | $secs | $us | $us_x | $((rss / 1024)) | $rss_x |")
done

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
cat << EOF
### dirmig run: memory and time per entry as the directory grows (dbnosync target)

$(date -u +%Y-%m-%d) · $(nproc) CPU ($cpu) · $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM · load at the end $(cut -d' ' -f1-3 /proc/loadavg) · $("$DIRMIG" --version 2> /dev/null | head -n 1 || echo dirmig)

| users | groups | entries | wall s | µs / entry | µs / entry vs the 2nd point | peak RSS MiB | peak RSS vs the 1st point |
|---:|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${rows[@]}")
EOF
