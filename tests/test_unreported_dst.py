"""`alerts.unreported_after` counts elapsed time from the file's `written_at` (CONTRACT §10),
across a change of summer time too.

A Paris wall clock minus 10 days is 10 days ± 1 hour of elapsed time, and `written_at` was
compared with it as text whose offsets differ (+01:00 and +02:00): the alert fired an hour
early in spring and an hour late in autumn.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from accrochage.models.deadline import PARIS, FixedClock
from accrochage.streams.watch import Watch
from tests.test_tracker import event, ingest, make_core


def unreported_at(tmp_path: Path, written: datetime, seen: datetime) -> int:
    clock = FixedClock(written)
    core, _ = make_core(tmp_path, clock)
    try:
        delivered = (written - timedelta(days=3)).date().isoformat()
        ingest(core, event("DST-1", delivered_on=delivered))
        assert core.flusher.flush(force=True).written
        clock.current = seen
        watch = Watch(
            core.store,
            clock,
            margin_days=14,
            certifiers=["pix"],
            unreported_after=timedelta(days=10),
        )
        return sum(watch.observe().unreported.values())
    finally:
        core.close()


SPRING = datetime(2024, 3, 25, 10, 0, tzinfo=PARIS)  # +01:00; summer time from 31 March
AUTUMN = datetime(2024, 10, 20, 10, 0, tzinfo=PARIS)  # +02:00; winter time from 27 October


@pytest.mark.parametrize(
    ("written", "elapsed", "late"),
    [
        (SPRING, timedelta(days=10) - timedelta(minutes=30), 0),
        (SPRING, timedelta(days=10) + timedelta(minutes=30), 1),
        (AUTUMN, timedelta(days=10) - timedelta(minutes=30), 0),
        (AUTUMN, timedelta(days=10) + timedelta(minutes=30), 1),
    ],
    ids=["spring-before", "spring-after", "autumn-before", "autumn-after"],
)
def test_a_file_is_unreported_after_ten_days_of_elapsed_time(
    tmp_path: Path, written: datetime, elapsed: timedelta, late: int
) -> None:
    seen = datetime.fromtimestamp(written.timestamp() + elapsed.total_seconds(), PARIS)
    assert seen.utcoffset() != written.utcoffset(), "the window must cross the change"
    assert unreported_at(tmp_path, written, seen) == late


def test_batches_are_listed_newest_first_across_the_autumn_change(tmp_path: Path) -> None:
    """Cut at 02:55+02:00 then, 15 minutes later, at 02:10+01:00: the stamps as text put the
    older first ("newest first" on `batches`, and the files to deposit on `/ui`)."""
    first = datetime(2026, 10, 25, 2, 55, tzinfo=PARIS).replace(fold=0)
    clock = FixedClock(first)
    core, _ = make_core(tmp_path, clock)
    try:
        ingest(core, event("DST-A", delivered_on="2026-10-20"))
        (older,) = core.flusher.flush(force=True).written
        clock.current = datetime.fromtimestamp(first.timestamp() + 15 * 60, PARIS)
        assert clock.current.utcoffset() != first.utcoffset()
        ingest(core, event("DST-B", delivered_on="2026-10-20"))
        (newer,) = core.flusher.flush(force=True).written
        with core.store.reading() as reader:
            listed = [b["batch_id"] for b in reader.batches()]
            assert listed == [newer.batch_id, older.batch_id]
            (page,) = reader.batches(limit=1)
            after = reader.batches(after=(page["created_at"], page["batch_id"]))
            assert [b["batch_id"] for b in after] == [older.batch_id], "pages follow"
    finally:
        core.close()
