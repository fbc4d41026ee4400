"""Helpers of the worker tests: a config per test, `accrochage worker` processes, the events,
and readers of what a run leaves behind (state, outbox, topics).

Every wait is bounded. Every process started here is killed by the test that started it (in a
`finally`), and dies with the test process anyway (PDEATHSIG on Linux).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from lxml import etree

from accrochage.errors import SchemaValidationError
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.deadline import SystemClock, paris_today
from accrochage.models.decode import decode
from accrochage.settings import Settings, load_settings
from accrochage.settings.registry import registry_from
from accrochage.sinks.gate import check_file
from accrochage.sinks.profiles import NAMESPACE, PROFILES
from tests.support.crash import (
    EXAMPLE_CONFIG,
    child_env,
    cli_command,
    connect_readonly,
    id_techniques,
    leftover_partials,
    outlivers,
    released_files,
)
from tests.support.kafka_broker import _die_with_parent

PARTITIONS = 4
SESSION_TIMEOUT = "3s"
SEED_ENV = "ACCROCHAGE_KAFKA_SEED"
CORRECTED_POSTAL_CODE = "33000"
"""A postal code the generator never uses: a corrected passage is recognisable in the files."""
PASSAGE = f"{{{NAMESPACE}}}passageCertification"
NOT_JSON = "this is not JSON { certification delivered"

# Extra certifiers, on top of the example's two, so that the keys reach all four partitions
# (murmur2: pix 2, demo-school 3, ecole-1 0, cert-b 1, cert-c 3, ecole-2 1).
EXTRA_CERTIFIERS = """
[[certifiers]]
key = "ecole-1"
id_client = "45DEF678"
id_contrat = "MCFCER000301"
certifications = ["RNCP34567"]

[[certifiers]]
key = "cert-b"
id_client = "78GHI901"
id_contrat = "MCFCER000302"
certifications = ["RS6001", "RS6002"]

[[certifiers]]
key = "cert-c"
id_client = "90JKL234"
id_contrat = "MCFCER000303"
certifications = ["RS6100"]

[[certifiers]]
key = "ecole-2"
id_client = "23MNO567"
id_contrat = "MCFCER000304"
certifications = ["RNCP36001", "RNCP36002"]
"""


def seed_from_env(name: str = SEED_ENV) -> int:
    seed = int(os.environ.get(name) or random.randrange(2**32))
    print(f"\nkafka seed: {seed} (replay with {name}={seed})")
    return seed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class WorkerConfig:
    folder: Path
    path: Path
    bootstrap: str
    topic: str
    rejected_topic: str
    group: str
    bind: str

    @property
    def state(self) -> Path:
        return self.folder / "state.db"

    @property
    def outbox(self) -> Path:
        return self.folder / "outbox"

    def settings(self) -> Settings:
        return load_settings(self.path)


def write_worker_config(
    folder: Path,
    bootstrap: str,
    *,
    max_records: int = 500,
    xsd: Path | None = None,
    schema: str | None = None,
) -> WorkerConfig:
    """The example configuration with its own topics, group, paths and API port; `schema`
    replaces its `schema.version` (1.1.5, the default): "1.1.2" for the tests that check the
    worker's files against the CDC's official XSD."""
    folder.mkdir(parents=True, exist_ok=True)
    name = unique("accrochage")
    config = WorkerConfig(
        folder=folder,
        path=folder / "accrochage.toml",
        bootstrap=bootstrap,
        topic=f"{name}.delivered",
        rejected_topic=f"{name}.rejected",
        group=f"{name}-group",
        bind=f"127.0.0.1:{free_port()}",
    )
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    version = json.dumps(schema) if schema else r'"\1"'  # the example's, unless named
    replacements = {
        r'(?m)^state = ".*?"': f"state = {json.dumps(str(config.state))}",
        r'(?m)^outbox = ".*?"': f"outbox = {json.dumps(str(config.outbox))}",
        r"(?m)^max_records = \d+": f"max_records = {max_records}",
        r'(?m)^max_delay = ".*?"': 'max_delay = "1s"',
        r'(?m)^tick = ".*?"': 'tick = "1s"',
        r'(?m)^xsd = ".*?"': f"xsd = {json.dumps(str(xsd) if xsd else '')}",
        r'(?m)^version = "(.*?)"': f"version = {version}",
        r'(?m)^bind = ".*?"': f"bind = {json.dumps(config.bind)}",
        r'(?m)^bootstrap = ".*?"': f"bootstrap = {json.dumps(bootstrap)}",
        r'(?m)^topic = ".*?"': f"topic = {json.dumps(config.topic)}",
        r'(?m)^rejected_topic = ".*?"': f"rejected_topic = {json.dumps(config.rejected_topic)}",
        r"(?m)^partitions = \d+": (
            f"partitions = {PARTITIONS}\n"
            f"group = {json.dumps(config.group)}\n"
            f'session_timeout = "{SESSION_TIMEOUT}"'
        ),
    }
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text)
        assert count == 1, f"{pattern} not found once in {EXAMPLE_CONFIG}"
    config.path.write_text(text + EXTRA_CERTIFIERS, encoding="utf-8")
    config.settings()  # fails here, naming the setting, if the file is wrong
    return config


# -- the worker process ----------------------------------------------------------------------


class Worker:
    """One `accrochage worker` process, its output in a log file.

    It leads a process group of its own, which its helpers (fork server, writer) join: after
    a kill, `remnants` finds whatever of it still runs.
    """

    def __init__(
        self,
        config: WorkerConfig,
        log: Path,
        *args: str,
        env: dict[str, str] | None = None,
        launcher: tuple[str, ...] = (),
    ) -> None:
        """`env`: variables added to the worker's environment; `launcher`: a command it is
        started through (`nohup`)."""
        self.config = config
        self.log = log
        self._out = log.open("ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*launcher, *cli_command(config.path, "worker", "--log-level", "INFO", *args)],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**child_env(), "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_for_log(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.alive(), f"worker exited ({self.proc.returncode}):\n{self.tail()}"
            assert time.monotonic() < deadline, (
                f"{needle!r} not in the worker log after {timeout:.0f}s:\n{self.tail()}"
            )
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._out.close()

    def remnants(self, grace: float) -> tuple[str, ...]:
        """Its processes still alive `grace` seconds after it ended (each then killed).

        Returns as soon as none is left: after a kill -9 the writer process ends within a
        fraction of a second (accrochage.streams.lifeline), committing at most the groups it
        was given; only then does the state show where the kill left the run.
        """
        assert not self.alive(), "remnants of a running worker"
        return outlivers(self.pid, grace=grace)

    def stop(self, timeout: float = 120, signum: int = signal.SIGTERM, group: bool = False) -> int:
        """SIGTERM (faust's graceful shutdown), SIGKILL if it outlives `timeout`: the worker's
        own bound on a stop (`writer_process.STOP_SECONDS`), not a guess of this machine's
        speed (30 s killed a clean stop once, on a CI machine loaded by other processes).
        `group`: sent to its whole process group, as a closed terminal or systemd does."""
        if self.alive():
            if group:
                os.killpg(self.pid, signum)
            else:
                self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._out.close()
        return int(self.proc.returncode)


def kill_all(workers: Iterable[Worker]) -> None:
    for worker in workers:
        try:
            worker.kill()
        except Exception as exc:  # pragma: no cover - best effort in a finally
            print(f"could not kill worker {worker.pid}: {exc}")


# -- the input -------------------------------------------------------------------------------


@dataclass
class Input:
    """The lines sent, in order, and what each record id must become."""

    path: Path
    lines: list[str]
    valid: set[str] = field(default_factory=set)
    invalid: set[str] = field(default_factory=set)
    corrected: set[str] = field(default_factory=set)
    rejected: frozenset[str] = frozenset()
    """The distinct lines that must reach the rejected topic."""
    rejected_lines: int = 0
    """Lines that must reach the rejected topic (invalid events, their replays, non-JSON)."""


def write_events(
    path: Path,
    settings: Settings,
    seed: int,
    count: int,
    *,
    invalid_ratio: float,
    duplicates: int = 0,
    corrections: int = 0,
    not_json: bool = False,
) -> Input:
    """`count` generated events, then exact re-sends (shuffled), then corrections.

    Keys are certifiers, so each certifier's events stay in that order on one partition: a
    correction always follows its original, and the re-sends of the original come before it.
    """
    today = paris_today(SystemClock())
    # A day back: no delivery can be "in the future" if midnight passes meanwhile.
    day: date = today - timedelta(days=1)
    certifiers = [GeneratedCertifier(c.key, c.certifications) for c in settings.certifiers]
    events = list(
        generate_events(count, certifiers, today=day, seed=seed, invalid_ratio=invalid_ratio)
    )
    registry = registry_from(settings)
    spec = Input(path, [])
    rejected: set[str] = set()
    lines = []
    for event in events:
        line = json.dumps(event, ensure_ascii=False)
        lines.append(line)
        if decode(event, registry, today).valid:
            spec.valid.add(event["record_id"])
        else:
            spec.invalid.add(event["record_id"])
            rejected.add(line)
    assert len(spec.valid) + len(spec.invalid) == count, "the generator repeated a record id"
    rng = random.Random(seed)
    replays = [json.dumps(e, ensure_ascii=False) for e in rng.sample(events, duplicates)]
    rng.shuffle(replays)
    fixes = []
    originals = [e for e in events if e["record_id"] in spec.valid]
    for event in rng.sample(originals, corrections):
        fixed = json.loads(json.dumps(event))
        fixed["exam"]["center_postal_code"] = CORRECTED_POSTAL_CODE
        fixed["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        assert decode(fixed, registry, today).valid
        spec.corrected.add(event["record_id"])
        fixes.append(json.dumps(fixed, ensure_ascii=False))
    spec.lines = [*lines, *replays, *fixes]
    if not_json:
        spec.lines.insert(rng.randrange(len(spec.lines)), NOT_JSON)
        rejected.add(NOT_JSON)
    spec.rejected = frozenset(rejected)
    spec.rejected_lines = sum(1 for line in spec.lines if line in rejected)
    path.write_text("".join(line + "\n" for line in spec.lines), encoding="utf-8")
    return spec


def send(config: WorkerConfig, path: Path, log: Path, timeout: float = 180) -> int:
    """`accrochage send FILE`: the exam platforms' way in (keys = certifiers)."""
    with log.open("wb") as out:
        done = subprocess.run(
            cli_command(config.path, "send", str(path)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            timeout=timeout,
            check=False,
        )
    text = log.read_text(encoding="utf-8", errors="replace")
    assert done.returncode == 0, f"accrochage send failed ({done.returncode}):\n{text[-3000:]}"
    return int(json.loads(text.strip().splitlines()[-1])["sent"])


def send_async(config: WorkerConfig, path: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    proc = subprocess.Popen(
        cli_command(config.path, "send", str(path)),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=child_env(),
        preexec_fn=_die_with_parent,
    )
    out.close()
    return proc


# -- the state, the topics, the outbox -------------------------------------------------------


def query(state: Path, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    conn = connect_readonly(state)
    try:
        return list(conn.execute(sql, tuple(params)))
    finally:
        conn.close()


@dataclass(frozen=True)
class Progress:
    read: int
    records: int
    pending: int
    unwritten: int
    dead_letters: int
    to_supersede: int = 0
    """Records corrected after their file was written: the next tick supersedes that file."""

    def done(self, produced: int) -> bool:
        return (
            self.read == produced
            and self.pending == 0
            and self.unwritten == 0
            and self.dead_letters == 0
            and self.to_supersede == 0
        )


def progress(config: WorkerConfig) -> Progress:
    if not config.state.exists():
        return Progress(0, 0, 0, 0, 0)
    try:
        conn = connect_readonly(config.state)
    except sqlite3.Error:
        return Progress(0, 0, 0, 0, 0)
    try:

        def one(sql: str, *params: Any) -> int:
            return int(conn.execute(sql, params).fetchone()[0])

        return Progress(
            read=one(
                "SELECT coalesce(sum(next_offset), 0) FROM input_offsets WHERE source = ?",
                config.topic,
            ),
            records=one("SELECT count(*) FROM records"),
            pending=one("SELECT count(*) FROM records WHERE status = 'pending'"),
            unwritten=one(
                "SELECT count(*) FROM batches WHERE state NOT IN ('written', 'superseded')"
            ),
            dead_letters=one("SELECT count(*) FROM dead_letters"),
            to_supersede=one(
                "SELECT count(*) FROM records WHERE status = 'batched' "
                "AND (correction_version IS NOT NULL OR revocation_pending = 1)"
            ),
        )
    except sqlite3.OperationalError:  # the first worker has not migrated the schema yet
        return Progress(0, 0, 0, 0, 0)
    finally:
        conn.close()


def events_read(config: WorkerConfig) -> int:
    """The messages the state says were read (stored with their records in one transaction).

    The sum of the stored offsets: cheap enough to poll every few milliseconds, unlike
    `progress`, which counts the records.
    """
    if not config.state.exists():
        return 0
    try:
        conn = connect_readonly(config.state)
    except sqlite3.Error:
        return 0
    try:
        (read,) = conn.execute(
            "SELECT coalesce(sum(next_offset), 0) FROM input_offsets WHERE source = ?",
            (config.topic,),
        ).fetchone()
        return int(read)
    except sqlite3.OperationalError:  # the first worker has not migrated the schema yet
        return 0
    finally:
        conn.close()


def wait_until_done(
    config: WorkerConfig,
    produced: int,
    timeout: float,
    *,
    alive: Callable[[], bool] | None = None,
    why: str = "",
) -> float:
    """Poll the state until everything produced was read, cut, written and dead-lettered."""
    began = time.monotonic()
    seen = progress(config)
    while not seen.done(produced):
        if alive is not None:
            assert alive(), f"the worker died before finishing: {seen} {why}"
        assert time.monotonic() - began < timeout, (
            f"not done after {timeout:.0f}s: {seen}, {produced} produced {why}"
        )
        time.sleep(0.25)
        seen = progress(config)
    return time.monotonic() - began


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        async with asyncio.timeout(30):
            (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert described.get("error_code", 0) == 0, described
    parts = sorted(p["partition"] for p in described["partitions"])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    key: bytes | None
    value: bytes


async def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> list[Message]:
    """Every message of `topic`, from the beginning to its end offsets (bounded)."""
    ends = await end_offsets(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    messages: list[Message] = []
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(timeout):
            remaining = {tp for tp in tps if ends[tp.partition] > 0}
            while remaining:
                batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
                for tp, batch in batches.items():
                    for record in batch:
                        messages.append(
                            Message(record.partition, record.offset, record.key, record.value)
                        )
                    if batch and batch[-1].offset + 1 >= ends[tp.partition]:
                        remaining.discard(tp)
    finally:
        await consumer.stop()
    return messages


@dataclass
class Outbox:
    holder: dict[str, Path]
    """Each released idTechnique and its one file."""
    files: list[Path]


def read_outbox(outbox: Path, xsds: Iterable[Path], why: str = "") -> Outbox:
    """Every released file valid against each XSD; no idTechnique in two files to upload.

    Files replaced before any deposit (under `superseded/`) are never to be uploaded: their
    records went out again in the files that replaced them.
    """
    assert not leftover_partials(outbox), f"partial files left: {leftover_partials(outbox)} {why}"
    files = [p for p in released_files(outbox) if p.parent.name != "superseded"]
    holder: dict[str, Path] = {}
    for path in files:
        for xsd in xsds:
            try:
                check_file(path, xsd)
            except SchemaValidationError as exc:
                raise AssertionError(f"a released file is invalid: {exc} {why}") from None
        for record_id in id_techniques(path):
            assert record_id not in holder, (
                f"{record_id} released twice: in {holder[record_id]} and {path} {why}"
            )
            holder[record_id] = path
    return Outbox(holder, files)


def stored_offsets(state: Path, topic: str) -> dict[int, int]:
    return {
        int(r[0]): int(r[1])
        for r in query(
            state, "SELECT partition, next_offset FROM input_offsets WHERE source = ?", (topic,)
        )
    }


def check_final_state(config: WorkerConfig, spec: Input, outbox: Outbox, why: str) -> None:
    """No valid record lost or released twice; invalid ones are invalid; batches written."""
    missing = spec.valid - outbox.holder.keys()
    assert not missing, f"{len(missing)} valid record(s) in no file: {sorted(missing)[:5]} {why}"
    extra = outbox.holder.keys() - spec.valid
    assert not extra, f"{len(extra)} released record(s) not valid: {sorted(extra)[:5]} {why}"
    conn = connect_readonly(config.state)
    try:
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
        assert integrity == "ok", f"integrity_check: {integrity} {why}"
        states = {
            r[0]: r[1] for r in conn.execute("SELECT state, count(*) FROM batches GROUP BY 1")
        }
        assert set(states) <= {"written", "superseded"}, f"batches not all written: {states} {why}"
        by_path = {
            Path(r["file_path"]): r["batch_id"]
            for r in conn.execute("SELECT batch_id, file_path FROM batches WHERE state = 'written'")
        }
        for (path,) in conn.execute("SELECT file_path FROM batches WHERE state = 'superseded'"):
            assert Path(path).parent.name == "superseded" and Path(path).is_file(), (path, why)
        assert set(by_path) == set(outbox.files), (
            f"files and batches differ: {sorted(set(by_path) ^ set(outbox.files))[:5]} {why}"
        )
        by_batch = {batch_id: path for path, batch_id in by_path.items()}
        records = {r["record_id"]: dict(r) for r in conn.execute("SELECT * FROM records")}
        assert records.keys() == spec.valid | spec.invalid, (
            f"{len(records)} records for {len(spec.valid | spec.invalid)} record ids {why}"
        )
        for record_id in spec.valid:
            record = records[record_id]
            assert record["status"] == "batched", f"{record_id} is {record['status']} {why}"
            assert by_batch[record["batch_id"]] == outbox.holder[record_id], (
                f"{record_id} is in {outbox.holder[record_id]}, its batch is "
                f"{record['batch_id']} {why}"
            )
        for record_id in spec.invalid:
            record = records[record_id]
            assert record["status"] == "invalid", f"{record_id} is {record['status']} {why}"
            assert json.loads(record["errors"]), f"{record_id}: invalid without errors {why}"
            assert record["batch_id"] is None, why
        cuts: dict[str, int] = {}
        for (record_id,) in conn.execute(
            "SELECT record_id FROM history WHERE from_status = 'pending' AND to_status = 'batched'"
        ):
            cuts[record_id] = cuts.get(record_id, 0) + 1
        for (record_id,) in conn.execute(
            "SELECT record_id FROM history WHERE from_status = 'batched' "
            "AND reason LIKE 'file superseded%'"
        ):
            cuts[record_id] -= 1  # taken out of a superseded file, then cut again
        twice = [r for r, n in cuts.items() if n != 1]
        assert not twice and cuts.keys() == spec.valid, f"cut twice or never: {twice[:5]} {why}"
    finally:
        conn.close()


async def check_offsets(config: WorkerConfig, produced: int, why: str) -> dict[int, int]:
    ends = await end_offsets(config.bootstrap, config.topic)
    assert sum(ends.values()) == produced, f"topic holds {ends}, {produced} produced {why}"
    stored = stored_offsets(config.state, config.topic)
    assert {p: stored.get(p, 0) for p in ends} == ends, (
        f"stored offsets {stored} differ from the end offsets {ends} {why}"
    )
    assert set(stored) <= set(ends), why
    return ends


def check_rejected(
    messages: list[Message],
    envelopes_topic: list[Message],
    config: WorkerConfig,
    spec: Input,
    *,
    exactly_once: bool,
    why: str,
) -> None:
    """The rejected topic holds one envelope (CONTRACT.md §5) per rejected input message."""
    by_source = {(m.partition, m.offset): m for m in messages}
    expected = {key for key, m in by_source.items() if m.value.decode() in spec.rejected}
    assert len(expected) == spec.rejected_lines, why
    seen: dict[tuple[int, int], int] = {}
    for message in envelopes_topic:
        envelope = json.loads(message.value)
        assert set(envelope) == {"errors", "warnings", "event", "source"}, envelope.keys()
        source = envelope["source"]
        assert set(source) == {"topic", "partition", "offset"}, source
        assert source["topic"] == config.topic, source
        key = (source["partition"], source["offset"])
        original = by_source.get(key)
        assert original is not None, f"envelope of no input message: {source} {why}"
        assert message.key == original.key, f"{source}: key {message.key!r} {why}"
        try:
            event: Any = json.loads(original.value)
        except ValueError:
            event = original.value.decode()
        assert envelope["event"] == event, f"{source}: event differs {why}"
        assert envelope["errors"] and all(
            set(e) >= {"field", "message"} for e in envelope["errors"]
        ), f"{source}: {envelope['errors']} {why}"
        assert isinstance(envelope["warnings"], list), why
        seen[key] = seen.get(key, 0) + 1
    missing = expected - seen.keys()
    assert not missing, (
        f"{len(missing)} rejected message(s) not on the topic: {sorted(missing)[:5]}"
    )
    unexpected = seen.keys() - expected
    assert not unexpected, f"accepted message(s) on the rejected topic: {sorted(unexpected)[:5]}"
    if exactly_once:
        twice = [k for k, n in seen.items() if n > 1]
        assert not twice, f"rejected message(s) published twice: {twice[:5]} {why}"


def check_corrections(
    config: WorkerConfig, spec: Input, outbox: Outbox, why: str
) -> dict[str, int]:
    """Whichever came first, the cut or the correction, the correction is never lost."""
    conn = connect_readonly(config.state)
    ways = {"in the file": 0, "stored beside": 0, "superseded a file": 0}
    try:
        for record_id in sorted(spec.corrected):
            record = conn.execute(
                "SELECT version, correction_version, batch_id FROM records WHERE record_id = ?",
                (record_id,),
            ).fetchone()
            (member,) = conn.execute(
                "SELECT version FROM batch_members WHERE record_id = ? AND batch_id = ?",
                (record_id, record["batch_id"]),
            ).fetchone()
            carried = conn.execute(
                "SELECT count(*) FROM batch_members WHERE record_id = ?", (record_id,)
            ).fetchone()[0]
            if carried > 1:
                ways["superseded a file"] += 1
            postal_code = _exam_postal_code(outbox.holder[record_id], record_id)
            corrected = postal_code == CORRECTED_POSTAL_CODE
            if record["correction_version"] is None:
                assert record["version"] == 2 and member == 2 and corrected, (
                    f"{record_id}: correction neither in the file nor stored: {dict(record)} {why}"
                )
                ways["in the file"] += 1
            else:
                assert record["correction_version"] == 2 and member == 1 and not corrected, (
                    f"{record_id}: {dict(record)}, member version {member} {why}"
                )
                (payload,) = conn.execute(
                    "SELECT payload FROM contents WHERE record_id = ? AND version = 2",
                    (record_id,),
                ).fetchone()
                content = json.loads(payload)
                assert content["exam"]["center_postal_code"] == CORRECTED_POSTAL_CODE, why
                ways["stored beside"] += 1
        others = conn.execute(
            "SELECT count(*) FROM records WHERE version <> 1 OR correction_version IS NOT NULL"
        ).fetchone()[0]
        assert others == len(spec.corrected), (
            f"{others} records have a second version, {len(spec.corrected)} were corrected "
            f"(a replay was taken for a correction?) {why}"
        )
    finally:
        conn.close()
    return ways


def _exam_postal_code(path: Path, record_id: str) -> str | None:
    """The exam centre's postal code of `record_id`'s passage in a released file."""
    for _event, passage in etree.iterparse(
        str(path), events=("end",), tag=PASSAGE, resolve_entities=False, no_network=True
    ):
        if passage.findtext(f"{{{NAMESPACE}}}idTechnique") == record_id:
            code = passage.findtext(f"{{{NAMESPACE}}}codePostalCentreExamen")
            return None if code is None else str(code)
    raise AssertionError(f"{record_id} not found in {path}")


async def a_new_worker_stores_everything(
    config: WorkerConfig,
    spec: Input,
    sent: int,
    log: Path,
    workers: list[Worker],
    why: str,
    timeout: float = 120.0,
) -> None:
    """A worker started anew (the one before it stopped with events left in the log) stores
    every event of `spec` once: the state, the files (against the bundled 1.1.5 XSD), and the
    offsets; then stops cleanly."""
    again = Worker(config, log)
    workers.append(again)
    await asyncio.to_thread(wait_until_done, config, sent, timeout, alive=again.alive, why=why)
    assert again.stop() == 0, f"the worker did not stop cleanly:\n{again.tail()}"
    outbox = read_outbox(config.outbox, [PROFILES["1.1.5"].bundled_xsd], why)
    check_final_state(config, spec, outbox, why)
    await check_offsets(config, sent, why)
