"""A record's life in its batch: cut, its file deposited, the CDC's report on it.

Pure, as `lifecycle.py` beside it (before the record is sent) and `withdrawal.py` (taking
back what the CDC holds): the store reads the records, a function here says what changes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from accrochage.models.cdc import classify
from accrochage.models.record import (
    AWAITING_REPORT,
    IDENTITY_REASONS,
    Change,
    HistoryEntry,
    MembersMoved,
    Record,
    Status,
)
from accrochage.models.revocation import awaiting_withdrawal, without_correction
from accrochage.models.vocabulary import Outcome


def cut_move(now: datetime, reason: str, batch_id: str) -> MembersMoved:
    """The history of the pending records taken into a batch, one entry each (the store moves
    members in bulk)."""
    return MembersMoved(batch_id, now, Status.PENDING, Status.BATCHED, f"batch cut: {reason}")


def apply_deposited(current: Record, batch_id: str, now: datetime) -> Change:
    """The file of the record's batch was uploaded: batched -> deposited."""
    if current.batch_id != batch_id or current.status is not Status.BATCHED:
        return Change(Outcome.UNCHANGED)
    return Change(
        Outcome.MOVED,
        replace(current, status=Status.DEPOSITED, updated_at=now),
        None,
        HistoryEntry(
            current.record_id,
            now,
            Status.BATCHED,
            Status.DEPOSITED,
            "file deposited on the CDC portal",
            batch_id,
        ),
    )


def suppression_deposited(current: Record, batch_id: str, now: datetime) -> Change:
    """The SUPPRESSION file carrying the record was uploaded: its status stays (the CDC still
    holds it until the report), and its history says when the file went, as a CREATION's
    deposit does: the record's evidence tells when its withdrawal or correction was sent."""
    if current.batch_id != batch_id:
        return Change(Outcome.UNCHANGED)
    entry = HistoryEntry(
        current.record_id,
        now,
        current.status,
        current.status,
        "SUPPRESSION file deposited on the CDC portal",
        batch_id,
    )
    return Change(Outcome.UNCHANGED, history=entry)


ACCEPTED_BY_THE_CDC = "accepted by the CDC"


def accepted_plain(batch_id: str, now: datetime, label: str, waiting: Status) -> MembersMoved:
    """`apply_report` (then `accepted_as`) for every record of the reported batch `batch_id`,
    in status `waiting`, that the report accepts in its PassagesOK and that waits for nothing
    else (no correction stored, not revoked): accepted, its message, class and other
    idTechnique cleared, its delivery met, as one move the store makes in one statement. A
    report accepting 100,000 passages held the write lock about 8 s, one record at a time in
    Python."""
    return MembersMoved(batch_id, now, waiting, Status.ACCEPTED, ACCEPTED_BY_THE_CDC, label)


def accepted_as(current: Record, after: Record, held_as: str | None) -> Record:
    """`after`, what a CREATION's report (or a report applied by id) made of `current`, with
    the idTechnique the CDC said it holds the certification under (`held_under`, None when it
    named none or the record's own) when that report is what accepted it: set, or an earlier
    one cleared (a passage accepted under its own id). A record the report left accepted as it
    was keeps its own; a SUPPRESSION's refusal marks it itself (`apply_suppression_report`)."""
    newly = after.status is Status.ACCEPTED and (
        current.status is not Status.ACCEPTED
        or after.accepted_batch_id != current.accepted_batch_id
    )
    return replace(after, cdc_held_as=held_as) if newly else after


def apply_report(
    current: Record,
    *,
    accepted: bool,
    message: str | None,
    report_batch: str | None,
    now: datetime,
    label: str,
    whole_file: bool = False,
) -> Change:
    """One outcome of a CDC processing report for one record.

    A report on an older batch says nothing of a record that has moved on (re-queued, sent
    again in another batch); a record not awaiting a report keeps its status.
    """
    target = Status.ACCEPTED if accepted else Status.REJECTED
    if report_batch is not None and current.batch_id != report_batch:
        return Change(Outcome.UNCHANGED)
    waiting = AWAITING_REPORT if whole_file else AWAITING_REPORT | {Status.REJECTED}
    if current.status is target or current.status not in waiting:
        return Change(Outcome.UNCHANGED)
    after, revocation = target, current.revocation_pending
    reason = ACCEPTED_BY_THE_CDC if accepted else f"rejected by the CDC: {message}"
    withdrawn = not accepted and revocation
    if withdrawn:
        # Revoked while in flight and never accepted: the CDC holds nothing to delete, and a
        # correction stored meanwhile has nothing left to correct.
        after, revocation = Status.WITHDRAWN, False
        reason += "; it had been revoked, so it is withdrawn"
    cdc_reason = classify(message, whole_file=whole_file) if message or whole_file else None
    identity = not accepted and cdc_reason in IDENTITY_REASONS
    record = replace(
        current if not withdrawn else without_correction(current),
        status=after,
        cdc_message=message,
        cdc_reason=cdc_reason,
        revocation_pending=revocation,
        accepted_batch_id=current.batch_id if accepted else current.accepted_batch_id,
        identity_rejections=current.identity_rejections + int(identity),
        delivery_met=current.delivery_met or accepted,
        pending_since=None,
        updated_at=now,
    )
    if record.identity_procedure and identity:
        reason += (
            f"; rejected {record.identity_rejections} times for identity: gather the "
            "evidence (accrochage evidence) for the CDC's identity procedure"
        )
    return Change(
        Outcome.MOVED,
        awaiting_withdrawal(record, now),
        None,
        HistoryEntry(
            current.record_id, now, current.status, after, reason, current.batch_id, label
        ),
    )
