"""The SUPPRESSION cut (schema 1.1.5, CONTRACT §9): accepted records that were revoked or
corrected, withdrawn from the CDC under the same rules as creations (size, age, the deadline
margin of their open correction request), one file per certifier and per way they were sent.

Planned by a reader, without the write lock (`plan_suppressions`): who is due and how the
members split into files, each passage's exact size rendered from its content when the size
bounds cannot place it. Each file is then cut in a transaction of its own, a large one in
parts (`cut_group.cut_in_parts`): the writer waits for one part at most, where a mass
revocation of 100,000 records once held it for the whole cut. Each part takes only the
members still to withdraw with the version planned (`Transaction.take_suppressible`), so
two flushers never send the same withdrawal twice.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from accrochage.models.batch import FrozenBatch, Member, PendingStats, SentAs, Suppressible
from accrochage.models.record import HistoryEntry
from accrochage.models.vocabulary import BatchState, CdcAction, SchemaVersion
from accrochage.models.withdrawal import cut_suppression_entry
from accrochage.sinks.base import BatchSink
from accrochage.state.base import PendingReads, Store
from accrochage.streams.batching import (
    BatchLimits,
    Forced,
    aged_at,
    due_reason,
    files_for,
    is_forced,
)
from accrochage.streams.cut_group import Part, cut_in_parts
from accrochage.streams.flush_plan import exact_sizes

WAITING = "record waiting for its SUPPRESSION"
"""What the due reason calls the records of a SUPPRESSION to cut."""
Wait = Callable[[str, int, datetime], None]
"""Told of each certifier's records left to wait: its key, how many, when `max_delay` cuts them."""


@dataclass(frozen=True, slots=True)
class PlannedSuppression:
    """The members of one SUPPRESSION file to cut, as planned, how they were sent, and why
    the file is due."""

    sent_as: SentAs
    reason: str
    members: list[Member]


@dataclass(frozen=True, slots=True)
class SuppressionPlan:
    files: list[PlannedSuppression]
    notes: list[str]
    """For the operator: records left to withdraw of a certifier no longer configured."""


def plan_suppressions(
    reads: PendingReads,
    sink: BatchSink,
    limits: BatchLimits,
    schema_version: SchemaVersion,
    configured: Callable[[str], bool],
    now: datetime,
    today: date,
    *,
    force: Forced,
    on_wait: Wait | None = None,
) -> SuppressionPlan:
    """The SUPPRESSION files due. `on_wait`: told of those not due yet (`flush` says why it
    cut nothing after a revocation, and when)."""
    candidates = reads.suppressible()
    if not candidates:
        return SuppressionPlan([], [])
    deadlines = reads.correction_deadlines([c.member.record_id for c in candidates])
    by_way: dict[tuple[str, SentAs], list[Suppressible]] = defaultdict(list)
    for item in candidates:
        by_way[(item.certifier, item.sent_as)].append(item)
    plan = SuppressionPlan([], [])
    for (certifier, sent_as), items in by_way.items():
        if not configured(certifier):
            plan.notes.append(
                f"{len(items)} record(s) of {certifier!r} to withdraw from the CDC, which is "
                "no longer configured: add it back to [[certifiers]] to send their SUPPRESSION"
            )
            continue
        stats = _stats(certifier, items, deadlines)
        forced = is_forced(force, certifier)
        reason = "forced" if forced else due_reason(stats, now, today, limits, WAITING)
        if reason is not None:
            members = [i.member for i in items]
            for group in _files(reads, sink, limits, schema_version, sent_as, members, now):
                plan.files.append(PlannedSuppression(sent_as, reason, group))
        elif on_wait is not None:
            on_wait(certifier, stats.count, aged_at(stats, limits))
    return plan


def _stats(certifier: str, items: list[Suppressible], deadlines: dict[str, date]) -> PendingStats:
    due = [deadlines[i.member.record_id] for i in items if i.member.record_id in deadlines]
    return PendingStats(
        certifier,
        len(items),
        min(i.waiting_since for i in items),
        min(due) if due else None,
    )


def _files(
    reads: PendingReads,
    sink: BatchSink,
    limits: BatchLimits,
    schema_version: SchemaVersion,
    sent_as: SentAs,
    members: list[Member],
    now: datetime,
) -> list[list[Member]]:
    template = suppression_batch(str(uuid.UUID(int=0)), now, schema_version, sent_as, 0)
    sizes = sink.sizes(template)
    exact = exact_sizes(reads, sink, template)
    return files_for(members, limits, sizes.envelope, sizes.per_code, exact)


def suppression_batch(
    batch_id: str, now: datetime, schema_version: SchemaVersion, sent_as: SentAs, passages: int
) -> FrozenBatch:
    return FrozenBatch(
        batch_id,
        now,
        sent_as.emitter,
        sent_as.certifier,
        schema_version,
        passages,
        CdcAction.SUPPRESSION,
        sent_as.schema_version,
    )


def cut_suppression(
    store: Store,
    sink: BatchSink,
    schema_version: SchemaVersion,
    planned: PlannedSuppression,
    now: datetime,
    stopping: threading.Event,
) -> FrozenBatch | None:
    """The SUPPRESSION batch cut, None when no planned member was still to withdraw as
    planned (another flusher cut it, its correction was taken back, the CDC answered)."""

    def first(members: Part) -> FrozenBatch | None:
        batch_id = str(uuid.uuid4())
        with store.transaction() as tx:
            taken = tx.take_suppressible(members, batch_id, now)
            if not taken:
                return None
            still = [m for m in members if m.record_id in taken]
            batch = suppression_batch(batch_id, now, schema_version, planned.sent_as, len(still))
            tx.add_batch(batch, sink.file_name(batch), still, entries(still, taken, batch))
        return batch

    def then(batch: FrozenBatch, members: Part) -> int | None:
        with store.transaction() as tx:
            info = tx.batch(batch.batch_id)
            if info is None or info.state is not BatchState.CUT:
                return None
            taken = tx.take_suppressible(members, batch.batch_id, now)
            still = [m for m in members if m.record_id in taken]
            tx.add_to_batch(batch.batch_id, still, entries(still, taken, batch))
        return len(still)

    def entries(members: Part, revoked: dict[str, bool], batch: FrozenBatch) -> list[HistoryEntry]:
        return [
            cut_suppression_entry(
                m.record_id, revoked[m.record_id], now, planned.reason, batch.batch_id
            )
            for m in members
        ]

    return cut_in_parts(store, planned.members, first, then, stopping)
