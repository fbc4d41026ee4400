"""A passage written directly (`passage_bytes`) is, byte for byte, the passage lxml builds and
serialises (`passage_element` + `fragment`), the form the files held before and the XSD gate
checks: for every kind of event, in both schemas, and for every character lxml accepts; a
character lxml refuses is refused as it was (lxml itself raises)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from lxml import etree

from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.decode import decode
from accrochage.models.event import DeliveredEvent
from accrochage.sinks import passage
from accrochage.sinks.passage import fragment, passage_bytes, passage_element
from accrochage.sinks.profiles import PROFILES
from tests.factories import TODAY, delivered_event
from tests.unit.test_stored_render import CASES, REGISTRY

PROFILE = PROFILES["1.1.5"]


def _lxml(event: DeliveredEvent, version: str) -> bytes:
    return fragment(passage_element(event, PROFILES[version])) + b"\n"


def direct_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """`passage_bytes` may not fall back to lxml here: the bytes compared are its own."""

    def refused(*_: object) -> None:
        raise AssertionError("passage_bytes went through lxml")

    monkeypatch.setattr(passage, "passage_element", refused)


def _valid(raw: object) -> DeliveredEvent:
    decoded = decode(raw, REGISTRY, TODAY)  # type: ignore[arg-type]
    assert decoded.valid, decoded.errors
    assert isinstance(decoded.event, DeliveredEvent)
    return decoded.event


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("version", list(PROFILES))
def test_every_kind_of_event_is_written_as_lxml_writes_it(
    name: str, version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _valid(CASES[name])
    expected = _lxml(event, version)
    direct_only(monkeypatch)
    assert passage_bytes(event, PROFILES[version]) == expected


def test_a_generated_corpus_is_written_as_lxml_writes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generated = generate_events(
        3_000, [GeneratedCertifier("pix", ["RS5875", "RNCP35726"])], today=TODAY, seed=21
    )
    events = [
        decoded.event
        for decoded in (decode(raw, REGISTRY, TODAY) for raw in generated)
        if decoded.valid and isinstance(decoded.event, DeliveredEvent)
    ]
    assert len(events) > 2_000
    expected = {version: [_lxml(event, version) for event in events] for version in PROFILES}
    direct_only(monkeypatch)
    for version, passages in expected.items():
        assert [passage_bytes(event, PROFILES[version]) for event in events] == passages


def _refused_by_lxml(character: str) -> bool:
    node = etree.Element("x")
    try:
        node.text = character
        etree.tostring(node, encoding="UTF-8")
    except ValueError:
        return True
    return False


def _accepted_pieces(size: int = 4_096) -> Iterator[str]:
    piece: list[str] = []
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        if _refused_by_lxml(character):
            continue
        piece.append(character)
        if len(piece) == size:
            yield "".join(piece)
            piece = []
    if piece:
        yield "".join(piece)


def test_every_character_lxml_accepts_is_written_as_lxml_writes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = _valid(delivered_event())
    events = [
        base.model_copy(update={"option_label": text, "verbatim": f"a{text}b"})
        for text in _accepted_pieces()
    ]
    assert len(events) > 250  # the whole of Unicode went through
    expected = [_lxml(event, "1.1.5") for event in events]
    direct_only(monkeypatch)
    assert [passage_bytes(event, PROFILE) for event in events] == expected


def test_the_characters_written_through_lxml_are_exactly_those_lxml_refuses() -> None:
    """`passage_bytes` hands lxml a text holding any character of `_NOT_XML`: that set must be
    lxml's own, over the whole of Unicode (else a text would be written that lxml refuses, or
    a valid one slowed down for nothing)."""
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        assert (passage._NOT_XML.search(character) is not None) is _refused_by_lxml(character), hex(
            code
        )


@pytest.mark.parametrize("code", [0x0, 0x8, 0xB, 0xC, 0x1F, 0xD800, 0xDFFF, 0xFFFE, 0xFFFF])
def test_a_character_lxml_refuses_is_refused(code: int) -> None:
    assert _refused_by_lxml(chr(code))
    event = _valid(delivered_event()).model_copy(update={"verbatim": f"ok{chr(code)}"})
    with pytest.raises(ValueError):
        passage_bytes(event, PROFILE)


def test_a_printable_character_is_never_one_lxml_refuses_nor_a_carriage_return() -> None:
    """`_escaped` searches `_NOT_XML` and CR in a text that is not printable only: that
    shortcut holds for every character of Unicode (each piece of the test above is checked
    whole, so a printable piece alone would not show it)."""
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        if character.isprintable():
            assert passage._NOT_XML.search(character) is None and character != "\r", hex(code)


def test_an_element_left_empty_is_written_as_lxml_writes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Validation never lets a passage's group be empty; the writer still writes one as lxml
    does (`<cpf:x/>`), never as a start and an end tag."""
    event = _valid(delivered_event()).model_copy(update={"holder": None, "cpf_file": None})
    expected = _lxml(event, "1.1.5")
    assert b"<cpf:identificationTitulaire/>" in expected
    direct_only(monkeypatch)
    assert passage_bytes(event, PROFILE) == expected
