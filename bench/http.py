"""HTTP ingestion: `accrochage run` under 8 concurrent keep-alive clients.

    python -m bench.http [--events N] [--batch 100] [--clients 8] [--quick] [--json]

The service runs in a subprocess (configuration in a temporary folder, 127.0.0.1 on a free
port, its batch timer on as in production). Eight clients, each an aiohttp.ClientSession
with one keep-alive connection, post N events one per request, then N other events as
arrays of 100. Baseline in the same run: the same clients against a trivial aiohttp server
(its own subprocess) that reads the body and answers 201. The record count is checked
through GET /summary afterwards. Target: >= 1,000 events/s (one event per request).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import aiohttp
from aiohttp import web

from accrochage.generate import generate_events
from bench._common import (
    PYTHON,
    ROOT,
    BenchError,
    Report,
    accrochage_command,
    at_least,
    base_parser,
    clean_env,
    cpu_seconds,
    finish,
    free_port,
    generated_certifiers,
    info,
    launch,
    paris_today,
    print_profile,
    proc_cpu_seconds,
    scratch_dir,
    stop_measured,
    write_config,
)

TARGET_EVENTS_PER_S = 1_000
HEADERS = {"Content-Type": "application/json"}
WARMUP_PER_CLIENT = 5


@dataclass
class Phase:
    name: str
    events: int
    requests: int
    seconds: float
    statuses: Counter[int]
    client_cpu: float
    server_cpu: float | None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


def bodies(count: int, batch: int, clients: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(warm-up, one event per body, `batch` events per body): every record id distinct."""
    warmup = WARMUP_PER_CLIENT * clients
    events = [
        json.dumps(e, ensure_ascii=False).encode()
        for e in generate_events(
            warmup + 2 * count, generated_certifiers(), today=paris_today(), seed=5
        )
    ]
    single = events[warmup : warmup + count]
    rest = events[warmup + count :]
    arrays = [b"[" + b",".join(rest[i : i + batch]) + b"]" for i in range(0, len(rest), batch)]
    return events[:warmup], single, arrays


async def _post_all(
    sessions: Sequence[aiohttp.ClientSession], url: str, payloads: Sequence[bytes]
) -> tuple[float, Counter[int]]:
    statuses: Counter[int] = Counter()
    pending = iter(payloads)

    async def client(session: aiohttp.ClientSession) -> None:
        for body in pending:  # one shared iterator: each client takes the next body
            async with session.post(url, data=body, headers=HEADERS) as response:
                await response.read()
                statuses[response.status] += 1

    start = time.perf_counter()
    await asyncio.gather(*(client(s) for s in sessions))
    return time.perf_counter() - start, statuses


async def drive(
    base: str,
    server_pid: int,
    clients: int,
    warmup: list[bytes],
    single: list[bytes],
    arrays: list[bytes],
    batch: int,
) -> list[Phase]:
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1, force_close=False))
        for _ in range(clients)
    ]
    phases = []
    try:
        await _post_all(sessions, f"{base}/events", warmup)
        for name, payloads, per_body in (
            ("one event per request", single, 1),
            (f"arrays of {batch}", arrays, batch),
        ):
            cpu, server_cpu = cpu_seconds(), proc_cpu_seconds(server_pid)
            seconds, statuses = await _post_all(sessions, f"{base}/events", payloads)
            server_after = proc_cpu_seconds(server_pid)
            events = len(single) if per_body == 1 else sum(b.count(b'"record_id"') for b in arrays)
            phases.append(
                Phase(
                    name,
                    events,
                    len(payloads),
                    seconds,
                    statuses,
                    cpu_seconds() - cpu,
                    None
                    if server_cpu is None or server_after is None
                    else server_after - server_cpu,
                )
            )
    finally:
        for session in sessions:
            await session.close()
    return phases


def wait_healthy(base: str, proc: Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"the server did not answer /health within {timeout} s")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def run_against(
    command: list[str],
    cwd: Path,
    log: Path,
    port: int,
    args: argparse.Namespace,
    payloads: tuple[list[bytes], list[bytes], list[bytes]],
    *,
    is_service: bool,
) -> tuple[list[Phase], dict[str, Any], dict[str, Any] | None]:
    """Start a server, drive it, stop it: (phases, its launcher's outcome, its /summary)."""
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        server = launch(command, cwd=cwd, env=clean_env(), stdout=out, stderr=out)
    summary = None
    try:
        wait_healthy(base, server.proc, log)
        phases = asyncio.run(drive(base, server.pid, args.clients, *payloads, args.batch))
        if is_service:
            summary = get_json(f"{base}/summary")
    finally:
        done = stop_measured(server)
    if done["returncode"] not in (0, -15):
        raise BenchError(f"the server exited with {done['returncode']}:\n{log.read_text()[-3000:]}")
    return phases, done, summary


def cpu_text(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.1f} s"


# -- the service under cProfile (--profile) ---------------------------------------------------


def scenario_service(config: Path) -> None:
    """`accrochage run` in-process, each busy thread under its own profiler.

    cProfile sees one thread only, so the group writer's Ingestor.ingest and the timer's
    Flusher.flush are wrapped (instance attributes: no library change) with profilers of
    their own, next to the event loop's. Printed to stderr when the service stops.
    """
    from accrochage.app import build_core
    from accrochage.runtimes.embedded import run_service
    from accrochage.settings import load_settings

    core = build_core(load_settings(config))
    loop_profile, writer_profile, flush_profile = (cProfile.Profile() for _ in range(3))
    spent = {"ingest": 0.0, "decode": 0.0, "flush": 0.0, "groups": 0, "events": 0}
    ingest, decode_one, flush = core.ingestor.ingest, core.ingestor._decode, core.flusher.flush

    def profiled_ingest(items: Any, **kw: Any) -> Any:
        writer_profile.enable()
        start = time.perf_counter()
        try:
            return ingest(items, **kw)
        finally:
            spent["ingest"] += time.perf_counter() - start
            spent["groups"] += 1
            spent["events"] += len(items)
            writer_profile.disable()

    def timed_decode(item: Any) -> Any:
        start = time.perf_counter()
        try:
            return decode_one(item)
        finally:
            spent["decode"] += time.perf_counter() - start

    def profiled_flush(**kw: Any) -> Any:
        flush_profile.enable()
        start = time.perf_counter()
        try:
            return flush(**kw)
        finally:
            spent["flush"] += time.perf_counter() - start
            flush_profile.disable()

    core.ingestor.ingest = profiled_ingest  # type: ignore[method-assign]
    core.ingestor._decode = timed_decode  # type: ignore[method-assign]
    core.flusher.flush = profiled_flush  # type: ignore[method-assign]
    loop_profile.enable()
    try:
        run_service(core)
    finally:
        loop_profile.disable()
        core.close()
    groups = max(1, int(spent["groups"]))
    print(
        f"\n== service threads, wall seconds: writer in Ingestor.ingest {spent['ingest']:.2f} "
        f"({spent['groups']} groups, {spent['events'] / groups:.1f} events/group, "
        f"{1000 * spent['ingest'] / groups:.2f} ms/group), of which decoding "
        f"{spent['decode']:.2f} and the transaction {spent['ingest'] - spent['decode']:.2f}; "
        f"flusher {spent['flush']:.2f} ==",
        file=sys.stderr,
    )
    print_profile(writer_profile, "writer thread (Ingestor.ingest)")
    print_profile(loop_profile, "event loop thread (aiohttp, handlers)")
    print_profile(flush_profile, "flusher thread (Flusher.flush)", top=12)


# -- the trivial baseline server -------------------------------------------------------------


def scenario_trivial(port: int) -> None:
    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=201)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/events", accept)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


# -- the parent ------------------------------------------------------------------------------


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="events per phase (default 20,000)")
    parser.add_argument("--batch", type=int, default=100, help="events per array")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario == "trivial":
        return scenario_trivial(args.port)
    if args.scenario == "service":
        return scenario_service(args.config)

    count = args.events or (400 if args.quick else 20_000)
    payloads = bodies(count, args.batch, args.clients)
    report = Report(
        "http",
        args.quick,
        {"events_per_phase": count, "clients": args.clients, "array_size": args.batch},
    )
    with scratch_dir("http") as folder:
        port = free_port()
        config = write_config(folder, bind=f"127.0.0.1:{port}")
        service = [*accrochage_command(), "--config", str(config), "run", "--log-level=WARNING"]
        if args.profile:  # slower: the figures are then for the profile only
            service = [PYTHON, "-m", "bench.http", "--scenario=service", f"--config={config}"]
        log = folder / "service.log"
        where = ROOT if args.profile else folder
        phases, service_run, summary = run_against(
            service, where, log, port, args, payloads, is_service=True
        )
        if args.profile:
            print(log.read_text(encoding="utf-8", errors="replace"), file=sys.stderr)
        trivial_port = free_port()
        trivial = [PYTHON, "-m", "bench.http", "--scenario=trivial", f"--port={trivial_port}"]
        baseline, trivial_run, _ = run_against(
            trivial, ROOT, folder / "trivial.log", trivial_port, args, payloads, is_service=False
        )

    expected = len(payloads[0]) + count * 2
    for phase, base in zip(phases, baseline, strict=True):
        target = TARGET_EVENTS_PER_S if phase.requests == phase.events else None
        note = (
            f"{phase.requests:,} requests in {phase.seconds:.1f} s; CPU server "
            f"{cpu_text(phase.server_cpu)}, clients {phase.client_cpu:.1f} s"
        )
        name = f"service, {phase.name}"
        if target is not None:
            report.add(at_least(name, phase.events_per_s, "ev/s", target, note))
        else:
            report.add(info(name, phase.events_per_s, "ev/s", note))
        report.add(
            info(
                f"  baseline trivial server, {base.name}",
                base.events_per_s,
                "ev/s",
                f"{base.seconds:.1f} s; CPU server {cpu_text(base.server_cpu)}, "
                f"clients {base.client_cpu:.1f} s",
            )
        )
        report.add(
            info(
                "  ratio service / trivial time",
                phase.seconds / base.seconds,
                "x",
                "slowdown",
            )
        )
    report.add(
        info(
            "service peak RSS",
            service_run["peak_rss_mb"],
            "MiB",
            f"largest of its {service_run['processes']} process(es); trivial server "
            f"{trivial_run['peak_rss_mb']:.0f}; service CPU over the run, all processes "
            f"{service_run['tree_cpu_seconds']:.1f} s",
        )
    )
    records = summary["records"] if summary else -1
    invalid = summary["by_status"].get("invalid", 0) if summary else -1
    report.add(
        info(
            "records in the state", records, "records", f"expected {expected:,}; invalid {invalid}"
        )
    )
    report.details = {
        "service": [vars(p) | {"statuses": dict(p.statuses)} for p in phases],
        "trivial": [vars(p) | {"statuses": dict(p.statuses)} for p in baseline],
        "summary": summary,
    }
    finish(report, args.json)
    failures = sum(p.failures for p in [*phases, *baseline])
    if failures or records != expected or invalid:
        raise SystemExit(
            f"{failures} failed requests; {records} records for {expected} expected, "
            f"{invalid} invalid"
        )


if __name__ == "__main__":
    main()
