"""`accrochage correction-request add|list|answer` (CONTRACT §9, décret 2024-1236)."""

from __future__ import annotations

from datetime import date

import click

from accrochage.commands.core import core_from
from accrochage.commands.options import DAY, said_if_unknown
from accrochage.commands.output import FORMATS, Row, cell, echo_rows, shorten
from accrochage.models.vocabulary import RequestSource, values

COLUMNS = (
    "request_id",
    "record_id",
    "certifier",
    "source",
    "received_on",
    "deadline",
    "days_left",
    "status",
    "answer",
)
FIELDS = (*COLUMNS, "at_risk", "overdue", "note", "opened_at")
"""CONTRACT §9's keys first; the flags, the operator's note and when it was opened after."""


def request_cell(row: Row, column: str) -> str:
    if column == "status" and row.get("overdue"):
        return "open, OVERDUE"
    if column == "status" and row.get("at_risk"):
        return "open, at risk"
    if column == "answer":
        answered = row.get("answer")
        return shorten(f"{answered['kind']}: {answered['text']}", 60) if answered else ""
    return cell(row.get(column))


@click.group("correction-request")
def correction_request() -> None:
    """Correction requests from the CDC or a holder: 3 months to answer (décret 2024-1236)."""


@correction_request.command("add")
@click.argument("record_id")
@click.option(
    "--received-on",
    type=DAY,
    required=True,
    help="The day the request arrived (the law's 3 months count from it).",
)
@click.option(
    "--source",
    type=click.Choice(values(RequestSource)),
    default=RequestSource.CDC.value,
    show_default=True,
    help="Who asks: the CDC or the holder.",
)
@click.option("--certifier", help="A configured certifier key (default: the record's).")
@click.option("--note", help="Free text for the operators (stored, never logged).")
@click.pass_context
def add(
    ctx: click.Context,
    record_id: str,
    received_on: date,
    source: str,
    certifier: str | None,
    note: str | None,
) -> None:
    """Open a request on RECORD_ID (the idTechnique); prints the request's id.

    The record may be unknown to the tracker (older data): the request attaches to it when it
    arrives. It closes by itself when the CDC accepts corrected data sent after it was opened,
    or with `correction-request answer`.
    """
    with core_from(ctx, existing=True) as core:
        opened = core.corrections.add(
            record_id,
            received_on,
            source=RequestSource(source),
            certifier=certifier,
            note=note,
        )
    if opened.already:
        click.echo(
            f"note: this request is open already, as {opened.request.request_id} (the same "
            "record, day, source and note): nothing added",
            err=True,
        )
    for warning in opened.warnings():
        click.echo(f"warning: {warning.message}", err=True)
    click.echo(opened.request.request_id)


@correction_request.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only the requests still open.")
@click.option(
    "--certifier", callback=said_if_unknown, help="Only those this certifier owes (its key)."
)
@click.option("--as-of", type=DAY, help="Compute days_left as of this day (default: today, Paris).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_context
def list_requests(
    ctx: click.Context, open_only: bool, certifier: str | None, as_of: date | None, fmt: str
) -> None:
    """List the requests: open ones first, the nearest deadline first."""
    with core_from(ctx, reading=True) as core:
        rows = core.corrections.list(open_only=open_only, as_of=as_of, certifier=certifier)
    empty = "no open correction request" if open_only else "no correction request"
    echo_rows(rows, fmt, FIELDS, COLUMNS, request_cell, empty)


@correction_request.command("answer")
@click.argument("request_id")
@click.option("--unfounded", metavar="TEXT", help="Close it as unfounded, saying why.")
@click.option(
    "--corrected", is_flag=True, help="Close it as corrected (the corrected data was sent)."
)
@click.option(
    "--cancelled",
    metavar="TEXT",
    help="Close it as entered by mistake (a wrong record id or day; no one asked it), saying "
    "what was meant.",
)
@click.pass_context
def answer(
    ctx: click.Context,
    request_id: str,
    unfounded: str | None,
    corrected: bool,
    cancelled: str | None,
) -> None:
    """Close REQUEST_ID by hand: --unfounded TEXT, --corrected, or --cancelled TEXT for one
    entered by mistake (exactly one)."""
    if [unfounded is not None, corrected, cancelled is not None].count(True) != 1:
        raise click.UsageError(
            "give exactly one of --unfounded TEXT, --corrected and --cancelled TEXT"
        )
    with core_from(ctx, existing=True) as core:
        done = core.corrections.answer(
            request_id, unfounded=unfounded, corrected=corrected, cancelled=cancelled
        )
    click.echo(f"{done['request_id']}: {done['status']} ({done['answer']['kind']})")


def register(group: click.Group) -> None:
    group.add_command(correction_request)
