# Sourced by the bench and profile scripts (not run on its own): starts the release server on a
# fresh data root with every rate limit off, and waits until it is ready.
#   start_bench_server [DATABASE_URL]
# Sets ROOT, BIN (release binaries), PORT (AIM_BENCH_PORT, or the caller's PORT, or 18080), PID
# (the server) and an EXIT trap that stops it and removes the data root. AIM_SERVER_BIN selects
# another server binary (A/B comparisons); AIM_LOG_LEVEL defaults to warn.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
start_bench_server() {
  local db=${1:-}
  HOME_DIR=$(mktemp -d)
  PORT=${AIM_BENCH_PORT:-${PORT:-18080}}
  export OPENA2A_HOME=$HOME_DIR
  export AIM_BOOTSTRAP_ADMIN_EMAIL=bench@localhost
  export AIM_BOOTSTRAP_ADMIN_PASSWORD='Tr4ffic-gen3rator!-long-enough'
  export AIM_RATE_LIMIT_ADDRESS_PER_MINUTE=0
  export AIM_RATE_LIMIT_LOGIN_PER_MINUTE=0
  export AIM_RATE_LIMIT_CREDENTIAL_PER_MINUTE=0
  export AIM_RATE_LIMIT_AGENT_ACTION_PER_MINUTE=0
  export AIM_LOG_LEVEL=${AIM_LOG_LEVEL:-warn}
  local args=(server --listen "127.0.0.1:$PORT")
  [ -n "$db" ] && args+=(--database-url "$db")
  "${AIM_SERVER_BIN:-$BIN/opena2a}" "${args[@]}" &
  PID=$!
  trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$HOME_DIR"' EXIT
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
}
