"""Reference data commands: `refdata load`, `refdata status`, `revalidate`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from accrochage.commands.core import core_from
from accrochage.commands.options import said_if_unknown
from accrochage.errors import ConfigError
from accrochage.models.deadline import PARIS, paris_today
from accrochage.refdata.load import load_refdata, status


@click.group("refdata")
def refdata() -> None:
    """France compétences' RNCP/RS export and INSEE's COG (CONTRACT §11)."""


@refdata.command("load")
@click.option(
    "--rncp", type=click.Path(path_type=Path), help="Load this export only (not refdata.rncp)."
)
@click.option(
    "--cog", type=click.Path(path_type=Path), help="Load this COG folder only (not refdata.cog)."
)
@click.option(
    "--force",
    is_flag=True,
    help="Load even files that did not change, or that list less than half of what is loaded.",
)
@click.pass_context
def load(ctx: click.Context, rncp: Path | None, cog: Path | None, force: bool) -> None:
    """Load the files of [refdata] into the state; running services pick them up."""
    settings = ctx.obj.settings.refdata
    if rncp is None and cog is None:  # either given: that one only
        rncp, cog = settings.rncp, settings.cog
    if rncp is None and cog is None:
        raise ConfigError(
            "no reference data configured: set refdata.rncp (France compétences' export) "
            "and/or refdata.cog (INSEE's COG folder), or pass --rncp / --cog"
        )
    for name, path in (("rncp", rncp), ("cog", cog)):
        if path is not None and not path.exists():
            raise ConfigError(f"{path} does not exist: check refdata.{name} (or --{name})")
    with core_from(ctx) as core:
        storage = core.store.refdata()
        report = load_refdata(storage, rncp, cog, force=force)
        today = paris_today(core.clock)
        shown = status(storage, today, settings.max_age)
    for item in report.loaded:
        source = item.source
        files = ", ".join(source.files) if source else ""
        counts = ", ".join(f"{v} {k}" for k, v in source.counts.items()) if source else ""
        verb = "loaded" if item.changed else "unchanged"
        click.echo(f"{item.kind}: {verb} from {item.path} ({files}): {counts}")
    click.echo(f"reference data version {report.version}")
    for warning in shown["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@refdata.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def show_status(ctx: click.Context, fmt: str) -> None:
    """What is loaded, from which files and dates, how old, and which rules apply."""
    with core_from(ctx, reading=True) as core:
        shown = status(
            core.store.refdata(), paris_today(core.clock), ctx.obj.settings.refdata.max_age
        )
    if fmt == "json":
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
        return
    if not shown["sources"]:
        click.echo(
            "no reference data loaded: its rules are not applied (`accrochage refdata load`)"
        )
    for source in shown["sources"]:
        when = source["date"] or (f"COG {source['vintage']}" if source["vintage"] else "unknown")
        age = f", {source['age_days']} days old" if source["age_days"] is not None else ""
        click.echo(f"{source['kind']}: of {when}{age}, loaded {_paris(source['loaded_at'])}")
        click.echo(f"  files: {', '.join(source['files'])}")
        click.echo("  " + ", ".join(f"{v} {k}" for k, v in source["counts"].items()))
    click.echo(f"version {shown['version']}; rules:")
    for rule in shown["rules"]:
        mark = "applied" if rule["applied"] else f"skipped (needs {rule['needs']})"
        click.echo(f"  {rule['rule']}: {mark}")
    for warning in shown["warnings"]:
        click.echo(f"warning: {warning}")


@click.command()
@click.option("--certifier", callback=said_if_unknown, help="Only this certifier's records.")
@click.pass_context
def revalidate(ctx: click.Context, certifier: str | None) -> None:
    """Check pending and invalid records again against the current reference data."""
    with core_from(ctx, existing=True) as core:
        revalidator = core.revalidator()
        reference = revalidator.reference
        version = core.reference.version if core.reference is not None else 0
        report = revalidator.run(certifier, version)
    for item in report.changed:
        click.echo(f"{item.record_id} ({item.certifier}): {item.before} -> {item.after}")
        for line in item.added:
            click.echo(f"  + {line}")
        for line in item.removed:
            click.echo(f"  - {line}")
    if reference is None:
        click.echo("no reference data loaded: only the other rules were applied", err=True)
    click.echo(
        f"{report.checked} record(s) checked, {len(report.changed)} changed"
        + (f", {report.skipped} too large to re-read" if report.skipped else "")
    )


def register(group: click.Group) -> None:
    group.add_command(refdata)
    group.add_command(revalidate)


def _paris(stamp: str) -> str:
    """A stored instant (UTC) as the other commands show one: Paris time."""
    try:
        return datetime.fromisoformat(stamp).astimezone(PARIS).isoformat(timespec="seconds")
    except (TypeError, ValueError):
        return str(stamp)
