#!/usr/bin/env bash
# Installs everything (virtualenv, packages, the Kafka jars) and runs the whole test suite:
# lint, format check, type check, then pytest (unit, end-to-end, crash and Kafka tests).
set -euo pipefail
cd "$(dirname "$0")/.."
# The whole suite: a test whose prerequisite (../shared, the Kafka jars, the broker,
# Chromium, promtool) is missing fails, as in CI; `CI=false bash scripts/test.sh` skips it instead.
export CI="${CI:-true}"
bash scripts/bootstrap.sh
bash tools/kafka/fetch-jars.sh
# The dashboard's test drives Debian's headless Chromium (never a browser a package downloads);
# monitoring/rules.yml is checked with Debian's promtool (package prometheus).
wanted=()
[ -x /usr/bin/chromium ] || wanted+=(chromium chromium-driver)
[ -x /usr/bin/promtool ] || wanted+=(prometheus)
if [ "${#wanted[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update && apt-get install -y --no-install-recommends "${wanted[@]}"
fi
.venv/bin/ruff check accrochage tests bench tools
.venv/bin/ruff format --check accrochage tests bench tools
.venv/bin/mypy
# A hang outside any test (at the interpreter's exit, in a session fixture) is ended too.
exec timeout --kill-after=60 3600 .venv/bin/pytest "$@"
