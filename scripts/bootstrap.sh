#!/usr/bin/env bash
# Creates .venv (if missing, or made by another Python than $PYTHON) and installs accrochage
# with its dev tools into it. PYTHON=python3.12 bash scripts/bootstrap.sh picks the interpreter.
# --production installs accrochage alone (no test or lint tools), not in editable mode: a
# service's machine runs what was installed, not the checkout as it is edited later.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
target=(-e '.[dev]')
case "${1:-}" in
  "") ;;
  --production) target=(.) ;;
  *)
    echo "unknown option: $1 (bash $0 [--production])" >&2
    exit 2
    ;;
esac
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "accrochage needs Python 3.11 or later; $PYTHON is $("$PYTHON" --version 2>&1 | head -n 1 || echo missing)." >&2
  echo "Install it (Debian/Ubuntu: python3.11 and python3.11-venv), then: PYTHON=python3.11 bash $0" >&2
  exit 1
fi
version='import sys; print("%d.%d" % sys.version_info[:2])'
wanted="$("$PYTHON" -c "$version")"
if [ -x .venv/bin/python ]; then
  found="$(.venv/bin/python -c "$version" 2>/dev/null || echo none)"
  if [ "$found" != "$wanted" ]; then
    echo "recreating .venv: it runs Python $found, $PYTHON is $wanted" >&2
    rm -rf .venv
  fi
fi
if [ -x .venv/bin/python ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  # Debian's `python3 -m venv` without python3-venv stops after making .venv/bin/python,
  # with no pip: kept, every later run (python3-venv installed since) failed on "No module
  # named pip".
  echo "recreating .venv: it has no pip (made before python3-venv was installed?)" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt "${target[@]}"
