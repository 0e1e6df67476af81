#!/bin/bash
# test_doc_map.sh: every example of dirmig-map(5) runs: the map is loaded by the map
# engine (tests/tools/mapdoc), the entry mapped, and each line the page shows as the result
# (or the error) is what the engine gives. The maps that set "ownership" are run by
# test_doc_map_ownership.sh.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

MAPDOC=$top_builddir/tests/tools/mapdoc
[ -x "$MAPDOC" ] || fail "tests/tools/mapdoc not built at $MAPDOC (make check builds it)"
export DIRMIG_DATADIR=$top_srcdir/schema
"$PYTHON3" "$top_srcdir/tests/harness/man_examples.py" "$top_srcdir/doc/dirmig-map.5" \
    "$MAPDOC" "$WORK" --no-ownership > "$WORK/examples.out" 2>&1
rc=$?
cat "$WORK/examples.out" >&2
[ "$rc" = 0 ] || fail "an example of dirmig-map(5) does not do what the page says"
exit 0
