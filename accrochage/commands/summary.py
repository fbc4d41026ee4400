"""`accrochage summary`: records per certifier and status, risks, deadlines, batches."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import click

from accrochage.app import refdata_warnings
from accrochage.commands.core import core_from
from accrochage.commands.options import DAY
from accrochage.commands.output import table
from accrochage.models.deadline import paris_today
from accrochage.models.problems import escaped
from accrochage.models.vocabulary import RecordStatus, values
from accrochage.streams.summary import as_configured


@click.command()
@click.option(
    "--as-of",
    type=DAY,
    help="Count at risk and overdue as of this day (default: today in Europe/Paris).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def summary(ctx: click.Context, as_of: Any, fmt: str) -> None:
    """Records per certifier and status, at risk, overdue, next deadlines, batches."""
    with core_from(ctx, reading=True) as core:
        day: date = as_of or paris_today(core.clock)
        with core.store.reading() as reader:
            result = reader.summary(day, core.settings.batching.margin_days)
        result = as_configured(result, core.registry.certifiers)
        result["refdata_warnings"] = refdata_warnings(core, day)
    if fmt == "json":
        click.echo(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        click.echo(summary_text(result))


def _unknown(records: int) -> str:
    if not records:
        return ""
    return (
        f", or unknown: {records} whose delivery date cannot be read, listed by "
        "accrochage outstanding --deadline-unknown"
    )


def summary_text(result: dict[str, Any]) -> str:
    margin = result["deadline_margin_days"]
    lines = [
        f"as of {result['as_of']}: {result['records']} records, {result['outstanding']} "
        f"outstanding, {result['at_risk']} at risk (deadline within {margin} days"
        f"{_unknown(result.get('deadline_unknown', 0))}), "
        f"{result['overdue']} overdue"
        + (" (accrochage outstanding --overdue)" if result["overdue"] else ""),
        "",
    ]
    statuses = [s for s in values(RecordStatus) if s in result["by_status"]]
    at_risk, overdue = result["at_risk_by_certifier"], result["overdue_by_certifier"]
    rows = [
        {
            "certifier": key,
            **counts,
            "total": sum(counts.values()),
            "at risk": at_risk.get(key, 0),
            "overdue": overdue.get(key, 0),
        }
        for key, counts in sorted(result["by_certifier"].items())
    ]
    columns = ["certifier", *statuses, "total", "at risk", "overdue"]
    if rows:
        lines.append(table(rows, columns, lambda row, column: str(row.get(column, 0))))
    shown = result["next_deadlines"]
    if shown or result["overdue"]:
        lines += ["", "next deadlines (all: accrochage outstanding):"]
    if result["overdue"]:
        # The list holds deadlines to come: the overdue records, more urgent, are named first.
        lines.append(
            f"  {result['overdue']} overdue already, the most urgent: accrochage outstanding "
            "--overdue"
        )
    if shown:
        lines += [
            f"  {d['deadline']}  {d['days_left']:>4} days  {d['urgency']:<8} "
            f"{d['certifier']} {d['record_id']}"
            for d in shown
        ]
    batches = ", ".join(f"{state} {count}" for state, count in result["batches"].items())
    lines += ["", f"batches: {batches or 'none'} (accrochage batches)"]
    requests = result.get("correction_requests")
    if requests and requests["open"]:
        lines.append(
            f"correction requests: {requests['open']} open, {requests['at_risk']} at risk, "
            f"{requests['overdue']} overdue (accrochage correction-request list --open)"
        )
    lines += left_out_lines(result.get("left_out", []))
    lines += held_elsewhere_lines(result.get("held_elsewhere", []))
    lines += [f"warning: {warning}" for warning in result.get("refdata_warnings", [])]
    if result["unusable_events"]:
        lines.append(
            f"unusable events: {result['unusable_events']} to deal with (no usable record, or "
            "applied to none: accrochage unusable; once dealt with, dismiss-unusable)"
        )
    return "\n".join(lines)


def left_out_lines(batches: list[dict[str, Any]]) -> list[str]:
    """The records processed reports did not mention, by file, and how to send them again."""
    if not batches:
        return []
    count = sum(b["records"] for b in batches)
    lines = [
        f"left out by CDC reports: {count} record(s) their file's processed report did not "
        "list (they never reached the CDC, or its report missed them): `accrochage retry "
        "--batch FILE` sends them again"
    ]
    lines += [f"  {b['file_name']}: {b['records']}" for b in batches[:10]]
    if len(batches) > 10:
        lines.append(f"  ... and {len(batches) - 10} more files (accrochage summary --format json)")
    return lines


def held_elsewhere_lines(records: list[dict[str, Any]]) -> list[str]:
    """The records only the CDC's support can correct or withdraw (held under another
    idTechnique), and what to do."""
    if not records:
        return []
    lines = [
        f"for the CDC's support: {len(records)} accepted record(s) the CDC holds under another "
        "idTechnique wait for a correction or withdrawal no SUPPRESSION can carry: ask its "
        "support (accrochage show ID says what), then accrochage support-applied ID --note REF"
    ]
    lines += [
        f"  {r['record_id']} (held as {r['cdc_held_as']}): {r['waits_for']}" for r in records[:10]
    ]
    if len(records) > 10:
        lines.append(f"  ... and {len(records) - 10} more (accrochage summary --format json)")
    return [escaped(line) for line in lines]


def register(group: click.Group) -> None:
    group.add_command(summary)
