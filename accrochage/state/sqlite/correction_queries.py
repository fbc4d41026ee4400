"""What the outstanding listing, the summary and the watch job read of open correction requests.

Open requests are few (an operator opens each), so the outstanding listing loads them once per
query while the records keep streaming; the counts are grouped queries over the
`(status, deadline)` index.
"""

from __future__ import annotations

import heapq
import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from accrochage.models.deadline import days_left
from accrochage.models.vocabulary import RequestStatus
from accrochage.state.queries import RecordKey
from accrochage.state.sqlite.rows import in_chunks, placeholders
from accrochage.state.values import JsonRow

_OPEN = RequestStatus.OPEN.value


@dataclass(frozen=True, slots=True)
class OpenRef:
    """A record's most urgent open request, as the outstanding listing shows it."""

    request_id: str
    deadline: str

    def as_json(self, as_of: date) -> JsonRow:
        left = days_left(date.fromisoformat(self.deadline), as_of)
        return {
            "request_id": self.request_id,
            "deadline": self.deadline,
            "days_left": left,
            "status": _OPEN,
        }


def open_refs(conn: sqlite3.Connection) -> dict[str, OpenRef]:
    """Each record's earliest-deadline open request (one pass over the open index)."""
    found: dict[str, OpenRef] = {}
    for record_id, request_id, deadline in conn.execute(
        "SELECT record_id, request_id, deadline FROM correction_requests WHERE status = ? "
        "ORDER BY deadline, request_id",
        (_OPEN,),
    ):
        found.setdefault(record_id, OpenRef(request_id, deadline))
    return found


def attach(row: JsonRow, opened: dict[str, OpenRef], as_of: date) -> JsonRow:
    ref = opened.get(row["record_id"])
    row["correction_request"] = None if ref is None else ref.as_json(as_of)
    return row


def _held(table: str) -> str:
    """A record's open requests are read by its id: SQLite took the open requests' index and
    read all of them for each record (quadratic: 23 ms a count at 429 open requests)."""
    return (
        f"{table}.outstanding = 0 OR {table}.deadline IS NULL "
        f"OR coalesce({table}.deadline > (SELECT min(o.deadline) FROM correction_requests o "
        "INDEXED BY correction_requests_record "
        f"WHERE o.record_id = {table}.record_id AND o.status = '{_OPEN}'), 0)"
    )


HELD = _held("records")
"""Which records with an open request take its deadline (see `held_open`): one outstanding
only because of it (an accepted record), one without a deadline of its own (a correction
after acceptance; a delivery date that cannot be read: the request's is then the one day
known to be due), and one whose own deadline comes after the request's: both are due, the
earlier first."""
_HELD_R = _held("r")


@dataclass(frozen=True, slots=True)
class HeldDue:
    record_id: str
    certifier: str | None
    day: date
    """Its open request's deadline (the earliest)."""
    delivery_unknown: bool
    """Its delivery date cannot be read: it also counts at risk until its request is late."""


def held_due(conn: sqlite3.Connection, where: str = "1") -> list[HeldDue]:
    """Each record an open request holds (see `held_open`) that matches `where` (on `r`, the
    record): the request's deadline is what is due. Counts, charts and the batch plan add
    these to the records' own deadlines, as every listing shows them."""
    return [
        HeldDue(record_id, certifier, date.fromisoformat(day), bool(unknown))
        for record_id, certifier, day, unknown in conn.execute(
            "SELECT r.record_id, r.certifier, min(q.deadline), "
            "r.outstanding = 1 AND r.deadline IS NULL AND r.delivery_met = 0 "
            "FROM correction_requests q JOIN records r ON r.record_id = q.record_id "
            f"WHERE q.status = ? AND ({_HELD_R}) AND ({where}) GROUP BY r.record_id",
            (_OPEN,),
        )
    ]


BY_RECORD_ID = "sqlite_autoindex_records_1"
"""The primary key's index. The records an open request holds are read by their ids: SQLite
chose a listing's status index instead, and read every accepted record for the few held
(120 ms at 1,000,000 records)."""
NOT_HELD = (
    f"NOT (record_id IN (SELECT record_id FROM correction_requests "
    f"WHERE status = '{_OPEN}' AND record_id IS NOT NULL) AND ({HELD}))"
)
"""A record that `held_open` does not list (those it lists are left out of the streams)."""


def held_deadline(row: JsonRow, outstanding: bool, deadline: str | None) -> JsonRow:
    """`row` showing its open request's deadline and days left when that request holds it
    (`HELD`): `show` then agrees with every listing."""
    ref = row.get("correction_request")
    if ref is None:
        return row
    held = not outstanding or deadline is None or deadline > ref["deadline"]
    if held:
        row["deadline"], row["days_left"] = ref["deadline"], ref["days_left"]
    return row


def held_open(
    conn: sqlite3.Connection,
    opened: dict[str, OpenRef],
    where: list[str],
    params: list[Any],
    present: Callable[[sqlite3.Row], JsonRow],
    *,
    as_of: date,
    due_within: int | None,
    overdue: bool,
    deadline_unknown: bool = False,
) -> list[JsonRow]:
    """Records an open request holds to its deadline, in no order: those outstanding only
    because of it (accepted ones, say), and outstanding ones without a deadline of their own
    (an accepted record whose correction waits for its SUPPRESSION).

    Such a record is due when its request is: its row shows the request's deadline and
    days left (CONTRACT §9: a record the CDC accepted on time is never overdue again; its new
    content's deadline is that of its open request), and `due_within` / `overdue` apply to it.
    `deadline_unknown`: one whose request is late is overdue, no longer of a day unknown (as
    the summary and the alerts count it): `--overdue` lists it, not `--deadline-unknown`.
    """
    found: list[JsonRow] = []
    for chunk in in_chunks(list(opened)):
        clauses = [
            *where,
            f"({HELD})",
            f"record_id IN ({placeholders(chunk)})",
        ]
        for row in conn.execute(
            f"SELECT * FROM records INDEXED BY {BY_RECORD_ID} WHERE {' AND '.join(clauses)}",
            [*params, *chunk],
        ):
            shown = attach(present(row), opened, as_of)
            ref = shown["correction_request"]
            shown["deadline"], shown["days_left"] = ref["deadline"], ref["days_left"]
            if due_within is not None and ref["days_left"] > due_within:
                continue
            if overdue and ref["days_left"] >= 0:
                continue
            if deadline_unknown and ref["days_left"] < 0:
                continue
            found.append(shown)
    return found


def merged(
    rows: Iterable[JsonRow],
    held: list[JsonRow],
    limit: int | None,
    key: Callable[[JsonRow], RecordKey],
) -> Iterator[JsonRow]:
    """The record rows and the held ones (sorted by `key`, as the rows are) in one order, up
    to `limit`."""
    both = heapq.merge(rows, held, key=key) if held else iter(rows)
    return itertools.islice(both, limit)


def held_count(conn: sqlite3.Connection) -> int:
    """Known records outstanding only because of an open request (for the summary)."""
    row = conn.execute(
        "SELECT count(DISTINCT q.record_id) FROM correction_requests q "
        "JOIN records r ON r.record_id = q.record_id WHERE q.status = ? AND r.outstanding = 0",
        (_OPEN,),
    ).fetchone()
    return int(row[0])


def counts(
    conn: sqlite3.Connection, as_of: date, margin_days: int
) -> dict[str | None, tuple[int, int, int]]:
    """Per certifier (the record's, else the one the request was entered with, for a record
    not known yet): open, at risk (due within the margin, not past it) and overdue requests."""
    today = as_of.isoformat()
    margin_end = (as_of + timedelta(days=margin_days)).isoformat()
    return {
        certifier: (int(n), int(risk or 0), int(late or 0))
        for certifier, n, risk, late in conn.execute(
            "SELECT coalesce(r.certifier, q.certifier), count(*), "
            "sum(q.deadline >= ? AND q.deadline <= ?), sum(q.deadline < ?) "
            "FROM correction_requests q LEFT JOIN records r ON r.record_id = q.record_id "
            "WHERE q.status = ? GROUP BY 1",
            (today, margin_end, today, _OPEN),
        )
    }


def summary_part(conn: sqlite3.Connection, as_of: date, margin_days: int) -> JsonRow:
    per = counts(conn, as_of, margin_days)
    return {
        "open": sum(n for n, _, _ in per.values()),
        "at_risk": sum(r for _, r, _ in per.values()),
        "overdue": sum(o for _, _, o in per.values()),
        "by_certifier": {
            certifier or "?": {"open": n, "at_risk": r, "overdue": o}
            for certifier, (n, r, o) in sorted(per.items(), key=lambda kv: kv[0] or "?")
        },
    }


def open_deadlines(conn: sqlite3.Connection, record_ids: Sequence[str]) -> dict[str, date]:
    """The earliest deadline of each record's open requests (records without one are absent)."""
    found: dict[str, date] = {}
    for chunk in in_chunks(record_ids):
        for record_id, first in conn.execute(
            f"SELECT record_id, min(deadline) FROM correction_requests WHERE status = ? "
            f"AND record_id IN ({placeholders(chunk)}) GROUP BY record_id",
            [_OPEN, *chunk],
        ):
            found[record_id] = date.fromisoformat(first)
    return found
