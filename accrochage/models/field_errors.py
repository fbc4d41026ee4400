"""Pydantic's validation errors as field-level problems a sender can act on."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from accrochage.models.problems import (
    DUPLICATED,
    GIVEN_TWICE,
    UNREAD_CELLS,
    UNREAD_CELLS_MESSAGE,
    Problem,
)
from accrochage.models.text import forbidden_char_message

FRIENDLY = {
    "missing": "is required",
    "extra_forbidden": "is not a field of the event contract (check its spelling)",
    "string_too_short": "must not be empty or blank",
    "model_type": "expected a JSON object",
    "model_attributes_type": "expected a JSON object",
    "dict_type": "expected a JSON object",
    "list_type": "expected a JSON array",
    "string_unicode": "is not valid Unicode text (a lone surrogate?); only printable XML 1.0 "
    "characters are allowed",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
}
"""Pydantic's messages ("Input should be a valid string") in the words a sender reads."""


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
    ctx = err.get("ctx", {})
    if err["type"] == "too_long" and "max_length" in ctx:
        return f"at most {ctx['max_length']} item(s), not {ctx.get('actual_length', 'more')}"
    if err["type"] == "too_short" and "min_length" in ctx:
        return f"at least {ctx['min_length']} item(s)"
    if err["type"] == "literal_error":
        return f"expected {err.get('ctx', {}).get('expected', 'another value')}"
    return FRIENDLY.get(err["type"], err["msg"])


def problems_from(exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        if loc == (UNREAD_CELLS,) and isinstance(err.get("input"), list):
            problems.append(Problem("event", f"{len(err['input'])} {UNREAD_CELLS_MESSAGE}"))
        elif loc and loc[-1] == DUPLICATED and isinstance(err.get("input"), list):
            for key in err["input"]:  # the parser's list; its own name: the sender's key
                said = GIVEN_TWICE if key != DUPLICATED else FRIENDLY["extra_forbidden"]
                problems.append(Problem(error_path((*loc[:-1], str(key))), said))
        else:
            problems.append(Problem(error_path(loc), _message(err)))
    return problems


def body_problems(exc: ValidationError, what: str) -> list[Problem]:
    """A request body's field errors (a body that is not an event), in the events' words
    rather than pydantic's ("Input should be a valid string"); `what` names the body for a
    key it does not take ("a correction request")."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        if err["type"] == "extra_forbidden":
            message = f"is not a field of {what} (check its spelling)"
        else:
            message = _message(err)
        problems.append(Problem(error_path(err["loc"]) if err["loc"] else "body", message))
    return problems
