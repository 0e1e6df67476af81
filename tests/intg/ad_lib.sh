# tests/intg/ad_lib.sh: set-up shared by the Active Directory tests (sourced after lib.sh).
#
#   ad_setup NUSERS [LDIF] provisions a Samba AD DC (tests/harness/samba.sh), loads the fixture
#                        of tests/harness/ad_fixture.py offline (NUSERS users, 30 groups,
#                        OU=dirmig,DC=example,DC=test), applies LDIF (changetype
#                        records, e.g. domain policy) offline, starts the DC, registers every
#                        password as a secret. Sets AD_FX (fixture dir: expected.json,
#                        passwords.tsv), AD_BASE, AD_PEOPLE, AD_GROUPS.
#   ad_pw SAM            prints the fixture password of SAM
#   ad_times             prints "provision=..s load=..s start=..s" for the test log

for _t in samba samba-tool ldbadd ldbmodify ldbsearch flock ss; do
    command -v "$_t" > /dev/null 2>&1 || skip "missing tool: $_t (install samba, ldb-tools)"
done
unset _t
[ "$(id -u)" = 0 ] || skip "the Samba DC needs root (LDAP port 389)"

# shellcheck source=../harness/samba.sh
. "$top_srcdir/tests/harness/samba.sh"

ad_cleanup() {
    samba_stop
}

ad_setup() {
    local n=$1 t0 t1 t2 t3 sid
    AD_FX=$DATA/ad
    AD_BASE="OU=dirmig,DC=example,DC=test"
    AD_PEOPLE="OU=people,$AD_BASE"
    AD_GROUPS="OU=groups,$AD_BASE"
    t0=$(date +%s.%N)
    samba_provision || fail "samba provision failed"
    register_secret "$(cat "$SAMBA_PW_FILE")"
    t1=$(date +%s.%N)
    "$PYTHON3" "$top_srcdir/tests/harness/ad_fixture.py" gen "$AD_FX" "$AD_BASE" "$n" \
        "$(head -c 9 /dev/urandom | base64 | tr -d '/+=')" || fail "ad_fixture.py gen failed"
    cut -f2 "$AD_FX/passwords.tsv" > "$SECRETS/ad.pw" && register_secret_file "$SECRETS/ad.pw"
    samba_ldbadd "$AD_FX/users.ldif" || fail "loading users failed"
    samba_ldbadd "$AD_FX/groups.ldif" || fail "loading groups failed"
    samba_ldbmodify "$AD_FX/nest.ldif" || fail "nesting groups failed"
    sid=$(ldbsearch -H "$SAMBA_DIR/private/sam.ldb" -b "CN=g04,$AD_GROUPS" -s base objectSid |
        sed -n 's/^objectSid: //p')
    [ -n "$sid" ] || fail "no objectSid for g04"
    "$PYTHON3" "$top_srcdir/tests/harness/ad_fixture.py" pgid "$AD_FX" "$AD_BASE" "$sid" ||
        fail "ad_fixture.py pgid failed"
    samba_ldbmodify "$AD_FX/pgid.ldif" || fail "setting primary groups failed"
    if [ -n "${2:-}" ]; then
        samba_ldbmodify "$2" || fail "ldbmodify $2 failed"
    fi
    t2=$(date +%s.%N)
    samba_run || fail "the Samba DC did not start"
    t3=$(date +%s.%N)
    AD_TIMES=$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" \
        'BEGIN { printf "provision=%.1fs load=%.1fs start=%.1fs", b-a, c-b, d-c }')
    log "Samba DC up: $AD_TIMES ($n users)"
    export AD_FX AD_BASE AD_PEOPLE AD_GROUPS
}

ad_pw() {
    awk -F'\t' -v u="$1" '$1 == u { print $2 }' "$AD_FX/passwords.tsv"
}
