#!/usr/bin/env bash
# Installs everything (virtualenv, packages, the Kafka jars) and runs the whole test suite:
# lint, format check, type check, then pytest (unit, end-to-end, crash and Kafka tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash tools/kafka/fetch-jars.sh
# The dashboard's test drives Debian's headless Chromium (never a browser a package downloads).
if [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver
fi
.venv/bin/ruff check accrochage tests bench tools
.venv/bin/ruff format --check accrochage tests bench tools
.venv/bin/mypy
# A hang outside any test (at the interpreter's exit, in a session fixture) is ended too.
exec timeout --kill-after=60 3600 .venv/bin/pytest "$@"
