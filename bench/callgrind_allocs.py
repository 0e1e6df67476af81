#!/usr/bin/env python3
"""callgrind_allocs.py CALLGRIND_OUT: heap allocations the profiled code made.

Sums the calls to malloc, calloc, realloc, posix_memalign and aligned_alloc recorded in a
callgrind output file. With --toggle-collect, only calls made while a toggled function ran
are recorded, so this counts the allocations of those functions and their callees, libc's
own included (glibc's regexec() allocates inside libc). How bench_map's allocations per
entry are measured (doc/benchmarks.md):

    valgrind --tool=callgrind --callgrind-out-file=cg.out \\
        --toggle-collect=map_apply --toggle-collect=map_check bench/bench_map 5000
    bench/callgrind_allocs.py cg.out    # / 30000: bench_map calls map_apply 6 times per entry
"""
import re
import sys

ALLOC = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc"}


def main():
    names = {}
    callee = None
    total = 0
    with open(sys.argv[1]) as f:
        for line in f:
            m = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                callee = names.get(m.group(1)) if line.startswith("cfn=") else None
                continue
            m = re.match(r"^calls=(\d+)", line)
            if m and callee is not None:
                if callee.split("'")[0] in ALLOC:
                    total += int(m.group(1))
                callee = None
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
