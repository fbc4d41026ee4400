"""decode -> validate -> enrich: one raw event in, one `Decoded` out, never an exception.

An event without a usable `record_id` cannot become a record; everything else becomes one,
valid or not, so that nothing is silently dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from accrochage.models.event import (
    ENVELOPE_FIELDS,
    REVOKED,
    DeliveredEvent,
    RevokedEvent,
)
from accrochage.models.problems import Problem
from accrochage.models.registry import Registry
from accrochage.models.rules import delivered_errors, delivered_warnings
from accrochage.models.text import check_xml_text, forbidden_char_message, parse_iso_date

MAX_RECORD_ID = 255
_FRIENDLY = {
    "missing": "is required",
    "extra_forbidden": "is not a field of the event contract (check its spelling)",
    "string_too_short": "must not be empty or blank",
    "model_type": "expected a JSON object",
    "model_attributes_type": "expected a JSON object",
    "dict_type": "expected a JSON object",
    "list_type": "expected a JSON array",
    "string_unicode": "is not valid Unicode text (a lone surrogate?); only printable XML 1.0 "
    "characters are allowed",
}


class Kind(StrEnum):
    DELIVERED = "delivered"
    REVOKED = "revoked"
    UNUSABLE = "unusable"


@dataclass(slots=True)
class Decoded:
    kind: Kind
    record_id: str | None = None
    event_id: str | None = None
    certifier: str | None = None
    code: str | None = None
    delivered_on: date | None = None
    payload: dict[str, Any] | None = None
    content: str | None = None
    content_hash: str | None = None
    event: DeliveredEvent | RevokedEvent | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.kind is not Kind.UNUSABLE and not self.errors


def error_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "event"


def _message(err: ErrorDetails) -> str:
    # "must not be empty or blank" misleads for an exact length (insee_code "7511").
    if err["type"] == "string_too_short" and err.get("ctx", {}).get("min_length", 1) > 1:
        return err["msg"]
    if err["type"] == "string_pattern_mismatch" and isinstance(err.get("input"), str):
        precise = forbidden_char_message(err["input"])
        if precise is not None:
            return precise
    return _FRIENDLY.get(err["type"], err["msg"])


def problems_from(exc: ValidationError) -> list[Problem]:
    return [Problem(error_path(err["loc"]), _message(err)) for err in exc.errors(include_url=False)]


def canonical_content(payload: dict[str, Any]) -> str:
    """The event's content: everything but how it travelled (event_id, occurred_at, source)."""
    content = {k: v for k, v in payload.items() if k not in ENVELOPE_FIELDS}
    return json.dumps(
        content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), check_circular=False
    )


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def _record_id_problem(value: Any) -> str | None:
    if value is None:
        return "is required: without it the event cannot become a record"
    if not isinstance(value, str):
        return "expected a string"
    stripped = value.strip()
    if not stripped:
        return "must not be empty or blank"
    if len(stripped) > MAX_RECORD_ID:
        return f"has {len(stripped)} characters; at most {MAX_RECORD_ID} (the CDC idTechnique)"
    try:
        check_xml_text(stripped)
    except ValueError as exc:
        return str(exc)
    return None


def _best_effort_date(value: Any) -> date | None:
    try:
        return parse_iso_date(value)
    except ValueError:
        return None


def parse_payload(raw: bytes | str | dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(raw, dict):
        return raw, None
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"is not valid JSON: {exc}"
    except RecursionError:
        return None, "is not usable JSON: nested too deeply"
    if not isinstance(payload, dict):
        return None, f"expected a JSON object, got a JSON {type(payload).__name__}"
    return payload, None


def decode(raw: bytes | str | dict[str, Any], registry: Registry, today: date) -> Decoded:
    payload, problem = parse_payload(raw)
    if payload is None:
        return Decoded(Kind.UNUSABLE, errors=[Problem("event", problem or "unreadable")])
    rid_problem = _record_id_problem(payload.get("record_id"))
    event_id = payload.get("event_id") if isinstance(payload.get("event_id"), str) else None
    if rid_problem is not None:
        return Decoded(
            Kind.UNUSABLE,
            event_id=event_id,
            payload=payload,
            errors=[Problem("record_id", rid_problem)],
        )
    decoded = Decoded(
        Kind.REVOKED if payload.get("type") == REVOKED else Kind.DELIVERED,
        record_id=payload["record_id"].strip(),
        event_id=event_id,
        payload=payload,
    )
    decoded.content = canonical_content(payload)
    decoded.content_hash = content_hash(decoded.content)
    certifier = payload.get("certifier")
    decoded.certifier = certifier if isinstance(certifier, str) else None
    certification = payload.get("certification")
    if isinstance(certification, dict) and isinstance(certification.get("code"), str):
        decoded.code = certification["code"].strip()
    if decoded.kind is Kind.REVOKED:
        _validate_revoked(decoded, payload, registry)
    else:
        _validate_delivered(decoded, payload, registry, today)
    return decoded


def _validate_delivered(
    decoded: Decoded, payload: dict[str, Any], registry: Registry, today: date
) -> None:
    try:
        event = DeliveredEvent.model_validate(payload)
    except ValidationError as exc:
        decoded.errors = problems_from(exc)
        decoded.delivered_on = _best_effort_date(payload.get("delivered_on"))
        if decoded.code is not None and not any(p.field == "certifier" for p in decoded.errors):
            certifier, problems = registry.resolve(decoded.certifier, decoded.code)
            decoded.certifier = certifier.key if certifier else decoded.certifier
            decoded.errors.extend(problems)
        return
    decoded.event = event
    decoded.delivered_on = event.delivered_on
    certifier, problems = registry.resolve(event.certifier, event.certification.code)
    decoded.certifier = certifier.key if certifier else event.certifier
    decoded.errors = [*problems, *delivered_errors(event, today)]
    decoded.warnings = delivered_warnings(event)


def _validate_revoked(decoded: Decoded, payload: dict[str, Any], registry: Registry) -> None:
    try:
        event = RevokedEvent.model_validate(payload)
    except ValidationError as exc:
        decoded.errors = problems_from(exc)
        return
    decoded.event = event
    if event.certifier is not None and registry.get(event.certifier) is None:
        decoded.errors = [Problem("certifier", f"unknown certifier {event.certifier!r}")]
