"""HTTP ingestion: `accrochage run` under a load generator that is not the bottleneck.

    python -m bench.http [--events N] [--repeat R] [--clients 8] [--threads 2]
                         [--generator auto|wrk|python] [--batch 100] [--quick] [--json]

The service runs in a subprocess (configuration in a temporary folder, no token: a
loopback-only service, 127.0.0.1 on a free port, its batch timer on as in production). The
load comes from `wrk` (Debian's package) when it is installed: 2 threads, 8 connections, a Lua
script posting one pre-generated event per request, every body once (unique record ids);
otherwise from 2 client processes, each with its own aiohttp sessions (8 connections in
all). Phases: a warm-up, R phases of N events one per request (default R = 3, N = 20,000;
the median counts), then N other events as arrays of 100. Baselines in the same run, driven by
the same generator with the same bodies (`bench/http_baselines.py`): a trivial aiohttp
handler (reads the body, answers 201 with a small JSON body), a durable one (the same,
answering once the body is committed in SQLite with group commit: the storing stage's
floor), and a decoding one (the durable one, decoding each event first as the service does:
the ceiling of any design that decodes where it serves and acknowledges only what is
durable). Afterwards the state must hold exactly the events answered 201 (records counted in
the stopped service's database), and each baseline's table one body per request it
answered, or the bench exits non-zero. Printed: requests/s of all four, the ratio of the
service's to the trivial one's (target >= 0.3), to the durable one's and to the decoding
one's, the decoding one's to the trivial one's, the CPU seconds of the service's processes
per phase (/proc) and of the load generator, and how much of each phase the service's writer
process held the state (its `/metrics`: near 100 %, storing is the bound). Target: >= 1,000
events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import shutil
import signal
import sqlite3
import subprocess
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

from accrochage.generate import generate_events
from bench._common import (
    PYTHON,
    ROOT,
    BenchError,
    Metric,
    Report,
    accrochage_command,
    at_least,
    base_parser,
    children_cpu_seconds,
    clean_env,
    cpu_seconds,
    finish,
    free_port,
    generated_certifiers,
    info,
    launch,
    lock_times,
    median,
    paris_today,
    print_profile,
    proc_cpu_seconds,
    scratch_dir,
    stop_measured,
    tree_cpu_seconds,
    write_config,
)
from bench.http_baselines import scenario_durable, scenario_trivial

TARGET_EVENTS_PER_S = 1_000
SCHEMA = "1.1.2"
"""The service's schema, in which the decoding baseline renders passages too."""
TARGET_RATIO = 0.3
"""One event per request: the service's requests/s against the trivial handler's (issue 13)."""
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


# -- the service under cProfile (--profile) ---------------------------------------------------


def scenario_service(config: Path) -> None:
    """`accrochage run` in-process, each busy thread under its own profiler.

    The writer runs as a thread here (`separate_writer=False`), not in the process of its own
    `accrochage run` gives it, so that these profilers see it: the figures are the thread
    design's (py-spy on the writer process profiles the shipped one). cProfile sees one
    thread only, so the group writer's Ingestor.ingest and the timer's
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
        run_service(core, separate_writer=False)
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


# -- the load generator: wrk, or several client processes --------------------------------------

# wrk (Debian's package) with this script: each of its threads takes every n-th body of the
# file (so each body is sent once), posts them one per request on its connections, counts
# the answers (201, or in an array's answer each `"http_status": 201`), and when all its
# bodies are answered writes `<marker>.<thread>` (start and end in ns, counts) and stops.
# A connection whose thread has no body left sends `GET /bench-idle` (a 404 on both servers,
# ignored) every 50 ms until then; so does each thread's first request (wrk calls thread 0's
# request() once before it runs, to check it, and throws the request away). wrk itself
# sleeps for its -d duration whatever its threads do: the bench interrupts it (SIGINT) once
# every marker is written, and times the phase from the threads' own clocks (after their
# file is read) to their last answer.
WRK_SCRIPT = r"""
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local function now()
  local handle = io.popen("date +%s%N")
  local text = handle:read("*l")
  handle:close()
  return text
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  marker, arrays = args[3] .. "." .. id, args[4] == "array"
  bodies = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then bodies[#bodies + 1] = line end
    i = i + 1
  end
  share, sent, answered, created, other, statuses = #bodies, 0, 0, 0, 0, ""
  headers = {["Content-Type"] = "application/json"}
  idle = wrk.format("GET", "/bench-idle")
  finished, primed = false, false
  started = now()
end

local function finish()
  if finished then return end
  finished = true
  local out = io.open(marker .. ".tmp", "w")
  out:write(string.format("%s %s %d %d %d %d%s\n", started, now(), share, answered, created,
                          other, statuses))
  out:close()
  os.rename(marker .. ".tmp", marker)
  wrk.thread:stop()
end

function delay()
  if sent < share then return 0 end
  return 50
end

function request()
  if not primed then  -- wrk calls thread 0's request() once to verify it, and discards it
    primed = true
    return idle
  end
  if sent < share then
    sent = sent + 1
    return wrk.format("POST", "/events", headers, bodies[sent])
  end
  if share == 0 then finish() end
  return idle
end

function response(status, hdrs, body)
  if status == 404 then return end  -- an idle request: POST /events never answers 404
  answered = answered + 1
  if status == 201 then
    created = created + 1
  elseif status == 200 and arrays then
    local _, n = body:gsub('"http_status": 201', "")
    created = created + n
  else
    other = other + 1
    if #statuses < 200 then statuses = statuses .. " " .. status end
  end
  if answered >= share then finish() end
end
"""


@dataclass
class Load:
    """One phase driven by the load generator: answers counted, times from its own clocks."""

    name: str
    requests: int
    events: int
    created: int
    """Events answered 201 (a 201 answer, or `"http_status": 201` inside an array's answer)."""
    other: list[int]
    """Statuses of the requests answered otherwise."""
    seconds: float
    server_cpu: float | None
    generator_cpu: float
    writer: dict[str, float] | None = None
    """The service's events' writer process over the phase, from its `/metrics`: its
    transactions, the seconds it held the state and waited for it (`lock_times`)."""

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def write_bodies(path: Path, payloads: Sequence[bytes]) -> Path:
    with path.open("wb") as out:
        for body in payloads:
            out.write(body.replace(b"\n", b" ") + b"\n")
    return path


def run_wrk(
    base: str,
    server_pid: int,
    bodies_file: Path,
    requests: int,
    *,
    threads: int,
    connections: int,
    arrays: bool,
    timeout: float,
) -> tuple[list[list[str]], float | None, float]:
    """(each thread's marker fields, server CPU, wrk's CPU): one phase under wrk."""
    folder = bodies_file.parent
    script = folder / "post_events.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    marker = folder / f"{bodies_file.stem}.done"
    for old in folder.glob(f"{marker.name}.*"):
        old.unlink()
    threads = max(1, min(threads, connections))
    command = [
        shutil.which("wrk") or "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(timeout) + 60}s",
        f"--timeout={int(timeout)}s",
        "-s",
        str(script),
        f"{base}/events",
        "--",
        str(bodies_file),
        str(threads),
        str(marker),
        "array" if arrays else "single",
    ]
    children_before = children_cpu_seconds()
    server_before = tree_cpu_seconds(server_pid)
    with (folder / f"{bodies_file.stem}.wrk.log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        try:
            while len(list(folder.glob(f"{marker.name}.[0-9]*"))) < threads:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(
                        f"wrk did not answer all {requests} requests of {bodies_file.name} "
                        f"within {timeout:.0f} s (exit {proc.returncode}); the count cannot "
                        "be verified"
                    )
                time.sleep(0.02)
        finally:
            server_after = tree_cpu_seconds(server_pid)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    generator_cpu = children_cpu_seconds() - children_before
    fields = [(folder / f"{marker.name}.{i}").read_text().split() for i in range(threads)]
    server_cpu = (
        None if server_before is None or server_after is None else server_after - server_before
    )
    return fields, server_cpu, generator_cpu


def wrk_load(
    name: str,
    base: str,
    server_pid: int,
    bodies_file: Path,
    requests: int,
    events: int,
    args: argparse.Namespace,
    arrays: bool,
) -> Load:
    fields, server_cpu, generator_cpu = run_wrk(
        base,
        server_pid,
        bodies_file,
        requests,
        threads=args.threads,
        connections=args.clients,
        arrays=arrays,
        timeout=args.timeout,
    )
    starts = [int(f[0]) for f in fields]
    ends = [int(f[1]) for f in fields]
    answered = sum(int(f[3]) for f in fields)
    if sum(int(f[2]) for f in fields) != requests or answered != requests:
        raise BenchError(f"wrk answered {answered} of {requests} requests of {name}")
    return Load(
        name,
        requests,
        events,
        sum(int(f[4]) for f in fields),
        [int(status) for f in fields for status in f[6:]],
        (max(ends) - min(starts)) / 1e9,
        server_cpu,
        generator_cpu,
    )


async def _client_share(
    url: str, payloads: Sequence[bytes], connections: int, arrays: bool
) -> tuple[int, list[int]]:
    created, other = 0, []
    pending = iter(payloads)
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for _ in range(connections)
    ]

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal created
        for body in pending:
            async with session.post(url, data=body, headers=HEADERS) as response:
                text = await response.read()
                if response.status == 201:
                    created += 1
                elif response.status == 200 and arrays:
                    created += text.count(b'"http_status": 201')
                else:
                    other.append(response.status)

    try:
        await asyncio.gather(*(client(s) for s in sessions))
    finally:
        for session in sessions:
            await session.close()
    return created, other


def _client_process(
    url: str,
    bodies_file: str,
    index: int,
    processes: int,
    connections: int,
    arrays: bool,
    barrier: Any,
    results: Any,
) -> None:
    """One client process of the fallback generator: its share of the bodies."""
    with open(bodies_file, "rb") as handle:
        mine = [line.rstrip(b"\n") for i, line in enumerate(handle) if i % processes == index]
    barrier.wait()
    start, cpu = time.monotonic(), cpu_seconds()
    created, other = asyncio.run(_client_share(url, mine, connections, arrays))
    results.put((index, start, time.monotonic(), created, other, cpu_seconds() - cpu))


def python_load(
    name: str,
    base: str,
    server_pid: int,
    bodies_file: Path,
    requests: int,
    events: int,
    args: argparse.Namespace,
    arrays: bool,
) -> Load:
    """The fallback: `--threads` client processes sharing `--clients` connections."""
    context = multiprocessing.get_context("spawn")
    processes = max(1, min(args.threads, args.clients))
    per_process = [
        args.clients // processes + (1 if i < args.clients % processes else 0)
        for i in range(processes)
    ]
    barrier = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=_client_process,
            args=(
                f"{base}/events",
                str(bodies_file),
                i,
                processes,
                per_process[i],
                arrays,
                barrier,
                results,
            ),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=120)
    server_before = tree_cpu_seconds(server_pid)
    done = [results.get(timeout=args.timeout) for _ in workers]
    server_after = tree_cpu_seconds(server_pid)
    for worker in workers:
        worker.join(30)
    return Load(
        name,
        requests,
        events,
        sum(d[3] for d in done),
        [status for d in done for status in d[4]],
        max(d[2] for d in done) - min(d[1] for d in done),
        None if server_before is None or server_after is None else server_after - server_before,
        sum(d[5] for d in done),
    )


@dataclass
class Plan:
    """The phases of one server's run: their names, body files, request and event counts."""

    warmup: Path
    single: list[Path]
    arrays: Path
    count: int
    array_events: int
    warmup_count: int


def make_plan(folder: Path, count: int, batch: int, clients: int, repeat: int) -> Plan:
    """Body files: a warm-up, `repeat` phases of `count` single events, one of arrays; every
    record id distinct across all of them."""
    warmup = WARMUP_PER_CLIENT * clients
    total = warmup + (repeat + 1) * count
    events = [
        json.dumps(e, ensure_ascii=False).encode()
        for e in generate_events(total, generated_certifiers(), today=paris_today(), seed=5)
    ]
    singles = [
        write_bodies(
            folder / f"single-{r}.jsonl",
            events[warmup + r * count : warmup + (r + 1) * count],
        )
        for r in range(repeat)
    ]
    rest = events[warmup + repeat * count :]
    arrays = [b"[" + b",".join(rest[i : i + batch]) + b"]" for i in range(0, len(rest), batch)]
    return Plan(
        write_bodies(folder / "warmup.jsonl", events[:warmup]),
        singles,
        write_bodies(folder / "arrays.jsonl", arrays),
        count,
        len(rest),
        warmup,
    )


def drive_server(
    command: list[str],
    cwd: Path,
    log: Path,
    port: int,
    args: argparse.Namespace,
    plan: Plan,
    *,
    writer: bool = False,
) -> tuple[list[Load], dict[str, Any]]:
    """Start a server, run every phase of the plan against it, stop it. `writer`: the server
    is the service, whose writer process's times each phase reads from `/metrics`."""
    base = f"http://127.0.0.1:{port}"
    generate = wrk_load if args.generator == "wrk" else python_load

    def load(*phase: Any) -> Load:
        before = lock_times(base)["writer"] if writer else None
        done = generate(*phase)
        if before is not None:
            after = lock_times(base)["writer"]
            done.writer = {k: after[k] - before[k] for k in after}
        return done

    arrays_requests = -(-plan.array_events // args.batch)
    with log.open("wb") as out:
        server = launch(command, cwd=cwd, env=clean_env(), stdout=out, stderr=out)
    try:
        wait_healthy(base, server.proc, log)
        pid = server.pid
        warm = plan.warmup_count
        phases = [load("warm-up", base, pid, plan.warmup, warm, warm, args, False)]
        for number, bodies_file in enumerate(plan.single, 1):
            phases.append(
                load(
                    f"one event per request #{number}",
                    base,
                    pid,
                    bodies_file,
                    plan.count,
                    plan.count,
                    args,
                    False,
                )
            )
        phases.append(
            load(
                f"arrays of {args.batch}",
                base,
                pid,
                plan.arrays,
                arrays_requests,
                plan.array_events,
                args,
                True,
            )
        )
    finally:
        done = stop_measured(server)
    if done["returncode"] not in (0, -15):
        raise BenchError(f"the server exited with {done['returncode']}:\n{log.read_text()[-3000:]}")
    return phases, done


def count_records(state: Path) -> tuple[int, int]:
    """(records, invalid records) in the stopped service's state, read directly."""
    conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        records = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        invalid = conn.execute("SELECT count(*) FROM records WHERE status = 'invalid'").fetchone()[
            0
        ]
        return int(records), int(invalid)
    finally:
        conn.close()


def count_bodies(database: Path) -> int:
    """Bodies the stopped durable baseline stored."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM bodies").fetchone()[0])
    finally:
        conn.close()


def paired_ratio(these: list[Load], those: list[Load]) -> float:
    """The median, over phases run side by side, of one server's requests/s to another's."""
    return median([a.requests_per_s / b.requests_per_s for a, b in zip(these, those, strict=True)])


def _baseline_row(name: str, phases: list[Load], what: str) -> Metric:
    """The row of a baseline server beside the trivial one: its requests/s and CPU."""
    return info(
        f"  baseline {name} server req/s",
        median([p.requests_per_s for p in phases]),
        "req/s",
        f"median of {len(phases)} ({', '.join(f'{p.requests_per_s:,.0f}' for p in phases)}); "
        f"{what}; server CPU {median([p.server_cpu or 0.0 for p in phases]):.1f} s",
    )


def writer_row(phases: list[Load]) -> Metric:
    """How much of each phase the writer process held the state: near 100 %, storing is the
    bound; far below, the serving process (HTTP, decoding) is."""
    shares = [p.writer["held"] / p.seconds for p in phases if p.writer]
    if not shares:
        return info("  writer process, state held", float("nan"), "%", "no /metrics figures")
    writers = [p.writer for p in phases if p.writer]
    transactions = sum(w["transactions"] for w in writers)
    events = sum(p.events for p in phases if p.writer)
    held = sum(w["held"] for w in writers)
    waited = median([w["waited"] / p.seconds for p, w in zip(phases, writers, strict=True)])
    return info(
        "  writer process, state held",
        100 * median(shares),
        "%",
        f"of each phase (median; {', '.join(f'{100 * s:.0f}' for s in shares)}), from the "
        f"service's /metrics: {events / max(transactions, 1):.1f} events a transaction, "
        f"{1e3 * held / max(transactions, 1):.2f} ms each; waiting for the state "
        f"{100 * waited:.1f} % (the service's batch cut)",
    )


def cpu_text(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.1f} s"


# -- the parent ------------------------------------------------------------------------------


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="events per phase (default 20,000)")
    parser.add_argument("--batch", type=int, default=100, help="events per array")
    parser.add_argument("--clients", type=int, default=8, help="connections (default 8)")
    parser.add_argument(
        "--threads", type=int, default=2, help="wrk threads, or client processes (default 2)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="phases of one event per request on each server; the median counts "
        "(default 3, 1 with --quick)",
    )
    parser.add_argument(
        "--generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="the load generator: wrk when installed (auto), or client processes",
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds allowed per phase (default 900)"
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario == "trivial":
        return scenario_trivial(args.port)
    if args.scenario == "durable":
        return scenario_durable(args.port, args.database)
    if args.scenario == "decoding":
        return scenario_durable(args.port, args.database, SCHEMA)
    if args.scenario == "service":
        return scenario_service(args.config)
    if args.generator == "auto":
        args.generator = "wrk" if shutil.which("wrk") else "python"
    elif args.generator == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    count = args.events or (400 if args.quick else 20_000)
    repeat = max(1, args.repeat or (1 if args.quick else 3))
    generator = (
        f"wrk {args.threads} threads" if args.generator == "wrk" else f"{args.threads} processes"
    )
    report = Report(
        "http",
        args.quick,
        {
            "events_per_phase": count,
            "connections": args.clients,
            "generator": generator,
            "repeat": repeat,
            "array_size": args.batch,
        },
    )
    with scratch_dir("http") as folder:
        plan = make_plan(folder, count, args.batch, args.clients, repeat)
        port = free_port()
        config = write_config(folder, bind=f"127.0.0.1:{port}", schema=SCHEMA)
        service = [*accrochage_command(), "--config", str(config), "run", "--log-level=WARNING"]
        if args.profile:  # slower: the figures are then for the profile only
            service = [PYTHON, "-m", "bench.http", "--scenario=service", f"--config={config}"]
        log = folder / "service.log"
        where = ROOT if args.profile else folder
        phases, service_run = drive_server(service, where, log, port, args, plan, writer=True)
        if args.profile:
            print(log.read_text(encoding="utf-8", errors="replace"), file=sys.stderr)
        records, invalid = count_records(folder / "state.db")
        trivial_port = free_port()
        trivial = [PYTHON, "-m", "bench.http", "--scenario=trivial", f"--port={trivial_port}"]
        baseline, trivial_run = drive_server(
            trivial, ROOT, folder / "trivial.log", trivial_port, args, plan
        )
        durable_port = free_port()
        durable = [
            PYTHON,
            "-m",
            "bench.http",
            "--scenario=durable",
            f"--port={durable_port}",
            f"--database={folder / 'durable.db'}",
        ]
        durable_phases, _ = drive_server(
            durable, ROOT, folder / "durable.log", durable_port, args, plan
        )
        stored_bodies = count_bodies(folder / "durable.db")
        decoding_port = free_port()
        decoding = [
            PYTHON,
            "-m",
            "bench.http",
            "--scenario=decoding",
            f"--port={decoding_port}",
            f"--database={folder / 'decoding.db'}",
        ]
        decoding_phases, _ = drive_server(
            decoding, ROOT, folder / "decoding.log", decoding_port, args, plan
        )
        decoded_bodies = count_bodies(folder / "decoding.db")

    single = [p for p in phases[1:-1]]
    single_base = [p for p in baseline[1:-1]]
    rate = median([p.requests_per_s for p in single])
    base_rate = median([p.requests_per_s for p in single_base])
    per_phase = ", ".join(f"{p.requests_per_s:,.0f}" for p in single)
    report.add(
        at_least(
            "service, 1 event/request, req/s",
            rate,
            "req/s",
            TARGET_EVENTS_PER_S,
            f"median of {len(single)} ({per_phase}); {count:,} requests each, "
            f"{args.clients} connections, {generator}",
        )
    )
    report.add(
        info(
            "  service CPU, 1 event/request",
            median([p.server_cpu or 0.0 for p in single]),
            "s",
            f"all its processes, per phase of {count:,} (median); "
            f"{1e6 * median([(p.server_cpu or 0.0) / p.events for p in single]):.0f} µs/event; "
            f"load generator {median([p.generator_cpu for p in single]):.1f} s",
        )
    )
    report.add(writer_row(single))
    report.add(
        info(
            "  baseline trivial server req/s",
            base_rate,
            "req/s",
            f"median of {len(single_base)} "
            f"({', '.join(f'{p.requests_per_s:,.0f}' for p in single_base)}); "
            f"server CPU {median([b.server_cpu or 0.0 for b in single_base]):.1f} s, "
            f"load generator {median([b.generator_cpu for b in single_base]):.1f} s",
        )
    )
    report.add(
        at_least(
            "ratio service / trivial req/s",
            paired_ratio(single, single_base),
            "x",
            TARGET_RATIO,
            "median of the paired phases",
        )
    )
    single_durable = durable_phases[1:-1]
    single_decoding = decoding_phases[1:-1]
    report.add(
        _baseline_row(
            "durable",
            single_durable,
            "the trivial handler answering once the body is in SQLite (WAL, synchronous=FULL, "
            "group commit): the storing stage's floor",
        )
    )
    report.add(
        info(
            "  ratio service / durable req/s",
            paired_ratio(single, single_durable),
            "x",
            "median of the paired phases; durable / trivial "
            f"{paired_ratio(single_durable, single_base):.3f}",
        )
    )
    report.add(
        _baseline_row(
            "decoding",
            single_decoding,
            f"the durable handler decoding each event first as the service does (schema {SCHEMA})",
        )
    )
    report.add(
        info(
            "  ratio decoding / trivial req/s",
            paired_ratio(single_decoding, single_base),
            "x",
            "median of the paired phases: the ceiling of a design that decodes where it "
            f"serves and answers once durable, against the target {TARGET_RATIO}",
        )
    )
    report.add(
        info(
            "  ratio service / decoding req/s",
            paired_ratio(single, single_decoding),
            "x",
            "median of the paired phases",
        )
    )
    arrays, arrays_base = phases[-1], baseline[-1]
    report.add(
        info(
            f"service, arrays of {args.batch}, events/s",
            arrays.events_per_s,
            "ev/s",
            f"{arrays.requests:,} requests in {arrays.seconds:.1f} s; server CPU "
            f"{cpu_text(arrays.server_cpu)}; trivial server {arrays_base.requests_per_s:,.0f} "
            f"req/s ({arrays_base.seconds:.2f} s)",
        )
    )
    report.add(
        info(
            "service peak RSS",
            service_run["peak_rss_mb"],
            "MiB",
            f"largest of its {service_run['processes']} process(es); trivial server "
            f"{trivial_run['peak_rss_mb']:.0f}; service CPU over the run, all processes "
            f"{service_run['tree_cpu_seconds']:.1f} s, trivial "
            f"{trivial_run['tree_cpu_seconds']:.1f} s",
        )
    )
    created = sum(p.created for p in phases)
    expected = plan.warmup_count + repeat * count + plan.array_events
    report.add(
        info(
            "records in the state",
            records,
            "records",
            f"answered 201: {created:,}; sent {expected:,}; invalid {invalid}",
        )
    )
    report.details = {
        "service": [vars(p) for p in phases],
        "trivial": [vars(p) for p in baseline],
        "durable": [vars(d) for d in durable_phases],
        "durable_bodies": stored_bodies,
        "decoding": [vars(d) for d in decoding_phases],
        "decoding_bodies": decoded_bodies,
        "records": records,
        "answered_201": created,
    }
    finish(report, args.json)
    failures = sum(len(p.other) for p in (*phases, *baseline, *durable_phases, *decoding_phases))
    durable_requests = sum(d.requests for d in durable_phases)  # all answered 201, or failures
    decoding_requests = sum(d.requests for d in decoding_phases)
    if failures or records != created or created != expected or invalid:
        raise SystemExit(
            f"{failures} requests not answered 201; {records} records in the state for "
            f"{created} answered 201 ({expected} sent), {invalid} invalid"
        )
    if stored_bodies != durable_requests:
        raise SystemExit(
            f"the durable baseline stored {stored_bodies} bodies for {durable_requests} "
            "requests answered 201"
        )
    if decoded_bodies != decoding_requests:
        raise SystemExit(
            f"the decoding baseline stored {decoded_bodies} bodies for {decoding_requests} "
            "requests answered 201"
        )


if __name__ == "__main__":
    main()
