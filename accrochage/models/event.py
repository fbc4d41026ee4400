"""The event contract (CONTRACT.md §1) as pydantic models.

The models enforce types and every single-field constraint of XSD 1.1.2; rules that join
several fields live in `rules.py`. JSON types are never coerced (strict mode), except `score`.
"""

import json
import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from accrochage.models.problems import DUPLICATED, GIVEN_TWICE, given_twice, shown_field
from accrochage.models.text import (
    Digit1,
    DigitalLevel,
    GeneralScore,
    IsoDate,
    Score,
    Text3,
    Text5,
    Text9,
    Text13,
    Text20,
    Text30,
    Text255,
    Words20,
    Words30,
    Words60,
    Words255,
    Words1000,
    check_year,
)

DELIVERED = "certification.delivered"
REVOKED = "certification.revoked"
MAX_CERTIFIER_KEY = 64
CERTIFIER_KEY = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{MAX_CERTIFIER_KEY - 1}}}")
CERTIFICATION_CODE = re.compile(r"(RNCP|RS)[0-9]{1,20}")

Obtention = Literal["PAR_ADMISSION", "PAR_SCORING"]
ExamMode = Literal["A_DISTANCE", "EN_PRESENTIEL", "MIXTE"]
Mention = Literal[
    "SANS_MENTION",
    "MENTION_ASSEZ_BIEN",
    "MENTION_BIEN",
    "MENTION_TRES_BIEN",
    "MENTION_TRES_BIEN_AVEC_FELICITATIONS_DU_JURY",
]
LanguageLevel = Literal["A1", "A2", "B1", "B2", "C1", "C2", "INSUFFISANT"]
AccessMode = Literal[
    "FORMATION_INITIALE_HORS_APPRENTISSAGE",
    "FORMATION_INITIALE_APPRENTISSAGE",
    "FORMATION_CONTINUE_HORS_CONTRAT_DE_PROFESSIONNALISATION",
    "FORMATION_CONTINUE_CONTRAT_DE_PROFESSIONNALISATION",
    "VAE",
    "EQUIVALENCE_DIPLOME_ETRANGER",
    "CANDIDAT_LIBRE",
]
VaePath = Literal["CONGES_VAE", "VAE_CLASSIQUE"]
Initiative = Literal["CERTIFIE", "OF", "POLE_EMPLOI", "EMPLOYEUR", "AUTRE"]
Sex = Literal["M", "F"]


def _check_certifier_key(value: str) -> str:
    if CERTIFIER_KEY.fullmatch(value) is None:
        raise PydanticCustomError(
            "certifier_key",
            "expected a certifier key of lowercase letters, digits, '-' and '_' "
            "(at most 64, starting with a letter or digit), got {value}",
            {"value": repr(value[:70])},
        )
    return value


def _check_code(value: str) -> str:
    if CERTIFICATION_CODE.fullmatch(value) is None:
        raise PydanticCustomError(
            "certification_code",
            "expected RNCP or RS followed by digits (e.g. RNCP35726, RS5875), got {value}",
            {"value": repr(value[:110])},
        )
    return value


def _parse_timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp_type", "expected an ISO 8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "timestamp_format",
            "expected an ISO 8601 timestamp with an offset, e.g. 2026-11-20T10:15:00+01:00",
        ) from None
    if parsed.tzinfo is None:
        raise PydanticCustomError(
            "timestamp_offset", "the timestamp needs an offset (e.g. +01:00 or Z)"
        )
    return parsed


CertifierKey = Annotated[str, AfterValidator(_check_certifier_key)]
CertificationCode = Annotated[Text255, AfterValidator(_check_code)]
Timestamp = Annotated[datetime, BeforeValidator(_parse_timestamp)]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True)


class CertificationRef(Strict):
    type: Literal["RNCP", "RS"]
    code: CertificationCode


class DigitalResult(Strict):
    level: DigitalLevel | None = None
    area: Digit1 | None = None
    competence: Digit1 | None = None


class DigitalLevelBlock(Strict):
    general_score: GeneralScore | None = None
    results: list[DigitalResult] = Field(default_factory=list, max_length=64)


class Exam(Strict):
    start: IsoDate | None = None
    end: IsoDate | None = None
    mode: ExamMode | None = None
    center_postal_code: Text9 | None = None


class Registration(Strict):
    access_mode: AccessMode | None = None
    vae_path: VaePath | None = None
    initiative: Initiative | None = None
    date: IsoDate | None = None


class BirthPlace(Strict):
    insee_code: Text5 | None = None
    postal_code: Text9 | None = None
    city: Words60 | None = None
    country_code: Text3 | None = None
    country: Words60 | None = None


class BirthDate(Strict):
    """A birth date, possibly partial: the CDC takes nil month and day."""

    year: int
    month: int | None = None
    day: int | None = None


_BIRTH_DATE_KEYS = {"year", "month", "day"}


def _int_or_none(value: Any, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise PydanticCustomError("birth_date_type", f"{name} must be an integer or null")
    if not low <= value <= high:
        raise PydanticCustomError("birth_date_range", f"{name} must be within {low}–{high}")
    return value


NAMED_KEYS = 5
"""Keys of its sender a birth date's message names at most (and how many more)."""


def _keys_named(keys: Iterable[str]) -> str:
    """Keys a sender chose, as a message may quote them: a few, each escaped and bounded as a
    field's path is (`shown_field`). Quoted whole, a key holding a line break forged a line in
    `ingest`'s summary, and 10,000 keys of 1,000 characters made one message of 10 MB, stored
    with the record past its content's 16 KiB."""
    named = sorted(keys)
    shown = ", ".join(shown_field(key) for key in named[:NAMED_KEYS])
    more = len(named) - NAMED_KEYS
    return shown + (f" (and {more} more)" if more > 0 else "")


def _parse_birth_date(value: Any) -> BirthDate:
    """`YYYY-MM-DD`, or `{"year", "month", "day"}` when only part of it is known."""
    from accrochage.models.text import parse_iso_date

    if isinstance(value, str):
        full = parse_iso_date(value)
        return BirthDate(year=full.year, month=full.month, day=full.day)
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "birth_date_type",
            'expected "YYYY-MM-DD" or {"year": 1993, "month": null, "day": null}',
        )
    if twice := [key for key in given_twice(value) if key != DUPLICATED]:
        raise PydanticCustomError(
            "birth_date_twice", "{keys}: " + GIVEN_TWICE, {"keys": _keys_named(twice)}
        )
    unknown = set(value) - _BIRTH_DATE_KEYS
    if unknown:
        raise PydanticCustomError(
            "birth_date_keys",
            "unknown key(s) {keys}; expected year, month, day",
            {"keys": _keys_named(map(str, unknown))},
        )
    if value.get("year") is None:
        raise PydanticCustomError("birth_date_year", "the year of birth is required")
    year = _int_or_none(value["year"], "year", 1900, 2099)
    assert year is not None
    check_year(year)
    month = _int_or_none(value.get("month"), "month", 1, 12)
    day = _int_or_none(value.get("day"), "day", 1, 31)
    if day is not None and month is None:
        raise PydanticCustomError("birth_date_day", "a day of birth needs a month of birth")
    if day is not None and month is not None:
        try:
            date(year, month, day)
        except ValueError:
            raise PydanticCustomError(  # the date is never quoted: it is personal data
                "birth_date_value", "is not a day of the calendar (check the month and day)"
            ) from None
    return BirthDate(year=year, month=month, day=day)


class Holder(Strict):
    birth_name: Words60
    usage_name: Words60 | None = None
    first_names: list[Words60] = Field(min_length=1, max_length=3)
    birth_date: Annotated[
        BirthDate, BeforeValidator(_parse_birth_date, json_schema_input_type=str | BirthDate)
    ]
    sex: Sex
    birth_place: BirthPlace | None = None
    nir: Text255 | None = None


class CpfFile(Strict):
    id: Text13
    holder_name: Words30
    holder_first_name: Words20


class DeliveredEvent(Strict):
    type: Literal["certification.delivered"] = "certification.delivered"
    event_id: Text255
    occurred_at: Timestamp | None = None
    source: Text255 | None = None
    record_id: Text255
    certifier: CertifierKey | None = None
    certification: CertificationRef
    delivered_on: IsoDate
    valid_until: IsoDate | None = None
    obtention: Obtention
    certified: bool = True
    score: Score | None = None
    mention: Mention | None = None
    language_level: LanguageLevel | None = None
    digital_level: DigitalLevelBlock | None = None
    exam: Exam | None = None
    registration: Registration | None = None
    proof_url: Text255 | None = None
    option_label: Words255 | None = None
    verbatim: Words255 | None = None
    holder: Holder | None = None
    cpf_file: CpfFile | None = None


class RevokedEvent(Strict):
    type: Literal["certification.revoked"]
    event_id: Text255
    occurred_at: Timestamp | None = None
    source: Text255 | None = None
    record_id: Text255
    certifier: CertifierKey | None = None
    certification: CertificationRef | None = None
    reason: Words1000 | None = None


# Fields that say how an event travelled, not what it says: excluded from its content.
ENVELOPE_FIELDS = frozenset({"event_id", "occurred_at", "source"})

__all__ = [
    "DELIVERED",
    "ENVELOPE_FIELDS",
    "REVOKED",
    "BirthDate",
    "BirthPlace",
    "CertificationRef",
    "CpfFile",
    "DeliveredEvent",
    "DigitalLevelBlock",
    "Holder",
    "RevokedEvent",
    "Text13",
    "Text20",
    "Text30",
]


def stored_payload(payload: str, event_id: str | None) -> dict[str, Any] | None:
    """A stored content as the event it came from (its event_id put back), to decode again;
    None when it is not a JSON object."""
    try:
        found = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    if event_id is not None:
        found["event_id"] = event_id
    return found


def same_meaning(event: DeliveredEvent, stored: str) -> bool:
    """Whether a stored content says what `event` says, however each was written: a default
    left out or given (`type`, `certified`, a null), spaces around a text, a score as a number
    or a string, a date as text or as its parts. Such an event repeats the content; taken for
    a correction, it superseded a written file or sent the CDC a SUPPRESSION for nothing."""
    payload = stored_payload(stored, event.event_id)
    if payload is None:
        return False
    try:
        kept = DeliveredEvent.model_validate(payload)
    except ValidationError:
        return False
    envelope = set(ENVELOPE_FIELDS)
    return kept.model_dump(exclude=envelope) == event.model_dump(exclude=envelope)


def event_from_content(payload: str, event_id: str | None) -> DeliveredEvent:
    """An event from its stored content, which leaves out the envelope but its event_id."""
    return DeliveredEvent.model_validate({**json.loads(payload), "event_id": event_id})
