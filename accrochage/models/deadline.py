"""The legal deadline: delivery + 3 calendar months (Code du travail R6113-17-2).

A day that does not exist in the target month falls back to that month's last day
(31 Jan -> 30 Apr), as `dateutil.relativedelta` does (a test checks every day of several
years against it). The deadline day is still on time.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
LEGAL_MONTHS = 3
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2200, 12, 31)
"""The days a question may be asked as of (`as_of`, a request's `received_on`): far enough
for any real use, near enough that a deadline or a `due_within` window from them stays a
date (Python's end at 9999-12-31)."""
MAX_DUE_WITHIN = 100_000
"""The widest `due_within` window, in days."""


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware datetime."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(PARIS)


@dataclass
class FixedClock:
    """A clock tests (and `--as-of`) can set and move."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current = self.current + delta


def paris_day(moment: datetime) -> date:
    """The day it is in Paris at `moment`: the day deadlines count in."""
    return moment.astimezone(PARIS).date()


def paris_today(clock: Clock) -> date:
    return paris_day(clock.now())


def add_months(day: date, months: int) -> date:
    """`day` + `months` calendar months, clamped to the target month's last day.

    On every event's path: plain integer arithmetic, several times cheaper than
    `relativedelta`, which it equals; every month has a 28th, so only the days after it
    look up the target month's length.
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    if day.day <= 28:
        return date(year, month, day.day)
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def deadline_for(delivered_on: date) -> date:
    return add_months(delivered_on, LEGAL_MONTHS)


def days_left(deadline: date, today: date) -> int:
    return (deadline - today).days


class Urgency(StrEnum):
    ON_TIME = "on_time"
    AT_RISK = "at_risk"
    OVERDUE = "overdue"


def urgency(deadline: date, today: date, margin_days: int) -> Urgency:
    left = days_left(deadline, today)
    if left < 0:
        return Urgency.OVERDUE
    if left <= margin_days:
        return Urgency.AT_RISK
    return Urgency.ON_TIME
