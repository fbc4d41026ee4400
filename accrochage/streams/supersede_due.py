"""Supersede, at each batch cut, the batches due to be: those whose records changed since
their cut, and those whose header this process's configuration changed.

Each batch in transactions of its own: the first supersedes it with up to
`SUPERSEDE_PER_TRANSACTION` of its members that wait for nothing, the next ones return the
others that many at a time, the last its revoked and corrected members, so that a service's
writer waits for one part at most (a batch of the CDC's 200,000 passages took seconds in one
transaction). A batch left superseded with members still batched in it (its process stopped
or killed between two parts) is finished by the next flush, before anything else.
"""

from __future__ import annotations

from datetime import datetime

from accrochage import failpoints
from accrochage.models.registry import Registry
from accrochage.models.vocabulary import HEADER_SUPERSEDABLE, SUPERSEDABLE, BatchState
from accrochage.sinks.base import BatchSink
from accrochage.state.base import Store
from accrochage.streams.flush_report import FlushReport
from accrochage.streams.header_check import HeaderCheck, header_cause
from accrochage.streams.redecode import Decodes
from accrochage.streams.withdraw import return_members, supersede_if_due

SUPERSEDE_PER_TRANSACTION = 5_000
"""Members that wait for nothing a supersession returns to pending in one transaction."""


def supersede_due(
    store: Store,
    sink: BatchSink,
    registry: Registry,
    decode: Decodes,
    headers: HeaderCheck,
    report: FlushReport,
    now: datetime,
) -> None:
    """Supersede each batch due; say what was."""
    with store.transaction() as tx:  # one read: the loop stays linear in the batches
        half = tx.half_superseded()
        due = tx.to_supersede()
        changed, note = headers.due(tx.undeposited_creations(), registry)
    if note is not None:
        report.notes.append(note)
    for batch_id in half:
        finish_superseding(store, batch_id, decode, now)
    for batch_id in [*due, *(b for b in changed if b not in due)]:
        states = HEADER_SUPERSEDABLE if batch_id in changed else SUPERSEDABLE
        cause = header_cause(changed, batch_id)
        with store.transaction() as tx:
            done, move, whole = supersede_if_due(
                tx, batch_id, sink, decode, now, states, cause, SUPERSEDE_PER_TRANSACTION
            )
        if done:
            report.superseded.append(batch_id)
            if batch_id in changed:
                report.header_changed[batch_id] = changed[batch_id]
            sink.move_recorded([move] if move is not None else [], "superseded")
        if not whole:
            finish_superseding(store, batch_id, decode, now, cause)
    headers.applied = True


def finish_superseding(
    store: Store, batch_id: str, decode: Decodes, now: datetime, cause: str | None = None
) -> None:
    """Return the members still batched in superseded `batch_id`, a part a transaction."""
    whole = False
    while not whole:
        failpoints.reached("flush:supersede-part")
        store.let_writers_in()
        with store.transaction() as tx:
            info = tx.batch(batch_id)
            if info is None or info.state is not BatchState.SUPERSEDED:
                return
            whole = return_members(tx, info, decode, now, cause, SUPERSEDE_PER_TRANSACTION)
