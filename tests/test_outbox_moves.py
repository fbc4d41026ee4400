"""The outbox shows what is left to do (CONTRACT §7), and stays true after kill -9.

A file marked deposited moves to `deposited/`, a file whose report was imported to `done/`; the
top folder holds only the files still to upload. Each move is recorded in the state first, then
made. The process is killed (SIGKILL) at the named step between the two, and just after the
move; a later `flush` (or the service's next tick) then finds the state and the folders in
agreement: the file in exactly one place, the one `batches` gives, with its recorded bytes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from accrochage.cli import main
from accrochage.errors import StorageFullError, StoreError
from accrochage.failpoints import VARIABLE
from accrochage.streams import report_copies
from tests.test_cli_tracker import recent, write_jsonl
from tests.test_tracker import NO_HOLDER, processed_report, replay, write_config

FOLDERS = ("", "deposited", "done", "superseded")


def accrochage(
    config: Path, *args: str, failpoint: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if failpoint is not None:
        env[VARIABLE] = failpoint
    return subprocess.run(
        [sys.executable, "-m", "accrochage", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def ok(config: Path, *args: str) -> str:
    done = accrochage(config, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def only_batch(config: Path) -> dict[str, Any]:
    (batch,) = json.loads(ok(config, "batches", "--format", "json"))
    assert isinstance(batch, dict)
    return batch


def copies(outbox: Path, name: str) -> list[Path]:
    return [p for p in (outbox / "pix" / f / name for f in FOLDERS) if p.is_file()]


def prepared(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    config = write_config(tmp_path)
    events = [recent(f"M-{i}") for i in range(3)]
    ok(config, "ingest", str(write_jsonl(tmp_path / "m.jsonl", events)))
    ok(config, "flush", "--force")
    batch = only_batch(config)
    assert Path(batch["file"]).parent == tmp_path / "var" / "outbox" / "pix"
    return config, batch


def report_file(tmp_path: Path, shared_dir: Path, batch: dict[str, Any]) -> Path:
    path = tmp_path / "accuse.xml"
    path.write_bytes(
        processed_report(
            shared_dir,
            file_name=Path(batch["file"]).name,
            id_flux=batch["batch_id"],
            ok=["M-0", "M-1"],
            ko={"M-2": NO_HOLDER},
        )
    )
    return path


def assert_agree(config: Path, expected_state: str, folder: str) -> None:
    batch = only_batch(config)
    path = Path(batch["file"])
    outbox = config.parent / "var" / "outbox"
    assert batch["state"] == expected_state
    assert path == outbox / "pix" / folder / path.name
    assert copies(outbox, path.name) == [path], "the file is in exactly one place"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == batch["sha256"]
    assert accrochage(config, "verify").returncode == 0, "verify finds every file as recorded"


def test_deposited_and_reported_files_leave_the_top_folder(
    tmp_path: Path, shared_dir: Path
) -> None:
    config, batch = prepared(tmp_path)
    name = Path(batch["file"]).name
    ok(config, "deposited", name)
    assert_agree(config, "deposited", "deposited")
    assert json.loads(ok(config, "batches", "--to-deposit", "--format", "json")) == []
    ok(config, "import-report", str(report_file(tmp_path, shared_dir, batch)))
    assert_agree(config, "reported", "done")
    listed = only_batch(config)["report"]
    assert (listed["accepted"], listed["rejected"]) == (2, 1)


@pytest.mark.parametrize("point", ["deposited:recorded", "deposited:moved"])
def test_a_kill_during_a_deposit_leaves_state_and_folders_in_agreement(
    tmp_path: Path, point: str
) -> None:
    config, batch = prepared(tmp_path)
    killed = accrochage(config, "deposited", Path(batch["file"]).name, failpoint=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    ok(config, "flush")
    assert_agree(config, "deposited", "deposited")


def test_deposited_run_again_after_a_kill_moves_the_file_left_among_those_to_upload(
    tmp_path: Path,
) -> None:
    """Killed between its commit and the move, `deposited` run again said "already recorded"
    and left the file in the top folder, among those to upload (uploaded twice by a script
    that sends what is there) until the next flush."""
    config, batch = prepared(tmp_path)
    name = Path(batch["file"]).name
    killed = accrochage(config, "deposited", name, failpoint="deposited:recorded")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = ok(config, "deposited", name)
    assert "already recorded as deposited" in again and "interrupted run" in again
    assert_agree(config, "deposited", "deposited")


@pytest.mark.parametrize("point", ["reported:recorded", "reported:moved"])
def test_a_kill_during_a_report_import_leaves_state_and_folders_in_agreement(
    tmp_path: Path, shared_dir: Path, point: str
) -> None:
    config, batch = prepared(tmp_path)
    ok(config, "deposited", batch["batch_id"][:8])
    report = report_file(tmp_path, shared_dir, batch)
    killed = accrochage(config, "import-report", str(report), failpoint=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    ok(config, "flush")
    assert_agree(config, "reported", "done")
    # The copy `evidence` hands over was kept before the report was applied.
    (kept,) = (tmp_path / "var" / "reports").glob(f"*_{report.name}")
    assert kept.read_bytes() == report.read_bytes()
    again = ok(config, "import-report", str(report))
    assert "already imported" in again, "the kill came after the report was recorded"


def renamed_report(tmp_path: Path, shared_dir: Path) -> Path:
    """A report of the three records whose nomFichier and idFlux name no file of ours (a file
    renamed before its upload): matched by `--batch`, or applied `--by-id`."""
    path = tmp_path / "renamed.xml"
    path.write_bytes(
        processed_report(
            shared_dir,
            file_name="renamed_before_upload.xml",
            id_flux=None,
            ok=["M-0", "M-1"],
            ko={"M-2": NO_HOLDER},
        )
    )
    return path


@pytest.mark.parametrize("matched", ["by its file", "--batch", "--by-id"])
def test_a_report_imported_again_after_a_kill_moves_the_file_left_among_those_to_upload(
    tmp_path: Path, shared_dir: Path, matched: str
) -> None:
    """Killed between its commit and the file's move, a report imported again said "already
    imported: nothing changed" and left the file of the batch it settled (never marked
    deposited) in the top folder, among those to upload, until the next flush: matched by
    `--batch` or applied by id, the batch it settled was named nowhere the run again read.
    (Applied by id, a report settles a deposited batch: a written one it supersedes.)"""
    config, batch = prepared(tmp_path)
    if matched == "--by-id":
        ok(config, "deposited", batch["batch_id"])
    if matched == "by its file":
        args = [str(report_file(tmp_path, shared_dir, batch))]
    else:
        ref = [batch["batch_id"]] if matched == "--batch" else []
        args = [str(renamed_report(tmp_path, shared_dir)), matched, *ref]
    killed = accrochage(config, "import-report", *args, failpoint="reported:recorded")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = ok(config, "import-report", *args)
    assert "already imported" in again and "interrupted run" in again
    assert_agree(config, "reported", "done")


def test_a_report_imported_again_after_a_kill_moves_the_file_it_superseded(
    tmp_path: Path, shared_dir: Path
) -> None:
    """A first file uploaded without `deposited`, a correction cut into a second file; the
    first file's report settles the corrected record, so the second, written and never
    deposited, is superseded. Killed before that file's move, the report imported again left
    it among those to upload: a content the CDC must not receive."""
    config = write_config(tmp_path)
    events = [recent(f"M-{i}") for i in range(3)]
    ok(config, "ingest", str(write_jsonl(tmp_path / "m.jsonl", events)))
    ok(config, "flush", "--force")
    first = only_batch(config)
    corrected = replay(events[0])
    corrected["score"] = "300"
    ok(config, "ingest", str(write_jsonl(tmp_path / "c.jsonl", [corrected])))
    ok(config, "flush", "--force")
    batches = json.loads(ok(config, "batches", "--format", "json"))
    (second,) = [b for b in batches if b["batch_id"] != first["batch_id"]]
    assert second["state"] == "written" and Path(second["file"]).is_file()

    report = report_file(tmp_path, shared_dir, first)
    killed = accrochage(config, "import-report", str(report), failpoint="superseded:recorded")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    outbox = tmp_path / "var" / "outbox"
    name = Path(second["file"]).name
    assert copies(outbox, name) == [outbox / "pix" / name], "killed before the move"

    again = ok(config, "import-report", str(report))
    assert "already imported" in again and "interrupted run" in again
    listed = {b["batch_id"]: b for b in json.loads(ok(config, "batches", "--format", "json"))}
    assert listed[second["batch_id"]]["state"] == "superseded"
    assert copies(outbox, name) == [outbox / "pix" / "superseded" / name]
    assert json.loads(ok(config, "batches", "--to-deposit", "--format", "json")) == []


def test_a_report_imported_without_the_deposit_step_moves_the_file_to_done(
    tmp_path: Path, shared_dir: Path
) -> None:
    config, batch = prepared(tmp_path)
    ok(config, "import-report", str(report_file(tmp_path, shared_dir, batch)))
    assert_agree(config, "reported", "done")
    out = ok(config, "deposited", Path(batch["file"]).name)
    assert "already has the CDC's report" in out


def test_a_report_whose_copy_a_full_disk_refuses_is_said_and_not_applied(
    tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy of the report kept before it is applied failed for want of space: a
    traceback, and its `.partial` left in reports/."""
    config, batch = prepared(tmp_path)
    report = report_file(tmp_path, shared_dir, batch)

    def full_disk(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(report_copies.os, "fsync", full_disk)
    done = CliRunner().invoke(main, ["--config", str(config), "import-report", str(report)])
    monkeypatch.undo()
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit | None), done.exception
    assert "cannot keep a copy of the report accuse.xml" in done.stderr
    assert "No space left on device" in done.stderr
    assert "free space on that disk" in done.stderr
    assert only_batch(config)["state"] == "written", "nothing applied"
    assert list((tmp_path / "var" / "reports").iterdir()) == []


def test_a_report_whose_copy_folder_is_no_folder_is_said_and_not_applied(
    tmp_path: Path, shared_dir: Path
) -> None:
    """reports/ a file (or a folder this user may not search): the copy failed, and removing
    its `.partial` under that path failed too, with a traceback in place of what to do."""
    config, batch = prepared(tmp_path)
    report = report_file(tmp_path, shared_dir, batch)
    (tmp_path / "var" / "reports").write_bytes(b"not a folder")
    done = CliRunner().invoke(main, ["--config", str(config), "import-report", str(report)])
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit | None), done.exception
    assert "cannot keep a copy of the report accuse.xml" in done.stderr
    assert "a folder this user may write in" in done.stderr
    assert "free space" not in done.stderr, "no disk is full: its remedy would mislead"
    assert only_batch(config)["state"] == "written", "nothing applied"


def test_a_copy_that_fails_for_want_of_space_alone_is_a_full_disk(tmp_path: Path) -> None:
    """`507 storage_full` only for a full disk or quota: a folder that cannot hold the copy is
    the service's own fault (500), with its own remedy."""
    (tmp_path / "reports").write_bytes(b"not a folder")
    with pytest.raises(StoreError) as raised:
        report_copies.keep_copy(tmp_path / "reports", b"<report/>", "accuse.xml")
    assert not isinstance(raised.value, StorageFullError) and raised.value.status == 500
    full = report_copies.not_kept(
        OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)), "a.xml", tmp_path
    )
    assert isinstance(full, StorageFullError) and full.status == 507
