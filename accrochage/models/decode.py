"""decode -> validate -> enrich: one raw event in, one `Decoded` out, never an exception.

An event without a usable `record_id` cannot become a record; everything else becomes one,
valid or not, so that nothing is silently dropped.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from pydantic import ValidationError

from accrochage.models.canonical import storable_payload
from accrochage.models.decoded import Decoded as Decoded
from accrochage.models.decoded import Kind as Kind
from accrochage.models.event import (
    MAX_CERTIFIER_KEY,
    REVOKED,
    DeliveredEvent,
)
from accrochage.models.field_errors import FRIENDLY, problems_from
from accrochage.models.json_input import loads_json
from accrochage.models.partial import event_rules, partial_event, set_aside_finding, top_field
from accrochage.models.problems import (
    GIVEN_TWICE,
    MAX_PROBLEMS,
    Problem,
    capped,
    given_twice,
)
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.models.revoked_decode import read_revocation
from accrochage.models.text import (
    WrittenNumber,
    check_xml_text,
    parse_iso_date,
    trimmed,
)

MAX_RECORD_ID = 255


def _record_id_problem(value: Any) -> str | None:
    if value is None:
        return "is required: without it the event cannot become a record"
    if not isinstance(value, str):
        return "expected a string"
    stripped = trimmed(value)
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


NESTED_TOO_DEEPLY = "is not usable JSON: nested too deeply"


def parse_payload(raw: bytes | str | dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The event's JSON object, or why there is none. Parse JSON with `parse_float=WrittenNumber`
    and `parse_constant=WrittenNumber` before handing a dict here, or a decimal score loses the
    digits a float cannot hold (and a NaN its marker's spelling)."""
    if isinstance(raw, dict):
        return _score_as_written(raw), None
    if not raw:
        return None, "is empty: no JSON event (a Kafka record without a value, say)"
    try:
        payload = loads_json(raw)
    except UnicodeDecodeError as exc:
        return None, (
            f"is not valid text ({exc.encoding}: {exc.reason}, byte 0x{exc.object[exc.start]:02x}"
            f" at position {exc.start}); JSON is UTF-8: send it, or save its file, as UTF-8"
        )
    except ValueError as exc:
        return None, f"is not valid JSON: {exc}"
    except RecursionError:
        return None, NESTED_TOO_DEEPLY
    if not isinstance(payload, dict):
        return None, f"expected a JSON object, got {json_kind(payload)}"
    return _score_as_written(payload), None


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words: the Python type's name said `list`,
    `str`, or `WrittenNumber` (the parser's class for a decimal, `NaN` or `1e999`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "another value"


def _named_certifier(payload: dict[str, Any]) -> str | None:
    """The certifier key an event names. A key is at most 64 characters: a longer text names
    none, and is not kept as the record's certifier (a CSV row once stored one of 14.7 MB)."""
    certifier = payload.get("certifier")
    readable = isinstance(certifier, str) and len(certifier) <= MAX_CERTIFIER_KEY
    return certifier if readable else None


def _score_as_written(payload: dict[str, Any]) -> dict[str, Any]:
    score = payload.get("score")
    if isinstance(score, WrittenNumber) and math.isfinite(score):
        payload["score"] = score.text  # the content keeps the score as written
    return payload


def decode(
    raw: bytes | str | dict[str, Any],
    registry: Registry,
    today: date,
    reference: Reference | None = None,
) -> Decoded:
    """`reference`: the loaded reference data; its rules (CONTRACT §11) run only with it."""
    payload, problem = parse_payload(raw)
    if payload is None:
        return Decoded(Kind.UNUSABLE, errors=[Problem("event", problem or "unreadable")])
    try:
        payload, content, digest, unstorable = storable_payload(payload)
    except RecursionError:  # built nested, never parsed from text: a CSV cell, say
        return Decoded(Kind.UNUSABLE, errors=[Problem("event", NESTED_TOO_DEEPLY)])
    # Only the findings that can be listed are built: a body can hold millions.
    surrogates = [
        Problem(path, FRIENDLY["string_unicode"]) for path in unstorable[: MAX_PROBLEMS + 1]
    ]
    beyond = len(unstorable) - len(surrogates)
    rid_problem = _record_id_problem(payload.get("record_id"))
    if "record_id" in unstorable:
        rid_problem = FRIENDLY["string_unicode"]
    if "record_id" in given_twice(payload):
        rid_problem = GIVEN_TWICE
    event_id = payload.get("event_id") if isinstance(payload.get("event_id"), str) else None
    if rid_problem is not None:
        return Decoded(
            Kind.UNUSABLE,
            event_id=event_id,
            payload=payload,
            certifier=_named_certifier(payload),  # whose part of the unusable log it is
            errors=capped(
                [Problem("record_id", rid_problem)]
                + [p for p in surrogates if p.field != "record_id"],
                beyond,
            ),
        )
    decoded = Decoded(
        Kind.REVOKED if payload.get("type") == REVOKED else Kind.DELIVERED,
        record_id=trimmed(payload["record_id"]),
        event_id=event_id,
        payload=payload,
    )
    decoded.content = content
    decoded.content_hash = digest
    decoded.certifier = _named_certifier(payload)
    certification = payload.get("certification")
    if isinstance(certification, dict) and isinstance(certification.get("code"), str):
        decoded.code = trimmed(certification["code"])
    if decoded.kind is Kind.REVOKED:
        _validate_revoked(decoded, payload, registry)
    else:
        _validate_delivered(decoded, payload, registry, today, reference)
        if any(p.field == "delivered_on" for p in decoded.errors):
            # A date known to be wrong (in the future, say) is not the certification's: the
            # record keeps the deadline it had, or has none (counted at risk).
            decoded.delivered_on = None
    if surrogates:
        decoded.event = None
        decoded.errors = [*surrogates, *decoded.errors]
    decoded.errors = capped(decoded.errors, beyond)
    decoded.warnings = capped(decoded.warnings)
    return decoded


def _validate_delivered(
    decoded: Decoded,
    payload: dict[str, Any],
    registry: Registry,
    today: date,
    reference: Reference | None,
) -> None:
    try:
        event = DeliveredEvent.model_validate(payload)
    except ValidationError as exc:
        decoded.errors = problems_from(exc)
        decoded.delivered_on = _best_effort_date(payload.get("delivered_on"))
        failed = {top_field(p) for p in decoded.errors}
        if decoded.code is not None and not {"certifier", "certification"} & failed:
            certifier, problems = registry.resolve(decoded.certifier, decoded.code)
            decoded.certifier = certifier.key if certifier else decoded.certifier
            decoded.errors.extend(problems)
        found = partial_event(payload, exc)
        if found is not None:
            partial, set_aside = found
            known = registry.get(decoded.certifier or "") if "certifier" not in set_aside else None
            siret = known.siret if known is not None else None
            unknown = frozenset(set_aside)
            errors, warnings = event_rules(partial, siret, today, reference, unknown)
            decoded.errors += [p for p in errors if not set_aside_finding(p, unknown)]
            decoded.warnings = [p for p in warnings if not set_aside_finding(p, unknown)]
        return
    decoded.event = event
    decoded.delivered_on = event.delivered_on
    certifier, problems = registry.resolve(event.certifier, event.certification.code)
    decoded.certifier = certifier.key if certifier else event.certifier
    siret = certifier.siret if certifier is not None else None
    errors, decoded.warnings = event_rules(event, siret, today, reference)
    decoded.errors = [*problems, *errors]


def _validate_revoked(decoded: Decoded, payload: dict[str, Any], registry: Registry) -> None:
    read = read_revocation(payload, registry)
    decoded.errors = read.errors
    if read.event is None:
        return
    decoded.event, decoded.code = read.event, read.code
    if read.event.certifier is None:
        decoded.certifier = read.certifier
