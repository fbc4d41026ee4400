"""`GET /ui`: the dashboard a certifier's manager reads in a browser (CONTRACT §10).

Server-rendered HTML and SVG (`api/charts.py`), no script and nothing fetched from elsewhere
(a Content-Security-Policy says so), refreshing itself every `REFRESH` seconds. Behind the
operator's token like every route (HTTP Basic with the token as password opens it in a
browser). Counts, certifier keys and batch ids only: no person, no record's content.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

from aiohttp import web

from accrochage.api.charts import stacked_bars
from accrochage.errors import AccrochageError
from accrochage.models.deadline import Clock, days_left, paris_today
from accrochage.models.vocabulary import RecordStatus
from accrochage.state.base import AlertState, DashboardNumbers, Observation, Store
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
.axis,.legend,.total{font-size:11px;fill:#333}.muted{color:#777}
"""


@dataclass(frozen=True, slots=True)
class _Page:
    as_of: date
    now: datetime
    margin_days: int
    observation: Observation
    numbers: DashboardNumbers
    alerts: list[AlertState]
    certifiers: frozenset[str]
    """The configured keys: any other certifier is shown as `?`, as metrics and alerts label
    it (CONTRACT §10), never as the text a sender put in its events."""
    problem: AccrochageError | None = None
    """What `GET /health` says is wrong with the service now (events refused, say)."""

    def label(self, certifier: str | None) -> str:
        return certifier if certifier is not None and certifier in self.certifiers else "?"


def bucket(deadline: date | None, today: date) -> str:
    if deadline is None:
        return NONE
    left = days_left(deadline, today)
    for limit, name in ((-1, 0), (7, 1), (14, 2), (30, 3), (60, 4)):
        if left <= limit:
            return BUCKETS[name]
    return BUCKETS[5]


def _certifiers(page: _Page) -> list[str]:
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


def _per_certifier(page: _Page) -> str:
    statuses = [s.value for s in RecordStatus]
    o = page.observation
    head = "".join(f"<th>{s}</th>" for s in statuses)
    rows = []
    for certifier in _certifiers(page):
        counts = {s: 0 for s in statuses}
        for (c, s), n in o.records.items():
            if page.label(c) == certifier:
                counts[s] = counts.get(s, 0) + n
        at_risk = sum(n for c, n in o.at_risk.items() if page.label(c) == certifier)
        overdue = sum(n for c, n in o.overdue.items() if page.label(c) == certifier)
        opened = sum(
            n for c, n in (o.correction_requests_open or {}).items() if page.label(c) == certifier
        )
        nexts = [d for c, d in o.next_deadline.items() if page.label(c) == certifier]
        cells = "".join(f'<td data-status="{s}">{counts[s]}</td>' for s in statuses)
        rows.append(
            f'<tr data-certifier="{escape(certifier)}"><td class="certifier">{escape(certifier)}'
            f'</td>{cells}<td class="warn" data-col="at_risk">{at_risk}</td>'
            f'<td class="crit" data-col="overdue">{overdue}</td>'
            f'<td data-col="corrections">{opened}</td>'
            f"{_earliest(min(nexts) if nexts else None, page.as_of)}</tr>"
        )
    return (
        f'<table id="certifiers"><tr><th>certifier</th>{head}<th>at risk</th><th>overdue</th>'
        f"<th>open correction requests</th><th>earliest deadline</th></tr>{''.join(rows)}</table>"
    )


def _chart(page: _Page) -> str:
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


def _to_deposit(page: _Page) -> str:
    if not page.numbers.to_deposit:
        return '<p id="to-deposit" class="muted">No file waiting to be uploaded.</p>'
    rows = "".join(
        f"<tr><td><code>{escape(b.batch_id)}</code></td><td>{escape(page.label(b.certifier))}</td>"
        f"<td>{b.passages}</td>"
        f"<td>{b.written_at.isoformat(timespec='minutes') if b.written_at else '—'}</td></tr>"
        for b in page.numbers.to_deposit
    )
    shown, total = len(page.numbers.to_deposit), page.observation.to_deposit
    more = (
        f'<p id="to-deposit-more" class="muted">The {shown} oldest of {total} files; '
        "<code>accrochage batches --to-deposit</code> lists them all.</p>"
        if total > shown
        else ""
    )
    return (
        f'<table id="to-deposit"><tr><th>batch</th><th>certifier</th><th>passages</th>'
        f"<th>written</th></tr>{rows}</table>{more}"
    )


def _by_reason(page: _Page, table_id: str, counts: dict[tuple[str | None, str | None], int]) -> str:
    """One row per shown certifier and reason: two certifiers no longer configured are both
    `?`, and showed as two rows of the same name and reason."""
    merged: Counter[tuple[str, str]] = Counter()
    for (c, reason), n in counts.items():
        merged[(page.label(c), reason or "unclassified")] += n
    rows = "".join(
        f"<tr><td>{escape(c)}</td><td>{escape(reason)}</td><td>{n}</td></tr>"
        for (c, reason), n in sorted(merged.items())
    )
    return (
        f'<table id="{table_id}"><tr><th>certifier</th><th>CDC reason</th><th>records</th></tr>'
        f"{rows}</table>"
    )


def _rejections(page: _Page) -> str:
    if not page.numbers.rejections:
        return '<p id="rejections" class="muted">No rejected record.</p>'
    return _by_reason(page, "rejections", page.numbers.rejections)


def _refused_suppressions(page: _Page) -> str:
    if not page.numbers.refused_suppressions:
        return '<p id="refused-suppressions" class="muted">No refused suppression.</p>'
    return (
        '<p class="muted">The CDC still holds these passages; <code>accrochage retry</code> '
        "cuts their suppression again.</p>"
        + _by_reason(page, "refused-suppressions", page.numbers.refused_suppressions)
    )


def _for_support(page: _Page) -> str:
    if not page.numbers.for_support:
        return '<p id="for-support" class="muted">Nothing waits for the CDC\'s support.</p>'
    held: Counter[str] = Counter()  # certifiers no longer configured: one `?` row, as above
    for key, count in page.numbers.for_support.items():
        held[page.label(key)] += count
    rows = "".join(
        f"<tr><td>{escape(key)}</td><td>{count}</td></tr>" for key, count in sorted(held.items())
    )
    return (
        '<p class="muted">The CDC holds these under another idTechnique: no SUPPRESSION can '
        "carry their correction or withdrawal. <code>accrochage summary</code> lists them, "
        "<code>accrochage show ID</code> says what to ask the CDC's support.</p>"
        f'<table id="for-support"><tr><th>certifier</th><th>records</th></tr>{rows}</table>'
    )


def _alerts(page: _Page) -> str:
    firing = [a for a in page.alerts if a.status == "firing"]
    if not firing:
        return '<p id="alerts" class="muted">No alert firing.</p>'
    rows = "".join(
        f'<tr class="{"crit" if a.severity == "critical" else "warn"}"><td>{escape(a.alertname)}'
        f"</td><td>{escape(a.certifier)}</td><td>{a.value}</td>"
        f"<td>{a.starts_at.isoformat(timespec='minutes')}</td></tr>"
        for a in firing
    )
    return (
        f'<table id="alerts"><tr><th>alert</th><th>certifier</th><th>count</th><th>since</th>'
        f"</tr>{rows}</table>"
    )


def _problem(page: _Page) -> str:
    """A banner while the service is degraded: the page is the operator's, its message too."""
    if page.problem is None:
        return ""
    return (
        f'<p id="service-problem" class="crit"><strong>The service is degraded '
        f"({escape(page.problem.code)})</strong>: {escape(str(page.problem))}</p>"
    )


def render(page: _Page) -> str:
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
        f"{_problem(page)}"
        f"<h2>Records per certifier</h2>{_per_certifier(page)}"
        f"<h2>Outstanding records by days left</h2>{_chart(page)}"
        f"<h2>Alerts firing</h2>{_alerts(page)}"
        f"<h2>Files to deposit</h2>{_to_deposit(page)}"
        f"<h2>Rejections by CDC reason</h2>{_rejections(page)}"
        f"<h2>Suppressions refused by the CDC</h2>{_refused_suppressions(page)}"
        f"<h2>For the CDC's support</h2>{_for_support(page)}"
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

    def gather() -> _Page:
        now = clock.now()
        today = paris_today(clock)
        with store.reading() as reader:
            return _Page(
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
