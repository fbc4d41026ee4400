"""Whether the configuration file still says what a running service runs.

A service reads its configuration once, at its start. An operator who edits the file and
forgets the restart saw nothing happen (a certifier added, its events refused as unknown),
and one who breaks it learnt it only at the next restart, when the service would not start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from accrochage.errors import ConfigError
from accrochage.settings.loading import load_settings
from accrochage.settings.model import Settings


def file_bytes(source: Path) -> bytes | None:
    """The file as it is (None: unreadable): read whole at each look, a few kilobytes, where
    its modification time may not move between two writes within the same clock tick."""
    try:
        return source.read_bytes()
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class Drift:
    """How the file differs from the configuration running: its sections that say something
    else, or why it does not load; neither: the same."""

    sections: tuple[str, ...] = ()
    error: str | None = None

    @property
    def none(self) -> bool:
        return not self.sections and self.error is None


def drift(running: Settings, source: Path) -> Drift:
    """Read `source` as a start would (the environment included) and compare, section by
    section, with `running`: secrets compare by value and are never shown."""
    try:
        now = load_settings(source)
    except ConfigError as exc:
        return Drift(error=str(exc))
    fields = type(running).model_fields
    return Drift(
        sections=tuple(
            field.alias or name
            for name, field in fields.items()
            if getattr(running, name) != getattr(now, name)
        )
    )
