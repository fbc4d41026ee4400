"""A record read from its row by position (`record_rows.record_from`), whatever the order of a
query's columns: every column lands in its own field, as `record_values` wrote it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from accrochage.state.sqlite.pending import WITH_VERSIONS
from accrochage.state.sqlite.record_rows import RECORD_COLUMNS, record_from, record_values
from tests.test_tracker import db, event, ingest, make_core, replay

MAX_VERSION = "(SELECT max(version) FROM contents c WHERE c.record_id = r.record_id)"
CORRECTION_HASH = (
    "(SELECT content_hash FROM contents c "
    "WHERE c.record_id = r.record_id AND c.version = r.correction_version)"
)


def rows(conn: sqlite3.Connection, sql: str) -> list[sqlite3.Row]:
    return list(conn.execute(sql + " ORDER BY r.record_id"))


def test_every_column_lands_in_its_field_whatever_the_query_s_order(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path)
    try:
        first = event("R-CORRECTED")
        ingest(core, first, event("R-INVALID", delivered_on="07/12/2026"), event("R-PLAIN"))
        core.flusher.flush(force=True)
        corrected = replay(first)
        corrected["holder"]["first_name"] = "Ann"
        ingest(core, corrected)
        conn = db(core)
        try:
            usual = rows(conn, WITH_VERSIONS)
            backwards = ", ".join(f"r.{name}" for name in reversed(RECORD_COLUMNS))
            reordered = rows(
                conn,
                f"SELECT {CORRECTION_HASH} AS correction_hash, {backwards}, "
                f"{MAX_VERSION} AS max_version FROM records r",
            )
            bare = rows(conn, "SELECT r.* FROM records r")
        finally:
            conn.close()
        assert len(usual) == 3
        for row, other, alone in zip(usual, reordered, bare, strict=True):
            record = record_from(row)
            assert record_values(record) == tuple(row[name] for name in RECORD_COLUMNS)
            assert (record.latest_version, record.correction_hash) == (
                row["max_version"],
                row["correction_hash"],
            )
            assert record_from(other) == record
            without = record_from(alone)
            assert record_values(without) == record_values(record)
            assert (without.latest_version, without.correction_hash) == (record.version, None)
        corrected_record = record_from(usual[0])
        assert corrected_record.correction_version == 2 == corrected_record.latest_version
        assert corrected_record.correction_hash is not None
        assert record_from(usual[1]).errors, "R-INVALID's errors read back"
    finally:
        core.close()
