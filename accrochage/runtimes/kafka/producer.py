"""Publishing events to the delivered-events topic, keyed by certifier (UTF-8)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from accrochage.errors import AccrochageError
from accrochage.models.registry import Registry

SEND_TIMEOUT_MS = 30_000
"""How long one event may wait for the broker (metadata included) before `send` gives up."""
MAX_EVENT_BYTES = 1_000_000
"""A message the producer takes (its `max_request_size`, 1 MiB, less its record's framing);
the broker's own default limit is about the same."""


@dataclass(slots=True)
class Published:
    sent: int = 0
    too_large: list[int] = field(default_factory=list)
    """The line numbers of events over `MAX_EVENT_BYTES`, not sent (the others are)."""


def event_key(line: bytes, registry: Registry) -> bytes | None:
    """The certifier key keeps one certifier's events ordered on one partition: the event's
    `certifier`, or the one configured certifier its certification code belongs to (CONTRACT
    §1 lets an event leave it out then), or, for a revocation naming neither, the only
    certifier configured. None: the worker refuses or reports it anyway."""
    try:
        payload: Any = json.loads(line)
    except (ValueError, RecursionError):  # not JSON: the worker keeps it as unusable
        return None
    if not isinstance(payload, dict):
        return None
    certifier = payload.get("certifier")
    if isinstance(certifier, str):
        try:
            return certifier.encode()
        except UnicodeEncodeError:  # a lone surrogate's escape: no key is UTF-8 for it
            return None
    certification = payload.get("certification")
    code = certification.get("code") if isinstance(certification, dict) else None
    if certifier is None and isinstance(code, str):
        owner, _ = registry.resolve(None, code.strip())
        if owner is not None:
            return owner.key.encode()
    sole = registry.sole()
    revocation = payload.get("type") == "certification.revoked"
    if certifier is None and certification is None and revocation and sole is not None:
        return sole.key.encode()  # the worker gives it to that certifier too
    return None


async def publish_lines(
    bootstrap: str, topic: str, lines: Iterable[bytes], registry: Registry
) -> Published:
    """Each non-blank line as one event; how many were acknowledged by the broker (acks=all),
    and the lines too large for Kafka, left out (one does not stop the others).

    A broker that cannot be reached or a topic that does not exist is an `AccrochageError`
    saying so; the events sent before it stay sent (the worker drops no duplicate of an
    unchanged event: sending a file again changes nothing)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=SEND_TIMEOUT_MS,
    )
    try:
        await producer.start()
    except KafkaConnectionError as exc:
        await producer.stop()
        raise AccrochageError(
            f"no Kafka broker at {bootstrap} ({exc}); check kafka.bootstrap"
        ) from None
    done = Published()
    try:
        await _topic_exists(producer, topic, bootstrap)
        batch = []
        for number, line in enumerate(lines, start=1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            key = None if len(line) > MAX_EVENT_BYTES else event_key(line, registry)
            if len(line) + len(key or b"") > MAX_EVENT_BYTES:  # the key is in the message too
                done.too_large.append(number)
                continue
            batch.append(await producer.send(topic, line, key=key))
            if len(batch) >= 1000:
                for future in batch:
                    await future
                done.sent += len(batch)
                batch = []
        for future in batch:
            await future
        done.sent += len(batch)
    except KafkaError as exc:
        raise AccrochageError(
            f"cannot publish to {topic!r} on {bootstrap} ({type(exc).__name__}: {exc}); "
            f"{done.sent} event(s) acknowledged before, and some after may have been sent too: "
            "sending the file again is safe (an unchanged event changes nothing). Does the "
            "topic exist (`accrochage worker` creates kafka.topic)?"
        ) from None
    finally:
        await producer.stop()
    return done


async def _topic_exists(producer: AIOKafkaProducer, topic: str, bootstrap: str) -> None:
    """A topic that does not exist is said at once: the producer waited 30 s for it, logging
    about 300 lines of "not found in cluster metadata" on the way."""
    metadata = await producer.client.fetch_all_metadata()
    if topic not in metadata.topics():
        raise AccrochageError(
            f"no topic {topic!r} on {bootstrap}: `accrochage worker` creates kafka.topic at its "
            "start; check kafka.topic (or --topic)"
        )
