"""`accrochage backup` and `accrochage upgrade`: a copy of the state taken while it is in use,
and the schema's upgrade after one.

`cp` of the WAL database under a running service copied a file without the commits still in
its `-wal`: a backup that lacked acknowledged events, or did not open. The README said to
"copy the state file" before an upgrade, which a migration at the first write then made
the only way back.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import build_core
from accrochage.errors import StoreError
from accrochage.settings import load_settings
from accrochage.state.sqlite import backup as backup_module
from accrochage.state.sqlite.backup import destination
from accrochage.state.sqlite.migrations import latest_migration
from accrochage.streams.incoming import Incoming
from tests.support.holding import holding
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_read_only_user import (
    ROOT,
    _applied,
    _forget_last_migration,
    as_reader,
    listing,
    read_only,
    service_holding,
    state,
)
from tests.test_tracker import processed_report, write_config
from tests.test_write_lock import held

__all__ = ["state"]


def count(db: Path, table: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def journal_mode(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


WRITER_HOLDING_ITS_WAL = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA wal_autocheckpoint = 0")
conn.execute("CREATE TABLE _in_the_wal (n INTEGER)")
conn.execute("INSERT INTO _in_the_wal VALUES (1), (2), (3)")
print("committed", flush=True)
sys.stdin.read()
conn.execute("DROP TABLE _in_the_wal")
conn.close()
"""


def test_a_backup_holds_the_commits_still_in_the_wal_and_stands_alone(
    state: Path, tmp_path: Path
) -> None:
    """A writer keeps its commits in the `-wal` (no checkpoint): the copy holds them, in one
    file that opens without any `-wal` beside it, checked."""
    db = state.parent / "var" / "state.db"
    with holding(WRITER_HOLDING_ITS_WAL, str(db), ready="committed"):
        assert db.with_name("state.db-wal").stat().st_size > 0
        assert count(db, "_in_the_wal") == 3
        done = run(state, "backup", str(tmp_path / "copy.db"), "--format", "json")
    taken = json.loads(done.stdout)
    copy = tmp_path / "copy.db"
    assert taken["path"] == str(copy) and taken["records"] == 2
    assert taken["bytes"] == copy.stat().st_size
    assert taken["migration"] == latest_migration()
    assert not copy.with_name("copy.db-wal").exists()
    assert journal_mode(copy) == "delete"
    assert count(copy, "records") == 2 and count(copy, "_in_the_wal") == 3
    assert [p.name for p in tmp_path.iterdir()] == ["copy.db"], "a partial copy was left"


def test_a_backup_into_a_folder_is_named_by_the_time_and_never_replaces_one(
    state: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    first = json.loads(run(state, "backup", str(folder), "--format", "json").stdout)
    assert Path(first["path"]).parent == folder
    assert Path(first["path"]).name.startswith("state-") and first["path"].endswith("Z.db")
    refused = run(state, "backup", first["path"], code=1)
    assert "already exists" in refused.stderr and "--overwrite" in refused.stderr
    run(state, "ingest", str(write_jsonl(tmp_path / "more.jsonl", [recent("BK-3")])))
    replaced = json.loads(
        run(state, "backup", first["path"], "--overwrite", "--format", "json").stdout
    )
    assert replaced["records"] == 3 == count(Path(first["path"]), "records")


def test_two_backups_into_a_folder_in_the_same_second_both_land(tmp_path: Path) -> None:
    state, folder = tmp_path / "var" / "state.db", tmp_path / "backups"
    folder.mkdir()
    at = datetime(2026, 12, 4, 15, 0, 7, tzinfo=UTC)
    first = destination(state, folder, at, overwrite=False)
    assert first.name == "state-20261204T150007Z.db"
    first.write_bytes(b"taken")
    second = destination(state, folder, at, overwrite=False)
    assert second.name == "state-20261204T150007Z-2.db"
    second.write_bytes(b"taken")
    assert destination(state, folder, at, overwrite=False).name == "state-20261204T150007Z-3.db"


def test_a_timed_name_taken_meanwhile_by_another_backup_moves_to_the_next(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two backups started in the same second both chose the free name before copying; the
    second found it taken when its copy was done. It takes the next, and both land."""
    folder = tmp_path / "backups"
    folder.mkdir()
    db = state.parent / "var" / "state.db"
    real = backup_module.destination

    def chosen_then_taken(*args: Any, **kwargs: Any) -> Path:
        name = real(*args, **kwargs)
        name.write_bytes(b"the other backup")  # it lands while this one copies
        return name

    monkeypatch.setattr(backup_module, "destination", chosen_then_taken)
    taken = backup_module.take_backup(db, folder)
    assert taken.path.name.endswith("Z-2.db"), taken.path
    assert count(taken.path, "records") == 2
    with pytest.raises(StoreError, match="created meanwhile by another process"):
        backup_module.take_backup(db, folder / "named.db")


@pytest.mark.parametrize("name", ["state.db", "state.db-wal", "state.db.lock"])
def test_a_backup_never_takes_the_name_of_the_state_s_own_files(state: Path, name: str) -> None:
    db = state.parent / "var" / "state.db"
    before = db.read_bytes()
    refused = run(state, "backup", str(db.with_name(name)), "--overwrite", code=1)
    assert "would replace the state itself" in refused.stderr
    assert db.read_bytes() == before


def test_a_backup_into_a_missing_folder_says_so(state: Path, tmp_path: Path) -> None:
    refused = run(state, "backup", str(tmp_path / "nowhere" / "copy.db"), code=1)
    assert "does not exist" in refused.stderr and "Traceback" not in refused.stderr


def test_a_folder_named_with_a_slash_must_exist(state: Path, tmp_path: Path) -> None:
    """`backup /backups/` with the backup disk unmounted: refused, not a file `/backups`."""
    unmounted = tmp_path / "backups"
    for args in (["backup", f"{unmounted}/"], ["upgrade", "--backup", f"{unmounted}/"]):
        refused = run(state, *args, code=2)
        assert "does not exist (a path ending in / names a folder)" in refused.stderr
        assert not unmounted.exists(), args
    unmounted.mkdir()
    taken = json.loads(run(state, "backup", f"{unmounted}/", "--format", "json").stdout)
    assert Path(taken["path"]).parent == unmounted


def test_a_user_who_may_only_read_the_state_takes_a_backup(state: Path) -> None:
    """A monitoring or backup account: nothing written beside the state."""
    folder = state.parent
    out = folder.parent / "backups"
    out.mkdir()
    out.chmod(0o777)
    before = listing(folder)
    with read_only(state):
        done = as_reader(state, "backup", str(out), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"] == 2
    assert listing(folder) == before, "a backup wrote beside the state"


def test_a_restored_backup_gives_back_the_records_and_the_files(
    state: Path, tmp_path: Path
) -> None:
    """Restoring: the backup in place of a lost state, then `verify --repair` writes the
    outbox's files again, byte for byte."""
    folder = state.parent
    outbox = folder / "var" / "outbox"
    files = {p.relative_to(outbox): p.read_bytes() for p in outbox.rglob("*.xml")}
    assert files, "the fixture wrote no file"
    taken = json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)
    copy = Path(taken["path"])
    shutil.rmtree(folder / "var")
    (folder / "var").mkdir()
    restored = json.loads(run(state, "restore", str(copy), "--format", "json").stdout)
    assert (restored["records"], restored["replaced"], restored["pending"]) == (2, None, [])
    # From when the events must be sent again: the backup's last change, said by both.
    assert restored["last_change"] == taken["last_change"] == last_change(copy)
    assert run(state, "verify", code=1).stdout.count("missing") >= 1
    run(state, "verify", "--repair")
    assert {p.relative_to(outbox): p.read_bytes() for p in outbox.rglob("*.xml")} == files
    rows = json.loads(run(state, "outstanding", "--format", "json").stdout)
    assert sorted(r["record_id"] for r in rows) == ["RO-1", "RO-2"]


def last_change(db: Path) -> str:
    with closing(sqlite3.connect(db)) as conn:
        (at,) = conn.execute("SELECT at FROM history ORDER BY id DESC LIMIT 1").fetchone()
    return str(at)


def changes_of(db: Path, record_id: str) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT at FROM history WHERE record_id = ?", (record_id,))
        return [str(at) for (at,) in rows]


def test_upgrade_takes_a_backup_then_migrates(state: Path, tmp_path: Path) -> None:
    db = state.parent / "var" / "state.db"
    name = _forget_last_migration(db)
    usage = run(state, "upgrade", code=2)
    assert "--backup" in usage.stderr and "--no-backup" in usage.stderr
    assert not _applied(db, name)
    done = json.loads(run(state, "upgrade", "--backup", str(tmp_path), "--format", "json").stdout)
    assert done["applied"] == [name] and _applied(db, name)
    copy = Path(done["backup"]["path"])
    assert not _applied(copy, name), "the backup was taken after the upgrade"
    assert done["backup"]["records"] == 2
    again = run(state, "upgrade", "--no-backup")
    assert "is up to date" in again.stdout
    assert json.loads(run(state, "summary", "--format", "json").stdout)["records"] == 2


def test_upgrade_is_refused_while_a_service_serves_the_state(state: Path, tmp_path: Path) -> None:
    db = state.parent / "var" / "state.db"
    name = _forget_last_migration(db)
    with service_holding(db) as pid:
        refused = run(state, "upgrade", "--backup", str(tmp_path), code=1)
        assert f"a service (process {pid}) serves the state" in refused.stderr
        assert list(tmp_path.iterdir()) == [], "a backup was taken for an upgrade refused"
        assert not _applied(db, name)


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from accrochage.cli import main
main(sys.argv[2:])
"""


def on_a_full_disk(limit: int, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command whose writes past `limit` bytes in a file fail, as they do on a full disk."""
    return subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(limit), "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_a_backup_that_cannot_be_written_leaves_nothing_behind(state: Path, tmp_path: Path) -> None:
    """A full disk (here: a limit on a file's size) failed the copy: SQLite's `-journal` of
    the partial copy stayed in the folder, and piled up at each failing cron run."""
    db = state.parent / "var" / "state.db"
    limit = db.stat().st_size // 2
    out = tmp_path / "out"
    out.mkdir()
    done = on_a_full_disk(limit, state, "backup", str(out))
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "cannot write the backup" in done.stderr and "Traceback" not in done.stderr
    assert list(out.iterdir()) == [], "a partial copy or its journal was left"


def test_a_backup_never_replaces_the_state_s_files_through_a_symlinked_path(
    tmp_path: Path,
) -> None:
    """SQLite keeps `-wal` beside the real file: named by its real folder, the live WAL of a
    symlinked `paths.state` was taken for an ordinary file (and replaced with --overwrite)."""
    real = tmp_path / "real"
    real.mkdir()
    linked = tmp_path / "linked"
    linked.mkdir()
    config = write_config(linked, paths={"state": str(linked / "state.db")})
    run(config, "ingest", str(write_jsonl(tmp_path / "e.jsonl", [recent("SY-1")])))
    (real / "state.db").write_bytes((linked / "state.db").read_bytes())
    (linked / "state.db").unlink()
    (linked / "state.db").symlink_to(real / "state.db")
    (real / "state.db-wal").write_bytes(b"")
    refused = run(config, "backup", str(real / "state.db-wal"), "--overwrite", code=1)
    assert "would replace the state itself" in refused.stderr
    assert (real / "state.db-wal").read_bytes() == b""


def test_a_killed_backup_s_partial_copy_is_swept_by_the_next_one(
    state: Path, tmp_path: Path
) -> None:
    """kill -9 (or the OOM killer) mid-copy left `.NAME.partial-PID` and its journal; no
    later run removed them. A live process's partial copy is left alone."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead = int(gone.stdout)
    abandoned = tmp_path / f".state-20261201T000000Z.db.partial-{dead}"
    abandoned.write_bytes(b"x" * 100)
    journal = tmp_path / f".state-20261201T000000Z.db.partial-{dead}-journal"
    journal.write_bytes(b"j")
    live = tmp_path / f".state-20261201T000001Z.db.partial-{os.getpid()}"
    live.write_bytes(b"y")
    elsewhere = tmp_path / f".state-20261201T000002Z.db.partial-{dead}"  # another host's?
    elsewhere.write_bytes(b"z")
    old = time.time() - 3600
    for path in (abandoned, journal, live):
        os.utime(path, (old, old))
    taken = json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, elsewhere.name, Path(taken["path"]).name]
    )


def test_the_files_cut_after_the_backup_a_state_was_restored_from_are_set_aside(
    state: Path, tmp_path: Path
) -> None:
    """After a restore, the files cut since stayed among those to upload while the events
    sent again were cut into new files: uploading the folder sent those passages twice, and
    `verify`, `flush` and `doctor` all said everything was fine."""
    folder = state.parent
    outbox = folder / "var" / "outbox"
    copy = Path(json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)["path"])
    before = set(outbox.glob("*/*.xml"))
    later = write_jsonl(tmp_path / "later.jsonl", [recent("RL-1"), recent("RL-2")])
    run(state, "ingest", str(later))
    run(state, "flush", "--force")
    (cut_since,) = set(outbox.glob("*/*.xml")) - before
    stored_since = changes_of(folder / "var" / "state.db", "RL-1")
    said = run(state, "restore", str(copy)).stdout
    assert "next: accrochage verify --repair" in said
    last = last_change(copy)
    assert f"its last change of a record was stored at {last}: what was stored after" in said
    assert stored_since and all(at >= last for at in stored_since), "the events to send again"
    run(state, "ingest", str(later))  # the README's restore: send the events again
    run(state, "flush", "--force")
    (recut,) = set(outbox.glob("*/*.xml")) - before - {cut_since}

    found = run(state, "verify", code=1)
    assert f"{cut_since}: no batch of the state has this file" in found.stderr
    assert "1 file(s) to upload the state does not know" in found.stdout
    doctor = run(state, "doctor", code=None)
    assert "1 file(s) among those to upload are not the state's" in doctor.stdout, doctor.stdout
    assert "verify --repair" in doctor.stdout

    repaired = run(state, "verify", "--repair")
    aside = cut_since.parent / "unknown" / cut_since.name
    assert f"moved to {aside}" in repaired.stdout
    assert aside.is_file() and not cut_since.exists(), "kept, out of the files to upload"
    assert set(outbox.glob("*/*.xml")) == before | {recut}
    assert "0 missing or altered" in run(state, "verify").stdout


def test_a_file_deposited_after_the_backup_stays_deposited_after_a_restore(
    state: Path, tmp_path: Path
) -> None:
    """A file deposited after the backup is `written` (to deposit) again in the restored
    state: `flush` (the service's tick) moved it from `deposited/` back among those to upload,
    and `verify --repair` wrote it there again, so that uploading the folder sent it twice.
    It stays in `deposited/`, named with the `deposited` command that records it again."""
    outbox = state.parent / "var" / "outbox"
    copy = Path(json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)["path"])
    (to_upload,) = outbox.glob("*/*.xml")
    batch_id = json.loads(run(state, "batches", "--format", "json").stdout)[0]["batch_id"]
    run(state, "deposited", batch_id)
    kept = to_upload.parent / "deposited" / to_upload.name
    assert kept.is_file() and not to_upload.exists()
    run(state, "restore", str(copy))
    listed = run(state, "batches", "--to-deposit", "--format", "json")
    assert [b["batch_id"] for b in json.loads(listed.stdout)] == [batch_id]
    assert f"warning: the file of batch {batch_id} is not at {to_upload}" in listed.stderr
    assert "do not upload a copy from elsewhere" in listed.stderr

    flushed = run(state, "flush")
    assert f"run `accrochage deposited {batch_id}`" in flushed.stderr + flushed.stdout
    found = run(state, "verify", "--repair", code=1)
    assert f"NOT repaired: found in deposited/ ({kept})" in found.stderr
    doctor = run(state, "doctor", code=None).stdout
    assert "1 file(s) to deposit are in deposited/ or done/" in doctor
    assert not list(outbox.glob("*/*.xml")), "nothing deposited is among the files to upload"
    assert kept.is_file()

    run(state, "deposited", batch_id)
    assert "0 missing or altered" in run(state, "verify").stdout
    assert list(outbox.glob("*/deposited/*.xml")) == [kept]


def test_a_report_imported_after_the_backup_is_named_to_import_again_after_a_restore(
    state: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """A file whose report was imported after the backup is in `done/` while the restored
    state has it `deposited`: `flush` (the service's tick) moved it back to `deposited/` and
    `verify --repair` wrote a second copy there, both saying all was well, so that nothing
    named the report to import again and its records stayed `deposited`."""
    outbox = state.parent / "var" / "outbox"
    (batch,) = json.loads(run(state, "batches", "--format", "json").stdout)
    run(state, "deposited", batch["batch_id"])
    copy = Path(json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)["path"])
    name = Path(batch["file"]).name
    report = tmp_path / "accuse.xml"
    report.write_bytes(
        processed_report(shared_dir, file_name=name, id_flux=batch["batch_id"], ok=["RO-1", "RO-2"])
    )
    run(state, "import-report", str(report))
    done = Path(batch["file"]).parent / "done" / name
    assert done.is_file()
    run(state, "restore", str(copy))

    flushed = run(state, "flush")
    assert "run `accrochage import-report` again" in flushed.stdout + flushed.stderr
    found = run(state, "verify", "--repair", code=1)
    assert f"NOT repaired: found in done/ ({done})" in found.stderr
    assert "import-report` again" in found.stderr
    assert list(outbox.glob("*/*/*.xml")) == [done], "one copy, where the report put it"

    (kept,) = (state.parent / "var" / "reports").glob("*accuse.xml")
    assert "2 accepted" in run(state, "import-report", str(kept)).stdout
    assert "0 missing or altered" in run(state, "verify").stdout
    assert list(outbox.glob("*/*/*.xml")) == [done]


def test_a_backup_says_the_copies_of_the_reports_are_not_in_it(
    state: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """The README said the state holds everything; the copies of the CDC's reports kept at
    import are files beside it that nothing writes again: an operator backing up the state
    alone lost them with the disk, and `evidence` then lacked them."""
    quiet = run(state, "backup", str(tmp_path / "before.db")).stdout
    assert "reports" not in quiet, "no report imported yet: nothing to say"
    (batch,) = json.loads(run(state, "batches", "--format", "json").stdout)
    report = tmp_path / "accuse.xml"
    report.write_bytes(
        processed_report(shared_dir, file_name=Path(batch["file"]).name, id_flux=None, ok=["RO-1"])
    )
    run(state, "import-report", str(report))
    said = run(state, "backup", str(tmp_path / "after.db")).stdout
    reports = state.parent / "var" / "reports"
    assert f"the copies of the CDC's reports in {reports} are not in the backup" in said
    taken = run(state, "backup", str(tmp_path / "json.db"), "--format", "json").stdout
    assert json.loads(taken)["records"] == 2, "the JSON answer stays one object"


def untouched(var: Path) -> tuple[int, list[str]]:
    """The state file's inode, and what a restore would have moved aside or left."""
    moved = [p.name for p in var.iterdir() if ".replaced-" in p.name or ".restoring-" in p.name]
    return (var / "state.db").stat().st_ino, moved


def test_restore_keeps_the_state_it_replaces_with_its_wal(state: Path, tmp_path: Path) -> None:
    """By hand, a backup copied beside the old `-wal` was 'damaged' (SQLite replayed the old
    state's commits over it), and a state copied over was gone for good."""
    var = state.parent / "var"
    copy = Path(json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)["path"])
    run(state, "ingest", str(write_jsonl(tmp_path / "later.jsonl", [recent("RL-1")])))
    assert count(var / "state.db", "records") == 3

    said = run(state, "restore", str(copy)).stdout
    (replaced,) = [p for p in var.iterdir() if ".replaced-" in p.name and p.name.endswith("Z")]
    assert f"restored {copy} to {var / 'state.db'}: 2 record(s)" in said
    assert f"the state it replaced is kept as {replaced}" in said
    assert count(var / "state.db", "records") == 2 and count(replaced, "records") == 3
    assert oct((var / "state.db").stat().st_mode & 0o777) == "0o640"
    assert not (var / "state.db-wal").exists(), "the old -wal went with the old state"
    assert not [p for p in var.iterdir() if ".restoring-" in p.name], "a partial copy was left"
    rows = json.loads(run(state, "outstanding", "--format", "json").stdout)
    assert sorted(r["record_id"] for r in rows) == ["RO-1", "RO-2"]
    assert "0 missing or altered" in run(state, "verify").stdout


def test_restore_is_refused_while_a_service_or_a_writer_holds_the_state(
    state: Path, tmp_path: Path
) -> None:
    var = state.parent / "var"
    copy = Path(json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)["path"])
    before = untouched(var)
    with service_holding(var / "state.db") as pid:
        refused = run(state, "restore", str(copy), code=1)
    assert f"a service (process {pid}) serves the state" in refused.stderr
    with held(var / "state.db"):
        busy = run(state, "restore", str(copy), code=1)
    assert "another writer has held the state" in busy.stderr, busy.stderr
    assert "restore again once it is done (the state is unchanged)" in busy.stderr
    with held(var / "state.db", cut=True):  # a flush between two parts of a batch it cuts
        cutting = run(state, "restore", str(copy), code=1)
    assert "another writer has held the state" in cutting.stderr, cutting.stderr
    assert untouched(var) == before and before[1] == [], "nothing moved"


def test_restore_refuses_what_is_no_backup_of_this_version(state: Path, tmp_path: Path) -> None:
    var = state.parent / "var"
    before = untouched(var)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all " * 100)
    refused = run(state, "restore", str(garbage), code=1)
    assert f"the backup {garbage} cannot be restored: it is no readable" in refused.stderr
    newer = Path(json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)["path"])
    with sqlite3.connect(newer) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('accrochage', 'm999_from_the_future', '2030-01-01')"
        )
    conn.close()
    refused = run(state, "restore", str(newer), code=1)
    assert "migrated by a newer accrochage (m999_from_the_future)" in refused.stderr
    assert run(state, "restore", str(var / "state.db"), code=1).stderr.count("state itself")
    assert untouched(var) == before and count(var / "state.db", "records") == 2


def test_a_command_that_had_the_state_open_writes_nothing_after_a_restore(
    state: Path, tmp_path: Path
) -> None:
    """A one-off command holds the write lock only during its transactions: restored between
    two of them, its next writes went, through its open connection, into the state set aside,
    reported as stored. It now refuses them."""
    var = state.parent / "var"
    copy = Path(json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)["path"])
    core = build_core(load_settings(state))
    try:
        run(state, "restore", str(copy))
        with pytest.raises(StoreError, match=r"was replaced .* run the command again"):
            core.ingestor.ingest([Incoming(json.dumps(recent("LATE-1")), "test")])
    finally:
        core.close()
    (replaced,) = [p for p in var.iterdir() if p.name.endswith("Z") and ".replaced-" in p.name]
    assert count(replaced, "records") == 2 == count(var / "state.db", "records")


def test_restore_moves_the_state_s_commits_into_the_file_it_sets_aside(
    state: Path, tmp_path: Path
) -> None:
    """The replaced state's commits were in its -wal (a service killed -9, the usual reason to
    restore, leaves them there): a kill between the renames left them beside no state, and
    the next restore deleted them. They are moved into the state's file first."""
    var = state.parent / "var"
    copy = Path(json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)["path"])
    with holding(WRITER_HOLDING_ITS_WAL, str(var / "state.db"), ready="committed"):
        assert (var / "state.db-wal").stat().st_size > 0, "the commits sit in the -wal"
        run(state, "restore", str(copy))
    (replaced,) = [p for p in var.iterdir() if p.name.endswith("Z") and ".replaced-" in p.name]
    alone = tmp_path / "alone.db"
    shutil.copyfile(replaced, alone)  # the file alone, without its -wal
    assert count(alone, "_in_the_wal") == 3


def test_restore_refuses_an_orphan_wal_and_sweeps_abandoned_copies(
    state: Path, tmp_path: Path
) -> None:
    var = state.parent / "var"
    copy = Path(json.loads(run(state, "backup", str(tmp_path), "--format", "json").stdout)["path"])
    dead = var / ".state.db.restoring-999999"
    dead.write_bytes(b"a restore killed mid-copy")
    os.utime(dead, (time.time() - 3600, time.time() - 3600))
    (var / "state.db").rename(var / "state.db.replaced-by-hand")  # as a killed restore left it
    (var / "state.db-wal").write_bytes(b"commits of the state set aside")
    refused = run(state, "restore", str(copy), code=1)
    assert "holds commits and its state is gone (a restore interrupted?)" in refused.stderr
    (var / "state.db-wal").unlink()  # the operator moved it, as the message says
    run(state, "restore", str(copy))
    assert not dead.exists(), "a dead restore's copy is swept"


def test_restore_refuses_a_sqlite_file_that_is_no_state(state: Path, tmp_path: Path) -> None:
    var = state.parent / "var"
    before = untouched(var)
    for name, tables in (("other.db", ""), ("empty.db", "CREATE TABLE records (x); ")):
        other = tmp_path / name
        with sqlite3.connect(other) as conn:
            conn.executescript(tables + "CREATE TABLE batches (x); CREATE TABLE t (x);")
        conn.close()
        refused = run(state, "restore", str(other), code=1)
        assert f"the backup {other} cannot be restored: it is no state of accrochage" in (
            refused.stderr
        ), refused.stderr
    assert untouched(var) == before
