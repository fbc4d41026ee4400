"""Passages rendered once, by the decode processes (`PreparedPassage`): flush copies them into
the files as they are, they are the bytes flush would have rendered from the stored content,
a file in another schema renders the content itself, and the rows go once their file is
written or a newer content replaces them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from accrochage.app import build_core
from accrochage.cli import main
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.deadline import SystemClock, paris_today
from accrochage.models.vocabulary import BatchState
from accrochage.settings import load_settings
from accrochage.sinks.gate import check_file
from accrochage.sinks.xml_outbox import XmlOutbox
from accrochage.state.sqlite import SqliteStore
from accrochage.state.sqlite.transaction import SqliteTransaction
from accrochage.streams import flush
from accrochage.streams.flush_report import FlushReport, WrittenBatch
from tests.test_tracker import SCHEMA_1_1_2, write_config

GENERATED = [
    GeneratedCertifier("pix", ["RS5875", "RNCP37873"]),
    GeneratedCertifier("school", ["RNCP35726"]),
]
COUNT = 1000
"""Two whole chunks of `ingest` (500 each, its decode pool's threshold): all decoded in the pool."""


def _config(folder: Path, processes: int = 1, **sections: Any) -> Path:
    folder.mkdir(exist_ok=True)
    config = write_config(folder, **sections)
    with config.open("a", encoding="utf-8") as out:
        out.write(f"\n[ingest]\ndecode_processes = {processes}\n")
    return config


def _events(path: Path, count: int = COUNT, max_age_days: int = 80) -> list[dict[str, Any]]:
    today = paris_today(SystemClock())
    events = list(generate_events(count, GENERATED, today=today, seed=7, max_age_days=max_age_days))
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
    return events


def _cli(config: Path, *argv: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *argv])
    assert result.exit_code == 0, result.output
    return result.output


def _db(config: Path) -> sqlite3.Connection:
    return sqlite3.connect(config.parent / "var" / "state.db")


def _passages(config: Path) -> dict[str, tuple[str, bytes]]:
    with _db(config) as db:
        rows = db.execute("SELECT record_id, schema_version, data FROM passages").fetchall()
    return {record_id: (schema, bytes(data)) for record_id, schema, data in rows}


def _written_files(config: Path) -> list[Path]:
    return sorted((config.parent / "var" / "outbox").glob("*/*.xml"))


def _rerendered(config: Path, tmp_path: Path) -> dict[str, bytes]:
    """Every written batch rendered again from its stored contents alone, in a copy of the
    state where the batches are to be written again and no passage is prepared."""
    copy = tmp_path / "copy.db"
    with _db(config) as db, sqlite3.connect(copy) as target:
        db.backup(target)
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE batches SET state = ?", (BatchState.CUT.value,))
        db.execute("DELETE FROM passages")
    settings = load_settings(config)
    store = SqliteStore(copy)
    outbox = XmlOutbox(
        tmp_path / "again",
        store.location,
        schema_version=settings.schema_.version,
        xsd=None,
    )
    try:
        with store.reading() as reader:
            batches = reader.batches_to_write()
        again = {}
        for batch in batches:
            released = outbox.write(batch)
            again[released.path.name] = released.path.read_bytes()
    finally:
        outbox.close()
        store.close()
    return again


def _passage_of(data: bytes, record_id: str) -> bytes:
    """The one line of a written file holding `record_id`'s passage."""
    mark = f"<cpf:idTechnique>{record_id}</cpf:idTechnique>".encode()
    lines = [line + b"\n" for line in data.split(b"\n") if mark in line]
    assert len(lines) == 1, record_id
    return lines[0]


def test_ingest_prepares_the_passages_flush_writes_them_as_they_are(tmp_path: Path) -> None:
    config = _config(tmp_path / "state")
    events_file = tmp_path / "events.jsonl"
    events = _events(events_file)
    _cli(config, "ingest", str(events_file))
    prepared = _passages(config)
    valid = {
        r["record_id"]
        for r in json.loads(_cli(config, "records", "--format", "json"))
        if r["status"] == "pending"
    }
    assert set(prepared) == valid and len(valid) > 0.9 * len(events)
    assert {schema for schema, _ in prepared.values()} == {"1.1.5"}
    # Proof that flush copies the prepared bytes: one of them says what no content says.
    true, false = b"<cpf:donneeCertifiee>true<", b"<cpf:donneeCertifiee>false<"
    marked = next(r for r in sorted(prepared) if true in prepared[r][1])
    changed = prepared[marked][1].replace(true, false)
    with _db(config) as db:
        db.execute("UPDATE passages SET data = ? WHERE record_id = ?", (changed, marked))
    _cli(config, "flush", "--force")
    files = {path.name: path.read_bytes() for path in _written_files(config)}
    written = b"".join(files.values())
    assert written.count(b"<cpf:passageCertification>") == len(valid)
    for record_id, (_, data) in prepared.items():
        expected = changed if record_id == marked else data
        assert any(expected in content for content in files.values()), record_id
    assert _passages(config) == {}, "a written file's passages are not kept"

    # Without prepared passages, the same batches render to the same bytes (but the mark).
    again = _rerendered(config, tmp_path)
    assert again.keys() == files.keys()
    for name, data in files.items():
        if changed in data:
            data = data.replace(changed, prepared[marked][1])
        assert data == again[name], name


def test_a_file_in_another_schema_renders_the_content(tmp_path: Path, shared_dir: Path) -> None:
    """Passages prepared in 1.1.5 (the default) are not those of a 1.1.2 file: a state whose
    configuration then names 1.1.2 renders them, valid against the CDC's own 1.1.2 XSD."""
    official_112 = shared_dir / "cdc" / "xsd" / "cpf-1.1.2.xsd"
    folder = tmp_path / "state"
    config = _config(folder)
    events_file = tmp_path / "events.jsonl"
    _events(events_file)
    _cli(config, "ingest", str(events_file))
    prepared = _passages(config)
    assert any(b"<cpf:identifiantNational>" in data for _, data in prepared.values())
    config = _config(folder, schema=SCHEMA_1_1_2)
    _cli(config, "flush", "--force")
    files = _written_files(config)
    assert files
    for path in files:
        data = path.read_bytes()
        assert b"<cpf:identifiantNational>" not in data
        check_file(path, official_112)
    assert _rerendered(config, tmp_path) == {path.name: path.read_bytes() for path in files}


def test_a_newer_content_is_sent_and_no_passage_outlives_its_need(tmp_path: Path) -> None:
    config = _config(tmp_path / "state")
    events_file = tmp_path / "events.jsonl"
    events = _events(events_file)
    corrected = events[3]["record_id"]
    lines = [json.dumps(e, ensure_ascii=False) for e in events]
    fix = {**events[3], "event_id": "fix-1", "verbatim": "corrected before the cut"}
    lines.insert(100, json.dumps(fix, ensure_ascii=False))  # in the same group as the first
    events_file.write_text("\n".join(lines) + "\n")
    _cli(config, "ingest", str(events_file))
    with _db(config) as db:
        versions = db.execute(
            "SELECT version FROM passages WHERE record_id = ?", (corrected,)
        ).fetchall()
    assert (2,) in versions
    _cli(config, "flush", "--force")
    written = b"".join(path.read_bytes() for path in _written_files(config))
    assert b"corrected before the cut" in _passage_of(written, corrected)
    assert _passages(config) == {}


def test_the_passages_of_records_still_pending_are_kept(tmp_path: Path) -> None:
    """A flush that writes one certifier's file keeps the passages of another certifier's
    records, not due yet; those of the records it wrote go."""
    config = _config(tmp_path / "state", batching={"max_records": 500})
    events_file = tmp_path / "events.jsonl"
    events = _events(events_file, max_age_days=5)  # no deadline near: max_records decides
    by_certifier = {key: sum(e["certifier"] == key for e in events) for key in ("pix", "school")}
    due, waiting = sorted(by_certifier, key=by_certifier.__getitem__, reverse=True)
    assert by_certifier[due] >= 500 > by_certifier[waiting], by_certifier
    _cli(config, "ingest", str(events_file))
    output = _cli(config, "flush")
    assert f"({due}," in output and f"({waiting}," not in output
    kept = _passages(config)
    pending = {
        r["record_id"]
        for r in json.loads(_cli(config, "records", "--format", "json"))
        if r["status"] == "pending"
    }
    assert pending and set(kept) == pending
    assert all(
        record_id.startswith("SCHOOL-") or record_id.startswith("PIX-") for record_id in kept
    )
    _cli(config, "flush", "--force")
    assert _passages(config) == {}


def test_a_flush_of_many_batches_drops_their_passages_a_few_batches_a_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog's first flush reads every written member's passage: in short transactions
    (a few batches each, about `FORGET_PER_TRANSACTION` members), so that other writers never
    wait for the whole of it."""
    monkeypatch.setattr(flush, "FORGET_PER_TRANSACTION", 120)  # batches of 60: 2 a transaction
    chunks: list[list[str]] = []
    deleted: list[int] = []
    forget = SqliteTransaction.forget_sent_passages

    def counted(self: SqliteTransaction, batch_ids: Any, *, sweep: bool = False) -> None:
        before = self._conn.total_changes
        forget(self, batch_ids, sweep=sweep)
        if not sweep:
            chunks.append(list(batch_ids))
            deleted.append(self._conn.total_changes - before)

    monkeypatch.setattr(SqliteTransaction, "forget_sent_passages", counted)
    config = _config(tmp_path / "state", batching={"max_records": 60})
    events_file = tmp_path / "events.jsonl"
    events = _events(events_file, max_age_days=5)  # no deadline near: max_records decides
    school = [e for e in events if e["certifier"] == "school"]
    events = [e for e in events if e["certifier"] == "pix"] + school[:30]  # school: pending
    events_file.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
    _cli(config, "ingest", str(events_file))
    _cli(config, "flush")
    with _db(config) as db:
        written = {row[0] for row in db.execute("SELECT batch_id FROM batches")}
    assert len(written) >= 5 and all(0 < len(chunk) <= 2 for chunk in chunks), chunks
    assert {b for chunk in chunks for b in chunk} == written
    assert all(0 < n <= 2 * 60 for n in deleted), deleted  # each chunk its batches' own
    pending = {
        r["record_id"]
        for r in json.loads(_cli(config, "records", "--format", "json"))
        if r["status"] == "pending"
    }
    assert len(pending) == 30 and set(_passages(config)) == pending


def test_ingest_without_decode_processes_prepares_nothing_and_writes_the_same(
    tmp_path: Path,
) -> None:
    events_file = tmp_path / "events.jsonl"
    _events(events_file)
    config = _config(tmp_path / "inline", processes=0)
    _cli(config, "ingest", str(events_file))
    assert _passages(config) == {}
    _cli(config, "flush", "--force")
    assert _rerendered(config, tmp_path) == {
        path.name: path.read_bytes() for path in _written_files(config)
    }


def test_a_state_from_before_prepared_passages_upgrades_and_flushes(tmp_path: Path) -> None:
    """A state written before `passages` existed (its migration not applied, records pending)
    gets the table at the next command, and its files render from the contents, whole."""
    config = _config(tmp_path / "state", processes=0)
    events_file = tmp_path / "events.jsonl"
    _events(events_file)
    _cli(config, "ingest", str(events_file))
    with _db(config) as db:
        db.execute("DROP TABLE passages")
        db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm040_prepared_passages'")
    output = _cli(config, "flush", "--force")
    assert "wrote " in output
    with _db(config) as db:
        (applied,) = db.execute(
            "SELECT count(*) FROM _sqlite_migrations WHERE name = 'm040_prepared_passages'"
        ).fetchone()
    assert applied == 1
    files = _written_files(config)
    written = b"".join(path.read_bytes() for path in files)
    pending = json.loads(_cli(config, "records", "--format", "json"))
    assert (
        written.count(b"<cpf:passageCertification>")
        == sum(r["status"] == "batched" for r in pending)
        > 0
    )
    assert _rerendered(config, tmp_path) == {path.name: path.read_bytes() for path in files}


def test_a_write_drops_its_batches_passages_and_a_sweep_the_ones_left_behind(
    tmp_path: Path,
) -> None:
    """Without a sweep, only the written batches' passages go (a service's tick reads no
    more than what it wrote): another certifier's pending passages stay, and so does the
    passage of a content replaced while pending, until a sweep; a member pending again with
    the same version (its file superseded) keeps its passage."""
    config = _config(tmp_path / "state", batching={"max_records": 500})
    events_file = tmp_path / "events.jsonl"
    events = _events(events_file, max_age_days=5)
    by_certifier = {key: sum(e["certifier"] == key for e in events) for key in ("pix", "school")}
    due, waiting = sorted(by_certifier, key=by_certifier.__getitem__, reverse=True)
    replaced = next(e for e in events if e["certifier"] == due)
    fix = {**replaced, "event_id": "fix-1", "verbatim": "corrected before the cut"}
    lines = [json.dumps(e, ensure_ascii=False) for e in [*events, fix]]
    events_file.write_text("\n".join(lines) + "\n")
    _cli(config, "ingest", str(events_file))
    before = _passages(config)
    assert len(before) == COUNT  # one row per record: the replaced one under its new version
    with _db(config) as db:
        versions = db.execute(
            "SELECT version FROM passages WHERE record_id = ?", (replaced["record_id"],)
        ).fetchall()
    assert sorted(versions) == [(1,), (2,)]

    core = build_core(load_settings(config))
    try:
        report = FlushReport()
        core.flusher.cut(report)
        batches = [cut.batch_id for cut in report.cut]
        assert batches and {cut.certifier for cut in report.cut} == {due}
        with _db(config) as db:
            members = {
                r[0]
                for r in db.execute(
                    "SELECT record_id FROM batch_members WHERE batch_id = ?", (batches[0],)
                )
            }
            again = sorted(members - {replaced["record_id"]})[0]
            db.execute("UPDATE records SET status = 'pending' WHERE record_id = ?", (again,))
        with core.store.transaction() as tx:
            tx.forget_sent_passages(batches)
        with _db(config) as db:
            left = set(db.execute("SELECT record_id, version FROM passages").fetchall())
        waiting_ids = {e["record_id"] for e in events if e["certifier"] == waiting}
        assert {record_id for record_id, _ in left} == waiting_ids | {replaced["record_id"], again}
        assert [v for r, v in left if r == replaced["record_id"]] == [1]

        with core.store.transaction() as tx:
            tx.forget_sent_passages([], sweep=True)
        with _db(config) as db:
            swept = {r[0] for r in db.execute("SELECT record_id FROM passages")}
        assert swept == waiting_ids | {again}
    finally:
        core.close()


def _written(batch_id: str, passages: int = 1) -> WrittenBatch:
    return WrittenBatch(batch_id, "pix", Path(f"{batch_id}.xml"), passages, 100, "0" * 64)


def test_written_batches_are_forgotten_in_groups_of_about_so_many_members() -> None:
    """A batch of the CDC's 200,000 passages is forgotten alone, never with nine others
    (2,000,000 members in one transaction, as when groups were of 10 batches)."""
    sizes = {"a": 1_000, "b": 200_000, "c": 3_000, "d": 3_000, "e": 5_000, "f": 10}
    written = [_written(batch_id, size) for batch_id, size in sizes.items()]
    groups = [["a"], ["b"], ["c", "d"], ["e", "f"]]
    assert list(flush.forget_groups(written, 10_000)) == groups
    assert list(flush.forget_groups([], 10_000)) == []


def test_a_flusher_sweeps_at_its_first_write_then_at_most_every_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = build_core(load_settings(_config(tmp_path / "state")))
    sweeps: list[bool] = []
    forget = SqliteTransaction.forget_sent_passages

    def counted(self: SqliteTransaction, batch_ids: Any, *, sweep: bool = False) -> None:
        sweeps.append(sweep)
        forget(self, batch_ids, sweep=sweep)

    monkeypatch.setattr(SqliteTransaction, "forget_sent_passages", counted)
    try:
        flusher = core.flusher
        flusher._forget_passages([_written("written-1")])
        flusher._forget_passages([_written("written-2")])
        assert sweeps == [False, True, False]  # the sweep in a transaction of its own
        monkeypatch.setattr(flush, "PASSAGE_SWEEP_SECONDS", 0)
        flusher._forget_passages([_written("written-3")])
        assert sweeps[3:] == [False, True]
    finally:
        core.close()
