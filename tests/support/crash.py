"""Helpers of the crash tests: a config under a temporary folder, CLI runs killed with SIGKILL,
and readers of what a crash leaves behind (state database, outbox files).

Every wait is bounded; every process started here is waited for (and killed if it outlives
its bound), so a hung command fails the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from accrochage import failpoints
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.deadline import SystemClock, paris_today
from accrochage.settings import load_settings
from accrochage.sinks.profiles import NAMESPACE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "accrochage.example.toml"
ID_TECHNIQUE = f"{{{NAMESPACE}}}idTechnique"


def write_config(folder: Path, *, max_records: int, version: str = "1.1.2") -> Path:
    """The example configuration, with its state and outbox under `folder`, in schema 1.1.2
    unless told: the crash tests check every file against the CDC's official XSD, which is
    1.1.2's (a SUPPRESSION needs 1.1.5)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    replacements = {
        r'(?m)^state = ".*?"': f"state = {json.dumps(str(folder / 'state.db'))}",
        r'(?m)^outbox = ".*?"': f"outbox = {json.dumps(str(folder / 'outbox'))}",
        r"(?m)^max_records = \d+": f"max_records = {max_records}",
        r'(?m)^version = ".*?"': f"version = {json.dumps(version)}",
    }
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text)
        assert count == 1, f"{pattern} not found once in {EXAMPLE_CONFIG}"
    path = folder / "accrochage.toml"
    path.write_text(text, encoding="utf-8")
    return path


def cli_command(config: Path, *args: str) -> list[str]:
    """The installed `accrochage` script (its process is the Python that runs the command)."""
    script = Path(sys.executable).parent / "accrochage"
    head = [str(script)] if script.is_file() else [sys.executable, "-c", _MAIN]
    return [*head, "--config", str(config), *args]


_MAIN = "import sys; from accrochage.cli import main; sys.exit(main())"


def killed_at(
    failpoint: str, config: Path, *args: str, cwd: Path, constants: dict[str, int]
) -> None:
    """The CLI run with module constants set (`{"accrochage.streams.cut_group.X": 30}`), until
    SIGKILL at `failpoint` (`accrochage/failpoints.py`); it must die there."""
    sets = "; ".join(
        f"import {path.rsplit('.', 1)[0]}; {path} = {value}" for path, value in constants.items()
    )
    code = f"import sys; {sets}; from accrochage.cli import main; sys.exit(main())"
    killed = subprocess.run(
        [sys.executable, "-c", code, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**child_env(), failpoints.VARIABLE: failpoint},
        cwd=cwd,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]


def child_env() -> dict[str, str]:
    """The environment without ACCROCHAGE_* overrides, so only the test's config counts."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ACCROCHAGE_")}


def finished(
    command: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`command` run to its end (5 minutes at most), its output kept as text; it must exit 0."""
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env() if env is None else env,
        cwd=cwd,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def write_generated_events(config: Path, path: Path, count: int, *, seed: int) -> Path:
    """`count` generated events of the config's certifiers, one JSON line each, dated today."""
    settings = load_settings(config)
    certifiers = [GeneratedCertifier(c.key, c.certifications) for c in settings.certifiers]
    today = paris_today(SystemClock())
    with path.open("w", encoding="utf-8") as out:
        for event in generate_events(count, certifiers, today=today, seed=seed):
            out.write(json.dumps(event, ensure_ascii=False) + "\n")
    return path


@dataclass(frozen=True, slots=True)
class Run:
    command: str
    delay: float | None
    """When SIGKILL was due, in seconds after start (None: run to completion)."""
    killed: bool
    returncode: int
    elapsed: float
    log: Path
    survivors: tuple[str, ...] = ()
    """Processes the command started that outlived it (killed by `run` once found)."""

    def describe(self, *, log: bool = True) -> str:
        what = f"killed after {self.elapsed:.2f}s" if self.killed else f"exit {self.returncode}"
        due = f" (kill due at {self.delay:.2f}s)" if self.delay is not None else ""
        command = self.command.split()[0]
        return f"{command}: {what}{due}" + (f", log {self.log}" if log else "")


def run(
    config: Path,
    args: Iterable[str],
    log: Path,
    *,
    kill_after: float | None,
    timeout: float,
    trigger: Callable[[], bool] | None = None,
) -> Run:
    """Run one CLI command; SIGKILL it `kill_after` seconds on, if it is still running.

    Without `trigger` the delay counts from the start; with one, from the moment `trigger()`
    first returns true (polled every POLL_S), e.g. when the state holds so many records.
    A command that outlives `timeout` is killed too, and the run reports it as not killed by
    schedule (returncode -9 with `killed` False), which the caller treats as a hang. A command
    that ends before its kill is due is simply waited for (`killed` False).
    """
    argv = list(args)
    with log.open("wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(
            cli_command(config, *argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            # its own process group: whatever it starts (render workers) can be found
            start_new_session=True,
        )
        due: float | None = None
        if kill_after is not None and trigger is None:
            due = start + kill_after
        while proc.poll() is None:
            now = time.monotonic()
            if due is None and kill_after is not None and trigger is not None and trigger():
                now = time.monotonic()
                due = now + kill_after
            if now - start > timeout or (due is not None and now >= due):
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                break
            wait = POLL_S if due is None else max(min(due - now, POLL_S), 0.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
        elapsed = time.monotonic() - start
    # It may also have ended on its own between the decision and the signal.
    killed = due is not None and elapsed < timeout and proc.returncode == -signal.SIGKILL
    survivors = outlivers(proc.pid, grace=SURVIVOR_GRACE_S)
    delay = None if due is None else due - start
    return Run(" ".join(argv), delay, killed, proc.returncode, elapsed, log, survivors)


POLL_S = 0.02
SURVIVOR_GRACE_S = 10.0


def _group(pgid: int) -> dict[int, str]:
    """Live (not zombie) processes of a process group, with their command lines (Linux)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            found[int(entry.name)] = command.strip()
    return found


def outlivers(pgid: int, *, grace: float) -> tuple[str, ...]:
    """Processes of the group still alive `grace` seconds on; each is then SIGKILLed by pid."""
    if not Path("/proc/self/stat").exists():
        return ()
    ends = time.monotonic() + grace
    while (left := _group(pgid)) and time.monotonic() < ends:
        time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return tuple(f"{pid} {command[:120]}" for pid, command in left.items())


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Read the state as the next process would find it, without checkpointing it away."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def query(path: Path, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    conn = connect_readonly(path)
    try:
        return list(conn.execute(sql, tuple(params)))
    finally:
        conn.close()


def released_files(outbox: Path) -> list[Path]:
    """What a reader of the outbox sees as released: `*.xml`, at any depth."""
    if not outbox.exists():
        return []
    return sorted(p for p in outbox.rglob("*.xml") if p.is_file())


def leftover_partials(outbox: Path) -> list[Path]:
    if not outbox.exists():
        return []
    return sorted(p for p in outbox.rglob("*") if p.name.endswith(".partial"))


def id_techniques(path: Path) -> list[str]:
    """Every idTechnique of one released file, in order, with flat memory."""
    ids = []
    for _event, element in etree.iterparse(
        str(path), events=("end",), tag=ID_TECHNIQUE, resolve_entities=False, no_network=True
    ):
        ids.append(element.text or "")
        element.clear(keep_tail=True)
    return ids


BACKGROUND = ("bash", "-c", 'trap "" INT; exec "$@"', "bash")
"""A launcher that starts a command as a script's shell (no job control) starts one with `&`:
SIGINT ignored."""


def disposition(pid: int, signum: signal.Signals) -> str:
    """What process `pid` does with `signum`, as the kernel has it."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    bit = 1 << (signum - 1)
    if int(status["SigIgn"], 16) & bit:
        return "ignored"
    return "caught" if int(status["SigCgt"], 16) & bit else "default"
