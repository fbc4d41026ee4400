"""The state's write lock is waited for within `state.lock_wait`, never for ever.

Another process holding it (a command stopped with Ctrl-Z, a hung writer) used to stall
every writer behind it with no word: the service's clients, a flush, the next command. Each
now gives up after the configured wait with `state_busy` (503), says who holds the lock and
how to free it, and stores nothing; once the holder is gone, writing goes on.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from accrochage.api.server import build_app
from accrochage.app import build_core
from accrochage.errors import StoreBusyError
from accrochage.runtimes.embedded import api_context, writer_link
from accrochage.settings import load_settings
from accrochage.state.sqlite import SqliteStore
from tests.test_http import assert_error_shape
from tests.test_http_writer_process import ANSWER_WITHIN, serving
from tests.test_service_process import cli
from tests.test_tracker import event, write_config

HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
    """
)
"""Another process's writer: holds the lock until its standard input closes."""

BOUND = 30.0
"""Seconds a wait in these tests may take before the test calls it a hang."""


def lock_of(state: Path) -> Path:
    return state.with_name(state.name + ".write-lock")


@contextmanager
def held(state: Path, *, stopped: bool = False) -> Iterator[subprocess.Popen[str]]:
    """A process holding `state`'s write lock (`stopped`: then stopped, as by Ctrl-Z)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_of(state))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        if stopped:
            os.kill(holder.pid, signal.SIGSTOP)
            until(lambda: process_state(holder.pid) == "T")
        yield holder
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGCONT)
            holder.kill()
            holder.wait(BOUND)
        for pipe in (holder.stdin, holder.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


def release(holder: subprocess.Popen[str]) -> None:
    """The holder lets go of the lock and ends."""
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(BOUND)


def process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def until(condition: object, within: float = BOUND) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "state.db", lock_wait_seconds=1.0)
    yield opened
    opened.close()


def write_one(store: SqliteStore, source: str) -> None:
    """One small write: how far `source` was read."""
    with store.transaction() as tx:
        tx.save_offsets(source, {0: 1})


def offsets(store: SqliteStore) -> list[str]:
    """The sources written, read without the write lock (as any reader)."""
    conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT DISTINCT source FROM input_offsets ORDER BY source")
        return [row[0] for row in rows]
    finally:
        conn.close()


def test_a_write_gives_up_on_a_stopped_holder_and_says_how_to_free_it(
    store: SqliteStore,
) -> None:
    with held(store.path, stopped=True) as holder:
        started = time.monotonic()
        with pytest.raises(StoreBusyError) as caught:
            write_one(store, "t-1")
        assert time.monotonic() - started >= 1.0
        message = str(caught.value)
        assert f"process {holder.pid}" in message
        assert "is stopped" in message and f"kill -CONT {holder.pid}" in message
        assert "nothing of this operation was stored" in message
        assert (caught.value.code, caught.value.status) == ("state_busy", 503)
    assert offsets(store) == []
    write_one(store, "t-2")  # the lock the abandoned wait took as the holder died is free
    assert offsets(store) == ["t-2"]


def test_a_running_holder_is_named_without_advice_to_resume_it(store: SqliteStore) -> None:
    with held(store.path) as holder, pytest.raises(StoreBusyError) as caught:
        write_one(store, "t-1")
    message = str(caught.value)
    assert f"process {holder.pid}" in message and "let it finish" in message
    assert "stopped" not in message


def test_a_write_waits_for_a_holder_that_lets_go_in_time(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", lock_wait_seconds=BOUND)
    try:
        with held(store.path) as holder:
            done: list[BaseException | None] = []

            def write() -> None:
                try:
                    write_one(store, "t-1")
                    done.append(None)
                except BaseException as exc:
                    done.append(exc)

            writing = threading.Thread(target=write)
            writing.start()
            writing.join(0.3)
            assert writing.is_alive() and offsets(store) == []  # it waits for the holder
            release(holder)
            writing.join(BOUND)
            assert done == [None]
        assert offsets(store) == ["t-1"]
    finally:
        store.close()


def test_an_abandoned_wait_never_keeps_the_lock_from_other_processes(
    store: SqliteStore,
) -> None:
    with held(store.path) as holder:
        with pytest.raises(StoreBusyError):
            write_one(store, "t-1")
        release(holder)
    probe = textwrap.dedent(
        """
        import fcntl, os, sys, time
        fd = os.open(sys.argv[1], os.O_RDWR)
        deadline = time.monotonic() + float(sys.argv[2])
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                sys.exit(0)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    sys.exit(1)
                time.sleep(0.02)
        """
    )
    taken = subprocess.run(
        [sys.executable, "-c", probe, str(lock_of(store.path)), str(BOUND)], timeout=BOUND * 2
    )
    assert taken.returncode == 0


def test_opening_the_state_gives_up_on_a_stopped_holder(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    SqliteStore(state).close()
    with held(state, stopped=True), pytest.raises(StoreBusyError) as caught:
        SqliteStore(state, lock_wait_seconds=1.0)
    assert "is stopped" in str(caught.value)


def test_ingest_stops_with_the_holder_named_and_runs_once_it_is_gone(tmp_path: Path) -> None:
    config = write_config(tmp_path, state={"lock_wait": "1s"})
    events = tmp_path / "events.jsonl"
    written = [event("W-1"), event("W-2")]
    events.write_text("".join(json.dumps(e) + "\n" for e in written), encoding="utf-8")
    state = tmp_path / "var" / "state.db"
    SqliteStore(state).close()  # the state exists, as on any day but the first
    with held(state, stopped=True) as holder:
        stopped = cli(config, "ingest", str(events))
    assert stopped.returncode != 0
    assert f"kill -CONT {holder.pid}" in stopped.stderr, stopped.stderr
    for one in written:
        assert one["holder"]["birth_name"] not in stopped.stdout + stopped.stderr
    assert cli(config, "ingest", str(events)).returncode == 0
    listed = cli(config, "records", "--format", "json")
    assert {r["record_id"] for r in json.loads(listed.stdout)} == {"W-1", "W-2"}


async def test_the_service_answers_503_state_busy_then_stores_once_the_holder_is_gone(
    tmp_path: Path,
) -> None:
    core = build_core(load_settings(write_config(tmp_path, state={"lock_wait": "1s"})))
    link = writer_link(core)
    app = build_app(api_context(core, link))

    async def lifecycle(_: object) -> object:
        await link.start()
        yield
        await link.close()

    app.cleanup_ctx.append(lifecycle)
    try:
        async with serving(app) as client:

            async def post(record_id: str) -> tuple[int, Any]:
                async with client.post("/events", json=event(record_id)) as response:
                    return response.status, await response.json()

            with held(core.settings.paths.state, stopped=True) as holder:
                status, body = await asyncio.wait_for(post("W-1"), ANSWER_WITHIN)
                assert status == 503, body
                assert_error_shape(body, "state_busy")
                assert f"kill -CONT {holder.pid}" in body["error"]["message"]
                async with client.get("/health") as response:
                    health = await response.json()
                assert health["reason"] == "state_busy"
            status, body = await asyncio.wait_for(post("W-2"), ANSWER_WITHIN)
            assert status == 201, body
    finally:
        core.close()
