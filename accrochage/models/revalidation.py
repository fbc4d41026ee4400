"""A stored record checked again (against newer reference data): what changes, if anything."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from accrochage.models.problems import Problem
from accrochage.models.record import Change, HistoryEntry, Outcome, Record
from accrochage.models.vocabulary import RecordStatus

REVALIDATED = frozenset({RecordStatus.PENDING, RecordStatus.INVALID})
"""Only records not yet in a batch: the others' content is frozen in a file."""


def apply_revalidated(
    current: Record,
    errors: list[Problem],
    warnings: list[Problem],
    now: datetime,
    reason: str,
) -> Change:
    """The same content, found with other errors or warnings: invalid <-> pending moves."""
    if current.status not in REVALIDATED:
        return Change(Outcome.UNCHANGED)
    if tuple(errors) == current.errors and tuple(warnings) == current.warnings:
        return Change(Outcome.UNCHANGED)
    status = RecordStatus.INVALID if errors else RecordStatus.PENDING
    if status is current.status:
        pending_since = current.pending_since
    else:
        pending_since = now if status is RecordStatus.PENDING else None
    record = replace(
        current,
        status=status,
        errors=tuple(errors),
        warnings=tuple(warnings),
        pending_since=pending_since,
        updated_at=now,
        ever_valid=current.ever_valid or not errors,
    )
    history = None
    if status is not current.status:
        history = HistoryEntry(current.record_id, now, current.status, status, reason)
    return Change(Outcome.UPDATED if history is None else Outcome.MOVED, record, None, history)
