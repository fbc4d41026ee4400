"""What a query asks, independent of any store: the outstanding query and its paging cursor."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date

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


def encode_cursor(deadline: str | None, record_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([deadline, record_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str | None, str]:
    """The (deadline, record_id) a page ended at; anything else is a BadParameter."""
    try:
        deadline, record_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        if deadline is not None:
            date.fromisoformat(deadline)
        if not isinstance(record_id, str) or not 0 < len(record_id) <= 255:
            raise ValueError(record_id)
        return deadline, record_id
    except (ValueError, TypeError, UnicodeError):
        raise BadParameter(
            "invalid cursor: pass the next_cursor of a previous page unchanged"
        ) from None


BatchKey = tuple[str, str]
"""Where a page of batches ended: the last one's (created_at, batch_id)."""
RequestKey = tuple[bool, str, str]
"""Where a page of correction requests ended: the last one's (closed, deadline, request_id)."""

_BATCHES = "batches"
_UNUSABLE = "unusable"
_REQUESTS = "correction-requests"


def batch_cursor(created_at: str, batch_id: str) -> str:
    return _encoded(_BATCHES, created_at, batch_id)


def batch_after(cursor: str) -> BatchKey:
    created_at, batch_id = _decoded(cursor, _BATCHES, (str, str))
    return str(created_at), str(batch_id)


def unusable_cursor(unusable_id: int) -> str:
    return _encoded(_UNUSABLE, unusable_id)


def unusable_before(cursor: str) -> int:
    (unusable_id,) = _decoded(cursor, _UNUSABLE, (int,))
    return int(unusable_id)


def request_cursor(closed: bool, deadline: str, request_id: str) -> str:
    return _encoded(_REQUESTS, closed, deadline, request_id)


def request_after(cursor: str) -> RequestKey:
    closed, deadline, request_id = _decoded(cursor, _REQUESTS, (bool, str, str))
    return bool(closed), str(deadline), str(request_id)


def _encoded(route: str, *key: str | int | bool) -> str:
    """An opaque cursor naming its route, so that one route's cursor is refused by another."""
    return base64.urlsafe_b64encode(json.dumps([route, *key]).encode()).decode()


def _decoded(cursor: str, route: str, types: tuple[type, ...]) -> list[str | int | bool]:
    try:
        found = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        if not isinstance(found, list) or len(found) != len(types) + 1 or found[0] != route:
            raise ValueError(route)
        for value, kind in zip(found[1:], types, strict=True):
            if type(value) is not kind or (isinstance(value, str) and not 0 < len(value) <= 255):
                raise ValueError(route)
        return found[1:]
    except (ValueError, TypeError, UnicodeError):
        raise BadParameter(
            f"invalid cursor for {route}: pass the next_cursor of a previous page of this "
            "route unchanged"
        ) from None
