"""The core a command works with, built by the composition root and closed after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from accrochage.app import Core, build_core
from accrochage.errors import ConfigError
from accrochage.settings import Settings


def existing_state(settings: Settings) -> Path:
    """`paths.state`, refused when it does not exist: a mistyped path would otherwise report
    an empty, brand-new database."""
    state = settings.paths.state
    if not state.exists():
        raise ConfigError(
            f"the state database {state} (paths.state) does not exist: check paths.state "
            "and --config; `ingest`, `flush`, `run`, `worker` and `refdata load` create it"
        )
    return state


@contextmanager
def core_from(
    ctx: click.Context, *, one_off: bool = False, existing: bool = False, reading: bool = False
) -> Iterator[Core]:
    """`existing`: a command that only reads or updates records refuses a state that does not
    exist (a mistyped paths.state would otherwise report an empty, brand-new database);
    `reading`: a command that only reads (it writes nothing in the state's folder: a user who
    may only read it runs it; implies `existing`)."""
    settings = ctx.obj.settings
    if existing or reading:
        existing_state(settings)
    core = build_core(settings, one_off=one_off, read_only=reading)
    if core.relocated is not None:
        click.echo(f"note: {core.relocated}", err=True)
    try:
        yield core
    finally:
        core.close()
