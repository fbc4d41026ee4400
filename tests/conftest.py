"""Shared fixtures: where the reference data lives, and how missing prerequisites fail.

The CDC reference files (`../shared/cdc`) are read in place, never copied into the project.
In CI (`CI=true`) a missing prerequisite is a failure; elsewhere the test is skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.browser import chromium_path

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_report_header() -> str:
    """The browser the UI tests drive: Debian's `chromium` is installed at its latest build,
    which changes under the project (with 156.0.8078.129 a UI test's result changed
    overnight), so a run says which one it had."""
    path = chromium_path()
    if path is None:
        return "chromium: not installed"
    try:
        found = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"chromium: {path}, its version unknown ({exc})"
    return f"chromium: {found.stdout.strip() or path}"


def require(condition: bool, why: str) -> None:
    """Fail in CI, skip elsewhere, when a prerequisite of a test is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {why}")
    pytest.skip(why)


def _shared_dir() -> Path:
    configured = os.environ.get("ACCROCHAGE_SHARED")
    return Path(configured) if configured else ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = _shared_dir()
    found = (path / "cdc" / "xsd" / "cpf-1.1.2.xsd").is_file()
    require(found, f"reference data not found at {path}")
    return path


@pytest.fixture(scope="session")
def official_xsd(shared_dir: Path) -> Path:
    return shared_dir / "cdc" / "xsd" / "cpf-1.1.2.xsd"
