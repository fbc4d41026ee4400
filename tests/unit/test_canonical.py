"""The canonical content is written by orjson, byte for byte what Python's `json` wrote.

Stored content hashes decide whether an event sent again is the same record (no change) or
a correction: a state written by an earlier version must compare with today's, so the oracle
here is the encoder every earlier version used, with its exact settings.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import date
from typing import Any

import pytest

from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.canonical import (
    NOT_JSON,
    canonical_and_hash,
    canonical_content,
    content_hash,
)
from accrochage.models.decode import decode
from accrochage.models.event import ENVELOPE_FIELDS
from accrochage.models.json_input import NUMBER_TOO_LONG, loads_json
from accrochage.streams.csv_events import csv_row_to_event
from tests.factories import make_registry

ORACLE = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), check_circular=False
)
"""The encoder of every version before orjson (`allow_nan` aside: NaN is never written)."""


def oracle(payload: dict[str, Any]) -> tuple[str, str]:
    text = ORACLE.encode({k: v for k, v in payload.items() if k not in ENVELOPE_FIELDS})
    return text, hashlib.sha256(text.encode()).hexdigest()


def parsed(text: str) -> dict[str, Any]:
    value = loads_json(text)
    assert isinstance(value, dict)
    return value


def test_generated_events_are_written_as_before() -> None:
    certifiers = [GeneratedCertifier("pix", ["RS5000", "RNCP36000"])]
    events = generate_events(2000, certifiers, today=date(2026, 12, 1), invalid_ratio=0.2)
    for event in events:
        payload = parsed(json.dumps(event, ensure_ascii=False))
        assert canonical_and_hash(payload) == oracle(payload)


@pytest.mark.parametrize("start", range(0, 0x110000, 0x8000))
def test_every_character_is_escaped_or_kept_as_before(start: int) -> None:
    """Every code point but the surrogates, in values and in keys (whose order is by code
    point in both encoders)."""
    points = [p for p in range(start, min(start + 0x8000, 0x110000)) if not 0xD800 <= p < 0xE000]
    text = "".join(map(chr, points))
    payload = {"a": text, text[:50]: 1, text[-50:]: [text[100:200]], "\x7f\u2028é": "É"}
    assert canonical_and_hash(payload) == oracle(payload)


@pytest.mark.parametrize(
    "number",
    [
        *["12.50", "1e300", "1E+5", "-0.0", "0.1", "5e-324", "1.7976931348623157e308", "3.0"],
        *["1e16", "0.00001", "-4.1691736761307756e-05", "5.946346348583008e-09"],
    ],
)
def test_a_decimal_is_written_as_json_wrote_its_float(number: str) -> None:
    """orjson's own float format differs (`1e-5`, `0.000041…`): parsed decimals go through
    Python's."""
    payload = parsed(f'{{"result": {{"grade": {number}}}, "other": [{number}, 1]}}')
    assert canonical_and_hash(payload) == oracle(payload)


@pytest.mark.parametrize(
    "number", [str(2**63 - 1), str(-(2**63)), str(2**64 - 1), str(-(2**63) - 1), "1" * 25]
)
def test_integers_within_and_beyond_64_bits_are_written_as_before(number: str) -> None:
    payload = parsed(f'{{"n": {number}, "m": [0, {number}]}}')
    assert canonical_and_hash(payload) == oracle(payload)


def test_nesting_deeper_than_orjson_goes_is_written_as_before() -> None:
    payload = parsed('{"deep": ' + "[" * 400 + "1" + "]" * 400 + "}")
    assert canonical_and_hash(payload) == oracle(payload)


def test_an_integer_too_long_to_convert_keeps_its_marker() -> None:
    digits = sys.get_int_max_str_digits() + 1
    payload = parsed('{"n": ' + "7" * digits + "}")
    assert canonical_content(payload) == f'{{"n":{{"{NUMBER_TOO_LONG}":{digits}}}}}'


@pytest.mark.parametrize("spelling", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_number_is_stored_as_its_marker(spelling: str) -> None:
    payload = parsed(f'{{"score_detail": [{spelling}], "x": 1.5}}')
    text, digest = canonical_and_hash(payload)
    assert text == f'{{"score_detail":[{{"{NOT_JSON}":"{spelling}"}}],"x":1.5}}'
    assert digest == content_hash(text)


def test_a_lone_surrogate_is_escaped_in_the_stored_content() -> None:
    payload = parsed('{"record_id": "r-1", "holder": {"birth_name": "Du\\ud800pont"}}')
    with pytest.raises(UnicodeEncodeError):
        canonical_and_hash(payload)
    decoded = decode(json.dumps(payload), make_registry(), date(2026, 12, 1))
    assert decoded.content is not None
    assert '"birth_name":"Du\\\\ud800pont"' in decoded.content  # the escape, escaped
    assert decoded.content_hash == content_hash(decoded.content)


@pytest.mark.parametrize("results", ['[{"level": 1e-05}]', '[{"level": 2.50}]', '[{"level": NaN}]'])
def test_a_csv_row_has_the_content_and_hash_of_the_same_event_in_jsonl(results: str) -> None:
    """A CSV cell holding JSON is parsed as a JSONL line is: parsed with plain `json.loads`,
    its floats were written by orjson's own format (`0.00001`) and a NaN became `null`."""
    row = {"record_id": "R-1", "certifier": "pix", "digital_level.results": results}
    from_csv = csv_row_to_event(list(row), list(row.values()))
    from_jsonl = parsed(
        f'{{"record_id": "R-1", "certifier": "pix", "digital_level": {{"results": {results}}}}}'
    )
    assert canonical_and_hash(from_csv) == canonical_and_hash(from_jsonl)
    if "NaN" not in results:
        assert canonical_and_hash(from_csv) == oracle(from_jsonl)
    else:
        assert f'"{NOT_JSON}":"NaN"' in canonical_content(from_csv)
