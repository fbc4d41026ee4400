"""What the operator does to a record by hand: retry a rejection (or a record its report left
out), exclude, include, reinstate a revoked one."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from accrochage.models.decode import Decoded
from accrochage.models.problems import Problem
from accrochage.models.record import EXCLUDABLE, Change, HistoryEntry, Record, Status, moved
from accrochage.models.record_deadline import delivery_deadline
from accrochage.models.revocation import waiting_for_nothing, withdrawn
from accrochage.models.vocabulary import Outcome
from accrochage.models.withdrawal import by_support_only, with_correction

UNREPORTED = frozenset({Status.BATCHED, Status.DEPOSITED})
"""Where a record stays when its batch's processed report does not mention it."""


def left_out_by(record: Record, batch_id: str | None) -> bool:
    """Whether `record` waits in batch `batch_id` (whose processed report is imported) for an
    answer that report did not give: a CREATION's member still batched or deposited, or an
    accepted record whose SUPPRESSION that batch carried (it stays accepted, its SUPPRESSION
    neither accepted nor refused)."""
    if batch_id is None or record.batch_id != batch_id:
        return False
    if record.status in UNREPORTED:
        return True
    return record.suppression_awaited


SUPPRESSION_LEFT_OUT = (
    "SUPPRESSION sent again by the operator: its batch's report did not mention it"
)


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
    if current.held_elsewhere and (current.correction_version or current.revocation_pending):
        return _refused(by_support_only(current))
    if current.status is not Status.REJECTED:
        return _refused(
            f"record {current.record_id} is {current.status}: only rejected records "
            "(and those a processed report left out) can be retried; a corrected "
            "event re-queues the others",
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
        return _refused(
            f"record {current.record_id} is {current.status}: only invalid, pending and "
            "rejected records can be excluded (the CDC may hold the others)",
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
    """The operator puts an excluded record back: it gets the status of its current content.
    One in the obligation already is left as it is (the command run twice, as `exclude`); a
    withdrawn one is refused: it left by a revocation, which `reinstate` undoes."""
    if current.status is Status.WITHDRAWN:
        return _refused(
            f"record {current.record_id} is withdrawn (revoked), not excluded: "
            f"`accrochage reinstate {current.record_id} --reason TEXT` undoes a revocation",
        )
    if current.status is not Status.EXCLUDED:
        return Change(Outcome.UNCHANGED)
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


def apply_reinstate(current: Record, reason: str, now: datetime) -> Change:
    """The operator undoes a revocation its exam platform sent by mistake. A withdrawn record
    gets the status of its content back: pending, it goes to the CDC at the next cut (as a new
    passage, the CDC having deleted it if it held it), its stored correction dropped with the
    revocation. A record flagged `revocation_pending` loses the flag, unless its SUPPRESSION
    is in flight: the CDC's answer to that file comes first (`Operations.reinstate`
    supersedes one never deposited before this)."""
    why = f"reinstated by the operator: {reason}"
    if current.status is Status.WITHDRAWN:
        after = Status.INVALID if current.errors else Status.PENDING
        record = replace(
            current,
            status=after,
            pending_since=now if after is Status.PENDING else None,
            batch_id=None,
            accepted_batch_id=None,
            deadline=delivery_deadline(current, current.delivered_on),
            updated_at=now,
        )
        return moved(current, record, now, why)
    if not current.revocation_pending:
        return _refused(
            f"record {current.record_id} is {current.status} and not revoked: there is no "
            "revocation to undo",
        )
    if current.suppression_awaited:
        return _refused(
            f"record {current.record_id}'s SUPPRESSION is in batch {current.batch_id}: import "
            "that file's report first; once the CDC has deleted it, reinstate sends it again",
        )
    return moved(current, _revocation_dropped(current, now), now, why)


def _revocation_dropped(current: Record, now: datetime) -> Record:
    """`current` without its revocation flag. An accepted record left with nothing to send
    (no stored correction) waits for nothing any more, as when its correction is taken back."""
    record = replace(current, revocation_pending=False, updated_at=now)
    if record.status is not Status.ACCEPTED or record.correction_version is not None:
        return record
    return replace(
        waiting_for_nothing(record),
        cdc_message=None if record.suppression_rejected else record.cdc_message,
        cdc_reason=None if record.suppression_rejected else record.cdc_reason,
    )


def apply_support_applied(
    current: Record, note: str, now: datetime, correction: tuple[Decoded, int | None] | None
) -> Change:
    """The CDC's support applied by hand the correction or withdrawal an accepted record waits
    to send (schema 1.1.2 has no SUPPRESSION: SPEC §8): a revoked record is withdrawn, a
    corrected one is accepted with its correction as its content (`correction`, decoded
    again), the content the CDC now holds. Nothing is owed for it any more."""
    waiting = current.revocation_pending or current.correction_version is not None
    if current.status is not Status.ACCEPTED or not waiting:
        return _refused(
            f"record {current.record_id} is {current.status} and waits for no correction or "
            "withdrawal at the CDC: only an accepted record flagged correction_pending or "
            "revocation_pending can have been settled by the CDC's support",
        )
    if current.suppression_awaited:
        return _refused(
            f"record {current.record_id} has its SUPPRESSION in batch {current.batch_id}: "
            "import that file's report, or wait for it",
        )
    why = f"applied by the CDC's support: {note}"
    if current.revocation_pending:
        record = replace(withdrawn(current, now), suppression_rejected=False)
        return moved(current, record, now, f"withdrawn, {why}")
    if correction is None or not correction[0].valid:
        return _refused(
            f"record {current.record_id}'s stored correction has errors: the CDC cannot hold "
            "it; send a valid corrected event first",
        )
    decoded, size = correction
    record = replace(
        with_correction(current, decoded, size, now),
        status=Status.ACCEPTED,
        batch_id=current.accepted_batch_id,
        accepted_batch_id=current.accepted_batch_id,
        pending_since=None,
        deadline=None,
        cdc_message=None,
        cdc_reason=None,
        suppression_rejected=False,
    )
    return moved(current, record, now, f"correction {why}")


def _refused(message: str) -> Change:
    return Change(Outcome.REFUSED, errors=[Problem("record_id", message)])
