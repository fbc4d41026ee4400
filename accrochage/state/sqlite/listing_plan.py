"""Which index reads a page of the records' listing (`GET /records`, `accrochage records`,
`accrochage outstanding`) filtered by status, certifier or being outstanding alone.

Without statistics, SQLite serves `status IN (...)` from `records_pending` and
`outstanding = ?` from an index led by `outstanding`, then reads and sorts every matching row
to return one page. At 1,000,000 records a page of every record by deadline read the whole
table (0.7 s), a page of invalid records by record id sorted the 430,000 outstanding ones
(0.9 s): the listing's `outstanding = 1` sent SQLite to the wrong index.

So such a page is read as a few parts, each in the listing's order, merged:
- without a status, the outstanding records, and (unless only those are listed) the others:
  each a range of an index led by `outstanding`, in deadline order already; by record id,
  sorted from that index's entries;
- with statuses, by record id: their records from the status index (`records_pending`, whose
  entries hold the record id: sorted without reading a row); only the outstanding ones: the
  statuses always outstanding (`is_outstanding`: all but `SETTLED`) from it, the settled
  statuses' outstanding records (exactly those a correction or a revocation holds) from
  `records_flagged`;
- with statuses, by deadline (not in the status index): the same three parts, the settled
  statuses' others apart (unless only outstanding records are listed). Each part's records
  are counted first from a covering index, at most `cap` of them (1–5 ms at 1,000,000
  records). Fewer: SQLite reads them and sorts them (each row read, about 2 µs). As many:
  they are read in deadline order from the part's `outstanding` range until the page is
  full, within a budget of `cap` entries (`_windowed`: the rest from the status index).
  `cap` = √(`limit` × records) balances the two plans.

The parts follow `is_outstanding`, as the store writes the `outstanding` mark (from
`Record.outstanding`; m060 set older rows right): a settled record is outstanding exactly when
it is flagged, a record of another status always. A row whose mark disagreed (none the
product writes) could be listed by one plan and left out by the other.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from math import isqrt
from typing import Any

from accrochage.models.record import SETTLED
from accrochage.models.vocabulary import RecordOrder, RecordStatus
from accrochage.state.queries import OutstandingQuery, RecordKey, record_key

MIN_CAP = 1000
"""Below this many rows a part is always read through its status index and sorted."""
FLAGGED = "(correction_version IS NOT NULL OR revocation_pending = 1)"
"""`records_flagged`'s condition: a settled record is outstanding exactly when it holds."""

Row = dict[str, Any]


@dataclass(frozen=True)
class Part:
    """Records of one listing read by one query in its order (see the module's docstring)."""

    statuses: tuple[str, ...]
    """Empty: any status."""
    outstanding: int | None
    """Their `outstanding` value (the always outstanding statuses' is 1); None: either."""
    flagged: bool = False
    """The settled statuses' outstanding records, read from `records_flagged`."""


def planned(query: OutstandingQuery) -> bool:
    """Whether `page` reads this listing: filtered by status, certifier or being outstanding
    alone. Other filters are served well by SQLite's own choice."""
    return not (
        query.reason is not None
        or query.deadline_unknown
        or query.due_within is not None
        or query.overdue
    )


def parts(query: OutstandingQuery) -> list[Part]:
    """The parts a listing is read in (see the module's docstring)."""
    only_outstanding = query.only_outstanding
    named = sorted({RecordStatus(status) for status in query.statuses})
    if not only_outstanding and query.order is RecordOrder.RECORD_ID:
        return [Part(tuple(status.value for status in named), None)]
    if not named:
        return [Part((), 1)] + ([] if only_outstanding else [Part((), 0)])
    always = tuple(status.value for status in named if status not in SETTLED)
    settled = tuple(status.value for status in named if status in SETTLED)
    found = [Part(always, 1)] if always else []
    if settled:
        found.append(Part(settled, 1, flagged=True))
        if not only_outstanding:
            found.append(Part(settled, 0))
    return found


def page(
    conn: sqlite3.Connection,
    query: OutstandingQuery,
    after: RecordKey | None,
    present: Callable[[sqlite3.Row], Row],
    *,
    also: str | None = None,
) -> Iterator[Row]:
    """The listing's page after `after`: each part's rows, presented, merged in its order
    (the whole listing without a limit: a status's records are then all read, and sorted).
    `also`: a condition each row meets besides the query's (not one listed apart)."""
    by_deadline = query.order is RecordOrder.DEADLINE
    cap = None if query.limit is None else max(MIN_CAP, isqrt(query.limit * _records(conn)))
    counted: dict[Part, int] = {}
    streams = []
    for part in parts(query):
        dense = (
            by_deadline
            and cap is not None
            and bool(part.statuses)
            and _count(conn, part, query.certifier, cap, counted) >= cap
        )
        rows = _rows(conn, part, cap if dense else None, query, also, after)
        streams.append(present(row) for row in rows)
    key = record_key(query.order)
    return islice(heapq.merge(*streams, key=key), query.limit)


def _records(conn: sqlite3.Connection) -> int:
    """About how many records the state holds (the largest rowid: no count)."""
    return int(conn.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()[0])


@dataclass(frozen=True)
class Where:
    """WHERE terms joined by AND, with their parameters in order."""

    terms: tuple[str, ...] = ()
    params: tuple[Any, ...] = ()

    def and_(self, term: str, *params: Any) -> Where:
        return Where((*self.terms, term), (*self.params, *params))

    def __and__(self, other: Where) -> Where:
        return Where((*self.terms, *other.terms), (*self.params, *other.params))


def _named(part: Part, certifier: str | None) -> Where:
    """The terms naming the part's records by certifier, status and flag: those the status
    indexes answer (counted alike, read alike)."""
    named = Where()
    if certifier is not None:
        named = named.and_("certifier = ?", certifier)
    if part.statuses:
        named = named.and_(_status_in(part.statuses), *part.statuses)
    if part.flagged:
        named = named.and_(FLAGGED)
    return named


def _count(
    conn: sqlite3.Connection,
    part: Part,
    certifier: str | None,
    cap: int,
    counted: dict[Part, int],
) -> int:
    """The part's records, at most `cap`, read from a covering index (the settled statuses'
    records not outstanding: all of theirs, less their outstanding ones counted before)."""
    named = _named(part, certifier)
    held = 0
    if not part.flagged and part.outstanding == 0:
        held = counted.get(Part(part.statuses, 1, flagged=True), 0)
    sql = f"SELECT count(*) FROM (SELECT 1 FROM records WHERE {_sql(named)} LIMIT ?)"
    found = int(conn.execute(sql, [*named.params, cap + held]).fetchone()[0]) - held
    counted[part] = found
    return found


def _rows(
    conn: sqlite3.Connection,
    part: Part,
    budget: int | None,
    query: OutstandingQuery,
    also: str | None,
    after: RecordKey | None,
) -> Iterator[sqlite3.Row]:
    """The part's rows after `after` in the listing's order, at most `query.limit`. A part
    without a status is its range of an index led by `outstanding`. A status part is read from
    the status index and sorted; with a `budget` (deadline order, as many records as the
    count's cap), from its range first, `_windowed`."""
    own = (Where() if also is None else Where((also,))) & _named(part, query.certifier)
    if part.outstanding is not None and not part.statuses:
        own = own.and_("outstanding = ?", part.outstanding)
    elif part.outstanding == 0:  # the settled statuses' others: no record in two parts
        own = own.and_("+outstanding = 0").and_(f"NOT {FLAGGED}")
    limit = query.limit
    if query.order is RecordOrder.RECORD_ID:
        if after is not None:
            own = own.and_("record_id > ?", after[-1])
        yield from _select(conn, None, own, "record_id", limit)
        return
    index = "records_outstanding_certifier" if query.certifier else "records_outstanding_deadline"
    segments = []
    undated_after = after is not None and after[0] is True
    if not undated_after:
        dated = Where(("deadline IS NOT NULL",))
        if after is not None:
            dated = dated.and_("(deadline, record_id) > (?, ?)", *after[1:])
        segments.append((dated, "deadline, record_id"))
    undated = Where(("deadline IS NULL",))
    if undated_after and after is not None:
        undated = undated.and_("record_id > ?", after[-1])
    segments.append((undated, "record_id"))
    for segment, order in segments:
        if not part.statuses:
            yield from _select(conn, index, own & segment, order, limit)
        elif budget is None:
            yield from _select(conn, None, own & segment, order, limit)
        else:
            assert part.outstanding is not None and limit is not None
            span = Where(("outstanding = ?",), (part.outstanding,))
            if query.certifier is not None:
                span = span.and_("certifier = ?", query.certifier)
            yield from _windowed(conn, index, span & segment, own & segment, order, limit, budget)


def _windowed(
    conn: sqlite3.Connection,
    index: str,
    span: Where,
    own: Where,
    order: str,
    limit: int,
    budget: int,
) -> Iterator[sqlite3.Row]:
    """The part's rows among the next `budget` entries of its range (`span`, in `order`),
    then, if the page is not full, those after them from the status index, sorted: a part as
    many as the cap but bunched at the end of its range (the newest pending records, the
    invalid ones without a deadline) costs the budget more, not the whole range."""
    bound = conn.execute(
        f"SELECT {order} FROM records INDEXED BY {index} WHERE {_sql(span)} "
        f"ORDER BY {order} LIMIT 1 OFFSET {int(budget) - 1}",
        span.params,
    ).fetchone()
    window = span & own
    keys = ", ".join("?" * len(order.split(",")))
    if bound is not None:
        window = window.and_(f"({order}) <= ({keys})", *bound)
    found = 0
    for row in _select(conn, index, window, order, limit):
        found += 1
        yield row
    if bound is None or found >= limit:
        return
    rest = own.and_(f"({order}) > ({keys})", *bound)
    yield from _select(conn, None, rest, order, limit - found)


def _status_in(statuses: tuple[str, ...]) -> str:
    return f"status IN ({', '.join('?' * len(statuses))})"


def _sql(where: Where) -> str:
    return " AND ".join(where.terms) or "1 = 1"


def _select(
    conn: sqlite3.Connection,
    index: str | None,
    where: Where,
    order: str,
    limit: int | None,
) -> Iterator[sqlite3.Row]:
    source = f"records INDEXED BY {index}" if index else "records"
    sql = f"SELECT * FROM {source} WHERE {_sql(where)} ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return iter(conn.execute(sql, where.params))
