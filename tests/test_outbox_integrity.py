"""Hostile and real-world input around the outbox: XSD failures that quote no personal data,
report files that are not files (a FIFO, a sparse 2 GiB file, a DTD), and released files
deleted or altered after their release (`verify [--repair]`, `flush`)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from click.testing import CliRunner

from accrochage.app import Core, build_core
from accrochage.cli import main
from accrochage.errors import ReportError
from accrochage.models.deadline import FixedClock
from accrochage.settings import load_settings
from accrochage.sinks import reports
from accrochage.sinks.profiles import PROFILES
from accrochage.streams.flush_report import FlushReport
from accrochage.streams.strays import stray_files
from accrochage.streams.verify import OutboxVerifier
from tests.factories import HOLDER_NIR
from tests.test_tracker import NOW, event, ingest, make_core, write_config

# --- XSD failures carry no personal data -----------------------------------------------------

SECRET_NAME = "Zorglubienne"


def _stricter_xsd(directory: Path) -> Path:
    """The bundled 1.1.5 XSD with birth names in capitals only and an impossible NIR."""
    text = PROFILES["1.1.5"].bundled_xsd.read_text(encoding="utf-8")
    strict_name = (
        '<xsd:simpleType name="upperName"><xsd:restriction base="xsd:string">'
        '<xsd:pattern value="[A-Z]+"/></xsd:restriction></xsd:simpleType>'
    )
    text = text.replace('<xsd:simpleType name="nir">', strict_name + '<xsd:simpleType name="nir">')
    text = text.replace(
        '<xsd:element name="nomNaissance" type="cpf:text60"/>',
        '<xsd:element name="nomNaissance" type="cpf:upperName"/>',
    )
    assert text.count('type="cpf:upperName"') >= 2
    text = text.replace(
        '<xsd:pattern value="[12][0-9]{4}(2[AB]|[0-9]{2})[0-9]{6}"/>',
        '<xsd:pattern value="X{13}"/>',
    )
    path = directory / "strict.xsd"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_xsd_failure_names_the_element_and_the_passage_never_the_value(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    xsd = _stricter_xsd(tmp_path)
    with config.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[schema]\nversion = "1.1.5"\nxsd = "{xsd}"\n')
    core = build_core(load_settings(config), FixedClock(NOW))
    try:
        with_nir = event("S-1")
        with_nir["holder"].update(birth_name=SECRET_NAME, nir=HOLDER_NIR)
        without = event("S-2")
        without["holder"]["birth_name"] = SECRET_NAME
        ingest(core, with_nir, without)

        report = core.flusher.flush(force=True)

        assert not report.written and len(report.failed) == 1
        text = report.failed[0].error
        with sqlite3.connect(core.settings.paths.state) as db:
            (stored,) = db.execute("SELECT error FROM batches").fetchone()
    finally:
        core.close()
    for message in (text, stored):
        assert "element nomNaissance" in message
        assert "idTechnique S-1" in message and "idTechnique S-2" in message
        assert "pattern" in message
        assert "element nir" in message
        assert SECRET_NAME not in message
        assert HOLDER_NIR[:13] not in message
        assert "{urn:" not in message


# --- import-report: what is not a report file -------------------------------------------------


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built, _ = make_core(tmp_path)
    yield built
    built.close()


class _Hang(Exception):
    pass


@pytest.fixture()
def no_hang() -> Iterator[None]:
    """A guard, not a measure: a blocking open(2) of a FIFO is interrupted, not waited for."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise _Hang("the call blocked: the file was opened and waited on")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_import_report_refuses_a_fifo_without_waiting(
    core: Core, tmp_path: Path, no_hang: None
) -> None:
    fifo = tmp_path / "report.xml"
    os.mkfifo(fifo)
    with pytest.raises(ReportError, match="FIFO") as caught:
        core.feedback.import_report(fifo)
    assert str(fifo) in str(caught.value)


def test_import_report_refuses_a_huge_file_from_its_stat_without_opening_it(
    core: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = tmp_path / "huge.xml"
    with huge.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: 2 GiB that use no disk
    opened: list[str] = []
    real_os_open, real_path_open = os.open, pathlib.Path.open

    def spy_os_open(path: object, *args: object, **kwargs: object) -> int:
        opened.append(os.fspath(path))  # type: ignore[arg-type]
        return real_os_open(path, *args, **kwargs)  # type: ignore[arg-type]

    def spy_path_open(self: Path, *args: object, **kwargs: object) -> object:
        opened.append(str(self))
        return real_path_open(self, *args, **kwargs)  # type: ignore[arg-type]

    def no_read_bytes(self: Path) -> bytes:
        raise AssertionError(f"{self} was read whole")

    monkeypatch.setattr(os, "open", spy_os_open)
    monkeypatch.setattr(pathlib.Path, "open", spy_path_open)
    monkeypatch.setattr(pathlib.Path, "read_bytes", no_read_bytes)

    with pytest.raises(ReportError, match=f"above the {reports.MAX_REPORT_BYTES} byte limit"):
        core.feedback.import_report(huge)
    assert str(huge) not in opened


def test_import_report_refuses_a_dtd_with_an_internal_entity(core: Core, tmp_path: Path) -> None:
    path = tmp_path / "entity.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rapport [<!ENTITY id "EXPANDED">]>\n'
        "<rapport><PassagesOK><idTechnique>&id;</idTechnique></PassagesOK></rapport>",
        encoding="utf-8",
    )
    with pytest.raises(ReportError, match="DOCTYPE") as caught:
        core.feedback.import_report(path)
    assert "EXPANDED" not in str(caught.value)


# --- released files: verify, verify --repair, flush --------------------------------------------


def _written(core: Core) -> dict[str, Path]:
    ingest(core, event("V-1"), event("V-2"), event("V-3", certifier="school"))
    report = core.flusher.flush(force=True)
    assert report.ok and len(report.written) == 2
    return {w.certifier: w.path for w in report.written}


def _states(core: Core) -> dict[str, str]:
    with sqlite3.connect(core.settings.paths.state) as db:
        return dict(db.execute("SELECT batch_id, state FROM batches").fetchall())


def test_verify_finds_missing_and_altered_files_and_repair_restores_the_bytes(
    core: Core,
) -> None:
    files = _written(core)
    originals = {key: path.read_bytes() for key, path in files.items()}
    assert set(files) == {"pix", "school"}
    verifier = OutboxVerifier(core.store, core.flusher.sink)
    assert verifier.verify().ok and not verifier.verify().issues

    files["pix"].unlink()
    files["school"].write_bytes(originals["school"].replace(b"V-3", b"V-9", 1))

    found = verifier.verify()
    assert not found.ok and found.checked == 2
    problems = {issue.certifier: issue.problem for issue in found.issues}
    assert problems["pix"] == "missing"
    assert problems["school"].startswith("altered")
    assert not files["pix"].exists()  # verify alone changes nothing

    repaired = verifier.verify(repair=True)
    assert repaired.ok and all(issue.repaired for issue in repaired.issues)
    assert {key: path.read_bytes() for key, path in files.items()} == originals
    assert not verifier.verify().issues
    assert set(_states(core).values()) == {"written"}


def test_verify_checks_deposited_files_too(core: Core) -> None:
    files = _written(core)
    with sqlite3.connect(core.settings.paths.state) as db:
        (pix_batch,) = db.execute("SELECT batch_id FROM batches WHERE certifier = 'pix'").fetchone()
    original = files["pix"].read_bytes()
    assert all(o.done for o in core.operations.deposited([pix_batch]))
    moved = files["pix"].parent / "deposited" / files["pix"].name
    assert not files["pix"].exists() and moved.read_bytes() == original
    moved.write_bytes(original[:-10])
    verifier = OutboxVerifier(core.store, core.flusher.sink)

    (issue,) = verifier.verify().issues
    assert (issue.batch_id, issue.state, issue.problem.split(":")[0]) == (
        pix_batch,
        "deposited",
        "altered",
    )
    assert verifier.verify(repair=True).ok
    assert moved.read_bytes() == original, "repaired where the state has it: deposited/"
    assert not files["pix"].exists(), "the top folder holds only the files still to upload"


def test_flush_rewrites_the_missing_file_of_a_written_batch(core: Core) -> None:
    files = _written(core)
    originals = {key: path.read_bytes() for key, path in files.items()}
    for path in files.values():
        path.unlink()

    report = core.flusher.flush(force=True)

    assert report.ok and not report.cut
    assert sorted(w.path for w in report.written) == sorted(files.values())
    assert {key: path.read_bytes() for key, path in files.items()} == originals
    assert any("rewrote the missing file" in note for note in report.notes)
    assert set(_states(core).values()) == {"written"}
    assert not core.flusher.flush().written  # nothing missing any more


def test_flush_leaves_an_altered_file_to_verify(core: Core) -> None:
    files = _written(core)
    files["pix"].write_bytes(b"edited by hand")
    report: FlushReport = core.flusher.flush(force=True)
    assert report.ok and not report.written
    assert files["pix"].read_bytes() == b"edited by hand"


def test_the_verify_command_exits_1_until_repaired(core: Core, tmp_path: Path) -> None:
    files = _written(core)
    original = files["school"].read_bytes()
    files["school"].unlink()
    config = ["--config", str(tmp_path / "accrochage.toml")]
    runner = CliRunner()

    found = runner.invoke(main, [*config, "verify"])
    assert found.exit_code == 1, found.output
    assert f"{files['school']}: missing" in found.stderr
    assert "verify --repair" in found.stderr
    assert "2 released file(s) checked: 1 missing or altered" in found.stdout

    repaired = runner.invoke(main, [*config, "verify", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "repaired" in repaired.stdout
    assert files["school"].read_bytes() == original

    clean = runner.invoke(main, [*config, "verify"])
    assert clean.exit_code == 0 and "0 missing or altered" in clean.stdout


def test_a_batch_failing_the_xsd_tells_the_operator_what_to_do(tmp_path: Path) -> None:
    """`flush` and `show` said the batch failed and nothing more."""
    config = write_config(tmp_path)
    with config.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[schema]\nversion = "1.1.5"\nxsd = "{_stricter_xsd(tmp_path)}"\n')
    one = event("S-3")
    one["holder"]["birth_name"] = "lower"
    source = tmp_path / "e.jsonl"
    source.write_text(json.dumps(one) + "\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config), "ingest", str(source)]).exit_code == 0
    failed = runner.invoke(main, ["--config", str(config), "flush", "--force"])
    assert failed.exit_code == 1
    assert "idTechnique S-3" in failed.stderr
    assert "next: " in failed.stderr and "send a corrected event" in failed.stderr
    assert "accrochage exclude ID --reason TEXT" in failed.stderr
    shown = runner.invoke(main, ["--config", str(config), "show", "S-3"])
    assert shown.exit_code == 0, shown.output
    (line,) = [x for x in shown.stdout.splitlines() if x.startswith("next")]
    assert "accrochage exclude S-3 --reason TEXT" in line and "tried again at each flush" in line


def _deposited(core: Core) -> tuple[Path, Path]:
    """The pix file, marked deposited: where it was, and where it is now."""
    files = _written(core)
    with sqlite3.connect(core.settings.paths.state) as db:
        (pix_batch,) = db.execute("SELECT batch_id FROM batches WHERE certifier = 'pix'").fetchone()
    assert all(o.done for o in core.operations.deposited([pix_batch]))
    return files["pix"], files["pix"].parent / "deposited" / files["pix"].name


def test_a_deposited_file_is_written_again_where_it_is_kept_never_among_those_to_upload(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`verify --repair` wrote an altered deposited file among the files to upload, then
    moved it: a kill in between left a copy there that nothing reported."""
    top, kept = _deposited(core)
    original = kept.read_bytes()
    kept.write_bytes(original[:-10])

    def killed_before_the_move(source: Path, target: Path) -> None:
        raise OSError("killed before the move")

    monkeypatch.setattr(core.flusher.sink, "move", killed_before_the_move)
    repaired = OutboxVerifier(core.store, core.flusher.sink).verify(repair=True)
    assert repaired.ok, repaired
    assert kept.read_bytes() == original
    assert not top.exists(), "nothing among the files to upload"


def test_a_copy_of_a_deposited_file_among_those_to_upload_is_named_and_set_aside(
    core: Core,
) -> None:
    top, kept = _deposited(core)
    top.write_bytes(kept.read_bytes())
    verifier = OutboxVerifier(core.store, core.flusher.sink)
    (stray,) = verifier.verify().strays
    assert stray.path == top and f"a copy of a file deposited and kept at {kept}" in stray.why
    assert not verifier.verify().ok
    (moved,) = verifier.verify(repair=True).strays
    assert moved.set_aside_to == top.parent / "unknown" / top.name
    assert not top.exists() and kept.is_file()
    top.write_bytes(kept.read_bytes())
    (again,) = verifier.verify(repair=True).strays
    assert again.set_aside_to == top.parent / "unknown" / f"{top.stem}-2{top.suffix}"
    assert verifier.verify().ok


def test_a_file_set_aside_by_a_killed_repair_is_not_set_aside_twice(core: Core) -> None:
    """`--repair` killed between the link into unknown/ and the unlink of the file among
    those to upload: run again, it set the same file aside a second time, as `-2`."""
    top, kept = _deposited(core)
    top.write_bytes(kept.read_bytes())
    (top.parent / "unknown").mkdir()
    os.link(top, top.parent / "unknown" / top.name)  # where the kill left it
    (moved,) = OutboxVerifier(core.store, core.flusher.sink).verify(repair=True).strays
    assert moved.set_aside_to == top.parent / "unknown" / top.name
    assert [p.name for p in (top.parent / "unknown").iterdir()] == [top.name]
    assert not top.exists()


def test_files_the_state_is_about_to_record_or_move_are_not_strays(core: Core) -> None:
    """A file released before its batch is recorded written (a flush running), and a file
    recorded deposited but not moved yet (a kill in between: the next flush moves it), are
    the state's own."""
    top, kept = _deposited(core)
    os.replace(kept, top)
    ingest(core, event("V-4"))
    (cut,) = core.flusher.flush(force=True).written
    with sqlite3.connect(core.settings.paths.state) as db:
        db.execute(
            "UPDATE batches SET state = 'cut', file_path = NULL WHERE file_name = ?",
            (cut.path.name,),
        )
    assert not OutboxVerifier(core.store, core.flusher.sink).verify().strays


def test_verify_moves_back_a_file_left_where_it_was_never_writes_it_twice(
    core: Core, tmp_path: Path
) -> None:
    """A deposit recorded, its file not moved yet (a kill in between; an outbox of the first
    versions, which left deposited files among those to upload): `verify` said the file was
    missing and `--repair` wrote a second copy, setting the first aside in unknown/."""
    top, kept = _deposited(core)
    os.replace(kept, top)
    config = ["--config", str(tmp_path / "accrochage.toml")]
    runner = CliRunner()

    found = runner.invoke(main, [*config, "verify"])
    assert found.exit_code == 1, found.output
    assert f"{kept}: missing, left at {top}" in found.stderr
    assert "to move it back" in found.stderr and "write it again" not in found.stderr

    repaired = runner.invoke(main, [*config, "verify", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert kept.is_file() and not top.exists()
    assert not (top.parent / "unknown").exists(), "nothing set aside: no second copy"
    assert OutboxVerifier(core.store, core.flusher.sink).verify().ok


def test_a_file_recorded_by_a_relative_path_is_not_a_copy_of_itself(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first versions recorded `var/outbox/pix/X.xml` as given; until a command that
    writes records it under paths.outbox, `doctor` called a deposited file left among those
    to upload "a copy of a file deposited and kept at var/outbox/pix/X.xml": itself."""
    top, kept = _deposited(core)
    os.replace(kept, top)
    root = top.parents[3]
    monkeypatch.chdir(root)
    with sqlite3.connect(core.settings.paths.state) as db:
        db.execute(
            "UPDATE batches SET file_path = ? WHERE file_name = ?",
            (str(top.relative_to(root)), top.name),
        )
    assert not stray_files(core.store, core.flusher.sink.files_to_upload())
