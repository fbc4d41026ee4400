"""A CSV header's checks: a header that names a field twice, or a field and one of its parts,
refuses its file before any row (one value would hide the other).

A column is named in a message only when it is a path of the event contract: a file
exported without its header holds a holder's name, or birth date, on its first line.

A column's dotted path is bounded: each part is one level of the row's event, and a column of
thousands of dots (`x.x.x...`) made an event too deep to store (a RecursionError, a traceback:
none of the file's rows stored, no later file read), after a check of its parts that took time
in the square of their number (6 s for 40,000).
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


MAX_COLUMN_PARTS = 16
"""The most parts a column's dotted path may have; the contract's deepest has 3
(`holder.birth_place.insee_code`), and a misspelt one a few more still fails its rows alone."""


def header_problem(columns: Sequence[str]) -> str | None:
    """Why a header cannot be read safely: a field named twice (one value would hide the
    other), a field and one of its parts (a value and a group of values at one place), or a
    path of more than `MAX_COLUMN_PARTS` parts (no event field is nested that deep)."""
    seen: dict[str, int] = {}
    for number, column in enumerate(columns, 1):
        path = column.strip()
        if not path:
            continue
        if path.count(".") >= MAX_COLUMN_PARTS:
            return (
                f"column {number} names a path of {path.count('.') + 1} parts, more than "
                f"{MAX_COLUMN_PARTS}; no field of an event is more than 3 deep "
                "(holder.birth_place.insee_code): name it as a field of the event contract"
            )
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
