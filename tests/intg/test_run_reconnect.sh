#!/bin/bash
# test_run_reconnect.sh: the source slapd is restarted while dirmig pages through it
# (page_size 100, batch_size 100). The run must reconnect, resume, finish with exit 0 and
# leave every user in the target exactly once.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

N_USERS=${RECONNECT_USERS:-5000}
N_GROUPS=${RECONNECT_GROUPS:-20}

gen_users --suffix dc=src,dc=example --users "$N_USERS" --groups "$N_GROUPS" --big-group 1000 --schemes fast --seed 5 --ldif "$DATA/src.ldif"
add_canary "$DATA/src.ldif" dc=src,dc=example
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC dc=src,dc=example "$DATA/src.ldif"
start_server DST dc=dst,dc=example "$DATA/dst.ldif"
users=$((N_USERS + 1))

mkconfig "$WORK/rc.json" SRC DST source.page_size=100 run.batch_size=100 source.max_retries=10

dm_bg run1 -c "$WORK/rc.json" run --json
pid=$DM_PID
n=$(wait_count DST ou=people,dc=dst,dc=example 500 300 "$pid") ||
    fail "dirmig ended (or stalled) before the target held 500 entries (count $n);" \
        "make the fixture bigger (RECONNECT_USERS)"
kill -0 "$pid" 2> /dev/null || fail "dirmig finished before the restart; nothing was tested"
port_before=$SRC_PORT
slapd_restart SRC || fail "source restart failed"
[ "$SRC_PORT" = "$port_before" ] || fail "the source came back on another port"
log "restarted the source with $n entries in the target"
kill -0 "$pid" 2> /dev/null || log "note: dirmig had finished by the time the source was back"

dm_wait "$pid" 300
expect_rc 0 run1 "run across a source restart"
expect_json "$WORK/run1.out" total.failed 0 \
    users.created "$users"

got=$(slapd_count DST ou=people,dc=dst,dc=example '(objectClass=inetOrgPerson)')
[ "$got" = "$users" ] || fail "target holds $got users, want $users"
compare_trees SRC DST rc --drop "member=uid=ext00000,ou=contractors,dc=dst,dc=example"

check_no_secrets
exit 0
