"""`accrochage worker` (the Kafka runtime) and `accrochage send` (for exam platforms)."""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import nullcontext
from pathlib import Path

import click

from accrochage.commands.logs import LEVELS, log_format_option, setup_logging


@click.command()
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(LEVELS),
)
@click.option(
    "--separate-writer/--no-separate-writer",
    default=True,
    show_default=True,
    help="Store events in a second process (the second core).",
)
@click.option(
    "--reread-beyond-end",
    is_flag=True,
    help="A partition whose stored offset is past its end (its topic was deleted and created "
    "again, or the broker lost data) is read again from its start, instead of stopping.",
)
@log_format_option
@click.pass_context
def worker(
    ctx: click.Context,
    log_level: str,
    log_format: str,
    separate_writer: bool,
    reread_beyond_end: bool,
) -> None:
    """Run the Kafka runtime (faust); a second worker on the same state waits as a standby."""
    from accrochage.runtimes.kafka.compose import run_worker

    setup_logging(log_level, log_format)
    run_worker(
        ctx.obj.settings,
        ctx.obj.config,
        log_level=log_level,
        separate_writer=separate_writer,
        reread_beyond_end=reread_beyond_end,
    )


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--topic", help="Default: kafka.topic of the configuration.")
@click.pass_context
def send(ctx: click.Context, files: tuple[str, ...], topic: str | None) -> None:
    """Publish JSONL events to the topic, keyed by certifier (for exam platforms)."""
    from accrochage.runtimes.kafka.producer import MAX_EVENT_BYTES, publish_lines
    from accrochage.settings.registry import registry_from

    settings = ctx.obj.settings
    target = topic or settings.kafka.topic
    registry = registry_from(settings)
    for name in files:
        if name != "-" and not Path(name).is_file():
            raise click.BadParameter(f"{name}: no such file", param_hint="FILES")
    total, too_large = 0, []
    for name in files:
        with nullcontext(sys.stdin.buffer) if name == "-" else Path(name).open("rb") as stream:
            done = asyncio.run(publish_lines(settings.kafka.bootstrap, target, stream, registry))
        total += done.sent
        too_large += [f"{name}:{number}" for number in done.too_large]
    click.echo(json.dumps({"topic": target, "sent": total}))
    if too_large:
        click.echo(
            f"error: {len(too_large)} event(s) over {MAX_EVENT_BYTES:,} bytes with their key, "
            "more than Kafka "
            f"takes, not sent ({', '.join(too_large[:20])}{' ...' if len(too_large) > 20 else ''})"
            ": no valid event is that large (every field of the contract is bounded), check "
            "these lines; the other events were sent",
            err=True,
        )
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(worker)
    group.add_command(send)
