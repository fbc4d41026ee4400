"""Two processes at the state and the outbox at once: the service's flush and the operator's
commands. Whatever interleaves, a batch keeps its one file, a committed step is reported as
done, and the files end where the state says."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import Core
from accrochage.streams.flush import Flusher
from accrochage.streams.flush_report import FlushReport
from tests.test_tracker import (
    batch_row,
    event,
    ingest,
    make_core,
    passages,
    processed_report,
    record,
    rows,
)


def failed_then_fixed(tmp_path: Path, *record_ids: str) -> tuple[Core, Core, str]:
    """A batch of `record_ids` (CC-1, CC-2 by default) whose writing failed (no outbox), then
    two cores on a working outbox, and the batch's id."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the outbox should be\n")
    core, clock = make_core(tmp_path, paths={"outbox": blocker / "outbox"})
    ingest(core, *(event(r) for r in record_ids or ("CC-1", "CC-2")))
    (failed,) = core.flusher.flush(force=True).failed
    core.close()
    outbox = tmp_path / "outbox"
    first, _ = make_core(tmp_path, clock, paths={"outbox": outbox})
    second, _ = make_core(tmp_path, clock, paths={"outbox": outbox})
    return first, second, failed.batch_id


def test_two_flushes_writing_the_same_batch_leave_it_written_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second writer of the same waiting batch finds it written: the same name, the same
    bytes. It must not take it for superseded (its records would be stranded, batched in a
    batch never to upload)."""
    first, second, batch_id = failed_then_fixed(tmp_path)
    try:
        record_outcome = Flusher._record
        raced: list[bool] = []

        def racing(self: Flusher, batch: Any, outcome: Any, report: Any) -> None:
            if not raced:
                raced.append(True)
                (other,) = second.flusher.flush().written
                assert other.batch_id == batch_id
            record_outcome(self, batch, outcome, report)

        monkeypatch.setattr(Flusher, "_record", racing)
        report = first.flusher.flush()
        monkeypatch.undo()
        assert not any("superseded" in note for note in report.notes)
        row = batch_row(first, batch_id)
        assert row["state"] == "written"
        (top,) = (tmp_path / "outbox" / "pix").glob("*.xml")
        assert Path(row["file_path"]) == top and set(passages(top)) == {"CC-1", "CC-2"}
        assert not (tmp_path / "outbox" / "pix" / "superseded").exists()
        assert not first.flusher.flush(force=True).cut
    finally:
        first.close()
        second.close()


def test_a_move_that_fails_after_the_commit_is_not_a_failed_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`deposited` committed; its file's move then fails (another process moved it first, a
    folder in the way): each item is still answered, the move is left to the next flush."""
    core, _ = make_core(tmp_path)
    try:
        ingest(core, event("CM-1"))
        (written,) = core.flusher.flush(force=True).written

        def vanished(source: Path, target: Path) -> None:
            raise FileNotFoundError(source)

        monkeypatch.setattr(core.operations.sink, "move", vanished)
        with caplog.at_level(logging.WARNING, logger="accrochage.outbox"):
            (outcome,) = core.operations.deposited([written.batch_id])
        monkeypatch.undo()
        assert outcome.done and "deposited (1 records)" in outcome.message
        assert any("could not be moved" in r.getMessage() for r in caplog.records)
        assert batch_row(core, written.batch_id)["state"] == "deposited"
        assert record(core, "CM-1")["status"] == "deposited"
        core.flusher.flush()
        deposited = tmp_path / "var" / "outbox" / "pix" / "deposited" / written.path.name
        assert deposited.is_file() and not written.path.exists()
    finally:
        core.close()


def test_a_report_for_a_file_released_but_never_recorded(
    tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process died between releasing a file and recording it (the batch stays `cut`),
    and the operator uploaded that file: its report records it, moves it to done/, and no
    flush offers it again."""
    core, _ = make_core(tmp_path)
    try:
        ingest(core, event("CR-1"), event("CR-2"))
        monkeypatch.setattr(Flusher, "_record", lambda self, batch, outcome, report: None)
        core.flusher.flush(force=True)
        monkeypatch.undo()
        (released,) = (tmp_path / "var" / "outbox" / "pix").glob("*.xml")
        (row,) = rows(core, "SELECT batch_id, state FROM batches")
        assert row["state"] == "cut"
        data = processed_report(
            shared_dir, file_name=released.name, id_flux=row["batch_id"], ok=["CR-1", "CR-2"]
        )
        summary = core.feedback.import_report_bytes(data, "report.xml")
        assert sorted(summary.accepted) == ["CR-1", "CR-2"]
        after = batch_row(core, row["batch_id"])
        assert after["state"] == "reported" and after["sha256"] is not None
        assert (tmp_path / "var" / "outbox" / "pix" / "done" / released.name).is_file()
        assert not released.exists()
        report = core.flusher.flush(force=True)
        assert not report.written and not report.cut
    finally:
        core.close()


def test_a_lowered_max_file_bytes_still_writes_and_repairs_batches_cut_before(
    tmp_path: Path,
) -> None:
    """Batches are cut within the limit of their day: written later, or again, they are the
    same bytes whatever `max_file_bytes` says now."""
    from accrochage.streams.verify import OutboxVerifier

    outbox = tmp_path / "outbox"
    core, clock = make_core(tmp_path, paths={"outbox": outbox})
    ingest(core, *(event(f"CW-{i:03d}") for i in range(80)))
    (written,) = core.flusher.flush(force=True).written
    core.close()
    assert written.path.stat().st_size > 100_000
    written.path.unlink()
    folder = written.path.parent  # the certifier's: a file in its place fails every write
    folder.rmdir()
    folder.write_text("a regular file where the certifier's folder should be\n")
    blocked, _ = make_core(tmp_path, clock, paths={"outbox": outbox})
    ingest(blocked, *(event(f"CB-{i:03d}") for i in range(80)))
    failed = blocked.flusher.flush(force=True).failed
    (waiting,) = [f for f in failed if f.batch_id != written.batch_id]  # the other: repaired
    blocked.close()
    folder.unlink()
    lowered, _ = make_core(
        tmp_path, clock, paths={"outbox": outbox}, batching={"max_file_bytes": 100_000}
    )
    try:
        repaired = OutboxVerifier(lowered.store, lowered.flusher.sink).verify(repair=True)
        assert repaired.ok and written.path.is_file()
        (late,) = lowered.flusher.flush().written
        assert late.batch_id == waiting.batch_id and late.path.stat().st_size > 100_000
    finally:
        lowered.close()


def test_verify_does_not_write_again_a_file_deposited_while_it_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`deposited` moves a file after `verify --repair` listed it: found missing where it
    was, it is judged where the state says now, never written again beside the files to
    upload."""
    from accrochage.streams import verify as verify_module

    core, _ = make_core(tmp_path)
    try:
        ingest(core, event("CV-1"))
        (written,) = core.flusher.flush(force=True).written
        real = verify_module.file_problem
        moved: list[bool] = []

        def deposited_meanwhile(recorded: Any) -> str | None:
            if not moved:
                moved.append(True)
                (done,) = core.operations.deposited([written.batch_id])
                assert done.done
            return real(recorded)

        monkeypatch.setattr(verify_module, "file_problem", deposited_meanwhile)
        report = verify_module.OutboxVerifier(core.store, core.flusher.sink).verify(repair=True)
        assert report.issues == []
        assert not written.path.exists(), "no copy beside the files to upload"
        assert (written.path.parent / "deposited" / written.path.name).is_file()
    finally:
        core.close()


def test_a_late_copy_of_a_deposited_batch_is_not_left_to_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slower writer renames its copy into the folder of files to upload after another
    flush recorded the batch and the operator deposited it: that copy is removed, never
    offered for a second upload."""
    from accrochage.sinks.xml_outbox import XmlOutbox

    first, second, batch_id = failed_then_fixed(tmp_path)
    try:
        write = XmlOutbox.write
        raced: list[bool] = []

        def slow(self: XmlOutbox, batch: Any) -> Any:
            if not raced and self is first.flusher.sink:
                raced.append(True)
                second.flusher.flush()
                (done,) = second.operations.deposited([batch_id])
                assert done.done
            return write(self, batch)

        monkeypatch.setattr(XmlOutbox, "write", slow)
        report = first.flusher.flush()
        monkeypatch.undo()
        assert any("the second copy was removed" in note for note in report.notes)
        assert batch_row(first, batch_id)["state"] == "deposited"
        assert list((tmp_path / "outbox" / "pix").glob("*.xml")) == []
        assert len(list((tmp_path / "outbox" / "pix" / "deposited").glob("*.xml"))) == 1
    finally:
        first.close()
        second.close()


def test_a_flush_does_not_put_back_to_upload_a_file_another_process_superseded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's tick lists the files to put back; meanwhile the operator's `flush`
    supersedes one (a record of it corrected) and moves it to superseded/. Found missing where
    the listing had it, the file is judged where the state says now: never moved back among
    the files to upload."""
    from accrochage.streams import put_back as verify_module
    from accrochage.streams.outbox_watch import FolderWatch

    core, clock = make_core(tmp_path)
    other, _ = make_core(tmp_path, clock)
    try:
        ingest(core, event("CS-1"), event("CS-2"))
        (written,) = core.flusher.flush(force=True).written
        ingest(core, event("CS-1", delivered_on="2026-11-17"))
        real = verify_module.is_missing
        raced: list[bool] = []

        def superseded_meanwhile(recorded: Any) -> bool:
            if not raced:
                raced.append(True)
                theirs = FlushReport()
                other.flusher.cut_and_write(theirs)
                assert theirs.superseded == [written.batch_id]
            return real(recorded)

        monkeypatch.setattr(verify_module, "is_missing", superseded_meanwhile)
        core.flusher.folders = FolderWatch()  # its folder looked in, however long ago it changed
        report = FlushReport()
        core.flusher.rewrite_missing(report)
        monkeypatch.undo()
        assert raced
        assert report.notes == [] and report.written == []
        row = batch_row(core, written.batch_id)
        assert row["state"] == "superseded"
        assert not written.path.exists(), "a superseded file among the files to upload"
        assert Path(row["file_path"]) == written.path.parent / "superseded" / written.path.name
        assert Path(row["file_path"]).is_file()
    finally:
        core.close()
        other.close()


def test_a_file_written_again_while_another_process_supersedes_it_is_not_left_to_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `written` batch's file missing: the tick writes it again, which takes the time of a
    render, outside any transaction; meanwhile the operator's `flush` supersedes the batch (a
    record of it corrected). The copy written again was left among the files to upload, and
    `flush` printed it as written, while `batches` said superseded."""
    from accrochage.streams import put_back as verify_module

    core, clock = make_core(tmp_path)
    other, _ = make_core(tmp_path, clock)
    try:
        ingest(core, event("RW-1"), event("RW-2"))
        (written,) = core.flusher.flush(force=True).written
        written.path.unlink()  # lost (a restore, a hand's slip): the next flush writes it
        ingest(core, event("RW-1", delivered_on="2026-11-17"))
        real = verify_module.rewrite
        raced: list[bool] = []

        def superseded_meanwhile(sink: Any, item: Any) -> str | None:
            theirs = FlushReport()  # while this one renders: its file is not there yet
            other.flusher.cut_and_write(theirs)
            assert theirs.superseded == [written.batch_id]
            raced.append(True)
            return real(sink, item)

        monkeypatch.setattr(verify_module, "rewrite", superseded_meanwhile)
        report = FlushReport()
        core.flusher.rewrite_missing(report)
        monkeypatch.undo()
        assert raced
        assert report.written == [], "printed as a file to upload"
        row = batch_row(core, written.batch_id)
        assert row["state"] == "superseded"
        assert not written.path.exists(), "a superseded file among the files to upload"
        assert Path(row["file_path"]) == written.path.parent / "superseded" / written.path.name
        assert Path(row["file_path"]).is_file()
        assert any(written.batch_id in note for note in report.notes), report.notes
    finally:
        core.close()
        other.close()
