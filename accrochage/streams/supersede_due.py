"""Supersede, at each batch cut, the batches due to be: those whose records changed since
their cut, and those whose header this process's configuration changed."""

from __future__ import annotations

from datetime import datetime

from accrochage.models.registry import Registry
from accrochage.models.vocabulary import HEADER_SUPERSEDABLE, SUPERSEDABLE
from accrochage.sinks.base import BatchSink
from accrochage.state.base import Store
from accrochage.streams.flush_report import FlushReport
from accrochage.streams.header_check import HeaderCheck, header_cause
from accrochage.streams.redecode import Decodes
from accrochage.streams.withdraw import supersede_if_due


def supersede_due(
    store: Store,
    sink: BatchSink,
    registry: Registry,
    decode: Decodes,
    headers: HeaderCheck,
    report: FlushReport,
    now: datetime,
) -> None:
    """Supersede each batch due, each in a transaction of its own; say what was."""
    with store.transaction() as tx:  # one read: the loop stays linear in the batches
        due = tx.to_supersede()
        changed, note = headers.due(tx.undeposited_creations(), registry)
    if note is not None:
        report.notes.append(note)
    for batch_id in [*due, *(b for b in changed if b not in due)]:
        states = HEADER_SUPERSEDABLE if batch_id in changed else SUPERSEDABLE
        with store.transaction() as tx:
            done, move = supersede_if_due(
                tx,
                batch_id,
                sink,
                decode,
                now,
                states,
                header_cause(changed, batch_id),
            )
        if done:
            report.superseded.append(batch_id)
            if batch_id in changed:
                report.header_changed[batch_id] = changed[batch_id]
            sink.move_recorded([move] if move is not None else [], "superseded")
    headers.applied = True
