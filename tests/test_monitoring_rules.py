"""monitoring/rules.yml fires and stays quiet as its descriptions say (`promtool test rules`
on tests/monitoring/rules_test.yml; promtool missing fails in CI, is skipped elsewhere)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import require

CASES = Path(__file__).resolve().parent / "monitoring" / "rules_test.yml"


def test_the_rules_fire_and_stay_quiet_as_described() -> None:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool (Debian's prometheus; scripts/test.sh installs it)")
    assert promtool is not None
    done = subprocess.run(
        [promtool, "test", "rules", str(CASES)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
