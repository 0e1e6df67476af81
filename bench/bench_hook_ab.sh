#!/bin/bash
# bench/bench_hook_ab.sh DIRMIG_A DIRMIG_B [ROUNDS] [SECONDS]: two dirmig builds' hooks
# compared with each other and with the ceiling (bench/ldap_ceiling.c, the plain C search +
# bind loop) on one slapd, interleaved: each round runs the ceiling, hook A and hook B for
# SECONDS each at every concurrency in CLIENTS (default "1 8 32 64"). On a shared machine a
# load spike then hits all three of a round, not one column, and the medians over ROUNDS
# (default 5) compare the builds fairly. Both hooks run at once on two ports with their own
# default settings (pool_size 64, max_concurrency 128; HOOK_A_JSON / HOOK_B_JSON add keys,
# e.g. ', "threads": 64'). Also prints each hook's CPU time per verification (user + system,
# from /proc), which a busy machine disturbs far less than throughput.
# Output: per round "clients ceiling A (ratio) B (ratio)", then the medians. Progress on
# stderr. Needs the libcurl and libldap headers for the two C tools.
set -u -o pipefail
umask 077

A=${1:?usage: bench_hook_ab.sh DIRMIG_A DIRMIG_B [ROUNDS] [SECONDS]}
B=${2:?usage: bench_hook_ab.sh DIRMIG_A DIRMIG_B [ROUNDS] [SECONDS]}
ROUNDS=${3:-5}
SECS=${4:-4}
CLIENTS=${CLIENTS:-1 8 32 64}
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$here/.." && pwd)
: "${PYTHON3:=python3}"
: "${CC:=gcc}"
export LDAPNOINIT=1

die() {
    echo "bench: $*" >&2
    exit 1
}
[ -x "$A" ] && [ -x "$B" ] || die "DIRMIG_A and DIRMIG_B must be executables"
TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-bench-ab.XXXXXX") || die "mktemp"
export TESTDIR
PIDS=""
cleanup() {
    local p
    for p in $PIDS; do
        kill -TERM "$p" 2> /dev/null
        wait "$p" 2> /dev/null
    done
    slapd_stop_all
    [ "${KEEP_TESTDIR:-0}" = 1 ] || rm -rf "$TESTDIR"
}
trap cleanup EXIT
. "$top_srcdir/tests/harness/slapd.sh"

SUFFIX=dc=src,dc=example
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$SUFFIX" --users 1000 --groups 0 \
    --schemes ssha --ldif "$TESTDIR/src.ldif" --passwords "$TESTDIR/users.pw" > /dev/null ||
    die "gen_users failed"
slapd_start SRC "$SUFFIX" "$TESTDIR/src.ldif" dbnosync || die "slapd failed"
$CC -O2 -o "$TESTDIR/ldap_ceiling" "$here/ldap_ceiling.c" -lldap -llber -lpthread || die "cc"
$CC -O2 -o "$TESTDIR/hook_load" "$here/hook_load.c" -lcurl -lpthread || die "cc"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$TESTDIR/hook.key" -out "$TESTDIR/hook.pem" -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" > /dev/null 2>&1 || die "openssl"
secret="Bearer bench-$(head -c 27 /dev/urandom | base64 | tr -d '/+=')"
printf '%s' "$secret" > "$TESTDIR/hook.secret"
printf 'Authorization: %s\n' "$secret" > "$TESTDIR/auth.hdr"

start_hook() { # NAME BINARY EXTRA_JSON: sets PORT_NAME, PID_NAME
    local name=$1 bin=$2 extra=$3 port i
    port=$(free_port)
    cat > "$TESTDIR/$name.json" << EOF2
{ "source": { "uri": "$SRC_URI", "base": "$SUFFIX", "bind_dn": "$SRC_ROOTDN",
              "bind_pw_file": "$SRC_PW_FILE",
              "users": { "base": "ou=people,$SUFFIX", "filter": "(objectClass=inetOrgPerson)" } },
  "target": { "uri": "$SRC_URI", "base": "$SUFFIX" },
  "state": { "path": "$TESTDIR/$name.db" },
  "log": { "level": "warn", "file": "$TESTDIR/$name.log" },
  "hook": { "listen": "127.0.0.1:$port", "tls": { "cert_file": "$TESTDIR/hook.pem",
            "key_file": "$TESTDIR/hook.key" }, "secret_file": "$TESTDIR/hook.secret",
            "pool_size": 64, "max_concurrency": 128$extra } }
EOF2
    "$bin" -c "$TESTDIR/$name.json" hook 2> "$TESTDIR/$name.err" &
    PIDS="$PIDS $!"
    printf -v "PID_$name" '%s' "$!"
    printf -v "PORT_$name" '%s' "$port"
    for i in $(seq 1 100); do
        curl -s -o /dev/null --cacert "$TESTDIR/hook.pem" "https://127.0.0.1:$port/metrics" &&
            return 0
        sleep 0.1
    done
    cat "$TESTDIR/$name.err" >&2
    die "hook $name did not start"
}
start_hook A "$A" "${HOOK_A_JSON:-}"
start_hook B "$B" "${HOOK_B_JSON:-}"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hook() { # PORT CLIENTS -> "ops p50"
    "$TESTDIR/hook_load" "https://127.0.0.1:$1/okta/password-import" "$TESTDIR/hook.pem" \
        "$TESTDIR/auth.hdr" "$TESTDIR/users.pw" "$SECS" "$2" | awk '{print $3, $4, $6}'
}
ceiling() { # CLIENTS
    "$TESTDIR/ldap_ceiling" "$SRC_URI" "$SRC_ROOTDN" "$SRC_PW_FILE" "ou=people,$SUFFIX" \
        "$TESTDIR/users.pw" "$SECS" "$1" | awk '{print $3, $4, $6}'
}
hook "$PORT_A" 8 > /dev/null # warm both up
hook "$PORT_B" 8 > /dev/null
: > "$TESTDIR/rows"
for r in $(seq 1 "$ROUNDS"); do
    for n in $CLIENTS; do
        echo "bench: round $r, $n clients" >&2
        c=$(ceiling "$n")
        t0=$(cpu_ticks "$PID_A")
        a=$(hook "$PORT_A" "$n")
        t1=$(cpu_ticks "$PID_A")
        u0=$(cpu_ticks "$PID_B")
        b=$(hook "$PORT_B" "$n")
        u1=$(cpu_ticks "$PID_B")
        echo "$n $c $a $((t1 - t0)) $b $((u1 - u0))" >> "$TESTDIR/rows"
    done
done
"$PYTHON3" - "$TESTDIR/rows" "$SECS" "$A" "$B" << 'PYEOF'
import statistics, sys
rows, secs = sys.argv[1], float(sys.argv[2])
by = {}
print("| round | clients | ceiling verif/s | A verif/s | A / ceiling | B verif/s | B / ceiling | A us CPU/verif | B us CPU/verif |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
rnd = {}
for line in open(rows):
    f = line.split()
    n = int(f[0]); c = float(f[1]); a = float(f[4]); ta = int(f[7]); b = float(f[8]); tb = int(f[11])
    if int(f[3]) or int(f[6]) or int(f[10]):
        print("failed requests in a round: %s" % line.strip(), file=sys.stderr)
    rnd[n] = rnd.get(n, 0) + 1
    ca = ta * 1e4 / (a * secs) if a else 0
    cb = tb * 1e4 / (b * secs) if b else 0
    by.setdefault(n, []).append((c, a, b, ca, cb))
    print("| %d | %d | %.0f | %.0f | %.0f%% | %.0f | %.0f%% | %.0f | %.0f |" %
          (rnd[n], n, c, a, 100 * a / c, b, 100 * b / c, ca, cb))
print()
print("Medians (A = %s, B = %s):" % (sys.argv[3], sys.argv[4]))
print()
print("| clients | A / ceiling | B / ceiling | B / A | A us CPU/verif | B us CPU/verif |")
print("|---:|---:|---:|---:|---:|---:|")
for n, v in sorted(by.items()):
    med = lambda k: statistics.median(x[k] for x in v)
    ra = statistics.median(x[1] / x[0] for x in v)
    rb = statistics.median(x[2] / x[0] for x in v)
    ba = statistics.median(x[2] / x[1] for x in v)
    print("| %d | %.0f%% | %.0f%% | %.2f | %.0f | %.0f |" % (n, 100 * ra, 100 * rb, ba, med(3), med(4)))
PYEOF
echo "bench: load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >&2
