# tests/harness/samba.sh: a throwaway Samba AD domain controller on 127.0.0.1 for tests.
#
# Source this file from bash with TESTDIR set (tests/intg/lib.sh does that). Everything
# lives in $TESTDIR/samba (smb.conf, sam.ldb, TLS material, pid, logs): nothing under
# /etc/samba, /var/lib/samba or /run/samba is read or written.
#
#   samba_provision          provisions the domain EXAMPLE.TEST (DC=example,DC=test) with a
#                            random Administrator password; the DC is not running yet
#   samba_ldbadd LDIF        adds LDIF offline, straight into sam.ldb through Samba's own
#                            modules (passwords are hashed, GUIDs/SIDs/USNs assigned); much
#                            faster than LDAP adds
#   samba_ldbmodify LDIF     the same for changetype records
#   samba_run                starts `samba -i` with only the LDAP service (389, 636, 3268,
#                            3269 on 127.0.0.1/::1) and waits (bounded) for an answer;
#                            SAMBA_SERVICES=ldap,kdc adds the KDC (88, 464) for Kerberos tests
#   samba_start              samba_provision + samba_run
#   samba_stop               SIGTERM, bounded wait, SIGKILL; releases the port lock
#   samba_search ARGS...     ldapsearch -LLL as Administrator (ARGS appended)
#   samba_modify ARGS...     ldapmodify as Administrator
#
# Exports SAMBA_DIR SAMBA_URI (ldap://127.0.0.1) SAMBA_LDAPS_URI (ldaps://127.0.0.1)
# SAMBA_CA_FILE (a test CA whose server certificate names IP 127.0.0.1, so TLS is verified)
# SAMBA_BASE SAMBA_REALM SAMBA_ADMIN_DN SAMBA_ADMIN_UPN SAMBA_PW_FILE (0600).
#
# Ports: Samba's LDAP ports are fixed (389/636/3268/3269; smb.conf has no option to move
# them), so random ports are impossible. Instead samba_run takes an exclusive lock
# (flock on $SAMBA_LOCK, default /tmp/dirmig-samba-ldap.lock) that samba_stop releases:
# AD tests running in parallel under `make -j` wait for each other instead of colliding.
# The DC also exits by itself after SAMBA_MAX_RUNTIME seconds (default 900).
#
# Provisioning: --dns-backend=NONE, `ldb:nosync = true` (as Samba's own selftest), strong
# auth off (simple binds on ldap:// for the tests; one test uses LDAPS). Root is needed for
# ports below 1024.

: "${SAMBA:=$(command -v samba 2>/dev/null || echo /usr/sbin/samba)}"
: "${SAMBA_TOOL:=$(command -v samba-tool 2>/dev/null || echo /usr/bin/samba-tool)}"
: "${LDBADD:=$(command -v ldbadd 2>/dev/null || echo /usr/bin/ldbadd)}"
: "${LDBMODIFY:=$(command -v ldbmodify 2>/dev/null || echo /usr/bin/ldbmodify)}"
: "${SAMBA_LOCK:=/tmp/dirmig-samba-ldap.lock}"
: "${SAMBA_MAX_RUNTIME:=900}"
: "${SAMBA_SERVICES:=ldap}"
: "${SAMBA_LOCK_WAIT:=900}"
export LDAPNOINIT=1

_samba_die() {
    echo "samba harness: $*" >&2
    return 1
}

samba_provision() {
    [ -n "${TESTDIR:-}" ] && [ -d "$TESTDIR" ] || { _samba_die "TESTDIR is not set"; return 1; }
    SAMBA_DIR=$TESTDIR/samba
    SAMBA_REALM=EXAMPLE.TEST
    SAMBA_BASE=DC=example,DC=test
    SAMBA_ADMIN_DN="CN=Administrator,CN=Users,$SAMBA_BASE"
    SAMBA_ADMIN_UPN=Administrator@example.test
    SAMBA_URI=ldap://127.0.0.1
    SAMBA_LDAPS_URI=ldaps://127.0.0.1
    SAMBA_PW_FILE=$SAMBA_DIR/admin.pw
    export SAMBA_DIR SAMBA_REALM SAMBA_BASE SAMBA_ADMIN_DN SAMBA_ADMIN_UPN SAMBA_URI \
        SAMBA_LDAPS_URI SAMBA_PW_FILE
    local d=$SAMBA_DIR pw
    mkdir -p "$d/run" "$d/log" "$d/tls" || return 1
    # Complex enough for the default policy; no shell or LDIF specials.
    pw="Adm1-$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')"
    (umask 077 && printf '%s' "$pw" > "$SAMBA_PW_FILE") || return 1
    _slapd_tls_material || return 1
    SAMBA_CA_FILE=$TESTDIR/ca.pem
    export SAMBA_CA_FILE
    cp "$TESTDIR/tls/server.pem" "$d/tls/cert.pem" && cp "$TESTDIR/ca.pem" "$d/tls/ca.pem" &&
        (umask 077 && cp "$TESTDIR/tls/server.key" "$d/tls/key.pem") && chmod 0600 "$d/tls/key.pem" ||
        return 1
    # --option values go into the generated smb.conf, so the DC started later with
    # `-s $d/etc/smb.conf` finds all its state under $d.
    if ! "$SAMBA_TOOL" domain provision --targetdir="$d" --realm="$SAMBA_REALM" --domain=EXAMPLE \
        --server-role=dc --dns-backend=NONE --use-rfc2307 --adminpass="$pw" \
        --host-name=dc1 --host-ip=127.0.0.1 \
        --option="interfaces=lo" --option="bind interfaces only=yes" \
        --option="pid directory=$d/run" --option="ncalrpc dir=$d/run/ncalrpc" \
        --option="winbindd socket directory=$d/run/winbindd" \
        --option="ntp signd socket directory=$d/run/ntp_signd" \
        --option="log file=$d/log/log.%m" --option="ldb:nosync = true" \
        --option="tls enabled = yes" --option="tls keyfile = $d/tls/key.pem" \
        --option="tls certfile = $d/tls/cert.pem" --option="tls cafile = $d/tls/ca.pem" \
        > "$d/provision.log" 2>&1; then
        tail -20 "$d/provision.log" >&2
        _samba_die "provision failed (log: $d/provision.log)"
        return 1
    fi
}

samba_ldbadd() {
    "$LDBADD" -H "$SAMBA_DIR/private/sam.ldb" "$1" > "$SAMBA_DIR/ldbadd.log" 2>&1 || {
        tail -5 "$SAMBA_DIR/ldbadd.log" >&2
        _samba_die "ldbadd $1 failed"
    }
}

samba_ldbmodify() {
    "$LDBMODIFY" -H "$SAMBA_DIR/private/sam.ldb" "$1" > "$SAMBA_DIR/ldbmodify.log" 2>&1 || {
        tail -5 "$SAMBA_DIR/ldbmodify.log" >&2
        _samba_die "ldbmodify $1 failed"
    }
}

samba_run() {
    local d=$SAMBA_DIR i
    [ -n "$d" ] && [ -d "$d" ] || { _samba_die "not provisioned"; return 1; }
    # One DC on the fixed ports at a time (see above). fd 9 stays open in this shell.
    exec 9> "$SAMBA_LOCK" || return 1
    if ! flock -w "$SAMBA_LOCK_WAIT" 9; then
        _samba_die "another test holds $SAMBA_LOCK"
        return 1
    fi
    if [ -n "$(ss -Hltn 'sport = :389' 2> /dev/null)" ]; then
        _samba_die "something already listens on port 389"
        return 1
    fi
    "$SAMBA" -i -M single -s "$d/etc/smb.conf" --option="server services=$SAMBA_SERVICES" \
        --option='ldap server require strong auth=no' --maximum-runtime="$SAMBA_MAX_RUNTIME" \
        9>&- > "$d/samba.out" 2>&1 &
    echo $! > "$d/run/mypid"
    for i in $(seq 1 300); do
        if ldapsearch -x -H "$SAMBA_URI" -b '' -s base 1.1 > /dev/null 2>&1; then
            return 0
        fi
        kill -0 "$(cat "$d/run/mypid")" 2> /dev/null || break
        sleep 0.1
    done
    tail -20 "$d/samba.out" >&2
    _samba_die "the DC did not answer (log: $d/samba.out)"
    return 1
}

samba_start() {
    samba_provision && samba_run
}

samba_stop() {
    local d=${SAMBA_DIR:-} pid i
    [ -n "$d" ] && [ -f "$d/run/mypid" ] || return 0
    pid=$(cat "$d/run/mypid")
    if [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null; then
        kill -TERM "$pid" 2> /dev/null
        for i in $(seq 1 50); do
            kill -0 "$pid" 2> /dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2> /dev/null
    fi
    wait "$pid" 2> /dev/null
    rm -f "$d/run/mypid"
    exec 9>&- # releases the port lock
    return 0
}

samba_search() {
    ldapsearch -x -LLL -o ldif-wrap=no -H "$SAMBA_URI" -D "$SAMBA_ADMIN_UPN" -y "$SAMBA_PW_FILE" "$@"
}

samba_modify() {
    ldapmodify -x -H "$SAMBA_URI" -D "$SAMBA_ADMIN_UPN" -y "$SAMBA_PW_FILE" "$@"
}
