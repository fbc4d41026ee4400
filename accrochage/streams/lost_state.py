"""A state lost beside the outbox it wrote: no state at `paths.state`, yet batch files in the
outbox. `doctor` says it (`doctor_state.py`); a command or a service that would create an
empty state there refuses to."""

from __future__ import annotations

from pathlib import Path

from accrochage.errors import StateLost
from accrochage.settings import Settings


def first_outbox_file(outbox: Path) -> Path | None:
    """A batch file in `outbox` (its certifiers' folders and theirs), or None; None too for
    an outbox this user may not list."""
    try:
        return next(
            (p for pattern in ("*/*.xml", "*/*/*.xml") for p in sorted(outbox.glob(pattern))),
            None,
        )
    except OSError:
        return None


def no_state(state: Path) -> bool:
    """Whether `paths.state` holds no database: no file, or one of no bytes (truncated, a
    copy cut short, a `touch`), which SQLite would make an empty state, with no WAL beside it
    that holds its commits (a state in WAL mode has its header page written at once)."""
    try:
        if state.stat().st_size > 0:
            return False
    except OSError:
        return not state.exists()
    try:
        return state.with_name(state.name + "-wal").stat().st_size == 0
    except OSError:
        return True


def refuse_lost_state(settings: Settings) -> None:
    """A writing command or a service would create an empty state where none is: refused
    when the outbox holds files a state wrote (the state lost, or `paths.state` changed), as
    the state created would know none of them, deposited or not, and set them aside as
    unknown. A supervisor restarting the service (`Restart=`) made that state at once."""
    state, outbox = settings.paths.state, settings.paths.outbox
    if not no_state(state):
        return
    first = first_outbox_file(outbox)
    if first is None:
        return
    raise StateLost(
        f"no state at {state} (paths.state), yet the outbox {outbox} holds files a state "
        f"wrote (first: {first.relative_to(outbox)}): nothing was created. If the state was "
        "lost, restore its last backup (`accrochage restore BACKUP`, then the steps it "
        "prints); if it is elsewhere, set paths.state; to start a new state on purpose, move "
        "the outbox's files away first"
    )
