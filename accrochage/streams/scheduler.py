"""One scheduler of periodic jobs for both runtimes: the batch cut today; alerts, metrics and
report polling later.

Each job ticks on the wall clock in a loop of its own, so a slow job delays only itself. A
plain function runs in a thread of the job's own (never on the event loop); a coroutine
function runs on the loop. A job that raises is logged and runs again at its next tick.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import cast

from accrochage.errors import StorageCorruptError, StorageFullError, StoreBusyError
from accrochage.helper_main import HelperDied
from accrochage.models.deadline import Clock, paris_today
from accrochage.streams.failed_retries import FIRST_WAIT, LONGEST_WAIT
from accrochage.streams.flush import Flusher
from accrochage.streams.flush_report import FlushReport, superseded_why

log = logging.getLogger("accrochage.scheduler")


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every: float | Callable[[], float]
    """Seconds between the end of one run and the start of the next (or what gives them,
    asked after each run)."""
    run: Callable[[], None] | Callable[[], Awaitable[None]]
    stop: Callable[[], None] | None = None
    """Asks a run in progress to end early when the scheduler stops (the batch cut after the
    batch it is cutting, the alert delivery after its request); without it, the run in
    progress finishes."""


class OnceADay:
    """A job's `run` that does its `work` at its first call of each Paris day (the first
    time at start), however often the scheduler calls it."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._done_on: date | None = None

    def run(self) -> None:
        today = paris_today(self._clock)
        if today == self._done_on:
            return
        self.work()
        self._done_on = today

    def work(self) -> None:
        raise NotImplementedError


def log_failed(logger: logging.Logger, what: str, exc: Exception, again: str) -> None:
    """A periodic piece of work that failed and runs again: a state another process writes,
    a full disk, a damaged state or a helper process ended under it (a SIGTERM sent to the
    whole process group, the OOM killer) in one line (no fault of the code's: a traceback
    says nothing more), anything else with its traceback."""
    if isinstance(exc, StoreBusyError):
        logger.warning("%s waits: %s; %s", what, exc.situation or str(exc), again)
    elif isinstance(exc, StorageFullError | StorageCorruptError | HelperDied):  # no trace
        logger.error("%s failed: %s; %s", what, exc, again)
    else:
        logger.error("%s failed; %s", what, again, exc_info=exc)


class Scheduler:
    def __init__(self, jobs: list[Job] | None = None) -> None:
        self.jobs: list[Job] = list(jobs or [])
        self._tasks: list[asyncio.Task[None]] = []
        self._threads: list[ThreadPoolExecutor] = []

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def start(self) -> None:
        """Start every job's loop on the running event loop."""
        loop = asyncio.get_running_loop()
        for job in self.jobs:
            self._tasks.append(loop.create_task(self._loop(job), name=f"job-{job.name}"))

    async def _loop(self, job: Job) -> None:
        thread: ThreadPoolExecutor | None = None
        if not inspect.iscoroutinefunction(job.run):
            thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=job.name)
            self._threads.append(thread)
        loop = asyncio.get_running_loop()
        while True:
            try:
                if thread is None:
                    await job.run()  # type: ignore[misc]
                else:
                    await loop.run_in_executor(thread, _run_logged, job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _failed(job, exc)
            await asyncio.sleep(job.every() if callable(job.every) else job.every)

    async def stop(self) -> None:
        """Cancel the loops; a job running in its thread finishes its run first (sooner if
        the job says how to stop it)."""
        for job in self.jobs:
            if job.stop is not None:
                job.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for thread in self._threads:  # waited for off the loop: signals, /health still served
            await asyncio.to_thread(thread.shutdown, wait=True)
        self._threads.clear()


def _failed(job: Job, exc: Exception) -> None:
    log_failed(log, f"job {job.name}", exc, "it runs again at its next tick")


def _run_logged(job: Job) -> None:
    """A job's run in its thread, a failure logged there: a stop cancels the loop awaiting
    it, and a run that failed after (a batch cut whose render process a SIGTERM sent to the
    whole process group ended, systemd's default stop) was said nowhere."""
    try:
        cast(Callable[[], None], job.run)()
    except Exception as exc:
        _failed(job, exc)


class Said:
    """What a periodic job says once while it lasts: a failure or a note that comes back at
    every tick (a file that cannot be written, an outbox another process set) is logged when
    it appears, and again only after it went away; not 17,000 lines a day."""

    def __init__(self) -> None:
        self._last: set[str] = set()

    def new(self, lines: list[str]) -> list[str]:
        now = set(lines)
        fresh = [line for line in dict.fromkeys(lines) if line not in self._last]
        self._last = now
        return fresh


def batch_cut_job(flusher: Flusher, every: float) -> Job:
    """Cut due batches and write them; log each file written, and each failure and note of
    the flusher's (the repair pass's included) once while it lasts."""
    failures, notes = Said(), Said()
    stopping = threading.Event()

    def run() -> None:
        report = FlushReport()
        try:
            report = flusher.flush(report=report, stopping=stopping)
        finally:  # a flush that failed midway (its render process ended) wrote files too
            for batch_id in report.superseded:
                log.warning("superseded %s: %s", batch_id, superseded_why(report, batch_id))
            for written in report.written:
                log.info("wrote %s (%d passages)", written.path.name, written.passages)
        failed = [f"batch {f.batch_id}: {f.error}" for f in report.failed]
        # Those held back between two tries still fail: not said again at the next try.
        failed += [f"batch {b}: {error}" for b, error in flusher.retries.held().items()]
        for line in failures.new(failed):
            log.error(
                "%s (said once while it lasts; tried again by itself after %.0f s, then up to "
                "every %.0f s, and at once by `accrochage flush`; `accrochage batches` lists it)",
                line,
                FIRST_WAIT,
                LONGEST_WAIT,
            )
        for line in notes.new(report.notes):
            log.warning("%s", line)

    return Job("batch-cut", every, run, stop=stopping.set)
