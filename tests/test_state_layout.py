"""The state's table layout: `contents` with rowids (migration m050), upgraded in place from
the WITHOUT ROWID table earlier versions wrote, every content kept and replaced by its key;
the rebuild is one transaction, whole after a kill -9 or a full disk in its middle."""

from __future__ import annotations

import json
import logging
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
from sqlite_utils import Database

from accrochage.errors import StorageFullError
from accrochage.models.record import Change, Content
from accrochage.models.vocabulary import Outcome
from accrochage.state.sqlite import SqliteStore, migrations
from accrochage.state.sqlite.migrations import registry
from accrochage.state.sqlite.store import connect, storage_error
from tests.test_prepared_passages import _cli, _config, _db, _events, _written_files

M050 = "m050_contents_with_rowids"


def _before_m050() -> str:
    """The `contents` table as the versions before m050 created it: taken from the
    migrations themselves, stopped before m050, never written again here."""
    db = Database(sqlite3.connect(":memory:"))
    migrations.migrations.apply(db, stop_before=M050)
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'contents'").fetchone()
    db.close()
    assert "WITHOUT ROWID" in sql
    return str(sql)


def _back_to_before_m050(db: sqlite3.Connection) -> None:
    """A state of this version turned back into one the previous version left: its contents
    in the old table, m050 not applied."""
    old = _before_m050().replace("CREATE TABLE contents", "CREATE TABLE contents_old", 1)
    db.executescript(
        f"""
        {old};
        INSERT INTO contents_old SELECT * FROM contents;
        DROP TABLE contents;
        ALTER TABLE contents_old RENAME TO contents;
        DELETE FROM _sqlite_migrations WHERE name = '{M050}';
        """
    )


def _contents(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    return db.execute("SELECT * FROM contents ORDER BY record_id, version").fetchall()


def _layout(db: sqlite3.Connection) -> tuple[str, list[str]]:
    (table,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'contents'").fetchone()
    indexes = [
        name
        for (name,) in db.execute(
            "SELECT name FROM pragma_index_list('contents') WHERE \"unique\" = 1"
        )
    ]
    return table, indexes


def _upgraded_by_a_writer(config: Path) -> None:
    """A command that writes (an ingest of nothing) upgrades the state; one that only reads
    leaves it as it is (`test_a_read_command_leaves_an_old_state_as_it_is`)."""
    nothing = config.parent / "nothing.jsonl"
    nothing.write_text("", encoding="utf-8")
    _cli(config, "ingest", str(nothing))


def test_a_state_with_contents_without_rowid_is_upgraded_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A state written before m050 (contents WITHOUT ROWID) gets the rowid table at the next
    command, with the same rows, saying so first when the table is large; a correction
    stored after it adds its version, and flush writes every pending record."""
    config = _config(tmp_path / "state", processes=0)
    events_file = tmp_path / "events.jsonl"
    events = _events(events_file, count=300)
    _cli(config, "ingest", str(events_file))
    with _db(config) as db:
        _back_to_before_m050(db)
        before = _contents(db)
        assert "WITHOUT ROWID" in _layout(db)[0]
    assert len(before) == 300

    monkeypatch.setattr(registry, "LOGGED_REBUILD_ROWS", 300)
    with caplog.at_level(logging.WARNING, logger="accrochage.state"):
        _upgraded_by_a_writer(config)
    assert "rebuilding the contents table (300 rows" in caplog.text
    with _db(config) as db:
        table, unique = _layout(db)
        assert "WITHOUT ROWID" not in table
        assert unique == ["contents_key"]
        assert _contents(db) == before
        (applied,) = db.execute(
            "SELECT count(*) FROM _sqlite_migrations WHERE name = ?", (M050,)
        ).fetchone()
    assert applied == 1

    corrected = {**events[0], "event_id": "fix-1", "verbatim": "corrected after the upgrade"}
    events_file.write_text(json.dumps(corrected, ensure_ascii=False) + "\n")
    _cli(config, "ingest", str(events_file))
    with _db(config) as db:
        versions = db.execute(
            "SELECT version FROM contents WHERE record_id = ? ORDER BY version",
            (events[0]["record_id"],),
        ).fetchall()
    assert versions == [(1,), (2,)]
    assert "wrote " in _cli(config, "flush", "--force")
    written = b"".join(path.read_bytes() for path in _written_files(config))
    assert written.count(b"<cpf:passageCertification>") == 300


def _content(payload: str, received: datetime) -> Content:
    return Content("r-1", 1, f"hash-{payload}", "e-1", payload, None, None, received, "test")


def test_a_content_saved_again_under_its_key_replaces_the_row(tmp_path: Path) -> None:
    """The unique key keeps `INSERT OR REPLACE`'s meaning on a rowid table: one row per
    (record_id, version), the last one saved."""
    store = SqliteStore(tmp_path / "state.db")
    try:
        first = _content('{"a": 1}', datetime(2026, 11, 1, tzinfo=UTC))
        second = _content('{"a": 2}', datetime(2026, 11, 2, tzinfo=UTC))
        for content in (first, second):
            with store.transaction() as tx:
                tx.save([Change(Outcome.CREATED, content=content)])
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        rows = db.execute("SELECT version, payload FROM contents WHERE record_id = 'r-1'")
        assert rows.fetchall() == [(1, '{"a": 2}')]


def _migrated_before_m050(config: Path) -> None:
    """The configuration's state, migrated up to m050 (not included)."""
    state = config.parent / "var" / "state.db"
    state.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(state)
    try:
        migrations.migrations.apply(Database(conn), stop_before=M050)
    finally:
        conn.close()


def _old_state_with_contents(config: Path, rows: int) -> None:
    """A state as the version before m050 left it, `rows` contents in its old table."""
    _migrated_before_m050(config)
    payload = json.dumps({"holder": "x" * 600})
    with _db(config) as db:
        db.executemany(
            "INSERT INTO contents (record_id, version, content_hash, event_id, payload, "
            "occurred_at, emitted_by, received_at, source) "
            "VALUES (?, 1, ?, NULL, ?, NULL, NULL, '2026-11-30T10:00:00Z', 'test')",
            ((f"R-{i:07d}", f"h{i}", payload) for i in range(rows)),
        )


FIRST_DAY_CONTENTS = """
    CREATE TABLE contents (
        record_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        event_id TEXT,
        payload TEXT NOT NULL,
        received_at TEXT NOT NULL,
        source TEXT,
        PRIMARY KEY (record_id, version)
    ) WITHOUT ROWID
"""
"""`contents` as m001 created it in the versions of 26 November 2026 before 2417086 (the
first `accrochage run`'s among them), without `occurred_at` and `emitted_by`."""


def test_a_state_of_the_first_day_without_the_content_columns_is_upgraded(
    tmp_path: Path,
) -> None:
    """A state whose `contents` has no `occurred_at` nor `emitted_by` (m001 gained them later
    the same day) is upgraded by the next command that writes, every content kept, instead
    of stopping at m050 on `no such column`."""
    config = _config(tmp_path / "state", processes=0)
    _migrated_before_m050(config)
    with _db(config) as db:
        db.executescript(f"DROP TABLE contents; {FIRST_DAY_CONTENTS};")
        db.execute(
            "INSERT INTO contents VALUES "
            "('R-1', 1, 'h1', 'e-1', '{}', '2026-11-26T10:00:00Z', 'test')"
        )

    _upgraded_by_a_writer(config)

    with _db(config) as db:
        assert "WITHOUT ROWID" not in _layout(db)[0]
        assert db.execute(
            "SELECT record_id, payload, occurred_at, emitted_by, received_at FROM contents"
        ).fetchall() == [("R-1", "{}", None, None, "2026-11-26T10:00:00Z")]
        (last,) = db.execute("SELECT max(name) FROM _sqlite_migrations").fetchone()
    assert last == registry.latest_migration()


def _wait_for_line(stream: IO[bytes], text: bytes, seconds: float) -> bool:
    """Whether a line holding `text` comes within `seconds` (the stream is read in a thread:
    a blocking read never outlives the bound)."""
    found = threading.Event()

    def read() -> None:
        for line in stream:
            if text in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    return found.wait(seconds)


def test_a_kill_9_during_the_rebuild_leaves_the_state_whole_and_the_next_command_upgrades(
    tmp_path: Path,
) -> None:
    """m050 is one transaction: a command killed while it rebuilds `contents` leaves either
    the old table or the new one, every content in it, never half of each; the next command
    finishes the upgrade."""
    config = _config(tmp_path / "state", processes=0)
    rows = 300_000
    _old_state_with_contents(config, rows)
    nothing = config.parent / "nothing.jsonl"
    nothing.write_text("", encoding="utf-8")
    command = [sys.executable, "-m", "accrochage", "--config", str(config), "ingest"]
    command += [str(nothing)]  # a command that writes: one that only reads never upgrades
    killed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert killed.stderr is not None
        assert _wait_for_line(killed.stderr, b"rebuilding the contents table", 120)
        time.sleep(random.uniform(0.0, 0.5))
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait()
    with _db(config) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        table, _ = _layout(db)
        (count,) = db.execute("SELECT count(*) FROM contents").fetchone()
        (applied,) = db.execute(
            "SELECT count(*) FROM _sqlite_migrations WHERE name = ?", (M050,)
        ).fetchone()
        leftovers = db.execute(
            "SELECT name FROM sqlite_master WHERE name = 'contents_rowid'"
        ).fetchall()
    assert count == rows
    assert applied == ("WITHOUT ROWID" not in table)  # the new layout only with its record
    assert leftovers == []
    _upgraded_by_a_writer(config)
    with _db(config) as db:
        assert "WITHOUT ROWID" not in _layout(db)[0]
        assert db.execute("SELECT count(*) FROM contents").fetchone() == (rows,)


def test_a_full_disk_during_the_rebuild_rolls_it_back_whole(tmp_path: Path) -> None:
    """The rebuild needs about the contents' size again: a disk that cannot give it fails
    the upgrade with SQLite's full-disk error (a `StorageFullError` for the command that
    opened the state), and leaves the old table, every content and the migration pending."""
    config = _config(tmp_path / "state", processes=0)
    rows = 20_000
    _old_state_with_contents(config, rows)
    state = config.parent / "var" / "state.db"
    conn = connect(state)
    try:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages + 50}")
        with pytest.raises(sqlite3.OperationalError) as full:
            migrations.migrations.apply(Database(conn))
        assert isinstance(storage_error(full.value, state, opening=True), StorageFullError)
    finally:
        conn.close()
    with _db(config) as db:
        assert "WITHOUT ROWID" in _layout(db)[0]
        assert db.execute("SELECT count(*) FROM contents").fetchone() == (rows,)
        assert not db.execute(
            "SELECT name FROM sqlite_master WHERE name = 'contents_rowid'"
        ).fetchall()
        assert not db.execute("SELECT 1 FROM _sqlite_migrations WHERE name = ?", (M050,)).fetchall()
    _upgraded_by_a_writer(config)  # with room again, the upgrade goes through
    with _db(config) as db:
        assert "WITHOUT ROWID" not in _layout(db)[0]
        assert db.execute("SELECT count(*) FROM contents").fetchone() == (rows,)
