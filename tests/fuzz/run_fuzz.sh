#!/bin/bash
# tests/fuzz/run_fuzz.sh [SECONDS]: builds the libFuzzer target for the hook's request
# handler with clang (ASan + UBSan) and runs it for SECONDS (default 60) on the seed corpus.
# Exit 0 when no crash was found, 77 when clang is missing. Needs: clang (Debian `clang`).
set -eu
secs=${1:-60}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
CLANG=${CLANG:-clang}
command -v "$CLANG" > /dev/null 2>&1 || { echo "SKIP: clang not found" >&2; exit 77; }
# Crash reproducers (crash-*) land in $top_builddir/tests/fuzz; the binary and the
# growing corpus live in a scratch directory.
art=$top_builddir/tests/fuzz
mkdir -p "$art"
work=$(mktemp -d "${TMPDIR:-/tmp}/dirmig-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work
mkdir -p "$work/corpus"
cp "$top_srcdir"/tests/fuzz/corpus/* "$work/corpus/" 2> /dev/null || true
"$CLANG" -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$top_srcdir" -I"$top_builddir" -include config.h $(pkg-config --cflags jansson) \
    -o "$out/fuzz_hook" "$top_srcdir/tests/fuzz/fuzz_hook.c" \
    "$top_srcdir/agent/hook_core.c" "$top_srcdir/agent/hook_guard.c" \
    "$top_srcdir/connectors/ldap_verify.c" "$top_srcdir/connectors/ldap_common.c" \
    "$top_srcdir/connectors/ad.c" "$top_srcdir/schema/entry.c" "$top_srcdir/schema/cred.c" \
    "$top_srcdir/schema/dn.c" "$top_srcdir/schema/transform_date.c" \
    "$top_srcdir/schema/transform_ad.c" \
    "$top_srcdir"/agent/util/err.c "$top_srcdir"/agent/util/log.c \
    "$top_srcdir"/agent/util/buf.c "$top_srcdir"/agent/util/secret.c \
    "$top_srcdir"/agent/util/arena.c \
    -ljansson -lldap -llber -lsasl2 -lcrypto -lcrypt -largon2 -lpthread
echo "fuzzing the hook request handler for $secs s" >&2
"$out/fuzz_hook" -max_total_time="$secs" -max_len=20000 -timeout=5 \
    -artifact_prefix="$art/crash-" "$work/corpus"
