"""A user who may read the state's folder but not write in it (a monitoring account, a second
operator) runs every command that only reads; nothing in the folder changes.

Before, every command opened the write lock's file for writing and a writable connection:
`summary`, `outstanding`, even `doctor` ("the state cannot be opened") failed for such a
user. A read command also recorded file paths anew under its own `paths.outbox` (under a
running service), and migrated a state written by an older version under its service.

As root, the commands run as `nobody` through `setpriv`, with the capability to read and
search any file (the interpreter lives under /root) and none to write; as another user, the
folder and its files are made read-only for the test.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support.holding import holding
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_tracker import write_config

ROOT = Path(__file__).resolve().parent.parent
AS_NOBODY = [
    "setpriv",
    "--reuid=nobody",
    "--regid=nogroup",
    "--clear-groups",
    "--inh-caps=+dac_read_search",
    "--ambient-caps=+dac_read_search",
]
READ_COMMANDS = [
    ("summary",),
    ("summary", "--format", "json"),
    ("outstanding", "--format", "json"),
    ("records",),
    ("show", "RO-1"),
    ("batches",),
    ("unusable",),
    ("alerts",),
    ("refdata", "status"),
    ("correction-request", "list"),
]


@pytest.fixture()
def state() -> Iterator[Path]:
    """A configuration whose state holds records and a written file; no process has it open
    (no `-wal` or `-shm` file: the hardest case for a reader that may not write). In a folder
    of its own that any user may read (pytest's own is its owner's alone)."""
    top = Path(tempfile.mkdtemp(prefix="accrochage-readers-"))
    top.chmod(0o755)
    try:
        folder = top / "install"
        folder.mkdir()
        config = write_config(folder)
        events = write_jsonl(top / "e.jsonl", [recent("RO-1"), recent("RO-2")])
        run(config, "ingest", str(events))
        run(config, "flush", "--force")
        assert not (folder / "var" / "state.db-wal").exists()
        yield config
    finally:
        shutil.rmtree(top, ignore_errors=True)


def as_user(*argv: str) -> list[str]:
    """`argv` run as a user who may not write in the state's folder."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        require(shutil.which("setpriv") is not None, "setpriv (util-linux) runs commands as nobody")
        prefix = AS_NOBODY
    return [*prefix, *argv]


def reader_command(config: Path, *args: str) -> list[str]:
    return as_user(sys.executable, "-m", "accrochage", "--config", str(config), *args)


@contextmanager
def read_only(config: Path) -> Iterator[None]:
    """The state's folder as a reader who may not write sees it."""
    folder = config.parent
    if os.geteuid() == 0:
        yield
        return
    paths = [folder, *folder.rglob("*")]
    for path in paths:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        yield
    finally:
        for path in paths:
            path.chmod(path.stat().st_mode | 0o200)


def as_reader(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        reader_command(config, *args),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": "/nonexistent"},
    )


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def test_every_read_command_works_for_a_user_who_may_not_write(state: Path) -> None:
    folder = state.parent
    before = listing(folder)
    with read_only(state):
        for command in READ_COMMANDS:
            done = as_reader(state, *command)
            assert done.returncode == 0, (command, done.stderr)
            assert "Traceback" not in done.stderr and "error" not in done.stderr, done.stderr
        rows = json.loads(as_reader(state, "outstanding", "--format", "json").stdout)
        assert sorted(r["record_id"] for r in rows) == ["RO-1", "RO-2"]
        assert "RO-1" in as_reader(state, "show", "RO-1").stdout
        checked = as_reader(state, "check", str(folder / ".." / "e.jsonl"))
        assert checked.returncode == 0 and "2 valid" in checked.stdout, checked.stderr
        doctor = as_reader(state, "doctor", "--format", "json")
        findings = json.loads(doctor.stdout)["findings"]
        states = [f for f in findings if f["check"] == "state"]
        assert all(f["level"] != "error" for f in states), states
        assert any("quick_check" in f["message"] for f in states), states
        # A command that writes says in one line why it cannot, and changes nothing either.
        refused = as_reader(state, "flush")
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert "writable" in refused.stderr, refused.stderr
    assert listing(folder) == before, "a read command changed the state's folder"


@contextmanager
def connected_writer(state_db: Path) -> Iterator[None]:
    """A process (the service, say) with the state open: its `-wal` and `-shm` files exist."""
    conn = sqlite3.connect(state_db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS _probe (x)")
    conn.commit()
    try:
        yield
    finally:
        conn.execute("DROP TABLE _probe")
        conn.commit()
        conn.close()


def test_a_read_command_works_beside_a_running_writer(state: Path) -> None:
    with connected_writer(state.parent / "var" / "state.db"), read_only(state):
        assert (state.parent / "var" / "state.db-shm").exists()
        done = as_reader(state, "summary", "--format", "json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["records"] == 2


SLOW_READER = """
import sys
from datetime import date
from pathlib import Path

from accrochage.errors import AccrochageError
from accrochage.state.queries import OutstandingQuery
from accrochage.state.sqlite import SqliteStore

store = SqliteStore(Path(sys.argv[1]), read_only=True)
try:
    with store.reading() as reader:
        reader.summary(date(2026, 12, 1), 14)
        print("reading", flush=True)
        sys.stdin.readline()  # a writer writes the state meanwhile
        for _ in reader.iter_outstanding(OutstandingQuery(as_of=date(2026, 12, 1))):
            pass
except AccrochageError as exc:
    print(f"{type(exc).__name__}: {exc}", flush=True)
else:
    print("read", flush=True)
"""


def test_a_writer_changing_the_state_under_a_reader_who_may_not_write_is_no_damage(
    state: Path,
) -> None:
    """The reader reads the file as it is (no writer had it open, and it may not create the
    `-shm`): a writer that copied its WAL back meanwhile made it read a changing file, which it
    then called damaged ("restore the last backup"). It now says the state changed while it
    read, to run it again."""
    folder = state.parent
    db = folder / "var" / "state.db"
    script = as_user(sys.executable, "-c", SLOW_READER, str(db))
    with read_only(state):
        reader = subprocess.Popen(
            script,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert reader.stdout is not None and reader.stdin is not None
            assert reader.stdout.readline() == "reading\n", reader.stderr
            more = [recent(f"RW-{i}") for i in range(300)]
            run(state, "ingest", str(write_jsonl(folder / "more.jsonl", more)))
            reader.stdin.write("go\n")
            reader.stdin.flush()
            out, err = reader.communicate(timeout=60)
        finally:
            if reader.poll() is None:
                reader.kill()
    assert "changed while this command read it" in out, (out, err)
    assert "damaged" not in out and "Traceback" not in err, (out, err)


def _forget_last_migration(state_db: Path) -> str:
    """The state as an older version left it: m060 (re-applied safely) not applied yet."""
    name = "m060_withdrawn_without_correction"
    with sqlite3.connect(state_db) as conn:
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = ?", (name,))
    conn.close()
    return name


def _applied(state_db: Path, name: str) -> bool:
    with sqlite3.connect(state_db) as conn:
        found = conn.execute("SELECT 1 FROM _sqlite_migrations WHERE name = ?", (name,))
        result = found.fetchone() is not None
    conn.close()
    return result


def test_a_read_command_never_migrates_a_state_and_says_who_does(state: Path) -> None:
    db = state.parent / "var" / "state.db"
    name = _forget_last_migration(db)
    refused = run(state, "summary", code=1)
    assert "was written by an older accrochage" in refused.stderr
    assert "this command only reads" in refused.stderr
    assert "accrochage upgrade --backup" in refused.stderr
    doctor = json.loads(run(state, "doctor", "--format", "json", code=1).stdout)
    (finding,) = [f for f in doctor["findings"] if f["check"] == "state"]
    assert (finding["level"], finding["needs_operator"]) == ("warning", True)
    assert not _applied(db, name), "a read command migrated the state"
    run(state, "flush")
    assert _applied(db, name)
    assert json.loads(run(state, "summary", "--format", "json").stdout)["records"] == 2


SERVICE_HOLDER = (
    "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
    "fcntl.flock(fd, fcntl.LOCK_EX); os.ftruncate(fd, 0); "
    "os.write(fd, f'{os.getpid()}\\n'.encode()); print('held', flush=True); "
    "sys.stdin.read()"
)


@contextmanager
def service_holding(state_db: Path) -> Iterator[int]:
    """A process holding `<state>.lock` as a running service (`run`, `worker`) does, its
    pid written there; let go when the block ends."""
    with holding(SERVICE_HOLDER, str(state_db.with_name(state_db.name + ".lock"))) as holder:
        yield holder.pid


def test_a_command_never_migrates_a_state_another_version_s_service_serves(state: Path) -> None:
    """A newer command beside an older running service changed the tables under it."""
    db = state.parent / "var" / "state.db"
    name = _forget_last_migration(db)
    with service_holding(db) as pid:
        refused = run(state, "flush", code=1)
        assert f"a service (process {pid}) serves it" in refused.stderr, refused.stderr
        assert "stop that service, run `accrochage upgrade --backup" in refused.stderr
        assert not _applied(db, name)
    run(state, "flush")
    assert _applied(db, name)


def test_a_state_a_newer_version_migrated_is_refused_by_every_command(state: Path) -> None:
    db = state.parent / "var" / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('accrochage', 'm999_from_the_future', '2027-01-01')"
        )
    conn.close()
    for command in (("summary",), ("flush",)):
        refused = run(state, *command, code=1)
        assert "was migrated by a newer accrochage (m999_from_the_future)" in refused.stderr
