"""The unusable log as the operator reads it: the events kept without a usable record."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from accrochage.state.sqlite.record_queries import fetch_all


def unusable(
    conn: sqlite3.Connection,
    limit: int = 100,
    before: int | None = None,
    *,
    dismissed: bool = False,
    certifier: str | None = None,
) -> list[dict[str, Any]]:
    """The newest first; `before`: those older than a page's last id; `dismissed`: those the
    operator dismissed too; `certifier`: those naming this certifier only."""
    where = [] if dismissed else ["dismissed_at IS NULL"]
    where += [] if before is None else [f"id < {int(before)}"]
    where += [] if certifier is None else ["certifier = ?"]
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    return [
        {**row, "errors": json.loads(row["errors"])}
        for row in fetch_all(
            conn,
            "SELECT id, received_at, source, certifier, event_id, record_id, raw, errors, "
            f"dismissed_at, dismissed_note, forgotten_at FROM unusable {clause}ORDER BY id DESC "
            f"LIMIT {int(limit)}",
            () if certifier is None else (certifier,),
        )
    ]
