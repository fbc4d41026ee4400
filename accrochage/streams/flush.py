"""The flusher: which certifiers are due, how their pending records are cut, what was written.

Policy only. A batch is frozen in the store when it is cut (id, timestamp, emitter and
certifier identifiers, schema version, members and the content version of each); the sink
writes it from that alone, so a batch cut before a crash is written again at the next flush
with the same name and the same bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from accrochage.models.batch import FrozenBatch, Member, ReleasedFile
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.lifecycle import cut_entry
from accrochage.models.registry import Certifier, Registry
from accrochage.models.vocabulary import BatchState, SchemaVersion
from accrochage.sinks.base import BatchSink
from accrochage.state.base import Store, Transaction
from accrochage.streams.batching import BatchLimits, due_reason, split
from accrochage.streams.verify import file_problem, rewrite


@dataclass(frozen=True, slots=True)
class CutBatch:
    batch_id: str
    certifier: str
    passages: int
    reason: str


@dataclass(frozen=True, slots=True)
class WrittenBatch:
    batch_id: str
    certifier: str
    path: Path
    passages: int
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class FailedBatch:
    batch_id: str
    certifier: str
    error: str


@dataclass(slots=True)
class FlushReport:
    cut: list[CutBatch] = field(default_factory=list)
    written: list[WrittenBatch] = field(default_factory=list)
    failed: list[FailedBatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class Flusher:
    def __init__(
        self,
        store: Store,
        sink: BatchSink,
        registry: Registry,
        clock: Clock,
        limits: BatchLimits,
        schema_version: SchemaVersion,
    ) -> None:
        self.store = store
        self.sink = sink
        self.registry = registry
        self.clock = clock
        self.limits = limits
        self.schema_version = schema_version

    def flush(self, *, force: bool = False) -> FlushReport:
        report = FlushReport()
        self.cut(report, force=force)
        self.write_unwritten(report)
        self.rewrite_missing(report)
        return report

    def cut(self, report: FlushReport, *, force: bool = False) -> None:
        now = self.clock.now().replace(microsecond=0)
        today = paris_today(self.clock)
        with self.store.transaction() as tx:
            for stats in tx.pending_stats():
                certifier = self.registry.get(stats.certifier)
                if certifier is None:
                    report.notes.append(
                        f"{stats.count} pending record(s) of {stats.certifier!r}, which is no "
                        "longer configured: add it back to [[certifiers]] to send them"
                    )
                    continue
                reason = "forced" if force else due_reason(stats, now, today, self.limits)
                if reason is not None:
                    self._cut_certifier(tx, certifier, now, reason, report)

    def _cut_certifier(
        self,
        tx: Transaction,
        certifier: Certifier,
        now: datetime,
        reason: str,
        report: FlushReport,
    ) -> None:
        template = self._batch(str(uuid.UUID(int=0)), now, certifier, 0)
        sizes = self.sink.sizes(template)
        members = tx.pending_members(certifier.key)
        groups = _split_or_none(members, self.limits, sizes.envelope, sizes.per_code)
        if groups is None or len(groups) > -(-len(members) // self.limits.max_records):
            exact = [
                Member(m.record_id, m.version, m.code, self._exact_size(tx, template, m))
                for m in members
            ]
            groups = split(exact, self.limits, sizes.envelope, sizes.per_code)
        for group in groups:
            batch = self._batch(str(uuid.uuid4()), now, certifier, len(group))
            history = (cut_entry(m.record_id, now, reason, batch.batch_id) for m in group)
            tx.add_batch(batch, self.sink.file_name(batch), group, history)
            report.cut.append(CutBatch(batch.batch_id, certifier.key, len(group), reason))

    def _exact_size(self, tx: Transaction, batch: FrozenBatch, member: Member) -> int:
        """Render one passage to know its exact size.

        Only needed when the size bounds stored at ingest would make more files than
        `max_records` alone (a large max_records, or a small max_file_bytes).
        """
        return self.sink.passage_size(batch, tx.content(member.record_id, member.version))

    def _batch(
        self, batch_id: str, now: datetime, certifier: Certifier, passages: int
    ) -> FrozenBatch:
        return FrozenBatch(
            batch_id, now, self.registry.emitter, certifier, self.schema_version, passages
        )

    def write_unwritten(self, report: FlushReport) -> None:
        """Hand every batch cut but not written (or failed) to the sink; record each outcome."""
        with self.store.reading() as reader:
            batches = reader.batches_to_write()
        for batch, outcome in self.sink.write_many(batches):
            self._record(batch, outcome, report)

    def rewrite_missing(self, report: FlushReport) -> None:
        """Write again the file of every `written` batch whose file is gone from the outbox.

        Its records are `batched` and wait for that file: without it nothing would ever be
        deposited. The frozen batch gives the same bytes. Any other missing or altered file
        (a deposited batch, a file edited in place) is `verify --repair`'s job.
        """
        with self.store.reading() as reader:
            written = reader.released_batches((BatchState.WRITTEN,))
        for item in written:
            if file_problem(item.file) != "missing":
                continue
            error = rewrite(self.sink, item)
            key = item.batch.certifier.key
            if error is not None:
                report.failed.append(FailedBatch(item.batch.batch_id, key, error))
                continue
            report.notes.append(f"rewrote the missing file {item.file.path}")
            report.written.append(
                WrittenBatch(
                    item.batch.batch_id,
                    key,
                    item.file.path,
                    item.file.passages,
                    item.file.size,
                    item.file.sha256,
                )
            )

    def _record(self, batch: FrozenBatch, outcome: ReleasedFile | str, report: FlushReport) -> None:
        key = batch.certifier.key
        if isinstance(outcome, str):
            with self.store.transaction() as tx:
                tx.batch_failed(batch.batch_id, outcome)
            report.failed.append(FailedBatch(batch.batch_id, key, outcome))
            return
        with self.store.transaction() as tx:
            tx.batch_written(batch.batch_id, outcome, self.clock.now())
        report.written.append(
            WrittenBatch(
                batch.batch_id, key, outcome.path, outcome.passages, outcome.size, outcome.sha256
            )
        )

    def close(self) -> None:
        self.sink.close()


def _split_or_none(
    members: list[Member], limits: BatchLimits, envelope: int, per_code: int
) -> list[list[Member]] | None:
    try:
        return split(members, limits, envelope, per_code)
    except ValueError:
        return None
