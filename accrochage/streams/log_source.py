"""Events read from a partitioned log (a Kafka topic): which of a group are new, how far
each partition was read, and the rejected topic's envelope of an event that failed."""

from __future__ import annotations

import hashlib
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from accrochage.models.problems import Problem, problems_as_dicts
from accrochage.state.base import DeadLetter
from accrochage.streams.rejected import bounded_letter, letter_event, letter_key


class Read(Protocol):
    """An event as read from its log (`streams.incoming.Incoming`)."""

    @property
    def raw(self) -> bytes | str | dict[str, Any]: ...
    @property
    def partition(self) -> int | None: ...
    @property
    def offset(self) -> int | None: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value_unknown(self) -> bool: ...


class Answered(Protocol):
    """What storing an event said (`streams.incoming.IngestResult`)."""

    @property
    def errors(self) -> list[Problem]: ...
    @property
    def warnings(self) -> list[Problem]: ...


ItemT = TypeVar("ItemT", bound=Read)
DecodedT = TypeVar("DecodedT")


@dataclass(frozen=True, slots=True)
class LogSource:
    """A partitioned log (a Kafka topic): offsets are stored with the records they produce.

    Rejected events are queued for `rejected_topic` in the same transaction.
    """

    topic: str
    rejected_topic: str | None = None


def unread(
    stored: dict[int, int], items: Sequence[ItemT], decoded: Sequence[DecodedT]
) -> list[tuple[ItemT, DecodedT]]:
    """The events not stored yet: at or past their partition's stored offset, each offset
    once. A consumer that seeks back (a rebalance) fetches again what may still wait in the
    same group: twice in one transaction, it would be logged and dead-lettered twice."""
    seen: set[tuple[int, int]] = set()
    kept = []
    for item, one in zip(items, decoded, strict=True):
        if item.partition is not None and item.offset is not None:
            at = (item.partition, item.offset)
            if item.offset < stored.get(item.partition, 0) or at in seen:
                continue
            seen.add(at)
        kept.append((item, one))
    return kept


def _last_records(items: Sequence[ItemT]) -> dict[int, tuple[int, ItemT]]:
    """Each partition's record of the highest offset among `items`, with that offset."""
    last: dict[int, tuple[int, ItemT]] = {}
    for item in items:
        partition, offset = item.partition, item.offset
        if partition is None or offset is None:
            continue
        if partition not in last or offset > last[partition][0]:
            last[partition] = (offset, item)
    return last


def next_offsets(items: Sequence[Read]) -> dict[int, int]:
    """Each partition's next offset after `items` (stored in their transaction)."""
    return {partition: offset + 1 for partition, (offset, _) in _last_records(items).items()}


def log_mark(value: bytes | None) -> str:
    """A record's mark: what tells, at a partition's assignment, whether the record just
    before the stored offset is still the one stored (`runtimes/kafka/same_log.py`). The
    value alone: an event's value holds its event id, so another record with the same
    value at the same offset is the same event."""
    return hashlib.sha256(value or b"").hexdigest()[:32]


def log_marks(items: Sequence[Read]) -> dict[int, str]:
    """The mark of each partition's last record among `items` (stored with `next_offsets`);
    none for a partition whose last record's value is not known (its client could not read
    it)."""
    return {
        partition: log_mark(item.raw)
        for partition, (_, item) in _last_records(items).items()
        if isinstance(item.raw, bytes) and not item.value_unknown
    }


def dead_letter(
    source: LogSource, item: Read, result: Answered, *, parse: bool = True
) -> DeadLetter:
    """The rejected-topic envelope of CONTRACT.md §5 (`streams/rejected.py`); `parse=False`:
    the event as its text (an event set aside because storing it failed)."""
    event, cut = letter_event(item.raw, parse=parse)
    envelope: dict[str, Any] = {
        "errors": problems_as_dicts(result.errors),
        "warnings": problems_as_dicts(result.warnings),
        "event": event,
        "source": {"topic": source.topic, "partition": item.partition, "offset": item.offset},
    }
    if cut:
        envelope["event_truncated"] = True
    key = letter_key(item.key)
    if key is None and item.key is not None:
        envelope["key_dropped"] = len(item.key)
    assert source.rejected_topic is not None
    return DeadLetter(source.rejected_topic, key, bounded_letter(envelope))


def key_warning(
    key: bytes | None, certifier: str | None, configured: Container[str] = ()
) -> Problem | None:
    """A warning when a log message is not keyed by its event's certifier (CONTRACT §5:
    the certifier's key, UTF-8): its certifier's events may then land on several partitions
    and be read out of order, a revocation before the delivery it revokes. A key is quoted
    only when it is one of the `configured` certifiers' keys: a producer keying by person
    put a NIR or a name in the warning, which every listing and the rejected topic show."""
    if certifier is None or key == certifier.encode():
        return None
    if key is None:
        shown = "no key"
    elif (named := key.decode("utf-8", "replace")) in configured:
        shown = f"the key {named!r} (another certifier's)"
    else:
        shown = f"a key of {len(key)} bytes that is no configured certifier's (not quoted)"
    return Problem(
        "kafka.key",
        f"the message has {shown}, not its certifier's key {certifier!r}: key each event by "
        "its certifier, or that certifier's events may be read out of order",
    )
