"""A process whose writer process died or hung ends: nothing of its own waits for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent import futures
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from accrochage.app_writers import build_writer_parts
from accrochage.runtimes.kafka.pending import Pending
from accrochage.streams import writer_process
from accrochage.streams.incoming import Incoming
from accrochage.streams.writer_process import ProcessWriter, StopDeadline
from tests.test_tracker import event, write_config

STARTER = """
import json, os, signal, sys, time
from concurrent import futures
from functools import partial
from pathlib import Path
from typing import Any
from accrochage.app_writers import build_writer_parts
from accrochage.streams.incoming import Incoming
from accrochage.streams.writer_process import ProcessWriter, StopDeadline
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


def test_a_writer_process_that_dies_while_idle_is_said_at_once(tmp_path: Path) -> None:
    """The Kafka worker learnt of a dead writer only at its next event (exit 70 then), and
    looked alive meanwhile; `on_death` is called as soon as the process is gone, and never
    for a shutdown."""
    write_config(tmp_path)
    said: list[str] = []
    died = threading.Event()

    def on_death(what: str) -> None:
        said.append(what)
        died.set()

    writer = ProcessWriter(
        partial(build_writer_parts, tmp_path / "accrochage.toml"), on_death=on_death
    )
    try:
        first = Incoming(json.dumps(event("D-0")).encode(), "k", 0, 0, b"pix")
        writer.submit([first]).result(60)
        os.kill(writer._process.pid, signal.SIGKILL)
        assert died.wait(60), "nothing said of the writer's death"
    finally:
        writer.shutdown(wait=False)
    assert said == ["the writer process ended (exit code -9: killed by SIGKILL)"]

    calm = ProcessWriter(
        partial(build_writer_parts, tmp_path / "accrochage.toml"), on_death=on_death
    )
    calm.submit([Incoming(json.dumps(event("D-1")).encode(), "k", 0, 1, b"pix")]).result(60)
    calm.shutdown()
    assert said == ["the writer process ended (exit code -9: killed by SIGKILL)"], (
        "a shutdown is no death"
    )


def test_every_step_of_a_stop_shares_one_deadline() -> None:
    now = [100.0]
    deadline = StopDeadline(10.0, clock=lambda: now[0])
    now[0] += 50  # nothing started it yet: the stop starts at its first step
    deadline.start()
    now[0] += 4
    assert deadline.left() == 6.0
    deadline.start()  # a later step does not start it again
    now[0] += 7
    assert deadline.left() == 0.0


def test_a_stop_whose_time_is_spent_does_not_wait_for_the_groups_in_flight() -> None:
    """Settling waited 120 s of its own before the writer's joins took up to 240 s more: past
    compose's 150 s, the container was killed in the middle. It now takes what is left."""

    class Spent:
        abandoned = False

        def submit(self, items: list[Incoming]) -> futures.Future[Any]:
            raise AssertionError("nothing is submitted")

        def abandon_waits(self) -> None:
            self.abandoned = True

        def stop_left(self) -> float:
            return 0.0

        def shutdown(self, wait: bool = True) -> None:
            raise AssertionError("not the settle's step")

    writer = Spent()
    pending = Pending(writer)
    never: futures.Future[Any] = futures.Future()
    pending._in_flight.append((never, 3))
    settling = threading.Thread(target=pending._settle_at_stop, daemon=True)
    settling.start()
    settling.join(60)
    assert not settling.is_alive() and writer.abandoned
