"""`GET /metrics` over a large state: the scrape, and the watch job that feeds it.

    python -m bench.metrics [--rows N] [--runs 50] [--quick] [--json] [--rebuild]

The state is `bench.query`'s cached database (1,000,000 records by default, 10 certifiers,
every status of a steady state), opened by the real Store (its migrations applied). The
configuration names the same 10 certifiers. The service's app (`build_service`, the one
`accrochage run` serves, its timer off) runs in-process on 127.0.0.1; the watch job is run
once by hand, as its timer would, then `GET /metrics` is timed from a keep-alive aiohttp
client. Baseline in the same run: `GET /health`. Also shown: the watch job (the grouped
queries a scrape never runs) and `GET /ui`. The record gauges must add up to the rows.
Target: /metrics median <= 50 ms.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from accrochage.api.protocol import ApiRunner
from accrochage.app import build_core
from accrochage.models.deadline import PARIS, FixedClock
from accrochage.runtimes.embedded import build_service
from accrochage.runtimes.watching import watch_for
from accrochage.settings import load_settings
from bench._common import (
    Report,
    at_most,
    base_parser,
    cpu_seconds,
    finish,
    info,
    median,
    percentile,
    scratch_dir,
)
from bench.query import AS_OF, CERTIFIERS, build

TARGET_MS = 50.0


def write_config(folder: Path, state: Path) -> Path:
    lines = ["[emitter]", 'id_client = "03VML243"', 'nature = "CERTIFICATEUR"', ""]
    for i, (key, _, codes) in enumerate(CERTIFIERS):
        lines += [
            "[[certifiers]]",
            f'key = "{key}"',
            f'id_client = "{i:02d}ABC345"',
            f'id_contrat = "MCFCER{i:06d}"',
            f"certifications = [{', '.join(f'{c!r}' for c in codes)}]".replace("'", '"'),
            "",
        ]
    lines += ["[paths]", f'state = "{state}"', f'outbox = "{folder / "outbox"}"', ""]
    path = folder / "accrochage.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


async def timed_gets(base: str, path: str, runs: int) -> tuple[list[float], str, float]:
    """Wall ms of each GET, the last answer, and the CPU ms per GET of this process (server
    and client both run in it)."""
    times, text, cpu = [], "", 0.0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for number in range(runs + 1):  # the first one warms the connection up
            if number == 1:
                cpu = cpu_seconds()
            start = time.perf_counter()
            async with session.get(f"{base}{path}") as response:
                text = await response.text()
                if response.status != 200:
                    raise SystemExit(f"GET {path} answered {response.status}: {text[:300]}")
            times.append((time.perf_counter() - start) * 1000)
    return times[1:], text, (cpu_seconds() - cpu) * 1000 / max(1, runs)


async def measure(core: object, runs: int) -> dict[str, tuple[list[float], str, float]]:
    runner = ApiRunner(build_service(core, timer=False))  # type: ignore[arg-type]
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        return {
            "metrics": await timed_gets(base, "/metrics", runs),
            "health": await timed_gets(base, "/health", runs),
            "ui": await timed_gets(base, "/ui", max(3, runs // 10)),
        }
    finally:
        await runner.cleanup()


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--rows", type=int, help="records (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=50, help="timed scrapes")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached database")
    args = parser.parse_args()
    rows = args.rows or (20_000 if args.quick else 1_000_000)
    runs = 10 if args.quick else args.runs
    path, built = build(rows, args.rebuild)
    with scratch_dir("metrics") as folder:
        clock = FixedClock(datetime(AS_OF.year, AS_OF.month, AS_OF.day, 10, tzinfo=PARIS))
        core = build_core(load_settings(write_config(folder, path)), clock)
        try:
            watch = watch_for(core)
            watch_ms, watch_cpu_ms = [], []
            for _ in range(3 if args.quick else 5):
                start, cpu = time.perf_counter(), cpu_seconds()
                watch.run()
                watch_ms.append((time.perf_counter() - start) * 1000)
                watch_cpu_ms.append((cpu_seconds() - cpu) * 1000)
            results = asyncio.run(measure(core, runs))
        finally:
            core.close()
    metrics_ms, text, metrics_cpu = results["metrics"]
    health_ms, _, health_cpu = results["health"]
    ui_ms, _, ui_cpu = results["ui"]
    records = sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "accrochage_records"
    )
    report = Report("metrics", args.quick, {"records": rows, "runs": runs, "cache": str(path)})
    report.add(
        at_most(
            "GET /metrics: median",
            median(metrics_ms),
            "ms",
            TARGET_MS,
            f"p95 {percentile(metrics_ms, 95):.1f} ms; {len(text):,} bytes; CPU "
            f"{metrics_cpu:.2f} ms per GET (server and client, one process)",
        )
    )
    report.add(
        info(
            "  baseline GET /health: median",
            median(health_ms),
            "ms",
            f"CPU {health_cpu:.2f} ms per GET (server and client)",
        )
    )
    report.add(
        info(
            "watch job (observe + publish + alert rules): median",
            median(watch_ms),
            "ms",
            f"CPU median {median(watch_cpu_ms):.0f} ms; on the services' timer (at most 1 % of "
            "a core), never per scrape",
        )
    )
    report.add(
        info("GET /ui: median", median(ui_ms), "ms", f"{len(ui_ms)} runs; CPU {ui_cpu:.0f} ms/GET")
    )
    if built is not None:
        report.add(info("database build (cached for later runs)", built, "s"))
    report.details = {"metrics_ms": metrics_ms, "health_ms": health_ms, "watch_ms": watch_ms}
    finish(report, args.json)
    if records != rows:
        raise SystemExit(f"the record gauges add up to {records}, expected {rows}")


if __name__ == "__main__":
    main()
