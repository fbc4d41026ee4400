"""A command that does not create the state refuses a missing one, naming `paths.state`.

A mistyped `paths.state` made `verify` create a new, empty state and say "0 released file(s)
checked: 0 missing or altered", exit 0: the operator read that every file was fine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_service_process import cli
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


def files_written(tmp_path: Path, record_id: str) -> tuple[Path, Path, Path]:
    """A state that wrote a file to the outbox: its configuration, its events, its path."""
    config = write_config(tmp_path)
    events = write_jsonl(tmp_path / "e.jsonl", [recent(record_id)])
    run(config, "ingest", str(events))
    run(config, "flush", "--force")
    return config, events, tmp_path / "var" / "state.db"


@pytest.mark.parametrize("command", [("flush",), ("ingest", "EVENTS"), ("run",)], ids=" ".join)
def test_no_empty_state_is_created_beside_an_outbox_of_files(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """The state lost, the outbox intact: the next command, or the service started again by
    its supervisor, created an empty state that knew none of the files, deposited or not,
    and set them aside as unknown (the recovery review). Refused, naming the restore."""
    config, events, state = files_written(tmp_path, "LOST-1")
    for lost in state.parent.glob("state.db*"):
        lost.unlink()
    args = [str(events) if arg == "EVENTS" else arg for arg in command]
    refused = cli(config, *args)  # a process of its own, bounded: a `run` that served would end
    assert refused.returncode == 2, refused.stderr
    assert "no state at" in refused.stderr and "yet the outbox" in refused.stderr
    assert "accrochage restore BACKUP" in refused.stderr
    assert not state.exists()

    outbox = tmp_path / "var" / "outbox"
    shutil.move(outbox, tmp_path / "old-outbox")  # a new state on purpose: the files moved away
    run(config, "ingest", str(events))
    assert state.exists()


def test_an_empty_state_file_beside_an_outbox_of_files_is_a_lost_state(tmp_path: Path) -> None:
    """A state file of no bytes (truncated, a copy cut short, a `touch`) is no database:
    SQLite made it an empty state that knew none of the outbox's files, as for a missing one,
    and `doctor` said to `upgrade` it, which did the same."""
    config, events, state = files_written(tmp_path, "LOST-2")
    for lost in state.parent.glob("state.db-*"):
        lost.unlink()
    state.write_bytes(b"")
    for command in (("ingest", str(events)), ("upgrade", "--no-backup")):
        refused = run(config, *command, code=2)
        assert "no state at" in refused.stderr and "yet the outbox" in refused.stderr
        assert state.stat().st_size == 0
    found = run(config, "doctor", code=1)
    assert "yet the outbox" in found.stdout and "upgrade" not in found.stdout
    assert state.stat().st_size == 0
