#!/bin/bash
# bench/bench_plan.sh [N_USERS] [N_GROUPS]: what seeing the target costs, same run, same
# machine. See bench/README.md and doc/benchmarks.md.
#
# A source slapd with N users and N_GROUPS groups, a target slapd that dirmig has already
# filled (one `dirmig run`), both dbnosync so that reads are what is measured. Then, each
# timed 3 times (the median is kept):
#   baseline   one paged read of the source: ldapsearch -E pr=1000 of the users and of the
#              groups to /dev/null (the source read alone, nothing else)
#   plan       dirmig plan with run.verify_target "always": the source read, the map and the
#              whole target read beside it, compared object by object
#   plan-j     dirmig plan with run.verify_target "never": the journal answers
#   rerun      dirmig run with "never", nothing changed: the no-change rerun
#   rerun-v    dirmig run with "always", nothing changed
# Prints a markdown table on stdout (ratios to the baseline); progress on stderr.
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
for t in slapd slapadd ldapsearch "$PYTHON3"; do
    command -v "$t" > /dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || die "missing tool: $t"
done

TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-bench-plan.XXXXXX") || die "mktemp failed"
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
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}
median3() {
    printf '%s\n' "$@" | sort -g | sed -n 2p
}

say "generating $N_USERS users, $N_GROUPS groups"
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$S" --users "$N_USERS" \
    --groups "$N_GROUPS" --schemes ssha --seed 3 --ldif "$D/src.ldif" || die "gen_users failed"
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$T" --skeleton --ldif "$D/dst.ldif" ||
    die "gen_users failed"
slapd_start SRC "$S" "$D/src.ldif" dbnosync || die "source start failed"
slapd_start DST "$T" "$D/dst.ldif" dbnosync || die "target start failed"

config() { # OUT VERIFY
    cat > "$1" << EOF
{
  "source": { "uri": "$SRC_URI", "base": "$S", "bind_dn": "cn=admin,$S",
              "bind_pw_file": "$SRC_PW_FILE", "page_size": 1000,
              "users":  { "base": "ou=people,$S", "filter": "(objectClass=inetOrgPerson)" },
              "groups": { "base": "ou=groups,$S" } },
  "target": { "uri": "$DST_URI", "base": "$T", "bind_dn": "cn=admin,$T",
              "bind_pw_file": "$DST_PW_FILE" },
  "state": { "path": "$W/bench.db" },
  "run": { "batch_size": 500, "verify_target": "$2" },
  "log": { "level": "info", "file": "$W/bench.log" }
}
EOF
}
config "$W/always.json" always
config "$W/never.json" never

say "filling the target (dirmig run)"
"$DIRMIG" -c "$W/always.json" run --json > "$W/fill.out" 2> "$W/fill.err" ||
    die "the first run failed: $(tail -n 3 "$W/fill.err")"

baseline() {
    local ou
    for ou in people groups; do
        ldapsearch -x -LLL -o ldif-wrap=no -E pr=1000/noprompt -H "$SRC_URI" \
            -D "cn=admin,$S" -y "$SRC_PW_FILE" -b "ou=$ou,$S" -s one '(objectClass=*)' '*' \
            entryUUID > /dev/null || die "ldapsearch failed"
    done
}
timed() { # TAG COMMAND...: seconds
    local tag=$1 t0 t1
    shift
    t0=$(now)
    "$@" > "$W/last.out" 2> "$W/last.err" || {
        [ $? = 65 ] || die "$tag failed: $(tail -n 3 "$W/last.err")"
    }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
check_rerun() { # the measured reruns must really have written nothing
    "$PYTHON3" - "$W/last.out" << 'EOF' || die "a no-change rerun changed something"
import json, sys
r = json.load(open(sys.argv[1]))
t = r["total"]
assert t.get("created", t.get("create")) == 0 and t.get("updated", t.get("update")) == 0, t
EOF
}

declare -a b p pj r rv
for i in 1 2 3; do
    say "round $i"
    b+=("$(timed base baseline)")
    [ -n "${b[-1]}" ] || exit 1
    p+=("$(timed plan "$DIRMIG" -c "$W/always.json" plan --json)")
    check_rerun
    pj+=("$(timed planj "$DIRMIG" -c "$W/never.json" plan --json)")
    check_rerun
    r+=("$(timed rerun "$DIRMIG" -c "$W/never.json" run --json)")
    check_rerun
    rv+=("$(timed rerunv "$DIRMIG" -c "$W/always.json" run --json)")
    check_rerun
done
B=$(median3 "${b[@]}")
P=$(median3 "${p[@]}")
PJ=$(median3 "${pj[@]}")
R=$(median3 "${r[@]}")
RV=$(median3 "${rv[@]}")
entries=$((N_USERS + N_GROUPS))

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
cat << EOF
### Seeing the target: plan and reruns against one paged read of the source ($N_USERS users, $N_GROUPS groups)

$(date -u +%Y-%m-%d) · $(nproc) CPU ($cpu) · load before: $(cut -d' ' -f1-3 /proc/loadavg) · $("$DIRMIG" --version 2> /dev/null | head -n 1)

| step | what | wall s (median of 3) | vs one source read |
|---|---|---:|---:|
| baseline | ldapsearch -E pr=1000 of users and groups to /dev/null | $B | 1.00 |
| plan | plan, target read beside the source (verify_target always) | $P | $(ratio "$P" "$B") |
| plan-j | plan, journal only (verify_target never) | $PJ | $(ratio "$PJ" "$B") |
| rerun | no-change run, verify_target never | $R | $(ratio "$R" "$B") |
| rerun-v | no-change run, verify_target always | $RV | $(ratio "$RV" "$B") |

All runs (s): baseline ${b[*]}; plan ${p[*]}; plan-j ${pj[*]}; rerun ${r[*]}; rerun-v ${rv[*]}.
EOF
