"""`accrochage archived REF... [--to DIR]`: the operator's word that a settled file left the
outbox for good (a DPO's retention). Before it, a file archived away from `done/` was named
missing for ever: `verify` exited 1, `evidence` said it was lost, and no command could record
where it went. The word is checked against the disk; once kept, `verify` no longer looks for
the file, and `evidence` reads it in its archive (or says when it was deleted)."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import build_core
from accrochage.models.deadline import FixedClock
from accrochage.settings import load_settings
from accrochage.streams.flush_report import FlushReport
from accrochage.streams.outbox_watch import FolderWatch
from tests.test_cli_tracker import run, write_jsonl
from tests.test_evidence import deposit_and_report, event_of, passage_ids
from tests.test_tracker import NOW, write_config

TARGET = "EV-TARGET"


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def reported(config: Path, tmp_path: Path, shared_dir: Path) -> dict[str, Any]:
    """One file written, deposited and its report imported: the batch, its file in done/."""
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    run(config, "flush", "--force")
    deposit_and_report(config, shared_dir, tmp_path / "report.xml", [TARGET], {})
    (now,) = json.loads(run(config, "batches", "--format", "json").stdout)
    assert now["state"] == "reported" and "/done/" in now["file"], now
    return dict(now)


def with_archive(
    config: Path, tmp_path: Path, shared_dir: Path
) -> tuple[dict[str, Any], Path, Path]:
    """A reported batch, its file in done/, and an empty archive folder."""
    batch = reported(config, tmp_path, shared_dir)
    archive = tmp_path / "archive"
    archive.mkdir()
    return batch, Path(batch["file"]), archive


def archived_of(config: Path, batch_id: str) -> dict[str, Any] | None:
    listed = json.loads(run(config, "batches", "--format", "json").stdout)
    (batch,) = [b for b in listed if b["batch_id"] == batch_id]
    value: dict[str, Any] | None = batch["archived"]
    return value


def test_a_file_archived_to_a_folder_is_recorded_there_and_no_longer_missing(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    batch, done, archive = with_archive(config, tmp_path, shared_dir)
    shutil.move(done, archive / done.name)
    missing = run(config, "verify", code=1)
    assert f"{done}: missing" in missing.stderr

    said = run(config, "archived", batch["batch_id"], "--to", str(archive))
    assert f"its file recorded as archived to {archive}" in said.stdout
    assert archived_of(config, batch["batch_id"])["to"] == str(archive)  # type: ignore[index]
    clean = run(config, "verify")
    assert "0 missing or altered" in clean.stdout

    target = tmp_path / "evidence.zip"
    run(config, "evidence", TARGET, "-o", str(target))
    with zipfile.ZipFile(target) as bundle:
        document = bundle.read(f"passages/{batch['batch_id']}.xml")
        assert "missing.txt" not in bundle.namelist()
    assert passage_ids(document) == [TARGET]
    assert f"found at: {archive / done.name}".encode() in document

    again = run(config, "archived", batch["batch_id"], "--to", str(archive))
    assert "already recorded as archived" in again.stdout


def test_a_file_deleted_under_the_retention_is_recorded_deleted(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    batch = reported(config, tmp_path, shared_dir)
    done = Path(batch["file"])
    still = run(config, "archived", batch["batch_id"], code=1)
    assert f"its file is still at {done}: delete it first" in still.stderr
    assert archived_of(config, batch["batch_id"]) is None

    done.unlink()
    said = run(config, "archived", done.name)  # by the file's name, as `deposited`
    assert "its file recorded as deleted" in said.stdout
    recorded = archived_of(config, batch["batch_id"])
    assert recorded is not None and recorded["to"] is None and recorded["archived_at"]
    assert "0 missing or altered" in run(config, "verify").stdout

    target = tmp_path / "evidence.zip"
    incomplete = run(config, "evidence", TARGET, "-o", str(target), code=None)
    with zipfile.ZipFile(target) as bundle:
        lost = bundle.read("missing.txt").decode()
    day = recorded["archived_at"][:10]
    assert f"was deleted from the outbox on {day} (`accrochage archived`" in lost
    assert "is missing" not in lost and incomplete.exit_code != 0


def test_the_word_is_checked_against_the_disk(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    batch, done, archive = with_archive(config, tmp_path, shared_dir)

    absent = run(config, "archived", batch["batch_id"], "--to", str(archive), code=1)
    assert f"{archive / done.name} cannot be read" in absent.stderr
    (archive / done.name).write_bytes(done.read_bytes().replace(b"EV-TARGET", b"EV-TARGEX"))
    altered = run(config, "archived", batch["batch_id"], "--to", str(archive), code=1)
    assert "is not the file released" in altered.stderr
    own = run(config, "archived", batch["batch_id"], "--to", str(done.parent), code=2)
    assert "is in the outbox" in own.stderr
    assert archived_of(config, batch["batch_id"]) is None

    shutil.copy2(done, archive / done.name)  # copied, not moved: said, and recorded
    copied = run(config, "archived", batch["batch_id"], "--to", str(archive))
    assert f"a copy is still at {done}" in copied.stdout
    assert archived_of(config, batch["batch_id"]) is not None


def test_a_file_still_needed_is_never_recorded_archived(config: Path, tmp_path: Path) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    run(config, "flush", "--force")
    (batch,) = json.loads(run(config, "batches", "--format", "json").stdout)
    Path(batch["file"]).unlink()
    written = run(config, "archived", batch["batch_id"], code=1)
    assert "is written: its file waits to be uploaded or for the CDC's report" in written.stderr
    run(config, "flush")  # writes the missing file again: its records wait for it
    run(config, "deposited", batch["batch_id"])
    deposited = run(config, "archived", batch["batch_id"], code=1)
    assert "is deposited: its file waits" in deposited.stderr
    unknown = run(config, "archived", "no-such-batch", code=1)
    assert "no batch has this id" in unknown.stderr
    assert archived_of(config, batch["batch_id"]) is None


def test_the_tick_no_longer_looks_for_a_file_recorded_archived(
    config: Path, tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch cut's tick looked again for a file deleted from done/ each time its folder
    changed, or every 10 minutes, for ever; once recorded archived, never."""
    batch = reported(config, tmp_path, shared_dir)
    done = Path(batch["file"])
    done.unlink()

    def looks_for_it() -> int:
        real, counted = os.stat, [0]

        def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            counted[0] += str(path) == str(done)
            return real(path, *args, **kwargs)

        core = build_core(load_settings(config), FixedClock(NOW))
        try:
            core.flusher.folders = FolderWatch()  # a first tick: every folder looked in
            monkeypatch.setattr(os, "stat", counting)
            core.flusher.rewrite_missing(FlushReport())
            monkeypatch.undo()
        finally:
            core.close()
        return counted[0]

    assert looks_for_it() > 0
    run(config, "archived", batch["batch_id"])
    assert looks_for_it() == 0


def test_a_copy_among_the_files_to_upload_is_named_and_never_recorded_away(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    """A copy of an archived file put back among those to upload: nothing moves it any more,
    so it must be named (`verify`) and never deposited again; archiving is refused while it
    is there."""
    batch, done, archive = with_archive(config, tmp_path, shared_dir)
    shutil.move(done, archive / done.name)
    to_upload = done.parent.parent / done.name
    shutil.copy2(archive / done.name, to_upload)
    refused = run(config, "archived", batch["batch_id"], "--to", str(archive), code=1)
    assert f"a copy of its file is among those to upload ({to_upload})" in refused.stderr

    to_upload.unlink()
    run(config, "archived", batch["batch_id"], "--to", str(archive))
    shutil.copy2(archive / done.name, to_upload)
    named = run(config, "verify", code=1)
    assert "archived away since (`accrochage archived`): do not deposit it again" in named.stderr
    run(config, "verify", "--repair")
    assert not to_upload.exists(), "set aside in unknown/"


def test_an_archive_moved_since_is_recorded_again(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    batch = reported(config, tmp_path, shared_dir)
    done = Path(batch["file"])
    first, then = tmp_path / "archive-1", tmp_path / "archive-2"
    first.mkdir()
    then.mkdir()
    shutil.move(done, first / done.name)
    run(config, "archived", batch["batch_id"], "--to", str(first))
    shutil.move(first / done.name, then / done.name)
    moved = run(config, "archived", batch["batch_id"], "--to", str(then))
    assert f"recorded as archived to {then} (it was recorded at {first})" in moved.stdout
    assert archived_of(config, batch["batch_id"])["to"] == str(then)  # type: ignore[index]
    (then / done.name).unlink()
    deleted = run(config, "archived", batch["batch_id"])
    assert f"recorded as deleted (it was recorded at {then})" in deleted.stdout


def test_a_superseded_file_is_archived_too(config: Path, tmp_path: Path) -> None:
    """A file replaced before any deposit (superseded/) is never to be uploaded: archivable."""
    first = event_of(TARGET)
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [first])))
    run(config, "flush", "--force")
    corrected = event_of(TARGET)
    corrected["holder"]["first_names"] = ["Autre"]
    corrected["event_id"] = "corrected-1"
    run(config, "ingest", str(write_jsonl(tmp_path / "b.jsonl", [corrected])))
    run(config, "flush", "--force")
    listed = json.loads(run(config, "batches", "--format", "json").stdout)
    (superseded,) = [b for b in listed if b["state"] == "superseded"]
    Path(superseded["file"]).unlink()
    said = run(config, "archived", superseded["batch_id"])
    assert "its file recorded as deleted" in said.stdout
    assert "0 missing or altered" in run(config, "verify").stdout
