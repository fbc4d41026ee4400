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
    sender: str | None = None,
) -> list[dict[str, Any]]:
    """The newest first; `before`: those older than a page's last id; `dismissed`: those the
    operator dismissed too; `certifier`: those naming this certifier only; `sender`: those an
    HTTP sender sent (`api.ingest_tokens #N`, `operator`)."""
    where = [] if dismissed else ["dismissed_at IS NULL"]
    where += [] if before is None else [f"id < {int(before)}"]
    found, params = sent_by(certifier, sender)
    where += found
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    return [
        {**row, "errors": json.loads(row["errors"])}
        for row in fetch_all(
            conn,
            "SELECT id, received_at, source, certifier, event_id, record_id, raw, errors, "
            f"dismissed_at, dismissed_note, forgotten_at FROM unusable {clause}ORDER BY id DESC "
            f"LIMIT {int(limit)}",
            params,
        )
    ]


def sent_by(certifier: str | None, sender: str | None) -> tuple[list[str], list[str | int]]:
    """The terms keeping the events naming `certifier` and sent by `sender`, and their
    parameters. An HTTP event's source ends with its sender (`http:ADDRESS (SENDER)`, see
    `api/server.py`): events read from a file or a log have none."""
    where: list[str] = []
    params: list[str | int] = []
    if certifier is not None:
        where.append("certifier = ?")
        params.append(certifier)
    if sender is not None:
        suffix = f" ({sender})"
        where.append("source LIKE 'http:%' AND substr(source, -?) = ?")
        params += [len(suffix), suffix]
    return where, params
