"""End to end through a real Kafka broker with one worker, against a bare aiokafka consumer
and against the embedded ingest of the same events.

    python -m bench.kafka [--events N] [--repeat R] [--quick] [--json]

A broker is started from the project's jars (tools/kafka), or `ACCROCHAGE_TEST_KAFKA=host:port`
names one. N generated events are produced to a fresh topic (8 partitions, keyed by
certifier). In the same run: a bare aiokafka consumer reads them all (the baseline); the
same events go through `accrochage ingest FILE` (spawn to exit, its CPU seconds); then
`accrochage worker` consumes them into the state and writes every batch to XSD-checked files.
The worker's store rate counts from its first stored record to its last (the state polled
every 50 ms), its end-to-end figure to the last file written, and both have the CPU seconds
of the worker's processes over that span (/proc; the store span's also by process: faust's,
the writer, its decode processes, the render processes, and from the worker's `/metrics` the
share of it its writer process waited for the state and held it, and faust's process's batch
cut held it); also given with its start-up
(joining the group). R paired rounds (default 3, 1 with --quick), each an `ingest` then a
worker on fresh states over the same topic: the ratio is the median of the rounds' ratios,
the other figures the median round's. Targets: end to end >= 3,000 events/s; store rate >= 0.9x the
embedded ingest's (issue 13).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from accrochage.generate import generate_events
from accrochage.settings import load_settings
from bench._common import (
    PYTHON,
    ROOT,
    BenchError,
    Measured,
    Report,
    accrochage_command,
    at_least,
    base_parser,
    clean_env,
    finish,
    free_port,
    generated_certifiers,
    info,
    launch,
    lock_times,
    median,
    paris_today,
    run_measured,
    scratch_dir,
    stop_measured,
    tree_cpu_by_process,
    tree_cpu_seconds,
    tree_total,
    write_config,
)

TARGET_EVENTS_PER_S = 3_000
TARGET_RATIO = 0.9
"""The worker's store rate / the embedded ingest's of the same events (issue 13)."""
PARTITIONS = 8


async def produce(bootstrap: str, topic: str, lines: list[bytes]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    start = time.perf_counter()
    try:
        futures = [
            await producer.send(topic, line, key=json.loads(line)["certifier"].encode())
            for line in lines
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - start


async def bare_consume(bootstrap: str, topic: str, expected: int, timeout: float) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, start = 0, time.perf_counter()
    try:
        while seen < expected:
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"bare consumer read {seen}/{expected} in {timeout} s")
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()
    return time.perf_counter() - start


def progress(state: Path) -> tuple[int, int, int]:
    """(records stored, batches still to write, passages in written files)."""
    if not state.exists():
        return 0, 0, 0
    conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=30)
    try:
        stored = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        unwritten = conn.execute(
            "SELECT count(*) FROM batches WHERE state != 'written'"
        ).fetchone()[0]
        written = conn.execute(
            "SELECT coalesce(sum(passages), 0) FROM batches WHERE state = 'written'"
        ).fetchone()[0]
        return stored, unwritten, written
    except sqlite3.OperationalError:
        return 0, 0, 0
    finally:
        conn.close()


@dataclass
class WorkerRun:
    """`accrochage worker` over the topic, timed from its own progress in the state."""

    stored_s: float
    """First record stored -> the last record stored (the store rate)."""
    end_to_end_s: float
    """First record stored -> the last file written."""
    with_start_s: float
    """Process start -> the last file written."""
    stored_cpu: float | None
    """CPU seconds of the worker's processes while it stored (first -> last record)."""
    end_to_end_cpu: float | None
    run_cpu: float
    """Every process of the worker over its whole run (start-up and shut-down included)."""
    processes: int
    peak_rss_mb: float
    stored_cpu_by_role: dict[str, float]
    """`stored_cpu` by the processes' roles (`role`)."""
    lock: dict[str, dict[str, float]]
    """The write lock's series over the store span, by process (`lock_times`): the writer
    process's transactions, faust's process's (the batch cut)."""


Tree = dict[int, tuple[int, int, float]]
"""pid -> (parent, depth under the worker, CPU seconds): `tree_cpu_by_process`'s reading."""


def role(pid: int, tree: Tree) -> str:
    """A worker process's role, from its place in the tree: faust's process at the top (the
    consumer and the batch timer), a fork server under it; there, the writer process (the one
    with processes of its own) and the render processes; under the writer, its decode
    processes."""
    _, depth, _ = tree[pid]
    if depth == 0:
        return "faust process (consumer, batch cut)"
    if depth == 1:
        return "fork server"
    if depth == 2:
        parents = {parent for parent, _, _ in tree.values()}
        return "writer process (storing)" if pid in parents else "render processes"
    return "decode processes"


def cpu_by_role(before: Tree, after: Tree) -> dict[str, float]:
    """The CPU seconds each role spent between two readings of the tree."""
    spent: dict[str, float] = {}
    for pid, (_, _, cpu) in after.items():
        earlier = before.get(pid, (0, 0, 0.0))[2]
        name = role(pid, after)
        spent[name] = spent.get(name, 0.0) + cpu - earlier
    return dict(sorted(spent.items(), key=lambda item: -item[1]))


def kafka_config(folder: Path, bootstrap: str, topic: str) -> Path:
    config = write_config(
        folder, max_records=1000, bind=f"127.0.0.1:{free_port()}", tick="1s", max_delay="1s"
    )
    with config.open("a", encoding="utf-8") as handle:
        handle.write(
            f'\n[kafka]\nbootstrap = "{bootstrap}"\ntopic = "{topic}"\n'
            f'rejected_topic = "{topic}.rejected"\npartitions = {PARTITIONS}\n'
            f'group = "bench-{uuid.uuid4()}"\nsession_timeout = "6s"\n'
        )
    return config


def run_ingest(folder: Path, lines: list[bytes], bootstrap: str, topic: str) -> Measured:
    """The embedded `accrochage ingest` of the same events (same configuration), measured."""
    events = folder / "events.jsonl"
    with events.open("wb") as out:
        for line in lines:
            out.write(line + b"\n")
    config = kafka_config(folder, bootstrap, topic)
    done = run_measured(
        [*accrochage_command(), "--config", str(config), "ingest", str(events)],
        cwd=folder,
        env=clean_env(),
    )
    if done.returncode != 0:
        raise BenchError(f"ingest failed ({done.returncode}):\n{done.stderr[-3000:]}")
    stored = progress(folder / "state.db")[0]
    if stored != len(lines):
        raise BenchError(f"ingest stored {stored} records of {len(lines)}")
    return done


def run_worker(folder: Path, bootstrap: str, topic: str, count: int, timeout: float) -> WorkerRun:
    config = kafka_config(folder, bootstrap, topic)
    log = (folder / "worker.log").open("wb")
    started = time.perf_counter()
    worker = launch(
        [
            PYTHON,
            "-m",
            "accrochage",
            "--config",
            str(config),
            "worker",
            "--log-level",
            "WARNING",
        ],
        cwd=folder,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    first = all_stored = None
    cpu_first = cpu_stored = cpu_done = None
    tree_first: Tree = {}
    tree_stored: Tree = {}
    base = f"http://{load_settings(config).api.bind}"
    lock_first: dict[str, dict[str, float]] = {}
    lock_stored: dict[str, dict[str, float]] = {}
    try:
        pid = worker.pid
        while True:
            if time.perf_counter() - started > timeout or worker.proc.poll() is not None:
                raise BenchError(f"worker did not finish; see {folder / 'worker.log'}")
            stored, unwritten, written = progress(folder / "state.db")
            if stored and first is None:
                first, tree_first = time.perf_counter(), tree_cpu_by_process(pid)
                cpu_first = tree_total(tree_first)
                lock_first = lock_times(base)
            if stored >= count and all_stored is None:
                all_stored, tree_stored = time.perf_counter(), tree_cpu_by_process(pid)
                cpu_stored = tree_total(tree_stored)
                lock_stored = lock_times(base)
            if stored >= count and unwritten == 0 and written >= count:
                done, cpu_done = time.perf_counter(), tree_cpu_seconds(pid)
                break
            time.sleep(0.05)
    finally:
        outcome = stop_measured(worker)
        log.close()
    assert first is not None and all_stored is not None

    def spent(before: float | None, after: float | None) -> float | None:
        return None if before is None or after is None else after - before

    return WorkerRun(
        all_stored - first,
        done - first,
        done - started,
        spent(cpu_first, cpu_stored),
        spent(cpu_first, cpu_done),
        outcome["tree_cpu_seconds"],
        outcome["processes"],
        outcome["peak_rss_mb"],
        cpu_by_role(tree_first, tree_stored),
        {
            process: {k: v - lock_first[process][k] for k, v in series.items()}
            for process, series in lock_stored.items()
        },
    )


def cpu_text(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.1f} s"


def run_round(
    folder: Path, lines: list[bytes], bootstrap: str, topic: str, count: int
) -> tuple[Measured, WorkerRun]:
    """One paired round: `accrochage ingest` of the events, then a worker over the topic."""
    ingest_dir = folder / "ingest"
    ingest_dir.mkdir()
    ingest = run_ingest(ingest_dir, lines, bootstrap, topic)
    worker_dir = folder / "worker"
    worker_dir.mkdir()
    return ingest, run_worker(worker_dir, bootstrap, topic, count, 1800)


def listed(values: list[float], digits: int = 3) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="events (default 100,000)")
    parser.add_argument("--repeat", type=int, help="paired rounds (default 3, 1 with --quick)")
    args = parser.parse_args()
    count = args.events or (5_000 if args.quick else 100_000)
    rounds = max(1, args.repeat if args.repeat is not None else (1 if args.quick else 3))
    sys.path.insert(0, str(ROOT))
    from tests.support.kafka_broker import KafkaBroker, ensure_jars

    today = paris_today()
    lines = [
        json.dumps(e, ensure_ascii=False).encode()
        for e in generate_events(count, generated_certifiers(), today=today, seed=3)
    ]
    topic = f"bench.{uuid.uuid4().hex[:8]}"
    runs: list[tuple[Measured, WorkerRun]] = []
    with scratch_dir("kafka") as folder:
        broker = None
        bootstrap = os.environ.get("ACCROCHAGE_TEST_KAFKA")
        if not bootstrap:
            ensure_jars()
            broker = KafkaBroker(folder / "broker")
            broker.start()
            bootstrap = broker.bootstrap
        try:
            from accrochage.runtimes.kafka.admin import ensure_topics

            asyncio.run(
                ensure_topics(bootstrap, {topic: PARTITIONS, f"{topic}.rejected": PARTITIONS})
            )
            produce_s = asyncio.run(produce(bootstrap, topic, lines))
            bare_s = asyncio.run(bare_consume(bootstrap, topic, count, timeout=600))
            for number in range(rounds):
                round_dir = folder / f"round-{number + 1}"
                round_dir.mkdir()
                runs.append(run_round(round_dir, lines, bootstrap, topic, count))
                shutil.rmtree(round_dir)  # two states and an outbox: ~1 GB at 100,000 events
        finally:
            if broker is not None:
                broker.stop()
    report = Report(
        "kafka", args.quick, {"events": count, "partitions": PARTITIONS, "repeat": rounds}
    )
    ratios = [ingest.seconds / worker.stored_s for ingest, worker in runs]
    middle = sorted(range(rounds), key=ratios.__getitem__)[rounds // 2]
    ingest, worker = runs[middle]
    report.add(
        info(
            "worker store rate events/s",
            count / worker.stored_s,
            "events/s",
            f"the median round: first record stored -> last record stored, "
            f"{worker.stored_s:.1f} s; CPU {cpu_text(worker.stored_cpu)} (all its processes, "
            f"/proc); rounds {listed([count / w.stored_s for _, w in runs], 0)}",
        )
    )
    report.add(
        info(
            "  embedded ingest of the same events/s",
            count / ingest.seconds,
            "events/s",
            f"`accrochage ingest FILE`, same configuration, spawn to exit, {ingest.seconds:.1f} s;"
            f" CPU {ingest.tree_cpu_seconds:.1f} s ({ingest.processes} process(es)); rounds "
            f"{listed([count / i.seconds for i, _ in runs], 0)}",
        )
    )
    report.add(
        at_least(
            "ratio worker store rate / embedded ingest",
            median(ratios),
            "x",
            TARGET_RATIO,
            f"median of {rounds} paired round(s) ({listed(ratios)}): same events, same run",
        )
    )
    if all(w.stored_cpu for _, w in runs):
        cpu_ratios = [i.tree_cpu_seconds / (w.stored_cpu or 1.0) for i, w in runs]
        report.add(
            info(
                "  ratio CPU ingest / worker while it stores",
                median(cpu_ratios),
                "x",
                f"median ({listed(cpu_ratios)}); steadier than wall time on a busy machine; the "
                "worker's span also holds the batch timer's cuts and files (max_delay 1 s), "
                "which ingest does not do",
            )
        )
    by_role = ", ".join(f"{name} {cpu:.1f} s" for name, cpu in worker.stored_cpu_by_role.items())
    report.add(
        info(
            "  worker CPU while it stores, by process",
            sum(worker.stored_cpu_by_role.values()),
            "s",
            f"the median round, by each process's place in the tree: {by_role}; `ingest` "
            "decodes and stores alike, but cuts no batch and writes no file meanwhile",
        )
    )
    writer, service = worker.lock["writer"], worker.lock["service"]
    report.add(
        info(
            "  the writer process waiting for the state",
            100 * writer["waited"] / worker.stored_s,
            "%",
            f"the median round's store span (the worker's /metrics): it held the state "
            f"{100 * writer['held'] / worker.stored_s:.0f} % in {writer['transactions']:,.0f} "
            f"transactions, and faust's process (the batch cut) "
            f"{100 * service['held'] / worker.stored_s:.0f} % in "
            f"{service['transactions']:,.0f}; other rounds waiting "
            f"{listed([100 * w.lock['writer']['waited'] / w.stored_s for _, w in runs], 1)} %",
        )
    )
    end_to_end = [count / w.end_to_end_s for _, w in runs]
    report.add(
        at_least(
            "worker end to end events/s",
            median(end_to_end),
            "events/s",
            TARGET_EVENTS_PER_S,
            f"median ({listed(end_to_end, 0)}); first record stored -> last file written; the "
            f"median round {worker.end_to_end_s:.1f} s, CPU {cpu_text(worker.end_to_end_cpu)}",
        )
    )
    report.add(
        info(
            "worker incl. start-up events/s",
            count / worker.with_start_s,
            "events/s",
            f"the median round: process start, group join, then all of the above; CPU over the "
            f"whole run {worker.run_cpu:.1f} s, {worker.processes} processes, peak RSS "
            f"{max(w.peak_rss_mb for _, w in runs):.0f} MiB (largest, all rounds)",
        )
    )
    report.add(info("bare aiokafka consumer events/s", count / bare_s, "events/s", "baseline"))
    report.add(info("ratio worker / bare consumer", bare_s / worker.end_to_end_s, "x"))
    report.add(info("produce events/s", count / produce_s, "events/s", "acks=all"))

    report.details = {
        "worker": vars(worker),
        "ingest": {k: v for k, v in vars(ingest).items() if k not in ("stderr", "stdout")},
    }
    finish(report, args.json)


if __name__ == "__main__":
    main()
