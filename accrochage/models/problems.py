"""Field-level findings: an error blocks a record, a warning never does."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about one field, the field a dotted path in the contract's terms."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def problems_as_dicts(items: list[Problem]) -> list[dict[str, str]]:
    return [item.as_dict() for item in items]
