"""`accrochage generate`: realistic synthetic events for demos and load tests."""

from __future__ import annotations

import json
from datetime import date

import click

from accrochage.generate import GeneratedCertifier, generate_events


@click.command()
@click.option("--count", "-n", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--invalid-ratio", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Delivery dates are drawn from the 80 days before this day.",
)
@click.option(
    "--first",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Number of the first record id: another day's events get new ids with --first N.",
)
@click.pass_context
def generate(
    ctx: click.Context, count: int, seed: int, invalid_ratio: float, today: object, first: int
) -> None:
    """Print synthetic events (JSONL, -n/--count of them) for the configured certifiers.

    Record ids are numbered from --first whatever the seed: the same ids with another seed
    are corrections of those records (new content for the same certifications)."""
    settings = ctx.obj.settings
    certifiers = [GeneratedCertifier(c.key, c.certifications) for c in settings.certifiers]
    day = today.date() if hasattr(today, "date") else date.today()
    for event in generate_events(
        count, certifiers, today=day, seed=seed, invalid_ratio=invalid_ratio, start_index=first
    ):
        click.echo(json.dumps(event, ensure_ascii=False))


def register(group: click.Group) -> None:
    group.add_command(generate)
