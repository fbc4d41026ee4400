"""m110-m150: what states written by earlier versions still lacked once migrated, found by
opening them with this one: a marking m090 gave only in its last form, the deadline a record
waiting to leave the CDC no longer has (and the legal date one left waiting shows again),
and files reported before the `reported` state; then (m150) whether a record was ever valid,
which decides whether its id is its certifier's for good.

A migration never changes once released: sqlite-migrate runs each name once, so a widened
migration reaches no state that ran it before. A repair is a migration of its own."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlite_utils import Database

from accrochage.models.batch import OUTBOX_FOLDERS
from accrochage.models.cdc import held_under
from accrochage.models.deadline import deadline_for
from accrochage.models.vocabulary import BatchState
from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m110_held_under_another_id_again(db: Database) -> None:
    """m090 again, over every accepted record whose last CDC message names another
    idTechnique: its first form read only acceptances (`cdc_reason = 'already_exists'`), and
    states of before m004 have no `cdc_reason` at all, so a record the CDC holds under another
    id kept getting SUPPRESSIONs it refuses. `held_under` reads the message itself."""
    marked = [
        (other, record_id)
        for record_id, message in db.execute(
            "SELECT record_id, cdc_message FROM records WHERE status = 'accepted' "
            "AND cdc_held_as IS NULL AND cdc_message IS NOT NULL"
        )
        if (other := held_under(message, record_id)) is not None
    ]
    db.conn.executemany("UPDATE records SET cdc_held_as = ? WHERE record_id = ?", marked)


@migrations()
def m120_no_deadline_while_leaving_the_cdc(db: Database) -> None:
    """An accepted record with a correction or a revocation waiting to leave the CDC has no
    deadline of its own (its delivery's was met; an open request's is what is due), as this
    version stores it; m070 cleared only those no longer accepted, so such records of an
    earlier state came up at risk, then overdue, by their delivery's date."""
    db.execute(
        "UPDATE records SET deadline = NULL WHERE status = 'accepted' AND deadline IS NOT NULL "
        "AND (correction_version IS NOT NULL OR revocation_pending = 1)"
    )


@migrations()
def m130_reported_batches(db: Database) -> None:
    """Files whose report was imported before the `reported` state existed stayed `written`
    or `deposited`: listed among the files to upload, counted as waiting for a report. They
    are `reported` now, recorded in their certifier's `done/`, where the next flush moves
    each file it finds elsewhere (`rewrite_missing`)."""
    done = OUTBOX_FOLDERS[BatchState.REPORTED]
    deposited = OUTBOX_FOLDERS[BatchState.DEPOSITED]
    moves = []
    for batch_id, file_path in db.execute(
        "SELECT batch_id, file_path FROM batches "
        "WHERE state IN ('written', 'deposited') AND report_file IS NOT NULL"
    ):
        place = None
        if file_path is not None:
            recorded = Path(file_path)
            folder = recorded.parent
            certifier_folder = folder.parent if folder.name == deposited else folder
            place = str(certifier_folder / done / recorded.name)
        moves.append((place, batch_id))
    db.conn.executemany(
        "UPDATE batches SET state = 'reported', file_path = coalesce(?, file_path) "
        "WHERE batch_id = ?",
        moves,
    )


@migrations()
def m140_legal_date_of_accepted_records(db: Database) -> None:
    """An accepted record with nothing waiting to leave the CDC shows its delivery's legal
    date; earlier versions left it null once a correction taken back had hidden it."""
    dated = [
        (deadline_for(date.fromisoformat(delivered_on)).isoformat(), record_id)
        for record_id, delivered_on in db.execute(
            "SELECT record_id, delivered_on FROM records WHERE status = 'accepted' "
            "AND deadline IS NULL AND delivered_on IS NOT NULL "
            "AND correction_version IS NULL AND revocation_pending = 0"
        )
    ]
    db.conn.executemany("UPDATE records SET deadline = ? WHERE record_id = ?", dated)


@migrations()
def m150_ever_valid(db: Database) -> None:
    """`ever_valid` (`Record.ever_valid`): whether a content of the record passed validation
    once. A record whose history never reached a status only a valid content reaches gives
    its id to another certifier's valid event; every other record keeps it (the default)."""
    db.executescript(
        """
        ALTER TABLE records ADD COLUMN ever_valid INTEGER NOT NULL DEFAULT 1;
        UPDATE records SET ever_valid = 0
         WHERE status IN ('invalid', 'withdrawn')
           AND NOT EXISTS (
               SELECT 1 FROM history h
                WHERE h.record_id = records.record_id
                  AND h.to_status IN ('pending', 'batched', 'deposited', 'accepted', 'rejected')
           );
        """
    )
