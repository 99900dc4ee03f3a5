#!/usr/bin/env bash
# Measures signed action verification on the release server: idle RSS, then `aim-bench verify`
# (raw single-core Ed25519 verify rate before and after, agents registered + activated through the
# AIP challenge, signed POST /api/v1/agents/{id}/actions/verify from CONCURRENCY workers for
# SECONDS), then RSS after the load. Usage:
#   scripts/bench-verify.sh [CONCURRENCY] [SECONDS] [DATABASE_URL] [AGENTS]
# Extra `aim-bench verify` flags go in AIM_BENCH_VERIFY_ARGS (e.g. "--deny-ratio 0.2").
# Builds nothing: run `cargo build --release -p aim-cli -p aim-bench` first.
set -euo pipefail
CONC=${1:-8}
SECS=${2:-10}
DB=${3:-}
AGENTS=${4:-16}
# shellcheck source=scripts/bench-server.sh
. "$(dirname "$0")/bench-server.sh"
start_bench_server "$DB"
sleep 2
echo "idle right after start: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086 # AIM_BENCH_VERIFY_ARGS is a list of flags
AIM_BENCH_PASSWORD=$AIM_BOOTSTRAP_ADMIN_PASSWORD "$BIN/aim-bench" verify \
  --server "http://127.0.0.1:$PORT" --email bench@localhost \
  --agents "$AGENTS" --concurrency "$CONC" --duration "$SECS" --pid "$PID" \
  ${AIM_BENCH_VERIFY_ARGS:-}
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# The group-commit writer's histograms (GET /metrics answers loopback peers without a token).
curl -s "http://127.0.0.1:$PORT/metrics" | awk '
  /^aim_decision_batch_size_sum/ {bs=$2} /^aim_decision_batch_size_count/ {bc=$2}
  /^aim_decision_commit_seconds_sum/ {cs=$2}
  END { if (bc > 0) printf "writer: %d batches, %.1f items per batch, %.0f µs per batch transaction, %.2f s in transactions (setup included)\n", bc, bs/bc, 1e6*cs/bc, cs }' || true
sleep 5
echo "5 s after the load: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')"
