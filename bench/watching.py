"""`bench.http` with the metrics and alerts on, and off: what watching costs ingestion.

    python -m bench.watching [--events N] [--rounds 3] [--clients 8] [--quick] [--json]

The service runs in a subprocess, as `bench.http`'s (the same events, clients and phases),
in-process through `run_service` so that both variants start the same way:
- **on**: as shipped: the watch job (metrics gauges, alert rules) and the alert delivery on
  the timer, `alerts.webhooks` pointing at a local receiver, and the parent scraping
  `GET /metrics` every second during the phases (Prometheus scrapes every 15-60 s);
- **off**: the same service with the watch and delivery jobs left out of its scheduler.
Rounds alternate off and on, each on a fresh state; the figure is the median events/s of
each variant per phase, and the service's CPU per event. On a shared 2-CPU machine those
spread by 10-25 % between rounds of the same variant, more than the 3 % to resolve; so the
judged figure is measured inside the "on" service: the CPU its threads spend watching (the
watch job, the alert delivery, rendering /metrics; `time.thread_time` around each) as a
share of the service's CPU over the run. Target: under 3 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp

from bench._common import (
    PYTHON,
    ROOT,
    BenchError,
    Report,
    at_most,
    base_parser,
    clean_env,
    finish,
    free_port,
    info,
    launch,
    median,
    scratch_dir,
    stop_measured,
    write_config,
)
from bench.http import Phase, bodies, drive, get_json, wait_healthy

TARGET_PCT = 3.0
SPENT_MARK = "WATCHING-CPU"
SCRAPE_EVERY = 1.0


def scenario_service(config: Path, watch: str) -> None:
    """The service; with watching on, the CPU of each thread's watching work is summed (the
    watch job, the alert delivery, the /metrics renderer) and printed when it stops."""
    from accrochage.api import metrics as metrics_api
    from accrochage.app import build_core
    from accrochage.runtimes import embedded
    from accrochage.settings import load_settings
    from accrochage.streams.receivers import Deliverer
    from accrochage.streams.watch import Watch

    spent = {"watch": 0.0, "deliver": 0.0, "scrape": 0.0, "watch_runs": 0, "scrapes": 0}
    counted = {"watch": "watch_runs", "scrape": "scrapes"}

    def timed(name: str, function: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.thread_time() - start
                if name in counted:
                    spent[counted[name]] += 1

        return run

    if watch == "off":
        embedded.watching_jobs = lambda core, extra=(): []  # type: ignore[assignment]
    else:
        Watch.run = timed("watch", Watch.run)  # type: ignore[method-assign]
        Deliverer.run = timed("deliver", Deliverer.run)  # type: ignore[method-assign]
        metrics_api.generate_latest = timed("scrape", metrics_api.generate_latest)
    core = build_core(load_settings(config))
    try:
        embedded.run_service(core)
    finally:
        core.close()
        print(f"{SPENT_MARK} {json.dumps(spent)}", flush=True)


def start_receiver() -> tuple[ThreadingHTTPServer, list[int]]:
    got: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.append(1)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


async def drive_watched(
    base: str, pid: int, args: argparse.Namespace, payloads: Any, scrape: bool
) -> tuple[list[Phase], int]:
    scrapes = 0

    async def scraper() -> None:
        nonlocal scrapes
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(f"{base}/metrics") as response:
                    await response.read()
                    scrapes += response.status == 200
                await asyncio.sleep(SCRAPE_EVERY)

    task = asyncio.create_task(scraper()) if scrape else None
    try:
        phases = await drive(base, pid, args.clients, *payloads, args.batch)
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return phases, scrapes


def one_run(
    folder: Path, watch: str, args: argparse.Namespace, payloads: Any, hook: str
) -> tuple[list[Phase], int, dict[str, Any]]:
    folder.mkdir()
    port = free_port()
    config = write_config(folder, bind=f"127.0.0.1:{port}")
    if watch == "on":
        with config.open("a", encoding="utf-8") as out:
            out.write(f'\n[alerts]\nwebhooks = ["{hook}"]\n')
    command = [PYTHON, "-m", "bench.watching", "--scenario=service", f"--config={config}"]
    log = folder / "service.log"
    with log.open("wb") as out:
        server = launch(
            [*command, f"--watch={watch}"], cwd=ROOT, env=clean_env(), stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, server.proc, log)
        phases, scrapes = asyncio.run(
            drive_watched(base, server.pid, args, payloads, watch == "on")
        )
        records = get_json(f"{base}/summary")["records"]
    finally:
        done = stop_measured(server)
    spent: dict[str, Any] = {"service_cpu": done["tree_cpu_seconds"]}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(SPENT_MARK):
            spent |= json.loads(line.split(" ", 1)[1])
    expected = (
        len(payloads[0]) + len(payloads[1]) + sum(b.count(b'"record_id"') for b in payloads[2])
    )
    failures = sum(p.failures for p in phases)
    if failures or records != expected:
        raise BenchError(f"{watch}: {failures} failed requests, {records} records of {expected}")
    return phases, scrapes, spent


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="events per phase (default 20,000)")
    parser.add_argument("--batch", type=int, default=100, help="events per array")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--rounds", type=int, help="off/on pairs (default 3)")
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--watch", choices=("on", "off"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario == "service":
        return scenario_service(args.config, args.watch)

    count = args.events or (400 if args.quick else 20_000)
    rounds = args.rounds or (1 if args.quick else 4)
    payloads = bodies(count, args.batch, args.clients)
    receiver, got = start_receiver()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    rates: dict[str, dict[str, list[float]]] = {"on": {}, "off": {}}
    cpu: dict[str, dict[str, list[float]]] = {"on": {}, "off": {}}
    scrapes = 0
    watching = {"cpu": 0.0, "service_cpu": 0.0, "watch_runs": 0, "scrapes": 0}
    try:
        with scratch_dir("watching") as folder:
            for round_ in range(rounds):
                for watch in ("off", "on"):
                    phases, scraped, spent = one_run(
                        folder / f"{watch}-{round_}", watch, args, payloads, hook
                    )
                    scrapes += scraped
                    if watch == "on":
                        watching["cpu"] += spent["watch"] + spent["deliver"] + spent["scrape"]
                        watching["service_cpu"] += spent["service_cpu"]
                        watching["watch_runs"] += spent["watch_runs"]
                        watching["scrapes"] += spent["scrapes"]
                    for phase in phases:
                        rates[watch].setdefault(phase.name, []).append(phase.events_per_s)
                        if phase.server_cpu is not None:
                            per_event = phase.server_cpu / phase.events * 1e6
                            cpu[watch].setdefault(phase.name, []).append(per_event)
    finally:
        receiver.shutdown()
    report = Report(
        "watching",
        args.quick,
        {"events_per_phase": count, "clients": args.clients, "rounds": rounds},
    )
    share = watching["cpu"] / watching["service_cpu"] * 100 if watching["service_cpu"] else 0
    report.add(
        at_most(
            "watching's share of the service CPU (on)",
            share,
            "%",
            TARGET_PCT,
            f"{watching['cpu']:.2f} s of {watching['service_cpu']:.1f} s: "
            f"{watching['watch_runs']} watch runs, {watching['scrapes']} scrapes, deliveries",
        )
    )
    for name, off_cpu in cpu["off"].items():
        on, off = median(cpu["on"][name]), median(off_cpu)
        report.add(
            info(
                f"  {name}: service CPU per event, on vs off",
                (on - off) / off * 100 if off > 0 else 0.0,
                "%",
                f"on {on:,.0f} µs, off {off:,.0f} µs per event (medians of {rounds})"
                + ("" if off > 0 else "; too short to measure (CPU ticks of 10 ms)"),
            )
        )
    for name, off_rates in rates["off"].items():
        on, off = median(rates["on"][name]), median(off_rates)
        spread = (max(off_rates) - min(off_rates)) / off * 100
        report.add(
            info(
                f"  {name}: events/s, on vs off",
                (off - on) / off * 100,
                "%",
                f"on {on:,.0f}, off {off:,.0f} ev/s; off alone spreads {spread:.0f} % "
                "across rounds (wall clock: other work on the machine shows here)",
            )
        )
    report.add(info("scrapes of /metrics during the 'on' runs", scrapes, "scrapes"))
    report.add(info("webhook deliveries received", len(got), "posts", "alerts that fired"))
    report.details = {"rates": rates, "cpu_us_per_event": cpu, "watching": watching}
    finish(report, args.json)


if __name__ == "__main__":
    main()
