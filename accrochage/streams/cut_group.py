"""The cut of one planned batch: its members still pending as planned, moved and frozen.

A batch of up to `CUT_PER_TRANSACTION` members is cut in one write transaction. A larger one
(`max_records` up to the CDC's 200,000) is cut in parts of that many, one transaction each,
under the store's cut lock (`Store.cutting`: no other flusher reads it to write it while it
is being cut). Each part takes only the members still pending with the content version
planned (a correction or revocation stored meanwhile is cut at the next tick); a batch
superseded between two parts takes no more.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from accrochage import failpoints
from accrochage.models.batch import FrozenBatch, Member
from accrochage.models.batch_life import cut_move
from accrochage.state.base import Store
from accrochage.streams.flush_plan import PlannedGroup, Planner

CUT_PER_TRANSACTION = 5_000
"""Members a batch cut moves in one write transaction (about 70 ms, `python -m bench.cut`):
the most a service's writer (HTTP, Kafka) waits for a cut, against 1.2 s for one transaction
of 100,000 members, 2.5 s for the CDC's 200,000."""


def cut_group(
    store: Store, planner: Planner, group: PlannedGroup, now: datetime, stopping: threading.Event
) -> FrozenBatch | None:
    """The batch cut, None when no planned member was still pending as planned. Once
    `stopping` is set, a batch cut in parts takes no more part: it is frozen smaller."""
    members = group.members
    if len(members) <= CUT_PER_TRANSACTION:
        return _cut_part(store, planner, group, members, now)
    parts = [
        members[start : start + CUT_PER_TRANSACTION]
        for start in range(0, len(members), CUT_PER_TRANSACTION)
    ]
    with store.cutting():
        batch = None
        while batch is None and parts:
            batch = _cut_part(store, planner, group, parts.pop(0), now)
        if batch is None:
            return None
        passages = batch.passages
        moved = cut_move(now, group.reason, batch.batch_id)
        for part in parts:
            if stopping.is_set():
                break
            store.let_writers_in()
            with store.transaction() as tx:
                added = tx.extend_batch(group.certifier.key, part, moved)
            if added is None:
                break
            passages += len(added)
            failpoints.reached("flush:cut-part")
    return replace(batch, passages=passages)


def _cut_part(
    store: Store, planner: Planner, group: PlannedGroup, members: Sequence[Member], now: datetime
) -> FrozenBatch | None:
    """A batch of `members` still pending as planned, in one transaction."""
    certifier = group.certifier
    batch_id = str(uuid.uuid4())
    with store.transaction() as tx:
        still = tx.take_pending(certifier.key, members, batch_id, now)
        if not still:
            return None
        batch = planner.batch(batch_id, now, certifier, len(still))
        moved = cut_move(now, group.reason, batch.batch_id)
        tx.add_batch(batch, planner.sink.file_name(batch), still, moved)
    return batch
