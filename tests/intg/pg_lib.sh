# tests/intg/pg_lib.sh: PostgreSQL state for the integration tests (sourced after lib.sh).
#
#   start_pg NAME [tls]     pg_start (tests/harness/pg.sh) that fails the test and registers
#                           the password as a secret (check_no_secrets looks for it)
#   pg_conninfo_file NAME DB OUT [extra]   a 0600 connection string file for database DB
#   pg_createdb NAME DB     creates database DB
#   pg_config OUT SRC DST CONNINFO_FILE [path=value ...]   mkconfig with state.type
#                           postgresql and state.conninfo_file

# shellcheck source=../harness/pg.sh
. "$top_srcdir/tests/harness/pg.sh"

[ -x "$PG_BINDIR/initdb" ] || skip "missing PostgreSQL server: $PG_BINDIR/initdb (postgresql-15)"
command -v "$PSQL" > /dev/null 2>&1 || skip "missing tool: psql"

start_pg() {
    pg_start "$@" || fail "could not start PostgreSQL $1"
    local v="${1}_PG_PW"
    register_secret "${!v}"
}

pg_conninfo_file() {
    local name=$1 db=$2 out=$3 extra=${4:-} pw port
    pw=$(cat "$TESTDIR/pg_$name.pw")
    port=$(cat "$TESTDIR/pg_$name/port")
    (umask 077 && printf '%s\n' "host=127.0.0.1 port=$port dbname=$db user=dirmig password=$pw $extra" > "$out")
}

pg_createdb() {
    local name=$1 d="$TESTDIR/pg_$1"
    PGPASSWORD=$(cat "$d.pw") "$PSQL" -X -q -h 127.0.0.1 -p "$(cat "$d/port")" -U dirmig \
        -d postgres -c "CREATE DATABASE $2" > /dev/null || fail "createdb $2 failed"
}

pg_config() {
    local out=$1 src=$2 dst=$3 ci=$4
    shift 4
    mkconfig "$out" "$src" "$dst" state.path=- state.type=postgresql "state.conninfo_file=$ci" "$@"
}
