"""The batch sink: where a frozen batch goes to become a file the CDC will take.

The flusher (policy: what is due, how it is cut) hands frozen batches to a sink and records
what the sink answers; it knows nothing of XML. The XML outbox (`xml_outbox.py`) is the first
sink; another target (a portal upload, an object store) is another subclass beside it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from accrochage import failpoints
from accrochage.errors import AccrochageError, StoreError
from accrochage.models.batch import FrozenBatch, ReleasedFile
from accrochage.models.vocabulary import BatchState
from accrochage.pool import HelperDied
from accrochage.state.base import StoredContent

log = logging.getLogger("accrochage.outbox")


@dataclass(frozen=True, slots=True)
class FileSizes:
    """The bytes a file spends besides its passages: its envelope, and each code's block."""

    envelope: int
    per_code: int


class BatchSink(ABC):
    @abstractmethod
    def file_name(self, batch: FrozenBatch) -> str:
        """The name the batch's file will have: deterministic, stored at the cut."""

    @abstractmethod
    def sizes(self, batch: FrozenBatch) -> FileSizes: ...

    @abstractmethod
    def passage_size(self, batch: FrozenBatch, content: StoredContent) -> int:
        """The exact bytes of one passage in this batch's file."""

    def expect(self, passages: int) -> None:
        """About `passages` passages will be written soon (what a flush plans, told before it
        cuts): a sink whose writing needs helper processes may start what they need
        meanwhile. A sink that needs none: nothing to do."""
        return None

    @abstractmethod
    def write(self, batch: FrozenBatch) -> ReleasedFile:
        """Write, check and release one batch's file; raise when it cannot be released."""

    def write_again(self, batch: FrozenBatch, state: BatchState) -> ReleasedFile:
        """Write a released batch's file again where a batch in `state` keeps it (a file
        missing or altered there). A sink with folders writes it there directly: written
        among the files to upload and then moved, a kill in between left a copy that would
        be deposited twice. Without folders: as `write`."""
        return self.write(batch)

    @abstractmethod
    def place(self, certifier: str, file_name: str, state: BatchState) -> Path:
        """Where the file of a batch in `state` belongs (the operator's view of what is left)."""

    @abstractmethod
    def find(self, certifier: str, file_name: str) -> Path | None:
        """The batch's file wherever it is among its certifier's places, or None."""

    @abstractmethod
    def move(self, source: Path, target: Path) -> None:
        """Move a released file atomically; nothing to do when it is there already."""

    def files_to_upload(self) -> list[tuple[str, Path]]:
        """(certifier key, file) of every file in the place of the files still to upload,
        known to the state or not (`streams/strays.py` compares them). A sink that writes
        no file: none."""
        return []

    def set_aside(self, path: Path) -> Path:
        """Move a file the state does not know out of the files to upload; where it went."""
        raise NotImplementedError(f"{type(self).__name__} writes no file to set aside")

    def misplaced(self, path: Path) -> str | None:
        """Why a recorded `path` is not this sink's to move or write (outside its outbox: it
        belongs to another process's `paths.outbox`), or None."""
        return None

    def check_writable(self) -> None:
        """`ConfigError` when no file could be written where this sink writes them: checked
        at a service's start, and before files are recorded there, not at every tick after.
        A sink that writes no file: nothing to check."""
        return None

    def move_recorded(self, moves: Sequence[tuple[Path, Path]], step: str) -> None:
        """Move files whose new place the state has just recorded (committed).

        Recorded first, moved after: a crash in between leaves a file where it was, and the
        next flush moves it where the state says. `step` names the crash points around it.
        """
        failpoints.reached(f"{step}:recorded")
        for source, target in moves:
            try:
                if source.is_file():
                    self.move(source, target)
            except OSError as exc:  # the state is committed: the file follows it later
                log.warning(
                    "%s could not be moved to %s (%s); the next flush puts it where the state says",
                    source,
                    target,
                    type(exc).__name__,
                )
        failpoints.reached(f"{step}:moved")

    def write_many(
        self, batches: Iterable[FrozenBatch], *, passages: int = 0
    ) -> Iterator[tuple[FrozenBatch, Outcome]]:
        """Each batch with its released file, or why it failed; one failure stops no other.

        `batches` may be produced as they are cut: a sink writing in other processes starts
        each one as it comes. `passages`: about how many in all (how much work is ahead)."""
        for batch in batches:
            yield batch, outcome_of(partial(self.write, batch))

    def close(self) -> None:  # noqa: B027 - a sink holding nothing has nothing to release
        """Release what the sink holds (worker processes, connections)."""


@dataclass(frozen=True, slots=True)
class WriteFailed:
    """Why a batch's file failed. `lasting`: written again from the same batch, it fails the
    same way (what the batch holds, the XSD); otherwise the folder or the disk may be fixed
    at any moment (`streams/failed_retries.py`)."""

    error: str
    lasting: bool

    def __str__(self) -> str:
        return self.error


Outcome = ReleasedFile | WriteFailed


def outcome_of(write: Callable[[], ReleasedFile]) -> Outcome:
    """The released file, or why this batch's file failed. A helper process that died, or a
    state that cannot be read, is no fault of the batch: raised (the flush stops and says
    so), the batch stays to write."""
    try:
        return write()
    except (HelperDied, StoreError):
        raise
    except (AccrochageError, OSError, ValueError) as exc:
        return WriteFailed(f"{type(exc).__name__}: {exc}", lasting=not isinstance(exc, OSError))
