"""`accrochage doctor`: the installation checked at once (CONTRACT §9)."""

from __future__ import annotations

import json
import sys

import click

from accrochage.app import open_store
from accrochage.models.deadline import SystemClock
from accrochage.settings import config_path
from accrochage.streams.doctor import Finding, diagnose, needs_operator


def mark(finding: Finding) -> str:
    """Upper case when it needs the operator: `ERROR`, `WARNING`; else `warning`, `ok`."""
    text = finding.level.value
    return text.upper() if finding.needs_operator else text


@click.command("doctor")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
def doctor(ctx: click.Context, fmt: str) -> None:
    """Check the schema, its XSD, the state, the reference data, the alerts; exit 1 when
    something needs the operator (ERROR, or WARNING: a warning that asks for an action)."""
    settings = ctx.obj.settings
    findings = diagnose(
        settings,
        SystemClock(),
        lambda: open_store(settings, service=True, read_only=True),
        config_path(ctx.obj.config),
    )
    failing = needs_operator(findings)
    if fmt == "json":
        shown = {"needs_operator": failing, "findings": [f.as_dict() for f in findings]}
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
    else:
        for finding in findings:
            click.echo(f"{mark(finding):<8} {finding.check:<8} {finding.message}")
        count = sum(f.needs_operator for f in findings)
        click.echo(
            f"{count} finding(s) need the operator" if failing else "nothing needs the operator"
        )
    if failing:
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(doctor)
