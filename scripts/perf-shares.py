#!/usr/bin/env python3
"""Inclusive share of each symbol in `perf script` output (call-graph samples).

Usage: perf-shares.py PERF_SCRIPT_TXT [FILTER]
Prints, for every function, the share of samples whose stack contains it (counted once per
sample), largest first; with FILTER, only samples whose stack contains FILTER.
"""
import re
import sys
from collections import Counter

path = sys.argv[1]
flt = sys.argv[2] if len(sys.argv) > 2 else None
incl = Counter()
selfc = Counter()
total = 0
stack = []


def clean(sym):
    sym = re.sub(r"::h[0-9a-f]{16}$", "", sym)
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
    return sym[:140]


def flush():
    global total, stack
    if stack and (flt is None or any(flt in s for s in stack)):
        total += 1
        for s in set(stack):
            incl[s] += 1
        selfc[stack[0]] += 1
    stack = []


with open(path, errors="replace") as f:
    for line in f:
        if not line.strip():
            flush()
            continue
        if line[0] not in " \t":
            flush()
            continue
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            stack.append(clean(parts[1].rsplit(" (", 1)[0]))
flush()
print(f"samples: {total}")
for sym, n in incl.most_common(400):
    print(f"{100.0 * n / max(total, 1):6.2f}% incl {100.0 * selfc[sym] / max(total, 1):6.2f}% self  {sym}")
