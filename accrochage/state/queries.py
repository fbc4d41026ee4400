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
