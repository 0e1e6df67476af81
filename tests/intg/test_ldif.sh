#!/bin/bash
# tests/intg/test_ldif.sh: LDIF files as a source and as a target, and the csv/jsonl targets.
#
# 1. slapcat of a real slapd (tests/data/basic.ldif plus generated users: escaped multi-valued
#    RDNs, binary and Unicode values, nested groups, every fast scheme) with comments and a
#    folded comment added -> source.type ldif -> an empty slapd target: the same target as
#    the live source gives (both compared with the source, byte for byte), every user binds.
# 2. target.type ldif from the live source -> slapadd -q into an empty slapd: the same tree,
#    every user binds with the original password; the file is 0600, the base and containers
#    come first, groups after their members; a second run writes the same file.
# 3. Bad input: a bad base64 value and a change record stop the run before anything is
#    written, naming file:line; a run that fails leaves no partial output file.
# 4. csv and jsonl targets: one row per user, multi-valued and binary values, no groups.
# 5. No password or hash in any log or journal.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
require_bindcheck
SLAPCAT=${SLAPCAT:-$(dirname "$SLAPADD")/slapcat}
SUF=dc=src,dc=example

cp "$top_srcdir/tests/data/basic.ldif" "$DATA/src.ldif"
(umask 077 && cp "$top_srcdir/tests/data/basic.pw" "$SECRETS/src.pw")
gen_users --suffix "$SUF" --users 150 --groups 6 --big-group 60 --schemes fast \
    --ldif "$DATA/gen.ldif" --passwords "$SECRETS/gen.pw"
# gen.ldif starts with the suffix and the two OUs basic.ldif has already
"$PYTHON3" - "$DATA/gen.ldif" >> "$DATA/src.ldif" << 'PYEOF'
import sys
recs = open(sys.argv[1]).read().split("\n\n")
keep = [r for r in recs if r.strip() and not r.lstrip().startswith(
    ("dn: dc=", "dn: ou=people,", "dn: ou=groups,"))]
# the contractor outside the migrated scope stays, but not as a member (the trees compare)
print("\n" + "\n\n".join("\n".join(l for l in r.split("\n") if "ou=contractors" not in l
                                     or l.startswith("dn:") or l.startswith("ou:"))
                          for r in keep))
PYEOF
cat "$SECRETS/gen.pw" >> "$SECRETS/src.pw"
add_canary "$DATA/src.ldif" "$SUF" "$SECRETS/src.pw"
register_ldif_passwords "$DATA/src.ldif"
cut -f2 "$SECRETS/src.pw" > "$SECRETS/pwonly" && register_secret_file "$SECRETS/pwonly"
skeleton_ldif dc=dst,dc=example "$DATA/dst.ldif"
start_server SRC "$SUF" "$DATA/src.ldif" online
start_server DST dc=dst,dc=example "$DATA/dst.ldif"
start_server LIVE dc=dst,dc=example "$DATA/dst.ldif"
users=$(slapd_count SRC "ou=people,$SUF" '(objectClass=inetOrgPerson)')
groups=$(($(slapd_count SRC "ou=groups,$SUF") - 1))

# ---- 1. slapcat -> source.type ldif -> slapd ----
"$SLAPCAT" -f "$TESTDIR/SRC/slapd.conf" -l "$DATA/dump0.ldif" 2> "$WORK/slapcat.err" ||
    fail "slapcat failed: $(cat "$WORK/slapcat.err")"
{
    printf '# a dump of %s\n# a comment that goes on\n  on the next line\nversion: 1\n\n' "$SUF"
    cat "$DATA/dump0.ldif"
} > "$DATA/dump.ldif"
grep -q '^ ' "$DATA/dump.ldif" && grep -q '^[A-Za-z]*:: ' "$DATA/dump.ldif" ||
    fail "the dump has no folded line or no base64 value: the test would prove less"
chmod 0600 "$DATA/dump.ldif"
mkconfig "$WORK/fromldif.json" SRC DST "source.type=ldif" "source.uri=file:$DATA/dump.ldif" \
    "source.bind_dn=-" "source.bind_pw_file=-" "source.page_size=-"
dm fcheck -c "$WORK/fromldif.json" check
expect_rc 0 fcheck "check with an LDIF source"
grep -q "LDIF file $DATA/dump.ldif: readable" "$WORK/fcheck.out" "$WORK/fcheck.err" || fail "check does not describe the file"
dm fplan -c "$WORK/fromldif.json" --json plan
expect_rc 0 fplan "plan from LDIF"
expect_json "$WORK/fplan.out" users.create "$users" groups.create "$groups"
dm frun -c "$WORK/fromldif.json" --json run
expect_rc 0 frun "run from LDIF"
expect_json "$WORK/frun.out" users.created "$users" groups.created "$groups" total.failed 0 \
    unresolved_members 0
compare_trees SRC DST fromldif
mkconfig "$WORK/live.json" SRC LIVE
dm lrun -c "$WORK/live.json" --json run
expect_rc 0 lrun "run from the live source"
dump_norm DST "ou=people,dc=dst,dc=example ou=groups,dc=dst,dc=example" one "$DATA/t_ldif"
dump_norm LIVE "ou=people,dc=dst,dc=example ou=groups,dc=dst,dc=example" one "$DATA/t_live"
cmp -s "$DATA/t_ldif" "$DATA/t_live" || fail "the target from the dump differs from the target from the live source"
sed 's/,dc=src,dc=example\t/,dc=dst,dc=example\t/' "$SECRETS/src.pw" > "$SECRETS/dst.pw"
"$BINDCHECK" "$DST_URI" "$SECRETS/dst.pw" > "$WORK/bind1.out" ||
    fail "bindcheck after the LDIF source: $(tail -n 3 "$WORK/bind1.out")"
dm frun2 -c "$WORK/fromldif.json" --json run
expect_rc 0 frun2 "second run from LDIF"
expect_json "$WORK/frun2.out" total.created 0 total.updated 0 total.failed 0

# ---- 2. target.type ldif -> slapadd -q ----
mkconfig "$WORK/toldif.json" SRC - "target.bind_dn=-" "target.bind_pw_file=-" "target.type=ldif" "target.uri=file:$DATA/out.ldif" \
    "target.base=dc=dst,dc=example"
dm tplan -c "$WORK/toldif.json" --json plan
expect_rc 0 tplan "plan into LDIF"
[ -e "$DATA/out.ldif" ] && fail "plan wrote the LDIF file"
dm trun -c "$WORK/toldif.json" --json run
expect_rc 0 trun "run into LDIF"
expect_json "$WORK/trun.out" users.created "$users" groups.created "$groups" total.failed 0
[ "$(stat -c %a "$DATA/out.ldif")" = 600 ] || fail "out.ldif is not mode 0600"
head -n 1 "$DATA/out.ldif" | grep -qx 'dn: dc=dst,dc=example' || fail "the base is not the first entry"
"$PYTHON3" - "$DATA/out.ldif" << 'PYEOF' || fail "out.ldif is not in parent-before-child, members-before-groups order"
import sys
seen, order = set(), []
dn = None
for rec in open(sys.argv[1], encoding="utf-8", errors="replace").read().split("\n\n"):
    lines = rec.replace("\n ", "").split("\n")
    if not lines[0].startswith("dn"):
        continue
    d = lines[0].split(": ", 1)[1] if lines[0].startswith("dn: ") else None
    if d is None:
        import base64; d = base64.b64decode(lines[0].split(":: ", 1)[1]).decode()
    parent = d.split(",", 1)[1] if "," in d and d != "dc=dst,dc=example" else None
    if parent and parent.lower() not in seen and not parent.lower().startswith("dc="):
        sys.exit("parent of %s after it" % d)
    for l in lines[1:]:
        if l.lower().startswith(("member: ", "uniquemember: ")):
            m = l.split(": ", 1)[1]
            if m.lower() not in seen and "ou=groups" not in m.lower():
                sys.exit("member %s of %s comes later" % (m, d))
    seen.add(d.lower())
PYEOF
start_server OUT dc=dst,dc=example "$DATA/out.ldif"
compare_trees SRC OUT toldif
"$BINDCHECK" "$OUT_URI" "$SECRETS/dst.pw" > "$WORK/bind2.out" ||
    fail "bindcheck after slapadd of the LDIF target: $(tail -n 3 "$WORK/bind2.out")"
cp "$DATA/out.ldif" "$DATA/out1.ldif"
dm trun2 -c "$WORK/toldif.json" --json run
expect_rc 0 trun2 "second run into LDIF"
cmp -s "$DATA/out.ldif" "$DATA/out1.ldif" || fail "a second run wrote a different file"

# ---- 3. bad input ----
bad_case() { # TAG LINE-PATTERN: a copy of the dump broken as the caller says; the run fails
    local tag=$1 want=$2
    before=$(slapd_count DST dc=dst,dc=example)
    mkconfig "$WORK/$tag.json" SRC DST "source.type=ldif" "source.uri=file:$DATA/$tag.ldif" \
        "source.bind_dn=-" "source.bind_pw_file=-" "source.page_size=-"
    dm "$tag" -c "$WORK/$tag.json" --json run
    expect_rc 65 "$tag" "run from a malformed LDIF"
    grep -qE "$tag\.ldif:$want" "$WORK/$tag.err" ||
        fail "$tag: the error does not name $tag.ldif:$want: $(head -c 300 "$WORK/$tag.err")"
    [ "$(slapd_count DST dc=dst,dc=example)" = "$before" ] || fail "$tag: the target was written"
    log "ok: $tag -> 65, $(grep -oE "$tag\.ldif:[0-9]+: [^\"]*" "$WORK/$tag.err" | head -n 1)"
}
ldapdelete -x -H "$DST_URI" -D "cn=admin,dc=dst,dc=example" -y "$DST_PW_FILE" -r \
    "ou=people,dc=dst,dc=example" > /dev/null 2>&1
awk 'BEGIN { n = 0 } /^mail: / && n == 0 && NR > 200 { print "mail:: not*base64"; n = NR; next } { print }' \
    "$DATA/dump.ldif" > "$DATA/badb64.ldif"
line=$(grep -n '^mail:: not\*base64' "$DATA/badb64.ldif" | cut -d: -f1)
bad_case badb64 "$line: mail: the value is not valid base64"
awk '/^dn: uid=user00100,/ { print; print "changetype: modify"; next } { print }' \
    "$DATA/dump.ldif" > "$DATA/badchange.ldif"
line=$(grep -n '^changetype: modify' "$DATA/badchange.ldif" | cut -d: -f1)
bad_case badchange "$line: only entries"
rm -f "$DATA/out.ldif"
mkconfig "$WORK/toldif_bad.json" SRC - "target.bind_dn=-" "target.bind_pw_file=-" "target.type=ldif" "target.uri=file:$DATA/out.ldif" \
    "target.base=dc=dst,dc=example" "source.users.base=ou=nowhere,$SUF"
dm tbad -c "$WORK/toldif_bad.json" --json run
[ "$DM_RC" != 0 ] || fail "a run with a missing users base succeeded"
[ -e "$DATA/out.ldif" ] && fail "a failed run left an LDIF file"
ls "$DATA"/out.ldif.tmp.* > /dev/null 2>&1 && fail "a failed run left its temporary file"

# ---- 4. csv and jsonl ----
mkconfig "$WORK/csv.json" SRC - "target.bind_dn=-" "target.bind_pw_file=-" "target.type=csv" "target.uri=file:$DATA/users.csv" "target.base=-" \
    'target.columns=dn,uid,mail,cn,jpegPhoto'
dm csv -c "$WORK/csv.json" --json run
expect_rc 0 csv "run into CSV"
expect_json "$WORK/csv.out" users.created "$users" groups.created 0
grep -q 'groups are not migrated' "$WORK/csv.log" || fail "the CSV run does not say groups are left out"
mkconfig "$WORK/jsonl.json" SRC - "target.bind_dn=-" "target.bind_pw_file=-" "target.type=jsonl" "target.uri=file:$DATA/users.jsonl" "target.base=-"
dm jsonl -c "$WORK/jsonl.json" --json run
expect_rc 0 jsonl "run into JSON Lines"
"$PYTHON3" - "$DATA/users.csv" "$DATA/users.jsonl" "$users" << 'PYEOF' || fail "CSV/JSONL content is wrong"
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
n = int(sys.argv[3])
assert rows[0] == ["dn", "uid", "mail", "cn", "jpegPhoto"], rows[0]
assert len(rows) == n + 1, len(rows)
by = {r[1]: r for r in rows[1:]}
assert by["jd"][0] in ("cn=Doe\\, Jane+uid=jd,ou=people,dc=src,dc=example",
                      "cn=Doe\\2C Jane+uid=jd,ou=people,dc=src,dc=example"), by["jd"]
assert "|" in by["zoe"][2], by["zoe"]  # several mail values
assert by["zoe"][4].startswith("base64:"), by["zoe"][4][:20]
objs = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert len(objs) == n, len(objs)
z = [o for o in objs if o.get("uid") == "zoe"][0]
assert isinstance(z["mail"], list) and "base64" in z["jpegPhoto"], z.keys()
PYEOF

check_no_secrets "$WORK"
exit 0
