"""A page of the records' listing (`GET /records`, `accrochage records`, `outstanding`) read
in parts, each from the index that serves it (`state/sqlite/listing_plan.py`): the same rows
as SQLite's own choice, page after page, and the work of a page no longer following the
records it does not show (SQLite's virtual machine steps, never time)."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

import accrochage.state.sqlite.listing_plan as listing_plan
from accrochage.models.record import is_outstanding
from accrochage.models.vocabulary import RecordOrder, RecordStatus
from accrochage.state.queries import OutstandingQuery, records_cursor
from accrochage.state.sqlite import SqliteStore
from accrochage.state.sqlite.record_listing import outstanding
from accrochage.state.sqlite.store import connect
from tests.test_query_work import _steps as steps_of

AS_OF = date(2026, 12, 6)
STAMP = "2026-11-02T10:00:00+01:00"
CERTIFIERS = ("pix", "toeic", "voltaire")


def _record(record_id: str, status: RecordStatus, **fields: Any) -> dict[str, Any]:
    correction = fields.get("correction_version")
    revocation = fields.get("revocation_pending", 0)
    row = {
        "record_id": record_id,
        "certifier": "pix",
        "code": "RS5875",
        "status": status.value,
        "version": 1,
        "content_hash": f"hash-{record_id}",
        "deadline": "2027-01-15",
        "correction_version": None,
        "revocation_pending": 0,
        "created_at": STAMP,
        "updated_at": STAMP,
    }
    row.update(fields)
    row["outstanding"] = int(is_outstanding(status, correction is not None, bool(revocation)))
    return row


def _insert(path: Path, records: list[dict[str, Any]], open_requests: list[str] = ()) -> None:
    SqliteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    columns = list(records[0])
    conn.executemany(
        f"INSERT INTO records ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [tuple(row[c] for c in columns) for row in records],
    )
    conn.executemany(
        "INSERT INTO correction_requests (request_id, record_id, certifier, source, received_on, "
        "deadline, status, opened_at) VALUES (?, ?, 'pix', 'cdc', '2026-11-01', ?, 'open', ?)",
        [
            (f"req-{n}", record_id, (AS_OF + timedelta(days=n % 40)).isoformat(), STAMP)
            for n, record_id in enumerate(open_requests)
        ],
    )
    conn.close()


def _mixed_state(path: Path) -> None:
    """600 records of every status, three certifiers, deadlines spread (some unknown), some
    corrected or revoked, a few held by an open correction request."""
    chance = random.Random(13)
    records = []
    for n in range(600):
        status = chance.choice(list(RecordStatus))
        deadline = None if n % 17 == 0 else (AS_OF + timedelta(days=chance.randint(-30, 90)))
        records.append(
            _record(
                f"{chance.choice('ABC')}-{n:04d}",
                status,
                certifier=CERTIFIERS[n % 3],
                deadline=None if deadline is None else deadline.isoformat(),
                correction_version=2 if n % 11 == 0 else None,
                revocation_pending=int(n % 23 == 0),
            )
        )
    held = [row["record_id"] for row in records[::29]]
    _insert(path, records, held)


@pytest.fixture(scope="module")
def mixed_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state for every listing compared (read only)."""
    path = tmp_path_factory.mktemp("listing") / "state.db"
    _mixed_state(path)
    return path


def _walk(conn: sqlite3.Connection, query: OutstandingQuery) -> list[tuple[Any, ...]]:
    """Every page of `query`, one after the other, by cursor."""
    shown: list[tuple[Any, ...]] = []
    cursor = None
    while True:
        rows = outstanding(conn, replace(query, cursor=cursor))
        shown += [(r["record_id"], r["status"], r["deadline"], r["days_left"]) for r in rows]
        if len(rows) < (query.limit or 0) or not rows:
            return shown
        cursor = records_cursor(rows[-1], query.order)


QUERIES = [
    {},
    {"only_outstanding": False},
    {"certifier": "toeic"},
    {"certifier": "toeic", "only_outstanding": False},
    {"statuses": ("invalid",)},
    {"statuses": ("accepted",)},
    {"statuses": ("accepted",), "only_outstanding": False},
    {"statuses": ("withdrawn", "pending"), "only_outstanding": False},
    {"statuses": ("accepted", "rejected", "excluded"), "only_outstanding": False},
    {"statuses": ("accepted", "batched"), "certifier": "voltaire"},
    {"statuses": ("deposited",), "certifier": "pix", "only_outstanding": False},
]


@pytest.mark.parametrize(
    ("min_cap", "records"),
    [(1, None), (1, 1), (10**9, None)],
    ids=["ranged", "budget-below-the-page", "sorted"],
)
@pytest.mark.parametrize("order", list(RecordOrder))
@pytest.mark.parametrize(
    "filters", QUERIES, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items())
)
def test_a_planned_listing_shows_what_sqlites_own_choice_shows_page_after_page(
    mixed_state: Path,
    monkeypatch: pytest.MonkeyPatch,
    filters: dict[str, Any],
    order: RecordOrder,
    min_cap: int,
    records: int | None,
) -> None:
    conn = connect(mixed_state, readonly=True)
    try:
        query = OutstandingQuery(as_of=AS_OF, limit=7, order=order, **filters)
        monkeypatch.setattr(listing_plan, "MIN_CAP", min_cap)
        if records is not None:  # a cap, so a budget, of 2 entries for pages of 7
            monkeypatch.setattr(listing_plan, "_records", lambda conn: records)
        planned = _walk(conn, query)
        planned_whole = _walk(conn, replace(query, limit=None))
        monkeypatch.setattr(listing_plan, "planned", lambda query: False)
        unplanned = _walk(conn, query)
        whole = _walk(conn, replace(query, limit=None))
    finally:
        conn.close()
    assert planned == planned_whole == unplanned == whole
    assert planned, "each listing shows some records"


def _steps(path: Path, query: OutstandingQuery) -> int:
    """SQLite's steps for a page of `query`, which must be full."""
    shown: list[dict[str, Any]] = []
    steps = steps_of(path, lambda conn: shown.extend(outstanding(conn, query)))
    assert len(shown) == query.limit
    return steps


def _spread(count: int, status: RecordStatus, prefix: str) -> list[dict[str, Any]]:
    """`count` records of `status`, their deadlines spread over a year."""
    return [
        _record(f"{prefix}-{n:06d}", status, deadline=(AS_OF + timedelta(days=n % 365)).isoformat())
        for n in range(count)
    ]


def _flat(tmp_path: Path, build: Callable[[int], list[dict[str, Any]]], query: OutstandingQuery):
    """The steps of `query`'s page on a state built with 2,000 and with 20,000 records."""
    few, many = tmp_path / "few.db", tmp_path / "many.db"
    for path, size in ((few, 2000), (many, 20000)):
        records = build(size)
        _insert(path, records, [row["record_id"] for row in records[:: size // 10]])
    return _steps(few, query), _steps(many, query)


def test_a_page_of_every_record_by_deadline_reads_the_page_not_the_state(
    tmp_path: Path,
) -> None:
    """`accrochage records` (every record, by deadline): SQLite read the whole table and
    sorted it for each page (0.7 s at 1,000,000 records). The outstanding records and the
    others are now each read in deadline order from their range of an index and merged."""

    def build(size: int) -> list[dict[str, Any]]:
        return _spread(size // 2, RecordStatus.ACCEPTED, "A") + _spread(
            size // 2, RecordStatus.DEPOSITED, "D"
        )

    query = OutstandingQuery(as_of=AS_OF, limit=100, only_outstanding=False)
    few, many = _flat(tmp_path, build, query)
    assert many < 2 * few, (few, many)


def test_a_page_of_one_outstanding_status_by_record_id_reads_that_status_alone(
    tmp_path: Path,
) -> None:
    """`accrochage outstanding --status invalid --order record_id`: the listing's
    `outstanding = 1` sent SQLite to the index of every outstanding record, all sorted for
    each page (0.9 s at 1,000,000 records). An always outstanding status is read from the
    status index alone."""

    def build(size: int) -> list[dict[str, Any]]:
        return _spread(300, RecordStatus.INVALID, "I") + _spread(size, RecordStatus.BATCHED, "B")

    query = OutstandingQuery(
        as_of=AS_OF, limit=100, statuses=("invalid",), order=RecordOrder.RECORD_ID
    )
    few, many = _flat(tmp_path, build, query)
    assert many < 2 * few, (few, many)


def test_a_page_of_a_settled_status_by_deadline_reads_the_page_not_every_such_record(
    tmp_path: Path,
) -> None:
    """`GET /records?status=accepted`: SQLite read every accepted record from the status
    index and sorted them (1.2 s at 1,000,000 records), and read them all again for the few
    an open correction request holds (120 ms). Accepted records as many as these are read in
    deadline order from their range until the page is full; the held ones by their ids."""

    def build(size: int) -> list[dict[str, Any]]:
        return _spread(size, RecordStatus.ACCEPTED, "A")

    query = OutstandingQuery(as_of=AS_OF, limit=100, statuses=("accepted",), only_outstanding=False)
    few, many = _flat(tmp_path, build, query)
    assert many < 2 * few, (few, many)


def test_a_status_bunched_at_the_end_of_its_range_reads_a_budget_not_the_range(
    tmp_path: Path,
) -> None:
    """The newest records (`pending`, due last) are as many as a dense part, but all at the
    end of the outstanding records' range: read in deadline order from that range, the first
    page read every record due before them. The range is read for a budget of entries (the
    count's cap), the rest from the status index."""

    def build(size: int) -> list[dict[str, Any]]:
        newest = [
            _record(f"P-{n:05d}", RecordStatus.PENDING, deadline="2028-01-01") for n in range(1500)
        ]
        return _spread(size, RecordStatus.BATCHED, "B") + newest

    query = OutstandingQuery(as_of=AS_OF, limit=100, statuses=("pending",))
    few, many = _flat(tmp_path, build, query)
    assert many < 2 * few, (few, many)
