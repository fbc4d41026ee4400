"""The service's batch timer says a lasting failure or note once while it lasts.

A batch file that cannot be written again (an outbox gone read-only), or an outbox another
process set, came back at every tick: an ERROR line per batch every 5 seconds, 17,000 a day,
and the flusher's notes (files moved back, `outbox_mismatch`) were never logged at all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from accrochage.errors import StorageFullError
from accrochage.helper_main import HelperDied
from accrochage.streams.failed_retries import FailedRetries
from accrochage.streams.flush import Flusher
from accrochage.streams.flush_report import FailedBatch, FlushReport, WrittenBatch
from accrochage.streams.scheduler import Job, Scheduler, batch_cut_job, log_failed

FAILED = FailedBatch("b-1", "pix", "PermissionError: [Errno 13] Permission denied: '/srv/o'")
NOTE = "a file is recorded outside this process's paths.outbox: moved and written nothing"


class Ticks:
    """A flusher whose runs report what each tick of a test says."""

    def __init__(self, runs: list[FlushReport]) -> None:
        self.runs = runs
        self.retries = FailedRetries()

    def flush(
        self, *, report: FlushReport | None = None, stopping: threading.Event | None = None
    ) -> FlushReport:
        return self.runs.pop(0)


def report(*, failed: bool = False, note: bool = False, wrote: str | None = None) -> FlushReport:
    done = FlushReport()
    if failed:
        done.failed.append(FAILED)
    if note:
        done.notes.append(NOTE)
    if wrote:
        done.written.append(WrittenBatch("b-2", "pix", Path(wrote), 3, 100, "0" * 64))
    return done


def test_a_failure_and_a_note_are_said_once_while_they_last(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = [
        report(failed=True, note=True),
        report(failed=True, note=True),
        report(failed=True, note=True, wrote="/o/f1.xml"),
        report(),
        report(failed=True),
    ]
    job = batch_cut_job(cast(Flusher, Ticks(runs)), 1.0)
    run: Any = job.run
    with caplog.at_level(logging.INFO, logger="accrochage.scheduler"):
        for _ in range(5):
            run()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    errors = [m for level, m in lines if level == "ERROR"]
    assert len(errors) == 2, lines  # at the first tick, and when it came back at the last
    assert errors[0].startswith("batch b-1: PermissionError") and "accrochage batches" in errors[0]
    assert "tried again by itself after 60 s, then up to every 900 s" in errors[0]
    assert [m for level, m in lines if level == "WARNING"] == [NOTE]
    assert [m for level, m in lines if level == "INFO"] == ["wrote f1.xml (3 passages)"]


def test_a_superseded_file_is_logged_with_why_and_not_to_upload_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The service moved a file the operator may be about to upload, and said nothing."""
    done = FlushReport(superseded=["b-3", "b-4"])
    done.header_changed["b-4"] = "idContrat MCFCER000209 -> MCFCER000777"
    job = batch_cut_job(cast(Flusher, Ticks([done])), 1.0)
    run: Any = job.run
    with caplog.at_level(logging.INFO, logger="accrochage.scheduler"):
        run()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 2, warned
    assert warned[0].startswith("superseded b-3: a record changed before its file was deposited")
    assert warned[1].startswith(
        "superseded b-4: its header is not the configuration's any more "
        "(idContrat MCFCER000209 -> MCFCER000777)"
    )
    assert all("do not upload it" in line for line in warned)


def test_a_full_disk_at_every_tick_is_one_line_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("accrochage.test")
    with caplog.at_level(logging.ERROR, logger="accrochage.test"):
        log_failed(logger, "batch-cut", StorageFullError("the disk is full"), "again in 5 s")
        log_failed(logger, "batch-cut", RuntimeError("a bug"), "again in 5 s")
    full, bug = caplog.records
    assert full.getMessage() == "batch-cut failed: the disk is full; again in 5 s"
    assert full.exc_info is None, "the same traceback at every tick says nothing more"
    assert bug.exc_info is not None, "a bug keeps its traceback"


def test_a_failed_batch_held_back_between_two_tries_is_not_said_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A batch that fails for what it holds is tried again minutes later: the ticks between
    report nothing of it, and the next try's failure was said again as new."""
    now = [0.0]
    ticks = Ticks([report(failed=True), report(), report(failed=True), report()])
    ticks.retries = FailedRetries(seconds=lambda: now[0])
    job = batch_cut_job(cast(Flusher, ticks), 1.0)
    run: Any = job.run
    with caplog.at_level(logging.ERROR, logger="accrochage.scheduler"):
        ticks.retries.failed(FAILED.batch_id, FAILED.error)
        run()  # tried, failed
        run()  # held back
        now[0] += 60
        ticks.retries.failed(FAILED.batch_id, FAILED.error)
        run()  # tried again, failed again
        ticks.retries.written(FAILED.batch_id)
        run()  # written meanwhile: gone
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1


class EndedMidway:
    """A flusher whose render process ends after the first file (a SIGTERM sent to the whole
    process group, systemd's default stop, ends render processes at once)."""

    retries = FailedRetries()

    def flush(
        self, *, report: FlushReport | None = None, stopping: threading.Event | None = None
    ) -> FlushReport:
        assert report is not None
        report.written.append(WrittenBatch("b-2", "pix", Path("/o/f1.xml"), 3, 100, "0" * 64))
        raise HelperDied("a helper process ended before answering")


def test_the_files_a_batch_cut_wrote_before_it_failed_are_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """They are written and recorded: an operator reading the log missed them."""
    run: Any = batch_cut_job(cast(Flusher, EndedMidway()), 1.0).run
    with caplog.at_level(logging.INFO, logger="accrochage.scheduler"), pytest.raises(HelperDied):
        run()
    assert [r.getMessage() for r in caplog.records] == ["wrote f1.xml (3 passages)"]


async def test_a_job_that_fails_while_the_scheduler_stops_is_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stop cancels the loop that awaits a job's thread: a batch cut that failed then (its
    render process ended by the same SIGTERM as the service) left no line at all."""
    running, stop = threading.Event(), threading.Event()

    def run() -> None:
        running.set()
        stop.wait(60)
        raise HelperDied("a helper process ended before answering")

    scheduler = Scheduler([Job("batch-cut", 60.0, run, stop=stop.set)])
    with caplog.at_level(logging.ERROR, logger="accrochage.scheduler"):
        scheduler.start()
        assert await asyncio.to_thread(running.wait, 60)
        await scheduler.stop()
    (said,) = caplog.records
    assert said.getMessage() == (
        "job batch-cut failed: a helper process ended before answering; it runs again at its "
        "next tick"
    )
    assert said.exc_info is None, "a process ended under it is no fault of the code's"
