"""A processing report's outcomes applied to the records, in the report's transaction, and
the summary told to the operator (`import-report`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from accrochage.errors import AccrochageError
from accrochage.models.batch_life import accepted_plain
from accrochage.models.cdc import held_under
from accrochage.models.corrections import RequestClosure
from accrochage.models.operator import left_out_by
from accrochage.models.record import AWAITING_REPORT, Change, Record, Status
from accrochage.models.suppression_report import withdrawn_plain
from accrochage.models.vocabulary import CdcAction
from accrochage.sinks.reports import PassageOutcome, ProcessingReport
from accrochage.streams.outcomes import (
    OutcomeContext,
    Verdict,
    apply_verdict,
    closure_of,
    is_acceptance,
)


@dataclass(slots=True)
class ImportSummary:
    file: str
    batch_id: str | None
    already_imported: bool = False
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unknown_ids: list[str] = field(default_factory=list)
    not_mentioned: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    """Records a report applied by idTechnique left because their SUPPRESSION is in flight:
    that file's report answers them (in `unchanged` too; a note names the file)."""
    elsewhere: list[str] = field(default_factory=list)
    """Records the report names that the reported batch did not carry (they are in `unchanged`
    too): a report of another file, or a record sent again since."""
    file_error: str | None = None
    notes: list[str] = field(default_factory=list)
    rejections: list[dict[str, str | None]] = field(default_factory=list)
    """Each rejected record with the CDC's message and its class (`cdc_reason`)."""
    kept_as: str | None = None
    """Where a copy of the report was kept, beside the state."""
    action: str = CdcAction.CREATION.value
    """The reported batch's action: a SUPPRESSION's acceptance withdraws what the CDC held."""
    requests_closed: list[str] = field(default_factory=list)
    """Correction requests this report answered (corrected data accepted)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


T = TypeVar("T")

APPLIED_AT_ONCE = 5_000
"""Outcomes whose records are read, changed and saved together: a report of 200,000 passages
is applied in one transaction without holding 200,000 records."""


def _pieces(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` in pieces of `APPLIED_AT_ONCE` (read at each call)."""
    for start in range(0, len(items), APPLIED_AT_ONCE):
        yield items[start : start + APPLIED_AT_ONCE]


def apply_outcomes(
    ctx: OutcomeContext, report: ProcessingReport, summary: ImportSummary
) -> tuple[list[RequestClosure], set[str]]:
    """The closures of correction requests, and the batches never deposited that records the
    report settled have left (a report on an earlier file of theirs)."""
    left: set[str] = set()
    members = set(ctx.tx.batch_member_ids(ctx.batch.batch_id)) if ctx.batch is not None else None
    closures: list[RequestClosure] = []
    outcomes = report.outcomes
    for chunk in _pieces(outcomes):
        _apply_chunk(ctx, chunk, members, summary, closures, left)
    if ctx.batch is not None:
        summary.not_mentioned = _left_out(ctx, ctx.batch.batch_id, outcomes)
    return closures, left


def _left_out(ctx: OutcomeContext, batch_id: str, outcomes: Sequence[PassageOutcome]) -> list[str]:
    """The batch's records the report did not mention and that still wait for it (a later
    report's silence on records settled since is none), read a piece at a time."""
    mentioned = {o.id_technique for o in outcomes}
    silent = [r for r in ctx.tx.batch_member_ids(batch_id) if r not in mentioned]
    left: list[str] = []
    for chunk in _pieces(silent):
        found = ctx.tx.records(chunk)
        left += [r for r in chunk if r in found and left_out_by(found[r], batch_id)]
    return left


def _accepted_plain(
    ctx: OutcomeContext, outcomes: Sequence[PassageOutcome]
) -> dict[str, int | None]:
    """The records of the reported batch that its PassagesOK accept and that wait for nothing
    else, moved by SQL: a CREATION's accepted (`batch_life.accepted_plain`), with the content
    version each holds; a SUPPRESSION's revoked ones withdrawn
    (`suppression_report.withdrawn_plain`), with None. A report applied by idTechnique, and
    every other outcome, go through `apply_verdict`."""
    reported = [o.id_technique for o in outcomes if o.accepted and o.message is None]
    if ctx.batch is None or not reported:
        return {}
    batch_id = ctx.batch.batch_id
    if ctx.suppression:
        withdrawn = ctx.tx.withdraw_plain(withdrawn_plain(batch_id, ctx.now, ctx.label), reported)
        return dict.fromkeys(withdrawn)
    accepted: dict[str, int | None] = {}
    for waiting in AWAITING_REPORT:
        moved = accepted_plain(batch_id, ctx.now, ctx.label, waiting)
        accepted |= ctx.tx.accept_plain(moved, reported)
    return accepted


def _apply_chunk(
    ctx: OutcomeContext,
    outcomes: Sequence[PassageOutcome],
    members: set[str] | None,
    summary: ImportSummary,
    closures: list[RequestClosure],
    left: set[str],
) -> None:
    """Outcomes of distinct ids (`parse_report` merged them), applied and saved: the plain
    acceptances by SQL (`_accepted_plain`), the others through the record's life."""
    plain = _accepted_plain(ctx, outcomes)
    current = ctx.tx.records([o.id_technique for o in outcomes if o.id_technique not in plain])
    answers_requests = ctx.answers_requests
    changes: list[Change] = []
    for outcome in outcomes:
        if outcome.id_technique in plain:
            summary.accepted.append(outcome.id_technique)
            if answers_requests:
                closures.append(RequestClosure(outcome.id_technique, plain[outcome.id_technique]))
            continue
        record = current.get(outcome.id_technique)
        if record is None:
            summary.unknown_ids.append(outcome.id_technique)
            continue
        other = held_under(outcome.message or "", outcome.id_technique)
        verdict = Verdict(outcome.accepted, outcome.message, outcome.already_known, held_as=other)
        change = apply_verdict(ctx, record, verdict)
        if other is not None:
            summary.notes.append(held_note(other, change.record or record))
        if change.record is None:
            summary.unchanged.append(outcome.id_technique)
            if members is not None and outcome.id_technique not in members:
                summary.elsewhere.append(outcome.id_technique)
            if ctx.batch is None and record.suppression_awaited:
                summary.waiting.append(outcome.id_technique)
                summary.notes.append(_waits_for_its_suppression(record))
            continue
        changes.append(change)
        waits_in_a_file = record.status is Status.BATCHED or record.suppression_in_flight
        if waits_in_a_file and record.batch_id not in (None, ctx.batch_id):
            left.add(record.batch_id)
        closure = closure_of(ctx, record, change.record, verdict)
        if closure is not None:
            closures.append(closure)
        accepted = is_acceptance(ctx, verdict)
        (summary.accepted if accepted else summary.rejected).append(outcome.id_technique)
        if not accepted:
            summary.rejections.append(rejection(change.record))
    ctx.tx.save(changes)


def _waits_for_its_suppression(record: Record) -> str:
    """Why a report applied by idTechnique left a record whose SUPPRESSION is in flight: it
    cannot tell whether it answers that file or the CREATION the CDC accepted before."""
    return (
        f"{record.record_id}: its SUPPRESSION (batch {record.batch_id}) waits for that file's "
        "report; a report applied by idTechnique cannot tell it answers that file: import it "
        f"with `accrochage import-report FILE --batch {record.batch_id}`"
    )


def reject_file(
    ctx: OutcomeContext, report: ProcessingReport, summary: ImportSummary
) -> list[RequestClosure]:
    error = "; ".join(
        f"{e.type or 'erreur'}: {e.message}" + (f" (ligne {e.line})" if e.line else "")
        for e in report.file_errors
    )
    summary.file_error = error
    if ctx.batch is None:
        raise AccrochageError(
            f"the CDC rejected the whole file {report.file_name!r} ({error}), but no batch "
            "has that file name: cannot tell which records it held; name the batch it "
            "answers: `accrochage import-report FILE --batch <batch id or file name>` "
            "(`accrochage batches --state deposited` lists the files deposited)"
        )
    verdict = Verdict(False, f"file rejected: {error}", whole_file=True)
    ids = ctx.tx.record_ids_in_batch(ctx.batch.batch_id)
    for chunk in _pieces(ids):
        current = ctx.tx.records(chunk)
        changes = []
        for record_id in chunk:
            change = apply_verdict(ctx, current[record_id], verdict)
            if change.record is None:
                summary.unchanged.append(record_id)
            else:
                changes.append(change)
                summary.rejected.append(record_id)
                summary.rejections.append(rejection(change.record))
        ctx.tx.save(changes)
    return []


def held_note(other: str, after: Record) -> str:
    """What the import says of a passage the CDC says it holds under idTechnique `other`."""
    rid = after.record_id
    said = f"{rid}: the CDC says it holds this certification under idTechnique {other}"
    if after.cdc_held_as == other:
        return (
            f"{said}, not {rid}: no SUPPRESSION naming {rid} can correct or withdraw it, so "
            f"none is cut: the CDC's support does (accrochage show {rid})"
        )
    return (
        f"{said}, while this record stays as it was ({after.status}): check on the CDC portal "
        "which idTechnique holds it"
    )


def rejection(record: Record) -> dict[str, str | None]:
    reason = record.cdc_reason.value if record.cdc_reason is not None else None
    return {
        "record_id": record.record_id,
        "message": record.cdc_message,
        "cdc_reason": reason,
        "status": record.status.value,
        "cdc_held_as": record.cdc_held_as,
    }
