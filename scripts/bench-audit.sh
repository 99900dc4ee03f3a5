#!/usr/bin/env bash
# Measures audit-log verification throughput against OpenSSL's SHA-256 speed on this machine.
#
#   scripts/bench-audit.sh [N]     (default N = 1000000 entries)
#
# 1. `openssl speed -bytes 256 -seconds 3 sha256` -> hashes/s of 256-byte inputs.
# 2. Generates an N-entry valid log with the `audit_gen` example (release build).
# 3. Verifies it through the library (`audit_verify` example): 1 thread, all threads, and strict
#    (single thread, full re-canonicalization) for information.
# 4. Prints entries/s, openssl hashes/s and the ratio (target: >= 0.2).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"

cargo build --release -q -p aim-core --example audit_gen --example audit_verify
BIN=target/release/examples
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
LOG="$TMP/audit.jsonl"

echo "== openssl speed -bytes 256 -seconds 3 sha256"
OPENSSL_KBS="$(openssl speed -bytes 256 -seconds 3 sha256 2>/dev/null | awk '/^sha256/ {print $2}' | tr -d k)"
OPENSSL_HPS="$(awk -v k="$OPENSSL_KBS" 'BEGIN { printf "%.0f", k * 1000 / 256 }')"
echo "openssl sha256 (256-byte inputs): ${OPENSSL_HPS} hashes/s"

echo "== generating $N entries"
"$BIN/audit_gen" "$LOG" "$N"
echo "average line: $(awk -v b="$(stat -c %s "$LOG")" -v n="$N" 'BEGIN { printf "%.0f", b / n }') bytes"

run() {
    local label="$1"; shift
    "$BIN/audit_verify" "$LOG" "$@" >"$TMP/out"
    local eps; eps="$(sed -n 's/.*entries_per_sec=\([0-9]*\).*/\1/p' "$TMP/out")"
    printf '%-26s %s   entries/s=%s   ratio=%s\n' "$label" "$(cut -d' ' -f1-2 "$TMP/out")" "$eps" \
        "$(awk -v e="$eps" -v o="$OPENSSL_HPS" 'BEGIN { printf "%.3f", e / o }')"
}
# Warm the page cache so every run measures the same thing.
cat "$LOG" >/dev/null
echo "== verification (ratio = entries/s / openssl hashes/s; target >= 0.2)"
run "fast path, 1 thread" --threads 1
run "fast path, all threads" --threads 0
run "strict, 1 thread" --threads 1 --strict
