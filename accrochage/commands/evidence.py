"""`accrochage evidence RECORD_ID -o FILE.zip`: one record's evidence for the CDC (CONTRACT §9)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from accrochage.commands.core import core_from
from accrochage.errors import AccrochageError
from accrochage.models.deadline import paris_today
from accrochage.streams.evidence import gather_evidence


@click.command()
@click.argument("record_id")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="The zip to write (replaced if it exists; readable by its owner only).",
)
@click.pass_context
def evidence(ctx: click.Context, record_id: str, output: Path) -> None:
    """Gather one record's evidence in a zip, for the CDC's procedure on identities that keep
    failing: its passage in each batch file that carried it, the CDC reports naming it, its
    history and the record as `show --format json` prints it.

    The zip holds personal data: keep it to yourself. Exit 1 when a piece is missing (a file
    gone or altered, a report without its kept copy): the zip is still written, with
    `missing.txt` saying what is missing. Exit 2 when no zip is written (no such record, a
    path that cannot be written).
    """
    try:
        with core_from(ctx, one_off=True, reading=True) as core:
            gathered = gather_evidence(
                core.store,
                core.feedback.sink,
                core.feedback.archive,
                record_id,
                paris_today(core.clock),
                output,
            )
    except AccrochageError as exc:  # exit 1 says a zip was written, with missing.txt
        click.echo(f"error: {exc}; no zip written", err=True)
        sys.exit(2)
    for note in gathered.notes:
        click.echo(f"note: {note}")
    for line in gathered.missing:
        click.echo(f"warning: {line}", err=True)
    click.echo(
        f"wrote {gathered.path}: {gathered.passages} passage(s), {gathered.reports} report(s), "
        f"{gathered.history} history entries"
        + (f", {len(gathered.missing)} missing (see missing.txt)" if gathered.missing else "")
    )
    if gathered.missing:
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(evidence)
