"""The store: transactions, readers, and the moves of the files it records."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from accrochage.errors import StoreError
from accrochage.models.batch import (
    relocated,
)
from accrochage.state.base.reader import Reader, StoreLocation
from accrochage.state.base.transaction import Transaction
from accrochage.state.refdata import RefdataStorage
from accrochage.state.values import (
    WriteHolder,
)


@dataclass(frozen=True, slots=True)
class WriteTime:
    """How one write transaction shared the state with the other writers, in seconds."""

    waited: float
    """From asking to write to holding the state: the time another writer (of this process or
    another) kept it."""
    held: float | None
    """From holding the state to letting it go, the other writers waiting meanwhile; None
    when it never held it (it gave up waiting: `StoreBusyError`)."""


WriteObserver = Callable[[WriteTime], None]
"""Told of each write transaction once it let go of the state (a metric, a buffer to ship);
called in the writing thread, it must be quick and never raise."""


class Store(ABC):
    location: StoreLocation
    write_observer: WriteObserver | None = None
    """Told of each write transaction's `WriteTime` (`observe_writes`); None: no one."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A unit of work: commits at the end of the block, rolls back if it raises."""

    def cutting(self) -> AbstractContextManager[None]:
        """Held by a flusher across a batch cut in several transactions, and while it reads
        the batches to write: no batch is written while it is still being cut
        (`state/sqlite/cut_lock.py`). A store of one process and one flusher: nothing."""
        return nullcontext()

    def reader(self) -> Reader:
        """A reader of its own for the caller to keep (and close)."""
        return self.location.open_reader()

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """A reader for one block of queries."""
        reader = self.reader()
        try:
            yield reader
        finally:
            reader.close()

    def offsets(self, source: str) -> dict[int, int]:
        with self.reading() as reader:
            return reader.offsets(source)

    def log_marks(self, source: str) -> dict[int, str]:
        with self.reading() as reader:
            return reader.log_marks(source)

    def relocate_files(self, outbox: Path, before: Callable[[], None] | None = None) -> int:
        """Record under `outbox` the files recorded under another outbox (the state and its
        outbox moved or restored elsewhere, or the state copied): the batches' files are
        where the configuration says the outbox is. Before, a moved state went on reading,
        moving and rewriting files in the old folder, and a copy moved files in and out of
        the original's outbox. How many were recorded anew; nothing is written when none.
        `before`: run when there are files to record, before they are (it may refuse)."""
        moves = self._relocations(outbox)
        if not moves:
            return 0
        if before is not None:
            before()
        with self.transaction() as tx:
            return sum(tx.record_file_path(batch_id, old, new) for batch_id, old, new in moves)

    def misplaced_files(self, outbox: Path) -> int:
        """How many files `relocate_files(outbox)` would record anew (nothing written)."""
        return len(self._relocations(outbox))

    def _relocations(self, outbox: Path) -> list[tuple[str, Path, Path]]:
        with self.reading() as reader:
            return [
                (batch_id, recorded, now)
                for batch_id, certifier, state, recorded in reader.file_paths()
                if (now := relocated(recorded, certifier, state, outbox)) is not None
            ]

    def observe_writes(self, observer: WriteObserver | None) -> None:
        """From now on, tell `observer` how long each write transaction waited for the state
        and held it."""
        self.write_observer = observer

    def write_holder(self) -> WriteHolder | None:
        """The writer holding the state now, of this process or another; None when it is
        free (a store whose writers never wait on each other: always)."""
        return None

    def let_writers_in(self) -> None:
        """Between two transactions of one long job (a batch cut or superseded in parts): a
        writer that waited for the state takes it before the job's next transaction. A store
        whose writers never wait: nothing to do."""
        return None

    def stop_waiting(self) -> None:
        """Writes of this store no longer wait for another writer (a service being stopped):
        one waiting gives up now, later ones at once, each with `StoreBusyError`; a free
        state is still written. A store whose writers never wait: nothing to do."""
        return None

    @property
    def waiting_stopped(self) -> bool:
        """Whether `stop_waiting` was called: a writer that retries while another holds the
        state (a log's group) gives up instead of retrying at once, again and again."""
        return False

    def refdata(self) -> RefdataStorage:
        """The reference data (CONTRACT §11) kept beside the records."""
        raise StoreError(f"{type(self).__name__} keeps no reference data")

    @abstractmethod
    def close(self) -> None: ...
