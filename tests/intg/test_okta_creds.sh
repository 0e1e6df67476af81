#!/bin/bash
# tests/intg/test_okta_creds.sh: userPassword -> Okta hash import, end to end without the
# connector, plus the behaviour of the Okta contract server (tests/okta/okta_server.py).
#
# 1. gen_users.py makes users of every scheme it knows ({SSHA} {SSHA512} {CRYPT}$6$ $2b$
#    {PBKDF2-SHA256} at 1000 iterations, {ARGON2}, cleartext); this script adds {SHA} {SSHA256}
#    {SHA256} {MD5} {SMD5} {SHA512} {PBKDF2-SHA256/SHA512} at >= 4096 iterations, {PBKDF2-SHA1},
#    $2a$ $2y$ $1$ $5$ {SSHA384}, a bcrypt of cost 21, a user without password and two malformed
#    hashes. They are loaded into a throwaway slapd, and every password with a hash slapd can
#    check is proven with a bind (bindcheck).
# 2. userPassword is read back with ldapsearch, translated by tests/tools/credxlate (schema/cred.c)
#    and each user is created at the contract server with the hash, or with the hook.
# 3. Each user signs in at the contract server with the original password: every importable
#    scheme VERIFIED (and a wrong password refused), every hook scheme NEEDS_HOOK, the malformed
#    ones reported as errors for those users only (and not created).
# 4. Contract server: 401, 411, E0000001 on a duplicate login and bad hash fields, 429 E0000047
#    with X-Rate-Limit-Reset, Link pagination over > 1000 users and over group members, faults.

. "$(dirname "$0")/lib.sh"

: "${CREDXLATE:=$top_builddir/tests/tools/credxlate}"
[ -x "$CREDXLATE" ] || fail "tests/tools/credxlate not built at $CREDXLATE (make check builds it)"
OKTA_SERVER=$top_srcdir/tests/okta/okta_server.py
OKTA_CHECKS=$top_srcdir/tests/okta/check_server.py
SUF=dc=src,dc=example

# ---- fixtures ----
gen_users --suffix "$SUF" --users 21 --groups 3 --schemes all --ldif "$DATA/src.ldif" \
    --passwords "$SECRETS/gen.pw"
"$PYTHON3" "$top_srcdir/tests/okta/extra_creds.py" "$DATA/extra.ldif" "$SECRETS/extra.pw" "$SUF" ||
    fail "extra fixtures"
cat "$DATA/extra.ldif" >> "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$SUF" "$SECRETS/gen.pw"
register_ldif_passwords "$DATA/src.ldif"
cut -f2 "$SECRETS/gen.pw" > "$SECRETS/pwlist"
cut -f2 "$SECRETS/extra.pw" >> "$SECRETS/pwlist"
register_secret_file "$SECRETS/pwlist"

start_server SRC "$SUF" "$DATA/src.ldif"

# The fixtures are genuine: slapd binds every user whose hash it can check (not: no password,
# malformed, the cost-21 bcrypt made of invented characters).
if [ -x "$BINDCHECK" ]; then
    { cat "$SECRETS/gen.pw"; grep -vE '^uid=x(nopw|badb64|badbcrypt|bcrypt21),' \
        "$SECRETS/extra.pw" | cut -f1,2; } > "$SECRETS/bind.pw"
    "$BINDCHECK" "$SRC_URI" "$SECRETS/bind.pw" > "$WORK/bindcheck.out" 2>&1 ||
        { cat "$WORK/bindcheck.out" >&2; fail "some fixture passwords do not bind at slapd"; }
    log "slapd: $(tail -n1 "$WORK/bindcheck.out")"
fi

# ---- read back and translate ----
slapd_search SRC -b "ou=people,$SUF" '(objectClass=inetOrgPerson)' userPassword \
    > "$DATA/readback.ldif" || fail "ldapsearch failed"
"$PYTHON3" - "$DATA/readback.ldif" > "$DATA/creds.tsv" << 'PYEOF' || fail "readback parse"
import base64, sys
dn, val = None, None
def flush():
    if dn is not None:
        sys.stdout.write("%s\t%s\n" % (dn, val or ""))
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("dn: "):
        flush(); dn, val = line[4:], None
    elif line.startswith("dn:: "):
        flush(); dn, val = base64.b64decode(line[5:]).decode(), None
    elif line.lower().startswith("userpassword:: "):
        val = base64.b64decode(line[15:]).decode()
    elif line.lower().startswith("userpassword: "):
        val = line[14:]
flush()
PYEOF
[ "$(wc -l < "$DATA/creds.tsv")" -ge 40 ] || fail "read back only $(wc -l < "$DATA/creds.tsv") users"
"$CREDXLATE" "$DATA/creds.tsv" > "$DATA/xlate.jsonl" 2> "$WORK/credxlate.err" ||
    fail "credxlate failed: $(cat "$WORK/credxlate.err")"
[ "$(wc -l < "$DATA/xlate.jsonl")" = "$(wc -l < "$DATA/creds.tsv")" ] || fail "credxlate lost lines"

# ---- contract server ----
write_secret "$SECRETS/token" "okta-test-token-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"

start_okta OKTA
start_okta OKTA_RL --rate-limit 30
start_okta OKTA_FAULT --fail-5xx 0.25 --drop 0.15 --stall 0.1 --stall-seconds 1.5 --seed 7

"$PYTHON3" "$OKTA_CHECKS" e2e "$OKTA_PORT" "$SECRETS/token" "$DATA/xlate.jsonl" \
    "$SECRETS/gen.pw" "$SECRETS/extra.pw" "$CANARY_DN" > "$WORK/e2e.out" ||
    fail "end-to-end check failed"
log "end to end: $(cat "$WORK/e2e.out")"

"$PYTHON3" "$OKTA_CHECKS" server "$OKTA_PORT" "$OKTA_RL_PORT" "$OKTA_FAULT_PORT" \
    "$SECRETS/token" > "$WORK/server.out" || fail "contract server checks failed"
log "contract server: $(cat "$WORK/server.out")"

# Only the test input and the translated hashes ($DATA, $SECRETS) hold a secret.
check_no_secrets "$WORK"
exit 0
