"""A thin click layer over the library: parse options, call one function, print, exit."""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import click

from accrochage import heap
from accrochage.commands.logs import in_json
from accrochage.commands.output import flush_output, output_refused
from accrochage.errors import AccrochageError, ConfigError, StorageCorruptError
from accrochage.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


class AppContext:
    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings


class Group(click.Group):
    """Every deliberate error ends as one line on stderr and exit 2 (1 for failed work)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                result = super().invoke(ctx)
            except SystemExit:
                flush_output()
                raise
            flush_output()
            return result
        except ConfigError as exc:
            _say(f"configuration error: {exc}")
            sys.exit(2)
        except StorageCorruptError as exc:
            _say(f"error: {exc}")
            sys.exit(2)
        except AccrochageError as exc:
            _say(f"error: {exc}")
            sys.exit(1)
        except OSError as exc:
            if exc.errno == errno.EPIPE or not output_refused(exc):
                raise  # click ends a closed pipe quietly; any other is a fault of its own
            _say(
                f"error: the output could not be written ({exc.strerror}): free space where "
                "it goes, or send it elsewhere; what the command changed in the state stays "
                "changed (a listing or a report: run it again)"
            )
            _discard_output()
            sys.exit(1)


def _discard_output() -> None:
    """What stays in the output's buffer goes nowhere: flushed at the interpreter's exit, it
    would be refused again ("Exception ignored", exit 120 instead of 1)."""
    with suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _say(line: str) -> None:
    """The error's line on stderr; a JSON log line when the command logs JSON lines."""
    if in_json():
        logging.getLogger("accrochage").critical("%s", line)
    else:
        click.echo(line, err=True)


@click.group(cls=Group)
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="ACCROCHAGE_CONFIG",
    help="Configuration file (default ./accrochage.toml, or $ACCROCHAGE_CONFIG).",
)
@click.version_option(package_name="accrochage")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """Keep every delivered certification on its way to the CDC (SI CPF), on time."""
    ctx.obj = AppContext(config)


def entry() -> None:
    """The `accrochage` command: the project imported, its heap settled, then the CLI (tests
    call `main` in their own process, whose heap is theirs)."""
    heap.settle()
    main()


pass_app = click.make_pass_decorator(AppContext)


def register_commands() -> None:
    from accrochage.commands import (
        alerts,
        check,
        corrections,
        doctor,
        evidence,
        files,
        flush,
        generate,
        ingest,
        kafka,
        operator,
        outbox,
        records,
        refdata,
        reports,
        service,
        state,
        summary,
        unusable_list,
    )

    files.register(main)
    ingest.register(main)
    flush.register(main)
    summary.register(main)
    reports.register(main)
    generate.register(main)
    service.register(main)
    kafka.register(main)
    outbox.register(main)
    records.register(main)
    unusable_list.register(main)
    operator.register(main)
    check.register(main)
    refdata.register(main)
    alerts.register(main)
    corrections.register(main)
    doctor.register(main)
    evidence.register(main)
    state.register(main)


register_commands()
