#!/bin/bash
# bench/bench_hook.sh [N_USERS] [SECONDS]: password verifications per second and p50/p99
# latency of `dirmig hook` (HTTPS + JSON, Okta payload) at 1, 8, 32 and 64 concurrent
# clients, against the ceiling: a plain C loop doing the same search + bind on the same
# slapd in the same run (bench/ldap_ceiling.c). Results: doc/benchmarks.md.
#
# One slapd (dbnosync, N_USERS users with {SSHA} passwords, default 1000), the ceiling at
# each concurrency alternating with dirmig hook (TLS, pool_size 64, default hook.threads, log
# level warn) driven by bench/hook_load.c (libcurl, one keep-alive connection per client).
# Prints a markdown table on stdout; progress on stderr.
# Environment: DIRMIG (default ./dirmig), CLIENTS (default "1 8 32 64"), KEEP_TESTDIR=1,
# HOOK_THREADS (hook.threads; unset: dirmig's default, a thread per connection; N: an epoll
# pool of N threads plus verification workers).
set -u -o pipefail
umask 077

N_USERS=${1:-1000}
SECS=${2:-10}
CLIENTS=${CLIENTS:-1 8 32 64}
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$here/.." && pwd)
: "${DIRMIG:=$top_srcdir/dirmig}"
: "${PYTHON3:=python3}"
: "${CC:=gcc}"
export LDAPNOINIT=1

die() {
    echo "bench: $*" >&2
    exit 1
}
say() {
    echo "bench: $*" >&2
}
[ -x "$DIRMIG" ] || die "no dirmig at $DIRMIG (build it, or set DIRMIG)"

TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-bench-hook.XXXXXX") || die "mktemp"
export TESTDIR
HOOK_PID=""
cleanup() {
    [ -n "$HOOK_PID" ] && kill -TERM "$HOOK_PID" 2> /dev/null && wait "$HOOK_PID" 2> /dev/null
    slapd_stop_all
    [ "${KEEP_TESTDIR:-0}" = 1 ] || rm -rf "$TESTDIR"
}
trap cleanup EXIT
. "$top_srcdir/tests/harness/slapd.sh"

SUFFIX=dc=src,dc=example
say "generating $N_USERS users"
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$SUFFIX" --users "$N_USERS" \
    --groups 0 --schemes ssha --ldif "$TESTDIR/src.ldif" --passwords "$TESTDIR/users.pw" ||
    die "gen_users failed"
slapd_start SRC "$SUFFIX" "$TESTDIR/src.ldif" dbnosync || die "slapd failed"

say "building the load client and the ceiling loop"
$CC -O2 -o "$TESTDIR/ldap_ceiling" "$here/ldap_ceiling.c" -lldap -llber -lpthread || die "cc"
$CC -O2 -o "$TESTDIR/hook_load" "$here/hook_load.c" -lcurl -lpthread || die "cc"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$TESTDIR/hook.key" -out "$TESTDIR/hook.pem" -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" > /dev/null 2>&1 || die "openssl"
chmod 600 "$TESTDIR/hook.key"
secret="Bearer bench-$(head -c 27 /dev/urandom | base64 | tr -d '/+=')"
printf '%s' "$secret" > "$TESTDIR/hook.secret"
printf 'Authorization: %s\n' "$secret" > "$TESTDIR/auth.hdr"
port=$(free_port)
THREADS_JSON="" # the product's default unless HOOK_THREADS is set
[ -n "${HOOK_THREADS:-}" ] && THREADS_JSON=", \"threads\": $HOOK_THREADS"
cat > "$TESTDIR/hook.json" << EOF2
{
  "source": { "uri": "$SRC_URI", "base": "$SUFFIX", "bind_dn": "$SRC_ROOTDN",
              "bind_pw_file": "$SRC_PW_FILE",
              "users": { "base": "ou=people,$SUFFIX", "filter": "(objectClass=inetOrgPerson)" } },
  "target": { "uri": "$SRC_URI", "base": "$SUFFIX" },
  "state": { "path": "$TESTDIR/hook.db" },
  "log": { "level": "warn", "file": "$TESTDIR/hook.log" },
  "hook": { "listen": "127.0.0.1:$port", "tls": { "cert_file": "$TESTDIR/hook.pem",
            "key_file": "$TESTDIR/hook.key" }, "secret_file": "$TESTDIR/hook.secret",
            "pool_size": 64, "max_concurrency": 128$THREADS_JSON }
}
EOF2

"$DIRMIG" -c "$TESTDIR/hook.json" hook 2> "$TESTDIR/hook.err" &
HOOK_PID=$!
for i in $(seq 1 100); do
    curl -s -o /dev/null --cacert "$TESTDIR/hook.pem" "https://127.0.0.1:$port/metrics" && break
    sleep 0.1
done
# The ceiling and the hook alternate at each concurrency, so both see the same machine
# (this box is shared; a load spike hits both sides of one row rather than one column).
: > "$TESTDIR/ceiling.txt"
: > "$TESTDIR/hook.txt"
for n in $CLIENTS; do
    say "$n clients: ceiling (search + bind loop), ${SECS}s"
    "$TESTDIR/ldap_ceiling" "$SRC_URI" "$SRC_ROOTDN" "$SRC_PW_FILE" "ou=people,$SUFFIX" \
        "$TESTDIR/users.pw" "$SECS" "$n" >> "$TESTDIR/ceiling.txt" || die "ceiling failed"
    say "$n clients: dirmig hook (HTTPS + JSON), ${SECS}s"
    "$TESTDIR/hook_load" "https://127.0.0.1:$port/okta/password-import" "$TESTDIR/hook.pem" \
        "$TESTDIR/auth.hdr" "$TESTDIR/users.pw" "$SECS" "$n" >> "$TESTDIR/hook.txt" ||
        die "load client failed"
done
curl -s --cacert "$TESTDIR/hook.pem" "https://127.0.0.1:$port/metrics" > "$TESTDIR/metrics.txt"
say "server-side: $(grep -E "^dirmig_hook_request_duration_seconds_(sum|count)" "$TESTDIR/metrics.txt" | tr "\n" " ")"

echo "| clients | ceiling verif/s | ceiling p50 / p99 ms | hook verif/s | hook p50 / p99 ms | hook / ceiling | failed |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
while read -r _ n c_rps c_p50 c_p99 c_fail && read -r _ _ h_rps h_p50 h_p99 h_fail <&3; do
    ratio=$(awk -v a="$h_rps" -v b="$c_rps" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }')
    echo "| $n | $c_rps | $c_p50 / $c_p99 | $h_rps | $h_p50 / $h_p99 | $ratio | $((c_fail + h_fail)) |"
done < "$TESTDIR/ceiling.txt" 3< "$TESTDIR/hook.txt"
say "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
say "hook outcomes: $(grep '^dirmig_hook_requests_total' "$TESTDIR/metrics.txt" | grep -v ' 0$' | tr '\n' ' ')"
