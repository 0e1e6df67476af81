#!/bin/bash
# bench/bench_map.sh [N_ENTRIES] [LDAP_READ_RATE]: map-engine throughput on one core.
#
# Builds bench/bench_map (make, in the build tree), then maps N generated inetOrgPerson
# entries (default 200000) through a 15-attribute map with templates, regexes, a lookup and
# constraints, and prints one line: entries/s/core for map_apply alone and for
# map_apply + map_check. Give LDAP_READ_RATE (entries/s of the LDAP read of the same entries,
# from bench_ldap.sh) to also print the map cost as a share of the read cost (aim: < 10%).
#
# LDAP_READ_RATE may be "measure": then a throwaway slapd on 127.0.0.1 is seeded with N
# users of the same shape (tests/data/gen_users.py) and the paged read of all of them with
# ldapsearch is timed in the same run (that is the read cost the map is compared with).
#
# BENCH_MAP_BASE=/path/to/an/older/bench_map measures a baseline build in the same run:
# both binaries run alternately BENCH_REPS times (default 3) against the same read rate,
# one line each, so a change is compared with what it replaces on the same machine state.
#
# Environment: BENCH_MAP (use this binary instead of building), BENCH_MAP_BASE, BENCH_REPS,
# MAKE.
set -u -o pipefail

N=${1:-200000}
READ_RATE=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
: "${MAKE:=make}"

if [ -z "${BENCH_MAP:-}" ]; then
    BENCH_MAP=$top/bench/bench_map
    $MAKE -C "$top" -s bench/bench_map >&2 || {
        echo "bench_map: build failed (run ./configure && make first)" >&2
        exit 1
    }
fi
[ -x "$BENCH_MAP" ] || { echo "bench_map: no binary at $BENCH_MAP" >&2; exit 1; }
echo "bench_map: $(nproc) cpus, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')" >&2
if [ "$READ_RATE" = measure ]; then
    TESTDIR=$(mktemp -d /tmp/dirmig-bench-map.XXXXXX)
    export TESTDIR
    . "$top/tests/harness/slapd.sh"
    trap 'slapd_stop_all >/dev/null 2>&1; rm -rf "$TESTDIR"' EXIT
    python3 "$top/tests/data/gen_users.py" --suffix dc=src,dc=example --users "$N" --groups 0 \
        --big-group 0 --schemes ssha --ldif "$TESTDIR/src.ldif" >&2 || exit 1
    slapd_start SRC dc=src,dc=example "$TESTDIR/src.ldif" >&2 || exit 1
    best=
    for i in 1 2 3; do
        t0=$(date +%s.%N)
        ldapsearch -x -LLL -H "$SRC_URI" -D "$SRC_ROOTDN" -y "$SRC_PW_FILE" -E pr=1000/noprompt \
            -b ou=people,dc=src,dc=example '(objectClass=inetOrgPerson)' > /dev/null || exit 1
        t1=$(date +%s.%N)
        r=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')
        if [ -z "$best" ] || [ "$r" -gt "$best" ]; then best=$r; fi
    done
    READ_RATE=$best
    echo "bench_map: LDAP paged read of the same $N entries (best of 3): $READ_RATE entries/s" >&2
fi
if [ -n "${BENCH_MAP_BASE:-}" ]; then
    [ -x "$BENCH_MAP_BASE" ] || { echo "bench_map: no binary at $BENCH_MAP_BASE" >&2; exit 1; }
    for i in $(seq 1 "${BENCH_REPS:-3}"); do
        printf 'baseline %s: ' "$i"
        "$BENCH_MAP_BASE" "$N" $READ_RATE || exit 1
        printf 'this     %s: ' "$i"
        "$BENCH_MAP" "$N" $READ_RATE || exit 1
    done
    exit 0
fi
if [ -n "$READ_RATE" ]; then
    # Not exec: the EXIT trap must still stop the slapd started for "measure".
    "$BENCH_MAP" "$N" "$READ_RATE"
    exit $?
fi
exec "$BENCH_MAP" "$N"
