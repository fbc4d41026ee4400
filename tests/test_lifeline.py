"""Helper processes end with their starter, even one killed and not reaped yet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from accrochage.app_writers import build_writer_parts
from accrochage.lifeline import gone
from accrochage.streams.incoming import Incoming
from accrochage.streams.writer_process import ProcessWriter
from tests.test_http import recent
from tests.test_tracker import write_config

STARTER = """
import sys, time
from functools import partial
from pathlib import Path
from accrochage.app_writers import build_writer_parts
from accrochage.streams.writer_process import ProcessWriter
from tests.test_tracker import write_config

if __name__ == "__main__":
    folder = Path(sys.argv[1])
    write_config(folder)
    writer = ProcessWriter(partial(build_writer_parts, folder / "accrochage.toml"))
    print(writer._process.pid, flush=True)
    time.sleep(600)
"""

HANGUP_STARTER = """
import json, os, signal, sys, time
from functools import partial
from pathlib import Path
from accrochage.app_writers import build_writer_parts
from accrochage.streams.incoming import Incoming
from accrochage.streams.writer_process import ProcessWriter
from tests.test_http import recent
from tests.test_tracker import write_config

def stored(writer, n):
    item = Incoming(json.dumps(recent(f"HUP-{n}")).encode(), "k", 0, n, b"pix")
    try:
        return writer.submit([item]).result(timeout=60)
    except RuntimeError as exc:
        return str(exc)

if __name__ == "__main__":
    heard = []
    signum = signal.Signals[sys.argv[2]]
    signal.signal(signum, lambda signum, frame: heard.append(signum))
    folder = Path(sys.argv[1])
    write_config(folder)
    deaths = []
    build = partial(build_writer_parts, folder / "accrochage.toml")
    writer = ProcessWriter(build, on_death=deaths.append)
    first = stored(writer, 0)
    os.killpg(os.getpgrp(), signum)
    deadline = time.monotonic() + 30
    while not heard and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(1)  # what the signal kills has died by now
    second = stored(writer, 1)
    pid = writer.pid
    writer.shutdown(wait=True)
    ended = not os.path.exists(f"/proc/{pid}")
    print(json.dumps({"heard": heard, "stored": [first, second], "deaths": deaths, "ended": ended}))
"""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[0].decode()
    except OSError:
        return "gone"


def test_a_zombie_is_gone_and_a_live_process_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert not gone(child.pid) and not gone(os.getpid())
        child.kill()
        deadline = time.monotonic() + 60
        while _state(child.pid) != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.05)
        assert gone(child.pid), "a zombie (killed, not reaped) counts as gone"
    finally:
        child.kill()
        child.wait(30)
    assert gone(child.pid)


def test_a_writer_process_ends_while_its_killed_starter_awaits_reaping(tmp_path: Path) -> None:
    """The Kafka writer process waits on queues whose both ends it holds: only its watch on
    the starter ends it. A starter killed but not reaped yet (a supervisor that reaps late)
    still answers signals; the writer process lived on beside the restarted worker."""
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert starter.stdout is not None
        writer = int(starter.stdout.readline())
        os.kill(starter.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while _state(starter.pid) != "Z":
            assert time.monotonic() < deadline, "the killed starter never became a zombie"
            time.sleep(0.01)
        while _state(writer) not in ("gone", "Z"):
            assert _state(starter.pid) == "Z", "the starter is kept unreaped meanwhile"
            assert time.monotonic() < deadline, "the writer process outlived its starter"
            time.sleep(0.05)
    finally:
        starter.kill()
        starter.wait(30)
        if starter.stdout is not None:
            starter.stdout.close()


def test_a_writer_process_leaves_what_reaches_the_group_to_its_starter(tmp_path: Path) -> None:
    """Ctrl-C, a closed terminal (SIGHUP) and a group's SIGTERM reach the writer process too:
    its starter ends it after its last group. SIGHUP's default action killed it mid-stop."""
    write_config(tmp_path)
    writer = ProcessWriter(partial(build_writer_parts, tmp_path / "accrochage.toml"))
    try:
        pid = writer.pid
        assert pid is not None
        first = Incoming(json.dumps(recent("LG-1")).encode(), "k", 0, 0, b"pix")
        assert writer.submit([first]).result(timeout=60) == 1  # started, whatever its speed
        for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            os.kill(pid, signum)
        second = Incoming(json.dumps(recent("LG-2")).encode(), "k", 0, 1, b"pix")
        assert writer.submit([second]).result(timeout=60) == 1, "stored by the same process"
        assert not gone(pid)
    finally:
        writer.shutdown(wait=True)


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["HUP", "TERM"])
def test_a_writer_process_outlives_a_signal_to_its_whole_process_group(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """A closed terminal sends SIGHUP to every process of the group, and systemd's stop
    SIGTERM to every process of the unit, the fork server and multiprocessing's resource
    tracker included. Either killed the fork server, and its starter read that as the end of
    each helper it forked: a Kafka worker took its live writer process for dead (the next group
    failed, `on_death` said exit code 255) and left it running at its stop."""
    starter = subprocess.run(
        [sys.executable, "-c", HANGUP_STARTER, str(tmp_path), signum.name],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        start_new_session=True,
        timeout=180,
    )
    assert starter.returncode == 0, starter.stderr
    assert json.loads(starter.stdout) == {
        "heard": [signum],
        "stored": [1, 1],
        "deaths": [],
        "ended": True,
    }
    assert "Traceback" not in starter.stderr, starter.stderr
