"""The CDC loop of schema 1.1.5 (CONTRACT §9): suppressions, corrections after acceptance,
superseded files, reports on earlier batches, rejection triage."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import sqlite3
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from accrochage.app import Core, build_core
from accrochage.commands import flush as flush_command
from accrochage.commands.reports import echo_rejections
from accrochage.models.deadline import FixedClock
from accrochage.settings import load_settings
from accrochage.sinks.profiles import profile_for
from accrochage.state import queries
from accrochage.streams import report_outcomes
from accrochage.streams.flush_report import FlushReport
from tests.factories import HOLDER_NIR, revoked_event
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_outbox_moves import accrochage, ok
from tests.test_tracker import (
    ALREADY,
    NO_HOLDER,
    NOW,
    NS,
    TODAY,
    batch_row,
    event,
    file_rejected_report,
    ingest,
    ingest_one,
    outstanding,
    passages,
    processed_report,
    record,
    replay,
    write_config,
)

V115 = {"version": "1.1.5"}


def make(tmp_path: Path, version: str) -> Core:
    config = write_config(tmp_path, schema={"version": version})
    return build_core(load_settings(config), FixedClock(NOW))


@pytest.fixture()
def core(tmp_path: Path) -> Iterable[Core]:
    built = make(tmp_path, "1.1.5")
    yield built
    built.close()


@pytest.fixture()
def core112(tmp_path: Path) -> Iterable[Core]:
    built = make(tmp_path, "1.1.2")
    yield built
    built.close()


def later(core: Core, minutes: int = 5) -> None:
    assert isinstance(core.clock, FixedClock)
    core.clock.advance(timedelta(minutes=minutes))


def flush(core: Core) -> FlushReport:
    report = core.flusher.flush(force=True)
    assert report.ok, report.failed
    return report


def answer(
    core: Core,
    shared_dir: Path,
    batch_id: str,
    *,
    ok: Iterable[str] = (),
    ko: dict[str, str] | None = None,
) -> Any:
    batch = batch_row(core, batch_id)
    data = processed_report(
        shared_dir, file_name=batch["file_name"], id_flux=batch_id, ok=ok, ko=ko
    )
    return core.feedback.import_report_bytes(data, f"report-{batch_id[:8]}.xml")


def deposited(core: Core, *events: dict[str, Any]) -> str:
    """The events (if any) ingested, cut into one CREATION file, marked uploaded: its batch."""
    ingest(core, *events)
    batch, _ = only_written(flush(core))
    core.operations.deposited([batch])
    return batch


def accepted(core: Core, shared_dir: Path, *events: dict[str, Any]) -> str:
    """The events sent in one CREATION file, which the CDC accepted."""
    ingest(core, *events)
    report = flush(core)
    (written,) = report.written
    answer(core, shared_dir, written.batch_id, ok=[e["record_id"] for e in events])
    for one in events:
        assert record(core, one["record_id"])["status"] == "accepted"
    return written.batch_id


def action_of(path: Path) -> str | None:
    return etree.parse(str(path)).getroot().findtext("cpf:action", namespaces=NS)


def assert_bundled_valid(path: Path, version: str = "1.1.5") -> None:
    schema = etree.XMLSchema(etree.parse(str(profile_for(version).bundled_xsd)))
    doc = etree.parse(str(path))
    assert schema.validate(doc), schema.error_log


def only_written(report: FlushReport) -> tuple[str, Path]:
    (written,) = report.written
    return written.batch_id, written.path


# --- the whole life of a corrected record ----------------------------------------------------


def test_a_correction_after_acceptance_goes_out_as_suppression_then_creation(
    core: Core, shared_dir: Path
) -> None:
    original = event("CL-1", score="100")
    other = event("CL-2")
    first = accepted(core, shared_dir, original, other)
    fixed = replay(original)
    fixed["score"] = "250"
    assert ingest_one(core, fixed).outcome == "correction_stored"

    listed = {r["record_id"]: r for r in outstanding(core)}
    assert set(listed) == {"CL-1"}, "accepted and corrected: outstanding until sent again"
    assert listed["CL-1"]["status"] == "accepted"
    assert listed["CL-1"]["correction_pending"] is True
    assert listed["CL-1"]["deadline"] is None, "accepted on time: never at risk again"

    report = flush(core)
    assert [c.action for c in report.cut] == ["SUPPRESSION"]
    suppression, path = only_written(report)
    assert re.fullmatch(rf"03VML243_pix_\d{{8}}T\d{{6}}_{suppression}\.xml", path.name)
    assert action_of(path) == "SUPPRESSION"
    assert_bundled_valid(path)
    sent = passages(
        batch_row(core, first)["file_path"] and Path(batch_row(core, first)["file_path"])
    )
    repeated = passages(path)
    assert set(repeated) == {"CL-1"}
    assert etree.tostring(repeated["CL-1"]) == etree.tostring(sent["CL-1"]), "as it was sent"
    detail = record(core, "CL-1")
    assert (detail["status"], detail["batch_id"]) == ("accepted", suppression)
    assert not flush(core).cut, "a suppression in flight is not cut twice"
    (uploaded,) = core.operations.deposited([suppression])
    assert uploaded.done and "(a SUPPRESSION: its records wait for the report)" in str(uploaded)
    *_, sent_entry = record(core, "CL-1")["history"]
    assert (sent_entry["reason"], sent_entry["batch_id"]) == (
        "SUPPRESSION file deposited on the CDC portal",
        suppression,
    ), "the evidence tells when the withdrawal of the old content went"
    assert sent_entry["from_status"] == sent_entry["to_status"] == "accepted"
    (again,) = core.operations.deposited([suppression])
    assert "already recorded" in str(again)
    assert record(core, "CL-1")["history"][-1] == sent_entry, "said once"

    answer(core, shared_dir, suppression, ok=["CL-1"])
    detail = record(core, "CL-1")
    assert detail["status"] == "pending"
    assert detail["correction_pending"] is False
    assert detail["version"] == 2
    assert detail["deadline"] is None, "no open correction request: no deadline"

    creation, path = only_written(flush(core))
    assert action_of(path) == "CREATION"
    assert_bundled_valid(path)
    found = passages(path)
    assert set(found) == {"CL-1"}
    assert found["CL-1"].findtext("cpf:scoring", namespaces=NS) == "250"
    answer(core, shared_dir, creation, ok=["CL-1"])
    assert record(core, "CL-1")["status"] == "accepted"
    assert outstanding(core) == []
    reasons = [h["reason"] for h in record(core, "CL-1")["history"]]
    assert any(r.startswith("SUPPRESSION cut (corrected)") for r in reasons)
    assert any(r.startswith("SUPPRESSION accepted by the CDC") for r in reasons)


def test_a_revocation_s_history_says_how_the_record_will_leave(
    core: Core, shared_dir: Path
) -> None:
    """Only an accepted record goes out as a SUPPRESSION: one whose file is written and not
    deposited is withdrawn when that file is superseded, one whose file is deposited waits for
    its report. The history the operator reads (`show`) says which, not a SUPPRESSION for all."""
    accepted(core, shared_dir, event("RH-1"))
    deposited(core, event("RH-2"))
    ingest(core, event("RH-3"))
    flush(core)
    ingest(core, *(revoked_event(record_id=r) for r in ("RH-1", "RH-2", "RH-3")))

    def last_reason(record_id: str) -> str:
        return str(record(core, record_id)["history"][-1]["reason"])

    assert last_reason("RH-1").endswith("flagged for SUPPRESSION")
    assert "SUPPRESSION if the report accepts it" in last_reason("RH-2")
    assert "withdrawn if the CDC's report refuses" in last_reason("RH-2")
    assert "superseded at the next flush" in last_reason("RH-3")
    assert "SUPPRESSION" not in last_reason("RH-3")
    report = flush(core)
    assert report.superseded and record(core, "RH-3")["status"] == "withdrawn"


def test_taking_a_correction_back_supersedes_its_suppression_never_deposited(
    core: Core, shared_dir: Path
) -> None:
    """The platform sends again the content the CDC holds while the SUPPRESSION of its
    correction is written and not deposited: that file would have deleted the holder's
    passage only to create it again. It is superseded; the other record it held is cut
    into a SUPPRESSION of its own; nothing is owed for the first."""
    kept, other = event("TB-1", score="100"), event("TB-2", score="100")
    accepted(core, shared_dir, kept, other)
    for original in (kept, other):
        fixed = replay(original)
        fixed["score"] = "250"
        assert ingest_one(core, fixed).outcome == "correction_stored"
    suppression, path = only_written(flush(core))
    assert set(passages(path)) == {"TB-1", "TB-2"}
    ingest_one(core, replay(kept))

    report = flush(core)
    assert report.superseded == [suppression]
    again, new_path = only_written(report)
    assert action_of(new_path) == "SUPPRESSION" and set(passages(new_path)) == {"TB-2"}
    assert not path.exists() and batch_row(core, suppression)["state"] == "superseded"
    detail = record(core, "TB-1")
    assert (detail["status"], detail["correction_pending"]) == ("accepted", False)
    assert detail["batch_id"] not in (None, suppression, again), "the batch the CDC accepted"
    assert "its correction is dropped" in detail["history"][-1]["reason"]
    assert [r["record_id"] for r in outstanding(core)] == ["TB-2"]
    assert not flush(core).cut, "nothing left to withdraw for TB-1"

    answer(core, shared_dir, again, ok=["TB-2"])
    assert record(core, "TB-1")["status"] == "accepted"
    assert record(core, "TB-2")["status"] == "pending"


def test_taking_a_correction_back_after_its_suppression_left_sends_it_again(
    core: Core, shared_dir: Path
) -> None:
    """Once the SUPPRESSION was deposited the CDC may delete the passage: the content sent
    again is then what it must receive after the deletion (unchanged behaviour)."""
    kept = event("TD-1", score="100")
    accepted(core, shared_dir, kept)
    fixed = replay(kept)
    fixed["score"] = "250"
    ingest_one(core, fixed)
    suppression, _ = only_written(flush(core))
    core.operations.deposited([suppression])
    assert ingest_one(core, replay(kept)).outcome == "correction_stored"
    assert not flush(core).superseded
    answer(core, shared_dir, suppression, ok=["TD-1"])
    _, path = only_written(flush(core))
    assert passages(path)["TD-1"].findtext("cpf:scoring", namespaces=NS) == "100"


def test_under_112_a_correction_after_acceptance_waits_flagged(
    core112: Core, shared_dir: Path
) -> None:
    original = event("OLD-1", score="100")
    accepted(core112, shared_dir, original)
    fixed = replay(original)
    fixed["score"] = "250"
    ingest(core112, fixed)
    assert not flush(core112).cut, "1.1.2 has no SUPPRESSION"
    (row,) = outstanding(core112)
    assert (row["status"], row["correction_pending"]) == ("accepted", True)


def test_under_112_the_support_settles_a_corrected_or_revoked_record(
    core112: Core, shared_dir: Path
) -> None:
    """1.1.2 cannot send a SUPPRESSION: once the CDC's support corrected or deleted the
    passage, the operator records it; before, only SQL could settle the record."""
    corrected, revoked = event("SU-1", score="100"), event("SU-2")
    accepted(core112, shared_dir, corrected, revoked, event("SU-3"))
    fixed = replay(corrected)
    fixed["score"] = "250"
    ingest(core112, fixed, revoked_event(record_id="SU-2"))
    assert {r["record_id"] for r in outstanding(core112)} == {"SU-1", "SU-2"}

    outcomes = core112.operations.support_applied(["SU-1", "SU-2", "SU-3", "SU-9"], "ticket 42")
    assert [(o.item, o.done) for o in outcomes] == [
        ("SU-1", True),
        ("SU-2", True),
        ("SU-3", False),
        ("SU-9", False),
    ]
    assert "waits for no correction or withdrawal" in outcomes[2].message
    assert outstanding(core112) == []
    one = record(core112, "SU-1")
    assert (one["status"], one["version"], one["correction_pending"]) == ("accepted", 2, False)
    assert one["content"]["score"] == "250", "the content the CDC holds now"
    assert one["history"][-1]["reason"] == "correction applied by the CDC's support: ticket 42"
    two = record(core112, "SU-2")
    assert (two["status"], two["revocation_pending"]) == ("withdrawn", False)
    assert not flush(core112).cut


def test_under_115_a_record_whose_suppression_is_in_flight_is_not_settled_by_hand(
    core: Core, shared_dir: Path
) -> None:
    accepted(core, shared_dir, event("SU-5"))
    ingest(core, revoked_event(record_id="SU-5"))
    suppression, _ = only_written(flush(core))
    (refused,) = core.operations.support_applied(["SU-5"], "ticket 7")
    assert not refused.done and f"SUPPRESSION in batch {suppression}" in refused.message
    assert record(core, "SU-5")["revocation_pending"] is True


def test_a_withdrawal_not_due_yet_is_said_with_when_it_is(
    core: Core, shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A revocation of an accepted record, then `flush`: it said "nothing due" and nothing
    of the SUPPRESSION waiting for `max_delay`, nor of `--force`, as it says of pending
    records."""
    accepted(core, shared_dir, event("WD-1"))
    ingest(core, revoked_event(record_id="WD-1"))
    report = core.flusher.flush()
    assert report.cut == [] and report.written == []
    (waiting,) = report.not_due
    assert (waiting.certifier, waiting.pending) == ("pix", 1)
    assert waiting.waiting == "record(s) to withdraw (SUPPRESSION)"
    assert waiting.due_at == core.clock.now().replace(microsecond=0) + timedelta(minutes=15)
    flush_command._not_due(report)
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith("  pix: 1 record(s) to withdraw (SUPPRESSION), due at "), said
    assert said[-1] == "  `accrochage flush --force` cuts them now"


def test_show_says_what_to_ask_the_support_under_112(tmp_path: Path, shared_dir: Path) -> None:
    config = write_config(tmp_path, schema={"version": "1.1.2"})
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("SH-1")])))
    run(config, "flush", "--force")
    (creation,) = _batches(config)
    run(config, "import-report", str(_report(tmp_path, shared_dir, creation, "r1.xml", "SH-1")))
    assert "support" not in run(config, "show", "SH-1").stdout, "nothing to ask yet"
    revocation = revoked_event(record_id="SH-1")
    run(config, "ingest", str(write_jsonl(tmp_path / "b.jsonl", [revocation])))
    shown = run(config, "show", "SH-1").stdout
    assert "ask the CDC's support to delete the passage idTechnique SH-1" in shown, shown
    assert Path(creation["file"]).name in shown
    assert 'accrochage support-applied SH-1 --note "<their reference>"' in shown
    assert "support.certificateurs@caissedesdepots.fr" in shown, "whom to ask, said"
    refused = run(config, "support-applied", "SH-1", "--note", " ", code=2)
    assert "--note must say" in refused.stderr
    done = run(config, "support-applied", "SH-1", "--note", "ticket 9").stdout
    assert done.strip() == "SH-1: withdrawn (was accepted)"
    assert "no outstanding record" in run(config, "outstanding").stdout


@pytest.mark.parametrize(
    ("sent_with", "branch"), [("1.1.2", "titulaire"), ("1.1.5", "identifiantNational")]
)
def test_a_suppression_repeats_the_identity_branch_it_was_sent_with(
    tmp_path: Path, shared_dir: Path, sent_with: str, branch: str
) -> None:
    """A holder with a NIR: sent under 1.1.2 as `titulaire`, under 1.1.5 as
    `identifiantNational`; withdrawn under 1.1.5, the passage is repeated as it was sent."""
    old = make(tmp_path, sent_with)
    holder_event = event("NIR-1")
    holder_event["holder"]["nir"] = HOLDER_NIR
    first = accepted(old, shared_dir, holder_event)
    sent = passages(Path(batch_row(old, first)["file_path"]))["NIR-1"]
    old.close()
    core = make(tmp_path, "1.1.5")
    try:
        ingest(core, revoked_event(record_id="NIR-1"))
        _, path = only_written(flush(core))
        assert_bundled_valid(path)
        (passage,) = passages(path).values()
        identity = passage.find("cpf:identificationTitulaire", namespaces=NS)
        assert identity is not None
        assert [etree.QName(c).localname for c in identity] == [branch]
        assert etree.tostring(passage) == etree.tostring(sent)
    finally:
        core.close()


# --- revocations ------------------------------------------------------------------------------


def test_a_revocation_after_acceptance_withdraws_through_a_suppression(
    core: Core, shared_dir: Path
) -> None:
    accepted(core, shared_dir, event("RV-1"))
    assert ingest_one(core, revoked_event(record_id="RV-1")).outcome == "revocation_flagged"
    (row,) = outstanding(core)
    assert (row["status"], row["revocation_pending"]) == ("accepted", True)
    report = flush(core)
    assert [(c.action, c.passages) for c in report.cut] == [("SUPPRESSION", 1)]
    suppression, _ = only_written(report)
    answer(core, shared_dir, suppression, ok=["RV-1"])
    detail = record(core, "RV-1")
    assert detail["status"] == "withdrawn"
    assert detail["revocation_pending"] is False
    assert outstanding(core) == []
    assert not flush(core).cut


def test_a_forced_flush_of_one_certifier_cuts_that_certifier_s_suppressions_only(
    core: Core, shared_dir: Path
) -> None:
    """`flush --force --certifier pix` forced school's SUPPRESSION out too, or none."""
    pix, school = event("FS-1"), event("FS-2", certifier="school")
    accepted(core, shared_dir, pix)
    accepted(core, shared_dir, school)
    for delivered in (pix, school):
        revocation = revoked_event(
            record_id=delivered["record_id"],
            event_id=f"revoke-{delivered['record_id']}",
            certifier=delivered["certifier"],
            certification=delivered["certification"],
        )
        assert ingest_one(core, revocation).outcome == "revocation_flagged"
    report = core.flusher.flush(force=frozenset({"pix"}))
    assert [(c.action, c.certifier, c.reason) for c in report.cut] == [
        ("SUPPRESSION", "pix", "forced")
    ]
    school_cut = core.flusher.flush(force=frozenset({"school"}))
    assert [(c.action, c.certifier) for c in school_cut.cut] == [("SUPPRESSION", "school")]


def test_a_record_revoked_while_its_file_waits_for_its_report(core: Core, shared_dir: Path) -> None:
    creation = deposited(core, event("RW-1"))
    ingest(core, revoked_event(record_id="RW-1"))
    assert not flush(core).cut, "deposited: it waits for its report"
    answer(core, shared_dir, creation, ok=["RW-1"])
    detail = record(core, "RW-1")
    assert (detail["status"], detail["revocation_pending"]) == ("accepted", True)
    suppression, _ = only_written(flush(core))
    answer(core, shared_dir, suppression, ok=["RW-1"])
    assert record(core, "RW-1")["status"] == "withdrawn"


def test_corrected_and_revoked_in_flight_then_rejected_is_withdrawn_for_good(
    core: Core, shared_dir: Path
) -> None:
    """The CDC rejects a record whose correction and revocation both came while its file
    waited: it is withdrawn, with nothing left to send or to answer."""
    first = event("CW-1", score="100")
    creation = deposited(core, first)
    fixed = replay(first)
    fixed["score"] = "200"
    ingest(core, fixed, revoked_event(record_id="CW-1"))
    assert record(core, "CW-1")["correction_pending"] is True
    answer(core, shared_dir, creation, ko={"CW-1": "Erreur technique"})
    detail = record(core, "CW-1")
    assert (detail["status"], detail["correction_pending"]) == ("withdrawn", False)
    assert detail["revocation_pending"] is False
    assert outstanding(core) == []
    assert outstanding(core, as_of=TODAY + timedelta(days=400), overdue=True) == []
    assert not flush(core).cut, "nothing to send for a withdrawn record"


def test_a_correction_after_the_revocation_of_an_accepted_record_is_sent(
    core: Core, shared_dir: Path
) -> None:
    """Revoked, then delivered again with another content (the platform's way back, as for a
    record never sent): once the CDC deleted the passage, the new content goes out; the
    revocation replayed changes nothing."""
    original = event("RC-1", score="100")
    accepted(core, shared_dir, original)
    revocation = revoked_event(record_id="RC-1")
    fixed = replay(original)
    fixed["score"] = "200"
    ingest(core, revocation, fixed)
    detail = record(core, "RC-1")
    assert (detail["revocation_pending"], detail["correction_pending"]) == (False, True)
    later(core, 20)
    suppression, _ = only_written(flush(core))
    answer(core, shared_dir, suppression, ok=["RC-1"])
    assert record(core, "RC-1")["status"] == "pending"
    assert ingest_one(core, revocation).outcome == "unchanged"
    later(core, 20)
    _, path = only_written(flush(core))
    assert action_of(path) == "CREATION"
    assert passages(path)["RC-1"].findtext("cpf:scoring", namespaces=NS) == "200"


def test_a_correction_after_a_revocation_in_a_file_not_deposited_is_cut_again(
    core: Core,
) -> None:
    """The same order while the record's file waits to be uploaded: the file is superseded
    and the record cut again with its new content, not withdrawn."""
    original = event("RC-2", score="100")
    ingest(core, original)
    flush(core)
    fixed = replay(original)
    fixed["score"] = "200"
    ingest(core, revoked_event(record_id="RC-2"), fixed)
    later(core, 20)
    _, path = only_written(flush(core))
    assert record(core, "RC-2")["status"] == "batched"
    assert passages(path)["RC-2"].findtext("cpf:scoring", namespaces=NS) == "200"


def test_a_correction_with_errors_after_a_revocation_leaves_it_standing(
    core: Core, shared_dir: Path
) -> None:
    """An event with errors is no way back: it could never be sent, so undoing the revocation
    left the CDC holding the revoked passage with nothing cut to delete it."""
    original = event("RC-3")
    accepted(core, shared_dir, original)
    ingest(core, revoked_event(record_id="RC-3"))
    broken = replay(original)
    broken["delivered_on"] = "2026-02-30"
    assert ingest_one(core, broken).outcome == "correction_stored"
    assert record(core, "RC-3")["revocation_pending"] is True
    later(core, 20)
    suppression, path = only_written(flush(core))
    assert action_of(path) == "SUPPRESSION"
    answer(core, shared_dir, suppression, ok=["RC-3"])
    assert record(core, "RC-3")["status"] == "withdrawn"


def test_an_upgraded_state_clears_a_withdrawn_record_left_with_a_correction(
    tmp_path: Path,
) -> None:
    """A state where that record was withdrawn with its correction still flagged (before the
    fix) is mended by migration m060 at the next command."""
    config = write_config(tmp_path, schema=V115)
    core = build_core(load_settings(config), FixedClock(NOW))
    try:
        ingest(core, event("CW-2"))
        with core.store.transaction() as tx:
            (stuck,) = tx.records(["CW-2"]).values()
    finally:
        core.close()
    with sqlite3.connect(load_settings(config).paths.state) as conn:
        conn.execute(
            "UPDATE records SET status = 'withdrawn', correction_version = 2, "
            "correction_valid = 1, outstanding = 1 WHERE record_id = ?",
            (stuck.record_id,),
        )
        conn.execute(
            "DELETE FROM _sqlite_migrations WHERE name = 'm060_withdrawn_without_correction'"
        )
    conn.close()
    core = build_core(load_settings(config), FixedClock(NOW))
    try:
        detail = record(core, "CW-2")
        assert (detail["status"], detail["correction_pending"]) == ("withdrawn", False)
        assert outstanding(core) == []
    finally:
        core.close()


def test_a_file_s_report_counts_are_those_of_every_report_imported_for_it(
    core: Core, shared_dir: Path
) -> None:
    """A first report rejects two records and leaves seven out; a second (another processing
    of the same file) accepts those seven: the file's answer is 8 accepted, 2 rejected, not
    the second report's 7 and 0."""
    ids = [f"RC-{n}" for n in range(10)]
    ingest(core, *(event(rid) for rid in ids))
    batch, _ = only_written(flush(core))
    first = processed_report(
        shared_dir,
        file_name=batch_row(core, batch)["file_name"],
        id_flux=batch,
        ok=ids[:1],
        ko={ids[1]: "Erreur technique", ids[2]: "Erreur technique"},
        id_traitement="1001",
    )
    core.feedback.import_report_bytes(first, "first.xml")
    second = processed_report(
        shared_dir,
        file_name=batch_row(core, batch)["file_name"],
        id_flux=batch,
        ok=ids[3:],
        id_traitement="1002",
    )
    core.feedback.import_report_bytes(second, "second.xml")
    with core.store.reading() as reader:
        (listed,) = [b for b in reader.batches() if b["batch_id"] == batch]
    assert (listed["report"]["accepted"], listed["report"]["rejected"]) == (8, 2)
    statuses = [record(core, rid)["status"] for rid in ids]
    assert (statuses.count("accepted"), statuses.count("rejected")) == (8, 2)


def test_a_report_applied_by_id_names_the_suppression_a_record_waits_for(
    core: Core, shared_dir: Path
) -> None:
    """A report of unknown origin applied by idTechnique cannot tell whether its OK answers
    the record's SUPPRESSION in flight or the CREATION accepted before: it is not applied, and
    the import says which file's report to import, not that the record was settled."""
    accepted(core, shared_dir, event("BI-1", score="100"))
    ingest(core, dict(event("BI-1", score="200")))
    suppression, _ = only_written(flush(core))
    core.operations.deposited([suppression])
    foreign = processed_report(
        shared_dir, file_name="elsewhere.xml", id_flux=None, ok=["BI-1"], id_traitement="77"
    )
    summary = core.feedback.import_report_bytes(foreign, "foreign.xml", by_id=True)
    assert summary.waiting == ["BI-1"] and summary.accepted == []
    (note,) = [n for n in summary.notes if n.startswith("BI-1")]
    assert f"--batch {suppression}" in note
    assert record(core, "BI-1")["correction_pending"] is True, "left for its own report"


def test_a_report_applied_by_id_names_no_suppression_the_cdc_refused(
    core: Core, shared_dir: Path
) -> None:
    """Once the CDC refused a record's SUPPRESSION, nothing is in flight: a report applied by
    idTechnique told the operator to import that file's report, already imported."""
    accepted(core, shared_dir, event("BR-1", score="100"))
    ingest(core, dict(event("BR-1", score="200")))
    suppression, _ = only_written(flush(core))
    answer(core, shared_dir, suppression, ko={"BR-1": "Erreur technique"})
    assert record(core, "BR-1")["suppression_rejected"] is True
    foreign = processed_report(
        shared_dir, file_name="elsewhere.xml", id_flux=None, ok=["BR-1"], id_traitement="78"
    )
    summary = core.feedback.import_report_bytes(foreign, "foreign.xml", by_id=True)
    assert summary.waiting == [], summary
    assert not [n for n in summary.notes if f"--batch {suppression}" in n], summary.notes


# --- a suppression the CDC refuses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reason"),
    [("Erreur technique", "other"), (ALREADY.format(rid="SR-1"), "other")],
)
def test_a_refused_suppression_leaves_the_record_accepted_until_retried(
    core: Core, shared_dir: Path, message: str, reason: str
) -> None:
    accepted(core, shared_dir, event("SR-1"))
    ingest(core, revoked_event(record_id="SR-1"))
    suppression, _ = only_written(flush(core))
    summary = answer(core, shared_dir, suppression, ko={"SR-1": message})
    assert (summary.accepted, summary.rejected) == ([], ["SR-1"]), "told as refused"
    assert [r["cdc_reason"] for r in summary.rejections] == [reason]
    with core.store.reading() as reader:
        (listed,) = [b for b in reader.batches() if b["batch_id"] == suppression]
    assert (listed["report"]["accepted"], listed["report"]["rejected"]) == (0, 1)
    (row,) = outstanding(core)
    assert row["status"] == "accepted"
    assert row["suppression_rejected"] is True
    assert (row["cdc_message"], row["cdc_reason"]) == (message, reason)
    assert not flush(core).cut, "a refused suppression waits for the operator"

    (outcome,) = core.operations.retry(["SR-1"])
    assert outcome.done, outcome
    assert "SUPPRESSION is cut again" in outcome.message, outcome
    again, path = only_written(flush(core))
    assert again != suppression and action_of(path) == "SUPPRESSION"
    answer(core, shared_dir, again, ok=["SR-1"])
    assert record(core, "SR-1")["status"] == "withdrawn"


def test_a_suppression_file_rejected_whole_keeps_its_records_accepted(
    core: Core, shared_dir: Path
) -> None:
    accepted(core, shared_dir, event("SF-1"))
    ingest(core, revoked_event(record_id="SF-1"))
    suppression, _ = only_written(flush(core))
    name = batch_row(core, suppression)["file_name"]
    core.feedback.import_report_bytes(file_rejected_report(shared_dir, file_name=name), "k.xml")
    detail = record(core, "SF-1")
    assert detail["status"] == "accepted"
    assert detail["suppression_rejected"] is True
    assert detail["cdc_reason"] == "file_rejected"
    (outcome,) = core.operations.retry_rejected(batch_ref=name)
    assert "SUPPRESSION is cut again" in outcome.message, outcome
    again, path = only_written(flush(core))
    assert again != suppression and action_of(path) == "SUPPRESSION"


def test_retrying_every_rejected_record_cuts_a_refused_suppression_again(
    core: Core, shared_dir: Path
) -> None:
    """`retry --all-rejected` (and `--batch`) answered "already accepted" for a record whose
    SUPPRESSION the CDC refused, and nothing was cut: only `retry ID` worked."""
    accepted(core, shared_dir, event("SA-1"))
    ingest(core, revoked_event(record_id="SA-1"))
    suppression, _ = only_written(flush(core))
    answer(core, shared_dir, suppression, ko={"SA-1": "Erreur technique"})
    (outcome,) = core.operations.retry_rejected()
    assert (outcome.done, outcome.message) == (
        True,
        "its SUPPRESSION is cut again with the next file (`flush --force`: now)",
    )
    again, path = only_written(flush(core))
    assert again != suppression and action_of(path) == "SUPPRESSION"


# --- corrections while the CREATION file is written but not deposited -------------------------


def test_a_correction_supersedes_a_written_file_never_deposited(
    core: Core, shared_dir: Path
) -> None:
    first = event("SU-1", score="100")
    ingest(core, first, event("SU-2"), event("SU-3"))
    old_batch, old_path = only_written(flush(core))
    fixed = replay(first)
    fixed["score"] = "300"
    ingest(core, fixed)
    ingest(core, revoked_event(record_id="SU-3"))

    report = flush(core)
    assert report.superseded == [old_batch]
    moved = old_path.parent / "superseded" / old_path.name
    assert not old_path.exists() and moved.is_file()
    assert batch_row(core, old_batch)["state"] == "superseded"
    _, new_path = only_written(report)
    found = passages(new_path)
    assert set(found) == {"SU-1", "SU-2"}
    assert found["SU-1"].findtext("cpf:scoring", namespaces=NS) == "300"
    assert record(core, "SU-3")["status"] == "withdrawn"
    top = [p.name for p in old_path.parent.glob("*.xml")]
    assert top == [new_path.name], "the top folder holds only the file to upload"
    (refused,) = core.operations.deposited([old_path.name])
    assert not refused.done and "is superseded" in refused.message
    assert "must not be uploaded" in refused.message


def test_a_report_on_a_superseded_file_that_was_uploaded_anyway(
    core: Core, shared_dir: Path
) -> None:
    """The operator uploaded the first file without saying so: the CDC holds its content."""
    first = event("UP-1", score="100")
    ingest(core, first)
    old_batch, _ = only_written(flush(core))
    fixed = replay(first)
    fixed["score"] = "300"
    ingest(core, fixed)
    new_batch, _ = only_written(flush(core))

    answer(core, shared_dir, old_batch, ok=["UP-1"])
    detail = record(core, "UP-1")
    assert (detail["status"], detail["version"]) == ("accepted", 1)
    assert detail["correction_pending"] is True

    answer(core, shared_dir, new_batch, ko={"UP-1": ALREADY.format(rid="UP-1")})
    assert record(core, "UP-1")["status"] == "accepted", "the later file changes nothing"
    suppression, path = only_written(flush(core))
    assert passages(path)["UP-1"].findtext("cpf:scoring", namespaces=NS) == "100"
    answer(core, shared_dir, suppression, ok=["UP-1"])
    _, path = only_written(flush(core))
    assert passages(path)["UP-1"].findtext("cpf:scoring", namespaces=NS) == "300"


def test_an_acceptance_through_a_file_uploaded_anyway_clears_the_earlier_refusal(
    core: Core, shared_dir: Path
) -> None:
    """Rejected whole, sent again, its new file superseded by a correction but uploaded all
    the same, then accepted: the record kept the whole-file refusal as its CDC reason (listed
    by `records --reason file_rejected`, the problem cell hiding the SUPPRESSION to come)."""
    first = event("UP-2", score="100")
    batch = deposited(core, first)
    name = batch_row(core, batch)["file_name"]
    core.feedback.import_report_bytes(file_rejected_report(shared_dir, file_name=name), "k.xml")
    assert record(core, "UP-2")["cdc_reason"] == "file_rejected"
    core.operations.retry(["UP-2"])
    sent_again, _ = only_written(flush(core))
    fixed = replay(first)
    fixed["score"] = "300"
    ingest(core, fixed)
    only_written(flush(core))
    assert batch_row(core, sent_again)["state"] == "superseded"
    answer(core, shared_dir, sent_again, ok=["UP-2"])
    detail = record(core, "UP-2")
    assert (detail["status"], detail["correction_pending"]) == ("accepted", True)
    assert (detail["cdc_reason"], detail["cdc_message"]) == (None, None)


def test_the_report_of_a_file_uploaded_anyway_supersedes_the_file_that_replaced_it(
    core: Core, shared_dir: Path
) -> None:
    """F1 written, uploaded without `deposited`; a correction supersedes it with F2 (all three
    records). F1's report then settles two of them, and refuses the third's content, the same
    in F2: F2 stayed in the files to deposit, carrying an accepted record, a content in
    conflict with the SUPPRESSION cut meanwhile, and one the CDC had refused already."""
    first = event("FA-1", score="100")
    ingest(core, first, event("FA-2"), event("FA-3"))
    old_batch, _ = only_written(flush(core))
    fixed = replay(first)
    fixed["score"] = "300"
    ingest(core, fixed)
    report = flush(core)
    assert report.superseded == [old_batch]
    new_batch, new_path = only_written(report)

    summary = answer(core, shared_dir, old_batch, ok=["FA-1", "FA-2"], ko={"FA-3": NO_HOLDER})
    assert (summary.accepted, summary.rejected) == (["FA-1", "FA-2"], ["FA-3"])
    assert any(f"batch {new_batch}, written and never deposited" in n for n in summary.notes)
    assert batch_row(core, new_batch)["state"] == "superseded"
    assert not new_path.exists(), "no longer among the files to deposit"
    statuses = {r: record(core, r)["status"] for r in ("FA-1", "FA-2", "FA-3")}
    assert statuses == {"FA-1": "accepted", "FA-2": "accepted", "FA-3": "rejected"}
    assert record(core, "FA-1")["correction_pending"] is True
    assert record(core, "FA-3")["cdc_reason"] == "identity_not_found"
    _, path = only_written(flush(core))
    assert action_of(path) == "SUPPRESSION" and set(passages(path)) == {"FA-1"}


def test_an_earlier_files_refusal_of_a_content_since_corrected_changes_nothing(
    core: Core, shared_dir: Path
) -> None:
    first = event("FB-1", score="100")
    ingest(core, first, event("FB-2"))
    old_batch, _ = only_written(flush(core))
    fixed = replay(first)
    fixed["score"] = "300"
    ingest(core, fixed)
    new_batch, _ = only_written(flush(core))
    summary = answer(core, shared_dir, old_batch, ko={"FB-1": NO_HOLDER})
    assert summary.unchanged == ["FB-1"], "the newer content may fix it: the CDC will say"
    assert record(core, "FB-1")["status"] == "batched"
    assert batch_row(core, new_batch)["state"] == "written"


def test_a_record_revoked_while_its_superseded_file_was_uploaded_anyway(
    core: Core, shared_dir: Path
) -> None:
    """Revoked while its file waited: the file is superseded and the record withdrawn. If
    the operator had uploaded it anyway and the CDC accepted it, the CDC holds a revoked
    certification: the record is accepted as of that file and withdrawn through a SUPPRESSION
    (README: its acceptance makes the record `accepted` as of that file)."""
    ingest(core, event("UW-1"), event("UW-2"))
    old_batch, _ = only_written(flush(core))
    ingest(core, revoked_event(record_id="UW-2"))
    only_written(flush(core))
    assert record(core, "UW-2")["status"] == "withdrawn"

    answer(core, shared_dir, old_batch, ok=["UW-1", "UW-2"])
    detail = record(core, "UW-2")
    assert (detail["status"], detail["revocation_pending"]) == ("accepted", True)
    assert [r["record_id"] for r in outstanding(core)] == ["UW-2"]
    suppression, path = only_written(flush(core))
    assert action_of(path) == "SUPPRESSION" and set(passages(path)) == {"UW-2"}
    answer(core, shared_dir, suppression, ok=["UW-2"])
    assert record(core, "UW-2")["status"] == "withdrawn"
    assert outstanding(core) == []


def test_existe_deja_for_a_content_an_earlier_file_did_not_carry(
    core: Core, shared_dir: Path
) -> None:
    first = event("ED-1", score="100")
    ingest(core, first)
    only_written(flush(core))
    fixed = replay(first)
    fixed["score"] = "300"
    new_batch = deposited(core, fixed)
    answer(core, shared_dir, new_batch, ko={"ED-1": ALREADY.format(rid="ED-1")})
    detail = record(core, "ED-1")
    assert detail["status"] == "accepted"
    assert detail["correction_pending"] is True, "the CDC holds the first file's content"
    assert detail["version"] == 1 and detail["correction_version"] == 2


def test_existe_deja_for_the_same_content_is_an_acceptance(core: Core, shared_dir: Path) -> None:
    ingest(core, event("ES-1"))
    batch, _ = only_written(flush(core))
    answer(core, shared_dir, batch, ko={"ES-1": ALREADY.format(rid="ES-1")})
    detail = record(core, "ES-1")
    assert (detail["status"], detail["correction_pending"]) == ("accepted", False)


# --- rejections --------------------------------------------------------------------------------


def test_a_rejection_makes_the_stored_correction_the_content(
    core: Core, shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = event("RJ-1", score="100")
    batch = deposited(core, first)
    fixed = replay(first)
    fixed["score"] = "300"
    ingest(core, fixed)
    summary = answer(core, shared_dir, batch, ko={"RJ-1": NO_HOLDER})
    detail = record(core, "RJ-1")
    assert (detail["status"], detail["version"]) == ("pending", 2)
    # import-report says so, rather than 'send the corrected event' (it was sent).
    echo_rejections(summary.rejections, batch)
    said = capsys.readouterr().out
    assert "RJ-1: " in said and "its stored correction is pending" in said
    assert "retry --batch" not in said and "REF" not in said  # it would fail again as it is
    assert detail["correction_pending"] is False
    _, path = only_written(flush(core))
    assert passages(path)["RJ-1"].findtext("cpf:scoring", namespaces=NS) == "300"


@pytest.mark.parametrize("wrong", ["15/09/2026", "2027-09-15"])
def test_a_correction_without_a_readable_delivery_date_keeps_the_deadline(
    core: Core, shared_dir: Path, wrong: str
) -> None:
    """The certification was delivered all the same: a correction whose `delivered_on` cannot
    be read, or is refused (in the future), kept invalid, must not erase the deadline the
    earlier content set, nor drop the record from the overdue list, whether it replaces the
    content at once or once the CDC rejected the content it had. A date a year ahead moved
    the deadline a year on, and the record's at-risk alert resolved."""

    def delivered_on_15_september(record_id: str) -> dict[str, Any]:
        built = event(record_id, delivered_on="2026-09-15")
        built["registration"]["date"] = None
        return built

    def unreadable(original: dict[str, Any]) -> dict[str, Any]:
        again = replay(original)
        again["delivered_on"] = wrong
        return again

    waiting = delivered_on_15_september("DD-1")
    ingest(core, waiting)
    assert record(core, "DD-1")["deadline"] == "2026-12-15"
    ingest(core, unreadable(waiting))

    sent = delivered_on_15_september("DD-2")
    batch = deposited(core, sent)
    ingest(core, unreadable(sent))
    answer(core, shared_dir, batch, ko={"DD-2": NO_HOLDER})

    for record_id in ("DD-1", "DD-2"):
        detail = record(core, record_id)
        assert (detail["status"], detail["deadline"]) == ("invalid", "2026-12-15"), record_id
    late = outstanding(core, as_of=date(2026, 12, 20), overdue=True)
    assert sorted(r["record_id"] for r in late) == ["DD-1", "DD-2"]


def test_a_first_event_dated_in_the_future_has_no_deadline_yet(core: Core) -> None:
    """Its date is refused: the deadline is unknown (counted at risk, listed by
    `--deadline-unknown`), never one computed from a date known to be wrong."""
    ingest(core, event("FU-1", delivered_on="2027-09-15"))
    detail = record(core, "FU-1")
    assert (detail["status"], detail["deadline"]) == ("invalid", None)
    assert any("is in the future" in e["message"] for e in detail["errors"])
    assert [r["record_id"] for r in outstanding(core, as_of=TODAY, deadline_unknown=True)] == [
        "FU-1"
    ]


def test_a_correction_waiting_beside_a_deposited_file_brings_an_earlier_deadline(
    core: Core, shared_dir: Path
) -> None:
    """Until the CDC answers, either content may be the one it keeps: the earlier of the two
    deadlines is the one to watch. The content sent received again drops the correction,
    and its own deadline is back."""

    def delivered(on: str, original: dict[str, Any] | None = None) -> dict[str, Any]:
        built = replay(original) if original is not None else event("ED-1", delivered_on=on)
        built["delivered_on"] = built["exam"]["start"] = built["exam"]["end"] = on
        built["registration"]["date"] = None
        return built

    sent = delivered("2026-09-15")
    deposited(core, sent)
    assert ingest_one(core, delivered("2026-08-20", sent)).outcome == "correction_stored"
    detail = record(core, "ED-1")
    assert (detail["status"], detail["deadline"]) == ("deposited", "2026-11-20")
    assert [r["record_id"] for r in outstanding(core, overdue=True)] == ["ED-1"]

    later(core)
    assert ingest_one(core, delivered("2026-10-01", sent)).outcome == "correction_stored"
    assert record(core, "ED-1")["deadline"] == "2026-12-15", "the content sent is due first"

    later(core)
    ingest_one(core, replay(sent))
    detail = record(core, "ED-1")
    assert (detail["correction_pending"], detail["deadline"]) == (False, "2026-12-15")


def test_a_rejected_record_revoked_meanwhile_gets_no_advice_to_fix_it(
    core: Core, shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It is withdrawn (nothing to send): import-report told to correct its identity."""
    batch = deposited(core, event("RV-1"), event("RV-2"))
    ingest(core, revoked_event(record_id="RV-1"))
    summary = answer(core, shared_dir, batch, ko={"RV-1": NO_HOLDER, "RV-2": NO_HOLDER})
    assert record(core, "RV-1")["status"] == "withdrawn"
    echo_rejections(summary.rejections, batch)
    said = capsys.readouterr().out
    assert "rejected, revoked meanwhile (1): withdrawn, nothing to send: RV-1" in said, said
    (advised,) = [line for line in said.splitlines() if "identity_not_found" in line]
    assert "(1)" in advised, said
    assert "RV-1:" not in said and "    RV-2: " in said, said


def test_two_identity_rejections_flag_the_identity_procedure(core: Core, shared_dir: Path) -> None:
    ingest(core, event("ID-1"))
    for round_ in range(2):
        batch, _ = only_written(flush(core))
        answer(core, shared_dir, batch, ko={"ID-1": NO_HOLDER})
        (row,) = outstanding(core)
        assert row["identity_procedure"] is (round_ == 1)
        (outcome,) = core.operations.retry(["ID-1"])
        assert "the CDC matches a holder on" in outcome.message
    assert record(core, "ID-1")["identity_procedure"] is True


def test_identity_rejections_count_across_a_corrected_resend(core: Core, shared_dir: Path) -> None:
    """The CDC's procedure is for a passage still KO after a second, corrected deposit: the
    correction the operator is told to send must not reset the count."""
    first = event("ID-2")
    ingest(core, first)
    batch, _ = only_written(flush(core))
    answer(core, shared_dir, batch, ko={"ID-2": NO_HOLDER})
    fixed = replay(first)
    fixed["holder"] = {**fixed["holder"], "birth_name": "DUPONT-CORRIGE"}
    ingest(core, fixed)
    assert record(core, "ID-2")["status"] == "pending"
    again, _ = only_written(flush(core))
    answer(core, shared_dir, again, ko={"ID-2": NO_HOLDER})
    assert record(core, "ID-2")["identity_procedure"] is True


def test_an_invalid_correction_of_an_accepted_record_is_not_sent(
    core: Core, shared_dir: Path
) -> None:
    original = event("IV-1")
    accepted(core, shared_dir, original)
    broken = replay(original)
    broken["delivered_on"] = "2026-02-30"
    assert ingest_one(core, broken).outcome == "correction_stored"
    assert not flush(core).cut, "the CDC keeps the valid data until a valid correction comes"
    (row,) = outstanding(core)
    assert row["correction_pending"] is True


def test_the_suppression_is_due_by_the_margin_of_its_correction_request(
    core: Core, shared_dir: Path
) -> None:
    original = event("DR-1", score="100")
    accepted(core, shared_dir, original)
    core.corrections.add("DR-1", received_on=date(2026, 9, 10), source="cdc")
    fixed = replay(original)
    fixed["score"] = "200"
    ingest(core, fixed)
    report = core.flusher.flush()
    assert [c.action for c in report.cut] == ["SUPPRESSION"], "due within the margin"
    assert "a record waiting for its SUPPRESSION has" in report.cut[0].reason
    assert "day(s) left" in report.cut[0].reason
    suppression = report.cut[0].batch_id
    answer(core, shared_dir, suppression, ok=["DR-1"])
    assert record(core, "DR-1")["deadline"] == "2026-12-10", "the request's deadline"
    assert date(2026, 12, 10) > TODAY


def test_a_correction_in_flight_keeps_the_deadline_of_its_open_request(
    core: Core, shared_dir: Path
) -> None:
    """An accepted record with an open request, then corrected: while its SUPPRESSION waits,
    the record is listed by the request's deadline, and overdue once the request is."""
    original = event("KD-1", score="100")
    accepted(core, shared_dir, original)
    core.corrections.add("KD-1", received_on=date(2026, 11, 1), source="cdc")
    ((before,),) = [outstanding(core)]
    assert (before["deadline"], before["days_left"]) == ("2027-02-01", 62)
    # Every view of the record agrees: the request's deadline is what is due.
    (everything,) = outstanding(core, only_outstanding=False)
    assert (everything["deadline"], everything["days_left"]) == ("2027-02-01", 62)
    assert (record(core, "KD-1")["deadline"], record(core, "KD-1")["days_left"]) == (
        "2027-02-01",
        62,
    )
    fixed = replay(original)
    fixed["score"] = "200"
    ingest(core, fixed)
    (row,) = outstanding(core)
    assert row["correction_pending"] is True
    assert (row["deadline"], row["days_left"]) == ("2027-02-01", 62)
    assert [r["record_id"] for r in outstanding(core, due_within=62)] == ["KD-1"]
    assert outstanding(core, due_within=61) == []
    late = TODAY + timedelta(days=90)
    assert [r["record_id"] for r in outstanding(core, as_of=late, overdue=True)] == ["KD-1"]
    with core.store.reading() as reader:
        (listed,) = [
            r
            for r in reader.iter_outstanding(
                queries.OutstandingQuery(as_of=TODAY, only_outstanding=False)
            )
            if r["record_id"] == "KD-1"
        ]
    assert listed["correction_request"]["deadline"] == "2027-02-01"
    assert (listed["deadline"], record(core, "KD-1")["deadline"]) == ("2027-02-01",) * 2


def test_a_correction_request_closes_when_the_cdc_accepts_the_corrected_data(
    core: Core, shared_dir: Path
) -> None:
    original = event("CR-1", score="100")
    accepted(core, shared_dir, original)
    later(core)
    opened = core.corrections.add("CR-1", received_on=date(2026, 9, 10), source="holder")
    request_id = opened.request.request_id
    later(core)
    (row,) = outstanding(core)
    assert row["correction_request"]["request_id"] == request_id
    assert row["correction_request"]["days_left"] == 9, "at risk: within the 14-day margin"
    (listed,) = core.corrections.list(open_only=True)
    assert (listed["status"], listed["deadline"]) == ("open", "2026-12-10")

    fixed = replay(original)
    fixed["score"] = "200"
    ingest(core, fixed)
    suppression, _ = only_written(flush(core))
    summary = answer(core, shared_dir, suppression, ok=["CR-1"])
    assert summary.requests_closed == [], "withdrawn is not yet corrected"
    creation, _ = only_written(flush(core))
    summary = answer(core, shared_dir, creation, ok=["CR-1"])
    assert summary.requests_closed == [request_id]
    (closed,) = core.corrections.list()
    assert closed["status"] == "corrected" and closed["answer"]["kind"] == "corrected"
    assert outstanding(core) == []
    assert any(
        h["reason"].startswith(f"correction request {request_id} closed")
        for h in record(core, "CR-1")["history"]
    )


def test_a_request_on_a_revoked_record_closes_with_its_suppression(
    core: Core, shared_dir: Path
) -> None:
    accepted(core, shared_dir, event("CR-2"))
    request_id = core.corrections.add("CR-2", received_on=TODAY).request.request_id
    ingest(core, revoked_event(record_id="CR-2"))
    suppression, _ = only_written(flush(core))
    assert answer(core, shared_dir, suppression, ok=["CR-2"]).requests_closed == [request_id]


def test_under_112_only_the_operator_closes_a_request(core112: Core, shared_dir: Path) -> None:
    ingest(core112, event("CR-3"))
    request_id = core112.corrections.add("CR-3", received_on=TODAY).request.request_id
    batch, _ = only_written(flush(core112))
    assert answer(core112, shared_dir, batch, ok=["CR-3"]).requests_closed == []
    (row,) = outstanding(core112)
    assert row["status"] == "accepted" and row["correction_request"]["request_id"] == request_id
    core112.corrections.answer(request_id, unfounded="the data is right as sent")
    assert outstanding(core112) == []


# --- kill -9 between a suppression's report and the new creation ----------------------------


def _batches(config: Path) -> list[dict[str, Any]]:
    found = json.loads(ok(config, "batches", "--format", "json"))
    assert isinstance(found, list)
    return found


def _report(
    tmp_path: Path, shared_dir: Path, batch: dict[str, Any], name: str, record_id: str = "K-1"
) -> Path:
    path = tmp_path / name
    path.write_bytes(
        processed_report(
            shared_dir,
            file_name=Path(batch["file"]).name,
            id_flux=batch["batch_id"],
            ok=[record_id],
        )
    )
    return path


@pytest.mark.parametrize("point", ["reported:recorded", "reported:moved"])
def test_kill_9_between_the_suppressions_report_and_the_new_creation(
    tmp_path: Path, shared_dir: Path, point: str
) -> None:
    config = write_config(tmp_path, schema=V115)
    original = recent("K-1", score="100")
    ok(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [original])))
    ok(config, "flush", "--force")
    (creation,) = _batches(config)
    ok(config, "import-report", str(_report(tmp_path, shared_dir, creation, "r1.xml")))
    fixed = replay(original)
    fixed["score"] = "300"
    ok(config, "ingest", str(write_jsonl(tmp_path / "b.jsonl", [fixed])))
    assert "cut SUPPRESSION" in ok(config, "flush", "--force")
    (suppression,) = [b for b in _batches(config) if b["action"] == "SUPPRESSION"]
    report = _report(tmp_path, shared_dir, suppression, "r2.xml")

    killed = accrochage(config, "import-report", str(report), failpoint=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    killed = accrochage(config, "flush", "--force", failpoint="flush:cut")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    ok(config, "flush")
    assert "already imported" in ok(config, "import-report", str(report))
    ok(config, "flush", "--force")

    batches = {b["batch_id"]: b for b in _batches(config)}
    assert len(batches) == 3, "one creation, one suppression, one new creation: nothing twice"
    (new,) = [
        b
        for b in batches.values()
        if b["batch_id"] not in (creation["batch_id"], suppression["batch_id"])
    ]
    assert (new["action"], new["state"], new["passages"]) == ("CREATION", "written", 1)
    assert batches[suppression["batch_id"]]["state"] == "reported"
    outbox = tmp_path / "var" / "outbox" / "pix"
    assert sorted(p.name for p in outbox.glob("*.xml")) == [Path(new["file"]).name]
    found = passages(Path(new["file"]))
    assert found["K-1"].findtext("cpf:scoring", namespaces=NS) == "300"
    shown = json.loads(ok(config, "show", "K-1", "--format", "json"))
    assert (shown["status"], shown["version"], shown["batch_id"]) == (
        "batched",
        2,
        new["batch_id"],
    )
    accepted_suppressions = [
        h for h in shown["history"] if h["reason"].startswith("SUPPRESSION accepted")
    ]
    assert len(accepted_suppressions) == 1
    assert ok(config, "verify") is not None


def test_the_operator_sees_the_loop_on_the_command_line(tmp_path: Path, shared_dir: Path) -> None:
    config = write_config(tmp_path, schema=V115)
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("OP-1")])))
    run(config, "flush", "--force")
    (creation,) = _batches(config)
    run(config, "import-report", str(_report(tmp_path, shared_dir, creation, "r1.xml", "OP-1")))
    revocation = revoked_event(record_id="OP-1")
    run(config, "ingest", str(write_jsonl(tmp_path / "b.jsonl", [revocation])))
    assert "cut SUPPRESSION" in run(config, "flush", "--force").stdout
    (suppression,) = [b for b in _batches(config) if b["action"] == "SUPPRESSION"]
    assert Path(suppression["file"]).name.endswith(f"_{suppression['batch_id']}.xml")
    to_upload = json.loads(run(config, "batches", "--to-deposit", "--format", "json").stdout)
    assert [b["batch_id"] for b in to_upload] == [suppression["batch_id"]]

    refused = tmp_path / "r2.xml"
    refused.write_bytes(
        processed_report(
            shared_dir,
            file_name=Path(suppression["file"]).name,
            id_flux=suppression["batch_id"],
            ko={"OP-1": "Erreur technique"},
        )
    )
    out = run(config, "import-report", str(refused)).stdout
    assert "SUPPRESSION batch" in out and "suppression refused, OP-1" in out
    assert "SUPPRESSION refused other: Erreur technique" in run(config, "outstanding").stdout
    for command in ("outstanding", "records"):
        (listed,) = json.loads(run(config, command, "--format", "json").stdout)
        assert (listed["suppression_rejected"], listed["identity_procedure"]) == (True, False)
    (row,) = csv.DictReader(io.StringIO(run(config, "outstanding", "--format", "csv").stdout))
    assert (row["suppression_rejected"], row["identity_procedure"]) == ("true", "false")
    assert "SUPPRESSION is cut again" in run(config, "retry", "OP-1").stdout
    retried = "SUPPRESSION retried after CDC other: Erreur technique"
    assert retried in run(config, "outstanding").stdout, "not read as still refused"
    assert "cut SUPPRESSION" in run(config, "flush", "--force").stdout
    assert retried in run(config, "outstanding").stdout


def test_suppressions_are_cut_by_size_and_by_age_like_creations(
    tmp_path: Path, shared_dir: Path
) -> None:
    config = write_config(tmp_path, batching={"max_records": 2, "max_delay": "1h"}, schema=V115)
    core = build_core(load_settings(config), FixedClock(NOW))
    try:
        events = [event(f"AG-{i}") for i in range(3)]
        ingest(core, *events)
        report = flush(core)
        for written in report.written:
            ids = list(passages(written.path))
            answer(core, shared_dir, written.batch_id, ok=ids)
        ingest(core, revoked_event(record_id="AG-0"))
        assert not core.flusher.flush().cut, "one record waiting, not long: not due"
        later(core, 61)
        (cut,) = core.flusher.flush().cut
        assert (cut.action, cut.passages) == ("SUPPRESSION", 1)
        assert "waited" in cut.reason
        ingest(core, revoked_event(record_id="AG-1"), revoked_event(record_id="AG-2"))
        (cut,) = core.flusher.flush().cut
        assert (cut.action, cut.passages) == ("SUPPRESSION", 2)
        assert "max_records" in cut.reason
    finally:
        core.close()


def test_a_report_is_applied_in_pieces_with_the_same_outcome(
    core: Core, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report is applied a few thousand outcomes at a time (a report of 200,000 passages
    held 200,000 records at once): the pieces change nothing of what it does."""
    monkeypatch.setattr(report_outcomes, "APPLIED_AT_ONCE", 2)
    ids = [f"PIECE-{n}" for n in range(7)]
    batch = deposited(core, *(event(i) for i in ids))
    summary = answer(
        core,
        shared_dir,
        batch,
        ok=[ids[0], ids[2], ids[4], "NOT-OURS"],
        ko={ids[1]: NO_HOLDER, ids[3]: ALREADY, ids[5]: NO_HOLDER},
    )
    assert sorted(summary.accepted) == sorted([ids[0], ids[2], ids[3], ids[4]])
    assert sorted(summary.rejected) == sorted([ids[1], ids[5]])
    assert summary.unknown_ids == ["NOT-OURS"]
    assert summary.not_mentioned == [ids[6]]
    statuses = {i: record(core, i)["status"] for i in ids}
    assert statuses == {
        ids[0]: "accepted",
        ids[1]: "rejected",
        ids[2]: "accepted",
        ids[3]: "accepted",
        ids[4]: "accepted",
        ids[5]: "rejected",
        ids[6]: "deposited",
    }


def test_a_whole_file_rejection_is_applied_in_pieces_too(
    core: Core, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_outcomes, "APPLIED_AT_ONCE", 2)
    ids = [f"WHOLE-{n}" for n in range(5)]
    batch = deposited(core, *(event(i) for i in ids))
    name = batch_row(core, batch)["file_name"]
    summary = core.feedback.import_report_bytes(
        file_rejected_report(shared_dir, file_name=name), "rejected.xml"
    )
    assert summary.rejected == ids and summary.unchanged == []
    assert {record(core, i)["status"] for i in ids} == {"rejected"}


def test_a_later_report_on_records_settled_before_says_which_it_did_not_apply(
    tmp_path: Path, shared_dir: Path
) -> None:
    """A second report of another idTraitement on a file already answered, refusing what the
    first accepted: the CLI said "1 unchanged" and named nothing."""
    config = write_config(tmp_path, schema=V115)
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("LR-1"), recent("LR-2")])))
    run(config, "flush", "--force")
    (creation,) = _batches(config)
    run(config, "import-report", str(_report(tmp_path, shared_dir, creation, "r1.xml", "LR-1")))
    second = tmp_path / "r2.xml"
    name = Path(creation["file"]).name
    second.write_bytes(
        processed_report(
            shared_dir,
            file_name=name,
            id_flux=creation["batch_id"],
            ok=["LR-2"],
            ko={"LR-1": "Erreur technique"},
            id_traitement="99999",
        )
    )
    out = run(config, "import-report", str(second)).stdout
    assert "1 accepted, 0 rejected, 1 unchanged" in out, out
    assert "settled before, this report's outcome not applied (accrochage show) (1): LR-1" in out
    (settled,) = json.loads(run(config, "records", "--format", "json").stdout)[:1]
    assert (settled["record_id"], settled["status"]) == ("LR-1", "accepted")


def test_a_report_that_answers_nothing_here_is_refused(tmp_path: Path, shared_dir: Path) -> None:
    """Another certifier's report (the real one, untouched) matched no file and no record: it
    said '0 accepted, 0 rejected' and exited 0, and the operator took it as applied."""
    config = write_config(tmp_path)
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("NA-1")])))
    refused = run(config, "import-report", str(shared_dir / "cdc/reports/report-small.xml"), code=1)
    assert "matches no file accrochage wrote, and none of its" in refused.stderr
    assert "nothing was applied" in refused.stderr and "0 accepted" not in refused.stdout
    assert json.loads(run(config, "show", "NA-1", "--format", "json").stdout)["status"] == "pending"


def test_import_report_masks_the_values_the_cdc_quotes(tmp_path: Path, shared_dir: Path) -> None:
    """What the import prints is pasted into tickets: a value the CDC's message quotes (a name,
    a NIR) is masked there; `show --format json` keeps the CDC's whole message."""
    config = write_config(tmp_path)
    run(config, "ingest", str(write_jsonl(tmp_path / "a.jsonl", [recent("MK-1")])))
    run(config, "flush", "--force")
    (batch,) = _batches(config)
    said = "cvc-pattern-valid: Value 'Zorglub 193057510812376' is not facet-valid"
    report = tmp_path / "r.xml"
    report.write_bytes(
        processed_report(
            shared_dir,
            file_name=Path(batch["file"]).name,
            id_flux=batch["batch_id"],
            ko={"MK-1": said},
        )
    )
    out = run(config, "import-report", str(report)).stdout
    assert "MK-1: cvc-pattern-valid: Value '…' is not facet-valid" in out, out
    assert "Zorglub" not in out and "1930575" not in out
    shown = json.loads(run(config, "show", "MK-1", "--format", "json").stdout)
    assert shown["cdc_message"] == said


def test_the_next_step_never_retries_an_identity_rejection_as_it_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`retry --batch` sends every rejected record of the batch again as it is: after an
    identity rejection it was the 'next' line's advice, and would be refused again."""

    def rejected(record_id: str, reason: str) -> dict[str, str | None]:
        return {"record_id": record_id, "cdc_reason": reason, "message": "m", "status": "rejected"}

    echo_rejections([rejected("A", "identity_not_found"), rejected("B", "other")], "B-1")
    mixed = capsys.readouterr().out.splitlines()[-1]
    assert mixed.startswith("  next: send corrected events for the identity rejections"), mixed
    assert "--batch" not in mixed
    echo_rejections([rejected("C", "other")], "B-2")
    assert "`accrochage retry --batch B-2`" in capsys.readouterr().out.splitlines()[-1]
    # An "existe déjà" among them is no identity rejection to correct
    echo_rejections([rejected("D", "already_exists"), rejected("E", "other")], "B-3")
    assert "`accrochage retry --batch B-3`" in capsys.readouterr().out.splitlines()[-1]
