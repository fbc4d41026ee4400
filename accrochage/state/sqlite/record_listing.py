"""The listing of records (`outstanding`, `records`, `GET /records`): filtered, in one of
two orders, paged by cursor, merged with the records an open correction request holds, read
in one snapshot and streamed row by row."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import accrochage.state.sqlite.correction_queries as open_requests
import accrochage.state.sqlite.listing_plan as listing_plan
from accrochage.models.vocabulary import RecordOrder, RecordStatus
from accrochage.state.queries import OutstandingQuery, RecordKey, record_key, records_after
from accrochage.state.sqlite.observe import UNKNOWN_DEADLINE
from accrochage.state.sqlite.record_queries import present


def outstanding(conn: sqlite3.Connection, query: OutstandingQuery) -> list[dict[str, Any]]:
    return list(iter_outstanding(conn, query))


def iter_outstanding(conn: sqlite3.Connection, query: OutstandingQuery) -> Iterator[dict[str, Any]]:
    """The records' rows, each with its `correction_request`, merged in order with the
    records an open request holds to its deadline (few: loaded at once, while the records
    stream), which show that deadline in every listing (see `held_open`).

    All of it is read in one snapshot: its statements run one after the other, and a record
    a writer moved between them (from the undated rows to the dated ones, into or out of
    those an open request holds) would otherwise be listed twice or not at all."""
    with _one_snapshot(conn):
        yield from _listed(conn, query)


def _listed(conn: sqlite3.Connection, query: OutstandingQuery) -> Iterator[dict[str, Any]]:
    after = None if query.cursor is None else records_after(query.cursor, query.order)
    opened = open_requests.open_refs(conn)
    merging = bool(opened)
    records = _record_rows(conn, query, after, skip_held=merging)
    rows = (open_requests.attach(row, opened, query.as_of) for row in records)
    if not merging:
        yield from rows
        return
    wider = replace(query, due_within=None, overdue=False, only_outstanding=False)
    where, params = _filters(wider)
    key = record_key(query.order)
    held = open_requests.held_open(
        conn,
        opened,
        where,
        params,
        lambda row: present(row, query.as_of),
        as_of=query.as_of,
        due_within=query.due_within,
        overdue=query.overdue,
        deadline_unknown=query.deadline_unknown,
    )
    held = sorted((row for row in held if after is None or key(row) > after), key=key)
    yield from open_requests.merged(rows, held, query.limit, key)


@contextmanager
def _one_snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _record_rows(
    conn: sqlite3.Connection,
    query: OutstandingQuery,
    after: RecordKey | None,
    *,
    skip_held: bool = False,
) -> Iterator[dict[str, Any]]:
    """Records in `query.order` after `after`, rows as they are read. `skip_held`: without
    the records an open request holds (listed by `held_open`).

    A listing filtered by status, certifier or being outstanding alone is read in the parts
    `listing_plan` chooses; one filtered by reason, by a deadline or its absence as follows.
    In deadline order, dated and undated records are read by two queries so that each
    follows an index in its order: one query sorting on `deadline IS NULL` would sort every
    matching row to return the first page. Nothing is held but the row at hand: memory stays
    flat in the answer's size.
    """
    if listing_plan.planned(query):
        yield from listing_plan.page(
            conn,
            query,
            after,
            lambda row: present(row, query.as_of),
            also=open_requests.NOT_HELD if skip_held else None,
        )
        return
    where, params = _filters(query)
    limit = query.limit
    if skip_held:
        where = [*where, open_requests.NOT_HELD]
    if query.order is RecordOrder.RECORD_ID:
        if after is not None:
            where, params = [*where, "record_id > ?"], [*params, after[-1]]
        for row in _select(conn, where, params, "record_id", limit):
            yield present(row, query.as_of)
        return
    sent = 0
    undated_after = after is not None and after[0] is True
    if not undated_after:
        dated, dated_params = [*where, "deadline IS NOT NULL"], list(params)
        if after is not None:
            dated.append("(deadline, record_id) > (?, ?)")
            dated_params += list(after[1:])
        for row in _select(conn, dated, dated_params, "deadline, record_id", limit):
            sent += 1
            yield present(row, query.as_of)
    undated_possible = query.due_within is None and not query.overdue
    if undated_possible and (limit is None or sent < limit):
        undated, undated_params = [*where, "deadline IS NULL"], list(params)
        if undated_after and after is not None:
            undated.append("record_id > ?")
            undated_params.append(after[-1])
        remaining = None if limit is None else limit - sent
        for row in _select(conn, undated, undated_params, "record_id", remaining):
            yield present(row, query.as_of)


def _filters(query: OutstandingQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.only_outstanding or query.due_within is not None or query.overdue:
        where.append("outstanding = 1")
    if query.deadline_unknown:
        where.append(UNKNOWN_DEADLINE)
    if query.reason is not None:
        where.append("cdc_reason = ?")
        params.append(query.reason)
    if query.certifier is not None:
        where.append("certifier = ?")
        params.append(query.certifier)
    if query.statuses:
        for status in query.statuses:
            RecordStatus(status)
        where.append(f"status IN ({', '.join('?' * len(query.statuses))})")
        params.extend(query.statuses)
    if query.due_within is not None:
        where.append("deadline <= ?")
        params.append((query.as_of + timedelta(days=query.due_within)).isoformat())
    if query.overdue:
        where.append("deadline < ?")
        params.append(query.as_of.isoformat())
    return where, params


def _select(
    conn: sqlite3.Connection, where: list[str], params: list[Any], order: str, limit: int | None
) -> Iterator[sqlite3.Row]:
    sql = f"SELECT * FROM records WHERE {' AND '.join(where) or '1 = 1'} ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return iter(conn.execute(sql, params))
