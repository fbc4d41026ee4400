"""decode -> validate -> enrich: one raw event in, one `Decoded` out, never an exception.

An event without a usable `record_id` cannot become a record; everything else becomes one,
valid or not, so that nothing is silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from accrochage.models.event import (
    ENVELOPE_FIELDS,
    REVOKED,
    DeliveredEvent,
    RevokedEvent,
)
from accrochage.models.json_input import loads_json
from accrochage.models.partial import event_rules, partial_event, top_field
from accrochage.models.problems import (
    DUPLICATED,
    GIVEN_TWICE,
    UNREAD_CELLS,
    UNREAD_CELLS_MESSAGE,
    Problem,
    given_twice,
)
from accrochage.models.record import PreparedPassage
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.models.text import (
    WrittenNumber,
    check_xml_text,
    forbidden_char_message,
    parse_iso_date,
)
from accrochage.models.vocabulary import SchemaVersion

MAX_RECORD_ID = 255
MAX_PROBLEMS = 50
_CANONICAL = json.JSONEncoder(
    sort_keys=True,
    ensure_ascii=False,
    separators=(",", ":"),
    check_circular=False,
    allow_nan=False,
)
NOT_JSON = "not_json"
"""The key of the object that stands in the stored content for a `NaN` or `Infinity`: valid
JSON for every reader, and a value no field accepts, so the content stays invalid."""
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
    passage: PreparedPassage | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.kind is not Kind.UNUSABLE and not self.errors

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as plain values: decode processes send one per event, and a dataclass's
        default form (a dict of field names, enums and dates rebuilt by reduction) cost
        twice as much CPU on both sides of the pipe."""
        passage = self.passage
        return _decoded_from, (
            self.kind.value,
            self.record_id,
            self.event_id,
            self.certifier,
            self.code,
            None if self.delivered_on is None else self.delivered_on.toordinal(),
            self.payload,
            self.content,
            self.content_hash,
            self.event,
            None if passage is None else passage.schema.value,
            None if passage is None else passage.data,
            [(p.field, p.message) for p in self.errors],
            [(p.field, p.message) for p in self.warnings],
        )


_KINDS = {kind.value: kind for kind in Kind}
_SCHEMAS = {version.value: version for version in SchemaVersion}


def _decoded_from(
    kind: str,
    record_id: str | None,
    event_id: str | None,
    certifier: str | None,
    code: str | None,
    delivered_on: int | None,
    payload: dict[str, Any] | None,
    content: str | None,
    content_hash: str | None,
    event: DeliveredEvent | RevokedEvent | None,
    passage_schema: str | None,
    passage: bytes | None,
    errors: list[tuple[str, str]],
    warnings: list[tuple[str, str]],
) -> Decoded:
    return Decoded(
        _KINDS[kind],
        record_id,
        event_id,
        certifier,
        code,
        None if delivered_on is None else date.fromordinal(delivered_on),
        payload,
        content,
        content_hash,
        event,
        None
        if passage is None or passage_schema is None
        else PreparedPassage(_SCHEMAS[passage_schema], passage),
        [Problem(*p) for p in errors],
        [Problem(*p) for p in warnings],
    )


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
    problems = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        if loc == (UNREAD_CELLS,) and isinstance(err.get("input"), list):
            problems.append(Problem("event", f"{len(err['input'])} {UNREAD_CELLS_MESSAGE}"))
        elif loc and loc[-1] == DUPLICATED and isinstance(err.get("input"), list):
            for key in err["input"]:  # the parser's list; its own name: the sender's key
                said = GIVEN_TWICE if key != DUPLICATED else _FRIENDLY["extra_forbidden"]
                problems.append(Problem(error_path((*loc[:-1], str(key))), said))
        else:
            problems.append(Problem(error_path(loc), _message(err)))
    return problems


def canonical_content(payload: dict[str, Any]) -> str:
    """The event's content: everything but how it travelled (event_id, occurred_at, source)."""
    return canonical_and_hash(payload)[0]


def canonical_and_hash(payload: dict[str, Any]) -> tuple[str, str]:
    """The content (`canonical_content`) and its SHA-256, byte for byte what Python's `json`
    writes with sorted keys and no spaces (`_CANONICAL`): stored hashes stay comparable.

    orjson writes it in a fifth of the time for a content parsed by `loads_json` (every float
    a `WrittenNumber`, written through `_float_as_python`). Anything it refuses goes the
    `json` way: a NaN or an Infinity (stored as a marker), a lone surrogate (the
    `UnicodeEncodeError` of hashing it tells `_storable` to escape it), an integer beyond 64
    bits, nesting deeper than 255 levels.
    """
    content = {k: v for k, v in payload.items() if k not in ENVELOPE_FIELDS}
    try:
        written = orjson.dumps(content, default=_float_as_python, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        text = _canonical_json(content)
        return text, content_hash(text)
    return written.decode(), hashlib.sha256(written).hexdigest()


def _float_as_python(value: Any) -> orjson.Fragment:
    """A `WrittenNumber` as `json` writes a float (`float.__repr__`: `1e-05`, where orjson
    writes `1e-5`); anything else is refused, and the content goes the `json` way. (A plain
    float, in a payload built in Python rather than parsed, orjson writes its own way.)"""
    if type(value) is WrittenNumber and math.isfinite(value):
        return orjson.Fragment(float.__repr__(value))
    raise TypeError


def _canonical_json(content: dict[str, Any]) -> str:
    try:
        return _CANONICAL.encode(content)
    except ValueError:  # a NaN or an Infinity: not JSON, stored as a marker
        return _CANONICAL.encode(_finite(content))


def _finite(value: Any) -> Any:
    """A copy of a JSON value whose non-finite numbers are `{"not_json": "NaN"}` and the like."""
    if isinstance(value, float) and not math.isfinite(value):
        written = value.text if isinstance(value, WrittenNumber) else repr(value)
        return {NOT_JSON: written}
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


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
        return None, "is not usable JSON: nested too deeply"
    if not isinstance(payload, dict):
        return None, f"expected a JSON object, got a JSON {type(payload).__name__}"
    return _score_as_written(payload), None


def _score_as_written(payload: dict[str, Any]) -> dict[str, Any]:
    score = payload.get("score")
    if isinstance(score, WrittenNumber) and math.isfinite(score):
        payload["score"] = score.text  # the content keeps the score as written
    return payload


def storable(text: str) -> str:
    """The text, with any lone surrogate (unencodable in UTF-8) written as its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _without_surrogates(value: Any, path: str, found: list[str]) -> Any:
    """A copy of a JSON value whose unencodable strings are escaped; their paths in `found`."""
    if isinstance(value, str):
        if _encodable(value):
            return value
        found.append(path or "event")
        return storable(value)
    if isinstance(value, dict):
        clean: dict[str, Any] = {}
        for key, item in value.items():
            name = key if _encodable(key) else storable(key)
            if name != key:
                found.append(f"{path}.{name}" if path else name)
            clean[name] = _without_surrogates(item, f"{path}.{name}" if path else name, found)
        return clean
    if isinstance(value, list):
        return [_without_surrogates(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def _storable(payload: dict[str, Any]) -> tuple[dict[str, Any], str, str, list[str]]:
    """The payload as it can be stored, its content and hash, and the paths that could not be.

    A lone surrogate (the JSON escape of half a UTF-16 pair) decodes to a Python string that
    UTF-8 cannot encode: stored as is, it would fail the whole transaction, and every other
    event of the group with it. Hashing the content encodes it anyway, so the common case
    costs nothing more; the walk runs only when that fails.
    """
    try:
        content, digest = canonical_and_hash(payload)
        for name in ENVELOPE_FIELDS:
            value = payload.get(name)
            if type(value) is str and not value.isascii():  # ASCII always encodes
                value.encode("utf-8")
        return payload, content, digest, []
    except UnicodeEncodeError:
        pass
    found: list[str] = []
    clean = _without_surrogates(payload, "", found)
    content, digest = canonical_and_hash(clean)
    return clean, content, digest, found


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
    payload, content, digest, unstorable = _storable(payload)
    surrogates = [Problem(path, _FRIENDLY["string_unicode"]) for path in unstorable]
    rid_problem = _record_id_problem(payload.get("record_id"))
    if "record_id" in unstorable:
        rid_problem = _FRIENDLY["string_unicode"]
    if "record_id" in given_twice(payload):
        rid_problem = GIVEN_TWICE
    event_id = payload.get("event_id") if isinstance(payload.get("event_id"), str) else None
    if rid_problem is not None:
        return Decoded(
            Kind.UNUSABLE,
            event_id=event_id,
            payload=payload,
            errors=[Problem("record_id", rid_problem)]
            + [p for p in surrogates if p.field != "record_id"],
        )
    decoded = Decoded(
        Kind.REVOKED if payload.get("type") == REVOKED else Kind.DELIVERED,
        record_id=payload["record_id"].strip(),
        event_id=event_id,
        payload=payload,
    )
    decoded.content = content
    decoded.content_hash = digest
    certifier = payload.get("certifier")
    decoded.certifier = certifier if isinstance(certifier, str) else None
    certification = payload.get("certification")
    if isinstance(certification, dict) and isinstance(certification.get("code"), str):
        decoded.code = certification["code"].strip()
    if decoded.kind is Kind.REVOKED:
        _validate_revoked(decoded, payload, registry)
    else:
        _validate_delivered(decoded, payload, registry, today, reference)
    if surrogates:
        decoded.event = None
        decoded.errors = [*surrogates, *decoded.errors]
    decoded.errors = capped(decoded.errors)
    decoded.warnings = capped(decoded.warnings)
    return decoded


def capped(problems: list[Problem]) -> list[Problem]:
    """At most `MAX_PROBLEMS` findings, and how many more: a record keeps what helps fix it."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    more = len(problems) - MAX_PROBLEMS
    return [
        *problems[:MAX_PROBLEMS],
        Problem("event", f"{more} more finding(s) not listed: fix the ones above and send again"),
    ]


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
        if decoded.code is not None and not any(p.field == "certifier" for p in decoded.errors):
            certifier, problems = registry.resolve(decoded.certifier, decoded.code)
            decoded.certifier = certifier.key if certifier else decoded.certifier
            decoded.errors.extend(problems)
        found = partial_event(payload, exc)
        if found is not None:
            partial, set_aside = found
            known = registry.get(decoded.certifier or "") if "certifier" not in set_aside else None
            siret = known.siret if known is not None else None
            errors, warnings = event_rules(partial, siret, today, reference, frozenset(set_aside))
            decoded.errors += [p for p in errors if top_field(p) not in set_aside]
            decoded.warnings = [p for p in warnings if top_field(p) not in set_aside]
        return
    decoded.event = event
    decoded.delivered_on = event.delivered_on
    certifier, problems = registry.resolve(event.certifier, event.certification.code)
    decoded.certifier = certifier.key if certifier else event.certifier
    siret = certifier.siret if certifier is not None else None
    errors, decoded.warnings = event_rules(event, siret, today, reference)
    decoded.errors = [*problems, *errors]


def _validate_revoked(decoded: Decoded, payload: dict[str, Any], registry: Registry) -> None:
    try:
        event = RevokedEvent.model_validate(payload)
    except ValidationError as exc:
        decoded.errors = problems_from(exc)
        return
    decoded.event = event
    if event.certifier is not None:
        if registry.get(event.certifier) is None:
            decoded.errors = [Problem("certifier", f"unknown certifier {event.certifier!r}")]
        return
    decoded.certifier, problem = _revoking_certifier(event, registry)
    decoded.errors = [] if problem is None else [problem]


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
