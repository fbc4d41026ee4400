"""The XML outbox: the first batch sink. Each batch becomes one XSD-checked file.

Large amounts are rendered in worker processes (the second core), so that the process that
ingests is not slowed by rendering and the XSD gate. A render process reads the frozen batch
from the store on its own (a reader opened from the store's location), so nothing but the
batch's header crosses the process boundary.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

from accrochage import heap
from accrochage.errors import AccrochageError, ConfigError, OutboxMismatch, StoreError
from accrochage.lifeline import exit_with, ignore_interrupt
from accrochage.models.batch import OUTBOX_FOLDERS, FrozenBatch, ReleasedFile, outbox_place
from accrochage.models.vocabulary import BatchState, SchemaVersion
from accrochage.pool import HelperDied, HelperPool
from accrochage.processes import RENDERING, helper_context
from accrochage.sinks.base import BatchSink, FileSizes, Outcome, outcome_of
from accrochage.sinks.outbox import file_name, files_to_upload, move_released, set_aside
from accrochage.sinks.profiles import profile_for
from accrochage.sinks.release_job import RenderJob as RenderJob
from accrochage.sinks.release_job import header_of, stored_passage
from accrochage.sinks.release_job import release_batch as release_batch
from accrochage.sinks.render import certification_head, envelope_bytes
from accrochage.sinks.schemas import MAX_FILE_BYTES, load_schema, schema_path
from accrochage.state.base import StoredContent, StoreLocation

LONGEST_CODE = "RNCP" + "9" * 20
PLACES = ("", *OUTBOX_FOLDERS.values())
CODE_BLOCK_SLACK = 64


RENDER_NICENESS = 10
"""Render processes yield the CPU to those that store events (see `_start_render_process`)."""


def _start_render_process(parent: int) -> None:
    """A render process ends with `parent`, and runs at a lower priority than the processes
    that store events: a file is due within the batching delay, an event's answer (an HTTP
    201, a Kafka offset committed) now; on a busy machine the files wait, the events do not."""
    ignore_interrupt()
    with contextlib.suppress(OSError):  # a sandbox may forbid it: render all the same
        os.nice(RENDER_NICENESS)
    exit_with(parent)  # after nice: its thread inherits it (Linux keeps one per thread)
    heap.settle()


def _settled(
    batch: FrozenBatch, future: Future[ReleasedFile], stopped: list[AccrochageError]
) -> Iterator[tuple[FrozenBatch, Outcome]]:
    """The batch's outcome; none when its render process died or could not read the state
    (noted in `stopped`): a batch whose file another process released before that is
    recorded all the same."""
    try:
        yield batch, outcome_of(future.result)
    except (HelperDied, StoreError) as exc:
        stopped.append(exc)


class XmlOutbox(BatchSink):
    """Files under `outbox/<certifier>/`, named from the batch, released atomically.

    `xsd` replaces the bundled schema of `schema_version` (the configured version); batches
    of another version (cut before a change of configuration) keep their bundled schema.
    """

    def __init__(
        self,
        outbox: Path,
        store: StoreLocation,
        *,
        schema_version: SchemaVersion,
        xsd: Path | None,
        render_processes: int = 0,
        pool_threshold: int = 0,
    ) -> None:
        self.outbox = outbox.absolute()
        """Absolute: the state records where each file is, whatever the reader's folder."""
        self.store = store
        self.schema_version = schema_version
        self.xsd_override = xsd
        self.render_processes = render_processes
        self.pool_threshold = pool_threshold
        """Fewer passages than this render in-process (a one-off command avoids the pool)."""
        self._pool: HelperPool | None = None
        load_schema(self.xsd_for(schema_version))

    def xsd_for(self, version: SchemaVersion) -> Path:
        override = self.xsd_override if version == self.schema_version else None
        return schema_path(profile_for(version), override)

    def place(self, certifier: str, file_name: str, state: BatchState) -> Path:
        return outbox_place(self.outbox, certifier, file_name, state)

    def find(self, certifier: str, file_name: str) -> Path | None:
        for folder in PLACES:
            candidate = self.outbox / certifier / folder / file_name
            if candidate.is_file():
                return candidate
        return None

    def move(self, source: Path, target: Path) -> None:
        for path in (source, target):
            said = self.misplaced(path)
            if said is not None:
                raise OutboxMismatch(said)
        move_released(source, target)

    def files_to_upload(self) -> list[tuple[str, Path]]:
        return files_to_upload(self.outbox)

    def set_aside(self, path: Path) -> Path:
        said = self.misplaced(path)
        if said is not None:
            raise OutboxMismatch(said)
        return set_aside(path)

    def check_writable(self) -> None:
        """The outbox exists (created if need be) and this user may create files in it."""
        try:
            self.outbox.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.outbox, prefix=".accrochage-probe-"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"paths.outbox {self.outbox} cannot be written ({exc.strerror or exc}): create "
                "it and let this user write in it, or set paths.outbox to a folder it may "
                "write; nothing was recorded under it"
            ) from None

    def misplaced(self, path: Path) -> str | None:
        if path.parts[: len(self.outbox.parts)] == self.outbox.parts:
            return None
        return (
            f"the state records {path}, outside this process's paths.outbox ({self.outbox}): "
            "another process with another paths.outbox (or working directory, for a relative "
            "one) uses this state; nothing was moved. Give every process on this state the "
            "same absolute paths.outbox, then restart this one"
        )

    def file_name(self, batch: FrozenBatch) -> str:
        return file_name(header_of(batch))

    def sizes(self, batch: FrozenBatch) -> FileSizes:
        header = header_of(batch)
        per_code = len(certification_head(header, "RNCP", LONGEST_CODE)) + CODE_BLOCK_SLACK
        return FileSizes(envelope_bytes(header, 0), per_code)

    def passage_size(self, batch: FrozenBatch, content: StoredContent) -> int:
        return len(stored_passage(content, profile_for(batch.passage_schema)))

    def _job(self, batch: FrozenBatch) -> RenderJob:
        """A frozen batch was cut within the `max_file_bytes` of its day, from its passages'
        exact sizes: it is written (and written again, byte for byte) whatever the setting is
        now, within the CDC's own limit only. Held to a setting lowered since, a batch cut but
        not written, or a file to repair, could never be written again."""
        return RenderJob(
            self.store,
            self.outbox,
            batch,
            self.xsd_for(batch.schema_version),
            MAX_FILE_BYTES,
        )

    def write(self, batch: FrozenBatch) -> ReleasedFile:
        return release_batch(self._job(batch))

    def write_again(self, batch: FrozenBatch, state: BatchState) -> ReleasedFile:
        job = replace(self._job(batch), subfolder=OUTBOX_FOLDERS.get(state, ""))
        return release_batch(job)

    def expect(self, passages: int) -> None:
        """The render processes' fork server starts now when `write_many` will need them: its
        import of what they run (`processes.RENDERING`, about half a second of CPU) then runs
        while the flush plans and cuts, not after the first batch is cut (a forced flush of
        100,000 events: bench/HISTORY.md, session 47). Nothing to do while the render
        processes run."""
        running = self._pool is not None and not self._pool.broken
        if passages > 0 and self._renders_in_processes(passages) and not running:
            helper_context(RENDERING)

    def _renders_in_processes(self, passages: int) -> bool:
        """Whether `passages` passages are written by the render processes (a one-off command
        writes fewer than `pool_threshold` in its own process, see `write_many`)."""
        return bool(self.render_processes) and passages >= self.pool_threshold

    def write_many(
        self, batches: Iterable[FrozenBatch], *, passages: int = 0
    ) -> Iterator[tuple[FrozenBatch, Outcome]]:
        """In the render processes (when there are enough passages to be worth starting them),
        each batch as soon as it comes; outcomes in the batches' order, each as soon as it and
        those before it are done."""
        if not self._renders_in_processes(passages):
            yield from super().write_many(batches)
            return
        pool = self._render_pool()
        running: deque[tuple[FrozenBatch, Future[ReleasedFile]]] = deque()
        stopped: list[AccrochageError] = []
        for batch in batches:
            try:
                running.append((batch, pool.submit(release_batch, self._job(batch))))
            except HelperDied as exc:
                stopped.append(exc)
                break  # the batches not cut yet are cut at the next flush
            while running and running[0][1].done():
                yield from _settled(*running.popleft(), stopped)
            if stopped:
                break
        for done, future in running:
            yield from _settled(done, future, stopped)
        if any(isinstance(exc, HelperDied) for exc in stopped):
            self.close()  # the next flush starts new render processes, and writes these again
        if stopped:
            raise stopped[0]

    def _render_pool(self) -> HelperPool:
        if self._pool is None or self._pool.broken:
            self.close()
            self._pool = HelperPool(
                self.render_processes,
                initializer=_start_render_process,
                initargs=(os.getpid(),),
                name="render",
                preload=RENDERING,
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
