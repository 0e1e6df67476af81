#!/bin/bash
# bench/bench_ldif.sh [N_USERS] [N_GROUPS]: staging a new OpenLDAP server offline against
# loading it online, same run, same machine, same source server. See doc/benchmarks.md.
#
# The source holds N_USERS users and N_GROUPS groups (tests/data/gen_users.py, {SSHA}).
#   offline   dirmig run with target.type ldif (the whole tree, slapadd-ready), then
#             slapadd -q of that file into an empty server, then the server is started;
#             timed end to end (dirmig + slapadd + start)
#   online    dirmig run into the same kind of server (empty but for the suffix and the
#             two OUs), over LDAP: the baseline
# Both targets are checked to hold every entry; a few users bind with their password.
# Prints a markdown table on stdout; progress goes to stderr.
#
# Environment: DIRMIG (default ./dirmig from the build tree), PYTHON3, KEEP_TESTDIR=1.
set -u -o pipefail
umask 077

N_USERS=${1:-100000}
N_GROUPS=${2:-1000}
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$here/.." && pwd)
: "${DIRMIG:=$top_srcdir/dirmig}"
: "${PYTHON3:=python3}"
: "${SLAPADD:=/usr/sbin/slapadd}"
TIME_BIN=/usr/bin/time
export LDAPNOINIT=1

die() {
    echo "bench: $*" >&2
    exit 1
}
say() {
    echo "bench: $*" >&2
}

[ -x "$DIRMIG" ] || die "no dirmig at $DIRMIG (build it, or set DIRMIG)"
[ -x "$TIME_BIN" ] || die "$TIME_BIN missing: apt-get install -y time"
TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-bench.XXXXXX") || die "mktemp failed"
export TESTDIR
# shellcheck source=../tests/harness/slapd.sh
. "$top_srcdir/tests/harness/slapd.sh"
cleanup() {
    trap - EXIT INT TERM
    slapd_stop_all
    if [ "${KEEP_TESTDIR:-0}" = 1 ]; then
        say "kept $TESTDIR"
    else
        rm -rf "$TESTDIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SRC_SUF=dc=src,dc=example
DST_SUF=dc=dst,dc=example
D=$TESTDIR/data
W=$TESTDIR/work
mkdir -p "$D" "$W"
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

say "generating $N_USERS users, $N_GROUPS groups"
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$SRC_SUF" --users "$N_USERS" \
    --groups "$N_GROUPS" --big-group 5000 --schemes ssha --ldif "$D/src.ldif" \
    --passwords "$D/src.pw" || die "gen_users.py failed"
"$PYTHON3" "$top_srcdir/tests/data/gen_users.py" --suffix "$DST_SUF" --skeleton \
    --ldif "$D/dst.ldif" || die "gen_users.py failed"
say "loading the source"
slapd_start SRC "$SRC_SUF" "$D/src.ldif" || die "source start failed"
n_entries=$(($(slapd_count SRC "ou=people,$SRC_SUF") - 1 + $(slapd_count SRC "ou=groups,$SRC_SUF") - 1))

config() { # OUT TARGET-JSON
    cat > "$1" << EOF
{
  "source": { "uri": "$SRC_URI", "base": "$SRC_SUF",
              "bind_dn": "cn=admin,$SRC_SUF", "bind_pw_file": "$SRC_PW_FILE", "page_size": 1000,
              "users":  { "base": "ou=people,$SRC_SUF", "filter": "(objectClass=inetOrgPerson)" },
              "groups": { "base": "ou=groups,$SRC_SUF" } },
  "target": $2,
  "state": { "path": "${1%.json}.db" },
  "run": { "batch_size": 500 },
  "log": { "level": "info", "file": "${1%.json}.log" }
}
EOF
}
run_dirmig() { # CONFIG TAG -> prints peak RSS KiB
    "$TIME_BIN" -v -o "$W/$2.time" "$DIRMIG" -c "$1" run --json > "$W/$2.out" 2> "$W/$2.err" || {
        tail -n 5 "$W/$2.err" >&2
        die "dirmig run ($2) failed"
    }
    awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$W/$2.time"
}
count() { # NAME
    echo $(($(slapd_count "$1" "ou=people,$DST_SUF") - 1 + $(slapd_count "$1" "ou=groups,$DST_SUF") - 1))
}
binds() { # NAME: the first 20 users bind with their password
    local uri="${1}_URI"
    head -n 20 "$D/src.pw" | sed "s/,$SRC_SUF	/,$DST_SUF	/" > "$D/bind.pw"
    "$BINDCHECK" "${!uri}" "$D/bind.pw" > /dev/null || die "$1: users do not bind"
}
: "${BINDCHECK:=$(dirname "$DIRMIG")/tests/tools/bindcheck}"
[ -x "$BINDCHECK" ] || die "no $BINDCHECK (make check builds it, or set BINDCHECK)"

# ---- online: the baseline ----
say "online: dirmig run into an empty slapd"
slapd_start ONLINE "$DST_SUF" "$D/dst.ldif" || die "target start failed"
config "$W/online.json" "{ \"uri\": \"$ONLINE_URI\", \"base\": \"$DST_SUF\", \"bind_dn\": \"cn=admin,$DST_SUF\", \"bind_pw_file\": \"$ONLINE_PW_FILE\" }"
t0=$(now)
rss_on=$(run_dirmig "$W/online.json" online)
t1=$(now)
on_s=$(elapsed "$t0" "$t1")
[ "$(count ONLINE)" -ge "$n_entries" ] || die "online: the target lacks entries"
binds ONLINE

# ---- offline: target.type ldif, then slapadd -q ----
say "offline: dirmig run into LDIF, slapadd -q, start"
config "$W/offline.json" "{ \"type\": \"ldif\", \"uri\": \"file:$D/out.ldif\", \"base\": \"$DST_SUF\" }"
t0=$(now)
rss_off=$(run_dirmig "$W/offline.json" offline)
t1=$(now)
slapd_start OFFLINE "$DST_SUF" "$D/out.ldif" || die "slapadd of the LDIF failed"
t2=$(now)
ldif_s=$(elapsed "$t0" "$t1")
load_s=$(elapsed "$t1" "$t2")
off_s=$(elapsed "$t0" "$t2")
[ "$(count OFFLINE)" -ge "$n_entries" ] || die "offline: the target lacks entries"
binds OFFLINE

cpu=$(awk -F: '/model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo)
slapd_ver=$("$SLAPD" -VV 2>&1 | sed -n 's/.*slapd \([0-9.]*\).*/\1/p' | head -n 1)
cat << EOF
### Staging a new OpenLDAP server: LDIF + slapadd -q against an online load ($N_USERS users, $N_GROUPS groups)

$(date -u +%Y-%m-%d) · $(nproc) CPU ($cpu) · $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM · slapd $slapd_ver (mdb) · $("$DIRMIG" --version 2> /dev/null | head -n 1 || echo dirmig)

| method | entries | wall s | entries/s | time vs online | dirmig peak RSS MiB |
|---|---:|---:|---:|---:|---:|
| online: dirmig run into slapd over LDAP (baseline) | $n_entries | $on_s | $(rate "$n_entries" "$on_s") | 1.00 | $((rss_on / 1024)) |
| offline: dirmig run into LDIF ($ldif_s s), then slapadd -q and start ($load_s s) | $n_entries | $off_s | $(rate "$n_entries" "$off_s") | $(ratio "$off_s" "$on_s") | $((rss_off / 1024)) |
EOF
