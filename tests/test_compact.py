"""`accrochage compact`: the space deleted data left in the state given back to the disk.

A flood of unusable events, dismissed and forgotten, left its pages inside the state: SQLite
keeps them for its own later writes, so the disk stayed as full as the flood made it, and
events stayed refused below `state.keep_free_bytes`. `compact` writes the state again without
them, alone on it, and leaves it as it was whenever it stops.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from accrochage.errors import ServiceTaken
from accrochage.state.sqlite import compact as compact_module
from accrochage.state.sqlite.alone import HeldAlone
from accrochage.state.sqlite.service_lock import ServiceLock
from accrochage.streams.rejected import RAW_KEPT
from accrochage.streams.room import MIB
from tests.test_backup import count, on_a_full_disk
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_doctor import doctor, findings
from tests.test_forget_dismissed import HOLDER
from tests.test_keep_free import Disk
from tests.test_read_only_user import ROOT, service_holding
from tests.test_tracker import write_config
from tests.test_write_lock import held

FLOOD = 1500
JUNK = 5000
"""Characters of each flooding event; the unusable log keeps `RAW_KEPT` of each (6 MB in
all, on overflow pages)."""


def flooded(folder: Path) -> Path:
    """A state holding two records and a flood of unusable events, each naming a person,
    dismissed and forgotten."""
    config = write_config(folder)
    junk = [
        '{"holder": {"birth_name": "' + HOLDER + '"}, "note": "' + f"{n}" * JUNK
        for n in range(FLOOD)
    ]
    run(config, "ingest", str(write_jsonl(folder / "in.jsonl", [recent("C-1"), *junk])))
    run(config, "ingest", str(write_jsonl(folder / "more.jsonl", [recent("C-2")])))
    said = run(config, "dismiss-unusable", "--all-open", "--note", "a platform's loop").stdout
    assert said.startswith(f"{FLOOD} unusable event(s) dismissed"), said
    run(config, "forget-dismissed", "--dismissed-before", "2200-01-01")
    return config


def state_of(config: Path) -> Path:
    return config.parent / "var" / "state.db"


def on_disk(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def contents(config: Path) -> Any:
    """What the operator reads of the state: the records and the unusable log."""
    return (
        json.loads(run(config, "records", "--format", "json").stdout),
        json.loads(run(config, "unusable", "--all", "--limit", "5000", "--format", "json").stdout),
    )


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_compact_gives_the_flood_s_space_back_and_keeps_everything_else(tmp_path: Path) -> None:
    config = flooded(tmp_path)
    db = state_of(config)
    before, kept = on_disk(db), contents(config)
    assert before > FLOOD * RAW_KEPT, "the forgotten flood still takes its room on the disk"

    done = json.loads(run(config, "compact", "--format", "json").stdout)

    assert done["bytes_before"] == before
    assert done["bytes_after"] == on_disk(db) < before - FLOOD * RAW_KEPT * 0.9
    assert done["freed"] == before - done["bytes_after"]
    assert contents(config) == kept
    assert integrity(db) == "ok"
    assert HOLDER.encode() not in db.read_bytes()
    said = run(config, "compact").stdout
    assert said.startswith(f"compacted {db}: {done['bytes_after']:,} -> "), said
    run(config, "ingest", str(write_jsonl(tmp_path / "after.jsonl", [recent("C-3")])))
    assert count(db, "records") == 3, "the state takes events again"


def test_compact_is_refused_while_a_service_or_a_writer_holds_the_state(tmp_path: Path) -> None:
    config = flooded(tmp_path)
    db = state_of(config)
    before = on_disk(db)
    with service_holding(db) as pid:
        refused = run(config, "compact", code=1)
    assert f"a service (process {pid}) serves the state" in refused.stderr
    assert "compact again (the state is unchanged)" in refused.stderr
    with held(db):
        busy = run(config, "compact", code=1)
    assert "another writer has held the state" in busy.stderr, busy.stderr
    assert "compact again once it is done (the state is unchanged)" in busy.stderr
    with held(db, cut=True):  # a flush between two parts of a batch it cuts
        cutting = run(config, "compact", code=1)
    assert "another writer has held the state" in cutting.stderr, cutting.stderr
    assert on_disk(db) == before


def test_compact_says_when_a_reader_keeps_the_disk_from_getting_the_room_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process reading the state (a backup under way) holds its old pages: the rewrite
    cannot reach the state's file, and compact said it had compacted, 0 bytes given back."""
    config = flooded(tmp_path)
    db = state_of(config)
    kept = contents(config)
    monkeypatch.setattr("accrochage.state.sqlite.connection.BUSY_TIMEOUT_MS", 100)
    reader = sqlite3.connect(db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM records").fetchone()
        refused = run(config, "compact", code=1)
    finally:
        reader.close()
    assert "but another process still reads it" in refused.stderr, refused.stderr
    assert "once it ends, run `accrochage compact` again" in refused.stderr
    assert contents(config) == kept
    assert integrity(db) == "ok"
    run(config, "compact")
    assert on_disk(db) < FLOOD * RAW_KEPT


def test_a_service_started_during_a_compact_names_the_compact_not_the_last_service(
    tmp_path: Path,
) -> None:
    """`<state>.lock` keeps the pid of the last service that held it: a `run` started while
    a compact (or a restore) held the state refused naming that long-gone process, which
    the operator then looked for (or found reused by another program)."""
    db = state_of(flooded(tmp_path))
    lock = db.with_name(db.name + ".lock")
    lock.write_text("4194000\n", encoding="ascii")  # a service stopped long ago
    with HeldAlone(db, "compact"), pytest.raises(ServiceTaken) as taken:
        ServiceLock(db).acquire_or_refuse()
    assert f"(process {os.getpid()}: " in str(taken.value), str(taken.value)
    assert "restore` or `compact` under way" in str(taken.value)


def test_compact_says_how_much_room_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk's free space cannot be made small here: its answer is."""
    config = flooded(tmp_path)
    db = state_of(config)
    before = on_disk(db)
    real = compact_module.shutil.disk_usage

    def nearly_full(path: Any) -> Any:
        return real(path)._replace(free=1000)

    monkeypatch.setattr(compact_module.shutil, "disk_usage", nearly_full)
    refused = run(config, "compact", code=1)
    assert "and its disk has 1,000 bytes free: free " in refused.stderr, refused.stderr
    assert "then compact again (the state is unchanged)" in refused.stderr
    assert on_disk(db) == before


def test_compact_counts_the_temporary_copy_sqlite_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`VACUUM` copies the data into SQLite's temporary folder first, then into the WAL: on
    one disk (`/var/tmp` beside the state), room for the data once passed the check, and the
    disk filled minutes later, the message naming the state's volume only."""
    config = flooded(tmp_path)
    db = state_of(config)
    before = on_disk(db)
    conn = sqlite3.connect(db)
    try:
        live = compact_module.live_bytes(conn)
    finally:
        conn.close()
    temp = tmp_path / "sqlite-tmp"
    temp.mkdir()
    monkeypatch.setenv("SQLITE_TMPDIR", str(temp))
    real = compact_module.shutil.disk_usage
    room = {"free": live * 3 // 2}

    def usage(path: Any) -> Any:
        return real(path)._replace(free=room["free"])

    monkeypatch.setattr(compact_module.shutil, "disk_usage", usage)
    refused = run(config, "compact", code=1)
    assert f"again beside it and a temporary copy of them in {temp}" in refused.stderr
    assert f"free {2 * live - room['free']:,} bytes or more" in refused.stderr, refused.stderr

    def apart(path: Path) -> int:  # the temporary folder on a disk of its own
        return 1 if path == temp else 2

    monkeypatch.setattr(compact_module, "_device", apart)
    monkeypatch.setattr(
        compact_module.shutil,
        "disk_usage",
        lambda path: real(path)._replace(free=1000 if Path(path) == temp else 10 * live),
    )
    refused = run(config, "compact", code=1)
    assert f"data in {temp}, SQLite's temporary folder, whose disk has 1,000" in refused.stderr
    assert "SQLITE_TMPDIR" in refused.stderr
    assert on_disk(db) == before


def test_a_compact_the_disk_stops_leaves_the_state_as_it_was(tmp_path: Path) -> None:
    """A limit on a file's size makes every write past it fail, as a full disk does."""
    config = flooded(tmp_path)
    db = state_of(config)
    kept = contents(config)
    limit = on_disk(db) // 20
    done = on_a_full_disk(limit, config, "compact")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "cannot be written" in done.stderr and "Traceback" not in done.stderr
    assert contents(config) == kept
    assert integrity(db) == "ok"


COMPACT = """
import sys
from accrochage.cli import main
print("started", flush=True)
main(sys.argv[1:])
"""


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.3])
def test_a_compact_killed_at_any_moment_leaves_the_state_whole(
    tmp_path: Path, delay: float
) -> None:
    """Killed before, during or after the rewrite (where depends on the machine, and every
    outcome must hold): the state opens, whole, with everything it held."""
    config = flooded(tmp_path)
    db = state_of(config)
    kept = contents(config)
    child = subprocess.Popen(
        [sys.executable, "-c", COMPACT, "--config", str(config), "compact"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None and child.stdout.readline() == "started\n"
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    assert contents(config) == kept
    assert integrity(db) == "ok"
    run(config, "compact")
    assert contents(config) == kept
    assert on_disk(db) < FLOOD * RAW_KEPT


def test_doctor_points_a_low_disk_to_the_free_pages_compact_gives_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = flooded(tmp_path)
    Disk(monkeypatch, 10 * MIB)
    [room] = findings(json.loads(doctor(config, "--format", "json").stdout), "room")
    assert room["level"] == "error"
    assert (
        "of free pages (deleted data): stop the service and run `accrochage compact`"
        in (room["message"])
    )
    [state] = findings(json.loads(doctor(config, "--format", "json").stdout), "state")
    assert "MB of it free pages that `compact` gives back" in state["message"]
    assert " (0.0 MB of it free pages" not in state["message"]

    run(config, "compact")
    shown = json.loads(doctor(config, "--format", "json").stdout)
    [room] = findings(shown, "room")
    assert room["level"] == "error" and "compact" not in room["message"]
    [state] = findings(shown, "state")
    assert " (0.0 MB of it free pages" in state["message"]


def test_a_full_disk_keeps_neither_compact_nor_a_service_from_the_state_s_locks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a full disk the pid written into `<state>.lock` failed (ENOSPC): a traceback from
    `compact`, the command run to give space back, and from a service restarting."""
    db = tmp_path / "state.db"

    def full_disk(_fd: int, _data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full_disk)
    with HeldAlone(db, "compact"):
        pass
    lock = ServiceLock(db)
    try:
        assert lock.try_acquire()
    finally:
        lock.release()
    monkeypatch.undo()
    with HeldAlone(db, "compact"):  # nothing was left held
        pass
