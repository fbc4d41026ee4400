"""An event's content as it is stored and hashed: canonical JSON, and storable text.

The content is what a record keeps of an event (everything but how it travelled); its hash
tells a correction from a repetition, so the bytes are those of Python's `json` with sorted
keys and no spaces, whatever writes them.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import orjson

from accrochage.models.event import ENVELOPE_FIELDS
from accrochage.models.text import WrittenNumber

_CANONICAL = json.JSONEncoder(
    sort_keys=True,
    ensure_ascii=False,
    separators=(",", ":"),
    check_circular=False,
    allow_nan=False,
)
NOT_JSON = "not_json"
"""The key of the object that stands in the stored content for a `NaN` or `Infinity`: valid
JSON for every reader, and a value no field accepts, so the content stays invalid."""


def canonical_content(payload: dict[str, Any]) -> str:
    """The event's content: everything but how it travelled (event_id, occurred_at, source)."""
    return canonical_and_hash(payload)[0]


def canonical_and_hash(payload: dict[str, Any]) -> tuple[str, str]:
    """The content (`canonical_content`) and its SHA-256, byte for byte what Python's `json`
    writes with sorted keys and no spaces (`_CANONICAL`): stored hashes stay comparable.

    orjson writes it in a fifth of the time for a content parsed by `loads_json` (every float
    a `WrittenNumber`, written through `_float_as_python`). Anything it refuses goes the
    `json` way: a NaN or an Infinity (stored as a marker), a lone surrogate (the
    `UnicodeEncodeError` of hashing it tells `storable_payload` to escape it), an integer beyond 64
    bits, nesting deeper than 255 levels.
    """
    content = {k: v for k, v in payload.items() if k not in ENVELOPE_FIELDS}
    try:
        written = orjson.dumps(content, default=_float_as_python, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        text = _canonical_json(content)
        return text, content_hash(text)
    return written.decode(), hashlib.sha256(written).hexdigest()


def _float_as_python(value: Any) -> orjson.Fragment:
    """A `WrittenNumber` as `json` writes a float (`float.__repr__`: `1e-05`, where orjson
    writes `1e-5`); anything else is refused, and the content goes the `json` way. (A plain
    float, in a payload built in Python rather than parsed, orjson writes its own way.)"""
    if type(value) is WrittenNumber and math.isfinite(value):
        return orjson.Fragment(float.__repr__(value))
    raise TypeError


def _canonical_json(content: dict[str, Any]) -> str:
    try:
        return _CANONICAL.encode(content)
    except ValueError:  # a NaN or an Infinity: not JSON, stored as a marker
        return _CANONICAL.encode(_finite(content))


def _finite(value: Any) -> Any:
    """A copy of a JSON value whose non-finite numbers are `{"not_json": "NaN"}` and the like."""
    if isinstance(value, float) and not math.isfinite(value):
        written = value.text if isinstance(value, WrittenNumber) else repr(value)
        return {NOT_JSON: written}
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def storable(text: str) -> str:
    """The text, with any lone surrogate (unencodable in UTF-8) written as its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _without_surrogates(value: Any, path: str, found: list[str]) -> Any:
    """A copy of a JSON value whose unencodable strings are escaped; their paths in `found`."""
    if isinstance(value, str):
        if _encodable(value):
            return value
        found.append(path or "event")
        return storable(value)
    if isinstance(value, dict):
        clean: dict[str, Any] = {}
        for key, item in value.items():
            name = key if _encodable(key) else storable(key)
            if name != key:
                found.append(f"{path}.{name}" if path else name)
            clean[name] = _without_surrogates(item, f"{path}.{name}" if path else name, found)
        return clean
    if isinstance(value, list):
        return [_without_surrogates(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def storable_payload(payload: dict[str, Any]) -> tuple[dict[str, Any], str, str, list[str]]:
    """The payload as it can be stored, its content and hash, and the paths that could not be.

    A lone surrogate (the JSON escape of half a UTF-16 pair) decodes to a Python string that
    UTF-8 cannot encode: stored as is, it would fail the whole transaction, and every other
    event of the group with it. Hashing the content encodes it anyway, so the common case
    costs nothing more; the walk runs only when that fails.
    """
    try:
        content, digest = canonical_and_hash(payload)
        for name in ENVELOPE_FIELDS:
            value = payload.get(name)
            if type(value) is str and not value.isascii():  # ASCII always encodes
                value.encode("utf-8")
        return payload, content, digest, []
    except UnicodeEncodeError:
        pass
    found: list[str] = []
    clean = _without_surrogates(payload, "", found)
    content, digest = canonical_and_hash(clean)
    return clean, content, digest, found
