"""The rejected-topic envelope's parts (CONTRACT §5) and the raw text an unusable event keeps.

A rejected event goes to the rejected topic through an outbox table written in the same
transaction as its record. Its envelope is JSON for every reader: an event that is not JSON
(`NaN` included, or nested too deep to parse) travels as its text, and an envelope too large
for a Kafka request carries the beginning of its event (`event_truncated`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from accrochage.models.canonical import storable

RAW_KEPT = 4096
"""Characters of an unusable event's raw input kept in the unusable log."""


KEPT_DEPTH = 100
"""Levels of a parsed input written out when the whole is nested too deeply for `json`."""
CUT = "(nested too deeply)"


def raw_digest(raw: bytes | str | dict[str, Any]) -> str:
    """The SHA-256 of the whole input (a parsed row or array element as sorted JSON)."""
    if isinstance(raw, dict):
        data = _sorted_json(raw).encode("utf-8", "surrogatepass")
    elif isinstance(raw, str):
        data = raw.encode("utf-8", "surrogatepass")
    else:
        data = raw
    return hashlib.sha256(data).hexdigest()


TOO_DEEP_TO_KEEP = "(an event nested too deeply to be kept as text)"


def raw_text(raw: bytes | str | dict[str, Any]) -> str:
    if isinstance(raw, dict):
        try:
            text = json.dumps(raw, ensure_ascii=False)
        except RecursionError:  # a CSV row whose JSON cell or column path nests it
            return TOO_DEEP_TO_KEEP
    elif isinstance(raw, bytes):
        text = _text_of(raw[: RAW_KEPT * 4])
    else:
        text = raw
    return storable(text[:RAW_KEPT])


def _sorted_json(raw: dict[str, Any]) -> str:
    """A parsed input as sorted JSON; nested past what `json` writes (a CSV row whose JSON
    cell or column path nests it: never parsed from one text), its first `KEPT_DEPTH` levels,
    so that two such rows still differ. Its RecursionError ended `ingest` with a traceback,
    the events of its group not stored."""
    try:
        return json.dumps(raw, ensure_ascii=False, sort_keys=True)
    except RecursionError:
        return json.dumps(_cut(raw, KEPT_DEPTH), ensure_ascii=False, sort_keys=True)


def _cut(value: Any, depth: int) -> Any:
    if isinstance(value, dict):
        return {k: _cut(v, depth - 1) for k, v in value.items()} if depth else CUT
    if isinstance(value, list):
        return [_cut(v, depth - 1) for v in value] if depth else CUT
    return value


def letter_event(raw: bytes | str | dict[str, Any], *, parse: bool = True) -> tuple[Any, bool]:
    """The envelope's `event`: the original JSON, or the raw text when it is not JSON (NaN
    included, or nested beyond what can be parsed); `parse=False`: the text whatever it is.
    A text is its first `RAW_KEPT` characters; the second value says whether it was cut
    (`event_truncated`: a reader of the topic took a cut text for the whole event)."""
    if not parse:
        return raw_text(raw), _longer_than_kept(raw)
    if isinstance(raw, dict):
        return raw, False
    text = _text_of(raw) if isinstance(raw, bytes) else raw
    try:
        return json.loads(text, parse_constant=_not_json), False
    except (ValueError, RecursionError):
        return text[:RAW_KEPT], len(text) > RAW_KEPT


def _longer_than_kept(raw: bytes | str | dict[str, Any]) -> bool:
    """Whether `raw_text` keeps only the beginning of `raw`."""
    if isinstance(raw, bytes):
        return len(raw) > RAW_KEPT and len(_text_of(raw)) > RAW_KEPT
    if isinstance(raw, str):
        return len(raw) > RAW_KEPT
    try:
        return len(json.dumps(raw, ensure_ascii=False)) > RAW_KEPT
    except RecursionError:
        return True


def _text_of(raw: bytes) -> str:
    """Bytes as JSON reads them (UTF-8, -16 or -32, as `decode.loads_json` does)."""
    try:
        return raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace")


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


MAX_LETTER_BYTES = 900_000
"""The most a rejected-topic value may weigh: below the producer's largest request (faust's
`producer_max_request_size`, 1,000,000 bytes) and the broker's `message.max.bytes`."""


MAX_KEY_BYTES = 1024
"""The longest original key a rejected-topic message reuses (a certifier's key is a few
bytes): with a key of 820 KB, key and envelope exceeded the producer's largest request, and
that letter, retried first for ever, held back every letter after it."""


def letter_key(key: bytes | None) -> bytes | None:
    """The original key, or None when it is longer than `MAX_KEY_BYTES`."""
    return key if key is None or len(key) <= MAX_KEY_BYTES else None


def bounded_letter(envelope: dict[str, Any]) -> str:
    """The envelope as JSON; when that would exceed `MAX_LETTER_BYTES` (an event of about a
    megabyte, which the broker takes in but the rejected topic cannot), its `event` becomes the
    beginning of its text, as for an event that is not JSON, and `event_truncated` says so."""
    try:
        value = storable(json.dumps(envelope, ensure_ascii=False, allow_nan=False))
    except ValueError:  # a NaN or an Infinity in the event: not JSON, so its text
        written = json.dumps(envelope["event"], ensure_ascii=False)
        return bounded_letter({**envelope, "event": written[:RAW_KEPT]})
    if len(value.encode("utf-8", "surrogatepass")) <= MAX_LETTER_BYTES:
        return value
    event = envelope.get("event")
    text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
    shrunk = {**envelope, "event": text[:RAW_KEPT], "event_truncated": True}
    return storable(json.dumps(shrunk, ensure_ascii=False))
