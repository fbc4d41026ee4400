"""End to end through a real Kafka broker with one worker, against a bare aiokafka consumer.

    python -m bench.kafka [--events N] [--quick] [--json]

A broker is started from the project's jars (tools/kafka), or `ACCROCHAGE_TEST_KAFKA=host:port`
names one. N generated events are produced to a fresh topic (8 partitions, keyed by
certifier). In the same run: a bare aiokafka consumer reads them all (the baseline); then
`accrochage worker` consumes them into the state and writes every batch to XSD-checked files.
The worker's figure counts from its first stored record to the last file written, and is
also given with its start-up (joining the group). Target: >= 3,000 events/s.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from accrochage.generate import generate_events
from bench._common import (
    ROOT,
    Report,
    at_least,
    base_parser,
    clean_env,
    finish,
    free_port,
    generated_certifiers,
    info,
    paris_today,
    scratch_dir,
    write_config,
)

TARGET_EVENTS_PER_S = 3_000
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


def run_worker(
    folder: Path, bootstrap: str, topic: str, count: int, timeout: float
) -> tuple[float, float]:
    config = write_config(
        folder, max_records=1000, bind=f"127.0.0.1:{free_port()}", tick="1s", max_delay="1s"
    )
    with config.open("a", encoding="utf-8") as handle:
        handle.write(
            f'\n[kafka]\nbootstrap = "{bootstrap}"\ntopic = "{topic}"\n'
            f'rejected_topic = "{topic}.rejected"\npartitions = {PARTITIONS}\n'
            f'group = "bench-{uuid.uuid4()}"\nsession_timeout = "6s"\n'
        )
    log = (folder / "worker.log").open("wb")
    started = time.perf_counter()
    worker = subprocess.Popen(
        [
            sys.executable,
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
    first = None
    try:
        while True:
            if time.perf_counter() - started > timeout or worker.poll() is not None:
                raise RuntimeError(f"worker did not finish; see {folder / 'worker.log'}")
            stored, unwritten, written = progress(folder / "state.db")
            if stored and first is None:
                first = time.perf_counter()
            if stored >= count and unwritten == 0 and written >= count:
                done = time.perf_counter()
                break
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(60)
        log.close()
    assert first is not None
    return done - first, done - started


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="events (default 100,000)")
    args = parser.parse_args()
    count = args.events or (5_000 if args.quick else 100_000)
    sys.path.insert(0, str(ROOT))
    from tests.support.kafka_broker import KafkaBroker, ensure_jars

    today = paris_today()
    lines = [
        json.dumps(e, ensure_ascii=False).encode()
        for e in generate_events(count, generated_certifiers(), today=today, seed=3)
    ]
    topic = f"bench.{uuid.uuid4().hex[:8]}"
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
            worker_dir = folder / "worker"
            worker_dir.mkdir()
            worker_s, with_start_s = run_worker(worker_dir, bootstrap, topic, count, 1800)
        finally:
            if broker is not None:
                broker.stop()
    report = Report("kafka", args.quick, {"events": count, "partitions": PARTITIONS})
    report.add(
        at_least(
            "worker end to end events/s",
            count / worker_s,
            "events/s",
            TARGET_EVENTS_PER_S,
            "first record stored -> last file written",
        )
    )
    report.add(
        info(
            "worker incl. start-up events/s",
            count / with_start_s,
            "events/s",
            "process start, group join, then all of the above",
        )
    )
    report.add(info("bare aiokafka consumer events/s", count / bare_s, "events/s", "baseline"))
    report.add(info("ratio worker / bare consumer", bare_s / worker_s, "x"))
    report.add(info("produce events/s", count / produce_s, "events/s", "acks=all"))
    finish(report, args.json)


if __name__ == "__main__":
    main()
