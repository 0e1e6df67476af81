#!/bin/bash
# bench/bench_ldap.sh [N_USERS] [N_GROUPS]: dirmig against the raw LDAP pipeline, same run,
# same machine, same source server. See bench/README.md and doc/benchmarks.md.
#
# For each target kind (durable: default mdb with fsync; nosync: mdb dbnosync), on a fresh
# target seeded with the suffix entry and ou=people/ou=groups:
#   baseline   ldapsearch -E pr=1000/noprompt (people, then groups) | sed (rebase) | ldapadd
#   parallel   (nosync only) 4 ldapadd processes, each loading a quarter of the pre-exported,
#              pre-split LDIF; only the load is timed
#   dirmig     dirmig run (page_size 1000, batch_size 500), under /usr/bin/time -v
# Then the peak RSS of dirmig at 10k users (extra source) and at N_USERS.
# Prints a markdown table on stdout; progress goes to stderr.
#
# Environment: DIRMIG (default ./dirmig from the build tree), PYTHON3, KEEP_TESTDIR=1,
# BENCH_SKIP_10K=1 (skip the separate 10k RSS run).
set -u -o pipefail
umask 077

N_USERS=${1:-100000}
N_GROUPS=${2:-1000}
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$here/.." && pwd)
: "${DIRMIG:=$top_srcdir/dirmig}"
: "${PYTHON3:=python3}"
TIME_BIN=/usr/bin/time
export LDAPNOINIT=1

die() {
    echo "bench: $*" >&2
    exit 1
}
say() {
    echo "bench: $*" >&2
}

[ -x "$DIRMIG" ] || die "no dirmig at $DIRMIG (build it, or set DIRMIG)"
[ -x "$TIME_BIN" ] || die "$TIME_BIN missing: apt-get install -y time"
for t in slapd slapadd ldapsearch ldapadd "$PYTHON3"; do
    command -v "$t" > /dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || die "missing tool: $t"
done

TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-bench.XXXXXX") || die "mktemp failed"
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

now() {
    date +%s.%N
}
# elapsed START END -> seconds with 2 decimals
elapsed() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}
rate() {
    awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

gen() {
    "$PYTHON3" "$top_srcdir/tests/data/gen_users.py" "$@" || die "gen_users.py failed"
}

say "generating $N_USERS users, $N_GROUPS groups ({SSHA} only)"
gen --suffix "$SRC_SUF" --users "$N_USERS" --groups "$N_GROUPS" --schemes ssha --seed 3 \
    --ldif "$D/src.ldif"
gen --suffix "$DST_SUF" --skeleton --ldif "$D/dst.ldif"
slapd_start SRC "$SRC_SUF" "$D/src.ldif" || die "source start failed"
n_entries=$(($(slapd_count SRC "ou=people,$SRC_SUF") - 1 + $(slapd_count SRC "ou=groups,$SRC_SUF") - 1))
say "source holds $n_entries users+groups"

# export_source OUT: the baseline's read side (paged search, rebased DNs).
export_source() {
    local ou
    for ou in people groups; do
        ldapsearch -x -LLL -o ldif-wrap=no -E pr=1000/noprompt -H "$SRC_URI" \
            -D "$SRC_ROOTDN" -y "$SRC_PW_FILE" -b "ou=$ou,$SRC_SUF" -s one '(objectClass=*)' '*' |
            grep -v '^# ' | sed "s/,$SRC_SUF\$/,$DST_SUF/; s/,$SRC_SUF\\([,+]\\)/,$DST_SUF\\1/g"
    done
}

# fresh_target NAME KIND: a new seeded target (KIND durable|nosync).
fresh_target() {
    local opt=""
    [ "$2" = nosync ] && opt=dbnosync
    # shellcheck disable=SC2086
    slapd_start "$1" "$DST_SUF" "$D/dst.ldif" $opt || die "target $1 start failed"
}

# check_target NAME: all entries arrived.
check_target() {
    local got
    got=$(($(slapd_count "$1" "ou=people,$DST_SUF") - 1 + $(slapd_count "$1" "ou=groups,$DST_SUF") - 1))
    [ "$got" -ge "$n_entries" ] || say "WARNING: $1 holds $got of $n_entries entries"
}

# run_dirmig SRCNAME DSTNAME TAG: prints "seconds rss_kib".
run_dirmig() {
    local src=$1 dst=$2 tag=$3 t0 t1 su sp tu tp
    su="${src}_URI" sp="${src}_PW_FILE" tu="${dst}_URI" tp="${dst}_PW_FILE"
    cat > "$W/$tag.json" << EOF
{
  "source": { "uri": "${!su}", "base": "$SRC_SUF",
              "bind_dn": "cn=admin,$SRC_SUF", "bind_pw_file": "${!sp}", "page_size": 1000,
              "users":  { "base": "ou=people,$SRC_SUF", "filter": "(objectClass=inetOrgPerson)" },
              "groups": { "base": "ou=groups,$SRC_SUF" } },
  "target": { "uri": "${!tu}", "base": "$DST_SUF",
              "bind_dn": "cn=admin,$DST_SUF", "bind_pw_file": "${!tp}" },
  "state": { "path": "$W/$tag.db" },
  "run": { "batch_size": 500 },
  "log": { "level": "info", "file": "$W/$tag.log" }
}
EOF
    t0=$(now)
    "$TIME_BIN" -v -o "$W/$tag.time" "$DIRMIG" -c "$W/$tag.json" run --json \
        > "$W/$tag.out" 2> "$W/$tag.err" || {
        tail -n 5 "$W/$tag.err" >&2
        die "dirmig run ($tag) failed"
    }
    t1=$(now)
    echo "$(elapsed "$t0" "$t1") $(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$W/$tag.time")"
}

rows=()
for kind in durable nosync; do
    # (a) baseline pipeline
    fresh_target "B_$kind" "$kind"
    say "[$kind] baseline ldapsearch | ldapadd"
    bu="B_${kind}_URI" bp="B_${kind}_PW_FILE"
    t0=$(now)
    export_source | ldapadd -x -c -H "${!bu}" -D "cn=admin,$DST_SUF" -y "${!bp}" \
        > "$W/base-$kind.log" 2>&1 || say "ldapadd reported errors (see $W/base-$kind.log)"
    t1=$(now)
    base_s=$(elapsed "$t0" "$t1")
    check_target "B_$kind"
    slapd_stop "B_$kind"
    rows+=("| $kind | ldapsearch \\| ldapadd (baseline) | $n_entries | $base_s | $(rate "$n_entries" "$base_s") | 1.00 | - |")

    # (b) four parallel ldapadd (nosync only), load time only
    if [ "$kind" = nosync ]; then
        say "[$kind] 4 x ldapadd in parallel"
        export_source > "$D/export.ldif"
        "$PYTHON3" - "$D/export.ldif" "$D/part" << 'EOF' || die "split failed"
import sys
text = open(sys.argv[1], encoding="utf-8").read()
entries = [e for e in text.split("\n\n") if e.strip()]
for i in range(4):
    with open("%s%d.ldif" % (sys.argv[2], i), "w", encoding="utf-8") as f:
        f.write("\n\n".join(entries[i::4]) + "\n\n")
EOF
        fresh_target "P_$kind" "$kind"
        pu="P_${kind}_URI" pp="P_${kind}_PW_FILE"
        t0=$(now)
        pids=""
        for i in 0 1 2 3; do
            ldapadd -x -c -H "${!pu}" -D "cn=admin,$DST_SUF" -y "${!pp}" -f "$D/part$i.ldif" \
                > "$W/par-$i.log" 2>&1 &
            pids="$pids $!"
        done
        for p in $pids; do
            wait "$p" || say "a parallel ldapadd reported errors"
        done
        t1=$(now)
        par_s=$(elapsed "$t0" "$t1")
        check_target "P_$kind"
        slapd_stop "P_$kind"
        rows+=("| $kind | 4 x ldapadd, pre-split LDIF (load only) | $n_entries | $par_s | $(rate "$n_entries" "$par_s") | $(ratio "$par_s" "$base_s") | - |")
    fi

    # (c) dirmig
    fresh_target "M_$kind" "$kind"
    say "[$kind] dirmig run"
    read -r dm_s dm_rss <<< "$(run_dirmig SRC "M_$kind" "dirmig-$kind")"
    check_target "M_$kind"
    slapd_stop "M_$kind"
    rows+=("| $kind | dirmig run | $n_entries | $dm_s | $(rate "$n_entries" "$dm_s") | $(ratio "$dm_s" "$base_s") | $((dm_rss / 1024)) |")
    eval "rss_main_$kind=$dm_rss"
done

# Peak RSS at 10k users (separate, smaller source) next to the main size.
rss_rows=("| $N_USERS | $N_GROUPS | $((rss_main_durable / 1024)) | $((rss_main_nosync / 1024)) |")
if [ "$N_USERS" != 10000 ] && [ "${BENCH_SKIP_10K:-0}" != 1 ]; then
    say "10k users: peak RSS"
    slapd_stop SRC
    gen --suffix "$SRC_SUF" --users 10000 --groups 100 --schemes ssha --seed 3 \
        --ldif "$D/src10k.ldif"
    slapd_start S10K "$SRC_SUF" "$D/src10k.ldif" || die "10k source start failed"
    fresh_target T10K durable
    read -r s10 rss10 <<< "$(run_dirmig S10K T10K dirmig-10k)"
    slapd_stop T10K
    fresh_target T10KN nosync
    read -r s10n rss10n <<< "$(run_dirmig S10K T10KN dirmig-10k-nosync)"
    rss_rows=("| 10000 | 100 | $((rss10 / 1024)) | $((rss10n / 1024)) |" "${rss_rows[@]}")
    say "10k: durable ${s10}s, nosync ${s10n}s"
fi

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
slapd_ver=$(dpkg-query -W -f '${Version}' slapd 2> /dev/null || echo unknown)
cat << EOF
### dirmig LDAP -> LDAP benchmark ($N_USERS users, $N_GROUPS groups)

$(date -u +%Y-%m-%d) · $(nproc) CPU ($cpu) · $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM · slapd $slapd_ver (mdb) · $("$DIRMIG" --version 2> /dev/null | head -n 1 || echo dirmig)

| target | method | entries | wall s | entries/s | time vs baseline | dirmig peak RSS MiB |
|---|---|---:|---:|---:|---:|---:|
$(printf '%s\n' "${rows[@]}")

Peak RSS of \`dirmig run\` (/usr/bin/time -v, MiB):

| users | groups | durable target | nosync target |
|---:|---:|---:|---:|
$(printf '%s\n' "${rss_rows[@]}")
EOF
