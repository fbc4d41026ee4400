"""The read side of the SQLite store: outstanding records, one record, batches, summary.

Each reader owns one read-only connection; it serves the CLI, the HTTP API and the sinks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TypeVar

import accrochage.state.sqlite.alerts as alert_rows
import accrochage.state.sqlite.changes as change_rows
import accrochage.state.sqlite.correction_queries as open_requests
import accrochage.state.sqlite.corrections as correction_rows
from accrochage.models.batch import FrozenBatch
from accrochage.models.record import yields_id
from accrochage.models.scope import IdHolder
from accrochage.models.vocabulary import BatchState, RecordStatus
from accrochage.state.base import (
    AlertDelivery,
    AlertState,
    BatchFile,
    DashboardNumbers,
    DeadLetter,
    JsonRow,
    Observation,
    Reader,
    ReleasedBatch,
    StoredContent,
)
from accrochage.state.queries import BatchKey, ChangesRead, OutstandingQuery, RequestKey
from accrochage.state.sqlite.batch_queries import (
    batch_detail,
    batches,
    batches_to_write,
    iter_batches,
    left_out,
)
from accrochage.state.sqlite.connection import storage_error, told_if_changed
from accrochage.state.sqlite.evidence import evidence_sources
from accrochage.state.sqlite.health import schema_versions_written, store_health
from accrochage.state.sqlite.observe import dashboard, observe
from accrochage.state.sqlite.pending import PendingStatements
from accrochage.state.sqlite.placed import placed_files, released_batches
from accrochage.state.sqlite.record_listing import iter_outstanding, outstanding
from accrochage.state.sqlite.record_queries import by_key, record_detail, summary
from accrochage.state.sqlite.revalidation import to_revalidate
from accrochage.state.sqlite.rows import (
    in_chunks,
    placeholders,
    prepared_passage,
)
from accrochage.state.sqlite.unusable_queries import unusable
from accrochage.state.sqlite.withdrawals import (
    held_elsewhere,
    refused_after_acceptance,
    undeposited_creations,
)
from accrochage.state.values import EvidenceSources, StoreHealth

T = TypeVar("T")


class SqliteReader(PendingStatements, Reader):
    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        self._conn = conn
        self._path = path

    def answer(self, query: Callable[[Reader], T]) -> T:
        if self._path is None:
            return query(self)
        try:
            with told_if_changed(self._conn, self._path):
                return query(self)
        except sqlite3.Error as exc:
            raise storage_error(exc, self._path) from None

    def close(self) -> None:
        self._conn.close()

    def outstanding(self, query: OutstandingQuery) -> list[JsonRow]:
        return outstanding(self._conn, query)

    def iter_outstanding(self, query: OutstandingQuery) -> Iterator[JsonRow]:
        return iter_outstanding(self._conn, query)

    def to_revalidate(self, certifier: str | None, *, held_by_date: bool) -> list[str]:
        return to_revalidate(self._conn, certifier, held_by_date)

    def record_detail(self, record_id: str, as_of: date) -> JsonRow | None:
        return record_detail(self._conn, record_id, as_of)

    def left_out(self) -> list[JsonRow]:
        return left_out(self._conn)

    def batches(
        self,
        *,
        state: str | None = None,
        certifier: str | None = None,
        limit: int | None = 100,
        after: BatchKey | None = None,
    ) -> list[JsonRow]:
        return batches(self._conn, state=state, certifier=certifier, limit=limit, after=after)

    def iter_batches(
        self, *, state: str | None = None, certifier: str | None = None
    ) -> Iterator[JsonRow]:
        return iter_batches(self._conn, state=state, certifier=certifier, limit=None)

    def batch_detail(self, batch_id: str) -> JsonRow | None:
        return batch_detail(self._conn, batch_id)

    def summary(self, as_of: date, margin_days: int) -> JsonRow:
        # Whose records are at risk, whose overdue (a trusted third party's first question),
        # counted as the alerts count them; the totals are their sums.
        seen = observe(self._conn, as_of, margin_days, datetime.combine(as_of, time.min, UTC))
        result = summary(self._conn, as_of, margin_days, seen)
        # A record an open correction request keeps outstanding (CONTRACT §9) counts too.
        result["outstanding"] += open_requests.held_count(self._conn)
        result["correction_requests"] = open_requests.summary_part(self._conn, as_of, margin_days)
        result["at_risk_by_certifier"] = by_key(seen.at_risk)
        result["overdue_by_certifier"] = by_key(seen.overdue)
        return result

    def changes(
        self, after: int, limit: int, window: int, certifiers: Collection[str] | None
    ) -> ChangesRead:
        return change_rows.changes(self._conn, after, limit, window, certifiers)

    def requests_of_another_certifier(self) -> list[tuple[str, str, str, str]]:
        return correction_rows.mismatched(self._conn)

    def held_elsewhere(self) -> list[JsonRow]:
        return held_elsewhere(self._conn)

    def refused_after_acceptance(self) -> tuple[int, str | None]:
        return refused_after_acceptance(self._conn)

    def undeposited_creations(self) -> list[FrozenBatch]:
        return undeposited_creations(self._conn)

    def unusable(
        self,
        limit: int = 100,
        before: int | None = None,
        *,
        dismissed: bool = False,
        certifier: str | None = None,
        sender: str | None = None,
    ) -> list[JsonRow]:
        return unusable(
            self._conn, limit, before, dismissed=dismissed, certifier=certifier, sender=sender
        )

    def batches_to_write(self) -> list[FrozenBatch]:
        return batches_to_write(self._conn)

    def released_batches(
        self, states: Sequence[BatchState], batch_ids: Sequence[str] | None = None
    ) -> list[ReleasedBatch]:
        return released_batches(self._conn, states, batch_ids)

    def placed_files(self, states: Sequence[BatchState]) -> list[tuple[str, str]]:
        return placed_files(self._conn, states)

    def frozen_contents(self, batch_id: str) -> Iterator[StoredContent]:
        rows = self._conn.execute(
            "SELECT c.payload, c.event_id, m.code, p.data, p.schema_version "
            "FROM batch_members m JOIN contents c "
            "ON c.record_id = m.record_id AND c.version = m.version "
            "LEFT JOIN passages p ON p.record_id = m.record_id AND p.version = m.version "
            "WHERE m.batch_id = ? ORDER BY m.code, m.record_id",
            (batch_id,),
        )
        for payload, event_id, code, passage, schema in rows:
            yield StoredContent(payload, event_id, code, prepared_passage(passage, schema))

    def file_paths(self) -> list[tuple[str, str, BatchState, Path]]:
        return [
            (row[0], row[1], BatchState(row[2]), Path(row[3]))
            for row in self._conn.execute(
                "SELECT batch_id, certifier, state, file_path FROM batches "
                "WHERE file_path IS NOT NULL AND archived_at IS NULL"
            )
        ]

    def batch_files(self, batch_ids: Sequence[str]) -> dict[str, BatchFile]:
        found: dict[str, BatchFile] = {}
        for chunk in in_chunks(batch_ids):
            for batch_id, certifier, state, name, path, archived in self._conn.execute(
                "SELECT batch_id, certifier, state, file_name, file_path, archived_at "
                f"FROM batches WHERE batch_id IN ({placeholders(chunk)})",
                chunk,
            ):
                recorded = None if path is None else Path(path)
                found[batch_id] = BatchFile(
                    certifier, BatchState(state), name, recorded, archived is not None
                )
        return found

    def content_version_of(self, record_id: str, event_id: str) -> int | None:
        found = self._conn.execute(
            "SELECT MIN(version) FROM contents WHERE record_id = ? AND event_id = ?",
            (record_id, event_id),
        ).fetchone()
        return None if found is None or found[0] is None else int(found[0])

    def record_holders(self, record_ids: Sequence[str]) -> dict[str, IdHolder]:
        found: dict[str, IdHolder] = {}
        for chunk in in_chunks(record_ids):
            for record_id, certifier, status, ever_valid in self._conn.execute(
                f"SELECT record_id, certifier, status, ever_valid FROM records "
                f"WHERE record_id IN ({placeholders(chunk)})",
                chunk,
            ):
                yields = yields_id(RecordStatus(status), bool(ever_valid))
                found[record_id] = IdHolder(certifier, yields)
        return found

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        return [
            DeadLetter(row["topic"], row["key"], row["value"], row["id"])
            for row in self._conn.execute(
                "SELECT id, topic, key, value FROM dead_letters ORDER BY id LIMIT ?", (limit,)
            )
        ]

    def offsets(self, source: str) -> dict[int, int]:
        rows = self._conn.execute(
            "SELECT partition, next_offset FROM input_offsets WHERE source = ?", (source,)
        )
        return {int(r["partition"]): int(r["next_offset"]) for r in rows}

    def log_marks(self, source: str) -> dict[int, str]:
        rows = self._conn.execute(
            "SELECT partition, last_mark FROM input_offsets "
            "WHERE source = ? AND last_mark IS NOT NULL",
            (source,),
        )
        return {int(r["partition"]): str(r["last_mark"]) for r in rows}

    def observe(self, as_of: date, margin_days: int, unreported_before: datetime) -> Observation:
        return observe(self._conn, as_of, margin_days, unreported_before)

    def alert_states(self) -> list[AlertState]:
        return alert_rows.alert_states(self._conn)

    def alert_deliveries(self, receiver: str) -> list[AlertDelivery]:
        return alert_rows.alert_deliveries(self._conn, receiver)

    def dashboard(self, as_of: date, limit: int = 50) -> DashboardNumbers:
        return dashboard(self._conn, as_of, limit)

    def schema_versions_written(self) -> set[str]:
        return schema_versions_written(self._conn)

    def health(self) -> StoreHealth:
        return store_health(self._conn)

    def evidence_sources(self, record_id: str) -> EvidenceSources:
        return evidence_sources(self._conn, record_id)

    # -- correction requests ---------------------------------------------------------------

    def correction_requests(
        self,
        *,
        open_only: bool,
        as_of: date,
        margin_days: int,
        limit: int | None = None,
        after: RequestKey | None = None,
        certifier: str | None = None,
    ) -> list[JsonRow]:
        return correction_rows.listing(
            self._conn,
            open_only=open_only,
            as_of=as_of,
            margin_days=margin_days,
            limit=limit,
            after=after,
            certifier=certifier,
        )
