# tests/harness/pg.sh: throwaway PostgreSQL clusters (Debian's postgresql-15) for tests and
# bench, like slapd.sh.
#
# Source this file from bash with TESTDIR set to a scratch directory (tests/intg/lib.sh does
# that). Every cluster lives in $TESTDIR/pg_NAME, made by initdb and owned by the user the
# server runs as: initdb and postgres refuse to run as root, so as root (CI) they run as
# PG_USER (default nobody) through runuser(1), and $TESTDIR is opened for traversal
# (0711, nothing listed). The server listens on 127.0.0.1 on a free port and on a Unix
# socket in pg_NAME/run; password authentication (scram-sha-256) for everyone, so that
# the tests use a connection string with a password, as a deployment does.
#
#   pg_start NAME [tls]
#       initdb (UTF-8, C collation; superuser "dirmig" whose password is in pg_NAME.pw,
#       0600), start, wait (bounded), create database "dirmig". Exports
#         NAME_PG_PORT       the TCP port on 127.0.0.1
#         NAME_PG_SOCKDIR    the Unix socket directory
#         NAME_PG_PW         the password
#         NAME_PG_CONNINFO   "host=127.0.0.1 port=P dbname=dirmig user=dirmig password=..."
#         NAME_PG_CONNINFO_FILE  the same in a 0600 file (state.conninfo_file)
#       With `tls` the server also speaks TLS with a certificate for 127.0.0.1 and
#       localhost (and pg.dirmig.test, a name that is not loopback: with hostaddr=127.0.0.1
#       it stands for a remote server) signed by a throwaway CA: NAME_PG_CA_FILE
#       (= $TESTDIR/pg_NAME/ca.pem).
#   pg_stop NAME       fast shutdown (bounded wait), then SIGKILL
#   pg_kill NAME       SIGKILL of the postmaster (its backends exit when they notice)
#   pg_restart NAME    stop and start on the same port with the same data
#   pg_start_again NAME  start a stopped cluster (same port, same data)
#   pg_psql NAME SQL   runs SQL with psql (-At, as dirmig over TCP), prints the rows
#   pg_stop_all        stops every cluster under $TESTDIR
#
# Tools can be overridden: PG_BINDIR (default /usr/lib/postgresql/15/bin), PSQL, PG_USER.

: "${PG_BINDIR:=/usr/lib/postgresql/15/bin}"
: "${PSQL:=psql}"
: "${PG_USER:=nobody}"
: "${OPENSSL:=openssl}"

_pg_die() {
    echo "pg harness: $*" >&2
    return 1
}

# Runs a command as the cluster's owner (root cannot run initdb or postgres).
_pg_as() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

_pg_check_name() {
    case "$1" in
    '' | [0-9]* | *[!A-Za-z0-9_]*) _pg_die "bad cluster name '$1'"; return 1 ;;
    esac
    [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR" ] || { _pg_die "TESTDIR is not set"; return 1; }
}

_pg_free_port() {
    if declare -F free_port > /dev/null; then
        free_port
    else
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    fi
}

# A CA and a server certificate for 127.0.0.1/localhost, readable by the server's user.
_pg_tls() {
    local d=$1
    "$OPENSSL" req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=dirmig test pg CA" \
        -keyout "$d/ca.key" -out "$d/ca.pem" > /dev/null 2>&1 || return 1
    "$OPENSSL" req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/server.key" \
        -out "$d/server.csr" > /dev/null 2>&1 || return 1
    printf 'subjectAltName=DNS:localhost,DNS:pg.dirmig.test,IP:127.0.0.1\n' > "$d/san.ext"
    "$OPENSSL" x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
        -CAcreateserial -days 2 -extfile "$d/san.ext" -out "$d/server.crt" > /dev/null 2>&1 ||
        return 1
    chmod 0600 "$d/server.key"
    if [ "$(id -u)" = 0 ]; then chown "$PG_USER" "$d/server.key" "$d/server.crt"; fi
}

_pg_wait_ready() {
    local name=$1 port=$2 pw=$3 i
    for i in $(seq 1 150); do
        if PGPASSWORD=$pw PGCONNECT_TIMEOUT=2 "$PSQL" -X -At -h 127.0.0.1 -p "$port" \
            -U dirmig -d postgres -c 'SELECT 1' > /dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    _pg_die "cluster $name did not answer on 127.0.0.1:$port (see $TESTDIR/pg_$name/server.log)"
}

_pg_launch() {
    local name=$1 d="$TESTDIR/pg_$1"
    _pg_as "$PG_BINDIR/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $(cat "$d/port") -c unix_socket_directories=$d/run" \
        start > /dev/null 2>&1 || { _pg_die "pg_ctl start $name failed: $(tail -n 5 "$d/server.log")"; return 1; }
    _pg_wait_ready "$name" "$(cat "$d/port")" "$(cat "$d.pw")"
}

pg_start() {
    local name=$1 tls=${2:-} d port pw
    _pg_check_name "$name" || return 1
    [ -x "$PG_BINDIR/initdb" ] || { _pg_die "no initdb at $PG_BINDIR (postgresql-15)"; return 1; }
    d="$TESTDIR/pg_$name"
    port=$(_pg_free_port)
    pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    mkdir -p "$d/run" || return 1
    (umask 077 && printf '%s\n' "$pw" > "$d.pw")
    if [ "$(id -u)" = 0 ]; then
        chmod 0711 "$TESTDIR"
        chown -R "$PG_USER" "$d"
        # the password file initdb reads: the server's user only, removed after
        cp "$d.pw" "$d/run/pwfile" && chown "$PG_USER" "$d/run/pwfile" && chmod 0600 "$d/run/pwfile"
    else
        cp "$d.pw" "$d/run/pwfile"
    fi
    chmod 0700 "$d"
    echo "$port" > "$d/port"
    _pg_as "$PG_BINDIR/initdb" -D "$d/data" -U dirmig --pwfile="$d/run/pwfile" -E UTF8 \
        --locale=C --auth=scram-sha-256 > "$d/initdb.log" 2>&1 ||
        { _pg_die "initdb $name failed: $(tail -n 5 "$d/initdb.log")"; return 1; }
    rm -f "$d/run/pwfile"
    {
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        echo "max_connections = 100"
        echo "shared_buffers = 32MB"
    } >> "$d/data/postgresql.conf"
    if [ "$tls" = tls ]; then
        _pg_tls "$d" || { _pg_die "TLS set-up for $name failed"; return 1; }
        {
            echo "ssl = on"
            echo "ssl_cert_file = '$d/server.crt'"
            echo "ssl_key_file = '$d/server.key'"
        } >> "$d/data/postgresql.conf"
        printf -v "${name}_PG_CA_FILE" '%s' "$d/ca.pem"
        export "${name}_PG_CA_FILE"
    fi
    _pg_launch "$name" || return 1
    PGPASSWORD=$pw "$PSQL" -X -q -h 127.0.0.1 -p "$port" -U dirmig -d postgres \
        -c 'CREATE DATABASE dirmig' > /dev/null || { _pg_die "createdb on $name failed"; return 1; }
    printf -v "${name}_PG_PORT" '%s' "$port"
    printf -v "${name}_PG_SOCKDIR" '%s' "$d/run"
    printf -v "${name}_PG_PW" '%s' "$pw"
    printf -v "${name}_PG_CONNINFO" '%s' "host=127.0.0.1 port=$port dbname=dirmig user=dirmig password=$pw"
    (umask 077 && printf '%s\n' "host=127.0.0.1 port=$port dbname=dirmig user=dirmig password=$pw" > "$d.conninfo")
    printf -v "${name}_PG_CONNINFO_FILE" '%s' "$d.conninfo"
    export "${name}_PG_PORT" "${name}_PG_SOCKDIR" "${name}_PG_PW" "${name}_PG_CONNINFO" \
        "${name}_PG_CONNINFO_FILE"
}

pg_stop() {
    local d="$TESTDIR/pg_$1"
    [ -f "$d/data/postmaster.pid" ] || return 0
    _pg_as "$PG_BINDIR/pg_ctl" -D "$d/data" -m fast -w -t 20 stop > /dev/null 2>&1 || pg_kill "$1"
}

pg_kill() {
    local d="$TESTDIR/pg_$1" pid
    [ -f "$d/data/postmaster.pid" ] || return 0
    pid=$(head -n 1 "$d/data/postmaster.pid")
    kill -9 "$pid" 2> /dev/null
    # the backends notice the postmaster's death; wait for the port to be free
    for _ in $(seq 1 100); do
        [ -n "$(ss -Hltn "sport = :$(cat "$d/port")" 2>/dev/null)" ] || break
        sleep 0.1
    done
    rm -f "$d/data/postmaster.pid"
}

pg_start_again() {
    _pg_launch "$1"
}

pg_restart() {
    pg_stop "$1" && _pg_launch "$1"
}

pg_psql() {
    local name=$1 d="$TESTDIR/pg_$1"
    shift
    PGPASSWORD=$(cat "$d.pw") "$PSQL" -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$d/port")" \
        -U dirmig -d dirmig -c "$*"
}

pg_stop_all() {
    local d
    [ -n "${TESTDIR:-}" ] || return 0
    for d in "$TESTDIR"/pg_*/; do
        [ -d "$d" ] || continue
        d=${d%/}
        pg_stop "${d##*/pg_}"
    done
}
