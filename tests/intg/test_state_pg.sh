#!/bin/bash
# test_state_pg.sh: the state journal on PostgreSQL (state.type postgresql) against a
# throwaway cluster (tests/harness/pg.sh):
#   - the journal's unit tests (tests/unit/test_state.c built as test_state_pg) on it;
#   - a run and a rerun with the journal in PostgreSQL: the rerun writes nothing;
#   - `dirmig state migrate --from sqlite PATH` copies a SQLite journal: `dirmig status
#     --json` reads the same runs and counts from both; a second copy, a missing PATH and a
#     wrong --from are refused with their exit codes;
#   - status counts: the same runs (an Okta-style target: users imported, for the hook,
#     disabled in the source, linked, failing, leavers disabled then deleted) with a SQLite
#     journal and with a PostgreSQL one give the same `dirmig status --json`;
#   - what a PostgreSQL journal does not keep (the undo store, saved plans): rollback,
#     plan --out and run --plan exit 78 at once, writing nothing; a run warns that it
#     cannot be rolled back; state migrate says it left the undo store behind;
#   - config: a conninfo file readable by others, a conninfo without a server, a remote
#     server without verified TLS;
#   - TLS: verified against state.tls.ca_file; a name that is not loopback is verified by
#     default (verify-full): a server whose certificate does not name it is refused;
#   - the password of the connection string never reaches a log, a capture or the journal.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg_lib.sh"

gen_users --suffix dc=src,dc=example --users 120 --groups 6 --ldif "$DATA/src.ldif"
add_canary "$DATA/src.ldif" dc=src,dc=example
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC dc=src,dc=example "$DATA/src.ldif"
start_server DST dc=dst,dc=example "$DATA/dst.ldif"
start_server DST2 dc=dst,dc=example "$DATA/dst.ldif"
start_pg PG tls

# ---- the journal's unit tests on PostgreSQL ----
pg_createdb PG unit
pg_conninfo_file PG unit "$SECRETS/unit.conninfo"
DIRMIG_TEST_PG_CONNINFO=$(cat "$SECRETS/unit.conninfo") "$top_builddir/tests/unit/test_state_pg" \
    > "$WORK/unit.out" 2>&1 || { tail -n 40 "$WORK/unit.out" >&2; fail "test_state_pg failed"; }
grep -q 'PASSED.*19 test' "$WORK/unit.out" || fail "test_state_pg: $(tail -n 3 "$WORK/unit.out")"

# ---- a run and a rerun on PostgreSQL ----
pg_conninfo_file PG dirmig "$SECRETS/pg.conninfo"
pg_config "$WORK/pg.json" SRC DST2 "$SECRETS/pg.conninfo"
dm check -c "$WORK/pg.json" check
expect_rc 0 check "dirmig check with the journal in PostgreSQL"
grep -q "state journal postgresql://127.0.0.1:$PG_PG_PORT/dirmig: ok" "$WORK/check.out" ||
    fail "check does not name the journal: $(grep 'state journal' "$WORK/check.out")"
dm pgrun1 -c "$WORK/pg.json" run --json
expect_rc 0 pgrun1 "run with the journal in PostgreSQL"
expect_json "$WORK/pgrun1.out" status done users.created 121 groups.created 6 total.failed 0
dm pgrun2 -c "$WORK/pg.json" run --json
expect_rc 0 pgrun2 "rerun with the journal in PostgreSQL"
expect_json "$WORK/pgrun2.out" status done users.created 0 users.updated 0 users.unchanged 121 \
    groups.created 0 groups.updated 0
[ "$(pg_psql PG "SELECT count(*) FROM objects WHERE status = 'ok'")" = 127 ] ||
    fail "objects in PostgreSQL: $(pg_psql PG 'SELECT kind, status, count(*) FROM objects GROUP BY 1, 2')"
[ "$(pg_psql PG "SELECT string_agg(status, ',' ORDER BY id) FROM runs")" = done,done ] ||
    fail "runs in PostgreSQL: $(pg_psql PG 'SELECT id, kind, status FROM runs')"

# ---- state migrate --from sqlite ----
mkconfig "$WORK/sq.json" SRC DST
dm sqrun1 -c "$WORK/sq.json" run
expect_rc 0 sqrun1 "run with the SQLite journal"
dm sqplan -c "$WORK/sq.json" plan
expect_rc 0 sqplan "plan with the SQLite journal"
dm sqrun2 -c "$WORK/sq.json" run
expect_rc 0 sqrun2 "rerun with the SQLite journal"
pg_createdb PG copy
pg_conninfo_file PG copy "$SECRETS/copy.conninfo"
pg_config "$WORK/copy.json" SRC DST "$SECRETS/copy.conninfo"
dm migrate -c "$WORK/copy.json" state migrate --from sqlite "$WORK/sq.db"
expect_rc 0 migrate "state migrate --from sqlite"
grep -q "rows copied" "$WORK/migrate.out" || fail "state migrate printed: $(cat "$WORK/migrate.out")"
dm st_sq -c "$WORK/sq.json" status --json
expect_rc 0 st_sq "status on SQLite"
dm st_pg -c "$WORK/copy.json" status --json
expect_rc 0 st_pg "status on the copy"
"$PYTHON3" - "$WORK/st_sq.out" "$WORK/st_pg.out" << 'EOF' || fail "the copy reads differently"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def strip(j):
    j = dict(j)
    j.pop("journal", None)
    return j
sa, sb = strip(a), strip(b)
if sa != sb:
    print("sqlite:", json.dumps(sa, sort_keys=True)[:1500], file=sys.stderr)
    print("copy:  ", json.dumps(sb, sort_keys=True)[:1500], file=sys.stderr)
    sys.exit(1)
if len(a.get("runs", [])) != 3:
    print("want 3 runs, got", a.get("runs"), file=sys.stderr)
    sys.exit(1)
EOF
[ "$(pg_psql PG "SELECT count(*) FROM objects" | head -n1)" = 127 ] || true
# a run on the copy continues the journal: nothing to write, run ids after the copied ones
dm cprun -c "$WORK/copy.json" run --json
expect_rc 0 cprun "run on the copied journal"
expect_json "$WORK/cprun.out" users.created 0 users.unchanged 121 run 4
grep -qF "not copied: the undo store $WORK/sq.db.undo" "$WORK/migrate.out" ||
    fail "state migrate does not say it left the undo store: $(cat "$WORK/migrate.out")"
dm migrate2 -c "$WORK/copy.json" state migrate --from sqlite "$WORK/sq.db"
expect_rc 65 migrate2 "a second copy into a journal that holds runs"
grep -q "already holds a journal" "$WORK/migrate2.err" || fail "migrate2: $(cat "$WORK/migrate2.err")"
dm migrate3 -c "$WORK/copy.json" state migrate --from sqlite "$WORK/nothing.db"
expect_rc 66 migrate3 "state migrate from a missing file"
[ -e "$WORK/nothing.db" ] && fail "state migrate created $WORK/nothing.db"
dm migrate4 -c "$WORK/copy.json" state migrate --from ldif "$WORK/sq.db"
expect_rc 64 migrate4 "state migrate --from ldif"
dm migrate5 -c "$WORK/copy.json" state migrate "$WORK/sq.db"
expect_rc 64 migrate5 "state migrate without --from"

# ---- what a PostgreSQL journal does not keep: refused at once, nothing written ----
grep -q "state.type postgresql keeps no undo store: this run cannot be rolled back" \
    "$WORK/pg.log" || fail "a run on PostgreSQL does not warn: $(tail -n 5 "$WORK/pg.log")"
runs_before=$(pg_psql PG "SELECT count(*) FROM runs")
dm rb -c "$WORK/pg.json" rollback last --json
expect_rc 78 rb "rollback on a PostgreSQL journal"
grep -q "this journal keeps no undo store, so its runs cannot be rolled back" "$WORK/rb.err" ||
    fail "rollback: $(cat "$WORK/rb.err")"
expect_json "$WORK/rb.out" exit_code 78
dm rbplan -c "$WORK/pg.json" rollback 1 --plan
expect_rc 78 rbplan "rollback --plan on a PostgreSQL journal"
dm planout -c "$WORK/pg.json" plan --out "$WORK/pg.plan"
expect_rc 78 planout "plan --out on a PostgreSQL journal"
grep -q "plan --out: saved plans need a SQLite journal (state.type sqlite)" "$WORK/planout.err" ||
    fail "plan --out: $(cat "$WORK/planout.err")"
[ -e "$WORK/pg.plan" ] && fail "plan --out on PostgreSQL wrote $WORK/pg.plan"
dm sqplanout -c "$WORK/sq.json" plan --out "$WORK/sq.plan"
expect_rc 0 sqplanout "plan --out on SQLite"
dm planin -c "$WORK/pg.json" run --plan "$WORK/sq.plan" --json
expect_rc 78 planin "run --plan on a PostgreSQL journal"
grep -q "run --plan: saved plans need a SQLite journal (state.type sqlite)" "$WORK/planin.err" ||
    fail "run --plan: $(cat "$WORK/planin.err")"
[ "$(pg_psql PG "SELECT count(*) FROM runs")" = "$runs_before" ] ||
    fail "a refused command journaled a run: $(pg_psql PG 'SELECT id, kind, status FROM runs')"
log "PostgreSQL: rollback, plan --out and run --plan refused with 78, nothing written"

# ---- status counts: the same runs on SQLite and on PostgreSQL ----
C=dc=cnt,dc=example
write_secret "$SECRETS/token" "okta-pg-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
"$PYTHON3" - "$top_srcdir/schema/maps/inetorgperson-to-okta.json" "$WORK/okta.map.json" << 'EOF'
import json, os, sys
m = json.load(open(sys.argv[1]))
d = os.path.dirname(os.path.abspath(sys.argv[1]))
m["source_profile"] = os.path.join(d, m["source_profile"])
m["target_profile"] = os.path.join(d, m["target_profile"])
m["key"]["fallback"] = [{"source": "mail", "target": "email"}]
json.dump(m, open(sys.argv[2], "w"), indent=1)
EOF
gen_users --suffix "$C" --users 80 --groups 4 --schemes fast --seed 7 --ldif "$DATA/cnt.ldif"
{
    for i in 1 2 3; do # disabled in the source
        printf '\ndn: uid=gone%d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: gone%d\n' "$i" "$C" "$i"
        printf 'cn: Gone %d\nsn: Gone\ngivenName: G\nmail: gone%d@example.org\nemployeeType: left\n' "$i" "$i"
    done
    for i in 1 2 3 4; do # no password: created for the hook
        printf '\ndn: uid=nopw%d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: nopw%d\n' "$i" "$C" "$i"
        printf 'cn: Nopw %d\nsn: Nopw\ngivenName: N\nmail: nopw%d@example.org\n' "$i" "$i"
    done
    # the target holds this account already: linked
    printf '\ndn: uid=linked1,ou=people,%s\nobjectClass: inetOrgPerson\nuid: linked1\n' "$C"
    printf 'cn: Linked One\nsn: One\ngivenName: Linked\nmail: linked1@example.org\n'
    # a login the target refuses: failing
    printf '\ndn: uid=bad1,ou=people,%s\nobjectClass: inetOrgPerson\nuid: bad1\n' "$C"
    printf 'cn: Bad One\nsn: One\ngivenName: Bad\nmail: bad1@-\n'
} >> "$DATA/cnt.ldif"
register_ldif_passwords "$DATA/cnt.ldif"
start_server CSRC "$C" "$DATA/cnt.ldif"
start_okta OKSQ
start_okta OKPG
for port in "$OKSQ_PORT" "$OKPG_PORT"; do
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: SSWS $(cat "$SECRETS/token")" \
        -H 'Content-Type: application/json' -X POST "http://127.0.0.1:$port/api/v1/users?activate=true" \
        --data '{"profile": {"login": "linked1@example.org", "email": "linked1@example.org",
                 "firstName": "Linked", "lastName": "Outsider"}}' | grep -qx 200 ||
        fail "cannot create linked1 at the target on port $port"
done
pg_createdb PG counts
pg_conninfo_file PG counts "$SECRETS/counts.conninfo"
cnt_config() { # OUT PORT [overrides...]
    local out=$1 port=$2
    shift 2
    mkconfig "$out" CSRC - "target.base=-" "target.bind_dn=-" "target.bind_pw_file=-" \
        "target.type=okta" "target.uri=http://127.0.0.1:$port" \
        "target.token_file=$SECRETS/token" "target.concurrency=1" \
        "map={\"file\": \"$WORK/okta.map.json\"}" "run.batch_size=20" "run.collision=link" \
        "source.users.disabled.attribute=employeeType" \
        'source.users.disabled.values=["left"]' "leavers.max_delete_percent=20" "$@"
}
cnt_configs() { # [overrides...]: cnt_sq.json and cnt_pg.json
    cnt_config "$WORK/cnt_sq.json" "$OKSQ_PORT" "$@"
    cnt_config "$WORK/cnt_pg.json" "$OKPG_PORT" state.path=- state.type=postgresql \
        "state.conninfo_file=$SECRETS/counts.conninfo" "$@"
}
same_status() { # TAG: status --json of both journals, equal but for the journal's name and times
    dm "$1-sq" -c "$WORK/cnt_sq.json" status --json
    expect_rc 0 "$1-sq" "status on SQLite after $1"
    dm "$1-pg" -c "$WORK/cnt_pg.json" status --json
    expect_rc 0 "$1-pg" "status on PostgreSQL after $1"
    "$PYTHON3" - "$WORK/$1-sq.out" "$WORK/$1-pg.out" << 'EOF' || fail "status after $1 differs"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def strip(j):
    j.pop("journal", None)
    for r in j.get("runs", []):
        for k in ("started", "finished", "duration_s"):
            r.pop(k, None)
    return j
a, b = strip(a), strip(b)
if a != b:
    print("sqlite:    ", json.dumps(a, sort_keys=True)[:2000], file=sys.stderr)
    print("postgresql:", json.dumps(b, sort_keys=True)[:2000], file=sys.stderr)
    sys.exit(1)
print(json.dumps({k: a[k] for k in ("users", "groups", "passwords")}, sort_keys=True))
EOF
}
cnt_configs
for j in sq pg; do
    dm "c1-$j" -c "$WORK/cnt_$j.json" run --json
done
# bad1 fails: both runs exit 65
expect_rc 65 c1-pg "the first run on PostgreSQL (one user fails)"
expect_json "$WORK/c1-pg.out" users.failed 1
expect_json "$WORK/c1-sq.out" users.failed 1
same_status c1
# 6 leavers: disabled, then deleted
for i in 10 11 12 13 14 15; do
    printf 'uid=user%05d,ou=people,%s\n' "$i" "$C"
done > "$DATA/cnt-leavers.txt"
ldapdelete -x -H "$CSRC_URI" -D "cn=admin,$C" -y "$CSRC_PW_FILE" -f "$DATA/cnt-leavers.txt" ||
    fail "ldapdelete of the leavers"
for j in sq pg; do
    dm "c2-$j" -c "$WORK/cnt_$j.json" run --json
done
expect_json "$WORK/c2-pg.out" leavers.disabled 6
same_status c2
cnt_configs leavers.action=delete
for j in sq pg; do
    dm "c3-$j" -c "$WORK/cnt_$j.json" run --json
done
expect_json "$WORK/c3-pg.out" leavers.deleted 6
same_status c3
# the scenario reaches every count, so that the comparison compares something
"$PYTHON3" - "$WORK/c3-pg.out" << 'EOF' || fail "the scenario does not reach every count"
import json, sys
st = json.load(open(sys.argv[1]))
u, p = st["users"], st["passwords"]
want = {"users.disabled": u["disabled"] >= 3, "users.linked": u["linked"] == 1,
        "users.deleted": u["deleted"] == 6, "users.failed": u["failed"] >= 1,
        "passwords.imported": p["imported"] > 0,
        "passwords.hook/none": p["hook_created"] + p["no_password"] >= 4,
        "groups.at_target": st["groups"]["at_target"] > 0}
bad = [k for k, ok in want.items() if not ok]
if bad:
    print("not reached:", bad, json.dumps(st, sort_keys=True)[:1500], file=sys.stderr)
    sys.exit(1)
EOF
log "status counts: SQLite and PostgreSQL agree after the same three runs"

# ---- config and connection problems ----
cp "$SECRETS/pg.conninfo" "$SECRETS/open.conninfo" && chmod 0644 "$SECRETS/open.conninfo"
pg_config "$WORK/open.json" SRC DST "$SECRETS/open.conninfo"
dm open -c "$WORK/open.json" status
expect_rc 78 open "a conninfo file readable by others"
grep -q "state.conninfo_file" "$WORK/open.err" || fail "open: $(cat "$WORK/open.err")"
mkconfig "$WORK/mixed.json" SRC DST "state.conninfo_file=$SECRETS/pg.conninfo"
dm mixed -c "$WORK/mixed.json" status
expect_rc 78 mixed "state.conninfo_file with state.type sqlite"
pg_config "$WORK/noci.json" SRC DST "$SECRETS/pg.conninfo" state.conninfo_file=-
dm noci -c "$WORK/noci.json" status
expect_rc 78 noci "state.type postgresql without a connection string"
(umask 077 && echo "host=127.0.0.1 port=$(free_port) dbname=dirmig user=dirmig password=$PG_PG_PW" > "$SECRETS/down.conninfo")
pg_config "$WORK/down.json" SRC DST "$SECRETS/down.conninfo"
dm down -c "$WORK/down.json" run
expect_rc 69 down "a run whose database is not listening"
(umask 077 && echo "host=pg.example.org dbname=dirmig user=dirmig password=$PG_PG_PW sslmode=require" > "$SECRETS/weak.conninfo")
pg_config "$WORK/weak.json" SRC DST "$SECRETS/weak.conninfo"
dm weak -c "$WORK/weak.json" status
expect_rc 78 weak "sslmode=require for a remote server"
grep -q "verify-full" "$WORK/weak.err" || fail "weak: $(cat "$WORK/weak.err")"

# ---- TLS ----
# verify-full on loopback with the cluster's CA: accepted; the session is encrypted
pg_conninfo_file PG dirmig "$SECRETS/tls.conninfo" "host=localhost sslmode=verify-full"
pg_config "$WORK/tls.json" SRC DST2 "$SECRETS/tls.conninfo" "state.tls.ca_file=$PG_PG_CA_FILE"
dm tls -c "$WORK/tls.json" status --json
expect_rc 0 tls "verify-full against the cluster's CA"
# a name that is not loopback is verified by default: the certificate names pg.dirmig.test
pg_conninfo_file PG dirmig "$SECRETS/name.conninfo" "host=pg.dirmig.test hostaddr=127.0.0.1"
pg_config "$WORK/name.json" SRC DST2 "$SECRETS/name.conninfo" "state.tls.ca_file=$PG_PG_CA_FILE"
dm name -c "$WORK/name.json" status --json
expect_rc 0 name "a remote name, verified by default"
pg_conninfo_file PG dirmig "$SECRETS/other.conninfo" "host=other.dirmig.test hostaddr=127.0.0.1"
pg_config "$WORK/other.json" SRC DST2 "$SECRETS/other.conninfo" "state.tls.ca_file=$PG_PG_CA_FILE"
dm other -c "$WORK/other.json" status
expect_rc 69 other "a certificate that does not name the server"
grep -qi "certificate\|does not match" "$WORK/other.err" || fail "other: $(cat "$WORK/other.err")"
# the system CAs do not know the throwaway CA
pg_config "$WORK/sysca.json" SRC DST2 "$SECRETS/name.conninfo"
dm sysca -c "$WORK/sysca.json" status
expect_rc 69 sysca "a certificate from a CA the system does not trust"

check_no_secrets
pg_psql PG "SELECT * FROM meta; SELECT * FROM errors; SELECT * FROM password_migrations" \
    > "$WORK/pgdump.txt" || fail "cannot read the journal back"
check_no_secrets
log "PostgreSQL journal: unit tests, run/rerun, state migrate, config, TLS: ok"
