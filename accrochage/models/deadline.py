"""The legal deadline: delivery + 3 calendar months (Code du travail R6113-17-2).

A day that does not exist in the target month falls back to that month's last day
(31 Jan -> 30 Apr), which is what `relativedelta` does. The deadline day is still on time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

PARIS = ZoneInfo("Europe/Paris")
LEGAL_DELAY = relativedelta(months=3)


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


def paris_today(clock: Clock) -> date:
    return clock.now().astimezone(PARIS).date()


def deadline_for(delivered_on: date) -> date:
    result: date = delivered_on + LEGAL_DELAY
    return result


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
