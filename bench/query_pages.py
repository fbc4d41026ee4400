"""`bench.query`'s pages a person reads by status: `GET /records?status=...`, `accrochage
records` and `accrochage outstanding --status ...`, 100 records a page, each timed as the
product reads it and as SQLite's own choice of index read it (the listing unplanned,
`listing_plan.planned` answering no), in the same run."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any
from unittest import mock

import accrochage.state.sqlite.listing_plan as listing_plan
from accrochage.models.vocabulary import RecordOrder
from accrochage.state.queries import OutstandingQuery
from accrochage.state.sqlite.reader import outstanding
from bench._common import BenchError, Metric, at_most, median

PAGE = 100
# (what a person asks, the query): the API lists every record of the statuses asked
# (`only_outstanding` false), the CLI's `outstanding` the outstanding ones.
PAGES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("accrochage records (every record, by deadline)", {"only_outstanding": False}),
    ("GET /records?status=accepted", {"statuses": ("accepted",), "only_outstanding": False}),
    ("GET /records?status=batched", {"statuses": ("batched",), "only_outstanding": False}),
    ("GET /records?status=withdrawn", {"statuses": ("withdrawn",), "only_outstanding": False}),
    (
        "GET /records?status=accepted&certifier=pix&order=record_id",
        {
            "statuses": ("accepted",),
            "certifier": "pix",
            "only_outstanding": False,
            "order": RecordOrder.RECORD_ID,
        },
    ),
    (
        "outstanding --status invalid --order record_id",
        {"statuses": ("invalid",), "order": RecordOrder.RECORD_ID},
    ),
    ("outstanding --status accepted (corrections)", {"statuses": ("accepted",)}),
)


def status_pages(
    reader: sqlite3.Connection,
    as_of: date,
    runs: int,
    timed: Callable[..., tuple[list[float], Any]],
    target_ms: float,
) -> tuple[list[Metric], dict[str, Any]]:
    """A metric a page (median of `runs`, its unplanned median in the note), and the raw
    timings. Both reads must show the same records."""
    metrics, raw = [], {}
    for name, filters in PAGES:
        page = partial(outstanding, reader, OutstandingQuery(as_of=as_of, limit=PAGE, **filters))
        planned_ms, shown = timed(runs, page)
        with mock.patch.object(listing_plan, "planned", lambda query: False):
            unplanned_ms, unplanned = timed(max(1, runs // 5), page)
        if [r["record_id"] for r in shown] != [r["record_id"] for r in unplanned]:
            raise BenchError(f"{name}: the planned page shows other records than SQLite's own")
        metrics.append(
            at_most(
                f"{name}: median",
                median(planned_ms),
                "ms",
                target_ms,
                f"{len(shown)} rows; SQLite's own choice of index {median(unplanned_ms):.1f} ms "
                f"({median(unplanned_ms) / max(median(planned_ms), 1e-3):.1f}x)",
            )
        )
        raw[name] = {"planned_ms": planned_ms, "unplanned_ms": unplanned_ms}
    return metrics, raw
