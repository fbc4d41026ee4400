"""A stored record checked again (against newer reference data): what changes, if anything."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from accrochage.models.problems import Problem
from accrochage.models.record import IN_A_BATCH, Change, HistoryEntry, Record
from accrochage.models.record_deadline import delivery_deadline
from accrochage.models.vocabulary import Outcome, RecordStatus

REVALIDATED = frozenset({RecordStatus.PENDING, RecordStatus.INVALID})
"""Records not yet in a batch: the others' content is frozen in a file (their stored
correction, not sent yet, is checked: `apply_correction_revalidated`)."""


def apply_revalidated(
    current: Record,
    errors: list[Problem],
    warnings: list[Problem],
    now: datetime,
    reason: str,
    delivered_on: date | None,
    xml_bytes: int | None,
) -> Change:
    """The same content, found with other errors or warnings: invalid <-> pending moves. Its
    delivery date follows what is read now: a date refused as in the future is the
    certification's once that day has come, and gives the record its deadline then.
    `xml_bytes`: its passage's size when valid (an invalid record has none: the batch cut
    needs one)."""
    if current.status not in REVALIDATED:
        return Change(Outcome.UNCHANGED)
    if (
        tuple(errors) == current.errors
        and tuple(warnings) == current.warnings
        and delivered_on == current.delivered_on
    ):
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
        delivered_on=delivered_on,
        deadline=delivery_deadline(current, delivered_on),
        xml_bytes=current.xml_bytes if current.xml_bytes is not None else xml_bytes,
    )
    history = None
    if status is not current.status:
        history = HistoryEntry(current.record_id, now, current.status, status, reason)
    return Change(Outcome.UPDATED if history is None else Outcome.MOVED, record, None, history)


def correction_to_check(current: Record) -> bool:
    """A stored correction not sent yet (neither its SUPPRESSION nor its CREATION is cut),
    of a record not revoked (a revocation goes out instead of any correction)."""
    return (
        current.correction_version is not None
        and current.status in IN_A_BATCH
        and not current.revocation_pending
        and not current.suppression_awaited
    )


def apply_correction_revalidated(
    current: Record, errors: list[Problem], now: datetime, reason: str
) -> Change:
    """A stored correction checked again: valid now, it goes out (through a SUPPRESSION where
    the CDC holds the record); found with errors, it waits, and they say what to fix."""
    valid = not errors
    found = (valid, tuple(errors))
    if not correction_to_check(current) or found == (
        current.correction_valid,
        current.correction_errors,
    ):
        return Change(Outcome.UNCHANGED)
    record = replace(
        current, correction_valid=valid, correction_errors=tuple(errors), updated_at=now
    )
    if valid == current.correction_valid:
        return Change(Outcome.UPDATED, record)
    said = "valid now: it is sent" if valid else "it has errors now: it waits for a valid one"
    history = HistoryEntry(
        current.record_id,
        now,
        current.status,
        current.status,
        f"{reason}: the stored correction is {said}",
    )
    return Change(Outcome.MOVED, record, None, history)
