#!/bin/bash
# test_ad_hook.sh: the password-import hook against a real Samba AD DC (source.dialect "ad",
# logins by sAMAccountName or userPrincipalName), with the domain's lockoutThreshold 3.
#   - the hook reads lockoutThreshold at start: hook.max_failures 3 is refused (exit 78
#     naming both numbers); with 2, three wrong passwords for one account reach the DC twice
#     and never lock it (badPwdCount and lockoutTime read back from the DC)
#   - the right password is VERIFIED; a wrong one is UNVERIFIED with AD's reason (52e)
#   - accounts that cannot verify are answered without a bind, with the reason journaled,
#     logged and on /metrics: disabled (userAccountControl), expired (accountExpires), must
#     change (pwdLastSet 0), locked out at the DC; with a users filter that leaves disabled
#     users out, a disabled user is still "account_disabled" (not "unknown"), and an account
#     outside the search base is "out_of_scope"
#   - the DC's old-password window: after an administrator's reset the DC still accepts the
#     previous password for a while (Samba: "old password allowed period"); by default the
#     hook says what the DC says (documented), with hook.old_password_window_s it answers
#     UNVERIFIED for a password changed that recently
#   - AD -> slapd with lazy migration: a user verified through the hook then binds at the
#     target with the same password ({ARGON2}), and a user whose target entry carried {MD5}
#     carries {ARGON2} after one verified sign-in
#   - AD -> Okta-style target: every AD user is created with the hook
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

# ad_hook_config OUT [path=value ...]: the service account binds by its UPN (AD accepts it as
# a simple-bind name).
ad_hook_config() {
    local out=$1
    shift
    hook_config "$out" source.uri="$SAMBA_URI" source.base="$AD_BASE" \
        source.bind_dn="$SAMBA_ADMIN_UPN" source.bind_pw_file="$SAMBA_PW_FILE" source.dialect=ad \
        source.users='{"base": "'"$AD_PEOPLE"'"}' hook.search_base="$AD_PEOPLE" \
        hook.login_attributes='["sAMAccountName", "userPrincipalName"]' hook.max_failures=2 \
        hook.deadline_ms=2900 log.level=info "$@"
}
ad_attr() { # SAM ATTR: the attribute's value at the DC
    samba_search -b "$AD_PEOPLE" "(sAMAccountName=$1)" "$2" | sed -n "s/^$2: //p"
}

# ---- the budget must stay below the DC's lockoutThreshold ----
ad_hook_config "$WORK/over.json" hook.max_failures=3
dm over -c "$WORK/over.json" hook
expect_rc 78 over "hook.max_failures 3 with lockoutThreshold 3"
grep -q "hook.max_failures 3 is not below the source's lockout threshold 3 (lockoutThreshold of DC=example,DC=test)" \
    "$WORK/over.err" || fail "the refusal does not name both numbers: $(cat "$WORK/over.err")"

ad_hook_config "$WORK/ad-hook.json"
hook_start "$WORK/ad-hook.json"
grep -q "source lockout threshold 3 (lockoutThreshold of DC=example,DC=test)" "$WORK/ad-hook.log" ||
    fail "lockoutThreshold not read at start"

expect_okta VERIFIED "right password" '"u0001"' "$(jstr "$(ad_pw u0001)")"
expect_okta VERIFIED "right password, UPN login" '"u0002@example.test"' "$(jstr "$(ad_pw u0002)")"
expect_okta VERIFIED "non-ASCII name" '"u0000"' "$(jstr "$(ad_pw u0000)")"
expect_okta UNVERIFIED "wrong password" '"u0004"' "$(jstr "$PW_WRONG")"
expect_okta UNVERIFIED "disabled account" '"u0003"' "$(jstr "$(ad_pw u0003)")"
expect_okta UNVERIFIED "expired account" '"u0007"' "$(jstr "$(ad_pw u0007)")"
expect_okta UNVERIFIED "must change password" '"u0011"' "$(jstr "$(ad_pw u0011)")"
# three wrong passwords for u0012 (spellings differ): two binds, never locked at the DC
for l in u0012 U0012 u0012@example.test; do
    expect_okta UNVERIFIED "u0012 wrong password as $l" "\"$l\"" "$(jstr "$PW_WRONG")"
done
[ "$(ad_attr u0012 badPwdCount)" = 2 ] || fail "u0012: badPwdCount $(ad_attr u0012 badPwdCount), want 2"
[ "$(ad_attr u0012 lockoutTime)" = 0 ] || [ -z "$(ad_attr u0012 lockoutTime)" ] ||
    fail "the hook locked u0012 at the DC"
# ... and one more failure elsewhere locks it; then the hook answers without a bind (775)
printf '%s' "$PW_WRONG" > "$SECRETS/direct.pw"
ldapwhoami -x -H "$SAMBA_URI" -D "u0012@example.test" -y "$SECRETS/direct.pw" > /dev/null 2>&1 &&
    fail "a wrong password bound"
locked=""
for i in $(seq 1 50); do
    locked=$(ad_attr u0012 lockoutTime)
    [ -n "$locked" ] && [ "$locked" != 0 ] && break
    sleep 0.1
done
[ -n "$locked" ] && [ "$locked" != 0 ] || fail "the DC did not lock u0012 after 3 wrong passwords"
expect_okta UNVERIFIED "locked account" '"u0012"' "$(jstr "$(ad_pw u0012)")"
expect_okta UNVERIFIED "unknown user" '"nobody"' "$(jstr "$PW_WRONG")"

[ "$(metric 'dirmig_hook_requests_total{outcome="verified"}')" = 3 ] || fail "verified count"
for r in account_disabled account_expired must_change_password account_locked; do
    [ "$(metric "dirmig_hook_ineligible_total{reason=\"$r\"}")" = 1 ] ||
        fail "/metrics: $r: $(metric "dirmig_hook_ineligible_total{reason=\"$r\"}")"
done
[ "$(metric 'dirmig_hook_bind_refusals_total{reason="wrong_password"}')" = 3 ] ||
    fail "/metrics: wrong_password count $(metric 'dirmig_hook_bind_refusals_total{reason="wrong_password"}')"
# the third: the DC already counts 2 of 3, so the hook does not bind (the account budget of 2
# would have refused it too)
[ "$(metric 'dirmig_hook_throttled_total{budget="source_lockout"}')" = 1 ] ||
    fail "source_lockout throttles: $(metric 'dirmig_hook_throttled_total{budget="source_lockout"}')"
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
    "u0003": ("ineligible", "account_disabled"),
    "u0007": ("ineligible", "account_expired"),
    "u0011": ("ineligible", "must_change_password"),
    "U0012": ("wrong_password", "wrong_password"),
    "u0012": ("ineligible", "account_locked"),
}
bad = ["%s: %s, want %s" % (k, rows.get(k), v) for k, v in want.items() if rows.get(k) != v]
if bad:
    sys.exit("journal: " + "; ".join(bad))
PYEOF
grep -q 'login="u0003": ineligible: account_disabled (no bind)' "$WORK/ad-hook.log" ||
    fail "the log does not name the reason"
for u in u0003 u0007 u0011; do
    n=$(ad_attr "$u" badPwdCount)
    [ "${n:-0}" = 0 ] || fail "$u was bound (badPwdCount $n)"
done
log "lockoutThreshold 3 read; u0012 never locked by the hook; disabled/expired/must-change/locked not bound"

# ---- a filter that leaves disabled users out; an account outside the search base ----
ad_hook_config "$WORK/filtered.json" \
    source.users='{"base": "'"$AD_PEOPLE"'", "filter": "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"}'
hook_start "$WORK/filtered.json"
expect_okta UNVERIFIED "disabled user outside the filter" '"u0013"' "$(jstr "$(ad_pw u0013)")"
expect_okta UNVERIFIED "account outside the search base" '"Administrator"' "$(jstr "$PW_WRONG")"
expect_okta VERIFIED "enabled user inside the filter" '"u0005"' "$(jstr "$(ad_pw u0005)")"
[ "$(metric 'dirmig_hook_ineligible_total{reason="account_disabled"}')" = 1 ] &&
    [ "$(metric 'dirmig_hook_ineligible_total{reason="out_of_scope"}')" = 1 ] &&
    [ "$(metric 'dirmig_hook_requests_total{outcome="unknown_user"}')" = 0 ] ||
    fail "filtered: $(grep -E 'ineligible_total|unknown_user' "$WORK/metrics.txt" | tr '\n' ' ')"
hook_stop
log "filtered out: a disabled user is account_disabled, Administrator is out_of_scope (not unknown)"

# ---- AD -> slapd with lazy migration ----
printf '%s\n' "dn: o=dst" "objectClass: organization" "o: dst" "" "dn: ou=dirmig,o=dst" \
    "objectClass: organizationalUnit" "ou: dirmig" "" "dn: ou=people,ou=dirmig,o=dst" \
    "objectClass: organizationalUnit" "ou: people" "" "dn: ou=groups,ou=dirmig,o=dst" \
    "objectClass: organizationalUnit" "ou: groups" > "$DATA/dst.ldif"
start_server DST o=dst "$DATA/dst.ldif"
mkconfig "$WORK/ad-ldap.json" - DST source.uri="$SAMBA_URI" source.base="$AD_BASE" \
    source.bind_dn="$SAMBA_ADMIN_UPN" source.bind_pw_file="$SAMBA_PW_FILE" source.dialect=ad \
    source.users='{"base": "'"$AD_PEOPLE"'"}' \
    source.groups='{"base": "'"$AD_GROUPS"'", "filter": "(cn=users-only-here)"}' \
    target.base="ou=dirmig,o=dst" \
    map='{"file": "'"$top_srcdir/schema/maps/ad-to-inetorgperson.json"'"}' \
    "hook.listen=127.0.0.1:$HOOK_PORT" "hook.tls.cert_file=$DATA/hook.pem" \
    "hook.tls.key_file=$SECRETS/hook.key" "hook.secret_file=$SECRETS/hook.secret" \
    hook.search_base="$AD_PEOPLE" hook.login_attributes='["sAMAccountName", "userPrincipalName"]' \
    hook.max_failures=2 hook.lazy_migration=true hook.rehash=true \
    'hook.hash_scheme="ARGON2"' hook.argon2_memory_kib=8192
dm adldap -c "$WORK/ad-ldap.json" run
expect_rc 0 adldap "AD -> slapd run"
tdn() { slapd_search DST -b "ou=people,ou=dirmig,o=dst" "(uid=$1)" 1.1 | sed -n 's/^dn: //p'; }
tpw() { slapd_search DST -b "$(tdn "$1")" -s base userPassword | sed -n 's/^userPassword:: //p' | base64 -d; }
tbind() { # SAM PASSWORD
    printf '%s' "$2" > "$SECRETS/tbind.pw"
    ldapwhoami -x -H "$DST_URI" -D "$(tdn "$1")" -y "$SECRETS/tbind.pw" > /dev/null 2>&1
}
[ -n "$(tdn u0001)" ] && [ -z "$(tpw u0001)" ] || fail "u0001 is not at the target without a password"
# u0002 came with an {MD5} (say, imported earlier from another system)
md5=$("$PYTHON3" -c 'import base64,hashlib,sys; print("{MD5}"+base64.b64encode(hashlib.md5(sys.argv[1].encode()).digest()).decode())' "$(ad_pw u0002)")
register_secret "$md5"
printf '%s\n' "dn: $(tdn u0002)" "changetype: modify" "replace: userPassword" "userPassword: $md5" \
    > "$SECRETS/md5.ldif"
ldapmodify -x -H "$DST_URI" -D "$DST_ROOTDN" -y "$DST_PW_FILE" -f "$SECRETS/md5.ldif" \
    > "$WORK/md5.out" 2>&1 || fail "setting {MD5} at the target failed"
tbind u0001 "$(ad_pw u0001)" && fail "u0001 binds at the target before any migration"
dm_bg hook -c "$WORK/ad-ldap.json" hook
HOOK_PID=$DM_PID
for i in $(seq 1 100); do
    curl -s -o /dev/null --cacert "$DATA/hook.pem" "$HOOK_URL/metrics" && break
    sleep 0.1
done
printf '{"username":"u0001","password":"%s"}' "$(ad_pw u0001)" > "$DATA/gen.json"
post "$DATA/gen.json" /verify
[ "$RESP" = '{"verified":true}' ] || fail "u0001 through the generic endpoint: $CODE $RESP"
printf '{"username":"u0002@example.test","password":"%s"}' "$(ad_pw u0002)" > "$DATA/gen.json"
post "$DATA/gen.json" /verify
[ "$RESP" = '{"verified":true}' ] || fail "u0002 through the generic endpoint: $CODE $RESP"
for u in u0001 u0002; do
    for i in $(seq 1 100); do
        case "$(tpw "$u")" in '{ARGON2}$argon2id$'*) break ;; esac
        sleep 0.1
    done
    case "$(tpw "$u")" in
    '{ARGON2}$argon2id$'*) ;;
    *) fail "$u: the target entry does not carry {ARGON2}" ;;
    esac
    tbind "$u" "$(ad_pw "$u")" || fail "$u cannot bind at the target with its AD password"
    ! tbind "$u" "$PW_WRONG" || fail "$u binds at the target with a wrong password"
done
hook_stop
"$PYTHON3" - "$WORK/ad-ldap.db" << 'PYEOF' || fail "journal: lazy migration rows"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
rows = {l: (o, r) for l, o, r in con.execute(
    "select login, outcome, reason from password_migrations where outcome in ('migrated','rehashed')")}
assert rows == {"u0001": ("migrated", "ARGON2"), "u0002@example.test": ("rehashed", "ARGON2")}, rows
PYEOF
log "AD -> slapd: u0001 binds at the target after one verified sign-in; u0002's {MD5} became {ARGON2}"

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
# u0001 signs in through the hook; u0003, disabled in AD, arrives deactivated and does not
# sign in at all (Okta signs in only ACTIVE users), not even through the hook
r=$(curl -s -X POST -d '{"login": "u0001@example.test", "password": "x"}' \
    "http://127.0.0.1:$OKTA_PORT/test/signin")
case $r in *NEEDS_HOOK*) ;; *) fail "u0001 at the target: $r, want NEEDS_HOOK" ;; esac
r=$(curl -s -X POST -d '{"login": "u0003@example.test", "password": "x"}' \
    "http://127.0.0.1:$OKTA_PORT/test/signin")
case $r in *NOT_ACTIVE*DEPROVISIONED*) ;; *) fail "u0003 at the target: $r, want NOT_ACTIVE" ;; esac

# ---- the DC's old-password window ----
# Every fixture password was set when the DC was provisioned: the window must be shorter
# than their age (for the control, u0001) and longer than the age of u0005's reset.
ft=$(ad_attr u0001 pwdLastSet)
age=$(( $(date +%s) - (ft / 10000000 - 11644473600) ))
[ "$age" -ge 30 ] || sleep $((30 - age))
WINDOW=20
NEW5="New-Pw5-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')!a1"
register_secret "$NEW5"
u16() { printf '"%s"' "$1" | iconv -f UTF-8 -t UTF-16LE | base64 -w0; }
dn5=$(samba_search -b "$AD_PEOPLE" "(sAMAccountName=u0005)" 1.1 | sed -n 's/^dn: //p')
printf '%s\n' "dn: $dn5" "changetype: modify" "replace: unicodePwd" "unicodePwd:: $(u16 "$NEW5")" \
    "-" > "$SECRETS/reset5.ldif"
samba_modify -f "$SECRETS/reset5.ldif" > "$WORK/reset5.out" 2>&1 || fail "resetting u0005 failed"
ad_hook_config "$WORK/window0.json"
hook_start "$WORK/window0.json"
expect_okta VERIFIED "new password after a reset" '"u0005"' "$(jstr "$NEW5")" "evt-w0-new"
# The DC itself accepts the previous password inside its window; the default hook says so.
expect_okta VERIFIED "previous password, inside the DC's window (hook default)" '"u0005"' \
    "$(jstr "$(ad_pw u0005)")" "evt-w0-old"
hook_stop
ad_hook_config "$WORK/window.json" hook.old_password_window_s=$WINDOW
hook_start "$WORK/window.json"
expect_okta UNVERIFIED "previous password with old_password_window_s" '"u0005"' \
    "$(jstr "$(ad_pw u0005)")" "evt-w1-old"
expect_okta UNVERIFIED "new password with old_password_window_s (indistinguishable)" '"u0005"' \
    "$(jstr "$NEW5")" "evt-w1-new"
expect_okta VERIFIED "a password not changed lately" '"u0001"' "$(jstr "$(ad_pw u0001)")" "evt-w1-u1"
[ "$(metric 'dirmig_hook_ineligible_total{reason="password_recently_changed"}')" = 2 ] ||
    fail "password_recently_changed count"
hook_stop
log "old-password window: the DC accepts the previous password after a reset; old_password_window_s refuses both"

check_no_secrets
log "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "total %.1fs", b-a }') ($AD_TIMES)"
