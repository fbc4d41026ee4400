"""The event's field types that are not texts or numbers (those are `models/text.py`'s): the
CDC's vocabularies a field takes its value from, the certifier key, the certification code,
the timestamp with its offset, and the birth date, whole or partial; with `Strict`, the base
of every event model (JSON types never coerced, no unknown field).

Each check says what is expected and quotes a sender's value only bounded (a key, a code;
never a birth date, which is personal data). `models/event.py` builds the event's models
from them.
"""

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from accrochage.models.problems import DUPLICATED, GIVEN_TWICE, given_twice, shown_field
from accrochage.models.text import Text255, check_year

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


def parse_birth_date(value: Any) -> BirthDate:
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
