"""m010-m050: reference data, alerts, correction requests, prepared passages, and the
contents table rebuilt with row ids."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import log, logged_rebuild_rows, migrations


@migrations()
def m010_refdata(db: Database) -> None:
    """Reference data (CONTRACT §11): France compétences' export and INSEE's COG.

    Each table is refilled as `<name>_staging` and renamed into place by a load
    (state/sqlite/refdata.py keeps the same definitions); `refdata_meta` holds the version.
    """
    db.executescript(
        """
        CREATE TABLE refdata_fiches (
            code TEXT PRIMARY KEY, active INTEGER NOT NULL, end_day TEXT, limit_day TEXT
        ) WITHOUT ROWID;
        CREATE TABLE refdata_certifiers (
            code TEXT NOT NULL, siret TEXT NOT NULL, PRIMARY KEY (code, siret)
        ) WITHOUT ROWID;
        CREATE TABLE refdata_replacements (
            code TEXT NOT NULL, position INTEGER NOT NULL, new_code TEXT NOT NULL,
            PRIMARY KEY (code, position)
        ) WITHOUT ROWID;
        CREATE TABLE refdata_communes (
            code TEXT NOT NULL, start_day TEXT NOT NULL, end_day TEXT NOT NULL,
            PRIMARY KEY (code, start_day, end_day)
        ) WITHOUT ROWID;
        CREATE TABLE refdata_moves (
            before TEXT NOT NULL, after TEXT NOT NULL, day TEXT NOT NULL,
            PRIMARY KEY (before, after, day)
        ) WITHOUT ROWID;
        CREATE TABLE refdata_countries (code TEXT PRIMARY KEY) WITHOUT ROWID;
        CREATE TABLE refdata_sources (kind TEXT PRIMARY KEY, source TEXT NOT NULL);
        CREATE TABLE refdata_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO refdata_meta (key, value) VALUES ('version', 0);
        """
    )


@migrations()
def m020_alerts(db: Database) -> None:
    """Alert state (CONTRACT §10): each alert's last evaluation and each receiver's last
    delivery, so a restart neither forgets a firing alert nor re-sends a resolved one."""
    db.executescript(
        """
        CREATE TABLE alerts (
            alertname TEXT NOT NULL,
            certifier TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL,
            value INTEGER NOT NULL,
            starts_at TEXT NOT NULL,
            ends_at TEXT,
            PRIMARY KEY (alertname, certifier)
        );
        CREATE TABLE alert_deliveries (
            alertname TEXT NOT NULL,
            certifier TEXT NOT NULL,
            receiver TEXT NOT NULL,
            status TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (alertname, certifier, receiver)
        );
        """
    )


@migrations()
def m030_correction_requests(db: Database) -> None:
    """Correction requests (CONTRACT §9, décret 2024-1236), keyed by record id so that a
    request on a record the tracker does not know yet attaches to it when it arrives.

    `(status, deadline)` serves the open requests by deadline (summary, metrics, alerts);
    `(record_id)` the requests of one record (`show`, the outstanding listing, the closing
    by a CDC acceptance).
    """
    db.executescript(
        """
        CREATE TABLE correction_requests (
            request_id TEXT PRIMARY KEY,
            record_id TEXT NOT NULL,
            certifier TEXT,
            source TEXT NOT NULL,
            received_on TEXT NOT NULL,
            deadline TEXT NOT NULL,
            status TEXT NOT NULL,
            note TEXT,
            opened_at TEXT NOT NULL,
            answer_kind TEXT,
            answer_text TEXT,
            answered_at TEXT
        );
        CREATE INDEX correction_requests_open ON correction_requests (status, deadline);
        CREATE INDEX correction_requests_record ON correction_requests (record_id);
        """
    )


@migrations()
def m040_prepared_passages(db: Database) -> None:
    """A content's passage bytes as its decode process rendered them (`PreparedPassage`),
    in the schema version they are written in: flush copies them into the file instead of
    rendering the content again. A content without one (decoded where it was stored, or
    stored before this version) is rendered at flush, as before.

    A table of its own, with rowids: a passage (~1.6 KB) beside its content in the WITHOUT
    ROWID `contents` would spill to an overflow page of its own (such a row keeps ~1 KB in
    its page). A row lives until no pending record needs it: after writing files, flush drops
    those of records no longer pending (`forget_sent_passages`), the whole table at once when
    none is needed (freeing whole pages instead of rewriting each one).
    """
    db.executescript(
        """
        CREATE TABLE passages (
            record_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            schema_version TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (record_id, version)
        );
        """
    )


@migrations()
def m050_contents_with_rowids(db: Database) -> None:
    """`contents` as a rowid table, its key (record_id, version) a unique index.

    WITHOUT ROWID, each content (~640 bytes of canonical JSON) went into the B-tree of its
    record id: a random leaf a content, split often (2.6 pages written per stored event, the
    most of any table). With rowids, contents are appended to the end of the table and only
    the key's index takes a random page. Measured (bench/HISTORY.md, issue 13 session 7):
    `ingest` -3.7 % CPU and wall, single-event HTTP requests +4 %/s. `INSERT OR REPLACE` keeps
    its meaning through the unique index.

    The rebuild is one transaction: about 14 s and 1.8 GB of free disk per million contents
    (measured on 640-byte contents); a full disk or a kill -9 leaves the old table whole
    (`tests/test_state_layout.py`). It relies on sqlite-utils running a script's statements
    one by one inside the open transaction, where `sqlite3`'s own `executescript` would
    commit first.
    """
    _add_content_columns_of_26_november(db)
    (rows,) = db.execute("SELECT count(*) FROM contents").fetchone()
    if rows >= logged_rebuild_rows():
        log.warning(
            "upgrading the state: rebuilding the contents table (%d rows, about %d s); "
            "other commands on this state wait",
            rows,
            max(1, rows * 14 // 1_000_000),
        )
    db.executescript(
        """
        CREATE TABLE contents_rowid (
            record_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            event_id TEXT,
            payload TEXT NOT NULL,
            occurred_at TEXT,
            emitted_by TEXT,
            received_at TEXT NOT NULL,
            source TEXT
        );
        INSERT INTO contents_rowid
            SELECT record_id, version, content_hash, event_id, payload, occurred_at,
                   emitted_by, received_at, source
            FROM contents ORDER BY record_id, version;
        DROP TABLE contents;
        ALTER TABLE contents_rowid RENAME TO contents;
        CREATE UNIQUE INDEX contents_key ON contents (record_id, version);
        """
    )


def _add_content_columns_of_26_november(db: Database) -> None:
    """The columns `occurred_at` and `emitted_by`, which m001 gained the day it was written
    (26 November 2026), added to a `contents` table created before them: the rebuild copies
    them, and a state of those first versions would otherwise stop every command at this
    migration (`no such column`)."""
    present = {name for (name,) in db.execute("SELECT name FROM pragma_table_info('contents')")}
    for column in ("occurred_at", "emitted_by"):
        if column not in present:
            db.execute(f"ALTER TABLE contents ADD COLUMN {column} TEXT")
