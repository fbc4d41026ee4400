"""Field-level findings: an error blocks a record, a warning never does."""

from __future__ import annotations

from dataclasses import asdict, dataclass

DUPLICATED = "(keys given twice)"
"""The key under which an object parsed from JSON lists its keys given more than once
(`decode.loads_json`): JSON readers keep the last value, so a duplicated `record_id` named
another record without a word. No field of the contract is called so: validation refuses the
object, naming each key (`GIVEN_TWICE`)."""
UNREAD_CELLS = "(cells without a column)"
"""The key under which a CSV row keeps its cells that no column of the header names (beyond
its columns, or under a column without a name): no field is called so, and validation says
what they are."""
UNREAD_CELLS_MESSAGE = (
    "cell(s) without a column in the header (beyond its columns, or under a column with no "
    "name) were not read: name their column, or remove them"
)
GIVEN_TWICE = (
    "is given more than once in its object: JSON readers keep the last value, so which one "
    "is meant cannot be told; send each field once"
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about one field, the field a dotted path in the contract's terms."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def under(field: str, path: str) -> bool:
    """Whether the dotted `field` is `path` or lies within it (`holder.nir` in `holder`)."""
    return field == path or field.startswith((path + ".", path + "["))


def known(unknown: frozenset[str], *fields: str) -> bool:
    """Whether none of `fields` stands in for a value that failed (`models/partial.py`), nor
    lies within one that does: a rule reading such a field would judge the stand-in."""
    return not any(under(field, path) for field in fields for path in unknown)


def problems_as_dicts(items: list[Problem]) -> list[dict[str, str]]:
    return [item.as_dict() for item in items]


def given_twice(values: dict[str, object]) -> list[str]:
    """The keys an object parsed from JSON gave more than once (`DUPLICATED`); none when the
    mark is absent or is not the parser's (a list of key names)."""
    marked = values.get(DUPLICATED)
    if isinstance(marked, list) and all(isinstance(key, str) for key in marked):
        return marked
    return []
