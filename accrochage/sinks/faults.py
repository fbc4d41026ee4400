"""What a checked file is found to be: its faults, never a value of the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from accrochage.models.vocabulary import CDC_MAX_PASSAGES

SHOWN = 20
"""Faults quoted in an exception's message; `FileCheck.faults` keeps every one."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    path: Path
    passages: int
    schema: Path


@dataclass(frozen=True, slots=True)
class Fault:
    """One reason a file fails: never a value of the file, only where and which rule."""

    rule: str
    line: int | None = None
    element: str | None = None
    place: str | None = None

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line else []
        where += [self.place] if self.place else []
        where += [f"element {self.element}"] if self.element else []
        return f"{', '.join(where)}: {self.rule}" if where else self.rule


@dataclass(frozen=True, slots=True)
class FileCheck:
    path: Path
    schema: Path
    passages: int
    faults: tuple[Fault, ...]
    read: bool = True
    """False when the file could not be opened as a regular file: nothing was checked."""

    @property
    def ok(self) -> bool:
        return not self.faults

    def message(self, shown: int = SHOWN) -> str:
        against = f"checked against {self.schema}" if self.read else "not checked"
        lines = [f"{self.path}: {len(self.faults)} error(s) ({against})"]
        lines += [f"  {fault}" for fault in self.faults[:shown]]
        if len(self.faults) > shown:
            lines.append(f"  ... and {len(self.faults) - shown} more")
        return "\n".join(lines)


def too_many_passages(passages: int) -> tuple[Fault, ...]:
    """The CDC takes at most `CDC_MAX_PASSAGES` passages a file, which no XSD says."""
    if passages <= CDC_MAX_PASSAGES:
        return ()
    return (
        Fault(
            f"{passages} passages: the CDC takes at most {CDC_MAX_PASSAGES} in one file; "
            "split it in several files"
        ),
    )
