"""`accrochage check` tells each answer as it comes: a platform checking a file of 100,000
events waited for the end to see any, and the command held them all (240 MiB as JSON)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from accrochage.commands.ingest import CHUNK
from tests.test_cli_tracker import run
from tests.test_tracker import event, write_config

WAIT = 120.0
"""Seconds the first answers may take: a bound for a hung test, not a speed."""


def _read_until(stream: int, marker: bytes) -> bytes:
    """What the pipe gave until `marker` came, or the bound passed."""
    read = b""
    deadline = time.monotonic() + WAIT
    while marker not in read and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 1.0)
        if ready:
            chunk = os.read(stream, 65536)
            if not chunk:
                break
            read += chunk
    return read


def test_the_answers_of_a_file_come_before_its_end(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    command = [sys.executable, "-m", "accrochage", "--config", str(config)]
    with subprocess.Popen(
        [*command, "check", "--format", "json", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        first = [json.dumps(event(f"S{n:05d}")) for n in range(CHUNK)]
        child.stdin.write(("\n".join(first) + "\n").encode())
        child.stdin.flush()
        told = _read_until(child.stdout.fileno(), b'"source"')
        assert b'"record_id": "S00000"' in told, "the first answers wait for the input's end"
        child.stdin.write((json.dumps(event("LAST", delivered_on="bad")) + "\n").encode())
        child.stdin.close()
        rest = child.stdout.read()
        assert child.wait(timeout=WAIT) == 1, "an invalid event: exit 1"
    answers = json.loads(told + rest)
    assert [a["record_id"] for a in answers] == [f"S{n:05d}" for n in range(CHUNK)] + ["LAST"]
    assert [a["source"] for a in answers[:2]] == ["-:1", "-:2"]
    assert [a["valid"] for a in answers[-2:]] == [True, False]


def test_the_json_answers_are_one_array_as_before(tmp_path: Path) -> None:
    """The same bytes `json.dumps(answers, indent=1)` wrote when all were held."""
    config = write_config(tmp_path)
    events = tmp_path / "events.jsonl"
    lines = [event("A"), event("B", delivered_on="bad"), event("C")]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    result = run(config, "check", "--format", "json", str(events), code=1)
    answers = json.loads(result.stdout)
    assert result.stdout == json.dumps(answers, indent=1) + "\n"
    assert [(a["record_id"], a["valid"]) for a in answers] == [
        ("A", True),
        ("B", False),
        ("C", True),
    ]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert run(config, "check", "--format", "json", str(empty)).stdout == "[]\n"
