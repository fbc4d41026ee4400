"""Validate once (issue 13, item 2): what flush renders is what ingest validated.

A record keeps its canonical content (`Decoded.content`); the XML sink loads it again
(`event_from_content`) to render its passage. For every valid event, that passage must be,
byte for byte, the passage of the event `decode` validated at ingest: in both schema versions
and both identity branches, whichever way the event arrived (JSON text, or a dict), scores as
written included. A change of the stored form (another JSON encoder, passages prepared at
ingest, a loader that skips validation) keeps this test green or changes what is sent.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.decode import Decoded, decode
from accrochage.models.event import DeliveredEvent, event_from_content
from accrochage.sinks.passage import passage_bytes
from accrochage.sinks.profiles import PROFILES
from accrochage.streams.incoming import decode_ready
from tests.factories import (
    HOLDER_NIR,
    TODAY,
    cpf_file_event,
    delivered_event,
    make_nir,
    make_registry,
)

REGISTRY = make_registry()
GENERATED = [GeneratedCertifier("pix", ["RS5875", "RNCP35726"])]
SEEDS = (11, 12, 13)
PER_SEED = 2_000


def _holder(**changes: Any) -> dict[str, Any]:
    holder: dict[str, Any] = delivered_event()["holder"]
    holder.update(changes)
    return holder


def _without(*keys: str, **overrides: Any) -> dict[str, Any]:
    event = delivered_event(**overrides)
    for key in keys:
        event.pop(key)
    return event


FOREIGN = {"insee_code": "99109", "city": "BERLIN", "country": "ALLEMAGNE"}

CASES: dict[str, dict[str, Any]] = {
    "contract example": delivered_event(),
    "cpf file": cpf_file_event(),
    "nir": delivered_event(holder=_holder(nir=HOLDER_NIR)),
    "nir padded": delivered_event(holder=_holder(nir=f" {HOLDER_NIR} ")),
    "foreign birth": delivered_event(holder=_holder(birth_place=FOREIGN)),
    "foreign birth, country code": delivered_event(
        holder=_holder(birth_place={**FOREIGN, "country_code": "109"})
    ),
    "french insee code": delivered_event(
        holder=_holder(birth_place={"insee_code": "75056", "city": "PARIS", "country": "FRANCE"})
    ),
    "no birth place": delivered_event(holder=_holder(birth_place=None)),
    "birth place absent": delivered_event(
        holder={k: v for k, v in _holder().items() if k != "birth_place"}
    ),
    "year of birth only": delivered_event(
        holder=_holder(birth_date={"year": 1993, "month": None, "day": None})
    ),
    "month of birth, no day": delivered_event(
        holder=_holder(birth_date={"year": 1993, "month": 5})
    ),
    "birth date as parts": delivered_event(
        holder=_holder(birth_date={"year": 1993, "month": 5, "day": 23})
    ),
    "three first names, usage name": delivered_event(
        holder=_holder(first_names=["Bart", "Jean-Luc", "Élie"], usage_name="Dupont")
    ),
    "padded texts": delivered_event(
        record_id="  PX-2026-000124 ",
        option_label="\u3000Option web\u00a0",
        verbatim="\tCompétences évaluées\t",
        holder=_holder(
            birth_name="  Haba ",
            first_names=[" Bart\u2003"],
            birth_place={"postal_code": " 75002 ", "city": "\u00a0PARIS", "country": "FRANCE "},
        ),
    ),
    "characters XML escapes": delivered_event(
        option_label="R&D <web> \"quoted\" 'apostrophe' >",
        verbatim="Ünïcödé 🎓 ç œ ß",
        proof_url="https://example.fr/a?b=1&c=2",
    ),
    "nils everywhere": delivered_event(
        valid_until=None,
        mention=None,
        language_level=None,
        digital_level=None,
        exam=None,
        registration=None,
        proof_url=None,
        option_label=None,
        verbatim=None,
    ),
    "optional blocks absent": _without(
        "valid_until", "mention", "language_level", "digital_level", "exam", "registration"
    ),
    "no type, no certified": _without("type", "certified"),
    "not certified": delivered_event(certified=False),
    "digital level, general score only": delivered_event(digital_level={"general_score": 12}),
    "digital level, empty": delivered_event(digital_level={}),
    "digital level, several results": delivered_event(
        digital_level={
            "general_score": 1000,
            "results": [
                {"level": 8, "area": "5", "competence": "3"},
                {"level": 1, "area": "1", "competence": "1"},
                {"area": "2"},
            ],
        }
    ),
    "mention, language, validity": delivered_event(
        obtention="PAR_ADMISSION",
        certification={"type": "RNCP", "code": "RNCP35726"},
        score=None,
        digital_level=None,
        mention="MENTION_TRES_BIEN_AVEC_FELICITATIONS_DU_JURY",
        language_level="B2",
        valid_until="2031-11-18",
    ),
    "vae registration": delivered_event(
        registration={
            "access_mode": "VAE",
            "vae_path": "VAE_CLASSIQUE",
            "initiative": "EMPLOYEUR",
            "date": "2026-01-15",
        }
    ),
    "exam without dates": delivered_event(exam={"mode": "MIXTE"}),
    "score padded": delivered_event(score=" 324 "),
    "score as an integer": delivered_event(score=324),
}

SCORES_AS_WRITTEN = ("324", "12.50", "1e2", "1.0", "0.125", "7.10E1", "-0.0")
"""JSON numbers, written in the event's text: the content keeps each as written."""


def _as_text(event: dict[str, Any], score: str | None = None) -> bytes:
    if score is None:
        return json.dumps(event, ensure_ascii=False).encode()
    text = json.dumps({**event, "score": "@score@"}, ensure_ascii=False)
    return text.replace('"@score@"', score).encode()


def _arrivals() -> Iterator[tuple[str, bytes | dict[str, Any]]]:
    for name, event in CASES.items():
        yield f"{name} (text)", _as_text(event)
        yield f"{name} (dict)", copy.deepcopy(event)
    for score in SCORES_AS_WRITTEN:
        yield f"score {score} (text)", _as_text(delivered_event(), score)
    for number in (12.5, 1.0, 0.1, 1e-05, 324):
        yield f"score {number!r} (dict)", delivered_event(score=number)


def _rendered(decoded: Decoded) -> dict[str, bytes]:
    """Each profile's passage, from the validated event and from the stored content: equal."""
    assert decoded.valid, decoded.errors
    assert isinstance(decoded.event, DeliveredEvent)
    assert decoded.content is not None
    stored = event_from_content(decoded.content, decoded.event_id)
    passages = {}
    for version, profile in PROFILES.items():
        validated = passage_bytes(decoded.event, profile)
        assert passage_bytes(stored, profile) == validated, version
        passages[version] = validated
    return passages


@pytest.mark.parametrize(("name", "raw"), list(_arrivals()), ids=lambda v: v)
def test_fixtures_render_the_same_from_the_stored_content(
    name: str, raw: bytes | dict[str, Any]
) -> None:
    _rendered(decode(raw, REGISTRY, TODAY))


def test_a_score_reaches_the_xml_as_written() -> None:
    for score in SCORES_AS_WRITTEN:
        passages = _rendered(decode(_as_text(delivered_event(), score), REGISTRY, TODAY))
        for passage in passages.values():
            assert f"<cpf:scoring>{score}</cpf:scoring>".encode() in passage


def test_a_generated_corpus_renders_the_same_from_the_stored_content() -> None:
    branches: Counter[str] = Counter()
    rendered = 0
    for seed in SEEDS:
        events = generate_events(PER_SEED, GENERATED, today=TODAY, seed=seed, invalid_ratio=0.05)
        for index, event in enumerate(events):
            raw = copy.deepcopy(event) if index % 3 == 0 else _as_text(event)
            decoded = decode(raw, REGISTRY, TODAY)
            if not decoded.valid:
                continue  # an invalid record is never rendered
            rendered += 1
            for version, passage in _rendered(decoded).items():
                for tag in ("identifiantNational", "titulaire", "dossierFormation"):
                    if f"<cpf:{tag}>".encode() in passage:
                        branches[f"{version} {tag}"] += 1
    assert rendered >= 0.9 * len(SEEDS) * PER_SEED
    # Both identity branches of 1.1.5 (a NIR, a civil identity), and the CPF file.
    assert branches["1.1.5 identifiantNational"] > 100
    assert branches["1.1.5 titulaire"] > 1_000
    assert branches["1.1.2 identifiantNational"] == 0
    assert branches["1.1.2 dossierFormation"] > 50


def test_a_prepared_passage_is_the_passage_of_the_stored_content() -> None:
    """What a decode process prepares (`decode_ready` with the files' schema) is what flush
    would render from the stored content, and its exact size is the record's size."""
    arrivals = [raw for _, raw in _arrivals()]
    generated = generate_events(PER_SEED, GENERATED, today=TODAY, seed=SEEDS[0])
    arrivals += [_as_text(event) for event in generated]
    prepared = 0
    for raw in arrivals:
        for version, profile in PROFILES.items():
            decoded, size = decode_ready(copy.deepcopy(raw), REGISTRY, TODAY, None, profile)
            if not decoded.valid:
                assert decoded.passage is None
                continue
            assert decoded.passage is not None and decoded.content is not None
            assert decoded.passage.schema == version
            stored = event_from_content(decoded.content, decoded.event_id)
            assert decoded.passage.data == passage_bytes(stored, profile)
            assert size == len(decoded.passage.data)
            prepared += 1
    assert prepared >= 0.9 * len(arrivals) * len(PROFILES)


def test_a_temporary_nir_keeps_the_civil_identity() -> None:
    """Only a NIR of a person born (1 or 2) goes out as `identifiantNational` (1.1.5)."""
    nir = make_nir("7930599123456")
    decoded = decode(delivered_event(holder=_holder(nir=nir)), REGISTRY, TODAY)
    assert decoded.valid, decoded.errors  # a temporary NIR is kept, not sent
    assert b"<cpf:titulaire>" in _rendered(decoded)["1.1.5"]
