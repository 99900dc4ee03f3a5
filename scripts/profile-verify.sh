#!/usr/bin/env bash
# Profiles the release server under `aim-bench verify` load: starts it like bench-verify.sh, runs
# the bench for SECONDS in the background, records the server with `perf record --call-graph
# dwarf` for 5 s in the middle of the load, and prints each symbol's inclusive share of the
# server's samples (scripts/perf-shares.py). Usage:
#   scripts/profile-verify.sh [CONCURRENCY] [SECONDS] [DATABASE_URL] [OUT_DIR]
# Extra `aim-bench verify` flags go in AIM_BENCH_VERIFY_ARGS (e.g. "--endpoint heartbeat").
# Builds nothing: run `cargo build --release -p aim-cli -p aim-bench` first.
set -euo pipefail
CONC=${1:-8}
SECS=${2:-12}
DB=${3:-}
OUT=${4:-$(mktemp -d)}
mkdir -p "$OUT"
PORT=18081
# shellcheck source=scripts/bench-server.sh
. "$(dirname "$0")/bench-server.sh"
start_bench_server "$DB"
# shellcheck disable=SC2086 # AIM_BENCH_VERIFY_ARGS is a list of flags
AIM_BENCH_PASSWORD=$AIM_BOOTSTRAP_ADMIN_PASSWORD "$BIN/aim-bench" verify \
  --server "http://127.0.0.1:$PORT" --email bench@localhost \
  --agents 16 --concurrency "$CONC" --duration "$SECS" --pid "$PID" \
  ${AIM_BENCH_VERIFY_ARGS:-} > "$OUT/bench.txt" 2>&1 &
BENCH=$!
# Registration and the raw baseline take a few seconds; record in the middle of the load.
sleep $(( 5 + SECS / 3 ))
perf record -q -F 299 --call-graph dwarf,16384 -p "$PID" -o "$OUT/perf.data" -- sleep 5 2>/dev/null
wait $BENCH
cat "$OUT/bench.txt"
perf script -i "$OUT/perf.data" 2>/dev/null > "$OUT/perf.txt"
python3 "$ROOT/scripts/perf-shares.py" "$OUT/perf.txt" | head -${AIM_PROFILE_TOP:-70}
echo "profile in $OUT"
