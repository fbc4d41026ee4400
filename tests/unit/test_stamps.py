"""`stamp` keeps the text of the moment it stamped last (rows.py): a cache that must never
give one moment's text to another, even an equal one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from accrochage.models.deadline import PARIS
from accrochage.state.sqlite.rows import stamp


def test_equal_instants_keep_their_own_offsets() -> None:
    paris = datetime(2026, 3, 29, 3, 30, tzinfo=PARIS)
    utc = paris.astimezone(UTC)
    plus_one = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    assert paris == utc
    assert stamp(paris) == "2026-03-29T03:30:00+02:00"
    assert stamp(utc) == "2026-03-29T01:30:00+00:00"
    assert stamp(paris) == "2026-03-29T03:30:00+02:00"
    assert stamp(plus_one) == "2026-01-01T12:00:00+01:00"
    assert stamp(plus_one.astimezone(UTC)) == "2026-01-01T11:00:00+00:00"


def test_each_moment_is_stamped_as_isoformat_to_the_second() -> None:
    start = datetime(2026, 10, 25, 0, 0, 0, 999_999, tzinfo=PARIS)
    for minutes in range(0, 6 * 60, 7):
        moment = start + timedelta(minutes=minutes)
        assert stamp(moment) == moment.isoformat(timespec="seconds")
        assert stamp(moment) == moment.isoformat(timespec="seconds")
