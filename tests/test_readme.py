"""The README's command reference matches the CLI: every command is documented there."""

from __future__ import annotations

import re
from pathlib import Path

from accrochage.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def documented_commands() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Commands") :]
    section = section[: section.index("\n## ", 3)]
    return set(re.findall(r"^\| `([a-z][a-z-]*)", section, re.MULTILINE))


def test_every_command_is_in_the_readme_command_reference() -> None:
    commands = set(main.commands)
    assert commands, "no command registered"
    missing = sorted(commands - documented_commands())
    assert not missing, f"commands missing from the README's Commands table: {missing}"


def test_the_readme_documents_no_command_that_does_not_exist() -> None:
    unknown = sorted(documented_commands() - set(main.commands))
    assert not unknown, f"the README documents commands the CLI does not have: {unknown}"


def test_the_correction_request_listing_names_every_status() -> None:
    """An operator's script reading `correction-request list --format json` needs every
    status a request can take: one missing (`cancelled`) breaks it silently."""
    from accrochage.models.vocabulary import RequestStatus

    text = README.read_text(encoding="utf-8")
    (row,) = re.findall(r"^\| `correction-request list .*$", text, re.MULTILINE)
    (named,) = re.findall(r"`status` \(([^)]*)\)", row)
    assert set(re.findall(r"`([a-z]+)`", named)) == {s.value for s in RequestStatus}
