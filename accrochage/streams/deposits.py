"""`accrochage deposited`: the operator's word that a batch's file was uploaded to the CDC."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from accrochage.models.batch import BatchInfo
from accrochage.models.batch_life import apply_deposited, suppression_deposited
from accrochage.models.vocabulary import BatchState, CdcAction
from accrochage.sinks.base import BatchSink
from accrochage.state.base import Transaction
from accrochage.streams.item_outcomes import ItemOutcome, refused
from accrochage.streams.left_behind import left_in_earlier_place


def named_batch(tx: Transaction, ref: str, listing: str) -> BatchInfo | ItemOutcome:
    """The one batch `ref` names (an id, an id prefix of 8 characters or more, a file name or
    a path ending in it), or the refusal saying why not (`listing`: the command that lists
    them)."""
    matching = tx.batch_ids_matching(ref)
    if not matching:
        return refused(
            ref,
            f"no batch has this id, id prefix (8 characters or more) or file name: see `{listing}`",
        )
    if len(matching) > 1:
        return refused(ref, f"names {len(matching)} batches: give more of the id")
    batch = tx.batch(matching[0])
    assert batch is not None
    return batch


def deposit(
    tx: Transaction, sink: BatchSink, ref: str, now: datetime, moves: list[tuple[Path, Path]]
) -> ItemOutcome:
    """Record that the file of the batch `ref` names was uploaded (`accrochage deposited`):
    its records `deposited`, its file moved to `deposited/` once the transaction commits
    (`moves`); each refusal says why and what to do."""
    batch = named_batch(tx, ref, "batches --to-deposit")
    if isinstance(batch, ItemOutcome):
        return batch
    batch_id = batch.batch_id
    if batch.state is BatchState.DEPOSITED:
        said = f"batch {batch_id} already recorded as deposited"
        return ItemOutcome(ref, True, said + left_in_earlier_place(sink, batch, moves))
    if batch.state is BatchState.REPORTED:
        said = f"batch {batch_id} already has the CDC's report"
        return ItemOutcome(ref, True, said + left_in_earlier_place(sink, batch, moves))
    if batch.state is BatchState.SUPERSEDED and batch.file_path is None:
        return refused(ref, f"batch {batch_id} was superseded before its file was written")
    if batch.state is BatchState.SUPERSEDED:
        return refused(
            ref,
            f"batch {batch_id} is superseded: its file (in superseded/) was replaced before "
            "any deposit and must not be uploaded; if it was, import its report: the CDC's "
            "answer is applied to what it carried",
        )
    if batch.state is not BatchState.WRITTEN:
        return refused(
            ref,
            f"batch {batch_id} is {batch.state}, its file not recorded as written (a flush "
            "was interrupted, or is under way): run `accrochage flush`, which writes or "
            "records it with the same name and bytes, then mark it deposited",
        )
    target = sink.place(batch.certifier, batch.file_name, BatchState.DEPOSITED)
    tx.batch_deposited(batch_id, now, target)
    if batch.file_path is not None:
        moves.append((batch.file_path, target))
    members = tx.records_in_batch(batch_id)
    if batch.action is CdcAction.SUPPRESSION:
        tx.save([suppression_deposited(r, batch_id, now) for r in members])
        said = f"batch {batch_id} deposited (a SUPPRESSION: its records wait for the report)"
    else:
        changes = [apply_deposited(r, batch_id, now) for r in members]
        moved = [c for c in changes if c.changed]
        tx.save(moved)
        said = f"batch {batch_id} deposited ({len(moved)} records)"
    if sink.find(batch.certifier, batch.file_name) is None:
        said += (
            f"; its file {batch.file_name} is no longer in the outbox (moved or deleted?): "
            "check it is the one uploaded"
        )
    return ItemOutcome(ref, True, said)
