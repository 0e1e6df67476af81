#!/bin/bash
# test_ad_gssapi.sh: SASL GSSAPI binds (source.sasl_mech "GSSAPI") against a real Samba AD DC
# started with its KDC (SAMBA_SERVICES=ldap,kdc). A private krb5.conf ($KRB5_CONFIG, realm
# EXAMPLE.TEST, KDC 127.0.0.1) and a file ticket cache ($KRB5CCNAME) live in $TESTDIR;
# /etc is never touched. The service principal ldap/127.0.0.1 is added to the DC's account
# so that the principal built from the URI host as written (no reverse DNS) exists.
#   - kinit as a fixture user (password on stdin); `dirmig check` over ldap:// (GSSAPI
#     sign+seal) and over ldaps:// (TLS verified, no SASL layer) shows the ticket's identity
#   - `dirmig run` of 20 AD users to slapd with GSSAPI on the source
#   - no ticket cache, an emptied one and an expired ticket: exit 77 (DM_EAUTH) at once,
#     the message names GSSAPI and the ticket cache
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ad_lib.sh"
for _t in kinit kdestroy klist; do
    command -v "$_t" > /dev/null 2>&1 || skip "missing tool: $_t (install krb5-user)"
done
[ -n "$(find /usr/lib -path '*/sasl2/libgssapiv2.so*' 2> /dev/null | head -1)" ] ||
    skip "missing SASL GSSAPI plugin (install libsasl2-modules-gssapi-mit)"

T0=$(date +%s.%N)
SAMBA_SERVICES=ldap,kdc
# The DC's account gets the service principal of the URI host as written, offline.
printf '%s\n' "dn: CN=DC1,OU=Domain Controllers,DC=example,DC=test" "changetype: modify" \
    "add: servicePrincipalName" "servicePrincipalName: ldap/127.0.0.1" "-" > "$DATA/spn.ldif"
ad_setup 20 "$DATA/spn.ldif"
CANARY_PW=$(ad_pw u0001)
register_secret "$CANARY_PW"

KRB5_CONFIG=$TESTDIR/krb5.conf
KRB5CCNAME=FILE:$TESTDIR/krb5cc
export KRB5_CONFIG KRB5CCNAME
printf '%s\n' "[libdefaults]" "    default_realm = EXAMPLE.TEST" "    dns_lookup_realm = false" \
    "    dns_lookup_kdc = false" "    rdns = false" "    dns_canonicalize_hostname = false" \
    "    udp_preference_limit = 0" "[realms]" "    EXAMPLE.TEST = {" "        kdc = 127.0.0.1" \
    "    }" > "$KRB5_CONFIG"
kinit u0001@EXAMPLE.TEST < <(ad_pw u0001) > "$WORK/kinit.out" 2>&1 ||
    { cat "$WORK/kinit.out" >&2; fail "kinit u0001 failed"; }
T1=$(date +%s.%N)

skeleton() {
    printf '%s\n' "dn: $1" "objectClass: organization" "o: x" "" \
        "dn: ou=dirmig,$1" "objectClass: organizationalUnit" "ou: dirmig" "" \
        "dn: ou=people,ou=dirmig,$1" "objectClass: organizationalUnit" "ou: people" "" \
        "dn: ou=groups,ou=dirmig,$1" "objectClass: organizationalUnit" "ou: groups"
}
skeleton o=dst > "$DATA/dst.ldif"
start_server DST o=dst "$DATA/dst.ldif" dbnosync

# adconfig OUT URI [KEY=VALUE...]: AD source bound by GSSAPI (no bind_dn, no password).
adconfig() {
    local out=$1 uri=$2
    shift 2
    mkconfig "$out" - DST source.uri="$uri" source.base="$AD_BASE" source.bind_dn=- \
        source.bind_pw_file=- source.sasl_mech=GSSAPI \
        source.tls='{"ca_file": "'"$SAMBA_CA_FILE"'"}' source.dialect=ad \
        source.users='{"base": "'"$AD_PEOPLE"'"}' source.groups='{"base": "'"$AD_GROUPS"'"}' \
        target.base="ou=dirmig,$DST_SUFFIX" \
        map='{"file": "'"$top_srcdir/schema/maps/ad-to-inetorgperson.json"'"}' "$@"
}

# ---- check: ldap:// (GSSAPI sign+seal) and ldaps:// (verified TLS, no SASL layer) ----
adconfig "$WORK/plain.json" "$SAMBA_URI" log.level=debug
dm check1 -c "$WORK/plain.json" check
expect_rc 0 check1 "dirmig check (GSSAPI over ldap://)"
grep -q "^  bound as: u0001@EXAMPLE.TEST" "$WORK/check1.out" ||
    { cat "$WORK/check1.out" >&2; fail "check1: the ticket's identity is not shown"; }
grep -q "mech=GSSAPI, nocanon, sign+seal" "$WORK/plain.log" || fail "check1: no GSSAPI bind logged"
adconfig "$WORK/tls.json" "$SAMBA_LDAPS_URI"
dm check2 -c "$WORK/tls.json" check
expect_rc 0 check2 "dirmig check (GSSAPI over ldaps://)"
grep -q "^  bound as: u0001@EXAMPLE.TEST" "$WORK/check2.out" ||
    { cat "$WORK/check2.out" >&2; fail "check2: the ticket's identity is not shown"; }
grep -q "^  TLS: in use (ldaps://" "$WORK/check2.out" ||
    { cat "$WORK/check2.out" >&2; fail "check2: TLS in use is not shown"; }
klist > "$WORK/klist.out" 2>&1
grep -q 'ldap/127.0.0.1@EXAMPLE.TEST' "$WORK/klist.out" ||
    { cat "$WORK/klist.out" >&2; fail "no service ticket for ldap/127.0.0.1 (URI host as given)"; }
T2=$(date +%s.%N)

# ---- run: 20 users and 26 groups read with the ticket (g01-g04 hold only users past
# the first 20 in the fixture, so they would be empty) ----
adconfig "$WORK/run.json" "$SAMBA_LDAPS_URI" \
    source.groups.filter='(&(objectClass=group)(!(cn=g01))(!(cn=g02))(!(cn=g03))(!(cn=g04)))'
dm run1 -c "$WORK/run.json" run --json
expect_rc 0 run1 "dirmig run (GSSAPI source)"
expect_json "$WORK/run1.out" status done total.failed 0 users.created 20 groups.created 26 \
    unresolved_members 0
n=$(slapd_search DST -b "ou=people,ou=dirmig,o=dst" '(objectClass=inetOrgPerson)' 1.1 |
    grep -c '^dn:')
[ "$n" = 20 ] || fail "target has $n users, want 20"
T3=$(date +%s.%N)

# ---- no ticket: a clear DM_EAUTH (exit 77) at once, never a hang ----
noticket() {
    local tag=$1 t0 t1
    t0=$(date +%s)
    dm "$tag" -c "$WORK/tls.json" check
    t1=$(date +%s)
    expect_rc 77 "$tag" "dirmig check ($2)"
    [ $((t1 - t0)) -le 10 ] || fail "$tag: took $((t1 - t0)) s"
    grep -q 'SASL GSSAPI bind' "$WORK/$tag.err" && grep -qF "$3" "$WORK/$tag.err" ||
        { cat "$WORK/$tag.err" >&2; fail "$tag: the error names neither GSSAPI nor the cache"; }
    log "$tag: $(grep -m1 GSSAPI "$WORK/$tag.err")"
}
KRB5CCNAME=FILE:$TESTDIR/nonexistent noticket noticket1 "no ticket cache" "FILE:$TESTDIR/nonexistent"
kdestroy > /dev/null 2>&1
noticket noticket2 "ticket cache destroyed" "$KRB5CCNAME"
kinit -l 2s u0001@EXAMPLE.TEST < <(ad_pw u0001) > "$WORK/kinit2.out" 2>&1 ||
    { cat "$WORK/kinit2.out" >&2; fail "kinit -l 2s u0001 failed"; }
sleep 3
noticket noticket3 "expired ticket" "$KRB5CCNAME"
T4=$(date +%s.%N)

check_no_secrets
log "$(awk -v a="$T0" -v b="$T1" -v c="$T2" -v d="$T3" -v e="$T4" 'BEGIN {
    printf "setup+kinit=%.1fs (%s) check=%.1fs run=%.1fs noticket=%.1fs", b-a,
    "'"$AD_TIMES"'", c-b, d-c, e-d }')"
