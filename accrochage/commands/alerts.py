"""`accrochage alerts`: the alerts firing now, as the services evaluate them."""

from __future__ import annotations

import json

import click

from accrochage.commands.core import core_from


@click.command("alerts")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_context
def alerts(ctx: click.Context, fmt: str) -> None:
    """Print the alerts firing now (CONTRACT §10): rules evaluated on the state."""
    from accrochage.runtimes.watching import firing_now
    from accrochage.streams.alerts import alert_object

    with core_from(ctx, reading=True) as core:
        firing = firing_now(core)
    if fmt == "json":
        click.echo(json.dumps([alert_object(s) for s in firing], ensure_ascii=False, indent=2))
        return
    if not firing:
        click.echo("no alert firing")
        return
    click.echo(f"{'alert':<36} {'certifier':<16} {'severity':<9} {'count':>6}  since")
    for s in firing:
        since = s.starts_at.isoformat(timespec="minutes")
        click.echo(f"{s.alertname:<36} {s.certifier:<16} {s.severity:<9} {s.value:>6}  {since}")


def register(group: click.Group) -> None:
    group.add_command(alerts)
