"""A state and its outbox moved, restored or copied elsewhere work on the configured outbox.

The state records each batch file's path. Moved with its outbox to another folder, a state
went on reading, moving and rewriting files in the old folder (recreating it), and a copy of a
state moved files in and out of the original's outbox: a reported file came back to the
original's top folder, where files wait to be uploaded. Files recorded under another outbox
are now recorded under `paths.outbox`, said once, and nothing outside it is touched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from accrochage.app import build_core
from accrochage.models.batch import relocated
from accrochage.models.vocabulary import BatchState
from accrochage.settings import load_settings
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_tracker import write_config
from tests.test_write_lock import held


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*.xml"))
    }


def batches(config: Path) -> list[dict[str, object]]:
    rows = json.loads(run(config, "batches", "--format", "json").stdout)
    assert isinstance(rows, list)
    return rows


@pytest.fixture()
def original(tmp_path: Path) -> Path:
    """A state with three files: one written, one deposited, one written for pix's other code."""
    (tmp_path / "first").mkdir()
    config = write_config(tmp_path / "first")
    events = [recent(f"MV-{i}") for i in range(3)] + [
        recent(f"MS-{i}", certifier="school") for i in range(2)
    ]
    run(config, "ingest", str(write_jsonl(tmp_path / "events.jsonl", events)))
    run(config, "flush", "--force")
    deposited = next(b for b in batches(config) if b["certifier"] == "school")
    run(config, "deposited", str(deposited["batch_id"]))
    return config


def test_a_moved_state_and_outbox_work_where_the_configuration_says(
    original: Path, tmp_path: Path
) -> None:
    old = original.parent
    moved = tmp_path / "moved"
    shutil.copytree(old, moved)
    shutil.rmtree(old)
    config = write_config(moved)  # the same configuration, with paths under the new folder
    outbox = moved / "var" / "outbox"
    before = files_under(outbox)

    # A command that only reads says so and records nothing (a monitoring user may not write).
    said = run(config, "batches", "--format", "json")
    assert "the next command that writes, records them there" in said.stderr
    recorded = json.loads(said.stdout)
    assert all(str(row["file"]).startswith(str(old)) for row in recorded), recorded
    doctor = json.loads(run(config, "doctor", "--format", "json", code=None).stdout)
    outbox_said = [f for f in doctor["findings"] if f["check"] == "outbox"]
    assert [f["level"] for f in outbox_said] == ["ok"], outbox_said  # not "missing"

    checked = run(config, "verify")
    assert "recorded under paths.outbox" in checked.stderr
    assert "0 missing or altered" in checked.stdout
    said = run(config, "batches", "--format", "json")
    assert "recorded under" not in said.stderr, "said once"
    rows = json.loads(said.stdout)
    assert all(str(row["file"]).startswith(str(outbox)) for row in rows), rows
    assert "recorded under" not in run(config, "summary").stderr
    run(config, "flush", "--force")
    written = next(b for b in rows if b["state"] == "written")
    run(config, "deposited", str(written["batch_id"]))
    assert not old.exists(), "the old folder was recreated"
    after = files_under(outbox)
    assert sorted(after.values()) == sorted(before.values()), "the same files, moved inside"


def test_a_copy_of_a_state_never_touches_the_originals_outbox(
    original: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(original.parent, copy)
    config = write_config(copy)
    originals = original.parent / "var" / "outbox"
    before = files_under(originals)
    for row in batches(config):
        if row["state"] == "written":
            run(config, "deposited", str(row["batch_id"]))
    run(config, "flush", "--force")
    run(config, "verify", "--repair")
    assert files_under(originals) == before
    assert "0 missing or altered" in run(original, "verify").stdout
    copied = files_under(copy / "var" / "outbox")
    assert all("/deposited/" in name for name in copied), copied


@pytest.mark.parametrize(
    ("recorded", "state", "expected"),
    [
        ("/old/outbox/pix/f.xml", BatchState.WRITTEN, "/new/outbox/pix/f.xml"),
        ("/old/outbox/pix/done/f.xml", BatchState.REPORTED, "/new/outbox/pix/done/f.xml"),
        # certifiers named like the subfolders: the batch's state says which folder it is
        ("/old/outbox/done/f.xml", BatchState.WRITTEN, "/new/outbox/done/f.xml"),
        ("/old/outbox/done/done/f.xml", BatchState.REPORTED, "/new/outbox/done/done/f.xml"),
        (
            "/old/outbox/deposited/deposited/f.xml",
            BatchState.DEPOSITED,
            "/new/outbox/deposited/deposited/f.xml",
        ),
        ("/new/outbox/pix/f.xml", BatchState.WRITTEN, None),
    ],
)
def test_a_file_is_relocated_to_its_batch_states_folder(
    recorded: str, state: BatchState, expected: str | None
) -> None:
    certifier = Path(recorded).parts[3]
    found = relocated(Path(recorded), certifier, state, Path("/new/outbox"))
    assert found == (Path(expected) if expected else None)


def test_a_relative_outbox_is_never_taken_for_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example configuration's `var/outbox`: the sink records absolute paths, so a
    relative outbox compared as written called every file 'under another outbox' after each
    flush, and recorded them relative to wherever the command ran."""
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, paths={"state": "var/state.db", "outbox": "var/outbox"})
    run(config, "ingest", str(write_jsonl(tmp_path / "r.jsonl", [recent("RL-1")])))
    run(config, "flush", "--force")
    for command in ("batches", "summary", "verify"):
        assert "recorded under" not in run(config, command).stderr, command
    (row,) = batches(config)
    assert Path(str(row["file"])).is_absolute()


def test_relative_paths_are_read_from_the_configuration_s_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `flush` from cron in a home folder, with the example's relative paths, created a new
    empty state there and said "nothing due"; an `ingest` split the records in two states."""
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "install"
    folder.mkdir()
    config = write_config(folder, paths={"state": "var/state.db", "outbox": "var/outbox"})
    monkeypatch.chdir(home)
    run(config, "ingest", str(write_jsonl(tmp_path / "r.jsonl", [recent("RP-1")])))
    assert "cut " in run(config, "flush", "--force").stdout
    (row,) = batches(config)
    assert Path(str(row["file"])).is_relative_to(folder / "var" / "outbox")
    assert (folder / "var" / "state.db").is_file()
    assert not any(home.iterdir()), "nothing created where the command ran"
    settings = load_settings(config, refdata={"rncp": "refdata/rncp.zip"})
    assert settings.refdata.rncp == folder / "refdata" / "rncp.zip"
    assert settings.paths.state == folder / "var" / "state.db"


def test_the_same_folder_named_two_ways_is_not_a_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--config ../install/accrochage.toml` from a sibling folder, or through a symbolic
    link: each run recorded the files anew ('recorded under another outbox'), flipping
    between the two spellings of one folder."""
    folder = tmp_path / "install"
    folder.mkdir()
    config = write_config(folder, paths={"state": "var/state.db", "outbox": "var/outbox"})
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(folder)
    monkeypatch.chdir(folder)
    run(config, "ingest", str(write_jsonl(tmp_path / "r.jsonl", [recent("TW-1")])))
    run(config, "flush", "--force")
    monkeypatch.chdir(tmp_path / "elsewhere")
    for spelled in (Path("../install/accrochage.toml"), tmp_path / "link" / "accrochage.toml"):
        said = run(spelled, "flush").stderr + run(spelled, "batches").stderr
        assert "recorded under" not in said, (spelled, said)
    (row,) = batches(config)
    assert Path(str(row["file"])).is_relative_to(folder / "var" / "outbox")


def test_a_state_left_where_earlier_versions_read_it_is_named_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installation run from /srv/app with --config /etc/...: its state is in /srv/app;
    reading relative paths from the configuration's folder created a new, empty state there,
    and the records would have been split in two."""
    config_folder = tmp_path / "etc"
    config_folder.mkdir()
    config = write_config(config_folder, paths={"state": "var/state.db", "outbox": "var/outbox"})
    ran_in = tmp_path / "srv"
    (ran_in / "var").mkdir(parents=True)
    (ran_in / "var" / "state.db").write_bytes(b"")
    monkeypatch.chdir(ran_in)
    refused = run(
        config, "ingest", str(write_jsonl(tmp_path / "r.jsonl", [recent("LB-1")])), code=2
    )
    assert f"there is one at {ran_in / 'var' / 'state.db'}" in refused.stderr, refused.stderr
    assert not (config_folder / "var").exists(), "a second state was created"


def test_a_copy_whose_state_is_busy_at_start_stops_instead_of_using_old_paths(
    original: Path, tmp_path: Path
) -> None:
    """Going on with the recorded paths would move a file of the original's outbox."""
    copy = tmp_path / "copy"
    shutil.copytree(original.parent, copy)
    config = write_config(copy, state={"lock_wait": "1s"})
    originals = original.parent / "var" / "outbox"
    before = files_under(originals)
    written = next(b for b in batches(original) if b["state"] == "written")
    with held(copy / "var" / "state.db"):
        refused = run(config, "deposited", str(written["batch_id"]), code=None)
    assert refused.exit_code != 0 and "another writer has held the state" in refused.stderr
    assert files_under(originals) == before
    assert "recorded under paths.outbox" in run(config, "verify").stderr, "the next one does"
    assert files_under(originals) == before


def test_an_outbox_inside_the_old_one_is_still_another(tmp_path: Path) -> None:
    """`paths.outbox` changed from var/outbox to var: the recorded paths start with it, yet
    are not where the batches' states put files under it."""
    found = relocated(Path("/x/var/outbox/pix/f.xml"), "pix", BatchState.WRITTEN, Path("/x/var"))
    assert found == Path("/x/var/pix/f.xml")


def test_a_running_process_never_moves_files_out_of_its_outbox(original: Path) -> None:
    """Another process with another `paths.outbox` (a relative one run from elsewhere)
    recorded the files under its own: the service's next tick moved every file of its
    outbox there, the ones waiting to be uploaded included. It now moves nothing, and says
    why."""
    folder = original.parent
    mine = folder / "var" / "outbox"
    service = build_core(load_settings(original))
    try:
        before = files_under(mine)
        elsewhere = write_config(folder, paths={"outbox": str(folder / "elsewhere")}, name="b.toml")
        recorded = {row["batch_id"]: row["file"] for row in batches(original)}
        # A read command under the other outbox only says so (it changed the recorded paths
        # under the running service before); a command that writes records them there.
        assert "the next command that writes" in run(elsewhere, "batches").stderr
        assert {row["batch_id"]: row["file"] for row in batches(original)} == recorded
        assert "recorded under paths.outbox" in run(elsewhere, "verify", code=None).stderr
        report = service.flusher.flush()
        assert any("outside this process's paths.outbox" in n for n in report.notes), report
        assert files_under(mine) == before
        assert not (folder / "elsewhere").exists() or files_under(folder / "elsewhere") == {}
    finally:
        service.close()
