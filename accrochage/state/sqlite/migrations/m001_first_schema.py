"""m001-m005: the state's first schema, its query indexes and the CDC loop's columns."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


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
