"""The event contract (CONTRACT.md §1) as pydantic models.

The models enforce types and every single-field constraint of XSD 1.1.2; rules that join
several fields live in `rules.py`. JSON types are never coerced (strict mode), except `score`.
"""

import json
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError

from accrochage.models.event_fields import MAX_CERTIFIER_KEY as MAX_CERTIFIER_KEY
from accrochage.models.event_fields import (
    AccessMode,
    BirthDate,
    CertificationCode,
    CertifierKey,
    ExamMode,
    Initiative,
    LanguageLevel,
    Mention,
    Obtention,
    Sex,
    Strict,
    Timestamp,
    VaePath,
    parse_birth_date,
)
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
)

DELIVERED = "certification.delivered"
REVOKED = "certification.revoked"


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


class Holder(Strict):
    birth_name: Words60
    usage_name: Words60 | None = None
    first_names: list[Words60] = Field(min_length=1, max_length=3)
    birth_date: Annotated[
        BirthDate, BeforeValidator(parse_birth_date, json_schema_input_type=str | BirthDate)
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
