"""The store's interface: what the pipeline, the feedback loop and the queries may ask of state.

The SQLite store (`state/sqlite/`) implements it today. Everything that crosses it is a plain
typed value of `models/` (records, contents, batches, problems) or of this module, never a
connection, a cursor or a row, so that another implementation (PostgreSQL, for a sharded
scale-out) can stand beside it without a change above `state/`.

Writes happen in a unit of work: `with store.transaction() as tx:` commits when the block
ends and rolls back when it raises. One transaction at a time per store, and across processes.
Reads go through readers that never wait for a writer.
"""

from accrochage.state.base.reader import Reader, StoreLocation
from accrochage.state.base.service import ServiceGuard
from accrochage.state.base.store import Store, WriteObserver, WriteTime
from accrochage.state.base.transaction import PendingReads, Transaction
from accrochage.state.refdata import REFDATA_KINDS, RefdataSource, RefdataStorage
from accrochage.state.values import (
    AlertDelivery,
    AlertState,
    BackupTaken,
    BatchFile,
    Compacted,
    DashboardNumbers,
    DeadLetter,
    EvidenceSources,
    ImportedReport,
    JsonRow,
    Observation,
    ReleasedBatch,
    Restored,
    StoredContent,
    StoreHealth,
    ToDeposit,
    UnusableEvent,
    UpgradePlan,
    WriteHolder,
)

__all__ = [
    "REFDATA_KINDS",
    "AlertDelivery",
    "AlertState",
    "BackupTaken",
    "BatchFile",
    "Compacted",
    "DashboardNumbers",
    "DeadLetter",
    "EvidenceSources",
    "ImportedReport",
    "JsonRow",
    "Observation",
    "PendingReads",
    "Reader",
    "RefdataSource",
    "RefdataStorage",
    "ReleasedBatch",
    "Restored",
    "ServiceGuard",
    "Store",
    "StoreHealth",
    "StoreLocation",
    "StoredContent",
    "ToDeposit",
    "Transaction",
    "UnusableEvent",
    "UpgradePlan",
    "WriteHolder",
    "WriteObserver",
    "WriteTime",
]
