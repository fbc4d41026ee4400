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
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from accrochage.api.server import build_app
from accrochage.api.writer_link import ProcessLink
from accrochage.app import build_core
from accrochage.errors import RefdataError, StoreBusyError
from accrochage.models.deadline import FixedClock
from accrochage.runtimes.embedded import api_context, writer_link
from accrochage.settings import load_settings
from accrochage.state.base import WriteHolder
from accrochage.state.sqlite import SqliteStore
from accrochage.state.sqlite import connection as connection_module
from accrochage.state.sqlite import opening as opening_module
from accrochage.state.sqlite.cut_lock import CutFileLock
from accrochage.streams.incoming import Incoming, IngestResult
from accrochage.streams.ingest import Ingestor
from accrochage.streams.log_source import LogSource
from accrochage.streams.scheduler import Job, Scheduler
from accrochage.streams.watch import Watch
from accrochage.streams.writer import WriterService
from tests.factories import delivered_event
from tests.support.holding import BOUND, holding
from tests.support.holding import let_go as release
from tests.test_decoding import NOW, registry
from tests.test_http import assert_error_shape
from tests.test_http_writer_process import ANSWER_WITHIN, serving
from tests.test_service_process import cli
from tests.test_tracker import event, write_config

pytestmark = pytest.mark.timeout(300)
"""Without a bounded wait a test here blocks until killed: fail it well before the suite's
15 minutes (a passing test takes seconds)."""

HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
    """
)
"""Another process's writer: holds the lock until its standard input closes."""

TRY_LOCK = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("free")
    except BlockingIOError:
        print("taken")
    """
)
"""Another process trying the lock without waiting."""

SQLITE_HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")  # SQLite's own lock, kept
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO input_offsets (source, partition, next_offset) VALUES ('held', 0, 1)")
    conn.execute("COMMIT")
    print("held", flush=True)
    sys.stdin.read()
    """
)
"""Another process holding SQLite's exclusive lock on the database itself, as a command does
while it closes the state (its last checkpoint): readers cannot even open it."""

FOREIGN_WRITER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("held", flush=True)
    sys.stdin.read()
    conn.execute("ROLLBACK")
    """
)
"""A running program in a write transaction on the state, without its write lock: an
`sqlite3` shell where someone typed BEGIN and went for lunch."""

PERSONAL_FILE_NAME = "candidats_DUPONT_Jean_1987-03-02.csv"
"""On the holder's command line, as a file an operator ingests may be named."""


def lock_of(state: Path) -> Path:
    return state.with_name(state.name + ".write-lock")


@contextmanager
def held(
    state: Path,
    *,
    stopped: bool = False,
    sqlite_lock: bool = False,
    foreign: bool = False,
    cut: bool = False,
) -> Iterator[subprocess.Popen[str]]:
    """A process holding `state`'s write lock (`sqlite_lock`: SQLite's own lock on the
    database instead; `foreign`: a program in a write transaction on it, without the write
    lock; `cut`: the cut lock, as a flush between two parts of a batch it cuts; `stopped`:
    then stopped, as by Ctrl-Z)."""
    if foreign:
        script = [FOREIGN_WRITER, str(state)]
    elif sqlite_lock:
        script = [SQLITE_HOLDER, str(state)]
    else:
        lock = state.with_name(state.name + CutFileLock.SUFFIX) if cut else lock_of(state)
        script = [HOLDER, PERSONAL_FILE_NAME, str(lock)]
    with holding(*script) as holder:
        if stopped:
            os.kill(holder.pid, signal.SIGSTOP)
            until(lambda: process_state(holder.pid) == "T")
        yield holder


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


def read_only(store: SqliteStore, sql: str) -> list[Any]:
    """The first column of `sql`'s rows, read without the write lock (as any reader)."""
    conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute(sql)]
    finally:
        conn.close()


def offsets(store: SqliteStore) -> list[str]:
    """The sources written."""
    return read_only(store, "SELECT DISTINCT source FROM input_offsets ORDER BY source")


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
        assert "DUPONT" not in message and "fcntl" not in message  # the pid, not its argv
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
    assert other_process_can_lock(store.path)


PROBE = textwrap.dedent(
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


def other_process_can_lock(state: Path) -> bool:
    """Whether another process takes the lock within the bound (the abandoned wait, which
    took it as the holder went, let go of it)."""
    probe = [sys.executable, "-c", PROBE, str(lock_of(state)), str(BOUND)]
    return subprocess.run(probe, timeout=BOUND * 2).returncode == 0


def test_an_up_to_date_state_opens_without_waiting_for_the_holder(tmp_path: Path) -> None:
    """Opening checks the state's integrity (a read) and takes the lock only to migrate: a
    command that only reads is not held up by a stopped writer."""
    state = tmp_path / "state.db"
    SqliteStore(state).close()
    with held(state, stopped=True):
        opened = SqliteStore(state, lock_wait_seconds=BOUND, always_check=True)
        opened.close()


def test_a_state_to_migrate_waits_for_the_holder_then_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(opening_module, "MIGRATION_WAIT_SECONDS", 1.0)
    state = tmp_path / "state.db"
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
            retry_after: list[str | None] = []

            async def post(record_id: str) -> tuple[int, Any]:
                async with client.post("/events", json=event(record_id)) as response:
                    retry_after.append(response.headers.get("Retry-After"))
                    return response.status, await response.json()

            with held(core.settings.paths.state, stopped=True) as holder:
                status, body = await asyncio.wait_for(post("W-1"), ANSWER_WITHIN)
                assert status == 503, body
                assert retry_after[-1] == "5", "a client is told when to send it again"
                assert_error_shape(body, "state_busy")
                assert f"kill -CONT {holder.pid}" in body["error"]["message"]
                async with client.get("/health") as response:
                    health = await response.json()
                assert health["reason"] == "state_busy"
                os.kill(holder.pid, signal.SIGCONT)
                release(holder)
            # Nothing was written since, and the state is free: a liveness probe must not
            # restart a service whose next write goes through.
            async with client.get("/health") as response:
                assert (response.status, await response.json()) == (200, {"status": "ok"})
            status, body = await asyncio.wait_for(post("W-2"), ANSWER_WITHIN)
            assert status == 201, body
    finally:
        core.close()


def test_whether_a_writer_holds_the_state_is_told_without_taking_it_from_anyone(
    store: SqliteStore,
) -> None:
    assert store.write_holder() is None
    with held(store.path) as holder:
        assert store.write_holder() == WriteHolder(holder.pid, stopped=False)
        os.kill(holder.pid, signal.SIGSTOP)
        until(lambda: process_state(holder.pid) == "T")
        assert store.write_holder() == WriteHolder(holder.pid, stopped=True)
        os.kill(holder.pid, signal.SIGCONT)
        release(holder)
    assert store.write_holder() is None
    with store.transaction() as tx:
        tx.save_offsets("mine", {0: 1})
        assert store.write_holder() == WriteHolder(os.getpid(), stopped=False)
        # ... and still does once asked: another process finds the lock taken.
        probe = subprocess.run(
            [sys.executable, "-c", TRY_LOCK, str(lock_of(store.path))],
            capture_output=True,
            text=True,
            timeout=BOUND,
        )
        assert probe.stdout == "taken\n", probe.stderr
    assert store.write_holder() is None
    assert offsets(store) == ["mine"]


def test_failed_writes_share_one_wait_instead_of_a_thread_and_a_descriptor_each(
    store: SqliteStore,
) -> None:
    def waits() -> int:
        return sum(t.name == "write-lock-wait" for t in threading.enumerate())

    def lock_descriptors() -> int:
        folder = Path("/proc/self/fd")
        lock = lock_of(store.path)
        return sum(1 for fd in folder.iterdir() if _same(fd, lock))

    with held(store.path, stopped=True) as holder:
        for _ in range(4):
            with pytest.raises(StoreBusyError):
                write_one(store, "t-1")
        assert (waits(), lock_descriptors()) == (1, 2)  # the store's own, and the wait's
        release_stopped(holder)
        until(lambda: waits() == 0 and lock_descriptors() == 1)
    write_one(store, "t-2")
    assert offsets(store) == ["t-2"]


def _same(fd: Path, path: Path) -> bool:
    try:
        return os.path.samefile(fd, path)
    except OSError:
        return False


def release_stopped(holder: subprocess.Popen[str]) -> None:
    os.kill(holder.pid, signal.SIGCONT)
    release(holder)


class Interrupted(Exception):
    pass


def test_a_wait_interrupted_before_the_lock_came_never_keeps_it(store: SqliteStore) -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with held(store.path) as holder:
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(Interrupted):
                write_one(store, "t-1")
            release(holder)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert other_process_can_lock(store.path)


def test_the_wait_for_this_process_s_other_writer_is_bounded_too(store: SqliteStore) -> None:
    inside, leave = threading.Event(), threading.Event()

    def long_writer() -> None:
        with store.transaction():
            inside.set()
            leave.wait(BOUND)

    writer = threading.Thread(target=long_writer)
    writer.start()
    try:
        assert inside.wait(BOUND)
        with pytest.raises(StoreBusyError) as caught:
            write_one(store, "t-1")
        assert f"this process (pid {os.getpid()})" in str(caught.value)
    finally:
        leave.set()
        writer.join(BOUND)
    write_one(store, "t-2")
    assert offsets(store) == ["t-2"]


def refusing_writer(*_: object) -> object:
    """A writer process's parts that cannot be built: its state is busy."""
    raise StoreBusyError("another writer has held the state for 1 s: process 1 is stopped")


async def test_a_writer_process_that_cannot_open_the_state_says_why_in_one_error(
    capfd: pytest.CaptureFixture[str],
) -> None:
    link = ProcessLink(refusing_writer)
    with pytest.raises(StoreBusyError, match="process 1 is stopped"):
        await asyncio.wait_for(link.start(), ANSWER_WITHIN)
    assert not link._process.is_alive()
    assert "Traceback" not in capfd.readouterr().err  # said once, by the serving process


def writer_without_reference_data(*_: object) -> object:
    """A writer process's parts that cannot be built for another reason than the storage."""
    raise RefdataError("the stored reference data cannot be read: load it again")


async def test_a_writer_process_start_error_keeps_its_own_class_and_status() -> None:
    link = ProcessLink(writer_without_reference_data)
    with pytest.raises(RefdataError, match="load it again") as raised:
        await asyncio.wait_for(link.start(), ANSWER_WITHIN)
    assert (raised.value.code, raised.value.status) == ("refdata_invalid", 422)


def test_a_state_locked_by_a_stopped_process_names_it_to_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command stopped (Ctrl-Z) as it closed the state kept SQLite's lock on the database:
    `summary`, `records`, `doctor` waited 30 s, then said `database is locked; check
    paths.state`, naming no one."""
    state = tmp_path / "state.db"
    SqliteStore(state).close()
    monkeypatch.setattr(opening_module, "BUSY_TIMEOUT_MS", 1000)
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 1000)
    with held(state, stopped=True, sqlite_lock=True) as holder:
        with pytest.raises(StoreBusyError) as raised:
            SqliteStore(state).close()
        message = str(raised.value)
        assert f"process {holder.pid} (`ps -o args= -p {holder.pid}`" in message, message
        assert f"kill -CONT {holder.pid}" in message and "stayed locked for 1 s" in message
    SqliteStore(state).close()  # free again once the holder is gone


def test_a_program_in_a_transaction_on_the_state_makes_writers_busy_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its SQLite lock made every write fail as a store error after 30 s: HTTP 500 without
    Retry-After, a traceback from the batch timer, a Kafka worker's group failed instead of
    waiting. It is another process holding the state: busy (503 `state_busy`), try again."""
    state = tmp_path / "state.db"
    SqliteStore(state).close()
    monkeypatch.setattr(opening_module, "BUSY_TIMEOUT_MS", 1000)
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 1000)
    store = SqliteStore(state)
    ingestor = Ingestor(store, registry(), FixedClock(NOW))
    try:
        with held(state, foreign=True) as holder:
            with pytest.raises(StoreBusyError) as raised:
                ingestor.ingest([Incoming(json.dumps(event("F-1")))])
            release(holder)
        assert (raised.value.code, raised.value.status) == ("state_busy", 503)
        message = str(raised.value)
        assert "stayed locked for 1 s by a program that holds SQLite's own lock" in message
        assert "is no accrochage writer" in message and "nothing of this operation" in message
        stored = ingestor.ingest([Incoming(json.dumps(event("F-1")))])
        assert [r.outcome for r in stored] == ["created"]
    finally:
        store.close()


def log_group(n: int) -> list[Incoming]:
    """Events as the Kafka worker reads them: each at its partition's offset."""
    return [
        Incoming(json.dumps(delivered_event(record_id=f"K-{i}")).encode(), f"k:{i}", 0, i, b"pix")
        for i in range(n)
    ]


def stored_records(store: SqliteStore) -> int:
    (count,) = read_only(store, "SELECT count(*) FROM records")
    return int(count)


def test_a_log_group_waits_for_the_state_and_is_stored_once_it_is_free(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A Kafka worker's group finding the state held beyond `state.lock_wait` waits and is
    stored once the holder lets go: it used to end the worker (an operator's `revalidate`
    of a minute stopped it), and a request's group still fails at once (503 state_busy)."""
    service = WriterService(Ingestor(store, registry(), FixedClock(NOW)))
    source = LogSource("topic")
    try:
        with held(store.path) as holder:
            refused = service.submit([Incoming(json.dumps(delivered_event(record_id="H-1")))])
            waiting = service.submit(log_group(5), source)
            with pytest.raises(StoreBusyError):
                refused.result(BOUND)
            until(lambda: "the group is stored once it lets go" in caplog.text)
            assert not waiting.done() and stored_records(store) == 0
            release(holder)
            results = waiting.result(BOUND)
        assert [r.outcome for r in results] == ["created"] * 5
    finally:
        service.stop(BOUND)
    assert stored_records(store) == 5 and service.storage_error is None
    assert "the group is stored once it lets go" in caplog.text


def test_a_stop_ends_a_log_groups_wait_with_nothing_stored(store: SqliteStore) -> None:
    service = WriterService(Ingestor(store, registry(), FixedClock(NOW)))
    with held(store.path):
        waiting = service.submit(log_group(3), LogSource("topic"))
        until(lambda: isinstance(service.storage_error, StoreBusyError))
        # Queued behind it from another source: taken aside for the next group, the stop
        # after it was once lost, and the stop waited for ever.
        other = service.submit(log_group(2), LogSource("other"))
        stopping = threading.Thread(target=service.stop, args=(BOUND,))
        stopping.start()
        stopping.join(BOUND)
        assert not stopping.is_alive(), "the stop waited for the holder"
        with pytest.raises(StoreBusyError):
            waiting.result(0)
        with pytest.raises(StoreBusyError):
            other.result(0)
    assert stored_records(store) == 0


async def test_a_periodic_job_finding_the_state_busy_says_so_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The batch cut of a worker whose state another process holds: a warning naming the
    holder, no traceback (it is no fault of the job), and the job runs again."""
    runs: list[int] = []

    def cut() -> None:
        runs.append(1)
        busy = StoreBusyError("another writer has held the state; send it again")
        busy.situation = "another writer has held the state: process 4242"
        raise busy

    scheduler = Scheduler([Job("batch-cut", 0.01, cut)])
    scheduler.start()
    try:
        deadline = time.monotonic() + BOUND
        while len(runs) < 2:
            assert time.monotonic() < deadline, "the job never ran again"
            await asyncio.sleep(0.01)
    finally:
        await scheduler.stop()
    (said, *_) = [r for r in caplog.records if r.name == "accrochage.scheduler"]
    assert said.levelname == "WARNING" and said.exc_info is None
    assert "process 4242" in said.getMessage() and "send it again" not in said.getMessage()


def test_a_watch_listener_finding_the_state_busy_says_so_in_one_line(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The alert rules' listener writes their state: with another process holding the state,
    a worker's log held a traceback at every watch tick (found by the Kafka test of a busy
    state). One warning naming the holder now; the next listener still runs."""
    heard: list[int] = []

    def alerts(*_: object) -> None:
        with store.transaction():
            pass

    watch = Watch(
        store,
        FixedClock(NOW),
        margin_days=14,
        certifiers=["pix"],
        unreported_after=timedelta(days=10),
        listeners=[alerts, lambda *_: heard.append(1)],
    )
    with held(store.path):
        watch.run()
    (said,) = [r for r in caplog.records if r.name == "accrochage.watch"]
    assert said.levelname == "WARNING" and said.exc_info is None, said
    assert "a listener of the watch job waits: another writer has held" in said.getMessage()
    assert "send or run it again" not in said.getMessage() and heard == [1]


def test_a_group_stored_one_by_one_that_meets_another_writer_says_what_was_stored(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group that failed for one event's sake is stored one event a transaction. Another
    writer taking the state part-way through failed every request of the group with
    "nothing of this operation was stored", though the events before it were."""
    real_ingest = Ingestor.ingest
    real_one = Ingestor._ingest
    holding = ExitStack()
    singles: list[str] = []

    def ingest(
        self: Ingestor, items: Sequence[Incoming], *, keep_room: bool = True
    ) -> list[IngestResult]:
        if len(items) > 1:
            raise ValueError("a fault of one event, met only in the group's transaction")
        return real_ingest(self, items, keep_room=keep_room)

    def one_transaction(
        self: Ingestor, items: Sequence[Incoming], refusing_invalid: str | None
    ) -> list[IngestResult]:
        singles.append(str(items[0].raw))
        if len(singles) == 2:  # another writer takes the state before the second event
            holding.enter_context(held(store.path))
        return real_one(self, items, refusing_invalid)

    monkeypatch.setattr(Ingestor, "ingest", ingest)
    monkeypatch.setattr(Ingestor, "_ingest", one_transaction)
    service = WriterService(Ingestor(store, registry(), FixedClock(NOW)))
    events = [json.dumps(delivered_event(record_id=f"ONE-BY-ONE-{i}")) for i in (1, 2)]
    try:
        with holding:
            answers = service.store_now([[Incoming(events[0])], [Incoming(events[1])]])
            for answer in answers:
                with pytest.raises(StoreBusyError) as refused:
                    answer.result(0)
                said = str(refused.value)
                assert "nothing of this operation was stored" not in said
                assert "1 of them (these or others sent at the same time)" in said
                assert "those stored are answered unchanged" in said
            assert stored_records(store) == 1
        monkeypatch.setattr(Ingestor, "ingest", real_ingest)
        monkeypatch.setattr(Ingestor, "_ingest", real_one)
        again = service.store_now([[Incoming(events[0])], [Incoming(events[1])]])
        assert [a.result(0)[0].outcome for a in again] == ["unchanged", "created"]
    finally:
        service.stop(BOUND)
    assert stored_records(store) == 2
