"""Publishing events to the delivered-events topic, keyed by certifier (UTF-8)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer


def event_key(line: bytes) -> bytes | None:
    """The certifier key keeps one certifier's events ordered on one partition."""
    try:
        payload: Any = json.loads(line)
    except ValueError:
        return None
    certifier = payload.get("certifier") if isinstance(payload, dict) else None
    return certifier.encode() if isinstance(certifier, str) else None


async def publish_lines(bootstrap: str, topic: str, lines: Iterable[bytes]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    sent = 0
    try:
        batch = []
        for line in lines:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            batch.append(await producer.send(topic, line, key=event_key(line)))
            sent += 1
            if len(batch) >= 1000:
                for future in batch:
                    await future
                batch = []
        for future in batch:
            await future
    finally:
        await producer.stop()
    return sent
