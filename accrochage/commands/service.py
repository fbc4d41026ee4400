"""`accrochage run`: the embedded service."""

from __future__ import annotations

import sys

import click

from accrochage.app import build_core, store_location
from accrochage.commands.logs import LEVELS, log_format_option, setup_logging
from accrochage.settings import config_path


@click.command()
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(LEVELS),
)
@log_format_option
@click.pass_context
def run(ctx: click.Context, log_level: str, log_format: str) -> None:
    """Run the embedded service: HTTP ingestion, batch timer, query API."""
    from accrochage.runtimes.embedded import run_service
    from accrochage.runtimes.serving import bound_socket

    setup_logging(log_level, log_format)
    settings = ctx.obj.settings
    lock = store_location(settings).service_guard()
    lock.acquire_or_refuse()  # before the state's whole-file check: a refusal is at once
    code = 0
    try:
        sock = bound_socket(settings.api)  # before the state is opened, migrated or written
        try:
            core = build_core(settings, service=True)
        except BaseException:
            sock.close()
            raise
        try:
            code = run_service(core, sock=sock, config=config_path(ctx.obj.config))
        finally:
            core.close()
    finally:
        lock.release()
    if code:
        sys.exit(code)  # the writer process ended: a supervisor restarts the service


def register(group: click.Group) -> None:
    group.add_command(run)
