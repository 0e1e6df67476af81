#!/bin/bash
# test_doc_map_ownership.sh: the examples of dirmig-map(5) that set "ownership" load in the
# map engine. The engine learns "ownership" with the planner (branch "planner"); until that
# is merged this test is expected to fail (XFAIL_TESTS in Makefile.am): remove it from
# XFAIL_TESTS then.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

MAPDOC=$top_builddir/tests/tools/mapdoc
[ -x "$MAPDOC" ] || fail "tests/tools/mapdoc not built at $MAPDOC (make check builds it)"
export DIRMIG_DATADIR=$top_srcdir/schema
"$PYTHON3" "$top_srcdir/tests/harness/man_examples.py" "$top_srcdir/doc/dirmig-map.5" \
    "$MAPDOC" "$WORK" --ownership-only > "$WORK/examples.out" 2>&1
rc=$?
cat "$WORK/examples.out" >&2
[ "$rc" = 0 ] || fail "an ownership example of dirmig-map(5) does not load"
exit 0
