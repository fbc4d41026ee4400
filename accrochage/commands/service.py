"""`accrochage run`: the embedded service."""

from __future__ import annotations

import logging

import click

from accrochage.app import build_core


@click.command()
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
)
@click.pass_context
def run(ctx: click.Context, log_level: str) -> None:
    """Run the embedded service: HTTP ingestion, batch timer, query API."""
    from accrochage.runtimes.embedded import run_service

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    core = build_core(ctx.obj.settings)
    try:
        run_service(core)
    finally:
        core.close()


def register(group: click.Group) -> None:
    group.add_command(run)
