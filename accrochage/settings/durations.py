"""Durations in the configuration ("30s", "15m", "2h", "14d"), each kind with its own bounds."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd])\s*")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


MAX_DURATION = timedelta(days=3650)
"""No duration setting makes sense beyond this; larger ones are refused before any arithmetic."""


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value))
        if match is None:
            raise ValueError(f"expected a duration such as 30s, 15m, 2h or 14d, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 <= seconds <= MAX_DURATION.total_seconds():
        raise ValueError(f"expected a duration between 0s and {show(MAX_DURATION)}, got {value!r}")
    return timedelta(seconds=seconds)


def show(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def within(low: timedelta, high: timedelta, why: str) -> AfterValidator:
    def check(value: timedelta) -> timedelta:
        if not low <= value <= high:
            raise ValueError(
                f"must be between {show(low)} and {show(high)} ({why}), got {show(value)}"
            )
        return value

    return AfterValidator(check)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Tick = Annotated[
    Duration,
    within(timedelta(seconds=1), timedelta(hours=1), "the services' timer"),
]
MaxDelay = Annotated[
    Duration,
    within(
        timedelta(seconds=1),
        timedelta(days=60),
        "how long a pending record may wait for a batch; the CDC deadline is 3 months",
    ),
]
DeadlineMargin = Annotated[
    Duration,
    within(
        timedelta(0),
        timedelta(days=60),
        "records this close to their 3-month deadline are sent at once",
    ),
]
BodyTimeout = Annotated[
    Duration,
    within(
        timedelta(seconds=1),
        timedelta(hours=1),
        "how long a request's body may take to arrive once its headers have",
    ),
]
SessionTimeout = Annotated[
    Duration,
    within(timedelta(seconds=1), timedelta(minutes=30), "Kafka's accepted range"),
]


LockWait = Annotated[
    Duration,
    within(
        timedelta(seconds=1),
        timedelta(hours=1),
        "how long a write waits for another process's writer before giving up",
    ),
]
ForgetAfter = Annotated[
    Duration,
    within(
        timedelta(days=1),
        MAX_DURATION,
        "how long a dismissed unusable event's raw input is kept",
    ),
]
