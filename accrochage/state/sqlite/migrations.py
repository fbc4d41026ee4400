"""The schema of the state database, as an ordered list of migrations (sqlite-migrate)."""

from __future__ import annotations

import logging

from sqlite_migrate import Migrations
from sqlite_utils import Database

from accrochage.models.cdc import held_under

migrations = Migrations("accrochage")
log = logging.getLogger("accrochage.state")
LOGGED_REBUILD_ROWS = 100_000
"""A migration that rebuilds a table of at least this many rows says so first (seconds)."""


def latest_migration() -> str:
    """The name of the last migration: the schema this version writes."""
    return migrations._migrations[-1].name


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE records (
            record_id TEXT PRIMARY KEY,
            certifier TEXT,
            code TEXT,
            status TEXT NOT NULL,
            outstanding INTEGER NOT NULL,
            version INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            delivered_on TEXT,
            deadline TEXT,
            errors TEXT NOT NULL DEFAULT '[]',
            warnings TEXT NOT NULL DEFAULT '[]',
            xml_bytes INTEGER,
            batch_id TEXT,
            pending_since TEXT,
            correction_version INTEGER,
            revocation_pending INTEGER NOT NULL DEFAULT 0,
            cdc_message TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX records_outstanding_deadline ON records (outstanding, deadline);
        CREATE INDEX records_outstanding_certifier
            ON records (outstanding, certifier, deadline);
        CREATE INDEX records_pending ON records (status, certifier, code, record_id);
        CREATE INDEX records_batch ON records (batch_id);

        CREATE TABLE contents (
            record_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            event_id TEXT,
            payload TEXT NOT NULL,
            occurred_at TEXT,
            emitted_by TEXT,
            received_at TEXT NOT NULL,
            source TEXT,
            PRIMARY KEY (record_id, version)
        ) WITHOUT ROWID;

        CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            record_id TEXT NOT NULL,
            at TEXT NOT NULL,
            from_status TEXT,
            to_status TEXT NOT NULL,
            reason TEXT NOT NULL,
            batch_id TEXT,
            report TEXT
        );
        CREATE INDEX history_record ON history (record_id, id);

        CREATE TABLE batches (
            batch_id TEXT PRIMARY KEY,
            certifier TEXT NOT NULL,
            created_at TEXT NOT NULL,
            schema_version TEXT NOT NULL,
            emitter_id_client TEXT NOT NULL,
            nature TEXT NOT NULL,
            certifier_id_client TEXT NOT NULL,
            id_contrat TEXT NOT NULL,
            state TEXT NOT NULL,
            passages INTEGER NOT NULL,
            file_name TEXT NOT NULL,
            file_path TEXT,
            sha256 TEXT,
            bytes INTEGER,
            error TEXT,
            written_at TEXT,
            deposited_at TEXT,
            report_file TEXT,
            id_traitement TEXT
        );
        CREATE INDEX batches_state ON batches (state);
        CREATE UNIQUE INDEX batches_file_name ON batches (file_name);

        CREATE TABLE batch_members (
            batch_id TEXT NOT NULL,
            code TEXT NOT NULL,
            record_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (batch_id, code, record_id)
        ) WITHOUT ROWID;
        CREATE INDEX batch_members_record ON batch_members (record_id);

        CREATE TABLE unusable (
            id INTEGER PRIMARY KEY,
            received_at TEXT NOT NULL,
            source TEXT,
            event_id TEXT,
            record_id TEXT,
            raw TEXT NOT NULL,
            errors TEXT NOT NULL
        );

        CREATE TABLE input_offsets (
            source TEXT NOT NULL,
            partition INTEGER NOT NULL,
            next_offset INTEGER NOT NULL,
            PRIMARY KEY (source, partition)
        );

        CREATE TABLE reports (
            sha256 TEXT PRIMARY KEY,
            file_name TEXT,
            id_flux TEXT,
            id_traitement TEXT,
            batch_id TEXT,
            imported_at TEXT NOT NULL,
            summary TEXT NOT NULL
        );
        """
    )


@migrations()
def m002_dead_letters(db: Database) -> None:
    """Rejected events waiting to be produced to the rejected topic (a transactional outbox).

    They are written in the transaction that records the event, then published and deleted,
    so a crash between the two can repeat a dead letter but never lose one.
    """
    db.executescript(
        """
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY,
            topic TEXT NOT NULL,
            key BLOB,
            value TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m003_outstanding_indexes(db: Database) -> None:
    """Indexes in the outstanding query's order (deadline, then record id), so a page of
    1,000 rows reads 1,000 index entries instead of sorting every outstanding record."""
    db.executescript(
        """
        DROP INDEX IF EXISTS records_outstanding_deadline;
        DROP INDEX IF EXISTS records_outstanding_certifier;
        CREATE INDEX records_outstanding_deadline ON records (outstanding, deadline, record_id);
        CREATE INDEX records_outstanding_certifier
            ON records (outstanding, certifier, deadline, record_id);
        """
    )


@migrations()
def m004_cdc_reason_and_exclusion(db: Database) -> None:
    """The class of the CDC's last message on a record, and the status an excluded record had
    (`include` gives it back)."""
    db.executescript(
        """
        ALTER TABLE records ADD COLUMN cdc_reason TEXT;
        ALTER TABLE records ADD COLUMN excluded_from TEXT;
        """
    )


@migrations()
def m005_cdc_loop(db: Database) -> None:
    """The CDC loop of schema 1.1.5 (CONTRACT §9).

    `records.accepted_batch_id`: the CREATION batch whose content the CDC holds (what a
    SUPPRESSION repeats); while a suppression is in flight `batch_id` names the suppression
    batch instead. `correction_valid`: whether the stored correction passed validation (only a
    valid one may replace what the CDC holds). `identity_rejections`: CDC rejections for
    identity, two of which flag the record for the CDC's identity procedure.
    `batches.action` and `batches.sent_as` (for a SUPPRESSION: the schema version of the
    CREATION files whose passages it repeats, which decides their identity branch).
    """
    db.executescript(
        """
        ALTER TABLE records ADD COLUMN accepted_batch_id TEXT;
        ALTER TABLE records ADD COLUMN suppression_rejected INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE records ADD COLUMN correction_valid INTEGER;
        ALTER TABLE records ADD COLUMN identity_rejections INTEGER NOT NULL DEFAULT 0;
        UPDATE records SET accepted_batch_id = batch_id WHERE status = 'accepted';
        UPDATE records SET correction_valid = 1 WHERE correction_version IS NOT NULL;
        CREATE INDEX records_flagged ON records (status, certifier)
            WHERE correction_version IS NOT NULL OR revocation_pending = 1;
        ALTER TABLE batches ADD COLUMN action TEXT NOT NULL DEFAULT 'CREATION';
        ALTER TABLE batches ADD COLUMN sent_as TEXT;
        """
    )


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
    the key's index takes a random page. Measured (bench/README.md, issue 13 session 7):
    `ingest` -3.7 % CPU and wall, single-event HTTP requests +4 %/s. `INSERT OR REPLACE` keeps
    its meaning through the unique index.

    The rebuild is one transaction: about 14 s and 1.8 GB of free disk per million contents
    (measured on 640-byte contents); a full disk or a kill -9 leaves the old table whole
    (`tests/test_state_layout.py`). It relies on sqlite-utils running a script's statements
    one by one inside the open transaction, where `sqlite3`'s own `executescript` would
    commit first.
    """
    (rows,) = db.execute("SELECT count(*) FROM contents").fetchone()
    if rows >= LOGGED_REBUILD_ROWS:
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


@migrations()
def m060_withdrawn_without_correction(db: Database) -> None:
    """A record revoked while in flight, corrected meanwhile, then rejected by the CDC was
    withdrawn with its stored correction still flagged: outstanding for ever, and refused by
    `exclude`. A withdrawn record has nothing left to correct (`lifecycle.apply_report` now
    drops the flag): the flag, and the outstanding mark that followed from it, are cleared."""
    db.execute(
        "UPDATE records SET correction_version = NULL, correction_valid = NULL, "
        "outstanding = revocation_pending "
        "WHERE status = 'withdrawn' AND correction_version IS NOT NULL"
    )


@migrations()
def m070_delivery_met(db: Database) -> None:
    """Whether the CDC once accepted the record (`Record.delivery_met`): its delivery deadline
    is met for good, whatever its later contents (CONTRACT §9). Before this, a corrected
    record took its new content's legal deadline again (at risk, then overdue, although the
    CDC had had it on time), or kept the deadline of a correction request answered since.

    Every record the history shows accepted once is marked, and those no longer accepted lose
    their own deadline: an open request's is shown instead. One pass over the history.
    """
    db.executescript(
        """
        ALTER TABLE records ADD COLUMN delivery_met INTEGER NOT NULL DEFAULT 0;
        UPDATE records SET delivery_met = 1
            WHERE status = 'accepted' OR accepted_batch_id IS NOT NULL
               OR record_id IN (SELECT record_id FROM history WHERE to_status = 'accepted');
        UPDATE records SET deadline = NULL WHERE delivery_met = 1 AND status <> 'accepted';
        """
    )


@migrations()
def m080_unusable_once(db: Database) -> None:
    """An unusable input is kept once: a platform retrying a refused event, or a file
    ingested again, added a row each time (the unusable count growing with no new problem).
    Rows kept before have no digest and stay as they are."""
    db.executescript(
        """
        ALTER TABLE unusable ADD COLUMN raw_sha256 TEXT;
        CREATE UNIQUE INDEX unusable_raw ON unusable (raw_sha256);
        """
    )


@migrations()
def m090_held_under_another_id(db: Database) -> None:
    """`cdc_held_as`: the idTechnique the CDC holds a record under when its acceptance named
    another one ("l'id technique partenaire 1559735 existe déjà en base", answering 1983189).
    Before this, a correction of such a record cut a SUPPRESSION naming its own id, which the
    CDC cannot apply. Accepted records whose last message still says so are marked (an
    acceptance's "existe déjà", or a refused SUPPRESSION's, classed `other`); one whose message
    a later report replaced is not known here (`import-report` said it at the time)."""
    db.execute("ALTER TABLE records ADD COLUMN cdc_held_as TEXT")
    marked = [
        (other, record_id)
        for record_id, message in db.execute(
            "SELECT record_id, cdc_message FROM records WHERE status = 'accepted' "
            "AND (cdc_reason = 'already_exists' OR suppression_rejected = 1) "
            "AND cdc_message IS NOT NULL"
        )
        if (other := held_under(message, record_id)) is not None
    ]
    db.conn.executemany("UPDATE records SET cdc_held_as = ? WHERE record_id = ?", marked)


@migrations()
def m100_inactive_certifiers(db: Database) -> None:
    """Whether the export says a fiche's certifier is no longer active (`ETAT_CERTIFICATEUR`,
    XML only), and since when. The export loaded before is marked as changed, so that the
    next load (a service's, at its start) reads it again, states included; until then every
    certifier loaded counts as active, as before."""
    db.executescript(
        """
        ALTER TABLE refdata_certifiers ADD COLUMN inactive INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE refdata_certifiers ADD COLUMN inactive_since TEXT;
        UPDATE refdata_sources SET source = json_set(source, '$.signature', 'before m100')
        WHERE kind = 'rncp';
        """
    )
