"""The SQLite implementation of the store (sqlite-utils, sqlite-migrate)."""

from accrochage.state.sqlite.store import SqliteLocation, SqliteStore

__all__ = ["SqliteLocation", "SqliteStore"]
