#!/bin/bash
# test_tls.sh: ldaps:// with the test CA works and without it fails with a TLS/certificate
# message (exit 69); StartTLS on ldap:// works; SASL EXTERNAL over ldapi:// (no password)
# works for check and for a small run.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

gen_users --suffix dc=src,dc=example --users 30 --groups 6 --big-group 20 --schemes fast --ldif "$DATA/src.ldif"
add_canary "$DATA/src.ldif" dc=src,dc=example
register_ldif_passwords "$DATA/src.ldif"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC dc=src,dc=example "$DATA/src.ldif" tls external
start_server DST dc=dst,dc=example "$DATA/dst.ldif"
[ -s "$SRC_CA_FILE" ] && [ -n "$SRC_LDAPS_URI" ] || fail "harness did not set up TLS"

ca="{\"ca_file\": \"$SRC_CA_FILE\", \"verify\": true}"

# ldaps:// with the CA.
mkconfig "$WORK/ldaps.json" SRC DST "source.uri=\"$SRC_LDAPS_URI\"" "source.tls=$ca"
dm ldaps -c "$WORK/ldaps.json" check
expect_rc 0 ldaps "check over ldaps:// with tls.ca_file"
log "ok: ldaps with CA"

# ldaps:// without the CA: the certificate cannot be verified.
mkconfig "$WORK/ldaps-noca.json" SRC DST "source.uri=\"$SRC_LDAPS_URI\""
dm ldaps-noca -c "$WORK/ldaps-noca.json" check
expect_rc 69 ldaps-noca "check over ldaps:// without a CA"
grep -qiE "tls|certificate|ssl" "$WORK/ldaps-noca.err" ||
    fail "ldaps-noca: message does not mention TLS/certificate: $(head -c 300 "$WORK/ldaps-noca.err")"
log "ok: ldaps without CA -> 69"

# StartTLS on ldap:// with the CA.
mkconfig "$WORK/starttls.json" SRC DST source.starttls=true "source.tls=$ca"
dm starttls -c "$WORK/starttls.json" check
expect_rc 0 starttls "check with StartTLS"
log "ok: StartTLS with CA"

# StartTLS without the CA fails too (it must not fall back to plain LDAP).
mkconfig "$WORK/starttls-noca.json" SRC DST source.starttls=true
dm starttls-noca -c "$WORK/starttls-noca.json" check
expect_rc 69 starttls-noca "check with StartTLS without a CA"
log "ok: StartTLS without CA -> 69"

# SASL EXTERNAL over ldapi:// (peer credentials mapped to the rootdn): no bind_dn, no password.
mkconfig "$WORK/external.json" SRC DST "source.uri=\"$SRC_LDAPI\"" source.sasl_mech=EXTERNAL source.bind_dn=- source.bind_pw_file=-
dm external -c "$WORK/external.json" check
expect_rc 0 external "check with SASL EXTERNAL over ldapi"
dm external-run -c "$WORK/external.json" run --json
expect_rc 0 external-run "run with SASL EXTERNAL over ldapi"
expect_json "$WORK/external-run.out" total.failed 0 \
    users.created 31 \
    groups.created 6
compare_trees SRC DST ext --drop "member=uid=ext00000,ou=contractors,dc=dst,dc=example"
log "ok: SASL EXTERNAL check and run"

check_no_secrets
exit 0
