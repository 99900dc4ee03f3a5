#!/usr/bin/env python3
"""Sums the sqlx statement log (`AIM_LOG_LEVEL="warn,sqlx::query=debug"`) per statement.

Usage: sql-shares.py SERVER_LOG
Prints count, total and average elapsed time per statement summary, largest total first.
"""
import re
import sys
from collections import defaultdict

tot = defaultdict(float)
cnt = defaultdict(int)
units = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}
ansi = re.compile(r"\x1b\[[0-9;]*m")
for line in open(sys.argv[1], errors="replace"):
    line = ansi.sub("", line)
    m = re.search(r'summary="([^"]*)"', line) or re.search(r"summary=(.*?) db\.statement", line)
    e = re.search(r"elapsed_secs=([0-9.e-]+)", line)
    if not m or not e:
        e2 = re.search(r"elapsed=([0-9.]+)(s|ms|µs|us|ns)", line)
        if not m or not e2:
            continue
        secs = float(e2.group(1)) * units[e2.group(2)]
    else:
        secs = float(e.group(1))
    k = m.group(1)[:110]
    tot[k] += secs
    cnt[k] += 1
grand = sum(tot.values())
print(f"total {grand:.3f} s in {sum(cnt.values())} statements")
for k in sorted(tot, key=tot.get, reverse=True)[:40]:
    print(f"{tot[k]:8.3f} s {cnt[k]:7d} × {1e6 * tot[k] / cnt[k]:8.1f} µs  {k}")
