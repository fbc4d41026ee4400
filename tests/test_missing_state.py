"""A command that does not create the state refuses a missing one, naming `paths.state`.

A mistyped `paths.state` made `verify` create a new, empty state and say "0 released file(s)
checked: 0 missing or altered", exit 0: the operator read that every file was fine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_tracker import run
from tests.test_tracker import write_config

REFUSING = [
    ("summary",),
    ("outstanding",),
    ("records",),
    ("show", "R-1"),
    ("batches",),
    ("unusable",),
    ("alerts",),
    ("verify",),
    ("verify", "--repair"),
    ("retry", "R-1"),
    ("exclude", "R-1", "--reason", "typo"),
    ("include", "R-1"),
    ("revalidate",),
    ("support-applied", "R-1", "--note", "ticket 1"),
    ("correction-request", "list"),
    ("evidence", "R-1", "--output", "evidence.zip"),
    ("refdata", "status"),
    ("backup", "."),
    ("upgrade", "--no-backup"),
]


@pytest.mark.parametrize("command", REFUSING, ids=" ".join)
def test_a_command_that_does_not_create_the_state_refuses_a_missing_one(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    config = write_config(tmp_path)
    state = tmp_path / "var" / "state.db"
    assert not state.exists()
    refused = run(config, *command, code=2)
    assert "paths.state" in refused.stderr and "does not exist" in refused.stderr
    assert not state.exists() and not state.with_name("state.db.write-lock").exists()
