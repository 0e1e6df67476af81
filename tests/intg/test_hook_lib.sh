# tests/intg/test_hook_lib.sh: set-up shared by the password-import hook tests (sourced after
# lib.sh). Starts SRC (slapd with operation logging) holding a few users with known
# passwords, a TLS certificate for the hook, the shared secret, a config, and helpers to
# call the hook with curl. Request bodies (they hold passwords) live in $DATA, never in
# $WORK, so check_no_secrets only sees what dirmig wrote.

command -v curl > /dev/null 2>&1 || skip "missing tool: curl"

SUFFIX="dc=src,dc=example"
PW_ALICE="Alice-Hook-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
PW_BOB="Bob-Hook-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
PW_CAROL="Carol-Hook-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
PW_ADMIN="Admin-Hook-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
PW_WRONG="Wrong-Hook-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
for _p in "$PW_ALICE" "$PW_BOB" "$PW_CAROL" "$PW_ADMIN" "$PW_WRONG"; do
    register_secret "$_p"
done
unset _p

# hook_user UID PASSWORD [MAIL]: an inetOrgPerson under ou=people with an {SSHA} hash.
hook_user() {
    local h mail=${3:-$1@example.org}
    h=$(printf '%s' "$2" > "$SECRETS/tmp.pw" && slappasswd -h '{SSHA}' -T "$SECRETS/tmp.pw") ||
        fail "slappasswd failed"
    register_secret "$h"
    printf '%s\n' "dn: uid=$1,ou=people,$SUFFIX" "objectClass: inetOrgPerson" "uid: $1" \
        "cn: $1" "sn: $1" "mail: $mail" "userPassword: $h" ""
}

{
    printf '%s\n' "dn: $SUFFIX" "objectClass: dcObject" "objectClass: organization" \
        "dc: src" "o: src" "" "dn: ou=people,$SUFFIX" "objectClass: organizationalUnit" \
        "ou: people" "" "dn: ou=groups,$SUFFIX" "objectClass: organizationalUnit" "ou: groups" ""
    hook_user alice "$PW_ALICE"
    hook_user bob "$PW_BOB"
    hook_user carol "$PW_CAROL"
    hook_user admin "$PW_ADMIN"
    hook_user dup1 "$PW_BOB" shared@example.org
    hook_user dup2 "$PW_BOB" shared@example.org
} > "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$SUFFIX"
start_server SRC "$SUFFIX" "$DATA/src.ldif" stats

# TLS material of the hook server (the key 0600, as dirmig demands).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$SECRETS/hook.key" -out "$DATA/hook.pem" -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" > "$DATA/openssl.log" 2>&1 || fail "openssl failed"
chmod 0600 "$SECRETS/hook.key"

HOOK_SECRET="Bearer hook-$(head -c 27 /dev/urandom | base64 | tr -d '/+=')"
write_secret "$SECRETS/hook.secret" "$HOOK_SECRET"
printf 'Authorization: %s\n' "$HOOK_SECRET" > "$SECRETS/auth.hdr"
printf 'Authorization: Bearer not-the-secret\n' > "$SECRETS/badauth.hdr"
HOOK_PORT=$(free_port)
HOOK_URL="https://127.0.0.1:$HOOK_PORT"
OKTA_PATH=/okta/password-import

# hook_config OUT [path=value ...]: config for SRC (the target is unused by the hook).
hook_config() {
    local out=$1
    shift
    mkconfig "$out" SRC SRC \
        "hook.listen=127.0.0.1:$HOOK_PORT" "hook.tls.cert_file=$DATA/hook.pem" \
        "hook.tls.key_file=$SECRETS/hook.key" "hook.secret_file=$SECRETS/hook.secret" \
        "source.network_timeout_ms=1000" "hook.pool_size=4" "$@"
}

# hook_start CONFIG: runs `dirmig hook` in the background and waits until it answers.
hook_start() {
    local i
    dm_bg hook -c "$1" hook
    HOOK_PID=$DM_PID
    for i in $(seq 1 100); do
        kill -0 "$HOOK_PID" 2> /dev/null || { cat "$WORK/hook.err" >&2; fail "dirmig hook exited"; }
        curl -s -o /dev/null --cacert "$DATA/hook.pem" "$HOOK_URL/metrics" && return 0
        sleep 0.1
    done
    fail "dirmig hook did not answer within 10 s"
}

hook_stop() {
    kill -TERM "$HOOK_PID" 2> /dev/null
    dm_wait "$HOOK_PID" 20
    [ "$DM_RC" = 0 ] || fail "dirmig hook exited with $DM_RC after SIGTERM"
}

# okta_body FILE USERNAME_JSON PASSWORD_JSON [EVENTID]: an Okta password-import request;
# the values are JSON string literals (quotes included) so tests can send escapes.
okta_body() {
    local ev=${4:-ev-$RANDOM$RANDOM}
    printf '{"eventId":"%s","eventTime":"2026-01-17T21:23:56.000Z",%s' "$ev" \
        '"eventType":"com.okta.user.credential.password.import","eventTypeVersion":"1.0",' > "$1"
    printf '"contentType":"application/json","cloudEventVersion":"0.1",%s' \
        '"source":"https://x.okta.com/api/v1/inlineHooks/cbl2ad6phv9fsPLcF0g7",' >> "$1"
    printf '"data":{"context":{"request":{"id":"r1","method":"POST",%s' \
        '"url":{"value":"/idp/idx/challenge/answer"},"ipAddress":"66.124.153.138"},' >> "$1"
    printf '"credential":{"username":%s,"password":%s}},"action":{"credential":"UNVERIFIED"}}}' \
        "$2" "$3" >> "$1"
}

# post BODYFILE [PATH] [HEADERFILE]: POSTs to the hook; sets CODE, RESP (the body) and
# SERVER_MS (request sent -> first response byte, i.e. without curl's start-up and TLS
# handshake).
post() {
    local path=${2:-$OKTA_PATH} hdr=${3:-$SECRETS/auth.hdr} out
    out=$(curl -sS --max-time 10 --cacert "$DATA/hook.pem" -o "$WORK/resp.json" \
        -w '%{http_code} %{time_pretransfer} %{time_starttransfer}' -H "@$hdr" \
        -H 'Content-Type: application/json' --data-binary "@$1" "$HOOK_URL$path") ||
        out="000 0 0"
    CODE=${out%% *}
    SERVER_MS=$(echo "$out" | awk '{printf "%d", ($3 - $2) * 1000}')
    RESP=$(cat "$WORK/resp.json" 2> /dev/null)
}

# okta USERNAME_JSON PASSWORD_JSON [EVENTID]: one Okta call; sets CODE, RESP, ANSWER.
okta() {
    okta_body "$DATA/req.json" "$@"
    post "$DATA/req.json"
    case "$RESP" in
    *'"credential":"VERIFIED"'*) ANSWER=VERIFIED ;;
    *'"credential":"UNVERIFIED"'*) ANSWER=UNVERIFIED ;;
    *) ANSWER="?" ;;
    esac
}

# expect_okta WANT WHAT USERNAME_JSON PASSWORD_JSON [EVENTID]
expect_okta() {
    local want=$1 what=$2
    shift 2
    okta "$@"
    [ "$CODE" = 200 ] && [ "$ANSWER" = "$want" ] ||
        fail "$what: HTTP $CODE, answer $ANSWER ($RESP), want 200 $want"
}

# jstr VALUE: VALUE as a JSON string literal (no special characters expected).
jstr() {
    printf '"%s"' "$1"
}

# ldap_ops [DN]: operations slapd has logged so far (BIND and SRCH), or binds as DN.
ldap_ops() {
    if [ $# -gt 0 ]; then
        grep -cF "BIND dn=\"$1\" method=" "$TESTDIR/SRC/slapd.log"
    else
        grep -cE ' BIND dn=.* method=| SRCH base=' "$TESTDIR/SRC/slapd.log"
    fi
}

# metric NAME_WITH_LABELS: the value from /metrics (saved to $WORK/metrics.txt).
metric() {
    curl -sS --cacert "$DATA/hook.pem" "$HOOK_URL/metrics" > "$WORK/metrics.txt" ||
        fail "/metrics failed"
    grep -v '^#' "$WORK/metrics.txt" | grep -F "$1 " | awk '{print $NF}' | head -n 1
}
