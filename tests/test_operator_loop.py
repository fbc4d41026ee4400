"""The operator's daily loop through the CLI, as a certifier's operator runs it (issue 9).

flush -> the files to deposit -> mark one deposited by its file name -> import the CDC's report
(OK, KO, "existe déjà en base") -> see the rejected records with their messages and classes ->
retry the batch -> flush again; plus exclude / include, show, records of any status, the
summary table and `check` / `POST /check`, which store nothing.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.factories import revoked_event
from tests.test_cli_tracker import recent, run, write_jsonl
from tests.test_http import core_for, get, serving
from tests.test_tracker import ALREADY, NO_HOLDER, processed_report, write_config

PLURAL = "Plusieurs titulaires correspondent aux critères obligatoires"


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def records_json(config: Path, *args: str) -> list[dict[str, Any]]:
    rows = json.loads(run(config, "records", "--format", "json", *args).stdout)
    assert isinstance(rows, list)
    return rows


def stored_count(config: Path) -> int:
    with sqlite3.connect(config.parent / "var" / "state.db") as db:
        return int(db.execute("SELECT count(*) FROM records").fetchone()[0])


def test_the_daily_loop_without_sql(config: Path, tmp_path: Path, shared_dir: Path) -> None:
    ids = ["L-OK", "L-KO", "L-TWO", "L-KNOWN", "L-SILENT"]
    run(config, "ingest", str(write_jsonl(tmp_path / "l.jsonl", [recent(i) for i in ids])))
    run(config, "flush", "--force")

    listed = json.loads(run(config, "batches", "--to-deposit", "--format", "json").stdout)
    assert len(listed) == 1
    batch = listed[0]
    assert (batch["state"], batch["action"], batch["passages"]) == ("written", "CREATION", 5)
    assert Path(batch["file"]).is_file() and Path(batch["file"]).is_absolute()
    file_name = Path(batch["file"]).name

    out = run(config, "deposited", file_name).stdout
    assert f"batch {batch['batch_id']} deposited (5 records)" in out
    assert json.loads(run(config, "batches", "--to-deposit", "--format", "json").stdout) == []

    report = tmp_path / "accuse.xml"
    report.write_bytes(
        processed_report(
            shared_dir,
            file_name=file_name,
            id_flux=batch["batch_id"],
            ok=["L-OK"],
            ko={"L-KO": NO_HOLDER, "L-TWO": PLURAL, "L-KNOWN": ALREADY.format(rid="L-KNOWN")},
        )
    )
    out = run(config, "import-report", str(report)).stdout
    assert "2 accepted, 2 rejected" in out
    assert "rejected, identity_not_found (1)" in out and f"L-KO: {NO_HOLDER}" in out
    assert "rejected, identity_ambiguous (1)" in out and f"L-TWO: {PLURAL}" in out
    # Only identity rejections: no `next:` to `retry --batch`, which would send them again
    assert "  next:" not in out, out
    kept = next(line for line in out.splitlines() if "a copy of the report is kept at" in line)
    assert Path(kept.rsplit(" ", 1)[1]).read_bytes() == report.read_bytes()

    rejected = {r["record_id"]: r for r in records_json(config, "--status", "rejected")}
    assert set(rejected) == {"L-KO", "L-TWO"}
    assert rejected["L-KO"]["cdc_reason"] == "identity_not_found"
    assert rejected["L-KO"]["cdc_message"] == NO_HOLDER
    accepted = {r["record_id"]: r for r in records_json(config, "--status", "accepted")}
    assert set(accepted) == {"L-OK", "L-KNOWN"}
    assert accepted["L-KNOWN"]["cdc_reason"] == "already_exists"
    # Nothing is due for a record the CDC holds: its legal date stays, no count of days.
    assert accepted["L-OK"]["deadline"] and accepted["L-OK"]["days_left"] is None
    assert all(isinstance(r["days_left"], int) for r in rejected.values())
    assert "L-OK" in run(config, "records", "--status", "accepted").stdout
    by_reason = records_json(config, "--reason", "identity_ambiguous")
    assert [r["record_id"] for r in by_reason] == ["L-TWO"]
    table = run(config, "records", "--status", "rejected").stdout
    assert "CDC identity_not_found: Aucun titulaire" in table
    shown = json.loads(run(config, "show", "L-KO", "--format", "json").stdout)
    assert shown["content"]["record_id"] == "L-KO" and shown["correction"] is None
    assert [b["batch_id"] for b in shown["batches"]] == [batch["batch_id"]]
    assert shown["batches"][0]["report"] == {
        "accepted": 2,
        "rejected": 2,
        "imported_at": shown["batches"][0]["report"]["imported_at"],
        "file": "accuse.xml",
    }
    text = run(config, "show", "L-KO").stdout
    assert "cdc_reason    identity_not_found" in text and "history:" in text

    retried = run(config, "retry", "--batch", file_name, "--reason", "identity_ambiguous")
    assert retried.stdout.strip().startswith("L-TWO: pending (was rejected)")
    assert "warning: the CDC rejected its identity" in retried.stdout
    mixed = run(config, "retry", "L-KO", "L-OK", "NO-SUCH", code=1)
    assert "L-KO: pending (was rejected)" in mixed.stdout
    assert "L-OK: record L-OK is accepted: only rejected records" in mixed.stderr
    assert "NO-SUCH: unknown record" in mixed.stderr
    out = run(config, "flush", "--force").stdout
    assert "cut " in out and "(pix, 2 passages)" in out
    assert {r["status"] for r in records_json(config, "--status", "batched")} == {"batched"}


def test_retry_needs_one_way_to_choose_records(config: Path) -> None:
    run(config, "ingest", str(write_jsonl(config.parent / "e.jsonl", [recent("R-1")])))
    assert run(config, "retry", code=2).exit_code == 2
    both = run(config, "retry", "R-1", "--all-rejected", code=2)
    assert "one of them" in both.output
    assert "nothing to do" in run(config, "retry", "--all-rejected").stdout


def test_exclude_and_include(config: Path, tmp_path: Path) -> None:
    invalid = recent("X-BAD", delivered_on="2099-01-01")
    run(config, "ingest", str(write_jsonl(tmp_path / "x.jsonl", [recent("X-1"), invalid])))
    out = run(config, "exclude", "X-1", "X-BAD", "X-NONE", "--reason", "test cohort", code=1)
    assert "X-1: excluded (was pending)" in out.stdout
    assert "X-BAD: excluded (was invalid)" in out.stdout
    assert "X-NONE: unknown record" in out.stderr
    assert json.loads(run(config, "outstanding", "--format", "json").stdout) == []
    assert {r["status"] for r in records_json(config, "--status", "excluded")} == {"excluded"}
    history = json.loads(run(config, "show", "X-1", "--format", "json").stdout)["history"]
    assert history[-1]["reason"] == "excluded: test cohort"

    corrected = recent("X-1", score="400")
    run(config, "ingest", str(write_jsonl(tmp_path / "y.jsonl", [corrected])))
    shown = json.loads(run(config, "show", "X-1", "--format", "json").stdout)
    assert shown["status"] == "excluded", "a later event keeps it excluded"
    assert "nothing due" in run(config, "flush").stdout

    out = run(config, "include", "X-1", "X-BAD").stdout
    assert "X-1: pending (was excluded)" in out and "X-BAD: invalid (was excluded)" in out
    assert "X-1: already pending" in run(config, "include", "X-1").stdout, "run twice: exit 0"
    flushed = run(config, "flush", "--force").stdout
    assert "(pix, 1 passages)" in flushed
    run(config, "exclude", "X-1", "--reason", "too late", code=1)


def test_summary_is_a_table_and_csv_is_spreadsheet_friendly(config: Path, tmp_path: Path) -> None:
    events = [
        recent("S-1"),
        recent(
            "S-2",
            certifier="school",
            certification={"type": "RNCP", "code": "RNCP35726"},
            obtention="PAR_ADMISSION",
            score=None,
            digital_level=None,
        ),
        recent("S-BAD", delivered_on="2099-01-01"),
    ]
    run(config, "ingest", str(write_jsonl(tmp_path / "s.jsonl", events)))
    text = run(config, "summary").stdout
    assert text.startswith("as of ") and "3 records, 3 outstanding" in text
    assert "certifier" in text and "pix" in text and "school" in text
    assert json.loads(run(config, "summary", "--format", "json").stdout)["records"] == 3
    sheet = run(config, "records", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(sheet)))
    bad = next(r for r in rows if r["record_id"] == "S-BAD")
    assert bad["errors"].startswith("delivered_on: ") and bad["revocation_pending"] == "false"


def test_check_counts_among_the_valid_events_only_those_with_warnings(
    config: Path, tmp_path: Path
) -> None:
    """An event with an error and a warning: the summary said "1 valid (1 with warnings)"
    of a valid event that has none, the warning being the invalid one's."""
    good = recent("CW-1")
    both = recent("CW-2", delivered_on="2099-01-01", registration={"vae_path": "VAE_CLASSIQUE"})
    out = run(config, "check", str(write_jsonl(tmp_path / "c.jsonl", [good, both])), code=1)
    assert "c.jsonl:2 CW-2 warning: registration.vae_path: " in out.stdout
    assert "2 events checked: 1 valid (0 with warnings), 1 with errors" in out.stdout


def test_ingest_counts_among_the_accepted_events_only_those_with_warnings(
    config: Path, tmp_path: Path
) -> None:
    """An invalid event with a warning: `ingest` said "accepted: 1 (with warnings: 1)" of an
    accepted event that has none, the warning being the invalid one's (as `check` did)."""
    good = recent("IW-1")
    both = recent("IW-2", delivered_on="2099-01-01", registration={"vae_path": "VAE_CLASSIQUE"})
    out = run(config, "ingest", str(write_jsonl(tmp_path / "i.jsonl", [good, both]))).stdout
    assert "  accepted: 1 (with warnings: 0)" in out
    assert "  invalid:  1 " in out


def test_ingest_does_not_call_records_that_keep_their_status_invalid(
    config: Path, tmp_path: Path
) -> None:
    """The same events again once the configuration no longer gives their code: the records
    stay in their batch, yet `ingest` said "invalid: 2 (kept as invalid records, outstanding
    until fixed)" (the docs review); HTTP answers them `unchanged`, status `batched`."""
    events = write_jsonl(tmp_path / "e.jsonl", [recent("IN-1"), recent("IN-2")])
    run(config, "ingest", str(events))
    run(config, "flush", "--force")
    config.write_text(config.read_text().replace('"RS5875", "RNCP37873"', '"RNCP37873"'))
    out = run(config, "ingest", str(events)).stdout
    assert "  accepted: 0 " in out and "  invalid:  0 " in out, out
    assert "  invalid now: 2 (the same content as stored, valid then: each record keeps" in out
    assert "IN-1 certification.code: RS5875 is not delivered by certifier 'pix'" in out
    assert {r["status"] for r in records_json(config)} == {"batched"}


def test_check_validates_and_stores_nothing(config: Path, tmp_path: Path) -> None:
    good, bad = recent("C-1"), recent("C-2", delivered_on="2099-01-01")
    warned = recent("C-3", registration={"vae_path": "VAE_CLASSIQUE"})
    source = write_jsonl(tmp_path / "c.jsonl", [good, bad, warned])
    out = run(config, "check", str(source), code=1).stdout
    assert "c.jsonl:2 C-2 delivered_on:" in out
    # a warning is shown where it is, not only counted
    assert "c.jsonl:3 C-3 warning: registration.vae_path: " in out
    assert "3 events checked: 2 valid (1 with warnings)" in out and "nothing stored" in out
    assert "skipped (no state at paths.state)" in out
    assert not (config.parent / "var" / "state.db").exists()

    run(config, "ingest", str(write_jsonl(tmp_path / "own.jsonl", [recent("C-OWN")])))
    stolen = recent("C-OWN", certifier="school")
    out = run(config, "check", str(write_jsonl(tmp_path / "t.jsonl", [stolen])), code=1).stdout
    assert "already a record of certifier 'pix'" in out and "skipped" not in out
    assert stored_count(config) == 1

    # A revocation of no record is refused by ingest: check says so; one that follows its
    # record's event in the same input, or names a stored record, is valid.
    revocations = [
        revoked_event(record_id="C-NONE", certifier="pix"),
        recent("C-NEW"),
        revoked_event(record_id="C-NEW", certifier="pix"),
        revoked_event(record_id="C-OWN", certifier="pix"),
    ]
    out = run(config, "check", str(write_jsonl(tmp_path / "r.jsonl", revocations)), code=1).stdout
    assert "r.jsonl:1 C-NONE record_id: no record C-NONE to revoke" in out
    assert "4 events checked: 3 valid" in out
    assert stored_count(config) == 1


async def test_post_check_answers_without_storing(tmp_path: Path) -> None:
    core = core_for(tmp_path)
    try:
        async with serving(core) as client:
            async with client.post("/check", json=recent("PC-1")) as response:
                assert response.status == 200
                one = await response.json()
            assert one == {"record_id": "PC-1", "valid": True, "errors": [], "warnings": []}
            body = [recent("PC-2"), recent("PC-3", delivered_on="2099-01-01"), {"x": 1}]
            async with client.post("/check", json=body) as response:
                answers = await response.json()
            assert [a["valid"] for a in answers] == [True, False, False]
            assert answers[1]["errors"][0]["field"] == "delivered_on"
            status, summary = await get(client, "/summary")
            assert status == 200 and summary["records"] == 0
    finally:
        core.close()


def test_flush_prints_each_file_and_writes_a_deleted_one_again(
    config: Path, tmp_path: Path
) -> None:
    events = [recent(f"F-{i}") for i in range(3)]
    run(config, "ingest", str(write_jsonl(tmp_path / "f.jsonl", events)))
    out = run(config, "flush", "--force").stdout.splitlines()
    assert out[0].startswith("cut ") and out[1].startswith("wrote ")
    written = Path(out[1].split()[1])
    original = written.read_bytes()
    written.unlink()
    again = run(config, "flush").stdout
    assert f"wrote {written}" in again and "rewrote the missing file" in again
    assert written.read_bytes() == original


async def test_get_records_lists_any_status_when_asked(tmp_path: Path) -> None:
    core = core_for(tmp_path)
    try:
        async with serving(core) as client:
            async with client.post("/events", json=[recent("G-1"), recent("G-2")]) as response:
                assert response.status == 200
            revoke = revoked_event(record_id="G-2")
            async with client.post("/events", json=revoke) as response:
                assert response.status == 201, await response.text()
            status, body = await get(client, "/records")
            assert [r["record_id"] for r in body["records"]] == ["G-1"]
            status, body = await get(client, "/records", params={"status": "withdrawn"})
            assert [r["record_id"] for r in body["records"]] == ["G-2"], "not outstanding, listed"
            (withdrawn,) = body["records"]
            assert withdrawn["deadline"] is not None and withdrawn["days_left"] is None
            status, body = await get(client, "/records", params={"status": "pending"})
            assert isinstance(body["records"][0]["days_left"], int)
            status, body = await get(client, "/records", params={"reason": "nope"})
            assert status == 400
    finally:
        core.close()
