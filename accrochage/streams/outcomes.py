"""One CDC outcome (a passage OK or KO, or a whole file refused) for one record.

The report's batch decides what the outcome means: a SUPPRESSION's acceptance withdraws what
the CDC holds; a CREATION's acceptance makes the record `accepted` — or, when it reports on an
earlier batch than the record's current one, says the CDC holds *that* batch's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accrochage.models.batch import BatchInfo
from accrochage.models.batch_life import accepted_as, apply_report
from accrochage.models.corrections import RequestClosure
from accrochage.models.record import Change, Record, Status
from accrochage.models.suppression_report import (
    apply_earlier_suppression,
    apply_suppression_report,
    wants_suppression,
)
from accrochage.models.vocabulary import SUPERSEDABLE, CdcAction, Outcome
from accrochage.models.withdrawal import (
    Sending,
    apply_held_elsewhere,
    apply_rejected_with_correction,
)
from accrochage.sinks.profiles import profile_for
from accrochage.state.base import Transaction
from accrochage.streams.redecode import Decodes


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the CDC said of one passage."""

    accepted: bool
    message: str | None
    already_known: bool = False
    whole_file: bool = False
    held_as: str | None = None
    """The other idTechnique the message says the CDC holds the certification under
    (`held_under`)."""


@dataclass(slots=True)
class OutcomeContext:
    tx: Transaction
    batch: BatchInfo | None
    now: datetime
    label: str
    decode: Decodes

    @property
    def batch_id(self) -> str | None:
        return self.batch.batch_id if self.batch is not None else None

    @property
    def suppression(self) -> bool:
        """Whether the reported batch is a SUPPRESSION (a report applied by id answers what
        each record waited for)."""
        return self.batch is not None and self.batch.action is CdcAction.SUPPRESSION

    def closes_requests(self, record: Record) -> bool:
        """Only a version with SUPPRESSION files (1.1.5) can correct data after acceptance,
        so only there does an acceptance answer a correction request (under 1.1.2 the
        operator closes them). A report applied by idTechnique answers the batch the record
        was in."""
        batch = self.batch
        if batch is None and record.batch_id is not None:
            batch = self.tx.batch(record.batch_id)
        return _corrects(batch)

    @property
    def answers_requests(self) -> bool:
        """`closes_requests` for any record of the reported batch."""
        return _corrects(self.batch)


def _corrects(batch: BatchInfo | None) -> bool:
    """Whether `batch` was cut in a version that corrects data after acceptance."""
    return batch is not None and profile_for(batch.schema_version).action is not None


def is_acceptance(ctx: OutcomeContext, verdict: Verdict) -> bool:
    """Whether the CDC did what the batch asked: "existe déjà" accepts a CREATION (the CDC
    holds the passage) and never a SUPPRESSION (it still holds it; CONTRACT §9)."""
    return verdict.accepted and not (ctx.suppression and verdict.already_known)


def apply_verdict(ctx: OutcomeContext, record: Record, verdict: Verdict) -> Change:
    if ctx.suppression:
        return _suppression(ctx, record, verdict)
    change = _creation(ctx, record, verdict)
    if change.record is not None:
        change.record = accepted_as(record, change.record, verdict.held_as)
    return change


def _creation(ctx: OutcomeContext, record: Record, verdict: Verdict) -> Change:
    if ctx.batch is not None and record.batch_id != ctx.batch.batch_id:
        return _earlier_batch(ctx, record, verdict)
    if verdict.already_known:
        held = _held_before(ctx, record)
        if held is not None:
            reason = (
                "the CDC answered 'existe déjà' for a content that differs from the one an "
                f"earlier batch sent ({held.batch_id}): it holds that one, so the newer content "
                "is a correction to send through a SUPPRESSION"
            )
            return apply_held_elsewhere(record, held, ctx.now, reason, ctx.label)
    change = apply_report(
        record,
        accepted=verdict.accepted,
        message=verdict.message,
        report_batch=ctx.batch_id,
        now=ctx.now,
        label=ctx.label,
        whole_file=verdict.whole_file,
    )
    after = change.record
    if after is not None and after.status is Status.REJECTED and after.correction_version:
        promoted = apply_rejected_with_correction(
            after, ctx.decode(ctx.tx, after.record_id, after.correction_version), ctx.now
        )
        assert promoted.record is not None and promoted.history is not None
        change.record = promoted.record
        change.extra_history.append(promoted.history)
    return change


def _suppression(ctx: OutcomeContext, record: Record, verdict: Verdict) -> Change:
    assert ctx.batch is not None
    if record.batch_id != ctx.batch.batch_id:
        return _earlier_suppression(ctx, record, verdict)
    correction = None
    if verdict.accepted and record.correction_version and not record.revocation_pending:
        correction = ctx.decode(ctx.tx, record.record_id, record.correction_version)
    return apply_suppression_report(
        record,
        batch_id=ctx.batch.batch_id,
        accepted=is_acceptance(ctx, verdict),
        message=verdict.message,
        now=ctx.now,
        label=ctx.label,
        correction=correction,
        whole_file=verdict.whole_file,
        held_as=verdict.held_as,
    )


def _earlier_suppression(ctx: OutcomeContext, record: Record, verdict: Verdict) -> Change:
    """A report on a SUPPRESSION file the record has left (superseded, uploaded anyway): its
    acceptance says the CDC deleted what that file carried; a refusal says nothing new (the
    file that carries the record now asks again)."""
    assert ctx.batch is not None
    if not is_acceptance(ctx, verdict) or record.status is not Status.ACCEPTED:
        return Change(Outcome.UNCHANGED)
    content = None
    if not record.revocation_pending:
        wanted = record.correction_version if wants_suppression(record) else record.version
        assert wanted is not None
        content = ctx.decode(ctx.tx, record.record_id, wanted)
    return apply_earlier_suppression(
        record,
        batch_id=ctx.batch.batch_id,
        deleted_hash=ctx.tx.carried_hash(ctx.batch.batch_id, record.record_id),
        now=ctx.now,
        label=ctx.label,
        content=content,
    )


def _earlier_batch(ctx: OutcomeContext, record: Record, verdict: Verdict) -> Change:
    """A report on a batch the record has left (superseded, or re-cut after a rejection):
    its acceptance says the CDC holds what that batch carried; a rejection says nothing new."""
    assert ctx.batch is not None
    held = next(
        (s for s in ctx.tx.sendings(record.record_id) if s.batch_id == ctx.batch.batch_id), None
    )
    if held is None:
        return Change(Outcome.UNCHANGED)
    if not verdict.accepted:
        return _rejected_before_its_file_left(ctx, record, verdict, held)
    reason = f"accepted by the CDC in an earlier file ({ctx.batch.file_name})"
    return apply_held_elsewhere(record, held, ctx.now, reason, ctx.label)


def _rejected_before_its_file_left(
    ctx: OutcomeContext, record: Record, verdict: Verdict, held: Sending
) -> Change:
    """The CDC refused, in an earlier file uploaded anyway, the very content the record's
    current file carries, and that file was never deposited: the record is rejected now
    (its file is superseded, `Feedback`), rather than sent to be refused again. A newer
    content, or a file deposited already, the CDC has not answered yet: nothing changes."""
    info = ctx.tx.batch(record.batch_id) if record.batch_id is not None else None
    if (
        held.content_hash != record.content_hash
        or record.status is not Status.BATCHED
        or info is None
        or info.action is not CdcAction.CREATION
        or info.state not in SUPERSEDABLE
    ):
        return Change(Outcome.UNCHANGED)
    return apply_report(
        record,
        accepted=False,
        message=verdict.message,
        report_batch=None,
        now=ctx.now,
        label=ctx.label,
    )


def _held_before(ctx: OutcomeContext, record: Record) -> Sending | None:
    """The latest earlier sending whose content differs from the one this batch carried."""
    earlier = [
        s
        for s in ctx.tx.sendings(record.record_id)
        if s.batch_id != ctx.batch_id and s.content_hash != record.content_hash
    ]
    return earlier[-1] if earlier else None


def closure_of(
    ctx: OutcomeContext, before: Record, after: Record, verdict: Verdict
) -> RequestClosure | None:
    """The correction requests this outcome answers: the acceptance of content `version`
    (None: of a revoked record's suppression). An "existe déjà en base" says the CDC kept a
    passage it held already: it answers a request only once the CDC accepted this record
    before and deleted that passage through a SUPPRESSION (it can hold nothing else then).
    Otherwise it holds what it held when the request came (data sent before this tracker, or
    under the other idTechnique it names): nothing was corrected, the request stays open."""
    if not ctx.closes_requests(before):
        return None
    if after.status is Status.ACCEPTED and before.status is not Status.ACCEPTED:
        if verdict.already_known and (after.cdc_held_as is not None or not before.delivery_met):
            return None
        if after.correction_version is None and not after.revocation_pending:
            return RequestClosure(after.record_id, after.version)
        return None
    if after.status is Status.WITHDRAWN and before.status is Status.ACCEPTED:
        return RequestClosure(after.record_id, None)
    return None
