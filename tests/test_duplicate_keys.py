"""A key given twice in one JSON object is an error naming it, never silently the last value.

JSON readers keep the last of two `record_id`s: an event meant for one record updated
another (its correction, or its invalidation) without a word; a second `birth_name` replaced
the first. Both reviews of session 14 reproduced it over HTTP and from a file.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from accrochage.models.decode import decode
from accrochage.models.problems import GIVEN_TWICE
from tests.factories import delivered_event
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_decoding import registry
from tests.test_tracker import write_config

TODAY = date(2026, 12, 1)
CERT = {"type": "RS", "code": "RS6604"}


def text_of(record_id: str) -> str:
    return json.dumps(delivered_event(record_id=record_id, certification=CERT))


def test_a_record_id_given_twice_names_no_record() -> None:
    decoded = decode(text_of("D-1")[:-1] + ', "record_id": "D-2"}', registry(), TODAY)
    assert (decoded.kind, decoded.record_id) == ("unusable", None)
    assert [(p.field, p.message) for p in decoded.errors] == [("record_id", GIVEN_TWICE)]
    named = json.loads(text_of("D-1"))["certifier"]
    assert decoded.certifier == named, "kept in its certifier's part of the unusable log"
    long_key = text_of("D-1").replace(json.dumps(named), json.dumps("p" * 65), 1)
    assert decode(long_key[:-1] + ', "record_id": "D-2"}', registry(), TODAY).certifier is None


def test_a_nested_key_given_twice_is_an_error_of_that_field() -> None:
    event = delivered_event(record_id="D-3", certification=CERT)
    holder = json.dumps(event["holder"])
    twice = text_of("D-3").replace(holder, holder[:-1] + ', "birth_name": "Other"}')
    decoded = decode(twice, registry(), TODAY)
    assert (decoded.kind, decoded.record_id, decoded.valid) == ("delivered", "D-3", False)
    assert [(p.field, p.message) for p in decoded.errors] == [("holder.birth_name", GIVEN_TWICE)]
    once = decode(text_of("D-3"), registry(), TODAY)
    assert once.valid and once.content_hash != decoded.content_hash


def test_a_birth_date_part_given_twice_is_named() -> None:
    event = delivered_event(record_id="D-4", certification=CERT)
    event["holder"]["birth_date"] = {"year": 1990, "month": None, "day": None}
    text = json.dumps(event).replace('"year": 1990', '"year": 1990, "year": 1991')
    decoded = decode(text, registry(), TODAY)
    assert [p.field for p in decoded.errors] == ["holder.birth_date"]
    assert decoded.errors[0].message.startswith("year: is given more than once")


def test_an_event_of_a_file_cannot_update_another_record_by_a_second_record_id(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("DK-2")])))
    meant_for_one = json.dumps(recent("DK-1", score="999"))[:-1] + ', "record_id": "DK-2"}'
    out = run(config, "ingest", str(write_jsonl(tmp_path / "b.jsonl", [meant_for_one]))).stdout
    assert "unusable: 1" in out and "record_id: is given more than once" in out, out
    shown = json.loads(run(config, "records", "--format", "json").stdout)
    assert [(r["record_id"], r["status"]) for r in shown] == [("DK-2", "pending")]
    detail = json.loads(run(config, "show", "DK-2", "--format", "json").stdout)
    assert detail["version"] == 1, "DK-2 was corrected by an event meant for DK-1"


def test_a_sender_s_own_key_named_as_the_mark_is_only_an_unknown_field() -> None:
    """`"(keys given twice)": 5` from the sender crashed decoding (a TypeError: a traceback
    for ingest, a 500 for POST /check); a string there was read as key names."""
    base = text_of("D-5")[:-1]
    for value in ("5", '"record_id"', '["record_id"]'):
        decoded = decode(base + f', "(keys given twice)": {value}}}', registry(), TODAY)
        assert decoded.record_id == "D-5", value
        assert [(p.field, p.message) for p in decoded.errors] == [
            ("(keys given twice)", "is not a field of the event contract (check its spelling)")
        ], value
    event = delivered_event(record_id="D-6", certification=CERT)
    event["holder"]["birth_date"] = {"year": 1990, "(keys given twice)": 7}
    decoded = decode(json.dumps(event), registry(), TODAY)
    assert [(p.field, p.message) for p in decoded.errors] == [
        ("holder.birth_date", "unknown key(s) (keys given twice); expected year, month, day")
    ]


def test_the_rules_across_fields_leave_out_a_key_given_twice() -> None:
    """Which of two `delivered_on`s is meant cannot be told: no rule may judge the last one
    (it said `valid_until: is before delivered_on` of a valid field)."""
    event = delivered_event(record_id="D-7", certification=CERT, valid_until="2026-11-20")
    text = json.dumps(event)
    at = text.index('"delivered_on"')
    twice = (
        text[:at]
        + '"delivered_on": "2026-11-01", '
        + text[at:].replace(event["delivered_on"], "2027-01-01", 1)
    )
    decoded = decode(twice, registry(), TODAY)
    assert [p.field for p in decoded.errors] == ["delivered_on"]
    assert decoded.errors[0].message == GIVEN_TWICE
