"""`accrochage evidence RECORD_ID -o FILE.zip` (CONTRACT §9): one record's evidence for the CDC.

A record rejected twice for its identity is the case the CDC's procedure is for (SPEC §8):
the zip must hold its passage as each batch file carried it, wherever the file went since,
the reports that rejected it byte for byte, its history and the record as `show` prints it;
and say what it could not find instead of failing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from accrochage.sinks.profiles import NAMESPACE
from tests.factories import delivered_event
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_tracker import NO_HOLDER, file_rejected_report, processed_report, write_config

NS = {"cpf": NAMESPACE}
TARGET = "EV-TARGET"
NAMES = {
    "EV-TARGET": ("Zorglubienne", "Eulalie"),
    "EV-OTHER": ("Quetzalcoatle", "Prudence"),
    "EV-LATER": ("Xanthippidou", "Anselme"),
}
"""Holders' names that appear nowhere else, to look for them in what the command prints."""
BIRTH_DATE = delivered_event()["holder"]["birth_date"]


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def event_of(record_id: str) -> dict[str, Any]:
    holder = delivered_event()["holder"]
    holder["birth_name"], first_name = NAMES[record_id]
    holder["first_names"] = [first_name]
    return recent(record_id, holder=holder)


def written_batch(config: Path) -> dict[str, Any]:
    listed = json.loads(run(config, "batches", "--to-deposit", "--format", "json").stdout)
    assert len(listed) == 1, listed
    batch: dict[str, Any] = listed[0]
    return batch


def deposit_and_report(
    config: Path, shared_dir: Path, report: Path, ok: list[str], ko: dict[str, str]
) -> dict[str, Any]:
    """Mark the only written batch deposited, import a report on it; the batch as it was."""
    batch = written_batch(config)
    run(config, "deposited", batch["batch_id"])
    report.write_bytes(
        processed_report(
            shared_dir,
            file_name=Path(batch["file"]).name,
            id_flux=batch["batch_id"],
            ok=ok,
            ko=ko,
        )
    )
    run(config, "import-report", str(report))
    return batch


def twice_rejected(config: Path, tmp_path: Path, shared_dir: Path) -> list[dict[str, Any]]:
    """The target rejected for identity, retried unchanged, rejected again: the two batches."""
    run(
        config,
        "ingest",
        str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET), event_of("EV-OTHER")])),
    )
    run(config, "flush", "--force")
    first = deposit_and_report(
        config, shared_dir, tmp_path / "accuse-1.xml", ["EV-OTHER"], {TARGET: NO_HOLDER}
    )
    run(config, "retry", TARGET)
    run(config, "ingest", str(write_jsonl(tmp_path / "b.jsonl", [event_of("EV-LATER")])))
    run(config, "flush", "--force")
    second = deposit_and_report(
        config, shared_dir, tmp_path / "accuse-2.xml", ["EV-LATER"], {TARGET: NO_HOLDER}
    )
    return [first, second]


def entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def passage_ids(document: bytes) -> list[str]:
    root = etree.parse(io.BytesIO(document)).getroot()
    assert root.tag == f"{{{NAMESPACE}}}passageCertification"
    return [e.text or "" for e in root.iter(f"{{{NAMESPACE}}}idTechnique")]


def comment_of(document: bytes) -> str:
    root = etree.parse(io.BytesIO(document)).getroot()
    previous = root.getprevious()
    assert previous is not None and previous.tag is etree.Comment
    return str(previous.text)


def assert_no_personal_data(*outputs: str) -> None:
    for text in outputs:
        for birth_name, first_name in NAMES.values():
            assert birth_name not in text and first_name not in text, text
        assert BIRTH_DATE not in text, text


def test_the_evidence_of_a_record_rejected_twice_for_identity(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    first, second = twice_rejected(config, tmp_path, shared_dir)
    shown = json.loads(run(config, "show", TARGET, "--format", "json").stdout)
    assert shown["status"] == "rejected"
    # Both cut within the same second: their order is the batch ids'.
    assert {b["batch_id"] for b in shown["batches"]} == {first["batch_id"], second["batch_id"]}
    assert all("/done/" in b["file"] for b in shown["batches"]), "both files moved to done/"

    target = tmp_path / "out" / "evidence.zip"
    target.parent.mkdir()
    result = run(config, "evidence", TARGET, "-o", str(target))
    assert f"wrote {target}: 2 passage(s), 2 report(s)" in result.stdout
    assert_no_personal_data(result.stdout, result.stderr)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not list(target.parent.glob(".*partial")), "no temporary file left"

    found = entries(target)
    assert sorted(found) == sorted(
        [
            f"passages/{first['batch_id']}.xml",
            f"passages/{second['batch_id']}.xml",
            "reports/accuse-1.xml",
            "reports/accuse-2.xml",
            "history.json",
            "record.json",
        ]
    )
    with zipfile.ZipFile(target) as bundle:
        assert bundle.namelist() == sorted(bundle.namelist()), "entries sorted"

    for batch in (first, second):
        document = found[f"passages/{batch['batch_id']}.xml"]
        assert passage_ids(document) == [TARGET], "exactly this record's passage"
        assert b"EV-OTHER" not in document and b"EV-LATER" not in document
        assert NAMES[TARGET][0].encode() in document, "the passage as sent, names included"
        about = comment_of(document)
        assert f"batch: {batch['batch_id']}" in about and "action: CREATION" in about
        assert f"file: {Path(batch['file']).name}" in about
        assert f"file sha256: {batch['sha256']}" in about and "(same)" in about
        # The passage is the file's, element for element.
        original = etree.parse(str(shown_file(shown, batch["batch_id"])))
        sent = next(
            p
            for p in original.iterfind(".//cpf:passageCertification", NS)
            if p.findtext("cpf:idTechnique", namespaces=NS) == TARGET
        )
        sent.tail = None
        assert etree.tostring(etree.parse(io.BytesIO(document)).getroot(), method="c14n") == (
            etree.tostring(sent, method="c14n")
        )

    assert found["reports/accuse-1.xml"] == (tmp_path / "accuse-1.xml").read_bytes()
    assert found["reports/accuse-2.xml"] == (tmp_path / "accuse-2.xml").read_bytes()

    history = json.loads(found["history.json"])
    assert history == shown["history"]
    transitions = [(h["from_status"], h["to_status"]) for h in history]
    assert transitions.count(("deposited", "rejected")) == 2
    assert ("rejected", "pending") in transitions
    assert json.loads(found["record.json"]) == shown

    again = tmp_path / "out" / "again.zip"
    run(config, "evidence", TARGET, "-o", str(again))
    assert again.read_bytes() == target.read_bytes(), "the same state gives the same bytes"

    other = tmp_path / "other.zip"
    run(config, "evidence", "EV-OTHER", "-o", str(other))
    names = sorted(entries(other))
    assert names == [
        "history.json",
        f"passages/{first['batch_id']}.xml",
        "record.json",
        "reports/accuse-1.xml",
    ], "only the batches and reports that name it"


def shown_file(shown: dict[str, Any], batch_id: str) -> Path:
    return Path(next(b["file"] for b in shown["batches"] if b["batch_id"] == batch_id))


def test_a_file_moved_by_hand_is_still_found(config: Path, tmp_path: Path) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    run(config, "flush", "--force")
    batch = written_batch(config)
    path = Path(batch["file"])
    moved = path.parent / "done" / path.name
    moved.parent.mkdir()
    shutil.move(path, moved)

    target = tmp_path / "evidence.zip"
    result = run(config, "evidence", TARGET, "-o", str(target))
    assert "1 passage(s), 0 report(s)" in result.stdout
    document = entries(target)[f"passages/{batch['batch_id']}.xml"]
    assert passage_ids(document) == [TARGET]
    assert f"found at: {moved}" in comment_of(document)


def test_a_missing_file_is_named_and_exits_1(config: Path, tmp_path: Path) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    run(config, "flush", "--force")
    batch = written_batch(config)
    run(config, "deposited", batch["batch_id"])
    deposited = Path(written_file(config, batch["batch_id"]))
    assert deposited.parent.name == "deposited"
    deposited.unlink()

    target = tmp_path / "evidence.zip"
    result = run(config, "evidence", TARGET, "-o", str(target), code=1)
    assert f"warning: passages/{batch['batch_id']}.xml: the file {deposited.name}" in result.stderr
    assert "1 missing (see missing.txt)" in result.stdout
    assert_no_personal_data(result.stdout, result.stderr)
    found = entries(target)
    assert sorted(found) == ["history.json", "missing.txt", "record.json"]
    assert batch["batch_id"] in found["missing.txt"].decode()


def written_file(config: Path, batch_id: str) -> str:
    listed = json.loads(run(config, "batches", "--format", "json").stdout)
    return str(next(b["file"] for b in listed if b["batch_id"] == batch_id))


def test_an_altered_file_gives_its_passage_and_says_so(config: Path, tmp_path: Path) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    run(config, "flush", "--force")
    batch = written_batch(config)
    path = Path(batch["file"])
    path.write_bytes(path.read_bytes().replace(b"</cpf:flux>", b"</cpf:flux>\n"))

    target = tmp_path / "evidence.zip"
    result = run(config, "evidence", TARGET, "-o", str(target), code=1)
    assert "was altered since its release" in result.stderr
    found = entries(target)
    assert passage_ids(found[f"passages/{batch['batch_id']}.xml"]) == [TARGET]
    assert "altered" in found["missing.txt"].decode()


def test_a_report_without_its_kept_copy_is_named(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    run(config, "flush", "--force")
    deposit_and_report(config, shared_dir, tmp_path / "accuse.xml", [], {TARGET: NO_HOLDER})
    shutil.rmtree(config.parent / "var" / "reports")

    target = tmp_path / "evidence.zip"
    result = run(config, "evidence", TARGET, "-o", str(target), code=1)
    assert "reports/accuse.xml: no copy of the report" in result.stderr
    found = entries(target)
    assert "reports/accuse.xml" not in found and "missing.txt" in found


def test_an_unknown_record_is_an_error(config: Path, tmp_path: Path) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    target = tmp_path / "evidence.zip"
    # Exit 2, nothing written: exit 1 says a zip was written with pieces missing.
    result = run(config, "evidence", "NO-SUCH", "-o", str(target), code=2)
    assert "no record NO-SUCH" in result.stderr and "no zip written" in result.stderr
    assert not target.exists()


def test_a_record_never_sent_has_no_passage(config: Path, tmp_path: Path) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    target = tmp_path / "evidence.zip"
    result = run(config, "evidence", TARGET, "-o", str(target))
    assert "0 passage(s), 0 report(s)" in result.stdout
    assert sorted(entries(target)) == ["history.json", "record.json"]


def test_a_whole_file_rejection_names_every_record_of_the_file(
    config: Path, tmp_path: Path, shared_dir: Path
) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    run(config, "flush", "--force")
    batch = written_batch(config)
    report = tmp_path / "rejet.xml"
    report.write_bytes(file_rejected_report(shared_dir, file_name=Path(batch["file"]).name))
    run(config, "import-report", str(report))

    target = tmp_path / "evidence.zip"
    run(config, "evidence", TARGET, "-o", str(target))
    assert entries(target)["reports/rejet.xml"] == report.read_bytes()


def test_an_output_that_cannot_be_written_is_an_error(config: Path, tmp_path: Path) -> None:
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    target = tmp_path / "no-such-folder" / "evidence.zip"
    result = run(config, "evidence", TARGET, "-o", str(target), code=2)
    assert f"cannot write {target}" in result.stderr
    assert not target.parent.exists()


def test_the_temporary_zips_of_killed_runs_are_swept(config: Path, tmp_path: Path) -> None:
    """A run killed (kill -9, the OOM killer) left `.NAME.PID.partial`, personal data in it,
    for ever; the next run with the same process id (a container's command starts with the
    same one) failed with "File exists"."""
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [event_of(TARGET)])))
    target = tmp_path / "evidence.zip"
    same_pid = tmp_path / f".evidence.zip.{os.getpid()}.partial"
    same_pid.write_bytes(b"half a zip")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead = tmp_path / f".evidence.zip.{int(gone.stdout)}.partial"
    dead.write_bytes(b"half a zip")
    os.utime(dead, (time.time() - 3600, time.time() - 3600))
    live = tmp_path / f".evidence.zip.{os.getppid()}.partial"  # a live process's: kept
    live.write_bytes(b"being written")
    run(config, "evidence", TARGET, "-o", str(target))
    assert zipfile.is_zipfile(target)
    assert sorted(target.parent.glob(".*partial")) == [live]
