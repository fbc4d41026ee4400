"""`accrochage check`: validate events as `ingest` would, without storing anything."""

from __future__ import annotations

import json
import sys

import click

from accrochage.app import open_store
from accrochage.commands.ingest import CHUNK, chunks, encoding_option, open_input, say_unread
from accrochage.errors import InputError
from accrochage.models.deadline import Clock, SystemClock
from accrochage.models.problems import escaped
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.refdata.memory import ReferenceHolder
from accrochage.settings.registry import registry_from
from accrochage.state.base import Store
from accrochage.streams.check import STATE_RULES, CheckResult, check
from accrochage.streams.files import open_events


@click.command("check")
@click.argument("files", nargs=-1, required=True)
@encoding_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def check_events(ctx: click.Context, files: tuple[str, ...], encoding: str, fmt: str) -> None:
    """Validate JSONL or CSV events (`-` for stdin) without storing them; exit 1 on any error.

    For exam platforms and operators preparing a file: the answers are those `ingest` would
    give. The rules that need the state (a record id used by another certifier, a revocation
    names a stored record) run when the state at paths.state exists, and are named as skipped
    otherwise.
    """
    settings = ctx.obj.settings
    registry, clock = registry_from(settings), SystemClock()
    store: Store | None = (
        open_store(settings, read_only=True) if settings.paths.state.exists() else None
    )
    reference = ReferenceHolder(store.refdata()).current() if store is not None else None
    results: list[tuple[str | None, CheckResult]] = []
    unread: list[InputError] = []
    try:
        for name in files:
            try:
                _check_file(name, encoding, registry, clock, store, reference, results)
            except InputError as problem:  # this file, not the next
                unread.append(problem)
    except BaseException:  # a storage fault, Ctrl-C: the files not read are said too
        say_unread(unread)
        raise
    finally:
        if store is not None:
            store.close()
    _print(results, fmt, skipped=store is None)
    say_unread(unread)
    if unread or any(not answer.valid for _, answer in results):
        sys.exit(1)


def _check_file(
    name: str,
    encoding: str,
    registry: Registry,
    clock: Clock,
    store: Store | None,
    reference: Reference | None,
    into: list[tuple[str | None, CheckResult]],
) -> None:
    """The answers of one file's events, appended as they come: those before a part of the
    file that cannot be read are kept (as `ingest` stores them)."""
    stream = open_input(name)
    try:
        events = open_events(stream, escaped(name), encoding)
        for chunk in chunks(events.events, CHUNK):
            answers = check(chunk, registry, clock, store, reference)
            into += [(i.source, a) for i, a in zip(chunk, answers, strict=True)]
    finally:
        if name != "-":
            stream.close()


def _print(results: list[tuple[str | None, CheckResult]], fmt: str, *, skipped: bool) -> None:
    if fmt == "json":
        click.echo(json.dumps([a.as_dict() | {"source": s} for s, a in results], indent=1))
        return
    bad = [(s, a) for s, a in results if not a.valid]
    for source, answer in results:
        # Warnings too: counted and never shown, "1 with warnings" left the platform to
        # guess which event and what (a birth commune code the CDC's identity check rejects).
        for problem in answer.errors:
            click.echo(f"{source} {answer.record_id or '-'} {problem.field}: {problem.message}")
        for problem in answer.warnings:
            click.echo(
                f"{source} {answer.record_id or '-'} warning: {problem.field}: {problem.message}"
            )
    warned = sum(bool(a.warnings) for _, a in results if a.valid)  # "N valid (W with warnings)"
    click.echo(
        f"{len(results)} events checked: {len(results) - len(bad)} valid "
        f"({warned} with warnings), {len(bad)} with errors; nothing stored"
    )
    if skipped:
        click.echo(f"skipped (no state at paths.state): {', '.join(STATE_RULES)}")


def register(group: click.Group) -> None:
    group.add_command(check_events)
