"""decode -> validate -> enrich -> track, for a group of events in one transaction.

Decoding runs before the write lock is taken; the transaction only reads the current rows,
applies the record life, writes, and (on Kafka) stores the next offsets with them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from accrochage.models.deadline import Clock, paris_today
from accrochage.models.decode import Decoded, Kind, decode
from accrochage.models.event import DeliveredEvent
from accrochage.models.problems import Problem, problems_as_dicts
from accrochage.models.registry import Registry
from accrochage.sinks.passage import passage_size_bound
from accrochage.sinks.profiles import SchemaProfile
from accrochage.state.lifecycle import Change, Outcome, apply_delivered, apply_revoked
from accrochage.state.store import Store

RAW_KEPT = 4096


@dataclass(frozen=True, slots=True)
class Incoming:
    raw: bytes | str | dict[str, Any]
    source: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None


@dataclass(slots=True)
class IngestResult:
    record_id: str | None
    outcome: str
    status: str | None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.errors

    @property
    def http_status(self) -> int:
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


@dataclass(frozen=True, slots=True)
class LogSource:
    """A partitioned log (a Kafka topic): offsets are stored with the records they produce.

    Rejected events are queued for `rejected_topic` in the same transaction.
    """

    topic: str
    rejected_topic: str | None = None


def raw_text(raw: bytes | str | dict[str, Any]) -> str:
    if isinstance(raw, dict):
        text = json.dumps(raw, ensure_ascii=False)
    elif isinstance(raw, bytes):
        text = raw[: RAW_KEPT * 4].decode("utf-8", errors="replace")
    else:
        text = raw
    return text[:RAW_KEPT]


class Ingestor:
    def __init__(
        self, store: Store, registry: Registry, clock: Clock, profile: SchemaProfile
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.profile = profile

    def _decode(self, item: Incoming) -> tuple[Decoded, int | None]:
        decoded = decode(item.raw, self.registry, paris_today(self.clock))
        size = None
        if decoded.valid and isinstance(decoded.event, DeliveredEvent) and decoded.content:
            size = passage_size_bound(decoded.content)
        return decoded, size

    def ingest(self, items: Sequence[Incoming]) -> list[IngestResult]:
        decoded = [self._decode(item) for item in items]
        with self.store.write() as conn:
            return self._store(conn, items, decoded)

    def ingest_from_log(
        self, source: LogSource, items: Sequence[Incoming]
    ) -> list[tuple[Incoming, IngestResult]]:
        """Ingest events read from a log; events below the stored offsets are skipped.

        The next offset of each partition is written in the same transaction as the records,
        so the state always says exactly how far each partition was read.
        """
        decoded = [self._decode(item) for item in items]
        with self.store.write() as conn:
            stored = Store.offsets_in(conn, source.topic)
            kept = [
                (item, one)
                for item, one in zip(items, decoded, strict=True)
                if item.partition is None
                or item.offset is None
                or item.offset >= stored.get(item.partition, 0)
            ]
            if not kept:
                return []
            kept_items = [item for item, _ in kept]
            results = self._store(conn, kept_items, [one for _, one in kept])
            next_offsets: dict[int, int] = {}
            for item in kept_items:
                if item.partition is not None and item.offset is not None:
                    next_offsets[item.partition] = max(
                        next_offsets.get(item.partition, 0), item.offset + 1
                    )
            Store.save_offsets(conn, source.topic, next_offsets)
            if source.rejected_topic is not None:
                Store.queue_dead_letters(
                    conn,
                    [
                        dead_letter(source, item, result)
                        for item, result in zip(kept_items, results, strict=True)
                        if result.errors
                    ],
                )
        return list(zip(kept_items, results, strict=True))

    def _store(
        self,
        conn: Any,
        items: Sequence[Incoming],
        decoded: Sequence[tuple[Decoded, int | None]],
    ) -> list[IngestResult]:
        now = self.clock.now().isoformat(timespec="seconds")
        usable = [d.record_id for d, _ in decoded if d.record_id is not None]
        rows = Store.current_rows(conn, usable)
        changes: list[Change] = []
        unusable: list[dict[str, Any]] = []
        results = []
        for item, (one, size) in zip(items, decoded, strict=True):
            result, change = self._apply(one, size, rows, now, item.source)
            if change is not None and change.record is not None:
                rows[change.record["record_id"]] = _with_version(change, rows)
                changes.append(change)
            if change is None or change.outcome is Outcome.REFUSED:
                unusable.append(_unusable_row(item, one, result.errors, now))
            results.append(result)
        Store.write_changes(conn, changes)
        Store.log_unusable(conn, unusable)
        return results

    def _apply(
        self,
        decoded: Decoded,
        size: int | None,
        rows: dict[str, Any],
        now: str,
        source: str | None,
    ) -> tuple[IngestResult, Change | None]:
        if decoded.kind is Kind.UNUSABLE or decoded.record_id is None:
            return IngestResult(decoded.record_id, "unusable", None, decoded.errors), None
        current = rows.get(decoded.record_id)
        if decoded.kind is Kind.REVOKED:
            if decoded.errors:
                return IngestResult(decoded.record_id, "unusable", None, decoded.errors), None
            change = apply_revoked(current, decoded, now)
        else:
            change = apply_delivered(current, decoded, now, source, size)
        record = change.record or current
        status = record["status"] if record else None
        errors = change.errors or (
            decoded.errors if change.outcome is not Outcome.UNCHANGED or status == "invalid" else []
        )
        result = IngestResult(decoded.record_id, change.outcome, status, errors, decoded.warnings)
        return result, change


def _with_version(change: Change, rows: dict[str, Any]) -> dict[str, Any]:
    """The row as the next event of the same group must see it."""
    assert change.record is not None
    record = dict(change.record)
    previous = rows.get(record["record_id"], {})
    max_version = previous.get("max_version") or 0
    if change.content is not None:
        max_version = max(int(max_version), int(change.content["version"]))
        if change.outcome is Outcome.CORRECTION_STORED:
            record["correction_hash"] = change.content["content_hash"]
    record["max_version"] = max_version
    return record


def _unusable_row(
    item: Incoming, decoded: Decoded, errors: list[Problem], now: str
) -> dict[str, Any]:
    return {
        "received_at": now,
        "source": item.source,
        "event_id": decoded.event_id,
        "record_id": decoded.record_id,
        "raw": raw_text(item.raw),
        "errors": json.dumps(problems_as_dicts(errors), ensure_ascii=False),
    }


def dead_letter(source: LogSource, item: Incoming, result: IngestResult) -> dict[str, Any]:
    """The rejected-topic envelope of CONTRACT.md §5."""
    event: Any
    if isinstance(item.raw, dict):
        event = item.raw
    else:
        text = (
            item.raw.decode("utf-8", errors="replace") if isinstance(item.raw, bytes) else item.raw
        )
        try:
            event = json.loads(text)
        except ValueError:
            event = text[:RAW_KEPT]
    envelope = {
        "errors": problems_as_dicts(result.errors),
        "warnings": problems_as_dicts(result.warnings),
        "event": event,
        "source": {"topic": source.topic, "partition": item.partition, "offset": item.offset},
    }
    return {
        "topic": source.rejected_topic,
        "key": item.key,
        "value": json.dumps(envelope, ensure_ascii=False),
    }
