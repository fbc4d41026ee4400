"""The writer in a process of its own, for the HTTP service: requests gathered into groups.

One interpreter lock per process: with the writer service as a thread of the serving process,
HTTP, decoding and storing all ran on one core. Here the serving process parses requests and
decodes their events (`api/writing.py`), and a writer process stores them: its writer service
(`streams/writer.py`, group commit) runs there, and its transactions take the store's write
lock as every writer does.

The link is a Unix socket pair, read and written by the event loop's own callbacks
(`api/frames.py`: no thread, no hand-off per request). Requests that arrive while the writer
works on earlier ones are sent together as one group (at most `in_flight` groups are with the
writer at a time): concurrent single-event requests share one message and one transaction.
Each request's future resolves with its own results once the writer answered its group, which
it does only after the group's transaction committed.

Senders take turns (`api/turns.py`; the groups' pieces, framing and answers are in
`api/link_groups.py`): a group holds each waiting sender's oldest request in turn, at most
`GROUP_EVENTS` events, and an array longer than that is sent in pieces, so a platform's
flood of arrays keeps another's single event waiting for two groups at most, not for the
flood. A request answered with an error (503, 507) may then have some of its pieces
stored: sent again, those are answered `unchanged`.

A writer process that ends fails every request waiting for it and every later one with
`WriterUnavailable` (503), and `GET /health` says so: never a hang.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from accrochage.api.frames import FrameSocket
from accrochage.api.link_groups import (
    GROUP_EVENTS,
    Waiting,
    answer,
    events_of,
    fail,
    framed,
    pieces,
)
from accrochage.api.turns import SenderQueues
from accrochage.api.writer_child import STARTED_NOT, WriterBuild, serve_writer
from accrochage.api.writing import WriterFailed
from accrochage.errors import (
    AccrochageError,
    StorageCorruptError,
    StorageFullError,
    StorageLowError,
    StoreBusyError,
    StoreError,
    WriterUnavailable,
    rebuilt,
)
from accrochage.models.decode import parse_payload
from accrochage.processes import ExitWatch, exit_said, helper_context
from accrochage.streams.child_logs import parent_log_setup
from accrochage.streams.incoming import Incoming, IngestResult
from accrochage.streams.metrics import Metrics

log = logging.getLogger("accrochage.writer")
IN_FLIGHT = 2
"""Groups with the writer at a time: requests that arrive while it stores one are gathered
here into the next. Two: the next group waits in the writer's socket while it commits (one
wake-up and round trip less per transaction): single-event requests/s +3 % (4,765 against
4,624, medians of 4 paired runs of 20,000) and +1.5 % with the batch timer cutting and
writing meanwhile (3 pairs of 60,000, each won), for ~3 % more CPU an event (smaller
transactions); three gain nothing more. Against 16, where the writer gathers them itself,
fewer messages and wake-ups won: 2,770 against 1,890 in one paired run."""
STOP_SECONDS = 120
_STORE_ERRORS: dict[str, type[StoreError]] = {
    cls.code: cls
    for cls in (
        StoreError,
        StorageFullError,
        StorageLowError,
        StorageCorruptError,
        StoreBusyError,
    )
}

NOT_STORED_AT_STOP = (
    "the service stopped before the writer process stored the event: it was not "
    "acknowledged and may not be stored; send it again once the service is restarted"
)


class ProcessLink:
    """The serving process's end of a writer process (an `EventWriter`)."""

    decodes_here = True

    def __init__(
        self, build: WriterBuild, *, in_flight: int = IN_FLIGHT, metrics: Metrics | None = None
    ) -> None:
        """`build` (picklable) runs in the writer process and gives its writer service;
        `metrics` counts the events of each group it stored."""
        self._build = build
        self._metrics = metrics
        self._in_flight = max(1, in_flight)
        self._process: Any = None
        self._exit: ExitWatch | None = None
        self._link: FrameSocket | None = None
        self._ready: asyncio.Future[None] | None = None
        self._pending: SenderQueues[Waiting] = SenderQueues()
        self._sent: deque[list[Waiting]] = deque()
        self._flush_soon = False
        self._closing = False
        self._gone = asyncio.Event()
        self._idle = asyncio.Event()
        self._dead: WriterUnavailable | None = None
        self.storage_error: StoreError | None = None
        self.on_dead: Callable[[], None] | None = None
        """Called (in the event loop) once the writer process ended while it served: `run`
        stops then, so that its supervisor (systemd's `Restart=on-failure`) starts it again;
        left running, it answered 503 to every event until someone noticed."""

    async def start(self) -> None:
        """Start the writer process; returns once it is ready to store."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        context = helper_context()
        self._process = context.Process(
            target=serve_writer,
            args=(self._build, os.getpid(), theirs, parent_log_setup()),
            name="accrochage-writer",
            daemon=True,
        )
        self._ready = asyncio.get_running_loop().create_future()
        self._link = FrameSocket(ours, self._received, self._lost)
        watch = self._exit = ExitWatch(self._process)
        try:
            await asyncio.to_thread(self._process.start)
        finally:
            theirs.close()  # the writer process holds its own: its end closes when it ends
        try:
            await self._ready
        except WriterUnavailable:
            await asyncio.to_thread(watch.join, 5)
            raise WriterUnavailable(
                f"the writer process did not start ({exit_said(watch.exitcode)}); see the log above"
            ) from None
        except StoreError:  # it could not open the state (busy, damaged): it says why
            await asyncio.to_thread(watch.join, 5)
            raise

    def store(self, items: list[Incoming], sender: str = "") -> asyncio.Future[list[IngestResult]]:
        """Each event's result, once stored; `sender` names whose turn the request waits for."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[IngestResult]] = loop.create_future()
        if self._dead is not None:
            done.set_exception(self._dead)
        elif self._closing:
            done.set_exception(WriterUnavailable("the service is stopping: events not stored"))
        else:
            for item in items:
                if item.decoded is None and isinstance(item.raw, dict):
                    parse_payload(item.raw)  # a decimal score keeps its digits on the way
            for piece in pieces(items, done):
                self._pending.put(sender, piece)
            if not self._flush_soon:
                self._flush_soon = True
                loop.call_soon(self._flush)
        return done

    def _flush(self) -> None:
        """Send what is waiting as groups, until `in_flight` groups are out."""
        self._flush_soon = False
        while self._pending and len(self._sent) < self._in_flight and self._dead is None:
            data, group = framed(self._pending.take(events_of, GROUP_EVENTS))
            if not group:
                continue
            self._sent.append(group)
            assert self._link is not None
            self._link.send_frame(data)

    def _received(self, message: Any) -> None:
        """The writer's answer to the oldest group sent (answers come in the order sent)."""
        if self._ready is not None and not self._ready.done():
            if isinstance(message, tuple) and message[:1] == (STARTED_NOT,):
                _, code, text = message
                self._ready.set_exception(rebuilt(code, text))
            else:
                self._ready.set_result(None)  # its first message: "ready"
            return
        ok, payload, storage, counts, times = message
        group = self._sent.popleft()
        self.storage_error = _store_error(storage)
        if self._metrics is not None:  # a group not stored counts no event ({})
            self._metrics.count_write_times("writer", times)
            self._metrics.count_events(counts)
        if ok:
            answer(group, payload)
        else:
            fail(group, _error(payload))
        self._flush()
        if not self._sent and not self._pending:
            self._idle.set()

    def _lost(self, exc: BaseException | None) -> None:
        """The socket closed: the writer process ended (or is ending after the end)."""
        self._gone.set()
        self._idle.set()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(WriterUnavailable("the writer process did not start"))
            return
        if self._closing and not self._sent and not self._pending:
            return
        kind = "end of stream" if exc is None else type(exc).__name__
        log.error("the writer process ended (%s): events are answered 503 until a restart", kind)
        self._dead = WriterUnavailable(
            "the writer process ended: the event was not acknowledged and may not be stored; "
            "send it again once the service is restarted"
        )
        self.storage_error = None
        self._fail_waiting(self._dead)
        asyncio.get_running_loop().run_in_executor(None, self._log_exit)
        if self.on_dead is not None:
            self.on_dead()

    def _log_exit(self) -> None:
        if self._exit is not None:
            self._exit.join(5)
            log.error("the writer process ended: %s", exit_said(self._exit.exitcode))

    @property
    def unavailable(self) -> WriterUnavailable | None:
        """The service's fault as its operator reads it (`/health`, the dashboard's banner).
        An event's answer tells its platform to send it again once the service restarted:
        what the operator needs is to restart it, and where to read why it stopped."""
        if self._dead is None:
            return None
        code = None if self._exit is None else self._exit.exitcode
        ended = "the writer process ended" + ("" if code is None else f" ({exit_said(code)})")
        return WriterUnavailable(
            f"{ended}: nothing can be stored, and POST /events answers 503 until the service "
            "restarts. The service log says why it ended (the lines before 'the writer "
            "process ended'); once that is mended (a full disk, a killed process), restart "
            "the service: platforms then send their events again"
        )

    async def close(self) -> None:
        """Store what was submitted, then end the writer process."""
        self._closing = True
        if self._link is None:
            return
        finished = False
        try:
            if self._sent or self._pending:
                self._idle.clear()
                await asyncio.wait_for(self._idle.wait(), STOP_SECONDS)
            if self._dead is None:
                self._link.send(None)
                await asyncio.wait_for(self._gone.wait(), STOP_SECONDS)
            finished = True
        except TimeoutError:
            log.error("the writer process did not finish in time; ending it")
        finally:
            # Ended in every case (a timeout, a cancelled stop): a writer process left alive
            # (it ignores SIGTERM) kept the service from exiting, multiprocessing waiting
            # for it at exit.
            self._link.close()
            await asyncio.to_thread(self._stop_process, STOP_SECONDS if finished else 0)
            self._fail_waiting(WriterUnavailable(NOT_STORED_AT_STOP))

    def _fail_waiting(self, exc: WriterUnavailable) -> None:
        for group in (*self._sent, list(self._pending)):
            fail(group, exc)
        self._sent.clear()
        self._pending.clear()

    def _stop_process(self, patience: float) -> None:
        assert self._exit is not None
        self._exit.join(patience)
        if self._exit.is_alive():
            log.error("the writer process did not stop in time; ending it")
            self._process.kill()
            self._exit.join()


def _store_error(storage: tuple[str, str] | None) -> StoreError | None:
    return None if storage is None else _rebuilt(*storage)


def _rebuilt(code: str, message: str) -> StoreError:
    """A storage error of the writer process, as its class (by code) in this process."""
    return _STORE_ERRORS.get(code, StoreError)(message)


def _error(payload: tuple[str, str, bool]) -> AccrochageError:
    """The error a failed group is answered with: a storage error as itself, anything else
    as an internal error (its class is in the writer process's log, never its message)."""
    code, message, is_store = payload
    if is_store:
        return _rebuilt(code, message)
    return WriterFailed("the events could not be stored; see the service log")
