"""m230: an unusable event keeps the certifier it names (when it names one readable): a
trusted third party lists one certifier's part of the unusable log, where one platform's
flood of refused events buried another's single event. Rows kept before name none."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m230_unusable_certifier(db: Database) -> None:
    db.executescript(
        """
        ALTER TABLE unusable ADD COLUMN certifier TEXT;
        CREATE INDEX unusable_certifier ON unusable (certifier, id);
        """
    )


MAX_CERTIFIER_KEY = 64
"""As `models/decode.MAX_CERTIFIER_KEY` when m240 was written: a migration stays as it ran."""


@migrations()
def m240_unusable_certifier_backfill(db: Database) -> None:
    """The rows kept before m230 take the certifier their event names, read as the decoding
    reads it (a text of at most 64 characters): `unusable --certifier` listed none of them."""
    db.execute(
        """
        UPDATE unusable SET certifier = json_extract(raw, '$.certifier')
        WHERE certifier IS NULL AND json_valid(raw)
          AND json_type(raw, '$.certifier') = 'text'
          AND length(json_extract(raw, '$.certifier')) <= ?
        """,
        (MAX_CERTIFIER_KEY,),
    )
