"""Reference data in SQLite: staging tables filled in short transactions, renamed at once."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from accrochage.errors import RefdataBusy, StoreError
from accrochage.models.reference import Fiche, Move, Period
from accrochage.state.base import REFDATA_KINDS, RefdataSource, RefdataStorage
from accrochage.state.sqlite.connection import connect, told_if_changed
from accrochage.state.sqlite.transaction import SqliteTransaction

Writing = Callable[[], AbstractContextManager[SqliteTransaction]]
"""The store's `transaction`: its write lock, then BEGIN IMMEDIATE ... COMMIT."""

CHUNK = 5000
"""Rows per staging transaction: the writer lock is held a few milliseconds at a time."""
LOAD_LOCK_POLL_SECONDS = 0.2

TABLES: dict[str, dict[str, str]] = {
    "rncp": {
        "refdata_fiches": "code TEXT PRIMARY KEY, active INTEGER NOT NULL, end_day TEXT, "
        "limit_day TEXT",
        "refdata_certifiers": "code TEXT NOT NULL, siret TEXT NOT NULL, "
        "inactive INTEGER NOT NULL DEFAULT 0, inactive_since TEXT, PRIMARY KEY (code, siret)",
        "refdata_replacements": "code TEXT NOT NULL, position INTEGER NOT NULL, "
        "new_code TEXT NOT NULL, PRIMARY KEY (code, position)",
    },
    "cog": {
        "refdata_communes": "code TEXT NOT NULL, start_day TEXT NOT NULL, end_day TEXT NOT NULL, "
        "PRIMARY KEY (code, start_day, end_day)",
        "refdata_moves": "before TEXT NOT NULL, after TEXT NOT NULL, day TEXT NOT NULL, "
        "PRIMARY KEY (before, after, day)",
        "refdata_countries": "code TEXT PRIMARY KEY",
    },
}
"""The same definitions as migrations m010 and m100 (a load recreates them as staging
tables)."""


UNIDENTIFIED = ""
"""The `refdata_certifiers` row of a fiche one of whose certifiers has no SIRET in the export
(`Fiche.unidentified_certifiers`): no SIRET is empty."""


def _certifier_rows(fiche: Fiche) -> list[tuple[str, str, int, str | None]]:
    inactive = dict(fiche.inactive)
    rows = [
        (fiche.code, siret, int(siret in inactive), _day(inactive.get(siret)))
        for siret in sorted(fiche.sirets)
    ]
    if fiche.unidentified_certifiers:
        rows.append((fiche.code, UNIDENTIFIED, 0, None))
    return rows


def _lock(fd: int, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise RefdataBusy(
                    "another process is loading reference data into this state; its load "
                    "goes on: run `accrochage refdata status` once it ends, or load again then"
                ) from None
            time.sleep(LOAD_LOCK_POLL_SECONDS)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def read_only_refdata(state: Path) -> RefdataStorage:
    """The state's reference data, read-only: what a decode process opens for itself (named
    here, where a decode process's fork server imports it: `processes.DECODING`)."""
    return SqliteRefdata(state, _read_only)


def _read_only() -> AbstractContextManager[SqliteTransaction]:
    raise RuntimeError("a decode process only reads the reference data")


class SqliteRefdata(RefdataStorage):
    def __init__(
        self, path: Path, transaction: Writing, conn: sqlite3.Connection | None = None
    ) -> None:
        """`conn`: a connection in a read transaction (`snapshot`), every read on it."""
        self._path = path
        self._transaction = transaction
        self._conn = conn

    @contextmanager
    def snapshot(self) -> Iterator[RefdataStorage]:
        """Reads in one read transaction: a swap by another process meanwhile is not seen,
        so the version, the sources and the rows read are of one load."""
        conn = connect(self._path, readonly=True)
        try:
            conn.execute("BEGIN")
            yield SqliteRefdata(self._path, self._transaction, conn)
        finally:
            conn.close()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A transaction of the store (its write lock), as the connection it runs on."""
        with self._transaction() as tx:
            yield tx._conn  # the same package's transaction

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        iterator = iter(rows)
        while chunk := list(islice(iterator, CHUNK)):
            with self._writing() as conn:
                conn.executemany(sql, chunk)

    def _read(self, sql: str) -> Iterator[sqlite3.Row]:
        conn = self._conn or connect(self._path, readonly=True)
        try:
            with told_if_changed(conn, self._path):
                yield from conn.execute(sql)
        finally:
            if conn is not self._conn:  # a snapshot's connection is closed by `snapshot`
                conn.close()

    @contextmanager
    def loading(self, wait_seconds: float) -> Iterator[None]:
        """`<state>.refdata-lock`, an exclusive `flock` for the whole load: released by the
        kernel if the process dies, so a killed load never holds it."""
        path = self._path.with_name(self._path.name + ".refdata-lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot open {path}: {exc.strerror}; check that the state's folder is writable"
            ) from None
        try:
            _lock(fd, wait_seconds)
            yield
        finally:
            os.close(fd)  # the lock goes with the descriptor

    def stage(self, kind: str) -> None:
        with self._writing() as conn:
            for name, columns in TABLES[kind].items():
                conn.execute(f"DROP TABLE IF EXISTS {name}_staging")
                conn.execute(f"CREATE TABLE {name}_staging ({columns}) WITHOUT ROWID")

    def stage_fiches(self, fiches: Iterable[Fiche]) -> None:
        batch: list[Fiche] = []
        for fiche in fiches:
            batch.append(fiche)
            if len(batch) >= CHUNK:
                self._stage_fiches(batch)
                batch = []
        self._stage_fiches(batch)

    def _stage_fiches(self, fiches: list[Fiche]) -> None:
        if not fiches:
            return
        with self._writing() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO refdata_fiches_staging VALUES (?, ?, ?, ?)",
                [
                    (f.code, int(f.active), _day(f.end_of_registration), _day(f.delivery_limit))
                    for f in fiches
                ],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO refdata_certifiers_staging "
                "(code, siret, inactive, inactive_since) VALUES (?, ?, ?, ?)",
                [row for f in fiches for row in _certifier_rows(f)],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO refdata_replacements_staging VALUES (?, ?, ?)",
                [(f.code, i, new) for f in fiches for i, new in enumerate(f.replaced_by)],
            )

    def stage_communes(self, communes: Iterable[tuple[str, Period]]) -> None:
        self._write(
            "INSERT OR IGNORE INTO refdata_communes_staging VALUES (?, ?, ?)",
            ((code, p.start.isoformat(), _day(p.end) or "") for code, p in communes),
        )

    def stage_moves(self, moves: Iterable[Move]) -> None:
        self._write(
            "INSERT OR IGNORE INTO refdata_moves_staging VALUES (?, ?, ?)",
            ((m.before, m.after, m.day.isoformat()) for m in moves),
        )

    def stage_countries(self, codes: Iterable[str]) -> None:
        self._write(
            "INSERT OR IGNORE INTO refdata_countries_staging VALUES (?)", ((c,) for c in codes)
        )

    def swap(self, source: RefdataSource) -> int:
        record = {
            "day": _day(source.day),
            "vintage": source.vintage,
            "files": list(source.files),
            "signature": source.signature,
            "loaded_at": source.loaded_at.isoformat(),
            "counts": source.counts,
            "parts": list(source.parts),
        }
        with self._writing() as conn:
            for name in TABLES[source.kind]:
                conn.execute(f"DROP TABLE {name}")
                conn.execute(f"ALTER TABLE {name}_staging RENAME TO {name}")
            conn.execute(
                "INSERT OR REPLACE INTO refdata_sources (kind, source) VALUES (?, ?)",
                (source.kind, json.dumps(record, ensure_ascii=False)),
            )
            conn.execute("UPDATE refdata_meta SET value = value + 1 WHERE key = 'version'")
        return self.version()

    def version(self) -> int:
        for row in self._read("SELECT value FROM refdata_meta WHERE key = 'version'"):
            return int(row[0])
        return 0

    def sources(self) -> list[RefdataSource]:
        found = []
        for row in self._read("SELECT kind, source FROM refdata_sources ORDER BY kind"):
            data = json.loads(row["source"])
            found.append(
                RefdataSource(
                    kind=row["kind"],
                    day=_date(data["day"]),
                    vintage=data["vintage"],
                    files=tuple(data["files"]),
                    signature=data["signature"],
                    loaded_at=datetime.fromisoformat(data["loaded_at"]),
                    counts=data["counts"],
                    parts=tuple(data["parts"]),
                )
            )
        return sorted(found, key=lambda s: REFDATA_KINDS.index(s.kind))

    def fiches(self) -> Iterator[Fiche]:
        sirets: dict[str, set[str]] = {}
        inactive: dict[str, list[tuple[str, date | None]]] = {}
        unidentified: set[str] = set()
        for row in self._read(
            "SELECT code, siret, inactive, inactive_since FROM refdata_certifiers "
            "ORDER BY code, siret"
        ):
            if row[1] == UNIDENTIFIED:
                unidentified.add(row[0])
                continue
            sirets.setdefault(row[0], set()).add(row[1])
            if row[2]:
                inactive.setdefault(row[0], []).append((row[1], _date(row[3])))
        newer: dict[str, list[str]] = {}
        for row in self._read(
            "SELECT code, new_code FROM refdata_replacements ORDER BY code, position"
        ):
            newer.setdefault(row[0], []).append(row[1])
        for row in self._read("SELECT code, active, end_day, limit_day FROM refdata_fiches"):
            code = row[0]
            yield Fiche(
                code,
                bool(row[1]),
                _date(row[2]),
                _date(row[3]),
                frozenset(sirets.get(code, ())),
                tuple(newer.get(code, ())),
                code in unidentified,
                tuple(inactive.get(code, ())),
            )

    def communes(self) -> Iterator[tuple[str, Period]]:
        for row in self._read("SELECT code, start_day, end_day FROM refdata_communes"):
            yield row[0], Period(date.fromisoformat(row[1]), _date(row[2]))

    def moves(self) -> Iterator[Move]:
        for row in self._read("SELECT before, after, day FROM refdata_moves"):
            yield Move(date.fromisoformat(row[2]), row[0], row[1])

    def countries(self) -> Iterator[str]:
        for row in self._read("SELECT code FROM refdata_countries"):
            yield row[0]
