"""The watched numbers in a few grouped queries, each answered from an index.

Run by the services' timer (metrics, alerts, the dashboard), never per scrape: on a state of a
million records the whole observation takes a fraction of a second, a scrape none.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta

import accrochage.state.sqlite.correction_queries as open_requests
from accrochage.models.vocabulary import BatchState, RecordStatus
from accrochage.state.base import DashboardNumbers, Observation, ToDeposit
from accrochage.state.sqlite.withdrawals import HELD_ELSEWHERE

_UNREPORTED = (BatchState.WRITTEN.value, BatchState.DEPOSITED.value)

DATE_UNKNOWN = "deadline IS NULL AND delivery_met = 0"
UNKNOWN_DEADLINE = f"outstanding = 1 AND {DATE_UNKNOWN}"
"""Records whose delivery deadline is due but unknown: the delivery date of their content
could not be read (an invalid event). They count as at risk, since the deadline could be any
day, an open request on one or not: opening a request is no correction. One whose request is
late counts overdue (`held_counts`)."""


def by_certifier(
    conn: sqlite3.Connection, certifiers: set[str | None], where: str, params: tuple[str, ...] = ()
) -> dict[str | None, int]:
    """certifier -> its outstanding records matching `where` (on their deadline), but for
    those an open request holds (`held_counts` counts them): a range of
    `records_outstanding_certifier` each. Grouped by certifier, SQLite read the entry of every
    outstanding record for each count (430,000 at 1,000,000 records; 80–160 ms a count at
    each watch, summary and dashboard refresh)."""
    sql = (
        "SELECT count(*) FROM records INDEXED BY records_outstanding_certifier "
        f"WHERE outstanding = 1 AND certifier IS ? AND {where} AND {open_requests.NOT_HELD}"
    )
    found: dict[str | None, int] = {}
    for certifier in certifiers:
        (count,) = conn.execute(sql, (certifier, *params)).fetchone()
        if count:
            found[certifier] = count
    return found


def unknown_deadlines(
    conn: sqlite3.Connection, certifiers: set[str | None]
) -> dict[str | None, int]:
    """certifier -> records whose deadline is due but unknown (`UNKNOWN_DEADLINE`), but for
    those an open request holds: `held_counts` counts them."""
    return by_certifier(conn, certifiers, DATE_UNKNOWN)


def held_counts(held: open_requests.HeldDue, as_of: date, margin_days: int) -> tuple[int, int]:
    """(overdue, at risk) for a record an open request holds: by the request's deadline; and
    at risk whatever that is while its delivery date is unknown, until the request is late."""
    if held.day < as_of:
        return 1, 0
    return 0, int(held.delivery_unknown or held.day <= as_of + timedelta(days=margin_days))


_NEXT_DEADLINE = (
    "SELECT deadline FROM records WHERE outstanding = 1 AND certifier IS ? "
    f"AND deadline IS NOT NULL AND {open_requests.NOT_HELD} ORDER BY deadline LIMIT 1"
)


def _next_deadlines(
    conn: sqlite3.Connection, certifiers: set[str | None]
) -> dict[str | None, date]:
    """Each certifier's nearest deadline, a seek in `records_outstanding_certifier` each: the
    `min` grouped by certifier read every outstanding record (0.4 s at 1,000,000 records, at
    each watch, summary and dashboard refresh)."""
    found: dict[str | None, date] = {}
    for certifier in certifiers:
        first = conn.execute(_NEXT_DEADLINE, (certifier,)).fetchone()
        if first is not None:
            found[certifier] = date.fromisoformat(first[0])
    return found


def observe(
    conn: sqlite3.Connection, as_of: date, margin_days: int, unreported_before: datetime
) -> Observation:
    today = as_of.isoformat()
    margin_end = (as_of + timedelta(days=margin_days)).isoformat()
    records = {
        (certifier, status): count
        for status, certifier, count in conn.execute(
            "SELECT status, certifier, count(*) FROM records GROUP BY status, certifier"
        )
    }
    certifiers = {certifier for certifier, _ in records}
    overdue = by_certifier(conn, certifiers, "deadline < ?", (today,))
    at_risk = by_certifier(conn, certifiers, "deadline >= ? AND deadline <= ?", (today, margin_end))
    unknown = unknown_deadlines(conn, certifiers)
    for certifier, n in unknown.items():
        at_risk[certifier] = at_risk.get(certifier, 0) + n
    next_deadline = _next_deadlines(conn, certifiers)
    for held in open_requests.held_due(conn):
        certifier, day = held.certifier, held.day
        late, risk = held_counts(held, as_of, margin_days)
        if late:
            overdue[certifier] = overdue.get(certifier, 0) + 1
        if risk:
            at_risk[certifier] = at_risk.get(certifier, 0) + 1
        if held.delivery_unknown and not late:
            unknown[certifier] = unknown.get(certifier, 0) + 1
        if certifier not in next_deadline or day < next_deadline[certifier]:
            next_deadline[certifier] = day
    batches = {
        (certifier, state): count
        for certifier, state, count in conn.execute(
            "SELECT certifier, state, count(*) FROM batches GROUP BY certifier, state"
        )
    }
    unreported = dict(
        conn.execute(
            f"SELECT certifier, count(*) FROM batches WHERE state IN ({', '.join('?' * 2)}) "
            "AND report_file IS NULL AND written_at IS NOT NULL "
            "AND julianday(written_at) < julianday(?) "
            "GROUP BY certifier",
            (*_UNREPORTED, unreported_before.isoformat()),
        ).fetchall()
    )
    to_deposit = sum(n for (_, state), n in batches.items() if state == BatchState.WRITTEN.value)
    requests = open_requests.counts(conn, as_of, margin_days)
    return Observation(
        records=records,
        at_risk=at_risk,
        overdue=overdue,
        deadline_unknown=unknown,
        next_deadline=next_deadline,
        batches=batches,
        unreported=unreported,
        to_deposit=to_deposit,
        correction_requests_open={c: n for c, (n, _, _) in requests.items()},
        # At risk keeps counting past the deadline (CONTRACT §10: the alert keeps firing).
        correction_requests_at_risk={c: risk + late for c, (_, risk, late) in requests.items()},
    )


def _by_reason(
    conn: sqlite3.Connection, index: str, where: str
) -> dict[tuple[str | None, str | None], int]:
    """(certifier, cdc_reason) -> records matching `where`, read from `index` alone: a partial
    index of those records (m280), never the table row of every record of their status."""
    return {
        (certifier, reason): count
        for certifier, reason, count in conn.execute(
            f"SELECT certifier, cdc_reason, count(*) FROM records INDEXED BY {index} "
            f"WHERE {where} GROUP BY certifier, cdc_reason"
        )
    }


_CHART_PARTS = (
    ("records_outstanding_certifier", "deadline IS NOT NULL"),
    ("records_outstanding_deadline", f"deadline IS NULL AND NOT ({DATE_UNKNOWN})"),
)
"""The chart's outstanding records but those of a deadline unknown (`UNKNOWN_DEADLINE`): the
dated ones from an index alone, the undated ones from their range. In one query, the test of
`delivery_met` (not in an index) sent SQLite to the row of every outstanding record: 0.3–0.8 s
at 1,000,000 records, each 30 s while a dashboard is open."""


def dashboard(conn: sqlite3.Connection, as_of: date, limit: int = 50) -> DashboardNumbers:
    """The chart's deadlines (a record counted once: one whose delivery date is unknown is in
    the observation's "date unknown" until its request is late), the rejections, the files."""
    deadlines = {
        (certifier, None if day is None else date.fromisoformat(day)): count
        for index, which in _CHART_PARTS
        for certifier, day, count in conn.execute(
            f"SELECT certifier, deadline, count(*) FROM records INDEXED BY {index} "
            f"WHERE outstanding = 1 AND {which} AND {open_requests.NOT_HELD} "
            "GROUP BY certifier, deadline"
        )
    }
    for held in open_requests.held_due(conn):
        if held.delivery_unknown and held.day >= as_of:
            continue
        key = (held.certifier, held.day)
        deadlines[key] = deadlines.get(key, 0) + 1
    rejections = _by_reason(conn, "records_rejected_reason", f"status = '{RecordStatus.REJECTED}'")
    refused_suppressions = _by_reason(  # those held elsewhere wait for the CDC's support
        conn,
        "records_refused_suppression",
        f"suppression_rejected = 1 AND status = '{RecordStatus.ACCEPTED}' AND cdc_held_as IS NULL",
    )
    for_support = dict(
        conn.execute(f"SELECT certifier, count(*) FROM records WHERE {HELD_ELSEWHERE} GROUP BY 1")
    )
    to_deposit = [
        ToDeposit(
            batch_id,
            certifier,
            passages,
            None if at is None else datetime.fromisoformat(at),
            file_name,
            action,
        )
        for batch_id, certifier, passages, at, file_name, action in conn.execute(
            "SELECT batch_id, certifier, passages, written_at, file_name, action FROM batches "
            "WHERE state = ? "
            "ORDER BY julianday(written_at), batch_id LIMIT ?",
            (BatchState.WRITTEN.value, limit),
        )
    ]
    return DashboardNumbers(deadlines, rejections, refused_suppressions, to_deposit, for_support)
