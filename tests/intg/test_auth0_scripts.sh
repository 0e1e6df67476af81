#!/bin/bash
# tests/intg/test_auth0_scripts.sh: the Auth0 custom-database scripts of contrib/auth0 run
# under node (tests/auth0/run_script.js, Auth0's calling convention) against a real
# `dirmig hook` (TLS, shared secret) that verifies against a real slapd:
#   Login with the right password -> a profile with a stable user_id and the email; with a
#   wrong one -> WrongUsernameOrPasswordError; with the wrong secret, or the hook down ->
#   Error (never a profile); Get User -> not found, without asking the hook.
# The passwords go to the hook only; none reaches dirmig's logs.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/test_hook_lib.sh"
NODE=${NODE:-$(command -v node || command -v nodejs)}
[ -n "$NODE" ] || skip "node (Debian nodejs) is not installed"
RUN=$top_srcdir/tests/auth0/run_script.js
LOGIN=$top_srcdir/contrib/auth0/login.js
GETUSER=$top_srcdir/contrib/auth0/get_user.js

hook_config "$WORK/hook.json" 'hook.login_attributes=["mail", "uid"]'
hook_start "$WORK/hook.json"
export NODE_EXTRA_CA_CERTS=$DATA/hook.pem DIRMIG_HOOK_URL=$HOOK_URL/verify
export DIRMIG_HOOK_SECRET_FILE=$SECRETS/hook.secret

script() { # TAG SCRIPT FN ARG [PASSWORD]
    local tag=$1 s=$2 fn=$3 arg=$4
    printf '%s' "${5:-}" > "$SECRETS/$tag.pw"
    "$NODE" "$RUN" "$s" "$fn" "$arg" "$SECRETS/$tag.pw" > "$WORK/$tag.out" 2> "$WORK/$tag.err" ||
        fail "$tag: the script did not call back once: $(cat "$WORK/$tag.out" "$WORK/$tag.err")"
}
expect_out() { # TAG PYTHON-CONDITION-ON-r
    "$PYTHON3" -c "import json,sys; r=json.load(open(sys.argv[1])); assert $2, r" "$WORK/$1.out" ||
        fail "$1: $(cat "$WORK/$1.out")"
}

script ok "$LOGIN" login alice@example.org "$PW_ALICE"
expect_out ok 'r["error"] is None and r["profile"]["user_id"] == "dirmig|alice@example.org" and r["profile"]["email"] == "alice@example.org"'
script ok_uid "$LOGIN" login bob "$PW_BOB"
expect_out ok_uid 'r["error"] is None and r["profile"]["username"] == "bob" and "email" not in r["profile"]'
script wrong "$LOGIN" login alice@example.org "$PW_WRONG"
expect_out wrong 'r["error"] == "WrongUsernameOrPasswordError" and r["profile"] is None'
script nouser "$LOGIN" login nobody@example.org "$PW_WRONG"
expect_out nouser 'r["error"] == "WrongUsernameOrPasswordError"'
write_secret "$SECRETS/bad.secret" "Bearer not-the-secret"
DIRMIG_HOOK_SECRET_FILE=$SECRETS/bad.secret script badsecret "$LOGIN" login alice@example.org "$PW_ALICE"
expect_out badsecret 'r["error"] == "Error" and r["profile"] is None and "401" in r["message"]'
script getuser "$GETUSER" getByEmail alice@example.org
expect_out getuser 'r["error"] is None and r["profile"] is None'
hook_stop
script down "$LOGIN" login alice@example.org "$PW_ALICE"
expect_out down 'r["error"] == "Error" and r["profile"] is None'
log "login.js: verified, wrong password, unknown user, bad secret and hook down answered as Auth0 expects"
check_no_secrets "$WORK"
exit 0
