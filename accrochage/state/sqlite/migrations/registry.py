"""The state's migrations (sqlite-migrate), registered by the modules of this package."""

from __future__ import annotations

import logging

from sqlite_migrate import Migrations

migrations = Migrations("accrochage")
log = logging.getLogger("accrochage.state")
LOGGED_REBUILD_ROWS = 100_000
"""A migration that rebuilds a table of at least this many rows says so first (seconds)."""


def logged_rebuild_rows() -> int:
    """`LOGGED_REBUILD_ROWS` as it is when a migration runs (a test lowers it)."""
    return LOGGED_REBUILD_ROWS


def latest_migration() -> str:
    """The name of the last migration: the schema this version writes."""
    return migrations._migrations[-1].name
