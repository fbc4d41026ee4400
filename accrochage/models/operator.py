"""What the operator does to a record by hand: retry a rejection (or a record its report left
out), exclude, include."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from accrochage.models.decode import Decoded
from accrochage.models.lifecycle import withdrawn
from accrochage.models.problems import Problem
from accrochage.models.record import (
    EXCLUDABLE,
    Change,
    HistoryEntry,
    Outcome,
    Record,
    Status,
    moved,
)
from accrochage.models.withdrawal import with_correction

UNREPORTED = frozenset({Status.BATCHED, Status.DEPOSITED})
"""Where a record stays when its batch's processed report does not mention it."""


def apply_resend(
    current: Record, now: datetime, correction: tuple[Decoded, int | None] | None
) -> Change:
    """The operator sends again a record its batch's processed report left out (it stays
    `batched` or `deposited` until then): pending, with its stored correction as its content
    when one waits (`correction`, decoded again); withdrawn if it was revoked."""
    if current.revocation_pending:  # never acknowledged by the CDC, and revoked
        return moved(
            current,
            withdrawn(current, now),
            now,
            "withdrawn by the operator: revoked, and its batch's report did not mention it",
        )
    reason = "sent again by the operator: its batch's report did not mention it"
    if correction is not None:
        decoded, size = correction
        return moved(current, with_correction(current, decoded, size, now), now, reason)
    record = replace(
        current, status=Status.PENDING, pending_since=now, batch_id=None, updated_at=now
    )
    return moved(current, record, now, reason)


def apply_retry(current: Record, now: datetime) -> Change:
    """The operator re-queues a rejected record without new content."""
    if current.status is not Status.REJECTED:
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"record {current.record_id} is {current.status}: only rejected records "
                    "(and those a processed report left out) can be retried; a corrected "
                    "event re-queues the others",
                )
            ],
        )
    return Change(
        Outcome.MOVED,
        replace(current, status=Status.PENDING, pending_since=now, batch_id=None, updated_at=now),
        None,
        HistoryEntry(
            current.record_id, now, Status.REJECTED, Status.PENDING, "retried by the operator"
        ),
    )


def apply_exclude(current: Record, reason: str, now: datetime) -> Change:
    """The operator takes a record out of the obligation (an invalid, pending or rejected one)."""
    if current.status is Status.EXCLUDED:
        return Change(Outcome.UNCHANGED)
    if current.status not in EXCLUDABLE:
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"record {current.record_id} is {current.status}: only invalid, pending and "
                    "rejected records can be excluded (the CDC may hold the others)",
                )
            ],
        )
    return Change(
        Outcome.MOVED,
        replace(
            current,
            status=Status.EXCLUDED,
            excluded_from=current.status,
            pending_since=None,
            updated_at=now,
        ),
        None,
        HistoryEntry(
            current.record_id, now, current.status, Status.EXCLUDED, f"excluded: {reason}"
        ),
    )


def apply_include(current: Record, now: datetime) -> Change:
    """The operator puts an excluded record back: it gets the status of its current content."""
    if current.status is not Status.EXCLUDED:
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"record {current.record_id} is {current.status}, not excluded",
                )
            ],
        )
    after = current.excluded_from or Status.PENDING
    return Change(
        Outcome.MOVED,
        replace(
            current,
            status=after,
            excluded_from=None,
            pending_since=now if after is Status.PENDING else None,
            updated_at=now,
        ),
        None,
        HistoryEntry(current.record_id, now, Status.EXCLUDED, after, "included again"),
    )
