#!/usr/bin/env bash
# The project's one test command (README): builds everything and runs every test suite.
# PostgreSQL-backed tests run when AIM_TEST_POSTGRES_URL is set (this script sets it when a local
# PostgreSQL answers); otherwise they print a loud SKIPPED line.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${AIM_TEST_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
   && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export AIM_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
fi
if [ -n "${AIM_TEST_POSTGRES_URL:-}" ]; then
  echo "PostgreSQL tests: ON (${AIM_TEST_POSTGRES_URL%%@*}@…)"
else
  echo "PostgreSQL tests: OFF — AIM_TEST_POSTGRES_URL is not set and no local PostgreSQL answered; those tests will print SKIPPED"
fi

# Non-Rust test dependencies (a real SMTP server for the alert tests, …) into .cache/.
if command -v python3 >/dev/null 2>&1; then
  if ! scripts/test-deps.sh; then
    [ "${AIM_REQUIRE_TEST_DEPS:-}" = 1 ] && { echo "scripts/test-deps.sh failed"; exit 1; }
    echo "WARNING: scripts/test-deps.sh failed; tests that need those tools will print SKIPPED"
  fi
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
# nextest does not run doc tests
cargo test --workspace --locked --doc
