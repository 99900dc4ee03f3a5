#!/usr/bin/env bash
# Audit-log verification throughput vs. OpenSSL SHA-256, measured in the same run.
#   scripts/bench-audit.sh [ENTRIES]      (default 1000000)
# Prints entries/s of `opena2a audit verify`, OpenSSL sha256 hashes/s on 256-byte blocks, and
# their ratio (target >= 0.2, see docs/BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
cargo build -q --release -p aim-cli --bin opena2a -p aim-core --example audit_gen
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home/aim-core"; chmod -R 700 "$work/home"
log="$work/home/aim-core/audit.jsonl"
target/release/examples/audit_gen "$log" "$N"
echo "log: $N entries, $(du -h "$log" | cut -f1)"

# OpenSSL: single thread, 256-byte blocks, 3 s. Last line: "sha256  <16B> <64B> <256B> ..." in kB/s.
ossl=$(openssl speed -bytes 256 -seconds 3 sha256 2>/dev/null | awk '/^sha256/ {v=$NF} END {sub(/k$/,"",v); print v}')
ossl_hashes=$(awk -v k="$ossl" 'BEGIN {printf "%.0f", k*1000/256}')

best=0
for run in 1 2 3; do
  t0=$(date +%s.%N)
  OPENA2A_HOME="$work/home" target/release/opena2a --json audit verify >/dev/null
  t1=$(date +%s.%N)
  rate=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n/(b-a)}')
  echo "run $run: $rate entries/s"
  [ "$rate" -gt "$best" ] && best=$rate
done
echo "opena2a audit verify: $best entries/s (best of 3, single thread)"
echo "openssl sha256 (256 B): $ossl_hashes hashes/s"
awk -v a="$best" -v b="$ossl_hashes" 'BEGIN {printf "ratio: %.3f (target >= 0.2)\n", a/b}'
