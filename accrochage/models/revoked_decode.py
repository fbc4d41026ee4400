"""A `certification.revoked` event validated: the certification it names must be one its
certifier delivers, and a revocation naming no certifier must name one without doubt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from accrochage.models.event import RevokedEvent
from accrochage.models.field_errors import problems_from
from accrochage.models.problems import Problem
from accrochage.models.registry import Registry
from accrochage.models.rules import certification_errors


@dataclass(frozen=True, slots=True)
class RevocationRead:
    event: RevokedEvent | None
    """None: the event is not a valid revocation (`errors` say why)."""
    errors: list[Problem] = field(default_factory=list)
    code: str | None = None
    """The code of the certification it names, if any."""
    certifier: str | None = None
    """Whose record it withdraws, for an event naming no certifier (None: not found)."""


def read_revocation(payload: dict[str, Any], registry: Registry) -> RevocationRead:
    try:
        event = RevokedEvent.model_validate(payload)
    except ValidationError as exc:
        return RevocationRead(None, problems_from(exc))
    named = event.certification
    code = named.code if named is not None else None
    if named is not None and (mismatch := certification_errors(named.type, named.code)):
        return RevocationRead(event, mismatch, code)
    if event.certifier is not None:
        certifier = registry.get(event.certifier)
        if certifier is None:
            problem = Problem("certifier", f"unknown certifier {event.certifier!r}")
            return RevocationRead(event, [problem], code)
        if named is not None and named.code not in certifier.certifications:
            problem = Problem(  # a mistake: say so without listing what it delivers
                "certification.code",
                f"{named.code} is not a certification of certifier {event.certifier!r}: "
                "check the record_id and the certification",
            )
            return RevocationRead(event, [problem], code)
        return RevocationRead(event, [], code)
    found, missing = _revoking_certifier(event, registry)
    return RevocationRead(event, [] if missing is None else [missing], code, found)


def _revoking_certifier(
    event: RevokedEvent, registry: Registry
) -> tuple[str | None, Problem | None]:
    """Whose record a revocation without `certifier` withdraws: the one certifier delivering
    its certification's code, or the only one configured. Otherwise it names none, and is
    refused: left unnamed, it could withdraw any certifier's record."""
    if event.certification is not None:
        certifier, problems = registry.resolve(None, event.certification.code)
        return (certifier.key, None) if certifier else (None, problems[0])
    sole = registry.sole()
    if sole is not None:
        return sole.key, None
    return None, Problem(
        "certifier",
        "is required: more than one certifier is configured; name the record's certifier "
        "(or its certification)",
    )
