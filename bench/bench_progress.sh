#!/bin/bash
# bench/bench_progress.sh [N_USERS] [N_GROUPS]: what progress reporting costs, same run, same
# machine. See bench/README.md and doc/benchmarks.md.
#
# A source slapd with N users (default 20000) and N_GROUPS groups, a target slapd that dirmig
# has already filled (one `dirmig run`), both dbnosync. Then, each timed 3 times (the
# median is kept):
#   count      the count-only search the users phase makes for its total: a paged search
#              of the users scope asking for no attribute ("1.1"), with ldapsearch
#   read       one paged read of the users scope with every attribute (what a run reads)
#   plan       dirmig plan, --progress none and run.progress_interval_s 0 (no reporter)
#   plan-j     dirmig plan, --progress=json and a log line every second (the count search,
#              the reporter thread, a store per entry)
#   rerun      dirmig run with nothing to change (verify_target never: the shortest path per
#              entry, so the share of progress is largest), progress off
#   rerun-l    the same with a log line every second (the reporter and a store per entry;
#              no count: nobody watches)
#   rerun-j    the same with --progress=json and a log line every second (and the count)
# Prints a markdown table on stdout; progress of the bench itself on stderr.
#
# Environment: DIRMIG (default ./dirmig of the build tree), PYTHON3, KEEP_TESTDIR=1.
set -u -o pipefail
umask 077

N_USERS=${1:-20000}
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
for t in slapd slapadd ldapsearch "$PYTHON3" /usr/bin/time; do
    command -v "$t" > /dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || die "missing tool: $t"
done

TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-bench-progress.XXXXXX") || die "mktemp failed"
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
median3() {
    printf '%s\n' "$@" | sort -g | sed -n 2p
}
pct() { # A B: (A - B) / B in percent
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%+.1f%%", 100 * (a - b) / b; else print "-" }'
}

say "generating $N_USERS users, $N_GROUPS groups"
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$S" --users "$N_USERS" \
    --groups "$N_GROUPS" --schemes ssha --seed 3 --ldif "$D/src.ldif" || die "gen_users failed"
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$T" --skeleton --ldif "$D/dst.ldif" ||
    die "gen_users failed"
slapd_start SRC "$S" "$D/src.ldif" dbnosync || die "source start failed"
slapd_start DST "$T" "$D/dst.ldif" dbnosync || die "target start failed"

config() { # OUT VERIFY INTERVAL
    cat > "$1" << EOF2
{
  "source": { "uri": "$SRC_URI", "base": "$S", "bind_dn": "cn=admin,$S",
              "bind_pw_file": "$SRC_PW_FILE", "page_size": 1000,
              "users":  { "base": "ou=people,$S", "filter": "(objectClass=inetOrgPerson)" },
              "groups": { "base": "ou=groups,$S" } },
  "target": { "uri": "$DST_URI", "base": "$T", "bind_dn": "cn=admin,$T",
              "bind_pw_file": "$DST_PW_FILE" },
  "state": { "path": "$W/bench.db" },
  "run": { "batch_size": 500, "verify_target": "$2", "progress_interval_s": $3 },
  "log": { "level": "info", "file": "$W/bench.log" }
}
EOF2
}
config "$W/fill.json" always 0
config "$W/off.json" never 0
config "$W/on.json" never 1

say "filling the target (dirmig run)"
"$DIRMIG" -c "$W/fill.json" run --json > "$W/fill.out" 2> "$W/fill.err" ||
    die "the first run failed: $(tail -n 3 "$W/fill.err")"

# search ATTRS...: one paged search of the users scope to /dev/null (a script, so that
# /usr/bin/time can run it)
cat > "$W/search" << EOF2
#!/bin/sh
exec ldapsearch -x -LLL -o ldif-wrap=no -E pr=1000/noprompt -H "$SRC_URI" \\
    -D "cn=admin,$S" -y "$SRC_PW_FILE" -b "ou=people,$S" '(objectClass=inetOrgPerson)' "\$@" \\
    > /dev/null
EOF2
chmod 700 "$W/search"
timed() { # TAG COMMAND...: "wall cpu" seconds (cpu = user + system of the command)
    local tag=$1
    shift
    /usr/bin/time -f '%e %U %S' -o "$W/time" "$@" > "$W/last.out" 2> "$W/last.err" ||
        die "$tag failed: $(tail -n 3 "$W/last.err")"
    awk '{ printf "%.2f %.2f", $1, $2 + $3 }' "$W/time"
}
check_json() { # the progress lines of the last command end at done == total
    "$PYTHON3" - "$W/last.err" << 'EOF2' || die "progress lines wrong"
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"type":"progress"')]
fin = [l for l in ls if l["final"]]
assert fin and all(l["done"] == l["total"] for l in fin), fin
EOF2
}

ROUNDS=${ROUNDS:-5}
declare -A T
steps="count read plan plan-j rerun rerun-l rerun-j"
for i in $(seq 1 "$ROUNDS"); do
    say "round $i of $ROUNDS"
    T[count]+="$(timed count "$W/search" 1.1);"
    T[read]+="$(timed read "$W/search" '*' entryUUID);"
    T[plan]+="$(timed plan "$DIRMIG" -c "$W/off.json" plan --progress none --json);"
    T[plan-j]+="$(timed plan-j "$DIRMIG" -c "$W/on.json" plan --progress=json --json);"
    check_json
    T[rerun]+="$(timed rerun "$DIRMIG" -c "$W/off.json" run --progress none --json);"
    T[rerun-l]+="$(timed rerun-l "$DIRMIG" -c "$W/on.json" run --json);"
    T[rerun-j]+="$(timed rerun-j "$DIRMIG" -c "$W/on.json" run --progress=json --json);"
    check_json
done
med() { # STEP FIELD(1 wall, 2 cpu): the median over the rounds
    printf '%s' "${T[$1]}" | tr ';' '\n' | awk -v f="$2" 'NF { print $f }' | sort -g |
        awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
all() { # STEP: every round's wall/cpu
    printf '%s' "${T[$1]}" | tr ';' '\n' | awk 'NF { printf "%s%s/%s", sep, $1, $2; sep = " " }'
}
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
row() { # STEP WHAT BASE
    local w c
    w=$(med "$1" 1)
    c=$(med "$1" 2)
    if [ -n "$3" ]; then
        echo "| $1 | $2 | $w | $c | $(pct "$w" "$(med "$3" 1)") | $(pct "$c" "$(med "$3" 2)") |"
    else
        echo "| $1 | $2 | $w | $c | | |"
    fi
}
cat << EOF2
### Progress: the count search and the reporter ($N_USERS users, $N_GROUPS groups)

$(date -u +%Y-%m-%d) · $(nproc) CPU ($cpu) · load before: $(cut -d' ' -f1-3 /proc/loadavg) · $("$DIRMIG" --version 2> /dev/null | head -n 1) · median of $ROUNDS rounds

| step | what | wall s | CPU s | wall vs | CPU vs |
|---|---|---:|---:|---:|---:|
$(row count 'paged search of the users, attributes "1.1" (the progress total), ldapsearch' read)
$(row read 'paged search of the users, every attribute, ldapsearch' '')
$(row plan 'dirmig plan, progress off' '')
$(row plan-j 'dirmig plan, --progress=json and a log line a second (with the count)' plan)
$(row rerun 'no-change dirmig run, progress off' '')
$(row rerun-l 'no-change dirmig run, a log line a second (no count)' rerun)
$(row rerun-j 'no-change dirmig run, --progress=json and a log line a second (with the count)' rerun)

"vs": against the step named in the table above it (read, plan, rerun). CPU is user + system
of the command (dirmig: both threads; ldapsearch: the client only, not slapd).
All rounds (wall/CPU s): $(for s in $steps; do printf '%s: %s; ' "$s" "$(all "$s")"; done)
EOF2
