"""A CSV header's checks: a header that names a field twice, or a field and one of its parts,
refuses its file before any row (one value would hide the other).

A column is named in a message only when it is a path of the event contract: a file
exported without its header holds a holder's name, or birth date, on its first line.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel

from accrochage.models.event import DeliveredEvent, RevokedEvent


@cache
def contract_paths() -> frozenset[str]:
    """Every dotted path of the events' fields (`holder.birth_place.insee_code`)."""
    paths: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            paths.add(prefix + name)
            for inner in _models_in(field.annotation):
                walk(inner, f"{prefix}{name}.")

    walk(DeliveredEvent, "")
    walk(RevokedEvent, "")
    return frozenset(paths)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]
    return []


def _column(path: str, number: int) -> str:
    return f"{path} (column {number})" if path in contract_paths() else f"column {number}"


def header_problem(columns: Sequence[str]) -> str | None:
    """Why a header cannot be read safely: a field named twice (one value would hide the
    other), or a field and one of its parts (a value and a group of values at one place)."""
    seen: dict[str, int] = {}
    for number, column in enumerate(columns, 1):
        path = column.strip()
        if not path:
            continue
        if path in seen:
            return (
                f"{_column(path, number)} has the name of column {seen[path]}: one value "
                "would hide the other; keep one of them"
            )
        seen[path] = number
    for path, number in seen.items():
        parts = path.split(".")
        for end in range(1, len(parts)):
            group = ".".join(parts[:end])
            if group in seen:
                return (
                    f"{_column(group, seen[group])} holds a value where "
                    f"{_column(path, number)} holds a part of it: a field is either one value "
                    "or a group of columns; keep one of them"
                )
    return None
