"""`accrochage unusable`: the events kept without a usable record, newest first."""

from __future__ import annotations

import click

from accrochage.commands.core import core_from
from accrochage.commands.options import SENDER_HELP, said_if_unknown, sender_option
from accrochage.commands.output import FORMATS, Row, cell, echo_rows, first_problem, shorten

UNUSABLE_FIELDS = (
    "id",
    "received_at",
    "source",
    "certifier",
    "event_id",
    "record_id",
    "errors",
    "raw",
    "dismissed_at",
    "dismissed_note",
    "forgotten_at",
)
UNUSABLE_COLUMNS = ("id", "received_at", "source", "certifier", "record_id", "problem")


def unusable_cell(row: Row, column: str) -> str:
    if column != "problem":
        return cell(row.get(column))
    if row.get("dismissed_at"):
        return shorten(f"dismissed: {row.get('dismissed_note') or ''}", 70)
    return first_problem(row["errors"])


@click.command()
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=100, show_default=True, help="At most."
)
@click.option("--all", "everything", is_flag=True, help="Those dismissed too.")
@click.option(
    "--certifier", callback=said_if_unknown, help="Those naming this certifier only (its key)."
)
@click.option("--sender", callback=sender_option, help=SENDER_HELP)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_context
def unusable(
    ctx: click.Context,
    limit: int,
    everything: bool,
    certifier: str | None,
    sender: str | None,
    fmt: str,
) -> None:
    """The events kept without a usable record, newest first: not JSON, no usable record_id,
    a revocation of no record, a record of another certifier. The table says why; JSON and
    CSV carry the raw input too (it may hold personal data), to fix and send again. Once dealt
    with: `accrochage dismiss-unusable ID --note TEXT`."""
    with core_from(ctx, reading=True) as core, core.store.reading() as reader:
        rows = reader.unusable(limit + 1, dismissed=everything, certifier=certifier, sender=sender)
    echo_rows(
        rows[:limit], fmt, UNUSABLE_FIELDS, UNUSABLE_COLUMNS, unusable_cell, "no unusable event"
    )
    if len(rows) > limit:  # said, or the older ones look gone (`summary` counts them all)
        click.echo(
            f"note: the {limit} newest are shown; older ones are kept: --limit N shows more",
            err=True,
        )


def register(group: click.Group) -> None:
    group.add_command(unusable)
