"""Commands that show records and batches: outstanding, records, show, batches."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar

import click

from accrochage.commands.core import core_from
from accrochage.commands.options import DAY, DUE_WITHIN, said_if_unknown
from accrochage.commands.output import FORMATS, Row, cell, echo_rows, first_problem, shorten
from accrochage.models.deadline import paris_today
from accrochage.models.problems import escaped
from accrochage.models.vocabulary import BatchState, CdcReason, RecordStatus, SchemaVersion, values
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

SENT_AGAIN = frozenset({RecordStatus.PENDING, RecordStatus.BATCHED, RecordStatus.DEPOSITED})
"""Statuses in which a CDC message is that of an earlier file's report (a retried record)."""
FLAGS = ("correction_pending", "revocation_pending", "suppression_rejected", "identity_procedure")
"""The record's flags a person reads in a table (CONTRACT §8, §9)."""


def record_cell(row: Row, column: str, failed: Mapping[str, str] | None = None) -> str:
    """The table's cells: the first problem (error, a failed file, CDC message or flag) says
    what to fix. `failed`: the failed batches' ids and errors (few: read before the rows)."""
    if column != "problem":
        return cell(row.get(column))
    if row["errors"]:
        return first_problem(row["errors"])
    if failed and row.get("batch_id") in failed:
        return shorten(f"its file failed (accrochage batches): {failed[row['batch_id']]}", 70)
    if by_support(row):
        return shorten(
            f"CDC holds it as {row['cdc_held_as']}: ask its support (accrochage show)", 70
        )
    if row.get("cdc_message"):
        said = "SUPPRESSION refused" if row.get("suppression_rejected") else "CDC"
        if row.get("status") in SENT_AGAIN:  # the message is the last report's, not its file's
            said = "sent again after CDC"
        return shorten(f"{said} {row.get('cdc_reason') or ''}: {row['cdc_message']}", 70)
    flags = [f for f in FLAGS if row.get(f)]
    request = row.get("correction_request")
    if request:
        flags.append(f"correction request {request['request_id']} due {request['deadline']}")
    return ", ".join(flags)


def by_support(row: Row) -> bool:
    """An accepted record the CDC holds under another idTechnique, waiting for a correction
    or withdrawal: only the CDC's support can apply it (no SUPPRESSION is cut)."""
    waiting = row.get("correction_pending") or row.get("revocation_pending")
    return bool(row.get("cdc_held_as")) and row.get("status") == "accepted" and bool(waiting)


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
        query = queries.OutstandingQuery(
            as_of=day,
            certifier=options["certifier"],
            statuses=options["statuses"],
            reason=options["reason"],
            due_within=options["due_within"],
            overdue=options["overdue"],
            deadline_unknown=options["deadline_unknown"],
            only_outstanding=only_outstanding,
        )
        what = "outstanding record" if only_outstanding else "record"
        with core.store.reading() as reader:
            failed = (
                {
                    b["batch_id"]: str(b.get("error") or "not written")
                    for b in reader.iter_batches(state=BatchState.FAILED.value)
                }
                if options["fmt"] == "table"
                else {}
            )
            printed = echo_rows(
                reader.iter_outstanding(query),
                options["fmt"],
                queries.OUTSTANDING_FIELDS,
                RECORD_COLUMNS,
                lambda row, column: record_cell(row, column, failed),
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
    _echo_detail(detail)
    for line in support_steps(detail, version):
        _say(line)


def support_steps(detail: Row, version: SchemaVersion) -> list[str]:
    """What to ask the CDC's support for an accepted record no SUPPRESSION can correct or
    withdraw (schema 1.1.2 has none; the CDC holds it under another idTechnique), and how to
    record that it was done."""
    revoked, corrected = detail.get("revocation_pending"), detail.get("correction_pending")
    if detail["status"] != "accepted" or not (revoked or corrected):
        return []
    held_as = detail.get("cdc_held_as")
    if held_as is None and version is not SchemaVersion.V1_1_2:
        return []
    accepted = next(
        (b for b in detail["batches"] if b["batch_id"] == detail.get("accepted_batch_id")), None
    )
    where = f" (accepted in file {accepted['file_name']})" if accepted else ""
    ask = (
        "delete"
        if revoked
        else 'correct, with the stored correction (`show --format json`, "correction"),'
    )
    rid = detail["record_id"]
    why = (
        f"the CDC holds it under idTechnique {held_as}, where no SUPPRESSION naming {rid} can reach"
        if held_as is not None
        else "schema 1.1.2 sends no SUPPRESSION"
    )
    return [
        f"next:         {why}: ask the CDC's support to {ask} "
        f"the passage idTechnique {held_as or rid}{where};",
        f'              once done: accrochage support-applied {rid} --note "<their reference>"',
    ]


def _echo_detail(detail: Row) -> None:
    """Line by line, `escaped`: the certifier, messages and reasons may come from a sender."""
    for name in (
        "record_id",
        "certifier",
        "status",
        "delivered_on",
        "deadline",
        "days_left",
        "batch_id",
        "cdc_reason",
        "cdc_message",
    ):
        _say(f"{name:<13} {cell(detail.get(name)) or '-'}")
    if detail.get("cdc_held_as"):
        _say(f"{'cdc_held_as':<13} {detail['cdc_held_as']} (the CDC's idTechnique for it)")
    for name in ("errors", "warnings"):
        for problem in detail[name]:
            _say(f"{name[:-1]:<13} {problem['field']}: {problem['message']}")
    flags = [f for f in FLAGS if detail.get(f)]
    if flags:
        _say(f"{'flags':<13} {', '.join(flags)}")
    for request in detail.get("correction_requests", []):
        left = request["days_left"]
        due = f"due {request['deadline']}, {left} days" if left is not None else "closed"
        _say(
            f"{'request':<13} {request['request_id']} {request['status']} (received "
            f"{request['received_on']}, {due})"
        )
    for batch in detail["batches"]:
        where = batch["file"] or batch["file_name"]
        _say(f"{'batch':<13} {batch['batch_id']} {batch['state']} {where}")
    if any(
        b["batch_id"] == detail.get("batch_id") and b["state"] == BatchState.FAILED
        for b in detail["batches"]
    ):
        _say(
            f"{'next':<13} its batch's file could not be written (`accrochage batches` says "
            "why) and is tried again at each flush; if its message names this idTechnique, "
            "send a corrected event (it supersedes the batch) or `accrochage exclude "
            f"{detail['record_id']} --reason TEXT`"
        )
    _say("history:")
    for entry in detail["history"]:
        before = entry["from_status"] or "-"
        _say(f"  {entry['at']}  {before:>9} -> {entry['to_status']:<9}  {entry['reason']}")
    _say("content: `accrochage show --format json` prints it (it holds personal data)")


def _say(line: str) -> None:
    click.echo(escaped(line))


def batch_cell(row: Row, column: str) -> str:
    """The table's cells; a batch without a file says why its writing failed (the alert and
    doctor send the operator here)."""
    if column == "file" and not row.get("file") and row.get("error"):
        return f"not written: {shorten(str(row['error']), 80)}"
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
    with core_from(ctx, reading=True) as core, core.store.reading() as reader:
        rows = reader.iter_batches(state=state, certifier=certifier)
        echo_rows(rows, fmt, BATCH_FIELDS, BATCH_COLUMNS, batch_cell, "no batch")


UNUSABLE_FIELDS = ("id", "received_at", "source", "event_id", "record_id", "errors", "raw")
UNUSABLE_COLUMNS = ("id", "received_at", "source", "record_id", "problem")


def unusable_cell(row: Row, column: str) -> str:
    if column != "problem":
        return cell(row.get(column))
    return first_problem(row["errors"])


@click.command()
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=100, show_default=True, help="At most."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_context
def unusable(ctx: click.Context, limit: int, fmt: str) -> None:
    """The events kept without a usable record, newest first: not JSON, no usable record_id,
    a revocation of no record, a record of another certifier. The table says why; JSON and
    CSV carry the raw input too (it may hold personal data), to fix and send again."""
    with core_from(ctx, reading=True) as core, core.store.reading() as reader:
        rows = reader.unusable(limit)
    echo_rows(rows, fmt, UNUSABLE_FIELDS, UNUSABLE_COLUMNS, unusable_cell, "no unusable event")


def register(group: click.Group) -> None:
    for command in (outstanding, records, show, batches, unusable):
        group.add_command(command)
