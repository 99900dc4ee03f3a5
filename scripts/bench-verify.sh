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
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
HOME_DIR=$(mktemp -d)
PORT=${AIM_BENCH_PORT:-18080}
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
"${AIM_SERVER_BIN:-$BIN/opena2a}" "${ARGS[@]}" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$HOME_DIR"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
sleep 2
echo "idle right after start: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086 # AIM_BENCH_VERIFY_ARGS is a list of flags
AIM_BENCH_PASSWORD=$AIM_BOOTSTRAP_ADMIN_PASSWORD "$BIN/aim-bench" verify \
  --server "http://127.0.0.1:$PORT" --email bench@localhost \
  --agents "$AGENTS" --concurrency "$CONC" --duration "$SECS" --pid "$PID" \
  ${AIM_BENCH_VERIFY_ARGS:-}
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
sleep 5
echo "5 s after the load: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')"
