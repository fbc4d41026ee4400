"""Commands that show records and batches: outstanding, records, show, batches."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from accrochage.commands.core import core_from
from accrochage.commands.options import (
    DAY,
    DUE_WITHIN,
    said_if_unknown,
)
from accrochage.commands.output import FORMATS, Row, cell, echo_rows, shorten
from accrochage.commands.record_text import (
    correction_steps,
    echo_detail,
    left_out_steps,
    record_cell,
    request_steps,
    say,
    support_steps,
)
from accrochage.errors import BadParameter
from accrochage.models.deadline import paris_today
from accrochage.models.vocabulary import BatchState, CdcReason, RecordOrder, RecordStatus, values
from accrochage.state import queries

F = TypeVar("F", bound=Callable[..., Any])
RECORD_COLUMNS = (
    "certifier",
    "record_id",
    "status",
    "delivered_on",
    "deadline",
    "days_left",
    "batch_id",
    "problem",
)
BATCH_FIELDS = (
    "batch_id",
    "certifier",
    "action",
    "state",
    "passages",
    "bytes",
    "sha256",
    "created_at",
    "written_at",
    "deposited_at",
    "report",
    "file",
    "error",
    "archived",
)
BATCH_COLUMNS = (
    "batch_id",
    "certifier",
    "action",
    "state",
    "passages",
    "written_at",
    "report",
    "file",
)


def record_options(function: F) -> F:
    decorators = [
        click.option(
            "--certifier",
            callback=said_if_unknown,
            help="Only this certifier's records (its key in the configuration).",
        ),
        click.option(
            "--status",
            "statuses",
            multiple=True,
            type=click.Choice(values(RecordStatus)),
            help="Only these statuses (repeatable).",
        ),
        click.option(
            "--reason",
            type=click.Choice(values(CdcReason)),
            help="Only records whose last CDC message is of this class (from imported reports).",
        ),
        click.option(
            "--due-within",
            type=DUE_WITHIN,
            help="Only outstanding records with days_left <= DAYS.",
        ),
        click.option(
            "--overdue", is_flag=True, help="Only outstanding records past their deadline."
        ),
        click.option(
            "--deadline-unknown",
            is_flag=True,
            help="Only outstanding records whose deadline is unknown: their delivery date "
            "cannot be read (the summary counts them at risk).",
        ),
        click.option(
            "--as-of",
            type=DAY,
            help="Compute days_left as of this day (default: today in Europe/Paris).",
        ),
        click.option(
            "--order",
            type=click.Choice(values(RecordOrder)),
            default=RecordOrder.DEADLINE.value,
            show_default=True,
            help="deadline: the nearest first, unknown ones last; record_id: by id, to compare "
            "two listings line by line.",
        ),
        click.option(
            "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _list(ctx: click.Context, only_outstanding: bool, options: dict[str, Any]) -> None:
    with core_from(ctx, reading=True) as core:
        as_of = options["as_of"]
        day: date = as_of or paris_today(core.clock)
        try:
            query = queries.OutstandingQuery(
                as_of=day,
                certifier=options["certifier"],
                statuses=options["statuses"],
                reason=options["reason"],
                due_within=options["due_within"],
                overdue=options["overdue"],
                deadline_unknown=options["deadline_unknown"],
                only_outstanding=only_outstanding,
                order=RecordOrder(options["order"]),
            )
        except BadParameter:
            raise click.UsageError(
                "--deadline-unknown lists the records whose deadline cannot be read: it "
                "cannot be combined with --overdue or --due-within (ask for each apart)"
            ) from None
        what = "outstanding record" if only_outstanding else "record"
        with core.store.reading() as reader:
            table = options["fmt"] == "table"
            failed = (
                {
                    b["batch_id"]: str(b.get("error") or "not written")
                    for b in reader.iter_batches(state=BatchState.FAILED.value)
                }
                if table
                else {}
            )
            left_out = {str(b["batch_id"]) for b in reader.left_out()} if table else set()
            printed = echo_rows(
                reader.iter_outstanding(query),
                options["fmt"],
                queries.OUTSTANDING_FIELDS,
                RECORD_COLUMNS,
                lambda row, column: record_cell(row, column, failed, left_out),
                f"no {what}",
            )
    if options["fmt"] == "table" and printed:
        click.echo(f"{printed} {what}(s) as of {day}")


@click.command()
@record_options
@click.pass_context
def outstanding(ctx: click.Context, /, **options: Any) -> None:
    """List outstanding records (what the law still asks for), the nearest deadline first."""
    _list(ctx, True, options)


@click.command()
@record_options
@click.pass_context
def records(ctx: click.Context, /, **options: Any) -> None:
    """List records of any status (accepted, withdrawn and excluded included)."""
    _list(ctx, False, options)


@click.command()
@click.argument("record_id")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
def show(ctx: click.Context, record_id: str, fmt: str) -> None:
    """One record: its status, content, stored correction, batches and history.

    RECORD_ID is the event's record_id (the CDC idTechnique).
    """
    with core_from(ctx, reading=True) as core, core.store.reading() as reader:
        detail = reader.record_detail(record_id, paris_today(core.clock))
        version = core.settings.schema_.version
    if detail is None:
        raise click.ClickException(f"no record {record_id}: see `accrochage records`")
    if fmt == "json":
        click.echo(json.dumps(detail, ensure_ascii=False, indent=1))
        return
    echo_detail(detail)
    steps = support_steps(detail, version) or correction_steps(detail)
    for line in [*steps, *left_out_steps(detail), *request_steps(detail)]:
        say(line)


def batch_cell(row: Row, column: str) -> str:
    """The table's cells; a batch without a file says why its writing failed (the alert and
    doctor send the operator here)."""
    if column == "file" and not row.get("file") and row.get("error"):
        return f"not written: {shorten(str(row['error']), 80)}"
    archived = row.get("archived")
    if column == "file" and archived:
        to = archived["to"]
        return f"archived to {to}" if to else f"deleted on {str(archived['archived_at'])[:10]}"
    if column == "report":
        report = row.get("report")
        return f"{report['accepted']} ok, {report['rejected']} ko" if report else ""
    return cell(row.get(column))


@click.command()
@click.option("--certifier", callback=said_if_unknown, help="Only this certifier's batches.")
@click.option("--state", type=click.Choice(values(BatchState)), help="Only batches in this state.")
@click.option(
    "--to-deposit",
    is_flag=True,
    help="Only the files still to upload to the CDC portal (state written).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_context
def batches(
    ctx: click.Context, certifier: str | None, state: str | None, to_deposit: bool, fmt: str
) -> None:
    """List the batches, newest first, with their files and the CDC's reports."""
    if to_deposit:
        state = BatchState.WRITTEN.value
    absent: list[Row] = []
    with core_from(ctx, reading=True) as core, core.store.reading() as reader:
        rows = reader.iter_batches(state=state, certifier=certifier)
        if to_deposit:
            rows = _noting_absent(rows, absent)
        echo_rows(rows, fmt, BATCH_FIELDS, BATCH_COLUMNS, batch_cell, "no batch")
    for row in absent:
        click.echo(
            f"warning: the file of batch {row['batch_id']} is not at {row['file']}: do not "
            "upload a copy from elsewhere (in deposited/ or done/, it was sent already); "
            "`accrochage verify` says where it is and what to run",
            err=True,
        )


def _noting_absent(rows: Iterable[Row], absent: list[Row]) -> Iterator[Row]:
    """`rows`, each file to upload that is not where it is listed noted in `absent`: after a
    restore, one deposited since the backup is `written` again, and listed where it was."""
    for row in rows:
        if row.get("file") and not Path(str(row["file"])).is_file():
            absent.append(row)
        yield row


def register(group: click.Group) -> None:
    for command in (outstanding, records, show, batches):
        group.add_command(command)
