"""m250: the raw input of an unusable event dismissed long ago is forgotten (it may name a
person: a holder's names, birth data, NIR); the row stays, saying when it was."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m250_forgotten_unusable(db: Database) -> None:
    db.execute("ALTER TABLE unusable ADD COLUMN forgotten_at TEXT")
