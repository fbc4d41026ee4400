"""Typed values <-> SQLite rows: contents, history, batches, passages, and the helpers of
every statement (stamps, placeholders, chunks). A record's own row is `record_rows.py`'s."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from accrochage.models.batch import Archived, BatchInfo, FrozenBatch
from accrochage.models.record import Content, HistoryEntry, MembersMoved, PreparedPassage
from accrochage.models.registry import Certifier, Emitter
from accrochage.models.vocabulary import (
    BatchState,
    CdcAction,
    SchemaVersion,
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
