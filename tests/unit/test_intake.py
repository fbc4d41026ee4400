"""The events of a request body (`api/intake.events_in`)."""

from __future__ import annotations

import json

import pytest

from accrochage.api import intake
from accrochage.api.errors import ApiError
from accrochage.api.intake import events_in
from accrochage.models.decode import decode
from tests.factories import TODAY, delivered_event
from tests.unit.test_stored_render import REGISTRY


def _unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object) -> None:
        raise AssertionError("the body was parsed before decoding")

    monkeypatch.setattr(intake, "loads_json", refused)


@pytest.mark.parametrize("space", ["", " ", "\r\n\t "])
def test_one_event_is_left_whole_for_decoding_to_parse_once(
    space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (space + json.dumps(delivered_event())).encode()
    _unparsed(monkeypatch)
    items, array = events_in(body, 10, "http:test")
    assert not array
    assert [item.raw for item in items] == [body]
    assert decode(items[0].raw, REGISTRY, TODAY).valid


@pytest.mark.parametrize(
    "body",
    [b'{"record_id": "a", "record_id": "b"}', b'{"record_id": ', b'{"a": 1} [2]', b"{" * 5000],
)
def test_a_body_that_starts_as_an_object_is_one_event_whatever_follows(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unparsed(monkeypatch)
    items, array = events_in(body, 10, "http:test")
    assert not array and [item.raw for item in items] == [body]


def test_an_array_is_still_parsed_into_its_events() -> None:
    events = [delivered_event(record_id=f"r{n}") for n in range(3)]
    items, array = events_in(b"  " + json.dumps(events).encode(), 10, "http:test")
    assert array
    assert [item.raw for item in items] == events


def test_an_array_above_the_limit_is_refused_whole() -> None:
    body = json.dumps([delivered_event(record_id=f"r{n}") for n in range(3)]).encode()
    with pytest.raises(ApiError) as refused:
        events_in(body, 2, "http:test")
    assert refused.value.status == 413
