"""The SQLite state store: the source of truth, including how far each input was read.

One writer connection per process (callers serialise on it); readers open their own
connections so that queries never wait behind ingestion. WAL, a busy timeout for other
processes, `synchronous=FULL` so that an acknowledged event survives a power cut.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from accrochage.errors import StoreError
from accrochage.state.lifecycle import Change, Row
from accrochage.state.migrations import migrations

BUSY_TIMEOUT_MS = 30_000
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
HISTORY_COLUMNS = ("record_id", "at", "from_status", "to_status", "reason", "batch_id", "report")
_UPSERT_RECORD = (
    f"INSERT OR REPLACE INTO records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
)
_INSERT_CONTENT = (
    f"INSERT OR REPLACE INTO contents ({', '.join(CONTENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(CONTENT_COLUMNS))})"
)
_INSERT_HISTORY = (
    f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(HISTORY_COLUMNS))})"
)
_CURRENT = """
SELECT r.*,
  (SELECT max(version) FROM contents c WHERE c.record_id = r.record_id) AS max_version,
  (SELECT content_hash FROM contents c
     WHERE c.record_id = r.record_id AND c.version = r.correction_version) AS correction_hash
FROM records r WHERE r.record_id IN ({marks})
"""


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
    return conn


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = connect(path)
            migrations.apply(Database(self.conn))
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the state database {path}: {exc}; check paths.state"
            ) from None
        self.lock = threading.RLock()
        lock_path = path.with_name(path.name + ".write-lock")
        self._write_lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def close(self) -> None:
        self.conn.close()
        os.close(self._write_lock)

    def reader(self) -> sqlite3.Connection:
        """A separate connection for queries: readers never block the writer in WAL."""
        return connect(self.path, readonly=True)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), one writer at a time.

        Writers of every process first take an exclusive `flock` on `<state>.write-lock`: the
        kernel wakes a waiting writer the moment the lock is free, where SQLite's busy handler
        would sleep up to 100 ms between retries (a service's writer behind a flush in
        another process lost half its time so). Readers never take it.
        """
        with self.lock:
            fcntl.flock(self._write_lock, fcntl.LOCK_EX)
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            finally:
                fcntl.flock(self._write_lock, fcntl.LOCK_UN)

    @staticmethod
    def current_rows(conn: sqlite3.Connection, record_ids: Sequence[str]) -> dict[str, Row]:
        found: dict[str, Row] = {}
        unique = list(dict.fromkeys(record_ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            query = _CURRENT.format(marks=", ".join("?" * len(chunk)))
            for row in conn.execute(query, chunk):
                found[row["record_id"]] = dict(row)
        return found

    @staticmethod
    def write_changes(conn: sqlite3.Connection, changes: Iterable[Change]) -> None:
        records, contents, history = [], [], []
        for change in changes:
            if change.record is not None:
                records.append(tuple(change.record[c] for c in RECORD_COLUMNS))
            if change.content is not None:
                contents.append(tuple(change.content[c] for c in CONTENT_COLUMNS))
            if change.history is not None:
                history.append(tuple(change.history[c] for c in HISTORY_COLUMNS))
        conn.executemany(_UPSERT_RECORD, records)
        conn.executemany(_INSERT_CONTENT, contents)
        conn.executemany(_INSERT_HISTORY, history)

    @staticmethod
    def add_history(conn: sqlite3.Connection, rows: Iterable[Row]) -> None:
        conn.executemany(_INSERT_HISTORY, [tuple(r[c] for c in HISTORY_COLUMNS) for r in rows])

    @staticmethod
    def log_unusable(conn: sqlite3.Connection, rows: Iterable[Row]) -> None:
        conn.executemany(
            "INSERT INTO unusable (received_at, source, event_id, record_id, raw, errors) "
            "VALUES (:received_at, :source, :event_id, :record_id, :raw, :errors)",
            list(rows),
        )

    @staticmethod
    def save_offsets(conn: sqlite3.Connection, source: str, offsets: dict[int, int]) -> None:
        conn.executemany(
            "INSERT INTO input_offsets (source, partition, next_offset) VALUES (?, ?, ?) "
            "ON CONFLICT (source, partition) DO UPDATE SET next_offset = excluded.next_offset",
            [(source, partition, offset) for partition, offset in offsets.items()],
        )

    @staticmethod
    def offsets_in(conn: sqlite3.Connection, source: str) -> dict[int, int]:
        rows = conn.execute(
            "SELECT partition, next_offset FROM input_offsets WHERE source = ?", (source,)
        )
        return {int(r["partition"]): int(r["next_offset"]) for r in rows}

    def offsets(self, source: str) -> dict[int, int]:
        with self.lock:
            return self.offsets_in(self.conn, source)

    @staticmethod
    def queue_dead_letters(conn: sqlite3.Connection, rows: list[Row]) -> None:
        if rows:
            conn.executemany(
                "INSERT INTO dead_letters (topic, key, value, created_at) "
                "VALUES (:topic, :key, :value, datetime('now'))",
                rows,
            )


def fetch_all(conn: sqlite3.Connection, query: str, params: Sequence[Any] = ()) -> list[Row]:
    return [dict(row) for row in conn.execute(query, params)]
