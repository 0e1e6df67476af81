#!/bin/bash
# test_run_crash.sh: a run killed with SIGKILL part-way and started again ends with the same
# target as an uninterrupted run: no duplicate, no missing entry, identical content.
#   target A: one uninterrupted run (reference)
#   target B: run killed when B holds 20-80% of the entries, then run again (own journal)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

N_USERS=${CRASH_USERS:-6000}
N_GROUPS=${CRASH_GROUPS:-40}

gen_users --suffix dc=src,dc=example --users "$N_USERS" --groups "$N_GROUPS" --big-group 2000 --schemes fast --seed 11 --ldif "$DATA/src.ldif"
add_canary "$DATA/src.ldif" dc=src,dc=example
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC dc=src,dc=example "$DATA/src.ldif"
start_server DSTA dc=dst,dc=example "$DATA/dst.ldif"
start_server DSTB dc=dst,dc=example "$DATA/dst.ldif"
total=$((N_USERS + 1 + N_GROUPS + 3)) # users + canary + groups + seeded base and OUs

# Small batches so the kill lands in the middle of the run.
mkconfig "$WORK/a.json" SRC DSTA run.batch_size=100
mkconfig "$WORK/b.json" SRC DSTB run.batch_size=100

dm runA -c "$WORK/a.json" run --json
expect_rc 0 runA "uninterrupted run into A"
expect_json "$WORK/runA.out" total.failed 0
[ "$(slapd_count DSTA dc=dst,dc=example)" = "$total" ] ||
    fail "target A holds $(slapd_count DSTA dc=dst,dc=example) entries, want $total"

# Run into B and kill it between 20% and 80%.
low=$((total * 20 / 100))
high=$((total * 80 / 100))
dm_bg runB1 -c "$WORK/b.json" run --json
pid=$DM_PID
n=$(wait_count DSTB dc=dst,dc=example "$low" 300 "$pid") ||
    fail "dirmig ended (or stalled) before B held 20% of the entries (count $n of $total);" \
        "make the fixture bigger (CRASH_USERS)"
kill -9 "$pid" 2> /dev/null || fail "dirmig finished before it could be killed (count $n)"
wait "$pid" 2> /dev/null
killed_at=$(slapd_count DSTB dc=dst,dc=example)
log "killed dirmig with $killed_at of $total entries in B (seen $n before the kill)"
[ "$killed_at" -le "$high" ] ||
    log "note: B already held more than 80% when killed ($killed_at); still a valid crash"
[ "$killed_at" -lt "$total" ] || fail "B was complete before the kill; nothing was tested"

dm runB2 -c "$WORK/b.json" run --json
expect_rc 0 runB2 "run after the crash"
expect_json "$WORK/runB2.out" status "done" \
    total.failed 0

# A and B identical (user attributes; entryUUID and timestamps differ by design).
[ "$(slapd_count DSTB dc=dst,dc=example)" = "$total" ] ||
    fail "target B holds $(slapd_count DSTB dc=dst,dc=example) entries, want $total"
dump_norm DSTA dc=dst,dc=example sub "$DATA/a.norm"
dump_norm DSTB dc=dst,dc=example sub "$DATA/b.norm"
cmp -s "$DATA/a.norm" "$DATA/b.norm" ||
    fail "targets A and B differ: $(diff "$DATA/a.norm" "$DATA/b.norm" | grep '^[<>] dn' | head -n 5 | tr '\n' ' ')"
dups=$(grep '^dn' "$DATA/b.norm" | tr 'A-Z' 'a-z' | sort | uniq -d | wc -l)
[ "$dups" = 0 ] || fail "$dups duplicate DNs in B"
log "A and B identical: $(grep -c '^dn' "$DATA/b.norm") entries"

check_no_secrets
exit 0
