"""m200: beside each partition's next offset, the mark of the record stored just before it
(`streams/log_source.log_marks`), so that a worker can tell, when a partition is assigned,
whether its log is still the one the state read (a topic deleted and created again already
past the stored offset). NULL: not known (offsets stored before m200, a rewound partition,
a record its client could not read); such a partition is not checked until its next store."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m200_log_marks(db: Database) -> None:
    db.execute("ALTER TABLE input_offsets ADD COLUMN last_mark TEXT")
