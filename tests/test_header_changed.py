"""A certifier's contract renewed (or the emitter changed) while its file waits to be
deposited: the file is superseded and its records cut again under the configuration's
header, never uploaded under identities the CDC may refuse or attribute wrongly."""

from __future__ import annotations

import json
from pathlib import Path

from lxml import etree

from accrochage.app import build_core
from accrochage.models.deadline import FixedClock
from accrochage.settings import load_settings
from accrochage.streams.flush_report import FlushReport
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_tracker import NOW, batch_row, event, ingest, rows, write_config

NS = {"cpf": "urn:cdc:cpf:pc5:schema:1.0.0"}
OLD, NEW = "MCFCER000209", "MCFCER000777"


def batches(config: Path) -> list[dict[str, str]]:
    rows = json.loads(run(config, "batches", "--format", "json").stdout)
    assert isinstance(rows, list)
    return rows


def header(path: Path, element: str) -> str:
    found = etree.parse(str(path)).findall(f".//cpf:{element}", NS)
    assert found, element
    return str(found[0].text)


def test_a_renewed_contract_supersedes_the_file_not_yet_deposited(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    events = write_jsonl(tmp_path / "e.jsonl", [recent("HC-1"), recent("HC-2")])
    run(config, "ingest", str(events))
    run(config, "flush", "--force")
    (old,) = batches(config)
    assert header(Path(old["file"]), "idContrat") == OLD

    config.write_text(config.read_text(encoding="utf-8").replace(OLD, NEW), encoding="utf-8")
    # Before any flush, doctor tells the operator not to upload it
    doctor = json.loads(run(config, "doctor", "--format", "json", code=None).stdout)
    (said,) = [f for f in doctor["findings"] if "another header" in f["message"]]
    assert said["needs_operator"] and said["message"].startswith(
        "1 file(s) not yet deposited carry another header than the configuration (first: "
        f"batch {old['batch_id']}, idContrat {OLD} -> {NEW}): do not upload them"
    )
    out = run(config, "flush").stdout
    assert (
        f"superseded {old['batch_id']}: its header is not the configuration's any more "
        f"(idContrat {OLD} -> {NEW}); the file moved to superseded/ (do not upload it)"
    ) in out

    by_id = {b["batch_id"]: b for b in batches(config)}
    assert by_id[old["batch_id"]]["state"] == "superseded"
    assert not Path(old["file"]).exists()
    assert Path(by_id[old["batch_id"]]["file"]).parent.name == "superseded"
    run(config, "flush", "--force")
    (new,) = [b for b in batches(config) if b["state"] == "written"]
    assert header(Path(new["file"]), "idContrat") == NEW
    assert new["passages"] == 2
    shown = json.loads(run(config, "show", "HC-1", "--format", "json").stdout)
    assert shown["batch_id"] == new["batch_id"] and shown["status"] == "batched"
    doctor = json.loads(run(config, "doctor", "--format", "json", code=None).stdout)
    assert not [f for f in doctor["findings"] if "another header" in f["message"]]
    # The record's evidence says why it went in a second file
    reasons = [entry["reason"] for entry in shown["history"]]
    assert (
        "file superseded before any deposit (its header is not the configuration's any more: "
        f"idContrat {OLD} -> {NEW}): cut again"
    ) in reasons, reasons


def test_a_file_recorded_as_deposited_keeps_the_header_it_was_sent_with(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run(config, "ingest", str(write_jsonl(tmp_path / "e.jsonl", [recent("HC-3")])))
    run(config, "flush", "--force")
    (sent,) = batches(config)
    run(config, "deposited", sent["batch_id"])

    text = config.read_text(encoding="utf-8").replace(OLD, NEW)
    config.write_text(
        text.replace('id_client = "03VML243"\nnature', 'id_client = "99TDC001"\nnature'),
        encoding="utf-8",
    )
    out = run(config, "flush").stdout
    assert "superseded" not in out
    (still,) = batches(config)
    assert still["state"] == "deposited"
    assert header(Path(still["file"]), "idContrat") == OLD


def test_an_emitter_changed_supersedes_every_file_not_yet_deposited(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    events = [recent("HC-4"), recent("HC-5", certifier="school")]
    run(config, "ingest", str(write_jsonl(tmp_path / "e.jsonl", events)))
    run(config, "flush", "--force")
    assert len(batches(config)) == 2

    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('nature = "CERTIFICATEUR"', 'nature = "TIERS_CONFIANCE"'), encoding="utf-8"
    )
    out = run(config, "flush", "--force").stdout
    assert out.count("(natureDeposant CERTIFICATEUR -> TIERS_CONFIANCE)") == 2
    written = [b for b in batches(config) if b["state"] == "written"]
    assert len(written) == 2
    for batch in written:
        assert header(Path(batch["file"]), "natureDeposant") == "TIERS_CONFIANCE"


def test_a_trusted_third_party_s_own_certifications_say_certificateur(tmp_path: Path) -> None:
    """A trusted third party that also deposits its own certifications: one nature for the
    emitter put TIERS_CONFIANCE in its own files too. Its [[certifiers]] table says its own;
    set after a file was written, that file is cut again."""
    config = write_config(tmp_path)
    third = config.read_text(encoding="utf-8").replace(
        'nature = "CERTIFICATEUR"', 'nature = "TIERS_CONFIANCE"'
    )
    config.write_text(third, encoding="utf-8")
    events = [recent("HC-6"), recent("HC-7", certifier="school")]
    run(config, "ingest", str(write_jsonl(tmp_path / "e.jsonl", events)))
    run(config, "flush", "--force")
    (own_before,) = [b for b in batches(config) if b["certifier"] == "pix"]
    assert header(Path(own_before["file"]), "natureDeposant") == "TIERS_CONFIANCE"
    doctor = json.loads(run(config, "doctor", "--format", "json", code=None).stdout)
    (said,) = [f for f in doctor["findings"] if f["check"] == "certifiers"]
    assert said["message"].startswith("the files of pix say natureDeposant TIERS_CONFIANCE")
    assert 'set nature = "CERTIFICATEUR" in their [[certifiers]] tables' in said["message"]

    own = third.replace(
        'id_contrat = "MCFCER000209"', 'id_contrat = "MCFCER000209"\nnature = "CERTIFICATEUR"'
    )
    config.write_text(own, encoding="utf-8")
    out = run(config, "flush", "--force").stdout
    assert (
        f"superseded {own_before['batch_id']}: its header is not the configuration's any "
        "more (natureDeposant TIERS_CONFIANCE -> CERTIFICATEUR)" in out
    )
    written = {b["certifier"]: b for b in batches(config) if b["state"] == "written"}
    assert header(Path(written["pix"]["file"]), "natureDeposant") == "CERTIFICATEUR"
    assert header(Path(written["school"]["file"]), "natureDeposant") == "TIERS_CONFIANCE"
    doctor = json.loads(run(config, "doctor", "--format", "json", code=None).stdout)
    assert [f for f in doctor["findings"] if f["check"] == "certifiers"] == []


def test_a_batch_cut_and_not_written_yet_is_not_written_under_the_old_header(
    tmp_path: Path,
) -> None:
    """A batch cut before the contract was renewed, its file not written (a kill -9, a stop
    mid-cut): the next flush wrote it under the old idContrat among the files to upload, and
    only the flush after superseded it."""
    config = write_config(tmp_path)
    clock = FixedClock(NOW)
    core = build_core(load_settings(config), clock)
    ingest(core, event("HC-8"), event("HC-9"))
    core.flusher.cut(FlushReport(), force=True)
    ((cut,),) = [tuple(r.values()) for r in rows(core, "SELECT batch_id FROM batches")]
    assert batch_row(core, cut)["state"] == "cut"
    core.close()

    config.write_text(config.read_text(encoding="utf-8").replace(OLD, NEW), encoding="utf-8")
    core = build_core(load_settings(config), clock)
    try:
        report = core.flusher.flush(force=True)
        assert report.superseded == [cut]
        assert report.header_changed[cut] == f"idContrat {OLD} -> {NEW}"
        (written,) = report.written
        assert written.batch_id != cut and written.passages == 2
        assert header(written.path, "idContrat") == NEW
        assert core.flusher.flush(force=True).superseded == []
    finally:
        core.close()


def test_a_service_left_running_on_the_old_configuration_never_undoes_a_flush_on_the_new(
    tmp_path: Path,
) -> None:
    """The contract edited while `run` serves, then `flush` on the new file: the service,
    judging headers at every tick, superseded that file back to its old header, and each
    command's flush again, for ever, one file of the old header always left to upload. Only
    a process's first flush applies its configuration; later ones say a restart applies it."""
    config = write_config(tmp_path)
    clock = FixedClock(NOW)
    service = build_core(load_settings(config), clock)  # started on the old configuration
    try:
        ingest(service, event("HC-10"))
        (old,) = service.flusher.flush(force=True).written
        config.write_text(config.read_text(encoding="utf-8").replace(OLD, NEW), encoding="utf-8")
        command = build_core(load_settings(config), clock)  # `accrochage flush`
        try:
            applied = command.flusher.flush(force=True)
        finally:
            command.close()
        assert applied.superseded == [old.batch_id]
        (new,) = applied.written
        assert header(new.path, "idContrat") == NEW

        tick = service.flusher.flush()
        assert tick.superseded == [] and tick.written == []
        assert batch_row(service, new.batch_id)["state"] == "written" and new.path.is_file()
        (said,) = tick.notes
        assert said.startswith(
            f"1 file(s) not yet deposited carry another header than this process's "
            f"configuration (idContrat {NEW} -> {OLD})"
        )
        assert "restart this service" in said
    finally:
        service.close()

    restarted = build_core(load_settings(config), clock)  # the service restarted: it agrees
    try:
        assert restarted.flusher.flush().superseded == []
    finally:
        restarted.close()
