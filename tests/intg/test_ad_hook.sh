#!/bin/bash
# test_ad_hook.sh: the password-import hook against a real Samba AD DC (source.dialect "ad",
# logins by sAMAccountName or userPrincipalName). The right password is VERIFIED; a wrong
# password, a disabled account (533), an expired account (701), a password that must be
# changed (773) and a locked-out account (775) are UNVERIFIED, and the reason AD gave is
# recorded in the journal (password_migrations.reason), the log and /metrics.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
. "$top_srcdir/tests/intg/test_hook_lib.sh"
. "$(dirname "$0")/ad_lib.sh"

T0=$(date +%s.%N)
# Offline, before the DC starts (so no policy cache can predate them): u0011 must change
# its password at the next logon (pwdLastSet 0 -> data 773); three bad passwords lock an
# account out (lockoutThreshold 3 -> data 775).
printf '%s\n' "dn: CN=Given11 Sur0011,OU=people,OU=dirmig,DC=example,DC=test" \
    "changetype: modify" "replace: pwdLastSet" "pwdLastSet: 0" "-" "" \
    "dn: DC=example,DC=test" "changetype: modify" "replace: lockoutThreshold" \
    "lockoutThreshold: 3" "-" > "$DATA/policy.ldif"
ad_setup 60 "$DATA/policy.ldif"
CANARY_PW=$(ad_pw u0001)
register_secret "$CANARY_PW"

# The service account binds by its UPN (AD accepts it as a simple-bind name).
hook_config "$WORK/ad-hook.json" source.uri="$SAMBA_URI" source.base="$AD_BASE" \
    source.bind_dn="$SAMBA_ADMIN_UPN" source.bind_pw_file="$SAMBA_PW_FILE" source.dialect=ad \
    source.users='{"base": "'"$AD_PEOPLE"'"}' hook.search_base="$AD_PEOPLE" \
    hook.login_attributes='["sAMAccountName", "userPrincipalName"]' hook.max_failures=20 \
    hook.deadline_ms=2900 \
    log.level=info
hook_start "$WORK/ad-hook.json"

expect_okta VERIFIED "right password" '"u0001"' "$(jstr "$(ad_pw u0001)")"
expect_okta VERIFIED "right password, UPN login" '"u0002@example.test"' "$(jstr "$(ad_pw u0002)")"
expect_okta VERIFIED "non-ASCII name" '"u0000"' "$(jstr "$(ad_pw u0000)")"
expect_okta UNVERIFIED "wrong password" '"u0004"' "$(jstr "$PW_WRONG")"
expect_okta UNVERIFIED "disabled account" '"u0003"' "$(jstr "$(ad_pw u0003)")"
expect_okta UNVERIFIED "expired account" '"u0007"' "$(jstr "$(ad_pw u0007)")"
expect_okta UNVERIFIED "must change password" '"u0011"' "$(jstr "$(ad_pw u0011)")"
# three wrong passwords lock u0012 out; then even the right one is refused (775)
for i in 1 2 3; do
    expect_okta UNVERIFIED "u0012 wrong password $i" '"u0012"' "$(jstr "$PW_WRONG")"
done
# The DC must have locked the account before the right password is tried (on a loaded
# machine its bad-password bookkeeping can trail the answers a little).
locked=""
for i in $(seq 1 50); do
    locked=$(ldapsearch -x -LLL -H "$SAMBA_URI" -D "$SAMBA_ADMIN_UPN" -y "$SAMBA_PW_FILE" \
        -b "$AD_PEOPLE" '(sAMAccountName=u0012)' lockoutTime 2> /dev/null |
        sed -n 's/^lockoutTime: //p')
    [ -n "$locked" ] && [ "$locked" != 0 ] && break
    sleep 0.1
done
[ -n "$locked" ] && [ "$locked" != 0 ] || fail "the DC did not lock u0012 after 3 wrong passwords"
expect_okta UNVERIFIED "locked account" '"u0012"' "$(jstr "$(ad_pw u0012)")"
expect_okta UNVERIFIED "unknown user" '"nobody"' "$(jstr "$PW_WRONG")"

[ "$(metric 'dirmig_hook_requests_total{outcome="verified"}')" = 3 ] || fail "verified count"
[ "$(metric 'dirmig_hook_bind_refusals_total{reason="account_disabled"}')" = 1 ] ||
    fail "/metrics: account_disabled not counted"
[ "$(metric 'dirmig_hook_bind_refusals_total{reason="account_expired"}')" = 1 ] ||
    fail "/metrics: account_expired not counted"
[ "$(metric 'dirmig_hook_bind_refusals_total{reason="wrong_password"}')" = 4 ] ||
    fail "/metrics: wrong_password count $(metric 'dirmig_hook_bind_refusals_total{reason="wrong_password"}')"
hook_stop

"$PYTHON3" - "$WORK/ad-hook.db" << 'PYEOF' || fail "journal rows"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
rows = {}
for login, outcome, reason in con.execute(
        "select login, outcome, coalesce(reason, '') from password_migrations order by rowid"):
    rows[login] = (outcome, reason)
want = {
    "u0001": ("verified", ""),
    "u0002@example.test": ("verified", ""),
    "u0000": ("verified", ""),
    "u0004": ("wrong_password", "wrong_password"),
    "u0003": ("wrong_password", "account_disabled"),
    "u0007": ("wrong_password", "account_expired"),
    "u0011": ("wrong_password", "must_change_password"),
    "u0012": ("wrong_password", "account_locked"),
}
bad = ["%s: %s, want %s" % (k, rows.get(k), v) for k, v in want.items() if rows.get(k) != v]
if bad:
    sys.exit("journal: " + "; ".join(bad))
PYEOF
grep -q 'login="u0003": wrong_password: account_disabled' "$WORK/hook.err" "$WORK/ad-hook.log" \
    2> /dev/null || fail "the log does not name the reason"
# ---- AD -> Okta-style target: AD hashes cannot be read, so every AD user is created with
# the password-import hook (never without a credential), groups with their members. The DC is
# read over StartTLS here (LDAPS in test_ad_run.sh) ----
write_secret "$SECRETS/token" "okta-ad-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
start_okta OKTA
# (read over StartTLS with the DC's certificate verified against the test CA)
mkconfig "$WORK/ad-okta.json" - - source.uri="$SAMBA_URI" source.base="$AD_BASE" \
    source.starttls=true source.tls='{"ca_file": "'"$SAMBA_CA_FILE"'"}' \
    source.bind_dn="$SAMBA_ADMIN_UPN" source.bind_pw_file="$SAMBA_PW_FILE" source.dialect=ad \
    source.users='{"base": "'"$AD_PEOPLE"'"}' source.groups='{"base": "'"$AD_GROUPS"'"}' \
    target.base=- target.bind_dn=- target.bind_pw_file=- target.type=okta \
    target.uri="http://127.0.0.1:$OKTA_PORT" target.token_file="$SECRETS/token" \
    map='{"file": "'"$top_srcdir/schema/maps/ad-to-okta.json"'"}'
# check tells the truth about the DC: StartTLS in use, the account bound (AD offers no
# who-am-I; the rootDSE's tokenGroups name it), the bases, an Okta target without a base
dm adcheck -c "$WORK/ad-okta.json" check
expect_rc 0 adcheck "check AD -> Okta"
grep -q "^  TLS: in use (StartTLS" "$WORK/adcheck.out" ||
    fail "the DC is not read over StartTLS: $(grep 'TLS:' "$WORK/adcheck.out")"
grep -qF "  bound as: $SAMBA_ADMIN_DN (from the rootDSE tokenGroups)" "$WORK/adcheck.out" ||
    fail "check does not name the bound account: $(grep 'bound as' "$WORK/adcheck.out")"
grep -qF "  users base $AD_PEOPLE: exists" "$WORK/adcheck.out" ||
    fail "check does not confirm the users base: $(cat "$WORK/adcheck.out")"
! grep -q "(null)" "$WORK/adcheck.out" || fail "check prints (null): $(grep -F '(null)' "$WORK/adcheck.out")"
grep -q "^target: http://127.0.0.1:$OKTA_PORT (okta)" "$WORK/adcheck.out" ||
    fail "no target line: $(cat "$WORK/adcheck.out")"
dm adokta -c "$WORK/ad-okta.json" --json run
[ "$DM_RC" = 0 ] || { tail -5 "$WORK/adokta.err" >&2; fail "AD -> Okta run: exit $DM_RC"; }
curl -s "http://127.0.0.1:$OKTA_PORT/test/dump" > "$WORK/adokta.dump"
"$PYTHON3" - "$WORK/adokta.out" "$WORK/adokta.dump" > "$WORK/adokta.sum" << 'ADOKTAEOF' ||
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
d = json.load(open(sys.argv[2]))
users = d["users"]
assert r["users"]["created"] == len(users) and len(users) == r["users"]["read"], (r["users"], len(users))
assert r["created_with_hook"] == len(users), r["created_with_hook"]
bad = [l for l, u in users.items() if u["credential"] != "hook"]
assert not bad, "not created with the hook: %s" % bad[:5]
assert all(l.endswith("@example.test") for l in users), list(users)[:3]
# the account state arrives: u0003 is disabled in AD
assert users["u0003@example.test"]["profile"].get("enabled") == "false", users["u0003@example.test"]
assert users["u0001@example.test"]["profile"].get("enabled") == "true", users["u0001@example.test"]
nmem = sum(len(g["members"]) for g in d["groups"].values())
assert r["groups"]["created"] == d["group_count"] > 0 and nmem > 0, (r["groups"], nmem)
print("%d users, all with the hook; %d groups, %d memberships" % (len(users), d["group_count"], nmem))
ADOKTAEOF
    fail "AD -> Okta target is wrong"
log "AD -> Okta: $(cat "$WORK/adokta.sum")"
for u in u0001 u0003; do
    r=$(curl -s -X POST -d '{"login": "'$u'@example.test", "password": "x"}' \
        "http://127.0.0.1:$OKTA_PORT/test/signin")
    case $r in *NEEDS_HOOK*) ;; *) fail "$u at the target: $r, want NEEDS_HOOK" ;; esac
done

check_no_secrets
log "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "total %.1fs", b-a }') ($AD_TIMES)"
