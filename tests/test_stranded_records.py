"""Records a batch holds that the CDC never answered for: a batch whose file could not be
written (its XSD gate failed), and a record its batch's processed report left out. Neither may
keep a record, or the records beside it, for ever."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import Core
from accrochage.commands.record_text import left_out_steps
from accrochage.errors import AccrochageError
from accrochage.sinks.profiles import profile_for
from accrochage.streams.flush import Flusher
from tests.factories import revoked_event
from tests.test_back_to_sent import scored
from tests.test_cdc_loop import answer, flush, only_written
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_concurrent_operators import failed_then_fixed
from tests.test_tracker import (
    NS,
    TODAY,
    batch_row,
    event,
    ingest,
    ingest_one,
    make_core,
    outstanding,
    passages,
    processed_report,
    record,
    replay,
    write_config,
)

LONG = "Averyveryverylongname"


def strict_kit(tmp_path: Path) -> Path:
    """The bundled 1.1.5 schema with birth names of at most 10 characters: an official kit
    stricter than the bundled one, the way a batch fails its gate with valid events."""
    bundled = profile_for("1.1.5").bundled_xsd.read_text(encoding="utf-8")
    narrowed = bundled.replace(
        'name="nomNaissance" type="cpf:text60"', 'name="nomNaissance" type="cpf:short10"'
    ).replace(
        '<xsd:simpleType name="text60">',
        '<xsd:simpleType name="short10"><xsd:restriction base="xsd:string">'
        '<xsd:maxLength value="10"/></xsd:restriction></xsd:simpleType>\n'
        '<xsd:simpleType name="text60">',
    )
    assert narrowed != bundled
    kit = tmp_path / "strict.xsd"
    kit.write_text(narrowed, encoding="utf-8")
    return kit


def named(record_id: str, birth_name: str) -> dict[str, Any]:
    built = event(record_id)
    built["holder"]["birth_name"] = birth_name
    return built


def failed_batch(tmp_path: Path) -> tuple[Core, str, dict[str, Any]]:
    core, _ = make_core(tmp_path, schema={"version": "1.1.5", "xsd": str(strict_kit(tmp_path))})
    too_long = named("SF-1", LONG)
    ingest(core, too_long, named("SF-2", "Martin"))
    report = core.flusher.flush(force=True)
    (failed,) = report.failed
    assert "SF-1" in failed.error, "the gate names the passage"
    assert {record(core, r)["status"] for r in ("SF-1", "SF-2")} == {"batched"}
    return core, failed.batch_id, too_long


def test_a_correction_frees_a_batch_whose_file_failed_its_gate(tmp_path: Path) -> None:
    core, failed, too_long = failed_batch(tmp_path)
    try:
        fixed = replay(too_long)
        fixed["holder"]["birth_name"] = "Short"
        assert ingest_one(core, fixed).outcome == "correction_stored"
        report = core.flusher.flush(force=True)
        assert report.superseded == [failed] and report.ok
        (written,) = report.written
        sent = passages(written.path)
        assert set(sent) == {"SF-1", "SF-2"}
        birth = ".//cpf:nomNaissance"
        assert sent["SF-1"].findtext(birth, namespaces=NS) == "Short"
        assert batch_row(core, failed)["state"] == "superseded"
    finally:
        core.close()


def test_a_member_of_a_failed_batch_can_be_excluded(tmp_path: Path) -> None:
    core, failed, _ = failed_batch(tmp_path)
    try:
        (outcome,) = core.operations.exclude(["SF-1"], "birth name refused by the official kit")
        assert outcome.done, outcome.message
        # It said "was pending" (its batch was superseded first), where `show` said batched.
        assert outcome.message.startswith("excluded (was batched); its batch "), outcome.message
        assert "whose file failed, is superseded" in outcome.message
        assert record(core, "SF-1")["status"] == "excluded"
        assert record(core, "SF-2")["status"] == "pending", "cut again without it"
        assert batch_row(core, failed)["state"] == "superseded"
        reasons = [h["reason"] for h in record(core, "SF-2")["history"]]
        assert "batch superseded before its file could be written: cut again" in reasons
        _, path = only_written(flush(core))
        assert set(passages(path)) == {"SF-2"}
    finally:
        core.close()


def test_members_of_one_failed_batch_excluded_together_each_say_so(tmp_path: Path) -> None:
    """The first member's batch was superseded before the second was looked at: that one
    said "was pending", its batch no longer failed."""
    core, failed, _ = failed_batch(tmp_path)
    try:
        outcomes = core.operations.exclude(["SF-1", "SF-2"], "both refused")
        for outcome in outcomes:
            assert outcome.done, outcome.message
            assert outcome.message.startswith("excluded (was batched); its batch "), outcome
        assert batch_row(core, failed)["state"] == "superseded"
        assert {record(core, r)["status"] for r in ("SF-1", "SF-2")} == {"excluded"}
    finally:
        core.close()


def test_a_record_its_report_left_out_can_be_sent_again(tmp_path: Path, shared_dir: Path) -> None:
    core, _ = make_core(tmp_path, schema={"version": "1.1.5"})
    try:
        original = event("SL-2", score="100")
        ingest(core, event("SL-1"), original, event("SL-3"))
        batch, _ = only_written(flush(core))
        summary = answer(core, shared_dir, batch, ok=["SL-1"], ko={"SL-3": "Erreur"})
        assert summary.not_mentioned == ["SL-2"]
        assert record(core, "SL-2")["status"] == "batched"
        (step,) = left_out_steps(record(core, "SL-2"))  # what `show` says
        assert step.endswith(f"`accrochage retry --batch {batch}` sends it again"), step
        assert left_out_steps(record(core, "SL-1")) == [] == left_out_steps(record(core, "SL-3"))
        # The listings' problem column said nothing of it: only `show` did.
        table = run(tmp_path / "accrochage.toml", "records").stdout
        (line,) = [line for line in table.splitlines() if " SL-2 " in line]
        assert "not in its file's CDC report: to send again (accrochage show)" in line, table
        assert ingest_one(core, scored(original, "250")).outcome == "correction_stored"

        (refused,) = core.operations.retry(["SL-1"])
        assert not refused.done, "an accepted record is not sent again"
        (again,) = core.operations.retry(["SL-2"])
        assert again.done, again.message
        detail = record(core, "SL-2")
        assert (detail["status"], detail["correction_pending"]) == ("pending", False)
        assert [r["record_id"] for r in outstanding(core)] == ["SL-2", "SL-3"]
        _, path = only_written(flush(core))
        sent = passages(path)
        assert set(sent) == {"SL-2"}, "the rejected one waits for its own retry"
        assert sent["SL-2"].findtext("cpf:scoring", namespaces=NS) == "250", "its correction"
    finally:
        core.close()


def test_a_report_matched_to_no_file_settles_the_batches_it_answers_whole(
    tmp_path: Path, shared_dir: Path
) -> None:
    """A report whose idFlux and nomFichier name no batch is refused while it would change
    records here (it may answer someone else's file); applied by idTechnique once the
    operator says so (`--by-id`), a batch all of whose records it settled waits for no report
    any more (reported, its file in done/); one it settled in part keeps waiting."""
    core, _ = make_core(tmp_path, schema={"version": "1.1.5"}, batching={"max_records": 2})
    try:
        ingest(core, event("SR-1"), event("SR-2"), event("SR-3"))
        report = core.flusher.flush(force=True)
        by_members = {len(passages(w.path)): w for w in report.written}
        whole, part = by_members[2], by_members[1]
        core.operations.deposited([whole.path.name, part.path.name])
        members = set(passages(core.settings.paths.outbox / "pix" / "deposited" / whole.path.name))
        lonely = next(
            iter(passages(core.settings.paths.outbox / "pix" / "deposited" / part.path.name))
        )
        data = processed_report(
            shared_dir,
            file_name="renamed.xml",
            id_flux=None,
            ok=sorted(members),
        )
        with pytest.raises(AccrochageError) as refused:
            core.feedback.import_report_bytes(data, "renamed-report.xml")
        assert "matches no file accrochage wrote" in str(refused.value)
        assert whole.batch_id in str(refused.value) and "--by-id" in str(refused.value)
        assert batch_row(core, whole.batch_id)["state"] == "deposited"
        assert {record(core, r)["status"] for r in members} == {"deposited"}

        summary = core.feedback.import_report_bytes(data, "renamed-report.xml", by_id=True)
        assert summary.batch_id is None
        assert any(whole.batch_id in note for note in summary.notes)
        assert batch_row(core, whole.batch_id)["state"] == "reported"
        assert (core.settings.paths.outbox / "pix" / "done" / whole.path.name).is_file()
        assert batch_row(core, part.batch_id)["state"] == "deposited"
        assert record(core, lonely)["status"] == "deposited"
    finally:
        core.close()


def test_a_failed_batch_superseded_while_another_process_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service retries a failed batch while the operator's `exclude` supersedes it: the
    file written meanwhile goes to superseded/, never beside the files to upload, and the
    batch stays superseded (its other record is cut again once, in a new file)."""
    service, operator, failed = failed_then_fixed(tmp_path, "RW-1", "RW-2")
    outbox = tmp_path / "outbox"
    try:
        record_outcome = Flusher._record

        def racing(self: Flusher, batch: Any, outcome: Any, report: Any) -> None:
            if batch.batch_id == failed:
                (excluded,) = operator.operations.exclude(["RW-1"], "refused by the kit")
                assert excluded.done, excluded.message
            record_outcome(self, batch, outcome, report)

        monkeypatch.setattr(Flusher, "_record", racing)
        report = service.flusher.flush()
        monkeypatch.undo()
        assert report.written == [] and report.failed == []
        assert any("is superseded since its file was written" in n for n in report.notes)
        assert batch_row(service, failed)["state"] == "superseded"
        assert list((outbox / "pix").glob("*.xml")) == []
        assert len(list((outbox / "pix" / "superseded").glob("*.xml"))) == 1
        (written,) = service.flusher.flush(force=True).written
        assert set(passages(written.path)) == {"RW-2"}
        assert record(service, "RW-1")["status"] == "excluded"
    finally:
        service.close()
        operator.close()


def test_a_revoked_record_its_report_left_out_is_withdrawn_on_retry(
    tmp_path: Path, shared_dir: Path
) -> None:
    core, _ = make_core(tmp_path, schema={"version": "1.1.5"})
    try:
        ingest(core, event("SV-1"), event("SV-2"))
        batch, _ = only_written(flush(core))
        ingest(core, revoked_event(record_id="SV-2"))
        assert record(core, "SV-2")["revocation_pending"] is True
        answer(core, shared_dir, batch, ok=["SV-1"])
        (outcome,) = core.operations.retry(["SV-2"])
        assert outcome.done, outcome.message
        detail = record(core, "SV-2")
        assert (detail["status"], detail["revocation_pending"]) == ("withdrawn", False)
        assert outstanding(core) == []
    finally:
        core.close()


def test_a_suppression_its_report_left_out_can_be_sent_again(
    tmp_path: Path, shared_dir: Path
) -> None:
    """A SUPPRESSION's member that its processed report does not mention stays accepted, its
    correction waiting: `import-report` says `retry --batch` sends it again, so it must; the
    summary lists it as left out, and `retry ID` takes it too."""
    core, _ = make_core(tmp_path, schema={"version": "1.1.5"})
    try:
        originals = [event("SS-1", score="100"), event("SS-2", score="100")]
        ingest(core, *originals)
        creation, _ = only_written(flush(core))
        answer(core, shared_dir, creation, ok=["SS-1", "SS-2"])
        ingest(core, *(scored(replay(o), "250") for o in originals))
        suppression, _ = only_written(flush(core))
        summary = answer(core, shared_dir, suppression, ok=["SS-2"])
        assert summary.not_mentioned == ["SS-1"]
        detail = record(core, "SS-1")
        assert (detail["status"], detail["batch_id"]) == ("accepted", suppression)
        with core.store.reading() as reader:
            left = reader.summary(TODAY, 14)["left_out"]
        assert [(b["batch_id"], b["records"]) for b in left] == [(suppression, 1)]

        outcomes = core.operations.retry_rejected(batch_ref=suppression)
        assert [(o.item, o.done) for o in outcomes] == [("SS-1", True)], outcomes
        detail = record(core, "SS-1")
        assert (detail["status"], detail["batch_id"]) == ("accepted", creation)
        with core.store.reading() as reader:
            assert reader.summary(TODAY, 14)["left_out"] == []
        report = flush(core)
        assert sorted(c.action for c in report.cut) == ["CREATION", "SUPPRESSION"]
        sent = {rid for w in report.written for rid in passages(w.path)}
        assert sent == {"SS-1", "SS-2"}, "SS-1's SUPPRESSION again, SS-2's correction"
    finally:
        core.close()


def test_the_listing_says_a_record_waits_in_a_failed_file(tmp_path: Path) -> None:
    """A record whose batch's file could not be written showed no problem in `outstanding`
    and `records`, where the alert and doctor send the operator: it now says so."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the outbox should be\n")
    config = write_config(tmp_path, paths={"outbox": str(blocker / "outbox")})
    run(config, "ingest", str(write_jsonl(tmp_path / "e.jsonl", [recent("FB-1")])))
    run(config, "flush", "--force", code=1)
    for command in ("outstanding", "records"):
        table = run(config, command).stdout
        (line,) = [line for line in table.splitlines() if line.startswith("pix") and "FB-1" in line]
        assert "batched" in line and "its file failed (accrochage batches)" in line, table
    (row,) = json.loads(run(config, "outstanding", "--format", "json").stdout)
    assert row["status"] == "batched"
