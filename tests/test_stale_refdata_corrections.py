"""A correction refused only because the reference data was older than its certification is
sent once newer data finds it valid (`revalidate`, or the same correction sent again), and
until then its errors are shown wherever the record is: it was `correction_pending` for ever,
its correction request's deadline running, with nothing saying why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from accrochage.app import Core, build_core
from accrochage.models.deadline import SystemClock
from accrochage.settings import load_settings
from tests.refdata_files import csv_export
from tests.test_cdc_loop import accepted, action_of, flush, only_written
from tests.test_refdata_state import event, refdata_dir, run, write_config, xml_folder
from tests.test_tracker import ingest, record
from tests.test_upgrade_repairs import as_before

__all__ = ["refdata_dir"]
UNKNOWN_TO_THE_OLD_EXPORT = "RS6604"
"""In the 2026 XML export, not in the 2024 CSV one."""


def configured(tmp_path: Path, rncp: Path) -> Path:
    config = write_config(tmp_path, {"rncp": rncp})
    with config.open("a", encoding="utf-8") as out:
        out.write('[schema]\nversion = "1.1.5"\n')
    assert run(config, "refdata", "load").exit_code == 0
    return config


def core_of(config: Path) -> Core:
    return build_core(load_settings(config), SystemClock())


def corrected(record_id: str) -> dict[str, Any]:
    correction = event(record_id, UNKNOWN_TO_THE_OLD_EXPORT)
    correction["event_id"] = f"ev-{record_id}-corrected"
    return correction


def accepted_then_corrected(config: Path, shared_dir: Path, tmp_path: Path, record_id: str) -> None:
    """Accepted by the CDC, then corrected to a code the loaded export does not know yet."""
    core = core_of(config)
    try:
        accepted(core, shared_dir, event(record_id, "RS6117"))
    finally:
        core.close()
    source = tmp_path / f"{record_id}.jsonl"
    source.write_text(json.dumps(corrected(record_id)) + "\n", encoding="utf-8")
    out = run(config, "ingest", str(source)).output
    assert "invalid corrections: 1 (kept beside records in a batch" in out, out
    assert "invalid:  0" in out


def test_revalidate_sends_a_correction_newer_reference_data_finds_valid(
    refdata_dir: Path, shared_dir: Path, tmp_path: Path
) -> None:
    config = configured(tmp_path, csv_export(tmp_path / "csv"))
    accepted_then_corrected(config, shared_dir, tmp_path, "SR-1")

    shown = json.loads(run(config, "show", "SR-1", "--format", "json").output)
    assert shown["status"] == "accepted" and shown["correction_valid"] is False
    assert [e["field"] for e in shown["correction_errors"]] == ["certification.code"]
    text = run(config, "show", "SR-1").output
    assert "correction    error certification.code: RS6604 is not in" in text
    assert "next:         its stored correction has errors (above) and is not sent" in text
    listed = run(config, "outstanding").output
    assert "correction: certification.code: RS6604 is not in" in listed
    (row,) = json.loads(run(config, "outstanding", "--format", "json").output)
    assert row["errors"] == [] and row["correction_errors"] == shown["correction_errors"]
    core = core_of(config)
    try:
        assert not flush(core).cut, "an invalid correction is not sent"
    finally:
        core.close()

    config = configured(tmp_path, xml_folder(refdata_dir, tmp_path / "xml"))
    out = run(config, "revalidate").output
    assert "SR-1 (pix): invalid correction -> valid correction" in out, out
    assert "- error certification.code: RS6604 is not in" in out
    core = core_of(config)
    try:
        detail = record(core, "SR-1")
        assert detail["correction_valid"] is True and detail["correction_errors"] == []
        assert "the stored correction is valid now" in detail["history"][-1]["reason"]
        _, path = only_written(flush(core))
        assert action_of(path) == "SUPPRESSION", "the correction goes out"
    finally:
        core.close()
    assert "0 changed" in run(config, "revalidate").output


def test_the_same_correction_sent_again_is_valid_with_newer_reference_data(
    refdata_dir: Path, shared_dir: Path, tmp_path: Path
) -> None:
    config = configured(tmp_path, csv_export(tmp_path / "csv"))
    accepted_then_corrected(config, shared_dir, tmp_path, "SR-2")

    config = configured(tmp_path, xml_folder(refdata_dir, tmp_path / "xml"))
    core = core_of(config)
    try:
        again = dict(corrected("SR-2"), event_id="ev-SR-2-sent-again")
        (result,) = ingest(core, again)
        assert (result.outcome, result.errors) == ("correction_stored", [])
        assert record(core, "SR-2")["correction_valid"] is True
        _, path = only_written(flush(core))
        assert action_of(path) == "SUPPRESSION"
    finally:
        core.close()


def test_an_upgraded_state_learns_its_corrections_errors_from_revalidate(
    refdata_dir: Path, shared_dir: Path, tmp_path: Path
) -> None:
    """m170 over a state of before it: its stored corrections have no errors recorded;
    `revalidate` finds them, and says so."""
    config = configured(tmp_path, csv_export(tmp_path / "csv"))
    accepted_then_corrected(config, shared_dir, tmp_path, "SR-3")
    as_before(
        config, ("m170_correction_errors",), "ALTER TABLE records DROP COLUMN correction_errors"
    )
    assert run(config, "upgrade", "--no-backup").exit_code == 0
    shown = json.loads(run(config, "show", "SR-3", "--format", "json").output)
    assert shown["correction_valid"] is False and shown["correction_errors"] == []

    out = run(config, "revalidate").output
    assert "SR-3 (pix): invalid correction -> invalid correction" in out, out
    assert "+ error certification.code: RS6604 is not in" in out
    shown = json.loads(run(config, "show", "SR-3", "--format", "json").output)
    assert [e["field"] for e in shown["correction_errors"]] == ["certification.code"]


def test_an_upgraded_state_s_correction_newer_data_made_valid_is_sent(
    refdata_dir: Path, shared_dir: Path, tmp_path: Path
) -> None:
    """Its errors were never recorded (m170 came after it): found valid now, it goes out."""
    config = configured(tmp_path, csv_export(tmp_path / "csv"))
    accepted_then_corrected(config, shared_dir, tmp_path, "SR-4")
    as_before(
        config, ("m170_correction_errors",), "ALTER TABLE records DROP COLUMN correction_errors"
    )
    assert run(config, "upgrade", "--no-backup").exit_code == 0

    config = configured(tmp_path, xml_folder(refdata_dir, tmp_path / "xml"))
    out = run(config, "revalidate").output
    assert "SR-4 (pix): invalid correction -> valid correction" in out, out
    core = core_of(config)
    try:
        _, path = only_written(flush(core))
        assert action_of(path) == "SUPPRESSION"
    finally:
        core.close()
