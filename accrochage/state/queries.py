"""What a query asks, independent of any store: the outstanding query and its paging cursor."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from accrochage.errors import BadParameter
from accrochage.models.vocabulary import RecordOrder, RecordStatus

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
    order: RecordOrder = RecordOrder.DEADLINE

    def __post_init__(self) -> None:
        if self.deadline_unknown and (self.overdue or self.due_within is not None):
            raise BadParameter(
                "deadline_unknown lists the records whose deadline cannot be read: it cannot "
                "be combined with overdue or due_within, which compare a deadline (ask for "
                "each apart)"
            )


RecordKey = tuple[bool, str, str] | tuple[str]
"""Where a record sorts in a listing: (no deadline, deadline, record id) in deadline order,
(record id,) in record id order."""


def record_key(order: RecordOrder) -> Callable[[Mapping[str, Any]], RecordKey]:
    """The sort key of a listed row (its `deadline` as shown) in `order`."""
    if order is RecordOrder.RECORD_ID:
        return lambda row: (str(row["record_id"]),)
    return lambda row: (row["deadline"] is None, row["deadline"] or "", str(row["record_id"]))


def records_cursor(row: Mapping[str, Any], order: RecordOrder) -> str:
    """The cursor of the page after the one ending at `row`."""
    if order is RecordOrder.RECORD_ID:
        return _encoded(_RECORDS_BY_ID, row["record_id"])
    return _encoded(_RECORDS, row["deadline"], row["record_id"])


def records_after(cursor: str, order: RecordOrder) -> RecordKey:
    """The key a page of records ended at; anything else is a BadParameter, and so is a
    cursor of the other order (its key would start the page at a wrong place)."""
    try:
        return _records_key(cursor, order)
    except BadParameter:
        other = next(o for o in RecordOrder if o is not order)
        try:
            _records_key(cursor, other)
        except BadParameter:
            raise BadParameter(
                "invalid cursor for records: pass the next_cursor of a previous page of this "
                "route unchanged"
            ) from None
        raise BadParameter(
            f"invalid cursor for records: it comes from a page in order={other.value}; ask "
            f"for the next page with order={other.value}, as its page was asked"
        ) from None


def _records_key(cursor: str, order: RecordOrder) -> RecordKey:
    if order is RecordOrder.RECORD_ID:
        (record_id,) = _decoded(cursor, _RECORDS_BY_ID, (_text,))
        return (str(record_id),)
    deadline, record_id = _decoded(cursor, _RECORDS, (_day_or_none, _text))
    return deadline is None, str(deadline or ""), str(record_id)


BatchKey = tuple[str, str]
"""Where a page of batches ended: the last one's (created_at, batch_id)."""
RequestKey = tuple[bool, str, str]
"""Where a page of correction requests ended: the last one's (closed, deadline, request_id)."""

_RECORDS = "records"
_RECORDS_BY_ID = "records-by-id"
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


@dataclass(frozen=True, slots=True)
class ChangesRead:
    """A page of the records' changes (`Reader.changes`)."""

    changes: list[dict[str, Any]]
    end: int
    """The change to read after next time: the last one given, or as far as the scan went."""
    more: bool
    """Whether changes were stored after `end` already."""
    last: int
    """The last change stored (0: none yet)."""
    epoch: str
    """The name of the state's numbering of changes: a restore gives it another."""
