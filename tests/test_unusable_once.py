"""An unusable input is kept once (migration m080): a state of before, its duplicate rows
kept as they were, upgrades in place, and from then on the same input adds no row."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from accrochage.models.problems import Problem
from accrochage.state.base import UnusableEvent
from accrochage.state.sqlite import SqliteStore, migrations
from accrochage.streams.rejected import raw_digest

M080 = "m080_unusable_once"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def unusable(raw: str, source: str) -> UnusableEvent:
    return UnusableEvent(
        NOW, source, None, None, raw, [Problem("event", "is not valid JSON")], raw_digest(raw)
    )


def rows(path: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT source, raw_sha256 FROM unusable ORDER BY id").fetchall()


def test_a_state_of_before_with_duplicates_upgrades_and_then_keeps_each_input_once(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.db"
    db = Database(sqlite3.connect(state))
    migrations.migrations.apply(db, stop_before=M080)
    for source in ("http:a", "http:b"):  # what the versions before kept: each retry
        db.execute(
            "INSERT INTO unusable (received_at, source, raw, errors) VALUES (?, ?, ?, '[]')",
            ("2026-12-01T10:00:00+01:00", source, "not json"),
        )
    db.conn.commit()
    db.close()

    store = SqliteStore(state)
    try:
        for source in ("http:c", "http:d"):
            with store.transaction() as tx:
                tx.log_unusable([unusable("not json", source), unusable("{", source)])
        with store.reading() as reader:
            listed = reader.unusable()
    finally:
        store.close()
    digest = raw_digest("not json")
    assert rows(state) == [
        ("http:a", None),
        ("http:b", None),
        ("http:c", digest),
        ("http:c", raw_digest("{")),
    ]
    assert "raw_sha256" not in listed[0]
