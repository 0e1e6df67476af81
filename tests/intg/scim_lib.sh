# tests/intg/scim_lib.sh: the SCIM 2.0 server of tests/scim (SCIMMY and its Express routers
# on Debian's nodejs) and its fault-injecting proxy, for the integration tests. Sourced after
# lib.sh.
#
#   scim_modules        makes sure tests/scim's pinned node_modules exist (npm ci, into
#                       $TESTDIR when the source tree is read-only, as under distcheck)
#   start_scim NAME [proxy args...]
#                       starts the server (token $SECRETS/scim.token) and, with proxy args
#                       (--fail-5xx P --drop P --seed N), the proxy in front of it; sets
#                       NAME_PORT (what dirmig talks to) and NAME_SERVER_PORT (the server).
#   scim_get NAME PATH  GET on the server (not through the proxy) with the token
NODE=${NODE:-$(command -v node || command -v nodejs || echo node)}
SCIM_DIR=$top_srcdir/tests/scim

scim_modules() {
    command -v "$NODE" > /dev/null 2>&1 || skip "node (Debian nodejs) is not installed"
    if [ -d "$SCIM_DIR/node_modules/scimmy-routers" ]; then
        SCIM_RUN=$SCIM_DIR
        return 0
    fi
    SCIM_RUN=$TESTDIR/scim
    mkdir -p "$SCIM_RUN"
    cp "$SCIM_DIR/package.json" "$SCIM_DIR/package-lock.json" "$SCIM_DIR"/*.js "$SCIM_RUN/"
    (cd "$SCIM_RUN" && npm ci --no-audit --no-fund --prefer-offline > npm.log 2>&1) ||
        fail "npm ci in $SCIM_RUN failed: $(tail -n 5 "$SCIM_RUN/npm.log")"
}

_wait_ready() { # FILE: prints the port of "READY <port>"
    local i port=""
    for i in $(seq 1 200); do
        port=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$1" 2> /dev/null)
        [ -n "$port" ] && break
        sleep 0.05
    done
    echo "$port"
}

start_scim() {
    local name=$1 port sport
    shift
    [ -n "${SCIM_RUN:-}" ] || scim_modules
    [ -f "$SECRETS/scim.token" ] ||
        write_secret "$SECRETS/scim.token" "scim-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    "$NODE" "$SCIM_RUN/scim_server.js" --port 0 --token-file "$SECRETS/scim.token" \
        > "$WORK/$name.out" 2> "$WORK/$name.err" &
    DM_BG_PIDS="$DM_BG_PIDS $!"
    sport=$(_wait_ready "$WORK/$name.out")
    [ -n "$sport" ] || fail "scim_server.js $name did not start: $(cat "$WORK/$name.err")"
    port=$sport
    if [ $# -gt 0 ]; then
        "$NODE" "$SCIM_RUN/fault_proxy.js" --port 0 --upstream "$sport" "$@" \
            > "$WORK/${name}_proxy.out" 2> "$WORK/${name}_proxy.err" &
        DM_BG_PIDS="$DM_BG_PIDS $!"
        port=$(_wait_ready "$WORK/${name}_proxy.out")
        [ -n "$port" ] || fail "fault_proxy.js $name did not start"
    fi
    printf -v "${name}_PORT" '%s' "$port"
    printf -v "${name}_SERVER_PORT" '%s' "$sport"
}

scim_get() { # NAME PATH
    local p="${1}_SERVER_PORT"
    curl -sf -H "Authorization: Bearer $(cat "$SECRETS/scim.token")" "http://127.0.0.1:${!p}$2"
}
