"""The rules across fields, over a whole event or over the rest of one whose fields failed.

An invalid event is answered with its errors at once (CONTRACT §1): the rules that join fields
run beside a field that failed on its own, over the rest of the event, so that a platform does
not find them one resubmission at a time.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import ValidationError

from accrochage.models.event import DeliveredEvent
from accrochage.models.problems import Problem, given_twice
from accrochage.models.reference import Reference, reference_problems
from accrochage.models.rules import delivered_errors, delivered_warnings


def event_rules(
    event: DeliveredEvent,
    siret: str | None,
    today: date,
    reference: Reference | None,
    unknown: frozenset[str] = frozenset(),
) -> tuple[list[Problem], list[Problem]]:
    """The rules across fields, and those of the reference data when it is loaded; those
    that read an `unknown` field (one standing in for a value that failed) do not run."""
    errors, warnings = delivered_errors(event, today, unknown), delivered_warnings(event, unknown)
    if reference is not None:
        more_errors, more_warnings = reference_problems(event, siret, reference, unknown)
        errors += more_errors
        warnings += more_warnings
    return errors, warnings


def top_field(problem: Problem) -> str:
    return problem.field.split(".", 1)[0].split("[", 1)[0]


_STAND_INS: dict[str, Any] = {
    "event_id": "-",
    "record_id": "-",
    "obtention": "PAR_ADMISSION",
    "certification": {"type": "RS", "code": "RS1"},
    "delivered_on": "2000-01-01",
}
"""Values a required field that failed stands in for while the rules across fields run: the
rules that read `certification` or `delivered_on` are told they are unknown, and skip."""
_PARTIAL_ROUNDS = 4


def partial_event(
    payload: dict[str, Any], exc: ValidationError
) -> tuple[DeliveredEvent, set[str]] | None:
    """The rest of an event whose fields failed on their own, for the rules across fields: a
    wrong `exam.mode` hid a code of the wrong type, a delivery date in the future and a NIR's
    wrong key, and a platform found them one resubmission at a time.

    The failing top-level fields are left out (optional ones, unknown keys) or stood in for
    (`_STAND_INS`); they are returned, so that no rule reads them and no finding about them is
    kept (a missing `delivered_on` hid a missing holder). None when the rest still fails."""
    partial = dict(payload)
    set_aside: set[str] = set()
    twice = set(given_twice(payload))  # which of their values is meant cannot be told
    for _ in range(_PARTIAL_ROUNDS):
        failed = {str(err["loc"][0]) for err in exc.errors() if err["loc"]} | twice
        for name in failed - set_aside:
            field = DeliveredEvent.model_fields.get(name)
            if name in _STAND_INS:
                partial[name] = _STAND_INS[name]
            elif field is None or not field.is_required():  # an unknown key, or optional
                partial.pop(name, None)
            else:  # a required field without a stand-in: none left, kept for a new one
                return None
            set_aside.add(name)
        try:
            event = DeliveredEvent.model_validate(partial)
        except ValidationError as again:
            exc = again
            continue
        if {"holder", "cpf_file"} & set_aside:
            set_aside |= {"holder", "cpf_file"}  # which of the two is given is not known
        return event, set_aside
    return None
