"""What a batch is made of, as the store hands it out and the sinks take it in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from accrochage.models.registry import Certifier, Emitter
from accrochage.models.vocabulary import BatchState, CdcAction, SchemaVersion


@dataclass(frozen=True, slots=True)
class PendingStats:
    """One certifier's pending records, summed up for the batching policy."""

    certifier: str
    count: int
    oldest_pending_since: datetime
    earliest_deadline: date | None


@dataclass(frozen=True, slots=True)
class Member:
    """A pending record as a batch takes it: the content version it freezes, its size bound."""

    record_id: str
    version: int
    code: str
    xml_bytes: int


@dataclass(frozen=True, slots=True)
class SentAs:
    """How a CREATION batch sent its passages: what a SUPPRESSION of them must repeat."""

    emitter: Emitter
    certifier: Certifier
    schema_version: SchemaVersion


@dataclass(frozen=True, slots=True)
class Suppressible:
    """An accepted record to withdraw from the CDC, with the passage as it was sent."""

    certifier: str
    member: Member
    sent_as: SentAs
    waiting_since: datetime
    """Since when it waits for its SUPPRESSION (the batching age rule)."""


@dataclass(frozen=True, slots=True)
class FrozenBatch:
    """A batch as frozen at its cut: everything its file is written from, but the passages.

    Writing it again at any later time gives the same file name and the same bytes.
    """

    batch_id: str
    created_at: datetime
    emitter: Emitter
    certifier: Certifier
    schema_version: SchemaVersion
    passages: int
    action: CdcAction = CdcAction.CREATION
    sent_as: SchemaVersion | None = None
    """A SUPPRESSION's: the schema of the CREATION files it repeats (their identity branch)."""

    @property
    def passage_schema(self) -> SchemaVersion:
        """The schema its passages are written in: as they were sent, for a SUPPRESSION."""
        return self.sent_as or self.schema_version


def header_changes(batch: FrozenBatch, emitter: Emitter, certifier: Certifier) -> list[str]:
    """What `batch`'s file header says that the configuration no longer does (the CDC's
    element names, the old value then the new): a CREATION file not yet deposited is cut
    again under the configuration's (a contract renewed, an emitter changed), not uploaded
    under identities the CDC may refuse or attribute wrongly."""
    pairs = (
        ("emetteur/idClient", batch.emitter.id_client, emitter.id_client),
        ("natureDeposant", batch.emitter.nature, emitter.nature),
        ("certificateur/idClient", batch.certifier.id_client, certifier.id_client),
        ("idContrat", batch.certifier.id_contrat, certifier.id_contrat),
    )
    return [f"{name} {old} -> {new}" for name, old, new in pairs if old != new]


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A batch's current state, for the feedback loop."""

    batch_id: str
    certifier: str
    state: BatchState
    file_name: str
    file_path: Path | None = None
    """Where its file is now (null until written)."""
    action: CdcAction = CdcAction.CREATION
    schema_version: SchemaVersion = SchemaVersion.V1_1_2
    cut_at: datetime | None = None
    """When it was cut: its members had been pending since then at least."""
    archived: Archived | None = None
    """Its file archived away from the outbox (`accrochage archived`); None: not."""
    sha256: str | None = None
    size: int | None = None
    """Its file's, as released (None until written)."""


@dataclass(frozen=True, slots=True)
class Archived:
    """The operator's word that a settled batch's file left the outbox for good."""

    at: datetime
    to: Path | None
    """The folder holding the file now; None: deleted."""


@dataclass(frozen=True, slots=True)
class ReleasedFile:
    """A batch file a sink has released: complete, checked, under its final name."""

    path: Path
    passages: int
    size: int
    sha256: str


OUTBOX_FOLDERS = {
    BatchState.DEPOSITED: "deposited",
    BatchState.REPORTED: "done",
    BatchState.SUPERSEDED: "superseded",
}
"""CONTRACT §7: a certifier's top folder holds only its files still to upload; these beside."""


def outbox_place(outbox: Path, certifier: str, file_name: str, state: BatchState) -> Path:
    """Where the file of a batch in `state` belongs: the operator's view of what is left."""
    return outbox / certifier / OUTBOX_FOLDERS.get(state, "") / file_name


def relocated(path: Path, certifier: str, state: BatchState, outbox: Path) -> Path | None:
    """Where a file recorded at `path` belongs under `outbox` (absolute): its certifier's
    folder for the batch's `state`, its own name; None when it is recorded there already. A
    recorded path is always that place (the state is recorded first, the file moved after),
    unless the state and its outbox were moved or restored elsewhere, the state copied, or
    `paths.outbox` changed."""
    place = outbox_place(outbox, certifier, path.name, state)
    return None if path == place else place


_BATCH_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def batch_ids_in(file_name: str) -> list[str]:
    """The batch ids a file's name carries (`<...>_<batch id>.xml`, CONTRACT §7), for a name
    the CDC reports as uploaded: renamed (`..._002.xml`, a split or a second upload),
    compressed, or with a path. Lower case, as batches are named."""
    return list(dict.fromkeys(found.lower() for found in _BATCH_ID.findall(file_name)))


def not_one_batch(matching: list[str]) -> str | None:
    """What a batch reference (an id, a prefix, a file name) names when it is not exactly one
    batch, in a refusal's words ("no batch", "3 batches"); None when it names one."""
    if len(matching) == 1:
        return None
    return "no batch" if not matching else f"{len(matching)} batches"
