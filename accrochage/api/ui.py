"""`GET /ui`: the dashboard a certifier's manager reads in a browser (CONTRACT §10).

Server-rendered HTML and SVG (`api/charts.py`), no script and nothing fetched from elsewhere
(a Content-Security-Policy says so), refreshing itself every `REFRESH` seconds. Behind the
operator's token like every route (HTTP Basic with the token as password opens it in a
browser). Counts, certifier keys and batch ids only: no person, no record's content.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta
from html import escape

from aiohttp import web

from accrochage.api.charts import stacked_bars
from accrochage.api.ui_sections import (
    Page,
    alerts_table,
    for_support_table,
    problem_banner,
    refused_suppressions_table,
    rejections_table,
    to_deposit_table,
)
from accrochage.errors import AccrochageError
from accrochage.models.deadline import Clock, days_left, paris_today
from accrochage.models.vocabulary import RecordStatus
from accrochage.state.base import Store
from accrochage.streams.watch import unreported_before

REFRESH = 30
BUCKETS = (
    "overdue",
    "0–7 d",
    "8–14 d",
    "15–30 d",
    "31–60 d",
    "61–92 d",
    "date unknown",
    "no deadline",
)
"""Days left before the deadline. "date unknown": due on a day nobody knows, since the delivery
date could not be read (counted at risk); "no deadline": the CDC accepted the record once (its
deadline is met for good) and no open request holds its later changes to one."""
UNKNOWN, NONE = BUCKETS[-2], BUCKETS[-1]
UNREPORTED_AFTER = timedelta(days=10)
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}.warn{color:#b35c00}.crit{color:#b00020}
.axis,.legend,.total{fill:#333}.muted{color:#777}
"""


def bucket(deadline: date | None, today: date) -> str:
    if deadline is None:
        return NONE
    left = days_left(deadline, today)
    for limit, name in ((-1, 0), (7, 1), (14, 2), (30, 3), (60, 4)):
        if left <= limit:
            return BUCKETS[name]
    return BUCKETS[5]


def _certifiers(page: Page) -> list[str]:
    """Every configured certifier (its zeros are news too: nothing received yet, as
    `/metrics` says), and every other something is counted for: records, deadlines, and
    open correction requests (one may name a record the tracker does not know yet: `?`)."""
    o = page.observation
    seen = {c for c, _ in o.records} | {c for c, _ in page.numbers.deadlines}
    seen |= set(o.correction_requests_open or {})
    return sorted(page.certifiers | {page.label(c) for c in seen})


def _earliest(deadline: date | None, today: date) -> str:
    """The earliest deadline of a certifier's outstanding records, said passed when it is: the
    column was "next deadline", and showed a day gone as the next one."""
    if deadline is None:
        return '<td data-deadline="earliest">—</td>'
    if deadline < today:
        return f'<td class="crit" data-deadline="earliest">{deadline.isoformat()} (passed)</td>'
    return f'<td data-deadline="earliest">{deadline.isoformat()}</td>'


def _per_label(page: Page, counts: Mapping[str | None, int]) -> Counter[str]:
    """`counts` summed by the certifier as shown (`?` for every one not configured)."""
    summed: Counter[str] = Counter()
    for certifier, n in counts.items():
        summed[page.label(certifier)] += n
    return summed


def _per_certifier(page: Page) -> str:
    """One row per certifier, from the counts summed by shown certifier once: looking each
    row's counts up in every certifier's made the page quadratic in the certifiers (a trusted
    third party with a thousand of them waited seconds for each refresh)."""
    statuses = [s.value for s in RecordStatus]
    o = page.observation
    head = "".join(f"<th>{s}</th>" for s in statuses)
    records: Counter[tuple[str, str]] = Counter()
    for (c, s), n in o.records.items():
        records[(page.label(c), s)] += n
    at_risk, overdue = _per_label(page, o.at_risk), _per_label(page, o.overdue)
    opened = _per_label(page, o.correction_requests_open or {})
    earliest: dict[str, date] = {}
    for c, d in o.next_deadline.items():
        shown = page.label(c)
        earliest[shown] = min(d, earliest.get(shown, d))
    rows = []
    for certifier in _certifiers(page):
        cells = "".join(f'<td data-status="{s}">{records[(certifier, s)]}</td>' for s in statuses)
        rows.append(
            f'<tr data-certifier="{escape(certifier)}"><td class="certifier">{escape(certifier)}'
            f'</td>{cells}<td class="warn" data-col="at_risk">{at_risk[certifier]}</td>'
            f'<td class="crit" data-col="overdue">{overdue[certifier]}</td>'
            f'<td data-col="corrections">{opened[certifier]}</td>'
            f"{_earliest(earliest.get(certifier), page.as_of)}</tr>"
        )
    return (
        f'<table id="certifiers"><tr><th>certifier</th>{head}<th>at risk</th><th>overdue</th>'
        f"<th>open correction requests</th><th>earliest deadline</th></tr>{''.join(rows)}</table>"
    )


def _chart(page: Page) -> str:
    certifiers = {page.label(c) for c, _ in page.numbers.deadlines}
    certifiers |= {page.label(c) for c in page.observation.deadline_unknown or {}}
    series = {c: [0] * len(BUCKETS) for c in sorted(certifiers)}
    for (certifier, deadline), n in page.numbers.deadlines.items():
        series[page.label(certifier)][BUCKETS.index(bucket(deadline, page.as_of))] += n
    for certifier, n in (page.observation.deadline_unknown or {}).items():
        series[page.label(certifier)][BUCKETS.index(UNKNOWN)] += n
    return stacked_bars(
        "days-left-chart", "Outstanding records by days left before the deadline", BUCKETS, series
    )


def render(page: Page) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><title>accrochage — dashboard</title>'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>accrochage — certifications on their way to the CDC</h1>"
        f'<p class="muted">As of {page.as_of.isoformat()} (Paris); deadline margin '
        f"{page.margin_days} days; refreshed every {REFRESH} s; updated "
        f"{page.now.isoformat(timespec='seconds')}.</p>"
        f"{problem_banner(page)}"
        f"<h2>Records per certifier</h2>{_per_certifier(page)}"
        f"<h2>Outstanding records by days left</h2>{_chart(page)}"
        f"<h2>Alerts firing</h2>{alerts_table(page)}"
        f"<h2>Files to deposit</h2>{to_deposit_table(page)}"
        f"<h2>Rejections by CDC reason</h2>{rejections_table(page)}"
        f"<h2>Suppressions refused by the CDC</h2>{refused_suppressions_table(page)}"
        f"<h2>For the CDC's support</h2>{for_support_table(page)}"
        "</body></html>"
    )


def add_routes(
    app: web.Application,
    store: Store,
    clock: Clock,
    margin_days: int,
    certifiers: Iterable[str],
    problem: Callable[[], AccrochageError | None] = lambda: None,
) -> None:
    """`problem`: what is wrong with the service now (`api/health.py`), shown above all."""
    keys = frozenset(certifiers)

    def gather() -> Page:
        now = clock.now()
        today = paris_today(clock)
        with store.reading() as reader:
            return Page(
                today,
                now,
                margin_days,
                reader.observe(today, margin_days, unreported_before(now, UNREPORTED_AFTER)),
                reader.dashboard(today),
                reader.alert_states(),
                keys,
                problem(),
            )

    async def get_ui(request: web.Request) -> web.Response:
        page = await asyncio.to_thread(gather)
        response = web.Response(text=render(page), content_type="text/html")
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-store"
        return response

    async def root(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ui")

    app.router.add_get("/ui", get_ui)
    app.router.add_get("/", root)
