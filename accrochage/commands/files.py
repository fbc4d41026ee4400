"""Commands that work on files alone, without the state: check-xml, schema."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from accrochage.errors import AccrochageError
from accrochage.models.jsonschema import event_json_schema_text
from accrochage.models.vocabulary import SchemaVersion, values
from accrochage.sinks.gate import inspect_file
from accrochage.sinks.schemas import xsd_for_file


@click.command("check-xml")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--xsd",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="XSD to check against (default: the bundled schema of each file's version).",
)
@click.option(
    "--schema-version",
    type=click.Choice(values(SchemaVersion)),
    help="Check every file against this version (default: read from each file: "
    "cpf:action present means 1.1.5).",
)
def check_xml(files: tuple[Path, ...], xsd: Path | None, schema_version: str | None) -> None:
    """Validate XML files against the CDC schema, streaming (any size); every error of each.

    Exit 1 when any file fails; the others are still checked.
    """
    version = SchemaVersion(schema_version) if schema_version else None
    failed = 0
    for path in files:
        result = inspect_file(path, xsd_for_file(path, version, xsd))
        if result.ok:
            click.echo(f"{path}: valid ({result.passages} passages, {result.schema.name})")
        else:
            failed += 1
            click.echo(f"error: {result.message(shown=len(result.faults))}", err=True)
    if failed:
        click.echo(f"{failed} of {len(files)} file(s) failed", err=True)
        sys.exit(1)


@click.command("schema")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file instead of standard output.",
)
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the events exam platforms send."""
    _emit(event_json_schema_text(), output)


@click.command("openapi")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file (docs/openapi.json) instead of standard output.",
)
def openapi(output: Path | None) -> None:
    """Print the OpenAPI 3.1 description of the HTTP API (what GET /openapi.json serves)."""
    from accrochage.api.openapi import openapi_text

    _emit(openapi_text(), output)


def _emit(text: str, output: Path | None) -> None:
    """`text` on standard output, or written to `output`; a path that cannot be written is
    one line saying why (exit 1), never a traceback."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AccrochageError(
            f"cannot write {output} ({exc.strerror or exc}); check the folder exists and is "
            "writable"
        ) from None
    click.echo(f"wrote {output}")


def register(group: click.Group) -> None:
    group.add_command(check_xml)
    group.add_command(schema)
    group.add_command(openapi)
