"""A writer beside the one measured, as a service's writer (HTTP, Kafka) beside the batch timer:
`bench.cut` and `bench.cdc_loop` time its writes while a batch is cut or a report imported."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from accrochage import heap
from accrochage.app import Core
from accrochage.state.sqlite import SqliteStore, checkpoint
from bench._common import BenchError

PROBE_EVERY = 0.005
PROBE_START_SECONDS = 120.0


_in_commit = False
"""Inside `checkpoints_in_commit`: the probe's process does the same."""


def _unreadable(index: checkpoint.WalIndex) -> checkpoint.WalFrames | None:
    return None


@contextlib.contextmanager
def checkpoints_in_commit() -> Iterator[None]:
    """Stores opened in the block leave the WAL's checkpoint to SQLite, inside the `COMMIT`
    under the write lock, as a store does that cannot read the WAL's index."""
    global _in_commit
    original = checkpoint.WalIndex.frames
    setattr(checkpoint.WalIndex, "frames", _unreadable)  # noqa: B010
    _in_commit = True
    try:
        yield
    finally:
        setattr(checkpoint.WalIndex, "frames", original)  # noqa: B010
        _in_commit = False


class WriterProbe:
    """A writer of its own store on the state, as a service's writer (HTTP, Kafka) beside the
    batch timer: a one-row write every `PROBE_EVERY` seconds, each timed from its start to its
    commit, the wait for the cut's write lock included. In a process of its own, as a
    service's writer is: in the bench's, a full collection of the bench's heap (the cut's
    plan, the events' ids) landed in the probe's writes (247 ms in `bench.cdc_loop`)."""

    def __init__(self, state: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.waits: list[float] = []
        self._stop = context.Event()
        self._ready = context.Event()
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_probe,
            args=(str(state), _in_commit, self._stop, self._ready, send),
            name="bench-cut-probe",
        )

    def __enter__(self) -> WriterProbe:
        self._process.start()
        if not self._ready.wait(PROBE_START_SECONDS):
            self._process.kill()
            raise BenchError("the probe's process did not open the state")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._receive.poll(PROBE_START_SECONDS):
            self.waits.extend(self._receive.recv())
        self._process.join(PROBE_START_SECONDS)
        if self._process.exitcode != 0:
            raise BenchError(f"the probe's process failed (exit {self._process.exitcode})")


def _probe(state: str, in_commit: bool, stop: Event, ready: Event, send: Connection) -> None:
    heap.settle()
    with checkpoints_in_commit() if in_commit else contextlib.nullcontext():
        store = SqliteStore(Path(state))
    waits: list[float] = []
    ready.set()
    try:
        while not stop.is_set():
            start = time.perf_counter()
            with store.transaction() as tx:
                tx.save_offsets("bench-cut-probe", {0: len(waits)})
            waits.append(time.perf_counter() - start)
            stop.wait(PROBE_EVERY)
    finally:
        store.close()
    send.send(waits)


@contextlib.contextmanager
def measured(core: Core, state: Path, probe: bool) -> Iterator[tuple[list[float], list[float]]]:
    """Each write transaction of `core`'s store timed from its start to its commit, and with
    `probe`, a `WriterProbe`'s writes meanwhile: the two lists, filled as the block runs."""
    store = core.flusher.store
    original = store.transaction
    held: list[float] = []

    @contextlib.contextmanager
    def timed() -> Iterator[Any]:
        start = time.perf_counter()
        with original() as tx:
            yield tx
        held.append(time.perf_counter() - start)

    store.transaction = timed  # type: ignore[method-assign]
    try:
        if not probe:
            yield held, []
            return
        with WriterProbe(state) as writer:
            yield held, writer.waits
    finally:
        store.transaction = original  # type: ignore[method-assign]
