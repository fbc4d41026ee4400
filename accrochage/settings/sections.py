"""The configuration's sections other than `api`: each refuses an unknown key by its name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from accrochage.models.vocabulary import (
    CDC_MAX_PASSAGES,
    CURRENT_SCHEMA,
    DepositorNature,
    SchemaVersion,
)
from accrochage.settings.durations import (
    DeadlineMargin,
    Duration,
    ForgetAfter,
    LockWait,
    MaxDelay,
    SessionTimeout,
    Tick,
    within,
)

CertifierKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]

Bcr = Annotated[str, Field(min_length=8, max_length=8, pattern=r"^[A-Za-z0-9]{8}$")]


class Section(BaseModel):
    """A section of the configuration: an unknown key is refused with its name, never ignored;
    read-only once loaded (the composition root builds everything from one reading)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EmitterSettings(Section):
    id_client: Bcr
    nature: DepositorNature = DepositorNature.CERTIFICATEUR


class CertifierSettings(Section):
    key: CertifierKey
    id_client: Bcr
    id_contrat: Annotated[str, Field(min_length=1, max_length=20)]
    certifications: tuple[Annotated[str, Field(pattern=r"^(RNCP|RS)[0-9]{1,20}$")], ...] = Field(
        min_length=1
    )
    siret: Annotated[str, Field(pattern=r"^([0-9]{14})?$")] | None = None
    """Checked against the fiche's certifiers in the RNCP/RS export (CONTRACT §11)."""
    nature: DepositorNature | None = None
    """The natureDeposant of its files when not the emitter's: a trusted third party that
    also deposits its own certifications says CERTIFICATEUR in those."""

    @model_validator(mode="before")
    @classmethod
    def _siret_as_written(cls, data: Any) -> Any:
        """Spaces and a TAB (as the export writes them) are dropped; empty means none."""
        if isinstance(data, dict) and isinstance(data.get("siret"), str):
            siret = "".join(data["siret"].split())
            return {**data, "siret": siret or None}
        return data


class BatchingSettings(Section):
    max_records: int = Field(default=1000, ge=1, le=CDC_MAX_PASSAGES)
    max_file_bytes: int = Field(default=190_000_000, ge=100_000, le=200_000_000)
    max_delay: MaxDelay = timedelta(minutes=15)
    deadline_margin: DeadlineMargin = timedelta(days=14)
    tick: Tick = timedelta(seconds=5)
    render_processes: int = Field(default=2, ge=0, le=16)
    """Processes that render and check large batches (0: in the calling process)."""

    @property
    def margin_days(self) -> int:
        """Whole days, rounded up: deadlines are days, and "36h" must not warn later than
        the operator asked (it is 2 days, not 1)."""
        return -(-self.deadline_margin // timedelta(days=1))


class IngestSettings(Section):
    decode_processes: int = Field(default=2, ge=0, le=16)
    """Processes that decode and validate events while the writer stores (0: the writer's
    own process decodes). Two by default: decoding an event and writing its passage takes
    about 1.6 times the CPU of storing it, so one decode process left the writer idle a third
    of a bulk `ingest` on two cores (bench/HISTORY.md, issue 13, session 18)."""


class PathsSettings(Section):
    state: Path = Path("var/state.db")
    outbox: Path = Path("var/outbox")


class StateSettings(Section):
    lock_wait: LockWait = timedelta(seconds=30)
    """How long a write waits for the state's write lock held by another process (a command
    stopped with Ctrl-Z, a hung writer) before failing with `state_busy`, nothing stored."""
    keep_free_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    """Free space on the state's disk that events may not take: below it they are refused
    (`507 storage_low`; a Kafka worker waits), while the batch files, the CDC's reports,
    corrections and withdrawals still have room. Without it, a platform sending without end
    filled the disk, and the files due at the CDC could no longer be written. Below twice it,
    invalid and unusable events over HTTP or from files are refused, valid ones stored
    (`streams/room.py`). 0: none kept."""
    forget_dismissed_after: ForgetAfter = timedelta(days=90)
    """How long the raw input of an unusable event the operator dismissed is kept: then it
    is forgotten (it may name a person), the row kept. Personal data is kept no longer than
    its purpose needs (GDPR art. 5(1)(e)); a dismissed event has none left but a look back."""


class SchemaSettings(Section):
    version: SchemaVersion = CURRENT_SCHEMA
    """The CDC's current kit by default; a state holding 1.1.2 files refuses the default
    until the configuration names a version (`version_named`, checked by `app.build_core`)."""
    xsd: Path | None = None
    """The official XSD of the CDC's kit; none: the bundled one of `version`."""

    @property
    def version_named(self) -> bool:
        """Whether the configuration names `version` (the TOML or ACCROCHAGE_SCHEMA__VERSION)."""
        return "version" in self.model_fields_set

    @model_validator(mode="before")
    @classmethod
    def _empty_xsd_is_none(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("xsd") in ("", None):
            return {**data, "xsd": None}
        return data


class RefdataSettings(Section):
    """Reference data (CONTRACT §11): France compétences' RNCP/RS export and INSEE's COG."""

    rncp: Path | None = None
    """The CSV zip, its CSV files, or the RNCP/RS XML files: a file or a folder."""
    cog: Path | None = None
    """A folder with v_commune_depuis_1943, v_mvt_commune and v_pays_territoire files."""
    max_age: Duration = timedelta(days=30)

    @model_validator(mode="before")
    @classmethod
    def _empty_path_is_none(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (None if k in ("rncp", "cog") and v == "" else v) for k, v in data.items()}
        return data


def _http_url(value: SecretStr) -> SecretStr:
    # Never the value in a message: a webhook's URL (Slack's, say) is a credential.
    url = value.get_secret_value()
    if not url:
        return value
    if not url.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    try:
        parts = urlsplit(url)
        port = parts.port  # a ValueError for one that is not a number from 0 to 65535
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("expected an http:// or https:// URL with a port from 1 to 65535, if any")
    if not parts.hostname:
        raise ValueError("expected an http:// or https:// URL naming a host")
    return value


SecretUrl = Annotated[SecretStr, AfterValidator(_http_url)]
"""A webhook's or an Alertmanager's URL: a credential (Slack's carries its key), never shown."""


class AlertsSettings(Section):
    """Alerts (CONTRACT §10): webhooks in Alertmanager's format, an Alertmanager, a topic."""

    webhooks: tuple[SecretUrl, ...] = ()
    alertmanager: SecretUrl = SecretStr("")
    topic: str = ""
    repeat: Annotated[
        Duration, within(timedelta(minutes=1), timedelta(days=30), "how often to repeat")
    ] = timedelta(hours=6)
    unreported_after: Annotated[
        Duration, within(timedelta(hours=1), timedelta(days=90), "a file's wait for its report")
    ] = timedelta(days=10)


class KafkaSettings(Section):
    bootstrap: str = "127.0.0.1:9092"
    topic: str = "accrochage.certifications.delivered"
    rejected_topic: str = "accrochage.certifications.rejected"
    partitions: int = Field(default=8, ge=1, le=1024)
    replication: int = Field(default=1, ge=1, le=16)
    group: str = "accrochage"
    session_timeout: SessionTimeout = timedelta(seconds=10)
