"""Hostile events on the Kafka path, without a broker: a message nested beyond what JSON
parsing allows, a rejected event too large for the rejected topic, a group whose storing
failed while nothing else arrives, a producer that fails in the middle of the letters."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import (
    CorruptRecordException,
    KafkaError,
    MessageSizeTooLargeError,
    TopicAuthorizationFailedError,
)
from faust.exceptions import ProducerSendError

from accrochage.app_writers import build_writer_parts
from accrochage.models.decode import Problem
from accrochage.runtimes.kafka import pending as pending_module
from accrochage.runtimes.kafka.pending import EXIT_UNEXPECTED
from accrochage.runtimes.kafka.worker import dead_letter_job
from accrochage.state.base import DeadLetter
from accrochage.state.sqlite import SqliteStore
from accrochage.streams.incoming import Incoming, IngestResult
from accrochage.streams.log_source import LogSource, dead_letter, key_warning
from accrochage.streams.rejected import MAX_LETTER_BYTES
from tests.kafka.test_worker_batches import _stored, good, record, store_fetch
from tests.kafka.test_worker_pending import HardExit, SlowIngestor, _pending
from tests.test_tracker import write_config
from tests.test_write_lock import held, release

SOURCE = LogSource("certifications", "rejected")


def no_hard_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a failed group does to the worker (`os._exit`) raises `HardExit` instead: the test
    fails, pytest is not ended."""

    def hard_exit(code: int) -> None:
        raise HardExit(code)

    monkeypatch.setattr(pending_module.os, "_exit", hard_exit)
    monkeypatch.setattr(pending_module.logging, "shutdown", lambda: None)


async def test_a_message_nested_too_deep_is_unusable_and_the_others_are_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_hard_exit(monkeypatch)
    config = write_config(tmp_path)
    deep = b"[" * 100_000 + b"]" * 100_000
    fetch = [record(0, 0, good(0)), record(0, 1, deep), record(0, 2, good(2))]
    await store_fetch(partial(build_writer_parts, config, decode=True), fetch)
    stored = _stored(tmp_path / "var" / "state.db")
    assert (stored["records"], stored["dead_letters"], stored["offsets"]) == (2, 1, {0: 3})
    assert stored["unusable"] == [("kafka:certifications:0:1",)]
    with sqlite3.connect(tmp_path / "var" / "state.db") as conn:
        (value,) = conn.execute("SELECT value FROM dead_letters").fetchone()
    conn.close()
    # Unusable as decode says, in its group: not set aside after a failed group.
    assert "nested too deeply" in json.loads(value)["errors"][0]["message"]


async def test_a_record_without_a_value_is_unusable_and_the_partition_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tombstone (a record whose value is null) once failed the set-aside transaction
    itself: the worker exited 70 at every start, its partition stalled for good."""
    no_hard_exit(monkeypatch)
    config = write_config(tmp_path)
    fetch = [record(0, 0, good(0)), record(0, 1, None), record(0, 2, good(2))]
    await store_fetch(partial(build_writer_parts, config, decode=True), fetch)
    stored = _stored(tmp_path / "var" / "state.db")
    assert (stored["records"], stored["dead_letters"], stored["offsets"]) == (2, 1, {0: 3})
    assert stored["unusable"] == [("kafka:certifications:0:1",)]
    with sqlite3.connect(tmp_path / "var" / "state.db") as conn:
        (value,) = conn.execute("SELECT value FROM dead_letters").fetchone()
    conn.close()
    envelope = json.loads(value)
    assert "is empty" in envelope["errors"][0]["message"] and envelope["event"] == ""


async def test_offsets_fetched_twice_in_one_group_are_stored_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer that seeks back (a rebalance) fetches again what still waits in the group:
    each offset is stored, logged and dead-lettered once."""
    no_hard_exit(monkeypatch)
    config = write_config(tmp_path)
    first = [record(0, 0, b"{not json"), record(0, 1, good(1))]
    await store_fetch(partial(build_writer_parts, config, decode=True), first + first)
    stored = _stored(tmp_path / "var" / "state.db")
    assert (stored["records"], stored["dead_letters"], stored["offsets"]) == (1, 1, {0: 2})
    assert stored["unusable"] == [("kafka:certifications:0:0",)]


def test_a_utf16_event_is_its_json_in_the_envelope() -> None:
    raw = json.dumps({"record_id": "U-1", "holder": {"sex": "X"}}).encode("utf-16")
    result = IngestResult("U-1", "created", "invalid", [Problem("holder.sex", "M or F")])
    envelope = json.loads(dead_letter(SOURCE, Incoming(raw, "k", 0, 3, b"pix"), result).value)
    assert envelope["event"] == {"record_id": "U-1", "holder": {"sex": "X"}}


def test_a_rejected_event_too_large_for_the_topic_is_sent_truncated() -> None:
    big = json.dumps({"record_id": "BIG-1", "verbatim": "v" * 1_010_000}).encode()
    result = IngestResult("BIG-1", "created", "invalid", [Problem("verbatim", "too long")])
    letter = dead_letter(SOURCE, Incoming(big, "k", 0, 5, b"pix"), result)
    assert len(letter.value.encode()) <= MAX_LETTER_BYTES
    envelope = json.loads(letter.value)
    assert envelope["event_truncated"] is True
    assert envelope["event"].startswith('{"record_id": "BIG-1"')
    assert envelope["errors"] == [{"field": "verbatim", "message": "too long"}]
    assert envelope["source"] == {"topic": "certifications", "partition": 0, "offset": 5}
    small = dead_letter(SOURCE, Incoming(b'{"record_id": "S"}', "k", 0, 6, b"pix"), result)
    assert "event_truncated" not in json.loads(small.value)


class FailingProducer:
    """Sends `fail_at` letters, then fails every time (a broker gone)."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.sent: list[bytes] = []

    async def send_and_wait(self, topic: str, key: Any, value: bytes, *_: Any) -> None:
        if len(self.sent) >= self.fail_at:
            raise ConnectionError("broker gone")
        self.sent.append(value)


async def test_letters_sent_before_a_failure_are_not_sent_again(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    try:
        with store.transaction() as tx:
            tx.queue_dead_letters(DeadLetter("rejected", b"pix", f'{{"n": {n}}}') for n in range(4))
            old = {"event": "x" * (MAX_LETTER_BYTES + 10), "errors": []}
            tx.queue_dead_letters([DeadLetter("rejected", b"pix", json.dumps(old))])
        producer = FailingProducer(fail_at=2)
        job = dead_letter_job(SimpleNamespace(producer=producer), store)  # type: ignore[arg-type]
        await job.run()  # type: ignore[misc]
        with store.reading() as reader:
            assert [json.loads(d.value).get("n") for d in reader.dead_letters(10)] == [2, 3, None]
        producer.fail_at = 10  # the broker is back
        await job.run()  # type: ignore[misc]
        with store.reading() as reader:
            assert reader.dead_letters(10) == []
    finally:
        store.close()
    assert [json.loads(v).get("n") for v in producer.sent[:4]] == [0, 1, 2, 3]
    assert len(producer.sent) == 5, "each letter once"
    assert len(producer.sent[4]) <= MAX_LETTER_BYTES
    assert json.loads(producer.sent[4])["event_truncated"] is True


async def test_forgetting_sent_letters_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """While another process holds the state, forgetting the letters sent waits for it: on
    faust's loop that wait froze the worker whole (SIGTERM, /health, the fetching) for up
    to `state.lock_wait`. The loop goes on; the letters are forgotten once the state is free."""
    state = tmp_path / "state.db"
    store = SqliteStore(state, lock_wait_seconds=60.0)
    sent = asyncio.Event()

    class Producer:
        async def send_and_wait(self, *_: Any) -> None:
            sent.set()

    try:
        with store.transaction() as tx:
            tx.queue_dead_letters([DeadLetter("rejected", b"pix", '{"n": 1}')])
        job = dead_letter_job(SimpleNamespace(producer=Producer()), store)  # type: ignore[arg-type]
        with held(state) as holder:
            publish = asyncio.ensure_future(job.run())  # type: ignore[arg-type]
            await asyncio.wait_for(sent.wait(), 60)
            for _ in range(5):
                await asyncio.sleep(0.05)  # the loop runs while the forgetting waits
            assert not publish.done(), "still waiting for the state, off the loop"
            release(holder)
            await asyncio.wait_for(publish, 60)
        with store.reading() as reader:
            assert reader.dead_letters(10) == []
    finally:
        store.close()


async def test_a_failed_group_stops_the_worker_without_waiting_for_another_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ingestor = SlowIngestor(0.01, fail=True)
    pending = _pending(ingestor, monkeypatch)
    await pending.commit()
    assert await asyncio.to_thread(ingestor.started.wait, 60)
    for _ in range(6000):  # bounded (60 s): the writer thread fails the group in milliseconds
        if pending._in_flight[0][0].done():
            break
        await asyncio.sleep(0.01)
    assert pending.items == []
    with pytest.raises(HardExit) as exited:
        await pending.commit_stragglers()  # the straggler timer, with nothing left to hand over
    assert exited.value.code == EXIT_UNEXPECTED
    pending.writer.shutdown(wait=True)


def test_a_rejected_event_with_nan_is_sent_as_its_text() -> None:
    """NaN is not JSON: the envelope carries the event's text, as for any event not JSON."""
    raw = b'{"record_id": "N-1", "score": NaN}'
    result = IngestResult("N-1", "created", "invalid", [Problem("score", "not finite")])
    letter = dead_letter(SOURCE, Incoming(raw, "k", 0, 9, b"pix"), result)

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    envelope = json.loads(letter.value, parse_constant=refuse)
    assert envelope["event"] == raw.decode()


async def test_a_poison_event_is_set_aside_and_the_others_are_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A poison message (storing it raises, for a reason other than the storage) fails its
    group's transaction: each event is then stored alone, the poison one is kept as unusable
    and queued for the rejected topic, and the offsets pass it, so the partition goes on."""
    from accrochage.streams import ingest as ingest_module

    real = ingest_module.apply_delivered

    def poisoned(current: Any, decoded: Any, *args: Any) -> Any:
        if decoded.record_id == "PX-2026-000011":
            raise ValueError(" ".join(["a bug met", "by this event only"]))
        return real(current, decoded, *args)

    monkeypatch.setattr(ingest_module, "apply_delivered", poisoned)
    parts = build_writer_parts(write_config(tmp_path))
    try:
        group = [
            Incoming(good(n), f"kafka:certifications:0:{n}", 0, n, b"pix") for n in (10, 11, 12)
        ]
        results = await asyncio.wrap_future(parts.service.submit(group, parts.source))
        parts.service.stop()
    finally:
        parts.close()
    assert [r.outcome for r in results] == ["created", "failed", "created"]
    stored = _stored(tmp_path / "var" / "state.db")
    assert (stored["records"], stored["dead_letters"]) == (2, 1)
    assert stored["offsets"] == {0: 13}
    assert stored["unusable"] == [("kafka:certifications:0:11",)]
    (said,) = [r.getMessage() for r in caplog.records if "could not be stored" in r.getMessage()]
    assert "(ValueError, partition 0 offset 11)" in said
    assert "in poisoned" in said, "the log gives where the code failed"
    assert "a bug met by this event only" not in said, "never the message: it may quote a value"


def test_a_rejected_event_with_a_huge_key_is_sent_without_it() -> None:
    """Key and envelope together exceeded the producer's largest request: that letter could
    never be produced. A key over `MAX_KEY_BYTES` is dropped, and the envelope says so."""
    result = IngestResult("K-1", "created", "invalid", [Problem("verbatim", "too long")])
    raw = json.dumps({"record_id": "K-1", "verbatim": "v" * 200_000}).encode()
    letter = dead_letter(SOURCE, Incoming(raw, "k", 0, 7, b"k" * 820_000), result)
    assert letter.key is None
    assert json.loads(letter.value)["key_dropped"] == 820_000
    kept = dead_letter(SOURCE, Incoming(raw, "k", 0, 8, b"pix"), result)
    assert kept.key == b"pix" and "key_dropped" not in json.loads(kept.value)


class RefusingProducer:
    """faust's producer over a broker that refuses some letters: `refused` maps a piece of a
    letter's value to the error. aiokafka's own size check raises in `send()`, which faust
    wraps in `ProducerSendError`; the broker's answers come raw from the future."""

    def __init__(self, refused: dict[bytes, KafkaError]) -> None:
        self.refused = refused
        self.sent: list[tuple[Any, bytes]] = []

    async def send_and_wait(self, topic: str, key: Any, value: bytes, *_: Any) -> None:
        for piece, error in self.refused.items():
            if piece in value and isinstance(error, MessageSizeTooLargeError):
                raise ProducerSendError(f"Error while sending: {error!r}") from error
            if piece in value:
                raise error
        self.sent.append((key, value))


async def test_a_letter_the_broker_refuses_for_good_holds_back_no_other(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    try:
        with store.transaction() as tx:
            tx.queue_dead_letters(DeadLetter("rejected", b"pix", f'{{"n": {n}}}') for n in range(4))
            tx.queue_dead_letters([DeadLetter("rejected", b"k" * 5000, '{"n": 4}')])
        producer = RefusingProducer(
            {b'"n": 1': MessageSizeTooLargeError(), b'"n": 2': CorruptRecordException()}
        )
        job = dead_letter_job(SimpleNamespace(producer=producer), store)  # type: ignore[arg-type]
        await job.run()  # type: ignore[misc]
        with store.reading() as reader:
            assert reader.dead_letters(10) == []
    finally:
        store.close()
    assert [json.loads(v)["n"] for _, v in producer.sent] == [0, 3, 4]
    assert producer.sent[-1][0] is None, "a key queued too long by an earlier version"
    assert any("can never be produced" in r.getMessage() for r in caplog.records)


async def test_an_event_not_keyed_by_its_certifier_is_stored_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONTRACT §5 keys each event by its certifier, which keeps a certifier's events in
    order on one partition. A key that says otherwise was ignored: a revocation keyed wrongly
    was read before its delivery, and the reason blamed the order. The event is stored with a
    `kafka.key` warning that says what its producer must fix."""
    no_hard_exit(monkeypatch)
    config = write_config(tmp_path)
    keys = [b"pix", None, b"\xff\xfe-bad", b"school"]
    fetch = [record(0, n, good(n)) for n in range(4)]
    for one, key in zip(fetch, keys, strict=True):
        one.key = key
    await store_fetch(partial(build_writer_parts, config, decode=True), fetch)
    with sqlite3.connect(tmp_path / "var" / "state.db") as conn:
        rows = conn.execute("SELECT record_id, warnings FROM records ORDER BY record_id").fetchall()
    conn.close()
    warned = {rid: [w for w in json.loads(ws) if w["field"] == "kafka.key"] for rid, ws in rows}
    assert [len(w) for w in warned.values()] == [0, 1, 1, 1]
    said = [w[0]["message"] for w in list(warned.values())[1:]]
    assert said[0].startswith("the message has no key, not its certifier's key 'pix'")
    assert "a key of 6 bytes that is no configured certifier's (not quoted)" in said[1], said[1]
    assert "the key 'school' (another certifier's)" in said[2]


def test_a_key_that_names_no_certifier_is_never_quoted() -> None:
    """A producer keying by person put the NIR in the warning, shown by every listing."""
    warning = key_warning(b"193057510812376 Zorglub", "pix", {"pix", "school"})
    assert warning is not None
    assert "1930575" not in warning.message and "Zorglub" not in warning.message
    assert "a key of 23 bytes" in warning.message


async def test_a_topic_the_worker_may_not_write_keeps_every_letter(tmp_path: Path) -> None:
    """An ACL refusing the rejected topic is not retriable either, but it says nothing of the
    letters: dropping them would empty the queue in seconds. They wait, in order."""
    store = SqliteStore(tmp_path / "state.db")
    try:
        with store.transaction() as tx:
            tx.queue_dead_letters(DeadLetter("rejected", b"pix", f'{{"n": {n}}}') for n in range(3))
        producer = RefusingProducer({b'"n"': TopicAuthorizationFailedError()})
        job = dead_letter_job(SimpleNamespace(producer=producer), store)  # type: ignore[arg-type]
        await job.run()  # type: ignore[misc]
        with store.reading() as reader:
            assert [json.loads(d.value)["n"] for d in reader.dead_letters(10)] == [0, 1, 2]
    finally:
        store.close()
    assert producer.sent == []


@pytest.mark.parametrize("parse", [True, False])
def test_a_long_event_that_is_not_json_is_sent_cut_and_says_so(parse: bool) -> None:
    """An event that is not JSON travels as its first 4,096 characters: the envelope said
    nothing of the cut, and a reader of the topic took the beginning for the whole event.
    `parse=False`: an event set aside because storing it failed, sent as its text."""
    raw = b"not json " + b"x" * 10_000
    result = IngestResult(None, "refused", None, [Problem("event", "is not valid JSON")])
    envelope = json.loads(
        dead_letter(SOURCE, Incoming(raw, "k", 0, 7, b"pix"), result, parse=parse).value
    )
    assert envelope["event"] == raw.decode()[:4096]
    assert envelope["event_truncated"] is True
    short = dead_letter(SOURCE, Incoming(b"not json", "k", 0, 8, b"pix"), result, parse=parse)
    assert "event_truncated" not in json.loads(short.value)
