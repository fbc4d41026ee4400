"""What decoding gives for one raw event: a `Decoded` of its `Kind` (delivered, revoked, unusable).

Its own module, apart from the decoding itself (`models/decode.py`), because everything after
decoding reads it (the record's life, scope, replays, storing) and because decode processes
send one per event: it is pickled as plain values, rebuilt by `_decoded_from`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from accrochage.models.event import DeliveredEvent, RevokedEvent
from accrochage.models.problems import Problem
from accrochage.models.record import PreparedPassage
from accrochage.models.vocabulary import SchemaVersion


class Kind(StrEnum):
    DELIVERED = "delivered"
    REVOKED = "revoked"
    UNUSABLE = "unusable"


@dataclass(slots=True)
class Decoded:
    kind: Kind
    record_id: str | None = None
    event_id: str | None = None
    certifier: str | None = None
    code: str | None = None
    delivered_on: date | None = None
    payload: dict[str, Any] | None = None
    content: str | None = None
    content_hash: str | None = None
    event: DeliveredEvent | RevokedEvent | None = None
    passage: PreparedPassage | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.kind is not Kind.UNUSABLE and not self.errors

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as plain values: decode processes send one per event, and a dataclass's
        default form (a dict of field names, enums and dates rebuilt by reduction) cost
        twice as much CPU on both sides of the pipe."""
        passage = self.passage
        return _decoded_from, (
            self.kind.value,
            self.record_id,
            self.event_id,
            self.certifier,
            self.code,
            None if self.delivered_on is None else self.delivered_on.toordinal(),
            self.payload,
            self.content,
            self.content_hash,
            self.event,
            None if passage is None else passage.schema.value,
            None if passage is None else passage.data,
            [(p.field, p.message) for p in self.errors],
            [(p.field, p.message) for p in self.warnings],
        )


_KINDS = {kind.value: kind for kind in Kind}
_SCHEMAS = {version.value: version for version in SchemaVersion}


def _decoded_from(
    kind: str,
    record_id: str | None,
    event_id: str | None,
    certifier: str | None,
    code: str | None,
    delivered_on: int | None,
    payload: dict[str, Any] | None,
    content: str | None,
    content_hash: str | None,
    event: DeliveredEvent | RevokedEvent | None,
    passage_schema: str | None,
    passage: bytes | None,
    errors: list[tuple[str, str]],
    warnings: list[tuple[str, str]],
) -> Decoded:
    return Decoded(
        _KINDS[kind],
        record_id,
        event_id,
        certifier,
        code,
        None if delivered_on is None else date.fromordinal(delivered_on),
        payload,
        content,
        content_hash,
        event,
        None
        if passage is None or passage_schema is None
        else PreparedPassage(_SCHEMAS[passage_schema], passage),
        [Problem(*p) for p in errors],
        [Problem(*p) for p in warnings],
    )
