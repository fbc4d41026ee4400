"""Commands that work on files alone, without the state: check-xml, schema."""

from __future__ import annotations

from pathlib import Path

import click

from accrochage.models.jsonschema import event_json_schema_text
from accrochage.models.vocabulary import SchemaVersion, values
from accrochage.sinks.gate import check_file, schema_path
from accrochage.sinks.profiles import profile_for


@click.command("check-xml")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--xsd",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="XSD to check against (default: the bundled schema of --schema-version).",
)
@click.option(
    "--schema-version",
    type=click.Choice(values(SchemaVersion)),
    default=SchemaVersion.V1_1_2.value,
    show_default=True,
)
def check_xml(files: tuple[Path, ...], xsd: Path | None, schema_version: str) -> None:
    """Validate XML files against the CDC schema, streaming (any size)."""
    schema = schema_path(profile_for(schema_version), xsd)
    for path in files:
        result = check_file(path, schema)
        click.echo(f"{path}: valid ({result.passages} passages, {schema.name})")


@click.command("schema")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file instead of standard output.",
)
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the events exam platforms send."""
    text = event_json_schema_text()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


def register(group: click.Group) -> None:
    group.add_command(check_xml)
    group.add_command(schema)
