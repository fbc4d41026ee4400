"""The SQLite implementation of the store (sqlite-utils, sqlite-migrate)."""

from accrochage.state.sqlite.location import SqliteLocation
from accrochage.state.sqlite.store import SqliteStore

__all__ = ["SqliteLocation", "SqliteStore"]
