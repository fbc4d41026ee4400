"""m060-m100: what the record's life learned since: withdrawals without a correction, a
delivery met for good, unusable events kept once, records the CDC holds under another id,
certifiers no longer active."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.models.cdc import held_under
from accrochage.state.sqlite.migrations.registry import migrations


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
