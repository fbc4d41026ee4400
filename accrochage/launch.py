"""The `accrochage` console script: a command that will start helper processes starts their
fork server before it imports the project.

Helpers start from a fork server that imports the project once (`processes.py`): about 0.7 s
of CPU. Started at the first helper, that import began only once the command had made its
own (about 0.6 s), and the command waited for both, one after the other. Started here, first
thing, the two imports run at once on two cores: `ingest` of a file of 2,000 events takes
1.1 s instead of 1.8 (wall, medians of 8 alternating pairs; bench/HISTORY.md, session 47).

Only the commands that start helpers in their common case ask for it: `run` and `worker`
(their writer process), and `ingest` of files large enough for its decode processes, whose
fork server imports only what they run (`processes.DECODING`). What is read here is the
command line alone, before any setting is known: a case it cannot see (events on stdin,
`ingest.decode_processes = 0`) starts the fork server when the first helper is needed, as
before, or once for nothing (one idle process, its import's CPU).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence

ALWAYS = frozenset({"run", "worker"})
"""Commands that always start a helper (a writer process)."""

INGEST_BYTES = 200_000
"""Files from this size start `ingest`'s decode processes in the common case: they hold at
least `app.ONE_OFF_DECODE_THRESHOLD` (500) events of 400 bytes (a delivered event is about
800); a smaller file is decoded in the command's own process."""

VALUED = frozenset({"--config"})
"""The root group's options that take a value as the next word."""


def helpers_command(argv: Sequence[str]) -> str | None:
    """The command the command line (without the program's name) names when that command
    starts helper processes in its common case; None otherwise, and for an answer to
    `--help` or `--version`."""
    if "--help" in argv or "--version" in argv:
        return None
    command, rest = _command(argv)
    if command in ALWAYS:
        return command
    if command == "ingest" and _input_bytes(rest) >= INGEST_BYTES:
        return command
    return None


def _command(argv: Sequence[str]) -> tuple[str | None, Sequence[str]]:
    """The command's name and the words after it; None when there is none."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in VALUED:
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            return word, argv[index + 1 :]
    return None, ()


def _input_bytes(words: Sequence[str]) -> int:
    """The size of the regular files among `words` (an option's value naming no file, or a
    file that cannot be read, counts nothing: `ingest` reports it itself)."""
    total = 0
    for word in words:
        if word.startswith("-"):
            continue
        try:
            status = os.stat(word)
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(status.st_mode):
            total += status.st_size
    return total


def entry() -> None:
    command = helpers_command(sys.argv[1:])
    if command is not None:
        from accrochage.processes import DECODING, PRELOAD, helper_context

        helper_context(DECODING if command == "ingest" else PRELOAD)
    from accrochage.cli import entry as cli_entry

    cli_entry()
