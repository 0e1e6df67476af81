#!/bin/bash
# test_config_errors.sh: bad configs exit 78 with file:line:col and the key path; an
# unreachable server exits 69; a refused bind exits 77. None of them writes to the target or
# records objects in the state journal, and no secret reaches dirmig's output.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

gen_users --suffix dc=src,dc=example --users 20 --groups 5 --big-group 10 --schemes fast --ldif "$DATA/src.ldif" --passwords "$SECRETS/src.pw"
add_canary "$DATA/src.ldif" dc=src,dc=example
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC dc=src,dc=example "$DATA/src.ldif"
start_server DST dc=dst,dc=example "$DATA/dst.ldif"

before=$(slapd_count DST dc=dst,dc=example)
[ "$before" = 3 ] || fail "target seed has $before entries, want 3"

# key_pos FILE KEY: "line:col" of the first '"KEY":' in FILE (col of the opening quote).
key_pos() {
    awk -v k="\"$2\":" 'index($0, k) { print NR ":" index($0, k); exit }' "$1"
}

# expect_config_error TAG KEYPATH [POS]: dirmig run with $WORK/TAG.json exits 78 and names
# the file, a line:col (exactly POS when given) and KEYPATH.
expect_config_error() {
    local tag=$1 keypath=$2 pos=${3:-}
    dm "$tag" -c "$WORK/$tag.json" run
    expect_rc 78 "$tag" "config error ($keypath)"
    if [ -n "$pos" ]; then
        grep -qF "$tag.json:$pos" "$WORK/$tag.err" ||
            fail "$tag: stderr lacks '$tag.json:$pos': $(head -c 300 "$WORK/$tag.err")"
    else
        grep -qE "$tag\.json:[0-9]+:[0-9]+" "$WORK/$tag.err" ||
            fail "$tag: stderr lacks '$tag.json:LINE:COL': $(head -c 300 "$WORK/$tag.err")"
    fi
    grep -qF "$keypath" "$WORK/$tag.err" ||
        fail "$tag: stderr does not name '$keypath': $(head -c 300 "$WORK/$tag.err")"
    log "ok: $tag -> 78 naming $keypath"
}

# 0. The good config works (check only), so the failures below are about what they change.
mkconfig "$WORK/good.json" SRC DST
dm good -c "$WORK/good.json" check
expect_rc 0 good "check with a good config"

# 1. Unknown key.
mkconfig "$WORK/unknown.json" SRC DST source.pagesize=100
expect_config_error unknown source.pagesize "$(key_pos "$WORK/unknown.json" pagesize)"

# 2. Wrong type.
mkconfig "$WORK/wrongtype.json" SRC DST 'source.page_size="100"'
expect_config_error wrongtype source.page_size "$(key_pos "$WORK/wrongtype.json" page_size)"

# 3. Missing required key.
mkconfig "$WORK/missing.json" SRC DST source.uri=-
expect_config_error missing source.uri

# 4. Inline password (the real one, so a leak would be caught below).
mkconfig "$WORK/inline.json" SRC DST source.bind_pw_file=- "source.bind_pw=\"$(cat "$SRC_PW_FILE")\""
expect_config_error inline source.bind_pw "$(key_pos "$WORK/inline.json" bind_pw)"
mv "$WORK/inline.json" "$DATA/inline.json" # it holds the password on purpose

# 5. A password file readable by others is refused.
cp "$DST_PW_FILE" "$SECRETS/open.pw" && chmod 0644 "$SECRETS/open.pw"
mkconfig "$WORK/openpw.json" SRC DST "target.bind_pw_file=\"$SECRETS/open.pw\""
expect_config_error openpw target.bind_pw_file

# 6. Unreachable server (a port nothing listens on): check and run exit 69.
closed=$(free_port)
for cmd in check run; do
    mkconfig "$WORK/unreach.json" SRC DST "source.uri=\"ldap://127.0.0.1:$closed\"" \
        source.network_timeout_ms=2000
    dm "unreach-$cmd" -c "$WORK/unreach.json" "$cmd"
    expect_rc 69 "unreach-$cmd" "$cmd against a closed port"
    grep -qiE "connect|contact|unreachable|unavailable|refused" "$WORK/unreach-$cmd.err" ||
        fail "unreach-$cmd: no clear message: $(head -c 300 "$WORK/unreach-$cmd.err")"
    grep -qF "127.0.0.1:$closed" "$WORK/unreach-$cmd.err" ||
        log "note: unreach-$cmd message does not name the URI"
done
log "ok: unreachable -> 69"

# 7. Wrong bind password (target, then source): check and run exit 77.
write_secret "$SECRETS/wrong.pw" "Wrong-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
for side in target source; do
    mkconfig "$WORK/badpw.json" SRC DST "$side.bind_pw_file=\"$SECRETS/wrong.pw\""
    for cmd in check run; do
        dm "badpw-$side-$cmd" -c "$WORK/badpw.json" "$cmd"
        expect_rc 77 "badpw-$side-$cmd" "$cmd with a wrong $side password"
        grep -qiE "bind|credential|auth|password" "$WORK/badpw-$side-$cmd.err" ||
            fail "badpw-$side-$cmd: no clear message: $(head -c 300 "$WORK/badpw-$side-$cmd.err")"
    done
done
log "ok: wrong password -> 77"

# Nothing landed in the target and no object was journaled.
after=$(slapd_count DST dc=dst,dc=example)
[ "$after" = "$before" ] || fail "target changed: $before entries before, $after after"
for db in "$WORK"/*.db; do
    [ -e "$db" ] || continue
    rows=$(state_object_rows "$db") || fail "cannot read $db"
    [ "$rows" = 0 ] || fail "$(basename "$db") records $rows objects after failed runs"
done

check_no_secrets
exit 0
