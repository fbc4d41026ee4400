#!/usr/bin/env bash
# Installs accrochage and runs the main job on the embedded default: generates realistic
# events, ingests them, cuts and writes XSD-checked batch files, prints what is outstanding.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
DEMO="${DEMO_DIR:-var/demo}"
mkdir -p "$DEMO"
[ -f "$DEMO/accrochage.toml" ] || cp accrochage.example.toml "$DEMO/accrochage.toml"
cd "$DEMO"
A="$OLDPWD/.venv/bin/accrochage"
"$A" generate --count "${DEMO_EVENTS:-5000}" --invalid-ratio 0.01 --seed "${DEMO_SEED:-1}" > events.jsonl
"$A" ingest events.jsonl
"$A" flush
echo "--- files to deposit on the CDC portal (outbox: $(pwd)/var/outbox)"
"$A" batches --to-deposit
echo "--- outstanding, due within 14 days"
"$A" outstanding --due-within 14 | tail -n 12
echo "--- summary"
"$A" summary
echo "--- the command is $OLDPWD/.venv/bin/accrochage; this demo's configuration: $(pwd)/accrochage.toml"
echo "    e.g. .venv/bin/accrochage --config $DEMO/accrochage.toml outstanding (from $OLDPWD)"
