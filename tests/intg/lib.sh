# tests/intg/lib.sh: common set-up for the dirmig integration tests (sourced by bash).
#
# Environment (set by `make check`, defaults for running a script by hand from the tree):
#   top_srcdir top_builddir DIRMIG SLAPD SLAPADD PYTHON3 LDAPNOINIT=1
#   VALGRIND       optional command prefix for dirmig (make check-valgrind)
#   KEEP_TESTDIR=1 keep $TESTDIR (servers are stopped anyway)
#
# Layout of $TESTDIR:
#   NAME/      one slapd instance each (tests/harness/slapd.sh)
#   data/      fixtures (LDIF with password hashes or cleartext, DN<TAB>password lists)
#   secrets/   0600 files: passwords, secrets.txt (every secret the test knows, one a line)
#   work/      everything dirmig writes or prints: configs, state DBs, logs, stdout/stderr
#              captures. check_no_secrets greps this directory.
#
# Exit codes: 0 pass, 1 fail, 77 skip (a needed tool is missing; CI treats it as a failure).

set -u -o pipefail
umask 077 # fixtures and captures hold secrets

TEST_NAME=$(basename "$0" .sh)
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${DIRMIG:=$top_builddir/dirmig}"
: "${SLAPD:=/usr/sbin/slapd}"
: "${SLAPADD:=/usr/sbin/slapadd}"
: "${PYTHON3:=python3}"
: "${VALGRIND:=}"
: "${BINDCHECK:=$top_builddir/tests/tools/bindcheck}"
LDAPNOINIT=1
export LDAPNOINIT top_srcdir top_builddir DIRMIG SLAPD SLAPADD PYTHON3

log() {
    echo "[$TEST_NAME] $*" >&2
}

fail() {
    echo "FAIL [$TEST_NAME]: $*" >&2
    exit 1
}

skip() {
    echo "SKIP [$TEST_NAME]: $*" >&2
    exit 77
}

# ---- tools ----
for _t in "$SLAPD" "$SLAPADD" slappasswd ldapsearch ldapadd ldapmodify openssl "$PYTHON3"; do
    command -v "$_t" > /dev/null 2>&1 || skip "missing tool: $_t"
done
unset _t
[ -x "$DIRMIG" ] || fail "dirmig binary not found at $DIRMIG (run make first)"

# ---- scratch directory and tear-down ----
TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-$TEST_NAME.XXXXXX") || fail "mktemp failed"
export TESTDIR
DATA=$TESTDIR/data
SECRETS=$TESTDIR/secrets
WORK=$TESTDIR/work
mkdir -p "$DATA" "$WORK" && (umask 077 && mkdir -p "$SECRETS") || fail "mkdir failed"
: > "$SECRETS/secrets.txt"
chmod 0600 "$SECRETS/secrets.txt"
DM_BG_PIDS=""

# shellcheck source=../harness/slapd.sh
. "$top_srcdir/tests/harness/slapd.sh"

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM HUP
    for p in $DM_BG_PIDS; do
        kill -9 "$p" 2> /dev/null
        wait "$p" 2> /dev/null
    done
    slapd_stop_all
    if declare -F samba_stop > /dev/null; then samba_stop; fi
    if declare -F pg_stop_all > /dev/null; then pg_stop_all; fi
    if [ "${KEEP_TESTDIR:-0}" = 1 ]; then
        echo "[$TEST_NAME] kept $TESTDIR" >&2
    else
        rm -rf "$TESTDIR"
    fi
    if [ "$rc" = 0 ]; then
        echo "PASS [$TEST_NAME]" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- secrets ----

# register_secret VALUE: check_no_secrets will look for VALUE.
register_secret() {
    printf '%s\n' "$1" >> "$SECRETS/secrets.txt"
}

# register_secret_file FILE: every line of FILE is a secret (e.g. `cut -f2 users.pw`).
register_secret_file() {
    grep -v '^$' "$1" >> "$SECRETS/secrets.txt"
}

# register_ldif_passwords LDIF: every userPassword value (hash or cleartext) is a secret.
register_ldif_passwords() {
    "$PYTHON3" - "$1" >> "$SECRETS/secrets.txt" << 'EOF'
import base64, sys
for line in open(sys.argv[1], "rb"):
    line = line.rstrip(b"\n")
    low = line.lower()
    if low.startswith(b"userpassword:: "):
        v = base64.b64decode(line[15:])
    elif low.startswith(b"userpassword: "):
        v = line[14:]
    else:
        continue
    sys.stdout.write(v.decode("utf-8", "replace") + "\n")
EOF
}

# write_secret FILE VALUE: a 0600 file holding VALUE (no newline); VALUE is registered.
write_secret() {
    (umask 077 && printf '%s' "$2" > "$1") || fail "cannot write $1"
    chmod 0600 "$1"
    register_secret "$2"
}

# check_no_secrets [DIR...]: fails if any registered secret occurs in a file under the
# directories (default $WORK: dirmig's logs, captures, configs and state DBs).
check_no_secrets() {
    local dirs=("$@") hits
    [ ${#dirs[@]} -gt 0 ] || dirs=("$WORK")
    sort -u "$SECRETS/secrets.txt" | grep -v '^$' > "$SECRETS/patterns.txt"
    [ -s "$SECRETS/patterns.txt" ] || fail "no secrets registered (test bug)"
    grep -qxF "${CANARY_PW:-unset}" "$SECRETS/patterns.txt" 2> /dev/null ||
        fail "the canary was not registered (test bug)"
    # the undo store (STATE.undo, its -wal and -shm) holds the credentials of deleted entries
    # by design, mode 0600 (dirmig(1), ROLLBACK; test_rollback.sh checks both)
    hits=$(grep -rlaF -f "$SECRETS/patterns.txt" --exclude='*.undo' --exclude='*.undo-wal' \
        --exclude='*.undo-shm' "${dirs[@]}" 2> /dev/null)
    if [ -n "$hits" ]; then
        fail "a password, hash or canary leaked into: $(echo "$hits" | tr "\n" " ")"
    fi
    log "no secret in $(find "${dirs[@]}" -type f | wc -l) files of dirmig output"
}

# ---- fixtures ----

gen_users() {
    "$PYTHON3" "$top_srcdir/tests/data/gen_users.py" "$@" || fail "gen_users.py $* failed"
}

# skeleton_ldif SUFFIX OUT: suffix entry + ou=people + ou=groups (target seed).
skeleton_ldif() {
    gen_users --suffix "$1" --skeleton --ldif "$2"
}

# add_canary LDIF SUFFIX [PWLIST]: appends uid=canary,ou=people,SUFFIX whose userPassword is
# the cleartext canary; sets CANARY_PW and CANARY_DN and registers the canary. With PWLIST,
# appends "DN<TAB>canary" to it for bindcheck.
add_canary() {
    CANARY_PW="Canary-$(head -c 15 /dev/urandom | base64 | tr -d '/+=')"
    CANARY_DN="uid=canary,ou=people,$2"
    register_secret "$CANARY_PW"
    printf '\n' >> "$1"
    printf '%s\n' "dn: $CANARY_DN" "objectClass: top" "objectClass: person" \
        "objectClass: organizationalPerson" "objectClass: inetOrgPerson" "uid: canary" \
        "cn: Canary User" "sn: Canary" "userPassword: $CANARY_PW" >> "$1"
    if [ $# -ge 3 ]; then
        (umask 077 && printf '%s\t%s\n' "$CANARY_DN" "$CANARY_PW" >> "$3")
    fi
}

# start_server NAME SUFFIX LDIF [opts]: slapd_start that fails the test and registers the
# admin password.
start_server() {
    slapd_start "$@" || fail "could not start slapd $1"
    local f="${1}_PW_FILE"
    register_secret "$(cat "${!f}")"
}

# ---- dirmig configs and runs ----

# mkconfig OUT SRC DST [path=value ...]: writes a JSON config for source instance SRC and
# target instance DST (slapd.sh names). Defaults: users under ou=people with
# (objectClass=inetOrgPerson), groups under ou=groups, state $WORK/<stem>.db, log
# $WORK/<stem>.log. Each override sets a dotted path to a JSON value (a bare word that is
# not valid JSON is taken as a string); the value "-" deletes the key. SRC may be "-" when
# an override supplies the source.
mkconfig() {
    local out=$1 src=$2 dst=$3
    shift 3
    local stem
    stem=$(basename "$out" .json)
    _env_of() {
        local n="${1}_$2"
        [ "$1" = "-" ] && { echo ""; return; }
        echo "${!n}"
    }
    "$PYTHON3" - "$out" "$stem" "$WORK" \
        "$(_env_of "$src" URI)" "$(_env_of "$src" SUFFIX)" "$(_env_of "$src" PW_FILE)" \
        "$(_env_of "$dst" URI)" "$(_env_of "$dst" SUFFIX)" "$(_env_of "$dst" PW_FILE)" \
        "$@" << 'EOF' || fail "mkconfig failed"
import json, sys
out, stem, work, suri, ssuf, spw, turi, tsuf, tpw = sys.argv[1:10]
cfg = {
    "source": {"uri": suri, "base": ssuf, "bind_dn": "cn=admin," + ssuf, "bind_pw_file": spw,
               "page_size": 500, "network_timeout_ms": 5000,
               "users": {"base": "ou=people," + ssuf, "filter": "(objectClass=inetOrgPerson)"},
               "groups": {"base": "ou=groups," + ssuf}},
    "target": {"uri": turi, "base": tsuf, "bind_dn": "cn=admin," + tsuf, "bind_pw_file": tpw,
               "network_timeout_ms": 5000},
    "state": {"path": "%s/%s.db" % (work, stem)},
    "run": {"batch_size": 500},
    "log": {"level": "info", "file": "%s/%s.log" % (work, stem)},
}
for ov in sys.argv[10:]:
    path, _, raw = ov.partition("=")
    keys = path.split(".")
    node = cfg
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if raw == "-":
        node.pop(keys[-1], None)
        continue
    try:
        val = json.loads(raw)
    except ValueError:
        val = raw
    node[keys[-1]] = val
with open(out, "w") as f:
    json.dump(cfg, f, indent=2, ensure_ascii=False)
    f.write("\n")
EOF
}

# start_okta NAME ARGS...: starts tests/okta/okta_server.py (token $SECRETS/token) on a free
# port with ARGS (rate limit, faults); sets NAME_PORT. Stopped at exit.
start_okta() {
    local name=$1 port="" i
    shift
    "$PYTHON3" "$top_srcdir/tests/okta/okta_server.py" --port 0 --token-file "$SECRETS/token" \
        "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
    DM_BG_PIDS="$DM_BG_PIDS $!"
    for i in $(seq 1 200); do
        port=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$WORK/$name.out")
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || fail "okta_server.py $name did not start: $(cat "$WORK/$name.err")"
    printf -v "${name}_PORT" '%s' "$port"
}

# dm TAG ARGS...: runs "$VALGRIND $DIRMIG ARGS..." with stdout in $WORK/TAG.out and stderr
# in $WORK/TAG.err; sets DM_RC (also returned).
dm() {
    local tag=$1
    shift
    # shellcheck disable=SC2086
    $VALGRIND "$DIRMIG" "$@" > "$WORK/$tag.out" 2> "$WORK/$tag.err"
    DM_RC=$?
    return $DM_RC
}

# dm_bg TAG ARGS...: like dm, in the background; sets DM_PID. Collect with dm_wait.
dm_bg() {
    local tag=$1
    shift
    # shellcheck disable=SC2086
    $VALGRIND "$DIRMIG" "$@" > "$WORK/$tag.out" 2> "$WORK/$tag.err" &
    DM_PID=$!
    DM_BG_PIDS="$DM_BG_PIDS $DM_PID"
}

# dm_wait PID [TIMEOUT_S]: waits for a background dirmig (default 300 s); sets DM_RC.
dm_wait() {
    local pid=$1 limit=${2:-300} i=0
    while kill -0 "$pid" 2> /dev/null; do
        i=$((i + 1))
        if [ "$i" -gt $((limit * 10)) ]; then
            kill -9 "$pid" 2> /dev/null
            fail "dirmig (pid $pid) did not finish within ${limit} s"
        fi
        sleep 0.1
    done
    wait "$pid"
    DM_RC=$?
    return $DM_RC
}

# expect_rc WANT TAG WHAT: fails unless DM_RC is WANT (shows the captured stderr).
expect_rc() {
    if [ "$DM_RC" != "$1" ]; then
        echo "---- $WORK/$2.err (last 30 lines) ----" >&2
        tail -n 30 "$WORK/$2.err" >&2
        echo "---- $WORK/$2.out (first 20 lines) ----" >&2
        head -n 20 "$WORK/$2.out" >&2
        fail "$3: exit $DM_RC, want $1"
    fi
}

# json_get FILE PATH...: prints the value at each dotted PATH of the JSON in FILE, one per
# line ("null" when missing; objects/arrays as compact JSON).
json_get() {
    "$PYTHON3" - "$@" << 'EOF'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except ValueError as e:
    sys.stderr.write("json_get: %s is not JSON: %s\n" % (sys.argv[1], e))
    sys.exit(1)
for path in sys.argv[2:]:
    node = doc
    for k in path.split("."):
        if isinstance(node, dict) and k in node:
            node = node[k]
        elif isinstance(node, list) and k.isdigit() and int(k) < len(node):
            node = node[int(k)]
        else:
            node = None
            break
    if isinstance(node, (dict, list)) or node is None or isinstance(node, bool):
        print(json.dumps(node, separators=(",", ":")))
    else:
        print(node)
EOF
}

# expect_json FILE PATH WANT [PATH WANT]...: fails unless each json_get FILE PATH prints WANT
# (one python start for all pairs: python is slow to start on a loaded box).
expect_json() {
    local file=$1 got i=0
    shift
    local -a paths=() wants=() lines=()
    while [ $# -ge 2 ]; do
        paths+=("$1")
        wants+=("$2")
        shift 2
    done
    got=$(json_get "$file" "${paths[@]}") || fail "$file is not valid JSON"
    mapfile -t lines <<< "$got"
    for ((i = 0; i < ${#paths[@]}; i++)); do
        [ "${lines[i]:-}" = "${wants[i]}" ] ||
            fail "$(basename "$file"): ${paths[i]} is '${lines[i]:-}', want '${wants[i]}'"
    done
}

# ---- directory inspection ----

# dump_norm NAME BASE SCOPE OUT [ldifnorm args...]: user attributes of the entries under
# BASE (scope one or sub), canonical (tests/harness/ldifnorm.py). BASE may be a
# space-separated list of bases (DNs without spaces) dumped into the same file.
dump_norm() {
    local name=$1 bases=$2 scope=$3 out=$4 b
    shift 4
    : > "$out.raw"
    for b in $bases; do
        slapd_search "$name" -b "$b" -s "$scope" '(objectClass=*)' '*' >> "$out.raw" ||
            fail "ldapsearch on $name ($b) failed"
        echo >> "$out.raw"
    done
    "$PYTHON3" "$top_srcdir/tests/harness/ldifnorm.py" "$@" < "$out.raw" > "$out" ||
        fail "ldifnorm failed on $out.raw"
}

# compare_trees SRC DST OUTSTEM [ldifnorm args for the source...]: the entries one level
# under ou=people and ou=groups of SRC (rebased to DST's suffix) and DST must be identical.
compare_trees() {
    local src=$1 dst=$2 stem=$3
    shift 3
    local ssuf="${src}_SUFFIX" tsuf="${dst}_SUFFIX"
    dump_norm "$src" "ou=people,${!ssuf} ou=groups,${!ssuf}" one "$DATA/$stem.src" \
        --rebase "${!ssuf}" "${!tsuf}" "$@"
    dump_norm "$dst" "ou=people,${!tsuf} ou=groups,${!tsuf}" one "$DATA/$stem.dst"
    if ! cmp -s "$DATA/$stem.src" "$DATA/$stem.dst"; then
        # The dumps hold password hashes: show DNs and attribute names, values cut short,
        # no userPassword line.
        diff "$DATA/$stem.src" "$DATA/$stem.dst" | grep -E '^[<>] ' |
            grep -viE '^[<>] userpassword' | cut -c1-100 | head -n 40 >&2
        fail "source and target differ ($DATA/$stem.src vs $stem.dst; KEEP_TESTDIR=1 keeps them)"
    fi
    log "source and target identical: $(grep -c '^dn' "$DATA/$stem.dst") entries"
}

# wait_count NAME BASE MIN TIMEOUT_S [PID]: waits until BASE holds >= MIN entries (subtree);
# stops early (returns 1) if PID exits. Prints the last count.
wait_count() {
    local name=$1 base=$2 min=$3 limit=$4 pid=${5:-} n=0 i=0
    while [ "$i" -lt $((limit * 20)) ]; do
        n=$(slapd_count "$name" "$base")
        if [ "$n" -ge "$min" ]; then
            echo "$n"
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2> /dev/null; then
            echo "$n"
            return 1
        fi
        sleep 0.05
        i=$((i + 1))
    done
    echo "$n"
    return 1
}

# state_object_rows DB: number of rows in the journal's objects table (0 if no DB/table).
state_object_rows() {
    "$PYTHON3" - "$1" << 'EOF'
import os, sqlite3, sys
p = sys.argv[1]
if not os.path.exists(p):
    print(0); sys.exit(0)
con = sqlite3.connect("file:%s?mode=ro" % p, uri=True)
names = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
n = 0
for t in names:
    if t == "objects":
        n += con.execute("select count(*) from objects").fetchone()[0]
print(n)
EOF
}

require_bindcheck() {
    [ -x "$BINDCHECK" ] || fail "tests/tools/bindcheck not built at $BINDCHECK (make check builds it)"
}
