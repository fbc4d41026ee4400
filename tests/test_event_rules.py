"""Validation of one event (CONTRACT.md §1, DESIGN.md "errors vs warnings"), rule by rule.

Every error names its field as a dotted path in the contract's terms and says what is
expected; a warning names its field too and never makes a record invalid.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from lxml import etree

from accrochage.models.decode import Decoded, Kind, decode
from accrochage.models.event import DeliveredEvent
from accrochage.models.nir import nir_key
from accrochage.models.registry import Certifier, Registry
from accrochage.sinks.passage import passage_element
from accrochage.sinks.profiles import NAMESPACE, PROFILES
from tests.factories import (
    EMITTER,
    HOLDER_NIR,
    PIX,
    TODAY,
    cpf_file_event,
    delivered_event,
    make_nir,
    make_registry,
    revoked_event,
)

REGISTRY = make_registry()
NS = {"cpf": NAMESPACE}
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def run(event: Any, registry: Registry = REGISTRY, today: Any = TODAY) -> Decoded:
    return decode(event, registry, today)


def _steps(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _STEP.findall(path)]


def put(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set `holder.first_names[1]`-style paths in place; returns the event."""
    *parents, last = _steps(path)
    node: Any = event
    for step in parents:
        node = node[step]
    node[last] = value
    return event


def drop(event: dict[str, Any], path: str) -> dict[str, Any]:
    *parents, last = _steps(path)
    node: Any = event
    for step in parents:
        node = node[step]
    del node[last]
    return event


def valid(decoded: Decoded) -> DeliveredEvent:
    assert decoded.errors == [], decoded.errors
    assert decoded.valid is True
    assert isinstance(decoded.event, DeliveredEvent)
    return decoded.event


def only_error(decoded: Decoded, field: str, fragment: str) -> None:
    """Exactly one error, on `field`, whose message contains `fragment`."""
    assert decoded.valid is False
    assert [p.field for p in decoded.errors] == [field], decoded.errors
    assert fragment in decoded.errors[0].message, decoded.errors[0].message


def has_error(decoded: Decoded, field: str, fragment: str) -> None:
    assert decoded.valid is False
    messages = [p.message for p in decoded.errors if p.field == field]
    assert messages, decoded.errors
    assert any(fragment in m for m in messages), messages


def only_warning(decoded: Decoded, field: str, fragment: str) -> None:
    valid(decoded)
    assert [p.field for p in decoded.warnings] == [field], decoded.warnings
    assert fragment in decoded.warnings[0].message, decoded.warnings[0].message


def birth_insee(event: dict[str, Any], insee: str) -> dict[str, Any]:
    event["holder"]["birth_place"] = {"insee_code": insee, "city": "PARIS", "country": "FRANCE"}
    return event


# --------------------------------------------------------------------------------------------
# The example itself
# --------------------------------------------------------------------------------------------


def test_the_contract_example_is_valid_without_warnings() -> None:
    decoded = run(delivered_event())
    event = valid(decoded)
    assert decoded.kind is Kind.DELIVERED
    assert decoded.warnings == []
    assert decoded.record_id == "PX-2026-000123"
    assert decoded.certifier == "pix"
    assert event.holder is not None and event.holder.first_names == ["Bart"]


def test_the_cpf_file_variant_is_valid() -> None:
    event = valid(run(cpf_file_event()))
    assert event.holder is None and event.cpf_file is not None


def test_a_json_text_and_bytes_decode_like_the_dict() -> None:
    raw = json.dumps(delivered_event())
    for form in (raw, raw.encode()):
        decoded = run(form)
        valid(decoded)
        assert decoded.content_hash == run(delivered_event()).content_hash


# --------------------------------------------------------------------------------------------
# XSD lengths: accepted at the maximum, refused one character above
# --------------------------------------------------------------------------------------------

LENGTHS = [
    ("holder.birth_name", 60, delivered_event),
    ("holder.usage_name", 60, delivered_event),
    ("holder.first_names[0]", 60, delivered_event),
    ("holder.birth_place.city", 60, delivered_event),
    ("holder.birth_place.country", 60, delivered_event),
    ("holder.birth_place.postal_code", 9, delivered_event),
    ("cpf_file.id", 13, cpf_file_event),
    ("cpf_file.holder_name", 30, cpf_file_event),
    ("cpf_file.holder_first_name", 20, cpf_file_event),
    ("score", 255, delivered_event),
    ("proof_url", 255, delivered_event),
    ("option_label", 255, delivered_event),
    ("verbatim", 255, delivered_event),
    ("exam.center_postal_code", 9, delivered_event),
    ("event_id", 255, delivered_event),
    ("source", 255, delivered_event),
]


@pytest.mark.parametrize(("path", "limit", "make"), LENGTHS, ids=[c[0] for c in LENGTHS])
def test_text_length_boundary(path: str, limit: int, make: Any) -> None:
    at_max = valid(run(put(make(), path, "x" * limit)))
    assert at_max.model_dump_json().count("x" * limit) == 1
    only_error(run(put(make(), path, "x" * (limit + 1))), path, f"at most {limit} character")


@pytest.mark.parametrize("char", ["é", "😀", "ß"])
def test_lengths_count_characters_not_bytes(char: str) -> None:
    valid(run(put(delivered_event(), "holder.birth_name", char * 60)))
    only_error(
        run(put(delivered_event(), "holder.birth_name", char * 61)),
        "holder.birth_name",
        "at most 60 characters",
    )


def test_a_later_first_name_is_named_by_its_index() -> None:
    event = put(delivered_event(), "holder.first_names", ["Bart", "x" * 61, "Lisa"])
    only_error(run(event), "holder.first_names[1]", "at most 60 characters")


@pytest.mark.parametrize(
    ("value", "ok", "fragment"),
    [
        ("75056", True, ""),
        ("99109", True, ""),
        ("7511", False, "at least 5"),
        ("751150", False, "at most 5"),
    ],
)
def test_insee_code_has_exactly_5_characters(value: str, ok: bool, fragment: str) -> None:
    decoded = run(birth_insee(delivered_event(), value))
    if ok:
        valid(decoded)
    else:
        only_error(decoded, "holder.birth_place.insee_code", fragment)


@pytest.mark.parametrize(
    ("value", "ok", "fragment"),
    [("109", True, ""), ("10", False, "at least 3"), ("1090", False, "at most 3")],
)
def test_country_code_has_exactly_3_characters(value: str, ok: bool, fragment: str) -> None:
    decoded = run(put(delivered_event(), "holder.birth_place.country_code", value))
    if ok:
        valid(decoded)
    else:
        only_error(decoded, "holder.birth_place.country_code", fragment)


# --------------------------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------------------------

ENUMS: dict[str, tuple[str, ...]] = {
    "obtention": ("PAR_ADMISSION", "PAR_SCORING"),
    "mention": (
        "SANS_MENTION",
        "MENTION_ASSEZ_BIEN",
        "MENTION_BIEN",
        "MENTION_TRES_BIEN",
        "MENTION_TRES_BIEN_AVEC_FELICITATIONS_DU_JURY",
    ),
    "language_level": ("A1", "A2", "B1", "B2", "C1", "C2", "INSUFFISANT"),
    "exam.mode": ("A_DISTANCE", "EN_PRESENTIEL", "MIXTE"),
    "registration.access_mode": (
        "FORMATION_INITIALE_HORS_APPRENTISSAGE",
        "FORMATION_INITIALE_APPRENTISSAGE",
        "FORMATION_CONTINUE_HORS_CONTRAT_DE_PROFESSIONNALISATION",
        "FORMATION_CONTINUE_CONTRAT_DE_PROFESSIONNALISATION",
        "VAE",
        "EQUIVALENCE_DIPLOME_ETRANGER",
        "CANDIDAT_LIBRE",
    ),
    "registration.vae_path": ("CONGES_VAE", "VAE_CLASSIQUE"),
    "registration.initiative": ("CERTIFIE", "OF", "POLE_EMPLOI", "EMPLOYEUR", "AUTRE"),
    "holder.sex": ("M", "F"),
    "certification.type": ("RNCP", "RS"),
}
ENUM_VALUES = [(path, value) for path, values in ENUMS.items() for value in values]


def _with_enum(path: str, value: str) -> dict[str, Any]:
    event = put(delivered_event(), path, value)
    if path == "registration.vae_path":
        event["registration"]["access_mode"] = "VAE"
    if path == "certification.type":
        event["certification"]["code"] = "RNCP35726" if value == "RNCP" else "RS5875"
    return event


@pytest.mark.parametrize(("path", "value"), ENUM_VALUES, ids=[f"{p}={v}" for p, v in ENUM_VALUES])
def test_every_enumeration_value_is_accepted(path: str, value: str) -> None:
    decoded = run(_with_enum(path, value))
    event = valid(decoded)
    assert decoded.warnings == []
    assert value in event.model_dump_json()


@pytest.mark.parametrize("path", list(ENUMS))
@pytest.mark.parametrize("bad", ["NOT_IN_ENUM", "lower", ""])
def test_a_value_outside_an_enumeration_is_refused(path: str, bad: str) -> None:
    value = ENUMS[path][0].lower() if bad == "lower" else bad
    decoded = run(put(delivered_event(), path, value))
    has_error(decoded, path, f"'{ENUMS[path][-1]}'")
    assert {p.field for p in decoded.errors} == {path}


def test_an_unknown_event_type_is_refused() -> None:
    only_error(run(delivered_event(type="certification.updated")), "type", "certification.")


# --------------------------------------------------------------------------------------------
# Digital level ranges
# --------------------------------------------------------------------------------------------

DIGITAL = [
    ("digital_level.general_score", 0, "greater than or equal to 1"),
    ("digital_level.general_score", 1, None),
    ("digital_level.general_score", 1000, None),
    ("digital_level.general_score", 1001, "less than or equal to 1000"),
    ("digital_level.results[0].level", 0, "greater than or equal to 1"),
    ("digital_level.results[0].level", 1, None),
    ("digital_level.results[0].level", 8, None),
    ("digital_level.results[0].level", 9, "less than or equal to 8"),
    ("digital_level.results[0].area", "5", None),
    ("digital_level.results[0].area", "12", "at most 1 character"),
    ("digital_level.results[0].area", "", "empty"),
    ("digital_level.results[0].area", " ", "empty"),
    ("digital_level.results[0].competence", "8", None),
    ("digital_level.results[0].competence", "21", "at most 1 character"),
    ("digital_level.results[0].competence", "", "empty"),
]


@pytest.mark.parametrize(
    ("path", "value", "fragment"), DIGITAL, ids=[f"{c[0]}={c[1]!r}" for c in DIGITAL]
)
def test_digital_level_ranges(path: str, value: Any, fragment: str | None) -> None:
    decoded = run(put(delivered_event(), path, value))
    if fragment is None:
        valid(decoded)
    else:
        only_error(decoded, path, fragment)


def test_digital_level_results_may_be_empty_or_partial() -> None:
    valid(run(delivered_event(digital_level={"general_score": 5, "results": []})))
    valid(run(delivered_event(digital_level={"results": [{"level": 2}]})))


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------

DATE_FIELDS = [
    "delivered_on",
    "valid_until",
    "exam.start",
    "exam.end",
    "registration.date",
    "holder.birth_date",
]
BAD_DATES = [
    ("1899-12-31", "1900–2099"),
    ("2100-01-01", "1900–2099"),
    ("2026-02-30", "not a day of the calendar"),
    ("2025-02-29", "not a day of the calendar"),
    ("2026-13-01", "not a day of the calendar"),
    ("18/11/2026", "YYYY-MM-DD"),
    ("2026-1-18", "YYYY-MM-DD"),
    ("20261118", "YYYY-MM-DD"),
    ("2026-11-18T00:00:00", "YYYY-MM-DD"),
    (20261118, "YYYY-MM-DD"),
]


@pytest.mark.parametrize("path", DATE_FIELDS)
@pytest.mark.parametrize(("value", "fragment"), BAD_DATES, ids=[repr(v) for v, _ in BAD_DATES])
def test_bad_dates_are_refused(path: str, value: Any, fragment: str) -> None:
    only_error(run(put(delivered_event(), path, value)), path, fragment)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("holder.birth_date", "1900-01-01"),
        ("holder.birth_date", "2000-02-29"),
        ("registration.date", "1900-01-01"),
        ("valid_until", "2099-12-31"),
        ("valid_until", "2026-11-18"),
    ],
)
def test_dates_at_the_range_limits_are_accepted(path: str, value: str) -> None:
    valid(run(put(delivered_event(), path, value)))


# --------------------------------------------------------------------------------------------
# JSON types are not coerced, except score
# --------------------------------------------------------------------------------------------

TYPE_ERRORS = [
    ("holder.birth_name", 123, "expected a string"),
    ("holder.first_names[0]", 7, "expected a string"),
    ("holder.first_names", "Bart", "JSON array"),
    ("certified", "true", "expected true or false"),
    ("certified", 1, "expected true or false"),
    ("digital_level.general_score", "324", "expected an integer"),
    ("digital_level.results[0].level", 4.0, "expected an integer"),
    ("event_id", 42, "expected a string"),
    ("exam", [], "JSON object"),
    ("certification.code", 5875, "expected a string"),
    ("score", True, "expected a string"),
    ("holder.birth_date", 1993, "YYYY-MM-DD"),
]


@pytest.mark.parametrize(
    ("path", "value", "fragment"), TYPE_ERRORS, ids=[f"{c[0]}={c[1]!r}" for c in TYPE_ERRORS]
)
def test_json_types_are_not_coerced(path: str, value: Any, fragment: str) -> None:
    has_error(run(put(delivered_event(), path, value)), path, fragment)


@pytest.mark.parametrize(("number", "text"), [(324, "324"), (12.4, "12.4"), (15.0, "15")])
def test_score_alone_accepts_a_number_and_keeps_it_as_text(number: float, text: str) -> None:
    event = valid(run(delivered_event(score=number)))
    assert event.score == text
    passage = passage_element(event, PROFILES["1.1.2"])
    assert passage.findtext("cpf:scoring", namespaces=NS) == text


# --------------------------------------------------------------------------------------------
# Rules across fields
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cert_type", "code"), [("RNCP", "RS5875"), ("RS", "RNCP35726")], ids=["RNCP-RS", "RS-RNCP"]
)
def test_the_code_prefix_must_match_the_type(cert_type: str, code: str) -> None:
    decoded = run(delivered_event(certification={"type": cert_type, "code": code}))
    only_error(decoded, "certification.code", f"does not match certification.type {cert_type}")


@pytest.mark.parametrize("code", ["RS-5875", "rs5875", "RS", "RNCP", "CQP123", "RS 5875"])
def test_a_code_is_rncp_or_rs_then_digits(code: str) -> None:
    has_error(
        run(delivered_event(certification={"type": "RS", "code": code})),
        "certification.code",
        "expected RNCP or RS followed by digits",
    )


def test_valid_until_before_delivered_on_is_refused() -> None:
    only_error(run(delivered_event(valid_until="2026-11-17")), "valid_until", "before delivered_on")


def test_exam_start_after_exam_end_is_refused() -> None:
    exam = {"start": "2026-11-10", "end": "2026-11-09"}
    only_error(run(delivered_event(exam=exam)), "exam.end", "before exam.start 2026-11-10")


def test_delivered_on_in_the_future_is_refused_as_of_the_injected_today() -> None:
    event = delivered_event(delivered_on=(TODAY + timedelta(days=2)).isoformat())
    only_error(run(event), "delivered_on", "in the future")
    valid(run(delivered_event(delivered_on=TODAY.isoformat())))
    # Tomorrow in Paris is today in New Caledonia (11 hours ahead) after its midnight.
    valid(run(delivered_event(delivered_on=(TODAY + timedelta(days=1)).isoformat())))
    # The same example, judged two days before its delivery.
    only_error(
        run(delivered_event(), today=TODAY.replace(year=2026, month=11, day=16)),
        "delivered_on",
        "in the future (today is 2026-11-16 in Paris, 2026-11-17 at most in overseas France)",
    )


@pytest.mark.parametrize(
    ("names", "fragment"),
    [([], "at least 1 item(s)"), (["A", "B", "C", "D"], "at most 3 item(s), not 4")],
)
def test_one_to_three_first_names(names: list[str], fragment: str) -> None:
    """Said in the sender's words: pydantic's "List should have at most 3 items after
    validation" came through as it was."""
    only_error(
        run(put(delivered_event(), "holder.first_names", names)), "holder.first_names", fragment
    )


@pytest.mark.parametrize("count", [1, 2, 3])
def test_one_two_or_three_first_names_are_accepted(count: int) -> None:
    names = ["Anne", "Marie", "Zoé"][:count]
    event = valid(run(put(delivered_event(), "holder.first_names", names)))
    assert event.holder is not None and event.holder.first_names == names


@pytest.mark.parametrize(
    "birth",
    [
        "2026-11-19",
        "2027-01-01",
        {"year": 2027, "month": None, "day": None},
        {"year": 2026, "month": 12, "day": None},
        {"year": 2026, "month": 11, "day": 19},
    ],
    ids=str,
)
def test_a_birth_after_the_delivery_is_refused(birth: Any) -> None:
    event = put(delivered_event(), "holder.birth_date", birth)
    only_error(run(event), "holder.birth_date", "after delivered_on")


@pytest.mark.parametrize(
    "birth",
    [
        "2026-11-18",
        {"year": 2026, "month": None, "day": None},
        {"year": 2026, "month": 11, "day": None},
        {"year": 1993},
        {"year": 1993, "month": 5},
    ],
    ids=str,
)
def test_a_partial_birth_date_that_may_precede_the_delivery_is_accepted(birth: Any) -> None:
    valid(run(put(delivered_event(), "holder.birth_date", birth)))


@pytest.mark.parametrize(
    ("birth", "fragment"),
    [
        ({"year": 1993, "month": None, "day": 23}, "needs a month"),
        ({"year": 1993, "day": 23}, "needs a month"),
        ({"year": 1993, "month": 2, "day": 30}, "not a day of the calendar"),
        ({"year": 1993, "month": 13}, "1–12"),
        ({"year": 1993, "month": 5, "day": 32}, "1–31"),
        ({"year": 1899}, "1900–2099"),
        ({"month": 5}, "year of birth is required"),
        ({"year": "1993"}, "integer"),
        ({"year": 1993, "hour": 2}, "unknown key"),
    ],
    ids=str,
)
def test_partial_birth_date_rules(birth: dict[str, Any], fragment: str) -> None:
    only_error(
        run(put(delivered_event(), "holder.birth_date", birth)), "holder.birth_date", fragment
    )


def test_insee_code_and_postal_code_together_are_refused() -> None:
    event = put(delivered_event(), "holder.birth_place.insee_code", "75056")
    only_error(run(event), "holder.birth_place.postal_code", "either insee_code or postal_code")


# --------------------------------------------------------------------------------------------
# NIR
# --------------------------------------------------------------------------------------------


def _with_nir(nir: str, **holder: Any) -> dict[str, Any]:
    event = delivered_event()
    event["holder"].update(nir=nir, **holder)
    return event


def test_the_factory_nir_is_consistent_with_the_holder() -> None:
    decoded = run(_with_nir(HOLDER_NIR))
    valid(decoded)
    assert decoded.warnings == []


def test_nir_key_follows_97_minus_n_mod_97() -> None:
    # Checked independently: adding the key to the 13-digit number gives a multiple of 97.
    for first13 in ("1930575056123", "2850178006048", "1010101001001"):
        assert (int(first13) + nir_key(first13)) % 97 == 0
    assert nir_key("193052A123456") == 97 - int("1930519123456") % 97
    assert nir_key("193052B123456") == 97 - int("1930518123456") % 97


@pytest.mark.parametrize("first13", ["193052A123456", "293052B123456"], ids=["2A", "2B"])
def test_corsican_nir_with_a_correct_key_is_accepted(first13: str) -> None:
    sex = "M" if first13[0] == "1" else "F"
    decoded = run(_with_nir(make_nir(first13), sex=sex))
    valid(decoded)
    assert decoded.warnings == []


@pytest.mark.parametrize("first13", ["193052A123456", "293052B123456"], ids=["2A", "2B"])
def test_corsican_nir_with_a_key_computed_as_digits_is_refused(first13: str) -> None:
    # The key of the same number with 2A/2B read as 20: what a naive implementation computes.
    naive = 97 - int(first13.replace("2A", "20").replace("2B", "20")) % 97
    assert naive != nir_key(first13)
    only_error(run(_with_nir(f"{first13}{naive:02d}")), "holder.nir", "does not match")


@pytest.mark.parametrize(
    "nir",
    [
        "1930575056A23" + "00",  # a letter outside the department
        "193052C12345600",  # 2C is not a department
        "193052a12345600",  # lower-case Corsica
        "1 93 05 75 056 123 84",
        "19305750561238",  # 14 characters
        "1930575056123845",  # 16 characters
        "1930575056123",  # the 13 characters without the key
    ],
)
def test_nir_wrong_alphabet_or_length_is_refused(nir: str) -> None:
    only_error(run(_with_nir(nir)), "holder.nir", "expected 15 characters")


def test_nir_wrong_key_is_refused_without_quoting_a_digit() -> None:
    """The message goes back to the platform: it names the key, never its value nor the
    right one (a NIR is personal data)."""
    right = nir_key(HOLDER_NIR[:13])
    wrong = (right % 97) + 1
    decoded = run(_with_nir(f"{HOLDER_NIR[:13]}{wrong:02d}"))
    only_error(decoded, "holder.nir", "its key (the last 2 digits) does not match")
    other = run(_with_nir(f"{HOLDER_NIR[:12]}9{(wrong % 97) + 1:02d}"))
    assert other.errors[0].message == decoded.errors[0].message, "the same words whatever the NIR"


# --------------------------------------------------------------------------------------------
# Characters, blanks, trimming
# --------------------------------------------------------------------------------------------

CONTROLS = [
    ("\x01", "U+0001"),
    ("\t", "U+0009"),
    ("\n", "U+000A"),
    ("\ufffe", "U+FFFE"),
    ("\x85", "U+0085"),
]


@pytest.mark.parametrize(("char", "code"), CONTROLS, ids=[c for _, c in CONTROLS])
@pytest.mark.parametrize(
    ("path", "make"),
    [
        ("holder.birth_name", delivered_event),
        ("holder.first_names[0]", delivered_event),
        ("holder.birth_place.city", delivered_event),
        ("cpf_file.holder_name", cpf_file_event),
        ("verbatim", delivered_event),
    ],
    ids=lambda p: p if isinstance(p, str) else "",
)
def test_control_characters_are_refused_with_their_field(
    path: str, make: Any, char: str, code: str
) -> None:
    decoded = run(put(make(), path, f"Ha{char}ba"))
    only_error(decoded, path, code)
    assert "control character" in decoded.errors[0].message


BLANK_PATHS = [
    ("holder.birth_name", delivered_event),
    ("holder.usage_name", delivered_event),
    ("holder.first_names[0]", delivered_event),
    ("holder.birth_place.postal_code", delivered_event),
    ("score", delivered_event),
    ("verbatim", delivered_event),
    ("event_id", delivered_event),
    ("exam.center_postal_code", delivered_event),
    ("cpf_file.id", cpf_file_event),
    ("cpf_file.holder_first_name", cpf_file_event),
]


@pytest.mark.parametrize(
    "blank", ["", "   ", "\u00a0 \u3000"], ids=["empty", "spaces", "unicode-spaces"]
)
@pytest.mark.parametrize(("path", "make"), BLANK_PATHS, ids=[p for p, _ in BLANK_PATHS])
def test_blank_text_is_refused(path: str, make: Any, blank: str) -> None:
    only_error(run(put(make(), path, blank)), path, "must not be empty or blank")


def test_leading_and_trailing_spaces_are_trimmed_in_the_event_and_the_xml() -> None:
    event = delivered_event(score="  324 ", verbatim=" TOSA ")
    event["holder"].update(birth_name="  D'Amico ", first_names=[" Zoé  ", "Anne"])
    model = valid(run(event))
    assert model.holder is not None
    assert model.holder.birth_name == "D'Amico"
    assert model.holder.first_names == ["Zoé", "Anne"]
    passage = passage_element(model, PROFILES["1.1.2"])
    assert passage.findtext(".//cpf:nomNaissance", namespaces=NS) == "D'Amico"
    assert passage.findtext(".//cpf:prenom1", namespaces=NS) == "Zoé"
    assert passage.findtext("cpf:scoring", namespaces=NS) == "324"
    assert passage.findtext("cpf:verbatim", namespaces=NS) == "TOSA"


def test_a_name_of_60_characters_plus_surrounding_spaces_fits() -> None:
    valid(run(put(delivered_event(), "holder.birth_name", "  " + "x" * 60 + "  ")))


@pytest.mark.parametrize(
    "path",
    [
        "colour",
        "holder.nickname",
        "exam.room",
        "holder.birth_place.region",
        "digital_level.results[0].note",
    ],
)
def test_an_unknown_field_is_refused(path: str) -> None:
    only_error(run(put(delivered_event(), path, "x")), path, "not a field of the event contract")


# --------------------------------------------------------------------------------------------
# Identity: holder xor cpf_file
# --------------------------------------------------------------------------------------------


def test_holder_and_cpf_file_together_are_refused() -> None:
    event = cpf_file_event()
    event["holder"] = delivered_event()["holder"]
    only_error(run(event), "cpf_file", "either holder or cpf_file, not both")


def test_neither_holder_nor_cpf_file_is_refused() -> None:
    only_error(run(drop(delivered_event(), "holder")), "holder", "is required")


def test_a_null_holder_without_cpf_file_is_refused() -> None:
    only_error(run(delivered_event(holder=None)), "holder", "is required")


# --------------------------------------------------------------------------------------------
# Certifier
# --------------------------------------------------------------------------------------------


def test_an_unknown_certifier_is_refused() -> None:
    decoded = run(delivered_event(certifier="acme"))
    only_error(decoded, "certifier", "unknown certifier 'acme'")
    assert "pix" in decoded.errors[0].message  # names what is configured
    assert decoded.record_id == "PX-2026-000123"  # still a record, kept as invalid


def test_a_malformed_certifier_key_is_refused() -> None:
    has_error(run(delivered_event(certifier="PIX")), "certifier", "got 'PIX'")


def test_a_code_the_certifier_does_not_deliver_is_refused() -> None:
    decoded = run(delivered_event(certification={"type": "RS", "code": "RS9999"}))
    only_error(decoded, "certification.code", "RS9999 is not delivered by certifier 'pix'")


def test_the_certifier_is_inferred_from_the_code_when_omitted() -> None:
    decoded = run(drop(delivered_event(), "certifier"))
    valid(decoded)
    assert decoded.certifier == "pix"


def test_the_certifier_cannot_be_inferred_from_a_code_nobody_delivers() -> None:
    event = drop(delivered_event(certification={"type": "RS", "code": "RS1"}), "certifier")
    only_error(run(event), "certifier", "no configured certifier delivers RS1")


def test_the_certifier_cannot_be_inferred_from_a_shared_code() -> None:
    other = Certifier("tosa", "12ABC345", "MCFCER000999", frozenset({"RS5875"}))
    registry = Registry(EMITTER, [PIX, other])
    decoded = run(drop(delivered_event(), "certifier"), registry=registry)
    only_error(decoded, "certifier", "RS5875 is delivered by pix, tosa")
    # Named explicitly, either is fine.
    valid(run(delivered_event(certifier="tosa"), registry=registry))


# --------------------------------------------------------------------------------------------
# Warnings: reported, never blocking
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["start", "end"])
def test_exam_date_after_delivery_is_a_warning(which: str) -> None:
    exam = {"start": "2026-11-10", "end": "2026-11-10"}
    exam[which] = "2026-11-19"
    if which == "start":
        exam["end"] = "2026-11-19"
    decoded = run(delivered_event(exam=exam))
    valid(decoded)
    fields = [w.field for w in decoded.warnings]
    assert f"exam.{which}" in fields
    assert all("after delivered_on 2026-11-18" in w.message for w in decoded.warnings)


@pytest.mark.parametrize("access_mode", [None, "CANDIDAT_LIBRE"])
def test_vae_path_without_vae_access_is_a_warning(access_mode: str | None) -> None:
    registration = {"access_mode": access_mode, "vae_path": "VAE_CLASSIQUE"}
    decoded = run(delivered_event(registration=registration))
    only_warning(decoded, "registration.vae_path", "access_mode is not VAE")


def test_vae_path_with_vae_access_is_fine() -> None:
    decoded = run(delivered_event(registration={"access_mode": "VAE", "vae_path": "CONGES_VAE"}))
    valid(decoded)
    assert decoded.warnings == []


def test_nir_sex_digit_disagreeing_with_sex_is_a_warning() -> None:
    only_warning(
        run(_with_nir(HOLDER_NIR, sex="F")), "holder.nir", "first digit (the sex) disagrees"
    )


def test_nir_year_disagreeing_with_birth_date_is_a_warning() -> None:
    decoded = run(_with_nir(make_nir("1940575056123")))
    only_warning(decoded, "holder.nir", "its birth year (digits 2–3) disagrees")
    assert "94" not in decoded.warnings[0].message and "1993" not in decoded.warnings[0].message


def test_nir_month_disagreeing_with_birth_date_is_a_warning() -> None:
    decoded = run(_with_nir(make_nir("1930675056123")))
    only_warning(decoded, "holder.nir", "its birth month (digits 4–5) disagrees")
    assert "06" not in decoded.warnings[0].message


@pytest.mark.parametrize("month", ["20", "30", "42", "50", "99", "00", "13"])
def test_nir_month_outside_01_12_gives_no_month_warning(month: str) -> None:
    decoded = run(_with_nir(make_nir(f"193{month}75056123")))
    valid(decoded)
    assert decoded.warnings == []


def test_nir_month_is_not_checked_against_an_unknown_birth_month() -> None:
    event = _with_nir(make_nir("1930675056123"), birth_date={"year": 1993, "month": None})
    valid(run(event))
    assert run(event).warnings == []


@pytest.mark.parametrize("digit", ["3", "7", "8"])
def test_temporary_nir_is_a_warning_and_stays_titulaire_in_115(digit: str) -> None:
    decoded = run(_with_nir(make_nir(f"{digit}930575056123")))
    only_warning(decoded, "holder.nir", "is a temporary number (its first digit is not 1 or 2)")
    assert digit not in decoded.warnings[0].message
    assert isinstance(decoded.event, DeliveredEvent)
    passage = passage_element(decoded.event, PROFILES["1.1.5"])
    identification = passage.find("cpf:identificationTitulaire", NS)
    assert identification is not None
    assert [etree.QName(child).localname for child in identification] == ["titulaire"]
    assert passage.find(".//cpf:identifiantNational", NS) is None
    assert passage.find(".//cpf:nir", NS) is None


def test_warnings_accumulate_without_blocking() -> None:
    event = _with_nir(make_nir("2940675056123"))  # sex, year and month all disagree
    event["registration"]["vae_path"] = "CONGES_VAE"
    decoded = run(event)
    valid(decoded)
    assert sorted(w.field for w in decoded.warnings) == [
        "holder.nir",
        "holder.nir",
        "holder.nir",
        "registration.vae_path",
    ]


def test_an_invalid_nir_gives_an_error_and_no_nir_warning() -> None:
    decoded = run(_with_nir("2940675056123" + "00", sex="M"))
    assert [p.field for p in decoded.errors] == ["holder.nir"]
    assert decoded.warnings == []


# --------------------------------------------------------------------------------------------
# Unusable events: no record_id to keep them under
# --------------------------------------------------------------------------------------------


def _unusable(decoded: Decoded, field: str, fragment: str) -> None:
    assert decoded.kind is Kind.UNUSABLE
    assert decoded.valid is False
    assert decoded.record_id is None
    assert [p.field for p in decoded.errors] == [field], decoded.errors
    assert fragment in decoded.errors[0].message, decoded.errors[0].message


@pytest.mark.parametrize(
    "raw",
    ["{", "not json", b"\xff\xfe{}", '{"record_id": "x",}'],
    ids=["brace", "text", "bad-utf8", "trailing-comma"],
)
def test_not_json_is_unusable(raw: Any) -> None:
    _unusable(run(raw), "event", "not valid JSON")


@pytest.mark.parametrize("raw", ["", b""], ids=["text", "bytes"])
def test_nothing_is_unusable(raw: Any) -> None:
    _unusable(run(raw), "event", "is empty: no JSON event")


@pytest.mark.parametrize("raw", ["[]", json.dumps([delivered_event()]), "42", '"PX-1"', "null"])
def test_a_json_value_that_is_not_an_object_is_unusable(raw: str) -> None:
    _unusable(run(raw), "event", "expected a JSON object")


@pytest.mark.parametrize(
    ("record_id", "fragment"),
    [
        (None, "is required"),
        (123, "expected a string"),
        ("x" * 256, "at most 255"),
        ("", "must not be empty or blank"),
        ("   ", "must not be empty or blank"),
        ("PX\x01", "U+0001"),
    ],
    ids=["null", "number", "256-chars", "empty", "blank", "control"],
)
def test_a_bad_record_id_makes_the_event_unusable(record_id: Any, fragment: str) -> None:
    event = delivered_event(record_id=record_id)
    decoded = run(event)
    _unusable(decoded, "record_id", fragment)
    assert decoded.payload == event  # the raw input is kept for the log


def test_a_missing_record_id_makes_the_event_unusable() -> None:
    _unusable(run(drop(delivered_event(), "record_id")), "record_id", "is required")


def test_a_record_id_of_255_characters_is_usable() -> None:
    decoded = run(delivered_event(record_id="r" * 255))
    valid(decoded)
    assert decoded.record_id == "r" * 255


def test_a_record_id_is_trimmed() -> None:
    decoded = run(delivered_event(record_id="  PX-1  "))
    assert valid(decoded).record_id == "PX-1"
    assert decoded.record_id == "PX-1"


TEN_MB = 10 * 1024 * 1024


def _with_raw_field(name: str, raw_json: str) -> str:
    """The example as JSON text with one more field whose value is given as raw JSON."""
    event = drop(delivered_event(), name)
    return json.dumps(event)[:-1] + f', "{name}": {raw_json}}}'


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(lambda: "x" * TEN_MB, id="garbage"),
        pytest.param(lambda: "[" * TEN_MB, id="nested-arrays"),
        pytest.param(lambda: '{"a":' * (TEN_MB // 5), id="nested-objects"),
        pytest.param(lambda: json.dumps(delivered_event(verbatim="v" * TEN_MB)), id="long-field"),
        pytest.param(
            lambda: json.dumps(delivered_event(record_id="r" * TEN_MB)), id="long-record-id"
        ),
        pytest.param(lambda: _with_raw_field("verbatim", "[" * 900 + "]" * 900), id="deep-field"),
    ],
)
def test_a_10_mb_line_does_not_crash_or_hang(raw: Any) -> None:
    text = raw()
    decoded = run(text)  # a hang is ended by the suite's timeout
    assert decoded.valid is False
    assert decoded.errors
    for problem in decoded.errors:
        assert len(problem.message) < 1000  # the input is never echoed whole


# --------------------------------------------------------------------------------------------
# Revoked events have their own model
# --------------------------------------------------------------------------------------------


def test_a_revoked_event_is_valid_with_its_own_fields() -> None:
    decoded = run(revoked_event())
    assert decoded.kind is Kind.REVOKED
    assert decoded.valid is True
    assert decoded.record_id == "PX-2026-000123"
    assert decoded.certifier == "pix"


def test_a_revoked_event_needs_neither_holder_nor_delivery() -> None:
    decoded = run(revoked_event(certification=None, reason=None))
    assert decoded.kind is Kind.REVOKED and decoded.valid is True


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"delivered_on": "2026-11-18"}, "delivered_on", "not a field of the event contract"),
        ({"holder": {}}, "holder", "not a field of the event contract"),
        ({"reason": "x" * 1001}, "reason", "at most 1000"),
        ({"reason": "  "}, "reason", "must not be empty or blank"),
        ({"certifier": "acme"}, "certifier", "unknown certifier 'acme'"),
        ({"certification": {"type": "RS", "code": "X1"}}, "certification.code", "RNCP or RS"),
        ({"event_id": None}, "event_id", "expected a string"),
    ],
    ids=["delivered_on", "holder", "reason-long", "reason-blank", "certifier", "code", "event_id"],
)
def test_a_revoked_event_is_checked_against_its_model(
    overrides: dict[str, Any], field: str, fragment: str
) -> None:
    decoded = run(revoked_event(**overrides))
    assert decoded.kind is Kind.REVOKED
    only_error(decoded, field, fragment)


def test_a_revoked_event_without_record_id_is_unusable() -> None:
    _unusable(run(drop(revoked_event(), "record_id")), "record_id", "is required")


# --------------------------------------------------------------------------------------------
# Record ids that look like another
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record_id", "fragment"),
    [
        ("PX-e\u0301cole-1", "is not in Unicode NFC form"),
        ("PX-\u200b1", "(U+200B)"),
        ("PX\u00a01", "(U+00A0)"),
        ("PX-\u00ad1\u2060", "(U+00AD, U+2060)"),
        ("PX-\u200e1", "(U+200E)"),
    ],
)
def test_a_record_id_that_may_look_like_another_is_accepted_with_a_warning(
    record_id: str, fragment: str
) -> None:
    """The CDC deduplicates on the id's exact characters (SPEC §8), and so does the tracker:
    the same id sent another way would be a second record and a second passage. Refusing it
    would strand ids already sent that way, so it is a warning, returned to the sender."""
    decoded = run(delivered_event(record_id=record_id))
    valid(decoded)
    (warning,) = decoded.warnings
    assert warning.field == "record_id"
    assert fragment in warning.message
    assert decoded.record_id == record_id, "the id is kept as it was sent"


@pytest.mark.parametrize("record_id", ["PX-2026-1", "PX-\u00e9cole-1", "\u65e5\u672c-1", "A B"])
def test_an_id_in_one_form_only_gets_no_warning(record_id: str) -> None:
    decoded = run(delivered_event(record_id=record_id))
    valid(decoded)
    assert decoded.warnings == []


def test_a_look_alike_id_warns_even_beside_a_field_that_failed() -> None:
    event = put(delivered_event(record_id="PX-e\u0301cole-2"), "delivered_on", "tomorrow")
    decoded = run(event)
    assert [p.field for p in decoded.errors] == ["delivered_on"]
    assert [p.field for p in decoded.warnings] == ["record_id"]
