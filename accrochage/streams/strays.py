"""Files among those to upload that the state does not know as files to upload.

A certifier's top folder holds only its files still to upload (CONTRACT §7). Two things put
others there, and depositing them sends passages twice: a state restored from a backup
(the files cut since stay, while the events sent again are cut into new files), and a copy
left beside a file the state keeps elsewhere (a kill between writing a file again and
moving it). `verify` and `doctor` name them; `verify --repair` moves them to the certifier's
`unknown/` folder, never deletes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from accrochage.errors import AccrochageError
from accrochage.models.batch import batch_ids_in
from accrochage.models.vocabulary import BatchState
from accrochage.sinks.base import BatchSink
from accrochage.state.base import BatchFile, Store

STILL_TO_UPLOAD = (BatchState.CUT, BatchState.FAILED, BatchState.WRITTEN)
"""A batch whose file belongs in the top folder: cut (its file appears before the state
records it written), failed (written again at the next flush) or written."""


@dataclass(frozen=True, slots=True)
class StrayFile:
    certifier: str
    path: Path
    why: str
    set_aside_to: Path | None = None
    error: str | None = None


def stray_reason(certifier: str, path: Path, known: dict[str, BatchFile]) -> str | None:
    """Why the file at `path` (in `certifier`'s top folder) is not to upload, or None."""
    ids = batch_ids_in(path.name)
    found = [known[i] for i in ids if i in known]
    mine = [f for f in found if f.certifier == certifier and f.file_name == path.name]
    if not mine:
        return (
            "no batch of the state has this file (cut after the backup the state was "
            "restored from, or copied here): do not deposit it"
        )
    batch = mine[0]
    if batch.state in STILL_TO_UPLOAD:
        return None
    if batch.archived:  # no flush moves it anywhere now
        return (
            f"a copy of a file {batch.state.value} and archived away since (`accrochage "
            "archived`): do not deposit it again"
        )
    if batch.path is None or not batch.path.is_file() or _same_file(batch.path, path):
        # Recorded elsewhere, not moved yet: the next flush moves it there. Or recorded
        # here by another spelling (a relative path of the first versions): itself.
        return None
    return f"a copy of a file {batch.state.value} and kept at {batch.path}: do not deposit it again"


def _same_file(one: Path, other: Path) -> bool:
    """Whether both name one file (False when either is gone: moved meanwhile)."""
    try:
        return one.samefile(other)
    except OSError:
        return False


def stray_files(store: Store, listed: list[tuple[str, Path]]) -> list[StrayFile]:
    """Of the files to upload (`BatchSink.files_to_upload`), those the state does not know as
    such, with why."""
    ids = sorted({i for _, path in listed for i in batch_ids_in(path.name)})
    with store.reading() as reader:
        known = reader.batch_files(ids)
    strays = []
    for certifier, path in listed:
        why = stray_reason(certifier, path, known)
        if why is not None:
            strays.append(StrayFile(certifier, path, why))
    return strays


def set_aside(sink: BatchSink, stray: StrayFile) -> StrayFile:
    """Move a stray file to its certifier's `unknown/` folder; what happened."""
    try:
        moved = sink.set_aside(stray.path)
    except (AccrochageError, OSError) as exc:
        return replace(stray, error=f"{type(exc).__name__}: {exc}")
    return replace(stray, set_aside_to=moved)
