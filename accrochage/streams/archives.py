"""`accrochage archived`: the operator's word that a settled batch's file left the outbox for
good, archived away or deleted under the DPO's retention.

Only a file no one needs in the outbox any more: its batch's report imported (`done/`), or the
batch superseded before any deposit (`superseded/`). The word is checked against the disk:
a file archived to a folder must be there with the bytes released (size and sha256), a file
said deleted must be in none of its certifier's outbox folders. Once recorded, neither the
batch timer's tick nor `verify` looks for it in the outbox again, and `evidence` reads it in
its archive (or says when it was deleted).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from accrochage.models.batch import Archived, BatchInfo
from accrochage.models.vocabulary import BatchState
from accrochage.sinks.base import BatchSink
from accrochage.state.base import Transaction
from accrochage.streams.deposits import named_batch
from accrochage.streams.item_outcomes import ItemOutcome, refused
from accrochage.streams.left_behind import in_the_outbox
from accrochage.streams.verify import sha256_of

ARCHIVABLE = (BatchState.REPORTED, BatchState.SUPERSEDED)
"""The batches whose file no step of the loop needs in the outbox again."""


def archive(
    tx: Transaction, sink: BatchSink, ref: str, to: Path | None, now: datetime
) -> ItemOutcome:
    """Record that the file of the batch `ref` names was archived to the folder `to`, or
    deleted (`to` None); each refusal says why and what to do."""
    batch = named_batch(tx, ref, "batches --state reported")
    if isinstance(batch, ItemOutcome):
        return batch
    before = batch.archived
    if before is not None and before.to == to:
        return ItemOutcome(ref, True, f"batch {batch.batch_id} already recorded as archived")
    if batch.state not in ARCHIVABLE or batch.file_path is None:
        return refused(ref, _still_needed(batch))
    left = in_the_outbox(sink, batch.certifier, batch.file_name, batch.file_path)
    problem = _not_archived(sink, batch, to, left)
    if problem is not None:
        return refused(ref, problem)
    tx.batch_archived(batch.batch_id, Archived(now, to))
    where = "deleted" if to is None else f"archived to {to}"
    said = f"batch {batch.batch_id}: its file recorded as {where}"
    if before is not None:
        said += f" (it was recorded {'deleted' if before.to is None else f'at {before.to}'})"
    if left is not None:
        said += f"; a copy is still at {left}: delete it when the retention says"
    return ItemOutcome(ref, True, said)


def _still_needed(batch: BatchInfo) -> str:
    if batch.file_path is None:
        return f"batch {batch.batch_id} has no file (never written): nothing to archive"
    if batch.state in (BatchState.WRITTEN, BatchState.DEPOSITED):
        return (
            f"batch {batch.batch_id} is {batch.state}: its file waits to be uploaded or for "
            "the CDC's report; keep it until `import-report` has read the report"
        )
    return f"batch {batch.batch_id} is {batch.state}: its file is not settled yet"


def _not_archived(
    sink: BatchSink, batch: BatchInfo, to: Path | None, left: Path | None
) -> str | None:
    """Why the disk says otherwise, or None when the file is where the operator says; `left`:
    where the file still is in the outbox (`in_the_outbox`)."""
    to_upload = sink.place(batch.certifier, batch.file_name, BatchState.WRITTEN)
    if to_upload.exists():
        return (
            f"a copy of its file is among those to upload ({to_upload}): move it away first "
            "(`accrochage verify --repair` sets it aside), so that it is not deposited again"
        )
    if to is None:
        if left is None:
            return None
        return (
            f"its file is still at {left}: delete it first (the state records a deletion "
            "only once it is done), or give --to the folder holding its archived copy"
        )
    held = to / batch.file_name
    try:
        size, digest = os.stat(held).st_size, sha256_of(held)
    except OSError as exc:
        return f"{held} cannot be read ({exc.strerror}): give --to the folder holding the file"
    if size != batch.size or digest != batch.sha256:
        return (
            f"{held} is not the file released ({size} bytes, {batch.size} recorded, or "
            "another sha256): archive the file itself, unchanged"
        )
    return None
