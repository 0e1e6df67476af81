# tests/harness/slapd.sh: throwaway OpenLDAP slapd instances on 127.0.0.1 for tests and bench.
#
# Source this file from bash with TESTDIR set to a scratch directory (tests/intg/lib.sh does
# that). Every instance lives in $TESTDIR/NAME:
#     slapd.conf  admin.pw (0600, the rootdn password; the conf only holds an {SSHA} hash)
#     db/  run/ (pid, ldapi socket)  slapd.log  port  tlsport
#
#   slapd_start NAME SUFFIX LDIF [dbnosync] [tls] [external] [online]
#       LDIF may be "" or "-" for an empty database (then nothing is loaded at all).
#       LDIF is loaded with slapadd -q before the start, or with `online` through ldapadd
#       as the rootdn after the start. The difference matters for DN-valued attributes:
#       slapadd keeps "cn=Doe\, Jane" as written while an LDAP add stores the server's
#       pretty form "cn=Doe\2C Jane"; load a source online when its dump is compared with
#       a target that dirmig filled over LDAP.
#       Exports NAME_URI NAME_PORT NAME_LDAPI NAME_PW_FILE NAME_ROOTDN NAME_SUFFIX, and with
#       tls also NAME_LDAPS_URI NAME_TLS_PORT NAME_CA_FILE (= $TESTDIR/ca.pem).
#       NAME must be a shell identifier (e.g. SRC, DST_A).
#       With `stats`, slapd runs with -d 256 and logs every operation (conn=N op=N BIND
#       dn=..., SRCH base=...) to NAME/slapd.log, for tests that count LDAP operations.
#       With `syncprov` the database gets the syncprov overlay (RFC 4533 content
#       synchronisation, slapo-syncprov(5): module syncprov, entryCSN and entryUUID
#       indexed) with a session log of 10000 operations, so that a refreshOnly search
#       with a cookie names the deleted entries; `syncprov_log=N` sets the session log
#       size, and N = 0 leaves it out, so the server answers with a present phase (the
#       UUIDs of every unchanged entry) instead. The session log lives in memory only: a
#       restarted instance answers the first cookie from before with a present phase.
#       With `dbconf=FILE`, the lines of FILE are appended to the database section of
#       slapd.conf (access rules, limits, more indexes); edit NAME/slapd.conf and
#       slapd_restart to change them later.
#       With `ppolicy=N`, the ppolicy overlay locks an account after N failed binds
#       (pwdMaxFailure N, pwdLockout TRUE, pwdLockoutDuration 600, no failure-count
#       interval): the policy cn=default,ou=policies,SUFFIX is added after the start and is
#       the default policy (ppolicy_use_lockout: a locked bind says so). The rootdn bypasses
#       the policy. Exports NAME_POLICY_DN.
#   slapd_stop NAME        SIGTERM, wait (bounded), then SIGKILL
#   slapd_kill NAME        SIGKILL at once
#   slapd_restart NAME     stop and start again on the same ports with the same database
#   slapd_reload NAME LDIF stop, replace the database by LDIF (slapadd -q), start again on the
#                          same ports with the same rootdn password (another database, or a
#                          restored backup, behind the same URI)
#   slapd_dump NAME OUT    slapcat of the instance's database (operational attributes
#                          included: entryUUID, entryCSN, contextCSN) into OUT
#   slapd_stop_all         stops every instance under $TESTDIR
#   free_port              prints a free TCP port on 127.0.0.1
#   slapd_count NAME BASE [FILTER]   prints the number of entries (rootdn, subtree)
#   slapd_search NAME ARGS...        ldapsearch -LLL as rootdn against NAME (ARGS appended)
#
# Tools can be overridden: SLAPD SLAPADD SLAPCAT SLAPPASSWD LDAPSEARCH PYTHON3 OPENSSL.

: "${SLAPD:=/usr/sbin/slapd}"
: "${SLAPADD:=/usr/sbin/slapadd}"
: "${SLAPCAT:=/usr/sbin/slapcat}"
: "${SLAPPASSWD:=$(command -v slappasswd 2>/dev/null || echo /usr/sbin/slappasswd)}"
: "${LDAPSEARCH:=ldapsearch}"
: "${PYTHON3:=python3}"
: "${OPENSSL:=openssl}"
: "${SLAPD_SCHEMA_DIR:=/etc/ldap/schema}"
: "${SLAPD_MODULE_DIR:=/usr/lib/ldap}"
export LDAPNOINIT=1

_slapd_die() {
    echo "slapd harness: $*" >&2
    return 1
}

_slapd_check_name() {
    case "$1" in
    '' | [0-9]* | *[!A-Za-z0-9_]*) _slapd_die "bad instance name '$1'"; return 1 ;;
    esac
    [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR" ] || { _slapd_die "TESTDIR is not set"; return 1; }
}

# A port below the ephemeral range (so outgoing connections cannot take it) that nothing
# listens on and that this TESTDIR has not handed out yet. Python is slow to start here, so
# ss(8) is used when present.
free_port() {
    local p i used="${TESTDIR:-/tmp}/.ports"
    if command -v ss > /dev/null 2>&1; then
        for i in $(seq 1 200); do
            p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
            grep -qx "$p" "$used" 2>/dev/null && continue
            [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && continue
            echo "$p" >> "$used" 2>/dev/null
            echo "$p"
            return 0
        done
    fi
    "$PYTHON3" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Percent-encodes everything but [A-Za-z0-9._~-] (for ldapi:// socket paths).
_slapd_urlencode() {
    local s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case "$c" in
        [A-Za-z0-9._~-]) out+=$c ;;
        *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s\n' "$out"
}

# A random printable password (no shell or LDIF specials).
_slapd_random_pw() {
    local r
    r=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
    printf 'Adm-%s\n' "$r"
}

# Generates once per TESTDIR: ca.pem/ca.key and server.pem/server.key (SAN IP:127.0.0.1).
_slapd_tls_material() {
    local d="$TESTDIR/tls"
    [ -f "$TESTDIR/ca.pem" ] && [ -f "$d/server.pem" ] && return 0
    mkdir -p "$d" || return 1
    (
        set -e
        cd "$d"
        "$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout ca.key -out ca.pem -days 2 -subj "/CN=dirmig test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign"
        "$OPENSSL" req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
        printf '%s\n' "basicConstraints=CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" > ext.cnf
        "$OPENSSL" x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out server.pem -days 2 -extfile ext.cnf
        chmod 0644 server.key
    ) > "$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; _slapd_die "openssl failed"; return 1; }
    cp "$d/ca.pem" "$TESTDIR/ca.pem"
}

_slapd_write_conf() {
    local name=$1 suffix=$2 dir=$3 hash=$4 nosync=$5 tls=$6 external=$7 synclog=$8 ppolicy=${9:-0}
    {
        local s
        for s in core cosine nis inetorgperson; do
            echo "include $SLAPD_SCHEMA_DIR/$s.schema"
        done
        echo "pidfile $dir/run/slapd.pid"
        echo "argsfile $dir/run/slapd.args"
        echo "modulepath $SLAPD_MODULE_DIR"
        echo "moduleload back_mdb"
        echo "moduleload pw-sha2"
        [ -e "$SLAPD_MODULE_DIR/pw-pbkdf2.so" ] && echo "moduleload pw-pbkdf2"
        echo "moduleload argon2"
        if [ -n "$synclog" ]; then echo "moduleload syncprov"; fi
        [ "$ppolicy" -gt 0 ] && echo "moduleload ppolicy"
        if [ "$tls" = 1 ]; then
            echo "TLSCACertificateFile $TESTDIR/ca.pem"
            echo "TLSCertificateFile $TESTDIR/tls/server.pem"
            echo "TLSCertificateKeyFile $TESTDIR/tls/server.key"
        fi
        if [ "$external" = 1 ]; then
            echo "authz-regexp \"gidNumber=$(id -g)\\\\+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth\" \"cn=admin,$suffix\""
        fi
        echo "database mdb"
        echo "maxsize 1073741824"
        echo "suffix \"$suffix\""
        echo "rootdn \"cn=admin,$suffix\""
        echo "rootpw $hash"
        echo "directory $dir/db"
        [ "$nosync" = 1 ] && echo "dbnosync"
        echo "index objectClass eq"
        echo "index uid,cn eq"
        if [ -n "$synclog" ]; then
            # slapo-syncprov(5): entryCSN and entryUUID must be indexed (eq)
            echo "index entryCSN eq"
            echo "index entryUUID eq"
            echo "overlay syncprov"
            if [ "$synclog" != 0 ]; then echo "syncprov-sessionlog $synclog"; fi
        else
            echo "index entryUUID eq"
        fi
        if [ "$ppolicy" -gt 0 ]; then
            echo "overlay ppolicy"
            echo "ppolicy_default \"cn=default,ou=policies,$suffix\""
            echo "ppolicy_use_lockout"
        fi
    } > "$dir/slapd.conf"
}

# Adds ou=policies and the default password policy (pwdMaxFailure $2) to a running NAME.
_slapd_add_policy() {
    local name=$1 max=$2 dir="$TESTDIR/$1" suffix
    suffix=$(cat "$dir/suffix")
    printf '%s\n' "dn: ou=policies,$suffix" "objectClass: organizationalUnit" "ou: policies" "" \
        "dn: cn=default,ou=policies,$suffix" "objectClass: device" "objectClass: pwdPolicy" \
        "cn: default" "pwdAttribute: userPassword" "pwdMaxFailure: $max" "pwdLockout: TRUE" \
        "pwdLockoutDuration: 600" "pwdFailureCountInterval: 0" "pwdMustChange: FALSE" \
        "pwdAllowUserChange: TRUE" "pwdCheckQuality: 0" > "$dir/policy.ldif"
    "${LDAPADD:-ldapadd}" -x -H "ldap://127.0.0.1:$(cat "$dir/port")" -D "cn=admin,$suffix" \
        -y "$dir/admin.pw" -f "$dir/policy.ldif" > "$dir/policy.log" 2>&1 || {
        cat "$dir/policy.log" >&2
        _slapd_die "adding the password policy to $name failed"
        return 1
    }
    eval "export ${name}_POLICY_DN=\"cn=default,ou=policies,\$suffix\""
}

# Launches slapd for an already configured instance and waits until it answers.
_slapd_launch() {
    local name=$1 dir="$TESTDIR/$1"
    local port tlsport ldapi urls i pid
    port=$(cat "$dir/port")
    ldapi="ldapi://$(_slapd_urlencode "$dir/run/ldapi")"
    urls="ldap://127.0.0.1:$port/ $ldapi"
    if [ -f "$dir/tlsport" ]; then
        tlsport=$(cat "$dir/tlsport")
        urls="$urls ldaps://127.0.0.1:$tlsport/"
    fi
    rm -f "$dir/run/ldapi" "$dir/run/slapd.pid"
    "$SLAPD" -d "$(cat "$dir/debuglevel" 2>/dev/null || echo 0)" -h "$urls" -f "$dir/slapd.conf" \
        >> "$dir/slapd.log" 2>&1 &
    pid=$!
    echo "$pid" > "$dir/run/mypid"
    # Ready when an anonymous rootDSE read works; at most ~10 s.
    for i in $(seq 1 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$dir/slapd.log" >&2
            _slapd_die "slapd $name exited during start-up"
            return 1
        fi
        if "$LDAPSEARCH" -x -LLL -H "ldap://127.0.0.1:$port" -b "" -s base 1.1 \
            > /dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$dir/slapd.log" >&2
    _slapd_die "slapd $name did not answer on port $port within 10 s"
    return 1
}

_slapd_export() {
    local name=$1 dir="$TESTDIR/$1" suffix
    suffix=$(cat "$dir/suffix")
    eval "export ${name}_PORT=\$(cat \"\$dir/port\")"
    eval "export ${name}_URI=\"ldap://127.0.0.1:\$${name}_PORT\""
    eval "export ${name}_LDAPI=\"ldapi://\$(_slapd_urlencode \"\$dir/run/ldapi\")\""
    eval "export ${name}_PW_FILE=\"\$dir/admin.pw\""
    eval "export ${name}_SUFFIX=\"\$suffix\""
    eval "export ${name}_ROOTDN=\"cn=admin,\$suffix\""
    if [ -f "$dir/tlsport" ]; then
        eval "export ${name}_TLS_PORT=\$(cat \"\$dir/tlsport\")"
        eval "export ${name}_LDAPS_URI=\"ldaps://127.0.0.1:\$${name}_TLS_PORT\""
        eval "export ${name}_CA_FILE=\"\$TESTDIR/ca.pem\""
    fi
}

slapd_start() {
    local name=$1 suffix=$2 ldif=${3:-}
    shift 3 2>/dev/null || shift $#
    _slapd_check_name "$name" || return 1
    local nosync=0 tls=0 external=0 online=0 stats=0 synclog="" dbconf="" ppolicy=0 opt
    for opt in "$@"; do
        case "$opt" in
        dbnosync) nosync=1 ;;
        tls) tls=1 ;;
        external) external=1 ;;
        online) online=1 ;;
        stats) stats=1 ;;
        syncprov) synclog=10000 ;;
        syncprov_log=*)
            synclog=${opt#syncprov_log=}
            case "$synclog" in '' | *[!0-9]*) _slapd_die "bad option '$opt'"; return 1 ;; esac
            ;;
        dbconf=?*) dbconf=${opt#dbconf=} ;;
        ppolicy=[1-9]*) ppolicy=${opt#ppolicy=} ;;
        *) _slapd_die "unknown option '$opt'"; return 1 ;;
        esac
    done
    local dir="$TESTDIR/$name"
    [ -e "$dir" ] && { _slapd_die "instance $name already exists"; return 1; }
    mkdir -p "$dir/db" "$dir/run" || return 1
    if [ "$stats" = 1 ]; then echo 256 > "$dir/debuglevel"; fi
    local pw hash
    pw=$(_slapd_random_pw) || return 1
    (umask 077 && printf '%s' "$pw" > "$dir/admin.pw") || return 1
    chmod 0600 "$dir/admin.pw"
    hash=$("$SLAPPASSWD" -h '{SSHA}' -T "$dir/admin.pw") || { _slapd_die "slappasswd failed"; return 1; }
    printf '%s\n' "$suffix" > "$dir/suffix"
    free_port > "$dir/port" || return 1
    if [ "$tls" = 1 ]; then
        _slapd_tls_material || return 1
        free_port > "$dir/tlsport" || return 1
    fi
    _slapd_write_conf "$name" "$suffix" "$dir" "$hash" "$nosync" "$tls" "$external" "$synclog" \
        "$ppolicy" || return 1
    if [ -n "$dbconf" ]; then
        cat "$dbconf" >> "$dir/slapd.conf" || return 1
    fi
    if [ -n "$ldif" ] && [ "$ldif" != "-" ] && [ "$online" = 0 ]; then
        if ! "$SLAPADD" -q -f "$dir/slapd.conf" -l "$ldif" > "$dir/slapadd.log" 2>&1; then
            tail -n 20 "$dir/slapadd.log" >&2
            _slapd_die "slapadd of $ldif into $name failed"
            return 1
        fi
    fi
    # Another process may grab the chosen port before slapd binds it: retry on new ports.
    local attempt
    for attempt in 1 2 3; do
        _slapd_launch "$name" && break
        # slapd -d 0 does not say why it exited; a clash is the likely cause of a failed
        # start once slapadd has accepted the config, so try new ports.
        [ "$attempt" -lt 3 ] || return 1
        echo "slapd harness: retrying $name on new ports" >&2
        free_port > "$dir/port" || return 1
        [ -f "$dir/tlsport" ] && { free_port > "$dir/tlsport" || return 1; }
    done
    _slapd_export "$name"
    if [ "$ppolicy" -gt 0 ]; then
        _slapd_add_policy "$name" "$ppolicy" || return 1
    fi
    if [ -n "$ldif" ] && [ "$ldif" != "-" ] && [ "$online" = 1 ]; then
        if ! "${LDAPADD:-ldapadd}" -x -H "ldap://127.0.0.1:$(cat "$dir/port")" \
            -D "cn=admin,$suffix" -y "$dir/admin.pw" -f "$ldif" > "$dir/ldapadd.log" 2>&1; then
            tail -n 20 "$dir/ldapadd.log" >&2
            _slapd_die "ldapadd of $ldif into $name failed"
            return 1
        fi
    fi
}

# Waits (bounded) for the instance's process to exit; SIGKILL after ~10 s.
_slapd_wait_gone() {
    local pid=$1 i
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
    sleep 0.2
    return 0
}

slapd_stop() {
    local name=$1 dir="$TESTDIR/$1" pid
    [ -f "$dir/run/mypid" ] || return 0
    pid=$(cat "$dir/run/mypid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        _slapd_wait_gone "$pid"
    fi
    wait "$pid" 2>/dev/null
    rm -f "$dir/run/mypid"
    return 0
}

slapd_kill() {
    local name=$1 dir="$TESTDIR/$1" pid
    [ -f "$dir/run/mypid" ] || return 0
    pid=$(cat "$dir/run/mypid")
    kill -9 "$pid" 2>/dev/null
    _slapd_wait_gone "$pid"
    wait "$pid" 2>/dev/null
    rm -f "$dir/run/mypid"
    return 0
}

slapd_restart() {
    local name=$1
    _slapd_check_name "$name" || return 1
    [ -f "$TESTDIR/$name/slapd.conf" ] || { _slapd_die "no instance $name"; return 1; }
    slapd_stop "$name"
    _slapd_launch "$name" || return 1
    _slapd_export "$name"
}

slapd_reload() {
    local name=$1 ldif=$2 dir="$TESTDIR/$1"
    _slapd_check_name "$name" || return 1
    [ -f "$dir/slapd.conf" ] || { _slapd_die "no instance $name"; return 1; }
    slapd_stop "$name"
    rm -rf "$dir/db" && mkdir -p "$dir/db" || return 1
    if ! "$SLAPADD" -q -f "$dir/slapd.conf" -l "$ldif" > "$dir/slapadd.log" 2>&1; then
        tail -n 20 "$dir/slapadd.log" >&2
        _slapd_die "slapadd of $ldif into $name failed"
        return 1
    fi
    _slapd_launch "$name" || return 1
    _slapd_export "$name"
}

slapd_dump() {
    local name=$1 out=$2 dir="$TESTDIR/$1"
    [ -f "$dir/slapd.conf" ] || { _slapd_die "no instance $name"; return 1; }
    "$SLAPCAT" -f "$dir/slapd.conf" -l "$out" > "$dir/slapcat.log" 2>&1 ||
        { tail -n 20 "$dir/slapcat.log" >&2; _slapd_die "slapcat of $name failed"; return 1; }
}

slapd_stop_all() {
    [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR" ] || return 0
    local f
    for f in "$TESTDIR"/*/run/mypid; do
        [ -f "$f" ] || continue
        slapd_stop "$(basename "$(dirname "$(dirname "$f")")")"
    done
    return 0
}

slapd_search() {
    local name=$1
    shift
    local dir="$TESTDIR/$name"
    "$LDAPSEARCH" -x -LLL -o ldif-wrap=no -H "ldap://127.0.0.1:$(cat "$dir/port")" \
        -D "cn=admin,$(cat "$dir/suffix")" -y "$dir/admin.pw" "$@"
}

slapd_count() {
    local name=$1 base=$2 filter=${3:-(objectClass=*)}
    slapd_search "$name" -b "$base" "$filter" 1.1 2>/dev/null | grep -c '^dn:'
}
