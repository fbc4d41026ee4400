"""The cut of one planned batch: its members still pending as planned, moved and frozen.

A batch of up to `CUT_PER_TRANSACTION` members is cut in one write transaction. A larger one
(`max_records` up to the CDC's 200,000) is cut in parts of that many, one transaction each,
under the store's cut lock (`Store.cutting`: no other flusher reads it to write it while it
is being cut). Each part takes only the members still pending with the content version
planned (a correction or revocation stored meanwhile is cut at the next tick); a batch
superseded between two parts takes no more.

`cut_in_parts` is that loop for any batch: `cut_group` runs it for a CREATION batch,
`suppression_cut.cut_suppression` for a SUPPRESSION file.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from accrochage import failpoints
from accrochage.models.batch import FrozenBatch, Member
from accrochage.models.batch_life import cut_move
from accrochage.models.record import MembersMoved
from accrochage.state.base import Store
from accrochage.streams.flush_plan import PlannedGroup, Planner

CUT_PER_TRANSACTION = 5_000
"""Members a batch cut moves in one write transaction (about 70 ms, `python -m bench.cut`):
the most a service's writer (HTTP, Kafka) waits for a cut, against 1.2 s for one transaction
of 100,000 members, 2.5 s for the CDC's 200,000."""


Part = Sequence[Member]
FirstPart = Callable[[Part], FrozenBatch | None]
"""Cuts a batch of the part's members still as planned, in one transaction (None: none was)."""
NextPart = Callable[[FrozenBatch, Part], int | None]
"""Adds the part's members still as planned to the batch, in one transaction: how many; None
when the batch takes no more (no longer `cut`)."""


def cut_in_parts(
    store: Store,
    members: Part,
    first: FirstPart,
    then: NextPart,
    stopping: threading.Event,
) -> FrozenBatch | None:
    """The batch of `members` cut by `first` in one transaction, or when they are more than
    `CUT_PER_TRANSACTION`, by `first` then `then`, a part at a time, under the store's cut
    lock, letting other writers in between two parts. Once `stopping` is set it takes no more
    part: the batch is frozen smaller, the rest waits for the next flush."""
    if len(members) <= CUT_PER_TRANSACTION:
        return first(members)
    parts = [
        members[start : start + CUT_PER_TRANSACTION]
        for start in range(0, len(members), CUT_PER_TRANSACTION)
    ]
    with store.cutting():
        batch = None
        while batch is None and parts:
            batch = first(parts.pop(0))
        if batch is None:
            return None
        passages = batch.passages
        for part in parts:
            if stopping.is_set():
                break
            store.let_writers_in()
            added = then(batch, part)
            if added is None:
                break
            passages += added
            failpoints.reached("flush:cut-part")
    return replace(batch, passages=passages)


def cut_group(
    store: Store, planner: Planner, group: PlannedGroup, now: datetime, stopping: threading.Event
) -> FrozenBatch | None:
    """The CREATION batch cut, None when no planned member was still pending as planned."""

    def first(members: Part) -> FrozenBatch | None:
        certifier = group.certifier
        batch_id = str(uuid.uuid4())
        with store.transaction() as tx:
            still = tx.take_pending(certifier.key, members, batch_id, now)
            if not still:
                return None
            batch = planner.batch(batch_id, now, certifier, len(still))
            tx.add_batch(batch, planner.sink.file_name(batch), still, moved(batch))
        return batch

    def then(batch: FrozenBatch, members: Part) -> int | None:
        with store.transaction() as tx:
            added = tx.extend_batch(group.certifier.key, members, moved(batch))
        return None if added is None else len(added)

    def moved(batch: FrozenBatch) -> MembersMoved:
        return cut_move(now, group.reason, batch.batch_id)

    return cut_in_parts(store, group.members, first, then, stopping)
