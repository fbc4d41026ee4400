"""monitoring/rules.yml fires and stays quiet as its descriptions say (`promtool test rules`
on tests/monitoring/rules_test.yml; skipped where promtool is not installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CASES = Path(__file__).resolve().parent / "monitoring" / "rules_test.yml"


def test_the_rules_fire_and_stay_quiet_as_described() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    done = subprocess.run(
        [promtool, "test", "rules", str(CASES)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
