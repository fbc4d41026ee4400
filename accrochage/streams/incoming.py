"""An event as it reaches the pipeline (`Incoming`), decoded (`Ready`), and what storing it
answered (`IngestResult`): the values every reader of events (files, HTTP, Kafka) and every
writer shares, apart from the `Ingestor` that stores them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from accrochage.errors import StorageLowError
from accrochage.models.decode import Decoded, Kind, decode
from accrochage.models.event import DeliveredEvent
from accrochage.models.problems import Problem, problems_as_dicts
from accrochage.models.record import PreparedPassage
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.models.scope import Scope
from accrochage.models.vocabulary import Outcome
from accrochage.sinks.passage import passage_bytes
from accrochage.sinks.passage_size import passage_size_bound
from accrochage.sinks.profiles import SchemaProfile

NO_ROOM = StorageLowError.status
"""The HTTP status of an event refused for want of room (`storage_low`)."""

Ready = tuple[Decoded, int | None]
"""A decoded event and its passage's size bound (None: not a valid delivered event)."""


@dataclass(frozen=True, slots=True)
class Incoming:
    raw: bytes | str | dict[str, Any]
    source: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    decoded: Ready | None = field(default=None, compare=False)
    """Decoded already (in a decode process, `streams/decoding.py`): stored as is."""
    problems: tuple[Problem, ...] = ()
    """Found reading the input (a CSV row's cells no column names, say): errors of the event
    beside its validation's (`with_read_problems`)."""
    scope: Scope = None
    """The certifiers its sender may send for (a scoped ingest token); None: any."""
    value_unknown: bool = False
    """`raw` is not the value its log holds (a Kafka record its client could not read)."""


@dataclass(slots=True)
class IngestResult:
    record_id: str | None
    outcome: Outcome
    status: str | None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    failed_status: int = 500
    """The HTTP status of an event not stored: 500 (its transaction failed), or `NO_ROOM`
    (an invalid or unusable event refused while the disk is short, `streams/room.py`)."""

    @property
    def accepted(self) -> bool:
        return not self.errors

    @property
    def stored(self) -> bool:
        return self.outcome != Outcome.FAILED

    @property
    def http_status(self) -> int:
        if not self.stored:
            return self.failed_status
        if self.outcome == Outcome.FORBIDDEN:
            return 403
        if self.errors:
            return 422
        return 200 if self.outcome == Outcome.UNCHANGED else 201

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "record_id": self.record_id,
            "status": self.status,
            "outcome": self.outcome,
        }
        if self.errors:
            body["errors"] = problems_as_dicts(self.errors)
        body["warnings"] = problems_as_dicts(self.warnings)
        return body


def with_read_problems(item: Incoming, ready: Ready) -> Ready:
    """`item`'s decoding with the problems found reading it: an event with any is invalid (its
    passage not prepared). An input that could not be read at all (`raw` holds only the start
    of its text) is unusable for those reasons alone, not for what its start fails to parse."""
    if not item.problems:
        return ready
    decoded, _ = ready
    if decoded.kind is Kind.UNUSABLE and not isinstance(item.raw, dict):
        decoded.errors = list(item.problems)
    else:
        decoded.errors = [*item.problems, *decoded.errors]
    decoded.passage = None
    return decoded, None


def decode_ready(
    raw: bytes | str | dict[str, Any],
    registry: Registry,
    today: date,
    reference: Reference | None,
    passages: SchemaProfile | None = None,
) -> Ready:
    """`decode`, and the size of a valid delivered event's passage: its exact size when its
    passage is rendered here (`passages`: the schema files are written in), else a bound."""
    decoded = decode(raw, registry, today, reference)
    size = None
    event = decoded.event
    if decoded.valid and isinstance(event, DeliveredEvent) and decoded.content:
        if passages is not None:
            data = passage_bytes(event, passages)
            decoded.passage = PreparedPassage(passages.version, data)
            size = len(data)
        else:
            size = passage_size_bound(decoded.content)
    return decoded, size
