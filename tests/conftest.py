"""Shared fixtures: where the reference data lives, and how missing prerequisites fail.

The CDC reference files (`../shared/cdc`) are read in place, never copied into the project.
In CI (`CI=true`) a missing prerequisite is a failure; elsewhere the test is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


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
