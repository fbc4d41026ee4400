"""One exam platform floods, another sends one event at a time: what the second waits.

    python -m bench.fairness [--seconds 20] [--repeat 3] [--connections 8] [--a-per-minute N]
                             [--quick] [--json]

`accrochage run` (a subprocess, as `bench.http`'s) with two scoped ingest tokens: platform
**A** sends for one certifier, platform **B** for another. Each phase lasts `--seconds`:
B posts one event to `POST /events`, then one to `POST /check`, then waits 20 ms, again and
again, and its answers' latencies are kept; meanwhile A, on `--connections` connections,
posts arrays of 1,000 events as fast as they are answered:
- **alone**: A sends nothing (the baseline, in the same run);
- **check flood**: A's arrays go to `POST /check`;
- **events flood**: A's arrays go to `POST /events` (each of its events stored).
Rounds repeat the three phases on the same service; the figures are the medians over rounds
of each phase's median and p95, and A's events/s. Every answer must be 200 or 201 (B's
events are valid): anything else ends the bench.

`--a-per-minute N` gives A's token a budget of N events a minute (`events_per_minute`): A
then waits what each `429`'s `Retry-After` says, as a platform should.

What it judges: B's median answer, to `POST /events` and to `POST /check`, under either
flood, against 100 ms (what a person waiting on a platform's page still reads as at once),
and prints its ratio to B alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from accrochage.generate import generate_events
from bench._common import (
    CERTIFIERS,
    BenchError,
    Report,
    accrochage_command,
    at_most,
    base_parser,
    clean_env,
    finish,
    free_port,
    generated_certifiers,
    info,
    launch,
    median,
    paris_today,
    percentile,
    scratch_dir,
    stop_measured,
    write_config,
)
from bench.http import wait_healthy

TOKEN_A = "A" * 40
TOKEN_B = "B" * 40
OPERATOR = "O" * 40
ARRAY = 1000
PAUSE = 0.02
TARGET_MS = 100.0
PHASES = ("alone", "check", "events")


@dataclass
class Phase:
    flood: str
    events_ms: list[float]
    checks_ms: list[float]
    flood_events: int
    seconds: float


def tokens_config(path: Path, a_per_minute: int = 0) -> None:
    """Scoped tokens for A and B (the operator's token is required beside scoped ones);
    `a_per_minute`: A's budget of events a minute (0: none)."""
    a, b = CERTIFIERS[0].key, CERTIFIERS[1].key
    budget = f", events_per_minute = {a_per_minute}" if a_per_minute else ""
    with path.open("a", encoding="utf-8") as out:
        out.write(
            f'token = "{OPERATOR}"\n'
            f'ingest_tokens = [{{token = "{TOKEN_A}", certifiers = ["{a}"]{budget}}}, '
            f'{{token = "{TOKEN_B}", certifiers = ["{b}"]}}]\n'
        )


def events_of(index: int, count: int, start: int) -> list[dict[str, Any]]:
    certifier = generated_certifiers()[index]
    return list(
        generate_events(count, [certifier], today=paris_today(), seed=start, start_index=start)
    )


async def post(
    session: aiohttp.ClientSession, url: str, token: str, body: bytes, ok: tuple[int, ...]
) -> float:
    return (await answered(session, url, token, body, ok))[0]


async def answered(
    session: aiohttp.ClientSession, url: str, token: str, body: bytes, ok: tuple[int, ...]
) -> tuple[float, float]:
    """Milliseconds the answer took, and the seconds its `Retry-After` says (0: none)."""
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with session.post(url, data=body, headers=headers) as response:
        text = await response.read()
        if response.status not in ok:
            raise BenchError(f"{url} answered {response.status}: {text[:300]!r}")
        wait = float(response.headers.get("Retry-After", 0)) if response.status == 429 else 0.0
    return (time.perf_counter() - started) * 1000, wait


async def phase(base: str, flood: str, seconds: float, connections: int, first: int) -> Phase:
    """One phase: B's latencies while A floods `flood` ("alone": A sends nothing)."""
    a_body = json.dumps(events_of(0, ARRAY, first)).encode()
    b_events = [json.dumps(e).encode() for e in events_of(1, 4000, first)]
    stop = asyncio.Event()
    sent = 0
    connector = aiohttp.TCPConnector(limit=connections + 2)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def flooding() -> None:
            nonlocal sent
            while not stop.is_set():
                _, wait = await answered(session, f"{base}/{flood}", TOKEN_A, a_body, (200, 429))
                if not wait:
                    sent += ARRAY
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)

        flooders = []
        if flood != "alone":
            flooders = [asyncio.create_task(flooding()) for _ in range(connections)]
        await asyncio.sleep(1 if flooders else 0)
        events_ms: list[float] = []
        checks_ms: list[float] = []
        counted, started = sent, time.perf_counter()
        end = started + seconds
        at = 0
        while time.perf_counter() < end and at + 1 < len(b_events):
            one, other = b_events[at], b_events[at + 1]
            events_ms.append(await post(session, f"{base}/events", TOKEN_B, one, (201,)))
            checks_ms.append(await post(session, f"{base}/check", TOKEN_B, other, (200,)))
            at += 2
            await asyncio.sleep(PAUSE)
        took, flooded = time.perf_counter() - started, sent - counted
        stop.set()
        await asyncio.gather(*flooders)
    return Phase(flood, events_ms, checks_ms, flooded, took)


def run(args: Any) -> Report:
    seconds = 4.0 if args.quick else args.seconds
    rounds = 1 if args.quick else args.repeat
    report = Report(
        "fairness",
        args.quick,
        {
            "seconds": seconds,
            "rounds": rounds,
            "connections": args.connections,
            "array": ARRAY,
            "a_per_minute": args.a_per_minute,
        },
    )
    phases: list[Phase] = []
    with scratch_dir("accrochage-bench-fairness-") as folder:
        port = free_port()
        config = write_config(folder, bind=f"127.0.0.1:{port}", schema="1.1.5")
        tokens_config(config, args.a_per_minute)
        log = folder / "service.log"
        base = f"http://127.0.0.1:{port}"
        with log.open("wb") as out:
            command = [*accrochage_command(), "--config", str(config), "run"]
            server = launch(command, cwd=folder, env=clean_env(), stdout=out, stderr=out)
        try:
            wait_healthy(base, server.proc, log)
            first = 0
            for _ in range(rounds):
                for flood in PHASES:
                    phases.append(asyncio.run(phase(base, flood, seconds, args.connections, first)))
                    first += 10_000_000
        finally:
            stop_measured(server)
    add_figures(report, phases)
    return report


def add_figures(report: Report, phases: list[Phase]) -> None:
    def of(flood: str, pick: Any) -> float:
        return median([pick(p) for p in phases if p.flood == flood])

    alone = of("alone", lambda p: median(p.events_ms))
    alone_check = of("alone", lambda p: median(p.checks_ms))
    report.add(info("B alone: POST /events, median", alone, "ms"))
    report.add(info("B alone: POST /check, median", alone_check, "ms"))
    for flood in ("check", "events"):
        events = of(flood, lambda p: median(p.events_ms))
        checks = of(flood, lambda p: median(p.checks_ms))
        rate = of(flood, lambda p: p.flood_events / p.seconds)
        events_p95 = of(flood, lambda p: percentile(p.events_ms, 95))
        checks_p95 = of(flood, lambda p: percentile(p.checks_ms, 95))
        report.add(
            at_most(
                f"{flood} flood: B's POST /events, median",
                events,
                "ms",
                TARGET_MS,
                f"{events / alone:.0f}x alone; p95 {events_p95:.0f} ms",
            )
        )
        report.add(
            at_most(
                f"{flood} flood: B's POST /check, median",
                checks,
                "ms",
                TARGET_MS,
                f"{checks / alone_check:.0f}x alone; p95 {checks_p95:.0f} ms",
            )
        )
        report.add(info(f"{flood} flood: A's events answered", rate, "events/s"))
    report.details["phases"] = [
        {
            "flood": p.flood,
            "b_events_ms": [round(v, 2) for v in p.events_ms],
            "b_checks_ms": [round(v, 2) for v in p.checks_ms],
            "a_events": p.flood_events,
            "seconds": p.seconds,
        }
        for p in phases
    ]


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--a-per-minute", type=int, default=0)
    args = parser.parse_args()
    finish(run(args), args.json)


if __name__ == "__main__":
    main()
