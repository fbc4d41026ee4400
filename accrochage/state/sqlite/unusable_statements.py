"""The unusable log's statements: events kept without a usable record, their dismissal by the
operator and the forgetting of their raw input, which may name a person."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from accrochage.state.sqlite.record_rows import problems_json
from accrochage.state.sqlite.rows import stamp
from accrochage.state.sqlite.unusable_queries import sent_by
from accrochage.state.values import UnusableEvent


class UnusableStatements:
    _conn: sqlite3.Connection

    @contextmanager
    def _zeroing_freed_pages(self) -> Iterator[None]:
        """The connection's `secure_delete = FAST` zeroes what a statement deletes in the pages
        it writes, never a page it frees: a row rewritten (dismissed, opened again, forgotten)
        whose raw input is too long for its page (past about 4,000 bytes) left its overflow
        pages, the name in them, on the freelist, in the file. Here they are zeroed too."""
        self._conn.execute("PRAGMA secure_delete = ON")
        try:
            yield
        finally:
            self._conn.execute("PRAGMA secure_delete = FAST")

    def log_unusable(self, events: Iterable[UnusableEvent]) -> None:
        kept = list(events)
        if not kept:  # every group's transaction calls it: no pragma for nothing
            return
        with self._zeroing_freed_pages():
            self._log_unusable(kept)

    def _log_unusable(self, events: Iterable[UnusableEvent]) -> None:
        self._conn.executemany(
            "INSERT INTO unusable "
            "(received_at, source, event_id, record_id, raw, errors, raw_sha256, certifier) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (raw_sha256) DO UPDATE SET "
            # Dismissed, then sent again unfixed: open again (it was hidden for good). Kept
            # before m230 (no certifier): filed under the one it names.
            "dismissed_at = NULL, dismissed_note = NULL, raw = excluded.raw, forgotten_at = NULL, "
            "certifier = coalesce(unusable.certifier, excluded.certifier) "
            "WHERE unusable.dismissed_at IS NOT NULL "
            "OR (unusable.certifier IS NULL AND excluded.certifier IS NOT NULL)",
            [
                (
                    stamp(e.received_at),
                    e.source,
                    e.event_id,
                    e.record_id,
                    e.raw,
                    problems_json(e.errors),
                    e.raw_sha256,
                    e.certifier,
                )
                for e in events
            ],
        )

    def dismiss_unusable(self, ids: Sequence[int], note: str, at: datetime) -> list[int]:
        found = []
        with self._zeroing_freed_pages():
            for unusable_id in dict.fromkeys(ids):
                cursor = self._conn.execute(
                    "UPDATE unusable SET dismissed_at = ?, dismissed_note = ? WHERE id = ?",
                    (at.isoformat(), note, unusable_id),
                )
                if cursor.rowcount:
                    found.append(unusable_id)
        return found

    def forget_dismissed_unusable(self, dismissed_before: datetime, at: datetime) -> int:
        with self._zeroing_freed_pages():
            cursor = self._conn.execute(
                "UPDATE unusable SET raw = '', forgotten_at = ? "
                # julianday: the times are written with Paris's offset, which changes in summer.
                "WHERE julianday(dismissed_at) < julianday(?) AND forgotten_at IS NULL",
                (at.isoformat(), dismissed_before.isoformat()),
            )
        return cursor.rowcount

    def dismiss_open_unusable(
        self, certifier: str | None, note: str, at: datetime, *, sender: str | None = None
    ) -> int:
        where, params = sent_by(certifier, sender)
        with self._zeroing_freed_pages():
            cursor = self._conn.execute(
                "UPDATE unusable SET dismissed_at = ?, dismissed_note = ? "
                f"WHERE {' AND '.join(['dismissed_at IS NULL', *where])}",
                [at.isoformat(), note, *params],
            )
        return cursor.rowcount
