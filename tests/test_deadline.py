"""The legal deadline: delivery + 3 calendar months, clamped to the month's last day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta

from accrochage.models.deadline import (
    FixedClock,
    SystemClock,
    Urgency,
    add_months,
    days_left,
    deadline_for,
    paris_today,
    urgency,
)

TABLE = [
    ("2026-01-31", "2026-04-30"),
    ("2024-11-30", "2025-02-28"),
    ("2023-11-30", "2024-02-29"),
    ("2026-03-31", "2026-06-30"),
    ("2026-08-15", "2026-11-15"),
    ("2026-05-31", "2026-08-31"),
    ("2025-12-31", "2026-03-31"),
    ("2025-11-29", "2026-02-28"),
    ("2027-11-29", "2028-02-29"),
    ("2026-02-28", "2026-05-28"),
    ("2026-10-01", "2027-01-01"),
    ("2026-12-31", "2027-03-31"),
]


@pytest.mark.parametrize(("delivered", "deadline"), TABLE)
def test_deadline_table(delivered: str, deadline: str) -> None:
    assert deadline_for(date.fromisoformat(delivered)) == date.fromisoformat(deadline)


def test_deadline_is_never_before_delivery_and_at_most_92_days_later() -> None:
    day = date(2024, 1, 1)
    while day < date(2028, 1, 1):
        due = deadline_for(day)
        assert 89 <= (due - day).days <= 92, day
        # Three calendar months: same day of month, or that month's last day.
        assert (due.month - day.month) % 12 == 3
        assert due.day == day.day or (due + timedelta(days=1)).month != due.month
        day += timedelta(days=1)


def test_the_deadline_day_itself_is_on_time_and_the_next_day_overdue() -> None:
    due = deadline_for(date(2026, 1, 31))
    assert days_left(due, due) == 0
    assert urgency(due, due, 14) is Urgency.AT_RISK
    after = due + timedelta(days=1)
    assert days_left(due, after) == -1
    assert urgency(due, after, 14) is Urgency.OVERDUE
    assert urgency(due, due + timedelta(days=40), 14) is Urgency.OVERDUE


@pytest.mark.parametrize("margin", [0, 1, 14, 30])
def test_margin_boundary(margin: int) -> None:
    due = date(2026, 6, 30)
    assert urgency(due, due - timedelta(days=margin), margin) is Urgency.AT_RISK
    assert urgency(due, due - timedelta(days=margin + 1), margin) is Urgency.ON_TIME
    assert days_left(due, due - timedelta(days=margin)) == margin


def test_days_left_counts_calendar_days() -> None:
    assert days_left(date(2026, 4, 30), date(2026, 1, 31)) == 89
    assert days_left(date(2024, 2, 29), date(2023, 11, 30)) == 91


@pytest.mark.parametrize(
    ("utc", "paris"),
    [
        ("2026-03-28T23:30:00+00:00", "2026-03-29"),  # UTC+1 before the spring change
        ("2026-03-28T22:59:59+00:00", "2026-03-28"),
        ("2026-10-24T22:30:00+00:00", "2026-10-25"),  # UTC+2 before the autumn change
        ("2026-10-24T21:59:59+00:00", "2026-10-24"),
        ("2026-07-14T21:59:59+00:00", "2026-07-14"),
        ("2026-07-14T22:00:00+00:00", "2026-07-15"),
        ("2026-12-31T23:00:00+00:00", "2027-01-01"),
        ("2026-01-01T00:30:00+05:00", "2025-12-31"),  # any offset, converted to Paris
    ],
)
def test_paris_today(utc: str, paris: str) -> None:
    clock = FixedClock(datetime.fromisoformat(utc))
    assert paris_today(clock) == date.fromisoformat(paris)


def test_fixed_clock_moves() -> None:
    clock = FixedClock(datetime(2026, 3, 28, 22, 0, tzinfo=UTC))
    assert paris_today(clock) == date(2026, 3, 28)
    clock.advance(timedelta(hours=1))
    assert paris_today(clock) == date(2026, 3, 29)


def test_system_clock_is_aware() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None and now.utcoffset() is not None
    assert abs(paris_today(SystemClock()) - now.date()) <= timedelta(days=1)


def test_month_arithmetic_equals_relativedelta_on_every_day() -> None:
    """The hot path's own arithmetic against `dateutil` (which it replaced), day by day over
    years with leap days and century rules, for every shift the product could use."""
    day = date(1899, 1, 1)
    while day < date(2102, 1, 1):
        for months in (1, 2, 3, 6, 11, 12, 13, 25):
            assert add_months(day, months) == day + relativedelta(months=months), (day, months)
        day += timedelta(days=1)
