#!/bin/bash
# test_delta_ldap.sh: source.delta on OpenLDAP sources, RFC 4533 refreshOnly against slapd's
# syncprov overlay (connectors/ldap_delta.h, agent/delta.h).
#   - 1,000 users: after a full run, 1% of the users change, 3 are deleted, 2 added and a
#     group changes: the next run reads exactly those 12 users and 1 group, reports the 3
#     deletions under their entryUUIDs (journal errors "source_deleted") as the run's
#     leavers; the changes arrive at the target; a rerun reads nothing
#   - deletions named by the server (session log) and, once more changes happened than the
#     session log holds, found from a present phase: the same keys either way
#   - no syncprov: every run is a full read (logged once per run, no watermark kept), the
#     target is what a full run gives, and a deleted user is a leaver as in any full run
#   - a cookie is never sent to another database behind the same URI (the source base's
#     entryUUID differs), and a cookie the server refuses (a database restored from a
#     backup older than the cookie) gives a full read
#   - a source restarted during a sync read: the read resumes and loses nothing, and the
#     watermark does not advance past what the resumed search skipped
#   - the documented limitation: a database restored from a backup without contextCSN
#     cannot be told from the original; one run without source.delta repairs the target
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

S=dc=src,dc=example
T=dc=dst,dc=example
gen_users --suffix "$S" --users 1000 --groups 20 --schemes fast --ldif "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$S"
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif "$T" "$DATA/dst.ldif"
start_server SRC "$S" "$DATA/src.ldif" syncprov dbnosync
for n in DST DSTP DSTN; do
    start_server "$n" "$T" "$DATA/dst.ldif" dbnosync
done

# modify NAME: applies the LDIF on stdin to instance NAME as its rootdn
modify() {
    ldapmodify -x -H "$(eval echo "\$${1}_URI")" -D "cn=admin,$S" -y "$(eval echo "\$${1}_PW_FILE")" \
        > "$WORK/modify.log" 2>&1 || fail "ldapmodify on $1 failed: $(tail -n 3 "$WORK/modify.log")"
}
# uuid NAME UID: the entryUUID of uid=UID under ou=people
uuid() {
    slapd_search "$1" -b "uid=$2,ou=people,$S" -s base entryUUID | sed -n 's/^entryUUID: //p'
}
# deleted_keys DB RUN: the keys journaled as source_deleted by run RUN, sorted, one a line
deleted_keys() {
    "$PYTHON3" - "$1" "$2" << 'EOF'
import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
rows = con.execute("select key from errors where category = 'source_deleted' and run = ?",
                   (int(sys.argv[2]),))
for k in sorted(r[0] for r in rows):
    print(k)
EOF
}
# meta DB PREFIX: the journal's meta values whose key starts with PREFIX
meta() {
    "$PYTHON3" - "$1" "$2" << 'EOF'
import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for k, v in con.execute("select key, value from meta where key like ? order by key",
                        (sys.argv[2] + "%",)):
    print("%s=%s" % (k, v))
EOF
}
changes() {
    local what=$1 i
    shift
    for i in "$@"; do
        case "$what" in
        modify) printf 'dn: uid=user%05d,ou=people,%s\nchangetype: modify\nreplace: sn\nsn: Changed %d\n-\nreplace: description\ndescription: delta %d\n\n' "$i" "$S" "$i" "$i" ;;
        delete) printf 'dn: uid=user%05d,ou=people,%s\nchangetype: delete\n\n' "$i" "$S" ;;
        add) printf 'dn: uid=new%05d,ou=people,%s\nchangetype: add\nobjectClass: inetOrgPerson\nuid: new%05d\ncn: New %d\nsn: New\n\n' "$i" "$S" "$i" "$i" ;;
        esac
    done
}

# ---- A: 1% of 1,000 users change, with syncprov and a session log ----
# A backup from before the first run (used in E). slapd writes contextCSN when it stops:
# a backup holds the state of the database it was taken from.
slapd_restart SRC || fail "restarting SRC failed"
slapd_dump SRC "$DATA/backup.ldif"
grep -q '^contextCSN: ' "$DATA/backup.ldif" || fail "the backup has no contextCSN"
mkconfig "$WORK/a.json" SRC DST source.delta=true log.level=debug
dm a1 -c "$WORK/a.json" run --json
expect_rc 0 a1 "first delta run (full)"
expect_json "$WORK/a1.out" status done total.failed 0 users.read 1001 users.created 1001 \
    groups.created 20 source_deleted 0 source_read.users full source_read.groups full
meta "$WORK/a.db" "delta users" | grep -q '=ldapsync:' || fail "no sync cookie kept: $(meta "$WORK/a.db" delta)"

gone=""
for i in 100 200 300; do gone="$gone $(uuid SRC "$(printf 'user%05d' $i)")"; done
gone=$(printf '%s\n' $gone | sort)
{
    changes modify 1 11 21 31 41 51 61 71 81 91
    changes delete 100 200 300
    changes add 1 2
    printf 'dn: cn=grp0005,ou=groups,%s\nchangetype: modify\nreplace: description\ndescription: changed\n\n' "$S"
} | modify SRC
dm a2 -c "$WORK/a.json" run --json
expect_rc 0 a2 "delta run"
expect_json "$WORK/a2.out" status done total.failed 0 users.read 12 users.updated 10 \
    users.created 2 groups.read 1 groups.updated 1 source_deleted 3 \
    source_read.users delta source_read.groups delta
[ "$(deleted_keys "$WORK/a.db" 2)" = "$gone" ] ||
    fail "deleted keys journaled: $(deleted_keys "$WORK/a.db" 2 | tr '\n' ' '), want $(echo $gone)"
[ "$(grep -c 'was deleted in the source' "$WORK/a.log")" = 3 ] || fail "3 deletions should be logged"
# ... and they are the run's leavers (reported: this target has no target.disable)
for i in 100 200 300; do
    grep -q "leaver user uid=user00$i,ou=people,$S (target .*): reported" "$WORK/a.log" ||
        fail "user00$i is not a leaver of the delta run"
done
[ "$(grep -c 'leaver user .*: reported' "$WORK/a.log")" = 3 ] || fail "3 leavers expected"
expect_json "$WORK/a2.out" leavers.reported 3 blocked null
v=$(slapd_search DST -b "uid=user00041,ou=people,$T" -s base sn description | grep -E '^(sn|description):' | tr '\n' ' ')
[ "$v" = "sn: Changed 41 description: delta 41 " ] || fail "user00041 at the target: $v"
slapd_search DST -b "uid=new00002,ou=people,$T" -s base 1.1 > /dev/null || fail "new00002 not added"
slapd_search DST -b "uid=user00200,ou=people,$T" -s base 1.1 > /dev/null ||
    fail "user00200 was deleted at the target (deletions are only reported)"
v=$(slapd_search DST -b "cn=grp0005,ou=groups,$T" -s base description | grep '^description:')
[ "$v" = "description: changed" ] || fail "grp0005 at the target: $v"

dm a3 -c "$WORK/a.json" run --json
expect_rc 0 a3 "delta run, nothing changed"
expect_json "$WORK/a3.out" status done users.read 0 groups.read 0 source_deleted 0 \
    source_read.users delta

# ---- B: deletions named by the session log, then found from a present phase ----
gen_users --suffix "$S" --users 200 --groups 5 --schemes fast --ldif "$DATA/small.ldif"
start_server SRCP "$S" "$DATA/small.ldif" syncprov_log=5 dbnosync
mkconfig "$WORK/b.json" SRCP DSTP source.delta=true log.level=debug
dm b1 -c "$WORK/b.json" run --json
expect_rc 0 b1 "first delta run (B)"
expect_json "$WORK/b1.out" status done users.created 200
g1=$(uuid SRCP user00007)
{ changes modify 3 4; changes delete 7; } | modify SRCP # 3 operations: within the log of 5
dm b2 -c "$WORK/b.json" run --json
expect_rc 0 b2 "delta run (session log)"
expect_json "$WORK/b2.out" status done users.read 2 users.updated 2 source_deleted 1
[ "$(deleted_keys "$WORK/b.db" 2)" = "$g1" ] || fail "b2 deleted keys: $(deleted_keys "$WORK/b.db" 2)"
grep -q 'sync: 2 entries, 0 present, 1 deleted, delete phase' "$WORK/b.log" ||
    fail "b2 was not answered from the session log"
g2=""
for i in 10 11 12 13; do g2="$g2 $(uuid SRCP "$(printf 'user%05d' $i)")"; done
{ changes modify 20 21 22 23 24 25; changes delete 10 11 12 13; } | modify SRCP # 10 > 5
dm b3 -c "$WORK/b.json" run --json
expect_rc 0 b3 "delta run (present phase)"
expect_json "$WORK/b3.out" status done users.read 6 users.updated 6 source_read.users delta
grep -q 'sync: 6 entries, [0-9]* present, 0 deleted, present phase' "$WORK/b.log" ||
    fail "b3 was not answered with a present phase"
# The 4 new deletions, and user00007 again: the journal still holds it (until a leaver
# action settles it, every present phase finds it gone).
want=$(printf '%s\n' $g2 "$g1" | sort)
[ "$(deleted_keys "$WORK/b.db" 3)" = "$want" ] ||
    fail "b3 deleted keys: $(deleted_keys "$WORK/b.db" 3 | tr '\n' ' '), want $(echo $want)"
expect_json "$WORK/b3.out" source_deleted 5

# ---- D: the same URI now serves another database: the cookie is not sent ----
slapd_dump SRCP "$DATA/srcp.ldif"
"$PYTHON3" - "$DATA/srcp.ldif" "$DATA/other.ldif" << 'EOF' || fail "rewriting the dump failed"
import sys, uuid
lines, first = open(sys.argv[1]).read().split("\n"), True
out = []
for l in lines:
    if l.startswith("entryUUID: ") and first:
        l, first = "entryUUID: %s" % uuid.uuid4(), False  # the suffix entry comes first
    if not l.startswith("contextCSN: "):
        out.append(l)
open(sys.argv[2], "w").write("\n".join(out))
EOF
slapd_reload SRCP "$DATA/other.ldif" || fail "reloading SRCP failed"
dm b4 -c "$WORK/b.json" run --json
expect_rc 0 b4 "delta run against another database"
expect_json "$WORK/b4.out" status done users.read 195 source_deleted 0 source_read.users full
grep -q 'belongs to another database' "$WORK/b.log" || fail "no log line for the other database"
[ "$(grep -c 'belongs to another database' "$WORK/b.log")" = 1 ] ||
    fail "the other database is logged more than once"

# ---- E: a database restored from a backup older than the cookie ----
slapd_reload SRC "$DATA/backup.ldif" || fail "restoring SRC failed"
dm a4 -c "$WORK/a.json" run --json
expect_rc 0 a4 "delta run against a restored database"
expect_json "$WORK/a4.out" status done users.read 1001 source_read.users full source_deleted 0
[ "$(grep -c 'refused the sync cookie' "$WORK/a.log")" = 1 ] || fail "the refused cookie is not logged once"
# and the cookie of that full read works for the next run
dm a5 -c "$WORK/a.json" run --json
expect_rc 0 a5 "delta run after the restore"
expect_json "$WORK/a5.out" status done users.read 0 source_read.users delta

# ---- F: a restore from a backup without contextCSN cannot be told from the original (the
# limitation dirmig.json(5) documents): the restored entries are not read again until a
# run without source.delta ----
slapd_dump SRC "$DATA/f0.ldif"
grep -v '^contextCSN: ' "$DATA/f0.ldif" > "$DATA/f0-noctx.ldif"
changes modify 50 | modify SRC
dm a6 -c "$WORK/a.json" run --json
expect_rc 0 a6 "delta run before the restore"
expect_json "$WORK/a6.out" status done users.read 1 users.updated 1
slapd_reload SRC "$DATA/f0-noctx.ldif" || fail "restoring SRC (no contextCSN) failed"
dm a7 -c "$WORK/a.json" run --json
expect_rc 0 a7 "delta run after a restore without contextCSN"
expect_json "$WORK/a7.out" status done users.read 0 source_read.users delta
v=$(slapd_search DST -b "uid=user00050,ou=people,$T" -s base sn | grep '^sn:')
[ "$v" = "sn: Changed 50" ] || fail "user00050 at the target: $v (the restore is not expected to be seen)"
mkconfig "$WORK/a-full.json" SRC DST source.delta=false state.path="$WORK/a.db" \
    log.file="$WORK/a.log"
dm a8 -c "$WORK/a-full.json" run --json
expect_rc 0 a8 "a run without source.delta after the restore"
expect_json "$WORK/a8.out" status done users.read 1001 users.updated 1
v=$(slapd_search DST -b "uid=user00050,ou=people,$T" -s base sn | grep '^sn:')
[ "$v" != "sn: Changed 50" ] || fail "user00050 was not restored at the target"
changes modify 51 | modify SRC
dm a9 -c "$WORK/a.json" run --json
expect_rc 0 a9 "delta run after the full run"
expect_json "$WORK/a9.out" status done users.read 1 users.updated 1 source_read.users delta

# ---- C: no syncprov: full reads, the same target as a full run ----
start_server SRCN "$S" "$DATA/small.ldif" online dbnosync
mkconfig "$WORK/c.json" SRCN DSTN source.delta=true
dm c1 -c "$WORK/c.json" run --json
expect_rc 0 c1 "delta run without syncprov"
expect_json "$WORK/c1.out" status done users.created 200 source_read.users full \
    source_read.groups full
compare_trees SRCN DSTN nosync1 --drop "member=uid=ext00000,ou=contractors,$T"
{ changes modify 3 4; changes add 9; } | modify SRCN
dm c2 -c "$WORK/c.json" run --json
expect_rc 0 c2 "second delta run without syncprov"
expect_json "$WORK/c2.out" status done users.read 201 users.updated 2 users.created 1 \
    source_read.users full
compare_trees SRCN DSTN nosync2 --drop "member=uid=ext00000,ou=contractors,$T"
# a full read finds its leavers by what it did not return, as any full run does
changes delete 5 | modify SRCN
dm c3 -c "$WORK/c.json" run --json
expect_rc 0 c3 "third delta run without syncprov"
expect_json "$WORK/c3.out" status done users.read 200 source_deleted 0 source_read.users full
grep -q "leaver user uid=user00005,ou=people,$S (target .*): reported" "$WORK/c.log" ||
    fail "the user deleted in a source without syncprov is not a leaver"
expect_json "$WORK/c3.out" leavers.reported 1 blocked null
[ "$(grep -c 'no content synchronisation' "$WORK/c.log")" = 3 ] ||
    fail "the missing syncprov should be logged once per run"
[ "$(meta "$WORK/c.db" "delta users")" = "delta users $SRCN_URI ou=people,$S (objectClass=inetOrgPerson)=" ] ||
    fail "a watermark was kept without syncprov: $(meta "$WORK/c.db" delta)"

# ---- R: the source restarts during a sync read: the read resumes, nothing is lost, and the
# watermark does not move past what the resumed search skipped (here: none was kept, so the
# next run reads everything again) ----
gen_users --suffix "$S" --users 5000 --groups 20 --big-group 1000 --schemes fast --seed 5 \
    --ldif "$DATA/big.ldif"
register_ldif_passwords "$DATA/big.ldif"
# 4 KB more per user: 20 MB, more than the socket buffers between slapd and dirmig hold,
# so that the restart cuts the users read itself (dirmig reads at most a few hundred
# entries ahead of what it writes)
"$PYTHON3" - "$DATA/big.ldif" << 'EOF' || fail "padding the fixture failed"
import sys
p = sys.argv[1]
recs = open(p).read().split("\n\n")
pad = "description: " + "x" * 4096
out = [r + "\n" + pad if "objectClass: inetOrgPerson" in r and "ou=people," in r else r for r in recs]
open(p, "w").write("\n\n".join(out))
EOF
start_server SRCR "$S" "$DATA/big.ldif" syncprov dbnosync
start_server DSTR "$T" "$DATA/dst.ldif" dbnosync
mkconfig "$WORK/r.json" SRCR DSTR source.delta=true run.batch_size=100 source.max_retries=10
dm_bg r1 -c "$WORK/r.json" run --json
pid=$DM_PID
n=$(wait_count DSTR "ou=people,$T" 500 300 "$pid") ||
    fail "dirmig ended (or stalled) before the target held 500 entries (count $n)"
kill -0 "$pid" 2> /dev/null || fail "dirmig finished before the restart; nothing was tested"
slapd_restart SRCR || fail "source restart failed"
log "restarted the source with $n entries in the target"
dm_wait "$pid" 300
expect_rc 0 r1 "delta run across a source restart"
expect_json "$WORK/r1.out" status done total.failed 0 users.created 5000
# The restart should cut the users read; on a machine with huge socket buffers it may cut
# the groups read after it instead: either way the resumed read keeps no new watermark.
resumed=$(sed -n 's/.*delta: the read of ou=\([a-z]*\),dc=src,dc=example was resumed after a reconnect.*/\1/p' \
    "$WORK/r.log" | head -n 1)
case "$resumed" in
people) want_u=full want_g=delta ;;
groups) want_u=delta want_g=full ;;
*) fail "no sync read was resumed after the restart" ;;
esac
log "the $resumed read was resumed"
compare_trees SRCR DSTR resumed --drop "member=uid=ext00000,ou=contractors,$T"
dm r2 -c "$WORK/r.json" run --json
expect_rc 0 r2 "the run after the resumed one"
expect_json "$WORK/r2.out" status done total.failed 0 total.created 0 total.updated 0 \
    source_read.users "$want_u" source_read.groups "$want_g"

check_no_secrets
