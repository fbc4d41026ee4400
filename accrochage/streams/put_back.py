"""Put back the released files missing where the state places them, at each batch cut: a
file left in another folder of its certifier's moved back, a `written` batch's file written
again; only in the folders changed since their files were last found (`outbox_watch.py`)."""

from __future__ import annotations

from dataclasses import replace

from accrochage.models.vocabulary import PLACED, BatchState
from accrochage.sinks.base import BatchSink
from accrochage.state.base import ReleasedBatch, Store, Transaction
from accrochage.streams.flush_report import FailedBatch, FlushReport, WrittenBatch
from accrochage.streams.left_behind import deposited_since, left_at
from accrochage.streams.metrics import Metrics
from accrochage.streams.outbox_watch import FolderWatch, folder_of
from accrochage.streams.verify import is_missing, rewrite


def _placed_now(tx: Transaction, listed: ReleasedBatch) -> ReleasedBatch | None:
    """The batch `listed` as the state records it now, or None when its file is no longer
    placed: another process (`deposited`, `import-report`, another flush superseding it) may
    have recorded a move since the listing, and the file follows the state, never the
    listing (moved back, a superseded file would be among the files to upload)."""
    info = tx.batch(listed.batch.batch_id)
    if info is None or info.file_path is None or info.state not in PLACED:
        return None
    return replace(listed, state=info.state, file=replace(listed.file, path=info.file_path))


def _found_elsewhere(sink: BatchSink, item: ReleasedBatch, report: FlushReport) -> bool:
    """Whether a missing file was dealt with where it is: said when it was deposited since
    the state last recorded it, or moved back where the state has it."""
    found = left_at(sink, item)
    sent = deposited_since(item, found)
    if sent is not None:
        report.notes.append(f"the file of batch {item.batch.batch_id} is {sent}")
        return True
    if found is None:
        return False
    sink.move(found, item.file.path)
    report.notes.append(f"moved {found} back to {item.file.path}, where the state has it")
    return True


def _still_to_upload(
    store: Store, sink: BatchSink, item: ReleasedBatch, report: FlushReport
) -> bool:
    """Whether the batch whose file was just written again is still `written` there: the
    render ran outside any transaction, and another process may have superseded or recorded
    the batch meanwhile. Otherwise the copy goes where the state has the file now, or away:
    never left among the files to upload."""
    with store.transaction() as tx:
        now_is = _placed_now(tx, item)
        if now_is is not None and now_is.file.path == item.file.path:
            return True  # still where the state has it: `written`, among the files to upload
        if now_is is not None and is_missing(now_is.file):
            sink.move(item.file.path, now_is.file.path)
            said = f"the copy is at {now_is.file.path}, where the state has it"
        else:
            item.file.path.unlink(missing_ok=True)
            said = "the copy was removed"
    state = "recorded by another process" if now_is is None else now_is.state
    report.notes.append(
        f"batch {item.batch.batch_id} became {state} while its missing file was written "
        f"again: {said}"
    )
    return False


def put_back_missing(
    store: Store,
    sink: BatchSink,
    report: FlushReport,
    metrics: Metrics,
    folders: FolderWatch | None = None,
) -> None:
    """Put back in place every released file missing where the state says it is.

    A file found in another of its certifier's folders (a crash between recording a
    deposit or a report and moving the file) is moved where the state says. A `written`
    batch's file found nowhere is written again: its records wait for it, and the frozen
    batch gives the same bytes. Any other missing or altered file (a deposited batch's, a
    file edited in place) is `verify --repair`'s job. `folders`: those whose files were all
    found at an earlier call, looked in again only once changed (without: every file).
    """
    folders = folders if folders is not None else FolderWatch()
    with store.reading() as reader:
        placed = reader.placed_files(PLACED)
        look = folders.to_look_in(placed)
        ids = [batch_id for batch_id, path in placed if folder_of(path) in look.stamps]
        released = reader.released_batches(PLACED, ids) if ids else []
    gone: set[str] = set()
    for listed in released:
        said = sink.misplaced(listed.file.path)
        if said is not None:  # moving or writing it here would empty another outbox
            report.notes.append(said)
            return
        if not is_missing(listed.file):
            continue
        folder = folder_of(str(listed.file.path))
        with store.transaction() as tx:  # no other process records a move while it is judged
            item = _placed_now(tx, listed)
            if item is None or not is_missing(item.file) or _found_elsewhere(sink, item, report):
                gone.add(folder)
                continue
        if item.state is not BatchState.WRITTEN:
            # Found nowhere, and no tick can write it (`verify --repair` can): a file deleted
            # from done/ once reported. Its folder is held as it is, looked in again once it
            # changes or `LOOKED_AGAIN_NS` passed; looking at every tick for thousands of
            # files archived away cost 0.7 s of CPU a tick at 1,000,000 records.
            continue
        gone.add(folder)
        key = item.batch.certifier.key
        error = rewrite(sink, item)
        if error is not None:
            metrics.count_batch_write(False)
            report.add_failed(FailedBatch(item.batch.batch_id, key, error))
            continue
        if not _still_to_upload(store, sink, item, report):
            continue
        report.notes.append(f"rewrote the missing file {item.file.path}")
        report.add_written(
            WrittenBatch(
                item.batch.batch_id,
                key,
                item.file.path,
                item.file.passages,
                item.file.size,
                item.file.sha256,
            )
        )
    folders.all_found(look, gone)
