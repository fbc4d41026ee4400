"""A stored content decoded again, when a stored correction must become a record's content.

The correction was validated when it arrived, but only its content was kept beside the record
(the record still describes what the CDC holds); the day it replaces that content, its fields,
errors and warnings are read again with today's rules and reference data.
"""

from __future__ import annotations

from collections.abc import Callable

from accrochage.models.deadline import Clock, paris_today
from accrochage.models.decode import Decoded, Kind
from accrochage.models.event import stored_payload
from accrochage.models.problems import Problem
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.state.base import Transaction
from accrochage.streams.incoming import Ready, decode_ready

Decodes = Callable[[Transaction, str, int], Ready]


class ContentDecoder:
    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        reference: Callable[[], Reference | None] | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.reference = reference or (lambda: None)

    def __call__(self, tx: Transaction, record_id: str, version: int) -> Ready:
        stored = tx.content(record_id, version)
        payload = stored_payload(stored.payload, stored.event_id)
        if payload is None:
            problem = Problem("event", "the stored content cannot be read: send it again")
            return Decoded(Kind.DELIVERED, record_id=record_id, errors=[problem]), None
        return decode_ready(payload, self.registry, paris_today(self.clock), self.reference())
