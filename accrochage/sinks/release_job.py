"""One frozen batch's release as a job any process can run: a render process of the outbox's
pool, or the one that flushes.

`RenderJob` carries what it needs (where the store and the outbox are, the batch's header,
its XSD), `release_batch` reads the batch's frozen contents with a reader of its own and
releases its checked file, and each content's passage is the one prepared at decoding when it
is in the file's schema. A content the event model refuses now is told by its record and
fields only, never by a value. `sinks/xml_outbox.py` is the sink that runs these jobs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from accrochage.errors import RenderError
from accrochage.models.batch import FrozenBatch, ReleasedFile
from accrochage.models.event import event_from_content
from accrochage.models.field_errors import error_path
from accrochage.sinks.outbox import release_passages
from accrochage.sinks.passage import passage_bytes
from accrochage.sinks.profiles import SchemaProfile, profile_for
from accrochage.sinks.render import FluxHeader, FluxPassage
from accrochage.state.base import StoredContent, StoreLocation


def header_of(batch: FrozenBatch) -> FluxHeader:
    return FluxHeader(
        batch.batch_id,
        batch.created_at,
        batch.emitter,
        batch.certifier,
        profile_for(batch.schema_version),
        batch.action,
        profile_for(batch.passage_schema),
    )


@dataclass(frozen=True, slots=True)
class RenderJob:
    """Everything a (possibly separate) process needs to release one frozen batch."""

    store: StoreLocation
    outbox: Path
    batch: FrozenBatch
    xsd: Path
    max_bytes: int
    subfolder: str = ""
    """Of the certifier's folder: where the file is released (its top folder by default)."""


def stored_passage(content: StoredContent, profile: SchemaProfile) -> bytes:
    """The passage bytes of a stored content in `profile`: as prepared at decoding when they
    were prepared in that schema, rendered from the content otherwise."""
    prepared = content.passage
    if prepared is not None and prepared.schema == profile.version:
        return prepared.data
    try:
        event = event_from_content(content.payload, content.event_id)
    except ValidationError as exc:
        raise _no_longer_valid(content, exc) from None
    return passage_bytes(event, profile)


def _no_longer_valid(content: StoredContent, exc: ValidationError) -> RenderError:
    """A stored content the event model refuses now (a rule tightened by an upgrade, a state
    edited by hand), said by its record and fields only: the batch's error is stored, logged
    and served by `GET /batches`, and the value would be a holder's name or birth date."""
    fields = sorted({error_path(error["loc"]) for error in exc.errors()})
    record = _record_id(content.payload)
    return RenderError(
        f"the stored content of record {record} no longer passes validation "
        f"({', '.join(fields)}): send the record again corrected (the correction "
        f"supersedes this batch), or take it out with `accrochage exclude {record}`"
    )


def _record_id(payload: str) -> str:
    try:
        found = json.loads(payload).get("record_id")
    except (ValueError, AttributeError):
        return "?"
    return found if isinstance(found, str) else "?"


def release_batch(job: RenderJob) -> ReleasedFile:
    """Write, check and release one batch from its frozen members; runs in any process."""
    header = header_of(job.batch)
    profile = header.passages_as
    reader = job.store.open_reader()
    try:
        passages = (
            FluxPassage(c.code or "", stored_passage(c, profile))
            for c in reader.frozen_contents(job.batch.batch_id)
        )
        return release_passages(
            job.outbox,
            header,
            passages,
            xsd=job.xsd,
            max_bytes=job.max_bytes,
            subfolder=job.subfolder,
        )
    finally:
        reader.close()
