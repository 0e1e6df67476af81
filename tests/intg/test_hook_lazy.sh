#!/bin/bash
# test_hook_lazy.sh: lazy migration into an LDAP target (hook.lazy_migration, hook.rehash;
# issue 12 point 9), LDAP -> LDAP. `dirmig run` carries every hash byte-exact; then a
# verified sign-in through the generic endpoint (what the target's login flow calls) makes
# the hook write the password to the user's target entry as a strong hash, which the target
# slapd verifies itself (pw-pbkdf2 from slapd-contrib, the argon2 module):
#   - weak schemes ({MD5}, {SHA}, {CRYPT} DES and MD5, cleartext) become {PBKDF2-SHA512},
#     then {ARGON2} with the other scheme; the user binds at the target with the same
#     password, a wrong one still fails;
#   - an entry without userPassword gets one (lazy_migration);
#   - a strong hash, and a weak one that no longer matches (changed at the target since),
#     are left alone; a user dirmig did not migrate gets nothing written; a wrong password
#     writes nothing;
#   - the journal records the users as migrated / rehashed.
. "$(dirname "$0")/lib.sh"
command -v curl > /dev/null 2>&1 || skip "missing tool: curl"
[ -e /usr/lib/ldap/pw-pbkdf2.so ] || skip "slapd-contrib (pw-pbkdf2) is not installed"

SUF=dc=src,dc=example
TSUF=dc=dst,dc=example
WEAK="md5u shau desu md5cryptu clearu"
rand() { head -c 9 /dev/urandom | base64 | tr -d '/+='; }
declare -A PW
for u in $WEAK strongu changedu nopwu latecomer argonu; do
    PW[$u]="Pw-$u-$(rand)"
    register_secret "${PW[$u]}"
done
PW_OTHER="Other-$(rand)"
PW_WRONG="Wrong-$(rand)"
register_secret "$PW_OTHER"
register_secret "$PW_WRONG"

hash_of() { # SCHEME PASSWORD
    "$PYTHON3" - "$1" "$2" << 'PYEOF'
import base64, ctypes, ctypes.util, hashlib, sys
scheme, pw = sys.argv[1:3]
lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
lib.crypt.restype = ctypes.c_char_p
lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
b64 = lambda b: base64.b64encode(b).decode()
if scheme == "MD5":
    print("{MD5}" + b64(hashlib.md5(pw.encode()).digest()))
elif scheme == "SHA":
    print("{SHA}" + b64(hashlib.sha1(pw.encode()).digest()))
elif scheme == "DES":
    print("{CRYPT}" + lib.crypt(pw.encode(), b"ab").decode())
elif scheme == "MD5CRYPT":
    print("{CRYPT}" + lib.crypt(pw.encode(), b"$1$saltsalt").decode())
elif scheme == "SSHA512":
    print("{SSHA512}" + b64(hashlib.sha512(pw.encode() + b"saltsalt").digest() + b"saltsalt"))
else:
    print(pw)
PYEOF
}
user() { # UID VALUE
    register_secret "$2"
    printf '%s\n' "dn: uid=$1,ou=people,$SUF" "objectClass: inetOrgPerson" "uid: $1" "cn: $1" \
        "sn: $1" "mail: $1@example.org" "userPassword: $2" ""
}
{
    printf '%s\n' "dn: $SUF" "objectClass: dcObject" "objectClass: organization" "dc: src" \
        "o: src" "" "dn: ou=people,$SUF" "objectClass: organizationalUnit" "ou: people" "" \
        "dn: ou=groups,$SUF" "objectClass: organizationalUnit" "ou: groups" ""
    user md5u "$(hash_of MD5 "${PW[md5u]}")"
    user shau "$(hash_of SHA "${PW[shau]}")"
    user desu "$(hash_of DES "${PW[desu]}")"
    user md5cryptu "$(hash_of MD5CRYPT "${PW[md5cryptu]}")"
    user clearu "${PW[clearu]}"
    user strongu "$(hash_of SSHA512 "${PW[strongu]}")"
    user changedu "$(hash_of MD5 "${PW[changedu]}")"
    user nopwu "$(hash_of MD5 "${PW[nopwu]}")"
    user argonu "$(hash_of SHA "${PW[argonu]}")"
} > "$DATA/src.ldif"
add_canary "$DATA/src.ldif" "$SUF"
start_server SRC "$SUF" "$DATA/src.ldif"
skeleton_ldif "$TSUF" "$DATA/dst.ldif"
start_server DST "$TSUF" "$DATA/dst.ldif" stats

mkconfig "$WORK/run.json" SRC DST
dm run -c "$WORK/run.json" run
expect_rc 0 run "run SRC -> DST"
tval() { # UID: the target's userPassword (one line, as ldapsearch prints it)
    slapd_search DST -b "uid=$1,ou=people,$TSUF" -s base userPassword |
        sed -n 's/^userPassword:: //p; s/^userPassword: //p' | head -n 1
}
tscheme() { # UID: the scheme tag of the target's userPassword
    local v
    v=$(slapd_search DST -b "uid=$1,ou=people,$TSUF" -s base userPassword |
        sed -n 's/^userPassword:: //p' | head -n 1 | base64 -d 2> /dev/null)
    [ -n "$v" ] || v=$(slapd_search DST -b "uid=$1,ou=people,$TSUF" -s base userPassword |
        sed -n 's/^userPassword: //p' | head -n 1)
    case "$v" in
    '{'*) printf '%s\n' "${v%%\}*}}" ;;
    '') echo NONE ;;
    *) echo CLEARTEXT ;;
    esac
}
tbind() { # UID PASSWORD: 0 when the target accepts the bind
    printf '%s' "$2" > "$SECRETS/tbind.pw"
    ldapwhoami -x -H "$DST_URI" -D "uid=$1,ou=people,$TSUF" -y "$SECRETS/tbind.pw" > /dev/null 2>&1
}
[ "$(tscheme md5u)" = "{MD5}" ] || fail "run did not carry {MD5} byte-exact: $(tscheme md5u)"
# After the run: changedu changes its password at the target; nopwu's entry loses its hash;
# latecomer appears in the source (never migrated by dirmig).
printf '%s\n' "dn: uid=changedu,ou=people,$TSUF" "changetype: modify" "replace: userPassword" \
    "userPassword: $(hash_of MD5 "$PW_OTHER")" "" "dn: uid=nopwu,ou=people,$TSUF" \
    "changetype: modify" "delete: userPassword" "" > "$DATA/tchange.ldif"
ldapmodify -x -H "$DST_URI" -D "$DST_ROOTDN" -y "$DST_PW_FILE" -f "$DATA/tchange.ldif" \
    > "$WORK/tchange.out" 2>&1 || fail "changing the target failed"
user latecomer "$(hash_of MD5 "${PW[latecomer]}")" > "$DATA/late.ldif"
ldapadd -x -H "$SRC_URI" -D "$SRC_ROOTDN" -y "$SRC_PW_FILE" -f "$DATA/late.ldif" \
    > "$WORK/late.out" 2>&1 || fail "adding latecomer failed"
CHANGED_BEFORE=$(tval changedu)
STRONG_BEFORE=$(tval strongu)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$SECRETS/hook.key" -out "$DATA/hook.pem" -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" > "$DATA/openssl.log" 2>&1 || fail "openssl failed"
chmod 0600 "$SECRETS/hook.key"
HOOK_SECRET="Bearer lazy-$(head -c 27 /dev/urandom | base64 | tr -d '/+=')"
write_secret "$SECRETS/hook.secret" "$HOOK_SECRET"
printf 'Authorization: %s\n' "$HOOK_SECRET" > "$SECRETS/auth.hdr"
HOOK_PORT=$(free_port)
hook_start() { # [path=value ...]
    mkconfig "$WORK/hook.json" SRC DST "hook.listen=127.0.0.1:$HOOK_PORT" \
        "hook.tls.cert_file=$DATA/hook.pem" "hook.tls.key_file=$SECRETS/hook.key" \
        "hook.secret_file=$SECRETS/hook.secret" "hook.lazy_migration=true" "hook.rehash=true" \
        "state.path=$WORK/run.db" "$@"
    dm_bg hook -c "$WORK/hook.json" hook
    HOOK_PID=$DM_PID
    for i in $(seq 1 100); do
        kill -0 "$HOOK_PID" 2> /dev/null || { cat "$WORK/hook.err" >&2; fail "dirmig hook exited"; }
        curl -s -o /dev/null --cacert "$DATA/hook.pem" "https://127.0.0.1:$HOOK_PORT/metrics" &&
            return 0
        sleep 0.1
    done
    fail "dirmig hook did not answer"
}
hook_stop() {
    kill -TERM "$HOOK_PID"
    dm_wait "$HOOK_PID" 20
    [ "$DM_RC" = 0 ] || fail "dirmig hook exited with $DM_RC"
}
verify() { # UID PASSWORD: the generic endpoint's answer
    "$PYTHON3" -c 'import json,sys; print(json.dumps({"username": sys.argv[1], "password": sys.argv[2]}))' \
        "$1" "$2" > "$DATA/req.json"
    curl -sS --cacert "$DATA/hook.pem" -H "@$SECRETS/auth.hdr" --data-binary "@$DATA/req.json" \
        "https://127.0.0.1:$HOOK_PORT/verify"
}
wait_scheme() { # UID WANT: waits (bounded) for the target's scheme
    local i
    for i in $(seq 1 100); do
        [ "$(tscheme "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# ---- PBKDF2-SHA512 ----
hook_start 'hook.hash_scheme="PBKDF2-SHA512"' "hook.pbkdf2_iterations=20000"
[ "$(verify md5u "$PW_WRONG")" = '{"verified":false}' ] || fail "md5u, wrong password"
for u in $WEAK strongu changedu nopwu latecomer; do
    [ "$(verify "$u" "${PW[$u]}")" = '{"verified":true}' ] || fail "$u not verified at the source"
done
for u in $WEAK nopwu; do
    wait_scheme "$u" "{PBKDF2-SHA512}" || fail "$u: target scheme $(tscheme "$u"), want {PBKDF2-SHA512}"
    tbind "$u" "${PW[$u]}" || fail "$u cannot bind at the target with its password"
    ! tbind "$u" "$PW_WRONG" || fail "$u binds at the target with a wrong password"
done
sleep 0.5 # the writer works in order: everything verified above has been handled
[ "$(tval strongu)" = "$STRONG_BEFORE" ] || fail "a strong hash was replaced"
[ "$(tval changedu)" = "$CHANGED_BEFORE" ] || fail "a password changed at the target was overwritten"
tbind changedu "$PW_OTHER" || fail "changedu's target password no longer works"
slapd_search DST -b "ou=people,$TSUF" -s one '(uid=latecomer)' 1.1 | grep -q '^dn:' &&
    fail "latecomer appeared at the target"
curl -s --cacert "$DATA/hook.pem" "https://127.0.0.1:$HOOK_PORT/metrics" > "$WORK/metrics.txt"
for r in "rehashed 5" "migrated 1" "unchanged 2" "not_migrated 1"; do
    set -- $r
    grep -q "^dirmig_hook_target_writes_total{result=\"$1\"} $2$" "$WORK/metrics.txt" ||
        fail "target writes $1: $(grep "result=\"$1\"" "$WORK/metrics.txt")"
done
hook_stop
log "PBKDF2-SHA512: 5 weak hashes re-hashed and 1 missing one written; each binds at the target"

# ---- ARGON2 ----
hook_start 'hook.hash_scheme="ARGON2"' "hook.argon2_memory_kib=8192"
[ "$(verify argonu "${PW[argonu]}")" = '{"verified":true}' ] || fail "argonu not verified"
wait_scheme argonu "{ARGON2}" || fail "argonu: target scheme $(tscheme argonu), want {ARGON2}"
tbind argonu "${PW[argonu]}" || fail "argonu cannot bind at the target with its password"
! tbind argonu "$PW_WRONG" || fail "argonu binds at the target with a wrong password"
slapd_search DST -b "uid=argonu,ou=people,$TSUF" -s base userPassword |
    sed -n 's/^userPassword:: //p' | base64 -d | grep -q '^{ARGON2}\$argon2id\$v=19\$m=8192,t=2,p=1\$' ||
    fail "argonu's hash is not argon2id with the configured cost"
hook_stop
log "ARGON2: {SHA} re-hashed to argon2id; binds at the target"

"$PYTHON3" - "$WORK/run.db" << 'PYEOF' || fail "journal rows"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
rows = {}
for login, outcome, reason in con.execute(
        "select login, outcome, coalesce(reason,'') from password_migrations "
        "where outcome in ('migrated', 'rehashed')"):
    rows[login] = (outcome, reason)
want = {u: ("rehashed", "PBKDF2-SHA512") for u in ("md5u", "shau", "desu", "md5cryptu", "clearu")}
want["nopwu"] = ("migrated", "PBKDF2-SHA512")
want["argonu"] = ("rehashed", "ARGON2")
assert rows == want, rows
PYEOF
check_no_secrets
