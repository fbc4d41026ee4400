"""Outbox integrity: every released file is still there, with the bytes the state recorded.

A file can go missing (deleted by hand, a lost volume) or be altered (edited, truncated,
damaged) after its release. `verify` compares each released file of the state with its
recorded size and sha256; with `repair`, the sink writes a missing or altered file again from
its frozen batch, which gives the same bytes (same name, same header, same contents).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from accrochage.models.batch import ReleasedFile
from accrochage.models.vocabulary import PLACED, RELEASED, BatchState
from accrochage.sinks.base import BatchSink, WriteFailed, outcome_of
from accrochage.state.base import ReleasedBatch, Store, Transaction
from accrochage.streams.flush_report import FailedBatch, FlushReport, WrittenBatch
from accrochage.streams.left_behind import deposited_since, left_at
from accrochage.streams.metrics import Metrics
from accrochage.streams.strays import StrayFile, set_aside, stray_files

_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class FileIssue:
    """A released file that is not as recorded, and what repairing it did (if tried)."""

    batch_id: str
    certifier: str
    state: BatchState
    path: Path
    problem: str
    repaired: bool = False
    repair_error: str | None = None
    left_at: Path | None = None
    """Where a missing file was found instead: `--repair` moves it back, never writes it twice."""


@dataclass(slots=True)
class VerifyReport:
    checked: int = 0
    issues: list[FileIssue] = field(default_factory=list)
    strays: list[StrayFile] = field(default_factory=list)
    """Files among those to upload that the state does not know as such."""

    @property
    def ok(self) -> bool:
        """True when every file is as recorded, or was repaired, and every stray file was
        set aside."""
        return all(issue.repaired for issue in self.issues) and all(
            stray.set_aside_to is not None for stray in self.strays
        )


def is_missing(recorded: ReleasedFile) -> bool:
    """Whether nothing is at `recorded.path` (a stat: no byte of the file is read)."""
    try:
        os.stat(recorded.path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def file_problem(recorded: ReleasedFile) -> str | None:
    """Why the file at `recorded.path` is not the one recorded, or None when it is."""
    try:
        info = os.stat(recorded.path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not os.path.isfile(recorded.path):
        return "not a regular file"
    if info.st_size != recorded.size:
        return f"altered: {info.st_size} bytes, {recorded.size} recorded"
    try:
        digest = sha256_of(recorded.path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if digest != recorded.sha256:
        return "altered: its sha256 differs from the recorded one"
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def rewrite(sink: BatchSink, released: ReleasedBatch) -> str | None:
    """Write a released batch's file again from its frozen batch; why it failed, or None.

    The new file must be the recorded one, byte for byte, at the recorded path: anything
    else (a renderer that changed since) is reported, never recorded over the state.
    """
    outcome = outcome_of(lambda: sink.write_again(released.batch, released.state))
    if isinstance(outcome, WriteFailed):
        return outcome.error
    recorded = released.file
    if outcome.path != recorded.path:
        # Written where a new file goes; the state says where it lives now (deposited/, done/).
        moved = outcome_of(lambda: _moved(sink, outcome, recorded.path))
        if isinstance(moved, WriteFailed):
            return f"written again at {outcome.path}, not moved to {recorded.path}: {moved}"
    if (outcome.size, outcome.sha256) != (recorded.size, recorded.sha256):
        return (
            "written again, but its bytes differ from the recorded ones (the renderer "
            "changed since): check the file before depositing it"
        )
    return None


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


def _moved(sink: BatchSink, written: ReleasedFile, target: Path) -> ReleasedFile:
    sink.move(written.path, target)
    return ReleasedFile(target, written.passages, written.size, written.sha256)


class OutboxVerifier:
    def __init__(self, store: Store, sink: BatchSink) -> None:
        self.store = store
        self.sink = sink

    def verify(self, *, repair: bool = False) -> VerifyReport:
        with self.store.reading() as reader:
            released = reader.released_batches(RELEASED)
        report = VerifyReport(checked=len(released))
        for listed in released:
            problem = file_problem(listed.file)
            if problem is None:
                continue
            item = self._still(listed)
            if item is None or item.file.path != listed.file.path:
                # Moved by another command since the listing (deposited, a report): judged
                # where the state says now, never written again where it was.
                problem = None if item is None else file_problem(item.file)
                if item is None or problem is None:
                    continue
            found = left_at(self.sink, item) if problem == "missing" else None
            sent = deposited_since(item, found)
            left = found if sent is None else None
            if left is not None:
                problem = f"missing, left at {left}"
            error = self._repair(item, left) if repair and sent is None else sent
            report.issues.append(
                FileIssue(
                    item.batch.batch_id,
                    item.batch.certifier.key,
                    item.state,
                    item.file.path,
                    problem,
                    repaired=repair and error is None,
                    repair_error=error,
                    left_at=left,
                )
            )
        report.strays = stray_files(self.store, self.sink.files_to_upload())
        if repair:
            report.strays = [set_aside(self.sink, stray) for stray in report.strays]
        return report

    def _repair(self, item: ReleasedBatch, left: Path | None) -> str | None:
        """A file left elsewhere moved back (written again only if it is not whole there)."""
        if left is not None:
            moved = outcome_of(
                lambda: _moved(self.sink, replace(item.file, path=left), item.file.path)
            )
            if isinstance(moved, WriteFailed):
                return moved.error
            if file_problem(item.file) is None:
                return None
        return rewrite(self.sink, item)

    def _still(self, listed: ReleasedBatch) -> ReleasedBatch | None:
        """The batch as the state records it now (a file may have moved while the others were
        hashed), or None when it is no longer released. One batch read: its bytes do not
        change when it moves, only its state and path."""
        with self.store.reading() as reader:
            detail = reader.batch_detail(listed.batch.batch_id)
        if detail is None or detail.get("file") is None:
            return None
        state = BatchState(detail["state"])
        if state not in RELEASED:
            return None
        return replace(listed, state=state, file=replace(listed.file, path=Path(detail["file"])))


def put_back_missing(store: Store, sink: BatchSink, report: FlushReport, metrics: Metrics) -> None:
    """Put back in place every released file missing where the state says it is.

    A file found in another of its certifier's folders (a crash between recording a
    deposit or a report and moving the file) is moved where the state says. A `written`
    batch's file found nowhere is written again: its records wait for it, and the frozen
    batch gives the same bytes. Any other missing or altered file (a deposited batch's, a
    file edited in place) is `verify --repair`'s job.
    """
    with store.reading() as reader:
        released = reader.released_batches(PLACED)
    for listed in released:
        said = sink.misplaced(listed.file.path)
        if said is not None:  # moving or writing it here would empty another outbox
            report.notes.append(said)
            return
        if not is_missing(listed.file):
            continue
        with store.transaction() as tx:  # no other process records a move while it is judged
            item = _placed_now(tx, listed)
            if item is None or not is_missing(item.file) or _found_elsewhere(sink, item, report):
                continue
        if item.state is not BatchState.WRITTEN:
            continue
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
