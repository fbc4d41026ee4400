"""One typed settings object: `accrochage.toml` plus `ACCROCHAGE_*` environment overrides."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from accrochage.errors import ConfigError
from accrochage.models.vocabulary import DepositorNature, SchemaVersion

DEFAULT_CONFIG = Path("accrochage.toml")
CDC_MAX_PASSAGES = 200_000
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd])\s*")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


CertifierKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


MAX_DURATION = timedelta(days=3650)
"""No duration setting makes sense beyond this; larger ones are refused before any arithmetic."""


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value))
        if match is None:
            raise ValueError(f"expected a duration such as 30s, 15m, 2h or 14d, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 <= seconds <= MAX_DURATION.total_seconds():
        raise ValueError(f"expected a duration between 0s and {_show(MAX_DURATION)}, got {value!r}")
    return timedelta(seconds=seconds)


def _show(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def _within(low: timedelta, high: timedelta, why: str) -> AfterValidator:
    def check(value: timedelta) -> timedelta:
        if not low <= value <= high:
            raise ValueError(
                f"must be between {_show(low)} and {_show(high)} ({why}), got {_show(value)}"
            )
        return value

    return AfterValidator(check)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Tick = Annotated[
    Duration,
    _within(timedelta(seconds=1), timedelta(hours=1), "the services' timer"),
]
MaxDelay = Annotated[
    Duration,
    _within(
        timedelta(seconds=1),
        timedelta(days=60),
        "how long a pending record may wait for a batch; the CDC deadline is 3 months",
    ),
]
DeadlineMargin = Annotated[
    Duration,
    _within(
        timedelta(0),
        timedelta(days=60),
        "records this close to their 3-month deadline are sent at once",
    ),
]
BodyTimeout = Annotated[
    Duration,
    _within(
        timedelta(seconds=1),
        timedelta(hours=1),
        "how long a request's body may take to arrive once its headers have",
    ),
]
SessionTimeout = Annotated[
    Duration,
    _within(timedelta(seconds=1), timedelta(minutes=30), "Kafka's accepted range"),
]
Bcr = Annotated[str, Field(min_length=8, max_length=8, pattern=r"^[A-Za-z0-9]{8}$")]


class Section(BaseModel):
    """A section of the configuration: an unknown key is refused with its name, never ignored."""

    model_config = ConfigDict(extra="forbid")


class EmitterSettings(Section):
    id_client: Bcr
    nature: DepositorNature = DepositorNature.CERTIFICATEUR


class CertifierSettings(Section):
    key: CertifierKey
    id_client: Bcr
    id_contrat: Annotated[str, Field(min_length=1, max_length=20)]
    certifications: list[Annotated[str, Field(pattern=r"^(RNCP|RS)[0-9]{1,20}$")]] = Field(
        min_length=1
    )
    siret: Annotated[str, Field(pattern=r"^([0-9]{14})?$")] | None = None
    """Checked against the fiche's certifiers in the RNCP/RS export (CONTRACT §11)."""

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
    decode_processes: int = Field(default=1, ge=0, le=16)
    """Processes that decode and validate events while the writer stores (0: the writer's
    own process decodes)."""


class PathsSettings(Section):
    state: Path = Path("var/state.db")
    outbox: Path = Path("var/outbox")


LockWait = Annotated[
    Duration,
    _within(
        timedelta(seconds=1),
        timedelta(hours=1),
        "how long a write waits for another process's writer before giving up",
    ),
]


class StateSettings(Section):
    lock_wait: LockWait = timedelta(seconds=30)
    """How long a write waits for the state's write lock held by another process (a command
    stopped with Ctrl-Z, a hung writer) before failing with `state_busy`, nothing stored."""


class SchemaSettings(Section):
    version: SchemaVersion = SchemaVersion.V1_1_5
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


MIN_TOKEN_CHARS = 32


def _strong_token(value: SecretStr) -> SecretStr:
    secret = value.get_secret_value()
    if secret and len(secret) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"a token must hold at least {MIN_TOKEN_CHARS} characters (got {len(secret)}); "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if secret and (not secret.isascii() or any(not c.isprintable() or c.isspace() for c in secret)):
        raise ValueError("a token must be printable ASCII without spaces")
    return value


Token = Annotated[SecretStr, AfterValidator(_strong_token)]


class ScopedIngestToken(BaseModel):
    """An exam platform's token that sends events for some certifiers only: an event for
    another certifier, or naming a record of another certifier, is refused (403) and kept in
    the unusable log. A bare token string sends for every certifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: Token
    certifiers: list[CertifierKey] = Field(min_length=1)
    """Keys of configured certifiers (`[[certifiers]] key`)."""


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bind: str = "127.0.0.1:8787"
    token: Token = SecretStr("")
    """The operator's token: every route (records carry personal data)."""
    ingest_tokens: list[Token | ScopedIngestToken] = []
    """Tokens of exam platforms: `POST /events` and `POST /check` only; each a string (any
    certifier) or `{token = "...", certifiers = ["key", ...]}` (those certifiers only)."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    max_events_per_request: int = Field(default=1000, ge=1, le=100_000)
    body_timeout: BodyTimeout = timedelta(seconds=60)
    """A body not whole by then is answered 408, and its connection closed after aiohttp's
    lingering read (at most 10 s): a client that sends headers and then nothing, or a
    trickle, holds no connection for long."""

    @property
    def ingest_scopes(self) -> tuple[tuple[SecretStr, frozenset[str] | None], ...]:
        """Each ingest token and the certifiers it may send for (None: any)."""
        return tuple(
            (t.token, frozenset(t.certifiers)) if isinstance(t, ScopedIngestToken) else (t, None)
            for t in self.ingest_tokens
        )

    @property
    def host(self) -> str:
        return self.bind.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.bind.rsplit(":", 1)[1])

    @model_validator(mode="after")
    def _token_off_loopback(self) -> ApiSettings:
        port = self.bind.rsplit(":", 1)[1] if ":" in self.bind else ""
        if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise ValueError(
                f"bind must be HOST:PORT with a port from 1 to 65535, got {self.bind!r}"
            )
        if not _is_loopback(self.host) and not self.token.get_secret_value():
            raise ValueError(
                f"api.token is required when api.bind ({self.bind}) is not a loopback address"
            )
        scoped = any(scope is not None for _, scope in self.ingest_scopes)
        if scoped and not self.token.get_secret_value():
            raise ValueError(
                "api.token is required with an ingest token scoped to certifiers: without it "
                "every other route (the records of every certifier) answers without a token"
            )
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def _http_url(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        # Never the value: a webhook's URL (Slack's, say) is a credential.
        raise ValueError("expected an http:// or https:// URL")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class AlertsSettings(Section):
    """Alerts (CONTRACT §10): webhooks in Alertmanager's format, an Alertmanager, a topic."""

    webhooks: list[HttpUrl] = []
    alertmanager: HttpUrl = ""
    topic: str = ""
    repeat: Annotated[
        Duration, _within(timedelta(minutes=1), timedelta(days=30), "how often to repeat")
    ] = timedelta(hours=6)
    unreported_after: Annotated[
        Duration, _within(timedelta(hours=1), timedelta(days=90), "a file's wait for its report")
    ] = timedelta(days=10)


class KafkaSettings(Section):
    bootstrap: str = "127.0.0.1:9092"
    topic: str = "accrochage.certifications.delivered"
    rejected_topic: str = "accrochage.certifications.rejected"
    partitions: int = Field(default=8, ge=1, le=1024)
    replication: int = Field(default=1, ge=1, le=16)
    group: str = "accrochage"
    session_timeout: SessionTimeout = timedelta(seconds=10)


ENV_PREFIX = "ACCROCHAGE_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_prefix_target="all",
        env_nested_delimiter="__",
        extra="forbid",
    )
    """`env_prefix_target="all"`: the `schema` alias takes the prefix (ACCROCHAGE_SCHEMA__XSD)."""

    emitter: EmitterSettings
    certifiers: list[CertifierSettings] = Field(min_length=1)
    batching: BatchingSettings = BatchingSettings()
    ingest: IngestSettings = IngestSettings()
    paths: PathsSettings = PathsSettings()
    state: StateSettings = StateSettings()
    schema_: SchemaSettings = Field(default=SchemaSettings(), alias="schema")
    api: ApiSettings = ApiSettings()
    kafka: KafkaSettings = KafkaSettings()
    refdata: RefdataSettings = RefdataSettings()
    alerts: AlertsSettings = AlertsSettings()

    @model_validator(mode="after")
    def _unique_keys(self) -> Settings:
        keys = [c.key for c in self.certifiers]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"certifier keys must be unique; repeated: {', '.join(duplicates)}")
        for n, (_, scope) in enumerate(self.api.ingest_scopes):
            unknown = sorted((scope or frozenset()) - set(keys))
            if unknown:
                raise ValueError(
                    f"api.ingest_tokens[{n}].certifiers names {', '.join(map(repr, unknown))}, "
                    f"not a configured certifier key (configured: {', '.join(keys)})"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def config_path(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    from_env = os.environ.get("ACCROCHAGE_CONFIG")
    return Path(from_env) if from_env else DEFAULT_CONFIG


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (and the environment); a missing or wrong setting names itself."""
    source = config_path(path)
    if not source.is_file():
        raise ConfigError(
            f"configuration file {source} not found: pass --config PATH, set ACCROCHAGE_CONFIG, "
            "or copy accrochage.example.toml to ./accrochage.toml"
        )

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=source)

    unknown = unknown_variables(os.environ)
    if unknown:
        raise ConfigError(
            f"{', '.join(unknown)}: not a setting; a setting's variable is "
            "ACCROCHAGE_<SECTION>__<KEY> (e.g. ACCROCHAGE_API__TOKEN): check its spelling"
        )
    try:
        return anchored(_FromFile(**overrides), source.absolute().parent)
    except ValidationError as exc:
        raise ConfigError(describe_settings_errors(source, exc)) from None
    except SettingsError as exc:
        raise ConfigError(
            f"an ACCROCHAGE_* variable cannot be read ({exc}): a list setting takes JSON, "
            """e.g. ACCROCHAGE_API__INGEST_TOKENS='["..."]'"""
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{source}: cannot read the configuration: {exc}") from None


def anchored(settings: Settings, folder: Path) -> Settings:
    """Relative paths read from the configuration file's folder, whoever runs a command from
    wherever: a `flush` from cron in a home folder created a new, empty state there and said
    "nothing due", and an `ingest` would have split the records between two states."""

    def at(path: Path | None) -> Path | None:
        return path if path is None or path.is_absolute() else folder / path

    paths, schema, refdata = settings.paths, settings.schema_, settings.refdata
    _not_left_behind(paths.state, folder)
    return settings.model_copy(
        update={
            "paths": paths.model_copy(
                update={"state": at(paths.state), "outbox": at(paths.outbox)}
            ),
            "schema_": schema.model_copy(update={"xsd": at(schema.xsd)}),
            "refdata": refdata.model_copy(
                update={"rncp": at(refdata.rncp), "cog": at(refdata.cog)}
            ),
        }
    )


def _not_left_behind(state: Path, folder: Path) -> None:
    """An installation run from another folder than its configuration's, before relative
    paths were read from the configuration's folder, has its state where it ran: a new empty
    state would be created beside the configuration, and the records split in two."""
    if state.is_absolute() or (folder / state).exists():
        return
    before = Path.cwd() / state
    if before.exists() and before.resolve() != (folder / state).resolve():
        raise ConfigError(
            f"paths.state {state} is read from the configuration file's folder "
            f"({folder / state}), where there is no state, and there is one at {before} "
            "(from the folder this runs in, where earlier versions read it): "
            "move the state (and its outbox) beside the configuration, or set an absolute "
            "paths.state and paths.outbox"
        )


NOT_SETTINGS = frozenset(
    {
        "ACCROCHAGE_CONFIG",
        "ACCROCHAGE_FAILPOINT",
        "ACCROCHAGE_TEST_KAFKA",
        "ACCROCHAGE_KAFKA_SEED",
        "ACCROCHAGE_CRASH_SEED",
        "ACCROCHAGE_SHARED",
    }
)
"""ACCROCHAGE_* variables that are not settings: the configuration file's path, and the test
suite's and benchmarks' own knobs."""


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """ACCROCHAGE_* variables that name no setting (a misspelt section, a single `_` where
    `__` goes): ignored, they would leave a setting the operator believes set at its default
    (an API without the token they meant to require)."""
    fields = {(f.alias or name).upper() for name, f in Settings.model_fields.items()}
    found = []
    for variable in environ:
        if not variable.startswith(ENV_PREFIX) or variable in NOT_SETTINGS:
            continue
        section = variable.removeprefix(ENV_PREFIX).split("__", 1)[0].upper()
        if section not in fields:
            found.append(variable)
    return sorted(found)


def describe_settings_errors(source: Path, exc: ValidationError) -> str:
    lines = [f"{source}: {exc.error_count()} wrong or missing setting(s):"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]).replace("schema_", "schema")
        variable = ENV_PREFIX + "__".join(where.split(".")[:2]).upper()
        origin = f" (from {variable})" if variable in os.environ else ""
        lines.append(f"  - {where}{origin}: {_error_message(error)}")
    return "\n".join(lines)


def _error_message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return (
            "unknown setting (check its spelling against accrochage.example.toml; "
            "an environment variable is ACCROCHAGE_<SECTION>__<KEY>)"
        )
    message = error["msg"]
    return message.removeprefix("Value error, ")
