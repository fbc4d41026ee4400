#!/usr/bin/env bash
# Installs everything (virtualenv, packages, the Kafka jars) and runs the whole test suite:
# lint, format check, type check, then pytest (unit, end-to-end, crash and Kafka tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash tools/kafka/fetch-jars.sh
.venv/bin/ruff check accrochage tests bench tools
.venv/bin/ruff format --check accrochage tests bench tools
.venv/bin/mypy
exec .venv/bin/pytest "$@"
