"""The alerts' state: each alert's last evaluation and what each receiver last got of it.

Kept in the store so that a restart neither forgets a firing alert nor sends a resolved one
again (`streams/alerts.py`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

from accrochage.state.base import AlertDelivery, AlertState
from accrochage.state.sqlite.rows import stamp


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def alert_states(conn: sqlite3.Connection) -> list[AlertState]:
    rows = conn.execute(
        "SELECT alertname, certifier, severity, status, value, starts_at, ends_at "
        "FROM alerts ORDER BY alertname, certifier"
    )
    return [
        AlertState(r[0], r[1], r[2], r[3], int(r[4]), datetime.fromisoformat(r[5]), _moment(r[6]))
        for r in rows
    ]


def save_alert_states(conn: sqlite3.Connection, states: Iterable[AlertState]) -> None:
    conn.executemany(
        "INSERT INTO alerts (alertname, certifier, severity, status, value, starts_at, ends_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alertname, certifier) DO UPDATE SET "
        "severity = excluded.severity, status = excluded.status, value = excluded.value, "
        "starts_at = excluded.starts_at, ends_at = excluded.ends_at",
        [
            (
                s.alertname,
                s.certifier,
                s.severity,
                s.status,
                s.value,
                stamp(s.starts_at),
                None if s.ends_at is None else stamp(s.ends_at),
            )
            for s in states
        ],
    )


def alert_deliveries(conn: sqlite3.Connection, receiver: str) -> list[AlertDelivery]:
    rows = conn.execute(
        "SELECT alertname, certifier, receiver, status, sent_at FROM alert_deliveries "
        "WHERE receiver = ? ORDER BY alertname, certifier",
        (receiver,),
    )
    return [AlertDelivery(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4])) for r in rows]


def save_alert_delivery(conn: sqlite3.Connection, delivery: AlertDelivery) -> None:
    conn.execute(
        "INSERT INTO alert_deliveries (alertname, certifier, receiver, status, sent_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (alertname, certifier, receiver) DO UPDATE SET "
        "status = excluded.status, sent_at = excluded.sent_at",
        (
            delivery.alertname,
            delivery.certifier,
            delivery.receiver,
            delivery.status,
            stamp(delivery.sent_at),
        ),
    )
