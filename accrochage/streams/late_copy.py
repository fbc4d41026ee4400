"""A batch's file written while another process recorded that batch (a second flush, a
correction or `exclude` superseding it, a report): the copy written late never waits beside
the files to upload."""

from __future__ import annotations

from accrochage.models.batch import BatchInfo, FrozenBatch, ReleasedFile
from accrochage.models.vocabulary import BatchState
from accrochage.sinks.base import BatchSink
from accrochage.state.base import Transaction
from accrochage.streams.flush_report import FlushReport


def late_copy(
    tx: Transaction, sink: BatchSink, batch: FrozenBatch, outcome: ReleasedFile
) -> BatchInfo | None:
    """Another process recorded this batch while this flush wrote its file (a second
    flush, a correction or `exclude` superseding it, a report): what it is now, when this
    copy is not the file the state records; None when it is (the same name and bytes)."""
    now_is = tx.batch(batch.batch_id)
    if now_is is None or now_is.file_path == outcome.path:
        return None
    if now_is.state is BatchState.SUPERSEDED and now_is.file_path is None:
        target = sink.place(batch.certifier.key, outcome.path.name, now_is.state)
        tx.batch_superseded(batch.batch_id, target)
    return now_is


def put_late_copy(
    sink: BatchSink,
    batch: FrozenBatch,
    outcome: ReleasedFile,
    now_is: BatchInfo,
    report: FlushReport,
) -> None:
    """A copy written late must never wait beside the files to upload: superseded, it goes
    to superseded/; reported without a file, to done/; any other batch keeps its file
    where the state says, and the copy is removed."""
    key = batch.certifier.key
    if now_is.file_path is None:
        target = sink.place(key, outcome.path.name, now_is.state)
        sink.move_recorded([(outcome.path, target)], "late")
        report.notes.append(
            f"batch {batch.batch_id} is {now_is.state} since its file was written: "
            f"{target} (never upload it)"
        )
        return
    outcome.path.unlink(missing_ok=True)
    report.notes.append(
        f"batch {batch.batch_id} was recorded by another process while this one wrote its "
        f"file: its file is {now_is.file_path}; the second copy was removed"
    )
