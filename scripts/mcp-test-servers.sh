#!/usr/bin/env bash
# Installs the real MCP servers the aim-mcp / opena2a mcp tests probe, into a cache directory:
#   $CACHE/npm/node_modules/.bin/mcp-server-filesystem   (@modelcontextprotocol/server-filesystem, npm)
#   $CACHE/venv/bin/python                               (venv with the `mcp` package from PyPI)
# CACHE defaults to target/mcp-test-servers. Prints the two env lines the tests read:
#   AIM_MCP_TEST_FS_SERVER=<path to the filesystem server entry>
#   AIM_MCP_TEST_PYTHON=<venv python that can `import mcp`>
# Idempotent: a second run reuses what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${AIM_MCP_TEST_CACHE:-$PWD/target/mcp-test-servers}"
FS_VERSION="${AIM_MCP_FS_VERSION:-2026.8.31}"
MCP_PY_VERSION="${AIM_MCP_PY_VERSION:-2.3.0}"
mkdir -p "$CACHE"

if command -v npm >/dev/null 2>&1; then
  if [ ! -x "$CACHE/npm/node_modules/.bin/mcp-server-filesystem" ]; then
    mkdir -p "$CACHE/npm"
    npm install --silent --no-audit --no-fund --prefix "$CACHE/npm" \
      "@modelcontextprotocol/server-filesystem@$FS_VERSION" >&2
  fi
  echo "AIM_MCP_TEST_FS_SERVER=$CACHE/npm/node_modules/.bin/mcp-server-filesystem"
else
  echo "mcp-test-servers: npm not found; filesystem-server tests will be SKIPPED" >&2
fi

if command -v python3 >/dev/null 2>&1; then
  if ! "$CACHE/venv/bin/python" -c 'import mcp' >/dev/null 2>&1; then
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_PY_VERSION" >&2
  fi
  echo "AIM_MCP_TEST_PYTHON=$CACHE/venv/bin/python"
else
  echo "mcp-test-servers: python3 not found; Python-server tests will be SKIPPED" >&2
fi
