"""A stored content decoded again, when a stored correction must become a record's content.

The correction was validated when it arrived, but only its content was kept beside the record
(the record still describes what the CDC holds); the day it replaces that content, its fields,
errors and warnings are read again with today's rules and reference data.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from accrochage.models.deadline import Clock, paris_today
from accrochage.models.decode import Decoded, Kind, decode
from accrochage.models.event import DeliveredEvent
from accrochage.models.problems import Problem
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.sinks.passage import passage_size_bound
from accrochage.state.base import Transaction

Decodes = Callable[[Transaction, str, int], tuple[Decoded, int | None]]


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

    def __call__(self, tx: Transaction, record_id: str, version: int) -> tuple[Decoded, int | None]:
        stored = tx.content(record_id, version)
        try:
            payload = json.loads(stored.payload)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            problem = Problem("event", "the stored content cannot be read: send it again")
            return Decoded(Kind.DELIVERED, record_id=record_id, errors=[problem]), None
        if stored.event_id is not None:
            payload["event_id"] = stored.event_id
        decoded = decode(payload, self.registry, paris_today(self.clock), self.reference())
        size = None
        if decoded.valid and isinstance(decoded.event, DeliveredEvent) and decoded.content:
            size = passage_size_bound(decoded.content)
        return decoded, size
