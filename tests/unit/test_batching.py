"""The batching policy (`streams/batching.py`): when a certifier is due and how files are cut.

Pure functions: counts, instants and sizes in, a reason or files out. No store, no XML.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from accrochage.models.batch import Member, PendingStats
from accrochage.streams.batching import BatchLimits, due_reason, split

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TODAY = date(2026, 12, 1)
LIMITS = BatchLimits(
    max_records=1000, max_file_bytes=10_000, max_delay=timedelta(minutes=15), margin_days=14
)


def stats(count: int = 10, waited: timedelta = timedelta(minutes=1), deadline: date | None = None):
    return PendingStats("pix", count, NOW - waited, deadline or TODAY + timedelta(days=80))


def test_a_certifier_with_few_recent_far_records_can_wait() -> None:
    assert due_reason(stats(), NOW, TODAY, LIMITS) is None


def test_enough_records_make_a_certifier_due() -> None:
    assert due_reason(stats(count=999), NOW, TODAY, LIMITS) is None
    reason = due_reason(stats(count=1000), NOW, TODAY, LIMITS)
    assert reason is not None and "max_records (1000)" in reason


def test_the_oldest_record_waiting_max_delay_makes_a_certifier_due() -> None:
    almost = stats(waited=timedelta(minutes=15) - timedelta(seconds=1))
    assert due_reason(almost, NOW, TODAY, LIMITS) is None
    reason = due_reason(stats(waited=timedelta(minutes=15)), NOW, TODAY, LIMITS)
    assert reason is not None and "max_delay" in reason


def test_a_deadline_within_the_margin_makes_a_certifier_due() -> None:
    outside = stats(deadline=TODAY + timedelta(days=15))
    assert due_reason(outside, NOW, TODAY, LIMITS) is None
    reason = due_reason(stats(deadline=TODAY + timedelta(days=14)), NOW, TODAY, LIMITS)
    assert reason is not None and "14 day(s) left" in reason
    overdue = due_reason(stats(deadline=TODAY - timedelta(days=3)), NOW, TODAY, LIMITS)
    assert overdue is not None and "-3 day(s) left" in overdue


def test_records_without_a_deadline_wait_for_size_or_age_only() -> None:
    undated = PendingStats("pix", 1, NOW, None)
    assert due_reason(undated, NOW, TODAY, LIMITS) is None


def members(count: int, code: str = "RS1", size: int = 100, start: int = 0) -> list[Member]:
    return [Member(f"R-{code}-{i:05d}", 1, code, size) for i in range(start, start + count)]


def limits(max_records: int = 1000, max_file_bytes: int = 10_000) -> BatchLimits:
    return BatchLimits(max_records, max_file_bytes, timedelta(minutes=15), 14)


def test_files_hold_at_most_max_records_in_order() -> None:
    files = split(members(25), limits(max_records=10), 0, 0)
    assert [len(f) for f in files] == [10, 10, 5]
    assert [m for f in files for m in f] == members(25)


def test_files_hold_at_most_max_file_bytes_counting_envelope_and_code_blocks() -> None:
    # envelope 1000 + one code block 500 + n * 100 <= 10,000: 85 passages a file.
    files = split(members(200), limits(), 1000, 500)
    assert [len(f) for f in files] == [85, 85, 30]
    for file in files:
        codes = {m.code for m in file}
        assert 1000 + 500 * len(codes) + sum(m.xml_bytes for m in file) <= 10_000


def test_each_code_opens_a_block_that_counts_in_the_file_size() -> None:
    mixed = members(40, "RNCP1") + members(40, "RS2")
    files = split(mixed, limits(max_file_bytes=9_000), 1000, 500)
    # 1000 + 500 + 40*100 = 5,500, then RS2 adds 500 + 100 per passage up to 9,000: 30 more.
    assert [len(f) for f in files] == [70, 10]
    assert files[0][-1].code == "RS2" and files[1][0].code == "RS2"


def test_a_passage_too_large_for_any_file_is_an_error() -> None:
    with pytest.raises(ValueError, match="exceeds max_file_bytes"):
        split([*members(2), Member("HUGE", 1, "RS1", 9_600)], limits(), 0, 500)


def test_nothing_pending_makes_no_file() -> None:
    assert split([], LIMITS, 1000, 500) == []
