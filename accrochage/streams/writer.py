"""The writer service: one thread stores groups of events, one transaction per group.

HTTP requests and the Kafka writer process both hand their events to it. Submissions queued
while a transaction runs are stored together in the next one (group commit), up to
`max_group` events; each submission's future resolves with its own results only once that
transaction has committed, so nothing is acknowledged before it is durable.

A submitted group is stored whatever happens to whoever waits for it: its future is running
from the start and cannot be cancelled (a SIGTERM that cancels the waiter leaves the group to
commit or roll back as a whole).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from accrochage.errors import StorageLowError, StoreBusyError, StoreError
from accrochage.streams.incoming import Incoming, IngestResult
from accrochage.streams.ingest import Ingestor
from accrochage.streams.log_source import LogSource
from accrochage.streams.metrics import Metrics, tally
from accrochage.streams.write_times import WriteTimes

log = logging.getLogger("accrochage.writer")
MAX_GROUP = 2000
ROOM_RECHECK_SECONDS = 5.0
"""How often a log's group waiting for room on the state's disk looks again."""
_BROKEN = (
    "the writer thread failed: the events were not acknowledged and may not be stored; "
    "send them again once the service is restarted"
)
_AFTER_A_FAILED_GROUP = (
    "an earlier group of this log was not stored, so this one is not stored either (its "
    "offsets would be stored past the events not stored); the worker reads them all again "
    "from the log when it starts"
)


@dataclass(slots=True)
class _Submission:
    items: Sequence[Incoming]
    source: LogSource | None
    done: Future[list[IngestResult]]


class WriterService:
    def __init__(
        self,
        ingestor: Ingestor,
        *,
        metrics: Metrics | None = None,
        max_group: int = MAX_GROUP,
        write_times: WriteTimes | None = None,
    ) -> None:
        """`metrics`: where stored events are counted; None in a writer process, whose
        tallies travel back with its answers to the process that serves `/metrics`, with
        `write_times`: the times its store's writes waited for the state and held it."""
        self._ingestor = ingestor
        self.write_times = write_times
        self._metrics = metrics
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._held: list[_Submission | None] = []
        """A submission (or the stop) taken from the queue for the group after this one."""
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._stopping = False
        self._abandoned = False
        self._wake = threading.Event()
        """Set by a stop: a log's group waiting for room on the disk stops waiting."""
        self._broken = False
        self._failed_logs: set[LogSource] = set()
        """Logs a group of which failed: nothing later of theirs is stored (`_store`)."""
        self._lock = threading.Lock()
        self.storage_error: StoreError | None = None
        """The storage failure of the last transaction (disk full, corrupt), or None."""
        self._thread.start()

    def submit(
        self, items: Sequence[Incoming], source: LogSource | None = None
    ) -> Future[list[IngestResult]]:
        """Queue events for the next transaction; `source` stores log offsets with them."""
        done: Future[list[IngestResult]] = Future()
        done.set_running_or_notify_cancel()
        with self._lock:
            if self._broken:
                done.set_exception(RuntimeError(_BROKEN))
            elif self._stopping:
                done.set_exception(RuntimeError("the writer is stopping: events not stored"))
            else:
                self._queue.put(_Submission(items, source, done))
        return done

    def _next_group(self, first: _Submission) -> list[_Submission]:
        """The first submission and those queued behind it with the same source, bounded."""
        group, size = [first], len(first.items)
        while size < self._max_group:
            try:
                following = self._queue.get_nowait()
            except queue.Empty:
                break
            if following is None or following.source != first.source:
                self._held.append(following)
                break
            group.append(following)
            size += len(following.items)
        return group

    def _take(self) -> _Submission | None:
        if self._held:
            return self._held.pop()
        return self._queue.get()

    def _run(self) -> None:
        group: list[_Submission] = []
        try:
            while (first := self._take()) is not None:
                group = self._next_group(first)
                self._store(group)
                group = []
        except BaseException as exc:  # never a submission left waiting for ever
            log.critical("the writer thread failed (%s)", type(exc).__name__, exc_info=True)
            self._fail_all(group)

    def _fail_all(self, group: list[_Submission]) -> None:
        """The writer thread is gone: what it held, what is queued and what comes later fail
        (a group may have committed before the failure: sending it again stores nothing twice)."""
        with self._lock:
            self._stopping = True
            self._broken = True
        waiting = list(group)
        waiting += [held for held in self._held if held is not None]
        self._held.clear()
        while True:
            try:
                queued = self._queue.get_nowait()
            except queue.Empty:
                break
            if queued is not None:
                waiting.append(queued)
        for submission in waiting:
            if not submission.done.done():
                submission.done.set_exception(RuntimeError(_BROKEN))

    def abandon_waits(self) -> None:
        """A stop that does not wait for the state: a log's group that waits for another
        process to let go of it fails now, and so does every later group of that log; their
        events stay in the log, read again at the next start. Groups that find the state free
        are stored as before."""
        self._abandoned = True
        self._wake.set()
        self._ingestor.store.stop_waiting()

    @property
    def abandoned(self) -> bool:
        """`abandon_waits` was called: a group that fails now is one the stop left."""
        return self._abandoned

    def _store(self, group: list[_Submission]) -> None:
        items = [item for submission in group for item in submission.items]
        source = group[0].source
        if source is not None and source in self._failed_logs:
            self._fail(group, RuntimeError(_AFTER_A_FAILED_GROUP))
            return
        try:
            by_item = self._stored_once_free(items, source)
        except BaseException as exc:  # the transaction rolled back
            if isinstance(exc, StoreError):
                self.storage_error = exc
            one_may_be_at_fault = isinstance(exc, Exception) and not isinstance(exc, StoreError)
            if not one_may_be_at_fault or (source is None and len(items) == 1):
                self._fail(group, exc)
                return
            try:
                if source is None:
                    results = self._ingestor.ingest_each(items)
                    by_item = {
                        id(item): result for item, result in zip(items, results, strict=True)
                    }
                else:
                    stored = self._ingestor.ingest_each_from_log(source, items)
                    by_item = {id(item): result for item, result in stored}
            except BaseException as again:
                self._fail(group, again)
                return
        self.storage_error = None
        if self._metrics is not None:
            self._metrics.count_events(tally(by_item.values()))
        for submission in group:
            submission.done.set_result(
                [by_item[id(item)] for item in submission.items if id(item) in by_item]
            )

    def _stored_once_free(
        self, items: list[Incoming], source: LogSource | None
    ) -> dict[int, IngestResult]:
        """Each item's result, by id; a log's group (Kafka) waits for the state as long as
        another process holds it, stored once it lets go: its events are read from the log,
        and storing the group later loses nothing, where failing ended the worker (a command
        holding the state for a minute, `revalidate` say, stopped it). A stop ends the wait.
        A request's group fails at once (`state_busy`: its client may send it again).

        Likewise, a log's group waits while the state's disk is below `state.keep_free_bytes`
        (`storage_low`), looking again every `ROOM_RECHECK_SECONDS`; the worker's batch timer
        still writes meanwhile. A request's group fails at once."""
        waited = False
        while True:
            try:
                if source is None:
                    results = self._ingestor.ingest(items)
                    return {id(item): result for item, result in zip(items, results, strict=True)}
                # Events below the stored offsets are skipped: they get no result.
                stored = {
                    id(item): result
                    for item, result in self._ingestor.ingest_from_log(source, items)
                }
                if waited:
                    log.warning("the state's disk has room again: the waiting events are stored")
                return stored
            except StorageLowError as low:
                if source is None or self._stopping or self._abandoned:
                    raise
                self.storage_error = low
                if not waited:
                    log.warning(
                        "%s; the worker waits: the group is stored once there is room",
                        low.situation,
                    )
                waited = True
                self._wake.wait(ROOM_RECHECK_SECONDS)
            except StoreBusyError as busy:
                store = self._ingestor.store
                if source is None or self._stopping or self._abandoned or store.waiting_stopped:
                    raise
                self.storage_error = busy
                said = busy.situation or "another process holds the state"
                log.warning("%s; the worker waits: the group is stored once it lets go", said)

    def store_now(self, groups: Sequence[Sequence[Incoming]]) -> list[Future[list[IngestResult]]]:
        """Store `groups` in one transaction in the calling thread, as the writer thread
        stores a group (one failing event fails alone; `storage_error` follows): for a
        process that gathers its groups itself and stores through nothing else. A future
        per group, resolved before this returns."""
        group = [_Submission(items, None, Future()) for items in groups]
        for submission in group:
            submission.done.set_running_or_notify_cancel()
        if group:
            self._store(group)
        return [submission.done for submission in group]

    def _fail(self, group: list[_Submission], exc: BaseException) -> None:
        """Fail the group; a log's group also fails every later one of that log: stored, a
        later group would store offsets past this one's events, and they would never be."""
        if group[0].source is not None:
            self._failed_logs.add(group[0].source)
            if self._abandoned:
                log.warning(
                    "stopping: %d events of the log were not stored (%s); the worker reads "
                    "them again from the log at its next start",
                    sum(len(s.items) for s in group),
                    _not_stored_because(exc),
                )
        for submission in group:
            submission.done.set_exception(exc)

    def stop(self, timeout: float | None = None) -> None:
        """Store everything already submitted, then end the writer thread."""
        with self._lock:
            if not self._stopping:
                self._stopping = True
                self._wake.set()
                self._queue.put(None)
        self._thread.join(timeout)


def _not_stored_because(exc: BaseException) -> str:
    if isinstance(exc, StoreBusyError):
        return "another process holds the state"
    if isinstance(exc, StorageLowError):
        return "the state's disk is below state.keep_free_bytes"
    return "an earlier group was not stored"
