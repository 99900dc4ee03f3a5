#!/usr/bin/env bash
# Measures the release server: idle RSS, then login/refresh/API-key-auth throughput and RSS under
# load with `aim-bench auth`. Usage: scripts/bench-auth.sh [CONCURRENCY] [SECONDS] [DATABASE_URL]
# Builds nothing: run `cargo build --release -p aim-cli -p aim-bench` first.
set -euo pipefail
CONC=${1:-8}
SECS=${2:-10}
DB=${3:-}
# shellcheck source=scripts/bench-server.sh
. "$(dirname "$0")/bench-server.sh"
start_bench_server "$DB"
sleep 2
echo "idle right after start: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')"
AIM_BENCH_PASSWORD=$AIM_BOOTSTRAP_ADMIN_PASSWORD "$BIN/aim-bench" auth \
  --server "http://127.0.0.1:$PORT" --email bench@localhost \
  --concurrency "$CONC" --duration "$SECS" --pid "$PID"
sleep 5
echo "5 s after the load: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')"
