"""A process whose writer process died or hung ends: nothing of its own waits for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest

from accrochage.app import build_writer_parts
from accrochage.streams import writer_process
from accrochage.streams.incoming import Incoming
from accrochage.streams.writer_process import ProcessWriter
from tests.test_tracker import event, write_config

STARTER = """
import json, os, signal, sys, time
from functools import partial
from pathlib import Path
from accrochage.app import build_writer_parts
from accrochage.streams.incoming import Incoming
from accrochage.streams.writer_process import ProcessWriter
from tests.test_tracker import event, write_config

if __name__ == "__main__":
    folder = Path(sys.argv[1])
    write_config(folder)
    writer = ProcessWriter(partial(build_writer_parts, folder / "accrochage.toml"))
    first = Incoming(json.dumps(event("K-0")).encode(), "k", 0, 0, b"pix")
    print(writer.submit([first]).result(60), flush=True)
    os.kill(writer._process.pid, signal.SIGSTOP)
    raw = json.dumps(event("K-1")).encode() + b" " * 100_000
    groups = [
        writer.submit([Incoming(raw, "k", 0, 1 + g * 10 + n, b"pix") for n in range(10)])
        for g in range(3)
    ]
    time.sleep(0.5)  # its pipe full: the thread that feeds it waits
    os.kill(writer._process.pid, signal.SIGKILL)
    for group in groups:
        try:
            group.result(60)
        except RuntimeError:
            print("failed", flush=True)
    print("exiting", flush=True)
"""


def test_a_process_whose_writer_died_with_groups_unsent_exits(tmp_path: Path) -> None:
    """The groups the writer never read fail (their offsets come back); the process exits
    instead of waiting at exit for a pipe no one reads (a Kafka worker hung there)."""
    done = subprocess.run(
        [sys.executable, "-c", STARTER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "failed", "failed", "failed", "exiting"], done.stderr


def test_a_writer_process_that_takes_nothing_more_is_ended_at_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its queue full and the writer hung (stopped here): the end marker cannot go, and
    shutdown ends it instead of waiting for room for ever."""
    monkeypatch.setattr(writer_process, "STOP_SECONDS", 1.0)
    write_config(tmp_path)
    writer = ProcessWriter(partial(build_writer_parts, tmp_path / "accrochage.toml"))
    pid = writer._process.pid
    assert pid is not None
    try:
        first = Incoming(json.dumps(event("K-0")).encode(), "k", 0, 0, b"pix")
        assert writer.submit([first]).result(60) == 1
        os.kill(pid, signal.SIGSTOP)
        raw = json.dumps(event("K-1")).encode()
        groups = [writer.submit([Incoming(raw, "k", 0, 1 + g, b"pix")]) for g in range(4)]
        stopper = threading.Thread(target=writer.shutdown, daemon=True)
        stopper.start()
        stopper.join(60)
        assert not stopper.is_alive(), "shutdown waited for a writer that takes nothing"
        assert writer._process.exitcode == -signal.SIGKILL
        for group in groups:
            with pytest.raises(RuntimeError, match="writer process ended"):
                group.result(60)
    finally:
        if writer._process.is_alive():
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP])
def test_a_stop_that_abandons_waits_returns_whatever_became_of_the_writer(
    tmp_path: Path, how: signal.Signals
) -> None:
    """The stop's `abandon_waits` set a multiprocessing Event, whose `set()` waits without a
    bound for each waiter to wake: with the writer process killed (the OOM killer's choice)
    or stopped, the Kafka worker's SIGTERM never finished."""
    write_config(tmp_path)
    writer = ProcessWriter(partial(build_writer_parts, tmp_path / "accrochage.toml"))
    try:
        first = Incoming(json.dumps(event("A-0")).encode(), "k", 0, 0, b"pix")
        writer.submit([first]).result(60)
        os.kill(writer._process.pid, how)
        abandoning = threading.Thread(target=writer.abandon_waits, daemon=True)
        abandoning.start()
        abandoning.join(60)
        assert not abandoning.is_alive(), "abandon_waits waited for the writer process"
    finally:
        if how == signal.SIGSTOP:
            os.kill(writer._process.pid, signal.SIGKILL)
        writer.shutdown(wait=False)
