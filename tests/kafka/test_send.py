"""`accrochage send`, the exam platforms' way onto the topic: every event keyed by its
certifier (the one its code belongs to when it names none), and clear errors, never a
traceback: a missing file, no broker, a topic that does not exist, a line that is not JSON."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from accrochage.models.registry import Certifier, Emitter, Registry
from accrochage.runtimes.kafka.producer import event_key
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.workers import write_worker_config
from tests.support.crash import child_env, cli_command

REGISTRY = Registry(
    Emitter("03VML243", "CERTIFICATEUR"),
    [
        Certifier("pix", "03VML243", "MCFCER000209", frozenset({"RS5875", "RS0001"})),
        Certifier("school", "12ABC345", "MCFCER000123", frozenset({"RNCP35726", "RS0001"})),
    ],
)


def _line(**fields: Any) -> bytes:
    return json.dumps({"record_id": "K-1", **fields}).encode()


def test_an_event_is_keyed_by_its_certifier_or_the_owner_of_its_code() -> None:
    assert event_key(_line(certifier="pix"), REGISTRY) == b"pix"
    assert event_key(_line(certification={"code": "RNCP35726"}), REGISTRY) == b"school"
    assert event_key(_line(certification={"code": " RS5875 "}), REGISTRY) == b"pix"
    assert event_key(_line(certification={"code": "RS0001"}), REGISTRY) is None, "two owners"
    assert event_key(_line(certification={"code": "RS9999"}), REGISTRY) is None, "no owner"
    assert event_key(b"[" * 100_000 + b"]" * 100_000, REGISTRY) is None, "nested too deep"
    assert event_key(b"{not json", REGISTRY) is None


def test_a_revocation_naming_no_one_is_keyed_as_the_worker_reads_it() -> None:
    """The worker gives a revocation naming neither a certifier nor a certification to the
    only certifier configured: `send` keys it the same, so it lands on its delivery's
    partition, after it."""
    sole = Registry(REGISTRY.emitter, [REGISTRY.certifiers["pix"]])
    revocation = _line(type="certification.revoked", event_id="r-1")
    assert event_key(revocation, sole) == b"pix"
    assert event_key(revocation, REGISTRY) is None, "two certifiers: the worker refuses it"
    assert event_key(_line(event_id="d-1"), sole) is None, "a delivery names its certification"


def _send(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(config, "send", *args),
        capture_output=True,
        text=True,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def test_send_says_what_is_wrong_without_a_traceback(tmp_path: Path) -> None:
    config = write_worker_config(tmp_path / "w", "127.0.0.1:1")  # nothing listens there
    events = tmp_path / "events.jsonl"
    events.write_text(_line(certifier="pix").decode() + "\n", encoding="utf-8")
    missing = _send(config.path, str(tmp_path / "nowhere.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr, missing.stderr
    unreachable = _send(config.path, str(events))
    assert unreachable.returncode != 0
    assert "no Kafka broker at 127.0.0.1:1" in unreachable.stderr, unreachable.stderr
    for done in (missing, unreachable):
        assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr, done.stderr


async def _keys(bootstrap: str, topic: str, expected: int) -> dict[str, bytes | None]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: dict[str, bytes | None] = {}
    try:
        async with asyncio.timeout(60):
            while len(found) < expected:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    for message in batch:
                        found[json.loads(message.value)["record_id"]] = message.key
    finally:
        await consumer.stop()
    return found


async def test_send_keys_events_on_a_real_broker(
    kafka_broker: KafkaEndpoint, tmp_path: Path
) -> None:
    config = write_worker_config(tmp_path / "w", kafka_broker.bootstrap)
    await kafka_broker.create_topic(config.topic, 4)
    events = tmp_path / "events.jsonl"
    lines = [
        {"record_id": "S-1", "certifier": "pix", "certification": {"code": "RS5875"}},
        {"record_id": "S-2", "certification": {"code": "RNCP35726"}},
        {"record_id": "S-3", "certification": {"code": "RS5875"}},
    ]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines) + "\n", encoding="utf-8")
    sent = await asyncio.to_thread(_send, config.path, str(events))
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"topic": config.topic, "sent": 3}
    keys = await _keys(kafka_broker.bootstrap, config.topic, 3)
    assert keys == {"S-1": b"pix", "S-2": b"demo-school", "S-3": b"pix"}

    # A line too large for Kafka stopped the file there, unnamed; it is now left out, named
    # by its line, and the lines after it are sent.
    huge = {"record_id": "S-4", "certifier": "pix", "verbatim": "x" * 1_100_000}
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        "".join(json.dumps(e) + "\n" for e in [huge, {**lines[0], "record_id": "S-5"}]),
        encoding="utf-8",
    )
    partly = await asyncio.to_thread(_send, config.path, str(mixed))
    assert partly.returncode == 1, partly.stderr
    assert json.loads(partly.stdout) == {"topic": config.topic, "sent": 1}
    assert f"({mixed}:1)" in partly.stderr and "the other events were sent" in partly.stderr
    assert set(await _keys(kafka_broker.bootstrap, config.topic, 4)) == {"S-1", "S-2", "S-3", "S-5"}
    nowhere = await asyncio.to_thread(_send, config.path, "--topic", "no.such.topic", str(events))
    assert nowhere.returncode != 0
    # Said at once, in one line: it waited 30 s, logging about 300 lines on the way.
    assert "no topic 'no.such.topic'" in nowhere.stderr, nowhere.stderr
    assert len(nowhere.stderr.strip().splitlines()) == 1, nowhere.stderr
    assert "Traceback" not in nowhere.stderr


async def test_send_of_a_file_with_bad_lines_sends_the_others(
    kafka_broker: KafkaEndpoint, tmp_path: Path
) -> None:
    """A `certifier` that is no UTF-8 text (a lone surrogate's escape) ended the file with a
    traceback; one whose key and value together exceed what Kafka takes ended it with "does
    the topic exist?". The first is sent without a key (the worker says what is wrong with
    it), the second left out and named by its line; the other lines are sent."""
    config = write_worker_config(tmp_path / "w", kafka_broker.bootstrap)
    await kafka_broker.create_topic(config.topic, 4)
    events = tmp_path / "bad.jsonl"
    long_key = {"record_id": "B-3", "certifier": "k" * 600_000}
    events.write_text(
        json.dumps({"record_id": "B-1", "certifier": "pix"})
        + '\n{"record_id": "B-2", "certifier": "\\ud800"}\n'
        + json.dumps(long_key)
        + "\nnot JSON at all\n\n"
        + json.dumps({"record_id": "B-5", "certifier": "pix"})
        + "\n",
        encoding="utf-8",
    )
    sent = await asyncio.to_thread(_send, config.path, str(events))
    assert "Traceback" not in sent.stderr, sent.stderr
    assert sent.returncode == 1, sent.stderr
    assert json.loads(sent.stdout) == {"topic": config.topic, "sent": 4}, sent.stdout
    assert f"({events}:3)" in sent.stderr, sent.stderr
    consumer = AIOKafkaConsumer(
        config.topic, bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    keys: dict[bytes, bytes | None] = {}
    try:
        async with asyncio.timeout(60):
            while len(keys) < 4:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    keys.update((m.value[:22], m.key) for m in batch)
    finally:
        await consumer.stop()
    assert sorted(keys.values(), key=repr) == [None, None, b"pix", b"pix"], keys
