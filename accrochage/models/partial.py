"""The rules across fields, over a whole event or over the rest of one whose fields failed.

An invalid event is answered with its errors at once (CONTRACT §1): the rules that join fields
run beside a field that failed on its own, over the rest of the event, so that a platform does
not find them one resubmission at a time.
"""

from __future__ import annotations

from datetime import date
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from accrochage.models.event import DeliveredEvent
from accrochage.models.problems import DUPLICATED, Problem, given_twice, under_any
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


def set_aside_finding(problem: Problem, set_aside: frozenset[str]) -> bool:
    """Whether a finding is about a field set aside (judged on its stand-in, or its absence)."""
    return under_any(problem.field, set_aside)


_STAND_INS: dict[str, Any] = {
    "event_id": "-",
    "record_id": "-",
    "obtention": "PAR_ADMISSION",
    "certification": {"type": "RS", "code": "RS1"},
    "delivered_on": "2000-01-01",
    "holder.birth_name": "-",
    "holder.first_names": ["-"],
    "holder.birth_date": "2000-01-01",
    "holder.sex": "M",
    "certification.type": "RS",
    "certification.code": "RS1",
    "cpf_file.id": "-",
    "cpf_file.holder_name": "-",
    "cpf_file.holder_first_name": "-",
}
"""Values a required field that failed stands in for while the rules across fields run; the
rules that read it are told it is unknown (`known`), and skip."""
_PARTIAL_ROUNDS = 6
_LEFT_OUT = object()


def partial_event(
    payload: dict[str, Any], exc: ValidationError
) -> tuple[DeliveredEvent, set[str]] | None:
    """The rest of an event whose fields failed on their own, for the rules across fields: a
    wrong `exam.mode` hid a code of the wrong type, a delivery date in the future and a NIR's
    wrong key, and a platform found them one resubmission at a time.

    Each failing field is left out (an optional one, an unknown key) or stood in for
    (`_STAND_INS`), as deep as it failed: a wrong `holder.sex` leaves the NIR's key and the
    birth date's rules to run. A field that can be neither sets its object aside in its turn.
    The fields set aside are returned (dotted paths), so that no rule reads them and no
    finding about them is kept (a missing `delivered_on` hid a missing holder). None when the
    rest still fails."""
    partial = dict(payload)
    owned = {id(partial)}
    """The objects of `partial` copied from `payload` (changed in place from then on): one
    copy each, however many of their fields are set aside."""
    set_aside: set[str] = set()
    twice = {(key,) for key in given_twice(payload)}  # which value is meant cannot be told
    for _ in range(_PARTIAL_ROUNDS):
        failed = {loc for err in exc.errors() for loc in _failed_at(err)} | twice
        for loc in sorted(failed, key=len, reverse=True):
            if under_any(_dotted(loc), set_aside):
                continue
            path = _set_aside(partial, loc, owned)
            if path is None:
                return None
            set_aside.add(path)
        try:
            event = DeliveredEvent.model_validate(partial)
        except ValidationError as again:
            exc = again
            continue
        if set_aside & {"holder", "cpf_file"}:
            set_aside |= {"holder", "cpf_file"}  # which of the two is given is not known
        return event, set_aside
    return None


def _failed_at(err: ErrorDetails) -> list[tuple[str, ...]]:
    """Where an error sets a field aside: its location up to a list's field (an item of
    `first_names` stands for the list); the keys an object gave twice, each."""
    loc: list[str] = []
    for part in err["loc"]:
        if not isinstance(part, str):
            break
        loc.append(part)
    if not loc:
        return []
    if loc[-1] == DUPLICATED and isinstance(err.get("input"), list):
        keys = [k for k in err["input"] if isinstance(k, str) and k != DUPLICATED]
        return [tuple(loc), *[(*loc[:-1], key) for key in keys]]
    return [tuple(loc)]


def _dotted(loc: tuple[str, ...]) -> str:
    return ".".join(loc)


def _set_aside(partial: dict[str, Any], loc: tuple[str, ...], owned: set[int]) -> str | None:
    """Leave the field at `loc` out of `partial`, or stand in for it; its path. A field that
    can be neither sets its object aside instead. None for a required top-level field
    without a stand-in."""
    while loc:
        path = _dotted(loc)
        model = _model_at(loc[:-1])
        field = model.model_fields.get(loc[-1]) if model is not None else None
        if path in _STAND_INS:
            _put(partial, loc, _STAND_INS[path], owned)
            return path
        if model is not None and (field is None or not field.is_required()):
            _put(partial, loc, _LEFT_OUT, owned)
            return path
        if len(loc) == 1:
            return None
        loc = loc[:-1]
    return None


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    """The model of the object at `loc` (the event's at ()), None when it is not one."""
    model: type[BaseModel] = DeliveredEvent
    for name in loc:
        field = model.model_fields.get(name)
        if field is None:
            return None
        found = [a for a in get_args(field.annotation) or (field.annotation,) if _is_model(a)]
        if len(found) != 1:
            return None
        model = found[0]
    return model


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _put(container: dict[str, Any], loc: tuple[str, ...], value: Any, owned: set[int]) -> None:
    """Replace (or leave out) the value at `loc` in `container`, an object of ours, copying
    each object on the way the first time only (`owned`: those copied); an object missing on
    the way is left as it is."""
    head, *rest = loc
    if not rest:
        if value is _LEFT_OUT:
            container.pop(head, None)
        else:
            container[head] = value
        return
    inner = container.get(head)
    if not isinstance(inner, dict):
        return
    if id(inner) not in owned:
        inner = dict(inner)
        owned.add(id(inner))
        container[head] = inner
    _put(inner, tuple(rest), value, owned)
