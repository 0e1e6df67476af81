#!/bin/bash
# test_state_pg.sh: the state journal on PostgreSQL (state.type postgresql) against a
# throwaway cluster (tests/harness/pg.sh):
#   - the journal's unit tests (tests/unit/test_state.c built as test_state_pg) on it;
#   - a run and a rerun with the journal in PostgreSQL: the rerun writes nothing;
#   - `dirmig state migrate --from sqlite PATH` copies a SQLite journal: `dirmig status
#     --json` reads the same runs and counts from both; a second copy, a missing PATH and a
#     wrong --from are refused with their exit codes;
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
grep -q 'PASSED.*16 test' "$WORK/unit.out" || fail "test_state_pg: $(tail -n 3 "$WORK/unit.out")"

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
