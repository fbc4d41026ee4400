"""Typed values <-> SQLite rows: the only place that knows how a record is laid out in SQL."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from accrochage.models.batch import Archived, BatchInfo, FrozenBatch
from accrochage.models.problems import Problem
from accrochage.models.record import Content, HistoryEntry, MembersMoved, PreparedPassage, Record
from accrochage.models.registry import Certifier, Emitter
from accrochage.models.vocabulary import (
    BatchState,
    CdcAction,
    CdcReason,
    RecordStatus,
    SchemaVersion,
)

RECORD_COLUMNS = (
    "record_id",
    "certifier",
    "code",
    "status",
    "outstanding",
    "version",
    "content_hash",
    "delivered_on",
    "deadline",
    "errors",
    "warnings",
    "xml_bytes",
    "batch_id",
    "pending_since",
    "correction_version",
    "revocation_pending",
    "cdc_message",
    "created_at",
    "updated_at",
    "cdc_reason",
    "excluded_from",
    "accepted_batch_id",
    "suppression_rejected",
    "correction_valid",
    "identity_rejections",
    "delivery_met",
    "cdc_held_as",
    "ever_valid",
    "correction_errors",
)
CONTENT_COLUMNS = (
    "record_id",
    "version",
    "content_hash",
    "event_id",
    "payload",
    "occurred_at",
    "emitted_by",
    "received_at",
    "source",
)
HISTORY_COLUMNS = (
    "record_id",
    "at",
    "from_status",
    "to_status",
    "reason",
    "batch_id",
    "report",
    "event_id",
)


class _Stamps:
    """`stamp` of the moment stamped last, kept: a transaction writes one `now` on each of its
    rows (created, updated, pending since, received, history), five per event stored.

    Keyed by identity, not equality: equal aware datetimes may carry different offsets
    (12:00+01:00 == 11:00+00:00) and must keep their own text."""

    last: tuple[datetime, str] | None = None

    def __call__(self, moment: datetime) -> str:
        last = self.last
        if last is not None and last[0] is moment:
            return last[1]
        text = moment.isoformat(timespec="seconds")
        self.last = (moment, text)
        return text


stamp = _Stamps()


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def problems_json(problems: Sequence[Problem]) -> str:
    if not problems:
        return "[]"
    return json.dumps([p.as_dict() for p in problems], ensure_ascii=False)


def _problems(text: str) -> tuple[Problem, ...]:
    if text == "[]":
        return ()
    return tuple(Problem(p["field"], p["message"]) for p in json.loads(text))


def record_values(record: Record) -> tuple[Any, ...]:
    return (
        record.record_id,
        record.certifier,
        record.code,
        record.status.value,
        int(record.outstanding),
        record.version,
        record.content_hash,
        _day(record.delivered_on),
        _day(record.deadline),
        problems_json(record.errors),
        problems_json(record.warnings),
        record.xml_bytes,
        record.batch_id,
        stamp(record.pending_since) if record.pending_since else None,
        record.correction_version,
        int(record.revocation_pending),
        record.cdc_message,
        stamp(record.created_at),
        stamp(record.updated_at),
        record.cdc_reason.value if record.cdc_reason is not None else None,
        record.excluded_from.value if record.excluded_from is not None else None,
        record.accepted_batch_id,
        int(record.suppression_rejected),
        None if record.correction_valid is None else int(record.correction_valid),
        record.identity_rejections,
        int(record.delivery_met),
        record.cdc_held_as,
        int(record.ever_valid),
        problems_json(record.correction_errors) if record.correction_errors else None,
    )


def record_from(row: sqlite3.Row) -> Record:
    """A record from a `records` row, with `max_version` and `correction_hash` if selected."""
    keys = row.keys()
    pending_since = row["pending_since"]
    delivered_on, deadline = row["delivered_on"], row["deadline"]
    return Record(
        record_id=row["record_id"],
        certifier=row["certifier"],
        code=row["code"],
        status=RecordStatus(row["status"]),
        version=row["version"],
        content_hash=row["content_hash"],
        delivered_on=date.fromisoformat(delivered_on) if delivered_on else None,
        deadline=date.fromisoformat(deadline) if deadline else None,
        errors=_problems(row["errors"]),
        warnings=_problems(row["warnings"]),
        xml_bytes=row["xml_bytes"],
        batch_id=row["batch_id"],
        pending_since=datetime.fromisoformat(pending_since) if pending_since else None,
        correction_version=row["correction_version"],
        revocation_pending=bool(row["revocation_pending"]),
        cdc_message=row["cdc_message"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        latest_version=row["max_version"] if "max_version" in keys else row["version"],
        correction_hash=row["correction_hash"] if "correction_hash" in keys else None,
        cdc_reason=CdcReason(row["cdc_reason"]) if row["cdc_reason"] else None,
        excluded_from=RecordStatus(row["excluded_from"]) if row["excluded_from"] else None,
        accepted_batch_id=row["accepted_batch_id"],
        suppression_rejected=bool(row["suppression_rejected"]),
        correction_valid=None if row["correction_valid"] is None else bool(row["correction_valid"]),
        identity_rejections=row["identity_rejections"],
        delivery_met=bool(row["delivery_met"]),
        cdc_held_as=row["cdc_held_as"],
        ever_valid=bool(row["ever_valid"]),
        correction_errors=_problems(row["correction_errors"] or "[]"),
    )


def content_values(content: Content) -> tuple[Any, ...]:
    return (
        content.record_id,
        content.version,
        content.content_hash,
        content.event_id,
        content.payload,
        content.occurred_at,
        content.emitted_by,
        stamp(content.received_at),
        content.source,
    )


def history_values(entry: HistoryEntry) -> tuple[Any, ...]:
    return (
        entry.record_id,
        stamp(entry.at),
        entry.from_status.value if entry.from_status is not None else None,
        entry.to_status.value,
        entry.reason,
        entry.batch_id,
        entry.report,
        entry.event_id,
    )


def members_moved_values(moved: MembersMoved) -> tuple[Any, ...]:
    """What `history_values` would give each member but its record id, and the batch to read
    the members of (see `batch_statements._MEMBERS_MOVED`)."""
    return (
        stamp(moved.at),
        moved.from_status.value,
        moved.to_status.value,
        moved.reason,
        moved.batch_id,
    )


def frozen_batch_from(row: sqlite3.Row) -> FrozenBatch:
    return FrozenBatch(
        batch_id=row["batch_id"],
        created_at=datetime.fromisoformat(row["created_at"]),
        emitter=Emitter(row["emitter_id_client"], row["nature"]),
        certifier=Certifier(
            row["certifier"], row["certifier_id_client"], row["id_contrat"], frozenset()
        ),
        schema_version=SchemaVersion(row["schema_version"]),
        passages=row["passages"],
        action=CdcAction(row["action"]),
        sent_as=SchemaVersion(row["sent_as"]) if row["sent_as"] else None,
    )


def archived_from(row: sqlite3.Row) -> Archived | None:
    """A batch row's `Archived` (m300), None when its file was never archived."""
    if row["archived_at"] is None:
        return None
    to = None if row["archived_to"] is None else Path(row["archived_to"])
    return Archived(datetime.fromisoformat(row["archived_at"]), to)


def batch_info_from(row: sqlite3.Row) -> BatchInfo:
    return BatchInfo(
        row["batch_id"],
        row["certifier"],
        BatchState(row["state"]),
        row["file_name"],
        Path(row["file_path"]) if row["file_path"] else None,
        CdcAction(row["action"]),
        SchemaVersion(row["schema_version"]),
        datetime.fromisoformat(row["created_at"]),
        archived_from(row),
        row["sha256"],
        row["bytes"],
    )


def placeholders(columns: Sequence[str]) -> str:
    return ", ".join("?" * len(columns))


IN_CHUNK = 500
"""Ids bound in one `IN (...)` (SQLite's default limit of bound variables is higher)."""


def in_chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    """The ids without repeats, in slices small enough for one `IN (...)` each."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), IN_CHUNK):
        yield unique[start : start + IN_CHUNK]


def passage_values(content: Content) -> tuple[str, int, str, bytes]:
    assert content.passage is not None
    return content.record_id, content.version, content.passage.schema.value, content.passage.data


def prepared_passage(data: bytes | None, schema: str | None) -> PreparedPassage | None:
    if data is None or schema is None:
        return None
    return PreparedPassage(SchemaVersion(schema), bytes(data))
