#!/usr/bin/env bash
# Installs what some tests need besides Rust, into .cache/ (ignored by git):
# - .cache/test-venv: a Python virtualenv with aiosmtpd (a real SMTP server for the alert-email tests).
# Idempotent; .ci/run calls it, and so can you before scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
if [ ! -x .cache/test-venv/bin/python ]; then
  python3 -m venv .cache/test-venv
fi
.cache/test-venv/bin/python -m pip install -q --disable-pip-version-check 'aiosmtpd==1.4.6'
echo "test dependencies ready in .cache/"
