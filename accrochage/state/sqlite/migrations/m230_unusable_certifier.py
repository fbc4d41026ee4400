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
