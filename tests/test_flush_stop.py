"""A service that stops (SIGTERM) while its batch cut works through a backlog ends after the
batch being cut: what was cut is written whole, the rest stays pending for the next start,
and nothing is lost or sent twice."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import Core
from accrochage.models.batch import FrozenBatch
from accrochage.streams.scheduler import batch_cut_job
from tests.test_metrics import scrape
from tests.test_tracker import event, ingest, make_core, outstanding, passages

RECORDS = 10
PER_FILE = 2


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built, _ = make_core(tmp_path, batching={"max_records": PER_FILE, "max_delay": "1h"})
    ingest(built, *(event(f"FS-{n}") for n in range(RECORDS)))
    yield built
    built.close()


class StopAfterFirstBatch:
    """The outbox, but the stop comes while the first batch is written."""

    def __init__(self, sink: Any, stopping: threading.Event) -> None:
        self.sink = sink
        self.stopping = stopping

    def write_many(self, batches: Iterable[FrozenBatch], *, passages: int) -> Any:
        def first_then_stop() -> Iterator[FrozenBatch]:
            for batch in batches:
                yield batch
                self.stopping.set()

        return self.sink.write_many(first_then_stop(), passages=passages)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)


def sent(paths: Iterable[Path]) -> list[str]:
    return sorted(rid for path in paths for rid in passages(path))


def test_a_stop_ends_the_cut_after_the_batch_being_cut(core: Core) -> None:
    stopping = threading.Event()
    outbox = core.flusher.sink
    core.flusher.sink = StopAfterFirstBatch(outbox, stopping)
    core.metrics.flushed(datetime.fromtimestamp(0, UTC))
    stopped = core.flusher.flush(stopping=stopping)
    core.flusher.sink = outbox
    last = scrape(core.metrics)["accrochage_last_flush_timestamp_seconds"][0][1]
    assert last == 0, "a flush cut short is not one that ran to its end"

    assert [len(passages(w.path)) for w in stopped.written] == [PER_FILE]
    assert len(stopped.cut) == 1, "nothing cut after the stop"
    waiting = [r for r in outstanding(core) if r["status"] == "pending"]
    assert len(waiting) == RECORDS - PER_FILE

    after = core.flusher.flush()
    assert len(after.written) == (RECORDS - PER_FILE) // PER_FILE
    assert sent(w.path for w in [*stopped.written, *after.written]) == sorted(
        f"FS-{n}" for n in range(RECORDS)
    ), "every record in exactly one file"


def test_the_scheduler_stop_reaches_the_cut_and_stays_with_the_job(core: Core) -> None:
    job = batch_cut_job(core.flusher, 1.0)
    assert job.stop is not None
    job.stop()
    job.run()  # type: ignore[call-arg]
    assert {r["status"] for r in outstanding(core)} == {"pending"}, "a stopped job cuts nothing"

    report = core.flusher.flush()
    assert len(report.written) == RECORDS // PER_FILE, "the flusher itself is not stopped"
