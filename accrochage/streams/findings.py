"""What a check of the installation finds (`doctor`): a level, and whether the operator
must act on it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    """What was checked: schema, xsd, api, state, room, refdata, alerts, files."""
    level: Level
    message: str
    action: bool = False
    """A warning the operator should act on (an error always needs the operator)."""

    @property
    def needs_operator(self) -> bool:
        return self.level is Level.ERROR or (self.level is Level.WARNING and self.action)

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "level": self.level.value,
            "needs_operator": self.needs_operator,
            "message": self.message,
        }


def needs_operator(findings: list[Finding]) -> bool:
    return any(f.needs_operator for f in findings)
