"""Query parameters read strictly: ASCII digits, real dates within bounds, known words.

Python's `str.isdigit` accepts `²` and `date.fromisoformat` accepts year 9999, whose day after
overflows: every parameter is checked here, and a bad one is a 400 naming it.
"""

from __future__ import annotations

import re
from datetime import date

from aiohttp import web

from accrochage.api.errors import ApiError
from accrochage.errors import BadParameter
from accrochage.models.deadline import FIRST_DAY, LAST_DAY
from accrochage.settings.api import checked_sender

PAGE = 100
"""Rows a listing route answers when no `limit` is given."""
MAX_PAGE = 1000
"""The most rows a listing route answers at once; `next_cursor` gives the next page."""
_DIGITS = re.compile(r"[0-9]{1,9}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TRUE = {"1", "true", "yes"}
_FALSE = {"", "0", "false", "no"}


def one(request: web.Request, name: str) -> str | None:
    """The value of a parameter given once; given twice, which one was meant is unknown (a
    listing answered for the first certifier named looks like the answer for both)."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ApiError(400, "bad_parameter", f"{name} is given {len(values)} times: give it once")
    return values[0] if values else None


def bad(name: str, value: str, expected: str) -> ApiError:
    return ApiError(400, "bad_parameter", f"{name} must be {expected}", {name: value[:100]})


def integer(
    request: web.Request, name: str, default: int | None, high: int, low: int = 0
) -> int | None:
    value = one(request, name)
    if value is None or value == "":
        return default
    if not _DIGITS.fullmatch(value) or not low <= int(value) <= high:
        raise bad(name, value, f"an integer within {low}–{high} (ASCII digits)")
    return int(value)


def day(request: web.Request, name: str, default: date) -> date:
    value = one(request, name)
    if not value:
        return default
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        parsed = date.fromisoformat(value)
    except ValueError:
        raise bad(name, value, "a date YYYY-MM-DD") from None
    if not FIRST_DAY <= parsed <= LAST_DAY:
        raise bad(name, value, f"a date from {FIRST_DAY} to {LAST_DAY}")
    return parsed


def flag(request: web.Request, name: str) -> bool:
    value = (one(request, name) or "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise bad(name, value, "true or false")


def word(request: web.Request, name: str, allowed: list[str]) -> str | None:
    value = one(request, name) or None
    if value is not None and value not in allowed:
        raise ApiError(
            400, "bad_parameter", f"unknown {name} {value[:100]!r}", {"allowed": allowed}
        )
    return value


def key(request: web.Request, name: str) -> str | None:
    """A free identifier (certifier key, cursor): bounded, printable, never echoed whole."""
    value = one(request, name) or None
    if value is not None and (len(value) > 512 or not value.isprintable()):
        raise bad(name, value, "printable and at most 512 characters")
    return value


def sender(request: web.Request) -> str | None:
    """`sender`: an HTTP sender as the service's log names it (`settings/api.py`)."""
    value = one(request, "sender") or None
    if value is None:
        return None
    try:
        return checked_sender(value)
    except BadParameter as exc:
        raise bad("sender", value, str(exc).removeprefix("a sender is ")) from None


def page_size(request: web.Request) -> int:
    """`limit`: the rows of one page of a listing route, 1 to `MAX_PAGE`, `PAGE` if not given."""
    return integer(request, "limit", PAGE, MAX_PAGE, low=1) or PAGE
