"""The dashboard's page as one read gathers it (`Page`), and its sections about what waits on
someone: files to deposit, rejections, suppressions the CDC refused, records for the CDC's
support, alerts firing, and the banner of a degraded service.

Apart from `api/ui.py`, which draws the counts and the chart and serves the page, so that each
stays small. Counts, certifier keys and batch ids only: no person, no record's content.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from html import escape

from accrochage.errors import AccrochageError
from accrochage.state.base import AlertState, DashboardNumbers, Observation


@dataclass(frozen=True, slots=True)
class Page:
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


def to_deposit_table(page: Page) -> str:
    if not page.numbers.to_deposit:
        return '<p id="to-deposit" class="muted">No file waiting to be uploaded.</p>'
    rows = "".join(
        f"<tr><td><code>{escape(b.batch_id)}</code></td><td>{escape(page.label(b.certifier))}</td>"
        f"<td><code>{escape(b.file_name)}</code></td><td>{escape(b.action)}</td><td>{b.passages}</td>"
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
        f'<table id="to-deposit"><tr><th>batch</th><th>certifier</th><th>file</th>'
        f"<th>action</th><th>passages</th><th>written</th></tr>{rows}</table>{more}"
    )


def _by_reason(page: Page, table_id: str, counts: dict[tuple[str | None, str | None], int]) -> str:
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


def rejections_table(page: Page) -> str:
    if not page.numbers.rejections:
        return '<p id="rejections" class="muted">No rejected record.</p>'
    return _by_reason(page, "rejections", page.numbers.rejections)


def refused_suppressions_table(page: Page) -> str:
    if not page.numbers.refused_suppressions:
        return '<p id="refused-suppressions" class="muted">No refused suppression.</p>'
    return (
        '<p class="muted">The CDC still holds these passages; <code>accrochage retry</code> '
        "cuts their suppression again.</p>"
        + _by_reason(page, "refused-suppressions", page.numbers.refused_suppressions)
    )


def for_support_table(page: Page) -> str:
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


def alerts_table(page: Page) -> str:
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


def problem_banner(page: Page) -> str:
    """A banner while the service is degraded: the page is the operator's, its message too."""
    if page.problem is None:
        return ""
    return (
        f'<p id="service-problem" class="crit"><strong>The service is degraded '
        f"({escape(page.problem.code)})</strong>: {escape(str(page.problem))}</p>"
    )
