"""The console script starts the helpers' fork server before it imports the project, for the
commands that start helpers, so that the two imports run at once (`accrochage/launch.py`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from accrochage.app import ONE_OFF_DECODE_THRESHOLD
from accrochage.launch import INGEST_BYTES, helpers_command
from accrochage.processes import DECODING
from tests.support.crash import finished, write_config, write_generated_events


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["worker"],
        ["--config", "a.toml", "run", "--log-format", "json"],
        ["--config=a.toml", "worker"],
    ],
)
def test_a_service_starts_its_fork_server_first(argv: list[str]) -> None:
    assert helpers_command(argv) in {"run", "worker"}


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--version"],
        ["run", "--help"],
        ["--help"],
        ["flush", "--force"],
        ["outstanding", "--format", "json"],
        ["--config", "run", "status"],  # "run" is the option's value, not the command
        ["ingest", "-"],  # stdin: its size is unknown
        ["ingest", "no-such-file.jsonl"],
    ],
)
def test_other_command_lines_leave_it_to_the_first_helper(argv: list[str]) -> None:
    assert helpers_command(argv) is None


def test_ingest_starts_it_for_files_large_enough_for_its_decode_processes(
    tmp_path: Path,
) -> None:
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_bytes(b"x" * (INGEST_BYTES - 1))
    large.write_bytes(b"x" * INGEST_BYTES)
    assert helpers_command(["ingest", str(small)]) is None
    assert helpers_command(["ingest", str(tmp_path)]) is None  # a folder is no input
    assert helpers_command(["ingest", str(large)]) == "ingest"
    large_with_options = ["--config", "a.toml", "ingest", "--encoding", "utf-8", str(large)]
    assert helpers_command(large_with_options) == "ingest"
    half = tmp_path / "half.jsonl"
    half.write_bytes(b"x" * (INGEST_BYTES // 2))
    assert helpers_command(["ingest", str(small), str(half)]) == "ingest"  # the files together


def test_the_size_that_starts_it_holds_the_decode_threshold_in_small_events() -> None:
    """A file of `INGEST_BYTES` holds `ONE_OFF_DECODE_THRESHOLD` events of 400 bytes: the
    size follows the threshold if that moves."""
    assert INGEST_BYTES == ONE_OFF_DECODE_THRESHOLD * 400


PROBE = """
import atexit, json, sys
from accrochage import launch, processes

started = processes.helper_context
imported = []

def recorded(*args):
    imported.append(["accrochage.cli" in sys.modules, list(*args)])
    return started(*args)

processes.helper_context = recorded  # before the project binds it: every start is seen
atexit.register(lambda: print("PROBE " + json.dumps(imported), file=sys.stderr))
sys.argv = ["accrochage", *sys.argv[1:]]
launch.entry()
"""
"""The console script's entry, each start of the fork server (`helper_context`) recording
whether the command line had been imported by then, and the preload it asked for: the
launcher's, then the decode pool's."""


def _ingest(tmp_path: Path, count: int) -> tuple[list[list[object]], str]:
    config = write_config(tmp_path, max_records=1000)
    events = write_generated_events(config, tmp_path / "events.jsonl", count, seed=5)
    command = [sys.executable, "-c", PROBE, "--config", str(config), "ingest", str(events)]
    done = finished(command, cwd=tmp_path)
    probe = [line for line in done.stderr.splitlines() if line.startswith("PROBE ")]
    assert len(probe) == 1, done.stderr[-3000:]
    return json.loads(probe[0].removeprefix("PROBE ")), done.stdout


def test_a_large_ingest_starts_the_fork_server_before_the_project_is_imported(
    tmp_path: Path,
) -> None:
    imported, summary = _ingest(tmp_path, 1000)
    assert os.path.getsize(tmp_path / "events.jsonl") >= INGEST_BYTES
    assert imported, "no fork server started"
    assert imported[0][0] is False, "the fork server started after the project's import"
    assert imported[0][1] == list(DECODING), "the fork server of decode processes only"
    assert imported[1:] == [[True, list(DECODING)]] * 2, "then the two decode processes"
    assert "accepted: 1000" in summary


def test_a_small_ingest_starts_no_fork_server(tmp_path: Path) -> None:
    """Fewer events than the decode threshold are decoded in the command's own process: no
    helper, and so no fork server, at any time."""
    imported, summary = _ingest(tmp_path, 20)
    assert os.path.getsize(tmp_path / "events.jsonl") < INGEST_BYTES
    assert imported == []
    assert "accepted: 20" in summary
