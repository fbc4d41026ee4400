"""A flush's plan: which certifiers are due, and how their pending records split into files.

Read by a reader, before any batch is cut (reading every pending record takes no write lock):
each certifier due (or forced) gets the groups of members its files will hold, sized from the
sink's envelope and each passage's exact size. `streams/cut_group.py` then cuts each
planned group in a transaction of its own (a large one in parts), from the batch
`Planner.batch` frames.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from accrochage.errors import RenderError
from accrochage.models.batch import FrozenBatch, Member
from accrochage.models.registry import Certifier, Registry
from accrochage.models.vocabulary import SchemaVersion
from accrochage.sinks.base import BatchSink
from accrochage.state.base import PendingReads
from accrochage.streams.batching import (
    BatchLimits,
    Forced,
    aged_at,
    due_reason,
    files_for,
    is_forced,
)
from accrochage.streams.flush_report import FlushReport, NotDue


@dataclass(frozen=True, slots=True)
class PlannedGroup:
    """The members of one batch to cut, as planned, and why it is due."""

    certifier: Certifier
    reason: str
    members: list[Member]


@dataclass(frozen=True, slots=True)
class Plan:
    now: datetime
    groups: list[PlannedGroup]


@dataclass(frozen=True, slots=True)
class Planner:
    """What planning reads of the flusher: the certifiers, the limits, the sink's sizes and
    the schema version batches are cut in."""

    registry: Registry
    sink: BatchSink
    limits: BatchLimits
    schema_version: SchemaVersion

    def groups_due(
        self, reads: PendingReads, now: datetime, today: date, force: Forced, report: FlushReport
    ) -> list[PlannedGroup]:
        """The groups to cut of every certifier due (or forced); a certifier no longer
        configured is noted in `report`, its records left pending."""
        due: list[tuple[Certifier, str, int]] = []
        for stats in reads.pending_stats():
            certifier = self.registry.get(stats.certifier)
            if certifier is None:
                report.notes.append(
                    f"{stats.count} pending record(s) of {stats.certifier!r}, which is no "
                    "longer configured: add it back to [[certifiers]] to send them"
                )
                continue
            forced = is_forced(force, certifier.key)
            reason = "forced" if forced else due_reason(stats, now, today, self.limits)
            if reason is not None:
                due.append((certifier, reason, stats.count))
            else:
                report.not_due.append(
                    NotDue(certifier.key, stats.count, aged_at(stats, self.limits))
                )
        self.sink.expect(sum(count for _, _, count in due))
        plan: list[PlannedGroup] = []
        for certifier, reason, _ in due:
            groups = self._groups(reads, certifier, now)
            plan += [PlannedGroup(certifier, reason, group) for group in groups]
        return plan

    def _groups(
        self, reads: PendingReads, certifier: Certifier, now: datetime
    ) -> list[list[Member]]:
        template = self.batch(str(uuid.UUID(int=0)), now, certifier, 0)
        sizes = self.sink.sizes(template)
        members = reads.pending_members(certifier.key)
        exact = exact_sizes(reads, self.sink, template)
        return files_for(members, self.limits, sizes.envelope, sizes.per_code, exact)

    def batch(
        self, batch_id: str, now: datetime, certifier: Certifier, passages: int
    ) -> FrozenBatch:
        return FrozenBatch(
            batch_id,
            now,
            self.registry.emitter_for(certifier),
            certifier,
            self.schema_version,
            passages,
        )


def exact_sizes(
    reads: PendingReads, sink: BatchSink, batch: FrozenBatch
) -> Callable[[Member], int]:
    """The exact size of a member's passage in `batch`'s file (rendered from its content).

    A content that cannot be rendered counts its size bound: its file fails when written,
    naming the record, while every other record is cut (raised here, it failed the whole
    cut, every record of every certifier, at each flush)."""

    def size(member: Member) -> int:
        try:
            return sink.passage_size(batch, reads.content(member.record_id, member.version))
        except RenderError:
            return member.xml_bytes

    return size
