"""The benchmark scripts keep working: each runs its --quick smoke size and measures.

Figures are not judged here (speed is measured by the benchmarks themselves, never in
tests); the scripts exit non-zero when they could not measure what they meant to (a wrong
passage or record count, a failed request or command).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    "bench",
    [
        *("validation", "render", "embedded", "http", "query"),
        *("metrics", "watching", "refdata", "writes", "cut", "cdc_loop", "beside"),
    ],
)
def test_benchmark_runs_at_smoke_size(bench: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{bench}", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout[done.stdout.index("{") :])
    assert report["bench"] == bench
    assert report["metrics"], "the benchmark measured nothing"
    assert all(m["value"] == m["value"] for m in report["metrics"]), "a figure is NaN"
