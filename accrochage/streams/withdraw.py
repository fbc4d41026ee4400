"""What the flusher does for records the CDC holds, or may soon hold (CONTRACT §9).

- **Superseded files.** A CREATION file written but never deposited, holding a record that was
  corrected or revoked since, is replaced before anyone uploads it: the batch becomes
  `superseded`, its file moves to `superseded/`, and its records are cut again (the corrected
  one with its correction, a revoked one withdrawn). Sending a file we know to be out of date
  would only start a suppression the day its report comes. If the file was uploaded anyway
  (without `accrochage deposited`), its report is still applied to the content it carried.
- **Superseded SUPPRESSION files.** A SUPPRESSION file never deposited that holds a record
  whose correction was taken back (the content the CDC holds sent again) is replaced the same
  way: that record keeps what the CDC holds, the others are cut again.
- **Suppressions** (schema 1.1.5): accepted records that were revoked or corrected are cut into
  SUPPRESSION batches under the same rules as creations (size, age, the deadline margin of their
  open correction request), one file per certifier and per way they were sent.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

from accrochage.errors import RenderError
from accrochage.models.batch import (
    BatchInfo,
    FrozenBatch,
    Member,
    PendingStats,
    SentAs,
    Suppressible,
)
from accrochage.models.vocabulary import SUPERSEDABLE, BatchState, CdcAction, SchemaVersion
from accrochage.models.withdrawal import (
    apply_superseded,
    apply_suppression_superseded,
    cut_suppression_entry,
    superseded_plain,
)
from accrochage.sinks.base import BatchSink
from accrochage.state.base import PendingReads, Transaction
from accrochage.streams.batching import (
    BatchLimits,
    Forced,
    aged_at,
    due_reason,
    files_for,
    is_forced,
)
from accrochage.streams.redecode import Decodes

WAITING = "record waiting for its SUPPRESSION"
"""What the due reason calls the records of a SUPPRESSION to cut."""
SupersededMove = tuple[Path, Path]
Cut = Callable[[FrozenBatch, int, str], None]
"""Told of each batch cut: the batch, its passages, why."""
Wait = Callable[[str, int, datetime], None]
"""Told of each certifier's records left to wait: its key, how many, when `max_delay` cuts them."""


class Superseded(NamedTuple):
    done: bool
    """Superseded now (it was still to be)."""
    move: SupersededMove | None
    """The move of its file to make once committed, if it has one."""
    whole: bool = True
    """Every member gone back; False: plain members left to `return_members` (`plain_limit`)."""


def supersede_if_due(
    tx: Transaction,
    batch_id: str,
    sink: BatchSink,
    decode: Decodes,
    now: datetime,
    states: tuple[BatchState, ...] = SUPERSEDABLE,
    cause: str | None = None,
    plain_limit: int = -1,
) -> Superseded:
    """`batch_id`, listed by `tx.to_supersede()` (the out-of-date files never deposited, oldest
    first) in an earlier transaction, superseded if it is
    still never deposited (an operator may have recorded its deposit meanwhile). A
    transaction a batch: a mass correction may supersede hundreds, a tenth of a second each.
    `states`: those it may be superseded in (a header changed supersedes a batch not written
    yet too); `cause`: why, when not one of its records (its members' history says it);
    `plain_limit`: as for `return_members`."""
    info = tx.batch(batch_id)
    if info is None or info.state not in states:
        return Superseded(False, None)
    whole = return_members(tx, info, decode, now, cause, plain_limit)
    target = None
    if info.file_path is not None:
        target = sink.place(info.certifier, info.file_name, BatchState.SUPERSEDED)
    tx.batch_superseded(batch_id, target)
    move = None if info.file_path is None or target is None else (info.file_path, target)
    return Superseded(True, move, whole)


def supersede_batch(
    tx: Transaction,
    batch_id: str,
    sink: BatchSink,
    decode: Decodes,
    now: datetime,
    cause: str | None = None,
) -> SupersededMove | None:
    """One batch never deposited superseded: each member goes back to be cut again (see
    `apply_superseded`). The move of its file to make once committed, if it has one."""
    return supersede_if_due(tx, batch_id, sink, decode, now, tuple(BatchState), cause).move


def return_members(
    tx: Transaction,
    info: BatchInfo,
    decode: Decodes,
    now: datetime,
    cause: str | None = None,
    plain_limit: int = -1,
) -> bool:
    """The members of `info`, a batch superseded or being, back to be cut again: those that
    wait for nothing by one statement (`superseded_plain`), the others (revoked, corrected)
    through `apply_superseded`. `plain_limit`: at most so many plain members go back in
    this transaction (-1: all), the others left batched in it (`streams/supersede_due.py`
    returns them in transactions of their own); whether none is left."""
    batch_id = info.batch_id
    if info.action is CdcAction.CREATION:
        written = info.file_path is not None
        plain = superseded_plain(batch_id, now, written=written, cause=cause)
        returned = tx.return_plain(plain, info.cut_at or now, plain_limit)
        if 0 <= plain_limit <= returned:
            return False
    changes = []
    for record in tx.records_in_batch(batch_id):  # the plain members returned: the others
        if info.action is CdcAction.SUPPRESSION:
            change = apply_suppression_superseded(record, batch_id, now, info.cut_at)
        else:
            correction = None
            if record.correction_version is not None and not record.revocation_pending:
                correction = decode(tx, record.record_id, record.correction_version)
            change = apply_superseded(
                record,
                batch_id,
                now,
                correction,
                info.cut_at,
                written=info.file_path is not None,
                cause=cause,
            )
        if change.changed:
            changes.append(change)
    tx.save(changes)
    return True


def _stats(certifier: str, items: list[Suppressible], deadlines: dict[str, date]) -> PendingStats:
    due = [deadlines[i.member.record_id] for i in items if i.member.record_id in deadlines]
    return PendingStats(
        certifier,
        len(items),
        min(i.waiting_since for i in items),
        min(due) if due else None,
    )


def cut_suppressions(
    tx: Transaction,
    sink: BatchSink,
    limits: BatchLimits,
    schema_version: SchemaVersion,
    configured: Callable[[str], bool],
    now: datetime,
    today: date,
    *,
    force: Forced,
    on_cut: Cut,
    on_wait: Wait | None = None,
) -> list[str]:
    """Cut the due SUPPRESSION batches; returns notes for the operator. `on_wait`: told of
    those not due yet (`flush` says why it cut nothing after a revocation, and when)."""
    candidates = tx.suppressible()
    if not candidates:
        return []
    deadlines = tx.correction_deadlines([c.member.record_id for c in candidates])
    by_way: dict[tuple[str, SentAs], list[Suppressible]] = defaultdict(list)
    for item in candidates:
        by_way[(item.certifier, item.sent_as)].append(item)
    notes = []
    for (certifier, sent_as), items in by_way.items():
        if not configured(certifier):
            notes.append(
                f"{len(items)} record(s) of {certifier!r} to withdraw from the CDC, which is "
                "no longer configured: add it back to [[certifiers]] to send their SUPPRESSION"
            )
            continue
        stats = _stats(certifier, items, deadlines)
        forced = is_forced(force, certifier)
        reason = "forced" if forced else due_reason(stats, now, today, limits, WAITING)
        if reason is not None:
            _cut_way(tx, sink, limits, schema_version, sent_as, items, now, reason, on_cut)
        elif on_wait is not None:
            on_wait(certifier, stats.count, aged_at(stats, limits))
    return notes


def _cut_way(
    tx: Transaction,
    sink: BatchSink,
    limits: BatchLimits,
    schema_version: SchemaVersion,
    sent_as: SentAs,
    items: list[Suppressible],
    now: datetime,
    reason: str,
    on_cut: Cut,
) -> None:
    def frozen(batch_id: str, passages: int) -> FrozenBatch:
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

    template = frozen(str(uuid.UUID(int=0)), 0)
    sizes = sink.sizes(template)
    records = tx.records([i.member.record_id for i in items])
    members = [i.member for i in items]
    exact = exact_sizes(tx, sink, template)
    groups = files_for(members, limits, sizes.envelope, sizes.per_code, exact)
    for group in groups:
        batch = frozen(str(uuid.uuid4()), len(group))
        history = [
            cut_suppression_entry(records[m.record_id], now, reason, batch.batch_id) for m in group
        ]
        tx.add_batch(batch, sink.file_name(batch), group, history)
        on_cut(batch, len(group), reason)


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
