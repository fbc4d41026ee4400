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
from accrochage.models.vocabulary import RELEASED, BatchState
from accrochage.sinks.base import BatchSink, WriteFailed, outcome_of
from accrochage.state.base import ReleasedBatch, Store
from accrochage.streams.left_behind import deposited_since, left_at
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
