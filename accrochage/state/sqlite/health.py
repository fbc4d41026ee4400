"""What `accrochage doctor` and the start-up guard read of the database itself."""

from __future__ import annotations

import sqlite3

from accrochage.state.sqlite.migrations import migrations
from accrochage.state.values import StoreHealth

MIGRATIONS_TABLE = "_sqlite_migrations"


def schema_versions_written(conn: sqlite3.Connection) -> set[str]:
    return {str(row[0]) for row in conn.execute("SELECT DISTINCT schema_version FROM batches")}


def store_health(conn: sqlite3.Connection) -> StoreHealth:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    applied = conn.execute(
        f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ? ORDER BY rowid",
        (migrations.name,),
    )
    return StoreHealth(
        int(pages) * int(page_size),
        tuple(str(row[0]) for row in applied),
        int(free) * int(page_size),
    )
