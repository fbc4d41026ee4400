"""How the operator's actions apply: a short transaction per chunk of records, each item
answered on its own (`ItemOutcome`), a storage failure refusing the items not applied yet."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from accrochage.errors import StoreError
from accrochage.models.deadline import Clock
from accrochage.models.record import Change, Record
from accrochage.models.vocabulary import BatchState, Outcome
from accrochage.sinks.base import BatchSink
from accrochage.state.base import Store, Transaction
from accrochage.streams.incoming import Ready
from accrochage.streams.item_outcomes import ItemOutcome, not_applied, refused, said_done
from accrochage.streams.redecode import Decodes

CHUNK_RECORDS = 5_000
"""Records one transaction of `retry` or `include` changes (about 0.5 s; 105 µs a
record measured for `retry`): in one transaction, 300,000 ids kept every other writer waiting
for half a minute."""


class Chunked:
    def __init__(self, store: Store, clock: Clock, sink: BatchSink, decode: Decodes) -> None:
        self.store = store
        self.clock = clock
        self.sink = sink
        self.decode = decode
        """Decodes a stored correction again, the day it becomes a record's content."""

    def _now(self) -> datetime:
        return self.clock.now().replace(microsecond=0)

    @staticmethod
    def _batch_state(tx: Transaction, record: Record) -> BatchState | None:
        info = tx.batch(record.batch_id) if record.batch_id is not None else None
        return None if info is None else info.state

    def _correction(self, tx: Transaction, record: Record) -> Ready | None:
        if record.correction_version is None:
            return None
        return self.decode(tx, record.record_id, record.correction_version)

    def _apply(
        self, record_ids: Sequence[str], transition: Callable[[Record, datetime], Change]
    ) -> list[ItemOutcome]:
        return self._in_chunks(record_ids, lambda tx, chunk: self._apply_in(tx, chunk, transition))

    def _in_chunks(
        self,
        items: Sequence[str],
        step: Callable[[Transaction, Sequence[str]], list[ItemOutcome]],
        *,
        size: int | None = None,
        after: Callable[[], None] | None = None,
    ) -> list[ItemOutcome]:
        """`step` over `size` items at a time (default: `CHUNK_RECORDS`, read at each call), a
        transaction each (`after` once each has committed); a storage failure refuses the
        items not applied yet."""
        size = size or CHUNK_RECORDS
        outcomes: list[ItemOutcome] = []
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            try:
                with self.store.transaction() as tx:
                    done = step(tx, chunk)
            except StoreError as exc:  # COMMIT included: nothing of the chunk was applied
                return outcomes + not_applied(items[start:], exc)
            outcomes += done
            if after is not None:
                after()
        return outcomes

    def _apply_in(
        self,
        tx: Transaction,
        record_ids: Sequence[str],
        transition: Callable[[Record, datetime], Change],
        was: Mapping[str, Record] | None = None,
    ) -> list[ItemOutcome]:
        """`was`: records as they were before this command changed them (a member of a failed
        batch, back to pending when the batch was superseded): what the outcome says they were."""
        now = self._now()
        current = tx.records(record_ids)
        outcomes, changes = [], []
        for record_id in record_ids:
            record = current.get(record_id)
            if record is None:
                outcomes.append(refused(record_id, "unknown record"))
                continue
            change = transition(record, now)
            if change.outcome is Outcome.REFUSED:
                outcomes.append(refused(record_id, change.errors[0].message))
                continue
            if change.record is None:
                outcomes.append(ItemOutcome(record_id, True, f"already {record.status}"))
                continue
            current[record_id] = change.record
            changes.append(change)
            before = (was or {}).get(record_id, record)
            outcomes.append(ItemOutcome(record_id, True, said_done(before, change.record)))
        tx.save(changes)
        return outcomes
