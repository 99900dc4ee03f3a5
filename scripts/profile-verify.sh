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
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
HOME_DIR=$(mktemp -d)
PORT=${AIM_BENCH_PORT:-18081}
export OPENA2A_HOME=$HOME_DIR
export AIM_BOOTSTRAP_ADMIN_EMAIL=bench@localhost
export AIM_BOOTSTRAP_ADMIN_PASSWORD='Tr4ffic-gen3rator!-long-enough'
export AIM_RATE_LIMIT_ADDRESS_PER_MINUTE=0
export AIM_RATE_LIMIT_LOGIN_PER_MINUTE=0
export AIM_RATE_LIMIT_CREDENTIAL_PER_MINUTE=0
export AIM_RATE_LIMIT_AGENT_ACTION_PER_MINUTE=0
export AIM_LOG_LEVEL=${AIM_LOG_LEVEL:-warn}
ARGS=(server --listen 127.0.0.1:$PORT)
[ -n "$DB" ] && ARGS+=(--database-url "$DB")
"$BIN/opena2a" "${ARGS[@]}" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$HOME_DIR"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
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
