"""The schema of the state database, as an ordered list of migrations (sqlite-migrate).

Each module registers its migrations on `migrations` as it is imported, and they run in that
order: the modules, named by their first migration, are imported here oldest first (the
sorted order), and a new migration goes at the end of the last one, or into a new module
named after it.
"""

from __future__ import annotations

from accrochage.state.sqlite.migrations import (  # noqa: F401  (each registers its migrations)
    m001_first_schema,
    m010_capabilities,
    m060_refinements,
    m110_upgrade_repairs,
    m160_event_ids,
    m170_correction_errors,
    m180_held_hash,
    m190_taken_events,
    m200_log_marks,
    m210_dismissed_unusable,
    m220_refused_dates,
    m230_unusable_certifier,
    m250_forgotten_unusable,
    m260_changes_epoch,
    m270_left_out_index,
    m280_reason_indexes,
    m290_in_flight_index,
    m300_archived_files,
)
from accrochage.state.sqlite.migrations.registry import latest_migration, migrations

__all__ = ["latest_migration", "migrations"]
