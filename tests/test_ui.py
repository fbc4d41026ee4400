"""The dashboard (`GET /ui`) in a real headless Chromium (Debian's), behind the operator's
token sent as HTTP Basic, as a browser sends it: the certifier names, the counts, the chart
drawn, no console error, a screenshot kept under the test's folder. Plus the HTTP side:
`/` redirects, the token is required, no personal data on the page."""

from __future__ import annotations

import base64
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from accrochage.api.charts import stacked_bars
from accrochage.api.protocol import ApiRunner
from accrochage.api.ui import BUCKETS, render
from accrochage.api.ui_sections import Page
from accrochage.app import Core, build_core
from accrochage.models.deadline import FixedClock
from accrochage.runtimes.embedded import build_service
from accrochage.settings import load_settings
from accrochage.state.values import DashboardNumbers, Observation
from tests.conftest import require
from tests.support.browser import chromium, chromium_path
from tests.test_tracker import NOW, event, ingest, make_core

TOKEN = "u" * 40
BASIC = {"Authorization": "Basic " + base64.b64encode(f"operator:{TOKEN}".encode()).decode()}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SCHOOL = {"certifier": "school", "certification": {"type": "RNCP", "code": "RNCP35726"}}


def populate(core: Core) -> None:
    """pix: 3 at risk, 1 overdue, 2 in a file to deposit, 1 rejected, 1 accepted whose
    suppression the CDC refused, 1 whose delivery date cannot be read (at risk, its deadline
    unknown); school: 2 far off."""
    ingest(
        core,
        *(event(f"PX-R{i}", delivered_on="2026-09-10") for i in range(3)),
        event("PX-O1", delivered_on="2026-08-01"),
        event("PX-F1", delivered_on="2026-11-20"),
        event("PX-F2", delivered_on="2026-11-20"),
        event("PX-J1", delivered_on="2026-11-20"),
        event("PX-S1", delivered_on="2026-11-25"),
        event("PX-H1", delivered_on="2026-11-25"),
        event("SC-1", delivered_on="2026-11-25", **SCHOOL),
        event("SC-2", delivered_on="2026-11-25", **SCHOOL),
    )
    conn = sqlite3.connect(core.settings.paths.state)
    try:  # only PX-F1 and PX-F2 pending when the file is cut
        conn.execute(
            "UPDATE records SET status = 'invalid' WHERE record_id NOT IN ('PX-F1', 'PX-F2')"
        )
        conn.commit()
        report = core.flusher.flush(force=True)
        assert len(report.written) == 1, report
        conn.execute("UPDATE records SET status = 'pending' WHERE status = 'invalid'")
        conn.execute(
            "UPDATE records SET status = 'rejected', cdc_reason = 'identity_not_found' "
            "WHERE record_id = 'PX-J1'"
        )
        conn.execute(
            "UPDATE records SET status = 'accepted', suppression_rejected = 1, "
            "cdc_reason = 'other' WHERE record_id = 'PX-S1'"
        )
        conn.execute(  # the CDC refused its SUPPRESSION: it holds it under another id
            "UPDATE records SET status = 'accepted', suppression_rejected = 1, "
            "revocation_pending = 1, cdc_reason = 'other', cdc_held_as = '1559735', "
            "delivery_met = 1, deadline = NULL WHERE record_id = 'PX-H1'"
        )
        conn.commit()
    finally:
        conn.close()
    unreadable = event("PX-U1", delivered_on="2026-11-20")
    unreadable["delivered_on"] = "20/11/2026"
    ingest(core, unreadable)
    core.corrections.add("PX-F1", received_on=date(2026, 11, 20), source="holder")
    core.corrections.add("OLD-2023-0001", received_on=date(2026, 11, 20))  # a record not known


@asynccontextmanager
async def service(core: Core) -> AsyncIterator[str]:
    runner = ApiRunner(build_service(core, timer=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


DOM = """(() => {
  const rows = {};
  for (const tr of document.querySelectorAll('#certifiers tr[data-certifier]')) {
    const cells = {};
    for (const td of tr.querySelectorAll('td[data-status], td[data-col]')) {
      cells[td.dataset.status || td.dataset.col] = Number(td.textContent);
    }
    rows[tr.dataset.certifier] = cells;
  }
  const chart = document.querySelector('svg#days-left-chart');
  const box = chart ? chart.getBoundingClientRect() : null;
  const bars = chart ? [...chart.querySelectorAll('rect.bar')].map(r => ({
    series: r.dataset.series, bucket: r.dataset.bucket, count: Number(r.dataset.count),
    height: r.getBBox().height})) : [];
  const earliest = {};
  for (const tr of document.querySelectorAll('#certifiers tr[data-certifier]')) {
    earliest[tr.dataset.certifier] = tr.querySelector('td[data-deadline]').textContent;
  }
  return {
    rows, bars, earliest, chartSize: box ? [box.width, box.height] : null,
    deposit: document.querySelectorAll('#to-deposit tr').length - 1,
    rejections: document.querySelector('#rejections').textContent,
    refused: document.querySelector('#refused-suppressions').textContent,
    support: document.querySelector('#for-support').textContent,
    alerts: document.querySelector('#alerts').textContent,
    text: document.body.innerText,
  };
})()"""


async def test_the_dashboard_in_headless_chromium(tmp_path: Path) -> None:
    require(chromium_path() is not None, "chromium is not installed (scripts/test.sh installs it)")
    (tmp_path / "svc").mkdir()
    core, _ = make_core(tmp_path / "svc", api={"token": TOKEN})
    try:
        populate(core)
        async with service(core) as base, chromium(tmp_path / "profile") as page:
            await page.open(f"{base}/", BASIC)  # `/` redirects to /ui
            assert await page.evaluate("location.pathname") == "/ui"
            dom: dict[str, Any] = await page.evaluate(DOM)
            shot = await page.screenshot(tmp_path / "dashboard.png")
            problems = list(page.problems)
    finally:
        core.close()
    assert shot.stat().st_size > 10_000, "the screenshot is blank"
    assert problems == [], problems
    assert set(dom["rows"]) == {"pix", "school", "?"}, "? holds a request on an unknown record"
    pix, school = dom["rows"]["pix"], dom["rows"]["school"]
    assert (pix["corrections"], school["corrections"], dom["rows"]["?"]["corrections"]) == (1, 0, 1)
    assert (pix["pending"], pix["batched"], pix["rejected"]) == (4, 2, 1)
    assert (pix["at_risk"], pix["overdue"], pix["invalid"]) == (4, 1, 1)
    assert (school["pending"], school["at_risk"], school["overdue"]) == (2, 0, 0)
    assert dom["chartSize"] and dom["chartSize"][0] > 100 and dom["chartSize"][1] > 100
    drawn = {(b["series"], b["bucket"]): b["count"] for b in dom["bars"] if b["height"] > 0}
    assert drawn[("pix", "overdue")] == 1
    assert drawn[("pix", "8–14 d")] == 3
    assert drawn[("pix", "date unknown")] == 1, "a deadline nobody knows is not 'no deadline'"
    assert drawn[("pix", "no deadline")] == 1, "PX-H1 (met for good), never PX-U1"
    assert sum(n for (series, _), n in drawn.items() if series == "school") == 2
    assert dom["deposit"] == 1
    assert "identity_not_found" in dom["rejections"]
    assert "other" not in dom["rejections"]
    assert "pix" in dom["refused"] and "other" in dom["refused"]
    assert dom["refused"].split("other")[1].strip() == "1", "the one held elsewhere is apart"
    assert dom["support"].replace(" ", "").endswith("pix1"), dom["support"]
    assert "accrochage retry" in dom["text"]
    assert dom["earliest"]["pix"] == "2026-11-01 (passed)", "PX-O1's, not a deadline to come"
    assert dom["earliest"]["school"] == "2027-02-25"
    assert "Haba" not in dom["text"] and "Bart" not in dom["text"]  # no holder on the page


async def test_the_dashboard_needs_the_token_and_root_redirects(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path, api={"token": TOKEN})
    try:
        populate(core)
        async with (
            service(core) as base,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        ):
            async with http.get(f"{base}/ui") as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Basic")
            async with http.get(f"{base}/", headers=BASIC, allow_redirects=False) as response:
                assert response.status == 302 and response.headers["Location"] == "/ui"
            async with http.get(f"{base}/ui", headers=BASIC) as response:
                assert response.status == 200
                assert "default-src 'none'" in response.headers["Content-Security-Policy"]
                html = await response.text()
    finally:
        core.close()
    assert "<svg" in html and 'http-equiv="refresh"' in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # offline
    without_ids = UUID.sub("<id>", html)  # a batch id may hold the digits 1993 by chance
    for personal in ("Haba", "Bart", "1993", "05-23"):
        assert personal not in without_ids


async def test_the_dashboard_refused_says_how_a_browser_logs_in(tmp_path: Path) -> None:
    """A manager who cancels the browser's login box reads the 401's message: it only said
    to send a Bearer header, which no browser can, not the user name and password to type."""
    core, _ = make_core(tmp_path, api={"token": TOKEN})
    try:
        async with (
            service(core) as base,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
            http.get(f"{base}/ui") as response,
        ):
            assert response.status == 401
            message = (await response.json())["error"]["message"]
    finally:
        core.close()
    assert "in a browser" in message and "api.token as password" in message


async def test_a_certifier_not_configured_is_shown_as_question_mark(tmp_path: Path) -> None:
    """A record's `certifier` may be any text its sender chose: the dashboard and the summary
    count it under `?`, as metrics and alerts label it, never as a row of its own."""
    core, _ = make_core(tmp_path)
    try:
        odd = "<img src=x onerror=alert(1)>"
        ingest(core, event("U-1", certifier="acme-unknown"), event("U-2", certifier=odd))
        ingest(core, event("U-3"))
        async with service(core) as base, aiohttp.ClientSession() as session:
            async with session.get(f"{base}/ui") as response:
                page = await response.text()
            async with session.get(f"{base}/summary") as response:
                summary = await response.json()
    finally:
        core.close()
    assert "acme-unknown" not in page and "onerror" not in page
    assert 'data-certifier="?"' in page
    assert set(summary["by_certifier"]) == {"?", "pix"}
    assert sum(summary["by_certifier"]["?"].values()) == 2


async def ui_page(core: Core) -> str:
    async with (
        service(core) as base,
        aiohttp.ClientSession() as session,
        session.get(f"{base}/ui") as response,
    ):
        return await response.text()


def to_deposit_table(page: str) -> str:
    table = page[page.index('id="to-deposit"') :]
    return table[: table.index("</table>")]


async def test_a_file_to_deposit_of_a_certifier_no_longer_configured_shows_question_mark(
    tmp_path: Path,
) -> None:
    """'Files to deposit' showed the raw key where the rest of the page (and the metrics)
    said `?`."""
    core, _ = make_core(tmp_path)
    try:
        ingest(core, event("Q-1", certifier="school"))
        (written,) = core.flusher.flush(force=True).written
    finally:
        core.close()
    config = tmp_path / "accrochage.toml"
    text = config.read_text(encoding="utf-8")
    start = text.index('[[certifiers]]\nkey = "school"')
    end = text.find("[[certifiers]]", start + 1)
    config.write_text(text[:start] + (text[end:] if end >= 0 else ""), encoding="utf-8")
    core = build_core(load_settings(config), FixedClock(NOW))
    try:
        page = await ui_page(core)
    finally:
        core.close()
    table = to_deposit_table(page)
    assert "<td>school</td>" not in table and "<td>?</td>" in table
    # The file's name and action: what the operator looks for in the outbox and uploads
    assert f"<td><code>{written.path.name}</code></td><td>CREATION</td>" in table


async def test_files_to_deposit_beyond_the_table_are_counted_the_oldest_shown(
    tmp_path: Path,
) -> None:
    """The table showed the 50 newest files and said nothing of the others: the oldest, the
    most urgent to upload, were the ones left out."""
    core, clock = make_core(tmp_path, batching={"max_records": 1})
    try:
        ingest(core, *(event(f"OLD-{n}") for n in range(3)))
        assert len(core.flusher.flush(force=True).written) == 3
        clock.advance(timedelta(hours=1))
        ingest(core, *(event(f"NEW-{n:02d}") for n in range(50)))
        assert len(core.flusher.flush(force=True).written) == 50
        with sqlite3.connect(core.settings.paths.state) as db:
            order = [
                r[0]
                for r in db.execute(
                    "SELECT batch_id FROM batches ORDER BY julianday(written_at), batch_id"
                )
            ]
        page = await ui_page(core)
    finally:
        core.close()
    shown = re.findall(r"<code>([0-9a-f-]{36})</code>", to_deposit_table(page))
    assert shown == order[:50], "the oldest first"
    assert "The 50 oldest of 53 files" in page and "batches --to-deposit" in page


async def test_an_empty_state_shows_a_row_of_zeros_for_each_configured_certifier(
    tmp_path: Path,
) -> None:
    """The first day: nothing received yet is news too (as `/metrics` shows their zeros); the
    table was empty."""
    core, _ = make_core(tmp_path)
    try:
        configured = sorted(c.key for c in core.settings.certifiers)
        page = await ui_page(core)
    finally:
        core.close()
    table = page[page.index('id="certifiers"') :]
    table = table[: table.index("</table>")]
    assert configured and re.findall(r'data-certifier="([^"]+)"', table) == configured
    assert 'data-col="at_risk">0<' in table


LEGEND = """(() => {
  const svg = document.querySelector('svg#days-left-chart').getBoundingClientRect();
  const inside = r => r.left >= svg.left && r.right <= svg.right + 0.5
    && r.top >= svg.top && r.bottom <= svg.bottom + 0.5;
  const legend = [...document.querySelectorAll('svg#days-left-chart text.legend')];
  const fills = {};
  for (const r of document.querySelectorAll('svg#days-left-chart rect.bar')) {
    fills[r.dataset.series] = getComputedStyle(r).fill;
  }
  return {
    names: legend.map(t => t.textContent),
    hidden: legend.filter(t => !inside(t.getBoundingClientRect())).map(t => t.textContent),
    overlaps: legend.filter((t, i) => legend.slice(i + 1).some(u => {
      const a = t.getBoundingClientRect(), b = u.getBoundingClientRect();
      return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    })).map(t => t.textContent),
    fills,
  };
})()"""


async def test_the_chart_names_and_colours_every_certifier_of_a_trusted_third_party(
    tmp_path: Path,
) -> None:
    """Eleven certifiers with records due (one with a long key): the legend ran in one line
    out of the chart (the sixth on was never named) and the eighth's bars took the first's
    colour."""
    require(chromium_path() is not None, "chromium is not installed (scripts/test.sh installs it)")
    names = [f"school-{n:02d}" for n in range(10)] + ["z" + "-long-name" * 6]
    series = {name: [n + 1, 0, 2, 0, 0, 0, 0, 0] for n, name in enumerate(names)}
    chart = stacked_bars("days-left-chart", "Outstanding records", BUCKETS, series)
    html = tmp_path / "chart.html"
    html.write_text(f'<!DOCTYPE html><html><body style="margin:0">{chart}</body></html>')
    async with chromium(tmp_path / "profile") as page:
        await page.open(html.as_uri(), {})
        legend: dict[str, Any] = await page.evaluate(LEGEND)
        problems = list(page.problems)
    assert problems == [], problems
    assert legend["names"] == names
    assert legend["hidden"] == [], "every certifier is named inside the chart"
    assert legend["overlaps"] == [], "a long key's name runs over none"
    assert sorted(legend["fills"]) == names
    assert len(set(legend["fills"].values())) == len(names), legend["fills"]


async def test_records_of_certifiers_no_longer_configured_make_one_question_mark_row(
    tmp_path: Path,
) -> None:
    """Two certifiers taken out of the configuration are both `?`: the rejections and the
    CDC's support tables showed a row for each, same name and reason, as if two were one."""
    core, _ = make_core(tmp_path)
    try:
        ingest(core, event("G-1"), event("G-2", **SCHOOL), event("H-1"), event("H-2", **SCHOOL))
        assert len(core.flusher.flush(force=True).written) == 2
    finally:
        core.close()
    with sqlite3.connect(tmp_path / "var" / "state.db") as db:
        db.execute(
            "UPDATE records SET status = 'rejected', cdc_reason = 'identity_not_found' "
            "WHERE record_id LIKE 'G-%'"
        )
        db.execute(  # the CDC holds them under another id: they wait for its support
            "UPDATE records SET status = 'accepted', suppression_rejected = 1, "
            "revocation_pending = 1, cdc_reason = 'other', cdc_held_as = '1559735', "
            "delivery_met = 1, deadline = NULL WHERE record_id LIKE 'H-%'"
        )
    config = tmp_path / "accrochage.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace('key = "pix"', 'key = "pix-new"').replace(
        'key = "school"', 'key = "sc-new"'
    )
    config.write_text(text, encoding="utf-8")
    core = build_core(load_settings(config), FixedClock(NOW))
    try:
        page = await ui_page(core)
    finally:
        core.close()
    table = page[page.index('id="rejections"') :]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>(\d+)</td></tr>", table)
    assert rows[:2] == [("?", "identity_not_found", "2")], rows
    support = page[page.index('<table id="for-support"') :]
    assert re.findall(r"<tr><td>([^<]*)</td><td>(\d+)</td></tr>", support)[:2] == [("?", "2")]


def test_the_certifiers_table_sums_each_count_once_however_many_certifiers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A trusted third party's 600 certifiers: each row looked its counts up among every
    certifier's (600² lookups of each count, millions per refresh of the page). Counted in
    lookups of the shown certifier, not in seconds; the rows still say the right counts."""
    keys = [f"school-{n:03d}" for n in range(600)]
    day = date(2026, 12, 20)
    observation = Observation(
        records={(k, "pending"): n + 1 for n, k in enumerate(keys)}
        | {("gone", "batched"): 2, ("left", "batched"): 3},
        at_risk={k: 1 for k in keys} | {"gone": 4},
        overdue={k: 0 for k in keys},
        next_deadline={k: day for k in keys} | {"gone": day - timedelta(days=3)},
        batches={},
        unreported={},
        correction_requests_open={"school-007": 2},
    )
    numbers = DashboardNumbers({}, {}, {}, [])
    page = Page(day, NOW, 14, observation, numbers, [], frozenset(keys))
    lookups = 0
    shown = Page.label

    def counted(self: Page, certifier: str | None) -> str:
        nonlocal lookups
        lookups += 1
        return shown(self, certifier)

    monkeypatch.setattr(Page, "label", counted)
    html = render(page)
    assert lookups <= 20 * len(keys), lookups
    rows = dict(re.findall(r'<tr data-certifier="([^"]+)">(.*?)</tr>', html))
    assert len(rows) == len(keys) + 1
    assert 'data-status="pending">8<' in rows["school-007"]
    assert 'data-col="corrections">2<' in rows["school-007"]
    assert 'data-status="batched">5<' in rows["?"]
    assert 'data-col="at_risk">4<' in rows["?"]
    assert (day - timedelta(days=3)).isoformat() in rows["?"]
