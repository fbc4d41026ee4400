"""Field-level findings: an error blocks a record, a warning never does."""

from __future__ import annotations

from collections.abc import Set
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


MAX_FIELD_CHARS = 200
"""A field's path beyond this is cut: an unknown key is named by its sender, who could make it
as long as a request."""


def escaped(text: str) -> str:
    """`text` with each character that is not printable (a control character, a line break, a
    lone surrogate) written as its escape (`\\x1b`, `\\n`, `\\ud800`): what came from outside
    can then be printed without forging a line or colouring a terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def shown_field(field: str) -> str:
    """The path as it can be printed, stored and sent back (`escaped`), at most
    `MAX_FIELD_CHARS`: a key a sender chose can be as long as a request."""
    if field.isprintable() and len(field) <= MAX_FIELD_CHARS:
        return field
    shown = escaped(field[: MAX_FIELD_CHARS + 1])
    return shown if len(shown) <= MAX_FIELD_CHARS else shown[:MAX_FIELD_CHARS] + "…"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about one field, the field a dotted path in the contract's terms (as
    `shown_field` writes it)."""

    field: str
    message: str

    def __post_init__(self) -> None:
        shown = shown_field(self.field)
        if shown is not self.field:
            object.__setattr__(self, "field", shown)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def under(field: str, path: str) -> bool:
    """Whether the dotted `field` is `path` or lies within it (`holder.nir` in `holder`)."""
    return field == path or field.startswith((path + ".", path + "["))


def under_any(field: str, paths: Set[str]) -> bool:
    """Whether the dotted `field` is one of `paths` or lies within one: `under` for every
    path at once, in the time of `field`'s length (an event may set thousands aside)."""
    if not paths:
        return False
    if field in paths:
        return True
    return any(field[:at] in paths for at, char in enumerate(field) if char in ".[")


def known(unknown: frozenset[str], *fields: str) -> bool:
    """Whether none of `fields` stands in for a value that failed (`models/partial.py`), nor
    lies within one that does: a rule reading such a field would judge the stand-in."""
    if not unknown:
        return True
    return not any(under_any(field, unknown) for field in fields)


def problems_as_dicts(items: list[Problem]) -> list[dict[str, str]]:
    return [item.as_dict() for item in items]


def given_twice(values: dict[str, object]) -> list[str]:
    """The keys an object parsed from JSON gave more than once (`DUPLICATED`); none when the
    mark is absent or is not the parser's (a list of key names)."""
    marked = values.get(DUPLICATED)
    if isinstance(marked, list) and all(isinstance(key, str) for key in marked):
        return marked
    return []


MAX_PROBLEMS = 50
"""Findings a record keeps at most (and a line saying how many more)."""


def capped(problems: list[Problem], beyond: int = 0) -> list[Problem]:
    """At most `MAX_PROBLEMS` findings, and how many more (`beyond`: those not even built): a
    record keeps what helps fix it."""
    if len(problems) + beyond <= MAX_PROBLEMS:
        return problems
    more = len(problems) + beyond - MAX_PROBLEMS
    return [
        *problems[:MAX_PROBLEMS],
        Problem("event", f"{more} more finding(s) not listed: fix the ones above and send again"),
    ]
