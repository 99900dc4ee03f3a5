#!/usr/bin/env bash
# Compatibility suite: the published Python client aim-sdk (requirements.txt), unmodified, against
# a fresh `opena2a server` per store — SQLite always, PostgreSQL when AIM_TEST_POSTGRES_URL is set.
#
#   tests/compat/aim_sdk/run.sh                      # builds target/debug/opena2a first
#   AIM_COMPAT_BIN=/path/to/opena2a tests/compat/aim_sdk/run.sh
#
# The SDK is installed into .cache/aim-sdk-venv (git-ignored). When that install fails the suite
# prints SKIPPED and exits 0, unless AIM_REQUIRE_TEST_DEPS=1 (CI), where it fails.
# Environment: AIM_COMPAT_BIN, AIM_TEST_POSTGRES_URL, AIM_REQUIRE_TEST_DEPS, AIM_COMPAT_VERBOSE=1
# (print the suite's output also on success).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/tests/compat/aim_sdk"
cd "$ROOT"

# ---- Python environment -------------------------------------------------------------------
VENV="$ROOT/.cache/aim-sdk-venv"
PY="$VENV/bin/python"
STAMP="$VENV/.aim-compat-requirements"

deps_unavailable() {
  if [ "${AIM_REQUIRE_TEST_DEPS:-}" = 1 ]; then
    echo "aim-sdk compat: $1 (AIM_REQUIRE_TEST_DEPS=1, so this is a failure)" >&2
    exit 1
  fi
  echo "SKIPPED: aim-sdk compatibility suite — $1 (set AIM_REQUIRE_TEST_DEPS=1 to make this an error)"
  exit 0
}

command -v python3 >/dev/null 2>&1 || deps_unavailable "python3 not found"
mkdir -p "$ROOT/.cache"
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV" >/dev/null 2>&1 || { rm -rf "$VENV"; deps_unavailable "cannot create $VENV"; }
fi
# Idempotent and offline once installed: pip runs only when requirements.txt changed.
if ! cmp -s "$HERE/requirements.txt" "$STAMP" 2>/dev/null || ! "$PY" -c 'import aim_sdk' >/dev/null 2>&1; then
  if ! pip_log=$("$PY" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" 2>&1); then
    echo "$pip_log" | tail -20 >&2
    deps_unavailable "pip install -r tests/compat/aim_sdk/requirements.txt failed"
  fi
  cp "$HERE/requirements.txt" "$STAMP"
fi

# ---- Server binary ----------------------------------------------------------------------
if [ -n "${AIM_COMPAT_BIN:-}" ]; then
  BIN="$AIM_COMPAT_BIN"
  [ -x "$BIN" ] || { echo "aim-sdk compat: AIM_COMPAT_BIN=$BIN is not an executable file" >&2; exit 1; }
else
  cargo build --locked -q -p aim-cli --bin opena2a
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/opena2a"
fi

# The suite takes seconds; a hung SDK poll or server must not stall the caller for long.
LIMIT=()
if command -v timeout >/dev/null 2>&1; then LIMIT=(timeout 170); fi

# ---- One store --------------------------------------------------------------------------
WORK=""        # temp dir of the store being run
SERVER_PID=""  # its server
PG_DB=""       # its PostgreSQL database, if any

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

drop_pg_db() {
  if [ -n "$PG_DB" ]; then
    psql "$AIM_TEST_POSTGRES_URL" -qAt -v ON_ERROR_STOP=1 \
      -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 \
      || echo "aim-sdk compat: could not drop PostgreSQL database $PG_DB" >&2
  fi
  PG_DB=""
}

cleanup() {
  stop_server
  drop_pg_db
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
  WORK=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

print_server_log() {
  echo "---- server log ($1) ----" >&2
  cat "$WORK/server.log" >&2 || true
  echo "---- end of server log ----" >&2
}

# run_store NAME DATABASE_URL(empty = SQLite in the server's home)
run_store() {
  local store="$1" db_url="$2"
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/aim-sdk-compat.XXXXXX")"
  mkdir -p "$WORK/server-home" "$WORK/sdk-home"
  local admin_email="admin@compat.test"
  local admin_password
  admin_password="Compat-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  local master_key
  master_key="$(head -c 32 /dev/urandom | base64 | tr -d '\n')"

  # Plain HTTP on loopback needs no flag (AIM_INSECURE_HTTP is only for non-loopback addresses).
  # AIM_BOOTSTRAP_ADMIN_PASSWORD from the environment is not a one-time password: no change is
  # required at first login (crates/aim-server/src/lib.rs, bootstrap).
  env -u AIM_DATABASE_URL \
    HOME="$WORK/server-home" \
    OPENA2A_HOME="$WORK/server-home/.opena2a" \
    AIM_LISTEN=127.0.0.1:0 \
    ${db_url:+AIM_DATABASE_URL="$db_url"} \
    AIM_BOOTSTRAP_ADMIN_EMAIL="$admin_email" \
    AIM_BOOTSTRAP_ADMIN_PASSWORD="$admin_password" \
    AIM_MASTER_KEY="$master_key" \
    AIM_LOG_FORMAT=text \
    AIM_LOG_LEVEL=info \
    NO_COLOR=1 \
    "$BIN" server >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!

  # The bound port is in the "AIM server listening addr=127.0.0.1:PORT" line.
  local addr="" i
  for i in $(seq 1 600); do
    addr="$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" 2>/dev/null \
      | grep -o 'listening addr=[0-9.]*:[0-9]*' | head -1 | sed 's/.*addr=//')" || true
    [ -n "$addr" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "aim-sdk compat [$store]: the server exited at start" >&2
      print_server_log "$store"; return 1
    fi
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "aim-sdk compat [$store]: the server did not report its address within 60 s" >&2
    print_server_log "$store"; return 1
  fi
  local url="http://$addr" healthy=""
  for i in $(seq 1 100); do
    if "$PY" - "$url/health" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
    then healthy=1; break; fi
    sleep 0.1
  done
  if [ -z "$healthy" ]; then
    echo "aim-sdk compat [$store]: $url/health did not answer 200" >&2
    print_server_log "$store"; return 1
  fi

  # The SDK writes ~/.aim/…: HOME is a temp dir, and the suite runs from there so that the SDK's
  # search for ./.aim/sdk_credentials.json in the working directory's ancestors finds nothing.
  local rc=0
  (
    cd "$WORK/sdk-home"
    env -u AIM_STRICT_MODE -u AIM_AGENT_NAME -u AIM_AGENT_ID -u AIM_PUBLIC_KEY -u AIM_PRIVATE_KEY \
      HOME="$WORK/sdk-home" \
      AIM_URL="$url" \
      AIM_ADMIN_EMAIL="$admin_email" \
      AIM_ADMIN_PASSWORD="$admin_password" \
      AIM_COMPAT_STORE="$store" \
      PYTHONDONTWRITEBYTECODE=1 \
      "${LIMIT[@]}" "$PY" "$HERE/test_aim_sdk.py"
  ) >"$WORK/suite.log" 2>&1 || rc=$?

  if [ "$rc" -ne 0 ]; then
    echo "aim-sdk compat [$store]: FAILED (exit $rc)" >&2
    cat "$WORK/suite.log" >&2
    print_server_log "$store"
    return 1
  fi
  if [ "${AIM_COMPAT_VERBOSE:-}" = 1 ]; then cat "$WORK/suite.log"; fi
  echo "aim-sdk compat [$store]: OK ($(grep -m1 -o '^Ran [0-9]* tests\? in [0-9.]*s' "$WORK/suite.log" || echo 'suite passed'))"
  cleanup
}

failed=0
run_store sqlite "" || failed=1
cleanup

if [ -n "${AIM_TEST_POSTGRES_URL:-}" ] && ! command -v psql >/dev/null 2>&1; then
  if [ "${AIM_REQUIRE_TEST_DEPS:-}" = 1 ]; then
    echo "aim-sdk compat [postgres]: psql not found (needed to create the test database)" >&2
    failed=1
  else
    echo "SKIPPED: aim-sdk compat [postgres] — psql not found (needed to create the test database)"
  fi
elif [ -n "${AIM_TEST_POSTGRES_URL:-}" ]; then
  PG_DB="aim_sdk_compat_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  if ! psql "$AIM_TEST_POSTGRES_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$PG_DB\"" >/dev/null; then
    echo "aim-sdk compat [postgres]: cannot create database $PG_DB through AIM_TEST_POSTGRES_URL" >&2
    PG_DB=""; failed=1
  else
    pg_url="$("$PY" - "$AIM_TEST_POSTGRES_URL" "$PG_DB" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(u._replace(path="/" + sys.argv[2])))
EOF
)"
    run_store postgres "$pg_url" || failed=1
    cleanup
  fi
else
  echo "SKIPPED: aim-sdk compat [postgres] — AIM_TEST_POSTGRES_URL is not set"
fi

exit "$failed"
