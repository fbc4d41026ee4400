"""The tracker end to end at library level: events in, records tracked, XSD-valid files out.

Every test builds the core through the composition root (`build_core`) on settings loaded from
a TOML file in `tmp_path`, with a `FixedClock`, so deadlines and batch timing are exact.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import accrochage.streams.flush as flush_module
from accrochage.app import Core, build_core
from accrochage.commands.records import batch_cell
from accrochage.errors import AccrochageError
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.deadline import PARIS, FixedClock
from accrochage.models.vocabulary import RecordOrder
from accrochage.settings import load_settings
from accrochage.sinks.profiles import NAMESPACE
from accrochage.sinks.xml_outbox import RENDER_NICENESS, XmlOutbox
from accrochage.state import queries
from accrochage.streams.flush_report import FlushReport
from accrochage.streams.incoming import Incoming, IngestResult
from tests.factories import delivered_event, revoked_event

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
TODAY = NOW.date()
NS = {"cpf": NAMESPACE}
SCHEMA_1_1_2 = {"version": "1.1.2"}
"""`[schema]` of the tests whose files are checked against the CDC's official 1.1.2 XSD."""

# --- building a core ------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def write_config(
    directory: Path,
    *,
    batching: dict[str, Any] | None = None,
    paths: dict[str, Any] | None = None,
    api: dict[str, Any] | None = None,
    schema: dict[str, Any] | None = None,
    ingest: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    emitter_id: str = "03VML243",
    name: str = "accrochage.toml",
) -> Path:
    """A complete configuration: two certifiers, state and outbox under `directory`.

    Batches render in the calling process (`render_processes = 0`) unless `batching` says
    otherwise: starting a process pool per test is what the pool's own tests are for.
    Without `schema` the file names no schema version: the default (1.1.5) applies; a test
    that checks files against the CDC's official 1.1.2 XSD passes `schema=SCHEMA_1_1_2`.
    """
    sections = {
        "batching": {"render_processes": 0, **(batching or {})},
        "paths": {
            "state": directory / "var" / "state.db",
            "outbox": directory / "var" / "outbox",
            **(paths or {}),
        },
        "api": api or {},
        "schema": schema or {},
        "ingest": ingest or {},
        "state": state or {},
    }
    text = f"""
[emitter]
id_client = {toml_value(emitter_id)}
nature = "CERTIFICATEUR"

[[certifiers]]
key = "pix"
id_client = "03VML243"
id_contrat = "MCFCER000209"
certifications = ["RS5875", "RNCP37873"]

[[certifiers]]
key = "school"
id_client = "12ABC345"
id_contrat = "MCFCER000123"
certifications = ["RNCP35726"]
"""
    for section, values in sections.items():
        if values:
            text += f"\n[{section}]\n"
            text += "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items())
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def make_core(
    directory: Path, clock: FixedClock | None = None, **sections: Any
) -> tuple[Core, FixedClock]:
    clock = clock or FixedClock(NOW)
    settings = load_settings(write_config(directory, **sections))
    return build_core(settings, clock), clock


@pytest.fixture()
def core(tmp_path: Path) -> Iterable[Core]:
    built, _ = make_core(tmp_path)
    yield built
    built.close()


@pytest.fixture()
def core_1_1_2(tmp_path: Path) -> Iterable[Core]:
    """A core writing schema 1.1.2, named in its configuration (the official XSD's version)."""
    built, _ = make_core(tmp_path, schema=SCHEMA_1_1_2)
    yield built
    built.close()


# --- events ---------------------------------------------------------------------------------


def event(record_id: str, *, certifier: str = "pix", **overrides: Any) -> dict[str, Any]:
    """A valid delivered event with a fresh event_id; dates consistent with `delivered_on`."""
    delivered_on = overrides.pop("delivered_on", "2026-11-18")
    base = delivered_event(
        record_id=record_id,
        event_id=str(uuid.uuid4()),
        delivered_on=delivered_on,
        exam={
            "start": delivered_on,
            "end": delivered_on,
            "mode": "A_DISTANCE",
            "center_postal_code": "75002",
        },
    )
    if certifier == "school":
        base.update(
            certifier="school",
            certification={"type": "RNCP", "code": "RNCP35726"},
            obtention="PAR_ADMISSION",
            score=None,
            digital_level=None,
            mention="MENTION_BIEN",
        )
    elif certifier != "pix":
        base["certifier"] = certifier
    base["holder"]["birth_name"] = f"Nom-{record_id[-6:]}"
    base.update(copy.deepcopy(overrides))
    return base


def replay(original: dict[str, Any]) -> dict[str, Any]:
    """The same content under a new event_id, emitted later by another source."""
    again = copy.deepcopy(original)
    again.update(
        event_id=str(uuid.uuid4()), occurred_at="2026-11-30T08:00:00+01:00", source="replayer"
    )
    return again


def ingest(core: Core, *events: dict[str, Any] | bytes | str) -> list[IngestResult]:
    return core.ingestor.ingest([Incoming(e, "test") for e in events])


def ingest_one(core: Core, one: dict[str, Any] | bytes | str) -> IngestResult:
    return ingest(core, one)[0]


# --- reading the state and the outbox -------------------------------------------------------


def db(core: Core) -> sqlite3.Connection:
    """A read-only connection of the test's own, to look at the state as stored."""
    conn = sqlite3.connect(f"file:{core.settings.paths.state}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def record(core: Core, record_id: str) -> dict[str, Any]:
    with core.store.reading() as reader:
        detail = reader.record_detail(record_id, TODAY)
    assert detail is not None, f"no record {record_id}"
    return detail


def rows(core: Core, sql: str, *params: Any) -> list[dict[str, Any]]:
    conn = db(core)
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def history(core: Core, record_id: str) -> list[dict[str, Any]]:
    return record(core, record_id)["history"]


def outstanding(core: Core, **options: Any) -> list[dict[str, Any]]:
    options.setdefault("as_of", TODAY)
    with core.store.reading() as reader:
        return reader.outstanding(queries.OutstandingQuery(**options))


def outstanding_ids(core: Core, **options: Any) -> list[str]:
    return [r["record_id"] for r in outstanding(core, **options)]


def xml_files(outbox: Path) -> list[Path]:
    return sorted(outbox.rglob("*.xml")) if outbox.exists() else []


def passages(path: Path) -> dict[str, etree._Element]:
    tree = etree.parse(str(path))
    found: dict[str, etree._Element] = {}
    for passage in tree.iterfind(".//cpf:passageCertification", NS):
        rid = passage.findtext("cpf:idTechnique", namespaces=NS)
        assert rid is not None
        assert rid not in found, f"{rid} twice in {path.name}"
        found[rid] = passage
    return found


def ids_in_files(outbox: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in xml_files(outbox):
        counts.update(passages(path).keys())
    return counts


def assert_official_valid(paths: Iterable[Path], xsd: Path) -> None:
    schema = etree.XMLSchema(etree.parse(str(xsd)))
    checked = 0
    for path in paths:
        doc = etree.parse(str(path))
        assert schema.validate(doc), f"{path.name}: {schema.error_log}"
        checked += 1
    assert checked


def batch_row(core: Core, batch_id: str) -> dict[str, Any]:
    found = rows(core, "SELECT * FROM batches WHERE batch_id = ?", batch_id)
    assert found, f"no batch {batch_id}"
    return found[0]


def only_batch(report: FlushReport) -> str:
    assert len(report.written) == 1, report
    return report.written[0].batch_id


# --- CDC processing reports, in the shape of the real ones ---------------------------------


def processed_report(
    shared_dir: Path,
    *,
    file_name: str,
    id_flux: str | None,
    ok: Iterable[str] = (),
    ko: dict[str, str] | None = None,
    id_traitement: str = "67598",
) -> bytes:
    """report-processed.xml with its header and passages replaced."""
    root = etree.parse(str(shared_dir / "cdc" / "reports" / "report-processed.xml")).getroot()
    root.find("nomFichier").text = file_name  # type: ignore[union-attr]
    flux = root.find("idFlux")
    assert flux is not None
    if id_flux is None:
        root.remove(flux)
    else:
        flux.text = id_flux
    root.find("idTraitement").text = id_traitement  # type: ignore[union-attr]
    ko_section, ok_section = root.find("PassagesKO"), root.find("PassagesOK")
    assert ko_section is not None and ok_section is not None
    for section in (ko_section, ok_section):
        for child in list(section):
            section.remove(child)
    for rid, message in (ko or {}).items():
        passage = etree.SubElement(ko_section, "passage")
        etree.SubElement(passage, "idTechnique").text = rid
        etree.SubElement(passage, "messageErreur").text = message
    for rid in ok:
        etree.SubElement(ok_section, "idTechnique").text = rid
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def file_rejected_report(shared_dir: Path, *, file_name: str) -> bytes:
    root = etree.parse(str(shared_dir / "cdc" / "reports" / "report-file-rejected.xml")).getroot()
    root.find("nomFichier").text = file_name  # type: ignore[union-attr]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def report_on_batch(core: Core, shared_dir: Path, batch_id: str, **passages: Any) -> bytes:
    """`processed_report` answering the file of batch `batch_id` (`ok`, `ko`, ...)."""
    batch = batch_row(core, batch_id)
    return processed_report(shared_dir, file_name=batch["file_name"], id_flux=batch_id, **passages)


def write_report(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


NO_HOLDER = "Aucun titulaire ne correspond aux critères obligatoires"
ALREADY = (
    "Le passage certification avec le bcr émetteur 03VML243 et l'id technique partenaire "
    "{rid} existe déjà en base"
)


# =============================================================================================
# The whole flow
# =============================================================================================


def test_mixed_stream_sends_each_valid_record_exactly_once(
    tmp_path: Path, official_xsd: Path
) -> None:
    core, _ = make_core(tmp_path, schema=SCHEMA_1_1_2)
    generated = list(
        generate_events(
            60,
            [
                GeneratedCertifier("pix", ("RS5875", "RNCP37873")),
                GeneratedCertifier("school", ("RNCP35726",)),
            ],
            today=TODAY,
            seed=7,
        )
    )
    invalid = [
        event("BAD-1", delivered_on="2026-02-30"),
        event("BAD-2", certification={"type": "RNCP", "code": "RS5875"}),
        event("BAD-3", obtention="PAR_HASARD"),
        event("BAD-4", score="x" * 300),
        event("BAD-5", delivered_on="2027-01-15"),
        event("BAD-6", certifier="nobody"),
    ]
    corrected_before = [event(f"COR-{i}", score="100") for i in range(3)]
    results = ingest(core, *generated, *invalid, *corrected_before)
    assert all(r.accepted for r in results[: len(generated)]), [
        (r.record_id, r.errors) for r in results if r.errors
    ][:5]
    assert [r.status for r in results[len(generated) : -3]] == ["invalid"] * len(invalid)

    counts_before = Counter(
        r["record_id"] for r in rows(core, "SELECT record_id FROM history ORDER BY id")
    )
    # Replays (new event_id, same content), duplicates (same event), in one group and alone.
    replays = [replay(e) for e in generated[:10]] + generated[10:15] + [replay(invalid[0])]
    for result in ingest(core, *replays):
        assert result.outcome == "unchanged"
    assert ingest_one(core, replay(generated[20])).outcome == "unchanged"
    assert ingest_one(core, invalid[1]).status == "invalid"
    counts_after = Counter(
        r["record_id"] for r in rows(core, "SELECT record_id FROM history ORDER BY id")
    )
    assert counts_after == counts_before

    # Corrections while pending: the content is replaced, the record stays pending.
    for i, original in enumerate(corrected_before):
        fixed = replay(original)
        fixed["score"] = str(900 + i)
        result = ingest_one(core, fixed)
        assert (result.outcome, result.status) == ("updated", "pending")

    report = core.flusher.flush(force=True)
    assert report.ok and not report.failed
    assert {b.certifier for b in report.written} == {"pix", "school"}

    valid_ids = {e["record_id"] for e in generated} | {e["record_id"] for e in corrected_before}
    counts = ids_in_files(core.settings.paths.outbox)
    assert set(counts) == valid_ids
    assert set(counts.values()) == {1}
    assert_official_valid(xml_files(core.settings.paths.outbox), official_xsd)

    for path in xml_files(core.settings.paths.outbox):
        found = passages(path)
        for i in range(3):
            if f"COR-{i}" in found:
                assert found[f"COR-{i}"].findtext("cpf:scoring", namespaces=NS) == str(900 + i)

    # Invalid events are invalid records with field-level errors, never in a file.
    expected_fields = {
        "BAD-1": "delivered_on",
        "BAD-2": "certification.code",
        "BAD-3": "obtention",
        "BAD-4": "score",
        "BAD-5": "delivered_on",
        "BAD-6": "certifier",
    }
    for rid, field in expected_fields.items():
        detail = record(core, rid)
        assert detail["status"] == "invalid"
        assert field in {e["field"] for e in detail["errors"]}, (rid, detail["errors"])
        assert all(e["message"] for e in detail["errors"])
    assert set(outstanding_ids(core, statuses=("invalid",))) == set(expected_fields)

    # Every transition has its history row.
    for rid in valid_ids:
        steps = [(h["from_status"], h["to_status"]) for h in history(core, rid)]
        assert steps[0] == (None, "pending")
        assert steps[-1] == ("pending", "batched")
    assert [(h["from_status"], h["to_status"]) for h in history(core, "COR-0")] == [
        (None, "pending"),
        ("pending", "pending"),
        ("pending", "batched"),
    ]
    # The record says where it went: its batch, written to a file in the outbox.
    batch = record(core, "COR-0")["batch"]
    assert batch["state"] == "written"
    assert (core.settings.paths.outbox / "pix" / batch["file_name"]).is_file()

    # A second flush finds nothing and writes nothing.
    again = core.flusher.flush(force=True)
    assert not (again.cut or again.written or again.failed)
    assert ids_in_files(core.settings.paths.outbox) == counts
    core.close()


def test_replay_changes_nothing_whatever_the_status(core: Core, shared_dir: Path) -> None:
    original = event("PX-REPLAY")
    other = event("PX-OTHER")
    ingest(core, original, other)

    def unchanged_everywhere() -> None:
        before = (history(core, "PX-REPLAY"), rows(core, "SELECT * FROM contents"))
        for again in (original, replay(original)):
            result = ingest_one(core, again)
            assert result.outcome == "unchanged"
            assert not result.errors
        assert (history(core, "PX-REPLAY"), rows(core, "SELECT * FROM contents")) == before

    unchanged_everywhere()  # pending
    report = core.flusher.flush(force=True)
    unchanged_everywhere()  # batched, written
    batch = batch_row(core, report.written[0].batch_id)
    data = processed_report(
        shared_dir,
        file_name=batch["file_name"],
        id_flux=batch["batch_id"],
        ok=["PX-REPLAY"],
        ko={"PX-OTHER": NO_HOLDER},
    )
    core.feedback.import_report_bytes(data, "r.xml")
    unchanged_everywhere()  # accepted
    assert record(core, "PX-REPLAY")["status"] == "accepted"
    result = ingest_one(core, replay(other))
    assert (result.outcome, result.status) == ("unchanged", "rejected")
    assert not core.flusher.flush(force=True).cut


# =============================================================================================
# Corrections and revocations
# =============================================================================================


def test_correction_after_rejection_requeues_and_is_sent_again(
    core_1_1_2: Core, shared_dir: Path, tmp_path: Path, official_xsd: Path
) -> None:
    core = core_1_1_2
    first = event("PX-REJ", score="100")
    ingest(core, first, event("PX-FINE"))
    report = core.flusher.flush(force=True)
    batch = batch_row(core, only_batch(report))
    path = write_report(
        tmp_path,
        "report-1.xml",
        processed_report(
            shared_dir,
            file_name=batch["file_name"],
            id_flux=batch["batch_id"],
            ok=["PX-FINE"],
            ko={"PX-REJ": NO_HOLDER},
        ),
    )
    summary = core.feedback.import_report(path)
    assert (summary.accepted, summary.rejected) == (["PX-FINE"], ["PX-REJ"])
    rejected = record(core, "PX-REJ")
    assert rejected["status"] == "rejected"
    assert rejected["cdc_message"] == NO_HOLDER
    assert "PX-REJ" in outstanding_ids(core)
    assert "PX-FINE" not in outstanding_ids(core)

    fixed = replay(first)
    fixed["score"] = "555"
    fixed["holder"]["birth_date"] = "1993-05-24"
    result = ingest_one(core, fixed)
    assert (result.outcome, result.status) == ("updated", "pending")
    detail = record(core, "PX-REJ")
    assert detail["batch_id"] is None and detail["cdc_message"] is None
    assert detail["version"] == 2

    assert not core.flusher.flush().cut  # not due yet: the correction only re-queues it
    second = core.flusher.flush(force=True)
    new_batch = only_batch(second)
    assert new_batch != batch["batch_id"]
    found = passages(second.written[0].path)
    assert list(found) == ["PX-REJ"]
    assert found["PX-REJ"].findtext("cpf:scoring", namespaces=NS) == "555"
    assert found["PX-REJ"].findtext(".//cpf:jourNaissance", namespaces=NS) == "24"
    assert_official_valid([second.written[0].path], official_xsd)
    steps = [(h["from_status"], h["to_status"]) for h in history(core, "PX-REJ")]
    assert steps == [
        (None, "pending"),
        ("pending", "batched"),
        ("batched", "rejected"),
        ("rejected", "pending"),
        ("pending", "batched"),
    ]


def test_correction_after_batching_is_kept_flagged_and_not_sent(
    core: Core, shared_dir: Path
) -> None:
    """Deposited, the file may be with the CDC: the correction waits for its report.

    (A file written and not deposited is superseded instead: tests/test_cdc_loop.py.)"""
    original = event("PX-LATE", score="100")
    ingest(core, original)
    batch_id = only_batch(core.flusher.flush(force=True))
    core.operations.deposited([batch_id])
    fixed = replay(original)
    fixed["score"] = "777"
    result = ingest_one(core, fixed)
    assert (result.outcome, result.status) == ("correction_stored", "deposited")
    assert ingest_one(core, replay(fixed)).outcome == "unchanged"  # the stored correction

    listed = {r["record_id"]: r for r in outstanding(core)}
    assert listed["PX-LATE"]["correction_pending"] is True
    assert listed["PX-LATE"]["status"] == "deposited"
    assert listed["PX-LATE"]["batch_id"] == batch_id
    contents = rows(
        core,
        "SELECT version, payload FROM contents WHERE record_id = ? ORDER BY version",
        "PX-LATE",
    )
    assert [c["version"] for c in contents] == [1, 2]
    assert json.loads(contents[1]["payload"])["score"] == "777"
    detail = record(core, "PX-LATE")
    assert (detail["version"], detail["correction_version"]) == (1, 2)
    assert detail["history"][-1]["reason"].startswith("correction received after the batch")

    # Not sent: nothing is pending, and the batch re-rendered would hold the frozen version.
    assert not core.flusher.flush(force=True).cut
    only = xml_files(core.settings.paths.outbox)
    assert len(only) == 1
    assert passages(only[0])["PX-LATE"].findtext("cpf:scoring", namespaces=NS) == "100"

    # Accepted by the CDC, it stays outstanding until the correction path clears it.
    batch = batch_row(core, batch_id)
    core.feedback.import_report_bytes(
        processed_report(
            shared_dir, file_name=batch["file_name"], id_flux=batch_id, ok=["PX-LATE"]
        ),
        "r.xml",
    )
    listed = {r["record_id"]: r for r in outstanding(core)}
    assert listed["PX-LATE"]["status"] == "accepted"
    assert listed["PX-LATE"]["correction_pending"] is True


def test_revocation_before_batching_withdraws(core: Core) -> None:
    ingest(core, event("PX-GONE"), event("PX-STAY"))
    result = ingest_one(core, revoked_event(record_id="PX-GONE"))
    assert (result.outcome, result.status) == ("withdrawn", "withdrawn")
    assert ingest_one(core, revoked_event(record_id="PX-GONE")).outcome == "unchanged"
    assert "PX-GONE" not in outstanding_ids(core)
    assert record(core, "PX-GONE")["history"][-1]["to_status"] == "withdrawn"
    report = core.flusher.flush(force=True)
    assert ids_in_files(core.settings.paths.outbox) == Counter({"PX-STAY": 1})
    assert report.cut[0].passages == 1
    # An invalid record, never sent, is withdrawn too.
    ingest(core, event("PX-INV", delivered_on="2026-02-30"))
    assert ingest_one(core, revoked_event(record_id="PX-INV")).status == "withdrawn"
    assert "PX-INV" not in outstanding_ids(core)


def test_revocation_after_batching_is_flagged(core: Core) -> None:
    ingest(core, event("PX-REV"))
    core.flusher.flush(force=True)
    result = ingest_one(core, revoked_event(record_id="PX-REV"))
    assert (result.outcome, result.status) == ("revocation_flagged", "batched")
    listed = {r["record_id"]: r for r in outstanding(core)}
    assert listed["PX-REV"]["revocation_pending"] is True
    assert listed["PX-REV"]["status"] == "batched"
    assert ingest_one(core, revoked_event(record_id="PX-REV")).outcome == "unchanged"
    assert len(ids_in_files(core.settings.paths.outbox)) == 1
    # An unknown record cannot be revoked, and says so on record_id.
    refused = ingest_one(core, revoked_event(record_id="PX-NEVER"))
    assert refused.errors and refused.errors[0].field == "record_id"


def test_record_id_of_another_certifier_is_refused_and_logged(core: Core) -> None:
    ingest(core, event("SHARED-1"))
    result = ingest_one(core, event("SHARED-1", certifier="school"))
    assert result.outcome == "refused"
    assert [p.field for p in result.errors] == ["record_id"]
    assert "pix" in result.errors[0].message
    detail = record(core, "SHARED-1")
    assert (detail["certifier"], detail["status"], detail["version"]) == ("pix", "pending", 1)
    assert len(detail["history"]) == 1
    logged = rows(core, "SELECT * FROM unusable")
    assert len(logged) == 1
    assert logged[0]["record_id"] == "SHARED-1"
    assert json.loads(logged[0]["errors"])[0]["field"] == "record_id"
    assert "school" in logged[0]["raw"]
    with core.store.reading() as reader:
        assert reader.summary(TODAY, 14)["unusable_events"] == 1


def test_events_without_a_usable_record_id_are_logged(core: Core) -> None:
    results = ingest(
        core,
        b"{not json",
        {"event_id": "e1"},
        {**event("Y"), "record_id": "R" * 256},
        {**event("Z"), "record_id": 42},
        "[1, 2]",
    )
    assert all(r.status is None and r.errors for r in results)
    assert [r.errors[0].field for r in results] == [
        "event",
        "record_id",
        "record_id",
        "record_id",
        "event",
    ]
    assert len(rows(core, "SELECT * FROM unusable")) == 5
    assert rows(core, "SELECT * FROM records") == []


# =============================================================================================
# When a certifier is due, and how files are cut
# =============================================================================================


def test_due_by_size(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path, batching={"max_records": 3})
    ingest(core, event("S-1"), event("S-2"))
    ingest(core, event("K-1", certifier="school"))
    report = core.flusher.flush()
    assert not (report.cut or report.written)
    ingest(core, event("S-3"))
    report = core.flusher.flush()
    assert [(c.certifier, c.passages) for c in report.cut] == [("pix", 3)]
    assert "max_records" in report.cut[0].reason
    assert record(core, "K-1")["status"] == "pending"
    core.close()


def test_due_by_age(tmp_path: Path) -> None:
    core, clock = make_core(tmp_path, batching={"max_delay": "15m"})
    ingest(core, event("A-1"))
    clock.advance(timedelta(minutes=10))
    ingest(core, event("A-2"))
    assert not core.flusher.flush().cut
    clock.advance(timedelta(minutes=4, seconds=59))
    assert not core.flusher.flush().cut
    clock.advance(timedelta(seconds=1))
    report = core.flusher.flush()
    assert [(c.certifier, c.passages) for c in report.cut] == [("pix", 2)]
    assert "max_delay" in report.cut[0].reason
    assert len(report.written) == 1
    core.close()


def test_due_by_deadline_margin(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path, batching={"deadline_margin": "14d", "max_delay": "1d"})
    ingest(core, event("M-0", certifier="school", delivered_on="2026-09-22"))  # 20 days left
    assert not core.flusher.flush().cut
    old = (TODAY - timedelta(days=80)).isoformat()
    ingest(core, event("M-1", delivered_on=old), event("M-2"))
    report = core.flusher.flush()
    assert [(c.certifier, c.passages) for c in report.cut] == [("pix", 2)]
    assert "deadline margin" in report.cut[0].reason
    assert record(core, "M-0")["status"] == "pending"
    core.close()


def test_files_split_at_max_records(tmp_path: Path, official_xsd: Path) -> None:
    core, _ = make_core(tmp_path, batching={"max_records": 5}, schema=SCHEMA_1_1_2)
    events = [event(f"PX-{i:03d}") for i in range(9)]
    events += [
        event(
            f"RN-{i:03d}",
            certification={"type": "RNCP", "code": "RNCP37873"},
            obtention="PAR_ADMISSION",
            score=None,
            digital_level=None,
        )
        for i in range(3)
    ]
    ingest(core, *events)
    report = core.flusher.flush()
    assert sorted(c.passages for c in report.cut) == [2, 5, 5]
    files = xml_files(core.settings.paths.outbox)
    assert len(files) == 3
    counts = ids_in_files(core.settings.paths.outbox)
    assert set(counts) == {e["record_id"] for e in events}
    assert set(counts.values()) == {1}
    assert_official_valid(files, official_xsd)
    core.close()


def test_files_split_under_max_file_bytes(tmp_path: Path, official_xsd: Path) -> None:
    limit = 100_000
    core, _ = make_core(tmp_path, batching={"max_file_bytes": limit}, schema=SCHEMA_1_1_2)
    generated = list(
        generate_events(
            150,
            [GeneratedCertifier("pix", ("RS5875", "RNCP37873"))],
            today=TODAY,
            seed=3,
        )
    )
    results = ingest(core, *generated)
    assert all(r.accepted for r in results)
    report = core.flusher.flush(force=True)
    assert report.ok
    files = xml_files(core.settings.paths.outbox)
    assert len(files) >= 2
    for path in files:
        assert path.stat().st_size <= limit, path
    assert sum(w.bytes for w in report.written) == sum(p.stat().st_size for p in files)
    counts = ids_in_files(core.settings.paths.outbox)
    assert set(counts) == {e["record_id"] for e in generated}
    assert set(counts.values()) == {1}
    assert_official_valid(files, official_xsd)
    core.close()


def test_render_processes_write_the_same_files_as_the_calling_process(tmp_path: Path) -> None:
    """The XML outbox's pool (render_processes > 0) and in-process rendering of the same
    frozen batches give the same file names and the same bytes."""
    alone, pooled = tmp_path / "alone", tmp_path / "pooled"
    alone.mkdir()
    core, _ = make_core(alone, batching={"max_records": 40})
    generated = generate_events(
        150, [GeneratedCertifier("pix", ("RS5875", "RNCP37873"))], today=TODAY, seed=5
    )
    assert all(r.accepted for r in ingest(core, *generated))
    cut = FlushReport()
    core.flusher.cut(cut, force=True)
    core.close()
    assert len(cut.cut) == 4
    (pooled / "var").mkdir(parents=True)
    shutil.copyfile(alone / "var" / "state.db", pooled / "var" / "state.db")
    written = {}
    for folder, processes in ((alone, 0), (pooled, 2)):
        core, _ = make_core(folder, batching={"max_records": 40, "render_processes": processes})
        try:
            report = FlushReport()
            core.flusher.write_unwritten(report)
        finally:
            core.close()
        assert report.ok and len(report.written) == 4
        outbox = folder / "var" / "outbox"
        written[processes] = {p.relative_to(outbox): p.read_bytes() for p in xml_files(outbox)}
    assert written[0] == written[2]


def test_render_processes_yield_the_cpu_to_the_processes_that_store(tmp_path: Path) -> None:
    """On a busy machine the files wait (they are due within the batching delay), the events
    do not: the render processes run at a lower priority than the process that starts them."""
    core, _ = make_core(tmp_path, batching={"render_processes": 1})
    try:
        outbox = core.flusher.sink
        assert isinstance(outbox, XmlOutbox)
        niceness = outbox._render_pool().submit(os.nice, 0).result(timeout=120)
    finally:
        core.close()
    assert niceness == min(19, os.nice(0) + RENDER_NICENESS)


# =============================================================================================
# The CDC feedback loop
# =============================================================================================


def test_report_import_outcomes(core: Core, shared_dir: Path, tmp_path: Path) -> None:
    ids = ["R-OK", "R-KO", "R-KNOWN", "R-SILENT"]
    ingest(core, *(event(i) for i in ids))
    batch_id = only_batch(core.flusher.flush(force=True))
    batch = batch_row(core, batch_id)
    assert (core.settings.paths.outbox / "pix" / batch["file_name"]).is_file()
    path = write_report(
        tmp_path,
        "report.xml",
        processed_report(
            shared_dir,
            file_name=batch["file_name"],
            id_flux=batch_id,
            ok=["R-OK"],
            ko={"R-KO": NO_HOLDER, "R-KNOWN": ALREADY.format(rid="R-KNOWN"), "GHOST": NO_HOLDER},
        ),
    )
    summary = core.feedback.import_report(path)
    assert summary.batch_id == batch_id
    assert not summary.already_imported
    assert sorted(summary.accepted) == ["R-KNOWN", "R-OK"]
    assert summary.rejected == ["R-KO"]
    assert summary.unknown_ids == ["GHOST"]
    assert summary.not_mentioned == ["R-SILENT"]
    statuses = {i: record(core, i)["status"] for i in ids}
    assert statuses == {
        "R-OK": "accepted",
        "R-KO": "rejected",
        "R-KNOWN": "accepted",
        "R-SILENT": "batched",
    }
    assert set(outstanding_ids(core)) == {"R-KO", "R-SILENT"}
    assert record(core, "R-KO")["history"][-1]["report"].startswith("report.xml")
    assert batch_row(core, batch_id)["id_traitement"] == "67598"

    before = rows(core, "SELECT * FROM history ORDER BY id")
    again = core.feedback.import_report(path)
    assert again.already_imported
    assert (again.accepted, again.rejected) == ([], [])
    assert rows(core, "SELECT * FROM history ORDER BY id") == before
    assert {i: record(core, i)["status"] for i in ids} == statuses


def test_an_already_exists_naming_another_id_is_delivered_and_said(
    core: Core, shared_dir: Path, tmp_path: Path
) -> None:
    """SPEC §9's real report answers a passage with "existe déjà en base" naming another
    idTechnique: the CDC holds the certification under that id. Counted as delivered (as Pix
    does), and the import says which id holds it: a correction or withdrawal must name it."""
    ingest(core, event("E-1"))
    batch_id = only_batch(core.flusher.flush(force=True))
    data = report_on_batch(core, shared_dir, batch_id, ko={"E-1": ALREADY.format(rid="1559735")})
    summary = core.feedback.import_report(write_report(tmp_path, "report.xml", data))
    assert summary.accepted == ["E-1"]
    assert record(core, "E-1")["status"] == "accepted"
    assert any("under idTechnique 1559735, not E-1" in note for note in summary.notes)


def test_the_same_report_in_other_bytes_is_recognised_by_its_processing(
    core: Core, shared_dir: Path, tmp_path: Path
) -> None:
    """A report was recognised by the SHA-256 of its bytes only: the same report saved again
    with other line endings (a mail client, an editor, a second download) was applied again,
    on records that had moved on since (a rejected record retried went back to rejected; in
    the CDC loop, a record deleted by the CDC came back `accepted`). A report answering a file
    already answered under the same idTraitement now changes nothing."""
    ingest(core, event("P-OK"), event("P-KO"))
    batch_id = only_batch(core.flusher.flush(force=True))
    data = report_on_batch(core, shared_dir, batch_id, ok=["P-OK"], ko={"P-KO": NO_HOLDER})
    assert b"\r\n" not in data
    core.feedback.import_report(write_report(tmp_path, "report.xml", data))
    assert record(core, "P-KO")["status"] == "rejected"
    (retried,) = core.operations.retry(["P-KO"])
    assert retried.done, retried
    assert record(core, "P-KO")["status"] == "pending"
    before = rows(core, "SELECT * FROM history ORDER BY id")
    resaved = write_report(tmp_path, "report (1).xml", data.replace(b"\n", b"\r\n"))
    again = core.feedback.import_report(resaved)
    assert again.already_imported
    assert any("idTraitement 67598" in note for note in again.notes), again.notes
    assert record(core, "P-KO")["status"] == "pending"
    assert rows(core, "SELECT * FROM history ORDER BY id") == before


def test_whole_file_rejection_rejects_every_member(
    core: Core, shared_dir: Path, tmp_path: Path
) -> None:
    ingest(core, event("F-1"), event("F-2"), event("F-3", certifier="school"))
    report = core.flusher.flush(force=True)
    pix = next(w.batch_id for w in report.written if w.certifier == "pix")
    batch = batch_row(core, pix)
    path = write_report(
        tmp_path, "rejected.xml", file_rejected_report(shared_dir, file_name=batch["file_name"])
    )
    summary = core.feedback.import_report(path)
    assert summary.batch_id == pix
    assert sorted(summary.rejected) == ["F-1", "F-2"]
    assert summary.file_error and "XSD" in summary.file_error
    for rid in ("F-1", "F-2"):
        detail = record(core, rid)
        assert detail["status"] == "rejected"
        assert detail["cdc_message"].startswith("file rejected: XSD")
    assert record(core, "F-3")["status"] == "batched"
    assert core.feedback.import_report(path).already_imported


@pytest.mark.parametrize(
    "uploaded_as",
    ["{stem}_002.xml", "{stem}.xml.gz", "depot/{stem}.XML"],
)
def test_a_rejected_file_renamed_before_its_upload_is_found_by_its_batch_id(
    core: Core, shared_dir: Path, tmp_path: Path, uploaded_as: str
) -> None:
    """The CDC echoes the name the file was uploaded under (its real report names a split
    `..._002.xml`); a whole-file rejection carries no idFlux. The report was refused ("no
    batch has that file name") and the records stayed deposited, with no way out but SQL."""
    ingest(core, event("N-1"), event("N-2"), event("N-3", certifier="school"))
    report = core.flusher.flush(force=True)
    pix = next(w.batch_id for w in report.written if w.certifier == "pix")
    core.operations.deposited([pix])
    name = uploaded_as.format(stem=batch_row(core, pix)["file_name"].removesuffix(".xml"))
    path = write_report(tmp_path, "r.xml", file_rejected_report(shared_dir, file_name=name))
    summary = core.feedback.import_report(path)
    assert summary.batch_id == pix
    assert sorted(summary.rejected) == ["N-1", "N-2"]
    said = summary.notes
    assert any("matched by the batch id the name carries" in n for n in said), said
    assert record(core, "N-3")["status"] == "batched"


def test_a_file_name_carrying_another_id_matches_no_batch(core: Core, shared_dir: Path) -> None:
    ingest(core, event("O-1"))
    only_batch(core.flusher.flush(force=True))
    name = "03VML243_pix_20261202T000000_00000000-0000-4000-8000-000000000000.xml"
    with pytest.raises(AccrochageError, match="no batch has that file name"):
        core.feedback.import_report_bytes(file_rejected_report(shared_dir, file_name=name), "r")
    assert record(core, "O-1")["status"] == "batched"


def test_a_batch_named_by_the_operator_must_be_the_one_the_report_names(
    core: Core, shared_dir: Path, tmp_path: Path
) -> None:
    ingest(core, event("P-1"), event("P-2", certifier="school"))
    written = {w.certifier: w.batch_id for w in core.flusher.flush(force=True).written}
    name = batch_row(core, written["pix"])["file_name"]
    data = processed_report(shared_dir, file_name=name, id_flux=written["pix"], ok=["P-1"])
    path = write_report(tmp_path, "r.xml", data)
    with pytest.raises(AccrochageError, match=f"the report names batch {written['pix']}"):
        core.feedback.import_report(path, written["school"])
    assert {record(core, r)["status"] for r in ("P-1", "P-2")} == {"batched"}
    assert core.feedback.import_report(path, written["pix"]).accepted == ["P-1"]


def test_deposited_and_retry(core: Core, shared_dir: Path) -> None:
    ingest(core, event("D-1"), event("D-2"))
    batch_id = only_batch(core.flusher.flush(force=True))
    (done,) = core.operations.deposited([batch_id])
    assert (done.done, str(done)) == (True, f"{batch_id}: batch {batch_id} deposited (2 records)")
    assert {record(core, r)["status"] for r in ("D-1", "D-2")} == {"deposited"}
    assert batch_row(core, batch_id)["state"] == "deposited"
    (again,) = core.operations.deposited([batch_id])
    assert again.done and again.message == f"batch {batch_id} already recorded as deposited"
    assert record(core, "D-1")["history"][-1]["from_status"] == "batched"

    batch = batch_row(core, batch_id)
    core.feedback.import_report_bytes(
        processed_report(
            shared_dir,
            file_name=batch["file_name"],
            id_flux=batch_id,
            ko={"D-1": NO_HOLDER},
            ok=["D-2"],
        ),
        "r.xml",
    )
    assert record(core, "D-1")["status"] == "rejected"
    refused, done = core.operations.retry(["D-2", "D-1"])
    assert not refused.done and "only rejected records" in refused.message
    assert done.done and done.message.startswith("pending (was rejected)")
    assert "warning: the CDC rejected its identity" in done.message
    detail = record(core, "D-1")
    assert (detail["status"], detail["batch_id"]) == ("pending", None)
    assert detail["history"][-1]["reason"] == "retried by the operator"
    again = core.flusher.flush(force=True)
    assert list(passages(again.written[0].path)) == ["D-1"]
    assert ids_in_files(core.settings.paths.outbox) == Counter({"D-1": 2, "D-2": 1})


# =============================================================================================
# The outstanding query
# =============================================================================================


@pytest.fixture()
def deadlines(core: Core) -> Core:
    """Records whose days_left as of TODAY (2026-12-01) are known."""
    ingest(
        core,
        event("O-LATE", delivered_on="2026-08-20"),  # deadline 2026-11-20: -11
        event("O-SOON", delivered_on="2026-09-10"),  # 2026-12-10: 9
        event("O-MID", delivered_on="2026-09-25"),  # 2026-12-25: 24
        event("O-FAR"),  # 2027-02-18: 79
        event("O-INV", certifier="school", delivered_on="2026-09-12", holder=None),  # 11
        event("O-NODATE", delivered_on="someday"),  # no deadline
    )
    return core


def test_outstanding_filters(deadlines: Core) -> None:
    core = deadlines
    listed = {r["record_id"]: r for r in outstanding(core)}
    assert list(listed) == ["O-LATE", "O-SOON", "O-INV", "O-MID", "O-FAR", "O-NODATE"]
    assert {k: v["days_left"] for k, v in listed.items()} == {
        "O-LATE": -11,
        "O-SOON": 9,
        "O-INV": 11,
        "O-MID": 24,
        "O-FAR": 79,
        "O-NODATE": None,
    }
    assert listed["O-INV"]["status"] == "invalid"
    assert listed["O-INV"]["errors"][0]["field"] == "holder"
    assert set(queries.OUTSTANDING_FIELDS) <= set(listed["O-FAR"])

    assert outstanding_ids(core, due_within=10) == ["O-LATE", "O-SOON"]
    assert outstanding_ids(core, due_within=11) == ["O-LATE", "O-SOON", "O-INV"]
    assert outstanding_ids(core, due_within=0) == ["O-LATE"]
    assert outstanding_ids(core, overdue=True) == ["O-LATE"]
    assert outstanding_ids(core, certifier="school") == ["O-INV"]
    assert outstanding_ids(core, statuses=("invalid",)) == ["O-INV", "O-NODATE"]
    assert outstanding_ids(core, statuses=("pending",), certifier="pix") == [
        "O-LATE",
        "O-SOON",
        "O-MID",
        "O-FAR",
    ]

    deadline_day = date(2026, 12, 12)  # O-INV's deadline: still on time that day
    assert outstanding_ids(core, as_of=deadline_day, overdue=True) == ["O-LATE", "O-SOON"]
    later = date(2026, 12, 13)
    shifted = {r["record_id"]: r["days_left"] for r in outstanding(core, as_of=later)}
    assert (shifted["O-SOON"], shifted["O-INV"], shifted["O-FAR"]) == (-3, -1, 67)
    assert outstanding_ids(core, as_of=later, overdue=True) == ["O-LATE", "O-SOON", "O-INV"]
    assert outstanding_ids(core, as_of=date(2026, 11, 1), overdue=True) == []


@pytest.mark.parametrize("order", list(RecordOrder))
def test_outstanding_paging_returns_every_row_once(core: Core, order: RecordOrder) -> None:
    many = []
    for i in range(23):
        delivered = (date(2026, 9, 1) + timedelta(days=i % 5)).isoformat()
        many.append(event(f"P-{(i * 7) % 23:02d}", delivered_on=delivered))
    many += [event(f"P-NULL-{i}", delivered_on="bad") for i in range(4)]
    ingest(core, *many)
    everything = outstanding_ids(core, order=order)
    assert len(everything) == 27
    if order is RecordOrder.RECORD_ID:
        assert everything == sorted(everything)
    for size in (1, 2, 5, 26, 27, 100):
        seen: list[str] = []
        cursor = None
        for _ in range(40):
            page = outstanding(core, limit=size, cursor=cursor, order=order)
            seen += [r["record_id"] for r in page]
            if len(page) < size:
                break
            cursor = queries.records_cursor(page[-1], order)
        assert seen == everything, size


def test_a_listing_is_one_snapshot_whatever_a_writer_commits_while_it_is_read(
    core: Core,
) -> None:
    """`outstanding` reads dated records, then undated ones, in two statements: a record
    given a delivery date between them is listed once, as it was when the listing began."""
    ingest(
        core,
        event("S-EARLY", delivered_on="2026-09-01"),
        event("S-LATE", delivered_on="2026-09-20"),
        event("S-UNDATED", delivered_on="bad"),
    )
    with core.store.reading() as reader:
        rows = reader.iter_outstanding(queries.OutstandingQuery(as_of=TODAY))
        first = next(rows)
        ingest(core, event("S-UNDATED", delivered_on="2026-09-30"))
        rest = list(rows)
    listed = [first["record_id"], *(r["record_id"] for r in rest)]
    assert listed == ["S-EARLY", "S-LATE", "S-UNDATED"]
    assert rest[-1]["deadline"] is None, "as it was when the listing began"
    assert outstanding(core)[-1]["deadline"] is not None, "the correction was stored"


# =============================================================================================
# Crashes and failures
# =============================================================================================


def test_batch_cut_but_not_written_is_written_after_a_restart(tmp_path: Path) -> None:
    core, clock = make_core(tmp_path)
    ingest(core, event("C-1"), event("C-2"), event("C-3", certifier="school"))
    cut = FlushReport()
    core.flusher.cut(cut, force=True)
    assert len(cut.cut) == 2
    assert xml_files(core.settings.paths.outbox) == []
    names = {b["batch_id"]: b["file_name"] for b in rows(core, "SELECT * FROM batches")}
    assert {b["state"] for b in rows(core, "SELECT * FROM batches")} == {"cut"}
    core.close()

    clock.advance(timedelta(minutes=3))  # the restart happens later: the name must not move
    restarted = build_core(load_settings(tmp_path / "accrochage.toml"), clock)
    report = restarted.flusher.flush()
    assert not report.cut
    assert {w.batch_id: w.path.name for w in report.written} == names
    assert not restarted.flusher.flush(force=True).written
    files = xml_files(restarted.settings.paths.outbox)
    assert sorted(p.name for p in files) == sorted(names.values())
    assert ids_in_files(restarted.settings.paths.outbox) == Counter({"C-1": 1, "C-2": 1, "C-3": 1})
    assert {b["state"] for b in rows(restarted, "SELECT * FROM batches")} == {"written"}
    restarted.close()


def test_failing_outbox_keeps_the_batch_and_a_later_flush_writes_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the outbox should be\n")
    broken = blocker / "outbox"
    core, clock = make_core(tmp_path, paths={"outbox": broken})
    ingest(core, event("B-1"), event("B-2"))
    report = core.flusher.flush(force=True)
    assert not report.ok
    assert len(report.failed) == 1 and not report.written
    failed = report.failed[0]
    assert "Error" in failed.error and "not-a-directory" in failed.error
    batch = batch_row(core, failed.batch_id)
    assert (batch["state"], batch["file_path"]) == ("failed", None)
    assert batch["error"] == failed.error
    assert {record(core, r)["status"] for r in ("B-1", "B-2")} == {"batched"}
    assert set(outstanding_ids(core)) == {"B-1", "B-2"}
    # The table says why (the alert and doctor send the operator to `accrochage batches`).
    with core.store.reading() as reader:
        (listed,) = reader.batches()
    assert batch_cell(listed, "file").startswith("not written: ") and "Error" in batch_cell(
        listed, "file"
    )
    assert not list(tmp_path.rglob("*.xml"))
    assert not list(tmp_path.rglob("*.partial"))
    # Still failing on the next attempt, still nothing lost.
    assert not core.flusher.flush().ok
    core.close()

    fixed, _ = make_core(tmp_path, clock, paths={"outbox": tmp_path / "outbox"})
    report = fixed.flusher.flush()
    assert report.ok
    assert [w.batch_id for w in report.written] == [failed.batch_id]
    assert report.written[0].path.name == batch["file_name"]
    assert ids_in_files(tmp_path / "outbox") == Counter({"B-1": 1, "B-2": 1})
    written = batch_row(fixed, failed.batch_id)
    assert (written["state"], written["error"]) == ("written", None)
    fixed.close()


# =============================================================================================
# Regressions
# =============================================================================================


def test_stored_correction_sent_again_after_a_rejection_requeues(
    core: Core, shared_dir: Path
) -> None:
    """A correction kept while deposited becomes the content when the CDC rejects the record;
    the platform sending it again changes nothing."""
    original = event("RC-1", score="100")
    ingest(core, original)
    batch_id = only_batch(core.flusher.flush(force=True))
    fixed = replay(original)
    fixed["score"] = "200"
    core.operations.deposited([batch_id])
    assert ingest_one(core, fixed).outcome == "correction_stored"
    batch = batch_row(core, batch_id)
    core.feedback.import_report_bytes(
        processed_report(
            shared_dir, file_name=batch["file_name"], id_flux=batch_id, ko={"RC-1": NO_HOLDER}
        ),
        "r.xml",
    )
    assert record(core, "RC-1")["status"] == "pending"

    result = ingest_one(core, replay(fixed))
    assert (result.outcome, result.status) == ("unchanged", "pending")
    detail = record(core, "RC-1")
    assert detail["correction_pending"] is False and detail["correction_version"] is None
    report = core.flusher.flush(force=True)
    found = passages(report.written[0].path)
    assert found["RC-1"].findtext("cpf:scoring", namespaces=NS) == "200"
    second = batch_row(core, report.written[0].batch_id)
    core.feedback.import_report_bytes(
        processed_report(
            shared_dir, file_name=second["file_name"], id_flux=second["batch_id"], ok=["RC-1"]
        ),
        "r2.xml",
    )
    assert record(core, "RC-1")["status"] == "accepted"
    assert "RC-1" not in outstanding_ids(core)


def test_new_correction_after_rejection_clears_the_stored_one(core: Core, shared_dir: Path) -> None:
    original = event("RC-2", score="100")
    ingest(core, original)
    batch_id = only_batch(core.flusher.flush(force=True))
    stored = replay(original)
    stored["score"] = "200"
    ingest(core, stored)
    batch = batch_row(core, batch_id)
    core.feedback.import_report_bytes(
        processed_report(
            shared_dir, file_name=batch["file_name"], id_flux=batch_id, ko={"RC-2": NO_HOLDER}
        ),
        "r.xml",
    )
    newest = replay(original)
    newest["score"] = "300"
    assert ingest_one(core, newest).status == "pending"
    listed = {r["record_id"]: r for r in outstanding(core)}
    assert listed["RC-2"]["correction_pending"] is False


def test_report_on_an_older_batch_does_not_touch_a_record_sent_again(
    core: Core, shared_dir: Path, tmp_path: Path
) -> None:
    ingest(core, event("OLD-1"))
    first = only_batch(core.flusher.flush(force=True))
    rejection = report_on_batch(core, shared_dir, first, ko={"OLD-1": NO_HOLDER})
    core.feedback.import_report_bytes(rejection, "first.xml")
    assert all(o.done for o in core.operations.retry(["OLD-1"]))
    second = only_batch(core.flusher.flush(force=True))
    # The same report downloaded again (other bytes, same content) changes nothing.
    again = core.feedback.import_report_bytes(rejection.replace(b"?>", b"?>\n", 1), "again.xml")
    assert again.already_imported
    # A later processing of the first file (another idTraitement) is imported late.
    later = report_on_batch(core, shared_dir, first, ko={"OLD-1": NO_HOLDER}, id_traitement="67599")
    summary = core.feedback.import_report_bytes(later, "later.xml")
    assert not summary.already_imported
    assert summary.unchanged == ["OLD-1"] and summary.rejected == []
    detail = record(core, "OLD-1")
    assert (detail["status"], detail["batch_id"]) == ("batched", second)


def test_due_by_age_across_the_autumn_dst_change(tmp_path: Path) -> None:
    """pending_since strings carry +02:00 then +01:00: the oldest is the earliest instant."""
    clock = FixedClock(datetime(2026, 10, 25, 0, 20, tzinfo=UTC).astimezone(PARIS))  # 02:20+02
    core, _ = make_core(tmp_path, clock, batching={"max_delay": "1h"})
    ingest(core, event("DST-1", delivered_on="2026-10-20"))
    clock.current = datetime(2026, 10, 25, 1, 5, tzinfo=UTC).astimezone(PARIS)  # 02:05+01
    ingest(core, event("DST-2", delivered_on="2026-10-20"))
    clock.current = datetime(2026, 10, 25, 1, 19, tzinfo=UTC).astimezone(PARIS)
    assert not core.flusher.flush().cut  # DST-1 has waited 59 minutes
    clock.current = datetime(2026, 10, 25, 1, 25, tzinfo=UTC).astimezone(PARIS)
    report = core.flusher.flush()  # DST-1 has waited 65 minutes
    assert [(c.certifier, c.passages) for c in report.cut] == [("pix", 2)]
    core.close()


def test_revoked_in_flight_then_rejected_is_withdrawn_and_accepted_stays_flagged(
    core: Core, shared_dir: Path, tmp_path: Path
) -> None:
    ingest(core, event("PX-GONE"), event("PX-KEPT"))
    batch_id = only_batch(core.flusher.flush(force=True))
    for rid in ("PX-GONE", "PX-KEPT"):
        assert ingest_one(core, revoked_event(record_id=rid)).outcome == "revocation_flagged"
    report = report_on_batch(core, shared_dir, batch_id, ok=["PX-KEPT"], ko={"PX-GONE": NO_HOLDER})
    core.feedback.import_report(write_report(tmp_path, "r.xml", report))
    gone, kept = record(core, "PX-GONE"), record(core, "PX-KEPT")
    assert (gone["status"], gone["revocation_pending"]) == ("withdrawn", False)
    assert "revoked" in gone["history"][-1]["reason"]
    # Accepted by the CDC: it must be deleted there, so it stays outstanding and flagged.
    assert (kept["status"], kept["revocation_pending"]) == ("accepted", True)
    assert outstanding_ids(core) == ["PX-KEPT"]
    (refused,) = core.operations.retry(["PX-GONE"])
    assert not refused.done and "only rejected records" in refused.message


def test_a_change_between_the_plan_and_the_cut_is_left_for_the_next_tick(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch is cut in its own short transaction: a record corrected or revoked by another
    writer after the plan was read is not cut with its old content."""
    first = event("PLAN-1", score="100")
    ingest(core, first, event("PLAN-2"), event("PLAN-3"))
    original = flush_module.cut_group
    fixed = replay(first)
    fixed["score"] = "200"

    def another_writer_first(*args: Any, **kwargs: Any) -> Any:
        ingest(core, fixed, revoked_event(record_id="PLAN-3"))
        return original(*args, **kwargs)

    monkeypatch.setattr(flush_module, "cut_group", another_writer_first)
    (cut,) = core.flusher.flush(force=True).cut
    monkeypatch.undo()
    assert cut.passages == 1
    assert record(core, "PLAN-2")["status"] == "batched"
    assert record(core, "PLAN-3")["status"] == "withdrawn"
    assert (record(core, "PLAN-1")["status"], record(core, "PLAN-1")["version"]) == ("pending", 2)
    (again,) = core.flusher.flush(force=True).written
    assert passages(again.path)["PLAN-1"].findtext("cpf:scoring", namespaces=NS) == "200"


def test_a_content_that_cannot_be_rendered_fails_its_file_not_the_cut(tmp_path: Path) -> None:
    """Under `max_file_bytes` a cut measures each passage exactly, rendered from its content:
    one stored content the event model refuses now (a rule tightened by an upgrade, a state
    edited by hand) raised out of the cut, so no batch of any record was cut, at every flush.
    Its file now fails naming it, the others are written, and excluding it lets its batch's
    other records go out."""
    core, _ = make_core(tmp_path, batching={"max_file_bytes": 100_000}, schema=SCHEMA_1_1_2)
    generated = list(
        generate_events(
            150, [GeneratedCertifier("pix", ("RS5875", "RNCP37873"))], today=TODAY, seed=3
        )
    )
    assert all(r.accepted for r in ingest(core, *generated))
    broken = generated[70]["record_id"]
    with contextlib.closing(sqlite3.connect(core.settings.paths.state)) as db, db:
        db.execute(
            "UPDATE contents SET payload = json_set(payload, '$.holder.birth_name', ?) "
            "WHERE record_id = ?",
            ("x" * 300, broken),
        )
        db.execute("DELETE FROM passages")  # each passage rendered from its content
    report = core.flusher.flush(force=True)
    assert len(report.cut) >= 2
    (failed,) = report.failed
    assert f"record {broken} no longer passes validation (holder.birth_name)" in failed.error
    written = ids_in_files(core.settings.paths.outbox)
    assert broken not in written
    assert len(written) >= 1
    (outcome,) = core.operations.exclude([broken], "its content is refused")
    assert outcome.done, outcome
    assert core.flusher.flush(force=True).ok
    counts = ids_in_files(core.settings.paths.outbox)
    assert set(counts) == {e["record_id"] for e in generated} - {broken}
    assert set(counts.values()) == {1}
    core.close()
