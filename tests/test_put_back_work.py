"""The work of the batch cut's look for missing files, counted in stats (never timed): one a
folder once its files were all found, not one a file of the outbox at every tick; and a file
removed since is still found missing and written again."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import Core
from accrochage.streams import outbox_watch
from accrochage.streams.flush_report import FlushReport
from accrochage.streams.outbox_watch import SETTLED_NS, FolderWatch
from tests.test_tracker import event, ingest, make_core


def _stats_under(outbox: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Counts the stats of paths in the outbox from now on."""
    real, counted = os.stat, [0]

    def counting(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if str(path).startswith(str(outbox)):
            counted[0] += 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting)
    return lambda: counted[0]


def _settled() -> FolderWatch:
    """A watch to which the folders changed just now are as old as `SETTLED_NS`."""
    return FolderWatch(lambda: time.time_ns() + 2 * SETTLED_NS)


def _written(tmp_path: Path, files: int) -> tuple[Core, list[Path]]:
    tmp_path.mkdir(exist_ok=True)
    core, _ = make_core(tmp_path, batching={"max_records": 1})
    ingest(core, *(event(f"W-{n:03d}", certifier=("pix", "school")[n % 2]) for n in range(files)))
    report = core.flusher.flush(force=True)
    assert report.ok and len(report.written) == files
    return core, [w.path for w in report.written]


def _tick_stats(core: Core, monkeypatch: pytest.MonkeyPatch) -> int:
    """The stats in the outbox of a tick after one that found every file."""
    core.flusher.folders = _settled()
    core.flusher.rewrite_missing(FlushReport())
    stats = _stats_under(core.settings.paths.outbox, monkeypatch)
    report = FlushReport()
    core.flusher.rewrite_missing(report)
    monkeypatch.undo()
    assert report.ok and not report.written and not report.notes
    return stats()


def test_a_tick_stats_the_folders_not_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each tick stat-ed every file the state placed: 4,079 a tick, every 5 s, on a year's
    state (150 ms of CPU, 3 % of a core, of an idle service)."""
    few, _ = _written(tmp_path / "few", 2)
    many, _ = _written(tmp_path / "many", 40)
    try:
        folders = 2  # pix/ and school/
        assert _tick_stats(few, monkeypatch) <= folders
        assert _tick_stats(many, monkeypatch) <= folders
    finally:
        few.close()
        many.close()


def _past_the_last_change(folder: Path) -> None:
    """Until the file system's clock has moved past the folder's last change (a coarse clock
    gives changes a few ms apart the same time; `SETTLED_NS` covers that in the service)."""
    last = folder.stat().st_ctime_ns
    probe = folder.parent / "probe"
    while True:
        probe.touch()
        now = probe.stat().st_ctime_ns
        probe.unlink()
        if now > last:
            return


def test_a_file_removed_after_its_folder_was_found_whole_is_written_again(
    tmp_path: Path,
) -> None:
    core, files = _written(tmp_path, 6)
    try:
        core.flusher.folders = _settled()
        assert not core.flusher.flush().written, "every file found"
        lost = files[3]
        original = lost.read_bytes()
        _past_the_last_change(lost.parent)
        lost.unlink()
        report = core.flusher.flush()
        assert [w.path for w in report.written] == [lost]
        assert lost.read_bytes() == original
        assert any("rewrote the missing file" in note for note in report.notes)
    finally:
        core.close()


def test_a_file_removed_where_folder_times_stay_is_written_again_within_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that keeps a folder's times when a file in it is removed (a FUSE mount of
    an object store, a share with cached attributes): the missing file was never looked for
    again while the service ran. Each folder is looked in at least every `LOOKED_AGAIN_NS`."""
    core, files = _written(tmp_path, 4)
    try:
        frozen = {str(p.parent): outbox_watch.stamp_of(str(p.parent)) for p in files}
        monkeypatch.setattr(outbox_watch, "stamp_of", lambda folder: frozen[folder])
        now = [0]
        core.flusher.folders = FolderWatch(lambda: time.time_ns() + 2 * SETTLED_NS, lambda: now[0])
        assert not core.flusher.flush().written, "every file found"
        lost = files[1]
        lost.unlink()
        now[0] += outbox_watch.LOOKED_AGAIN_NS // 2
        assert not core.flusher.flush().written, "within the bound: its folder not looked in"
        now[0] += outbox_watch.LOOKED_AGAIN_NS
        report = core.flusher.flush()
        assert [w.path for w in report.written] == [lost]
        assert lost.exists()
    finally:
        core.close()


@pytest.mark.parametrize("archived", ["the files", "their folders"])
def test_files_gone_from_done_cost_each_tick_their_folder_not_a_search_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archived: str
) -> None:
    """Files of batches reported long ago, archived away from done/ by the operator: no tick
    can write them (`verify --repair` does), yet each tick searched every folder of their
    certifier for each one, in a write transaction each (0.7 s of CPU a tick for 4,079 such
    files at 1,000,000 records). A copy of one back among the files to upload is still moved
    where the state has it, within `LOOKED_AGAIN_NS`."""
    core, files = _written(tmp_path, 8)
    try:
        core.operations.deposited([p.name for p in files])
        deposited = [p.parent / "deposited" / p.name for p in files]
        assert all(p.is_file() for p in deposited)
        original = deposited[2].read_bytes()
        for path in deposited:
            path.unlink()  # archived elsewhere
        if archived == "their folders":
            for folder in {p.parent for p in deposited}:
                folder.rmdir()
        now = [0]
        core.flusher.folders = FolderWatch(lambda: time.time_ns() + 2 * SETTLED_NS, lambda: now[0])
        first = FlushReport()
        core.flusher.rewrite_missing(first)
        assert first.ok and not first.written, "nothing a tick can write"
        stats = _stats_under(core.settings.paths.outbox, monkeypatch)
        core.flusher.rewrite_missing(FlushReport())
        monkeypatch.undo()
        assert stats() <= 2, "pix/deposited/ and school/deposited/, not a search a file"

        copy = files[2]
        copy.write_bytes(original)
        now[0] += outbox_watch.LOOKED_AGAIN_NS
        report = FlushReport()
        core.flusher.rewrite_missing(report)
        assert not copy.exists(), "not left among the files to upload"
        assert deposited[2].read_bytes() == original
        assert any(f"moved {copy} back to {deposited[2]}" in n for n in report.notes)
    finally:
        core.close()
