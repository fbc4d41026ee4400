"""What the operator does to records and batches by hand: deposited, retry, exclude, include.

Each item gets its own outcome: one refused id never stops the others (CONTRACT v2: exit 1
when any was refused). A call is applied in short transactions (a file each for `deposited`,
`CHUNK_RECORDS` records each for `retry` and `include`), so that the service's writers never
wait long behind an operator's command; each item is idempotent, so a call cut short (a
storage failure refuses every item not applied yet, saying why) is simply run again.
`exclude` is one transaction: a member of a failed batch goes out with the batch's others
(superseded, they are cut again without it), which chunks could split.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from pathlib import Path

from accrochage.models.batch import not_one_batch
from accrochage.models.corrections import RequestClosure
from accrochage.models.operator import (
    SUPPRESSION_LEFT_OUT,
    UNREPORTED,
    apply_exclude,
    apply_include,
    apply_reinstate,
    apply_resend,
    apply_retry,
    apply_support_applied,
    left_out_by,
)
from accrochage.models.problems import Problem
from accrochage.models.record import Change, Record, Status
from accrochage.models.vocabulary import (
    SUPERSEDABLE,
    BatchState,
    CdcReason,
    Outcome,
    RecordStatus,
)
from accrochage.models.withdrawal import apply_suppression_retry
from accrochage.state.base import Transaction
from accrochage.streams.archives import archive
from accrochage.streams.chunked import Chunked
from accrochage.streams.deposits import deposit
from accrochage.streams.item_outcomes import (
    ItemOutcome,
    refused,
    with_failed_batch,
)
from accrochage.streams.withdraw import supersede_batch

REPORTED, FAILED = BatchState.REPORTED, BatchState.FAILED


class Operations(Chunked):
    """The operator's actions on records and batches (`Chunked`: how they are applied)."""

    def deposited(self, refs: Sequence[str]) -> list[ItemOutcome]:
        """Record that files were uploaded to the CDC portal. A REF is a batch id, a prefix of
        8 characters or more, the file's name or a path ending in it. A transaction a file."""
        now = self._now()
        moves: list[tuple[Path, Path]] = []

        def moved() -> None:
            self.sink.move_recorded(moves, "deposited")
            moves.clear()

        return self._in_chunks(
            refs, lambda tx, one: [deposit(tx, self.sink, one[0], now, moves)], size=1, after=moved
        )

    def archived(self, refs: Sequence[str], to: Path | None) -> list[ItemOutcome]:
        """Record that settled batches' files were archived to the folder `to`, or deleted
        (`streams/archives.py`). A transaction a file."""
        now = self._now()
        return self._in_chunks(
            refs, lambda tx, one: [archive(tx, self.sink, one[0], to, now)], size=1
        )

    def retry(self, record_ids: Sequence[str]) -> list[ItemOutcome]:
        """Put rejected records back to pending, without new content; cut a refused
        SUPPRESSION again; send again a record its batch's processed report left out."""
        return self._in_chunks(
            record_ids, lambda tx, chunk: self._apply_in(tx, chunk, partial(self._again, tx))
        )

    def _again(self, tx: Transaction, record: Record, now: datetime) -> Change:
        if left_out_by(record, record.batch_id) and self._batch_state(tx, record) is REPORTED:
            if record.status in UNREPORTED:
                return apply_resend(record, now, self._correction(tx, record))
            return apply_suppression_retry(record, now, SUPPRESSION_LEFT_OUT)
        return retry(record, now)

    def retry_rejected(
        self,
        *,
        batch_ref: str | None = None,
        certifier: str | None = None,
        reason: CdcReason | None = None,
    ) -> list[ItemOutcome]:
        """Retry the rejected records of a batch, of a certifier, of a `cdc_reason`, or all."""
        with self.store.transaction() as tx:
            batch_id = None
            if batch_ref is not None:
                matching = tx.batch_ids_matching(batch_ref)
                why = not_one_batch(matching)
                if why is not None:
                    return [refused(batch_ref, f"names {why}: give a batch id or file name")]
                batch_id = matching[0]
            ids = tx.rejected_ids(batch_id=batch_id, certifier=certifier, reason=reason)
            left_out = (
                self._left_out(tx, batch_id, certifier)
                if batch_id is not None and reason is None
                else []
            )
        return self._apply(ids, _if_rejected) + self.retry(left_out)

    def _left_out(self, tx: Transaction, batch_id: str, certifier: str | None) -> list[str]:
        """The members a batch's processed report did not mention (still waiting for it)."""
        batch = tx.batch(batch_id)
        if batch is None or batch.state is not REPORTED:
            return []
        return [
            record.record_id
            for record in tx.records_in_batch(batch_id)
            if left_out_by(record, batch_id) and certifier in (None, record.certifier)
        ]

    def exclude(self, record_ids: Sequence[str], reason: str) -> list[ItemOutcome]:
        """Take records out of the obligation, with the reason kept in their history.

        A member of a batch whose file could not be written (its XSD gate failed, say) can be
        excluded too: the CDC never saw it. Its batch is superseded first, every other member
        going back to be cut again without it.
        """
        moves = []
        with self.store.transaction() as tx:  # one: a record goes with its failed batch's others
            now = self._now()
            batched = [r for r in tx.records(record_ids).values() if r.status is Status.BATCHED]
            failed = {r.batch_id for r in batched if self._batch_state(tx, r) is FAILED}
            in_failed = {r.record_id: r for r in batched if r.batch_id in failed}
            for batch_id in sorted(b for b in failed if b is not None):
                move = supersede_batch(tx, batch_id, self.sink, self.decode, now)
                moves += [move] if move is not None else []
            outcomes = self._apply_in(
                tx,
                record_ids,
                lambda record, now: apply_exclude(record, reason, now),
                was=in_failed,
            )
        self.sink.move_recorded(moves, "superseded")
        return [with_failed_batch(o, in_failed.get(o.item)) for o in outcomes]

    def _suppression_left_out(self, tx: Transaction, record: Record) -> Change | None:
        """The refusal of a hand-made settlement (`reinstate`, `support-applied`) of an
        accepted record whose SUPPRESSION file's report did not mention it: no report is
        to come for it, so the CDC's answer is sought with a SUPPRESSION cut again."""
        if record.status is not Status.ACCEPTED or not left_out_by(record, record.batch_id):
            return None
        if self._batch_state(tx, record) is not REPORTED:
            return None
        rid = record.record_id
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"the report of record {rid}'s SUPPRESSION file (batch {record.batch_id}) "
                    "did not mention it: whether the CDC deleted its passage is unknown; "
                    f"`accrochage retry {rid}` cuts its SUPPRESSION again, whose report says",
                )
            ],
        )

    def support_applied(self, record_ids: Sequence[str], note: str) -> list[ItemOutcome]:
        """Record that the CDC's support applied what these accepted records wait to send (a
        correction, a withdrawal: schema 1.1.2 cannot, nor a SUPPRESSION to a record the CDC
        holds under another idTechnique), with `note` in their history. It answers their
        open correction requests as the CDC's acceptance would (`RequestClosure`)."""

        def settled(tx: Transaction, record: Record, now: datetime) -> Change:
            left_out = self._suppression_left_out(tx, record)
            if left_out is not None:
                return left_out
            return apply_support_applied(record, note, now, self._correction(tx, record))

        def step(tx: Transaction, chunk: Sequence[str]) -> list[ItemOutcome]:
            outcomes = self._apply_in(tx, chunk, partial(settled, tx))
            after = tx.records([o.item for o in outcomes if o.done])
            now = self._now()
            return [_with_closed(tx, o, after.get(o.item), note, now) for o in outcomes]

        return self._in_chunks(record_ids, step)

    def include(self, record_ids: Sequence[str]) -> list[ItemOutcome]:
        """Put excluded records back: each gets the status of its current content."""
        return self._apply(record_ids, apply_include)

    def reinstate(self, record_ids: Sequence[str], reason: str) -> list[ItemOutcome]:
        """Undo revocations sent by mistake (`apply_reinstate`), the reason in the history.

        A SUPPRESSION file of a revoked record that was never deposited is superseded first
        (its other records cut again): uploaded, it would delete a passage the record keeps,
        and no report will ever answer a file nobody uploads."""
        moves: list[tuple[Path, Path]] = []

        def undone(tx: Transaction, record: Record, now: datetime) -> Change:
            left_out = self._suppression_left_out(tx, record)
            if left_out is not None:
                return left_out
            return apply_reinstate(record, reason, now)

        def step(tx: Transaction, chunk: Sequence[str]) -> list[ItemOutcome]:
            superseded = self._supersede_unsent_suppressions(tx, chunk, moves)
            outcomes = self._apply_in(tx, chunk, partial(undone, tx))
            return [_with_superseded(o, superseded.get(o.item)) for o in outcomes]

        def moved() -> None:
            self.sink.move_recorded(moves, "superseded")
            moves.clear()

        return self._in_chunks(record_ids, step, after=moved)

    def _supersede_unsent_suppressions(
        self, tx: Transaction, record_ids: Sequence[str], moves: list[tuple[Path, Path]]
    ) -> dict[str, str]:
        """The SUPPRESSION batches never deposited of these revoked records, superseded (the
        moves of their files, to make once committed, added to `moves`): record id -> its
        batch superseded."""
        now = self._now()
        unsent = {
            record.record_id: record.batch_id
            for record in tx.records(record_ids).values()
            if record.revocation_pending
            and record.suppression_awaited
            and record.batch_id is not None
            and self._batch_state(tx, record) in SUPERSEDABLE
        }
        for batch_id in sorted({b for b in unsent.values() if b is not None}):
            move = supersede_batch(tx, batch_id, self.sink, self.decode, now)
            moves += [move] if move is not None else []
        return {k: v for k, v in unsent.items() if v is not None}


def _with_superseded(outcome: ItemOutcome, batch_id: str | None) -> ItemOutcome:
    """`outcome`, naming the SUPPRESSION file a reinstated record's batch no longer needs."""
    if batch_id is None or not outcome.done:
        return outcome
    return ItemOutcome(
        outcome.item,
        True,
        f"{outcome.message}; its SUPPRESSION file {batch_id[:8]}, never deposited, is "
        "superseded: never upload it (its other records are cut again)",
    )


def _if_rejected(record: Record, now: datetime) -> Change:
    """`retry`, for a record chosen as rejected (or its SUPPRESSION refused) before its
    chunk's transaction: one a report or a correction changed meanwhile is left as it is
    ("already ...")."""
    if record.status is RecordStatus.REJECTED or _suppression_refused(record):
        return retry(record, now)
    return Change(Outcome.UNCHANGED)


def _suppression_refused(record: Record) -> bool:
    return record.status is RecordStatus.ACCEPTED and record.suppression_rejected


def retry(record: Record, now: datetime) -> Change:
    if _suppression_refused(record):
        return apply_suppression_retry(record, now)
    return apply_retry(record, now)


def _with_closed(
    tx: Transaction, outcome: ItemOutcome, after: Record | None, note: str, now: datetime
) -> ItemOutcome:
    """`outcome`, naming the correction requests the support's work answered, if any."""
    if after is None:
        return outcome
    version = None if after.status is RecordStatus.WITHDRAWN else after.version
    label = f"applied by its support: {note}"
    closed = tx.close_correction_requests([RequestClosure(after.record_id, version)], now, label)
    if not closed:
        return outcome
    return ItemOutcome(
        outcome.item, True, f"{outcome.message}; correction request {', '.join(closed)} closed"
    )
