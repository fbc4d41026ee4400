"""What a query asks, independent of any store: the outstanding query and its paging cursor."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from accrochage.errors import BadParameter
from accrochage.models.vocabulary import RecordStatus

OUTSTANDING_FIELDS = (
    "certifier",
    "record_id",
    "status",
    "delivered_on",
    "deadline",
    "days_left",
    "batch_id",
    "errors",
    "warnings",
    "correction_pending",
    "correction_errors",
    "revocation_pending",
    "cdc_message",
    "cdc_reason",
    "suppression_rejected",
    "identity_procedure",
    "correction_request",
    "cdc_held_as",
)


@dataclass(frozen=True, slots=True)
class OutstandingQuery:
    as_of: date
    certifier: str | None = None
    statuses: tuple[RecordStatus | str, ...] = ()
    due_within: int | None = None
    overdue: bool = False
    limit: int | None = None
    cursor: str | None = None
    reason: str | None = None
    """Only records whose last CDC message is of this class (`CdcReason`)."""
    deadline_unknown: bool = False
    """Only outstanding records whose deadline is due but unknown (their delivery date cannot
    be read): those the summary, the metrics and the alert count at risk without a day."""
    only_outstanding: bool = True
    """False: records of any status (`accrochage records`); due_within and overdue still
    keep outstanding records only."""

    def __post_init__(self) -> None:
        if self.deadline_unknown and (self.overdue or self.due_within is not None):
            raise BadParameter(
                "deadline_unknown lists the records whose deadline cannot be read: it cannot "
                "be combined with overdue or due_within, which compare a deadline (ask for "
                "each apart)"
            )


def encode_cursor(deadline: str | None, record_id: str) -> str:
    return _encoded(_RECORDS, deadline, record_id)


def decode_cursor(cursor: str) -> tuple[str | None, str]:
    """The (deadline, record_id) a page of records ended at; anything else is a BadParameter."""
    deadline, record_id = _decoded(cursor, _RECORDS, (_day_or_none, _text))
    return (None if deadline is None else str(deadline)), str(record_id)


BatchKey = tuple[str, str]
"""Where a page of batches ended: the last one's (created_at, batch_id)."""
RequestKey = tuple[bool, str, str]
"""Where a page of correction requests ended: the last one's (closed, deadline, request_id)."""

_RECORDS = "records"
_BATCHES = "batches"
_UNUSABLE = "unusable"
_REQUESTS = "correction-requests"


def batch_cursor(created_at: str, batch_id: str) -> str:
    return _encoded(_BATCHES, created_at, batch_id)


def batch_after(cursor: str) -> BatchKey:
    created_at, batch_id = _decoded(cursor, _BATCHES, (_moment, _text))
    return str(created_at), str(batch_id)


def unusable_cursor(unusable_id: int) -> str:
    return _encoded(_UNUSABLE, unusable_id)


def unusable_before(cursor: str) -> int:
    (unusable_id,) = _decoded(cursor, _UNUSABLE, (_row_id,))
    return cast(int, unusable_id)


def request_cursor(closed: bool, deadline: str, request_id: str) -> str:
    return _encoded(_REQUESTS, closed, deadline, request_id)


def request_after(cursor: str) -> RequestKey:
    closed, deadline, request_id = _decoded(cursor, _REQUESTS, (_flag, _day, _text))
    return bool(closed), str(deadline), str(request_id)


Key = str | int | bool | None


def _encoded(route: str, *key: Key) -> str:
    """An opaque cursor naming its route, so that one route's cursor is refused by another."""
    return base64.urlsafe_b64encode(json.dumps([route, *key]).encode()).decode()


def _decoded(cursor: str, route: str, checks: tuple[Callable[[Any], bool], ...]) -> list[Key]:
    """The key `cursor` holds, each part passing its check: a cursor altered into another
    shape (a date SQLite would compare as text, an object, an id below every row) would give
    a page that is empty or skips rows as if it were the right one."""
    try:
        found = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        if not isinstance(found, list) or len(found) != len(checks) + 1 or found[0] != route:
            raise ValueError(route)
        if not all(check(value) for value, check in zip(found[1:], checks, strict=True)):
            raise ValueError(route)
        return list(found[1:])
    except (ValueError, TypeError, UnicodeError):
        raise BadParameter(
            f"invalid cursor for {route}: pass the next_cursor of a previous page of this "
            "route unchanged"
        ) from None


def _text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 255


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _row_id(value: Any) -> bool:
    return type(value) is int and value > 0


def _day(value: Any) -> bool:
    """A day as the state writes it (YYYY-MM-DD), not another form `fromisoformat` takes."""
    return _text(value) and _DAY.fullmatch(value) is not None and _parses(date, value)


def _day_or_none(value: Any) -> bool:
    return value is None or _day(value)


def _moment(value: Any) -> bool:
    return _text(value) and _MOMENT.match(value) is not None and _parses(datetime, value)


def _parses(kind: type[date], value: str) -> bool:
    try:
        kind.fromisoformat(value)
    except ValueError:
        return False
    return True


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
