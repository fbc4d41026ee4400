"""A certification the CDC holds under another idTechnique (SPEC §9's real report answers 1983189
with "l'id technique partenaire 1559735 existe déjà en base"): a SUPPRESSION naming the record's
own id would find nothing there. None is cut; the operator is told, wherever the record shows,
to ask the CDC's support, and records what it did with `support-applied`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import pytest

from accrochage.app import Core, build_core
from accrochage.commands.record_text import support_steps
from accrochage.models.deadline import FixedClock
from accrochage.settings import load_settings
from tests.factories import revoked_event
from tests.test_cdc_loop import V115, _batches, answer, flush, later, make, only_written
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_tracker import (
    ALREADY,
    NOW,
    TODAY,
    batch_row,
    event,
    ingest,
    outstanding,
    passages,
    processed_report,
    record,
    replay,
    write_config,
)

HELD_AS = "1559735"


@pytest.fixture()
def core(tmp_path: Path) -> Iterable[Core]:
    built = make(tmp_path, "1.1.5")
    yield built
    built.close()


def held_elsewhere(core: Core, shared_dir: Path, *others: str) -> None:
    """HE-1 sent beside `others`; the CDC answers HE-1 "existe déjà" under HELD_AS and
    accepts the others."""
    ingest(core, event("HE-1", score="100"), *(event(o, score="100") for o in others))
    (written,) = flush(core).written
    summary = answer(
        core,
        shared_dir,
        written.batch_id,
        ok=others,
        ko={"HE-1": ALREADY.format(rid=HELD_AS)},
    )
    assert sorted(summary.accepted) == sorted(["HE-1", *others])
    (note,) = [n for n in summary.notes if n.startswith("HE-1:")]
    assert f"under idTechnique {HELD_AS}, not HE-1" in note
    assert "none is cut" in note and "accrochage show HE-1" in note


def corrected(core: Core, record_id: str) -> None:
    fixed = replay(event(record_id, score="100"))
    fixed["score"] = "250"
    ingest(core, fixed)


def waiting(core: Core) -> list[dict[str, object]]:
    with core.store.reading() as reader:
        return reader.held_elsewhere()


def test_a_correction_of_a_record_held_elsewhere_cuts_no_suppression(
    core: Core, shared_dir: Path
) -> None:
    held_elsewhere(core, shared_dir, "HE-2")
    assert record(core, "HE-1")["cdc_held_as"] == HELD_AS
    assert record(core, "HE-2")["cdc_held_as"] is None
    assert waiting(core) == [], "nothing to ask the support before a correction"
    corrected(core, "HE-1")
    corrected(core, "HE-2")

    report = flush(core)
    assert [c.action for c in report.cut] == ["SUPPRESSION"]
    _, path = only_written(report)
    assert set(passages(path)) == {"HE-2"}, "only the record held under its own id"
    assert not flush(core).cut, "nor at a later flush"

    listed = {r["record_id"]: r for r in outstanding(core)}
    held = listed["HE-1"]
    assert (held["status"], held["correction_pending"]) == ("accepted", True)
    assert held["cdc_held_as"] == HELD_AS
    assert listed["HE-2"]["cdc_held_as"] is None
    assert waiting(core) == [
        {
            "record_id": "HE-1",
            "certifier": "pix",
            "cdc_held_as": HELD_AS,
            "waits_for": "correction",
        }
    ]

    (refused,) = core.operations.retry(["HE-1"])
    assert not refused.done
    assert f"under idTechnique {HELD_AS}" in refused.message
    assert "support-applied" in refused.message
    assert not flush(core).cut

    (done,) = core.operations.support_applied(["HE-1"], "ticket 12")
    assert done.done, done
    after = record(core, "HE-1")
    assert (after["status"], after["correction_pending"]) == ("accepted", False)
    assert after["content"]["score"] == "250"
    assert after["cdc_held_as"] == HELD_AS, "the CDC still holds it under that id"
    assert "HE-1" not in {r["record_id"] for r in outstanding(core)}
    assert waiting(core) == []


def test_a_revocation_of_a_record_held_elsewhere_waits_for_the_support(
    core: Core, shared_dir: Path
) -> None:
    held_elsewhere(core, shared_dir)
    ingest(core, revoked_event(record_id="HE-1"))
    assert not flush(core).cut
    assert [w["waits_for"] for w in waiting(core)] == ["withdrawal"]
    (done,) = core.operations.support_applied(["HE-1"], "ticket 13")
    assert done.done, done
    after = record(core, "HE-1")
    assert (after["status"], after["cdc_held_as"]) == ("withdrawn", None)
    assert outstanding(core) == [] and waiting(core) == []


def test_existe_deja_under_its_own_id_still_corrects_through_a_suppression(
    core: Core, shared_dir: Path
) -> None:
    ingest(core, event("HE-3", score="100"))
    (written,) = flush(core).written
    answer(core, shared_dir, written.batch_id, ko={"HE-3": ALREADY.format(rid="HE-3")})
    assert record(core, "HE-3")["cdc_held_as"] is None
    corrected(core, "HE-3")
    assert [c.action for c in flush(core).cut] == ["SUPPRESSION"]


def test_the_operator_is_told_to_ask_the_support_on_the_command_line(
    tmp_path: Path, shared_dir: Path
) -> None:
    config = write_config(tmp_path, schema=V115)
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("HC-1")])))
    run(config, "flush", "--force")
    (creation,) = _batches(config)
    report = tmp_path / "r1.xml"
    report.write_bytes(
        processed_report(
            shared_dir,
            file_name=Path(creation["file"]).name,
            id_flux=creation["batch_id"],
            ko={"HC-1": ALREADY.format(rid=HELD_AS)},
        )
    )
    imported = run(config, "import-report", str(report)).stdout
    assert f"under idTechnique {HELD_AS}, not HC-1" in imported
    assert "for the CDC's support" not in run(config, "summary").stdout, "nothing waits yet"
    revocation = revoked_event(record_id="HC-1")
    run(config, "ingest", str(write_jsonl(tmp_path / "b.jsonl", [revocation])))
    assert "cut SUPPRESSION" not in run(config, "flush", "--force").stdout

    table = run(config, "outstanding").stdout
    assert f"CDC holds it as {HELD_AS}: no SUPPRESSION (accrochage show)" in table, table
    (row,) = json.loads(run(config, "outstanding", "--format", "json").stdout)
    assert row["cdc_held_as"] == HELD_AS
    shown = run(config, "show", "HC-1").stdout
    assert f"cdc_held_as   {HELD_AS}" in shown, shown
    assert (
        f"the CDC holds it under idTechnique {HELD_AS}, where no SUPPRESSION naming HC-1 can "
        f"reach: ask the CDC's support to delete the passage idTechnique {HELD_AS}" in shown
    ), shown
    assert 'accrochage support-applied HC-1 --note "<their reference>"' in shown
    summary = run(config, "summary").stdout
    assert "for the CDC's support: 1 accepted record(s)" in summary, summary
    assert f"  HC-1 (held as {HELD_AS}): withdrawal" in summary
    (listed,) = json.loads(run(config, "summary", "--format", "json").stdout)["held_elsewhere"]
    assert listed["record_id"] == "HC-1"
    doctor = run(config, "doctor", code=None)
    assert doctor.exit_code == 1
    assert f"(first: HC-1, held as {HELD_AS})" in doctor.stdout, doctor.stdout

    refused = run(config, "retry", "HC-1", code=None)
    assert refused.exit_code == 1
    assert f"under idTechnique {HELD_AS}" in refused.stdout + refused.stderr
    done = run(config, "support-applied", "HC-1", "--note", "ticket 9").stdout
    assert done.strip() == "HC-1: withdrawn (was accepted)"
    assert "no outstanding record" in run(config, "outstanding").stdout
    assert "for the CDC's support" not in run(config, "summary").stdout


def test_an_upgraded_state_marks_the_records_held_elsewhere(
    tmp_path: Path, shared_dir: Path
) -> None:
    """A state accepted such a record before `cdc_held_as` existed: migration m090 reads the
    id from the CDC's message the record kept."""
    config = write_config(tmp_path, schema=V115)
    built = build_core(load_settings(config), FixedClock(NOW))
    try:
        ingest(built, event("HU-1"), event("HU-2"), event("HU-3"))
        (written,) = flush(built).written
        answer(
            built,
            shared_dir,
            written.batch_id,
            ok=["HU-3"],
            ko={"HU-1": ALREADY.format(rid=HELD_AS), "HU-2": ALREADY.format(rid="HU-2")},
        )
        ingest(built, revoked_event(record_id="HU-3"))
        suppression, _ = only_written(flush(built))
        answer(built, shared_dir, suppression, ko={"HU-3": ALREADY.format(rid="3333")})
        assert record(built, "HU-3")["cdc_reason"] == "other", "a refused SUPPRESSION's class"
    finally:
        built.close()
    with sqlite3.connect(load_settings(config).paths.state) as conn:
        conn.execute("ALTER TABLE records DROP COLUMN cdc_held_as")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm090_held_under_another_id'")
    conn.close()
    built = build_core(load_settings(config), FixedClock(NOW))
    try:
        assert record(built, "HU-1")["cdc_held_as"] == HELD_AS
        assert record(built, "HU-2")["cdc_held_as"] is None
        assert record(built, "HU-3")["cdc_held_as"] == "3333", "its SUPPRESSION refused so"
        assert [o.item for o in built.operations.retry_rejected()] == [], "no loop"
        ingest(built, revoked_event(record_id="HU-1"), revoked_event(record_id="HU-2"))
        report = flush(built)
        _, path = only_written(report)
        assert set(passages(path)) == {"HU-2"}
    finally:
        built.close()


def show_text(core: Core, record_id: str) -> list[str]:
    """`show`'s advice for a record, as the command prints it."""
    with core.store.reading() as reader:
        detail = reader.record_detail(record_id, TODAY)
    assert detail is not None
    return support_steps(detail, core.settings.schema_.version)


def test_an_invalid_correction_of_a_record_held_elsewhere_is_not_for_the_support(
    core: Core, shared_dir: Path
) -> None:
    """The support cannot apply a correction with errors (`support-applied` refuses it):
    the operator is asked for a valid one, and nothing lists the record for the support."""
    held_elsewhere(core, shared_dir)
    broken = replay(event("HE-1", score="100"))
    broken["delivered_on"] = "2026-02-30"
    ingest(core, broken)
    assert not flush(core).cut
    assert waiting(core) == []
    (advice,) = show_text(core, "HE-1")
    assert "the stored correction has errors" in advice and "send a valid corrected" in advice
    (refused,) = core.operations.support_applied(["HE-1"], "ticket 1")
    assert not refused.done
    (retried,) = core.operations.retry(["HE-1"])
    assert not retried.done and "send a valid corrected event" in retried.message, retried
    corrected(core, "HE-1")
    assert [w["record_id"] for w in waiting(core)] == ["HE-1"]
    assert "ask the CDC's support to correct" in show_text(core, "HE-1")[0]


def test_support_applied_answers_the_open_correction_request(core: Core, shared_dir: Path) -> None:
    held_elsewhere(core, shared_dir)
    request = core.corrections.add("HE-1", received_on=TODAY).request.request_id
    later(core)
    corrected(core, "HE-1")
    (done,) = core.operations.support_applied(["HE-1"], "ticket 14")
    assert done.done and f"correction request {request} closed" in done.message, done
    (row,) = [r for r in core.corrections.list(open_only=False) if r["request_id"] == request]
    assert row["status"] == "corrected", row
    assert "ticket 14" in row["answer"]["text"]
    assert outstanding(core) == []


def test_a_revocation_of_a_held_record_says_who_withdraws_it(core: Core, shared_dir: Path) -> None:
    held_elsewhere(core, shared_dir)
    ingest(core, revoked_event(record_id="HE-1"))
    reason = record(core, "HE-1")["history"][-1]["reason"]
    assert reason.endswith(f"flagged for the CDC's support (it holds it as {HELD_AS})"), reason


def test_a_suppression_cut_before_the_upgrade_is_superseded(core: Core, shared_dir: Path) -> None:
    """A state upgraded with a SUPPRESSION already written for such a record (the version
    before cut it): the file, never deposited, is superseded at the next flush and its other
    record cut again; the held record waits for the CDC's support."""
    held_elsewhere(core, shared_dir, "HE-2")
    state = core.settings.paths.state
    with sqlite3.connect(state) as conn:  # as the version before this one saw it
        conn.execute("UPDATE records SET cdc_held_as = NULL WHERE record_id = 'HE-1'")
    conn.close()
    corrected(core, "HE-1")
    corrected(core, "HE-2")
    old, path = only_written(flush(core))
    assert set(passages(path)) == {"HE-1", "HE-2"}
    with sqlite3.connect(state) as conn:  # what m090 reads back from the kept message
        conn.execute("UPDATE records SET cdc_held_as = ? WHERE record_id = 'HE-1'", (HELD_AS,))
    conn.close()
    assert waiting(core) == [], "in flight: its file comes first"
    assert show_text(core, "HE-1") == []

    report = flush(core)
    again, path = only_written(report)
    assert again != old and set(passages(path)) == {"HE-2"}
    assert batch_row(core, old)["state"] == "superseded"
    assert [w["record_id"] for w in waiting(core)] == ["HE-1"]
    assert "ask the CDC's support to correct" in show_text(core, "HE-1")[0]


def test_a_suppression_refused_under_another_id_waits_for_the_support(
    core: Core, shared_dir: Path
) -> None:
    """A SUPPRESSION the CDC refuses saying it holds the certification under another id would
    be refused again: the record is marked, `retry --all-rejected` leaves it, the import
    sends the operator to the support."""
    ingest(core, event("HS-1"), event("HS-2"), event("HS-3", score="100"))
    (written,) = flush(core).written
    answer(core, shared_dir, written.batch_id, ok=["HS-1", "HS-2", "HS-3"])
    ingest(core, revoked_event(record_id="HS-1"), revoked_event(record_id="HS-2"))
    corrected(core, "HS-3")
    suppression, _ = only_written(flush(core))
    summary = answer(
        core,
        shared_dir,
        suppression,
        ko={
            "HS-1": ALREADY.format(rid=HELD_AS),
            "HS-2": "Erreur technique",
            "HS-3": ALREADY.format(rid="2222"),
        },
    )
    assert sorted(summary.rejected) == ["HS-1", "HS-2", "HS-3"]
    held = {r["record_id"]: r["cdc_held_as"] for r in summary.rejections}
    assert held == {"HS-1": HELD_AS, "HS-2": None, "HS-3": "2222"}
    assert any(n.startswith("HS-1:") and "none is cut" in n for n in summary.notes)
    assert [w["record_id"] for w in waiting(core)] == ["HS-1", "HS-3"]
    reason = record(core, "HS-1")["history"][-1]["reason"]
    assert "retry" not in reason and f"it holds it as {HELD_AS}" in reason, reason
    outcomes = core.operations.retry_rejected()
    assert [(o.item, o.done) for o in outcomes] == [("HS-2", True)]
    revoked, fixed = core.operations.support_applied(["HS-1", "HS-3"], "ticket 15")
    assert (revoked.done, revoked.message) == (True, "withdrawn (was accepted)"), revoked
    assert fixed.done and "its correction is the content the CDC holds now" in fixed.message
    assert record(core, "HS-1")["status"] == "withdrawn"
    after = record(core, "HS-3")
    assert (after["status"], after["suppression_rejected"]) == ("accepted", False)
    assert {r["record_id"] for r in outstanding(core)} == {"HS-2"}, "its SUPPRESSION cut again"


def test_a_later_report_naming_another_id_for_an_accepted_record_changes_nothing(
    core: Core, shared_dir: Path
) -> None:
    """A second report on a file (another idTraitement) answering an accepted record with
    "existe déjà" under another id: the record stays as the first report made it, and the
    import says so instead of promising what it does not do; nor does it call the records
    that report settled "not mentioned"."""
    ingest(core, event("HL-1", score="100"), event("HL-2", score="100"))
    (written,) = flush(core).written
    answer(core, shared_dir, written.batch_id, ok=["HL-1", "HL-2"])
    batch = batch_row(core, written.batch_id)
    data = processed_report(
        shared_dir,
        file_name=batch["file_name"],
        id_flux=written.batch_id,
        ko={"HL-1": ALREADY.format(rid="666")},
        id_traitement="7777",
    )
    summary = core.feedback.import_report_bytes(data, "second.xml")
    (note,) = [n for n in summary.notes if n.startswith("HL-1:")]
    assert "stays as it was (accepted)" in note and "none is cut" not in note, note
    assert summary.not_mentioned == []
    assert record(core, "HL-1")["cdc_held_as"] is None
    corrected(core, "HL-1")
    assert [c.action for c in flush(core).cut] == ["SUPPRESSION"]
